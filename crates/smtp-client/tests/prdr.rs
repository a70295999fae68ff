//! PRDR (per-recipient data responses, draft-hall-prdr-00 as Exim implements it) against
//! scripted servers, on both drivers: the 353, a reply per recipient and the final reply
//! in the report; a server that skips the 353; PRDR not offered.

use std::time::Duration;

use smtp_client::{ClientConfig, Envelope, Error, Prdr, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_testserver::scripted::{Record, Script, ScriptedServer};

use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    a_353_then_a_reply_per_recipient_then_the_final_one,
    over_bdat_last,
    a_server_that_skips_the_353,
    a_final_refusal_after_the_replies_per_recipient,
    prdr_not_offered_is_refused_before_sending,
);

fn config(server: &ScriptedServer) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn to(addr: &str) -> ForwardPath {
    ForwardPath::new(addr).unwrap()
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::new("sender@example.test").unwrap()),
        recipients.iter().map(|r| to(r)),
    )
    .prdr(true)
}

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "script failed: {:?}", record.result);
    record
}

fn a_353_then_a_reply_per_recipient_then_the_final_one<C: Driver>() {
    // Exim 4.96's replies, as it sends them.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", "PRDR"])
            .expect("MAIL FROM:<sender@example.test> PRDR")
            .expect("RCPT TO:<alice@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .expect("RCPT TO:<dave@example.test>")
            .expect("DATA")
            .reply("250 OK, PRDR Requested\n250 Accepted\n250 Accepted\n250 Accepted\n354 Enter message")
            .read_data()
            .reply(
                "353 PRDR content analysis beginning\n\
                 250 PRDR R=<alice@example.test> acceptance\n\
                 550 5.7.1 bob refuses this message\n\
                 450 4.2.0 dave cannot take it now\n\
                 250 id=1xY4DY-0002ik-09 message accepted for some recipients",
            )
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let envelope = envelope(&[
        "alice@example.test",
        "bob@example.test",
        "dave@example.test",
    ]);
    let report = client.send(&envelope, &b"hi\r\n"[..]).unwrap();
    assert_eq!(report.prdr, Some(Prdr::Answered));
    let codes: Vec<u16> = report
        .per_recipient
        .iter()
        .map(|r| r.reply.code().get())
        .collect();
    assert_eq!(codes, [250, 550, 450]);
    assert_eq!(report.per_recipient[2].recipient, to("dave@example.test"));
    assert!(report.reply.text().contains("accepted for some recipients"));
    assert_eq!(report.delivered(), [&to("alice@example.test")]);
    client.quit().unwrap();
    finish_ok(server);
}

fn over_bdat_last<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PRDR", "CHUNKING"])
            .expect("MAIL FROM:<sender@example.test> PRDR")
            .reply("250 OK, PRDR Requested")
            .expect("RCPT TO:<alice@example.test>")
            .reply("250 Accepted")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 Accepted")
            .expect("BDAT 4 LAST")
            .read_bytes(4)
            .reply(
                "353 PRDR content analysis beginning\n\
                 250 PRDR R=<alice@example.test> acceptance\n\
                 250 PRDR R=<bob@example.test> acceptance\n\
                 250 id=1 message accepted",
            )
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let envelope = envelope(&["alice@example.test", "bob@example.test"]).prefer_chunking(true);
    let report = client.send(&envelope, &b"hi\r\n"[..]).unwrap();
    assert_eq!(report.prdr, Some(Prdr::Answered));
    assert_eq!(report.delivered().len(), 2);
    client.quit().unwrap();
    finish_ok(server);
}

fn a_server_that_skips_the_353<C: Driver>() {
    // Exim with a single recipient: no 353, one final reply.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", "PRDR"])
            .expect("MAIL FROM:<sender@example.test> PRDR")
            .expect("RCPT TO:<alice@example.test>")
            .expect("DATA")
            .reply("250 OK, PRDR Requested\n250 Accepted\n354 Enter message")
            .read_data()
            .reply("250 id=1xY4DY-0002ik-10")
            .expect("NOOP")
            .reply("250 OK")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let report = client
        .send(&envelope(&["alice@example.test"]), &b"hi\r\n"[..])
        .unwrap();
    assert_eq!(report.prdr, Some(Prdr::Skipped));
    assert!(report.per_recipient.is_empty());
    assert_eq!(report.delivered(), [&to("alice@example.test")]);
    // Nothing more was owed: the session goes on in step.
    client.noop().unwrap();
    client.quit().unwrap();
    finish_ok(server);
}

fn a_final_refusal_after_the_replies_per_recipient<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", "PRDR"])
            .expect("MAIL FROM:<sender@example.test> PRDR")
            .expect("RCPT TO:<bob@example.test>")
            .expect("RCPT TO:<carl@example.test>")
            .expect("DATA")
            .reply("250 OK, PRDR Requested\n250 Accepted\n250 Accepted\n354 Enter message")
            .read_data()
            .reply(
                "353 PRDR content analysis beginning\n\
                 550 5.7.1 bob refuses this message\n\
                 550 5.7.1 carl refuses this message\n\
                 550 rejected for all recipients",
            )
            .expect("NOOP")
            .reply("250 OK")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let err = client
        .send(
            &envelope(&["bob@example.test", "carl@example.test"]),
            &b"hi\r\n"[..],
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused { command, reply }
            if command == "end of data" && reply.text().contains("rejected for all")),
        "{err:?}"
    );
    client.noop().unwrap();
    client.quit().unwrap();
    finish_ok(server);
}

fn prdr_not_offered_is_refused_before_sending<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let err = client
        .send(&envelope(&["alice@example.test"]), &b"hi\r\n"[..])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ExtensionMissing {
                extension: "PRDR",
                ..
            }
        ),
        "{err:?}"
    );
    client.quit().unwrap();
    finish_ok(server);
}
