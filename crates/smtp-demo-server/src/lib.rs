//! A small SMTP submission server with AUTH, on loopback, for the demo and for tests that
//! need a server that behaves like a real one rather than a script.
//!
//! It speaks ESMTP with PIPELINING, 8BITMIME, SMTPUTF8, SIZE, CHUNKING (BDAT),
//! ENHANCEDSTATUSCODES, STARTTLS (a certificate for `localhost` and `127.0.0.1` issued by a
//! throwaway CA, see [`DemoServer::ca_pem`]) and AUTH with every password mechanism the
//! server side of `sasl-mechs` verifies ([`MECHANISMS`]) and the two bearer-token ones
//! ([`TOKEN_MECHANISMS`], where a user's token is its password). It keeps every accepted message, with its
//! envelope and the user who authenticated, for the caller: [`DemoServer::received`].
//!
//! It is bounded everywhere a client could push it: command lines (RFC 5321's 512 octets,
//! 12288 for AUTH responses, as in `smtp-proto`), message size ([`DemoConfig::max_message_size`]),
//! recipients per message, concurrent connections, errors per connection, and the time any
//! read may wait. Nothing a client sends can make it panic.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use smtp_demo_server::{DemoConfig, DemoServer};
//!
//! let server = DemoServer::start(DemoConfig::new().port(0))?;
//! let mut tcp = std::net::TcpStream::connect(server.addr())?;
//! let mut lines = BufReader::new(tcp.try_clone()?);
//! let mut greeting = String::new();
//! lines.read_line(&mut greeting)?;
//! assert!(greeting.starts_with("220 "));
//! tcp.write_all(b"QUIT\r\n")?;
//! let mut bye = String::new();
//! lines.read_line(&mut bye)?;
//! assert!(bye.starts_with("221 "));
//! server.stop();
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod cert;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use rustls::{ServerConnection, StreamOwned};
use sasl_mechs::server::{server_mechanism, PasswordLookup, ServerStep};
use sasl_mechs::{MechanismName, Needs, Secret};
use smtp_proto::{
    ForwardPath, Mailbox, ReplyCode, UnstuffStatus, Unstuffer, MAX_AUTH_RESPONSE_LINE,
    MAX_COMMAND_LINE,
};

use crate::cert::{demo_cert, DemoCert};

/// The port the demo server listens on by default (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 12600;

/// The demo user's name.
pub const DEMO_USER: &str = "demo";

/// The demo user's password. It is public: the demo server accepts connections from
/// loopback only and delivers nowhere.
pub const DEMO_PASSWORD: &str = "demo-password";

/// The password mechanisms the demo server offers, strongest last (the start of its EHLO
/// AUTH line): every mechanism of `sasl-mechs` that needs a password. DIGEST-MD5 offers realm
/// `localhost` and expects the service `smtp` in the digest-uri.
pub static MECHANISMS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| weakest_first(Needs::Password));

/// The bearer-token mechanisms the demo server also offers (after [`MECHANISMS`] on its
/// EHLO AUTH line), strongest last. No OAuth server is involved: the token it accepts for a
/// user is that user's password, so a client passes the password where a token goes.
pub static TOKEN_MECHANISMS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| weakest_first(Needs::Token));

/// The mechanisms of `sasl-mechs` that need `needs`, weakest first. Offering the strongest
/// last checks that clients choose by strength, not by the order of the AUTH line.
fn weakest_first(needs: Needs) -> Vec<&'static str> {
    let known: &'static [MechanismName] = &MechanismName::ALL_KNOWN;
    known
        .iter()
        .rev()
        .filter(|m| m.needs() == Some(needs))
        .map(MechanismName::as_str)
        .collect()
}

/// Every mechanism offered, in the order of the EHLO AUTH line.
fn offered() -> impl Iterator<Item = &'static str> {
    MECHANISMS.iter().chain(TOKEN_MECHANISMS.iter()).copied()
}

/// Errors after which the server closes the connection (421), as real servers do.
const MAX_ERRORS: u32 = 20;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// How the demo server behaves. Built fluently from [`DemoConfig::new`].
///
/// ```
/// use smtp_demo_server::{DemoConfig, DEFAULT_PORT};
/// let config = DemoConfig::new().user("alice", "alice-pw").max_message_size(1 << 20);
/// assert_eq!(config.addr().port(), DEFAULT_PORT);
/// ```
#[derive(Clone)]
pub struct DemoConfig {
    addr: SocketAddr,
    hostname: String,
    users: Vec<(String, Secret)>,
    max_connections: usize,
    max_message_size: usize,
    max_recipients: usize,
    read_timeout: Duration,
    require_auth: bool,
    implicit_tls: bool,
    refuse_local_part: Option<String>,
}

impl fmt::Debug for DemoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("DemoConfig")
            .field("addr", &self.addr)
            .field("hostname", &self.hostname)
            .field("users", &users)
            .field("max_connections", &self.max_connections)
            .field("max_message_size", &self.max_message_size)
            .field("max_recipients", &self.max_recipients)
            .field("read_timeout", &self.read_timeout)
            .field("require_auth", &self.require_auth)
            .field("implicit_tls", &self.implicit_tls)
            .field("refuse_local_part", &self.refuse_local_part)
            .finish()
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig::new()
    }
}

