//! Behaviour of both clients against the scripted server: exact replies and faults.
//!
//! Each test is written once, generic over [`Driver`], and run against the blocking client
//! (`blocking::*`) and the async client (`tokio::*`, feature `tokio`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_client::{
    ClientConfig, Direction, Envelope, Error, ProtocolError, Timeouts, TlsConfig, TlsError,
    TlsMode, TlsUnavailable,
};
use smtp_proto::{Command, Domain, ForwardPath, MailParams, Mailbox, ReplyError, ReversePath};
use smtp_testserver::scripted::{test_cert, Record, Script, ScriptedServer};

use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    greeting_ehlo_capabilities_banner_and_domain,
    timeouts_of_any_size_do_not_overflow,
    ehlo_refused_with_5xx_falls_back_to_helo,
    refusal_carries_command_and_full_reply,
    send_pipelines_envelope_and_reports_each_refused_recipient,
    unpipelined_send_waits_for_each_reply,
    all_recipients_refused_is_an_error_and_the_transaction_is_reset,
    silent_server_times_out_on_the_greeting,
    a_deadline_longer_than_one_read_tick_is_kept,
    a_dripping_server_does_not_extend_the_deadline,
    an_endless_reply_line_is_bounded,
    tls_required_but_starttls_not_offered_sends_nothing_else,
    tls_required_and_starttls_refused_sends_nothing_else,
    garbage_instead_of_a_handshake_is_a_tls_error,
    bytes_after_the_starttls_reply_are_refused_as_injection,
    starttls_upgrades_and_forgets_what_was_learnt_in_clear,
    certificate_from_an_unknown_ca_is_refused,
    certificate_for_another_name_is_refused,
    implicit_tls_from_the_first_byte,
    tls_required_holds_back_mail_before_tls,
    transcript_shows_both_directions_and_masks_auth,
    hosts_are_tried_in_order,
    size_limit_smtputf8_and_8bit_are_checked_before_sending,
    smtputf8_and_8bitmime_are_declared_when_needed,
    bdat_when_chunking_is_offered_and_asked_for,
    a_large_body_is_streamed_and_stuffed,
    low_level_data_datasend_dataend_and_obsolete_commands,
    connection_closed_mid_reply_is_reported,
    a_reply_that_comes_with_the_354_never_answers_the_message,
    a_reply_that_comes_with_the_last_rcpt_reply_never_answers_bdat,
    a_reply_that_comes_with_a_bdat_chunk_reply_never_answers_the_next_chunk,
    a_reply_that_comes_with_the_354_to_data_stops_datasend,
    recipients_past_the_limit_get_the_message_in_new_transactions,
    a_later_transaction_that_fails_leaves_its_recipients_unsent,
    a_batch_puts_each_mail_behind_the_previous_end_of_data,
    a_batch_cut_off_reports_each_message_unknown_or_not_sent,
    a_batch_meeting_421_reports_the_rest_not_sent,
    pipelined_bdat_chunks_wait_only_when_eight_are_unanswered,
);

fn config(server: &ScriptedServer, mode: TlsMode) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(mode)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .tls(trust_test_ca())
}

fn trust_test_ca() -> TlsConfig {
    TlsConfig::no_default_roots().add_ca_der(test_cert().ca_der.clone())
}

fn from(addr: &str) -> ReversePath {
    ReversePath::Mailbox(Mailbox::new(addr).unwrap())
}

fn to(addr: &str) -> ForwardPath {
    ForwardPath::new(addr).unwrap()
}

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "script failed: {:?}", record.result);
    record
}

fn greeting_ehlo_capabilities_banner_and_domain<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .reply("220 mx.example.test ESMTP ready")
            .expect("EHLO client.test")
            .reply("250-mx.example.test hello\n250-PIPELINING\n250-SIZE 1000\n250 8BITMIME")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    assert_eq!(client.domain().as_deref(), Some("mx.example.test"));
    assert_eq!(client.banner().unwrap().code().get(), 220);
    assert!(client.supports("pipelining"));
    assert!(client.supports("8BITMIME"));
    assert!(!client.supports("STARTTLS"));
    assert!(!client.is_encrypted());
    let bye = client.quit().unwrap().unwrap();
    assert_eq!(bye.code().get(), 221);
    finish_ok(server);
}

