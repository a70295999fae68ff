//! The blocking driver: runs [`DriverCore`]'s steps over a `TcpStream` (plain or rustls) or
//! a Unix-domain socket.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use smtp_proto::{
    Command, Domain, ForwardPath, MailParams, RcptParams, Reply, ReversePath, Text, Xclient,
    Xforward,
};

use crate::accounting::{BatchSummary, MessageResult};
use crate::config::ClientConfig;
use crate::data_writer::DataWriter;
use crate::delivery::{Delivery, Resend};
use crate::driver::BATCH_WINDOW;
use crate::driver::{
    io_err, is_timeout, tcp_socket, DialStep, Dialer, DriverCore, Peer, Step, TlsStart,
};
use crate::envelope::{Envelope, RecipientsReport, SendReport};
use crate::error::{Error, TlsError};
use crate::feed::{Feed, Messages, OneBody};
use crate::methods::{self, Client, Op};
use crate::proxy::{ProxyConnect, ProxyStep};
use crate::timeouts::deadline_after;
use crate::tls::{handshake_failed, handshake_timed_out};

/// A blocking SMTP client connection: Net::SMTP.
///
/// [`connect`](Self::connect) tries each host and each of its addresses in turn, reads the
/// greeting, sends EHLO (HELO when EHLO is refused) and upgrades with STARTTLS per the
/// [`TlsMode`](crate::TlsMode). Each method then sends its command(s) and waits for the reply; every reply is
/// kept as [`last_reply`](Self::last_reply).
///
/// ```no_run
/// use smtp_client::{ClientConfig, Envelope, SmtpClient, TlsConfig, TlsMode};
/// use smtp_proto::{ForwardPath, Mailbox, ReversePath};
///
/// let config = ClientConfig::new("mail.example.test")
///     .port(587)
///     .tls_mode(TlsMode::StartTlsRequired)
///     .tls(TlsConfig::webpki_roots());
/// let mut client = SmtpClient::connect(config)?;
/// let envelope = Envelope::new(
///     ReversePath::Mailbox(Mailbox::new("alice@example.test")?),
///     [ForwardPath::new("bob@example.test")?],
/// );
/// let message = b"Subject: hi\r\n\r\nHello Bob\r\n";
/// let report = client.send(&envelope, &message[..])?;
/// println!("queued: {}", report.reply);
/// client.quit()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type SmtpClient = Client<Blocking>;

/// The blocking driver's half of an [`SmtpClient`]: the socket, and the read timeout set on it.
pub struct Blocking {
    stream: Stream,
    /// The read timeout last set on the socket, so a read needs no `setsockopt` when it
    /// is unchanged (see [`READ_TICK`]).
    socket_read_timeout: Option<Duration>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    #[cfg(unix)]
    Unix(UnixStream),
    Closed,
}

/// A socket whose reads can be given a timeout.
trait ReadTimeout: Read + Write {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl ReadTimeout for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

#[cfg(unix)]
impl ReadTimeout for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

/// The longest a single blocking read waits before the deadline is checked again. Reads
/// wait `min(time left, READ_TICK)`: while more than a tick is left, the value set on the
/// socket stays the same from read to read, so the hot path makes no `setsockopt` call,
/// and the absolute deadline is still enforced to the millisecond (a silent server only
/// costs one wake-up per tick).
const READ_TICK: Duration = Duration::from_secs(1);

/// The socket as the driver and rustls read it: every single read waits at most until
/// `deadline` (in waits of at most [`READ_TICK`]), and none starts after it. rustls reads
/// in a loop until a whole TLS record (or the server's whole handshake flight) is in, so
/// without this a server sending that record a byte at a time could hold the client far
/// past the deadline although each read returned in time.
struct DeadlineIo<'a, S: ReadTimeout = TcpStream> {
    sock: &'a mut S,
    deadline: Instant,
    /// The client's record of the read timeout set on the socket.
    read_timeout: &'a mut Option<Duration>,
}

