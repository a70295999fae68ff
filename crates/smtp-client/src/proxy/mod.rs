//! Connecting through a proxy: SOCKS5 (RFC 1928, RFC 1929) and HTTP CONNECT.
//!
//! [`Proxy`] is a [`ClientConfig`] value: with one set, both clients'
//! `connect` open the TCP connection to the proxy, ask it for a tunnel to the mail server,
//! and run the SMTP session through the tunnel exactly as without a proxy: STARTTLS or
//! implicit TLS check the mail server's certificate against the mail server's name, AUTH is
//! unchanged.
//!
//! [`ProxyHandshake`] is the handshake as a sans-IO machine in the session's shape: the
//! driver writes [`output`](ProxyHandshake::output), passes what it reads to
//! [`handle_input`](ProxyHandshake::handle_input), waits no later than
//! [`poll_timeout`](ProxyHandshake::poll_timeout) and asks [`poll`](ProxyHandshake::poll)
//! what happened. Its states are named for what they wait for. The wire formats are in
//! [`socks5`] and [`http_connect`], each message encoded and parsed side by side.

pub mod http_connect;
pub mod socks5;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use smtp_proto::{Domain, Status};
use zeroize::Zeroizing;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::timeouts::deadline_after;
use crate::tls::TlsMode;
use crate::transcript::{Direction, Transcript, TranscriptFn};

/// The default for the whole proxy handshake, from the TCP connection to the tunnel.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Which proxy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// SOCKS5 (RFC 1928), with username/password (RFC 1929) when credentials are given.
    Socks5,
    /// HTTP CONNECT, with `Proxy-Authorization: Basic` when credentials are given.
    HttpConnect,
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyKind::Socks5 => "SOCKS5",
            ProxyKind::HttpConnect => "HTTP CONNECT",
        })
    }
}

