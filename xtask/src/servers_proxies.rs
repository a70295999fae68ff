//! `cargo xtask servers proxies-up|proxies-down`: real proxies on loopback in front of the
//! Postfix listeners, Dante (SOCKS5) and tinyproxy (HTTP CONNECT), each without and with
//! credentials. `servers up` and `servers down` start and stop them too.
//!
//! Private configuration, pid and log files live in [`STATE_DIR`] (apart from the mail
//! servers' directory, which `servers up` wipes); the system services the packages bring
//! are never started (installed under a `policy-rc.d` that exits 101) and each instance is
//! stopped by its pid, never by name. `tests/src/lib.rs` names the same ports and user.
//!
//! | port  | proxy                          | credentials                |
//! |-------|--------------------------------|----------------------------|
//! | 11080 | Dante, SOCKS5                  | none (method 00)           |
//! | 11081 | Dante, SOCKS5                  | username/password (RFC 1929), a system user |
//! | 18888 | tinyproxy, HTTP CONNECT        | none                       |
//! | 18889 | tinyproxy, HTTP CONNECT        | Basic                      |
//!
//! Both let through only the Postfix listeners 12525, 12587 and 12465 on 127.0.0.1 (by
//! address or as `localhost`): any other target is refused, which the tests use.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::chown;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{
    apt_install, chmod, lookup_ids, output_ok, pid_alive, read_pid, require_root, start_daemon,
    write,
};

/// Where the proxies' files live. `tests/src/lib.rs` holds the same path.
pub const STATE_DIR: &str = "/var/tmp/smtp-auth-it-proxies";

/// The proxy user: a system user (no home, no login shell) Dante checks with the system
/// password database, and tinyproxy's Basic credentials. `tests/src/lib.rs` holds the same.
const PROXY_USER: &str = "smtpauthproxy";
const PROXY_PASSWORD: &str = "Proxy-Secret-7";

const DANTE_OPEN: u16 = 11080;
const DANTE_AUTH: u16 = 11081;
const TINYPROXY_OPEN: u16 = 18888;
const TINYPROXY_AUTH: u16 = 18889;

/// The mail listeners the proxies let through.
const MAIL_PORTS: [u16; 3] = [12525, 12587, 12465];

const PACKAGES: &[&str] = &["dante-server", "tinyproxy"];

