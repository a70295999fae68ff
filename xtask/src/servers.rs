//! `cargo xtask servers up|down|status`: real Postfix + Dovecot + Cyrus SASL on loopback.
//!
//! `up` installs the Debian packages when they are missing (as root), then builds a
//! private state directory ([`STATE_DIR`]) holding a CA and server certificate, a
//! private Postfix instance (`postfix -c DIR`), a private Dovecot (`dovecot -c FILE`)
//! and a Cyrus sasldb, starts both servers and waits until every listener answers.
//! `/etc/postfix` and `/etc/dovecot` are left untouched. `down` stops both by their
//! pid files, never by process name. The configuration templates live in
//! `xtask/servers/`; `docs/testing.md` describes the layout and what each listener proves.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cmd::describe;

/// Where everything lives. Postfix's `maillog_file` must start with `/var`.
/// `tests/src/lib.rs` holds the same path.
pub const STATE_DIR: &str = "/var/tmp/smtp-auth-it";

/// Debian packages `up` needs.
const PACKAGES: &[&str] = &[
    "postfix",
    "dovecot-core",
    "dovecot-imapd",
    "dovecot-pop3d",
    "dovecot-managesieved",
    "sasl2-bin",
    "libsasl2-modules",
    "openssl",
];

/// The uid/gid that owns delivered mail (Postfix virtual agent) and IMAP mailboxes.
const MAIL_UID: u32 = 5000;

/// Test users: (login, password), the same in Dovecot's passwd-file and Cyrus's sasldb.
/// `tests/src/lib.rs` holds the same list.
const USERS: &[(&str, &str)] = &[
    ("alice", "Alice-Secret-1"),
    ("bob", "correct horse battery staple"),
    ("carol", "pässwörd-✓"),
];

/// The Cyrus sasldb realm; Postfix's `smtpd_sasl_local_domain` on the Cyrus listeners.
const REALM: &str = "example.test";

const MAIN_CF: &str = include_str!("../servers/main.cf");
const MASTER_CF: &str = include_str!("../servers/master.cf");
const DOVECOT_CONF: &str = include_str!("../servers/dovecot.conf");
const CYRUS_SMTPD_CONF: &str = include_str!("../servers/smtpd.conf");
const RECIPIENT_ACCESS: &str = include_str!("../servers/recipient_access");

/// The optional IPv6 twin of the Dovecot plaintext listener, added when `[::1]` works.
const V6_LISTENER: &str = "[::1]:12525 inet n - n - - smtpd
  -o syslog_name=postfix/dovecot-plain-v6
  -o smtpd_tls_security_level=may
  -o smtpd_tls_auth_only=no";

/// How a listener starts talking.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// Plain text first; STARTTLS offered, AUTH allowed without it.
    StartTlsOffered,
    /// Plain text first; STARTTLS required before AUTH or MAIL.
    StartTlsRequired,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

/// Which protocol greets on a listener.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Smtp,
    Imap,
    Pop3,
    ManageSieve,
}

/// One listening socket `up` waits for and `status` reports.
struct Listener {
    name: &'static str,
    addr: &'static str,
    proto: Proto,
    tls: TlsMode,
    backend: &'static str,
}

