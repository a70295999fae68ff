//! LMTP (RFC 2033) against scripted servers, on both drivers: LHLO, one reply per accepted
//! recipient after the end of data, servers that send too few or too many of them, and the
//! Unix-domain socket LMTP servers usually listen on.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use smtp_client::{ClientConfig, Envelope, Error, Protocol, ProtocolError, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_testserver::scripted::{Record, Script, ScriptedServer};

use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    lhlo_then_one_reply_per_accepted_recipient_in_rcpt_order,
    bdat_last_gets_the_per_recipient_replies,
    every_recipient_refused_after_the_data_is_an_error,
    too_few_replies_time_out_naming_the_recipient,
    too_few_replies_then_close_names_the_recipient,
    a_reply_too_many_is_a_stray_reply,
    a_refused_lhlo_is_final_no_helo,
    over_a_unix_socket,
    tls_over_a_unix_socket_is_refused_before_connecting,
);

fn config(server: &ScriptedServer) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::None)
        .protocol(Protocol::Lmtp)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
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

/// Greeting, LHLO and its reply with `capabilities`.
fn greet_lhlo(capabilities: &str) -> Script {
    Script::new()
        .reply("220 lmtp.test LMTP ready")
        .expect("LHLO client.test")
        .reply(&format!("250-lmtp.test\n250 {capabilities}"))
}

fn three() -> Envelope {
    Envelope::new(
        from("sender@example.test"),
        [
            to("alice@example.test"),
            to("nobody@example.test"),
            to("bob@example.test"),
            to("carol@example.test"),
        ],
    )
}

