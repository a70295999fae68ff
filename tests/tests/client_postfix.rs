//! smtp-client against a real Postfix on loopback (`cargo xtask servers up`).
//!
//! Listeners: 127.0.0.1:12525 plain text, :12587 STARTTLS required, :12465 implicit TLS.
//! Every message for `@example.test` lands in the sink Maildir; `refused@example.test` gets
//! 550. Each test marks its message with a unique token and finds it in the Maildir.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use interop_tests::{as_delivered, ca_pem_path, delivered_to, maildir_new};
use smtp_client::{ClientConfig, Envelope, Timeouts, TlsConfig, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};

use test_support::client::{DataWrite, Driver};
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    plaintext_pipelined,
    plaintext_unpipelined,
    plaintext_bdat,
    starttls_required_with_a_private_ca,
    starttls_refuses_a_certificate_from_another_ca,
    implicit_tls,
    twenty_mib_message_over_starttls,
    smtputf8_addresses,
    several_recipients_one_refused,
    recipients_past_a_limit_of_ten_each_get_one_copy,
    recipients_past_the_default_limit_each_get_one_copy,
    a_batch_of_messages_each_delivered_once,
    a_batch_sends_recipients_past_the_limit_again,
    a_message_written_through_the_data_writer,
    a_message_written_through_the_data_writer_over_tls,
    a_data_writer_dropped_unfinished_delivers_nothing,
);

fn token(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn config(host: &str, port: u16, mode: TlsMode) -> ClientConfig {
    ClientConfig::new(host)
        .port(port)
        .tls_mode(mode)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)))
        .tls(
            TlsConfig::no_default_roots()
                .add_ca_pem_file(ca_pem_path())
                .unwrap(),
        )
}

fn from(addr: &str) -> ReversePath {
    ReversePath::Mailbox(Mailbox::new(addr).unwrap())
}

fn to(addr: &str) -> ForwardPath {
    ForwardPath::new(addr).unwrap()
}

/// Waits (up to 30 s) for delivered messages containing `token`; returns their contents.
fn delivered(token: &str, count: usize) -> Vec<Vec<u8>> {
    let dir = maildir_new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    if bytes.windows(token.len()).any(|w| w == token.as_bytes()) {
                        found.push(bytes);
                    }
                }
            }
        }
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "message {token} not delivered to {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Headers Postfix would add when missing (it does for loopback clients): with them
/// present, the stored message is exactly what was sent.
fn fixed_headers(token: &str) -> String {
    format!("Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{token}@client.example.test>\r\n")
}

fn message(token: &str, extra_body: &str) -> Vec<u8> {
    format!(
        "{}From: alice@example.test\r\nTo: sink@example.test\r\nSubject: {token}\r\n\r\n\
         Hello.\r\n.a line with a leading dot\r\n..two dots\r\n{extra_body}end\r\n",
        fixed_headers(token)
    )
    .into_bytes()
}

/// Sends one message and checks it arrived byte for byte (after Postfix's own headers).
fn send_and_check<C: Driver>(client: &mut C, name: &str, chunking: bool) {
    let token = token(name);
    let msg = message(&token, "");
    let env = Envelope::new(from("alice@example.test"), [to("sink@example.test")])
        .size(msg.len() as u64)
        .prefer_chunking(chunking);
    let report = client.send(&env, &msg[..]).unwrap();
    assert_eq!(report.reply.code().get(), 250, "{}", report.reply);
    let got = delivered(&token, 1);
    assert!(
        got[0].ends_with(&as_delivered(&msg)),
        "delivered message differs:\n{}",
        String::from_utf8_lossy(&got[0])
    );
}

fn plaintext_pipelined<C: Driver>() {
    let mut client = C::connect(config("127.0.0.1", 12525, TlsMode::None)).unwrap();
    assert!(client.supports("PIPELINING"));
    assert!(!client.is_encrypted());
    send_and_check(&mut client, "plain-pipelined", false);
    // A second transaction on the same connection.
    send_and_check(&mut client, "plain-second", false);
    client.quit().unwrap();
}

fn plaintext_unpipelined<C: Driver>() {
    let mut client =
        C::connect(config("127.0.0.1", 12525, TlsMode::None).pipelining(false)).unwrap();
    send_and_check(&mut client, "plain-unpipelined", false);
    client.quit().unwrap();
}

fn plaintext_bdat<C: Driver>() {
    let mut client = C::connect(config("127.0.0.1", 12525, TlsMode::None)).unwrap();
    assert!(client.supports("CHUNKING"));
    send_and_check(&mut client, "plain-bdat", true);
    client.quit().unwrap();
}