const LISTENERS: &[Listener] = &[
    Listener {
        name: "dovecot-plain",
        addr: "127.0.0.1:12525",
        proto: Proto::Smtp,
        tls: TlsMode::StartTlsOffered,
        backend: "Dovecot SASL",
    },
    Listener {
        name: "dovecot-starttls",
        addr: "127.0.0.1:12587",
        proto: Proto::Smtp,
        tls: TlsMode::StartTlsRequired,
        backend: "Dovecot SASL",
    },
    Listener {
        name: "dovecot-tls",
        addr: "127.0.0.1:12465",
        proto: Proto::Smtp,
        tls: TlsMode::Implicit,
        backend: "Dovecot SASL",
    },
    Listener {
        name: "recipient-limit",
        addr: "127.0.0.1:12527",
        proto: Proto::Smtp,
        tls: TlsMode::StartTlsOffered,
        backend: "10 recipients per transaction",
    },
    Listener {
        name: "dovecot-plain-v6",
        addr: "[::1]:12525",
        proto: Proto::Smtp,
        tls: TlsMode::StartTlsOffered,
        backend: "Dovecot SASL",
    },
    Listener {
        name: "cyrus-plain",
        addr: "127.0.0.1:12526",
        proto: Proto::Smtp,
        tls: TlsMode::StartTlsOffered,
        backend: "Cyrus SASL (sasldb)",
    },
    Listener {
        name: "cyrus-starttls",
        addr: "127.0.0.1:12588",
        proto: Proto::Smtp,
        tls: TlsMode::StartTlsRequired,
        backend: "Cyrus SASL (sasldb)",
    },
    Listener {
        name: "cyrus-tls",
        addr: "127.0.0.1:12466",
        proto: Proto::Smtp,
        tls: TlsMode::Implicit,
        backend: "Cyrus SASL (sasldb)",
    },
    Listener {
        name: "xclient",
        addr: "127.0.0.1:12528",
        proto: Proto::Smtp,
        tls: TlsMode::StartTlsOffered,
        backend: "Dovecot SASL",
    },
    Listener {
        name: "imap",
        addr: "127.0.0.1:12143",
        proto: Proto::Imap,
        tls: TlsMode::StartTlsOffered,
        backend: "Dovecot",
    },
    Listener {
        name: "pop3",
        addr: "127.0.0.1:12110",
        proto: Proto::Pop3,
        tls: TlsMode::StartTlsOffered,
        backend: "Dovecot",
    },
    Listener {
        name: "managesieve",
        addr: "127.0.0.1:14190",
        proto: Proto::ManageSieve,
        tls: TlsMode::StartTlsOffered,
        backend: "Dovecot",
    },
];

/// Runs `cargo xtask servers` with the arguments after the command name.
pub fn run(args: &[String]) -> Result<(), String> {
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["up"] => up(),
        ["down"] => down(),
        ["status"] => status(),
        ["proxies-up"] => crate::servers_proxies::up(),
        ["proxies-down"] => crate::servers_proxies::down(),
        [more @ ("more-up" | "more-down")] => crate::servers_more::run(more),
        [krb @ ("krb-up" | "krb-down")] => crate::servers_krb::run(krb),
        _ => Err(format!(
            "usage: cargo xtask servers up|down|status|proxies-up|proxies-down|more-up|more-down|krb-up|krb-down (got {args:?})"
        )),
    }
}

/// The paths inside the state directory.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn new() -> Self {
        Layout {
            root: PathBuf::from(STATE_DIR),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn postfix_conf(&self) -> PathBuf {
        self.path("postfix")
    }
    fn postfix_pid(&self) -> PathBuf {
        self.path("postfix-queue/pid/master.pid")
    }
    fn dovecot_conf(&self) -> PathBuf {
        self.path("dovecot/dovecot.conf")
    }
    fn dovecot_pid(&self) -> PathBuf {
        self.path("dovecot/run/master.pid")
    }
    fn ipv6_marker(&self) -> PathBuf {
        self.path("ipv6-up")
    }
}

/// Installs what is missing, (re)builds the state directory, starts both servers and
/// waits until every listener answers.
pub fn up() -> Result<(), String> {
    let started = Instant::now();
    require_root()?;
    ensure_packages(PACKAGES)?;
    let installed = started.elapsed();
    let layout = Layout::new();
    stop_all(&layout)?;
    let ipv6 = ipv6_loopback_works();
    let step = Instant::now();
    prepare(&layout, ipv6)?;
    eprintln!("state dir ready in {:.2} s", step.elapsed().as_secs_f64());
    let step = Instant::now();
    start_postfix(&layout)?;
    eprintln!("postfix started in {:.2} s", step.elapsed().as_secs_f64());
    let step = Instant::now();
    start_dovecot(&layout)?;
    eprintln!("dovecot started in {:.2} s", step.elapsed().as_secs_f64());
    let step = Instant::now();
    wait_ready(&layout, ipv6)?;
    eprintln!("listeners ready in {:.2} s", step.elapsed().as_secs_f64());
    if ipv6 {
        write(&layout.ipv6_marker(), b"[::1]:12525\n")?;
    }
    eprintln!(
        "servers up in {:.1} s ({:.1} s for packages); state in {STATE_DIR}",
        started.elapsed().as_secs_f64(),
        installed.as_secs_f64()
    );
    print_table(&layout);
    crate::servers_proxies::up()?;
    crate::servers_more::up()?;
    crate::servers_krb::up()
}