fn timeouts_of_any_size_do_not_overflow<C: Driver>() {
    // "Wait for ever" written as Duration::MAX must not overflow a deadline (a panic).
    let server = ScriptedServer::start(
        Script::new()
            .reply("220 mx.example.test ESMTP ready")
            .expect("EHLO client.test")
            .reply("250 mx.example.test hello")
            .expect("NOOP")
            .reply("250 ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let config = config(&server, TlsMode::None).timeouts(Timeouts::uniform(Duration::MAX));
    let mut client = C::connect(config).unwrap();
    assert_eq!(client.noop().unwrap().code().get(), 250);
    assert_eq!(client.quit().unwrap().unwrap().code().get(), 221);
    finish_ok(server);
}

fn ehlo_refused_with_5xx_falls_back_to_helo<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .reply("220 old.example.test")
            .expect("EHLO client.test")
            .reply("502 5.5.1 what is EHLO")
            .expect("HELO client.test")
            .reply("250 old.example.test")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    assert!(client.capabilities().is_none());
    assert_eq!(client.last_reply().unwrap().code().get(), 250);
    client.quit().unwrap();
    finish_ok(server);
}

fn refusal_carries_command_and_full_reply<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["ENHANCEDSTATUSCODES"])
            .expect("MAIL FROM:<alice@example.test>")
            .reply("550 5.7.1 sender rejected")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let err = client
        .mail(&from("alice@example.test"), &MailParams::default())
        .unwrap_err();
    match &err {
        Error::Refused { command, reply } => {
            assert_eq!(command, "MAIL FROM:<alice@example.test>");
            assert_eq!(reply.code().get(), 550);
            assert_eq!(reply.enhanced().unwrap().to_string(), "5.7.1");
            assert!(reply.text().contains("sender rejected"));
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(!err.is_fatal());
    client.quit().unwrap();
    finish_ok(server);
}

fn send_pipelines_envelope_and_reports_each_refused_recipient<C: Driver>() {
    // The server reads MAIL, all RCPTs and DATA before it answers anything: a client that
    // waited for each reply would stall here and time out.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", "8BITMIME"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .expect("RCPT TO:<refused@example.test>")
            .expect("RCPT TO:<carol@example.test>")
            .expect("DATA")
            .reply(
                "250 2.1.0 ok\n250 2.1.5 bob ok\n550 5.1.1 no such user\n251 2.1.5 carol \
                 forwarded\n354 go",
            )
            .read_data()
            .reply("250 2.0.0 queued as ABC123")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let envelope = Envelope::new(
        from("alice@example.test"),
        [
            to("bob@example.test"),
            to("refused@example.test"),
            to("carol@example.test"),
        ],
    );
    let body = b"Subject: t\r\n\r\n.leading dot\r\nend\r\n";
    let report = client.send(&envelope, &body[..]).unwrap();
    assert_eq!(
        report.accepted,
        vec![to("bob@example.test"), to("carol@example.test")]
    );
    // Each accepted recipient with its own RCPT reply.
    let replies: Vec<(ForwardPath, u16, String)> = report
        .accepted_replies
        .iter()
        .map(|r| (r.recipient.clone(), r.reply.code().get(), r.reply.text()))
        .collect();
    assert_eq!(
        replies,
        [
            (to("bob@example.test"), 250, "2.1.5 bob ok".to_owned()),
            (
                to("carol@example.test"),
                251,
                "2.1.5 carol forwarded".to_owned()
            ),
        ]
    );
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].recipient, to("refused@example.test"));
    assert_eq!(report.refused[0].reply.code().get(), 550);
    assert!(report.reply.text().contains("ABC123"));
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(
        record.messages[0],
        b"Subject: t\r\n\r\n..leading dot\r\nend\r\n.\r\n".to_vec()
    );
}

fn unpipelined_send_waits_for_each_reply<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["SIZE 100000"])
            .expect("MAIL FROM:<> SIZE=20")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go")
            .read_data()
            .reply("250 queued")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let envelope = Envelope::new(ReversePath::Null, [to("bob@example.test")]).size(20);
    let report = client
        .send(&envelope, &b"Subject: x\r\n\r\nhello"[..])
        .unwrap();
    assert_eq!(report.reply.code().get(), 250);
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(
        record.messages[0],
        b"Subject: x\r\n\r\nhello\r\n.\r\n".to_vec()
    );
}

fn all_recipients_refused_is_an_error_and_the_transaction_is_reset<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<x@example.test>")
            .expect("DATA")
            .reply("250 ok\n550 5.1.1 unknown\n554 5.5.1 no valid recipients")
            .expect("RSET")
            .reply("250 reset")
            .expect("NOOP")
            .reply("250 still here"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let envelope = Envelope::new(from("alice@example.test"), [to("x@example.test")]);
    let err = client.send(&envelope, &b"hi\r\n"[..]).unwrap_err();
    match err {
        Error::RecipientsRefused { refused } => {
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].recipient, to("x@example.test"));
            assert_eq!(refused[0].reply.enhanced().unwrap().to_string(), "5.1.1");
        }
        other => panic!("expected RecipientsRefused, got {other:?}"),
    }
    // The session is still usable.
    assert_eq!(client.noop().unwrap().code().get(), 250);
    finish_ok(server);
}

fn silent_server_times_out_on_the_greeting<C: Driver>() {
    let server =
        ScriptedServer::start(Script::new().pause(Duration::from_secs(3)).close()).unwrap();
    let mut timeouts = Timeouts::uniform(Duration::from_secs(5));
    timeouts.greeting = Duration::from_millis(300);
    let start = Instant::now();
    let err = C::connect(config(&server, TlsMode::None).timeouts(timeouts)).unwrap_err();
    assert!(
        matches!(&err, Error::Timeout { awaiting, .. } if awaiting == "the greeting"),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    server.finish();
}

fn a_deadline_longer_than_one_read_tick_is_kept<C: Driver>() {
    // The blocking driver wakes at least once a second to check the deadline; a deadline
    // of 1.6 s spans two such waits. Too early means a wake-up was taken for the deadline;
    // far too late means the deadline was lost between waits.
    let server =
        ScriptedServer::start(Script::new().pause(Duration::from_secs(4)).close()).unwrap();
    let mut timeouts = Timeouts::uniform(Duration::from_secs(5));
    timeouts.greeting = Duration::from_millis(1600);
    let start = Instant::now();
    let err = C::connect(config(&server, TlsMode::None).timeouts(timeouts)).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(&err, Error::Timeout { awaiting, .. } if awaiting == "the greeting"),
        "{err:?}"
    );
    assert!(elapsed >= Duration::from_millis(1600), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(3000), "{elapsed:?}");
    server.finish();
}