impl DemoConfig {
    /// The defaults: `127.0.0.1:`[`DEFAULT_PORT`], one user [`DEMO_USER`] with
    /// [`DEMO_PASSWORD`], AUTH required before MAIL, STARTTLS offered, at most 16
    /// connections, 10 MiB messages, 100 recipients, reads that wait at most 30 s, and
    /// recipients whose local part is `reject` refused with 550.
    pub fn new() -> DemoConfig {
        DemoConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT),
            hostname: "demo.localhost".to_owned(),
            users: vec![(DEMO_USER.to_owned(), Secret::new(DEMO_PASSWORD))],
            max_connections: 16,
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 100,
            read_timeout: Duration::from_secs(30),
            require_auth: true,
            implicit_tls: false,
            refuse_local_part: Some("reject".to_owned()),
        }
    }

    /// The port on 127.0.0.1 (0: one the kernel picks, for tests).
    pub fn port(mut self, port: u16) -> DemoConfig {
        self.addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        self
    }

    /// The address to listen on. Only loopback addresses are accepted by
    /// [`DemoServer::start`].
    pub fn bind(mut self, addr: SocketAddr) -> DemoConfig {
        self.addr = addr;
        self
    }

    /// The name the server gives in its greeting and EHLO reply.
    pub fn hostname(mut self, name: impl Into<String>) -> DemoConfig {
        self.hostname = name.into();
        self
    }

    /// Adds a user (or replaces the password of an existing one).
    pub fn user(mut self, name: &str, password: impl Into<Secret>) -> DemoConfig {
        let password = password.into();
        match self.users.iter_mut().find(|(u, _)| u == name) {
            Some(entry) => entry.1 = password,
            None => self.users.push((name.to_owned(), password)),
        }
        self
    }

    /// Removes every user, the demo one included.
    pub fn no_users(mut self) -> DemoConfig {
        self.users.clear();
        self
    }

    /// Most connections served at once; more are answered `421` and closed.
    pub fn max_connections(mut self, n: usize) -> DemoConfig {
        self.max_connections = n.max(1);
        self
    }

    /// Largest message accepted, in octets (advertised with SIZE).
    pub fn max_message_size(mut self, bytes: usize) -> DemoConfig {
        self.max_message_size = bytes;
        self
    }

    /// Most recipients per message; more are answered `452`.
    pub fn max_recipients(mut self, n: usize) -> DemoConfig {
        self.max_recipients = n.max(1);
        self
    }

    /// The longest any read waits before the server gives up on the client (`421`).
    pub fn read_timeout(mut self, timeout: Duration) -> DemoConfig {
        self.read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Whether MAIL needs a successful AUTH first (default true, like a submission server).
    pub fn require_auth(mut self, yes: bool) -> DemoConfig {
        self.require_auth = yes;
        self
    }

    /// Whether the listener speaks TLS from the first byte (RFC 8314 implicit TLS, as on
    /// port 465) instead of offering STARTTLS. Default false.
    pub fn implicit_tls(mut self, yes: bool) -> DemoConfig {
        self.implicit_tls = yes;
        self
    }

    /// Recipients with this local part (any case) are refused with
    /// `550 5.1.1`; `None` accepts every recipient. Default `Some("reject")`.
    pub fn refuse_local_part(mut self, local_part: Option<&str>) -> DemoConfig {
        self.refuse_local_part = local_part.map(str::to_owned);
        self
    }

    /// The address the server will listen on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// How a message's body reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// `DATA`, dot-stuffed, ended by `.`.
    Data,
    /// `BDAT` chunks (RFC 3030).
    Bdat,
}

/// A message the demo server accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The name the client gave in EHLO/HELO.
    pub helo: String,
    /// The user who authenticated on the connection, if any.
    pub authenticated: Option<String>,
    /// The mechanism that user authenticated with.
    pub mechanism: Option<String>,
    /// Whether the connection was encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The reverse-path of MAIL FROM, without angle brackets (`""` for the null path `<>`).
    pub from: String,
    /// The MAIL FROM parameters as sent (`SIZE=120`, `BODY=8BITMIME`, ...).
    pub mail_params: Vec<String>,
    /// Each accepted recipient, without angle brackets (`Postmaster` for `<Postmaster>`).
    pub to: Vec<String>,
    /// The message, as the client meant it: dot-unstuffed (DATA) or the concatenated chunks
    /// (BDAT), end-of-data line excluded.
    pub data: Vec<u8>,
    /// How the body came.
    pub transfer: Transfer,
}

impl fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("helo", &self.helo)
            .field("authenticated", &self.authenticated)
            .field("mechanism", &self.mechanism)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("mail_params", &self.mail_params)
            .field("to", &self.to)
            .field("data", &String::from_utf8_lossy(&self.data))
            .field("transfer", &self.transfer)
            .finish()
    }
}

#[derive(Default)]
struct Store {
    messages: Vec<ReceivedMessage>,
}

struct Shared {
    config: DemoConfig,
    tls: Arc<rustls::ServerConfig>,
    lookup: PasswordLookup,
    stop: AtomicBool,
    store: Mutex<Store>,
    arrived: Condvar,
    /// Every open connection, so that `stop` can wake the threads blocked reading them.
    open: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A connection thread never panics while holding a lock; if one ever did, the data is
    // still consistent (each update is a single push or insert), so keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running demo server. [`stop`](Self::stop) (or dropping it) closes every connection and
/// joins every thread.
pub struct DemoServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cert: &'static DemoCert,
    acceptor: Option<JoinHandle<()>>,
}