/// Stops Postfix and Dovecot by their pid files. Not running is not an error.
pub fn down() -> Result<(), String> {
    let layout = Layout::new();
    stop_all(&layout)?;
    crate::servers_proxies::down()?;
    crate::servers_more::down()?;
    crate::servers_krb::down()?;
    eprintln!("servers down");
    Ok(())
}

/// Prints what is running and which listener answers.
fn status() -> Result<(), String> {
    let layout = Layout::new();
    let postfix = read_pid(&layout.postfix_pid()).filter(|&p| pid_alive(p, "master"));
    let dovecot = read_pid(&layout.dovecot_pid()).filter(|&p| pid_alive(p, "dovecot"));
    println!("state dir: {STATE_DIR}");
    println!("postfix master: {}", pid_text(postfix));
    println!("dovecot master: {}", pid_text(dovecot));
    print_table(&layout);
    crate::servers_krb::status();
    if postfix.is_none() || dovecot.is_none() {
        println!("(start them with: cargo xtask servers up)");
    }
    Ok(())
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "not running".to_string(), |p| format!("pid {p}"))
}

fn print_table(layout: &Layout) {
    let ipv6 = layout.ipv6_marker().exists();
    println!(
        "{:<18} {:<18} {:<9} {:<20} state",
        "listener", "address", "tls", "sasl"
    );
    for l in LISTENERS {
        let state = if l.addr.starts_with('[') && !ipv6 {
            "skipped (no IPv6 loopback)".to_string()
        } else {
            match banner(l, Duration::from_secs(2)) {
                Ok(line) => format!("up: {line}"),
                Err(e) => format!("DOWN: {e}"),
            }
        };
        let tls = match l.tls {
            TlsMode::StartTlsOffered => "starttls?",
            TlsMode::StartTlsRequired => "starttls!",
            TlsMode::Implicit => "implicit",
        };
        println!(
            "{:<18} {:<18} {:<9} {:<20} {state}",
            l.name, l.addr, tls, l.backend
        );
    }
    println!(
        "CA certificate: {STATE_DIR}/tls/ca.pem; delivered mail: {STATE_DIR}/maildir/sink/new/"
    );
}

pub(crate) fn require_root() -> Result<(), String> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .unwrap_or("");
    if uid == "0" {
        Ok(())
    } else {
        Err("must run as root: it installs packages and starts Postfix and Dovecot".into())
    }
}

// ---------------------------------------------------------------------------------------
// Packages

