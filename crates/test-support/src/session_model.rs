//! The sans-IO [`Session`] driven by a sequence of public calls against a modelled server,
//! stray replies, arbitrary bytes in arbitrary splits, end of stream and time passing.
//!
//! Shared by the proptest in `smtp-client/tests/session_props.rs` and the cargo-fuzz target
//! `fuzz/fuzz_targets/session.rs`: each only decides how its input becomes a [`Case`]; the
//! harness runs it and checks, after every step:
//!
//! - no panic, and no [`Error::Internal`];
//! - memory bounded by the configured limits: the bytes the session holds unread never
//!   exceed one reply at the configured [`ReplyLimits`](smtp_proto::ReplyLimits), and its
//!   output never exceeds what the last call can have written;
//! - the delivery invariant: a message is reported sent only when the reply that says so
//!   came, whole, in bytes that reached the session after its end of data (or BDAT LAST)
//!   was written; likewise every other command is answered only by bytes that arrived after
//!   it was written (a stray reply never answers anything).

use std::time::{Duration, Instant};

use arbitrary::Unstructured;

use smtp_client::{
    Envelope, Error, Event, Expect, MessageState, Outcome, Session, SessionConfig, TlsMode,
};
use smtp_proto::{
    Command, Domain, ForwardPath, MailParams, Mailbox, RcptParams, ReplyLimits, ReversePath,
};

