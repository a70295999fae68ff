//! The sans-IO session on its own: time is a value, output is inspected byte for byte.

use std::time::{Duration, Instant};

use smtp_client::{
    Envelope, Error, Event, Expect, Misuse, Outcome, Session, SessionConfig, Timeouts, TlsMode,
};
use smtp_proto::{Command, Domain, ForwardPath, Mailbox, ReversePath};

fn session(tls: TlsMode) -> Session {
    let mut config = SessionConfig::new(Domain::new("client.test").unwrap());
    config.tls = tls;
    Session::new(config)
}

/// Runs the greeting and EHLO with `caps`, leaving the session idle.
fn opened(caps: &str, now: Instant) -> Session {
    let mut s = session(TlsMode::None);
    s.start_open(now).unwrap();
    s.handle_input(b"220 mx ready\r\n");
    assert!(matches!(s.poll(now).unwrap(), Event::NeedInput));
    s.consume_output(s.output().len());
    s.handle_input(caps.as_bytes());
    assert!(matches!(s.poll(now).unwrap(), Event::Done(_)));
    s
}

fn take(s: &mut Session) -> Vec<u8> {
    let out = s.output().to_vec();
    s.consume_output(out.len());
    out
}

#[test]
fn greeting_deadline_fires_without_sleeping() {
    let t0 = Instant::now();
    let mut s = session(TlsMode::None);
    s.start_open(t0).unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + Timeouts::default().greeting));
    s.handle_timeout(t0 + Duration::from_secs(299));
    assert!(matches!(s.poll(t0).unwrap(), Event::NeedInput));
    s.handle_timeout(t0 + Duration::from_secs(300));
    let err = s.poll(t0).unwrap_err();
    assert!(
        matches!(&err, Error::Timeout { awaiting, after } if awaiting == "the greeting" && after.as_secs() == 300)
    );
    assert!(s.is_broken());
    assert!(s
        .start_command(&Command::Noop, Expect::Completion, t0)
        .is_err());
}

#[test]
fn partial_bytes_do_not_move_the_deadline() {
    let t0 = Instant::now();
    let mut s = session(TlsMode::None);
    s.start_open(t0).unwrap();
    let deadline = s.poll_timeout().unwrap();
    // One byte every 10 s: the deadline stays where it was.
    for (i, b) in b"220 slow".iter().enumerate() {
        let now = t0 + Duration::from_secs(10 * i as u64);
        s.handle_input(&[*b]);
        assert!(matches!(s.poll(now).unwrap(), Event::NeedInput));
        assert_eq!(s.poll_timeout(), Some(deadline));
    }
    s.handle_timeout(deadline);
    assert!(matches!(s.poll(deadline), Err(Error::Timeout { .. })));
}

