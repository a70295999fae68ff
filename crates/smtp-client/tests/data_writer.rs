//! The DATA writer (Net::SMTP's `datafh`) of both clients against the scripted server: the
//! bytes the server receives, the final reply, and what happens when the message cannot
//! end (the writer dropped, the server gone, a stalled write, no transaction).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use smtp_client::{
    ClientConfig, Envelope, Error, ErrorKind, Misuse, ProtocolError, Timeouts, TlsConfig, TlsMode,
};
use smtp_proto::{Domain, ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};
use smtp_testserver::scripted::{test_cert, Record, Script, ScriptedServer};

use test_support::client::{DataWrite, Driver};
use test_support::for_both_drivers;

for_both_drivers!(
    a_message_written_in_odd_chunks_arrives_stuffed,
    a_refusal_of_the_message_is_an_error_carrying_the_reply,
    a_writer_dropped_halfway_abandons_the_message,
    a_writer_dropped_by_a_panic_abandons_the_message,
    a_leaked_writer_is_found_out_by_the_next_call,
    a_server_closing_mid_message_fails_the_write_and_finish,
    a_stalled_server_times_the_write_out,
    no_data_writer_without_an_accepted_sender_and_recipient,
    a_reply_that_comes_with_the_354_never_answers_the_writers_message,
    a_message_written_over_tls_arrives_whole,
    writes_that_wait_for_a_slow_server_resume_where_they_stopped,
);

fn config(server: &ScriptedServer, mode: TlsMode) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(mode)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .tls(TlsConfig::no_default_roots().add_ca_der(test_cert().ca_der.clone()))
}

fn alice() -> ReversePath {
    ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap())
}

fn bob() -> ForwardPath {
    ForwardPath::new("bob@example.test").unwrap()
}

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "script failed: {:?}", record.result);
    record
}

/// Greeting, EHLO (no extension), then MAIL and RCPT accepted one by one and DATA
/// answered 354.
fn up_to_354() -> Script {
    Script::new()
        .greet_ehlo(&[])
        .expect("MAIL FROM:<alice@example.test>")
        .reply("250 2.1.0 ok")
        .expect("RCPT TO:<bob@example.test>")
        .reply("250 2.1.5 ok")
        .expect("DATA")
        .reply("354 go ahead")
}

/// MAIL and RCPT, accepted.
fn envelope<C: Driver>(client: &mut C) {
    client.mail(&alice(), &MailParams::default()).unwrap();
    client.rcpt(&bob(), &RcptParams::default()).unwrap();
}

/// The client's error inside a writer's `io::Error`.
fn inner(err: &std::io::Error) -> &Error {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .unwrap_or_else(|| panic!("no smtp_client::Error in {err:?}"))
}

/// A message whose lines open with dots, hold a CRLF.CRLF of their own, a bare LF and a
/// bare CR, and end without a line end.
const BODY: &[u8] = b"Subject: dots\r\n\r\n.one dot\r\n..two dots\r\nnot the end:\r\n.\r\n\
                      bare LF\nbare CR\r.\r\nlast line, no CRLF";

/// [`BODY`] as RFC 5321 4.5.2 puts it on the wire, ended by `CRLF.CRLF`: each line that
/// starts with a dot gets one more, and (as Net::SMTP's `datasend` does) bare LF and CR
/// become CRLF.
const BODY_ON_THE_WIRE: &[u8] =
    b"Subject: dots\r\n\r\n..one dot\r\n...two dots\r\nnot the end:\r\n..\r\n\
                                  bare LF\r\nbare CR\r\n..\r\nlast line, no CRLF\r\n.\r\n";

fn a_message_written_in_odd_chunks_arrives_stuffed<C: Driver>() {
    let server = ScriptedServer::start(
        up_to_354()
            .read_data()
            .reply("250 2.0.0 queued as 4711")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let config = config(&server, TlsMode::None)
        .transcript(move |d, l| sink.lock().unwrap().push(format!("{d} {l}")));
    let mut client = C::connect(config).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    // Cuts between CR and LF, right before and after each dot, and one byte at a time.
    let mut rest = BODY;
    for size in [1, 2, 3, 5, 7, 1, 1, 11, 4, 1, 13, 2].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        writer.write_all(chunk).unwrap();
        rest = tail;
    }
    let reply = writer.finish().unwrap();
    assert_eq!(reply.code().get(), 250);
    assert_eq!(reply.text(), "2.0.0 queued as 4711");
    assert_eq!(client.last_reply(), Some(&reply));
    // The client goes on as after any message.
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(
        String::from_utf8_lossy(&record.messages[0]),
        String::from_utf8_lossy(BODY_ON_THE_WIRE)
    );
    // The transcript shows DATA, its reply, the size of the data (never its bytes), the
    // end and the final reply, in that order.
    let lines = lines.lock().unwrap();
    let data = lines.iter().position(|l| l == ">>> DATA").unwrap();
    assert_eq!(
        lines[data..data + 5],
        [
            ">>> DATA".to_owned(),
            "<<< 354 go ahead".to_owned(),
            format!(">>> [message data: {} bytes]", BODY.len()),
            ">>> .".to_owned(),
            "<<< 250 2.0.0 queued as 4711".to_owned(),
        ],
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("two dots")), "{lines:?}");
}