fn a_dripping_server_does_not_extend_the_deadline<C: Driver>() {
    // 17 bytes at one per 100 ms take 1.7 s; the reply deadline is 500 ms. A client that
    // restarted its timer on each byte would wait for the whole reply and succeed.
    let server = ScriptedServer::start(
        Script::new()
            .drip("220 hello there\r\n", Duration::from_millis(100))
            .close(),
    )
    .unwrap();
    let mut timeouts = Timeouts::uniform(Duration::from_secs(5));
    timeouts.greeting = Duration::from_millis(500);
    let start = Instant::now();
    let err = C::connect(config(&server, TlsMode::None).timeouts(timeouts)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_millis(1200));
    server.finish();
}

fn an_endless_reply_line_is_bounded<C: Driver>() {
    let mut long = b"220 ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 100_000));
    let server =
        ScriptedServer::start(Script::new().send(long).pause(Duration::from_secs(1))).unwrap();
    let err = C::connect(config(&server, TlsMode::None)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(ProtocolError::BadReply(ReplyError::LineTooLong { .. }))
        ),
        "{err:?}"
    );
    server.finish();
}

fn tls_required_but_starttls_not_offered_sends_nothing_else<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", "AUTH PLAIN"])
            .expect_eof(),
    )
    .unwrap();
    let err = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap_err();
    assert!(
        matches!(err, Error::TlsRequired(TlsUnavailable::NotOffered)),
        "{err:?}"
    );
    let record = finish_ok(server);
    assert_eq!(record.clear_lines(), vec!["EHLO client.test"]);
}

fn tls_required_and_starttls_refused_sends_nothing_else<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["STARTTLS"])
            .expect("STARTTLS")
            .reply("454 4.7.0 TLS not available")
            .expect_eof(),
    )
    .unwrap();
    let err = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap_err();
    match err {
        Error::TlsRequired(TlsUnavailable::Refused(reply)) => assert_eq!(reply.code().get(), 454),
        other => panic!("expected TlsRequired(Refused), got {other:?}"),
    }
    let record = finish_ok(server);
    assert_eq!(record.clear_lines(), vec!["EHLO client.test", "STARTTLS"]);
}

fn garbage_instead_of_a_handshake_is_a_tls_error<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["STARTTLS"])
            .expect("STARTTLS")
            .reply("220 go ahead")
            .pause(Duration::from_millis(100))
            .send("this is not TLS at all\r\n250 ok\r\n")
            .pause(Duration::from_millis(500)),
    )
    .unwrap();
    let err = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    let record = server.finish();
    assert!(!record.sent_in_clear("MAIL"));
    assert!(!record.sent_in_clear("AUTH"));
    assert_eq!(
        record
            .clear_lines()
            .iter()
            .filter(|l| l.starts_with("EHLO"))
            .count(),
        1
    );
}

fn bytes_after_the_starttls_reply_are_refused_as_injection<C: Driver>() {
    // CVE-2011-0411: a man in the middle appends a reply after "220"; a client that kept it
    // would read it as the answer to its first command inside TLS.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["STARTTLS"])
            .expect("STARTTLS")
            .send("220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n")
            .pause(Duration::from_millis(300)),
    )
    .unwrap();
    let err = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(ProtocolError::BytesBeforeTlsHandshake(n)) if n > 0
        ),
        "{err:?}"
    );
    let record = server.finish();
    assert_eq!(record.clear_lines(), vec!["EHLO client.test", "STARTTLS"]);
    assert!(record.tls_text.is_empty());
}

fn starttls_script() -> Script {
    Script::new()
        .greet_ehlo(&["STARTTLS", "SIZE 100"])
        .expect("STARTTLS")
        .reply("220 go ahead")
        .start_tls()
        .expect("EHLO client.test")
        .reply("250-test.invalid\n250-SIZE 2000\n250 AUTH PLAIN")
}

fn starttls_upgrades_and_forgets_what_was_learnt_in_clear<C: Driver>() {
    let server = ScriptedServer::start(
        starttls_script()
            .expect("MAIL FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap();
    assert!(client.is_encrypted());
    assert!(!client.supports("STARTTLS"));
    assert!(client.supports("AUTH"));
    assert_eq!(
        client.capabilities().unwrap().size(),
        Some(smtp_proto::SizeLimit::Max(2000))
    );
    client
        .mail(&from("alice@example.test"), &MailParams::default())
        .unwrap();
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(record.clear_lines(), vec!["EHLO client.test", "STARTTLS"]);
    assert_eq!(
        record.tls_lines(),
        vec!["EHLO client.test", "MAIL FROM:<alice@example.test>", "QUIT"]
    );
}

fn certificate_from_an_unknown_ca_is_refused<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["STARTTLS"])
            .expect("STARTTLS")
            .reply("220 go ahead")
            .start_tls(),
    )
    .unwrap();
    let config = config(&server, TlsMode::StartTlsRequired).tls(TlsConfig::webpki_roots());
    let err = C::connect(config).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(TlsError::Handshake(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )))
        ),
        "{err:?}"
    );
    server.finish();
}