/// A proxy to connect through: its kind, address, optional credentials and the timeout of
/// its handshake.
///
/// ```
/// use std::time::Duration;
/// use smtp_client::{ClientConfig, Proxy, ProxyKind, TlsMode};
///
/// let proxy: Proxy = "socks5://alice@127.0.0.1:1080".parse()?;
/// let proxy = proxy.password("secret").handshake_timeout(Duration::from_secs(10));
/// assert_eq!(proxy.kind(), ProxyKind::Socks5);
/// assert_eq!(proxy.username(), Some("alice"));
/// assert!(!format!("{proxy:?}").contains("secret"));
/// let config = ClientConfig::new("mx.example.test").port(587).proxy(proxy);
/// # Ok::<(), smtp_client::ProxyUrlError>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<Zeroizing<String>>,
    timeout: Duration,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Proxy {
    /// A SOCKS5 proxy at `host` (a name or an address, IPv6 with or without brackets).
    pub fn socks5(host: impl Into<String>, port: u16) -> Proxy {
        Proxy::new(ProxyKind::Socks5, host.into(), port)
    }

    /// An HTTP proxy at `host`, asked for a tunnel with CONNECT.
    pub fn http_connect(host: impl Into<String>, port: u16) -> Proxy {
        Proxy::new(ProxyKind::HttpConnect, host.into(), port)
    }

    fn new(kind: ProxyKind, host: String, port: u16) -> Proxy {
        Proxy {
            kind,
            host,
            port,
            user: None,
            password: None,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// The user name to give the proxy (SOCKS5: RFC 1929, 1 to 255 octets; HTTP: Basic, no
    /// `:`). A password must be given too.
    pub fn user(mut self, user: impl Into<String>) -> Proxy {
        self.user = Some(user.into());
        self
    }

    /// The password to give the proxy. Kept in memory that is wiped when dropped, shown as
    /// `****` in transcripts and never in `Debug`.
    pub fn password(mut self, password: impl Into<String>) -> Proxy {
        self.password = Some(Zeroizing::new(password.into()));
        self
    }

    /// How long the whole proxy handshake may take once the TCP connection is up (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]). The deadline is absolute: a proxy dripping bytes does
    /// not extend it.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Proxy {
        self.timeout = timeout;
        self
    }

    /// The proxy's kind.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host, as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name given to the proxy, if any.
    pub fn username(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The handshake timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The proxy's host without IPv6 brackets, as it is resolved or parsed.
    pub(crate) fn bare_host(&self) -> &str {
        strip_brackets(&self.host)
    }

    /// `host:port` for messages.
    pub(crate) fn display_addr(&self) -> String {
        match self.bare_host().parse::<IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, self.port).to_string(),
            Err(_) => format!("{}:{}", self.host, self.port),
        }
    }

    /// Checks the credentials before any connection: both or neither, each within the
    /// protocol's bounds (1 to 255 octets, no CR, LF or NUL; for HTTP no `:` in the user).
    /// `connect` makes the same check.
    pub fn check(&self) -> Result<(), ProxyError> {
        self.credentials().map(drop)
    }

    /// The credentials, checked: both or neither, each within the protocol's bounds.
    fn credentials(&self) -> Result<Option<(&str, &str)>, ProxyError> {
        let (user, password) = match (&self.user, &self.password) {
            (None, None) => return Ok(None),
            (Some(user), Some(password)) => (user.as_str(), password.as_str()),
            (Some(_), None) => {
                return Err(ProxyError::InvalidCredentials("a user but no password"))
            }
            (None, Some(_)) => {
                return Err(ProxyError::InvalidCredentials("a password but no user"))
            }
        };
        if user.is_empty() || password.is_empty() {
            return Err(ProxyError::InvalidCredentials("an empty user or password"));
        }
        if user.len() > 255 || password.len() > 255 {
            return Err(ProxyError::InvalidCredentials(
                "a user or password longer than 255 octets",
            ));
        }
        if [user, password]
            .iter()
            .any(|s| s.contains(['\r', '\n', '\0']))
        {
            return Err(ProxyError::InvalidCredentials(
                "CR, LF or NUL in the user or password",
            ));
        }
        if self.kind == ProxyKind::HttpConnect && user.contains(':') {
            return Err(ProxyError::InvalidCredentials(
                "a ':' in the user (HTTP Basic cannot carry it)",
            ));
        }
        Ok(Some((user, password)))
    }
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Why a proxy URL was refused by [`Proxy::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proxy {url:?}: {reason}")]
pub struct ProxyUrlError {
    url: String,
    reason: &'static str,
}

impl ProxyUrlError {
    /// What is wrong with it.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl FromStr for Proxy {
    type Err = ProxyUrlError;

    /// `socks5://[user@]host:port`, `socks5h://...` (the same: the proxy always resolves
    /// the mail server's name) or `http://[user@]host:port`. The port is required; a
    /// password in the URL is refused (it would show in process lists and shell history):
    /// give it with [`Proxy::password`].
    fn from_str(url: &str) -> Result<Proxy, ProxyUrlError> {
        let err = |reason| ProxyUrlError {
            // The user part is dropped: it might hold a password given by mistake.
            url: match url.split_once('@') {
                Some((scheme_user, host)) => match scheme_user.split_once("://") {
                    Some((scheme, _)) => format!("{scheme}://…@{host}"),
                    None => format!("…@{host}"),
                },
                None => url.to_owned(),
            },
            reason,
        };
        if url.contains(|c: char| c.is_control() || c == ' ') {
            return Err(err("contains a space or a control character"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| err("no scheme: use socks5://host:port or http://host:port"))?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "socks5" | "socks5h" => ProxyKind::Socks5,
            "http" => ProxyKind::HttpConnect,
            _ => return Err(err("the scheme is not socks5 or http")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(err("a path, query or fragment is not allowed"));
        }
        let (user, host_port) = match rest.rsplit_once('@') {
            Some((user, host_port)) => (Some(user), host_port),
            None => (None, rest),
        };
        if let Some(user) = user {
            if user.contains(':') {
                return Err(err(
                    "a password in the URL is not allowed: give it separately",
                ));
            }
            if user.is_empty() {
                return Err(err("an empty user name"));
            }
        }
        let (host, port) = host_port
            .rsplit_once(':')
            .ok_or_else(|| err("no port: use host:port"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| err("the port is not a number from 1 to 65535"))?;
        if host.is_empty() {
            return Err(err("no host"));
        }
        let bare = strip_brackets(host);
        if bare != host && bare.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(err("brackets hold something other than an IPv6 address"));
        }
        if bare == host && host.contains(':') {
            return Err(err("an IPv6 address must be in brackets"));
        }
        if bare.parse::<IpAddr>().is_err() && Domain::new(bare).is_err() {
            return Err(err("the host is not a valid name or address"));
        }
        let mut proxy = Proxy::new(kind, host.to_owned(), port);
        proxy.user = user.map(str::to_owned);
        Ok(proxy)
    }
}

/// What went wrong with a proxy. Inside [`Error::Proxy`], which names the proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The SOCKS5 proxy refused the CONNECT: its reply code (RFC 1928 6) and meaning.
    #[error("SOCKS5 proxy refused the connection to {target}: reply {code} ({})", socks5::reply_text(*.code))]
    Socks5Refused {
        /// The mail server asked for, `host:port`.
        target: String,
        /// REP, non-zero.
        code: u8,
    },
    /// The HTTP proxy answered CONNECT with a status other than 2xx (and other than the
    /// authentication ones below).
    #[error("HTTP proxy refused the CONNECT to {target}: {status} {reason}")]
    HttpRefused {
        /// The mail server asked for, `host:port`.
        target: String,
        /// The status code.
        status: u16,
        /// The reason phrase, printable ASCII only.
        reason: String,
    },
    /// The proxy wants credentials and none were given (SOCKS5: no acceptable method; HTTP:
    /// 407).
    #[error("the proxy requires credentials (reply {code}): give a proxy user and password")]
    CredentialsRequired {
        /// SOCKS5: 255 (X'FF', no acceptable methods); HTTP: the status (407).
        code: u16,
    },
    /// The proxy refused the credentials given (SOCKS5: a non-zero RFC 1929 status or no
    /// acceptable method; HTTP: 401 or 407).
    #[error("the proxy refused the credentials (reply {code}): check the proxy user and password")]
    CredentialsRejected {
        /// SOCKS5: the RFC 1929 status, or 255 when no method was acceptable; HTTP: the status.
        code: u16,
    },
    /// The proxy's reply is not what its protocol allows.
    #[error("malformed proxy reply: {what} (received {received})")]
    Malformed {
        /// What is wrong.
        what: &'static str,
        /// The start of the reply, escaped.
        received: String,
    },
    /// The proxy's reply exceeded the client's bound.
    #[error("the proxy's reply exceeds {limit} octets or its header count")]
    ReplyTooLong {
        /// The bound, in octets.
        limit: usize,
    },
    /// The handshake did not finish in time.
    #[error("the proxy handshake did not finish within {after:?}")]
    Timeout {
        /// The handshake timeout.
        after: Duration,
    },
    /// The proxy closed the connection before the tunnel was open.
    #[error("the proxy closed the connection during the handshake")]
    Closed,
    /// Bytes came through the tunnel before the implicit-TLS handshake: the mail server
    /// speaks first only in clear, so they are not TLS and the connection is dropped.
    #[error("{len} bytes arrived through the proxy before the TLS handshake")]
    BytesBeforeTls {
        /// How many.
        len: usize,
    },
    /// The proxy credentials cannot be sent (the caller's values).
    #[error("invalid proxy credentials: {0}")]
    InvalidCredentials(&'static str),
    /// The mail server's name cannot be sent to the proxy (the caller's value).
    #[error("the mail server's host {host:?} cannot be sent to the proxy: {reason}")]
    InvalidTarget {
        /// The host, escaped.
        host: String,
        /// Why.
        reason: &'static str,
    },
}

impl ProxyError {
    pub(crate) fn malformed(what: &'static str, received: &[u8]) -> ProxyError {
        let start = &received[..received.len().min(32)];
        ProxyError::Malformed {
            what,
            received: start.escape_ascii().to_string(),
        }
    }

    /// The proxy's reply code this error names, if any: the SOCKS5 REP or RFC 1929 status,
    /// or the HTTP status.
    pub fn reply_code(&self) -> Option<u16> {
        match self {
            ProxyError::Socks5Refused { code, .. } => Some(u16::from(*code)),
            ProxyError::HttpRefused { status, .. } => Some(*status),
            ProxyError::CredentialsRequired { code } | ProxyError::CredentialsRejected { code } => {
                Some(*code)
            }
            _ => None,
        }
    }

    /// True for the caller's own values ([`InvalidCredentials`](Self::InvalidCredentials),
    /// [`InvalidTarget`](Self::InvalidTarget)): nothing was sent.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            ProxyError::InvalidCredentials(_) | ProxyError::InvalidTarget { .. }
        )
    }
}

/// The mail server as the proxy is asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub(crate) host: TargetHost,
    pub(crate) port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetHost {
    /// Sent as a name: the proxy resolves it.
    Name(String),
    /// An address given as such (with or without brackets, or an SMTP address literal).
    Addr(IpAddr),
}

impl Target {
    /// The mail server `host` (a name, an address, `[address]` or an SMTP address literal
    /// `[IPv6:...]`) and `port`. A name must be a valid domain of at most 255 octets.
    pub fn new(host: &str, port: u16) -> Result<Target, ProxyError> {
        let bare = strip_brackets(host);
        let bare = bare.strip_prefix("IPv6:").unwrap_or(bare);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Target {
                host: TargetHost::Addr(ip),
                port,
            });
        }
        let invalid = |reason| ProxyError::InvalidTarget {
            host: host.escape_default().to_string(),
            reason,
        };
        if host.len() > 255 {
            return Err(invalid("longer than 255 octets"));
        }
        if host.starts_with('[') || Domain::new(host).is_err() {
            return Err(invalid("not a valid domain name or address"));
        }
        Ok(Target {
            host: TargetHost::Name(host.to_owned()),
            port,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&http_connect::authority(self))
    }
}