/// Those of `packages` that dpkg does not report installed.
pub(crate) fn missing_packages(packages: &[&'static str]) -> Vec<&'static str> {
    packages
        .iter()
        .copied()
        .filter(|p| {
            Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .stderr(Stdio::null())
                .output()
                .map(|o| !String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect()
}

/// Installs those of `packages` that are missing (as root), without a prompt and without
/// letting the maintainer scripts start the stock daemons.
pub(crate) fn ensure_packages(packages: &[&'static str]) -> Result<(), String> {
    let missing = missing_packages(packages);
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {}", missing.join(" "));
    // "No configuration": the package must not prompt nor write /etc/postfix/main.cf.
    let mut debconf = Command::new("debconf-set-selections");
    feed(
        &mut debconf,
        b"postfix postfix/main_mailer_type select No configuration\n",
    )?;
    // Without systemd the maintainer scripts would start the stock daemons (dovecot on
    // port 143 on every interface): forbid that unless the machine already has a policy.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        write(policy, b"#!/bin/sh\nexit 101\n")?;
        fs::set_permissions(policy, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", policy.display()))?;
    }
    let result = apt_install(&missing);
    if own_policy {
        let _ = fs::remove_file(policy);
    }
    result
}

pub(crate) fn apt_install(packages: &[&str]) -> Result<(), String> {
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        output_ok(&mut cmd)
    };
    let update = || {
        output_ok(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null()),
        )
    };
    if !apt_lists_present() {
        update()?;
        return install().map(drop);
    }
    // Lists present but maybe stale (a removed version): update once and retry.
    if install().is_err() {
        update()?;
        install()?;
    }
    Ok(())
}

fn apt_lists_present() -> bool {
    fs::read_dir("/var/lib/apt/lists")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// State directory

fn prepare(layout: &Layout, ipv6: bool) -> Result<(), String> {
    let root = &layout.root;
    if root.exists() {
        fs::remove_dir_all(root).map_err(|e| format!("remove {}: {e}", root.display()))?;
    }
    let postfix = lookup_ids("postfix")?;
    let dovecot_gid = lookup_ids("dovecot")?.1;
    for dir in [
        "",
        "tls",
        "log",
        "postfix",
        "postfix/sasl",
        "postfix-queue",
        "cyrus",
        "dovecot",
    ] {
        mkdir(&layout.path(dir), 0o755)?;
    }
    mkdir(&layout.path("postfix-data"), 0o700)?;
    set_owner(&layout.path("postfix-data"), postfix.0, postfix.1)?;
    for dir in [
        "maildir",
        "maildir/sink",
        "maildir/sink/new",
        "maildir/sink/cur",
        "maildir/sink/tmp",
        "imap",
    ] {
        let path = layout.path(dir);
        mkdir(&path, 0o755)?;
        set_owner(&path, MAIL_UID, MAIL_UID)?;
    }

    let subst = |template: &str| {
        template
            .replace("@STATE@", STATE_DIR)
            .replace("@INET_PROTOCOLS@", if ipv6 { "all" } else { "ipv4" })
            .replace("@MYNETWORKS_V6@", if ipv6 { "[::1]/128" } else { "" })
            .replace("@V6_LISTENER@", if ipv6 { V6_LISTENER } else { "" })
    };
    write(&layout.path("postfix/main.cf"), subst(MAIN_CF).as_bytes())?;
    write(
        &layout.path("postfix/master.cf"),
        subst(MASTER_CF).as_bytes(),
    )?;
    write(
        &layout.path("postfix/recipient_access"),
        RECIPIENT_ACCESS.as_bytes(),
    )?;
    // Debian's Postfix reads Cyrus's smtpd.conf from $config_directory/sasl and ignores
    // cyrus_sasl_config_path; main.cf sets that too for builds that honour it.
    write(
        &layout.path("postfix/sasl/smtpd.conf"),
        subst(CYRUS_SMTPD_CONF).as_bytes(),
    )?;
    write(&layout.dovecot_conf(), subst(DOVECOT_CONF).as_bytes())?;

    make_tls(layout, postfix.1)?;
    make_users(layout, postfix.1, dovecot_gid)?;
    Ok(())
}

/// A private CA and a server certificate for localhost, 127.0.0.1 and ::1 (ECDSA P-256).
fn make_tls(layout: &Layout, postfix_gid: u32) -> Result<(), String> {
    let dir = layout.path("tls");
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    output_ok(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
        "-days",
        "3650",
        "-subj",
        "/CN=smtp-auth-rs interop test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]))?;
    output_ok(Command::new("openssl").args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
        "-subj",
        "/CN=localhost",
    ]))?;
    write(
        &dir.join("server.ext"),
        b"subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n\
          basicConstraints=critical,CA:FALSE\n\
          keyUsage=critical,digitalSignature\n\
          extendedKeyUsage=serverAuth\n",
    )?;
    output_ok(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-set_serial",
        "2",
        "-days",
        "3650",
        "-extfile",
        &p("server.ext"),
        "-out",
        &p("server.pem"),
    ]))?;
    // Postfix's smtpd reads the key after dropping to the postfix user.
    let key = dir.join("server.key");
    set_owner(&key, 0, postfix_gid)?;
    chmod(&key, 0o640)?;
    chmod(&dir.join("ca.key"), 0o600)?;
    Ok(())
}

/// The same users in Dovecot's passwd-file and in Cyrus's sasldb (realm example.test).
fn make_users(layout: &Layout, postfix_gid: u32, dovecot_gid: u32) -> Result<(), String> {
    let sasldb = layout.path("cyrus/sasldb2");
    let mut passwd = String::new();
    for (user, password) in USERS {
        // Fields are split on ':', so the password goes in base64 to allow any byte.
        let _ = writeln!(
            passwd,
            "{user}:{{PLAIN.b64}}{}::::::",
            base64(password.as_bytes())
        );
        let mut cmd = Command::new("saslpasswd2");
        cmd.args(["-p", "-c", "-f"])
            .arg(&sasldb)
            .args(["-u", REALM, user]);
        feed(&mut cmd, password.as_bytes())?;
    }
    let users = layout.path("dovecot/users");
    write(&users, passwd.as_bytes())?;
    set_owner(&users, 0, dovecot_gid)?;
    chmod(&users, 0o640)?;
    // smtpd (user postfix) opens the sasldb itself.
    set_owner(&sasldb, 0, postfix_gid)?;
    chmod(&sasldb, 0o640)?;
    Ok(())
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn ipv6_loopback_works() -> bool {
    // The listener must stay open while the connection is made.
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        return false;
    };
    listener
        .local_addr()
        .and_then(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)))
        .is_ok()
}