fn certificate_for_another_name_is_refused<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["STARTTLS"])
            .expect("STARTTLS")
            .reply("220 go ahead")
            .start_tls(),
    )
    .unwrap();
    let config = config(&server, TlsMode::StartTlsRequired)
        .tls(trust_test_ca().server_name("mail.example.test"));
    let err = C::connect(config).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(TlsError::Handshake(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            )))
        ),
        "{err:?}"
    );
    server.finish();
}

fn implicit_tls_from_the_first_byte<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .start_tls()
            .reply("220 tls.example.test ESMTP")
            .expect("EHLO client.test")
            .reply("250 tls.example.test")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::Implicit)).unwrap();
    assert!(client.is_encrypted());
    assert_eq!(client.domain().as_deref(), Some("tls.example.test"));
    client.quit().unwrap();
    let record = finish_ok(server);
    assert!(record.clear_lines().is_empty());
}

fn tls_required_holds_back_mail_before_tls<C: Driver>() {
    // SendHello off: connected after the greeting only, still in clear.
    let server = ScriptedServer::start(
        Script::new()
            .reply("220 mx.example.test")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client =
        C::connect(config(&server, TlsMode::StartTlsRequired).send_hello(false)).unwrap();
    let err = client
        .mail(&from("alice@example.test"), &MailParams::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TlsRequired(TlsUnavailable::NotYetEstablished { verb: "MAIL" })
        ),
        "{err:?}"
    );
    let auth = Command::Auth {
        mechanism: "PLAIN",
        initial_response: Some(b"\0user\0secret"),
    };
    assert!(matches!(client.command(&auth), Err(Error::TlsRequired(_))));
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(record.clear_lines(), vec!["QUIT"]);
}

fn transcript_shows_both_directions_and_masks_auth<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH PLAIN LOGIN"])
            .expect("AUTH PLAIN AHVzZXIAc2VjcmV0")
            .reply("235 2.7.0 ok")
            .expect("AUTH LOGIN")
            .reply("334 VXNlcm5hbWU6")
            .expect("c2VjcmV0")
            .reply("535 5.7.8 no"),
    )
    .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<(Direction, String)>::new()));
    let sink = lines.clone();
    let config = config(&server, TlsMode::None)
        .transcript(move |d, l| sink.lock().unwrap().push((d, l.to_owned())));
    let mut client = C::connect(config).unwrap();
    let auth = Command::Auth {
        mechanism: "PLAIN",
        initial_response: Some(b"\0user\0secret"),
    };
    assert_eq!(client.command(&auth).unwrap().code().get(), 235);
    let login = Command::Auth {
        mechanism: "LOGIN",
        initial_response: None,
    };
    assert_eq!(client.command(&login).unwrap().code().get(), 334);
    // The reply is returned whatever its code.
    let reply = client.command(&Command::AuthResponse(b"secret")).unwrap();
    assert_eq!(reply.code().get(), 535);
    finish_ok(server);
    let lines = lines.lock().unwrap();
    let all: Vec<String> = lines.iter().map(|(d, l)| format!("{d} {l}")).collect();
    assert!(
        all.contains(&"<<< 220 test.invalid ESMTP scripted".to_owned()),
        "{all:?}"
    );
    assert!(all.contains(&">>> EHLO client.test".to_owned()), "{all:?}");
    assert!(all.contains(&">>> AUTH PLAIN ****".to_owned()), "{all:?}");
    assert!(all.contains(&">>> AUTH LOGIN".to_owned()), "{all:?}");
    assert!(all.contains(&"<<< 535 5.7.8 no".to_owned()), "{all:?}");
    for line in all.iter() {
        assert!(!line.contains("AHVzZXIAc2VjcmV0"), "secret in {line}");
        assert!(!line.contains("c2VjcmV0"), "secret in {line}");
        assert!(!line.contains("secret"), "secret in {line}");
    }
}

fn hosts_are_tried_in_order<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .reply("220 second.example.test")
            .expect("EHLO client.test")
            .reply("250 second")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    // 127.0.0.2 is loopback too, but nothing listens there on this port.
    let config = ClientConfig::new("127.0.0.2")
        .host("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.test").unwrap());
    let mut client = C::connect(config).unwrap();
    assert_eq!(client.domain().as_deref(), Some("second.example.test"));
    assert_eq!(client.peer_addr(), server.addr());
    client.quit().unwrap();
    finish_ok(server);
}

