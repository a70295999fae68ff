//! Shared fixtures for the cross-crate and real-server interop tests in `tests/tests/`.
//!
//! `cargo xtask servers up` starts a private Postfix with Dovecot SASL and Cyrus SASL
//! listeners, and a Dovecot IMAP server, all on loopback (see `docs/testing.md`). This
//! crate names those listeners, the test users and the paths the tests read:
//!
//! - [`Listener`]: every SMTP listener with its address, [`TlsMode`], [`SaslBackend`]
//!   and the AUTH mechanisms it advertises; [`IMAP_ADDR`] for IMAP.
//! - [`ALICE`], [`BOB`], [`CAROL`] ([`USERS`]): the same logins and passwords on both
//!   SASL backends; [`REFUSED_RECIPIENT`] is always refused with 550.
//! - [`ca_pem_path`], [`root_cert_store`], [`tls_client_config`]: trust for the test CA;
//!   certificates are valid for [`SERVER_NAME`], `127.0.0.1` and `::1`.
//! - [`maildir_new`], [`unique_marker`], [`wait_for_message`], [`strip_delivery_headers`],
//!   [`as_delivered`]: check that a message arrived byte for byte.
//! - [`krb`]: the Kerberos realm and its GSSAPI servers (`cargo xtask servers krb-up`, also
//!   started by `servers up`), and ticket caches for the tests.
//!
//! Tests that need the servers are marked
//! `#[ignore = "needs real servers: cargo xtask servers up"]` and start with
//! [`require_servers`]; `cargo xtask ci` runs them with `--ignored` after `servers up`.
//!
//! ```no_run
//! use interop_tests::{as_delivered, strip_delivery_headers, unique_marker, wait_for_message};
//!
//! let marker = unique_marker("doc");
//! let sent = format!("Message-ID: {marker}\r\nSubject: hi\r\n\r\nbody\r\n");
//! // ... send `sent` through Listener::DovecotPlain to someone@example.test ...
//! let delivered = wait_for_message(&marker).unwrap();
//! assert_eq!(strip_delivery_headers(&delivered).unwrap(), &as_delivered(sent.as_bytes())[..]);
//! ```

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod krb;

/// The reason string for `#[ignore]` on every test that needs the real servers
/// (attributes need a literal: write `#[ignore = "needs real servers: cargo xtask servers up"]`).
pub const IGNORE_REASON: &str = "needs real servers: cargo xtask servers up";

/// The state directory `cargo xtask servers up` builds (the same path as in `xtask/src/servers.rs`).
pub const STATE_DIR: &str = "/var/tmp/smtp-auth-it";

/// The name the server certificate is issued for (also valid: `127.0.0.1`, `::1`).
pub const SERVER_NAME: &str = "localhost";

/// The mail domain: every recipient `*@example.test` is delivered to [`maildir_new`].
pub const DOMAIN: &str = "example.test";

/// A recipient the servers always refuse at `RCPT TO` with
/// `550 5.1.1 <refused@example.test>: recipient refused for testing`.
pub const REFUSED_RECIPIENT: &str = "refused@example.test";

/// The host name in the servers' greeting and EHLO reply: `220 mx.example.test ESMTP ...`.
pub const SERVER_HOSTNAME: &str = "mx.example.test";

/// The largest message the servers accept (`message_size_limit`, advertised as `SIZE 67108864`).
pub const MESSAGE_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// Dovecot's IMAP listener: plain text with STARTTLS offered, plaintext AUTH allowed,
/// the same users and SASL mechanisms as [`SaslBackend::Dovecot`].
pub const IMAP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), IMAP_PORT);

/// The port of [`IMAP_ADDR`].
pub const IMAP_PORT: u16 = 12143;

/// How long [`wait_for_message`] waits for a delivery.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A test account: the same login and password in Dovecot and in Cyrus's sasldb.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// The SASL authentication identity (no realm: the Cyrus listeners add `example.test`).
    pub login: &'static str,
    /// The password, as UTF-8.
    pub password: &'static str,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("login", &self.login)
            .field("password", &"***")
            .finish()
    }
}

impl User {
    /// The user's mail address in [`DOMAIN`] (delivered to [`maildir_new`] like any other).
    pub fn address(&self) -> String {
        format!("{}@{DOMAIN}", self.login)
    }
}

/// ASCII password.
pub const ALICE: User = User {
    login: "alice",
    password: "Alice-Secret-1",
};

/// Password with spaces.
pub const BOB: User = User {
    login: "bob",
    password: "correct horse battery staple",
};

