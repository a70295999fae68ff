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
//!
//! Inside, the session is one [`Phase`](phase) at a time (setup, one command, a recipient
//! batch, a message, QUIT), each holding only what it needs and the replies it is owed; what
//! holds whatever the phase ([`Core`](core)) is the connection's state, what the server said
//! of itself, and the output.

mod batch;
mod command;
mod config;
mod core;
mod data;
mod owed;
mod per_recipient;
mod phase;
mod prepare;
mod rcpt;
mod send;
mod setup;
mod xclient;

use std::time::Instant;

use smtp_proto::{Capabilities, Command, Domain, DotStuffer, ForwardPath, RcptParams, Reply};

use self::batch::Batch;
use self::command::{Effect, Quit, SingleCommand};
use self::core::{AuthState, Core, Link, MailTransaction, Wait};
use self::owed::Owed;
use self::phase::{Done, Phase, Then};
use self::rcpt::Recipients;
use self::send::Sending;
use self::setup::Setup;
use crate::accounting::{BatchSummary, MessageResult};
use crate::envelope::{Envelope, RecipientsReport, SendReport};
use crate::error::{Error, Misuse, ProtocolError, TlsUnavailable};
use crate::timeouts::Timeouts;
use crate::transcript::TranscriptFn;

pub use self::config::{Protocol, SessionConfig};

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
    /// A batch wants its next message: give its envelope (or `None`: no more) to
    /// [`Session::push_message`]; its body is then asked for with [`Event::NeedBody`].
    NeedMessage,
    /// A message of a batch ended: hand it to the caller and poll again.
    MessageDone(MessageResult),
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
    /// A batch ended: how many messages ended in each state.
    Batch(BatchSummary),
}

impl Outcome {
    /// The reply an operation ended with, when it has one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Outcome::Reply(r) => Some(r),
            Outcome::Sent(s) => Some(&s.reply),
            Outcome::Closed(r) => r.as_ref(),
            Outcome::Recipients(_) | Outcome::Batch(_) => None,
        }
    }
}

/// A sans-IO SMTP client session.
///
/// ```
/// use std::time::Instant;
/// use smtp_client::{Event, Outcome, Session, SessionConfig, TlsMode};
/// use smtp_proto::Domain;
///
/// let mut config = SessionConfig::new(Domain::new("client.example.test")?);
/// config.tls = TlsMode::None;
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
    core: Core,
    phase: Phase,
}

impl Session {
    /// A new session, before anything was received. Call [`start_open`](Self::start_open)
    /// once connected.
    pub fn new(config: SessionConfig) -> Session {
        Session {
            core: Core::new(config),
            phase: Phase::Ready,
        }
    }

    /// Sets (or removes) the transcript callback, called with every line sent and received.
    pub fn set_transcript(&mut self, callback: Option<TranscriptFn>) {
        self.core.transcript.set_callback(callback);
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.core.config
    }

