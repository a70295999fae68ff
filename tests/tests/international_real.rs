//! International addresses against the real servers, on both drivers: Postfix offers
//! SMTPUTF8, so a domain in Unicode goes as UTF-8; Dovecot LMTP does not, so the same
//! domain goes as its IDNA A-labels. Each delivered file's Return-Path shows which.

use std::path::Path;
use std::time::{Duration, Instant};

use interop_tests::{require_servers, unique_marker, wait_for_message, Listener};
use smtp_client::{ClientConfig, Envelope, Protocol, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    utf8_to_postfix_with_smtputf8,
    a_labels_to_dovecot_lmtp_without_smtputf8,
);

fn envelope(to: &str) -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::new("alice@bücher.example").unwrap()),
        [ForwardPath::new(to).unwrap()],
    )
}

fn message(marker: &str) -> String {
    format!("Message-ID: {marker}\r\nSubject: IDN\r\n\r\nhi\r\n")
}

fn utf8_to_postfix_with_smtputf8<C: Driver>() {
    require_servers();
    let addr = Listener::DovecotPlain.addr();
    let config = ClientConfig::new(addr.ip().to_string())
        .port(addr.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::from_unicode("client.bücher.example").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)));
    let mut client = C::connect(config).unwrap();
    assert!(client.supports("SMTPUTF8"));
    let marker = unique_marker("idn-utf8");
    client
        .send(&envelope("idn@example.test"), message(&marker).as_bytes())
        .unwrap();
    client.quit().unwrap();
    let delivered = String::from_utf8(wait_for_message(&marker).unwrap()).unwrap();
    assert!(
        delivered.starts_with("Return-Path: <alice@bücher.example>\n"),
        "{delivered}"
    );
    // The EHLO name went as A-labels.
    assert!(
        delivered.contains("Received: from client.xn--bcher-kva.example"),
        "{delivered}"
    );
    assert!(delivered.contains("with UTF8SMTP"), "{delivered}");
}

fn a_labels_to_dovecot_lmtp_without_smtputf8<C: Driver>() {
    let config = ClientConfig::new("127.0.0.1")
        .port(12024)
        .protocol(Protocol::Lmtp)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)));
    let mut client = C::connect(config).unwrap();
    assert!(!client.supports("SMTPUTF8"));
    let marker = unique_marker("idn-alabel");
    // Dovecot finds the user by the local part alone (`username_format=%n`).
    let report = client
        .send(
            &envelope("carol@münchen.example"),
            message(&marker).as_bytes(),
        )
        .unwrap();
    assert_eq!(
        report.accepted,
        [ForwardPath::new("carol@xn--mnchen-3ya.example").unwrap()]
    );
    assert_eq!(report.delivered().len(), 1);
    client.quit().unwrap();
    let dir = Path::new("/var/tmp/smtp-auth-it-more/lmtp/mail/carol/Maildir/new");
    let deadline = Instant::now() + Duration::from_secs(5);
    let file = loop {
        let found = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .find(|text| text.contains(&marker));
        if let Some(text) = found {
            break text;
        }
        assert!(Instant::now() < deadline, "{marker} not delivered to carol");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        file.starts_with("Return-Path: <alice@xn--bcher-kva.example>\n"),
        "{file}"
    );
    assert!(
        file.contains("Delivered-To: carol@xn--mnchen-3ya.example"),
        "{file}"
    );
}