/// Replies a server might send, well-formed or not, whole or in pieces.
pub const REPLIES: &[&[u8]] = &[
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

/// The SASL mechanisms the AUTH call drives through `smtp-auth`'s `AuthExchange`.
#[cfg(feature = "auth")]
pub const MECHANISMS: &[&str] = &["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"];

/// One public call on the session.
#[derive(Debug, Clone)]
pub enum Call {
    Open,
    Hello,
    StartTls,
    Noop,
    Rset,
    Mail,
    Rcpt,
    /// A raw `AUTH PLAIN` line through `start_command`.
    Auth,
    /// A whole AUTH exchange through `smtp-auth`'s `AuthExchange`, with the mechanism
    /// `MECHANISMS[i % len]` (feature `auth`; without it, the same as [`Call::Auth`]).
    AuthExchange(usize),
    ConfirmAuth,
    Data,
    DataSend,
    DataEnd,
    /// DATA for a DATA writer's message (`start_data_stream`), and the writer's calls. Not
    /// decoded from fuzzer bytes (the committed corpus keeps its meaning); the session's
    /// property test draws them.
    DataStream,
    StreamData,
    StreamEnd,
    AbandonStream,
    Bdat(bool),
    Recipients(usize),
    /// `send` of a body of `body` bytes, with BDAT preferred or not.
    Send {
        body: usize,
        chunking: bool,
    },
    /// `start_batch` (a window of three) with `count` such messages.
    Batch {
        count: usize,
        body: usize,
        chunking: bool,
    },
    Quit,
    Abort,
}

/// What the server side does when the session waits for input.
#[derive(Debug, Clone)]
pub enum Server {
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

/// One run: the configuration's choices, the calls and the server's script.
#[derive(Debug, Clone)]
pub struct Case {
    pub tls: TlsMode,
    pub pipelining: bool,
    /// Small reply limits (64-octet lines, 8 lines), so that they are reached.
    pub small_limits: bool,
    /// Begin with [`Call::Open`].
    pub open_first: bool,
    pub calls: Vec<Call>,
    pub script: Vec<Server>,
}

/// The TLS modes a case picks from.
pub const TLS_MODES: [TlsMode; 4] = [
    TlsMode::None,
    TlsMode::StartTlsOpportunistic,
    TlsMode::StartTlsRequired,
    TlsMode::Implicit,
];

/// Decodes a fuzzer's bytes into a case, as the fuzz target `session` does; `None` when
/// they run out before the calls are decoded. A finding of the fuzzer is replayed with
/// `run(decode(input)?)`.
pub fn decode(data: &[u8]) -> Option<Case> {
    case(&mut Unstructured::new(data)).ok()
}

fn call(u: &mut Unstructured<'_>) -> arbitrary::Result<Call> {
    Ok(match u.int_in_range(0u8..=21)? {
        0..=3 => Call::Send {
            body: u.int_in_range(0..=100_000)?,
            chunking: u.arbitrary()?,
        },
        4 => Call::Open,
        5 => Call::Hello,
        6 => Call::StartTls,
        7 => Call::Noop,
        8 => Call::Rset,
        9 => Call::Mail,
        10 => Call::Rcpt,
        11 => Call::Auth,
        12 => Call::AuthExchange(u.arbitrary()?),
        13 => Call::ConfirmAuth,
        14 => Call::Data,
        15 => Call::DataSend,
        16 => Call::DataEnd,
        17 => Call::Bdat(u.arbitrary()?),
        18 => Call::Recipients(u.int_in_range(0..=3)?),
        19 => Call::Quit,
        20 => Call::Abort,
        _ => Call::Batch {
            count: u.int_in_range(0..=5)?,
            body: u.int_in_range(0..=100_000)?,
            chunking: u.arbitrary()?,
        },
    })
}

fn server(u: &mut Unstructured<'_>) -> arbitrary::Result<Server> {
    Ok(match u.int_in_range(0u8..=23)? {
        0..=11 => Server::Answer,
        12..=17 => Server::Flush,
        18..=20 => Server::Reply(u.arbitrary()?, u.int_in_range(0..=63)?),
        21 => Server::Bytes(u.arbitrary()?),
        22 => Server::Eof,
        _ => Server::Wait(u.int_in_range(0..=399)?),
    })
}

fn case(u: &mut Unstructured<'_>) -> arbitrary::Result<Case> {
    let tls = TLS_MODES[usize::from(u.int_in_range(0u8..=3)?)];
    let flags: u8 = u.arbitrary()?;
    let n_calls = u.int_in_range(1u8..=12)?;
    let mut calls = Vec::new();
    for _ in 0..n_calls {
        calls.push(call(u)?);
    }
    let mut script = Vec::new();
    while !u.is_empty() && script.len() < 200 {
        script.push(server(u)?);
    }
    Ok(Case {
        tls,
        pipelining: flags & 1 != 0,
        small_limits: flags & 2 != 0,
        // Most sessions begin with the greeting.
        open_first: flags & 0x1c != 0,
        calls,
        script,
    })
}

/// Largest body chunk pushed at once.
const BODY_CHUNK: usize = 70_000;

/// What a run reached, so that tests can tell the harness exercised what they meant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages reported sent.
    pub sent: usize,
    /// AUTH exchanges that succeeded and were confirmed.
    pub authenticated: usize,
    /// DATA writers' messages ended with a 2xx reply.
    pub streamed: usize,
}

/// Runs `case` and checks the invariants (see the module documentation); panics on a
/// violation.
pub fn run(case: Case) -> Summary {
    let mut config = SessionConfig::new(Domain::new("client.test").expect("valid domain"));
    config.tls = case.tls;
    config.pipelining = case.pipelining;
    if case.small_limits {
        config.reply_limits = ReplyLimits {
            max_line_len: 64,
            max_lines: 8,
        };
    }
    let limits = config.reply_limits;
    // One reply at the limits: every line at its longest, with its CRLF.
    let max_unread = limits.max_lines.saturating_mul(limits.max_line_len + 2);
    let mut h = Harness {
        session: Session::new(config),
        now: Instant::now(),
        script: case.script.into_iter(),
        model: Model::default(),
        wire: Vec::new(),
        fed: 0,
        max_unread,
        op_fed: None,
        send: None,
        end_of_data_fed: None,
        body_left: 0,
        batch: None,
        abandoned: None,
        streamed: Vec::new(),
        summary: Summary::default(),
    };
    // Most sessions begin with the greeting; the calls after it are random.
    if case.open_first {
        h.call(Call::Open);
    }
    for c in case.calls {
        h.call(c);
    }
    h.summary
}

fn rcpt(i: usize) -> (ForwardPath, RcptParams) {
    let to = ForwardPath::new(&format!("r{i}@example.test")).expect("valid path");
    (to, RcptParams::default())
}

/// What each `StreamData` call streams: a line that is only a dot, and no line end.
const STREAMED: &[u8] = b"line\r\n.\r\nnot the end";

/// A well-behaved server reading what the client wrote: the greeting, then one right
/// reply per command (354 to DATA, the reply to the end of data after the final dot, one
/// per BDAT chunk once its bytes are in, 334 challenges for the AUTH mechanisms that need
/// them). Stray replies come from [`Server::Reply`].
#[derive(Debug, Default)]
pub struct Model {
    greeted: bool,
    /// How much of the client's output has been answered.
    pos: usize,
    in_data: bool,
    /// Each DATA transfer taken, as received (stuffed, with its end).
    messages: Vec<Vec<u8>>,
    /// 334 challenges still to send for the AUTH exchange under way.
    auth_challenges: &'static [&'static [u8]],
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
            let taken = from + end + 5;
            self.messages
                .push(wire[self.pos.min(taken - 3)..taken].to_vec());
            self.pos = taken;
            self.in_data = false;
            return Some(b"250 2.0.0 queued\r\n");
        }
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = String::from_utf8_lossy(&rest[..eol]).to_ascii_uppercase();
        let mut consumed = eol + 2;
        let mut words = line.split(' ');
        let verb = words.next().unwrap_or("");
        let reply: &'static [u8] = if let Some((first, more)) = self.auth_challenges.split_first() {
            // A response line (or "*") to the last 334.
            self.auth_challenges = more;
            if verb == "*" {
                self.auth_challenges = &[];
                b"501 5.0.0 cancelled\r\n"
            } else {
                first
            }
        } else {
            match verb {
                "EHLO" => b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256\r\n",
                "STARTTLS" => b"220 go ahead\r\n",
                "DATA" => {
                    self.in_data = true;
                    b"354 go ahead\r\n"
                }
                "BDAT" => {
                    let n: usize = words.next().and_then(|n| n.parse().ok())?;
                    if rest.len() < consumed + n {
                        return None;
                    }
                    consumed += n;
                    b"250 2.0.0 chunk ok\r\n"
                }
                "AUTH" => match (words.next(), words.next()) {
                    (Some("LOGIN"), None) => {
                        self.auth_challenges = &[b"334 UGFzc3dvcmQ6\r\n", b"235 2.7.0 ok\r\n"];
                        b"334 VXNlcm5hbWU6\r\n"
                    }
                    (Some("CRAM-MD5"), _) => {
                        self.auth_challenges = &[b"235 2.7.0 ok\r\n"];
                        // RFC 2195's example challenge.
                        b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"
                    }
                    (Some("SCRAM-SHA-256"), _) => {
                        // Not a valid server-first: the client cancels, the server answers.
                        self.auth_challenges = &[b"501 5.5.2 cancelled\r\n"];
                        b"334 cj1ub25jZQ==\r\n"
                    }
                    _ => b"235 2.7.0 ok\r\n",
                },
                "QUIT" => b"221 bye\r\n",
                _ => b"250 ok\r\n",
            }
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
    /// Bytes handed to the session so far.
    fed: usize,
    /// Most bytes the session may hold unread while it waits for input.
    max_unread: usize,
    /// `fed` when the operation under way wrote its command (`None`: not checked, the
    /// greeting and QUIT).
    op_fed: Option<usize>,
    /// Length of `wire` when the `send` under way started.
    send: Option<usize>,
    /// `fed` when the send's end of data (or BDAT LAST) was written.
    end_of_data_fed: Option<usize>,
    body_left: usize,
    /// The batch under way.
    batch: Option<BatchTrack>,
    /// Length of `wire` when a streamed message ended without its end of data
    /// (abandoned, or failed): nothing may be written after it.
    abandoned: Option<usize>,
    /// What the DATA writer under way was given.
    streamed: Vec<u8>,
    summary: Summary,
}

