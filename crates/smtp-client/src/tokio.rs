//! The async driver (feature `tokio`): the same [`Session`](crate::Session) as the blocking
//! client, the driver loop's steps run by tokio and TLS by tokio-rustls.
//!
//! [`AsyncSmtpClient`] has the blocking [`SmtpClient`](crate::SmtpClient)'s methods, each an
//! `async fn` with the same arguments, errors, limits and timeouts (tokio's clock).

use std::io::{self, SeekFrom};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
#[cfg(unix)]
use ::tokio::net::UnixStream;
use ::tokio::net::{TcpSocket, TcpStream};
use ::tokio::time::{timeout, timeout_at};
use smtp_proto::{
    Command, Domain, ForwardPath, MailParams, RcptParams, Reply, ReversePath, Text, Xclient,
    Xforward,
};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::accounting::{BatchSummary, MessageResult};
use crate::config::ClientConfig;
pub use crate::data_writer::AsyncDataWriter;
use crate::delivery::{Delivery, Resend};
use crate::driver::BATCH_WINDOW;
use crate::driver::{io_err, tcp_socket, DialStep, Dialer, DriverCore, Peer, Step, TlsStart};
use crate::envelope::{Envelope, RecipientsReport, SendReport};
use crate::error::Error;
use crate::feed::{Feed, Messages, OneBody};
use crate::methods::{self, Client, Op};
use crate::proxy::{ProxyConnect, ProxyStep};
use crate::tls::{handshake_failed, handshake_timed_out};

/// An async SMTP client connection over tokio: Net::SMTP, the same as
/// [`SmtpClient`](crate::SmtpClient) but every method that talks to the server is an
/// `async fn`.
///
/// Both clients run the same sans-IO [`Session`](crate::Session): replies, pipelining, STARTTLS, limits and
/// errors are identical; only the way bytes move differs. Timeouts use tokio's clock.
///
/// # Cancellation
///
/// Every future returned by this client may be dropped at any point (by `select!`,
/// `tokio::time::timeout`, a cancelled task). SMTP has no way to take back a command already
/// (partly) written or to skip its reply, so a dropped operation **poisons** the client:
///
/// - nothing more is written: a half-written command is never completed or reused, and a
///   reply that arrives late is never read as the answer to a later command;
/// - every later call that would talk to the server (including [`quit`](Self::quit))
///   returns [`Error::Misuse`] with [`Misuse::Cancelled`](crate::Misuse::Cancelled) ("a previous operation was cancelled mid-command; the
///   connection must be closed") and closes the socket;
/// - what was learnt before stays readable ([`banner`](Self::banner),
///   [`capabilities`](Self::capabilities), [`last_reply`](Self::last_reply));
///   [`is_poisoned`](Self::is_poisoned) tells this state apart.
///
/// A message whose `send` was dropped may or may not have been delivered: if the final `.`
/// reached the server before the drop, the server may have queued it. Drop the client and
/// connect again; use the client's own timeouts ([`Timeouts`](crate::Timeouts)) rather than an outer timeout
/// when the connection should stay usable after a slow reply is reported as an error.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use smtp_client::tokio::AsyncSmtpClient;
/// use smtp_client::{ClientConfig, Envelope, TlsConfig, TlsMode};
/// use smtp_proto::{ForwardPath, Mailbox, ReversePath};
///
/// let config = ClientConfig::new("mail.example.test")
///     .port(587)
///     .tls_mode(TlsMode::StartTlsRequired)
///     .tls(TlsConfig::webpki_roots());
/// let mut client = AsyncSmtpClient::connect(config).await?;
/// let envelope = Envelope::new(
///     ReversePath::Mailbox(Mailbox::new("alice@example.test")?),
///     [ForwardPath::new("bob@example.test")?],
/// );
/// // Any `AsyncRead` streams the body: a file, a socket, a byte slice.
/// let message = b"Subject: hi\r\n\r\nHello Bob\r\n";
/// let report = client.send(&envelope, &message[..]).await?;
/// println!("queued: {}", report.reply);
/// client.quit().await?;
/// # Ok(())
/// # }
/// ```
pub type AsyncSmtpClient = Client<Tokio>;

/// The async driver's half of an [`AsyncSmtpClient`]: the socket, and the write timeout.
pub struct Tokio {
    stream: Stream,
    pub(crate) write_timeout: Duration,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    #[cfg(unix)]
    Unix(UnixStream),
    Closed,
}