/// What [`ProxyHandshake::poll`] reports.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyEvent {
    /// Write [`output`](ProxyHandshake::output) if any, then read (no later than
    /// [`poll_timeout`](ProxyHandshake::poll_timeout)).
    NeedInput,
    /// The tunnel is open. `early` holds the bytes that came after the proxy's reply: the
    /// start of the mail server's conversation, to be given to the session first.
    Connected {
        /// Bytes already read from the tunnel.
        early: Vec<u8>,
    },
}

/// What the handshake waits for.
#[derive(Debug)]
enum State {
    /// SOCKS5: the proxy's choice of authentication method.
    ExpectMethod,
    /// SOCKS5: the RFC 1929 status.
    ExpectCredentialsStatus,
    /// SOCKS5: the CONNECT reply.
    ExpectSocksReply,
    /// HTTP: the response head to CONNECT.
    ExpectHttpResponse,
    /// The tunnel is open; `early` not yet handed out.
    Connected,
    /// The handshake failed; the error not yet handed out.
    Failed(ProxyError),
    /// The outcome was handed out.
    Finished,
}

/// The proxy handshake, sans-IO: bytes out, bytes in, the deadline as a value.
///
/// ```
/// use std::time::Instant;
/// use smtp_client::{Proxy, ProxyEvent, ProxyHandshake};
///
/// let now = Instant::now();
/// let proxy = Proxy::socks5("127.0.0.1", 1080);
/// let mut hs = ProxyHandshake::new(&proxy, "mx.example.test", 25, now)?;
/// assert_eq!(hs.output(), [5, 1, 0]); // version 5, one method: no authentication
/// hs.consume_output(3);
/// hs.handle_input(&[5, 0]); // the proxy chose it
/// assert_eq!(hs.poll(), Ok(ProxyEvent::NeedInput));
/// assert_eq!(&hs.output()[..5], [5, 1, 0, 3, 15]); // CONNECT, by name
/// hs.consume_output(hs.output().len());
/// hs.handle_input(&[5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40]);
/// hs.handle_input(b"220 mx.example.test ESMTP\r\n");
/// let Ok(ProxyEvent::Connected { early }) = hs.poll() else { panic!() };
/// assert_eq!(early, b"220 mx.example.test ESMTP\r\n");
/// # Ok::<(), smtp_client::ProxyError>(())
/// ```
pub struct ProxyHandshake {
    kind: ProxyKind,
    target: Target,
    /// The user and password, for the RFC 1929 step.
    credentials: Option<(String, Zeroizing<String>)>,
    state: State,
    /// Bytes to send. Wiped when consumed or dropped: they may hold the password.
    out: Zeroizing<Vec<u8>>,
    /// Bytes received and not yet parsed.
    input: Vec<u8>,
    deadline: Instant,
    timeout: Duration,
    transcript: Transcript,
}