// ---------------------------------------------------------------------------------------
// Start and stop

fn start_postfix(layout: &Layout) -> Result<(), String> {
    start_postfix_instance(
        &layout.postfix_conf(),
        &layout.path("log/postfix-start.out"),
        &layout.path("log/postfix.log"),
    )
}

/// Starts the private Postfix instance configured in `conf`; `out` gets what the start
/// command prints, `log` is its `maillog_file` (its tail goes into the error).
pub(crate) fn start_postfix_instance(conf: &Path, out: &Path, log: &Path) -> Result<(), String> {
    // `postfix` prints its errors only to a terminal: without one a failing start is
    // silent with exit 1. `script` gives it a pseudo-terminal so the error is captured.
    let line = format!("postfix -c {} start", conf.display());
    let mut cmd = if which("script") {
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        c
    } else {
        let mut c = Command::new("postfix");
        c.arg("-c").arg(conf).arg("start");
        c
    };
    start_daemon(&mut cmd, out)
        .map_err(|e| format!("{e}\n--- tail of {} ---\n{}", log.display(), tail(log, 20)))
}

fn start_dovecot(layout: &Layout) -> Result<(), String> {
    start_dovecot_instance(
        &layout.dovecot_conf(),
        &layout.path("log/dovecot-start.out"),
        &layout.path("log/dovecot.log"),
    )
}

/// Starts the private Dovecot instance configured in `conf`; `out` gets what the start
/// command prints, `log` is its `log_path` (its tail goes into the error).
pub(crate) fn start_dovecot_instance(conf: &Path, out: &Path, log: &Path) -> Result<(), String> {
    let mut cmd = Command::new("dovecot");
    cmd.arg("-c").arg(conf);
    start_daemon(&mut cmd, out)
        .map_err(|e| format!("{e}\n--- tail of {} ---\n{}", log.display(), tail(log, 20)))
}

fn stop_all(layout: &Layout) -> Result<(), String> {
    // In parallel: Dovecot alone takes over 2 s to shut down.
    let (postfix, dovecot) = std::thread::scope(|s| {
        let dovecot = s.spawn(|| stop_dovecot(layout));
        let postfix = stop_postfix(layout);
        (
            postfix,
            dovecot
                .join()
                .unwrap_or_else(|_| Err("stopping dovecot panicked".into())),
        )
    });
    let _ = fs::remove_file(layout.ipv6_marker());
    postfix.and(dovecot)
}