fn a_refusal_of_the_message_is_an_error_carrying_the_reply<C: Driver>() {
    let server = ScriptedServer::start(
        up_to_354()
            .read_data()
            .reply("554 5.6.0 message content rejected")
            .expect("NOOP")
            .reply("250 ok"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    writer.write_all(b"Subject: no\r\n\r\nspam\r\n").unwrap();
    let err = writer.finish().unwrap_err();
    assert!(
        matches!(&err, Error::Refused { command, reply }
            if command == "end of data" && reply.code().get() == 554
                && reply.text() == "5.6.0 message content rejected"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert!(!err.is_fatal());
    // The connection stays usable, with no transaction open.
    assert_eq!(client.noop().unwrap().code().get(), 250);
    assert!(matches!(
        client.data_writer().unwrap_err(),
        Error::Misuse(Misuse::NoMailTransaction)
    ));
    let record = finish_ok(server);
    assert_eq!(record.messages[0], b"Subject: no\r\n\r\nspam\r\n.\r\n");
}

/// What a message cut off before its end leaves on the wire: the part flushed, with a
/// line that is only a dot stuffed, and then the connection closing.
const FLUSHED: &[u8] = b"Subject: cut\r\n\r\nfirst part\r\n.\r\n";
const FLUSHED_ON_THE_WIRE: &[u8] = b"Subject: cut\r\n\r\nfirst part\r\n..\r\n";

/// Checks that the message was abandoned: the server got the flushed part and then the
/// connection closed, with no end of data; every later call says why.
fn assert_abandoned<C: Driver>(mut client: C, server: ScriptedServer) {
    let record = finish_ok(server);
    assert_eq!(
        String::from_utf8_lossy(&record.messages[0]),
        String::from_utf8_lossy(FLUSHED_ON_THE_WIRE)
    );
    let wire = &record.clear_text;
    let data = wire.windows(6).position(|w| w == b"DATA\r\n").unwrap() + 6;
    assert!(
        !wire[data..].windows(5).any(|w| w == b"\r\n.\r\n"),
        "an end of data reached the server: {:?}",
        String::from_utf8_lossy(&wire[data..])
    );
    for err in [
        client.noop().unwrap_err(),
        client.data_writer().map(drop).unwrap_err(),
        client.dataend().unwrap_err(),
        client.quit().unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::Misuse(Misuse::DataAbandoned)),
            "{err:?}"
        );
    }
}

fn a_writer_dropped_halfway_abandons_the_message<C: Driver>() {
    let server = ScriptedServer::start(up_to_354().read_to_eof()).unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    writer.write_all(FLUSHED).unwrap();
    writer.flush().unwrap();
    // Buffered, never written: the writer is dropped before its end.
    writer.write_all(b"more, and the end:\r\n.\r\n").unwrap();
    drop(writer);
    assert_abandoned(client, server);
}

fn a_writer_dropped_by_a_panic_abandons_the_message<C: Driver>() {
    let server = ScriptedServer::start(up_to_354().read_to_eof()).unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    envelope(&mut client);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut writer = client.data_writer().unwrap();
        writer.write_all(FLUSHED).unwrap();
        writer.flush().unwrap();
        writer.write_all(b"the rest\r\n").unwrap();
        panic!("the message source failed");
    }));
    assert!(unwound.is_err());
    assert_abandoned(client, server);
}

fn a_leaked_writer_is_found_out_by_the_next_call<C: Driver>() {
    let server = ScriptedServer::start(up_to_354().read_to_eof()).unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    writer.write_all(FLUSHED).unwrap();
    writer.flush().unwrap();
    writer.write_all(b"the rest\r\n").unwrap();
    std::mem::forget(writer);
    // Neither datasend nor dataend may end what the writer began.
    let err = client.datasend(b"x\r\n").unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::DataAbandoned)),
        "{err:?}"
    );
    assert_abandoned(client, server);
}

