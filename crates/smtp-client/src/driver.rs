//! What the blocking and the async driver share: every decision that is not moving bytes.
//!
//! A driver connects a socket, writes bytes, reads with a deadline, reads the caller's body,
//! and runs the TLS handshake. Which address comes next and which error a failed connect ends
//! with ([`Dialer`]); and, for each operation, which of those I/O steps comes next, how long a
//! read may wait, what each result means to the session, how the body is cut into chunks,
//! when the connection is closed and when the client refuses further work ([`DriverCore`])
//! are decided here, once, so the two drivers cannot drift apart.
//!
//! Each driver's loop is the same few lines:
//!
//! ```text
//! core.begin(start);
//! loop {
//!     match core.next_step() {
//!         Step::Write(bytes)           => core.written(write_all(bytes)),
//!         Step::Read { buf, deadline } => core.read(read(buf, deadline)),
//!         Step::ReadBody(buf)          => core.body_read(body.read(buf)),
//!         Step::Handshake(tls)         => core.handshaken(handshake(tls)),
//!         Step::Close                  => drop the socket,
//!         Step::Done(result)           => return result,
//!     }
//! }
//! ```

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use smtp_proto::Domain;

use crate::accounting::MessageResult;
use crate::config::ClientConfig;
use crate::envelope::Envelope;
use crate::error::{Error, Misuse, TlsError};
use crate::methods::Start;
use crate::session::{Event, Outcome, Session, SessionConfig};
use crate::timeouts::{deadline_after, Timeouts};
use crate::tls::{session_failure, TlsConfig, TlsMode};

pub(crate) use crate::body::BodyChunks;
pub use crate::body::BODY_CHUNK;
pub(crate) use crate::dial::{check_unix_socket, tcp_socket, DialStep, Dialer, Peer};

/// At most this many messages of a batch are under way at once (with DATA the protocol
/// allows two: one awaiting its final reply, the next awaiting its 354; BDAT allows more).
pub(crate) const BATCH_WINDOW: usize = 32;

/// Above this many buffered bytes, `datasend` writes them out.
const DATASEND_FLUSH: usize = 64 * 1024;

/// Size of the buffer each read from the connection goes into.
const READ_BUF: usize = 64 * 1024;

// ----- The session -----------------------------------------------------------------------

/// The session for a connection from `local` (`None`: a Unix-domain socket), configured
/// from `config`.
pub(crate) fn new_session(config: &ClientConfig, local: Option<SocketAddr>) -> Session {
    let client_id = match (&config.hello, local) {
        (Some(d), _) => d.clone(),
        (None, Some(local)) => default_client_id(local),
        (None, None) => localhost(),
    };
    let mut session_config = SessionConfig::new(client_id);
    session_config.timeouts = config.timeouts;
    session_config.reply_limits = config.reply_limits;
    session_config.send_hello = config.send_hello;
    session_config.pipelining = config.pipelining;
    session_config.tls = config.tls_mode;
    session_config.protocol = config.protocol;
    let mut session = Session::new(session_config);
    session.set_transcript(config.transcript_fn());
    session
}

/// The EHLO name when none is configured: the host name if it is a fully qualified domain,
/// else the local address as an address literal (RFC 5321 4.1.4).
pub(crate) fn default_client_id(local: SocketAddr) -> Domain {
    let name = gethostname::gethostname();
    if let Some(name) = name.to_str() {
        if name.contains('.') {
            if let Ok(d) = Domain::new(name) {
                return d;
            }
        }
    }
    let literal = match local.ip() {
        IpAddr::V4(a) => format!("[{a}]"),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{a}]"),
        },
    };
    Domain::new(&literal).unwrap_or_else(|_| {
        // An address literal of a real address is always valid; keep a fallback anyway.
        Domain::new("[127.0.0.1]").unwrap_or_else(|_| unreachable_domain())
    })
}

/// The EHLO/LHLO name over a Unix-domain socket, when none is configured.
fn localhost() -> Domain {
    Domain::new("localhost").unwrap_or_else(|_| unreachable_domain())
}

#[cold]
fn unreachable_domain() -> Domain {
    // Domain::new accepts "localhost"; this is only reached if both literals were refused.
    Domain::new("localhost").expect("\"localhost\" is a valid domain")
}

/// Which handshake a driver runs, and so how long it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// RFC 8314 implicit TLS, before the greeting: the greeting timeout.
    Implicit,
    /// After a 220 to STARTTLS: the command timeout.
    StartTls,
}