/// Non-ASCII UTF-8 password. Cyrus's NTLM turns passwords into UTF-16 byte by byte
/// (UTF-8 read as Latin-1), so a correct NTLM client is refused for CAROL on the Cyrus
/// listeners: test non-ASCII NTLM passwords with MS-NLMP vectors instead.
pub const CAROL: User = User {
    login: "carol",
    password: "pässwörd-✓",
};

/// Every test user.
pub const USERS: [User; 3] = [ALICE, BOB, CAROL];

/// How a listener uses TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text; STARTTLS offered; AUTH allowed without TLS.
    StartTlsOffered,
    /// Plain text; STARTTLS required: no AUTH in the first EHLO reply, and
    /// `530 5.7.0 Must issue a STARTTLS command first` for MAIL/AUTH before it.
    StartTlsRequired,
    /// TLS from the first byte (RFC 8314 "implicit TLS", like port 465).
    Implicit,
}

/// Which SASL implementation checks passwords behind Postfix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslBackend {
    /// Dovecot 2.3 auth (passwd-file): no NTLM, but OAUTHBEARER and XOAUTH2 (the bearer
    /// token is checked as the password; a failure is `334` + base64 JSON, then `535`
    /// after the client's empty line).
    Dovecot,
    /// Cyrus SASL 2.1 with sasldb, realm `example.test`: has NTLM.
    Cyrus,
}

impl SaslBackend {
    /// The mechanisms the backend's listeners advertise in `250-AUTH`, in that order.
    pub fn mechanisms(self) -> &'static [&'static str] {
        match self {
            SaslBackend::Dovecot => &[
                "PLAIN",
                "LOGIN",
                "CRAM-MD5",
                "DIGEST-MD5",
                "SCRAM-SHA-1",
                "SCRAM-SHA-256",
                "OAUTHBEARER",
                "XOAUTH2",
            ],
            SaslBackend::Cyrus => &[
                "PLAIN",
                "LOGIN",
                "CRAM-MD5",
                "DIGEST-MD5",
                "NTLM",
                "SCRAM-SHA-1",
                "SCRAM-SHA-256",
            ],
        }
    }
}

/// One Postfix SMTP listener of `cargo xtask servers up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listener {
    /// `127.0.0.1:12525`, Dovecot SASL, STARTTLS offered, AUTH allowed in plain text.
    DovecotPlain,
    /// `127.0.0.1:12587`, Dovecot SASL, STARTTLS required.
    DovecotStartTls,
    /// `127.0.0.1:12465`, Dovecot SASL, implicit TLS.
    DovecotImplicitTls,
    /// `[::1]:12525`, like [`Listener::DovecotPlain`]; only when the machine has IPv6
    /// loopback (check [`Listener::is_configured`]).
    DovecotPlainV6,
    /// `127.0.0.1:12526`, Cyrus SASL (NTLM), STARTTLS offered, AUTH allowed in plain text.
    CyrusPlain,
    /// `127.0.0.1:12588`, Cyrus SASL (NTLM), STARTTLS required.
    CyrusStartTls,
    /// `127.0.0.1:12466`, Cyrus SASL (NTLM), implicit TLS.
    CyrusImplicitTls,
}

impl Listener {
    /// Every listener, the IPv6 one included (it may not be configured).
    pub const ALL: [Listener; 7] = [
        Listener::DovecotPlain,
        Listener::DovecotStartTls,
        Listener::DovecotImplicitTls,
        Listener::DovecotPlainV6,
        Listener::CyrusPlain,
        Listener::CyrusStartTls,
        Listener::CyrusImplicitTls,
    ];