fn size_limit_smtputf8_and_8bit_are_checked_before_sending<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["SIZE 1000"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let big = Envelope::new(from("alice@example.test"), [to("bob@example.test")]).size(5000);
    let err = client.send(&big, &b"x"[..]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SizeExceeded {
                size: 5000,
                limit: 1000
            }
        ),
        "{err:?}"
    );
    let utf8 = Envelope::new(from("jürgen@example.test"), [to("bob@example.test")]);
    let err = client.send(&utf8, &b"x"[..]).unwrap_err();
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
    let plain = Envelope::new(from("alice@example.test"), [to("bob@example.test")]);
    let err = client
        .send(&plain, "Subject: café\r\n\r\n".as_bytes())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ExtensionMissing {
                extension: "8BITMIME",
                ..
            }
        ),
        "{err:?}"
    );
    client.quit().unwrap();
    let record = finish_ok(server);
    assert!(!record.sent_in_clear("MAIL"));
}

fn smtputf8_and_8bitmime_are_declared_when_needed<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["8BITMIME", "SMTPUTF8"])
            .expect("MAIL FROM:<jürgen@example.test> BODY=8BITMIME SMTPUTF8")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go")
            .read_data()
            .reply("250 ok"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env = Envelope::new(from("jürgen@example.test"), [to("bob@example.test")]);
    client
        .send(&env, "Subject: café\r\n\r\nhé\r\n".as_bytes())
        .unwrap();
    let record = finish_ok(server);
    assert_eq!(
        record.messages[0],
        "Subject: café\r\n\r\nhé\r\n.\r\n".as_bytes()
    );
}

fn bdat_when_chunking_is_offered_and_asked_for<C: Driver>() {
    let body = b"Subject: chunk\r\n\r\nline\r\n.dot\r\n";
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", "CHUNKING"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok\n250 ok")
            .expect(&format!("BDAT {} LAST", body.len()))
            .read_bytes(body.len())
            .reply("250 2.0.0 queued"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env =
        Envelope::new(from("alice@example.test"), [to("bob@example.test")]).prefer_chunking(true);
    let report = client.send(&env, &body[..]).unwrap();
    assert!(report.reply.text().contains("queued"));
    let record = finish_ok(server);
    assert_eq!(record.messages[0], body.to_vec());
}

fn a_large_body_is_streamed_and_stuffed<C: Driver>() {
    // 1 MiB in 64 KiB chunks, every line starting with a dot.
    let line = b".0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n";
    let count = 1024 * 1024 / line.len();
    let body: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * count)
        .collect();
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .expect("DATA")
            .reply("250 ok\n250 ok\n354 go")
            .read_data()
            .reply("250 ok"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env = Envelope::new(from("alice@example.test"), [to("bob@example.test")]);
    client.send(&env, &body[..]).unwrap();
    let record = finish_ok(server);
    let got = &record.messages[0];
    assert_eq!(got.len(), body.len() + count + 3);
    assert!(got.starts_with(b"..0123"));
    assert!(got.ends_with(b"abcd\r\n.\r\n"));
}

fn low_level_data_datasend_dataend_and_obsolete_commands<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[])
            .expect("MAIL FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go")
            .read_data()
            .reply("250 done")
            .expect("VRFY bob")
            .reply("252 cannot verify")
            .expect("RSET")
            .reply("250 ok")
            .expect("SEND FROM:<alice@example.test>")
            .reply("502 5.5.1 SEND not implemented")
            .expect("SOML FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("SAML FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2")
            .reply("250 2.0.0 Ok"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    client
        .mail(&from("alice@example.test"), &MailParams::default())
        .unwrap();
    client
        .rcpt(&to("bob@example.test"), &Default::default())
        .unwrap();
    client.data().unwrap();
    client.datasend(b"Subject: a\n\n.x").unwrap();
    client.datasend(b"\nend").unwrap();
    assert_eq!(client.dataend().unwrap().text(), "done");
    let vrfy = client
        .verify(&smtp_proto::Text::new("bob").unwrap())
        .unwrap();
    assert_eq!(vrfy.code().get(), 252);
    client.reset().unwrap();
    // RFC 821's SEND, SOML and SAML go out as Net::SMTP sends them; a 502 is a refusal.
    let alice = from("alice@example.test");
    let send = client.send_to_terminal(&alice).unwrap_err();
    assert!(
        matches!(&send, Error::Refused { command, reply }
            if command == "SEND FROM:<alice@example.test>" && reply.code().get() == 502),
        "{send:?}"
    );
    assert_eq!(client.send_or_mail(&alice).unwrap().code().get(), 250);
    assert_eq!(client.send_and_mail(&alice).unwrap().code().get(), 250);
    // Any extension verb, Net::Cmd's command(VERB, ARGS) (Postfix's XFORWARD_README).
    let verb = smtp_proto::Verb::new("XFORWARD").unwrap();
    let args = [
        smtp_proto::Argument::new("NAME=spike.porcupine.org").unwrap(),
        smtp_proto::Argument::new("ADDR=168.100.189.2").unwrap(),
    ];
    let reply = client
        .command(&Command::Extension {
            verb: &verb,
            args: &args,
        })
        .unwrap();
    assert_eq!(reply.code().get(), 250);
    // A verb the session keeps its own books on cannot be smuggled in as an extension.
    assert!(smtp_proto::Verb::new("DATA").is_err());
    assert!(smtp_proto::Argument::new("a\r\nRCPT TO:<x@y>").is_err());
    let record = finish_ok(server);
    assert_eq!(
        record.messages[0],
        b"Subject: a\r\n\r\n..x\r\nend\r\n.\r\n".to_vec()
    );
}

fn connection_closed_mid_reply_is_reported<C: Driver>() {
    let server = ScriptedServer::start(Script::new().send("220-partial\r\n").close()).unwrap();
    let err = C::connect(config(&server, TlsMode::None)).unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed { .. }), "{err:?}");
    server.finish();
}