impl<S: ReadTimeout> Read for DeadlineIo<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let wait = (self.deadline - now).clamp(Duration::from_millis(1), READ_TICK);
        if *self.read_timeout != Some(wait) {
            self.sock.set_read_timeout(Some(wait))?;
            *self.read_timeout = Some(wait);
        }
        self.sock.read(buf)
    }
}

impl<S: ReadTimeout> Write for DeadlineIo<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("host", &self.core.host)
            .field("peer", &self.core.peer)
            .field("encrypted", &self.core.session.is_encrypted())
            .field("session", &self.core.session)
            .finish()
    }
}

impl crate::methods::sealed::TlsSide for Blocking {
    fn tls(&self) -> Option<&ClientConnection> {
        match &self.stream {
            Stream::Tls(s) => Some(&s.conn),
            _ => None,
        }
    }
}

/// Connects a TCP socket to `addr` within the connect timeout, with the write timeout set.
fn connect_tcp(addr: SocketAddr, config: &ClientConfig) -> io::Result<TcpStream> {
    let socket = tcp_socket(addr, config)?;
    socket.connect_timeout(&addr.into(), config.timeouts.connect)?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(config.timeouts.write))?;
    Ok(stream)
}

impl SmtpClient {
    /// Connects per `config`: each host in turn, each of its addresses (IPv4 and IPv6) in
    /// turn; then the greeting, EHLO and STARTTLS as configured.
    ///
    /// When a host accepts the TCP connection but the session fails (bad greeting, TLS
    /// required but not offered...), the next host is tried; the last such error is returned.
    ///
    /// With [`ClientConfig::unix_socket`] it connects to that socket instead.
    pub fn connect(config: ClientConfig) -> Result<SmtpClient, Error> {
        #[cfg(unix)]
        if let Some(path) = &config.unix_socket {
            crate::driver::check_unix_socket(&config)?;
            let stream = UnixStream::connect(path).map_err(|error| Error::Connect {
                attempts: vec![crate::error::ConnectAttempt {
                    host: format!("unix:{}", path.display()),
                    address: None,
                    error,
                }],
            })?;
            return SmtpClient::open_unix(stream, &config);
        }
        let mut dial = Dialer::new(&config);
        loop {
            match dial.next_step() {
                DialStep::Resolve { name, port } => {
                    dial.resolved((name.as_str(), port).to_socket_addrs());
                }
                DialStep::Connect { host, addr } => match connect_tcp(addr, &config) {
                    Err(error) => dial.connect_failed(addr, error),
                    Ok(tcp) => match SmtpClient::open_tunnel(tcp, &host, addr, &config) {
                        Ok(client) => return Ok(client),
                        Err(error) => dial.session_failed(addr, error),
                    },
                },
                DialStep::Failed(error) => return Err(error),
            }
        }
    }

    /// Runs the proxy handshake when `config` has a proxy (`tcp` is connected to it), then
    /// the session over the tunnel.
    fn open_tunnel(
        mut tcp: TcpStream,
        host: &str,
        peer: SocketAddr,
        config: &ClientConfig,
    ) -> Result<SmtpClient, Error> {
        let early = match &config.proxy {
            None => Vec::new(),
            Some(proxy) => {
                let mut hs = ProxyConnect::new(proxy, config, host)?;
                let mut read_timeout = None;
                loop {
                    match hs.next_step() {
                        ProxyStep::Write(bytes) => {
                            let result = tcp.write_all(bytes);
                            hs.written(result);
                        }
                        ProxyStep::Read { buf, deadline } => {
                            let result = DeadlineIo {
                                sock: &mut tcp,
                                deadline,
                                read_timeout: &mut read_timeout,
                            }
                            .read(buf);
                            hs.read(result);
                        }
                        ProxyStep::Done(result) => break result?,
                    }
                }
            }
        };
        SmtpClient::open_with(tcp, host, peer, config, early)
    }

    /// Runs a session over an already connected socket (for callers who connect themselves;
    /// no proxy handshake is run).
    pub fn open(
        tcp: TcpStream,
        host: &str,
        peer: SocketAddr,
        config: &ClientConfig,
    ) -> Result<SmtpClient, Error> {
        SmtpClient::open_with(tcp, host, peer, config, Vec::new())
    }

