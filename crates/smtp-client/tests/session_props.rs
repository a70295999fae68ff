//! The session driven by random sequences of public calls against random server bytes in
//! random splits: no panic, no internal error, output bounded, and a message reported
//! sent only when a 2xx reply arrived after its end of data went out.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use smtp_client::{Envelope, Error, Event, Expect, Outcome, Session, SessionConfig, TlsMode};
use smtp_proto::{Command, Domain, ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};

/// Replies a server might send, well-formed or not, whole or in pieces.
const REPLIES: &[&[u8]] = &[
    b"220 mx ready\r\n",
    b"250 ok\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SIZE 100000\r\n",
    b"250-mx\r\n250 AUTH PLAIN\r\n",
    b"354 go ahead\r\n",
    b"235 2.7.0 ok\r\n",
    b"334 \r\n",
    b"421 4.3.2 closing\r\n",
    b"452 4.5.3 too many recipients\r\n",
    b"550 5.1.1 no such user\r\n",
    b"554 no service\r\n",
    b"221 bye\r\n",
    b"500 5.5.1 what\r\n",
    b"garbage\r\n",
    b"25",
    b"0 split\r\n",
    b"250-unfinished\r\n",
    b"\r\n",
];

#[derive(Debug, Clone)]
enum Call {
    Open,
    Hello,
    StartTls,
    Noop,
    Rset,
    Mail,
    Rcpt,
    Auth,
    ConfirmAuth,
    Data,
    DataSend,
    DataEnd,
    Bdat(bool),
    Recipients(usize),
    Send {
        body: usize,
        chunking: bool,
    },
    Batch {
        count: usize,
        body: usize,
        chunking: bool,
    },
    Quit,
    Abort,
}

#[derive(Debug, Clone)]
enum Server {
    /// The right reply to the next command the client wrote (see [`Model`]).
    Answer,
    /// Everything gathered so far reaches the client, in one read.
    Flush,
    /// One of [`REPLIES`], cut at `split` and fed in two pieces.
    Reply(usize, usize),
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
    Eof,
    /// Time passes (seconds).
    Wait(u64),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (0usize..100_000, any::<bool>()).prop_map(|(body, chunking)| Call::Send { body, chunking }),
        2 => (0usize..6, 0usize..100_000, any::<bool>())
            .prop_map(|(count, body, chunking)| Call::Batch { count, body, chunking }),
        1 => Just(Call::Open),
        1 => Just(Call::Hello),
        1 => Just(Call::StartTls),
        1 => Just(Call::Noop),
        1 => Just(Call::Rset),
        1 => Just(Call::Mail),
        1 => Just(Call::Rcpt),
        1 => Just(Call::Auth),
        1 => Just(Call::ConfirmAuth),
        1 => Just(Call::Data),
        1 => Just(Call::DataSend),
        1 => Just(Call::DataEnd),
        1 => any::<bool>().prop_map(Call::Bdat),
        1 => (0usize..4).prop_map(Call::Recipients),
        1 => Just(Call::Quit),
        1 => Just(Call::Abort),
    ]
}

fn server() -> impl Strategy<Value = Server> {
    prop_oneof![
        12 => Just(Server::Answer),
        6 => Just(Server::Flush),
        3 => (0..REPLIES.len(), 0usize..64).prop_map(|(i, s)| Server::Reply(i, s)),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Server::Bytes),
        1 => Just(Server::Eof),
        1 => (0u64..400).prop_map(Server::Wait),
    ]
}

fn rcpt(i: usize) -> (ForwardPath, RcptParams) {
    let to = ForwardPath::new(&format!("r{i}@example.test")).unwrap();
    (to, RcptParams::default())
}

/// A well-behaved server reading what the client wrote: the greeting, then one right
/// reply per command (354 to DATA, the reply to the end of data after the final dot, one
/// per BDAT chunk once its bytes are in). Stray replies come from [`Server::Reply`].
#[derive(Default)]
struct Model {
    greeted: bool,
    /// How much of the client's output has been answered.
    pos: usize,
    in_data: bool,
}

impl Model {
    fn answer(&mut self, wire: &[u8]) -> Option<&'static [u8]> {
        if !self.greeted {
            self.greeted = true;
            return Some(b"220 mx ready\r\n");
        }
        let rest = &wire[self.pos..];
        if self.in_data {
            // The body follows "DATA\r\n", so the final dot's CRLF may be that line's.
            let from = self.pos.saturating_sub(2);
            let end = wire[from..].windows(5).position(|w| w == b"\r\n.\r\n")?;
            self.pos = from + end + 5;
            self.in_data = false;
            return Some(b"250 2.0.0 queued\r\n");
        }
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = String::from_utf8_lossy(&rest[..eol]).to_ascii_uppercase();
        let mut consumed = eol + 2;
        let reply: &'static [u8] = match line.split(' ').next().unwrap_or("") {
            "EHLO" => b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "STARTTLS" => b"220 go ahead\r\n",
            "DATA" => {
                self.in_data = true;
                b"354 go ahead\r\n"
            }
            "BDAT" => {
                let n: usize = line.split(' ').nth(1).and_then(|n| n.parse().ok())?;
                if rest.len() < consumed + n {
                    return None;
                }
                consumed += n;
                b"250 2.0.0 chunk ok\r\n"
            }
            "AUTH" => b"235 2.7.0 ok\r\n",
            "QUIT" => b"221 bye\r\n",
            _ => b"250 ok\r\n",
        };
        self.pos += consumed;
        Some(reply)
    }
}