/// A batch under way, for its delivery invariant.
struct BatchTrack {
    /// Length of `wire` when it started.
    start: usize,
    /// Messages still to hand over.
    left: usize,
    body: usize,
    chunking: bool,
    /// Messages reported accepted so far.
    accepted: usize,
    /// `fed` when each end of data (or BDAT LAST) of the batch was written, in order. The
    /// k-th accepted message ended no earlier than the k-th end, so its reply must have
    /// come after `ends_fed[k - 1]`.
    ends_fed: Vec<usize>,
}

/// How many ends of data (DATA's final dot, BDAT LAST) `wire` holds.
fn ends_in(wire: &[u8]) -> usize {
    wire.windows(5).filter(|w| w == b"\r\n.\r\n").count()
        + wire.windows(6).filter(|w| w == b" LAST\r").count()
}

impl Harness {
    fn write_out(&mut self) {
        let out = self.session.output().to_vec();
        self.session.consume_output(out.len());
        self.wire.extend_from_slice(&out);
        if let Some(len) = self.abandoned {
            assert_eq!(
                self.wire.len(),
                len,
                "bytes written after a streamed message ended without its end of data"
            );
        }
        if let Some(batch) = &mut self.batch {
            let ends = ends_in(&self.wire[batch.start..]);
            while batch.ends_fed.len() < ends {
                batch.ends_fed.push(self.fed);
            }
        }
        if let Some(start) = self.send {
            if self.end_of_data_fed.is_none() {
                let since = &self.wire[start..];
                let ended = since.windows(5).any(|w| w == b"\r\n.\r\n")
                    || since.windows(6).any(|w| w == b" LAST\r");
                if ended {
                    self.end_of_data_fed = Some(self.fed);
                }
            }
        }
    }