impl crate::methods::sealed::TlsSide for Tokio {
    fn tls(&self) -> Option<&rustls::ClientConnection> {
        match &self.stream {
            Stream::Tls(s) => Some(s.get_ref().1),
            _ => None,
        }
    }
}

impl std::fmt::Debug for AsyncSmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSmtpClient")
            .field("host", &self.core.host)
            .field("peer", &self.core.peer)
            .field("encrypted", &self.core.session.is_encrypted())
            .field("poisoned", &self.core.is_poisoned())
            .field("session", &self.core.session)
            .finish()
    }
}

/// Connects a TCP socket to `addr` within the connect timeout.
async fn connect_tcp(addr: SocketAddr, config: &ClientConfig) -> io::Result<TcpStream> {
    let socket = tcp_socket(addr, config)?;
    socket.set_nonblocking(true)?;
    let socket = TcpSocket::from_std_stream(socket.into());
    match timeout(config.timeouts.connect, socket.connect(addr)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timed out",
        )),
    }
}

impl AsyncSmtpClient {
    /// Connects per `config`: each host in turn, each of its addresses (IPv4 and IPv6) in
    /// turn; then the greeting, EHLO and STARTTLS as configured. The order and the error
    /// when every host fails are those of [`SmtpClient::connect`](crate::SmtpClient::connect).
    ///
    /// With [`ClientConfig::unix_socket`] it connects to that socket instead.
    pub async fn connect(config: ClientConfig) -> Result<AsyncSmtpClient, Error> {
        #[cfg(unix)]
        if let Some(path) = &config.unix_socket {
            crate::driver::check_unix_socket(&config)?;
            let stream = UnixStream::connect(path)
                .await
                .map_err(|error| Error::Connect {
                    attempts: vec![crate::error::ConnectAttempt {
                        host: format!("unix:{}", path.display()),
                        address: None,
                        error,
                    }],
                })?;
            return AsyncSmtpClient::open_unix(stream, &config).await;
        }
        let mut dial = Dialer::new(&config);
        loop {
            match dial.next_step() {
                DialStep::Resolve { name, port } => {
                    dial.resolved(::tokio::net::lookup_host((name.as_str(), port)).await);
                }
                DialStep::Connect { host, addr } => match connect_tcp(addr, &config).await {
                    Err(error) => dial.connect_failed(addr, error),
                    Ok(tcp) => {
                        match AsyncSmtpClient::open_tunnel(tcp, &host, addr, &config).await {
                            Ok(client) => return Ok(client),
                            Err(error) => dial.session_failed(addr, error),
                        }
                    }
                },
                DialStep::Failed(error) => return Err(error),
            }
        }
    }

    /// Runs the proxy handshake when `config` has a proxy (`tcp` is connected to it), then
    /// the session over the tunnel.
    async fn open_tunnel(
        mut tcp: TcpStream,
        host: &str,
        peer: SocketAddr,
        config: &ClientConfig,
    ) -> Result<AsyncSmtpClient, Error> {
        let early = match &config.proxy {
            None => Vec::new(),
            Some(proxy) => {
                let mut hs = ProxyConnect::new(proxy, config, host)?;
                loop {
                    match hs.next_step() {
                        ProxyStep::Write(bytes) => {
                            let result =
                                match timeout(config.timeouts.write, tcp.write_all(bytes)).await {
                                    Ok(result) => result,
                                    Err(_) => Err(io::ErrorKind::TimedOut.into()),
                                };
                            hs.written(result);
                        }
                        ProxyStep::Read { buf, deadline } => {
                            let deadline = ::tokio::time::Instant::from_std(deadline);
                            let result = match timeout_at(deadline, tcp.read(buf)).await {
                                Ok(result) => result,
                                Err(_) => Err(io::ErrorKind::TimedOut.into()),
                            };
                            hs.read(result);
                        }
                        ProxyStep::Done(result) => break result?,
                    }
                }
            }
        };
        AsyncSmtpClient::open_with(tcp, host, peer, config, early).await
    }

    /// Runs a session over an already connected socket (for callers who connect themselves;
    /// no proxy handshake is run).
    pub async fn open(
        tcp: TcpStream,
        host: &str,
        peer: SocketAddr,
        config: &ClientConfig,
    ) -> Result<AsyncSmtpClient, Error> {
        AsyncSmtpClient::open_with(tcp, host, peer, config, Vec::new()).await
    }