fn starttls_required_with_a_private_ca<C: Driver>() {
    // "localhost" may resolve to ::1 first, where 12587 does not listen: every address of
    // the name is tried in turn. The certificate must name "localhost".
    let mut client = C::connect(config("localhost", 12587, TlsMode::StartTlsRequired)).unwrap();
    assert!(client.is_encrypted());
    assert!(!client.supports("STARTTLS"));
    send_and_check(&mut client, "starttls", false);
    client.quit().unwrap();
}

fn starttls_refuses_a_certificate_from_another_ca<C: Driver>() {
    let config =
        config("localhost", 12587, TlsMode::StartTlsRequired).tls(TlsConfig::webpki_roots());
    let err = C::connect(config).unwrap_err();
    assert!(matches!(err, smtp_client::Error::Tls(_)), "{err:?}");
}

fn implicit_tls<C: Driver>() {
    let mut client = C::connect(config("127.0.0.1", 12465, TlsMode::Implicit)).unwrap();
    assert!(client.is_encrypted());
    send_and_check(&mut client, "implicit-tls", false);
    client.quit().unwrap();
}

/// A body generated on the fly: constant memory on the sending side.
struct Generated {
    line: Vec<u8>,
    remaining: usize,
    pos: usize,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.remaining > 0 {
            buf[n] = self.line[self.pos];
            self.pos = (self.pos + 1) % self.line.len();
            self.remaining -= 1;
            n += 1;
        }
        Ok(n)
    }
}

fn twenty_mib_message_over_starttls<C: Driver>() {
    let token = token("20mib");
    let header = format!(
        "{}From: alice@example.test\r\nSubject: {token}\r\n\r\n",
        fixed_headers(&token)
    )
    .into_bytes();
    let line = b".dot-led line of the twenty mebibyte message 0123456789abcdefghij\r\n".to_vec();
    let total = 20 * 1024 * 1024;
    let body_len = total - header.len();
    let body_len = body_len - body_len % line.len();
    let generated = Generated {
        line: line.clone(),
        remaining: body_len,
        pos: 0,
    };
    let mut client = C::connect(config("127.0.0.1", 12587, TlsMode::StartTlsRequired)).unwrap();
    let env = Envelope::new(from("alice@example.test"), [to("sink@example.test")])
        .size((header.len() + body_len) as u64);
    let start = Instant::now();
    let report = client
        .send_stream(&env, (&header[..]).chain(generated))
        .unwrap();
    eprintln!("20 MiB sent in {:?}", start.elapsed());
    assert_eq!(report.reply.code().get(), 250);
    client.quit().unwrap();
    let got = delivered(&token, 1);
    let mut expected = as_delivered(&header);
    let stored_line = as_delivered(&line);
    for _ in 0..body_len / line.len() {
        expected.extend_from_slice(&stored_line);
    }
    assert!(got[0].len() > expected.len());
    assert!(got[0].ends_with(&expected), "20 MiB message differs");
}

fn smtputf8_addresses<C: Driver>() {
    let token = token("utf8");
    let msg = format!(
        "{}From: jürgen@example.test\r\nTo: bücher@example.test\r\nSubject: {token} grüße\r\n\
         \r\nnon-ASCII body: café\r\n",
        fixed_headers(&token)
    )
    .into_bytes();
    let mut client = C::connect(config("127.0.0.1", 12525, TlsMode::None)).unwrap();
    assert!(client.supports("SMTPUTF8"));
    let env = Envelope::new(from("jürgen@example.test"), [to("bücher@example.test")]);
    client.send(&env, &msg[..]).unwrap();
    client.quit().unwrap();
    let got = delivered(&token, 1);
    assert!(got[0].ends_with(&as_delivered(&msg)));
    let text = String::from_utf8_lossy(&got[0]);
    assert!(
        text.contains("Return-Path: <jürgen@example.test>"),
        "{text}"
    );
    assert!(text.contains("bücher@example.test"), "{text}");
}

fn several_recipients_one_refused<C: Driver>() {
    let token = token("rcpts");
    let msg = message(&token, "");
    let mut client = C::connect(config("127.0.0.1", 12525, TlsMode::None)).unwrap();
    let env = Envelope::new(
        from("alice@example.test"),
        [
            to("one@example.test"),
            to("refused@example.test"),
            to("two@example.test"),
        ],
    );
    let report = client.send(&env, &msg[..]).unwrap();
    assert_eq!(
        report.accepted,
        vec![to("one@example.test"), to("two@example.test")]
    );
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].recipient, to("refused@example.test"));
    assert_eq!(report.refused[0].reply.code().get(), 550);
    assert_eq!(
        report.refused[0].reply.enhanced().map(|e| e.to_string()),
        Some("5.1.1".to_owned())
    );
    client.quit().unwrap();
    // Both accepted recipients go to the sink Maildir: two deliveries.
    let got = delivered(&token, 2);
    for m in &got {
        assert!(m.ends_with(&as_delivered(&msg)));
    }
}