impl fmt::Debug for DemoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoServer")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl DemoServer {
    /// Binds the configured loopback address and starts serving on a thread of its own.
    ///
    /// Fails when the address is not a loopback one, is already in use, or the TLS
    /// configuration cannot be built.
    pub fn start(config: DemoConfig) -> io::Result<DemoServer> {
        if !config.addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the demo server listens on loopback only, not {}",
                    config.addr
                ),
            ));
        }
        let cert = demo_cert();
        let tls = cert.server_config().map_err(io::Error::other)?;
        let listener = TcpListener::bind(config.addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let users = Arc::new(config.users.clone());
        let lookup: PasswordLookup = Arc::new(move |name: &str| {
            users
                .iter()
                .find(|(u, _)| u == name)
                .map(|(_, pw)| pw.clone())
        });
        let shared = Arc::new(Shared {
            config,
            tls,
            lookup,
            stop: AtomicBool::new(false),
            store: Mutex::new(Store::default()),
            arrived: Condvar::new(),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("demo-smtp-accept".to_owned())
                .spawn(move || accept_loop(listener, shared))?
        };
        Ok(DemoServer {
            addr,
            shared,
            cert,
            acceptor: Some(acceptor),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &DemoConfig {
        &self.shared.config
    }

    /// The CA that issued the server's certificate (DER): make a client trust it.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.cert.ca_der.clone()
    }

    /// The CA that issued the server's certificate (PEM), to write to a `--ca-file`.
    pub fn ca_pem(&self) -> &str {
        &self.cert.ca_pem
    }

    /// Every message accepted so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        lock(&self.shared.store).messages.clone()
    }

    /// Waits until at least `count` messages have been accepted, or `timeout` has passed;
    /// returns the messages accepted by then.
    pub fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let deadline = Instant::now() + timeout;
        let mut store = lock(&self.shared.store);
        while store.messages.len() < count {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            store = match self.shared.arrived.wait_timeout(store, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        store.messages.clone()
    }

    /// Stops accepting, closes every connection, and joins every thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        workers.retain(|w| !w.is_finished());
        match listener.accept() {
            Ok((tcp, _peer)) => {
                if workers.len() >= shared.config.max_connections {
                    refuse_busy(tcp);
                    continue;
                }
                match spawn_connection(tcp, &shared) {
                    Ok(handle) => workers.push(handle),
                    Err(_) => continue,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Transient accept errors (the peer reset before accept, out of descriptors):
            // back off a little and keep serving.
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
    for (_, tcp) in lock(&shared.open).drain() {
        let _ = tcp.shutdown(Shutdown::Both);
    }
    for worker in workers {
        let _ = worker.join();
    }
}

fn refuse_busy(mut tcp: TcpStream) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = tcp.write_all(b"421 4.3.2 Too many connections, try again later\r\n");
    let _ = tcp.shutdown(Shutdown::Both);
}

fn spawn_connection(tcp: TcpStream, shared: &Arc<Shared>) -> io::Result<JoinHandle<()>> {
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(shared.config.read_timeout))?;
    tcp.set_write_timeout(Some(shared.config.read_timeout))?;
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    lock(&shared.open).insert(id, tcp.try_clone()?);
    // Checked after registering, so that a stop racing with this accept still closes it.
    if shared.stop.load(Ordering::SeqCst) {
        let _ = tcp.shutdown(Shutdown::Both);
    }
    let shared = shared.clone();
    thread::Builder::new()
        .name(format!("demo-smtp-{id}"))
        .spawn(move || {
            let mut conn = Connection::new(tcp, &shared);
            conn.serve();
            conn.close();
            lock(&shared.open).remove(&id);
        })
}

// ----- One connection ---------------------------------------------------------------

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Closed,
}

/// Why a session ends early.
enum End {
    /// The client closed, the read timed out, or the socket failed: nothing more to say.
    Gone,
    /// Say this (a `421`) and close.
    Say(&'static str),
}

/// The state of the current mail transaction.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    mail_params: Vec<String>,
    to: Vec<String>,
    /// BDAT chunks so far (`None` before the first).
    chunks: Option<Vec<u8>>,
    /// A BDAT chunk made the message too big: later chunks are read and dropped.
    too_big: bool,
}

struct Connection<'a> {
    shared: &'a Shared,
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
    helo: Option<String>,
    auth: Option<(String, String)>,
    tls: bool,
    txn: Transaction,
    errors: u32,
}

impl<'a> Connection<'a> {
    fn new(tcp: TcpStream, shared: &'a Shared) -> Connection<'a> {
        Connection {
            shared,
            stream: Stream::Plain(tcp),
            input: Vec::new(),
            output: Vec::new(),
            helo: None,
            auth: None,
            tls: false,
            txn: Transaction::default(),
            errors: 0,
        }
    }

    fn config(&self) -> &DemoConfig {
        &self.shared.config
    }

    fn serve(&mut self) {
        if self.config().implicit_tls && self.start_tls().is_err() {
            return;
        }
        let greeting = format!("{} ESMTP smtp-demo-server ready", self.config().hostname);
        self.reply(220, &[&greeting]);
        let end = loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                break End::Say("421 4.3.2 Server shutting down");
            }
            let line = match self.read_line(MAX_COMMAND_LINE) {
                Ok(line) => line,
                Err(end) => break end,
            };
            match self.command(&line) {
                Ok(true) => {}
                Ok(false) => break End::Gone,
                Err(end) => break end,
            }
            if self.errors >= MAX_ERRORS {
                break End::Say("421 4.7.0 Too many errors, closing connection");
            }
        };
        if let End::Say(text) = end {
            self.output.extend_from_slice(text.as_bytes());
            self.output.extend_from_slice(b"\r\n");
        }
        let _ = self.flush();
    }

    fn close(&mut self) {
        let tcp = match &self.stream {
            Stream::Plain(s) => Some(s),
            Stream::Tls(s) => Some(&s.sock),
            Stream::Closed => None,
        };
        if let Some(tcp) = tcp {
            let _ = tcp.shutdown(Shutdown::Both);
        }
        self.stream = Stream::Closed;
    }

    // ----- Bytes in and out ---------------------------------------------------------

    /// Queues a reply; it goes out before the server next waits for input (so that a
    /// pipelined batch is answered in one write).
    fn reply(&mut self, code: u16, lines: &[&str]) {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let reply = ReplyCode::new(code).and_then(|c| smtp_proto::Reply::new(c, &lines).ok());
        match reply {
            Some(reply) => reply.encode(&mut self.output),
            None => self
                .output
                .extend_from_slice(b"451 4.3.0 Internal error building a reply\r\n"),
        }
    }

    fn error(&mut self, code: u16, text: &str) {
        self.errors += 1;
        self.reply(code, &[text]);
    }

    fn flush(&mut self) -> Result<(), End> {
        if self.output.is_empty() {
            return Ok(());
        }
        let result = match &mut self.stream {
            Stream::Plain(s) => s.write_all(&self.output),
            Stream::Tls(s) => s.write_all(&self.output).and_then(|()| s.flush()),
            Stream::Closed => return Err(End::Gone),
        };
        self.output.clear();
        result.map_err(|_| End::Gone)
    }

    /// Reads more input, after sending what is queued.
    fn fill(&mut self) -> Result<(), End> {
        self.flush()?;
        if self.shared.stop.load(Ordering::SeqCst) {
            return Err(End::Say("421 4.3.2 Server shutting down"));
        }
        let mut buf = [0u8; READ_CHUNK];
        let n = match &mut self.stream {
            Stream::Plain(s) => s.read(&mut buf),
            Stream::Tls(s) => s.read(&mut buf),
            Stream::Closed => return Err(End::Gone),
        };
        match n {
            Ok(0) => Err(End::Gone),
            Ok(n) => {
                self.input.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(End::Say("421 4.4.2 Timeout waiting for the client"))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(_) => Err(End::Gone),
        }
    }

    /// One line without its line end (CRLF, or a bare LF), at most `limit` octets with it.
    fn read_line(&mut self, limit: usize) -> Result<Vec<u8>, End> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.input[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                if end + 1 > limit {
                    return Err(End::Say("500 5.5.6 Line too long"));
                }
                let mut line: Vec<u8> = self.input.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.input.len();
            if scanned > limit {
                return Err(End::Say("500 5.5.6 Line too long"));
            }
            self.fill()?;
        }
    }

    fn start_tls(&mut self) -> Result<(), End> {
        self.flush()?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(End::Gone);
        };
        let conn = ServerConnection::new(self.shared.tls.clone()).map_err(|_| End::Gone)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            if tls.conn.complete_io(&mut tls.sock).is_err() {
                let _ = tls.sock.shutdown(Shutdown::Both);
                return Err(End::Gone);
            }
        }
        self.stream = Stream::Tls(Box::new(tls));
        self.tls = true;
        Ok(())
    }

    // ----- Commands -------------------------------------------------------------------

    /// Handles one command line. `Ok(false)`: the session is over (QUIT).
    fn command(&mut self, line: &[u8]) -> Result<bool, End> {
        let Ok(line) = std::str::from_utf8(line) else {
            self.error(500, "5.5.2 Syntax error: command is not UTF-8");
            return Ok(true);
        };
        if line.bytes().any(|b| b == b'\r' || b == 0) {
            self.error(500, "5.5.2 Syntax error: control character in command");
            return Ok(true);
        }
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, a),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.ehlo(arg, true),
            "HELO" => self.ehlo(arg, false),
            "STARTTLS" => return self.starttls(arg),
            "AUTH" => return self.auth(arg),
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => return self.data(arg),
            "BDAT" => return self.bdat(arg),
            "RSET" => {
                self.txn = Transaction::default();
                self.reply(250, &["2.0.0 Reset"]);
            }
            "NOOP" => self.reply(250, &["2.0.0 OK"]),
            "VRFY" => {
                if arg.is_empty() {
                    self.error(501, "5.5.4 VRFY needs an argument");
                } else {
                    self.reply(252, &["2.5.2 Cannot VRFY user, but will accept message"]);
                }
            }
            "HELP" => self.reply(
                214,
                &[
                    "2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT",
                    "2.0.0 RSET NOOP VRFY HELP QUIT",
                ],
            ),
            "QUIT" => {
                self.reply(221, &["2.0.0 Bye"]);
                return Ok(false);
            }
            _ => self.error(500, "5.5.2 Command not recognized"),
        }
        Ok(true)
    }

    fn ehlo(&mut self, arg: &str, extended: bool) {
        let name = arg.trim();
        if name.is_empty() || name.contains(' ') || smtp_proto::Domain::new(name).is_err() {
            self.error(501, "5.5.4 A domain name or address literal is required");
            return;
        }
        self.helo = Some(name.to_owned());
        self.txn = Transaction::default();
        let host = self.config().hostname.clone();
        let first = format!("{host} Hello {name}");
        if !extended {
            self.reply(250, &[&first]);
            return;
        }
        let size = format!("SIZE {}", self.config().max_message_size);
        let auth = format!("AUTH {}", offered().collect::<Vec<_>>().join(" "));
        let mut lines: Vec<&str> = vec![
            &first,
            "PIPELINING",
            "8BITMIME",
            "SMTPUTF8",
            &size,
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
        ];
        if !self.tls {
            lines.push("STARTTLS");
        }
        if self.auth.is_none() {
            lines.push(&auth);
        }
        self.reply(250, &lines);
    }

    fn starttls(&mut self, arg: &str) -> Result<bool, End> {
        if !arg.is_empty() {
            self.error(501, "5.5.4 STARTTLS takes no argument");
        } else if self.tls {
            self.error(503, "5.5.1 TLS is already active");
        } else if self.helo.is_none() {
            self.error(503, "5.5.1 Send EHLO first");
        } else {
            self.reply(220, &["2.0.0 Ready to start TLS"]);
            // Anything the client pipelined after STARTTLS was sent in clear: drop it
            // (RFC 3207 section 6, the STARTTLS command injection attack).
            self.input.clear();
            self.start_tls()?;
            // RFC 3207 4.2: the client starts over with EHLO; forget what came before.
            self.helo = None;
            self.auth = None;
            self.txn = Transaction::default();
        }
        Ok(true)
    }

    fn auth(&mut self, arg: &str) -> Result<bool, End> {
        if self.helo.is_none() {
            self.error(503, "5.5.1 Send EHLO first");
            return Ok(true);
        }
        if self.auth.is_some() {
            self.error(503, "5.5.1 Already authenticated");
            return Ok(true);
        }
        if self.txn.from.is_some() {
            self.error(503, "5.5.1 AUTH not permitted during a mail transaction");
            return Ok(true);
        }
        let (name, initial) = match arg.split_once(' ') {
            Some((n, i)) => (n, Some(i)),
            None => (arg, None),
        };
        let Some(name) = offered().find(|m| m.eq_ignore_ascii_case(name)) else {
            self.error(504, "5.5.4 Unrecognized authentication type");
            return Ok(true);
        };
        let Ok(mut mech) = server_mechanism(name, self.shared.lookup.clone()) else {
            self.error(504, "5.5.4 Unrecognized authentication type");
            return Ok(true);
        };
        let initial = match initial {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(text) => match B64.decode(text) {
                Ok(bytes) => Some(bytes),
                Err(_) => {
                    self.error(501, "5.5.2 Cannot decode the initial response");
                    return Ok(true);
                }
            },
        };
        let mut step = mech.step(initial.as_deref());
        loop {
            match step {
                Ok(ServerStep::Challenge(challenge)) => {
                    let text = B64.encode(&challenge);
                    self.reply(334, &[&text]);
                    let Some(response) = self.auth_response()? else {
                        return Ok(true);
                    };
                    step = mech.step(Some(&response));
                }
                Ok(ServerStep::Success(additional)) => {
                    if let Some(data) = additional {
                        // SMTP cannot carry data with 235: send it as a last challenge and
                        // wait for the client's empty answer (RFC 4954 section 4).
                        let text = B64.encode(&data);
                        self.reply(334, &[&text]);
                        let Some(response) = self.auth_response()? else {
                            return Ok(true);
                        };
                        if !response.is_empty() {
                            self.error(535, "5.7.8 Authentication credentials invalid");
                            return Ok(true);
                        }
                    }
                    let Some(who) = mech.authenticated().cloned() else {
                        self.error(454, "4.7.0 Temporary authentication failure");
                        return Ok(true);
                    };
                    if who.authzid.as_ref().is_some_and(|z| *z != who.authcid) {
                        // The demo has no proxy rights: a user may act only as itself.
                        self.error(535, "5.7.8 Authentication credentials invalid");
                        return Ok(true);
                    }
                    self.auth = Some((who.authcid, name.to_owned()));
                    self.reply(235, &["2.7.0 Authentication successful"]);
                    return Ok(true);
                }
                Ok(ServerStep::Failure) => {
                    self.error(535, "5.7.8 Authentication credentials invalid");
                    return Ok(true);
                }
                Err(_) => {
                    self.error(501, "5.5.2 Malformed authentication response");
                    return Ok(true);
                }
            }
        }
    }

    /// Reads one AUTH response line: `Some(bytes)`, or `None` after answering a cancel
    /// (`*`) or undecodable base64.
    fn auth_response(&mut self) -> Result<Option<Vec<u8>>, End> {
        let line = self.read_line(MAX_AUTH_RESPONSE_LINE)?;
        if line == b"*" {
            self.error(501, "5.7.0 Authentication cancelled");
            return Ok(None);
        }
        match B64.decode(&line) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(_) => {
                self.error(501, "5.5.2 Cannot decode the response");
                Ok(None)
            }
        }
    }

    fn mail(&mut self, arg: &str) {
        if self.helo.is_none() {
            return self.error(503, "5.5.1 Send EHLO first");
        }
        if self.txn.from.is_some() {
            return self.error(503, "5.5.1 Sender already given");
        }
        if self.config().require_auth && self.auth.is_none() {
            return self.error(530, "5.7.0 Authentication required");
        }
        let Some((path, params)) = parse_path_arg(arg, "FROM:") else {
            return self.error(501, "5.5.4 Syntax: MAIL FROM:<address> [parameters]");
        };
        if !path.is_empty() && Mailbox::new(path).is_err() {
            return self.error(553, "5.1.7 Bad sender address syntax");
        }
        let mut kept = Vec::new();
        for param in params.split(' ').filter(|p| !p.is_empty()) {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (param, None),
            };
            match (key.to_ascii_uppercase().as_str(), value) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(n) if n > self.config().max_message_size as u64 => {
                        return self.error(552, "5.3.4 Message size exceeds fixed limit");
                    }
                    Ok(_) => {}
                    Err(_) => return self.error(501, "5.5.4 Bad SIZE value"),
                },
                ("BODY", Some(v))
                    if ["7BIT", "8BITMIME", "BINARYMIME"]
                        .iter()
                        .any(|b| b.eq_ignore_ascii_case(v)) => {}
                ("SMTPUTF8", None) => {}
                ("AUTH", Some(_)) => {}
                _ => return self.error(555, "5.5.4 Unsupported MAIL parameter"),
            }
            kept.push(param.to_owned());
        }
        self.txn = Transaction {
            from: Some(path.to_owned()),
            mail_params: kept,
            ..Transaction::default()
        };
        self.reply(250, &["2.1.0 Sender OK"]);
    }

    fn rcpt(&mut self, arg: &str) {
        if self.txn.from.is_none() {
            return self.error(503, "5.5.1 Need MAIL before RCPT");
        }
        let Some((path, params)) = parse_path_arg(arg, "TO:") else {
            return self.error(501, "5.5.4 Syntax: RCPT TO:<address> [parameters]");
        };
        if !params.trim().is_empty() {
            return self.error(555, "5.5.4 Unsupported RCPT parameter");
        }
        let Ok(forward) = ForwardPath::new(path) else {
            return self.error(553, "5.1.3 Bad recipient address syntax");
        };
        if let (Some(mailbox), Some(refused)) =
            (forward.mailbox(), &self.config().refuse_local_part)
        {
            if mailbox.local_part().eq_ignore_ascii_case(refused) {
                return self.error(550, "5.1.1 Recipient address rejected: mailbox unavailable");
            }
        }
        if self.txn.to.len() >= self.config().max_recipients {
            return self.error(452, "4.5.3 Too many recipients");
        }
        self.txn.to.push(path.to_owned());
        self.reply(250, &["2.1.5 Recipient OK"]);
    }

    fn data(&mut self, arg: &str) -> Result<bool, End> {
        if !arg.is_empty() {
            self.error(501, "5.5.4 DATA takes no argument");
            return Ok(true);
        }
        if self.txn.from.is_none() {
            self.error(503, "5.5.1 Need MAIL before DATA");
            return Ok(true);
        }
        if self.txn.chunks.is_some() {
            self.error(503, "5.5.1 DATA after BDAT");
            return Ok(true);
        }
        if self.txn.to.is_empty() {
            self.error(554, "5.5.1 No valid recipients");
            return Ok(true);
        }
        self.reply(354, &["End data with <CR><LF>.<CR><LF>"]);
        let max = self.config().max_message_size;
        let mut unstuffer = Unstuffer::new();
        let mut message = Vec::new();
        let mut too_big = false;
        loop {
            let mut out = Vec::new();
            let status = unstuffer.feed(&self.input, &mut out);
            let consumed = match status {
                UnstuffStatus::Done { consumed } => consumed,
                UnstuffStatus::NeedMore => self.input.len(),
            };
            self.input.drain(..consumed);
            if message.len() + out.len() > max {
                // Keep reading to the end of data, but keep none of it.
                too_big = true;
                message = Vec::new();
            } else if !too_big {
                message.extend_from_slice(&out);
            }
            if unstuffer.is_done() {
                break;
            }
            self.fill()?;
        }
        if too_big {
            self.error(552, "5.3.4 Message size exceeds fixed limit");
            self.txn = Transaction::default();
        } else {
            self.deliver(message, Transfer::Data);
            self.reply(250, &["2.0.0 Message accepted for delivery"]);
        }
        Ok(true)
    }

    fn bdat(&mut self, arg: &str) -> Result<bool, End> {
        let mut words = arg.split(' ').filter(|w| !w.is_empty());
        let size = words.next().and_then(|w| w.parse::<u64>().ok());
        let last = match words.next() {
            None => Some(false),
            Some(w) if w.eq_ignore_ascii_case("LAST") => Some(true),
            Some(_) => None,
        };
        let (Some(size), Some(last), None) = (size, last, words.next()) else {
            // The chunk's length is unknown, so its bytes cannot be skipped: the session
            // cannot continue (RFC 3030 section 2).
            return Err(End::Say("501 5.5.4 Syntax: BDAT size [LAST]; closing"));
        };
        let max = self.config().max_message_size as u64;
        let have = self.txn.chunks.as_ref().map_or(0, |c| c.len() as u64);
        let keep = !self.txn.too_big && have.saturating_add(size) <= max;
        let chunk = self.read_exact(size, keep)?;
        if self.txn.from.is_none() || self.txn.to.is_empty() {
            self.error(503, "5.5.1 Need MAIL and RCPT before BDAT");
            return Ok(true);
        }
        let chunks = self.txn.chunks.get_or_insert_with(Vec::new);
        match chunk {
            Some(bytes) => chunks.extend_from_slice(&bytes),
            None => {
                chunks.clear();
                self.txn.too_big = true;
            }
        }
        if self.txn.too_big {
            if last {
                self.txn = Transaction::default();
            }
            self.error(552, "5.3.4 Message size exceeds fixed limit");
        } else if last {
            let message = self.txn.chunks.take().unwrap_or_default();
            self.deliver(message, Transfer::Bdat);
            self.reply(250, &["2.0.0 Message accepted for delivery"]);
        } else {
            let text = format!("2.0.0 {size} octets received");
            self.reply(250, &[&text]);
        }
        Ok(true)
    }

    /// Reads exactly `size` octets of a BDAT chunk; keeps them when `keep`, else drops them
    /// as they arrive (`None`).
    fn read_exact(&mut self, size: u64, keep: bool) -> Result<Option<Vec<u8>>, End> {
        let mut left = size;
        let mut kept = Vec::new();
        loop {
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.input.len());
            if keep {
                kept.extend_from_slice(&self.input[..take]);
            }
            self.input.drain(..take);
            left -= take as u64;
            if left == 0 {
                return Ok(keep.then_some(kept));
            }
            self.fill()?;
        }
    }

    fn deliver(&mut self, data: Vec<u8>, transfer: Transfer) {
        let txn = std::mem::take(&mut self.txn);
        let message = ReceivedMessage {
            helo: self.helo.clone().unwrap_or_default(),
            authenticated: self.auth.as_ref().map(|(u, _)| u.clone()),
            mechanism: self.auth.as_ref().map(|(_, m)| m.clone()),
            tls: self.tls,
            from: txn.from.unwrap_or_default(),
            mail_params: txn.mail_params,
            to: txn.to,
            data,
            transfer,
        };
        lock(&self.shared.store).messages.push(message);
        self.shared.arrived.notify_all();
    }
}