/// The driver's side: the calls, the server's bytes, and what the invariants need to know.
struct Harness {
    session: Session,
    now: Instant,
    script: std::vec::IntoIter<Server>,
    model: Model,
    /// Everything written, in order.
    wire: Vec<u8>,
    /// Length of `wire` when the current send started, and whether input arrived after its
    /// end of data was written.
    send_started: Option<usize>,
    end_of_data_at: Option<usize>,
    input_after_end: bool,
    body_left: usize,
    batch: Option<BatchTrack>,
}

/// A batch under way, for its delivery invariant: messages are accepted no faster than
/// their ends of data went out before a read.
struct BatchTrack {
    /// `wire` length when it started.
    start: usize,
    left: usize,
    body: usize,
    chunking: bool,
    accepted: usize,
    /// Ends of data written before the last read.
    ends_before_input: usize,
}

fn ends_in(wire: &[u8]) -> usize {
    wire.windows(5).filter(|w| w == b"\r\n.\r\n").count()
        + wire.windows(6).filter(|w| w == b" LAST\r").count()
}

impl Harness {
    fn write_out(&mut self) {
        let out = self.session.output().to_vec();
        self.session.consume_output(out.len());
        self.wire.extend_from_slice(&out);
        assert!(
            self.wire.len() < 64 * 1024 * 1024,
            "output grows without bound"
        );
        if self.send_started.is_some() && self.end_of_data_at.is_none() {
            let since = &self.wire[self.send_started.unwrap_or(0)..];
            let ended = since.windows(5).any(|w| w == b"\r\n.\r\n")
                || since.windows(6).any(|w| w == b" LAST\r");
            if ended {
                self.end_of_data_at = Some(self.wire.len());
            }
        }
    }

    /// Gathers server events up to the next flush and hands what they made to the
    /// session in one read; false when the script is over.
    fn feed(&mut self) -> bool {
        let mut gathered = Vec::new();
        let mut any = false;
        for step in self.script.by_ref() {
            any = true;
            match step {
                Server::Answer => {
                    if let Some(reply) = self.model.answer(&self.wire) {
                        gathered.extend_from_slice(reply);
                    }
                }
                Server::Flush => break,
                Server::Reply(i, split) => {
                    let bytes = REPLIES[i];
                    let cut = split.min(bytes.len());
                    gathered.extend_from_slice(&bytes[..cut]);
                    gathered.extend_from_slice(&bytes[cut..]);
                }
                Server::Bytes(bytes) => gathered.extend_from_slice(&bytes),
                Server::Eof => {
                    self.session.handle_eof();
                    break;
                }
                Server::Wait(secs) => {
                    self.now += Duration::from_secs(secs);
                    self.session.handle_timeout(self.now);
                    break;
                }
            }
        }
        if !any {
            return false;
        }
        self.session.handle_input(&gathered);
        if self.end_of_data_at.is_some() {
            self.input_after_end = true;
        }
        if let Some(batch) = &mut self.batch {
            batch.ends_before_input = ends_in(&self.wire[batch.start..]);
        }
        true
    }

    fn check(result: &Result<(), Error>) {
        if let Err(Error::Internal(what)) = result {
            panic!("internal error reached: {what}");
        }
    }