impl fmt::Debug for ProxyHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandshake")
            .field("kind", &self.kind)
            .field("target", &self.target)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("state", &self.state)
            .field("output_len", &self.out.len())
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// The most bytes buffered from the proxy before its reply is complete: more than any valid
/// reply (HTTP's head bound; a SOCKS5 reply is at most 262 octets).
const MAX_BUFFERED: usize = http_connect::MAX_RESPONSE_HEAD;

impl ProxyHandshake {
    /// Starts the handshake with `proxy` for the mail server `host` and `port`; the first
    /// message is ready in [`output`](Self::output). The whole handshake must end by
    /// `now` + the proxy's timeout.
    pub fn new(
        proxy: &Proxy,
        host: &str,
        port: u16,
        now: Instant,
    ) -> Result<ProxyHandshake, ProxyError> {
        ProxyHandshake::with_transcript(proxy, host, port, now, None)
    }

    /// [`new`](Self::new), sending each handshake message, described (the password as
    /// `****`), to `transcript` and to `tracing`, like the session's transcript.
    pub fn with_transcript(
        proxy: &Proxy,
        host: &str,
        port: u16,
        now: Instant,
        transcript: Option<TranscriptFn>,
    ) -> Result<ProxyHandshake, ProxyError> {
        let target = Target::new(host, port)?;
        let credentials = proxy.credentials()?;
        let mut hs = ProxyHandshake {
            kind: proxy.kind,
            target,
            credentials: credentials.map(|(u, p)| (u.to_owned(), Zeroizing::new(p.to_owned()))),
            state: State::ExpectMethod,
            out: Zeroizing::new(Vec::new()),
            input: Vec::new(),
            deadline: deadline_after(now, proxy.timeout),
            timeout: proxy.timeout,
            transcript: Transcript::default(),
        };
        hs.transcript.set_callback(transcript);
        match proxy.kind {
            ProxyKind::Socks5 => {
                socks5::encode_greeting(hs.credentials.is_some(), &mut hs.out);
                let methods = if hs.credentials.is_some() {
                    "no authentication, username/password"
                } else {
                    "no authentication"
                };
                hs.record(Direction::Sent, &format!("SOCKS5 methods: {methods}"));
            }
            ProxyKind::HttpConnect => {
                let creds = hs
                    .credentials
                    .as_ref()
                    .map(|(u, p)| (u.as_str(), p.as_str()));
                http_connect::encode_request(&hs.target, creds, &mut hs.out);
                let authority = hs.target.to_string();
                hs.record(Direction::Sent, &format!("CONNECT {authority} HTTP/1.1"));
                hs.record(Direction::Sent, &format!("Host: {authority}"));
                if hs.credentials.is_some() {
                    hs.record(Direction::Sent, "Proxy-Authorization: Basic ****");
                }
                hs.state = State::ExpectHttpResponse;
            }
        }
        Ok(hs)
    }