    /// Where the reply just returned began, counted in bytes fed to the session.
    fn reply_start(&self, reply: &smtp_proto::Reply) -> usize {
        let end = self.fed - self.session.buffered_input_len();
        end.checked_sub(reply.raw().len())
            .expect("a reply longer than the bytes fed")
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
                    let bytes = REPLIES[i % REPLIES.len()];
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
        self.fed += gathered.len();
        true
    }

    fn check<T>(result: &Result<T, Error>) {
        if let Err(e) = result {
            Self::check_error(e);
        }
    }

    fn check_error(e: &Error) {
        if let Error::Internal(what) = e {
            panic!("internal error reached: {what}");
        }
    }

    /// Polls until the operation ends or the script runs out; the operation's result, if
    /// it ended.
    fn run(&mut self) -> Option<Result<Outcome, Error>> {
        for _ in 0..10_000 {
            let event = self.session.poll(self.now);
            self.write_out();
            match event {
                Err(e) => {
                    Self::check_error(&e);
                    self.send = None;
                    self.batch = None;
                    return Some(Err(e));
                }
                Ok(Event::Done(outcome)) => {
                    self.check_done(&outcome);
                    self.send = None;
                    self.batch = None;
                    return Some(Ok(outcome));
                }
                Ok(Event::NeedInput) => {
                    let unread = self.session.buffered_input_len();
                    assert!(
                        unread <= self.max_unread,
                        "{unread} bytes held unread, more than one reply at the limits ({})",
                        self.max_unread
                    );
                    if !self.feed() {
                        return None;
                    }
                }
                Ok(Event::NeedBody) => {
                    let n = self.body_left.min(BODY_CHUNK);
                    self.body_left -= n;
                    let chunk = vec![b'a'; n];
                    let before = self.session.output().len();
                    let r = self
                        .session
                        .push_body(&chunk, self.body_left == 0, self.now);
                    // Dot-stuffing a body without lines adds nothing but the ending and,
                    // before the first chunk, the envelope's commands.
                    let grown = self.session.output().len() - before;
                    assert!(grown <= n + 4096, "{grown} bytes out for a {n}-byte chunk");
                    Self::check(&r);
                    if let Err(e) = r {
                        return Some(Err(e));
                    }
                }
                Ok(Event::StartTls) => {
                    let r = self.session.tls_established(self.now);
                    Self::check(&r);
                }
                Ok(Event::NeedMessage) => {
                    let batch = self
                        .batch
                        .as_mut()
                        .expect("a message asked for outside a batch");
                    let next = (batch.left > 0).then(|| {
                        batch.left -= 1;
                        let from = ReversePath::Mailbox(
                            Mailbox::new("a@example.test").expect("valid mailbox"),
                        );
                        Envelope::new(from, [rcpt(1).0, rcpt(2).0]).prefer_chunking(batch.chunking)
                    });
                    self.body_left = batch.body;
                    let r = self.session.push_message(next);
                    Self::check(&r);
                }
                Ok(Event::MessageDone(done)) => {
                    if let MessageState::Accepted(report) = &done.state {
                        let start = self.reply_start(&report.reply);
                        let batch = self
                            .batch
                            .as_mut()
                            .expect("a message ended outside a batch");
                        batch.accepted += 1;
                        let end = batch.ends_fed.get(batch.accepted - 1).copied();
                        assert!(
                            end.is_some_and(|end| start >= end),
                            "message {} of a batch reported accepted by a reply that arrived \
                             before its end of data (reply at {start}, end at {end:?})",
                            done.index
                        );
                        self.summary.sent += 1;
                    }
                }
            }
        }
        panic!("poll did not settle in 10,000 steps");
    }