fn assert_unsolicited(err: &Error, text: &str) {
    assert!(
        matches!(err, Error::Protocol(ProtocolError::UnsolicitedReply(t)) if t.contains(text)),
        "{err:?}"
    );
}

fn a_reply_that_comes_with_the_354_never_answers_the_message<C: Driver>() {
    // Pipelined and not: a 250 sent with the 354, before any of the message, would
    // otherwise be read as the reply to the end of data, and the real one as QUIT's.
    for pipelined in [true, false] {
        let script = if pipelined {
            Script::new()
                .greet_ehlo(&["PIPELINING"])
                .expect("MAIL FROM:<alice@example.test>")
                .expect("RCPT TO:<bob@example.test>")
                .expect("DATA")
                .reply("250 ok\n250 ok\n354 go\n250 2.0.0 spoofed")
        } else {
            Script::new()
                .greet_ehlo(&[])
                .expect("MAIL FROM:<alice@example.test>")
                .reply("250 ok")
                .expect("RCPT TO:<bob@example.test>")
                .reply("250 ok")
                .expect("DATA")
                .reply("354 go\n250 2.0.0 spoofed")
        };
        let server = ScriptedServer::start(script.expect_eof()).unwrap();
        let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
        let env = Envelope::new(from("alice@example.test"), [to("bob@example.test")]);
        let err = client
            .send(&env, &b"Subject: x\r\n\r\nhi\r\n"[..])
            .unwrap_err();
        assert_unsolicited(&err, "spoofed");
        assert!(err.is_fatal());
        // Nothing of the message was sent: the server saw the connection close.
        finish_ok(server);
    }
}

fn a_reply_that_comes_with_the_last_rcpt_reply_never_answers_bdat<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", "CHUNKING"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok\n250 ok\n250 2.0.0 spoofed")
            .expect_eof(),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env =
        Envelope::new(from("alice@example.test"), [to("bob@example.test")]).prefer_chunking(true);
    let err = client
        .send(&env, &b"Subject: x\r\n\r\nhi\r\n"[..])
        .unwrap_err();
    assert_unsolicited(&err, "spoofed");
    finish_ok(server);
}

fn a_reply_that_comes_with_a_bdat_chunk_reply_never_answers_the_next_chunk<C: Driver>() {
    // Without PIPELINING each chunk waits for its reply: a second reply sent with it must
    // not be read as the answer to the next chunk.
    let body = vec![b'x'; smtp_client::BODY_CHUNK + 10];
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["CHUNKING"])
            .expect("MAIL FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect(&format!("BDAT {}", smtp_client::BODY_CHUNK))
            .read_bytes(smtp_client::BODY_CHUNK)
            .reply("250 chunk ok\n250 2.0.0 spoofed")
            .expect_eof(),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env =
        Envelope::new(from("alice@example.test"), [to("bob@example.test")]).prefer_chunking(true);
    let err = client.send(&env, &body[..]).unwrap_err();
    assert_unsolicited(&err, "spoofed");
    finish_ok(server);
}

fn a_reply_that_comes_with_the_354_to_data_stops_datasend<C: Driver>() {
    for end_at_once in [false, true] {
        let server = ScriptedServer::start(
            Script::new()
                .greet_ehlo(&[])
                .expect("DATA")
                .reply("354 go\n250 2.0.0 spoofed")
                .expect_eof(),
        )
        .unwrap();
        let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
        assert_eq!(client.data().unwrap().code().get(), 354);
        let err = if end_at_once {
            client.dataend().unwrap_err()
        } else {
            client.datasend(b"Subject: x\r\n\r\nhi\r\n").unwrap_err()
        };
        assert_unsolicited(&err, "spoofed");
        // The session refuses to go on: nothing more is sent.
        assert!(client.noop().is_err());
        drop(client);
        finish_ok(server);
    }
}

/// The replies to a pipelined MAIL, RCPTs and DATA: `ok` recipients accepted, the rest of
/// `rcpts` answered `rest`.
fn envelope_replies(rcpts: usize, ok: usize, rest: &str) -> String {
    let mut replies = vec!["250 2.1.0 ok".to_owned()];
    for i in 0..rcpts {
        replies.push(if i < ok {
            "250 2.1.5 ok".to_owned()
        } else {
            rest.to_owned()
        });
    }
    replies.push("354 go".to_owned());
    replies.join("\n")
}