#[test]
fn each_pipelined_reply_gets_its_own_deadline() {
    let t0 = Instant::now();
    let mut s = opened("250-mx\r\n250 PIPELINING\r\n", t0);
    let recipients = vec![
        (
            ForwardPath::new("a@example.test").unwrap(),
            Default::default(),
        ),
        (
            ForwardPath::new("b@example.test").unwrap(),
            Default::default(),
        ),
    ];
    let t1 = t0 + Duration::from_secs(1);
    s.start_recipients(&recipients, t1).unwrap();
    assert_eq!(
        take(&mut s),
        b"RCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"
    );
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(300)));
    let t2 = t0 + Duration::from_secs(100);
    s.handle_input(b"250 ok\r\n");
    assert!(matches!(s.poll(t2).unwrap(), Event::NeedInput));
    assert_eq!(s.poll_timeout(), Some(t2 + Duration::from_secs(300)));
    s.handle_input(b"550 no\r\n");
    match s.poll(t2).unwrap() {
        Event::Done(Outcome::Recipients(r)) => {
            assert_eq!(r.accepted.len(), 1);
            assert_eq!(r.refused[0].reply.code().get(), 550);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pipelined_envelope_is_one_output_and_last_chunk_goes_with_the_dot() {
    let t0 = Instant::now();
    let mut s = opened("250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", t0);
    let env = Envelope::new(
        ReversePath::Mailbox(Mailbox::new("a@example.test").unwrap()),
        [ForwardPath::new("b@example.test").unwrap()],
    )
    .size(9);
    s.start_send(env, t0).unwrap();
    assert!(matches!(s.poll(t0).unwrap(), Event::NeedBody));
    s.push_body(b"hello\r\n", true, t0).unwrap();
    assert!(matches!(s.poll(t0).unwrap(), Event::NeedInput));
    // The whole batch is ready before any reply: one write.
    assert_eq!(
        take(&mut s),
        b"MAIL FROM:<a@example.test> SIZE=9\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
    );
    s.handle_input(b"250 ok\r\n250 ok\r\n354 go\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::NeedInput));
    // The body and the end of data are one output: one write.
    assert_eq!(take(&mut s), b"hello\r\n.\r\n");
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(600)));
    s.handle_input(b"250 queued\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(Outcome::Sent(_))));
    assert!(s.is_idle());
}

#[test]
fn starttls_requested_only_after_a_clean_220() {
    let t0 = Instant::now();
    let mut s = session(TlsMode::StartTlsRequired);
    s.start_open(t0).unwrap();
    s.handle_input(b"220 mx\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::NeedInput));
    s.handle_input(b"250-mx\r\n250 STARTTLS\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::NeedInput));
    assert_eq!(take(&mut s), b"EHLO client.test\r\nSTARTTLS\r\n");
    s.handle_input(b"220 go\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::StartTls));
    s.tls_established(t0).unwrap();
    assert!(s.is_encrypted());
    assert!(s.capabilities().is_none());
    assert_eq!(take(&mut s), b"EHLO client.test\r\n");
    s.handle_input(b"250-mx\r\n250 AUTH PLAIN\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
    assert_eq!(s.capabilities().unwrap().auth_mechanisms(), ["PLAIN"]);
}

#[test]
fn authenticated_flag_is_cleared_by_ehlo() {
    let t0 = Instant::now();
    let mut s = opened("250-mx\r\n250 AUTH PLAIN\r\n", t0);
    auth_plain_accepted(&mut s, t0);
    s.confirm_authenticated().unwrap();
    assert!(s.is_authenticated());
    s.start_hello(None, t0).unwrap();
    s.handle_input(b"250 mx\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
    assert!(!s.is_authenticated());
}

#[test]
fn unsolicited_bytes_never_answer_the_next_command() {
    let t0 = Instant::now();
    let mut s = opened("250 mx\r\n", t0);
    s.handle_input(b"250 spoofed\r\n");
    let err = s
        .start_command(&Command::Noop, Expect::Completion, t0)
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(s.output().is_empty());
}

#[test]
fn invalid_command_sends_nothing() {
    let t0 = Instant::now();
    let mut s = opened("250 mx\r\n", t0);
    let from = ReversePath::Mailbox(Mailbox::new("jürgen@example.test").unwrap());
    let params = Default::default();
    let err = s
        .start_command(
            &Command::Mail {
                from: &from,
                params: &params,
            },
            Expect::Completion,
            t0,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Command(_)), "{err:?}");
    assert!(s.output().is_empty());
    assert!(s.is_idle());
}

#[test]
fn only_a_235_to_auth_can_be_confirmed_as_authenticated() {
    let t0 = Instant::now();
    let mut s = opened("250-mx\r\n250 AUTH PLAIN\r\n", t0);
    assert!(matches!(
        s.confirm_authenticated(),
        Err(Error::Misuse(Misuse::NoAuthSuccess))
    ));
    // A 235 to something other than AUTH proves nothing.
    s.start_command(&Command::Noop, Expect::AnyReply, t0)
        .unwrap();
    s.handle_input(b"235 not an auth reply\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
    assert!(s.confirm_authenticated().is_err());
    // A 235 to AUTH left unconfirmed lapses when the next operation starts.
    auth_plain_accepted(&mut s, t0);
    s.start_command(&Command::Noop, Expect::AnyReply, t0)
        .unwrap();
    s.handle_input(b"250 ok\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
    assert!(s.confirm_authenticated().is_err());
    assert!(!s.is_authenticated());
}

/// AUTH PLAIN answered with 235.
fn auth_plain_accepted(s: &mut Session, t0: Instant) {
    let auth = Command::Auth {
        mechanism: "PLAIN",
        initial_response: Some(b"\0u\0p"),
    };
    s.start_command(&auth, Expect::AnyReply, t0).unwrap();
    s.handle_input(b"235 ok\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
}

/// Runs `command` to its reply `reply`, returning the outcome.
fn exchange(s: &mut Session, command: &Command<'_>, reply: &str, t0: Instant) {
    s.start_command(command, Expect::AnyReply, t0).unwrap();
    take(s);
    s.handle_input(reply.as_bytes());
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
}

/// MAIL and RCPT, each answered with `reply`.
fn envelope(s: &mut Session, mail: &str, rcpt: &str, t0: Instant) {
    let from = ReversePath::Mailbox(Mailbox::new("a@example.test").unwrap());
    let to = ForwardPath::new("b@example.test").unwrap();
    let (mail_params, rcpt_params) = (Default::default(), Default::default());
    let mail_cmd = Command::Mail {
        from: &from,
        params: &mail_params,
    };
    exchange(s, &mail_cmd, mail, t0);
    let rcpt_cmd = Command::Rcpt {
        to: &to,
        params: &rcpt_params,
    };
    exchange(s, &rcpt_cmd, rcpt, t0);
}

/// DATA for a stream, answered 354.
fn streaming(s: &mut Session, t0: Instant) {
    s.start_data_stream(t0).unwrap();
    assert_eq!(take(s), b"DATA\r\n");
    s.handle_input(b"354 go\r\n");
    assert!(matches!(
        s.poll(t0).unwrap(),
        Event::Done(Outcome::Reply(_))
    ));
    assert!(s.in_stream());
}

fn no_transaction(s: &mut Session, t0: Instant) {
    let err = s.start_data_stream(t0).unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::NoMailTransaction)),
        "{err:?}"
    );
    assert!(s.output().is_empty());
    assert!(s.is_idle());
}

#[test]
fn a_stream_needs_an_accepted_sender_and_recipient() {
    let t0 = Instant::now();
    let mut s = opened("250 mx\r\n", t0);
    no_transaction(&mut s, t0);
    // MAIL refused, RCPT accepted (the server would say 503): still none.
    envelope(&mut s, "451 later\r\n", "250 ok\r\n", t0);
    no_transaction(&mut s, t0);
    // MAIL accepted, RCPT refused.
    envelope(&mut s, "250 ok\r\n", "550 no\r\n", t0);
    no_transaction(&mut s, t0);
    envelope(&mut s, "250 ok\r\n", "250 ok\r\n", t0);
    streaming(&mut s, t0);
    s.stream_data(b"hi\r\n").unwrap();
    s.start_stream_end(t0).unwrap();
    assert_eq!(take(&mut s), b"hi\r\n.\r\n");
    s.handle_input(b"250 queued\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
    // The end of data ended the transaction.
    no_transaction(&mut s, t0);
    // So does BDAT: only BDAT may carry the rest of that message.
    envelope(&mut s, "250 ok\r\n", "250 ok\r\n", t0);
    s.start_bdat(b"x", false, t0).unwrap();
    take(&mut s);
    s.handle_input(b"250 ok\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
    no_transaction(&mut s, t0);
    // A refused DATA leaves the transaction open: the server still has it.
    envelope(&mut s, "250 ok\r\n", "250 ok\r\n", t0);
    s.start_data_stream(t0).unwrap();
    take(&mut s);
    s.handle_input(b"451 4.3.0 try again\r\n");
    assert!(matches!(s.poll(t0), Err(Error::Refused { .. })));
    streaming(&mut s, t0);
}

#[test]
fn a_streamed_message_is_stuffed_and_shown_once_per_64_kib() {
    let t0 = Instant::now();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let mut s = opened("250 mx\r\n", t0);
    s.set_transcript(Some(Box::new(move |_, l: &str| {
        sink.lock().unwrap().push(l.to_owned())
    })));
    envelope(&mut s, "250 ok\r\n", "250 ok\r\n", t0);
    streaming(&mut s, t0);
    // Cut before a dot and between CR and LF.
    for piece in [&b"a\r"[..], b"\n", b".", b"\r\n.", b"\r", b"\nend"] {
        s.stream_data(piece).unwrap();
    }
    assert_eq!(s.output(), b"a\r\n..\r\n..\r\nend");
    take(&mut s);
    let big = vec![b'x'; 70_000];
    s.stream_data(&big).unwrap();
    s.stream_data(b"\r\ntail").unwrap();
    s.start_stream_end(t0).unwrap();
    assert!(take(&mut s).ends_with(b"xxx\r\ntail\r\n.\r\n"));
    assert_eq!(s.poll_timeout(), Some(t0 + Timeouts::default().data_end));
    let lines = lines.lock().unwrap();
    let shown: Vec<&String> = lines.iter().skip_while(|l| *l != "354 go").collect();
    // 12 + 70 000 bytes: one line once 64 KiB were taken; the rest at the end.
    assert_eq!(
        shown,
        [
            "354 go",
            "[message data: 70012 bytes]",
            "[message data: 6 bytes]",
            "."
        ],
        "{lines:?}"
    );
}

/// A call on a session.
type Call = fn(&mut Session, Instant) -> Result<(), Error>;

#[test]
fn any_other_call_abandons_a_streamed_message() {
    let t0 = Instant::now();
    let calls: [Call; 5] = [
        |s, t| s.start_command(&Command::Noop, Expect::Completion, t),
        |s, t| s.start_quit(t),
        |s, _| s.data_send(b"x"),
        |s, t| s.start_data_end(t),
        |s, t| s.start_hello(None, t),
    ];
    for call in calls {
        let mut s = opened("250 mx\r\n", t0);
        envelope(&mut s, "250 ok\r\n", "250 ok\r\n", t0);
        streaming(&mut s, t0);
        s.stream_data(b"unsent part of the message\r\n.\r\n")
            .unwrap();
        let err = call(&mut s, t0).unwrap_err();
        assert!(
            matches!(err, Error::Misuse(Misuse::DataAbandoned)),
            "{err:?}"
        );
        // What was not written is discarded: nothing may go out, an end of data least of all.
        assert!(s.output().is_empty());
        assert!(s.is_broken() && !s.in_stream());
        for err in [
            s.stream_data(b"more").unwrap_err(),
            s.start_stream_end(t0).unwrap_err(),
            s.start_command(&Command::Noop, Expect::Completion, t0)
                .unwrap_err(),
        ] {
            assert!(
                matches!(err, Error::Misuse(Misuse::DataAbandoned)),
                "{err:?}"
            );
        }
        assert!(s.output().is_empty());
        assert!(!s.abandon_stream());
    }
}

#[test]
fn a_stream_under_lmtp_is_refused_before_sending() {
    let t0 = Instant::now();
    let mut config = SessionConfig::new(Domain::new("client.test").unwrap());
    config.tls = TlsMode::None;
    config.protocol = smtp_client::Protocol::Lmtp;
    let mut s = Session::new(config);
    s.start_open(t0).unwrap();
    s.handle_input(b"220 lmtp ready\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::NeedInput));
    take(&mut s);
    s.handle_input(b"250 lmtp\r\n");
    assert!(matches!(s.poll(t0).unwrap(), Event::Done(_)));
    envelope(&mut s, "250 ok\r\n", "250 ok\r\n", t0);
    assert!(matches!(
        s.start_data_stream(t0),
        Err(Error::Unsupported(_))
    ));
    assert!(s.output().is_empty());
}

#[test]
fn a_3xx_other_than_354_to_a_streams_data_breaks_the_session() {
    let t0 = Instant::now();
    let mut s = opened("250 mx\r\n", t0);
    envelope(&mut s, "250 ok\r\n", "250 ok\r\n", t0);
    s.start_data_stream(t0).unwrap();
    take(&mut s);
    s.handle_input(b"334 what\r\n");
    let err = s.poll(t0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(smtp_client::ProtocolError::UnexpectedCode { code: 334, .. })
        ),
        "{err:?}"
    );
    assert!(s.is_broken() && !s.in_stream());
}