/// Sends one message to `count` recipients through `send_to_all` and checks that each got
/// exactly one copy, byte for byte, in transactions of at most `limit` recipients.
fn send_to_many<C: Driver>(port: u16, count: usize, limit: usize) {
    let token = token(&format!("limit{limit}"));
    let msg = message(&token, "");
    let names: Vec<String> = (0..count)
        .map(|i| format!("r{i:04}@example.test"))
        .collect();
    let env = Envelope::new(from("alice@example.test"), names.iter().map(|n| to(n)));
    let mut client = C::connect(config("127.0.0.1", port, TlsMode::None)).unwrap();
    let delivery = client.send_to_all(&env, &msg).unwrap();
    client.quit().unwrap();
    let sizes: Vec<usize> = delivery
        .transactions
        .iter()
        .map(|t| t.accepted.len())
        .collect();
    let expected: Vec<usize> = (0..count.div_ceil(limit))
        .map(|i| limit.min(count - i * limit))
        .collect();
    assert_eq!(sizes, expected);
    assert!(delivery.all_accepted(), "{delivery:?}");
    assert_eq!(delivery.accepted().count(), count);
    // Every transaction but the last was told "too many recipients" for the rest.
    for t in &delivery.transactions[..delivery.transactions.len() - 1] {
        assert!(t.deferred.iter().all(|d| d.is_too_many_recipients()));
        assert_eq!(t.deferred[0].reply.code().get(), 452);
    }
    let got = delivered(&token, count);
    assert_eq!(got.len(), count, "one copy per recipient, no more");
    let mut seen: Vec<String> = got
        .iter()
        .map(|m| delivered_to(m).unwrap_or_default().to_owned())
        .collect();
    seen.sort();
    assert_eq!(seen, names);
    for m in &got {
        assert!(m.ends_with(&as_delivered(&msg)));
    }
}

fn recipients_past_a_limit_of_ten_each_get_one_copy<C: Driver>() {
    // 127.0.0.1:12527 has smtpd_recipient_limit = 10.
    send_to_many::<C>(12527, 35, 10);
}

fn recipients_past_the_default_limit_each_get_one_copy<C: Driver>() {
    // Postfix's default smtpd_recipient_limit is 1000.
    send_to_many::<C>(12525, 1100, 1000);
}

fn a_batch_of_messages_each_delivered_once<C: Driver>() {
    let token = token("batch");
    let messages: Vec<_> = (0..200)
        .map(|i| {
            let env = Envelope::new(
                from("alice@example.test"),
                [to(&format!("b{i:03}@example.test"))],
            );
            (env, message(&format!("{token}-{i:03}-"), ""))
        })
        .collect();
    let mut client = C::connect(config("127.0.0.1", 12525, TlsMode::None)).unwrap();
    let (summary, results) = client.send_batch(messages.clone()).unwrap();
    client.quit().unwrap();
    assert_eq!(
        (summary.accepted, summary.total()),
        (200, 200),
        "{summary:?}"
    );
    assert!(results
        .iter()
        .enumerate()
        .all(|(i, r)| r.index == i && r.state.is_accepted()));
    let got = delivered(&token, 200);
    assert_eq!(got.len(), 200, "each message once");
    for (i, (_, msg)) in messages.iter().enumerate() {
        let marker = format!("{token}-{i:03}-");
        let copies: Vec<_> = got
            .iter()
            .filter(|m| m.windows(marker.len()).any(|w| w == marker.as_bytes()))
            .collect();
        assert_eq!(copies.len(), 1, "{marker}");
        assert!(copies[0].ends_with(&as_delivered(msg)));
    }
}

