//! The README's `smtp-send` examples, run as written against the real servers and proxies
//! (`cargo xtask servers up`): each is found by a flag it alone uses, run through `sh` after
//! the README's `export` lines, sometimes with `--subject` and `--transcript` added to find
//! the message and see the conversation.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_smtp-send");

/// Where the real servers deliver every message for `@example.test`.
const MAILDIR: &str = "/var/tmp/smtp-auth-it/maildir/sink/new";

/// The README's `export` lines and the `smtp-send` command with a line holding `marker`, its
/// continuation lines joined.
fn readme_command(marker: &str) -> (Vec<String>, String) {
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
        // Not the synopsis, whose optional flags are in brackets.
        .position(|l| !l.trim_start().starts_with('[') && l.contains(marker))
        .unwrap_or_else(|| panic!("a README example with {marker:?}"));
    let start = (0..=at)
        .rev()
        .find(|&i| lines[i].starts_with("smtp-send ") || lines[i].contains(" smtp-send "))
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

/// Runs the README's command found by `marker`, with `extra` appended.
fn run_example(marker: &str, extra: &str) -> (String, std::process::Output) {
    let (exports, command) = readme_command(marker);
    let script = format!("set -e\n{}\n{command} {extra}\n", exports.join("\n"));
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", path_with_the_binary())
        .output()
        .expect("sh");
    (script, out)
}

/// A subject no other run uses.
fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("readme-{tag}-{}-{nanos}", std::process::id())
}

/// The message in [`MAILDIR`] holding every one of `needles`, waiting up to 30 s.
fn wait_for(needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(MAILDIR)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .find(|text| needles.iter().all(|n| text.contains(n)));
        if let Some(text) = found {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no message in {MAILDIR} with {needles:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let (exports, command) = readme_command("--proxy socks5://");
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

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_dsn_example_gets_a_notification_quoting_the_envelope() {
    let marker = unique("dsn");
    let (script, out) = run_example("--notify success,failure", &format!("--subject {marker}"));
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // NOTIFY=SUCCESS: Postfix sends alice a notice (RFC 3464), RET=HDRS: with the headers.
    let dsn = wait_for(&[&marker, "Content-Type: message/delivery-status"]);
    for field in [
        "Original-Envelope-Id: order-4711",
        "Original-Recipient: rfc822;bob@example.test",
        "Action: delivered",
        "Content-Type: text/rfc822-headers",
    ] {
        assert!(dsn.contains(field), "{field:?} missing from\n{dsn}");
    }
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_xclient_example_is_received_from_the_forwarded_client() {
    let marker = unique("xclient");
    let (script, out) = run_example("--xclient NAME=", &format!("--subject {marker}"));
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = wait_for(&[&marker]);
    assert!(
        message.contains("Received: from proxy.example.test (mail.forwarded.example [192.0.2.7])"),
        "{message}"
    );
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_prdr_example_prints_a_reply_per_recipient() {
    let (script, out) = run_example("--prdr --from", "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{script}\n{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "<alice@example.test>: 250 PRDR R=<alice@example.test> acceptance",
            "<bob@example.test>: 550 5.7.1 bob refuses this message",
            "<dave@example.test>: 450 4.2.0 dave cannot take it now",
        ]
    );
    assert!(
        stderr.starts_with(
            "smtp-send: data failed: <bob@example.test>: 550 5.7.1 bob refuses this message (after the data); <dave@example.test>: 450"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("(the message went to the 1 other recipient(s))"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_lmtp_example_delivers_to_alice_and_not_bob() {
    let (script, out) = run_example("--socket /var/tmp", "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{script}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("<alice@example.test>: 250 2.0.0 <alice@example.test> "),
        "{stdout}"
    );
    assert!(lines[0].ends_with(" Saved"), "{stdout}");
    assert_eq!(
        lines[1],
        "<bob@example.test>: 552 5.2.2 <bob@example.test> Quota exceeded (mailbox for user is full)"
    );
    assert!(
        stderr.starts_with("smtp-send: data failed: <bob@example.test>: 552 5.2.2"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_connection_example_comes_from_127_0_0_2() {
    let marker = unique("local-addr");
    let (script, out) = run_example("-4 --local-addr", &format!("--subject {marker}"));
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = wait_for(&[&marker]);
    assert!(message.contains("(unknown [127.0.0.2])"), "{message}");
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_quit_after_example_stops_after_auth() {
    let (script, out) = run_example("--quit-after auth", "--transcript");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script}\n{stderr}");
    assert_eq!(
        stdout.trim_end(),
        "stopped after auth as asked (QUIT sent), authenticated with SCRAM-SHA-256: 235 2.7.0 \
         Authentication successful"
    );
    // AUTH, then QUIT: no MAIL.
    let sent: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(">>> "))
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(sent.last(), Some(&"QUIT"), "{stderr}");
    assert!(sent.contains(&"AUTH"), "{stderr}");
    assert!(!sent.contains(&"MAIL"), "{stderr}");
}
