//! `cargo xtask servers krb-up|krb-down`: a private Kerberos realm on loopback and the two
//! servers that take GSSAPI from it, each a private instance beside those of
//! [`servers`](crate::servers), with every file under [`STATE_DIR`] (never under the main
//! state directory, which `servers up` wipes):
//!
//! - an MIT KDC (`krb5kdc`) for the realm [`REALM`] on `127.0.0.1:12088` (TCP and UDP),
//!   its database made with `kdb5_util` and filled with `kadmin.local`: `alice` (password
//!   [`ALICE_PASSWORD`], also in `keytabs/alice.keytab` for `kinit -k`), `smtp/localhost`
//!   and `imap/localhost` (random keys, in one keytab per server);
//! - Postfix with Cyrus SASL GSSAPI on `127.0.0.1:12530` (relaying only for an
//!   authenticated client; every `*@example.test` is delivered to `maildir/sink/new/`);
//! - Dovecot IMAP with GSSAPI on `127.0.0.1:12144`.
//!
//! Nothing reads `/etc/krb5.conf`: the KDC tools, both servers and the tests get the
//! realm's profile through `KRB5_CONFIG=STATE_DIR/krb5.conf` (the servers through their
//! `import_environment`). `servers up` and `servers down` start and stop these too. The
//! configuration templates live in `xtask/servers/krb/`; `tests/src/krb.rs` holds the same
//! names for the tests.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::servers::{
    chmod, ensure_packages, feed, kill, lookup_ids, mkdir, output_ok, pid_alive, read_pid,
    require_root, set_owner, start_daemon, start_dovecot_instance, start_postfix_instance,
    stop_dovecot_instance, stop_postfix_instance, tail, wait_exit, write,
};

/// Where the realm and its servers keep their state. `tests/src/krb.rs` holds the same
/// path.
pub const STATE_DIR: &str = "/var/tmp/smtp-auth-it-krb";

/// The realm.
pub const REALM: &str = "SMTP-AUTH.TEST";

/// alice's Kerberos password (a throwaway on a loopback-only KDC).
pub const ALICE_PASSWORD: &str = "Alice-Krb-Secret-1";

/// The KDC's port on 127.0.0.1, TCP and UDP.
const KDC_PORT: u16 = 12088;

/// Postfix with Cyrus SASL GSSAPI.
const SMTP_ADDR: &str = "127.0.0.1:12530";

/// Dovecot IMAP with GSSAPI.
const IMAP_ADDR: &str = "127.0.0.1:12144";

/// The database's master key: it only protects a stash file in the state directory.
const MASTER_KEY: &str = "smtp-auth-it-krb-master";

/// The Debian packages the realm and its servers need: the KDC (`krb5kdc`, `kdb5_util`),
/// `kadmin.local`, the client tools (`kinit`, `kvno`, which the tests use), Cyrus's and
/// Dovecot's GSSAPI modules, and the servers themselves.
const PACKAGES: &[&str] = &[
    "krb5-kdc",
    "krb5-admin-server",
    "krb5-user",
    "libsasl2-modules-gssapi-mit",
    "dovecot-gssapi",
    "postfix",
    "dovecot-core",
    "dovecot-imapd",
];

/// The uid/gid owning the delivered mail and the IMAP mailboxes (as for the main servers).
const MAIL_UID: u32 = 5000;

const KRB5_CONF: &str = include_str!("../servers/krb/krb5.conf");
const KDC_CONF: &str = include_str!("../servers/krb/kdc.conf");
const MAIN_CF: &str = include_str!("../servers/krb/main.cf");
const MASTER_CF: &str = include_str!("../servers/krb/master.cf");
const CYRUS_SMTPD_CONF: &str = include_str!("../servers/krb/smtpd.conf");
const DOVECOT_CONF: &str = include_str!("../servers/krb/dovecot.conf");

/// Runs `cargo xtask servers krb-up|krb-down`.
pub fn run(command: &str) -> Result<(), String> {
    match command {
        "krb-up" => up(),
        "krb-down" => down(),
        _ => Err(format!("unknown command {command:?}")),
    }
}

fn state(rel: &str) -> PathBuf {
    Path::new(STATE_DIR).join(rel)
}

fn subst(template: &str) -> String {
    template
        .replace("@STATE@", STATE_DIR)
        .replace("@REALM@", REALM)
        .replace("@KDC_PORT@", &KDC_PORT.to_string())
        .replace("@SMTP_PORT@", port(SMTP_ADDR))
        .replace("@IMAP_PORT@", port(IMAP_ADDR))
}

fn port(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(_, p)| p)
}

