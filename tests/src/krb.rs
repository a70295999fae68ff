//! The private Kerberos realm of `cargo xtask servers krb-up` (also started by
//! `servers up`; see `xtask/src/servers_krb.rs`) and ticket caches for the GSSAPI tests.
//!
//! - An MIT KDC for [`REALM`] on `127.0.0.1:12088`; [`krb5_config`] is its profile (the
//!   tests and the servers read it through `KRB5_CONFIG`; `/etc/krb5.conf` never is).
//! - [`SMTP_ADDR`]: Postfix with Cyrus SASL GSSAPI, acceptor `smtp@localhost`; it relays
//!   only for an authenticated client, and delivers `*@example.test` to [`maildir_new`].
//! - [`IMAP_ADDR`]: Dovecot IMAP with GSSAPI (and SASL-IR), acceptor `imap@localhost`.
//! - [`TicketCache`]: a ticket cache of the test's own (`alice`'s, from her keytab, or one
//!   that does not exist), and [`with_ticket_cache`] to run a client with it.
//!
//! The GSS-API library takes the ticket cache and the profile from the process
//! environment, so [`with_ticket_cache`] sets both while holding a lock that every GSSAPI
//! test takes: no two of them change or read the environment at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The state directory of the realm and its servers (the same path as in
/// `xtask/src/servers_krb.rs`).
pub const STATE_DIR: &str = "/var/tmp/smtp-auth-it-krb";

/// The realm.
pub const REALM: &str = "SMTP-AUTH.TEST";

/// The test user's principal.
pub const ALICE_PRINCIPAL: &str = "alice@SMTP-AUTH.TEST";

/// Postfix with Cyrus SASL GSSAPI: `AUTH GSSAPI` only, no TLS.
pub const SMTP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 12530);

/// Dovecot IMAP with GSSAPI: `AUTH=GSSAPI` only, SASL-IR, no TLS.
pub const IMAP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 12144);

/// The realm's profile (`KRB5_CONFIG`).
pub fn krb5_config() -> PathBuf {
    Path::new(STATE_DIR).join("krb5.conf")
}

/// alice's keytab, for `kinit -k`.
pub fn alice_keytab() -> PathBuf {
    Path::new(STATE_DIR).join("keytabs/alice.keytab")
}

/// The Maildir `new/` directory the Kerberos Postfix delivers every `*@example.test` to.
pub fn maildir_new() -> PathBuf {
    Path::new(STATE_DIR).join("maildir/sink/new")
}

/// Panics with a clear message unless the KDC and both servers answer (call it first in
/// every GSSAPI interop test).
pub fn require_krb_servers() {
    let kdc = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 12088);
    if let Err(e) = std::net::TcpStream::connect_timeout(&kdc, Duration::from_secs(3)) {
        panic!("the KDC is not running on {kdc}: {e} (cargo xtask servers krb-up)");
    }
    for (addr, expected) in [(SMTP_ADDR, "220 "), (IMAP_ADDR, "* OK")] {
        match crate::greeting(addr, Duration::from_secs(3)) {
            Ok(line) if line.starts_with(expected) => {}
            Ok(line) => panic!("unexpected greeting {line:?} on {addr}"),
            Err(e) => panic!("not running on {addr}: {e} (cargo xtask servers krb-up)"),
        }
    }
}

/// A ticket cache file of one test, removed when dropped.
#[derive(Debug)]
pub struct TicketCache {
    path: PathBuf,
}

impl TicketCache {
    fn fresh_path() -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        std::env::temp_dir().join(format!(
            "smtp-auth-krb-{}-{}.ccache",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// A cache holding alice's ticket-granting ticket, from her keytab (`kinit -k`).
    ///
    /// # Errors
    /// When `kinit` fails (the realm is not up).
    pub fn alice() -> Result<TicketCache, String> {
        let cache = TicketCache {
            path: Self::fresh_path(),
        };
        let out = Command::new("kinit")
            .env("KRB5_CONFIG", krb5_config())
            .env("KRB5CCNAME", cache.name())
            .arg("-k")
            .arg("-t")
            .arg(alice_keytab())
            .arg(ALICE_PRINCIPAL)
            .output()
            .map_err(|e| format!("cannot run kinit: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "kinit -k {ALICE_PRINCIPAL} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(cache)
    }

    /// A cache that does not exist: what a user who never ran `kinit` has.
    pub fn missing() -> TicketCache {
        TicketCache {
            path: Self::fresh_path(),
        }
    }

    /// The cache's name for `KRB5CCNAME` (`FILE:/tmp/...`).
    pub fn name(&self) -> String {
        format!("FILE:{}", self.path.display())
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TicketCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs `f` with `KRB5_CONFIG` set to the realm's profile and `KRB5CCNAME` to `cache`,
/// holding the lock every GSSAPI test takes (the environment is the process's).
pub fn with_ticket_cache<R>(cache: &TicketCache, f: impl FnOnce() -> R) -> R {
    static ENV: Mutex<()> = Mutex::new(());
    // A test that failed inside still leaves the environment consistent: take the lock.
    let _guard = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    std::env::set_var("KRB5_CONFIG", krb5_config());
    std::env::set_var("KRB5CCNAME", cache.name());
    f()
}
