//! The sans-IO SMTP client session: Net::SMTP's state machine with no sockets and no clock.
//!
//! A driver (the blocking [`SmtpClient`](crate::SmtpClient), or an async one) owns the
//! connection and moves bytes; the session decides every byte sent and interprets every byte
//! received. The driver's loop is always the same:
//!
//! 1. start an operation (`start_open`, `start_command`, `start_send`...);
//! 2. call [`Session::poll`] and write out everything in [`Session::output`];
//! 3. act on the [`Event`]: read bytes and pass them to [`Session::handle_input`]
//!    (waiting no later than [`Session::poll_timeout`], then [`Session::handle_timeout`]),
//!    push a chunk of the body ([`Session::push_body`]), or run the TLS handshake and call
//!    [`Session::tls_established`]; stop at [`Event::Done`].
//!
//! Deadlines are absolute per awaited reply and computed from the `now` passed in, so
//! timeouts are tested without sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use smtp_proto::{
    Body, Capabilities, Command, Domain, DotStuffer, ForwardPath, RcptParams, Reply, ReplyLimits,
    ReplyParser, SizeLimit,
};

use crate::envelope::{Envelope, RecipientsReport, SendReport};
use crate::error::{Error, ProtocolError, RefusedRecipient, TlsUnavailable};
use crate::timeouts::{deadline_after, Timeouts};
use crate::transcript::{Direction, Transcript, TranscriptFn};

/// When the session upgrades a plaintext connection with STARTTLS (RFC 3207).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartTlsPolicy {
    /// Never: the session stays in clear (or the connection is implicit TLS).
    Never,
    /// When the server offers STARTTLS; carry on in clear when it does not or refuses it.
    /// Open to a man in the middle who strips STARTTLS: prefer `Required`.
    Opportunistic,
    /// Always: a server without STARTTLS, a refusal or a failed handshake is an error, and
    /// nothing but EHLO, STARTTLS and QUIT is ever sent in clear.
    #[default]
    Required,
}

/// How a session behaves, independent of any socket.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The name sent in EHLO/HELO.
    pub client_id: Domain,
    /// Deadlines for each phase.
    pub timeouts: Timeouts,
    /// Bounds on each reply (line length, line count).
    pub reply_limits: ReplyLimits,
    /// STARTTLS policy for a plaintext connection.
    pub starttls: StartTlsPolicy,
    /// The connection is TLS from its first byte (RFC 8314 implicit TLS).
    pub implicit_tls: bool,
    /// Send EHLO after the greeting (Net::SMTP's `SendHello`).
    pub send_hello: bool,
    /// Use PIPELINING (RFC 2920) when the server offers it (default true).
    pub pipelining: bool,
}

impl SessionConfig {
    /// A configuration with default timeouts and limits, STARTTLS required, EHLO sent.
    pub fn new(client_id: Domain) -> SessionConfig {
        SessionConfig {
            client_id,
            timeouts: Timeouts::default(),
            reply_limits: ReplyLimits::default(),
            starttls: StartTlsPolicy::Required,
            implicit_tls: false,
            send_hello: true,
            pipelining: true,
        }
    }
}

/// What a single command's reply must be for the command to count as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Any reply is returned as it is (Net::Cmd's `command` + `response`).
    AnyReply,
    /// 2xx; anything else is [`Error::Refused`].
    Completion,
    /// 3xx (354 to DATA, 334 during AUTH); anything else is [`Error::Refused`].
    Intermediate,
}

/// What the driver must do next.
#[derive(Debug)]
#[must_use]
pub enum Event {
    /// Write out [`Session::output`], then read from the connection and pass the bytes to
    /// [`Session::handle_input`], waiting no later than [`Session::poll_timeout`].
    NeedInput,
    /// Read the next chunk of the message body and pass it to [`Session::push_body`].
    NeedBody,
    /// Write out [`Session::output`], run the TLS client handshake on the connection, then call
    /// [`Session::tls_established`]. Nothing may be read in clear in between.
    StartTls,
    /// The operation is complete.
    Done(Outcome),
}

/// The result of a completed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The last reply of the operation (the greeting, EHLO, the command's reply...).
    Reply(Reply),
    /// A batch of recipients with at least one accepted.
    Recipients(RecipientsReport),
    /// A message was sent.
    Sent(SendReport),
    /// QUIT was answered, or the server closed the connection after QUIT.
    Closed(Option<Reply>),
}

impl Outcome {
    /// The reply an operation ended with, when it has one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Outcome::Reply(r) => Some(r),
            Outcome::Sent(s) => Some(&s.reply),
            Outcome::Closed(r) => r.as_ref(),
            Outcome::Recipients(_) => None,
        }
    }
}

/// A sans-IO SMTP client session.
///
/// ```
/// use std::time::Instant;
/// use smtp_client::{Event, Outcome, Session, SessionConfig, StartTlsPolicy};
/// use smtp_proto::Domain;
///
/// let mut config = SessionConfig::new(Domain::new("client.example.test")?);
/// config.starttls = StartTlsPolicy::Never;
/// let mut session = Session::new(config);
/// let now = Instant::now();
/// session.start_open(now)?;
/// assert!(matches!(session.poll(now)?, Event::NeedInput));
/// session.handle_input(b"220 mx.example.test ESMTP\r\n");
/// assert!(matches!(session.poll(now)?, Event::NeedInput));
/// assert_eq!(session.output(), b"EHLO client.example.test\r\n");
/// session.consume_output(session.output().len());
/// session.handle_input(b"250-mx.example.test\r\n250 PIPELINING\r\n");
/// assert!(matches!(session.poll(now)?, Event::Done(Outcome::Reply(_))));
/// assert!(session.capabilities().unwrap().pipelining());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    parser: ReplyParser,
    output: Vec<u8>,
    pending: VecDeque<Awaited>,
    deadline: Option<Instant>,
    op: Op,
    finished: Option<Result<Outcome, Error>>,
    caps: Option<Capabilities>,
    banner: Option<Reply>,
    last_reply: Option<Reply>,
    encrypted: bool,
    authenticated: bool,
    in_data: Option<DotStuffer>,
    eof: bool,
    broken: bool,
    closed: bool,
    transcript: Transcript,
}