impl Handshake {
    pub(crate) fn timeout(self, timeouts: &Timeouts) -> Duration {
        match self {
            Handshake::Implicit => timeouts.greeting,
            Handshake::StartTls => timeouts.command,
        }
    }
}

// ----- Reading ---------------------------------------------------------------------------

/// The instant by which the next read must return, or `None` when the awaited reply's
/// deadline has already passed (the session has been told: its next `poll` is the timeout).
fn read_deadline(session: &mut Session, timeouts: &Timeouts) -> Option<Instant> {
    let now = Instant::now();
    let deadline = session
        .poll_timeout()
        .unwrap_or_else(|| deadline_after(now, timeouts.command));
    if now >= deadline {
        session.handle_timeout(now);
        return None;
    }
    Some(deadline)
}

/// Passes the result of one read to the session: bytes, the end of the stream, or the
/// deadline. Only a real I/O failure is an error.
fn handle_read(session: &mut Session, result: io::Result<usize>, buf: &[u8]) -> Result<(), Error> {
    match result {
        Ok(0) => session.handle_eof(),
        Ok(n) => session.handle_input(&buf[..n]),
        Err(e) if is_timeout(&e) => session.handle_timeout(Instant::now()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        // A TLS connection closed without close_notify: the end of the stream like any other.
        // What was received before it was read; what was awaited is reported missing.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => session.handle_eof(),
        Err(source) => {
            if let Some(tls) = session_failure(&source) {
                // Not the network: the server broke TLS (see TlsError::Session).
                return Err(TlsError::Session(tls).into());
            }
            return Err(Error::Io {
                op: "reading".to_owned(),
                source,
            });
        }
    }
    Ok(())
}

/// True for the errors a socket read or write returns when its timeout expires.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

// ----- The operation under way -----------------------------------------------------------

/// The error every call returns once an operation was left unfinished (an async client's
/// future dropped before it ended).
const CANCELLED: Error = Error::Misuse(Misuse::Cancelled);

/// What the driver does next for the operation under way, as decided by
/// [`DriverCore::next_step`]. The driver executes it and reports the result to the
/// `DriverCore` method named on each step, then asks for the next one.
pub(crate) enum Step<'a> {
    /// Write all these bytes (through TLS when it is on, flushed), then
    /// [`DriverCore::written`].
    Write(&'a [u8]),
    /// Read once from the connection into `buf`, returning no later than `deadline`
    /// (a timeout is an `io::ErrorKind::TimedOut` error), then [`DriverCore::read`].
    Read {
        buf: &'a mut [u8],
        deadline: Instant,
    },
    /// Read once from the caller's body into the buffer, then [`DriverCore::body_read`].
    ReadBody(&'a mut [u8]),
    /// Run the TLS client handshake on the plain connection, then
    /// [`DriverCore::handshaken`].
    Handshake(TlsStart),
    /// Drop the connection (shut the socket down); then ask for the next step.
    Close,
    /// A batch wants its next message: take it from the caller (its body is read with
    /// [`Step::ReadBody`] from now on), then [`DriverCore::message`].
    NextMessage,
    /// A message of a batch ended: hand it to the caller; then ask for the next step.
    MessageDone(MessageResult),
    /// The operation is over: return this (`None` when it awaited no reply: `open`,
    /// `datasend`).
    Done(Result<Option<Outcome>, Error>),
}

/// What a TLS handshake needs, built from the client's [`TlsConfig`] and host name.
pub(crate) struct TlsStart {
    pub(crate) config: Arc<rustls::ClientConfig>,
    pub(crate) name: ServerName<'static>,
    /// How long the whole handshake may take.
    pub(crate) timeout: Duration,
}

/// Where the operation under way stands: what [`DriverCore::next_step`] does next.
enum Phase {
    /// No operation is under way.
    Idle,
    /// Run the TLS handshake of this kind.
    Handshake(Handshake),
    /// The handshake was run: tell the session (or, for implicit TLS, start the session).
    Handshaken(Handshake),
    /// Ask the session for its next event.
    Poll,
    /// The session's event: its output is written first, then the event is acted on.
    Act(Event),
    /// `datasend`: write the buffered bytes once there are enough of them, then end.
    Flush,
    /// Close the connection, then end with this result.
    Close(Result<Option<Outcome>, Error>),
    /// Close the connection, then poll the session: a batch still hands out its messages.
    CloseAndDrain,
    /// End the operation with this result.
    End(Result<Option<Outcome>, Error>),
}

/// Everything a client connection is apart from its socket: the session, whom it talks to,
/// and the operation under way, which it runs step by step ([`Step`]). Both clients hold
/// one; their drivers only execute the steps.
///
/// The rules it keeps for every operation: output is written before the session's event is
/// acted on; a failure to move bytes (I/O, TLS, the caller's body) aborts the session and
/// closes the connection; a session error closes the connection only when it left the
/// session broken; the connection closes after QUIT whatever the outcome; an operation
/// begun while the previous one never ended (its future was dropped) poisons the client.
pub(crate) struct DriverCore {
    pub(crate) session: Session,
    pub(crate) host: String,
    pub(crate) peer: Peer,
    tls: TlsConfig,
    timeouts: Timeouts,
    read_buf: Box<[u8]>,
    phase: Phase,
    /// The body of the `send` or batch message under way; `None` for every other operation.
    body: Option<BodyChunks>,
    /// The operation under way is a batch: a failure leaves its messages to hand out.
    batch: bool,
    /// The batch's messages are ready without waiting: see [`Start::Batch`].
    coalesce: bool,
    /// The operation under way is QUIT: the connection closes when it ends.
    quitting: bool,
    /// False once the driver was told to close the connection.
    connected: bool,
    /// An operation was left unfinished: every later one fails with [`CANCELLED`].
    poisoned: bool,
    /// Bytes read before the session started (through a proxy, with its reply): given to
    /// the session as the first read.
    early: Vec<u8>,
    /// When the connection was up (through any proxy) and the session began.
    pub(crate) opened_at: Instant,
    /// When the last TLS handshake finished, if one did.
    pub(crate) tls_at: Option<Instant>,
}

impl DriverCore {
    /// The state of a connection to `host` at `peer` from `local` (`None` over a Unix-domain
    /// socket), configured from `config`.
    pub(crate) fn new(
        config: &ClientConfig,
        host: &str,
        peer: Peer,
        local: Option<SocketAddr>,
    ) -> DriverCore {
        DriverCore {
            session: new_session(config, local),
            host: host.to_owned(),
            peer,
            tls: config.tls.clone(),
            timeouts: config.timeouts,
            read_buf: vec![0; READ_BUF].into_boxed_slice(),
            phase: Phase::Idle,
            body: None,
            batch: false,
            coalesce: false,
            quitting: false,
            connected: true,
            poisoned: false,
            early: Vec::new(),
            opened_at: Instant::now(),
            tls_at: None,
        }
    }

    /// Bytes already read from the connection (after a proxy's reply), to be given to the
    /// session as its first read.
    pub(crate) fn with_early_input(mut self, early: Vec<u8>) -> DriverCore {
        self.early = early;
        self
    }

    /// True when an operation was left unfinished (its future dropped): every later one
    /// fails and the connection is closed.
    /// Replaces the timeouts of the replies awaited from now on (the session's deadlines
    /// and the driver's own, for TLS handshakes and reads with no reply owed).
    pub(crate) fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
        self.session.set_timeouts(timeouts);
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned || !matches!(self.phase, Phase::Idle)
    }

    /// Starts an operation; the driver then runs [`next_step`](Self::next_step) until
    /// [`Step::Done`].
    pub(crate) fn begin(&mut self, start: Start<'_>) {
        if self.is_poisoned() {
            // SMTP cannot take back a half-written command nor skip its reply.
            self.poisoned = true;
            self.session.abort();
            self.phase = Phase::Close(Err(CANCELLED));
            return;
        }
        self.quitting = matches!(start, Start::Quit);
        self.batch = matches!(start, Start::Batch { .. });
        self.coalesce = matches!(start, Start::Batch { coalesce: true, .. });
        self.body = matches!(start, Start::Send(_) | Start::Batch { .. }).then(BodyChunks::new);
        if matches!(start, Start::Open) && self.session.config().tls == TlsMode::Implicit {
            // RFC 8314: TLS from the first byte, the session starts once it is up.
            self.phase = Phase::Handshake(Handshake::Implicit);
            return;
        }
        let then = match start {
            Start::DataSend(_) => Phase::Flush,
            _ => Phase::Poll,
        };
        self.phase = match start.start(&mut self.session, Instant::now()) {
            Ok(()) => then,
            Err(err) => {
                // Refused before anything was sent; the connection closes if that left the
                // session broken (a DATA writer's message abandoned, bytes nobody asked for).
                let close = self.connected && self.session.is_broken();
                self.end(Err(err), close)
            }
        };
    }

    /// The next I/O step of the operation under way.
    pub(crate) fn next_step(&mut self) -> Step<'_> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Idle) {
                Phase::Idle => return Step::Done(Err(Error::Internal("no operation under way"))),
                Phase::End(result) => return Step::Done(result),
                Phase::Close(result) => {
                    self.connected = false;
                    self.phase = Phase::End(result);
                    return Step::Close;
                }
                Phase::CloseAndDrain => {
                    self.connected = false;
                    self.phase = Phase::Poll;
                    return Step::Close;
                }
                Phase::Handshake(kind) => match self.tls_start(kind) {
                    Ok(tls) => {
                        self.phase = Phase::Handshaken(kind);
                        return Step::Handshake(tls);
                    }
                    Err(err) => self.phase = self.fail(err),
                },
                Phase::Handshaken(kind) => {
                    let now = Instant::now();
                    let started = match kind {
                        Handshake::Implicit => self.session.start_open(now),
                        Handshake::StartTls => self.session.tls_established(now),
                    };
                    self.phase = match started {
                        Ok(()) => Phase::Poll,
                        Err(err) => self.end(Err(err), false),
                    };
                }
                Phase::Poll => {
                    self.phase = match self.session.poll(Instant::now()) {
                        Ok(event) => Phase::Act(event),
                        Err(err) => {
                            let broken = self.session.is_broken();
                            self.end(Err(err), broken)
                        }
                    };
                }
                Phase::Flush => {
                    self.phase = Phase::End(Ok(None));
                    if self.session.output().len() >= DATASEND_FLUSH {
                        if !self.connected {
                            self.phase = self.fail(connection_closed());
                            continue;
                        }
                        return Step::Write(self.session.output());
                    }
                }
                Phase::Act(event) if self.write_first(&event) => {
                    if !self.connected {
                        self.phase = self.fail(connection_closed());
                        continue;
                    }
                    self.phase = Phase::Act(event);
                    return Step::Write(self.session.output());
                }
                Phase::Act(Event::Done(outcome)) => {
                    let close = self.session.is_closed() || self.session.is_broken();
                    self.phase = self.end(Ok(Some(outcome)), close && self.connected);
                }
                Phase::Act(Event::NeedMessage) => {
                    self.phase = Phase::Poll;
                    return Step::NextMessage;
                }
                Phase::Act(Event::MessageDone(result)) => {
                    self.phase = Phase::Poll;
                    return Step::MessageDone(result);
                }
                Phase::Act(Event::NeedInput) if !self.early.is_empty() => {
                    let early = std::mem::take(&mut self.early);
                    self.session.handle_input(&early);
                    self.phase = Phase::Poll;
                }
                Phase::Act(Event::NeedInput) => {
                    self.phase = Phase::Poll;
                    // `None`: the deadline has passed and the session was told.
                    if let Some(deadline) = read_deadline(&mut self.session, &self.timeouts) {
                        if !self.connected {
                            self.phase = self.fail(connection_closed());
                            continue;
                        }
                        return Step::Read {
                            buf: &mut self.read_buf,
                            deadline,
                        };
                    }
                }
                Phase::Act(Event::NeedBody) => match &self.body {
                    None => self.phase = self.fail(Error::Misuse(Misuse::NoBody)),
                    Some(chunks) if chunks.needs_read() => {
                        self.phase = Phase::Act(Event::NeedBody);
                        // Borrowed again here, not above: the borrow returned must not
                        // outlive this branch (the borrow checker cannot tell otherwise).
                        let spare = self.body.as_mut().map_or(&mut [][..], BodyChunks::spare);
                        return Step::ReadBody(spare);
                    }
                    Some(_) => self.phase = self.push_body(),
                },
                Phase::Act(Event::StartTls) => self.phase = Phase::Handshake(Handshake::StartTls),
            }
        }
    }

    /// True when the session's output must be written before `event` is acted on. In a
    /// coalescing batch, the next message (and the first chunk of its body) only add to the
    /// output: the previous end of data waits for them, so the server reads both at once
    /// and answers them in one write (a server that answered the end of data alone and then
    /// the next commands would hold its second reply for the client's delayed ACK).
    fn write_first(&self, event: &Event) -> bool {
        let pending = self.session.output().len();
        match event {
            _ if pending == 0 => false,
            Event::NeedMessage if self.coalesce => false,
            Event::NeedBody if self.coalesce => pending >= DATASEND_FLUSH,
            _ => true,
        }
    }

    /// The result of a [`Step::Write`].
    pub(crate) fn written(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => {
                let n = self.session.output().len();
                self.session.consume_output(n);
            }
            Err(source) => {
                self.phase = self.fail(Error::Io {
                    op: "writing".to_owned(),
                    source,
                })
            }
        }
    }

    /// The result of a [`Step::Read`]: bytes, the end of the stream, or the deadline.
    pub(crate) fn read(&mut self, result: io::Result<usize>) {
        if let Err(err) = handle_read(&mut self.session, result, &self.read_buf) {
            self.phase = self.fail(err);
        }
    }

    /// The result of a [`Step::ReadBody`].
    pub(crate) fn body_read(&mut self, result: io::Result<usize>) {
        let Some(chunks) = &mut self.body else {
            return;
        };
        if let Err(err) = chunks.advance(result) {
            self.phase = self.fail(err);
        }
    }

    /// The caller's next message after [`Step::NextMessage`], or `None` when there are no
    /// more; its body is read from the start.
    pub(crate) fn message(&mut self, envelope: Option<Envelope>) {
        if let Some(chunks) = &mut self.body {
            chunks.reset();
        }
        if let Err(err) = self.session.push_message(envelope) {
            self.phase = self.fail(err);
        }
    }

    /// The result of a [`Step::Handshake`].
    pub(crate) fn handshaken(&mut self, result: Result<(), Error>) {
        match result {
            Ok(()) => self.tls_at = Some(Instant::now()),
            Err(err) => self.phase = self.fail(err),
        }
    }

    fn tls_start(&self, kind: Handshake) -> Result<TlsStart, Error> {
        Ok(TlsStart {
            config: self.tls.build()?,
            name: self.tls.server_name_for(&self.host)?,
            timeout: kind.timeout(&self.timeouts),
        })
    }

    /// Pushes the chunk of the body that is ready into the session.
    fn push_body(&mut self) -> Phase {
        let Some(chunks) = &mut self.body else {
            return Phase::Poll;
        };
        let (chunk, last) = chunks.chunk();
        match self.session.push_body(chunk, last, Instant::now()) {
            Ok(()) => {
                chunks.consumed();
                Phase::Poll
            }
            Err(err) => {
                let broken = self.session.is_broken();
                self.end(Err(err), broken)
            }
        }
    }

    /// A failure to move bytes: the session refuses more work and the connection is closed.
    fn fail(&mut self, err: Error) -> Phase {
        self.session.abort_with(&err);
        if self.batch && self.session.in_batch() {
            // The batch's messages are still to be handed out, each not sent or unknown.
            return Phase::CloseAndDrain;
        }
        Phase::Close(Err(err))
    }

    /// The operation ends with `result`, closing the connection first when `close` or after
    /// QUIT.
    fn end(&self, result: Result<Option<Outcome>, Error>, close: bool) -> Phase {
        if close || self.quitting {
            Phase::Close(result)
        } else {
            Phase::End(result)
        }
    }
}