    fn open_with(
        tcp: TcpStream,
        host: &str,
        peer: SocketAddr,
        config: &ClientConfig,
        early: Vec<u8>,
    ) -> Result<SmtpClient, Error> {
        tcp.set_nodelay(true)
            .map_err(io_err("setting TCP_NODELAY"))?;
        let local = tcp
            .local_addr()
            .map_err(io_err("reading the local address"))?;
        let mut client = Client {
            core: DriverCore::new(config, host, Peer::Tcp(peer), Some(local))
                .with_early_input(early),
            io: Blocking {
                stream: Stream::Plain(tcp),
                socket_read_timeout: None,
            },
        };
        client.op(methods::open())?;
        Ok(client)
    }

    /// Runs a session over an already connected Unix-domain socket (for callers who connect
    /// themselves); `config`'s TLS mode must be [`TlsMode::None`](crate::TlsMode::None).
    #[cfg(unix)]
    pub fn open_unix(stream: UnixStream, config: &ClientConfig) -> Result<SmtpClient, Error> {
        crate::driver::check_unix_socket(config)?;
        stream
            .set_write_timeout(Some(config.timeouts.write))
            .map_err(io_err("setting the write timeout"))?;
        let path = config.unix_socket.clone().unwrap_or_default();
        let host = config.hosts.first().map_or("localhost", String::as_str);
        let mut client = Client {
            core: DriverCore::new(config, host, Peer::Unix(path), None),
            io: Blocking {
                stream: Stream::Unix(stream),
                socket_read_timeout: None,
            },
        };
        client.op(methods::open())?;
        Ok(client)
    }

    /// Replaces the timeouts given by the [`ClientConfig`] for what follows: the replies
    /// awaited from now on and each write (a reply already awaited keeps its deadline).
    /// A pool, for one, bounds the wait for QUIT's reply this way.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use smtp_client::{ClientConfig, SmtpClient, Timeouts};
    /// let mut client = SmtpClient::connect(ClientConfig::new("mx.example.test"))?;
    /// client.set_timeouts(Timeouts::uniform(Duration::from_secs(5)))?;
    /// client.quit()?;
    /// # Ok::<(), smtp_client::Error>(())
    /// ```
    pub fn set_timeouts(&mut self, timeouts: crate::Timeouts) -> Result<(), Error> {
        let write = Some(timeouts.write);
        match &self.io.stream {
            Stream::Plain(s) => s.set_write_timeout(write),
            Stream::Tls(s) => s.sock.set_write_timeout(write),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_write_timeout(write),
            Stream::Closed => Ok(()),
        }
        .map_err(io_err("setting the write timeout"))?;
        self.core.set_timeouts(timeouts);
        Ok(())
    }

    // ----- The driver loop: the only place bytes move ---------------------------------

    /// Runs `op` to its end, reading the body (of `send`) from `body`.
    fn run<T>(&mut self, op: Op<'_, T>, body: &mut dyn Source) -> Result<T, Error> {
        self.core.begin(op.start);
        loop {
            match self.core.next_step() {
                Step::Write(bytes) => {
                    let result = self.io.write(bytes);
                    self.core.written(result);
                }
                Step::Read { buf, deadline } => {
                    let result = self.io.read(buf, deadline);
                    self.core.read(result);
                }
                Step::ReadBody(buf) => {
                    let result = body.read(buf);
                    self.core.body_read(result);
                }
                Step::Handshake(tls) => {
                    let result = self.io.handshake(tls);
                    self.core.handshaken(result);
                }
                Step::Close => self.io.close(),
                Step::NextMessage => {
                    let next = body.next_message();
                    self.core.message(next);
                }
                Step::MessageDone(result) => body.message_done(result),
                Step::Done(outcome) => return (op.finish)(outcome?),
            }
        }
    }

    /// Runs `op`, which has no body.
    fn op<T>(&mut self, op: Op<'_, T>) -> Result<T, Error> {
        self.run(op, &mut OneBody(io::empty()))
    }

    // ----- Net::SMTP's methods that talk to the server (see `methods`) ----------------