fn lhlo_then_one_reply_per_accepted_recipient_in_rcpt_order<C: Driver>() {
    // RFC 2033 4.2's example: one reply per successful RCPT, in order, after the ".".
    let server = ScriptedServer::start(
        greet_lhlo("PIPELINING")
            .expect("MAIL FROM:<sender@example.test>")
            .expect("RCPT TO:<alice@example.test>")
            .expect("RCPT TO:<nobody@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .expect("RCPT TO:<carol@example.test>")
            .expect("DATA")
            .reply(
                "250 2.1.0 ok\n250 2.1.5 ok\n550 5.1.1 <nobody@example.test> User doesn't exist\n\
                 250 2.1.5 ok\n250 2.1.5 ok\n354 go",
            )
            .read_data()
            .reply(
                "250 2.0.0 <alice@example.test> Saved\n\
                 552 5.2.2 <bob@example.test> Quota exceeded\n\
                 250 2.0.0 <carol@example.test> Saved",
            )
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    assert!(client.supports("PIPELINING"));
    let report = client
        .send(&three(), &b"Subject: t\r\n\r\nhi\r\n"[..])
        .unwrap();
    assert_eq!(
        report.accepted,
        [
            to("alice@example.test"),
            to("bob@example.test"),
            to("carol@example.test")
        ]
    );
    assert_eq!(report.refused.len(), 1);
    let per: Vec<(String, u16)> = report
        .per_recipient
        .iter()
        .map(|r| (r.recipient.to_string(), r.reply.code().get()))
        .collect();
    assert_eq!(
        per,
        [
            ("<alice@example.test>".to_owned(), 250),
            ("<bob@example.test>".to_owned(), 552),
            ("<carol@example.test>".to_owned(), 250),
        ]
    );
    assert!(report.reply.text().contains("alice"));
    assert_eq!(
        report.delivered(),
        [&to("alice@example.test"), &to("carol@example.test")]
    );
    client.quit().unwrap();
    let record = finish_ok(server);
    assert!(!record.sent_in_clear("EHLO"));
}

fn bdat_last_gets_the_per_recipient_replies<C: Driver>() {
    let server = ScriptedServer::start(
        greet_lhlo("CHUNKING")
            .expect("MAIL FROM:<sender@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("BDAT 4 LAST")
            .read_bytes(4)
            .reply("250 2.0.0 <alice@example.test> Saved\n452 4.2.2 <bob@example.test> Try later")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server).pipelining(false)).unwrap();
    let envelope = Envelope::new(
        from("sender@example.test"),
        [to("alice@example.test"), to("bob@example.test")],
    )
    .prefer_chunking(true);
    let report = client.send(&envelope, &b"hi\r\n"[..]).unwrap();
    assert_eq!(report.per_recipient.len(), 2);
    assert_eq!(report.per_recipient[1].reply.code().get(), 452);
    assert_eq!(report.delivered(), [&to("alice@example.test")]);
    client.quit().unwrap();
    finish_ok(server);
}

fn every_recipient_refused_after_the_data_is_an_error<C: Driver>() {
    let server = ScriptedServer::start(
        greet_lhlo("8BITMIME")
            .expect("MAIL FROM:<sender@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go")
            .read_data()
            .reply("552 5.2.2 <alice@example.test> Quota\n552 5.2.2 <bob@example.test> Quota")
            .expect("NOOP")
            .reply("250 ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let envelope = Envelope::new(
        from("sender@example.test"),
        [to("alice@example.test"), to("bob@example.test")],
    );
    let err = client.send(&envelope, &b"hi\r\n"[..]).unwrap_err();
    let Error::RecipientsRefused { refused } = &err else {
        panic!("expected RecipientsRefused, got {err:?}");
    };
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[1].recipient, to("bob@example.test"));
    // The transaction is over (no RSET) and the session still usable.
    client.noop().unwrap();
    client.quit().unwrap();
    finish_ok(server);
}

fn too_few_replies_time_out_naming_the_recipient<C: Driver>() {
    let server = ScriptedServer::start(
        greet_lhlo("PIPELINING")
            .expect("MAIL FROM:<sender@example.test>")
            .expect("RCPT TO:<alice@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .expect("DATA")
            .reply("250 ok\n250 ok\n250 ok\n354 go")
            .read_data()
            .reply("250 2.0.0 <alice@example.test> Saved")
            .pause(Duration::from_millis(1500))
            .expect_eof(),
    )
    .unwrap();
    let mut timeouts = Timeouts::uniform(Duration::from_secs(5));
    timeouts.data_end = Duration::from_millis(400);
    let mut client = C::connect(config(&server).timeouts(timeouts)).unwrap();
    let envelope = Envelope::new(
        from("sender@example.test"),
        [to("alice@example.test"), to("bob@example.test")],
    );
    let err = client.send(&envelope, &b"hi\r\n"[..]).unwrap_err();
    let Error::Timeout { awaiting, after } = &err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(
        awaiting,
        "the reply for <bob@example.test> to the end of data (the whole message was sent: whether it was delivered is unknown)"
    );
    assert_eq!(*after, Duration::from_millis(400));
    assert!(err.is_fatal());
    drop(client);
    finish_ok(server);
}

fn too_few_replies_then_close_names_the_recipient<C: Driver>() {
    let server = ScriptedServer::start(
        greet_lhlo("PIPELINING")
            .expect("MAIL FROM:<sender@example.test>")
            .expect("RCPT TO:<alice@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .expect("DATA")
            .reply("250 ok\n250 ok\n250 ok\n354 go")
            .read_data()
            .reply("250 2.0.0 <alice@example.test> Saved")
            .close(),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let envelope = Envelope::new(
        from("sender@example.test"),
        [to("alice@example.test"), to("bob@example.test")],
    );
    let err = client.send(&envelope, &b"hi\r\n"[..]).unwrap_err();
    let Error::ConnectionClosed { awaiting } = &err else {
        panic!("expected ConnectionClosed, got {err:?}");
    };
    assert_eq!(
        awaiting,
        "the reply for <bob@example.test> to the end of data (the whole message was sent: whether it was delivered is unknown)"
    );
    finish_ok(server);
}

fn a_reply_too_many_is_a_stray_reply<C: Driver>() {
    let server = ScriptedServer::start(
        greet_lhlo("PIPELINING")
            .expect("MAIL FROM:<sender@example.test>")
            .expect("RCPT TO:<alice@example.test>")
            .expect("RCPT TO:<bob@example.test>")
            .expect("DATA")
            .reply("250 ok\n250 ok\n250 ok\n354 go")
            .read_data()
            .reply(
                "250 2.0.0 <alice@example.test> Saved\n250 2.0.0 <bob@example.test> Saved\n\
                 250 2.0.0 <carol@example.test> Saved",
            )
            .expect_eof(),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let envelope = Envelope::new(
        from("sender@example.test"),
        [to("alice@example.test"), to("bob@example.test")],
    );
    let report = client.send(&envelope, &b"hi\r\n"[..]).unwrap();
    assert_eq!(report.per_recipient.len(), 2);
    // The third reply answers nothing: the next command is never sent, the connection
    // is dropped.
    let err = client.noop().unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(ProtocolError::UnsolicitedReply(r)) if r.contains("carol")),
        "{err:?}"
    );
    drop(client);
    let record = finish_ok(server);
    assert!(!record.sent_in_clear("NOOP"));
}

fn a_refused_lhlo_is_final_no_helo<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .reply("220 smtp.test ESMTP")
            .expect("LHLO client.test")
            .reply("500 5.5.1 Unknown command")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let err = C::connect(config(&server)).unwrap_err();
    assert!(
        matches!(&err, Error::Refused { command, reply }
            if command == "LHLO client.test" && reply.code().get() == 500),
        "{err:?}"
    );
    let record = server.finish();
    assert!(!record.sent_in_clear("HELO"));
    assert!(!record.sent_in_clear("EHLO"));
}

/// A minimal LMTP server on a Unix-domain socket: answers each line the client sends with the
/// next reply of `replies` (the message itself is read up to its final dot).
fn unix_server(
    path: std::path::PathBuf,
    replies: &'static [&'static str],
) -> std::thread::JoinHandle<Vec<String>> {
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut seen = Vec::new();
        writer.write_all(b"220 unix.test LMTP\r\n").unwrap();
        let mut in_data = false;
        for reply in replies {
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return seen;
                }
                let line = line.trim_end().to_owned();
                let ends_data = in_data && line == ".";
                seen.push(line.clone());
                if !in_data || ends_data {
                    in_data = line == "DATA";
                    break;
                }
            }
            writer.write_all(reply.as_bytes()).unwrap();
        }
        seen
    })
}