    async fn open_with(
        tcp: TcpStream,
        host: &str,
        peer: SocketAddr,
        config: &ClientConfig,
        early: Vec<u8>,
    ) -> Result<AsyncSmtpClient, Error> {
        tcp.set_nodelay(true)
            .map_err(io_err("setting TCP_NODELAY"))?;
        let local = tcp
            .local_addr()
            .map_err(io_err("reading the local address"))?;
        let mut client = Client {
            core: DriverCore::new(config, host, Peer::Tcp(peer), Some(local))
                .with_early_input(early),
            io: Tokio {
                stream: Stream::Plain(tcp),
                write_timeout: config.timeouts.write,
            },
        };
        client.op(methods::open()).await?;
        Ok(client)
    }

    /// Runs a session over an already connected Unix-domain socket (for callers who connect
    /// themselves); `config`'s TLS mode must be [`TlsMode::None`](crate::TlsMode::None).
    #[cfg(unix)]
    pub async fn open_unix(
        stream: UnixStream,
        config: &ClientConfig,
    ) -> Result<AsyncSmtpClient, Error> {
        crate::driver::check_unix_socket(config)?;
        let path = config.unix_socket.clone().unwrap_or_default();
        let host = config.hosts.first().map_or("localhost", String::as_str);
        let mut client = Client {
            core: DriverCore::new(config, host, Peer::Unix(path), None),
            io: Tokio {
                stream: Stream::Unix(stream),
                write_timeout: config.timeouts.write,
            },
        };
        client.op(methods::open()).await?;
        Ok(client)
    }

