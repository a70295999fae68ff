//! PRDR against a real Exim 4.96 (`prdr_enable`, an `acl_smtp_data_prdr` that refuses the
//! message for bob with 550, defers it for dave with 450 and accepts it for the others), on
//! both drivers. The server is the private instance of `cargo xtask servers more-up` (also
//! started by `servers up`): see `xtask/src/servers_more.rs`.

use std::time::Duration;

use smtp_client::{ClientConfig, Envelope, Prdr, SendReport, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    a_reply_per_recipient_and_the_final_one,
    one_recipient_gets_no_353,
    nobody_accepted_and_still_a_250,
);

/// Exim's listener.
const PORT: u16 = 12529;

fn connect<C: Driver>() -> C {
    let greeting = interop_tests::greeting(([127, 0, 0, 1], PORT).into(), Duration::from_secs(3));
    assert!(
        greeting.as_deref().is_ok_and(|g| g.starts_with("220 ")),
        "Exim not running on 127.0.0.1:{PORT} ({greeting:?}): cargo xtask servers more-up"
    );
    let config = ClientConfig::new("127.0.0.1")
        .port(PORT)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)));
    let client = C::connect(config).unwrap();
    assert!(client.supports("PRDR"));
    client
}

fn send<C: Driver>(client: &mut C, users: &[&str]) -> SendReport {
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::new("sender@example.test").unwrap()),
        users
            .iter()
            .map(|u| ForwardPath::new(&format!("{u}@example.test")).unwrap()),
    )
    .prdr(true);
    client
        .send(&envelope, &b"Subject: PRDR\r\n\r\nper recipient\r\n"[..])
        .unwrap()
}

fn codes(report: &SendReport) -> Vec<(String, u16)> {
    report
        .per_recipient
        .iter()
        .map(|r| (r.recipient.to_string(), r.reply.code().get()))
        .collect()
}

fn a_reply_per_recipient_and_the_final_one<C: Driver>() {
    let mut client = connect::<C>();
    let report = send(&mut client, &["alice", "bob", "dave", "carol"]);
    assert_eq!(report.prdr, Some(Prdr::Answered));
    assert_eq!(
        codes(&report),
        [
            ("<alice@example.test>".to_owned(), 250),
            ("<bob@example.test>".to_owned(), 550),
            ("<dave@example.test>".to_owned(), 450),
            ("<carol@example.test>".to_owned(), 250),
        ]
    );
    // Exim names the recipient in its acceptances only: replies go by position.
    assert!(report.per_recipient[0]
        .reply
        .text()
        .contains("PRDR R=<alice@example.test> acceptance"));
    assert!(report.per_recipient[1].reply.text().contains("bob refuses"));
    assert_eq!(report.reply.code().get(), 250);
    assert!(report.reply.text().contains("accepted for some recipients"));
    let delivered: Vec<String> = report.delivered().iter().map(|r| r.to_string()).collect();
    assert_eq!(delivered, ["<alice@example.test>", "<carol@example.test>"]);
    // The session goes on.
    client.noop().unwrap();
    client.quit().unwrap();
}

fn one_recipient_gets_no_353<C: Driver>() {
    let mut client = connect::<C>();
    let report = send(&mut client, &["alice"]);
    assert_eq!(report.prdr, Some(Prdr::Skipped));
    assert!(report.per_recipient.is_empty());
    assert_eq!(report.reply.code().get(), 250);
    client.quit().unwrap();
}

fn nobody_accepted_and_still_a_250<C: Driver>() {
    let mut client = connect::<C>();
    let report = send(&mut client, &["bob", "dave"]);
    assert_eq!(report.prdr, Some(Prdr::Answered));
    assert_eq!(
        codes(&report),
        [
            ("<bob@example.test>".to_owned(), 550),
            ("<dave@example.test>".to_owned(), 450),
        ]
    );
    // Exim's final reply is a 250 even so: only the replies per recipient tell.
    assert_eq!(report.reply.code().get(), 250, "{}", report.reply);
    assert!(report.delivered().is_empty());
    client.quit().unwrap();
}
