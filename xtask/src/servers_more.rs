//! `cargo xtask servers more-up|more-down`: the real servers for the extensions, each a
//! private instance beside those of [`servers`](crate::servers), with its state under
//! [`STATE_DIR`] (never under the main state directory, which `servers up` wipes).
//!
//! - Dovecot LMTP (RFC 2033) on `127.0.0.1:12024` and on the Unix socket
//!   `STATE_DIR/lmtp/lmtp.sock`; Maildirs in `STATE_DIR/lmtp/mail/USER/Maildir`.
//! - Exim 4.96 with PRDR on `127.0.0.1:12529`: Debian's `exim4-daemon-heavy` and the
//!   libraries it needs are fetched with `apt-get download` and unpacked with `dpkg -x`
//!   under `STATE_DIR/exim/root` (no system Exim is installed: it would replace Postfix);
//!   the system user `Debian-exim`, which the binary looks up before reading its
//!   configuration, is created when missing.
//!
//! `servers up` and `servers down` start and stop these too. The configuration templates
//! live in `xtask/servers/more/`; `tests/tests/lmtp_dovecot.rs` uses them.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{
    apt_install, kill, mkdir, output_ok, pid_alive, read_pid, require_root, set_owner,
    start_daemon, tail, wait_exit, write,
};

/// Where the extra instances keep their state. `tests/tests/lmtp_dovecot.rs` holds the
/// same path.
pub const STATE_DIR: &str = "/var/tmp/smtp-auth-it-more";

/// The Debian packages the extra instances need.
const PACKAGES: &[&str] = &["dovecot-lmtpd"];

/// The uid/gid owning the LMTP Maildirs (the same as the main servers' mail).
const MAIL_UID: u32 = 5000;

/// Dovecot's LMTP TCP listener.
const LMTP_ADDR: &str = "127.0.0.1:12024";

/// The LMTP users: (name, userdb extra fields). bob's quota of one byte makes his
/// delivery fail after the data (552 5.2.2), so one message has a per-recipient refusal.
const LMTP_USERS: &[(&str, &str)] = &[
    ("alice", ""),
    ("bob", "userdb_quota_rule=*:storage=1B"),
    ("carol", ""),
];

const LMTP_CONF: &str = include_str!("../servers/more/lmtp-dovecot.conf");
const EXIM_CONF: &str = include_str!("../servers/more/exim.conf");

/// Exim's PRDR listener.
const EXIM_ADDR: &str = "127.0.0.1:12529";

/// The packages unpacked for Exim: the daemon and the libraries it links that a Postfix
/// machine lacks.
const EXIM_DEBS: &[&str] = &["exim4-daemon-heavy", "libspf2-2", "libidn12", "libmariadb3"];

/// The user and group the Exim binary looks up at start.
const EXIM_USER: &str = "Debian-exim";

/// Runs `cargo xtask servers more-up|more-down`.
pub fn run(command: &str) -> Result<(), String> {
    match command {
        "more-up" => up(),
        "more-down" => down(),
        _ => Err(format!("unknown command {command:?}")),
    }
}

fn state(rel: &str) -> PathBuf {
    Path::new(STATE_DIR).join(rel)
}

fn lmtp_conf() -> PathBuf {
    state("lmtp/dovecot.conf")
}

fn lmtp_pid() -> PathBuf {
    state("lmtp/run/master.pid")
}

/// Installs what is missing, rebuilds [`STATE_DIR`], starts every extra instance and
/// waits until each answers.
pub fn up() -> Result<(), String> {
    require_root()?;
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        eprintln!("installing {}", missing.join(" "));
        apt_install(&missing)?;
    }
    down()?;
    let root = Path::new(STATE_DIR);
    if root.exists() {
        fs::remove_dir_all(root).map_err(|e| format!("remove {STATE_DIR}: {e}"))?;
    }
    for dir in ["", "log", "lmtp", "lmtp/run", "lmtp/state"] {
        mkdir(&state(dir), 0o755)?;
    }
    mkdir(&state("lmtp/mail"), 0o755)?;
    set_owner(&state("lmtp/mail"), MAIL_UID, MAIL_UID)?;
    let mut users = String::new();
    for (name, extra) in LMTP_USERS {
        let home = state(&format!("lmtp/mail/{name}"));
        users.push_str(&format!(
            "{name}::{MAIL_UID}:{MAIL_UID}::{}::{extra}\n",
            home.display()
        ));
    }
    write(&state("lmtp/users"), users.as_bytes())?;
    write(
        &lmtp_conf(),
        LMTP_CONF.replace("@STATE@", STATE_DIR).as_bytes(),
    )?;
    let mut cmd = Command::new("dovecot");
    cmd.arg("-c").arg(lmtp_conf());
    start_daemon(&mut cmd, &state("log/lmtp-start.out")).map_err(|e| {
        format!(
            "{e}\n--- lmtp.log ---\n{}",
            tail(&state("log/lmtp.log"), 20)
        )
    })?;
    wait_greeting(LMTP_ADDR, &state("lmtp/lmtp.sock"))?;
    start_exim()?;
    eprintln!("Exim with PRDR up on {EXIM_ADDR}");
    eprintln!(
        "Dovecot LMTP up on {LMTP_ADDR} and {}; Maildirs in {}",
        state("lmtp/lmtp.sock").display(),
        state("lmtp/mail").display()
    );
    Ok(())
}

