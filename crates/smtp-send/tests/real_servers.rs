//! The built `smtp-send` binary's connection and extension flags against the project's
//! real servers (`cargo xtask servers up`), where the behaviour is the server's: LMTP over
//! TCP and the Unix socket (Dovecot), XCLIENT (Postfix on 12528), PRDR (Exim on 12529), DSN
//! (Postfix's queue file), `-6` and `--local-addr` (the Received header Postfix writes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_smtp-send");

/// Where Postfix delivers every message for `@example.test`.
const SINK: &str = "/var/tmp/smtp-auth-it/maildir/sink/new";
/// Postfix's configuration directory (for `postcat`, `postsuper`).
const POSTFIX_CONF: &str = "/var/tmp/smtp-auth-it/postfix";
/// Dovecot LMTP's state directory: its Unix socket and its users' Maildirs.
const LMTP_DIR: &str = "/var/tmp/smtp-auth-it-more/lmtp";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A subject no other run uses.
fn marker(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("cli-{tag}-{}-{nanos}", std::process::id())
}

fn smtp_send(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--timeout", "30", "--helo", "client.example.test"])
        .args(args)
        .output()
        .expect("run smtp-send")
}

/// The files in `dir` holding `marker`, waiting up to 30 s for `count` of them.
fn delivered(dir: &Path, marker: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect();
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lmtp_maildir(user: &str) -> PathBuf {
    Path::new(LMTP_DIR).join(format!("mail/{user}/Maildir/new"))
}

/// Dovecot refuses bob after the data (over quota) and takes the message for alice and
/// carol: each reply printed, exit 5 naming bob, the message in the two Maildirs.
fn check_lmtp(out: &Output, marker: &str) {
    assert_eq!(out.status.code(), Some(5), "{}", stderr(out));
    let lines: Vec<String> = stdout(out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("<alice@example.test>: 250 2.0.0 "),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("<bob@example.test>: 552 5.2.2 <bob@example.test> Quota exceeded"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("<carol@example.test>: 250 2.0.0 "),
        "{lines:?}"
    );
    let err = stderr(out);
    assert!(
        err.starts_with("smtp-send: data failed: <bob@example.test>: 552 5.2.2"),
        "{err}"
    );
    assert!(
        err.contains("the message went to the 2 other recipient(s)"),
        "{err}"
    );
    for user in ["alice", "carol"] {
        assert_eq!(delivered(&lmtp_maildir(user), marker, 1).len(), 1, "{user}");
    }
    assert!(delivered(&lmtp_maildir("bob"), marker, 0).is_empty());
}

const THREE: &[&str] = &[
    "--to",
    "alice@example.test",
    "--to",
    "bob@example.test",
    "--to",
    "carol@example.test",
];

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn lmtp_over_tcp_prints_each_recipients_reply() {
    let marker = marker("lmtp-tcp");
    let out = smtp_send(
        &[
            &[
                "--server",
                "127.0.0.1:12024",
                "--protocol",
                "lmtp",
                "--tls",
                "none",
            ][..],
            &["--from", "sender@example.test", "--subject", &marker],
            THREE,
        ]
        .concat(),
    );
    check_lmtp(&out, &marker);
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn lmtp_over_the_unix_socket_prints_each_recipients_reply() {
    let socket = format!("{LMTP_DIR}/lmtp.sock");
    let marker = marker("lmtp-unix");
    let out = smtp_send(
        &[
            &["--socket", &socket, "--protocol", "lmtp", "--tls", "none"][..],
            &["--from", "sender@example.test", "--subject", &marker],
            THREE,
        ]
        .concat(),
    );
    check_lmtp(&out, &marker);
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn xclient_forwarded_client_shows_in_received() {
    let marker = marker("xclient");
    let out = Command::new(BIN)
        .args([
            "--server",
            "127.0.0.1:12528",
            "--tls",
            "none",
            "--timeout",
            "30",
        ])
        .args(["--helo", "proxy.example.test"])
        .args([
            "--xclient",
            "NAME=mail.forwarded.example",
            "--xclient",
            "ADDR=192.0.2.7",
        ])
        .args([
            "--from",
            "alice@example.test",
            "--to",
            "xclient@example.test",
        ])
        .args(["--subject", &marker])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let found = delivered(Path::new(SINK), &marker, 1);
    assert_eq!(found.len(), 1);
    // The EHLO after XCLIENT names this client; NAME and ADDR are the forwarded ones.
    assert!(
        found[0].contains("Received: from proxy.example.test (mail.forwarded.example [192.0.2.7])"),
        "{}",
        found[0]
    );
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn xclient_attribute_the_server_does_not_offer_exits_5_before_sending_it() {
    // Postfix on 12525 offers no XCLIENT at all.
    let out = smtp_send(&[
        "--server",
        "127.0.0.1:12525",
        "--tls",
        "none",
        "--xclient",
        "ADDR=192.0.2.7",
        "--from",
        "alice@example.test",
        "--to",
        "sink@example.test",
        "--transcript",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains(">>> XCLIENT"), "{err}");
    assert!(err.contains("smtp-send: xclient failed: "), "{err}");
    assert!(!err.contains(">>> MAIL"), "{err}");
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn prdr_prints_exims_reply_for_each_recipient() {
    let out = smtp_send(&[
        "--server",
        "127.0.0.1:12529",
        "--tls",
        "none",
        "--prdr",
        "--from",
        "sender@example.test",
        "--to",
        "alice@example.test",
        "--to",
        "bob@example.test",
        "--to",
        "dave@example.test",
        "--to",
        "carol@example.test",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // Exim's acl_smtp_data_prdr refuses bob (550), defers dave (450), accepts the others.
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "<alice@example.test>: 250 PRDR R=<alice@example.test> acceptance",
            "<bob@example.test>: 550 5.7.1 bob refuses this message",
            "<dave@example.test>: 450 4.2.0 dave cannot take it now",
            "<carol@example.test>: 250 PRDR R=<carol@example.test> acceptance",
        ]
    );
    let err = stderr(&out);
    assert!(err.contains("<bob@example.test>: 550 5.7.1"), "{err}");
    assert!(err.contains("<dave@example.test>: 450 4.2.0"), "{err}");
    assert!(
        err.contains("the message went to the 2 other recipient(s)"),
        "{err}"
    );

    // For alice and carol only: every reply a success, exit 0.
    let out = smtp_send(&[
        "--server",
        "127.0.0.1:12529",
        "--tls",
        "none",
        "--prdr",
        "--from",
        "sender@example.test",
        "--to",
        "alice@example.test",
        "--to",
        "carol@example.test",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("accepted for 2 recipient(s): 250 OK id=")
            || stdout(&out).contains("accepted for 2 recipient(s): "),
        "{}",
        stdout(&out)
    );
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn dsn_flags_are_recorded_in_postfixs_queue_file() {
    let envid = marker("dsn");
    // `xtask/servers/recipient_access` puts mail for hold@example.test on hold.
    let out = smtp_send(&[
        "--server",
        "127.0.0.1:12525",
        "--tls",
        "none",
        "--from",
        "dsn-sender@example.test",
        "--to",
        "hold@example.test",
        "--notify",
        "success,failure,delay",
        "--orcpt",
        "rfc822;original.hold@example.test",
        "--ret",
        "full",
        "--envid",
        &envid,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    let queue_id = line
        .trim_end()
        .rsplit(' ')
        .next()
        .expect("a queue id")
        .to_owned();
    let queue = Command::new("postcat")
        .args(["-c", POSTFIX_CONF, "-q", &queue_id])
        .output()
        .unwrap();
    // Leave no held mail behind, whatever the checks below say.
    let _ = Command::new("postsuper")
        .args(["-c", POSTFIX_CONF, "-d", &queue_id, "hold"])
        .output();
    assert!(queue.status.success(), "postcat: {queue:?}");
    let queue_file = String::from_utf8_lossy(&queue.stdout);
    // Postfix's names (src/global/dsn_mask.h): RET=FULL is ret_flags 1; NOTIFY SUCCESS 2,
    // FAILURE 4, DELAY 8.
    for record in [
        format!("named_attribute: envelope_id={envid}"),
        "named_attribute: ret_flags=1".to_owned(),
        "named_attribute: notify_flags=14\n\
         named_attribute: dsn_orig_rcpt=rfc822;original.hold@example.test\n\
         original_recipient: hold@example.test\n\
         recipient: hold@example.test"
            .to_owned(),
    ] {
        assert!(
            queue_file.contains(&record),
            "{record:?} missing from\n{queue_file}"
        );
    }
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn ipv6_only_reaches_postfix_on_the_ipv6_loopback() {
    let marker = marker("ipv6");
    let out = smtp_send(&[
        "--server",
        "[::1]:12525",
        "-6",
        "--tls",
        "none",
        "--from",
        "alice@example.test",
        "--to",
        "sink@example.test",
        "--subject",
        &marker,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let found = delivered(Path::new(SINK), &marker, 1);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].contains("Received: from client.example.test (unknown [IPv6:::1])"),
        "{}",
        found[0]
    );
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn local_addr_shows_in_postfixs_received_header() {
    let marker = marker("local-addr");
    let out = smtp_send(&[
        "--server",
        "127.0.0.1:12525",
        "--local-addr",
        "127.0.0.2",
        "--tls",
        "none",
        "--from",
        "alice@example.test",
        "--to",
        "sink@example.test",
        "--subject",
        &marker,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let found = delivered(Path::new(SINK), &marker, 1);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].contains("Received: from client.example.test (unknown [127.0.0.2])"),
        "{}",
        found[0]
    );
}