    /// Replaces the timeouts given by the [`ClientConfig`] for what follows: the replies
    /// awaited from now on and each write (a reply already awaited keeps its deadline).
    /// A pool, for one, bounds the wait for QUIT's reply this way.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), smtp_client::Error> {
    /// # use std::time::Duration;
    /// # use smtp_client::{ClientConfig, Timeouts};
    /// use smtp_client::tokio::AsyncSmtpClient;
    /// let mut client = AsyncSmtpClient::connect(ClientConfig::new("mx.example.test")).await?;
    /// client.set_timeouts(Timeouts::uniform(Duration::from_secs(5)));
    /// client.quit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_timeouts(&mut self, timeouts: crate::Timeouts) {
        self.io.write_timeout = timeouts.write;
        self.core.set_timeouts(timeouts);
    }

    /// True when a future of this client was dropped before it finished: every call that
    /// talks to the server now fails, and the connection must be closed (see
    /// [Cancellation](Self#cancellation)).
    pub fn is_poisoned(&self) -> bool {
        self.core.is_poisoned()
    }

    // ----- The driver loop: the only place bytes move ---------------------------------

    /// Runs `op` to its end, reading the body (of `send`) from `body`. A future dropped
    /// before the end leaves the operation unfinished in the core, which then refuses every
    /// later one (see [Cancellation](Self#cancellation)).
    async fn run<T>(&mut self, op: Op<'_, T>, body: &mut dyn Source) -> Result<T, Error> {
        self.core.begin(op.start);
        loop {
            match self.core.next_step() {
                Step::Write(bytes) => {
                    let result = self.io.write(bytes).await;
                    self.core.written(result);
                }
                Step::Read { buf, deadline } => {
                    let result = self.io.read(buf, deadline).await;
                    self.core.read(result);
                }
                Step::ReadBody(buf) => {
                    let result = body.read(buf).await;
                    self.core.body_read(result);
                }
                Step::Handshake(tls) => {
                    let result = self.io.handshake(tls).await;
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
    async fn op<T>(&mut self, op: Op<'_, T>) -> Result<T, Error> {
        self.run(op, &mut OneBody(::tokio::io::empty())).await
    }

    // ----- Net::SMTP's methods that talk to the server (see `methods`) ----------------

    /// Sends EHLO (falling back to HELO on a 5xx) with `domain` or the configured name
    /// (Net::SMTP's `hello`). Forgets earlier capabilities.
    pub async fn hello(&mut self, domain: Option<&Domain>) -> Result<Reply, Error> {
        self.op(methods::hello(domain)).await
    }

    /// Upgrades the connection with STARTTLS, then sends EHLO again, forgetting everything
    /// learnt in clear (Net::SMTP's `starttls`). Returns the new EHLO reply.
    pub async fn starttls(&mut self) -> Result<Reply, Error> {
        self.op(methods::starttls()).await
    }

    /// Sends Postfix's XCLIENT, then EHLO after its new greeting; see
    /// [`SmtpClient::xclient`](crate::SmtpClient::xclient).
    pub async fn xclient(&mut self, attrs: &Xclient) -> Result<Reply, Error> {
        self.op(methods::xclient(attrs)).await
    }

    /// Sends Postfix's XFORWARD; see [`SmtpClient::xforward`](crate::SmtpClient::xforward).
    pub async fn xforward(&mut self, attrs: &Xforward) -> Result<Reply, Error> {
        self.op(methods::xforward(attrs)).await
    }

    /// Sends `MAIL FROM` (Net::SMTP's `mail`/`send`); a non-2xx reply is [`Error::Refused`].
    pub async fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Result<Reply, Error> {
        self.op(methods::mail(from, params)).await
    }

    /// Sends one `RCPT TO` (Net::SMTP's `to`/`recipient` without SkipBad).
    pub async fn rcpt(&mut self, to: &ForwardPath, params: &RcptParams) -> Result<Reply, Error> {
        self.op(methods::rcpt(to, params)).await
    }

    /// Sends `RCPT TO` for each recipient, pipelined when offered, with Net::SMTP's SkipBad
    /// semantics: refused recipients are reported and the good ones kept; an error only when
    /// all are refused.
    pub async fn recipients(
        &mut self,
        recipients: &[(ForwardPath, RcptParams)],
    ) -> Result<RecipientsReport, Error> {
        self.op(methods::recipients(recipients)).await
    }

    /// Sends DATA and waits for 354 (Net::SMTP's `data` without arguments).
    pub async fn data(&mut self) -> Result<Reply, Error> {
        self.op(methods::data()).await
    }

    /// Sends message bytes after [`data`](Self::data), dot-stuffed, bare LF made CRLF
    /// (Net::SMTP's `datasend`). Bytes are buffered up to 64 KiB before a write.
    pub async fn datasend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.op(methods::datasend(bytes)).await
    }

    /// Ends the message with `.` and waits for the reply (Net::SMTP's `dataend`).
    pub async fn dataend(&mut self) -> Result<Reply, Error> {
        self.op(methods::dataend()).await
    }

    /// Sends DATA and, on 354, returns a writer for the message (Net::SMTP's `datafh`):
    /// the blocking client's [`data_writer`](crate::SmtpClient::data_writer), the writer
    /// an [`AsyncWrite`] ([`AsyncDataWriter`]), ended by
    /// [`finish`](AsyncDataWriter::finish).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use smtp_client::tokio::AsyncSmtpClient;
    /// use smtp_client::{ClientConfig, TlsMode};
    /// use smtp_proto::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};
    /// use tokio::io::AsyncWriteExt;
    ///
    /// let config = ClientConfig::new("mail.example.test").tls_mode(TlsMode::StartTlsRequired);
    /// let mut smtp = AsyncSmtpClient::connect(config).await?;
    /// let alice = ReversePath::Mailbox(Mailbox::new("alice@example.test")?);
    /// smtp.mail(&alice, &MailParams::default()).await?;
    /// smtp.rcpt(&ForwardPath::new("bob@example.test")?, &RcptParams::default()).await?;
    /// let mut message = smtp.data_writer().await?;
    /// message.write_all(b"Subject: report\r\n\r\n").await?;
    /// // Any AsyncRead: a file, a socket, a child process's output.
    /// let mut body: &[u8] = b"line one\n.line two\n";
    /// tokio::io::copy(&mut body, &mut message).await?;
    /// let reply = message.finish().await?;
    /// println!("queued: {reply}");
    /// smtp.quit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn data_writer(&mut self) -> Result<AsyncDataWriter<'_>, Error> {
        self.op(methods::data_stream()).await?;
        Ok(AsyncDataWriter::new(self))
    }

    /// The end of a DATA writer's message, and its final reply.
    pub(crate) async fn finish_stream(&mut self) -> Result<Reply, Error> {
        self.op(methods::stream_end()).await
    }

    /// Sends one `BDAT` chunk (RFC 3030; Net::SMTP's `bdat`).
    pub async fn bdat(&mut self, chunk: &[u8]) -> Result<Reply, Error> {
        self.op(methods::bdat(chunk, false)).await
    }

    /// Sends the last `BDAT ... LAST` chunk (Net::SMTP's `bdatlast`).
    pub async fn bdat_last(&mut self, chunk: &[u8]) -> Result<Reply, Error> {
        self.op(methods::bdat(chunk, true)).await
    }

    /// Sends RSET (Net::SMTP's `reset`).
    pub async fn reset(&mut self) -> Result<Reply, Error> {
        self.op(methods::reset()).await
    }

    /// Sends VRFY (Net::SMTP's `verify`). Servers often answer 252: the reply is returned
    /// whatever its code.
    pub async fn verify(&mut self, address: &Text) -> Result<Reply, Error> {
        self.op(methods::verify(address)).await
    }

    /// Sends EXPN (Net::SMTP's `expand`); the reply is returned whatever its code.
    pub async fn expand(&mut self, list: &Text) -> Result<Reply, Error> {
        self.op(methods::expand(list)).await
    }

    /// Sends HELP (Net::SMTP's `help`); the reply is returned whatever its code.
    pub async fn help(&mut self, topic: Option<&Text>) -> Result<Reply, Error> {
        self.op(methods::help(topic)).await
    }

    /// Sends NOOP (Net::SMTP's `noop`).
    pub async fn noop(&mut self) -> Result<Reply, Error> {
        self.op(methods::noop()).await
    }

    /// Sends ETRN (RFC 1985; Net::SMTP's `etrn`).
    pub async fn etrn(&mut self, node: &Text) -> Result<Reply, Error> {
        self.op(methods::etrn(node)).await
    }

    /// Sends `SEND FROM:<from>` (RFC 821 4.1.1; Net::SMTP's `send`): a transaction whose
    /// message is shown on the recipients' terminals. RFC 5321 dropped it and most servers
    /// answer 502, which is [`Error::Refused`] with the reply.
    pub async fn send_to_terminal(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.op(methods::rfc821_transaction(Command::Send { from }))
            .await
    }

    /// Sends `SOML FROM:<from>` (RFC 821; Net::SMTP's `send_or_mail`): to the terminal, or
    /// the mailbox when the recipient is not logged in.
    pub async fn send_or_mail(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.op(methods::rfc821_transaction(Command::Soml { from }))
            .await
    }

    /// Sends `SAML FROM:<from>` (RFC 821; Net::SMTP's `send_and_mail`): to the terminal and
    /// the mailbox.
    pub async fn send_and_mail(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.op(methods::rfc821_transaction(Command::Saml { from }))
            .await
    }

    /// Sends one command line and returns the server's reply whatever its code (Net::Cmd's
    /// `command` + `response`). Secret commands (AUTH payloads) are masked in the
    /// transcript and in errors. EHLO, HELO and STARTTLS must go through
    /// [`hello`](Self::hello) and [`starttls`](Self::starttls).
    pub async fn command(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
        self.op(methods::command(*command)).await
    }

    /// Sends QUIT and closes the connection (Net::SMTP's `quit`). The reply is `None` when the
    /// server closed without one.
    pub async fn quit(&mut self) -> Result<Option<Reply>, Error> {
        self.op(methods::quit()).await
    }

    /// Sends one message, its body streamed from any [`AsyncRead`] in 64 KiB chunks with
    /// constant memory: the same rules as [`SmtpClient::send`](crate::SmtpClient::send)
    /// (PIPELINING, CHUNKING, SIZE, SMTPUTF8, 8BITMIME, RSET after a refusal).
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        mut message: impl AsyncRead + Unpin + Send,
    ) -> Result<SendReport, Error> {
        self.run(methods::send(envelope), &mut OneBody(&mut message))
            .await
    }

    /// Sends many messages over this connection, each handed to `on_done` as it ends: the
    /// blocking client's [`send_batch`](crate::SmtpClient::send_batch), one round trip per
    /// message with PIPELINING, each message ending in exactly one
    /// [`MessageState`](crate::MessageState).
    pub async fn send_batch<I, R, F>(
        &mut self,
        messages: I,
        on_done: F,
    ) -> Result<BatchSummary, Error>
    where
        I: IntoIterator<Item = (Envelope, R)>,
        I::IntoIter: Unpin + Send,
        R: AsyncRead + Unpin + Send,
        F: FnMut(MessageResult) + Unpin + Send,
    {
        let mut feed = Messages::new(messages.into_iter(), on_done);
        self.run(methods::batch(BATCH_WINDOW, false), &mut feed)
            .await
    }

    /// The blocking client's [`send_batch_ready`](crate::SmtpClient::send_batch_ready):
    /// messages ready without waiting, each end of data in one write with the next
    /// message's commands.
    pub async fn send_batch_ready<I, R, F>(
        &mut self,
        messages: I,
        on_done: F,
    ) -> Result<BatchSummary, Error>
    where
        I: IntoIterator<Item = (Envelope, R)>,
        I::IntoIter: Unpin + Send,
        R: AsyncRead + Unpin + Send,
        F: FnMut(MessageResult) + Unpin + Send,
    {
        let mut feed = Messages::new(messages.into_iter(), on_done);
        self.run(methods::batch(BATCH_WINDOW, true), &mut feed)
            .await
    }

    /// Sends one message to every recipient, in as many transactions as the server needs
    /// (recipients past its limit, `452 4.5.3`, get the message in a new transaction): the
    /// blocking client's [`send_to_all`](crate::SmtpClient::send_to_all), the body read
    /// again from where it started for each transaction after the first.
    pub async fn send_to_all(
        &mut self,
        envelope: &Envelope,
        mut message: impl AsyncRead + AsyncSeek + Unpin + Send,
    ) -> Result<Delivery, Error> {
        let start = message.stream_position().await.map_err(Error::Body)?;
        let mut plan = Resend::new(envelope);
        while let Some((envelope, again)) = plan.next() {
            let rewound = match again {
                true => message.seek(SeekFrom::Start(start)).await.map(drop),
                false => Ok(()),
            };
            let result = match rewound {
                Ok(()) => self.send(envelope, &mut message).await,
                Err(e) => Err(Error::Body(e)),
            };
            plan.record(result)?;
        }
        Ok(plan.finish())
    }
}