/// Installs what is missing, writes the configurations and starts the four listeners.
pub fn up() -> Result<(), String> {
    let started = Instant::now();
    require_root().map_err(|_| {
        "servers proxies-up must run as root (it installs packages and adds a user)".to_owned()
    })?;
    ensure_packages()?;
    down()?;
    let dir = Path::new(STATE_DIR);
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("remove {STATE_DIR}: {e}"))?;
    }
    fs::create_dir_all(dir).map_err(|e| format!("mkdir {STATE_DIR}: {e}"))?;
    // tinyproxy drops to nobody before it opens its log: the directory must be readable.
    chmod(dir, 0o755)?;
    ensure_user()?;
    start_dante(dir)?;
    start_tinyproxy(dir, TINYPROXY_OPEN, false)?;
    start_tinyproxy(dir, TINYPROXY_AUTH, true)?;
    for port in [DANTE_OPEN, DANTE_AUTH, TINYPROXY_OPEN, TINYPROXY_AUTH] {
        wait_listening(port, dir)?;
    }
    eprintln!(
        "proxies up in {:.1} s: dante {DANTE_OPEN} (no auth), {DANTE_AUTH} (user/password), \
         tinyproxy {TINYPROXY_OPEN} (no auth), {TINYPROXY_AUTH} (Basic); state in {STATE_DIR}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Stops every instance by its pid file. Not running is not an error.
pub fn down() -> Result<(), String> {
    let dir = Path::new(STATE_DIR);
    for (pid_file, comm) in [
        ("danted.pid", "danted"),
        ("tinyproxy-18888.pid", "tinyproxy"),
        ("tinyproxy-18889.pid", "tinyproxy"),
    ] {
        let path = dir.join(pid_file);
        let Some(pid) = read_pid(&path) else { continue };
        if pid_alive(pid, comm) {
            output_ok(Command::new("kill").arg("-TERM").arg(pid.to_string()))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while pid_alive(pid, comm) {
                if Instant::now() > deadline {
                    return Err(format!("{comm} (pid {pid}) still running after 10 s"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = fs::remove_file(&path);
    }
    Ok(())
}

fn ensure_packages() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
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
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {}", missing.join(" "));
    // The packages' scripts would start the stock daemons on 1080 and 8888: forbid that.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let saved = fs::read(policy).ok();
    write(policy, b"#!/bin/sh\nexit 101\n")?;
    chmod(policy, 0o755)?;
    let result = apt_install(&missing);
    match saved {
        Some(contents) => write(policy, &contents)?,
        None => {
            let _ = fs::remove_file(policy);
        }
    }
    result
}

/// The proxy user, with its password set each time (a previous run may have changed it).
fn ensure_user() -> Result<(), String> {
    let exists = Command::new("getent")
        .args(["passwd", PROXY_USER])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        output_ok(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            PROXY_USER,
        ]))?;
    }
    let mut cmd = Command::new("chpasswd");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start chpasswd: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        stdin
            .write_all(format!("{PROXY_USER}:{PROXY_PASSWORD}\n").as_bytes())
            .map_err(|e| format!("chpasswd: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("chpasswd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "chpasswd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// One Dante for both SOCKS5 ports: its method list is global, so each port gets its own
/// through a client-rule matching the address and port danted listens on.
fn start_dante(dir: &Path) -> Result<(), String> {
    let log = dir.join("danted.log");
    let mut conf = format!(
        "logoutput: {log}\n\
         internal: 127.0.0.1 port = {DANTE_OPEN}\n\
         internal: 127.0.0.1 port = {DANTE_AUTH}\n\
         external: 127.0.0.1\n\
         clientmethod: none\n\
         socksmethod: none username\n\
         # The username method checks the system password database (/etc/shadow).\n\
         user.privileged: root\n\
         user.unprivileged: nobody\n\
         client pass {{\n  from: 127.0.0.1/32 to: 127.0.0.1/32 port = {DANTE_OPEN}\n  socksmethod: none\n}}\n\
         client pass {{\n  from: 127.0.0.1/32 to: 127.0.0.1/32 port = {DANTE_AUTH}\n  socksmethod: username\n}}\n\
         client block {{\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  log: error\n}}\n",
        log = log.display()
    );
    for port in MAIL_PORTS {
        conf.push_str(&format!(
            "socks pass {{\n  from: 127.0.0.1/32 to: 127.0.0.1/32 port = {port}\n  command: connect\n  log: error connect\n}}\n"
        ));
    }
    conf.push_str("socks block {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  log: error connect\n}\n");
    let conf_path = dir.join("danted.conf");
    write(&conf_path, conf.as_bytes())?;
    let out = dir.join("danted.out");
    start_daemon(
        Command::new("danted")
            .arg("-D")
            .arg("-f")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.join("danted.pid")),
        &out,
    )
}

/// One tinyproxy per port (its BasicAuth is global): CONNECT allowed only to the mail
/// ports and to the hosts `127.0.0.1` and `localhost`.
fn start_tinyproxy(dir: &Path, port: u16, with_credentials: bool) -> Result<(), String> {
    let log = dir.join(format!("tinyproxy-{port}.log"));
    // It opens its log after dropping to nobody: create it owned by nobody first.
    write(&log, b"")?;
    let (uid, gid) = lookup_ids("nobody")?;
    chown(&log, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", log.display()))?;
    let filter = dir.join("tinyproxy.filter");
    write(&filter, b"^127\\.0\\.0\\.1$\n^localhost$\n")?;
    chmod(&filter, 0o644)?;
    let mut conf = format!(
        "User nobody\nGroup nogroup\nPort {port}\nListen 127.0.0.1\nBind 127.0.0.1\nTimeout 120\n\
         LogFile \"{log}\"\nLogLevel Info\nPidFile \"{pid}\"\nMaxClients 64\nAllow 127.0.0.1\n\
         DisableViaHeader Yes\nFilter \"{filter}\"\nFilterDefaultDeny Yes\nFilterExtended Yes\n",
        log = log.display(),
        pid = dir.join(format!("tinyproxy-{port}.pid")).display(),
        filter = filter.display(),
    );
    for mail in MAIL_PORTS {
        conf.push_str(&format!("ConnectPort {mail}\n"));
    }
    if with_credentials {
        conf.push_str(&format!("BasicAuth {PROXY_USER} {PROXY_PASSWORD}\n"));
    }
    let conf_path = dir.join(format!("tinyproxy-{port}.conf"));
    write(&conf_path, conf.as_bytes())?;
    chmod(&conf_path, 0o600)?;
    start_daemon(
        Command::new("tinyproxy").arg("-c").arg(&conf_path),
        &dir.join(format!("tinyproxy-{port}.out")),
    )
}

fn wait_listening(port: u16, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "nothing listens on {addr} after 10 s; see the logs in {}",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

// ----- Small helpers ---------------------------------------------------------------------