// ----- A DATA writer's message -----------------------------------------------------------

/// Once this many bytes of a DATA writer's message wait in the output, they are written
/// before the writer takes more: each write is about this large, whatever the size of the
/// caller's writes (and the output never holds much more, however large they are).
pub(crate) const WRITER_BUF: usize = BODY_CHUNK;

/// What a DATA writer ([`crate::DataWriter`], `tokio::AsyncDataWriter`) asks of the core
/// between its operations (`data_writer`'s DATA and `finish`'s end of data, which run as
/// any other). Both writers make the same calls; only how they write differs (all at
/// once, or as far as the socket takes).
impl DriverCore {
    /// Checks that the writer's message is still under way: the error otherwise (the one
    /// that ended it, as every later call sees it).
    pub(crate) fn stream_ready(&mut self) -> Result<(), Error> {
        self.session.stream_data(&[])
    }

    /// True when the output must be written before the writer takes more bytes.
    pub(crate) fn stream_full(&self) -> bool {
        self.session.output().len() >= WRITER_BUF
    }

    /// Takes as much of `bytes` as fits under [`WRITER_BUF`] into the message (dot-stuffed,
    /// in the output), and returns how much: at least one byte of a non-empty `bytes`
    /// unless [`stream_full`](Self::stream_full).
    pub(crate) fn stream_take(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let room = WRITER_BUF.saturating_sub(self.session.output().len());
        let n = bytes.len().min(room);
        self.session.stream_data(&bytes[..n])?;
        Ok(n)
    }