    /// A short name, as `cargo xtask servers status` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Listener::DovecotPlain => "dovecot-plain",
            Listener::DovecotStartTls => "dovecot-starttls",
            Listener::DovecotImplicitTls => "dovecot-tls",
            Listener::DovecotPlainV6 => "dovecot-plain-v6",
            Listener::CyrusPlain => "cyrus-plain",
            Listener::CyrusStartTls => "cyrus-starttls",
            Listener::CyrusImplicitTls => "cyrus-tls",
        }
    }

    /// The TCP port.
    pub fn port(self) -> u16 {
        match self {
            Listener::DovecotPlain | Listener::DovecotPlainV6 => 12525,
            Listener::DovecotStartTls => 12587,
            Listener::DovecotImplicitTls => 12465,
            Listener::CyrusPlain => 12526,
            Listener::CyrusStartTls => 12588,
            Listener::CyrusImplicitTls => 12466,
        }
    }

    /// The loopback address the listener is bound to.
    pub fn ip(self) -> IpAddr {
        match self {
            Listener::DovecotPlainV6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// The socket address to connect to.
    pub fn addr(self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.port())
    }

    /// How the listener uses TLS.
    pub fn tls(self) -> TlsMode {
        match self {
            Listener::DovecotPlain | Listener::DovecotPlainV6 | Listener::CyrusPlain => {
                TlsMode::StartTlsOffered
            }
            Listener::DovecotStartTls | Listener::CyrusStartTls => TlsMode::StartTlsRequired,
            Listener::DovecotImplicitTls | Listener::CyrusImplicitTls => TlsMode::Implicit,
        }
    }

    /// Which SASL implementation is behind it.
    pub fn backend(self) -> SaslBackend {
        match self {
            Listener::CyrusPlain | Listener::CyrusStartTls | Listener::CyrusImplicitTls => {
                SaslBackend::Cyrus
            }
            _ => SaslBackend::Dovecot,
        }
    }

    /// The AUTH mechanisms advertised (after STARTTLS on a [`TlsMode::StartTlsRequired`]
    /// listener, which lists none before it).
    pub fn mechanisms(self) -> &'static [&'static str] {
        self.backend().mechanisms()
    }

    /// Whether `servers up` set this listener up: always, except the IPv6 one on a
    /// machine without IPv6 loopback (`up` then writes no `STATE_DIR/ipv6-up`).
    pub fn is_configured(self) -> bool {
        self != Listener::DovecotPlainV6 || Path::new(STATE_DIR).join("ipv6-up").exists()
    }
}

/// The PEM file of the test CA that issued the servers' certificate.
pub fn ca_pem_path() -> PathBuf {
    Path::new(STATE_DIR).join("tls/ca.pem")
}

/// A root store holding only the test CA.
///
/// # Panics
/// If [`ca_pem_path`] cannot be read or holds no certificate (servers not set up).
pub fn root_cert_store() -> rustls::RootCertStore {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let path = ca_pem_path();
    let mut store = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} ({IGNORE_REASON})", path.display()));
    for cert in certs {
        let cert = cert.unwrap_or_else(|e| panic!("bad PEM in {}: {e}", path.display()));
        store
            .add(cert)
            .unwrap_or_else(|e| panic!("bad CA certificate in {}: {e}", path.display()));
    }
    assert!(!store.is_empty(), "no certificate in {}", path.display());
    store
}

/// A rustls client configuration (ring provider, default protocol versions) that trusts
/// only the test CA.
///
/// # Panics
/// As [`root_cert_store`].
pub fn tls_client_config() -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(root_cert_store())
    .with_no_client_auth();
    Arc::new(config)
}

/// The Maildir `new/` directory every message for `*@example.test` is delivered to,
/// one file per recipient. Files are owned by uid 5000, mode 0600: read them as root.
pub fn maildir_new() -> PathBuf {
    Path::new(STATE_DIR).join("maildir/sink/new")
}

/// Panics with a clear message unless the servers answer (call it first in every
/// `#[ignore]`d real-server test).
pub fn require_servers() {
    let greeting = greeting(Listener::DovecotPlain.addr(), Duration::from_secs(3));
    match greeting {
        Ok(line) if line.starts_with("220 ") => {}
        Ok(line) => panic!("unexpected greeting {line:?} on 127.0.0.1:12525 ({IGNORE_REASON})"),
        Err(e) => panic!("servers not running: {e} ({IGNORE_REASON})"),
    }
}

/// The proxies' state directory (`cargo xtask servers proxies-up`, also started by
/// `servers up`; the same path as in `xtask/src/servers_proxies.rs`).
pub const PROXY_STATE_DIR: &str = "/var/tmp/smtp-auth-it-proxies";

/// One of the real proxies in front of the Postfix listeners, on `127.0.0.1`. They let
/// through only ports 12525, 12587 and 12465 (tinyproxy also only the hosts `127.0.0.1` and
/// `localhost`); anything else is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyListener {
    /// Dante, SOCKS5, no authentication: 11080.
    DanteOpen,
    /// Dante, SOCKS5, username/password (RFC 1929) with [`PROXY_USER`]: 11081.
    DanteAuth,
    /// tinyproxy, HTTP CONNECT, no credentials: 18888.
    TinyproxyOpen,
    /// tinyproxy, HTTP CONNECT, Basic credentials of [`PROXY_USER`]: 18889.
    TinyproxyAuth,
}