    /// Sends EHLO (falling back to HELO on a 5xx) with `domain` or the configured name
    /// (Net::SMTP's `hello`). Forgets earlier capabilities.
    pub fn hello(&mut self, domain: Option<&Domain>) -> Result<Reply, Error> {
        self.op(methods::hello(domain))
    }

    /// Upgrades the connection with STARTTLS, then sends EHLO again, forgetting everything
    /// learnt in clear (Net::SMTP's `starttls`). Returns the new EHLO reply.
    pub fn starttls(&mut self) -> Result<Reply, Error> {
        self.op(methods::starttls())
    }

    /// Sends Postfix's XCLIENT: the server starts over as if the client described by `attrs`
    /// had connected, greets again with 220, and EHLO is sent again; returns the new EHLO
    /// reply. Refused before sending when XCLIENT or one of the attributes is not offered.
    pub fn xclient(&mut self, attrs: &Xclient) -> Result<Reply, Error> {
        self.op(methods::xclient(attrs))
    }

    /// Sends Postfix's XFORWARD (the original client, for the server's logs); a reply other
    /// than 2xx is [`Error::Refused`]. Refused before sending when not offered.
    pub fn xforward(&mut self, attrs: &Xforward) -> Result<Reply, Error> {
        self.op(methods::xforward(attrs))
    }

    /// Sends `MAIL FROM` (Net::SMTP's `mail`/`send`); a non-2xx reply is [`Error::Refused`].
    pub fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Result<Reply, Error> {
        self.op(methods::mail(from, params))
    }

    /// Sends one `RCPT TO` (Net::SMTP's `to`/`recipient` without SkipBad).
    pub fn rcpt(&mut self, to: &ForwardPath, params: &RcptParams) -> Result<Reply, Error> {
        self.op(methods::rcpt(to, params))
    }

    /// Sends `RCPT TO` for each recipient, pipelined when offered, with Net::SMTP's SkipBad
    /// semantics: refused recipients are reported and the good ones kept; an error only when
    /// all are refused.
    pub fn recipients(
        &mut self,
        recipients: &[(ForwardPath, RcptParams)],
    ) -> Result<RecipientsReport, Error> {
        self.op(methods::recipients(recipients))
    }

    /// Sends DATA and waits for 354 (Net::SMTP's `data` without arguments).
    pub fn data(&mut self) -> Result<Reply, Error> {
        self.op(methods::data())
    }