fn a_batch_sends_recipients_past_the_limit_again<C: Driver>() {
    // 127.0.0.1:12527 takes ten recipients per transaction: three messages to 25 each go
    // out as nine transactions, and every recipient gets exactly one copy of its message.
    let token = token("batchlimit");
    let messages: Vec<_> = (0..3)
        .map(|m| {
            let rcpts = (0..25).map(|r| to(&format!("m{m}r{r:02}@example.test")));
            let env = Envelope::new(from("alice@example.test"), rcpts);
            (env, message(&format!("{token}-m{m}-"), ""))
        })
        .collect();
    let mut client = C::connect(config("127.0.0.1", 12527, TlsMode::None)).unwrap();
    let (summary, results) = client.send_batch_resending(messages.clone()).unwrap();
    client.quit().unwrap();
    assert_eq!((summary.accepted, summary.total()), (9, 9), "{summary:?}");
    assert_eq!(results.len(), 9);
    let got = delivered(&token, 75);
    assert_eq!(got.len(), 75, "one copy per recipient");
    for (m, (_, msg)) in messages.iter().enumerate() {
        let marker = format!("{token}-m{m}-");
        let mut rcpts: Vec<String> = got
            .iter()
            .filter(|d| d.windows(marker.len()).any(|w| w == marker.as_bytes()))
            .inspect(|d| assert!(d.ends_with(&as_delivered(msg))))
            .map(|d| delivered_to(d).unwrap_or_default().to_owned())
            .collect();
        rcpts.sort();
        let expected: Vec<String> = (0..25)
            .map(|r| format!("m{m}r{r:02}@example.test"))
            .collect();
        assert_eq!(rcpts, expected);
    }
}

/// Writes `msg` through the DATA writer in writes of odd sizes (cut between CR and LF and
/// around each dot), and checks it arrived byte for byte.
fn write_and_check<C: Driver>(client: &mut C, token: &str, msg: &[u8]) {
    client
        .mail(&from("alice@example.test"), &Default::default())
        .unwrap();
    client
        .rcpt(&to("sink@example.test"), &Default::default())
        .unwrap();
    let mut writer = client.data_writer().unwrap();
    let mut rest = msg;
    for size in [1, 3, 2, 7, 64, 5, 1, 4096].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        writer.write_all(chunk).unwrap();
        rest = tail;
    }
    let reply = writer.finish().unwrap();
    assert_eq!(reply.code().get(), 250, "{reply}");
    let got = delivered(token, 1);
    assert!(
        got[0].ends_with(&as_delivered(msg)),
        "delivered message differs:\n{}",
        String::from_utf8_lossy(&got[0])
    );
}

/// A message with dot-led lines, a line that is only a dot, a bare LF, and more than the
/// writer's 64 KiB buffer.
fn writer_message(token: &str) -> Vec<u8> {
    let mut extra = String::from(".\r\na bare LF\nnot the end\r\n");
    while extra.len() < 200 * 1024 {
        extra.push_str(".a dot-led filler line of the DATA writer's message, 0123456789\r\n");
    }
    message(token, &extra)
}

fn a_message_written_through_the_data_writer<C: Driver>() {
    let token = token("data-writer");
    let msg = writer_message(&token);
    let mut client = C::connect(config("127.0.0.1", 12525, TlsMode::None)).unwrap();
    write_and_check(&mut client, &token, &msg);
    // The connection goes on: a second message, sent the usual way.
    send_and_check(&mut client, "after-data-writer", false);
    client.quit().unwrap();
}

fn a_message_written_through_the_data_writer_over_tls<C: Driver>() {
    let token = token("data-writer-tls");
    let msg = writer_message(&token);
    let mut client = C::connect(config("127.0.0.1", 12465, TlsMode::Implicit)).unwrap();
    write_and_check(&mut client, &token, &msg);
    client.quit().unwrap();
}

fn a_data_writer_dropped_unfinished_delivers_nothing<C: Driver>() {
    let abandoned = token("abandoned");
    let mut client = C::connect(config("127.0.0.1", 12525, TlsMode::None)).unwrap();
    client
        .mail(&from("alice@example.test"), &Default::default())
        .unwrap();
    client
        .rcpt(&to("sink@example.test"), &Default::default())
        .unwrap();
    let mut writer = client.data_writer().unwrap();
    // Flushed, with a line that is only a dot: stuffed, it cannot end the message.
    writer.write_all(&message(&abandoned, ".\r\n")).unwrap();
    writer.flush().unwrap();
    drop(writer);
    assert!(matches!(
        client.noop(),
        Err(smtp_client::Error::Misuse(
            smtp_client::Misuse::DataAbandoned
        ))
    ));
    drop(client);
    // A message sent after it, on a new connection, arrives; the abandoned one never does.
    let mut client = C::connect(config("127.0.0.1", 12525, TlsMode::None)).unwrap();
    send_and_check(&mut client, "after-abandoned", false);
    client.quit().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let dir = maildir_new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        assert!(
            !bytes
                .windows(abandoned.len())
                .any(|w| w == abandoned.as_bytes()),
            "the abandoned message was delivered: {}",
            entry.path().display()
        );
    }
}