/// A reply the session waits for, in the order the commands were sent.
#[derive(Debug)]
struct Awaited {
    tag: Tag,
    /// The command as shown in errors and the transcript (redacted).
    command: String,
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Single,
    Mail,
    Rcpt(usize),
    Data,
    DataEnd,
    Bdat { last: bool },
    Rset,
    Quit,
}

#[derive(Debug)]
enum Op {
    Idle,
    Setup(Setup),
    Single { expect: Expect, starts_data: bool },
    Recipients(Recipients),
    Send(Box<SendOp>),
    Quit,
}

/// Greeting, EHLO (HELO fallback), STARTTLS and EHLO again: `open`, `hello` and `starttls`.
#[derive(Debug)]
struct Setup {
    step: SetupStep,
    /// Send EHLO after the greeting.
    hello: bool,
    /// Try STARTTLS after EHLO, per the policy.
    starttls: bool,
    /// A refusal of STARTTLS is an error even under the opportunistic policy (explicit call).
    starttls_explicit: bool,
    domain: Domain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetupStep {
    Greeting,
    Hello { after_tls: bool },
    StartTls,
    Handshake,
}

#[derive(Debug)]
struct Recipients {
    list: Vec<(ForwardPath, RcptParams)>,
    pipelined: bool,
    next: usize,
    accepted: Vec<ForwardPath>,
    refused: Vec<RefusedRecipient>,
}

#[derive(Debug)]
struct SendOp {
    envelope: Envelope,
    phase: SendPhase,
    pipelined: bool,
    bdat: bool,
    next_rcpt: usize,
    accepted: Vec<ForwardPath>,
    refused: Vec<RefusedRecipient>,
    failure: Option<Error>,
    mail_ok: bool,
    /// 8-bit bytes may be sent (BODY=8BITMIME/BINARYMIME declared).
    eight_bit_ok: bool,
    stuffer: DotStuffer,
    /// The first chunk, read before MAIL to choose BODY=.
    first_chunk: Option<(Vec<u8>, bool)>,
    body_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendPhase {
    /// Waiting for the first chunk of the body (before MAIL is sent).
    PeekBody,
    /// MAIL, RCPT and DATA sent; their replies are awaited.
    Envelope,
    /// Body chunks are wanted.
    Body,
    /// All body sent; waiting for the final reply (or the outstanding BDAT replies).
    AwaitEnd,
    /// The transaction failed; "." or RSET sent, their replies awaited before the error.
    Cleanup,
}

fn has_8bit(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b >= 0x80)
}

impl Session {
    /// A new session, before anything was received. Call [`start_open`](Self::start_open)
    /// once connected.
    pub fn new(config: SessionConfig) -> Session {
        Session {
            parser: ReplyParser::with_limits(config.reply_limits),
            encrypted: config.implicit_tls,
            config,
            output: Vec::new(),
            pending: VecDeque::new(),
            deadline: None,
            op: Op::Idle,
            finished: None,
            caps: None,
            banner: None,
            last_reply: None,
            authenticated: false,
            in_data: None,
            eof: false,
            broken: false,
            closed: false,
            transcript: Transcript::default(),
        }
    }

    /// Sets (or removes) the transcript callback, called with every line sent and received.
    pub fn set_transcript(&mut self, callback: Option<TranscriptFn>) {
        self.transcript.set_callback(callback);
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    // ----- State queries -------------------------------------------------------------

    /// The server's greeting (Net::SMTP's `banner`), once received.
    pub fn banner(&self) -> Option<&Reply> {
        self.banner.as_ref()
    }

    /// The first word of the greeting: the server's name for itself (Net::SMTP's `domain`).
    pub fn greeting_domain(&self) -> Option<String> {
        let banner = self.banner.as_ref()?;
        let first = banner.lines().next()?;
        let text = String::from_utf8_lossy(first);
        text.split_whitespace().next().map(str::to_owned)
    }

    /// The capabilities from the last EHLO, `None` before EHLO, after HELO, and right after
    /// STARTTLS (everything learnt in clear is forgotten).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.caps.as_ref()
    }

    /// True when the server offers `keyword` in its EHLO reply (case-insensitive).
    pub fn supports(&self, keyword: &str) -> bool {
        self.caps.as_ref().is_some_and(|c| c.supports(keyword))
    }

    /// The last reply received (Net::Cmd's `code`/`message`/`ok`/`status` read it).
    pub fn last_reply(&self) -> Option<&Reply> {
        self.last_reply.as_ref()
    }

    /// True when the connection is protected by TLS (implicit, or after STARTTLS).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// True after [`set_authenticated`](Self::set_authenticated), until the next EHLO or STARTTLS.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Records that AUTH succeeded (RFC 4954: a second AUTH must not be sent). EHLO and
    /// STARTTLS clear it.
    pub fn set_authenticated(&mut self) {
        self.authenticated = true;
    }

    /// True once a fatal error happened: the connection must be dropped.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Tells the session the driver lost the connection (an I/O or TLS error): it refuses
    /// further operations.
    pub fn abort(&mut self) {
        self.broken = true;
        self.op = Op::Idle;
        self.pending.clear();
        self.deadline = None;
        self.in_data = None;
        self.finished = None;
    }

    /// True after QUIT was answered.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True when no operation is in progress (a new one may start).
    pub fn is_idle(&self) -> bool {
        matches!(self.op, Op::Idle) && self.finished.is_none()
    }