    /// Sends message bytes after [`data`](Self::data), dot-stuffed, bare LF made CRLF
    /// (Net::SMTP's `datasend`). Bytes are buffered up to 64 KiB before a write.
    pub fn datasend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.op(methods::datasend(bytes))
    }

    /// Ends the message with `.` and waits for the reply (Net::SMTP's `dataend`).
    pub fn dataend(&mut self) -> Result<Reply, Error> {
        self.op(methods::dataend())
    }

    /// Sends DATA and, on 354, returns a writer for the message (Net::SMTP's `datafh`): a
    /// [`std::io::Write`] that dot-stuffs as it goes and writes 64 KiB at a time, ended by
    /// [`DataWriter::finish`], which returns the final reply.
    ///
    /// MAIL and at least one RCPT must have been accepted (since the last end of data,
    /// RSET, EHLO or [`send`](Self::send)): else [`Misuse::NoMailTransaction`](crate::Misuse::NoMailTransaction)
    /// with nothing sent. A writer dropped before `finish` abandons the message: the
    /// connection is dropped without the end of data, and every later call is
    /// [`Misuse::DataAbandoned`](crate::Misuse::DataAbandoned).
    ///
    /// ```no_run
    /// use std::io::Write;
    /// use smtp_client::{ClientConfig, SmtpClient, TlsMode};
    /// use smtp_proto::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};
    ///
    /// let config = ClientConfig::new("mail.example.test").tls_mode(TlsMode::StartTlsRequired);
    /// let mut smtp = SmtpClient::connect(config)?;
    /// let alice = ReversePath::Mailbox(Mailbox::new("alice@example.test")?);
    /// smtp.mail(&alice, &MailParams::default())?;
    /// smtp.rcpt(&ForwardPath::new("bob@example.test")?, &RcptParams::default())?;
    /// let mut message = smtp.data_writer()?;
    /// write!(message, "Subject: report\r\n\r\n")?;
    /// for line in ["first", ".a line with a leading dot", "last"] {
    ///     writeln!(message, "{line}")?; // stuffed, and each LF made CRLF
    /// }
    /// std::io::copy(&mut std::fs::File::open("report.txt")?, &mut message)?;
    /// let reply = message.finish()?; // a refusal is Error::Refused with the reply
    /// println!("queued: {reply}");
    /// smtp.quit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn data_writer(&mut self) -> Result<DataWriter<'_>, Error> {
        self.op(methods::data_stream())?;
        Ok(DataWriter::new(self))
    }

    /// The end of a DATA writer's message, and its final reply.
    pub(crate) fn finish_stream(&mut self) -> Result<Reply, Error> {
        self.op(methods::stream_end())
    }

    /// Sends one `BDAT` chunk (RFC 3030; Net::SMTP's `bdat`).
    pub fn bdat(&mut self, chunk: &[u8]) -> Result<Reply, Error> {
        self.op(methods::bdat(chunk, false))
    }

    /// Sends the last `BDAT ... LAST` chunk (Net::SMTP's `bdatlast`).
    pub fn bdat_last(&mut self, chunk: &[u8]) -> Result<Reply, Error> {
        self.op(methods::bdat(chunk, true))
    }

    /// Sends RSET (Net::SMTP's `reset`).
    pub fn reset(&mut self) -> Result<Reply, Error> {
        self.op(methods::reset())
    }

    /// Sends VRFY (Net::SMTP's `verify`). Servers often answer 252: the reply is returned
    /// whatever its code.
    pub fn verify(&mut self, address: &Text) -> Result<Reply, Error> {
        self.op(methods::verify(address))
    }

    /// Sends EXPN (Net::SMTP's `expand`); the reply is returned whatever its code.
    pub fn expand(&mut self, list: &Text) -> Result<Reply, Error> {
        self.op(methods::expand(list))
    }

    /// Sends HELP (Net::SMTP's `help`); the reply is returned whatever its code.
    pub fn help(&mut self, topic: Option<&Text>) -> Result<Reply, Error> {
        self.op(methods::help(topic))
    }

    /// Sends NOOP (Net::SMTP's `noop`).
    pub fn noop(&mut self) -> Result<Reply, Error> {
        self.op(methods::noop())
    }

    /// Sends ETRN (RFC 1985; Net::SMTP's `etrn`).
    pub fn etrn(&mut self, node: &Text) -> Result<Reply, Error> {
        self.op(methods::etrn(node))
    }

    /// Sends `SEND FROM:<from>` (RFC 821 4.1.1; Net::SMTP's `send`): a transaction whose
    /// message is shown on the recipients' terminals. RFC 5321 dropped it and most servers
    /// answer 502, which is [`Error::Refused`] with the reply.
    pub fn send_to_terminal(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.op(methods::rfc821_transaction(Command::Send { from }))
    }

    /// Sends `SOML FROM:<from>` (RFC 821; Net::SMTP's `send_or_mail`): to the terminal, or
    /// the mailbox when the recipient is not logged in.
    pub fn send_or_mail(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.op(methods::rfc821_transaction(Command::Soml { from }))
    }

    /// Sends `SAML FROM:<from>` (RFC 821; Net::SMTP's `send_and_mail`): to the terminal and
    /// the mailbox.
    pub fn send_and_mail(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.op(methods::rfc821_transaction(Command::Saml { from }))
    }

    /// Sends one command line and returns the server's reply whatever its code (Net::Cmd's
    /// `command` + `response`). Secret commands (AUTH payloads) are masked in the
    /// transcript and in errors. EHLO, HELO and STARTTLS must go through
    /// [`hello`](Self::hello) and [`starttls`](Self::starttls).
    pub fn command(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
        self.op(methods::command(*command))
    }

    /// Sends QUIT and closes the connection (Net::SMTP's `quit`). The reply is `None` when the
    /// server closed without one.
    pub fn quit(&mut self) -> Result<Option<Reply>, Error> {
        self.op(methods::quit())
    }

    // ----- One-call send -----------------------------------------------------------------

    /// Sends one message: MAIL, RCPT for each recipient (refused ones reported, the rest
    /// kept), then the body streamed from `message` in 64 KiB chunks with constant memory,
    /// with DATA (dot-stuffed) or BDAT.
    ///
    /// - PIPELINING, when offered: MAIL, every RCPT and DATA go out in one write; the last
    ///   chunk and the final `.` in one write.
    /// - CHUNKING when offered and asked for ([`Envelope::prefer_chunking`]), or for
    ///   BINARYMIME.
    /// - SIZE: a declared size ([`Envelope::size`]) over the server's limit fails before
    ///   anything is sent.
    /// - SMTPUTF8 for non-ASCII addresses and 8BITMIME for 8-bit bodies are added when
    ///   offered, and are an [`Error::ExtensionMissing`] when not. Without SMTPUTF8 a
    ///   domain in Unicode is sent as its IDNA A-labels when the local part is ASCII (the
    ///   report shows that form); an IDNA failure is [`Error::InvalidInput`]. `BODY=8BITMIME` is also
    ///   declared, when offered, for a body longer than one chunk (its 8-bit content is not
    ///   known yet); when 8BITMIME is not offered and a later chunk turns out 8-bit, the
    ///   connection is dropped before the end of data so nothing is delivered.
    /// - A refusal after MAIL was accepted is followed by RSET, so the connection stays
    ///   usable.
    pub fn send(
        &mut self,
        envelope: &Envelope,
        mut message: impl Read,
    ) -> Result<SendReport, Error> {
        self.run(methods::send(envelope), &mut OneBody(&mut message))
    }

    /// Sends many messages over this connection, each handed to `on_done` as it ends, in
    /// order, with exactly one [`MessageState`](crate::MessageState): accepted, refused,
    /// not sent (safe to send again) or unknown (the end of data went out and no reply
    /// came). Bodies are streamed from each reader, with constant memory whatever the
    /// number of messages.
    ///
    /// With PIPELINING, each message's MAIL, RCPT and DATA go out in the same write as the
    /// previous one's end of data: one round trip per message. A refusal ends that message
    /// only (after RSET where RFC 5321 needs it). When the connection fails, the messages
    /// still given are each reported not sent, and the summary carries the error.
    ///
    /// ```no_run
    /// use smtp_client::{ClientConfig, Envelope, MessageState, SmtpClient, TlsMode};
    /// use smtp_proto::{ForwardPath, Mailbox, ReversePath};
    ///
    /// let mut client = SmtpClient::connect(ClientConfig::new("mx.example.test").tls_mode(TlsMode::None))?;
    /// let from = ReversePath::Mailbox(Mailbox::new("news@example.test")?);
    /// let messages = (0..1000).map(|i| {
    ///     let to = ForwardPath::new(&format!("reader{i}@example.test")).unwrap();
    ///     let body = format!("Subject: issue {i}\r\n\r\nHello\r\n").into_bytes();
    ///     (Envelope::new(from.clone(), [to]), std::io::Cursor::new(body))
    /// });
    /// let summary = client.send_batch(messages, |done| {
    ///     if !done.state.is_accepted() {
    ///         eprintln!("message {}: {:?}", done.index, done.state);
    ///     }
    /// })?;
    /// println!("{} accepted, {} to send again", summary.accepted, summary.not_sent);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_batch<R: Read>(
        &mut self,
        messages: impl IntoIterator<Item = (Envelope, R)>,
        on_done: impl FnMut(MessageResult),
    ) -> Result<BatchSummary, Error> {
        let mut feed = Messages::new(messages.into_iter(), on_done);
        self.run(methods::batch(BATCH_WINDOW, false), &mut feed)
    }

    /// [`send_batch`](Self::send_batch) for messages that are ready without waiting (in
    /// memory, or a queue that never blocks): each message's end of data leaves in the
    /// same write as the next message's MAIL, RCPT and DATA, which a server then answers in
    /// one write. An iterator that waits for its next item would hold the previous end of
    /// data meanwhile: use `send_batch` for those.
    pub fn send_batch_ready<R: Read>(
        &mut self,
        messages: impl IntoIterator<Item = (Envelope, R)>,
        on_done: impl FnMut(MessageResult),
    ) -> Result<BatchSummary, Error> {
        let mut feed = Messages::new(messages.into_iter(), on_done);
        self.run(methods::batch(BATCH_WINDOW, true), &mut feed)
    }

    /// Sends one message to every recipient, in as many transactions as the server needs:
    /// recipients past its limit for one transaction (`452 4.5.3`, RFC 5321 4.5.3.1.10) are
    /// sent the message again in a new transaction on this connection, the body read again
    /// from where it started (hence `Seek`). Each recipient ends accepted, refused (with
    /// its reply; temporary or not) or, when a later transaction fails, unsent.
    ///
    /// An error in the first transaction is returned as it is ([`send`](Self::send)'s).
    pub fn send_to_all(
        &mut self,
        envelope: &Envelope,
        mut message: impl Read + Seek,
    ) -> Result<Delivery, Error> {
        let start = message.stream_position().map_err(Error::Body)?;
        let mut plan = Resend::new(envelope);
        while let Some((envelope, again)) = plan.next() {
            let rewound = match again {
                true => message.seek(SeekFrom::Start(start)).map(drop),
                false => Ok(()),
            };
            let result = match rewound {
                Ok(()) => self.send(envelope, &mut message),
                Err(e) => Err(Error::Body(e)),
            };
            plan.record(result)?;
        }
        Ok(plan.finish())
    }
}