fn stop_postfix(layout: &Layout) -> Result<(), String> {
    stop_postfix_instance(&layout.postfix_conf(), &layout.postfix_pid())
}

/// Stops the private Postfix instance configured in `conf` whose master wrote `pid_file`;
/// not running is not an error.
pub(crate) fn stop_postfix_instance(conf: &Path, pid_file: &Path) -> Result<(), String> {
    let Some(pid) = read_pid(pid_file).filter(|&p| pid_alive(p, "master")) else {
        return Ok(());
    };
    let mut cmd = Command::new("postfix");
    cmd.arg("-c").arg(conf).arg("stop").stdin(Stdio::null());
    if let Err(e) = output_ok(&mut cmd) {
        eprintln!("warning: {e}; sending SIGTERM to postfix master pid {pid}");
        kill(pid)?;
    }
    wait_exit(pid, "master", "postfix master")
}

fn stop_dovecot(layout: &Layout) -> Result<(), String> {
    stop_dovecot_instance(&layout.dovecot_conf(), &layout.dovecot_pid())
}

/// Stops the private Dovecot instance configured in `conf` whose master wrote `pid_file`;
/// not running is not an error.
pub(crate) fn stop_dovecot_instance(conf: &Path, pid_file: &Path) -> Result<(), String> {
    let Some(pid) = read_pid(pid_file).filter(|&p| pid_alive(p, "dovecot")) else {
        return Ok(());
    };
    let mut cmd = Command::new("doveadm");
    cmd.arg("-c").arg(conf).arg("stop").stdin(Stdio::null());
    if let Err(e) = output_ok(&mut cmd) {
        eprintln!("warning: {e}; sending SIGTERM to dovecot master pid {pid}");
        kill(pid)?;
    }
    wait_exit(pid, "dovecot", "dovecot master")
}