    /// The bytes to write.
    pub(crate) fn stream_output(&self) -> &[u8] {
        self.session.output()
    }

    /// The first `n` bytes of [`stream_output`](Self::stream_output) were written.
    pub(crate) fn stream_wrote(&mut self, n: usize) {
        self.session.consume_output(n);
    }

    /// Writing failed (a timeout included): the session refuses more work, and the
    /// writer's error is returned; [`stream_close`](Self::stream_close) says to close.
    pub(crate) fn stream_write_failed(&mut self, source: io::Error) -> Error {
        let err = Error::Io {
            op: "writing".to_owned(),
            source,
        };
        self.session.abort_with(&err);
        err
    }

    /// After one of the writer's calls failed, or (`abandon`) the writer went away without
    /// finishing: true when the driver must close the connection now. An abandoned message
    /// never gets its end of data: dropping the connection is the only way SMTP has to
    /// cancel DATA.
    pub(crate) fn stream_close(&mut self, abandon: bool) -> bool {
        if abandon {
            self.session.abandon_stream();
        }
        let close = self.connected && self.session.is_broken();
        if close {
            self.connected = false;
        }
        close
    }
}

fn connection_closed() -> Error {
    Error::Misuse(Misuse::ConnectionBroken)
}

/// Maps an I/O error of `op` ("writing", "setting TCP_NODELAY"...) to [`Error::Io`].
pub(crate) fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_client_id_is_a_fqdn_or_an_address_literal() {
        let v4 = default_client_id("192.0.2.7:2525".parse().unwrap());
        assert!(v4.as_str().contains('.'));
        assert!(v4.as_str() == "[192.0.2.7]" || !v4.is_address_literal());
        let v6 = default_client_id("[2001:db8::7]:2525".parse().unwrap());
        assert!(v6.as_str() == "[IPv6:2001:db8::7]" || !v6.is_address_literal());
    }

    #[test]
    fn address_literals_are_valid_domains() {
        assert!(Domain::new("[192.0.2.7]").is_ok());
        assert!(Domain::new("[IPv6:2001:db8::7]").is_ok());
    }

    fn core() -> DriverCore {
        let config = ClientConfig::new("mx.example.test")
            .tls_mode(TlsMode::None)
            .hello(Domain::new("client.example.test").unwrap());
        let peer = Peer::Tcp("192.0.2.1:25".parse().unwrap());
        let local = Some("192.0.2.2:40000".parse().unwrap());
        DriverCore::new(&config, "mx.example.test", peer, local)
    }

    /// Answers each read with the next of `replies`, records the writes, and returns the
    /// result of the operation and what was written.
    fn drive(
        core: &mut DriverCore,
        start: Start<'_>,
        replies: &[&str],
    ) -> (Result<Option<Outcome>, Error>, String, bool) {
        let mut replies = replies.iter();
        let mut written = String::new();
        let mut closed = false;
        core.begin(start);
        loop {
            match core.next_step() {
                Step::Write(bytes) => {
                    written.push_str(std::str::from_utf8(bytes).unwrap());
                    core.written(Ok(()));
                }
                Step::Read { buf, .. } => {
                    let reply = replies.next().expect("a read past the script").as_bytes();
                    buf[..reply.len()].copy_from_slice(reply);
                    core.read(Ok(reply.len()));
                }
                Step::ReadBody(_)
                | Step::Handshake(_)
                | Step::NextMessage
                | Step::MessageDone(_) => panic!("not in this script"),
                Step::Close => closed = true,
                Step::Done(result) => return (result, written, closed),
            }
        }
    }

    fn opened() -> DriverCore {
        let mut core = core();
        let (result, written, closed) = drive(
            &mut core,
            Start::Open,
            &["220 mx.example.test ESMTP\r\n", "250 mx.example.test\r\n"],
        );
        assert!(matches!(result, Ok(None | Some(_))), "{result:?}");
        assert_eq!(written, "EHLO client.example.test\r\n");
        assert!(!closed);
        core
    }

    #[test]
    fn the_core_writes_then_reads_until_the_operation_is_done() {
        let mut core = opened();
        let (result, written, closed) = drive(&mut core, Start::Data, &["354 go ahead\r\n"]);
        assert_eq!(written, "DATA\r\n");
        assert!(matches!(result, Ok(Some(Outcome::Reply(r))) if r.code().get() == 354));
        assert!(!closed && !core.is_poisoned());
    }

    #[test]
    fn a_write_failure_aborts_the_session_and_closes_before_the_error() {
        let mut core = opened();
        core.begin(Start::Data);
        assert!(matches!(core.next_step(), Step::Write(b"DATA\r\n")));
        core.written(Err(io::ErrorKind::BrokenPipe.into()));
        assert!(matches!(core.next_step(), Step::Close));
        let Step::Done(Err(Error::Io { op, .. })) = core.next_step() else {
            panic!("the write error");
        };
        assert_eq!(op, "writing");
        assert!(core.session.is_broken());
        // Nothing is written on a closed connection.
        let (result, written, _) = drive(&mut core, Start::Data, &[]);
        assert!(result.is_err());
        assert_eq!(written, "");
    }

    #[test]
    fn quit_closes_the_connection_even_when_it_cannot_start() {
        let mut core = opened();
        let (result, written, closed) = drive(&mut core, Start::Quit, &["221 bye\r\n"]);
        assert!(matches!(result, Ok(Some(Outcome::Closed(Some(_))))));
        assert_eq!(written, "QUIT\r\n");
        assert!(closed);
        let (result, _, closed) = drive(&mut core, Start::Quit, &[]);
        assert!(result.is_err());
        assert!(closed);
    }

    #[test]
    fn an_operation_left_unfinished_poisons_the_core() {
        let mut core = opened();
        core.begin(Start::Data);
        assert!(matches!(core.next_step(), Step::Write(_)));
        // The driver never reports back (its future was dropped): the next operation fails.
        assert!(core.is_poisoned());
        let (result, written, closed) = drive(
            &mut core,
            Start::Command(smtp_proto::Command::Noop, crate::Expect::Completion),
            &[],
        );
        assert!(matches!(result, Err(Error::Misuse(Misuse::Cancelled))));
        assert_eq!(written, "");
        assert!(closed);
        assert!(core.is_poisoned());
        let (result, _, _) = drive(&mut core, Start::Data, &[]);
        assert!(matches!(result, Err(Error::Misuse(Misuse::Cancelled))));
    }

    #[test]
    fn datasend_writes_only_once_enough_bytes_are_buffered_and_awaits_no_reply() {
        let mut core = opened();
        drive(&mut core, Start::Data, &["354 go ahead\r\n"])
            .0
            .unwrap();
        let (result, written, closed) = drive(&mut core, Start::DataSend(b"Subject: x\r\n"), &[]);
        assert!(matches!(result, Ok(None)), "{result:?}");
        assert_eq!(written, "");
        assert!(!closed);
        let big = vec![b'x'; DATASEND_FLUSH];
        let (result, written, _) = drive(&mut core, Start::DataSend(&big), &[]);
        assert!(matches!(result, Ok(None)), "{result:?}");
        assert!(
            written.starts_with("Subject: x\r\nxxx"),
            "{}",
            &written[..20]
        );
        assert!(core.session.output().is_empty());
    }

    /// A core whose DATA writer's message has started: MAIL, RCPT and DATA answered.
    fn streaming() -> DriverCore {
        let mut core = opened();
        let from = smtp_proto::ReversePath::Null;
        let to = smtp_proto::ForwardPath::new("b@example.test").unwrap();
        let (mp, rp) = (Default::default(), Default::default());
        let mail = smtp_proto::Command::Mail {
            from: &from,
            params: &mp,
        };
        let rcpt = smtp_proto::Command::Rcpt {
            to: &to,
            params: &rp,
        };
        for command in [mail, rcpt] {
            let start = Start::Command(command, crate::Expect::Completion);
            drive(&mut core, start, &["250 ok\r\n"]).0.unwrap();
        }
        let (result, written, _) = drive(&mut core, Start::DataStream, &["354 go\r\n"]);
        assert!(matches!(result, Ok(Some(Outcome::Reply(r))) if r.code().get() == 354));
        assert_eq!(written, "DATA\r\n");
        assert!(core.session.in_stream());
        core
    }

    #[test]
    fn a_data_writers_small_writes_wait_for_a_full_buffer() {
        let mut core = streaming();
        for _ in 0..WRITER_BUF - 1 {
            assert_eq!(core.stream_take(b"x").unwrap(), 1);
            assert!(!core.stream_full());
        }
        assert_eq!(core.stream_take(b"x").unwrap(), 1);
        // Full: written before anything more is taken.
        assert!(core.stream_full());
        assert_eq!(core.stream_output().len(), WRITER_BUF);
        assert_eq!(core.stream_take(b"y").unwrap(), 0);
        core.stream_wrote(WRITER_BUF);
        assert!(core.stream_output().is_empty());
    }

    #[test]
    fn a_data_writers_large_write_is_taken_a_buffer_at_a_time() {
        let mut core = streaming();
        // Bare LFs: each becomes CRLF, the worst growth stuffing has.
        let lfs = vec![b'\n'; 10 * WRITER_BUF];
        assert_eq!(core.stream_take(&lfs).unwrap(), WRITER_BUF);
        assert_eq!(core.stream_output().len(), 2 * WRITER_BUF);
        assert!(core.stream_full());
        // After a little, only the room left is taken.
        core.stream_wrote(2 * WRITER_BUF);
        assert_eq!(core.stream_take(b"abc").unwrap(), 3);
        assert_eq!(core.stream_take(&lfs).unwrap(), WRITER_BUF - 3);
    }

    #[test]
    fn a_data_writers_failed_write_or_drop_closes_once() {
        let mut core = streaming();
        core.stream_take(b"Subject: x\r\n").unwrap();
        let err = core.stream_write_failed(io::ErrorKind::BrokenPipe.into());
        assert!(matches!(err, Error::Io { ref op, .. } if op == "writing"));
        assert!(core.stream_close(false));
        assert!(!core.stream_close(true));
        assert!(matches!(
            core.stream_ready(),
            Err(Error::Misuse(Misuse::ConnectionBroken))
        ));
        // Dropped unfinished: abandoned, closed once, and later operations say so.
        let mut core = streaming();
        core.stream_take(b"Subject: x\r\n").unwrap();
        assert!(core.stream_close(true));
        assert!(core.stream_output().is_empty());
        assert!(!core.stream_close(true));
        let (result, written, _) = drive(&mut core, Start::StreamEnd, &[]);
        assert!(matches!(result, Err(Error::Misuse(Misuse::DataAbandoned))));
        assert_eq!(written, "");
    }

    /// Runs a batch of `count` one-line messages against `replies` (one per read) and
    /// returns each write.
    fn batch_writes(coalesce: bool, count: usize, replies: &[&str]) -> Vec<String> {
        let mut core = opened();
        let mut replies = replies.iter();
        let mut writes = Vec::new();
        let mut left = count;
        let body = b"Subject: x\r\n\r\nhi\r\n";
        let mut read = 0;
        core.begin(Start::Batch {
            window: 32,
            coalesce,
        });
        loop {
            match core.next_step() {
                Step::Write(bytes) => {
                    writes.push(String::from_utf8_lossy(bytes).into_owned());
                    core.written(Ok(()));
                }
                Step::Read { buf, .. } => {
                    let reply = replies.next().expect("a read past the script").as_bytes();
                    buf[..reply.len()].copy_from_slice(reply);
                    core.read(Ok(reply.len()));
                }
                Step::ReadBody(buf) => {
                    let n = (body.len() - read).min(buf.len());
                    buf[..n].copy_from_slice(&body[read..read + n]);
                    read += n;
                    core.body_read(Ok(n));
                }
                Step::NextMessage => {
                    read = 0;
                    let next = (left > 0).then(|| {
                        left -= 1;
                        let from = smtp_proto::ReversePath::Null;
                        let to = smtp_proto::ForwardPath::new("b@example.test").unwrap();
                        Envelope::new(from, [to])
                    });
                    core.message(next);
                }
                Step::MessageDone(_) => {}
                Step::Handshake(_) | Step::Close => panic!("not in this script"),
                Step::Done(result) => {
                    assert!(matches!(result, Ok(Some(Outcome::Batch(_)))), "{result:?}");
                    return writes;
                }
            }
        }
    }

    #[test]
    fn a_ready_batch_sends_each_end_of_data_with_the_next_messages_commands() {
        // The server answers the end of data and the next commands together.
        let replies = [
            "250 ok\r\n250 ok\r\n354 go\r\n",
            "250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n",
            "250 queued\r\n",
        ];
        let writes = batch_writes(true, 2, &replies);
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert!(writes[1].contains(".\r\nMAIL FROM:<>\r\n"), "{writes:?}");
        // Without coalescing the end of data goes out before the next message is asked for.
        let writes = batch_writes(false, 2, &replies);
        assert_eq!(writes.len(), 4, "{writes:?}");
        assert!(writes[1].ends_with(".\r\n") && writes[2].starts_with("MAIL FROM:<>"));
    }
}