fn recipients_past_the_limit_get_the_message_in_new_transactions<C: Driver>() {
    // A server that takes two recipients per transaction (RFC 5321 4.5.3.1.10), and
    // refuses one recipient for good and another for now.
    let too_many = "452 4.5.3 Error: too many recipients";
    let names = ["a", "full", "b", "c", "gone", "d"];
    let rcpt = |n: &str| format!("RCPT TO:<{n}@example.test>");
    let mut script = Script::new().greet_ehlo(&["PIPELINING"]);
    // Transaction 1: a accepted, full 452 4.2.2 (mailbox full: temporary, not deferred),
    // b accepted, then the limit: c, gone, d deferred.
    script = script.expect("MAIL FROM:<alice@example.test>");
    for n in names {
        script = script.expect(&rcpt(n));
    }
    let replies = [
        "250 2.1.0 ok",
        "250 ok",
        "452 4.2.2 mailbox full",
        "250 ok",
        too_many,
        too_many,
        too_many,
        "354 go",
    ];
    script = script
        .expect("DATA")
        .reply(&replies.join("\n"))
        .read_data()
        .reply("250 2.0.0 queued as ONE");
    // Transaction 2: c accepted, gone refused for good, d past the limit again.
    script = script.expect("MAIL FROM:<alice@example.test>");
    for n in ["c", "gone", "d"] {
        script = script.expect(&rcpt(n));
    }
    let replies = [
        "250 ok",
        "250 ok",
        "550 5.1.1 no such user",
        too_many,
        "354 go",
    ];
    script = script
        .expect("DATA")
        .reply(&replies.join("\n"))
        .read_data()
        .reply("250 2.0.0 queued as TWO");
    // Transaction 3: d.
    script = script
        .expect("MAIL FROM:<alice@example.test>")
        .expect(&rcpt("d"))
        .expect("DATA")
        .reply(&envelope_replies(1, 1, ""))
        .read_data()
        .reply("250 2.0.0 queued as THREE")
        .expect("QUIT")
        .reply("221 bye");
    let server = ScriptedServer::start(script).unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env = Envelope::new(
        from("alice@example.test"),
        names.map(|n| to(&format!("{n}@example.test"))),
    );
    let body = b"Subject: many\r\n\r\nonce each\r\n";
    let delivery = client.send_to_all(&env, &body[..]).unwrap();
    let queued: Vec<String> = delivery
        .transactions
        .iter()
        .map(|t| t.reply.text())
        .collect();
    assert_eq!(queued.len(), 3, "{queued:?}");
    assert!(queued[2].ends_with("THREE"));
    let accepted: Vec<_> = delivery.accepted().cloned().collect();
    assert_eq!(
        accepted,
        ["a", "b", "c", "d"].map(|n| to(&format!("{n}@example.test")))
    );
    let refused: Vec<(String, bool)> = delivery
        .refused()
        .map(|r| (r.recipient.to_string(), r.is_temporary()))
        .collect();
    assert_eq!(
        refused,
        [
            ("<full@example.test>".to_owned(), true),
            ("<gone@example.test>".to_owned(), false)
        ]
    );
    assert!(delivery.unsent().is_empty());
    assert!(!delivery.all_accepted());
    // The first transaction's report says who was left for the next one.
    let deferred: Vec<_> = delivery.transactions[0]
        .deferred
        .iter()
        .map(|d| d.recipient.to_string())
        .collect();
    assert_eq!(
        deferred,
        [
            "<c@example.test>",
            "<gone@example.test>",
            "<d@example.test>"
        ]
    );
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(record.messages.len(), 3);
    for m in &record.messages {
        assert_eq!(m, &b"Subject: many\r\n\r\nonce each\r\n.\r\n".to_vec());
    }
}

fn a_later_transaction_that_fails_leaves_its_recipients_unsent<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<a@example.test>")
            .expect("RCPT TO:<b@example.test>")
            .expect("DATA")
            .reply(&envelope_replies(2, 1, "452 4.5.3 too many recipients"))
            .read_data()
            .reply("250 queued")
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<b@example.test>")
            .expect("DATA")
            .reply("421 4.3.2 shutting down")
            .expect_eof(),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env = Envelope::new(
        from("alice@example.test"),
        [to("a@example.test"), to("b@example.test")],
    );
    let delivery = client.send_to_all(&env, &b"x\r\n"[..]).unwrap();
    assert_eq!(delivery.accepted().count(), 1);
    assert_eq!(delivery.unsent(), [to("b@example.test")]);
    let (_, err) = delivery.stopped.as_ref().unwrap();
    assert_eq!(err.reply().map(|r| r.code().get()), Some(421), "{err:?}");
    drop(client);
    finish_ok(server);
}

fn batch_of(names: &[&str]) -> Vec<(Envelope, Vec<u8>)> {
    names
        .iter()
        .map(|n| {
            let env = Envelope::new(
                from("alice@example.test"),
                [to(&format!("{n}@example.test"))],
            );
            (env, format!("Subject: {n}\r\n\r\nfor {n}\r\n").into_bytes())
        })
        .collect()
}

fn states(results: &[smtp_client::MessageResult]) -> Vec<(usize, &'static str)> {
    results
        .iter()
        .map(|r| {
            let state = match &r.state {
                smtp_client::MessageState::Accepted(_) => "accepted",
                smtp_client::MessageState::Refused(_) => "refused",
                smtp_client::MessageState::NotSent(_) => "not sent",
                smtp_client::MessageState::Unknown(_) => "unknown",
            };
            (r.index, state)
        })
        .collect()
}