    /// Polls until the operation ends or the script runs out.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let event = self.session.poll(self.now);
            self.write_out();
            match event {
                Err(e) => {
                    Self::check(&Err(e));
                    self.send_started = None;
                    return;
                }
                Ok(Event::Done(outcome)) => {
                    if let Outcome::Sent(_) = outcome {
                        assert!(
                            self.end_of_data_at.is_some() && self.input_after_end,
                            "a message reported sent without a reply after its end of data"
                        );
                    }
                    self.send_started = None;
                    return;
                }
                Ok(Event::NeedInput) => {
                    if !self.feed() {
                        return;
                    }
                }
                Ok(Event::NeedBody) => {
                    let n = self.body_left.min(70_000);
                    self.body_left -= n;
                    let chunk = vec![b'a'; n];
                    let r = self
                        .session
                        .push_body(&chunk, self.body_left == 0, self.now);
                    Self::check(&r);
                    if r.is_err() {
                        return;
                    }
                }
                Ok(Event::StartTls) => {
                    let r = self.session.tls_established(self.now);
                    Self::check(&r);
                }
                Ok(Event::NeedMessage) => {
                    let Some(batch) = &mut self.batch else {
                        panic!("a message asked for outside a batch");
                    };
                    let next = (batch.left > 0).then(|| {
                        batch.left -= 1;
                        let to = [rcpt(1).0, rcpt(2).0];
                        let from = ReversePath::Mailbox(Mailbox::new("a@example.test").unwrap());
                        Envelope::new(from, to).prefer_chunking(batch.chunking)
                    });
                    self.body_left = batch.body;
                    let r = self.session.push_message(next);
                    Self::check(&r);
                }
                Ok(Event::MessageDone(done)) => {
                    let Some(batch) = &mut self.batch else {
                        panic!("a message ended outside a batch");
                    };
                    if done.state.is_accepted() {
                        batch.accepted += 1;
                        assert!(
                            batch.accepted <= batch.ends_before_input,
                            "a message reported accepted before a reply could follow its end of data"
                        );
                    }
                }
            }
        }
        panic!("poll did not settle in 10,000 steps");
    }

    fn call(&mut self, call: Call) {
        let now = self.now;
        let s = &mut self.session;
        let from = ReversePath::Mailbox(Mailbox::new("a@example.test").unwrap());
        let result = match call {
            Call::Open => s.start_open(now),
            Call::Hello => s.start_hello(None, now),
            Call::StartTls => s.start_starttls(now),
            Call::Noop => s.start_command(&Command::Noop, Expect::Completion, now),
            Call::Rset => s.start_command(&Command::Rset, Expect::AnyReply, now),
            Call::Mail => {
                let params = MailParams::default();
                s.start_command(
                    &Command::Mail {
                        from: &from,
                        params: &params,
                    },
                    Expect::Completion,
                    now,
                )
            }
            Call::Rcpt => {
                let (to, params) = rcpt(0);
                s.start_command(
                    &Command::Rcpt {
                        to: &to,
                        params: &params,
                    },
                    Expect::Completion,
                    now,
                )
            }
            Call::Auth => s.start_command(
                &Command::Auth {
                    mechanism: "PLAIN",
                    initial_response: Some(b"\0u\0p"),
                },
                Expect::AnyReply,
                now,
            ),
            Call::ConfirmAuth => s.confirm_authenticated(),
            Call::Data => s.start_data(now),
            Call::DataSend => s.data_send(b"line\r\n.dot\r\n"),
            Call::DataEnd => s.start_data_end(now),
            Call::Bdat(last) => s.start_bdat(b"chunk", last, now),
            Call::Recipients(n) => {
                let list: Vec<_> = (0..n).map(rcpt).collect();
                s.start_recipients(&list, now)
            }
            Call::Send { body, chunking } => {
                let env = Envelope::new(from, [rcpt(1).0, rcpt(2).0]).prefer_chunking(chunking);
                self.body_left = body;
                let r = s.start_send(env, now);
                if r.is_ok() {
                    self.send_started = Some(self.wire.len());
                    self.end_of_data_at = None;
                    self.input_after_end = false;
                }
                r
            }
            Call::Batch {
                count,
                body,
                chunking,
            } => {
                let r = s.start_batch(3, now);
                if r.is_ok() {
                    self.batch = Some(BatchTrack {
                        start: self.wire.len(),
                        left: count,
                        body,
                        chunking,
                        accepted: 0,
                        ends_before_input: 0,
                    });
                }
                r
            }
            Call::Quit => s.start_quit(now),
            Call::Abort => {
                s.abort();
                Ok(())
            }
        };
        Self::check(&result);
        if result.is_ok() && !matches!(call, Call::ConfirmAuth | Call::DataSend | Call::Abort) {
            self.run();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_calls_against_random_replies_reach_no_internal_error(
        tls in prop_oneof![
            Just(TlsMode::None),
            Just(TlsMode::StartTlsOpportunistic),
            Just(TlsMode::StartTlsRequired),
            Just(TlsMode::Implicit),
        ],
        pipelining in any::<bool>(),
        open_first in proptest::bool::weighted(0.9),
        calls in proptest::collection::vec(call(), 1..12),
        script in proptest::collection::vec(server(), 0..120),
    ) {
        let mut config = SessionConfig::new(Domain::new("client.test").unwrap());
        config.tls = tls;
        config.pipelining = pipelining;
        let mut h = Harness {
            session: Session::new(config),
            now: Instant::now(),
            script: script.into_iter(),
            model: Model::default(),
            wire: Vec::new(),
            send_started: None,
            end_of_data_at: None,
            input_after_end: false,
            body_left: 0,
            batch: None,
        };
        // Most sessions begin with the greeting; the calls after it are random.
        if open_first {
            h.call(Call::Open);
        }
        for c in calls {
            h.call(c);
        }
    }
}