fn a_server_closing_mid_message_fails_the_write_and_finish<C: Driver>() {
    let server = ScriptedServer::start(up_to_354().close()).unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    let chunk = vec![b'x'; 8192];
    let mut written = 0usize;
    let err = loop {
        // Loopback buffers take a few MiB before the peer's reset is seen.
        assert!(written < 512 << 20, "no error after {written} bytes");
        match writer.write_all(&chunk) {
            Ok(()) => written += chunk.len(),
            Err(err) => break err,
        }
    };
    let first = inner(&err);
    assert!(
        matches!(first, Error::Io { op, .. } if op == "writing"),
        "{first:?}"
    );
    assert_eq!(first.kind(), ErrorKind::Connection);
    // The message is over: later writes, a flush and finish say so, and send nothing.
    let again = writer.write(b"more").unwrap_err();
    assert!(
        matches!(inner(&again), Error::Misuse(Misuse::ConnectionBroken)),
        "{again:?}"
    );
    let flush = writer.flush().unwrap_err();
    assert!(
        matches!(inner(&flush), Error::Misuse(Misuse::ConnectionBroken)),
        "{flush:?}"
    );
    let err = writer.finish().unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::ConnectionBroken)),
        "{err:?}"
    );
    let err = client.noop().unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::ConnectionBroken)),
        "{err:?}"
    );
    finish_ok(server);
}

fn a_stalled_server_times_the_write_out<C: Driver>() {
    // The server reads nothing after the 354: once the socket buffers are full, a write
    // blocks, and the write timeout ends it long before the server gives up.
    let server = ScriptedServer::start(up_to_354().pause(Duration::from_secs(4))).unwrap();
    let timeouts = Timeouts {
        write: Duration::from_millis(300),
        ..Timeouts::uniform(Duration::from_secs(5))
    };
    let mut client = C::connect(config(&server, TlsMode::None).timeouts(timeouts)).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let started = Instant::now();
    let mut written = 0usize;
    let err = loop {
        assert!(written < 1 << 30, "no timeout after {written} bytes");
        match writer.write_all(&chunk) {
            Ok(()) => written += chunk.len(),
            Err(err) => break err,
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the write took {:?}",
        started.elapsed()
    );
    let Error::Io { op, source } = inner(&err) else {
        panic!("{err:?}");
    };
    assert_eq!(op, "writing");
    assert!(
        matches!(
            source.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        "{source:?}"
    );
    let err = writer.finish().unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::ConnectionBroken)),
        "{err:?}"
    );
    drop(client);
    finish_ok(server);
}

fn assert_no_transaction(err: Error) {
    assert!(
        matches!(err, Error::Misuse(Misuse::NoMailTransaction)),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Misuse);
}

fn no_data_writer_without_an_accepted_sender_and_recipient<C: Driver>() {
    // Each refused data_writer sends nothing: the next line the server reads is the next
    // command the test sends, never DATA.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[])
            .expect("MAIL FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("550 5.1.1 no such user")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("RSET")
            .reply("250 ok")
            .expect("MAIL FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("EHLO client.test")
            .reply("250 test.invalid")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    // Nothing yet.
    assert_no_transaction(client.data_writer().map(drop).unwrap_err());
    client.mail(&alice(), &MailParams::default()).unwrap();
    // A sender, no recipient.
    assert_no_transaction(client.data_writer().map(drop).unwrap_err());
    client.rcpt(&bob(), &RcptParams::default()).unwrap_err();
    // The only recipient refused.
    assert_no_transaction(client.data_writer().map(drop).unwrap_err());
    client.rcpt(&bob(), &RcptParams::default()).unwrap();
    client.reset().unwrap();
    // RSET ended the transaction.
    assert_no_transaction(client.data_writer().map(drop).unwrap_err());
    client.mail(&alice(), &MailParams::default()).unwrap();
    client.rcpt(&bob(), &RcptParams::default()).unwrap();
    client.hello(None).unwrap();
    // So did EHLO (RFC 5321 4.1.4).
    assert_no_transaction(client.data_writer().map(drop).unwrap_err());
    // Refused before sending, the client stays usable.
    client.quit().unwrap();
    let record = finish_ok(server);
    assert!(!record.sent_in_clear("DATA"), "{:?}", record.clear_lines());
}

fn a_reply_that_comes_with_the_354_never_answers_the_writers_message<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[])
            .expect("MAIL FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go\n250 2.0.0 spoofed")
            .expect_eof(),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    let err = writer.write(b"Subject: x\r\n\r\nhi\r\n").unwrap_err();
    assert!(
        matches!(inner(&err), Error::Protocol(ProtocolError::UnsolicitedReply(t)) if t.contains("spoofed")),
        "{err:?}"
    );
    let err = writer.finish().unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::ConnectionBroken)),
        "{err:?}"
    );
    // Nothing of the message was sent: the server saw the connection close.
    finish_ok(server);
}