    /// The delivery invariant, and its general form for any other reply.
    fn check_done(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Sent(report) => {
                self.summary.sent += 1;
                let end = self
                    .end_of_data_fed
                    .expect("a message reported sent before its end of data was written");
                let start = self.reply_start(&report.reply);
                assert!(
                    start >= end,
                    "a message reported sent by a reply that arrived before its end of data \
                     ({start} < {end}): {}",
                    report.reply
                );
            }
            Outcome::Reply(reply) => {
                if let Some(op) = self.op_fed {
                    let start = self.reply_start(reply);
                    assert!(
                        start >= op,
                        "a command answered by a reply that arrived before it was written \
                         ({start} < {op}): {reply}"
                    );
                }
            }
            Outcome::Recipients(_) | Outcome::Closed(_) | Outcome::Batch(_) => {}
        }
    }

    /// Starts `command` and runs it to its end.
    #[cfg(feature = "auth")]
    fn command(&mut self, command: &Command<'_>, expect: Expect) -> Option<Result<Outcome, Error>> {
        self.op_fed = Some(self.fed);
        let r = self.session.start_command(command, expect, self.now);
        Self::check(&r);
        r.ok()?;
        self.run()
    }

    fn call(&mut self, call: Call) {
        let now = self.now;
        // Replies to the greeting and to QUIT are not checked against stray bytes: the
        // greeting has no command, and QUIT ends the session whatever they were.
        self.op_fed = match call {
            Call::Open | Call::Quit => None,
            _ => Some(self.fed),
        };
        let streaming = self.session.in_stream();
        let s = &mut self.session;
        let from = ReversePath::Mailbox(Mailbox::new("a@example.test").expect("valid mailbox"));
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
            Call::AuthExchange(i) => {
                self.auth_exchange(i);
                return;
            }
            Call::ConfirmAuth => s.confirm_authenticated(),
            Call::Data => s.start_data(now),
            Call::DataSend => s.data_send(b"line\r\n.dot\r\n"),
            Call::DataEnd => s.start_data_end(now),
            Call::DataStream => s.start_data_stream(now),
            Call::StreamData => s.stream_data(STREAMED),
            Call::StreamEnd => s.start_stream_end(now),
            Call::AbandonStream => {
                s.abandon_stream();
                Ok(())
            }
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
                    self.send = Some(self.wire.len());
                    self.end_of_data_fed = None;
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
                        ends_fed: Vec::new(),
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
        let starts_nothing = matches!(
            call,
            Call::ConfirmAuth
                | Call::DataSend
                | Call::StreamData
                | Call::AbandonStream
                | Call::Abort
        );
        if streaming && !self.session.in_stream() && self.session.is_broken() {
            self.abandoned.get_or_insert(self.wire.len());
        }
        match call {
            Call::DataStream => self.streamed.clear(),
            Call::StreamData if result.is_ok() => {
                self.streamed.extend_from_slice(STREAMED);
                // A writer's flush.
                self.write_out();
            }
            _ => {}
        }
        if result.is_ok() && !starts_nothing {
            let ended = self.run();
            if matches!(call, Call::StreamEnd) {
                if let Some(Ok(Outcome::Reply(reply))) = ended {
                    assert!(reply.is_positive_completion(), "{reply}");
                    self.summary.streamed += 1;
                    // The message the server took is the one the writer was given.
                    let taken = self.model.messages.last().expect("a message taken");
                    let (message, _) = smtp_proto::unstuff(taken).expect("a whole transfer");
                    assert_eq!(
                        message,
                        smtp_proto::crlf_normalise(&self.streamed),
                        "the server took another message than the writer was given"
                    );
                }
            }
        }
    }

    /// An AUTH exchange run as `smtp-auth`'s drivers run it: each command through
    /// `start_command` with any reply returned, then `confirm_authenticated` after success.
    #[cfg(feature = "auth")]
    fn auth_exchange(&mut self, i: usize) {
        use sasl_mechs::Credentials;
        use smtp_auth::{AuthContext, AuthExchange, AuthOptions};

        let mechanism = MECHANISMS[i % MECHANISMS.len()];
        let credentials = Credentials::new("tim", "tanstaaftanstaaf").expect("valid credentials");
        let context = AuthContext::new(
            self.session.capabilities(),
            self.session.is_encrypted(),
            self.session.is_authenticated(),
        );
        let mut options = AuthOptions::default();
        options.allow_plaintext_without_tls = i % 2 == 0;
        let Ok(mut exchange) =
            AuthExchange::start_named(mechanism, &credentials, &context, &options)
        else {
            return;
        };
        while let Some(command) = exchange.next_command() {
            match self.command(&command, Expect::AnyReply) {
                Some(Ok(Outcome::Reply(reply))) => exchange.receive(reply),
                Some(Ok(other)) => panic!("AUTH line ended with {other:?}"),
                Some(Err(_)) | None => return,
            }
        }
        if exchange.into_result().is_ok() {
            // The exchange's last reply was a 235: the session must take the confirmation.
            let r = self.session.confirm_authenticated();
            assert!(r.is_ok(), "a successful AUTH exchange not confirmed: {r:?}");
            self.summary.authenticated += 1;
        }
    }

    #[cfg(not(feature = "auth"))]
    fn auth_exchange(&mut self, _: usize) {
        self.call(Call::Auth);
    }
}
