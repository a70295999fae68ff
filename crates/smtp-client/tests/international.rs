//! International addresses against scripted servers, on both drivers: a domain in Unicode
//! goes as its A-labels when the server lacks SMTPUTF8 and the local part is ASCII, as
//! UTF-8 when it offers SMTPUTF8, and is refused before sending otherwise; the EHLO name
//! from `Domain::from_unicode`.

use std::time::Duration;

use smtp_client::{ClientConfig, Envelope, Error, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_testserver::scripted::{Record, Script, ScriptedServer};

use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    without_smtputf8_unicode_domains_go_as_a_labels,
    with_smtputf8_they_go_as_utf8,
    a_non_ascii_local_part_without_smtputf8_is_refused_before_sending,
    an_idna_failure_is_refused_before_sending,
    the_ehlo_name_as_a_labels,
);

fn config(server: &ScriptedServer) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn envelope(from: &str, to: &str) -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::new(from).unwrap()),
        [ForwardPath::new(to).unwrap()],
    )
}

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "script failed: {:?}", record.result);
    record
}

fn without_smtputf8_unicode_domains_go_as_a_labels<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["8BITMIME"])
            .expect("MAIL FROM:<alice@xn--bcher-kva.example>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@xn--mnchen-3ya.example>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go")
            .read_data()
            .reply("250 queued")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let report = client
        .send(
            &envelope("alice@bücher.example", "bob@münchen.example"),
            &b"hi\r\n"[..],
        )
        .unwrap();
    // The report shows the address as it was sent.
    assert_eq!(
        report.accepted,
        [ForwardPath::new("bob@xn--mnchen-3ya.example").unwrap()]
    );
    client.quit().unwrap();
    finish_ok(server);
}

fn with_smtputf8_they_go_as_utf8<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["8BITMIME", "SMTPUTF8"])
            .expect("MAIL FROM:<alice@bücher.example> SMTPUTF8")
            .reply("250 ok")
            .expect("RCPT TO:<jörg@münchen.example>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go")
            .read_data()
            .reply("250 queued")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    client
        .send(
            &envelope("alice@bücher.example", "jörg@münchen.example"),
            &b"hi\r\n"[..],
        )
        .unwrap();
    client.quit().unwrap();
    finish_ok(server);
}

fn a_non_ascii_local_part_without_smtputf8_is_refused_before_sending<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["8BITMIME"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let err = client
        .send(
            &envelope("alice@bücher.example", "jörg@münchen.example"),
            &b"hi\r\n"[..],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ExtensionMissing {
                extension: "SMTPUTF8",
                ..
            }
        ),
        "{err:?}"
    );
    client.quit().unwrap();
    finish_ok(server);
}

fn an_idna_failure_is_refused_before_sending<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["8BITMIME"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    // RFC 5891 4.2.3.2: a label must not begin with a combining mark.
    let err = client
        .send(
            &envelope("alice@example.test", "bob@\u{301}a.example"),
            &b"hi\r\n"[..],
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(e) if e.what() == "mailbox domain"),
        "{err:?}"
    );
    client.quit().unwrap();
    finish_ok(server);
}

fn the_ehlo_name_as_a_labels<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .reply("220 mx.test ESMTP")
            .expect("EHLO xn--bcher-kva.example")
            .reply("250 mx.test")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let config = config(&server).hello(Domain::from_unicode("bücher.example").unwrap());
    let mut client = C::connect(config).unwrap();
    client.quit().unwrap();
    finish_ok(server);
}