    /// Replaces the timeouts: replies awaited from now on get deadlines from `timeouts`;
    /// a reply already awaited keeps the deadline it was given.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.core.config.timeouts = timeouts;
    }

    // ----- State queries -------------------------------------------------------------

    /// The server's greeting (Net::SMTP's `banner`), once received.
    pub fn banner(&self) -> Option<&Reply> {
        self.core.banner.as_ref()
    }

    /// The first word of the greeting: the server's name for itself (Net::SMTP's `domain`).
    pub fn greeting_domain(&self) -> Option<String> {
        let banner = self.core.banner.as_ref()?;
        let first = banner.lines().next()?;
        let text = String::from_utf8_lossy(first);
        text.split_whitespace().next().map(str::to_owned)
    }

    /// The capabilities from the last EHLO, `None` before EHLO, after HELO, and right after
    /// STARTTLS (everything learnt in clear is forgotten).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.caps.as_ref()
    }

    /// True when the server offers `keyword` in its EHLO reply (case-insensitive).
    pub fn supports(&self, keyword: &str) -> bool {
        self.core.caps.as_ref().is_some_and(|c| c.supports(keyword))
    }

    /// The last reply received (Net::Cmd's `code`/`message`/`ok`/`status` read it).
    pub fn last_reply(&self) -> Option<&Reply> {
        self.core.last_reply.as_ref()
    }

    /// True when the connection is protected by TLS (implicit, or after STARTTLS).
    pub fn is_encrypted(&self) -> bool {
        self.core.encrypted
    }

    /// True once an AUTH exchange succeeded and was
    /// [confirmed](Self::confirm_authenticated), until the next EHLO or STARTTLS.
    pub fn is_authenticated(&self) -> bool {
        self.core.auth == AuthState::Authenticated
    }

    /// Records that the AUTH exchange which just got a 235 reply succeeded on the client's
    /// side too (the server proved itself, where the mechanism can tell): RFC 4954 allows no
    /// second AUTH after it. EHLO and STARTTLS clear it.
    ///
    /// Refused with [`Misuse::NoAuthSuccess`] unless the last operation was an AUTH line
    /// answered with 235: a session cannot be marked authenticated by anything else.
    pub fn confirm_authenticated(&mut self) -> Result<(), Error> {
        if self.core.auth == AuthState::ServerAccepted {
            self.core.auth = AuthState::Authenticated;
            return Ok(());
        }
        Err(Misuse::NoAuthSuccess.into())
    }

    /// True once a fatal error happened, or a streamed message was abandoned: the
    /// connection must be dropped.
    pub fn is_broken(&self) -> bool {
        matches!(self.core.link, Link::Broken | Link::Abandoned)
    }

    /// Tells the session the driver lost the connection (an I/O or TLS error): it refuses
    /// further operations.
    pub fn abort(&mut self) {
        let lost = Error::ConnectionClosed {
            awaiting: "the replies (the connection was lost)".to_owned(),
        };
        self.abort_with(&lost);
    }

    /// [`abort`](Self::abort) for the reason `err`. A batch under way is kept so that its
    /// messages can still be handed out, each not sent or unknown ([`poll`](Self::poll)
    /// yields them).
    pub fn abort_with(&mut self, err: &Error) {
        if self.core.link != Link::Abandoned {
            self.core.link = Link::Broken;
        }
        // Nothing more goes out on a connection that failed.
        self.core.output.clear();
        match &mut self.phase {
            Phase::Batch(batch) => batch.abort(err),
            _ => self.phase = Phase::Ready,
        }
    }

    /// True while a batch is under way (its messages may still be handed out).
    pub(crate) fn in_batch(&self) -> bool {
        matches!(self.phase, Phase::Batch(_))
    }

    /// True after QUIT was answered.
    pub fn is_closed(&self) -> bool {
        self.core.link == Link::Closed
    }

    /// True when no operation is in progress (a new one may start).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Ready | Phase::InData(_))
    }

    // ----- Bytes in and out ----------------------------------------------------------

    /// Bytes to write to the connection, in order. Write them all before waiting for input.
    pub fn output(&self) -> &[u8] {
        &self.core.output
    }

    /// Marks the first `n` bytes of [`output`](Self::output) as written.
    pub fn consume_output(&mut self, n: usize) {
        let output = &mut self.core.output;
        let n = n.min(output.len());
        if n == output.len() {
            output.clear();
        } else {
            output.drain(..n);
        }
    }

    /// Passes bytes received from the server. They are parsed by [`poll`](Self::poll),
    /// within the reply limits.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        self.core.parser.feed(bytes);
    }

    /// Bytes passed to [`handle_input`](Self::handle_input) and not yet read as a reply. While
    /// a reply is awaited this never exceeds one reply at the configured
    /// [`reply_limits`](SessionConfig::reply_limits): a longer one is an error.
    pub fn buffered_input_len(&self) -> usize {
        self.core.parser.buffered_len()
    }

    /// Tells the session the server closed the connection.
    pub fn handle_eof(&mut self) {
        if self.core.link == Link::Open {
            self.core.link = Link::EndOfStream;
        }
    }

    /// The instant by which the awaited reply must be complete, if one is awaited.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.phase.deadline()
    }

    /// Tells the session the time is `now`; when the awaited reply's deadline has passed, the
    /// next [`poll`](Self::poll) returns [`Error::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(owed) = self.phase.owed() else {
            return;
        };
        if owed.deadline().is_some_and(|d| now >= d) {
            if let Some(err) = owed.timed_out() {
                self.fail(err);
            }
        }
    }

    /// Tells the session the TLS handshake requested by [`Event::StartTls`] succeeded. The
    /// session forgets the capabilities and authentication learnt in clear and sends EHLO.
    pub fn tls_established(&mut self, now: Instant) -> Result<(), Error> {
        match std::mem::replace(&mut self.phase, Phase::Ready) {
            Phase::Setup(setup) if setup.is_handshaking() => {
                self.phase = setup.tls_established(&mut self.core, now);
                Ok(())
            }
            other => {
                self.phase = other;
                Err(Misuse::NotHandshaking.into())
            }
        }
    }

    // ----- Operations ----------------------------------------------------------------

    /// The connection is usable and no operation is in progress. A message still streaming
    /// is abandoned: only its writer's calls may come while it streams, so the writer is
    /// gone without ending it.
    fn ready(&mut self) -> Result<(), Misuse> {
        self.abandon_stream();
        match self.core.link {
            Link::Broken => return Err(Misuse::ConnectionBroken),
            Link::Abandoned => return Err(Misuse::DataAbandoned),
            Link::Closed => return Err(Misuse::SessionClosed),
            Link::Open | Link::EndOfStream => {}
        }
        match self.phase {
            Phase::Ready => Ok(()),
            Phase::InData(_) => Err(Misuse::DataInProgress),
            _ => Err(Misuse::Busy),
        }
    }

    /// Checks that a new operation may start: the connection is usable, nothing else is in
    /// progress, and no bytes arrived that nobody asked for.
    fn begin(&mut self) -> Result<(), Error> {
        self.ready()?;
        if let Some(err) = self.core.unsolicited() {
            // Bytes nobody asked for: never let them answer the next command.
            self.core.link = Link::Broken;
            return Err(err);
        }
        if self.core.auth == AuthState::ServerAccepted {
            // A 235 left unconfirmed: the client did not accept the server's proof.
            self.core.auth = AuthState::None;
        }
        Ok(())
    }

    /// Waits for the greeting, then (unless `send_hello` is off) EHLO with HELO fallback, then
    /// STARTTLS and EHLO again per the policy: Net::SMTP's constructor.
    pub fn start_open(&mut self, now: Instant) -> Result<(), Error> {
        self.begin()?;
        if self.core.banner.is_some() {
            return Err(Misuse::AlreadyGreeted.into());
        }
        self.phase = Phase::Setup(Setup::open(&self.core, now));
        Ok(())
    }

    /// Sends EHLO (with `domain`, or the configured client id), falling back to HELO when EHLO
    /// is refused with 5xx. Forgets earlier capabilities and authentication.
    pub fn start_hello(&mut self, domain: Option<&Domain>, now: Instant) -> Result<(), Error> {
        self.begin()?;
        // EHLO ends any mail transaction (RFC 5321 4.1.4).
        self.core.transaction = MailTransaction::None;
        let domain = domain.unwrap_or(&self.core.config.client_id).clone();
        self.phase = Setup::hello(&mut self.core, domain, now);
        Ok(())
    }

    /// Sends Postfix's XCLIENT with `attrs`; on its 220 (the server starting over as if the
    /// client named there had connected) records the new greeting as the banner and sends
    /// EHLO (LHLO under LMTP) again, forgetting the capabilities and authentication learnt
    /// before. The outcome is the new EHLO reply.
    ///
    /// Refused before sending when the server did not offer XCLIENT
    /// ([`Error::ExtensionMissing`]) or one of the attributes
    /// ([`Error::AttributeNotOffered`]). Any reply but 220 is [`Error::Refused`].
    pub fn start_xclient(
        &mut self,
        attrs: &smtp_proto::Xclient,
        now: Instant,
    ) -> Result<(), Error> {
        self.begin()?;
        xclient::check_offered(&self.core, "XCLIENT", attrs)?;
        self.core.transaction = MailTransaction::None;
        self.phase = Setup::xclient(&mut self.core, attrs, now);
        Ok(())
    }

    /// Sends Postfix's XFORWARD with `attrs`; a reply other than 250 is [`Error::Refused`].
    /// Refused before sending as [`start_xclient`](Self::start_xclient) is.
    pub fn start_xforward(
        &mut self,
        attrs: &smtp_proto::Xforward,
        now: Instant,
    ) -> Result<(), Error> {
        self.ready()?;
        xclient::check_offered(&self.core, "XFORWARD", attrs)?;
        self.start_command(&Command::Xforward(attrs), Expect::Completion, now)
    }

    /// Sends STARTTLS; on 220 asks the driver for the handshake ([`Event::StartTls`]), then
    /// sends EHLO again.
    pub fn start_starttls(&mut self, now: Instant) -> Result<(), Error> {
        self.begin()?;
        if self.core.encrypted {
            return Err(Misuse::AlreadyEncrypted.into());
        }
        if self.core.caps.as_ref().is_some_and(|c| !c.starttls()) {
            return Err(if self.core.config.starttls_required() {
                Error::TlsRequired(TlsUnavailable::NotOffered)
            } else {
                Error::ExtensionMissing {
                    extension: "STARTTLS",
                    needed_for: "STARTTLS",
                }
            });
        }
        self.core.transaction = MailTransaction::None;
        self.phase = Setup::starttls(&mut self.core, now);
        Ok(())
    }

    /// Sends one command and waits for its reply (Net::Cmd's `command` + `response`).
    ///
    /// With [`Expect::AnyReply`] the reply is returned whatever its code; otherwise a reply of
    /// the wrong kind is [`Error::Refused`] carrying the reply. Secret commands (AUTH
    /// payloads) are masked in the transcript and in errors. EHLO, HELO, STARTTLS and BDAT
    /// have operations of their own ([`Misuse::UseDedicatedMethod`]); QUIT is
    /// [`start_quit`](Self::start_quit).
    pub fn start_command(
        &mut self,
        command: &Command<'_>,
        expect: Expect,
        now: Instant,
    ) -> Result<(), Error> {
        let dedicated = |verb, method| Err(Misuse::UseDedicatedMethod { verb, method }.into());
        let (effect, expect) = match command {
            Command::Ehlo(_) | Command::Lhlo(_) | Command::Helo(_) => {
                return dedicated(command.verb(), "hello")
            }
            Command::StartTls => return dedicated("STARTTLS", "starttls"),
            Command::Xclient(_) => return dedicated("XCLIENT", "xclient"),
            Command::Bdat { .. } => return dedicated("BDAT", "bdat"),
            Command::Quit => return self.start_quit(now),
            Command::Data => (Effect::StartsData, Expect::Intermediate),
            Command::Mail { .. }
            | Command::Send { .. }
            | Command::Soml { .. }
            | Command::Saml { .. } => (Effect::OpensTransaction, expect),
            Command::Rcpt { .. } => (Effect::AddsRecipient, expect),
            Command::Auth { .. } | Command::AuthResponse(_) => (Effect::Auth, expect),
            _ => (Effect::None, expect),
        };
        self.send_single(command, expect, effect, now)
    }

    /// Sends one command whose reply, of the kind `expect` names, has `effect`.
    fn send_single(
        &mut self,
        command: &Command<'_>,
        expect: Expect,
        effect: Effect,
        now: Instant,
    ) -> Result<(), Error> {
        self.begin()?;
        if matches!(command, Command::Rset) {
            self.core.transaction = MailTransaction::None;
        }
        let mut owed = Owed::default();
        let wait = match effect {
            Effect::StartsData | Effect::StartsStream => Wait::DataStart,
            _ => Wait::Command,
        };
        self.core.request(&mut owed, command, (), wait, now)?;
        self.phase = Phase::Command(SingleCommand {
            owed,
            expect,
            effect,
        });
        Ok(())
    }

    /// Sends `BDAT <len> [LAST]` and the chunk as is (RFC 3030), and waits for the reply.
    pub fn start_bdat(&mut self, chunk: &[u8], last: bool, now: Instant) -> Result<(), Error> {
        self.begin()?;
        // After BDAT only BDAT may carry the message (RFC 3030 2): no DATA writer.
        self.core.transaction = MailTransaction::None;
        let mut owed = Owed::default();
        self.core.write_bdat(&mut owed, chunk, last, (), now)?;
        self.phase = Phase::Command(SingleCommand {
            owed,
            expect: Expect::Completion,
            effect: Effect::None,
        });
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
        if recipients.is_empty() {
            return Err(Misuse::NoRecipients.into());
        }
        let op = Recipients::start(&mut self.core, recipients.to_vec(), now)?;
        self.phase = Phase::Recipients(op);
        Ok(())
    }

    /// Sends QUIT and waits for the reply (or for the server to close).
    pub fn start_quit(&mut self, now: Instant) -> Result<(), Error> {
        // No check for stray bytes: QUIT ends the session whatever they were.
        self.ready()?;
        let mut owed = Owed::default();
        self.core
            .request(&mut owed, &Command::Quit, (), Wait::Command, now)?;
        self.phase = Phase::Quit(Quit { owed });
        Ok(())
    }

    /// Starts sending a whole message: the driver is asked for body chunks
    /// ([`Event::NeedBody`]). MAIL, RCPT and DATA go out in one batch when the server offers
    /// PIPELINING; BDAT is used when asked for and offered (or for BINARYMIME).
    ///
    /// Checked before anything is sent: SMTPUTF8 for non-ASCII addresses, the SIZE limit,
    /// 8BITMIME/BINARYMIME/CHUNKING/DSN when asked for.
    pub fn start_send(&mut self, envelope: Envelope, _now: Instant) -> Result<(), Error> {
        self.begin()?;
        if envelope.recipients.is_empty() {
            return Err(Misuse::NoRecipients.into());
        }
        let prepared = prepare::prepare(&self.core, envelope)?;
        // `send` runs a whole transaction of its own, and leaves none open.
        self.core.transaction = MailTransaction::None;
        self.phase = Phase::Send(Box::new(Sending::PeekBody(prepared)));
        Ok(())
    }

    /// Starts sending many messages over this connection: the driver is asked for each
    /// message's envelope ([`Event::NeedMessage`]) and body ([`Event::NeedBody`]), and
    /// handed each message's end ([`Event::MessageDone`]) until [`Event::Done`] with
    /// [`Outcome::Batch`]. With PIPELINING, a message's MAIL, RCPT and DATA follow the
    /// previous one's end of data in the same write; at most `window` messages are under
    /// way at once (at least one).
    pub fn start_batch(&mut self, window: usize, _now: Instant) -> Result<(), Error> {
        self.begin()?;
        self.core.transaction = MailTransaction::None;
        self.phase = Phase::Batch(Box::new(Batch::new(window)));
        Ok(())
    }

    /// The next message of a batch after [`Event::NeedMessage`], or `None` when there are
    /// no more. A message the server cannot take (an extension it lacks, a size over its
    /// limit) ends at once as refused, with nothing sent.
    pub fn push_message(&mut self, envelope: Option<Envelope>) -> Result<(), Error> {
        let Phase::Batch(batch) = &mut self.phase else {
            return Err(Misuse::NoOperation.into());
        };
        batch.push_message(&self.core, envelope);
        Ok(())
    }

    /// Passes the next chunk of the message body after [`Event::NeedBody`]; `last` marks the
    /// end of the body (the chunk may be empty). With DATA the chunk is dot-stuffed, and the
    /// last one goes out with the final `.` in the same output.
    pub fn push_body(&mut self, chunk: &[u8], last: bool, now: Instant) -> Result<(), Error> {
        if let Phase::Batch(batch) = &mut self.phase {
            return batch.push_body(chunk, last, &mut self.core, now);
        }
        if !matches!(&self.phase, Phase::Send(send) if send.wants_body()) {
            return Err(Misuse::NoBodyWanted.into());
        }
        let Phase::Send(send) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return Err(Misuse::NoBodyWanted.into());
        };
        let (phase, result) = (*send).push_body(chunk, last, &mut self.core, now);
        self.phase = phase;
        result
    }

    // ----- The event loop ------------------------------------------------------------

    /// Advances the operation in progress: parses the replies received, and says what the
    /// driver must do next. Errors are returned once; after a fatal one
    /// ([`Error::is_fatal`]) the session refuses further operations.
    pub fn poll(&mut self, now: Instant) -> Result<Event, Error> {
        loop {
            // A batch is polled in place: it lasts the whole connection, and moving the phase
            // out and back for every event and reply would cost more than the batch's work.
            if let Phase::Batch(batch) = &mut self.phase {
                match batch.next_event(&mut self.core) {
                    Some(Event::Done(outcome)) => {
                        self.phase = Phase::Ready;
                        return Ok(Event::Done(outcome));
                    }
                    Some(event) => return Ok(event),
                    None => {}
                }
            } else {
                match std::mem::replace(&mut self.phase, Phase::Ready) {
                    Phase::Done(done) => return self.settle(done),
                    Phase::Ready => return Err(Misuse::NoOperation.into()),
                    phase @ (Phase::InData(_) | Phase::Streaming(_)) => {
                        self.phase = phase;
                        return Err(Misuse::NoOperation.into());
                    }
                    Phase::Setup(setup) if setup.is_handshaking() => {
                        self.phase = Phase::Setup(setup);
                        return Ok(Event::StartTls);
                    }
                    Phase::Send(send) if send.wants_body() => {
                        // Bytes while replies are owed are those replies, read later;
                        // bytes when none is owed (with the 354, or the last RCPT reply
                        // before BDAT) would be read as the answer to this message.
                        let owes_nothing = send.owed().is_none_or(|o| o.owes_nothing());
                        if let Some(err) = owes_nothing.then(|| self.core.unsolicited()).flatten() {
                            self.phase = Phase::broken(err);
                            continue;
                        }
                        self.phase = Phase::Send(send);
                        return Ok(Event::NeedBody);
                    }
                    waiting => self.phase = waiting,
                }
            }
            match self.core.parser.next_reply() {
                Ok(Some(reply)) => {
                    self.core.transcript.reply(reply.raw());
                    self.core.last_reply = Some(reply.clone());
                    if let Phase::Batch(batch) = &mut self.phase {
                        batch.on_reply(reply, &mut self.core, now);
                    } else {
                        let phase = std::mem::replace(&mut self.phase, Phase::Ready);
                        self.phase = phase.on_reply(reply, &mut self.core, now);
                    }
                }
                Ok(None) if self.core.link != Link::EndOfStream => return Ok(Event::NeedInput),
                Ok(None) => match self.phase {
                    Phase::Quit(_) => {
                        self.phase = Phase::finish(Ok(Outcome::Closed(None)), Then::Closed);
                    }
                    _ => self.fail(self.phase.closed()),
                },
                Err(e) => self.fail(Error::Protocol(ProtocolError::BadReply(e))),
            }
        }
    }

    /// A fatal failure of the operation under way (timeout, closed connection, bad reply):
    /// a batch keeps its messages to hand out, anything else ends with the error.
    fn fail(&mut self, err: Error) {
        match &mut self.phase {
            Phase::Batch(batch) => {
                batch.abort(&err);
                self.core.link = Link::Broken;
            }
            _ => self.phase = Phase::failed(err),
        }
    }

    /// Hands out the result of the ended operation and settles the session.
    fn settle(&mut self, done: Done) -> Result<Event, Error> {
        let Done { result, then } = done;
        if let Ok(Outcome::Recipients(_)) = &result {
            // At least one recipient was accepted.
            if self.core.transaction != MailTransaction::None {
                self.core.transaction = MailTransaction::Recipients;
            }
        }
        match then {
            Then::InData => self.phase = Phase::InData(DotStuffer::new()),
            Then::Streaming => self.phase = Phase::Streaming(data::DataStream::new()),
            Then::Closed => self.core.link = Link::Closed,
            Then::Ready | Then::Broken => {}
        }
        if then == Then::Broken || result.as_ref().is_err_and(Error::is_fatal) {
            self.core.link = Link::Broken;
        }
        result.map(Event::Done)
    }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Session>();
}
