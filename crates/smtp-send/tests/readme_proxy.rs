//! The README's `--proxy` example, run as written against the real servers and proxies
//! (`cargo xtask servers up`), with `--subject` and `--transcript` added to find the message
//! and see the proxy's handshake.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_smtp-send");

/// Where the real servers deliver every message for `@example.test`.
const MAILDIR: &str = "/var/tmp/smtp-auth-it/maildir/sink/new";

/// The README's `export` lines and the `smtp-send` command that uses `--proxy`, its
/// continuation lines joined.
fn readme_example() -> (Vec<String>, String) {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    let exports = lines
        .iter()
        .filter(|l| l.starts_with("export "))
        .map(|l| (*l).to_owned())
        .collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("--proxy socks5://"))
        .expect("a --proxy example in the README");
    let start = (0..=at)
        .rev()
        .find(|&i| lines[i].starts_with("smtp-send "))
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
    (exports, command)
}

/// `PATH` with the built binary's directory first: the example says `smtp-send`.
fn path_with_the_binary() -> std::ffi::OsString {
    let dir = Path::new(BIN).parent().expect("the binary's directory");
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)))
        .expect("PATH")
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_proxy_example_delivers_through_dante() {
    let (exports, command) = readme_example();
    assert!(command.contains("--proxy-password-env"), "{command}");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let marker = format!("readme-proxy-{}-{nanos}", std::process::id());
    let script = format!(
        "set -e\n{}\n{command} --subject {marker} --transcript\n",
        exports.join("\n")
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", path_with_the_binary())
        .output()
        .expect("sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script}\n{stderr}");
    assert!(
        stderr.starts_with(
            ">>> SOCKS5 methods: no authentication, username/password\n\
             <<< SOCKS5 method: username/password\n\
             >>> SOCKS5 username/password: smtpauthproxy ****\n\
             <<< SOCKS5 username/password: accepted\n\
             >>> SOCKS5 CONNECT localhost:12587\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Proxy-Secret-7") && !stderr.contains("Alice-Secret-1"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(MAILDIR)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read(e.path())
                    .is_ok_and(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
            });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{marker} not delivered to {MAILDIR}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