fn over_a_unix_socket<C: Driver>() {
    let dir = std::env::temp_dir().join(format!(
        "lmtp-unix-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lmtp.sock");
    let server = unix_server(
        path.clone(),
        &[
            "250-unix.test\r\n250 8BITMIME\r\n",
            "250 2.1.0 ok\r\n",
            "250 2.1.5 ok\r\n",
            "250 2.1.5 ok\r\n",
            "354 go\r\n",
            "250 2.0.0 <alice@example.test> Saved\r\n552 5.2.2 <bob@example.test> Quota\r\n",
            "221 bye\r\n",
        ],
    );
    let config = ClientConfig::new("localhost")
        .unix_socket(&path)
        .protocol(Protocol::Lmtp)
        .tls_mode(TlsMode::None)
        .timeouts(Timeouts::uniform(Duration::from_secs(5)));
    let mut client = C::connect(config).unwrap();
    let envelope = Envelope::new(
        from("sender@example.test"),
        [to("alice@example.test"), to("bob@example.test")],
    );
    let report = client.send(&envelope, &b"hi\r\n"[..]).unwrap();
    assert_eq!(report.delivered(), [&to("alice@example.test")]);
    assert_eq!(report.per_recipient[1].reply.code().get(), 552);
    client.quit().unwrap();
    let seen = server.join().unwrap();
    // With no name configured, a Unix socket's LHLO names localhost.
    assert_eq!(seen[0], "LHLO localhost");
    assert_eq!(seen.last().map(String::as_str), Some("QUIT"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tls_over_a_unix_socket_is_refused_before_connecting<C: Driver>() {
    // No socket exists at this path: the refusal comes before any attempt to connect.
    let config = ClientConfig::new("localhost")
        .unix_socket("/nonexistent/lmtp.sock")
        .protocol(Protocol::Lmtp)
        .tls_mode(TlsMode::StartTlsRequired);
    let err = C::connect(config).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
}