    /// True between a 354 reply to [`start_data`](Self::start_data) and
    /// [`start_data_end`](Self::start_data_end).
    pub fn in_data(&self) -> bool {
        self.in_data.is_some()
    }

    // ----- Bytes in and out ----------------------------------------------------------

    /// Bytes to write to the connection, in order. Write them all before waiting for input.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Marks the first `n` bytes of [`output`](Self::output) as written.
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.output.len());
        if n == self.output.len() {
            self.output.clear();
        } else {
            self.output.drain(..n);
        }
    }

    /// Passes bytes received from the server. They are parsed by [`poll`](Self::poll),
    /// within the reply limits.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        self.parser.feed(bytes);
    }

    /// Tells the session the server closed the connection.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// The instant by which the awaited reply must be complete, if one is awaited.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            None
        } else {
            self.deadline
        }
    }

    /// Tells the session the time is `now`; when the awaited reply's deadline has passed, the
    /// next [`poll`](Self::poll) returns [`Error::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if let (Some(deadline), Some(head)) = (self.deadline, self.pending.front()) {
            if now >= deadline && self.finished.is_none() {
                let err = Error::Timeout {
                    awaiting: describe(head),
                    after: head.timeout,
                };
                self.finished = Some(Err(err));
            }
        }
    }

    /// Tells the session the TLS handshake requested by [`Event::StartTls`] succeeded. The
    /// session forgets the capabilities and authentication learnt in clear and sends EHLO.
    pub fn tls_established(&mut self, now: Instant) -> Result<(), Error> {
        let Op::Setup(setup) = &mut self.op else {
            return Err(Error::InvalidState("no STARTTLS handshake in progress"));
        };
        if setup.step != SetupStep::Handshake {
            return Err(Error::InvalidState("no STARTTLS handshake in progress"));
        }
        setup.step = SetupStep::Hello { after_tls: true };
        let domain = setup.domain.clone();
        self.encrypted = true;
        self.caps = None;
        self.authenticated = false;
        self.parser.clear();
        self.queue(&Command::Ehlo(&domain), Tag::Ehlo, now)
    }

    // ----- Operations ----------------------------------------------------------------

    fn begin(&mut self) -> Result<(), Error> {
        if self.broken {
            return Err(Error::InvalidState(
                "the connection failed earlier and cannot be used",
            ));
        }
        if self.closed {
            return Err(Error::InvalidState("the session was closed with QUIT"));
        }
        if !self.is_idle() {
            return Err(Error::InvalidState("another operation is in progress"));
        }
        if self.parser.buffered_len() > 0 {
            // Bytes nobody asked for: never let them answer the next command.
            let err = self.unsolicited();
            self.broken = true;
            return Err(err);
        }
        Ok(())
    }

    fn unsolicited(&mut self) -> Error {
        let text = match self.parser.next_reply() {
            Ok(Some(reply)) => reply.to_string(),
            _ => format!("{} bytes", self.parser.buffered_len()),
        };
        Error::Protocol(ProtocolError::UnsolicitedReply(text))
    }

    fn not_in_data(&self) -> Result<(), Error> {
        if self.in_data.is_some() {
            Err(Error::InvalidState("DATA in progress: finish it first"))
        } else {
            Ok(())
        }
    }

    /// Waits for the greeting, then (unless `send_hello` is off) EHLO with HELO fallback, then
    /// STARTTLS and EHLO again per the policy: Net::SMTP's constructor.
    pub fn start_open(&mut self, now: Instant) -> Result<(), Error> {
        self.begin()?;
        if self.banner.is_some() {
            return Err(Error::InvalidState("the greeting was already received"));
        }
        self.op = Op::Setup(Setup {
            step: SetupStep::Greeting,
            hello: self.config.send_hello,
            starttls: self.config.send_hello,
            starttls_explicit: false,
            domain: self.config.client_id.clone(),
        });
        self.pending.push_back(Awaited {
            tag: Tag::Greeting,
            command: String::new(),
            timeout: self.config.timeouts.greeting,
        });
        self.deadline = Some(deadline_after(now, self.config.timeouts.greeting));
        Ok(())
    }

    /// Sends EHLO (with `domain`, or the configured client id), falling back to HELO when EHLO
    /// is refused with 5xx. Forgets earlier capabilities and authentication.
    pub fn start_hello(&mut self, domain: Option<&Domain>, now: Instant) -> Result<(), Error> {
        self.begin()?;
        self.not_in_data()?;
        let domain = domain.unwrap_or(&self.config.client_id).clone();
        self.queue(&Command::Ehlo(&domain), Tag::Ehlo, now)?;
        self.op = Op::Setup(Setup {
            step: SetupStep::Hello { after_tls: false },
            hello: true,
            starttls: false,
            starttls_explicit: false,
            domain,
        });
        Ok(())
    }

    /// Sends STARTTLS; on 220 asks the driver for the handshake ([`Event::StartTls`]), then
    /// sends EHLO again.
    pub fn start_starttls(&mut self, now: Instant) -> Result<(), Error> {
        self.begin()?;
        self.not_in_data()?;
        if self.encrypted {
            return Err(Error::InvalidState("the connection is already encrypted"));
        }
        if let Some(caps) = &self.caps {
            if !caps.starttls() {
                return Err(self.starttls_not_offered());
            }
        }
        self.queue(&Command::StartTls, Tag::StartTls, now)?;
        self.op = Op::Setup(Setup {
            step: SetupStep::StartTls,
            hello: true,
            starttls: true,
            starttls_explicit: true,
            domain: self.config.client_id.clone(),
        });
        Ok(())
    }

    fn starttls_not_offered(&self) -> Error {
        if self.config.starttls == StartTlsPolicy::Required {
            Error::TlsRequired(TlsUnavailable::NotOffered)
        } else {
            Error::ExtensionMissing {
                extension: "STARTTLS",
                needed_for: "STARTTLS",
            }
        }
    }

    /// Sends one command and waits for its reply (Net::Cmd's `command` + `response`).
    ///
    /// With [`Expect::AnyReply`] the reply is returned whatever its code; otherwise a reply of
    /// the wrong kind is [`Error::Refused`] carrying the reply. Secret commands (AUTH
    /// payloads) are masked in the transcript and in errors.
    pub fn start_command(
        &mut self,
        command: &Command<'_>,
        expect: Expect,
        now: Instant,
    ) -> Result<(), Error> {
        self.begin()?;
        self.not_in_data()?;
        let starts_data = matches!(command, Command::Data);
        if matches!(
            command,
            Command::StartTls | Command::Ehlo(_) | Command::Helo(_)
        ) {
            // These change what the session knows; they have their own operations.
            return Err(Error::InvalidState(
                "use start_hello / start_starttls for EHLO, HELO and STARTTLS",
            ));
        }
        if matches!(command, Command::Quit) {
            return self.start_quit(now);
        }
        if let Command::Bdat { .. } = command {
            return Err(Error::InvalidState("use start_bdat for BDAT"));
        }
        let tag = if starts_data { Tag::Data } else { Tag::Single };
        self.queue(command, tag, now)?;
        self.op = Op::Single {
            expect: if starts_data {
                Expect::Intermediate
            } else {
                expect
            },
            starts_data,
        };
        Ok(())
    }

    /// Sends DATA and waits for 354; then [`data_send`](Self::data_send) and
    /// [`start_data_end`](Self::start_data_end).
    pub fn start_data(&mut self, now: Instant) -> Result<(), Error> {
        self.start_command(&Command::Data, Expect::Intermediate, now)
    }

    /// Appends message bytes after a 354 reply, dot-stuffed (Net::SMTP's `datasend`).
    pub fn data_send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let Some(stuffer) = &mut self.in_data else {
            return Err(Error::InvalidState("DATA was not accepted with 354"));
        };
        stuffer.stuff(bytes, &mut self.output);
        self.transcript.line(
            Direction::Sent,
            &format!("[message data: {} bytes]", bytes.len()),
        );
        Ok(())
    }

    /// Ends the data with `CRLF.CRLF` and waits for the reply (Net::SMTP's `dataend`).
    pub fn start_data_end(&mut self, now: Instant) -> Result<(), Error> {
        if !self.is_idle() {
            return Err(Error::InvalidState("another operation is in progress"));
        }
        let Some(mut stuffer) = self.in_data.take() else {
            return Err(Error::InvalidState("DATA was not accepted with 354"));
        };
        stuffer.finish(&mut self.output);
        self.transcript.line(Direction::Sent, ".");
        self.expect_reply(Tag::DataEnd, "end of data".to_owned(), now);
        self.op = Op::Single {
            expect: Expect::Completion,
            starts_data: false,
        };
        Ok(())
    }

    /// Sends `BDAT <len> [LAST]` and the chunk as is (RFC 3030), and waits for the reply.
    pub fn start_bdat(&mut self, chunk: &[u8], last: bool, now: Instant) -> Result<(), Error> {
        self.begin()?;
        self.not_in_data()?;
        self.queue_bdat(chunk, last, now)?;
        self.op = Op::Single {
            expect: Expect::Completion,
            starts_data: false,
        };
        Ok(())
    }

    fn queue_bdat(&mut self, chunk: &[u8], last: bool, now: Instant) -> Result<(), Error> {
        let size = chunk.len() as u64;
        self.queue(&Command::Bdat { size, last }, Tag::Bdat { last }, now)?;
        self.output.extend_from_slice(chunk);
        self.transcript.line(
            Direction::Sent,
            &format!("[message data: {} bytes]", chunk.len()),
        );
        Ok(())
    }

    /// Sends RCPT TO for each recipient (pipelined when the server offers PIPELINING), with
    /// Net::SMTP's SkipBad semantics: refused recipients are reported and the others kept.
    /// Fails with [`Error::RecipientsRefused`] only when every recipient was refused.
    pub fn start_recipients(
        &mut self,
        recipients: &[(ForwardPath, RcptParams)],
        now: Instant,
    ) -> Result<(), Error> {
        self.begin()?;
        self.not_in_data()?;
        if recipients.is_empty() {
            return Err(Error::InvalidState("no recipient given"));
        }
        let pipelined =
            self.config.pipelining && self.caps.as_ref().is_some_and(Capabilities::pipelining);
        let mut op = Recipients {
            list: recipients.to_vec(),
            pipelined,
            next: 0,
            accepted: Vec::new(),
            refused: Vec::new(),
        };
        let count = if pipelined { op.list.len() } else { 1 };
        for (i, (to, params)) in recipients.iter().enumerate().take(count) {
            self.queue(&Command::Rcpt { to, params }, Tag::Rcpt(i), now)?;
        }
        op.next = count;
        self.op = Op::Recipients(op);
        Ok(())
    }

    /// Sends QUIT and waits for the reply (or for the server to close).
    pub fn start_quit(&mut self, now: Instant) -> Result<(), Error> {
        if self.broken || self.closed {
            return Err(Error::InvalidState("the connection is not usable"));
        }
        if !self.is_idle() {
            return Err(Error::InvalidState("another operation is in progress"));
        }
        self.queue(&Command::Quit, Tag::Quit, now)?;
        self.op = Op::Quit;
        Ok(())
    }

    /// Starts sending a whole message: the driver is asked for body chunks
    /// ([`Event::NeedBody`]). MAIL, RCPT and DATA go out in one batch when the server offers
    /// PIPELINING; BDAT is used when asked for and offered (or for BINARYMIME).
    ///
    /// Checked before anything is sent: SMTPUTF8 for non-ASCII addresses, the SIZE limit,
    /// 8BITMIME/BINARYMIME/CHUNKING/DSN when asked for.
    pub fn start_send(&mut self, mut envelope: Envelope, _now: Instant) -> Result<(), Error> {
        self.begin()?;
        self.not_in_data()?;
        if envelope.recipients.is_empty() {
            return Err(Error::InvalidState("the envelope has no recipient"));
        }
        let caps = self.caps.as_ref();
        let has = |f: fn(&Capabilities) -> bool| caps.is_some_and(f);

        if envelope.needs_smtp_utf8() || envelope.mail_params.smtp_utf8 {
            if !has(Capabilities::smtp_utf8) {
                return Err(Error::ExtensionMissing {
                    extension: "SMTPUTF8",
                    needed_for: "a non-ASCII address",
                });
            }
            envelope.mail_params.smtp_utf8 = true;
        }
        if let (Some(size), Some(SizeLimit::Max(limit))) =
            (envelope.size, caps.and_then(|c| c.size()))
        {
            if size > limit {
                return Err(Error::SizeExceeded { size, limit });
            }
        }
        if caps.and_then(|c| c.size()).is_some() {
            envelope.mail_params.size = envelope.size;
        } else {
            envelope.mail_params.size = None;
        }
        let dsn_asked = envelope.mail_params.ret.is_some()
            || envelope.mail_params.envid.is_some()
            || envelope
                .recipients
                .iter()
                .any(|(_, p)| p.notify.is_some() || p.orcpt.is_some());
        if dsn_asked && !has(Capabilities::dsn) {
            return Err(Error::ExtensionMissing {
                extension: "DSN",
                needed_for: "RET, ENVID, NOTIFY or ORCPT",
            });
        }
        let mut bdat = envelope.prefer_chunking && has(Capabilities::chunking);
        match envelope.declared_body() {
            Some(Body::BinaryMime) => {
                if !has(Capabilities::chunking) {
                    return Err(Error::ExtensionMissing {
                        extension: "CHUNKING",
                        needed_for: "BODY=BINARYMIME",
                    });
                }
                if !has(Capabilities::binary_mime) {
                    return Err(Error::ExtensionMissing {
                        extension: "BINARYMIME",
                        needed_for: "BODY=BINARYMIME",
                    });
                }
                bdat = true;
            }
            Some(Body::EightBitMime) if !has(Capabilities::eight_bit_mime) => {
                return Err(Error::ExtensionMissing {
                    extension: "8BITMIME",
                    needed_for: "BODY=8BITMIME",
                });
            }
            _ => {}
        }
        let eight_bit_ok = matches!(
            envelope.declared_body(),
            Some(Body::EightBitMime | Body::BinaryMime)
        );
        let pipelined = self.config.pipelining && has(Capabilities::pipelining);
        self.op = Op::Send(Box::new(SendOp {
            envelope,
            phase: SendPhase::PeekBody,
            pipelined,
            bdat,
            next_rcpt: 0,
            accepted: Vec::new(),
            refused: Vec::new(),
            failure: None,
            mail_ok: false,
            eight_bit_ok,
            stuffer: DotStuffer::new(),
            first_chunk: None,
            body_bytes: 0,
        }));
        Ok(())
    }

    /// Passes the next chunk of the message body after [`Event::NeedBody`]; `last` marks the
    /// end of the body (the chunk may be empty). With DATA the chunk is dot-stuffed, and the
    /// last one goes out with the final `.` in the same output.
    pub fn push_body(&mut self, chunk: &[u8], last: bool, now: Instant) -> Result<(), Error> {
        let Op::Send(op) = &mut self.op else {
            return Err(Error::InvalidState("no message is being sent"));
        };
        match op.phase {
            SendPhase::PeekBody => {
                op.first_chunk = Some((chunk.to_vec(), last));
                let eight_bit = has_8bit(chunk);
                let offered = self.caps.as_ref().is_some_and(Capabilities::eight_bit_mime);
                if op.envelope.declared_body().is_none() {
                    if eight_bit && !offered {
                        let err = Error::ExtensionMissing {
                            extension: "8BITMIME",
                            needed_for: "8-bit data in the body",
                        };
                        self.op = Op::Idle;
                        return Err(err);
                    }
                    if (eight_bit || !last) && offered {
                        // Not known to be 7-bit yet: declare 8BITMIME while it is still
                        // possible (RFC 6152 allows it for 7-bit content too).
                        op.envelope.mail_params.body = Some(Body::EightBitMime);
                        op.eight_bit_ok = true;
                    }
                }
                op.phase = SendPhase::Envelope;
                self.send_envelope(now)
            }
            SendPhase::Body => self.send_body_chunk(chunk, last, now),
            _ => Err(Error::InvalidState("the session did not ask for body data")),
        }
    }

    fn send_envelope(&mut self, now: Instant) -> Result<(), Error> {
        let Op::Send(mut op) = std::mem::replace(&mut self.op, Op::Idle) else {
            return Err(internal());
        };
        let mark = self.output.len();
        let result = self.queue_envelope(&mut op, now);
        if result.is_err() {
            // Nothing of this transaction may go out half-made.
            self.output.truncate(mark);
            self.pending.clear();
            self.deadline = None;
        } else {
            self.op = Op::Send(op);
        }
        result
    }

    fn queue_envelope(&mut self, op: &mut SendOp, now: Instant) -> Result<(), Error> {
        let mail = Command::Mail {
            from: &op.envelope.from,
            params: &op.envelope.mail_params,
        };
        self.queue(&mail, Tag::Mail, now)?;
        if op.pipelined {
            for (i, (to, params)) in op.envelope.recipients.iter().enumerate() {
                self.queue(&Command::Rcpt { to, params }, Tag::Rcpt(i), now)?;
            }
            op.next_rcpt = op.envelope.recipients.len();
            if !op.bdat {
                self.queue(&Command::Data, Tag::Data, now)?;
            }
        }
        Ok(())
    }

    fn send_body_chunk(&mut self, chunk: &[u8], last: bool, now: Instant) -> Result<(), Error> {
        let Op::Send(op) = &mut self.op else {
            return Ok(());
        };
        if !op.eight_bit_ok && has_8bit(chunk) {
            // MAIL went out without BODY=8BITMIME and the server lacks it: the message cannot
            // be finished correctly, and DATA cannot be aborted but by closing.
            self.broken = true;
            self.op = Op::Idle;
            return Err(Error::ExtensionMissing {
                extension: "8BITMIME",
                needed_for: "8-bit data in the body",
            });
        }
        op.body_bytes += chunk.len() as u64;
        if op.bdat {
            let wait = !op.pipelined || last;
            if last {
                op.phase = SendPhase::AwaitEnd;
            } else if !wait {
                op.phase = SendPhase::Body;
            } else {
                op.phase = SendPhase::AwaitEnd;
            }
            self.queue_bdat(chunk, last, now)
        } else {
            op.stuffer.stuff(chunk, &mut self.output);
            self.transcript.line(
                Direction::Sent,
                &format!("[message data: {} bytes]", chunk.len()),
            );
            if last {
                let Op::Send(op) = &mut self.op else {
                    return Ok(());
                };
                op.stuffer.finish(&mut self.output);
                op.phase = SendPhase::AwaitEnd;
                self.transcript.line(Direction::Sent, ".");
                self.expect_reply(Tag::DataEnd, "end of data".to_owned(), now);
            }
            Ok(())
        }
    }

    /// Encodes `command` into the output and records that its reply is awaited.
    fn queue(&mut self, command: &Command<'_>, tag: Tag, now: Instant) -> Result<(), Error> {
        if self.config.starttls == StartTlsPolicy::Required
            && !self.encrypted
            && !matches!(
                command,
                Command::Ehlo(_) | Command::StartTls | Command::Quit
            )
        {
            return Err(Error::TlsRequired(TlsUnavailable::NotYetEstablished {
                verb: command.verb(),
            }));
        }
        let start = self.output.len();
        command.encode(&mut self.output)?;
        let shown = if command.is_secret() {
            command.redacted()
        } else {
            let line = &self.output[start..];
            let line = line.strip_suffix(b"\r\n").unwrap_or(line);
            String::from_utf8_lossy(line).into_owned()
        };
        self.transcript.line(Direction::Sent, &shown);
        self.expect_reply(tag, shown, now);
        Ok(())
    }

    fn expect_reply(&mut self, tag: Tag, command: String, now: Instant) {
        let t = &self.config.timeouts;
        let timeout = match tag {
            Tag::Greeting => t.greeting,
            Tag::Data => t.data_start,
            Tag::DataEnd | Tag::Bdat { last: true } => t.data_end,
            _ => t.command,
        };
        if self.pending.is_empty() {
            self.deadline = Some(deadline_after(now, timeout));
        }
        self.pending.push_back(Awaited {
            tag,
            command,
            timeout,
        });
    }

    // ----- The event loop ------------------------------------------------------------

    /// Advances the operation in progress: parses the replies received, and says what the
    /// driver must do next. Errors are returned once; after a fatal one
    /// ([`Error::is_fatal`]) the session refuses further operations.
    pub fn poll(&mut self, now: Instant) -> Result<Event, Error> {
        loop {
            if let Some(result) = self.finished.take() {
                self.op = Op::Idle;
                return match result {
                    Ok(outcome) => Ok(Event::Done(outcome)),
                    Err(err) => {
                        if err.is_fatal() {
                            self.broken = true;
                        }
                        Err(err)
                    }
                };
            }
            match &self.op {
                Op::Idle => return Err(Error::InvalidState("no operation in progress")),
                Op::Setup(s) if s.step == SetupStep::Handshake => return Ok(Event::StartTls),
                Op::Send(op)
                    if matches!(op.phase, SendPhase::PeekBody)
                        || (op.phase == SendPhase::Body && op.failure.is_none()) =>
                {
                    return Ok(Event::NeedBody)
                }
                _ => {}
            }
            if self.pending.is_empty() {
                self.broken = true;
                self.op = Op::Idle;
                return Err(Error::InvalidState("internal: no reply awaited"));
            }
            match self.parser.next_reply() {
                Ok(Some(reply)) => {
                    self.transcript.reply(reply.raw());
                    self.last_reply = Some(reply.clone());
                    let Some(awaited) = self.pending.pop_front() else {
                        continue;
                    };
                    if let Some(next) = self.pending.front() {
                        self.deadline = Some(deadline_after(now, next.timeout));
                    } else {
                        self.deadline = None;
                    }
                    if let Err(err) = self.on_reply(awaited, reply, now) {
                        self.finished = Some(Err(err));
                    }
                }
                Ok(None) => {
                    if self.eof {
                        let head = self.pending.front();
                        if matches!(head.map(|a| a.tag), Some(Tag::Quit)) {
                            self.pending.clear();
                            self.closed = true;
                            self.finished = Some(Ok(Outcome::Closed(None)));
                            continue;
                        }
                        let awaiting = head.map(describe).unwrap_or_default();
                        self.finished = Some(Err(Error::ConnectionClosed { awaiting }));
                        continue;
                    }
                    return Ok(Event::NeedInput);
                }
                Err(e) => {
                    self.finished = Some(Err(Error::Protocol(ProtocolError::BadReply(e))));
                }
            }
        }
    }

    fn on_reply(&mut self, awaited: Awaited, reply: Reply, now: Instant) -> Result<(), Error> {
        let op = std::mem::replace(&mut self.op, Op::Idle);
        match op {
            Op::Idle => Err(Error::Protocol(ProtocolError::UnsolicitedReply(
                reply.to_string(),
            ))),
            Op::Setup(setup) => self.on_setup_reply(setup, awaited, reply, now),
            Op::Single {
                expect,
                starts_data,
            } => {
                let ok = match expect {
                    Expect::AnyReply => true,
                    Expect::Completion => reply.is_positive_completion(),
                    Expect::Intermediate => reply.is_positive_intermediate(),
                };
                if !ok {
                    return Err(refused(&awaited, reply));
                }
                if starts_data && reply.code().get() == 354 {
                    self.in_data = Some(DotStuffer::new());
                }
                self.finished = Some(Ok(Outcome::Reply(reply)));
                Ok(())
            }
            Op::Quit => {
                self.closed = true;
                self.pending.clear();
                self.finished = Some(Ok(Outcome::Closed(Some(reply))));
                Ok(())
            }
            Op::Recipients(mut op) => {
                let Tag::Rcpt(i) = awaited.tag else {
                    return Err(internal());
                };
                let to = op.list[i].0.clone();
                let fatal = reply.code().get() == 421;
                if reply.is_positive_completion() {
                    op.accepted.push(to);
                } else {
                    op.refused.push(RefusedRecipient {
                        recipient: to,
                        reply: reply.clone(),
                    });
                }
                if fatal {
                    self.pending.clear();
                    return Err(refused(&awaited, reply));
                }
                if !op.pipelined && op.next < op.list.len() {
                    let n = op.next;
                    op.next += 1;
                    let (to, params) = &op.list[n];
                    let cmd = Command::Rcpt { to, params };
                    let res = self.queue(&cmd, Tag::Rcpt(n), now);
                    self.op = Op::Recipients(op);
                    return res;
                }
                if self.pending.is_empty() {
                    if op.accepted.is_empty() {
                        return Err(Error::RecipientsRefused {
                            refused: op.refused,
                        });
                    }
                    self.finished = Some(Ok(Outcome::Recipients(RecipientsReport {
                        accepted: op.accepted,
                        refused: op.refused,
                    })));
                } else {
                    self.op = Op::Recipients(op);
                }
                Ok(())
            }
            Op::Send(op) => self.on_send_reply(op, awaited, reply, now),
        }
    }

    fn on_setup_reply(
        &mut self,
        mut setup: Setup,
        awaited: Awaited,
        reply: Reply,
        now: Instant,
    ) -> Result<(), Error> {
        match awaited.tag {
            Tag::Greeting => {
                if reply.code().get() != 220 {
                    // 554: no service here; anything else is not a greeting.
                    self.broken = true;
                    return Err(refused(&awaited, reply));
                }
                self.banner = Some(reply.clone());
                if !setup.hello {
                    self.finished = Some(Ok(Outcome::Reply(reply)));
                    return Ok(());
                }
                setup.step = SetupStep::Hello { after_tls: false };
                let domain = setup.domain.clone();
                self.op = Op::Setup(setup);
                self.queue(&Command::Ehlo(&domain), Tag::Ehlo, now)
            }
            Tag::Ehlo => {
                let SetupStep::Hello { after_tls } = setup.step else {
                    return Err(internal());
                };
                if reply.is_positive_completion() {
                    self.caps = Some(Capabilities::from_ehlo(&reply));
                    self.authenticated = false;
                    let want_tls = setup.starttls
                        && !after_tls
                        && !self.encrypted
                        && self.config.starttls != StartTlsPolicy::Never;
                    if want_tls {
                        if self.caps.as_ref().is_some_and(Capabilities::starttls) {
                            setup.step = SetupStep::StartTls;
                            self.op = Op::Setup(setup);
                            return self.queue(&Command::StartTls, Tag::StartTls, now);
                        }
                        if self.config.starttls == StartTlsPolicy::Required {
                            self.broken = true;
                            return Err(Error::TlsRequired(TlsUnavailable::NotOffered));
                        }
                    }
                    self.finished = Some(Ok(Outcome::Reply(reply)));
                    return Ok(());
                }
                if reply.is_permanent_negative() {
                    if self.config.starttls == StartTlsPolicy::Required && !self.encrypted {
                        // HELO cannot lead to STARTTLS.
                        self.broken = true;
                        return Err(Error::TlsRequired(TlsUnavailable::NotOffered));
                    }
                    let domain = setup.domain.clone();
                    self.op = Op::Setup(setup);
                    return self.queue(&Command::Helo(&domain), Tag::Helo, now);
                }
                Err(refused(&awaited, reply))
            }
            Tag::Helo => {
                if reply.is_positive_completion() {
                    self.caps = None;
                    self.authenticated = false;
                    self.finished = Some(Ok(Outcome::Reply(reply)));
                    Ok(())
                } else {
                    Err(refused(&awaited, reply))
                }
            }
            Tag::StartTls => {
                if reply.code().get() == 220 {
                    let extra = self.parser.buffered_len();
                    if extra > 0 {
                        // RFC 3207 6 / CVE-2011-0411: these bytes came in clear and must
                        // never be read as a reply after the upgrade.
                        self.parser.clear();
                        self.broken = true;
                        return Err(Error::Protocol(ProtocolError::BytesBeforeTlsHandshake(
                            extra,
                        )));
                    }
                    setup.step = SetupStep::Handshake;
                    self.op = Op::Setup(setup);
                    return Ok(());
                }
                if self.config.starttls == StartTlsPolicy::Required {
                    self.broken = true;
                    return Err(Error::TlsRequired(TlsUnavailable::Refused(reply)));
                }
                if setup.starttls_explicit {
                    return Err(refused(&awaited, reply));
                }
                // Opportunistic: carry on in clear with what EHLO said.
                self.finished = Some(Ok(Outcome::Reply(reply)));
                Ok(())
            }
            _ => Err(internal()),
        }
    }

    fn on_send_reply(
        &mut self,
        mut op: Box<SendOp>,
        awaited: Awaited,
        reply: Reply,
        now: Instant,
    ) -> Result<(), Error> {
        // 421: the server is closing the channel; no RSET, no further command.
        let closing = (reply.code().get() == 421).then(|| refused(&awaited, reply.clone()));
        match awaited.tag {
            Tag::Mail => {
                if reply.is_positive_completion() {
                    op.mail_ok = true;
                    if !op.pipelined {
                        op.next_rcpt = 1;
                        let (to, params) = &op.envelope.recipients[0];
                        let cmd = Command::Rcpt { to, params };
                        let res = self.queue(&cmd, Tag::Rcpt(0), now);
                        self.op = Op::Send(op);
                        return res;
                    }
                } else {
                    op.failure = Some(refused(&awaited, reply));
                }
            }
            Tag::Rcpt(i) => {
                let to = op.envelope.recipients[i].0.clone();
                if reply.is_positive_completion() {
                    op.accepted.push(to);
                } else {
                    op.refused.push(RefusedRecipient {
                        recipient: to,
                        reply,
                    });
                }
                let all_answered = i + 1 == op.envelope.recipients.len();
                if all_answered && op.failure.is_none() && op.accepted.is_empty() {
                    op.failure = Some(Error::RecipientsRefused {
                        refused: op.refused.clone(),
                    });
                }
                if !op.pipelined && closing.is_none() {
                    if op.next_rcpt < op.envelope.recipients.len() {
                        let n = op.next_rcpt;
                        op.next_rcpt += 1;
                        let (to, params) = &op.envelope.recipients[n];
                        let cmd = Command::Rcpt { to, params };
                        let res = self.queue(&cmd, Tag::Rcpt(n), now);
                        self.op = Op::Send(op);
                        return res;
                    }
                    if op.failure.is_none() && !op.bdat {
                        let res = self.queue(&Command::Data, Tag::Data, now);
                        self.op = Op::Send(op);
                        return res;
                    }
                }
            }
            Tag::Data => {
                if reply.code().get() == 354 {
                    if op.failure.is_none() {
                        op.phase = SendPhase::Body;
                        return self.start_body(op, now);
                    }
                    // RFC 2920 3.1: the server accepted DATA although the transaction
                    // failed; end it with an empty message so the session stays in step.
                    op.phase = SendPhase::Cleanup;
                    self.output.extend_from_slice(b".\r\n");
                    self.transcript.line(Direction::Sent, ".");
                    self.expect_reply(Tag::DataEnd, "end of data".to_owned(), now);
                } else if op.failure.is_none() {
                    op.failure = Some(refused(&awaited, reply));
                }
            }
            Tag::DataEnd => {
                if op.phase == SendPhase::Cleanup {
                    // The reply to an empty message sent only to get back in step.
                } else if reply.is_positive_completion() {
                    self.finished = Some(Ok(Outcome::Sent(SendReport {
                        accepted: std::mem::take(&mut op.accepted),
                        refused: std::mem::take(&mut op.refused),
                        reply,
                    })));
                    return Ok(());
                } else {
                    // The transaction is over either way (RFC 5321 4.1.1.4).
                    return Err(refused(&awaited, reply));
                }
            }
            Tag::Bdat { last } => {
                if !reply.is_positive_completion() {
                    if op.failure.is_none() {
                        op.failure = Some(refused(&awaited, reply));
                    }
                } else if last && op.failure.is_none() {
                    self.finished = Some(Ok(Outcome::Sent(SendReport {
                        accepted: std::mem::take(&mut op.accepted),
                        refused: std::mem::take(&mut op.refused),
                        reply,
                    })));
                    return Ok(());
                } else if op.phase == SendPhase::AwaitEnd
                    && op.failure.is_none()
                    && self.pending.is_empty()
                {
                    // Unpipelined BDAT: the chunk was accepted, ask for the next one.
                    op.phase = SendPhase::Body;
                }
            }
            Tag::Rset => {
                return Err(op.failure.take().unwrap_or_else(internal));
            }
            _ => return Err(internal()),
        }
        if let Some(closing) = closing {
            self.pending.clear();
            self.broken = true;
            return Err(op.failure.take().unwrap_or(closing));
        }
        if op.failure.is_some() && self.pending.is_empty() {
            if op.mail_ok {
                // Leave the session clean for the next transaction.
                op.phase = SendPhase::Cleanup;
                self.op = Op::Send(op);
                return self.queue(&Command::Rset, Tag::Rset, now);
            }
            return Err(op.failure.take().unwrap_or_else(internal));
        }
        if op.phase == SendPhase::Envelope && self.pending.is_empty() && op.bdat {
            op.phase = SendPhase::Body;
            return self.start_body(op, now);
        }
        self.op = Op::Send(op);
        Ok(())
    }

    /// Sends the chunk read before MAIL, now that the server is ready for the body.
    fn start_body(&mut self, mut op: Box<SendOp>, now: Instant) -> Result<(), Error> {
        let first = op.first_chunk.take();
        self.op = Op::Send(op);
        match first {
            Some((chunk, last)) => self.send_body_chunk(&chunk, last, now),
            None => Ok(()),
        }
    }
}

fn internal() -> Error {
    Error::InvalidState("internal: reply does not match the operation")
}

fn describe(awaited: &Awaited) -> String {
    match awaited.tag {
        Tag::Greeting => "the greeting".to_owned(),
        Tag::DataEnd => "the reply to the end of data".to_owned(),
        _ => format!("the reply to {}", awaited.command),
    }
}

fn refused(awaited: &Awaited, reply: Reply) -> Error {
    let command = match awaited.tag {
        Tag::Greeting => "connection (greeting)".to_owned(),
        Tag::DataEnd => "end of data".to_owned(),
        _ => awaited.command.clone(),
    };
    Error::Refused { command, reply }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Session>();
}