pub(crate) fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` runs a program named `comm` (guards against a reused pid).
pub(crate) fn pid_alive(pid: u32, comm: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
}

pub(crate) fn kill(pid: u32) -> Result<(), String> {
    output_ok(Command::new("kill").arg("-TERM").arg(pid.to_string())).map(drop)
}

pub(crate) fn wait_exit(pid: u32, comm: &str, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid, comm) {
        if Instant::now() > deadline {
            return Err(format!("{what} (pid {pid}) still running after 10 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Readiness

fn wait_ready(layout: &Layout, ipv6: bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let ca = layout.path("tls/ca.pem");
    for l in LISTENERS {
        if l.addr.starts_with('[') && !ipv6 {
            continue;
        }
        loop {
            let attempt = if l.tls == TlsMode::Implicit {
                tls_check(l, &ca)
            } else {
                banner(l, Duration::from_secs(2)).map(drop)
            };
            match attempt {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!(
                        "listener {} ({}) not ready after 15 s: {e}\n--- postfix.log ---\n{}\n--- dovecot.log ---\n{}",
                        l.name,
                        l.addr,
                        tail(&layout.path("log/postfix.log"), 15),
                        tail(&layout.path("log/dovecot.log"), 15)
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        // The certificate must verify against our CA on every TLS path.
        if l.tls == TlsMode::StartTlsRequired
            || (l.proto != Proto::Smtp && l.tls == TlsMode::StartTlsOffered)
        {
            tls_check(l, &ca).map_err(|e| format!("listener {} ({}): {e}", l.name, l.addr))?;
        }
    }
    let auth = layout.path("postfix-queue/private/auth");
    if !auth.exists() {
        return Err(format!(
            "Dovecot's SASL socket {} is missing",
            auth.display()
        ));
    }
    Ok(())
}

/// Connects and reads the greeting line ("220 ..." or "* OK ...").
fn banner(l: &Listener, timeout: Duration) -> Result<String, String> {
    let addr: SocketAddr = l.addr.parse().map_err(|e| format!("{}: {e}", l.addr))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    if l.tls == TlsMode::Implicit {
        return Ok("TCP accepts (TLS from the first byte)".into());
    }
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") && line.len() < 512 {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(format!("read greeting: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&line).trim_end().to_string();
    let expected = match l.proto {
        Proto::Smtp => "220 ",
        Proto::Imap => "* OK",
        Proto::Pop3 => "+OK",
        // The greeting is a list of capabilities, the implementation's first.
        Proto::ManageSieve => "\"IMPLEMENTATION\"",
    };
    let _ = stream.write_all(match l.proto {
        Proto::Smtp => b"QUIT\r\n",
        Proto::Imap => b"a LOGOUT\r\n",
        Proto::Pop3 => b"QUIT\r\n",
        Proto::ManageSieve => b"LOGOUT\r\n",
    });
    if text.starts_with(expected) {
        Ok(text)
    } else {
        Err(format!("unexpected greeting {text:?}"))
    }
}

/// A TLS handshake with `openssl s_client` that must verify the server certificate
/// against our CA for the name `localhost`.
fn tls_check(l: &Listener, ca: &Path) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-brief", "-connect", l.addr])
        .arg("-CAfile")
        .arg(ca)
        .args(["-verify_return_error", "-verify_hostname", "localhost"]);
    match (l.tls, l.proto) {
        (TlsMode::Implicit, _) => {}
        (_, Proto::Smtp) => {
            cmd.args(["-starttls", "smtp"]);
        }
        (_, Proto::Imap) => {
            cmd.args(["-starttls", "imap"]);
        }
        (_, Proto::Pop3) => {
            cmd.args(["-starttls", "pop3"]);
        }
        (_, Proto::ManageSieve) => {
            cmd.args(["-starttls", "sieve"]);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let ok = line.starts_with("Verification: OK");
            seen.push_str(&line);
            seen.push('\n');
            if ok {
                let _ = tx.send(Ok(()));
                return;
            }
        }
        let _ = tx.send(Err(seen));
    });
    let result = match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(output)) => Err(format!("TLS check failed: {}", output.trim())),
        Err(_) => Err("TLS check timed out after 5 s".to_string()),
    };
    // Closing stdin ends s_client; kill it if it lingers.
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    result
}

// ---------------------------------------------------------------------------------------
// Small helpers

/// Runs `cmd` and captures its output; a failure carries the command and all it printed.
pub(crate) fn output_ok(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", describe(cmd)))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{} failed ({}):\n{}",
            describe(cmd),
            out.status,
            text.trim_end()
        ))
    }
}

/// Runs a command that forks a daemon. Its output goes to the file `out`, not to pipes:
/// the daemon inherits them and would keep a pipe reader waiting forever.
pub(crate) fn start_daemon(cmd: &mut Command, out: &Path) -> Result<(), String> {
    let file = fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let file2 = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", out.display()))?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(file2);
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({status}):\n{}",
            describe(cmd),
            fs::read_to_string(out).unwrap_or_default().trim_end()
        ))
    }
}

/// Runs `cmd` with `input` on its standard input.
pub(crate) fn feed(cmd: &mut Command, input: &[u8]) -> Result<(), String> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", describe(cmd)))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| format!("{}: write stdin: {e}", describe(cmd)))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", describe(cmd)))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// (uid, gid) of a system user, from `getent passwd`.
pub(crate) fn lookup_ids(user: &str) -> Result<(u32, u32), String> {
    let line = output_ok(Command::new("getent").args(["passwd", user]))?;
    let fields: Vec<&str> = line.trim().split(':').collect();
    match (
        fields.get(2).and_then(|u| u.parse().ok()),
        fields.get(3).and_then(|g| g.parse().ok()),
    ) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err(format!("cannot parse getent passwd {user}: {line:?}")),
    }
}

pub(crate) fn mkdir(path: &Path, mode: u32) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
    chmod(path, mode)
}

pub(crate) fn chmod(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

pub(crate) fn set_owner(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    chown(path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))
}

pub(crate) fn write(path: &Path, contents: &[u8]) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 section 10.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