fn a_message_written_over_tls_arrives_whole<C: Driver>() {
    // Over 64 KiB, so that some goes out before finish, and TLS holds records until flushed.
    let line = b".0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n";
    let count = 3000;
    let server = ScriptedServer::start(
        Script::new()
            .start_tls()
            .greet_ehlo(&[])
            .expect("MAIL FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go")
            .read_data()
            .reply("250 queued"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::Implicit)).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    for _ in 0..count {
        writer.write_all(line).unwrap();
    }
    assert_eq!(writer.finish().unwrap().code().get(), 250);
    let record = finish_ok(server);
    let got = &record.messages[0];
    assert_eq!(got.len(), (line.len() + 1) * count + 3);
    assert!(got.starts_with(b"..0123"));
    assert!(got.ends_with(b"abcd\r\n.\r\n"));
    assert!(record.clear_text.is_empty());
}

fn writes_that_wait_for_a_slow_server_resume_where_they_stopped<C: Driver>() {
    // The server reads nothing for a while after the 354: 15 MiB is more than the loopback
    // socket buffers take, so the writes wait (blocking, or Pending) and go on where they
    // stopped once it reads.
    let count = 256 * 1024;
    let server = ScriptedServer::start(
        up_to_354()
            .pause(Duration::from_millis(700))
            .read_data()
            .reply("250 queued"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    for i in 0..count {
        // Lines of about 60 octets, each numbered, every other one dot-led.
        let dot = if i % 2 == 0 { "." } else { "" };
        write!(
            writer,
            "{dot}line {i:08} of the message that waits for its reader...\r\n"
        )
        .unwrap();
    }
    assert_eq!(writer.finish().unwrap().code().get(), 250);
    let record = finish_ok(server);
    let (message, consumed) = smtp_proto::unstuff(&record.messages[0]).unwrap();
    assert_eq!(consumed, record.messages[0].len());
    let mut expected = Vec::new();
    for i in 0..count {
        let dot = if i % 2 == 0 { "." } else { "" };
        write!(
            expected,
            "{dot}line {i:08} of the message that waits for its reader...\r\n"
        )
        .unwrap();
    }
    assert!(
        message == expected,
        "the message differs ({} octets)",
        message.len()
    );
}

// ----- The writer puts on the wire what `send` does --------------------------------------

/// Sends `body` with `send`, then again through a writer cut into writes of `sizes`
/// (cycled), over one connection; returns what the server received each time.
fn send_then_write<C: Driver>(body: &[u8], sizes: &[usize]) -> (Vec<u8>, Vec<u8>) {
    let transaction = |script: Script| {
        script
            .expect_prefix("MAIL FROM:<alice@example.test>")
            .reply("250 ok")
            .expect("RCPT TO:<bob@example.test>")
            .reply("250 ok")
            .expect("DATA")
            .reply("354 go")
            .read_data()
            .reply("250 queued")
    };
    let script = transaction(transaction(Script::new().greet_ehlo(&["8BITMIME"])));
    let server = ScriptedServer::start(script).unwrap();
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let env = Envelope::new(alice(), [bob()]);
    client.send(&env, body).unwrap();
    envelope(&mut client);
    let mut writer = client.data_writer().unwrap();
    let mut rest = body;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        writer.write_all(chunk).unwrap();
        rest = tail;
    }
    writer.finish().unwrap();
    drop(client);
    let mut record = finish_ok(server);
    let written = record.messages.pop().unwrap();
    let sent = record.messages.pop().unwrap();
    (sent, written)
}

/// A body from a few bytes that matter to dot-stuffing (and 8-bit ones), repeated to
/// reach past the writer's 64 KiB buffer, and the sizes of the writes that cut it.
fn body_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    let byte = prop::sample::select(vec![b'.', b'\r', b'\n', b'a', b' ', 0xc3, 0xa9]);
    let pattern = prop::collection::vec(byte, 0..300);
    let body = (pattern, 1usize..500).prop_map(|(p, n)| p.repeat(n));
    let cut = prop_oneof![1usize..4, 1usize..100, 1usize..70_000];
    (body, prop::collection::vec(cut, 1..8))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn any_cut_of_the_writes_puts_on_the_wire_what_send_does((body, cuts) in body_and_cuts()) {
        let (sent, written) = send_then_write::<test_support::client::Blocking>(&body, &cuts);
        prop_assert!(sent == written, "send and the writer differ for a body of {}", body.len());
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn any_cut_of_the_async_writes_puts_on_the_wire_what_send_does((body, cuts) in body_and_cuts()) {
        let (sent, written) = send_then_write::<test_support::client::Tokio>(&body, &cuts);
        prop_assert!(sent == written, "send and the writer differ for a body of {}", body.len());
    }
}
