//! The async driver (feature `tokio`): the same [`Session`] as the blocking client, with
//! bytes moved by tokio and TLS by tokio-rustls.
//!
//! [`AsyncSmtpClient`] has the blocking [`SmtpClient`](crate::SmtpClient)'s methods, each an
//! `async fn` with the same arguments, errors, limits and timeouts (tokio's clock).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use ::tokio::net::{TcpSocket, TcpStream};
use ::tokio::time::{timeout, timeout_at};
use smtp_proto::{
    Capabilities, Command, Domain, ForwardPath, MailParams, RcptParams, Reply, ReversePath, Text,
};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::ClientConfig;
use crate::driver::{
    handle_read, into_closed, into_sent, new_session, read_deadline, tcp_socket, BodyChunks,
    DialStep, Dialer, Handshake, DATASEND_FLUSH, READ_BUF,
};
use crate::envelope::{Envelope, RecipientsReport, SendReport};
use crate::error::Error;
use crate::methods::net_smtp_methods;
use crate::session::{Event, Expect, Outcome, Session};
use crate::timeouts::Timeouts;
use crate::tls::{handshake_failed, handshake_timed_out, TlsConfig, TlsMode};

/// The error every call returns once a future of this client was dropped before it finished.
const CANCELLED: Error = Error::InvalidState(
    "a previous operation was cancelled mid-command; the connection must be closed",
);

enum Connection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Closed,
}

/// An async SMTP client connection over tokio: Net::SMTP, the same as
/// [`SmtpClient`](crate::SmtpClient) but every method that talks to the server is an
/// `async fn`.
///
/// Both clients run the same sans-IO [`Session`]: replies, pipelining, STARTTLS, limits and
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
///   returns [`Error::InvalidState`] ("a previous operation was cancelled mid-command; the
///   connection must be closed") and closes the socket;
/// - what was learnt before stays readable ([`banner`](Self::banner),
///   [`capabilities`](Self::capabilities), [`last_reply`](Self::last_reply));
///   [`is_poisoned`](Self::is_poisoned) tells this state apart.
///
/// A message whose `send` was dropped may or may not have been delivered: if the final `.`
/// reached the server before the drop, the server may have queued it. Drop the client and
/// connect again; use the client's own timeouts ([`Timeouts`]) rather than an outer timeout
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
pub struct AsyncSmtpClient {
    session: Session,
    conn: Connection,
    host: String,
    peer: SocketAddr,
    tls: TlsConfig,
    timeouts: Timeouts,
    buf: Box<[u8]>,
    /// Set while an operation runs; still set when a call starts means the previous
    /// operation's future was dropped.
    busy: bool,
}

impl std::fmt::Debug for AsyncSmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSmtpClient")
            .field("host", &self.host)
            .field("peer", &self.peer)
            .field("encrypted", &self.session.is_encrypted())
            .field("poisoned", &self.busy)
            .field("session", &self.session)
            .finish()
    }
}

fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
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
    pub async fn connect(config: ClientConfig) -> Result<AsyncSmtpClient, Error> {
        let mut dial = Dialer::new(&config);
        loop {
            match dial.next_step() {
                DialStep::Resolve { name, port } => {
                    dial.resolved(::tokio::net::lookup_host((name.as_str(), port)).await);
                }
                DialStep::Connect { host, addr } => match connect_tcp(addr, &config).await {
                    Err(error) => dial.connect_failed(addr, error),
                    Ok(tcp) => match AsyncSmtpClient::open(tcp, &host, addr, &config).await {
                        Ok(client) => return Ok(client),
                        Err(error) => dial.session_failed(addr, error),
                    },
                },
                DialStep::Failed(error) => return Err(error),
            }
        }
    }

    /// Runs a session over an already connected socket (for callers who connect themselves).
    pub async fn open(
        tcp: TcpStream,
        host: &str,
        peer: SocketAddr,
        config: &ClientConfig,
    ) -> Result<AsyncSmtpClient, Error> {
        tcp.set_nodelay(true)
            .map_err(io_err("setting TCP_NODELAY"))?;
        let local = tcp
            .local_addr()
            .map_err(io_err("reading the local address"))?;
        let mut client = AsyncSmtpClient {
            session: new_session(config, local),
            conn: Connection::Plain(tcp),
            host: host.to_owned(),
            peer,
            tls: config.tls.clone(),
            timeouts: config.timeouts,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            busy: false,
        };
        if config.tls_mode == TlsMode::Implicit {
            client.handshake(Handshake::Implicit).await?;
        }
        client.session.start_open(Instant::now())?;
        client.run(None).await?;
        Ok(client)
    }

    /// True when a future of this client was dropped before it finished: every call that
    /// talks to the server now fails, and the connection must be closed (see
    /// [Cancellation](Self#cancellation)).
    pub fn is_poisoned(&self) -> bool {
        self.busy
    }

    // ----- Cancellation guard ----------------------------------------------------------

    /// Marks an operation as started; refuses (and closes the connection) when the previous
    /// one never finished because its future was dropped.
    fn enter(&mut self) -> Result<(), Error> {
        if self.busy {
            self.session.abort();
            self.conn = Connection::Closed;
            return Err(CANCELLED);
        }
        self.busy = true;
        Ok(())
    }

    // ----- The driver loop: the only place bytes move ---------------------------------

    async fn run(
        &mut self,
        mut body: Option<(&mut (dyn AsyncRead + Unpin + Send), &mut BodyChunks)>,
    ) -> Result<Outcome, Error> {
        loop {
            let event = match self.session.poll(Instant::now()) {
                Ok(event) => event,
                Err(err) => {
                    if self.session.is_broken() {
                        self.close();
                    }
                    return Err(err);
                }
            };
            if let Err(err) = self.flush().await {
                return Err(self.fail(err));
            }
            match event {
                Event::Done(outcome) => {
                    if self.session.is_closed() {
                        self.close();
                    }
                    return Ok(outcome);
                }
                Event::NeedInput => {
                    if let Err(err) = self.read_input().await {
                        return Err(self.fail(err));
                    }
                }
                Event::NeedBody => {
                    let Some((reader, chunks)) = body.as_mut() else {
                        return Err(self.fail(Error::InvalidState("no body to send")));
                    };
                    while let Some(spare) = chunks.spare() {
                        let read = reader.read(spare).await;
                        if let Err(err) = chunks.advance(read) {
                            return Err(self.fail(err));
                        }
                    }
                    let (chunk, last) = chunks.chunk();
                    if let Err(err) = self.session.push_body(chunk, last, Instant::now()) {
                        if self.session.is_broken() {
                            self.close();
                        }
                        return Err(err);
                    }
                    chunks.consumed();
                }
                Event::StartTls => {
                    if let Err(err) = self.handshake(Handshake::StartTls).await {
                        return Err(self.fail(err));
                    }
                    self.session.tls_established(Instant::now())?;
                }
            }
        }
    }

    /// A driver-level failure: the connection is dropped and the session refuses more work.
    fn fail(&mut self, err: Error) -> Error {
        self.session.abort();
        self.close();
        err
    }

    fn close(&mut self) {
        // Dropping the stream closes the socket.
        self.conn = Connection::Closed;
    }

    async fn flush(&mut self) -> Result<(), Error> {
        let out = self.session.output();
        if out.is_empty() {
            return Ok(());
        }
        let n = out.len();
        let write = async {
            match &mut self.conn {
                Connection::Plain(s) => s.write_all(out).await,
                Connection::Tls(s) => {
                    s.write_all(out).await?;
                    s.flush().await
                }
                Connection::Closed => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the connection is closed",
                )),
            }
        };
        match timeout(self.timeouts.write, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotConnected => {
                return Err(Error::InvalidState("the connection is closed"));
            }
            Ok(Err(source)) => {
                return Err(Error::Io {
                    op: "writing".to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(Error::Io {
                    op: "writing".to_owned(),
                    source: io::Error::new(io::ErrorKind::TimedOut, "write timed out"),
                })
            }
        }
        self.session.consume_output(n);
        Ok(())
    }

    async fn read_input(&mut self) -> Result<(), Error> {
        let Some(deadline) = read_deadline(&mut self.session, &self.timeouts) else {
            return Ok(());
        };
        let deadline = ::tokio::time::Instant::from_std(deadline);
        let read = async {
            match &mut self.conn {
                Connection::Plain(s) => s.read(&mut self.buf).await,
                Connection::Tls(s) => s.read(&mut self.buf).await,
                Connection::Closed => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the connection is closed",
                )),
            }
        };
        let result = match timeout_at(deadline, read).await {
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotConnected => {
                return Err(Error::InvalidState("the connection is closed"));
            }
            Ok(result) => result,
            Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut)),
        };
        handle_read(&mut self.session, result, &self.buf)
    }

    async fn handshake(&mut self, kind: Handshake) -> Result<(), Error> {
        let Connection::Plain(tcp) = std::mem::replace(&mut self.conn, Connection::Closed) else {
            return Err(Error::InvalidState("TLS is already established"));
        };
        let config = self.tls.build()?;
        let name = self.tls.server_name_for(&self.host)?;
        let after: Duration = kind.timeout(&self.timeouts);
        let connect = TlsConnector::from(config).connect(name, tcp);
        let stream = match timeout(after, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(handshake_failed(e)),
            Err(_) => return Err(handshake_timed_out(after)),
        };
        self.conn = Connection::Tls(Box::new(stream));
        Ok(())
    }

    async fn op(
        &mut self,
        start: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<Outcome, Error> {
        self.enter()?;
        let result = match start(&mut self.session, Instant::now()) {
            Ok(()) => self.run(None).await,
            Err(err) => Err(err),
        };
        self.busy = false;
        result
    }

    // ----- Net::SMTP's methods -------------------------------------------------------

    net_smtp_methods!([async] [.await]);

    /// Sends message bytes after [`data`](Self::data), dot-stuffed, bare LF made CRLF
    /// (Net::SMTP's `datasend`). Bytes are buffered up to 64 KiB before a write.
    pub async fn datasend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.enter()?;
        let result = self.session.data_send(bytes);
        if result.is_ok() && self.session.output().len() >= DATASEND_FLUSH {
            if let Err(err) = self.flush().await {
                self.busy = false;
                return Err(self.fail(err));
            }
        }
        self.busy = false;
        result
    }

    /// Sends QUIT and closes the connection (Net::SMTP's `quit`). The reply is `None` when the
    /// server closed without one.
    pub async fn quit(&mut self) -> Result<Option<Reply>, Error> {
        let outcome = self.op(|s, now| s.start_quit(now)).await;
        self.close();
        into_closed(outcome?)
    }

    /// Sends one message, its body streamed from any [`AsyncRead`] in 64 KiB chunks with
    /// constant memory: the same rules as [`SmtpClient::send`](crate::SmtpClient::send)
    /// (PIPELINING, CHUNKING, SIZE, SMTPUTF8, 8BITMIME, RSET after a refusal).
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        mut message: impl AsyncRead + Unpin + Send,
    ) -> Result<SendReport, Error> {
        self.enter()?;
        let mut chunks = BodyChunks::new();
        let result = match self.session.start_send(envelope.clone(), Instant::now()) {
            Ok(()) => self.run(Some((&mut message, &mut chunks))).await,
            Err(err) => Err(err),
        };
        self.busy = false;
        into_sent(result?)
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