/// What a blocking operation reads its body from and, for a batch, takes its messages
/// from.
trait Source: Read + Feed {}

impl<T: Read + Feed> Source for T {}

// ----- Moving bytes ------------------------------------------------------------------------

impl Blocking {
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes),
            Stream::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()
            }
            #[cfg(unix)]
            Stream::Unix(s) => s.write_all(bytes),
            Stream::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Plain(s) => DeadlineIo {
                sock: s,
                deadline,
                read_timeout: &mut self.socket_read_timeout,
            }
            .read(buf),
            Stream::Tls(s) => {
                let s = &mut **s;
                let mut io = DeadlineIo {
                    sock: &mut s.sock,
                    deadline,
                    read_timeout: &mut self.socket_read_timeout,
                };
                rustls::Stream::new(&mut s.conn, &mut io).read(buf)
            }
            #[cfg(unix)]
            Stream::Unix(s) => DeadlineIo {
                sock: s,
                deadline,
                read_timeout: &mut self.socket_read_timeout,
            }
            .read(buf),
            Stream::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn handshake(&mut self, tls: TlsStart) -> Result<(), Error> {
        let mut tcp = match std::mem::replace(&mut self.stream, Stream::Closed) {
            Stream::Plain(tcp) => tcp,
            #[cfg(unix)]
            Stream::Unix(_) => {
                return Err(Error::Unsupported(
                    "TLS over a Unix-domain socket (set TlsMode::None)",
                ))
            }
            _ => return Err(Error::Misuse(crate::Misuse::AlreadyEncrypted)),
        };
        let mut conn = ClientConnection::new(tls.config, tls.name).map_err(TlsError::Handshake)?;
        let deadline = deadline_after(Instant::now(), tls.timeout);
        while conn.is_handshaking() {
            if Instant::now() >= deadline {
                return Err(handshake_timed_out(tls.timeout));
            }
            let mut io = DeadlineIo {
                sock: &mut tcp,
                deadline,
                read_timeout: &mut self.socket_read_timeout,
            };
            match conn.complete_io(&mut io) {
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(handshake_failed(e)),
            }
        }
        self.stream = Stream::Tls(Box::new(StreamOwned::new(conn, tcp)));
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        let tcp = match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
            #[cfg(unix)]
            Stream::Unix(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
                self.stream = Stream::Closed;
                return;
            }
            Stream::Closed => return,
        };
        let _ = tcp.shutdown(std::net::Shutdown::Both);
        self.stream = Stream::Closed;
    }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<SmtpClient>();
}