fn a_batch_puts_each_mail_behind_the_previous_end_of_data<C: Driver>() {
    // The server answers a message's end of data only once it has read the next message's
    // MAIL, RCPT and DATA: a client that waited for that reply first would stall here.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<one@example.test>")
            .expect("DATA")
            .reply("250 ok\n250 ok\n354 go")
            .read_data()
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<two@example.test>")
            .expect("DATA")
            .reply("250 queued 1\n250 ok\n250 ok\n354 go")
            .read_data()
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<bad@example.test>")
            .expect("DATA")
            .reply("250 queued 2\n250 ok\n550 5.1.1 no such user\n554 5.5.1 no valid recipients")
            // Message three failed: RSET before message four's MAIL.
            .expect("RSET")
            .reply("250 ok")
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<four@example.test>")
            .expect("DATA")
            .reply("250 ok\n250 ok\n354 go")
            .read_data()
            .reply("250 queued 4")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let (summary, results) = client
        .send_batch(batch_of(&["one", "two", "bad", "four"]))
        .unwrap();
    assert_eq!(
        states(&results),
        [
            (0, "accepted"),
            (1, "accepted"),
            (2, "refused"),
            (3, "accepted")
        ]
    );
    let smtp_client::MessageState::Accepted(report) = &results[3].state else {
        panic!("{:?}", results[3]);
    };
    assert_eq!(report.reply.text(), "queued 4");
    let smtp_client::MessageState::Refused(err) = &results[2].state else {
        panic!("{:?}", results[2]);
    };
    assert!(matches!(err, Error::RecipientsRefused { .. }), "{err:?}");
    assert_eq!(
        (summary.accepted, summary.refused, summary.total()),
        (3, 1, 4)
    );
    assert!(summary.connection_error.is_none());
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(record.messages.len(), 3);
    assert_eq!(
        record.messages[1],
        b"Subject: two\r\n\r\nfor two\r\n.\r\n".to_vec()
    );
}

fn a_batch_cut_off_reports_each_message_unknown_or_not_sent<C: Driver>() {
    // Message one's end of data went out and no reply came: unknown. Message two waited
    // for its 354: not sent. Message three was never started: not sent.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<one@example.test>")
            .expect("DATA")
            .reply("250 ok\n250 ok\n354 go")
            .read_data()
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<two@example.test>")
            .expect("DATA")
            .close(),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let (summary, results) = client
        .send_batch(batch_of(&["one", "two", "three"]))
        .unwrap();
    assert_eq!(
        states(&results),
        [(0, "unknown"), (1, "not sent"), (2, "not sent")]
    );
    assert_eq!((summary.unknown, summary.not_sent), (1, 2));
    assert!(summary.connection_error.is_some());
    // The connection is gone: nothing more is sent.
    assert!(client.noop().is_err());
    finish_ok(server);
}

fn a_batch_meeting_421_reports_the_rest_not_sent<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<one@example.test>")
            .expect("DATA")
            .reply("250 ok\n250 ok\n354 go")
            .read_data()
            .expect("MAIL FROM:<alice@example.test>")
            .expect("RCPT TO:<two@example.test>")
            .expect("DATA")
            .reply("250 queued 1\n421 4.3.2 shutting down")
            .expect_eof(),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let (summary, results) = client
        .send_batch(batch_of(&["one", "two", "three"]))
        .unwrap();
    assert_eq!(
        states(&results),
        [(0, "accepted"), (1, "not sent"), (2, "not sent")]
    );
    let smtp_client::MessageState::NotSent(err) = &results[1].state else {
        panic!("{:?}", results[1]);
    };
    assert_eq!(err.reply().map(|r| r.code().get()), Some(421));
    assert_eq!(summary.accepted, 1);
    drop(client);
    finish_ok(server);
}

fn pipelined_bdat_chunks_wait_only_when_eight_are_unanswered<C: Driver>() {
    // The server answers nothing until it has eight chunks: a client that waited for each
    // 250 would stall; one that never waited would send the ninth before the replies.
    let chunk = smtp_client::BODY_CHUNK;
    let body: Vec<u8> = (0..chunk * 9 + 10)
        .map(|i| b"abcdefgh\r\n"[i % 10])
        .collect();
    let mut script = Script::new()
        .greet_ehlo(&["PIPELINING", "CHUNKING"])
        .expect("MAIL FROM:<alice@example.test>")
        .expect("RCPT TO:<bob@example.test>")
        .reply("250 ok\n250 ok");
    for _ in 0..8 {
        script = script.expect(&format!("BDAT {chunk}")).read_bytes(chunk);
    }
    script = script
        .reply(&["250 2.0.0 chunk ok"; 8].join("\n"))
        .expect(&format!("BDAT {chunk}"))
        .read_bytes(chunk)
        .expect("BDAT 10 LAST")
        .read_bytes(10)
        .reply("250 2.0.0 chunk ok\n250 2.0.0 queued")
        .expect("QUIT")
        .reply("221 bye");
    let server = ScriptedServer::start(script).unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env =
        Envelope::new(from("alice@example.test"), [to("bob@example.test")]).prefer_chunking(true);
    let report = client.send(&env, &body).unwrap();
    assert_eq!(report.reply.text(), "2.0.0 queued");
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(record.messages.concat(), body);
}
