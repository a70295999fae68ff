//! How the demo server behaves: its address, users, bounds and policies, built fluently from
//! [`DemoConfig::new`], and the well-known defaults (port, demo user) the CLI and tests share.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use sasl_mechs::Secret;

/// The port the demo server listens on by default (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 12600;

/// The demo user's name.
pub const DEMO_USER: &str = "demo";

/// The demo user's password. It is public: the demo server accepts connections from
/// loopback only and delivers nowhere.
pub const DEMO_PASSWORD: &str = "demo-password";

/// How the demo server behaves. Built fluently from [`DemoConfig::new`].
///
/// ```
/// use smtp_demo_server::{DemoConfig, DEFAULT_PORT};
/// let config = DemoConfig::new().user("alice", "alice-pw").max_message_size(1 << 20);
/// assert_eq!(config.addr().port(), DEFAULT_PORT);
/// ```
#[derive(Clone)]
pub struct DemoConfig {
    pub(crate) addr: SocketAddr,
    pub(crate) hostname: String,
    pub(crate) users: Vec<(String, Secret)>,
    pub(crate) max_connections: usize,
    pub(crate) max_message_size: usize,
    pub(crate) max_recipients: usize,
    pub(crate) read_timeout: Duration,
    pub(crate) require_auth: bool,
    pub(crate) implicit_tls: bool,
    pub(crate) refuse_local_part: Option<String>,
    pub(crate) client_certificates: bool,
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
            .field("client_certificates", &self.client_certificates)
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
            client_certificates: false,
        }
    }

    /// The port on 127.0.0.1 (0: one the kernel picks, for tests).
    pub fn port(mut self, port: u16) -> DemoConfig {
        self.addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        self
    }

    /// The address to listen on. Only loopback addresses are accepted by
    /// [`DemoServer::start`](crate::DemoServer::start).
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

    /// Whether the TLS handshake asks the client for a certificate (default false). A
    /// client may present none; one it presents must have been issued by the demo client
    /// CA ([`DemoServer::issue_client_certificate`](crate::DemoServer::issue_client_certificate)),
    /// else the handshake fails. Once TLS is up with such a certificate, the server offers
    /// AUTH EXTERNAL (RFC 4422 appendix A), which authenticates the client as the user the
    /// certificate was issued to.
    pub fn client_certificates(mut self, yes: bool) -> DemoConfig {
        self.client_certificates = yes;
        self
    }

    /// The address the server will listen on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