    fn record(&mut self, direction: Direction, line: &str) {
        self.transcript.line(direction, line);
    }

    /// Bytes to write to the proxy.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Marks `n` bytes of [`output`](Self::output) as written.
    pub fn consume_output(&mut self, n: usize) {
        if n >= self.out.len() {
            zeroize::Zeroize::zeroize(&mut *self.out);
        } else {
            self.out.drain(..n);
        }
    }

    /// The instant by which the handshake must be over, while it is not.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.is_waiting().then_some(self.deadline)
    }

    fn is_waiting(&self) -> bool {
        matches!(
            self.state,
            State::ExpectMethod
                | State::ExpectCredentialsStatus
                | State::ExpectSocksReply
                | State::ExpectHttpResponse
        )
    }

    /// Tells the handshake that `now` has come: past the deadline it fails with
    /// [`ProxyError::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_waiting() && now >= self.deadline {
            self.state = State::Failed(ProxyError::Timeout {
                after: self.timeout,
            });
        }
    }

    /// The proxy closed the connection.
    pub fn handle_eof(&mut self) {
        if self.is_waiting() {
            self.state = State::Failed(ProxyError::Closed);
        }
    }

    /// Bytes read from the proxy. Parsed at once; bytes after the proxy's last reply are kept
    /// for [`ProxyEvent::Connected`].
    pub fn handle_input(&mut self, bytes: &[u8]) {
        match self.state {
            State::Failed(_) | State::Finished => return,
            _ => self.input.extend_from_slice(bytes),
        }
        while self.is_waiting() {
            match self.step() {
                Ok(true) => {}
                Ok(false) => {
                    if self.input.len() > MAX_BUFFERED {
                        self.state = State::Failed(ProxyError::ReplyTooLong {
                            limit: MAX_BUFFERED,
                        });
                    }
                    return;
                }
                Err(err) => self.state = State::Failed(err),
            }
        }
    }

    /// Parses one reply from the buffered input; `Ok(false)` when it is not all in.
    fn step(&mut self) -> Result<bool, ProxyError> {
        let consumed = match self.state {
            State::ExpectMethod => {
                let Status::Complete((method, n)) = socks5::parse_method_reply(&self.input)? else {
                    return Ok(false);
                };
                self.on_method(method)?;
                n
            }
            State::ExpectCredentialsStatus => {
                let Status::Complete((status, n)) = socks5::parse_credentials_reply(&self.input)?
                else {
                    return Ok(false);
                };
                if status != 0 {
                    self.record(
                        Direction::Received,
                        &format!("SOCKS5 username/password: refused ({status})"),
                    );
                    return Err(ProxyError::CredentialsRejected {
                        code: u16::from(status),
                    });
                }
                self.record(Direction::Received, "SOCKS5 username/password: accepted");
                self.send_socks_connect();
                n
            }
            State::ExpectSocksReply => {
                let Status::Complete((reply, n)) = socks5::parse_connect_reply(&self.input)? else {
                    return Ok(false);
                };
                let text = socks5::reply_text(reply.code);
                if reply.code != 0 {
                    self.record(
                        Direction::Received,
                        &format!("SOCKS5 reply {}: {text}", reply.code),
                    );
                    return Err(ProxyError::Socks5Refused {
                        target: self.target.to_string(),
                        code: reply.code,
                    });
                }
                self.record(
                    Direction::Received,
                    &format!("SOCKS5 reply 0: {text}, bound {}", reply.bound),
                );
                self.state = State::Connected;
                n
            }
            State::ExpectHttpResponse => {
                let Status::Complete((response, n)) = http_connect::parse_response(&self.input)?
                else {
                    return Ok(false);
                };
                self.record(
                    Direction::Received,
                    &format!("HTTP {} {}", response.status, response.reason),
                );
                self.on_http_response(response)?;
                n
            }
            State::Connected | State::Failed(_) | State::Finished => return Ok(false),
        };
        self.input.drain(..consumed);
        Ok(true)
    }

    fn on_method(&mut self, method: socks5::Method) -> Result<(), ProxyError> {
        use socks5::Method;
        match method {
            Method::NoAuth => {
                self.record(Direction::Received, "SOCKS5 method: no authentication");
                self.send_socks_connect();
                Ok(())
            }
            Method::UsernamePassword => {
                let Some((user, password)) = &self.credentials else {
                    return Err(ProxyError::malformed(
                        "SOCKS5 method selection: a method that was not offered",
                        &self.input[..2],
                    ));
                };
                socks5::encode_credentials(user, password, &mut self.out);
                let line = format!("SOCKS5 username/password: {user} ****");
                self.record(Direction::Received, "SOCKS5 method: username/password");
                self.record(Direction::Sent, &line);
                self.state = State::ExpectCredentialsStatus;
                Ok(())
            }
            Method::NoneAcceptable => {
                self.record(Direction::Received, "SOCKS5 method: none acceptable");
                Err(if self.credentials.is_some() {
                    ProxyError::CredentialsRejected { code: 0xff }
                } else {
                    ProxyError::CredentialsRequired { code: 0xff }
                })
            }
            Method::Other(_) => Err(ProxyError::malformed(
                "SOCKS5 method selection: a method that was not offered",
                &self.input[..2],
            )),
        }
    }

    fn send_socks_connect(&mut self) {
        socks5::encode_connect(&self.target, &mut self.out);
        let line = format!("SOCKS5 CONNECT {}", self.target);
        self.record(Direction::Sent, &line);
        self.state = State::ExpectSocksReply;
    }

    fn on_http_response(&mut self, response: http_connect::Response) -> Result<(), ProxyError> {
        let code = response.status;
        match code {
            200..=299 => {
                self.state = State::Connected;
                Ok(())
            }
            // tinyproxy answers wrong credentials with 401, missing ones with 407.
            401 | 407 if self.credentials.is_some() => {
                Err(ProxyError::CredentialsRejected { code })
            }
            407 => Err(ProxyError::CredentialsRequired { code }),
            _ => Err(ProxyError::HttpRefused {
                target: self.target.to_string(),
                status: code,
                reason: response.reason,
            }),
        }
    }

    /// What happened: the tunnel is open, more input is needed, or the handshake failed
    /// (once; afterwards every call is [`ProxyError::Closed`]).
    pub fn poll(&mut self) -> Result<ProxyEvent, ProxyError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Connected => Ok(ProxyEvent::Connected {
                early: std::mem::take(&mut self.input),
            }),
            State::Failed(err) => Err(err),
            State::Finished => Err(ProxyError::Closed),
            waiting => {
                self.state = waiting;
                Ok(ProxyEvent::NeedInput)
            }
        }
    }
}