/// Splits `FROM:<path> params` (keyword any case; a space after the colon tolerated) into
/// the path without brackets and the parameters.
fn parse_path_arg<'l>(arg: &'l str, keyword: &str) -> Option<(&'l str, &'l str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg.get(keyword.len()..)?.trim_start_matches(' ');
    let rest = rest.strip_prefix('<')?;
    let close = rest.find('>')?;
    let path = &rest[..close];
    let params = &rest[close + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    Some((path, params.trim_start_matches(' ')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    struct Client {
        tcp: TcpStream,
        reader: BufReader<TcpStream>,
    }

    impl Client {
        fn connect(server: &DemoServer) -> Client {
            let tcp = TcpStream::connect(server.addr()).expect("connect");
            tcp.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let reader = BufReader::new(tcp.try_clone().expect("clone"));
            let mut c = Client { tcp, reader };
            let greeting = c.reply();
            assert!(greeting[0].starts_with("220 "), "{greeting:?}");
            c
        }

        fn send(&mut self, line: &str) {
            self.tcp.write_all(line.as_bytes()).expect("write");
            self.tcp.write_all(b"\r\n").expect("write");
        }

        /// The lines of one reply, CRLF removed.
        fn reply(&mut self) -> Vec<String> {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).expect("read");
                assert!(
                    line.ends_with("\r\n"),
                    "reply line not CRLF-ended: {line:?}"
                );
                line.truncate(line.len() - 2);
                let more = line.as_bytes().get(3) == Some(&b'-');
                lines.push(line);
                if !more {
                    return lines;
                }
            }
        }

        fn cmd(&mut self, line: &str) -> Vec<String> {
            self.send(line);
            self.reply()
        }

        fn code(&mut self, line: &str) -> String {
            self.cmd(line).last().expect("a line")[..3].to_owned()
        }
    }

    fn server() -> DemoServer {
        DemoServer::start(DemoConfig::new().port(0)).expect("start")
    }

    #[test]
    fn ehlo_advertises_the_extensions_and_mechanisms() {
        let server = server();
        let mut c = Client::connect(&server);
        let ehlo = c.cmd("EHLO client.example");
        for kw in [
            "PIPELINING",
            "8BITMIME",
            "SMTPUTF8",
            "SIZE 10485760",
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
            "STARTTLS",
            "AUTH LOGIN PLAIN NTLM DIGEST-MD5 CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 XOAUTH2 OAUTHBEARER",
        ] {
            assert!(ehlo.iter().any(|l| &l[4..] == kw), "{kw} missing: {ehlo:?}");
        }
        assert!(ehlo.last().unwrap().starts_with("250 "));
    }

    #[test]
    fn auth_plain_then_a_message_delivered_unstuffed() {
        let server = server();
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        // RFC 4616: the message is authzid NUL authcid NUL passwd; here
        // "\0demo\0demo-password" in base64, worked out by hand from the octets.
        assert_eq!(
            c.cmd("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="),
            ["235 2.7.0 Authentication successful"]
        );
        assert_eq!(c.code("MAIL FROM:<alice@example.test>"), "250");
        assert_eq!(c.code("RCPT TO:<bob@example.test>"), "250");
        assert_eq!(c.code("DATA"), "354");
        c.tcp
            .write_all(b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\n.\r\n")
            .unwrap();
        assert_eq!(c.reply()[0][..3], *"250");
        assert_eq!(c.code("QUIT"), "221");
        let got = server.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].from, "alice@example.test");
        assert_eq!(got[0].to, ["bob@example.test"]);
        assert_eq!(got[0].authenticated.as_deref(), Some("demo"));
        assert_eq!(got[0].mechanism.as_deref(), Some("PLAIN"));
        assert_eq!(got[0].transfer, Transfer::Data);
        assert_eq!(
            got[0].data,
            b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n"
        );
    }

    #[test]
    fn wrong_password_is_535_and_mail_then_needs_auth() {
        let server = server();
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        // "\0demo\0wrong"
        assert_eq!(
            c.cmd("AUTH PLAIN AGRlbW8Ad3Jvbmc="),
            ["535 5.7.8 Authentication credentials invalid"]
        );
        assert_eq!(c.code("MAIL FROM:<alice@example.test>"), "530");
        assert!(server.received().is_empty());
    }

    #[test]
    fn auth_login_in_two_challenges() {
        let server = server();
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        let r = c.cmd("AUTH LOGIN");
        assert_eq!(r, ["334 VXNlcm5hbWU6"], "Username: challenge");
        assert_eq!(
            c.cmd("ZGVtbw=="),
            ["334 UGFzc3dvcmQ6"],
            "Password: challenge"
        );
        assert_eq!(c.code("ZGVtby1wYXNzd29yZA=="), "235");
        assert_eq!(c.code("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="), "503");
    }

    #[test]
    fn digest_md5_rspauth_goes_out_as_a_334_before_the_235() {
        use sasl_mechs::{client_mechanism, ClientOptions, Credentials};
        let server = server();
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        let creds = Credentials::new(DEMO_USER, DEMO_PASSWORD).unwrap();
        let mut mech = client_mechanism("DIGEST-MD5", &creds, &ClientOptions::default()).unwrap();
        let r = c.cmd("AUTH DIGEST-MD5");
        let challenge = B64
            .decode(r[0].strip_prefix("334 ").expect("a 334"))
            .unwrap();
        let text = String::from_utf8(challenge.clone()).unwrap();
        // RFC 2831 2.1.1: the realm offered and the only qop this server does.
        assert!(text.contains(r#"realm="localhost""#), "{text}");
        assert!(text.contains(r#"qop="auth""#), "{text}");
        let response = mech.respond(&challenge).unwrap();
        // RFC 2831 2.1.3 / RFC 4954 4: rspauth comes as a challenge, not with the 235.
        let r = c.cmd(&B64.encode(&response[..]));
        let rspauth = B64
            .decode(r[0].strip_prefix("334 ").expect("rspauth as a 334"))
            .unwrap();
        assert!(rspauth.starts_with(b"rspauth="), "{r:?}");
        let last = mech.respond(&rspauth).unwrap();
        assert!(last.is_empty());
        assert_eq!(c.cmd(""), ["235 2.7.0 Authentication successful"]);
        assert_eq!(c.code("MAIL FROM:<a@example.test>"), "250");
    }

    #[test]
    fn xoauth2_and_oauthbearer_take_the_password_as_the_token() {
        let server = server();
        // XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A.
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        let good = B64.encode("user=demo\x01auth=Bearer demo-password\x01\x01");
        assert_eq!(c.code(&format!("AUTH XOAUTH2 {good}")), "235");
        // OAUTHBEARER (RFC 7628 3.1): gs2-header "n,a=demo," then ^A kvpairs ^A.
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        let good = B64.encode("n,a=demo,\x01auth=Bearer demo-password\x01\x01");
        assert_eq!(c.code(&format!("AUTH OAUTHBEARER {good}")), "235");
        // A wrong token: the error JSON as a 334, the client's dummy ^A, then 535
        // (RFC 7628 3.2.2, 3.2.3).
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        let bad = B64.encode("n,a=demo,\x01auth=Bearer wrong\x01\x01");
        let r = c.cmd(&format!("AUTH OAUTHBEARER {bad}"));
        let json = B64
            .decode(r[0].strip_prefix("334 ").expect("error JSON"))
            .unwrap();
        assert!(json.starts_with(b"{") && json.ends_with(b"}"), "{r:?}");
        assert_eq!(c.code("AQ=="), "535");
        assert_eq!(c.code("MAIL FROM:<a@example.test>"), "530");
    }

    #[test]
    fn auth_cancel_and_bad_base64() {
        let server = server();
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        assert_eq!(c.code("AUTH LOGIN"), "334");
        assert_eq!(c.code("*"), "501");
        assert_eq!(c.code("AUTH PLAIN !!!notbase64"), "501");
        assert_eq!(c.code("AUTH GSSAPI"), "504");
        assert_eq!(c.code("NOOP"), "250");
    }

    #[test]
    fn bdat_chunks_are_joined() {
        let server = server();
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        assert_eq!(c.code("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="), "235");
        c.tcp
            .write_all(
                b"MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nBDAT 5\r\n.a\r\nbBDAT 3 LAST\r\nc\r\n",
            )
            .unwrap();
        for _ in 0..4 {
            assert_eq!(c.reply()[0][..3], *"250");
        }
        let got = server.received();
        assert_eq!(got[0].data, b".a\r\nbc\r\n");
        assert_eq!(got[0].from, "");
        assert_eq!(got[0].to, ["Postmaster"]);
        assert_eq!(got[0].transfer, Transfer::Bdat);
    }

    #[test]
    fn refused_recipient_and_sequence_errors() {
        let server = server();
        let mut c = Client::connect(&server);
        assert_eq!(c.code("MAIL FROM:<a@example.test>"), "503");
        c.cmd("EHLO client.example");
        assert_eq!(c.code("RCPT TO:<b@example.test>"), "503");
        assert_eq!(c.code("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="), "235");
        assert_eq!(c.code("MAIL FROM:<a@example.test> SIZE=99999999999"), "552");
        assert_eq!(c.code("MAIL FROM:<a@example.test> FOO=1"), "555");
        assert_eq!(c.code("MAIL FROM:<a@example.test> SIZE=10"), "250");
        assert_eq!(c.code("RCPT TO:<reject@example.test>"), "550");
        assert_eq!(c.code("DATA"), "554");
        assert_eq!(c.code("RCPT TO:<bad address>"), "553");
        assert_eq!(c.code("VRFY someone"), "252");
        assert_eq!(c.code("HELP"), "214");
        assert_eq!(c.code("RSET"), "250");
        assert_eq!(c.code("FROB"), "500");
    }

    #[test]
    fn too_long_line_closes_with_500() {
        let server = server();
        let mut c = Client::connect(&server);
        let long = "NOOP ".to_owned() + &"x".repeat(600);
        assert_eq!(c.cmd(&long), ["500 5.5.6 Line too long"]);
        let mut rest = Vec::new();
        let _ = c.reader.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }

    #[test]
    fn oversized_message_is_552_and_not_kept() {
        let server =
            DemoServer::start(DemoConfig::new().port(0).max_message_size(100)).expect("start");
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        assert_eq!(c.code("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="), "235");
        assert_eq!(c.code("MAIL FROM:<a@example.test>"), "250");
        assert_eq!(c.code("RCPT TO:<b@example.test>"), "250");
        assert_eq!(c.code("DATA"), "354");
        let body = "0123456789\r\n".repeat(20) + ".\r\n";
        c.tcp.write_all(body.as_bytes()).unwrap();
        assert_eq!(c.reply()[0][..3], *"552");
        assert_eq!(c.code("NOOP"), "250");
        assert!(server.received().is_empty());
    }

    #[test]
    fn starttls_drops_pipelined_cleartext_then_speaks_tls() {
        let server = server();
        let mut c = Client::connect(&server);
        c.cmd("EHLO client.example");
        // A NOOP injected after STARTTLS in the same packet: were it kept, its bytes would
        // be read as the start of the TLS handshake and the handshake would fail.
        c.tcp.write_all(b"STARTTLS\r\nNOOP\r\n").unwrap();
        assert_eq!(c.reply(), ["220 2.0.0 Ready to start TLS"]);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server.ca_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut tls = StreamOwned::new(conn, c.tcp.try_clone().unwrap());
        tls.write_all(b"EHLO client.example\r\n").unwrap();
        let mut reader = BufReader::new(tls);
        let mut ehlo = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a reply inside TLS");
            let last = line.as_bytes().get(3) == Some(&b' ');
            ehlo.push(line);
            if last {
                break;
            }
        }
        assert!(ehlo[0].starts_with("250-demo.localhost"), "{ehlo:?}");
        assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
        assert!(
            ehlo.iter().any(|l| l.contains("AUTH LOGIN PLAIN")),
            "{ehlo:?}"
        );
    }

    #[test]
    fn stop_closes_idle_connections_and_joins() {
        let server = server();
        let mut c = Client::connect(&server);
        let started = Instant::now();
        server.stop();
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut rest = String::new();
        let _ = c.reader.read_to_string(&mut rest);
        assert!(!rest.starts_with("250"), "{rest:?}");
    }

    #[test]
    fn connections_beyond_the_bound_get_421() {
        let server =
            DemoServer::start(DemoConfig::new().port(0).max_connections(1)).expect("start");
        let _first = Client::connect(&server);
        let tcp = TcpStream::connect(server.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut line = String::new();
        BufReader::new(tcp).read_line(&mut line).unwrap();
        assert!(line.starts_with("421 "), "{line:?}");
    }

    #[test]
    fn non_loopback_addresses_are_refused() {
        let config = DemoConfig::new().bind("0.0.0.0:0".parse().unwrap());
        assert!(DemoServer::start(config).is_err());
    }

    #[test]
    fn parse_path_arg_cases() {
        assert_eq!(parse_path_arg("FROM:<a@b>", "FROM:"), Some(("a@b", "")));
        assert_eq!(
            parse_path_arg("from: <a@b> SIZE=1", "FROM:"),
            Some(("a@b", "SIZE=1"))
        );
        assert_eq!(parse_path_arg("FROM:<>", "FROM:"), Some(("", "")));
        assert_eq!(parse_path_arg("FROM:a@b", "FROM:"), None);
        assert_eq!(parse_path_arg("FROM:<a@b>x", "FROM:"), None);
        assert_eq!(parse_path_arg("FR", "FROM:"), None);
        assert_eq!(parse_path_arg("FROMé:<a>", "FROM:"), None);
    }
}