impl ProxyListener {
    /// All four.
    pub const ALL: [ProxyListener; 4] = [
        ProxyListener::DanteOpen,
        ProxyListener::DanteAuth,
        ProxyListener::TinyproxyOpen,
        ProxyListener::TinyproxyAuth,
    ];

    /// The TCP port on 127.0.0.1.
    pub fn port(self) -> u16 {
        match self {
            ProxyListener::DanteOpen => 11080,
            ProxyListener::DanteAuth => 11081,
            ProxyListener::TinyproxyOpen => 18888,
            ProxyListener::TinyproxyAuth => 18889,
        }
    }

    /// True for the SOCKS5 ones.
    pub fn is_socks5(self) -> bool {
        matches!(self, ProxyListener::DanteOpen | ProxyListener::DanteAuth)
    }

    /// True for the ones that want [`PROXY_USER`].
    pub fn needs_credentials(self) -> bool {
        matches!(
            self,
            ProxyListener::DanteAuth | ProxyListener::TinyproxyAuth
        )
    }
}

/// The proxies' user: a system user for Dante, tinyproxy's BasicAuth.
pub const PROXY_USER: User = User {
    login: "smtpauthproxy",
    password: "Proxy-Secret-7",
};

/// Panics with a clear message unless every proxy accepts connections.
pub fn require_proxies() {
    for proxy in ProxyListener::ALL {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), proxy.port());
        if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            panic!("proxy {proxy:?} not running on {addr}: {e} (cargo xtask servers proxies-up)");
        }
    }
}

/// Connects and reads the first line the server sends (for plain-text listeners),
/// without its CRLF.
///
/// # Errors
/// Connection or read failure, or no full line within `timeout`.
pub fn greeting(addr: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if line.len() > 1024 || stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "no CRLF-ended greeting: {:?}",
                    String::from_utf8_lossy(&line)
                ),
            ));
        }
        line.push(byte[0]);
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A marker unique to this process and call, shaped as a Message-ID
/// (`<tag.PID.NANOS.N@interop.example.test>`), to find a delivered message with
/// [`wait_for_message`].
pub fn unique_marker(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "<{tag}.{}.{nanos}.{}@interop.example.test>",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits (at most [`DELIVERY_TIMEOUT`]) for one delivered message containing `marker`
/// and returns the Maildir file's bytes (LF line ends, delivery headers prepended: see
/// [`strip_delivery_headers`]).
///
/// # Errors
/// No such message in time, or more than one (a message to several recipients is
/// delivered once per recipient: use [`wait_for_messages`]).
pub fn wait_for_message(marker: &str) -> Result<Vec<u8>, String> {
    let mut found = wait_for_messages(marker, 1)?;
    if found.len() > 1 {
        return Err(format!(
            "{} messages contain {marker}, expected one",
            found.len()
        ));
    }
    Ok(found.remove(0))
}

/// Waits (at most [`DELIVERY_TIMEOUT`]) until at least `count` delivered messages contain
/// `marker`, then returns all of those found, in file-name order (delivery order).
///
/// # Errors
/// Fewer than `count` in time, or the Maildir cannot be read.
pub fn wait_for_messages(marker: &str, count: usize) -> Result<Vec<Vec<u8>>, String> {
    wait_for_messages_in(&maildir_new(), marker, count)
}

/// [`wait_for_messages`] in the Maildir `new/` directory `dir` (another instance's sink,
/// such as [`krb::maildir_new`]).
///
/// # Errors
/// Fewer than `count` in time, or the Maildir cannot be read.
pub fn wait_for_messages_in(
    dir: &Path,
    marker: &str,
    count: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    // Maildir files appear whole (written in tmp/, then renamed) and never change.
    let mut seen = std::collections::HashSet::new();
    let mut found: Vec<(std::ffi::OsString, Vec<u8>)> = Vec::new();
    loop {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("read {}: {e}", dir.display()))?;
            let name = entry.file_name();
            if !seen.insert(name.clone()) {
                continue;
            }
            let bytes = std::fs::read(entry.path())
                .map_err(|e| format!("read {}: {e}", entry.path().display()))?;
            if contains(&bytes, marker.as_bytes()) {
                found.push((name, bytes));
            }
        }
        if found.len() >= count {
            found.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(found.into_iter().map(|(_, bytes)| bytes).collect());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {count} messages containing {marker} in {} after {DELIVERY_TIMEOUT:?}",
                found.len(),
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The value of the `Delivered-To:` header Postfix prepended (the envelope recipient).
pub fn delivered_to(message: &[u8]) -> Option<&str> {
    header_block(message)
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"Delivered-To: "))
        .and_then(|v| std::str::from_utf8(v).ok())
}