// ----- The driver's side -----------------------------------------------------------------

/// Size of each read from the proxy.
const READ_BUF: usize = 4 * 1024;

/// What the driver does next for the proxy handshake (as [`crate::driver::Step`] for the
/// session).
pub(crate) enum ProxyStep<'a> {
    /// Write all of these, then [`ProxyConnect::written`].
    Write(&'a [u8]),
    /// Read once into `buf`, returning no later than `deadline` (a timeout is an
    /// `io::ErrorKind::TimedOut` error), then [`ProxyConnect::read`].
    Read {
        buf: &'a mut [u8],
        deadline: Instant,
    },
    /// Over: the bytes already read from the tunnel, or the error.
    Done(Result<Vec<u8>, Error>),
}

/// The proxy handshake as the drivers run it: decides every step and what each result means,
/// so the blocking and the async driver only move bytes.
pub(crate) struct ProxyConnect {
    hs: ProxyHandshake,
    proxy: String,
    implicit_tls: bool,
    read_buf: Box<[u8]>,
    failed: Option<Error>,
}

impl ProxyConnect {
    /// The handshake with `config`'s proxy for `host` at `config`'s port.
    pub(crate) fn new(
        proxy: &Proxy,
        config: &ClientConfig,
        host: &str,
    ) -> Result<ProxyConnect, Error> {
        let name = proxy.display_addr();
        let hs = ProxyHandshake::with_transcript(
            proxy,
            host,
            config.effective_port(),
            Instant::now(),
            config.transcript_fn(),
        )
        .map_err(|error| Error::Proxy {
            proxy: name.clone(),
            error,
        })?;
        Ok(ProxyConnect {
            hs,
            proxy: name,
            implicit_tls: config.tls_mode == TlsMode::Implicit,
            read_buf: vec![0; READ_BUF].into_boxed_slice(),
            failed: None,
        })
    }

