//! LMTP (RFC 2033) against a real Dovecot LMTP server, on both drivers, over TCP and over
//! its Unix socket: one message to three users, one of whom is over quota, so Dovecot
//! refuses him after the data while the other two get the message byte for byte.
//!
//! The server is the private instance of `cargo xtask servers more-up` (also started by
//! `servers up`): see `xtask/src/servers_more.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use interop_tests::{as_delivered, unique_marker};
use smtp_client::{ClientConfig, Envelope, Protocol, SendReport, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    over_tcp_one_recipient_refused_after_the_data,
    over_the_unix_socket_with_bdat,
);

/// `xtask/src/servers_more.rs`'s state directory.
const STATE_DIR: &str = "/var/tmp/smtp-auth-it-more";

/// Dovecot's LMTP TCP listener.
const LMTP_PORT: u16 = 12024;

/// The Unix socket of the same Dovecot LMTP service.
fn lmtp_socket() -> PathBuf {
    Path::new(STATE_DIR).join("lmtp/lmtp.sock")
}

/// The `new/` folder of `user`'s Maildir.
fn maildir_new(user: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("lmtp/mail/{user}/Maildir/new"))
}

fn require_lmtp() {
    let greeting =
        interop_tests::greeting(([127, 0, 0, 1], LMTP_PORT).into(), Duration::from_secs(3));
    match greeting {
        Ok(line) if line.starts_with("220 ") => {}
        other => panic!(
            "Dovecot LMTP not running on 127.0.0.1:{LMTP_PORT} ({other:?}): \
             cargo xtask servers more-up"
        ),
    }
    assert!(lmtp_socket().exists(), "no socket at {:?}", lmtp_socket());
}

fn envelope() -> Envelope {
    let from = ReversePath::Mailbox(Mailbox::new("sender@example.test").unwrap());
    Envelope::new(
        from,
        ["alice", "bob", "carol"].map(|u| ForwardPath::new(&format!("{u}@example.test")).unwrap()),
    )
}

fn message(marker: &str) -> Vec<u8> {
    format!(
        "Message-ID: {marker}\r\nSubject: LMTP to three\r\n\r\n.a line with a leading dot\r\n\
         caf\u{e9} in 8 bits\r\nlast line\r\n"
    )
    .into_bytes()
}

/// The files in `user`'s Maildir holding `marker`.
fn delivered(user: &str, marker: &str) -> Vec<Vec<u8>> {
    let Ok(dir) = std::fs::read_dir(maildir_new(user)) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter(|bytes| bytes.windows(marker.len()).any(|w| w == marker.as_bytes()))
        .collect()
}

/// The message as the client sent it: Dovecot prepends `Return-Path:`, `Delivered-To:`
/// (only for a single recipient) and one folded `Received: ... with LMTP` header.
fn strip_lmtp_headers(file: &[u8]) -> &[u8] {
    let mut rest = file;
    for (name, required) in [
        (&b"Return-Path: <sender@example.test>\n"[..], true),
        (b"Delivered-To:", false),
        (b"Received: from client.example.test", true),
    ] {
        if !rest.starts_with(name) {
            assert!(
                !required,
                "expected {:?} in {:?}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(file)
            );
            continue;
        }
        loop {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            rest = &rest[end..];
            if !rest.starts_with(b"\t") && !rest.starts_with(b" ") {
                break;
            }
        }
    }
    rest
}

fn check(report: &SendReport, marker: &str, sent: &[u8]) {
    let codes: Vec<(String, u16)> = report
        .per_recipient
        .iter()
        .map(|r| (r.recipient.to_string(), r.reply.code().get()))
        .collect();
    assert_eq!(
        codes,
        [
            ("<alice@example.test>".to_owned(), 250),
            ("<bob@example.test>".to_owned(), 552),
            ("<carol@example.test>".to_owned(), 250),
        ],
        "{report:?}"
    );
    // Dovecot names the recipient in each reply: `552 5.2.2 <bob@example.test> Quota exceeded`.
    assert!(report.per_recipient[1]
        .reply
        .text()
        .contains("<bob@example.test>"));
    assert_eq!(
        report.per_recipient[1]
            .reply
            .enhanced()
            .unwrap()
            .to_string(),
        "5.2.2"
    );
    assert_eq!(report.accepted.len(), 3);
    assert!(report.refused.is_empty());
    assert_eq!(report.delivered().len(), 2);
    // The final dot is answered only after each save: the files are there already.
    let deadline = Instant::now() + Duration::from_secs(5);
    for user in ["alice", "carol"] {
        let files = loop {
            let files = delivered(user, marker);
            if !files.is_empty() || Instant::now() > deadline {
                break files;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(files.len(), 1, "{user}: one delivery of {marker}");
        assert_eq!(
            strip_lmtp_headers(&files[0]),
            &as_delivered(sent)[..],
            "{user}"
        );
    }
    assert!(delivered("bob", marker).is_empty(), "bob is over quota");
}

fn lmtp_config(config: ClientConfig) -> ClientConfig {
    config
        .protocol(Protocol::Lmtp)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)))
}

fn over_tcp_one_recipient_refused_after_the_data<C: Driver>() {
    require_lmtp();
    let config = lmtp_config(ClientConfig::new("127.0.0.1").port(LMTP_PORT));
    let mut client = C::connect(config).unwrap();
    // Dovecot's LHLO reply.
    assert!(client.supports("PIPELINING") && client.supports("CHUNKING"));
    let marker = unique_marker("lmtp-tcp");
    let sent = message(&marker);
    let report = client.send(&envelope(), &sent[..]).unwrap();
    check(&report, &marker, &sent);
    client.quit().unwrap();
}

fn over_the_unix_socket_with_bdat<C: Driver>() {
    require_lmtp();
    let config = lmtp_config(ClientConfig::new("localhost").unix_socket(lmtp_socket()));
    let mut client = C::connect(config).unwrap();
    let marker = unique_marker("lmtp-unix");
    let sent = message(&marker);
    let report = client
        .send(&envelope().prefer_chunking(true), &sent[..])
        .unwrap();
    check(&report, &marker, &sent);
    // The session goes on: a second transaction on the same connection.
    let marker = unique_marker("lmtp-unix-again");
    let sent = message(&marker);
    let report = client.send(&envelope(), &sent[..]).unwrap();
    check(&report, &marker, &sent);
    client.quit().unwrap();
}