/// Stops every extra instance by its pid file. Not running is not an error.
pub fn down() -> Result<(), String> {
    if let Some(pid) = read_pid(&state("exim/exim.pid")).filter(|&p| pid_alive(p, "exim4")) {
        kill(pid)?;
        wait_exit(pid, "exim4", "Exim daemon")?;
    }
    let Some(pid) = read_pid(&lmtp_pid()).filter(|&p| pid_alive(p, "dovecot")) else {
        return Ok(());
    };
    let mut cmd = Command::new("doveadm");
    cmd.arg("-c")
        .arg(lmtp_conf())
        .arg("stop")
        .stdin(Stdio::null());
    if let Err(e) = output_ok(&mut cmd) {
        eprintln!("warning: {e}; sending SIGTERM to the LMTP dovecot master pid {pid}");
        kill(pid)?;
    }
    wait_exit(pid, "dovecot", "LMTP dovecot master")
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Waits until the TCP listener sends a 220 greeting and the Unix socket exists.
fn wait_greeting(addr: &str, socket: &Path) -> Result<(), String> {
    use std::io::Read;
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let attempt =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf)?;
                Ok(buf)
            });
        match attempt {
            Ok(buf) if &buf == b"220 " && socket.exists() => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(format!(
                    "LMTP on {addr} not ready after 15 s\n--- lmtp.log ---\n{}",
                    tail(&state("log/lmtp.log"), 20)
                ))
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Unpacks Exim under `STATE_DIR/exim/root`, writes its configuration and starts the daemon.
fn start_exim() -> Result<(), String> {
    for dir in ["exim", "exim/debs", "exim/root"] {
        mkdir(&state(dir), 0o755)?;
    }
    let mut download = Command::new("apt-get");
    download
        .arg("download")
        .args(EXIM_DEBS)
        .current_dir(state("exim/debs"))
        .stdin(Stdio::null());
    output_ok(&mut download)?;
    let debs = fs::read_dir(state("exim/debs")).map_err(|e| format!("exim/debs: {e}"))?;
    for deb in debs.filter_map(Result::ok) {
        let mut unpack = Command::new("dpkg");
        unpack.arg("-x").arg(deb.path()).arg(state("exim/root"));
        output_ok(&mut unpack)?;
    }
    if Command::new("getent")
        .args(["passwd", EXIM_USER])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        output_ok(Command::new("groupadd").args(["--system", EXIM_USER]))?;
        output_ok(Command::new("useradd").args([
            "--system",
            "--gid",
            EXIM_USER,
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            EXIM_USER,
        ]))?;
    }
    for dir in ["exim/spool", "exim/log", "exim/mail"] {
        mkdir(&state(dir), 0o750)?;
        output_ok(Command::new("chown").args([
            &format!("{EXIM_USER}:{EXIM_USER}"),
            &state(dir).display().to_string(),
        ]))?;
    }
    let conf = state("exim/exim.conf");
    write(&conf, EXIM_CONF.replace("@STATE@", STATE_DIR).as_bytes())?;
    let root = state("exim/root");
    let libs = format!(
        "{}:{}",
        root.join("usr/lib/x86_64-linux-gnu").display(),
        root.join("usr/lib").display()
    );
    let mut cmd = Command::new(root.join("usr/sbin/exim4"));
    cmd.env("LD_LIBRARY_PATH", libs)
        .arg("-C")
        .arg(&conf)
        .args(["-bd", "-oX", "12529", "-oP"])
        .arg(state("exim/exim.pid"));
    start_daemon(&mut cmd, &state("log/exim-start.out"))?;
    let addr: SocketAddr = EXIM_ADDR.parse().map_err(|e| format!("{EXIM_ADDR}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "Exim on {EXIM_ADDR} not ready after 15 s\n--- mainlog ---\n{}\n--- paniclog ---\n{}",
                tail(&state("exim/log/mainlog"), 20),
                tail(&state("exim/log/paniclog"), 20)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