    fn error(&self, error: ProxyError) -> Error {
        Error::Proxy {
            proxy: self.proxy.clone(),
            error,
        }
    }

    pub(crate) fn next_step(&mut self) -> ProxyStep<'_> {
        if let Some(err) = self.failed.take() {
            return ProxyStep::Done(Err(err));
        }
        if !self.hs.output().is_empty() {
            return ProxyStep::Write(self.hs.output());
        }
        match self.hs.poll() {
            Ok(ProxyEvent::NeedInput) => {
                let now = Instant::now();
                match self.hs.poll_timeout() {
                    Some(deadline) if now < deadline => ProxyStep::Read {
                        buf: &mut self.read_buf,
                        deadline,
                    },
                    _ => {
                        self.hs.handle_timeout(now);
                        self.next_step()
                    }
                }
            }
            Ok(ProxyEvent::Connected { early }) => {
                if self.implicit_tls && !early.is_empty() {
                    let len = early.len();
                    return ProxyStep::Done(Err(self.error(ProxyError::BytesBeforeTls { len })));
                }
                ProxyStep::Done(Ok(early))
            }
            Err(err) => ProxyStep::Done(Err(self.error(err))),
        }
    }

    pub(crate) fn written(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => {
                let n = self.hs.output().len();
                self.hs.consume_output(n);
            }
            Err(source) => {
                self.failed = Some(Error::Io {
                    op: format!("writing to the proxy {}", self.proxy),
                    source,
                })
            }
        }
    }

    pub(crate) fn read(&mut self, result: io::Result<usize>) {
        match result {
            Ok(0) => self.hs.handle_eof(),
            Ok(n) => self.hs.handle_input(&self.read_buf[..n]),
            Err(e) if crate::driver::is_timeout(&e) => self.hs.handle_timeout(Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.hs.handle_eof(),
            Err(source) => {
                self.failed = Some(Error::Io {
                    op: format!("reading from the proxy {}", self.proxy),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
