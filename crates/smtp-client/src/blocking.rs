//! The blocking driver: moves bytes between a [`Session`] and a `TcpStream` (plain or rustls).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use smtp_proto::{
    Capabilities, Command, Domain, ForwardPath, MailParams, RcptParams, Reply, ReversePath, Text,
};

use crate::config::ClientConfig;
use crate::driver::{
    handle_read, into_closed, into_sent, is_timeout, new_session, read_deadline, tcp_socket,
    BodyChunks, DialStep, Dialer, Handshake, DATASEND_FLUSH, READ_BUF,
};
use crate::envelope::{Envelope, RecipientsReport, SendReport};
use crate::error::{Error, TlsError};
use crate::methods::net_smtp_methods;
use crate::session::{Event, Expect, Outcome, Session};
use crate::timeouts::{deadline_after, Timeouts};
use crate::tls::{handshake_failed, handshake_timed_out, TlsConfig, TlsMode};

enum Connection {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Closed,
}

impl Connection {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Connection::Plain(s) => Some(s),
            Connection::Tls(s) => Some(&s.sock),
            Connection::Closed => None,
        }
    }
}

/// A blocking SMTP client connection: Net::SMTP.
///
/// [`connect`](Self::connect) tries each host and each of its addresses in turn, reads the
/// greeting, sends EHLO (HELO when EHLO is refused) and upgrades with STARTTLS per the
/// [`TlsMode`]. Each method then sends its command(s) and waits for the reply; every reply is
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
pub struct SmtpClient {
    session: Session,
    conn: Connection,
    host: String,
    peer: SocketAddr,
    tls: TlsConfig,
    timeouts: Timeouts,
    buf: Box<[u8]>,
    /// The read timeout last set on the socket, so a read needs no `setsockopt` when it
    /// is unchanged (see [`READ_TICK`]).
    socket_read_timeout: Option<Duration>,
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
struct DeadlineIo<'a> {
    sock: &'a mut TcpStream,
    deadline: Instant,
    /// The client's record of the read timeout set on the socket.
    read_timeout: &'a mut Option<Duration>,
}

impl Read for DeadlineIo<'_> {
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

impl Write for DeadlineIo<'_> {
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
            .field("host", &self.host)
            .field("peer", &self.peer)
            .field("encrypted", &self.session.is_encrypted())
            .field("session", &self.session)
            .finish()
    }
}

fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
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
    pub fn connect(config: ClientConfig) -> Result<SmtpClient, Error> {
        let mut dial = Dialer::new(&config);
        loop {
            match dial.next_step() {
                DialStep::Resolve { name, port } => {
                    dial.resolved((name.as_str(), port).to_socket_addrs());
                }
                DialStep::Connect { host, addr } => match connect_tcp(addr, &config) {
                    Err(error) => dial.connect_failed(addr, error),
                    Ok(tcp) => match SmtpClient::open(tcp, &host, addr, &config) {
                        Ok(client) => return Ok(client),
                        Err(error) => dial.session_failed(addr, error),
                    },
                },
                DialStep::Failed(error) => return Err(error),
            }
        }
    }

    /// Runs a session over an already connected socket (for callers who connect themselves).
    pub fn open(
        tcp: TcpStream,
        host: &str,
        peer: SocketAddr,
        config: &ClientConfig,
    ) -> Result<SmtpClient, Error> {
        tcp.set_nodelay(true)
            .map_err(io_err("setting TCP_NODELAY"))?;
        let local = tcp
            .local_addr()
            .map_err(io_err("reading the local address"))?;
        let mut client = SmtpClient {
            session: new_session(config, local),
            conn: Connection::Plain(tcp),
            host: host.to_owned(),
            peer,
            tls: config.tls.clone(),
            timeouts: config.timeouts,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            socket_read_timeout: None,
        };
        if config.tls_mode == TlsMode::Implicit {
            client.handshake(Handshake::Implicit)?;
        }
        client.session.start_open(Instant::now())?;
        client.run(None)?;
        Ok(client)
    }

    // ----- The driver loop: the only place bytes move ---------------------------------

    fn run(
        &mut self,
        mut body: Option<(&mut dyn Read, &mut BodyChunks)>,
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
            if let Err(err) = self.flush() {
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
                    if let Err(err) = self.read_input() {
                        return Err(self.fail(err));
                    }
                }
                Event::NeedBody => {
                    let Some((reader, chunks)) = body.as_mut() else {
                        return Err(self.fail(Error::InvalidState("no body to send")));
                    };
                    while let Some(spare) = chunks.spare() {
                        let read = reader.read(spare);
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
                    if let Err(err) = self.handshake(Handshake::StartTls) {
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
        if let Some(tcp) = self.conn.tcp() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
        self.conn = Connection::Closed;
    }

    fn flush(&mut self) -> Result<(), Error> {
        let out = self.session.output();
        if out.is_empty() {
            return Ok(());
        }
        let n = out.len();
        match &mut self.conn {
            Connection::Plain(s) => s.write_all(out).map_err(io_err("writing"))?,
            Connection::Tls(s) => {
                s.write_all(out).map_err(io_err("writing"))?;
                s.flush().map_err(io_err("writing"))?;
            }
            Connection::Closed => {
                return Err(Error::InvalidState("the connection is closed"));
            }
        }
        self.session.consume_output(n);
        Ok(())
    }

    fn read_input(&mut self) -> Result<(), Error> {
        let Some(deadline) = read_deadline(&mut self.session, &self.timeouts) else {
            return Ok(());
        };
        let result = match &mut self.conn {
            Connection::Plain(s) => DeadlineIo {
                sock: s,
                deadline,
                read_timeout: &mut self.socket_read_timeout,
            }
            .read(&mut self.buf),
            Connection::Tls(s) => {
                let s = &mut **s;
                let mut io = DeadlineIo {
                    sock: &mut s.sock,
                    deadline,
                    read_timeout: &mut self.socket_read_timeout,
                };
                rustls::Stream::new(&mut s.conn, &mut io).read(&mut self.buf)
            }
            Connection::Closed => return Err(Error::InvalidState("the connection is closed")),
        };
        handle_read(&mut self.session, result, &self.buf)
    }

    fn handshake(&mut self, kind: Handshake) -> Result<(), Error> {
        let Connection::Plain(mut tcp) = std::mem::replace(&mut self.conn, Connection::Closed)
        else {
            return Err(Error::InvalidState("TLS is already established"));
        };
        let config = self.tls.build()?;
        let name = self.tls.server_name_for(&self.host)?;
        let mut conn = ClientConnection::new(config, name).map_err(TlsError::Handshake)?;
        let timeout = kind.timeout(&self.timeouts);
        let deadline = deadline_after(Instant::now(), timeout);
        while conn.is_handshaking() {
            if Instant::now() >= deadline {
                return Err(handshake_timed_out(timeout));
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
        self.conn = Connection::Tls(Box::new(StreamOwned::new(conn, tcp)));
        Ok(())
    }

    fn op(
        &mut self,
        start: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<Outcome, Error> {
        start(&mut self.session, Instant::now())?;
        self.run(None)
    }

    // ----- Net::SMTP's methods -------------------------------------------------------

    net_smtp_methods!([] []);

    /// Sends message bytes after [`data`](Self::data), dot-stuffed, bare LF made CRLF
    /// (Net::SMTP's `datasend`). Bytes are buffered up to 64 KiB before a write.
    pub fn datasend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.session.data_send(bytes)?;
        if self.session.output().len() >= DATASEND_FLUSH {
            if let Err(err) = self.flush() {
                return Err(self.fail(err));
            }
        }
        Ok(())
    }

    /// Sends QUIT and closes the connection (Net::SMTP's `quit`). The reply is `None` when the
    /// server closed without one.
    pub fn quit(&mut self) -> Result<Option<Reply>, Error> {
        let outcome = self.op(|s, now| s.start_quit(now));
        self.close();
        into_closed(outcome?)
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
    ///   offered, and are an [`Error::ExtensionMissing`] when not. `BODY=8BITMIME` is also
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
        let mut chunks = BodyChunks::new();
        self.session.start_send(envelope.clone(), Instant::now())?;
        into_sent(self.run(Some((&mut message, &mut chunks)))?)
    }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<SmtpClient>();
}