/// A command of the KDC's tools, with the realm's profiles.
fn krb_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("KRB5_CONFIG", state("krb5.conf"))
        .env("KRB5_KDC_PROFILE", state("kdc.conf"));
    cmd
}

/// Installs what is missing, rebuilds [`STATE_DIR`], creates the realm, starts the KDC and
/// both servers, and waits until each answers and a service ticket can be had.
pub fn up() -> Result<(), String> {
    let started = Instant::now();
    require_root()?;
    ensure_packages(PACKAGES)?;
    down()?;
    let root = Path::new(STATE_DIR);
    if root.exists() {
        fs::remove_dir_all(root).map_err(|e| format!("remove {STATE_DIR}: {e}"))?;
    }
    let postfix = lookup_ids("postfix")?;
    let dovecot_gid = lookup_ids("dovecot")?.1;
    for dir in [
        "",
        "log",
        "kdc",
        "keytabs",
        "postfix",
        "postfix/sasl",
        "postfix-queue",
        "dovecot",
    ] {
        mkdir(&state(dir), 0o755)?;
    }
    chmod(&state("kdc"), 0o700)?;
    mkdir(&state("postfix-data"), 0o700)?;
    set_owner(&state("postfix-data"), postfix.0, postfix.1)?;
    for dir in [
        "maildir",
        "maildir/sink",
        "maildir/sink/new",
        "maildir/sink/cur",
        "maildir/sink/tmp",
        "imap",
    ] {
        mkdir(&state(dir), 0o755)?;
        set_owner(&state(dir), MAIL_UID, MAIL_UID)?;
    }
    write(&state("krb5.conf"), subst(KRB5_CONF).as_bytes())?;
    write(&state("kdc.conf"), subst(KDC_CONF).as_bytes())?;
    write(&state("kdc/kadm5.acl"), b"")?;

    let step = Instant::now();
    make_realm(postfix.1, dovecot_gid)?;
    start_kdc()?;
    eprintln!(
        "realm made and KDC listening in {:.2} s",
        step.elapsed().as_secs_f64()
    );

    write(&state("postfix/main.cf"), subst(MAIN_CF).as_bytes())?;
    write(&state("postfix/master.cf"), subst(MASTER_CF).as_bytes())?;
    // Debian's Postfix reads Cyrus's smtpd.conf from $config_directory/sasl.
    write(
        &state("postfix/sasl/smtpd.conf"),
        subst(CYRUS_SMTPD_CONF).as_bytes(),
    )?;
    write(
        &state("dovecot/dovecot.conf"),
        subst(DOVECOT_CONF).as_bytes(),
    )?;
    // Dovecot's passdb: the user exists, the password is never checked (GSSAPI only).
    write(
        &state("dovecot/users"),
        b"alice:{PLAIN}unused-with-gssapi::::::\n",
    )?;
    set_owner(&state("dovecot/users"), 0, dovecot_gid)?;
    chmod(&state("dovecot/users"), 0o640)?;

    start_postfix_instance(
        &state("postfix"),
        &state("log/postfix-start.out"),
        &state("log/postfix.log"),
    )?;
    start_dovecot_instance(
        &state("dovecot/dovecot.conf"),
        &state("log/dovecot-start.out"),
        &state("log/dovecot.log"),
    )?;
    wait_greeting(SMTP_ADDR, "220 ", &state("log/postfix.log"))?;
    wait_greeting(IMAP_ADDR, "* OK", &state("log/dovecot.log"))?;
    check_tickets()?;
    eprintln!(
        "Kerberos realm {REALM} up in {:.1} s: KDC 127.0.0.1:{KDC_PORT}, Postfix+Cyrus GSSAPI \
         {SMTP_ADDR}, Dovecot IMAP GSSAPI {IMAP_ADDR}; KRB5_CONFIG={STATE_DIR}/krb5.conf, \
         alice's keytab {STATE_DIR}/keytabs/alice.keytab",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Stops both servers and the KDC by their pid files. Not running is not an error.
pub fn down() -> Result<(), String> {
    // In parallel: Dovecot alone takes seconds to shut down.
    let (postfix, dovecot) = std::thread::scope(|s| {
        let dovecot = s.spawn(|| {
            stop_dovecot_instance(
                &state("dovecot/dovecot.conf"),
                &state("dovecot/run/master.pid"),
            )
        });
        let postfix =
            stop_postfix_instance(&state("postfix"), &state("postfix-queue/pid/master.pid"));
        (
            postfix,
            dovecot
                .join()
                .unwrap_or_else(|_| Err("stopping the Kerberos Dovecot panicked".into())),
        )
    });
    let kdc = match read_pid(&state("kdc.pid")).filter(|&p| pid_alive(p, "krb5kdc")) {
        Some(pid) => kill(pid).and_then(|()| wait_exit(pid, "krb5kdc", "krb5kdc")),
        None => Ok(()),
    };
    postfix.and(dovecot).and(kdc)
}

/// Prints the realm's processes and whether each listener greets.
pub fn status() {
    let kdc = read_pid(&state("kdc.pid")).filter(|&p| pid_alive(p, "krb5kdc"));
    println!(
        "Kerberos realm {REALM} ({STATE_DIR}): krb5kdc {}",
        kdc.map_or_else(|| "not running".to_owned(), |p| format!("pid {p}"))
    );
    for (name, addr, expected) in [
        ("krb-postfix", SMTP_ADDR, "220 "),
        ("krb-imap", IMAP_ADDR, "* OK"),
    ] {
        let state = match wait_greeting_once(addr, expected) {
            Ok(()) => "up".to_owned(),
            Err(e) => format!("DOWN: {e}"),
        };
        println!("{name:<18} {addr:<18} GSSAPI    {state}");
    }
}

/// The database, the principals and the keytabs: `smtp.keytab` readable by Postfix's
/// group, `imap.keytab` by Dovecot's, `alice.keytab` by anyone (the tests' `kinit -k`).
fn make_realm(postfix_gid: u32, dovecot_gid: u32) -> Result<(), String> {
    output_ok(krb_command("kdb5_util").args(["create", "-s", "-P", MASTER_KEY, "-r", REALM]))?;
    let keytab = |name: &str| state(&format!("keytabs/{name}.keytab"));
    // One kadmin.local for every request, read from its standard input.
    let requests = format!(
        "addprinc -pw {ALICE_PASSWORD} alice\n\
         addprinc -randkey smtp/localhost\n\
         addprinc -randkey imap/localhost\n\
         ktadd -k {} smtp/localhost\n\
         ktadd -k {} imap/localhost\n\
         ktadd -norandkey -k {} alice\n",
        keytab("smtp").display(),
        keytab("imap").display(),
        keytab("alice").display(),
    );
    feed(
        krb_command("kadmin.local").args(["-r", REALM]),
        requests.as_bytes(),
    )?;
    for (name, gid, mode) in [
        ("smtp", postfix_gid, 0o640),
        ("imap", dovecot_gid, 0o640),
        ("alice", 0, 0o644),
    ] {
        let path = keytab(name);
        if !path.exists() {
            return Err(format!("kadmin.local wrote no {}", path.display()));
        }
        set_owner(&path, 0, gid)?;
        chmod(&path, mode)?;
    }
    Ok(())
}

/// Starts `krb5kdc` (it forks and writes its pid file) and waits for its TCP listener.
fn start_kdc() -> Result<(), String> {
    let mut cmd = krb_command("krb5kdc");
    cmd.arg("-P").arg(state("kdc.pid"));
    start_daemon(&mut cmd, &state("log/kdc-start.out"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], KDC_PORT));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "krb5kdc not listening on {addr} after 10 s\n--- kdc.log ---\n{}",
                tail(&state("log/kdc.log"), 20)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether the listener's first octets are `expected`, in one attempt.
fn wait_greeting_once(addr: &str, expected: &str) -> Result<(), String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; expected.len()];
    stream
        .read_exact(&mut buf)
        .map_err(|e| format!("read: {e}"))?;
    if buf == expected.as_bytes() {
        Ok(())
    } else {
        Err(format!(
            "greeting starts {:?}",
            String::from_utf8_lossy(&buf)
        ))
    }
}

/// Waits until the listener's first octets are `expected`.
fn wait_greeting(addr: &str, expected: &str, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match wait_greeting_once(addr, expected) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!(
                    "{addr} not ready after 15 s: {e}\n--- {} ---\n{}",
                    log.display(),
                    tail(log, 20)
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The realm works end to end: alice gets a ticket from her keytab and service tickets for
/// both servers, in a throwaway cache.
fn check_tickets() -> Result<(), String> {
    let cache = format!("FILE:{}", state("check.ccache").display());
    output_ok(
        krb_command("kinit")
            .env("KRB5CCNAME", &cache)
            .args(["-k", "-t"])
            .arg(state("keytabs/alice.keytab"))
            .arg(format!("alice@{REALM}")),
    )?;
    let kvno = output_ok(
        krb_command("kvno")
            .env("KRB5CCNAME", &cache)
            .args(["smtp/localhost", "imap/localhost"]),
    );
    let _ = fs::remove_file(state("check.ccache"));
    kvno.map(drop)
        .map_err(|e| format!("{e}\n--- kdc.log ---\n{}", tail(&state("log/kdc.log"), 20)))
}
