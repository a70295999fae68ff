//! What the tests of the composition and output flags share: a demo server with its CA in a
//! file, the binary run against it, files in a temporary directory, a listener that must
//! see no connection.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use smtp_demo_server::{DemoConfig, DemoServer};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_smtp-send");
/// The environment variable the password is passed in.
pub const PW_VAR: &str = "SMTP_SEND_TEST_PASSWORD";

/// A directory in the temporary directory, removed with its files on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory.
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "smtp-send-msg-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Writes `name` in the directory; returns its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path.to_str().expect("UTF-8 temp path").to_owned()
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A demo server on a free port per `config`, and a directory holding its CA
/// (`ca.pem`).
pub fn server_with(config: DemoConfig) -> (DemoServer, TempDir) {
    let server = DemoServer::start(config.port(0)).expect("demo server");
    let dir = TempDir::new();
    dir.file("ca.pem", server.ca_pem().as_bytes());
    (server, dir)
}

/// A demo server with the default configuration.
pub fn server() -> (DemoServer, TempDir) {
    server_with(DemoConfig::new())
}

/// The command that runs the binary against `server` (its CA trusted), with `password` in
/// the environment and the colour variables removed (the tests that want them set them).
pub fn command(server: &DemoServer, dir: &TempDir, password: &str) -> Command {
    let addr = server.addr().to_string();
    let ca = dir.path().join("ca.pem");
    let mut cmd = Command::new(BIN);
    cmd.args(["--server", &addr, "--timeout", "20", "--ca-file"])
        .arg(ca)
        .env(PW_VAR, password)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR");
    cmd
}

/// Runs the binary against `server` with `args` after the connection flags.
pub fn run(server: &DemoServer, dir: &TempDir, password: &str, args: &[&str]) -> Output {
    command(server, dir, password)
        .args(args)
        .output()
        .expect("run smtp-send")
}

/// AUTH as the demo user, password from the environment.
pub const AUTH_FLAGS: &[&str] = &[
    "--user",
    smtp_demo_server::DEMO_USER,
    "--password-env",
    PW_VAR,
];
/// One sender, one recipient.
pub const ENVELOPE: &[&str] = &["--from", "alice@example.test", "--to", "bob@example.test"];

/// The parts joined into one argument list.
pub fn flags<'a>(parts: &[&[&'a str]]) -> Vec<&'a str> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// Standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A listener that must see no connection: bad input is refused before connecting.
pub fn untouched_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// Fails when `l` was connected to.
pub fn assert_untouched(l: &TcpListener) {
    assert_eq!(
        l.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "smtp-send connected despite bad input"
    );
}

/// RFC 4648 base64, written out here so the tests do not trust the code under test.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `PATH` with the built binary's directory first: README examples say `smtp-send`.
pub fn path_with_the_binary() -> std::ffi::OsString {
    let dir = Path::new(BIN).parent().expect("the binary's directory");
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)))
        .expect("PATH")
}

/// Where the real servers (`cargo xtask servers up`) deliver every message for
/// `@example.test`.
pub const MAILDIR: &str = "/var/tmp/smtp-auth-it/maildir/sink/new";

/// The message in [`MAILDIR`] holding `marker`, waited for up to 30 seconds.
pub fn delivered_with(marker: &str) -> Vec<u8> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(MAILDIR)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                std::fs::read(e.path())
                    .ok()
                    .filter(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
            });
        if let Some(message) = found {
            return message;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{marker} not delivered to {MAILDIR}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A marker no other run uses.
pub fn marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{what}-{}-{nanos}", std::process::id())
}

/// The workspace README.
pub fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
        .expect("README.md")
}

/// The lines of the README's `sh` code blocks.
fn readme_shell_lines(readme: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            inside = line == "```sh";
        } else if inside {
            lines.push(line);
        }
    }
    lines
}

/// The `export` lines of the README's shell examples.
pub fn readme_exports() -> Vec<String> {
    readme_shell_lines(&readme())
        .into_iter()
        .filter(|l| l.starts_with("export "))
        .map(str::to_owned)
        .collect()
}

/// The README's shell command with a line holding `marker`, its continuation lines joined:
/// from the line that starts it (`smtp-send ...`, or `VAR=... smtp-send ...`) to the line
/// that does not end in a backslash.
pub fn readme_command(marker: &str) -> String {
    let readme = readme();
    let lines = readme_shell_lines(&readme);
    let at = lines
        .iter()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no README example with {marker:?}"));
    let start = (0..=at)
        .rev()
        .find(|&i| {
            let first = lines[i].split(' ').find(|w| !w.contains('='));
            first == Some("smtp-send") && !lines[i].starts_with(' ')
        })
        .expect("the command's first line");
    let mut command = String::new();
    for line in &lines[start..] {
        match line.trim_end().strip_suffix('\\') {
            Some(part) => command.push_str(part),
            None => {
                command.push_str(line);
                break;
            }
        }
    }
    command
}

/// Runs `script` with `shell` in `dir`, the binary first on `PATH`.
pub fn run_script(shell: &str, script: &str, dir: &Path) -> Output {
    Command::new(shell)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path_with_the_binary())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("run the shell")
}