fn header_block(message: &[u8]) -> &[u8] {
    message
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(message, |end| &message[..end])
}

/// Strips the headers Postfix's virtual agent and smtpd put in front of a delivered
/// message, leaving exactly what the client sent (with LF line ends):
/// `Return-Path:`, `X-Original-To:` (when present), `Delivered-To:`, and one `Received:`
/// header with its folded lines. Compare the result with [`as_delivered`] of the bytes sent.
///
/// # Errors
/// When the message does not start with those headers in that order.
pub fn strip_delivery_headers(message: &[u8]) -> Result<&[u8], String> {
    let mut rest = message;
    for (name, required) in [
        (&b"Return-Path:"[..], true),
        (b"X-Original-To:", false),
        (b"Delivered-To:", true),
        (b"Received:", true),
    ] {
        if rest.starts_with(name) {
            rest = skip_header(rest);
        } else if required {
            let head = &rest[..rest.len().min(80)];
            return Err(format!(
                "expected {:?} next, found {:?}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(head)
            ));
        }
    }
    Ok(rest)
}

/// Skips one header line and its continuation lines (starting with space or tab).
fn skip_header(mut rest: &[u8]) -> &[u8] {
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        rest = &rest[end..];
        if !rest.starts_with(b" ") && !rest.starts_with(b"\t") {
            return rest;
        }
    }
}

/// What the Maildir file holds (after [`strip_delivery_headers`]) for a message sent as
/// `sent` (before dot-stuffing): each CRLF becomes LF, and a message not ending in a line
/// end gets the LF the client adds before the final `.`. Bare CR or bare LF in `sent`
/// are left alone; how a server treats them is its own business, so tests should not
/// send them when comparing bytes.
pub fn as_delivered(sent: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sent.len() + 1);
    let mut i = 0;
    while i < sent.len() {
        if sent[i] == b'\r' && sent.get(i + 1) == Some(&b'\n') {
            out.push(b'\n');
            i += 2;
        } else {
            out.push(sent[i]);
            i += 1;
        }
    }
    if !sent.is_empty() && !sent.ends_with(b"\r\n") {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // A delivery as Postfix 3.7's virtual(8) writes it (headers from a real delivery).
    const DELIVERED: &[u8] = b"Return-Path: <alice@example.test>\n\
X-Original-To: ok@example.test\n\
Delivered-To: ok@example.test\n\
Received: from vm (unknown [127.0.0.1])\n\
\tby mx.example.test (Postfix) with ESMTPA id 29025CE01F\n\
\tfor <ok@example.test>; Sun, 29 Nov 2026 02:14:07 +0000 (UTC)\n\
Received: from elsewhere\n\
Subject: hi\n\
\n\
body\n";

    #[test]
    fn strips_exactly_the_prepended_headers() {
        let rest = strip_delivery_headers(DELIVERED).unwrap();
        // The sender's own Received header stays.
        assert_eq!(rest, b"Received: from elsewhere\nSubject: hi\n\nbody\n");
        assert_eq!(delivered_to(DELIVERED), Some("ok@example.test"));
    }

    #[test]
    fn refuses_a_message_without_delivery_headers() {
        assert!(strip_delivery_headers(b"Subject: hi\n\nbody\n").is_err());
    }

    #[test]
    fn as_delivered_turns_crlf_into_lf_and_ends_the_last_line() {
        assert_eq!(as_delivered(b"A: b\r\n\r\nx\r\n"), b"A: b\n\nx\n");
        assert_eq!(as_delivered(b"A: b\r\n\r\nx"), b"A: b\n\nx\n");
        assert_eq!(as_delivered(b"a\rb\r\n"), b"a\rb\n");
    }

    #[test]
    fn listeners_are_consistent() {
        for l in Listener::ALL {
            assert_eq!(
                l.mechanisms().contains(&"NTLM"),
                l.backend() == SaslBackend::Cyrus
            );
            assert!(l.addr().ip().is_loopback());
        }
        let mut ports: Vec<_> = Listener::ALL.iter().map(|l| l.addr()).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), Listener::ALL.len());
    }

    #[test]
    fn markers_differ() {
        assert_ne!(unique_marker("a"), unique_marker("a"));
    }

    #[test]
    fn user_debug_hides_the_password() {
        assert!(!format!("{ALICE:?}").contains(ALICE.password));
    }
}