/// What an async operation reads its body from and, for a batch, takes its messages from.
trait Source: AsyncRead + Unpin + Send + Feed {}

impl<T: AsyncRead + Unpin + Send + Feed> Source for T {}

// ----- Moving bytes ------------------------------------------------------------------------

impl Tokio {
    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            match &mut self.stream {
                Stream::Plain(s) => s.write_all(bytes).await,
                Stream::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
                #[cfg(unix)]
                Stream::Unix(s) => s.write_all(bytes).await,
                Stream::Closed => Err(io::ErrorKind::NotConnected.into()),
            }
        };
        match timeout(self.write_timeout, write).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// One write, as far as the socket takes (for a DATA writer's `poll_write`).
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, bytes),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, bytes),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, bytes),
            Stream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    /// Flushes what the connection holds (TLS records).
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    async fn read(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let read = async {
            match &mut self.stream {
                Stream::Plain(s) => s.read(buf).await,
                Stream::Tls(s) => s.read(buf).await,
                #[cfg(unix)]
                Stream::Unix(s) => s.read(buf).await,
                Stream::Closed => Err(io::ErrorKind::NotConnected.into()),
            }
        };
        let deadline = ::tokio::time::Instant::from_std(deadline);
        match timeout_at(deadline, read).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut)),
        }
    }

    async fn handshake(&mut self, tls: TlsStart) -> Result<(), Error> {
        let tcp = match std::mem::replace(&mut self.stream, Stream::Closed) {
            Stream::Plain(tcp) => tcp,
            #[cfg(unix)]
            Stream::Unix(_) => {
                return Err(Error::Unsupported(
                    "TLS over a Unix-domain socket (set TlsMode::None)",
                ))
            }
            _ => return Err(Error::Misuse(crate::Misuse::AlreadyEncrypted)),
        };
        let connect = TlsConnector::from(tls.config).connect(tls.name, tcp);
        let stream = match timeout(tls.timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(handshake_failed(e)),
            Err(_) => return Err(handshake_timed_out(tls.timeout)),
        };
        self.stream = Stream::Tls(Box::new(stream));
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        // Dropping the stream closes the socket.
        self.stream = Stream::Closed;
    }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>(_: &T) {}
    fn futures_are_send(c: &mut AsyncSmtpClient, e: &Envelope) {
        is_send(&c.send(e, &b""[..]));
        is_send(&c.noop());
    }
    let _ = futures_are_send;
}
