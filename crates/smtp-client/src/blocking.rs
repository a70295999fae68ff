//! The blocking driver: moves bytes between a [`Session`] and a `TcpStream` (plain or rustls).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use smtp_proto::{
    Capabilities, Command, Domain, ForwardPath, MailParams, RcptParams, Reply, ReversePath, Text,
};

use crate::config::ClientConfig;
use crate::envelope::{Envelope, RecipientsReport, SendReport};
use crate::error::{ConnectAttempt, Error, TlsError};
use crate::session::{Event, Expect, Outcome, Session, SessionConfig, StartTlsPolicy};
use crate::timeouts::Timeouts;
use crate::tls::{TlsConfig, TlsMode};

/// Size of each chunk of the body read from the caller and pushed into the session.
pub const BODY_CHUNK: usize = 64 * 1024;

/// Above this many buffered bytes, [`SmtpClient::datasend`] writes them out.
const DATASEND_FLUSH: usize = 64 * 1024;

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

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The EHLO name when none is configured: the host name if it is a fully qualified domain,
/// else the local address as an address literal (RFC 5321 4.1.4).
fn default_client_id(local: SocketAddr) -> Domain {
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

#[cold]
fn unreachable_domain() -> Domain {
    // Domain::new accepts "localhost"; this is only reached if both literals were refused.
    Domain::new("localhost").expect("\"localhost\" is a valid domain")
}

fn connect_tcp(addr: SocketAddr, config: &ClientConfig) -> io::Result<TcpStream> {
    use socket2::{Domain as SockDomain, Protocol, Socket, Type};
    let socket = Socket::new(
        SockDomain::for_address(addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // Pipelined batches and the end of data go out at once: never wait for delayed ACKs.
    socket.set_nodelay(true)?;
    if config.local_addr.is_some() || config.local_port.is_some() {
        let ip = match (config.local_addr, addr) {
            (Some(ip), _) => ip,
            (None, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (None, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        if ip.is_ipv4() != addr.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the local address is not of the same family as the server's",
            ));
        }
        socket.bind(&SocketAddr::new(ip, config.local_port.unwrap_or(0)).into())?;
    }
    socket.connect_timeout(&addr.into(), config.timeouts.connect)?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(config.timeouts.write))?;
    Ok(stream)
}

fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    Ok((bare, port).to_socket_addrs()?.collect())
}

impl SmtpClient {
    /// Connects per `config`: each host in turn, each of its addresses (IPv4 and IPv6) in
    /// turn; then the greeting, EHLO and STARTTLS as configured.
    ///
    /// When a host accepts the TCP connection but the session fails (bad greeting, TLS
    /// required but not offered...), the next host is tried; the last such error is returned.
    pub fn connect(config: ClientConfig) -> Result<SmtpClient, Error> {
        let port = config.effective_port();
        let mut attempts = Vec::new();
        let mut last_error = None;
        'hosts: for host in &config.hosts {
            let addrs = match resolve(host, port) {
                Ok(addrs) => addrs,
                Err(error) => {
                    attempts.push(ConnectAttempt {
                        host: host.clone(),
                        address: None,
                        error,
                    });
                    continue;
                }
            };
            for addr in addrs {
                let tcp = match connect_tcp(addr, &config) {
                    Ok(tcp) => tcp,
                    Err(error) => {
                        attempts.push(ConnectAttempt {
                            host: host.clone(),
                            address: Some(addr),
                            error,
                        });
                        continue;
                    }
                };
                match SmtpClient::open(tcp, host, addr, &config) {
                    Ok(client) => return Ok(client),
                    Err(err) => {
                        tracing::debug!(host = %host, %addr, error = %err, "SMTP session failed");
                        last_error = Some(err);
                        continue 'hosts;
                    }
                }
            }
        }
        Err(last_error.unwrap_or(Error::Connect { attempts }))
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
        let client_id = match &config.hello {
            Some(d) => d.clone(),
            None => default_client_id(local),
        };
        let mut session_config = SessionConfig::new(client_id);
        session_config.timeouts = config.timeouts;
        session_config.reply_limits = config.reply_limits;
        session_config.send_hello = config.send_hello;
        session_config.pipelining = config.pipelining;
        session_config.implicit_tls = config.tls_mode == TlsMode::Implicit;
        session_config.starttls = match config.tls_mode {
            TlsMode::None | TlsMode::Implicit => StartTlsPolicy::Never,
            TlsMode::StartTlsOpportunistic => StartTlsPolicy::Opportunistic,
            TlsMode::StartTlsRequired => StartTlsPolicy::Required,
        };
        let mut session = Session::new(session_config);
        session.set_transcript(config.transcript_fn());
        let mut client = SmtpClient {
            session,
            conn: Connection::Plain(tcp),
            host: host.to_owned(),
            peer,
            tls: config.tls.clone(),
            timeouts: config.timeouts,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
        };
        if config.tls_mode == TlsMode::Implicit {
            client.handshake(config.timeouts.greeting)?;
        }
        client.session.start_open(Instant::now())?;
        client.run(None)?;
        Ok(client)
    }

    // ----- The driver loop -----------------------------------------------------------

    fn run(&mut self, mut body: Option<&mut BodyReader<'_>>) -> Result<Outcome, Error> {
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
                    let Some(reader) = body.as_deref_mut() else {
                        return Err(self.fail(Error::InvalidState("no body to send")));
                    };
                    let (chunk, last) = match reader.next_chunk() {
                        Ok(c) => c,
                        Err(e) => return Err(self.fail(Error::Body(e))),
                    };
                    if let Err(err) = self.session.push_body(chunk, last, Instant::now()) {
                        if self.session.is_broken() {
                            self.close();
                        }
                        return Err(err);
                    }
                }
                Event::StartTls => {
                    if let Err(err) = self.handshake(self.timeouts.command) {
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
        let now = Instant::now();
        let deadline = self
            .session
            .poll_timeout()
            .unwrap_or(now + self.timeouts.command);
        if now >= deadline {
            self.session.handle_timeout(now);
            return Ok(());
        }
        let wait = (deadline - now).max(Duration::from_millis(1));
        let result = match &mut self.conn {
            Connection::Plain(s) => {
                s.set_read_timeout(Some(wait)).map_err(io_err("reading"))?;
                s.read(&mut self.buf)
            }
            Connection::Tls(s) => {
                s.sock
                    .set_read_timeout(Some(wait))
                    .map_err(io_err("reading"))?;
                s.read(&mut self.buf)
            }
            Connection::Closed => return Err(Error::InvalidState("the connection is closed")),
        };
        match result {
            Ok(0) => self.session.handle_eof(),
            Ok(n) => self.session.handle_input(&self.buf[..n]),
            Err(e) if is_timeout(&e) => self.session.handle_timeout(Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.session.handle_eof(),
            Err(e) => {
                return Err(Error::Io {
                    op: "reading".to_owned(),
                    source: e,
                })
            }
        }
        Ok(())
    }

    fn handshake(&mut self, timeout: Duration) -> Result<(), Error> {
        let Connection::Plain(mut tcp) = std::mem::replace(&mut self.conn, Connection::Closed)
        else {
            return Err(Error::InvalidState("TLS is already established"));
        };
        let config = self.tls.build()?;
        let name = self.tls.server_name_for(&self.host)?;
        let mut conn = ClientConnection::new(config, name).map_err(TlsError::Handshake)?;
        let deadline = Instant::now() + timeout;
        while conn.is_handshaking() {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    awaiting: "the TLS handshake".to_owned(),
                    after: timeout,
                });
            }
            tcp.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
                .map_err(io_err("TLS handshake"))?;
            match conn.complete_io(&mut tcp) {
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let rustls_error = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                        .cloned();
                    return Err(match rustls_error {
                        Some(r) => TlsError::Handshake(r).into(),
                        None => TlsError::HandshakeIo(e).into(),
                    });
                }
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

    fn reply_op(
        &mut self,
        start: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<Reply, Error> {
        match self.op(start)? {
            Outcome::Reply(r) => Ok(r),
            Outcome::Closed(Some(r)) => Ok(r),
            _ => Err(Error::InvalidState("internal: unexpected outcome")),
        }
    }

    fn simple(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
        self.reply_op(|s, now| s.start_command(command, Expect::Completion, now))
    }

    // ----- Net::SMTP's methods -------------------------------------------------------

    /// The server's greeting (Net::SMTP's `banner`).
    pub fn banner(&self) -> Option<&Reply> {
        self.session.banner()
    }

    /// The server's name for itself, from the greeting (Net::SMTP's `domain`).
    pub fn domain(&self) -> Option<String> {
        self.session.greeting_domain()
    }

    /// Sends EHLO (falling back to HELO on a 5xx) with `domain` or the configured name
    /// (Net::SMTP's `hello`). Forgets earlier capabilities.
    pub fn hello(&mut self, domain: Option<&Domain>) -> Result<Reply, Error> {
        self.reply_op(|s, now| s.start_hello(domain, now))
    }

    /// The capabilities of the last EHLO reply (`None` after HELO).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.session.capabilities()
    }

    /// True when the last EHLO reply offered `keyword` (Net::SMTP's `supports`).
    pub fn supports(&self, keyword: &str) -> bool {
        self.session.supports(keyword)
    }

    /// Upgrades the connection with STARTTLS, then sends EHLO again, forgetting everything
    /// learnt in clear (Net::SMTP's `starttls`). Returns the new EHLO reply.
    pub fn starttls(&mut self) -> Result<Reply, Error> {
        self.reply_op(|s, now| s.start_starttls(now))
    }

    /// True when the connection is protected by TLS.
    pub fn is_encrypted(&self) -> bool {
        self.session.is_encrypted()
    }

    /// Sends `MAIL FROM` (Net::SMTP's `mail`/`send`); a non-2xx reply is [`Error::Refused`].
    pub fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Result<Reply, Error> {
        self.simple(&Command::Mail { from, params })
    }

    /// Sends one `RCPT TO` (Net::SMTP's `to`/`recipient` without SkipBad).
    pub fn rcpt(&mut self, to: &ForwardPath, params: &RcptParams) -> Result<Reply, Error> {
        self.simple(&Command::Rcpt { to, params })
    }

    /// Sends `RCPT TO` for each recipient, pipelined when offered, with Net::SMTP's SkipBad
    /// semantics: refused recipients are reported and the good ones kept; an error only when
    /// all are refused.
    pub fn recipients(
        &mut self,
        recipients: &[(ForwardPath, RcptParams)],
    ) -> Result<RecipientsReport, Error> {
        match self.op(|s, now| s.start_recipients(recipients, now))? {
            Outcome::Recipients(r) => Ok(r),
            _ => Err(Error::InvalidState("internal: unexpected outcome")),
        }
    }

    /// Sends DATA and waits for 354 (Net::SMTP's `data` without arguments).
    pub fn data(&mut self) -> Result<Reply, Error> {
        self.reply_op(|s, now| s.start_data(now))
    }

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

    /// Ends the message with `.` and waits for the reply (Net::SMTP's `dataend`).
    pub fn dataend(&mut self) -> Result<Reply, Error> {
        self.reply_op(|s, now| s.start_data_end(now))
    }

    /// Sends one `BDAT` chunk (RFC 3030; Net::SMTP's `bdat`).
    pub fn bdat(&mut self, chunk: &[u8]) -> Result<Reply, Error> {
        self.reply_op(|s, now| s.start_bdat(chunk, false, now))
    }

    /// Sends the last `BDAT ... LAST` chunk (Net::SMTP's `bdatlast`).
    pub fn bdat_last(&mut self, chunk: &[u8]) -> Result<Reply, Error> {
        self.reply_op(|s, now| s.start_bdat(chunk, true, now))
    }

    /// Sends RSET (Net::SMTP's `reset`).
    pub fn reset(&mut self) -> Result<Reply, Error> {
        self.simple(&Command::Rset)
    }

    /// Sends VRFY (Net::SMTP's `verify`). Servers often answer 252: the reply is returned
    /// whatever its code.
    pub fn verify(&mut self, address: &Text) -> Result<Reply, Error> {
        self.command(&Command::Vrfy(address))
    }

    /// Sends EXPN (Net::SMTP's `expand`); the reply is returned whatever its code.
    pub fn expand(&mut self, list: &Text) -> Result<Reply, Error> {
        self.command(&Command::Expn(list))
    }

    /// Sends HELP (Net::SMTP's `help`); the reply is returned whatever its code.
    pub fn help(&mut self, topic: Option<&Text>) -> Result<Reply, Error> {
        self.command(&Command::Help(topic))
    }

    /// Sends NOOP (Net::SMTP's `noop`).
    pub fn noop(&mut self) -> Result<Reply, Error> {
        self.simple(&Command::Noop)
    }

    /// Sends ETRN (RFC 1985; Net::SMTP's `etrn`).
    pub fn etrn(&mut self, node: &Text) -> Result<Reply, Error> {
        self.simple(&Command::Etrn(node))
    }

    /// Sends QUIT and closes the connection (Net::SMTP's `quit`). The reply is `None` when the
    /// server closed without one.
    pub fn quit(&mut self) -> Result<Option<Reply>, Error> {
        let outcome = self.op(|s, now| s.start_quit(now));
        self.close();
        match outcome? {
            Outcome::Closed(r) => Ok(r),
            _ => Err(Error::InvalidState("internal: unexpected outcome")),
        }
    }

    /// SEND FROM (RFC 821): obsolete, always [`Error::Unsupported`].
    pub fn send_to_terminal(&mut self) -> Result<Reply, Error> {
        Err(Error::Unsupported("SEND"))
    }

    /// SOML FROM (RFC 821): obsolete, always [`Error::Unsupported`].
    pub fn send_or_mail(&mut self) -> Result<Reply, Error> {
        Err(Error::Unsupported("SOML"))
    }

    /// SAML FROM (RFC 821): obsolete, always [`Error::Unsupported`].
    pub fn send_and_mail(&mut self) -> Result<Reply, Error> {
        Err(Error::Unsupported("SAML"))
    }

    // ----- Low-level hooks (Net::Cmd) --------------------------------------------------

    /// Sends one command line and returns the server's reply whatever its code (Net::Cmd's
    /// `command` + `response`). Secret commands (AUTH payloads) are masked in the transcript
    /// and in errors. EHLO, HELO and STARTTLS must go through [`hello`](Self::hello) and
    /// [`starttls`](Self::starttls).
    pub fn command(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
        self.reply_op(|s, now| s.start_command(command, Expect::AnyReply, now))
    }

    /// The last reply received (Net::Cmd's `code`, `message`, `ok`, `status` read it).
    pub fn last_reply(&self) -> Option<&Reply> {
        self.session.last_reply()
    }

    /// Records that AUTH succeeded; EHLO and STARTTLS clear it.
    pub fn set_authenticated(&mut self) {
        self.session.set_authenticated();
    }

    /// True after [`set_authenticated`](Self::set_authenticated), until EHLO or STARTTLS.
    pub fn is_authenticated(&self) -> bool {
        self.session.is_authenticated()
    }

    /// The sans-IO session (capabilities, state).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The address connected to.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
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
    pub fn send(&mut self, envelope: &Envelope, message: impl Read) -> Result<SendReport, Error> {
        let mut reader = BodyReader::new(message);
        self.session.start_send(envelope.clone(), Instant::now())?;
        match self.run(Some(&mut reader))? {
            Outcome::Sent(report) => Ok(report),
            _ => Err(Error::InvalidState("internal: unexpected outcome")),
        }
    }
}

/// Reads the body in fixed chunks, and knows whether a chunk is the last one (one byte of
/// read-ahead), so the last chunk and the end of data go out together.
struct BodyReader<'a> {
    inner: Box<dyn Read + 'a>,
    buf: Vec<u8>,
    peeked: Option<u8>,
    done: bool,
}

impl<'a> BodyReader<'a> {
    fn new(inner: impl Read + 'a) -> Self {
        BodyReader {
            inner: Box::new(inner),
            buf: vec![0; BODY_CHUNK],
            peeked: None,
            done: false,
        }
    }

    fn next_chunk(&mut self) -> io::Result<(&[u8], bool)> {
        if self.done {
            return Ok((&[], true));
        }
        let mut len = 0;
        if let Some(b) = self.peeked.take() {
            self.buf[0] = b;
            len = 1;
        }
        while len < self.buf.len() {
            match self.inner.read(&mut self.buf[len..]) {
                Ok(0) => {
                    self.done = true;
                    return Ok((&self.buf[..len], true));
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut one = [0u8; 1];
        loop {
            match self.inner.read(&mut one) {
                Ok(0) => {
                    self.done = true;
                    return Ok((&self.buf[..len], true));
                }
                Ok(_) => {
                    self.peeked = Some(one[0]);
                    return Ok((&self.buf[..len], false));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<SmtpClient>();
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
}
