//! The client's configuration, for both drivers (the blocking [`SmtpClient`](crate::SmtpClient)
//! and, with feature `tokio`, `tokio::AsyncSmtpClient`): Net::SMTP's constructor options.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use smtp_proto::{Domain, ReplyLimits};

use crate::proxy::Proxy;
use crate::session::Protocol;
use crate::timeouts::Timeouts;
use crate::tls::{TlsConfig, TlsMode};
use crate::transcript::{Direction, TranscriptFn};

type SharedTranscript = Arc<Mutex<dyn FnMut(Direction, &str) + Send>>;

/// How to reach the server and behave on the connection: Net::SMTP's `new` options.
///
/// ```
/// use std::time::Duration;
/// use smtp_client::{ClientConfig, TlsMode, Timeouts};
/// let config = ClientConfig::new("mx1.example.test")
///     .host("mx2.example.test")            // tried in order, like Net::SMTP's host list
///     .tls_mode(TlsMode::StartTlsRequired)  // the default
///     .timeouts(Timeouts::uniform(Duration::from_secs(60)));
/// assert_eq!(config.effective_port(), 25);
/// assert_eq!(config.hosts(), ["mx1.example.test", "mx2.example.test"]);
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) hosts: Vec<String>,
    pub(crate) port: Option<u16>,
    pub(crate) hello: Option<Domain>,
    pub(crate) local_addr: Option<IpAddr>,
    pub(crate) local_port: Option<u16>,
    pub(crate) timeouts: Timeouts,
    pub(crate) tls_mode: TlsMode,
    pub(crate) tls: TlsConfig,
    pub(crate) send_hello: bool,
    pub(crate) pipelining: bool,
    pub(crate) reply_limits: ReplyLimits,
    pub(crate) transcript: Option<SharedTranscript>,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) protocol: Protocol,
    pub(crate) unix_socket: Option<PathBuf>,
    pub(crate) family: AddressFamily,
}

/// Which addresses of a host are tried: Net::SMTP's `Domain` (the socket domain,
/// `AF_INET` or `AF_INET6`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AddressFamily {
    /// Every address, IPv4 and IPv6, in the order the resolver gives them (the default).
    #[default]
    Any,
    /// IPv4 addresses only (`AF_INET`).
    Ipv4,
    /// IPv6 addresses only (`AF_INET6`).
    Ipv6,
}

impl AddressFamily {
    /// Whether `ip` may be tried.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            AddressFamily::Any => true,
            AddressFamily::Ipv4 => ip.is_ipv4(),
            AddressFamily::Ipv6 => ip.is_ipv6(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("hosts", &self.hosts)
            .field("port", &self.effective_port())
            .field("hello", &self.hello)
            .field("local_addr", &self.local_addr)
            .field("local_port", &self.local_port)
            .field("timeouts", &self.timeouts)
            .field("tls_mode", &self.tls_mode)
            .field("tls", &self.tls)
            .field("send_hello", &self.send_hello)
            .field("pipelining", &self.pipelining)
            .field("protocol", &self.protocol)
            .field("unix_socket", &self.unix_socket)
            .field("family", &self.family)
            .field("transcript", &self.transcript.as_ref().map(|_| "FnMut"))
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl ClientConfig {
    /// A configuration for one host (a name, an IPv4 address, or an IPv6 address with or
    /// without brackets), STARTTLS required, default timeouts.
    pub fn new(host: impl Into<String>) -> ClientConfig {
        ClientConfig {
            hosts: vec![host.into()],
            port: None,
            hello: None,
            local_addr: None,
            local_port: None,
            timeouts: Timeouts::default(),
            tls_mode: TlsMode::default(),
            tls: TlsConfig::default(),
            send_hello: true,
            pipelining: true,
            reply_limits: ReplyLimits::default(),
            transcript: None,
            proxy: None,
            protocol: Protocol::Smtp,
            unix_socket: None,
            family: AddressFamily::Any,
        }
    }

    /// Adds another host, tried after the previous ones fail (Net::SMTP's list of hosts).
    pub fn host(mut self, host: impl Into<String>) -> ClientConfig {
        self.hosts.push(host.into());
        self
    }

    /// The port (default: 465 for implicit TLS, 25 otherwise).
    pub fn port(mut self, port: u16) -> ClientConfig {
        self.port = Some(port);
        self
    }

    /// The name sent with EHLO/HELO (Net::SMTP's `Hello`). Default: the local host name when
    /// it is a fully qualified domain name, else the local address as an address literal.
    pub fn hello(mut self, domain: Domain) -> ClientConfig {
        self.hello = Some(domain);
        self
    }

    /// Which addresses are tried (Net::SMTP's `Domain`): IPv4 only, IPv6 only, or any (the
    /// default). An address of the other family, resolved or given as the host, is skipped
    /// and listed in [`Error::Connect`](crate::Error::Connect) when nothing is left.
    pub fn family(mut self, family: AddressFamily) -> ClientConfig {
        self.family = family;
        self
    }

    /// The local address to connect from (Net::SMTP's `LocalAddr`): the socket is bound to
    /// it before connecting, so the server sees it as the client's address. An address of
    /// the other family than the server's fails that attempt with
    /// [`io::ErrorKind::InvalidInput`](std::io::ErrorKind::InvalidInput) (listed in
    /// [`Error::Connect`](crate::Error::Connect)); combine with
    /// [`family`](Self::family) to try only the server's addresses of the same family. Not
    /// used over a Unix-domain socket.
    ///
    /// ```
    /// use smtp_client::{AddressFamily, ClientConfig};
    /// let config = ClientConfig::new("mx.example.test")
    ///     .local_addr("192.0.2.25".parse().unwrap())
    ///     .family(AddressFamily::Ipv4);
    /// # let _ = config;
    /// ```
    pub fn local_addr(mut self, addr: IpAddr) -> ClientConfig {
        self.local_addr = Some(addr);
        self
    }

    /// The local port to connect from (Net::SMTP's `LocalPort`), with the configured local
    /// address or the unspecified one of the server's family.
    pub fn local_port(mut self, port: u16) -> ClientConfig {
        self.local_port = Some(port);
        self
    }

    /// All timeouts (Net::SMTP's `Timeout`, split by phase).
    pub fn timeouts(mut self, timeouts: Timeouts) -> ClientConfig {
        self.timeouts = timeouts;
        self
    }

    /// How the connection is protected (Net::SMTP's `SSL` is [`TlsMode::Implicit`]).
    pub fn tls_mode(mut self, mode: TlsMode) -> ClientConfig {
        self.tls_mode = mode;
        self
    }

    /// Which certificates are trusted, and the name they must carry.
    pub fn tls(mut self, tls: TlsConfig) -> ClientConfig {
        self.tls = tls;
        self
    }

    /// Whether EHLO is sent right after the greeting (Net::SMTP's `SendHello`, default true).
    /// Without it, STARTTLS is not attempted at connect time either.
    pub fn send_hello(mut self, yes: bool) -> ClientConfig {
        self.send_hello = yes;
        self
    }

    /// Whether PIPELINING is used when the server offers it (default true). Off, every
    /// command waits for its reply, as Net::SMTP does.
    pub fn pipelining(mut self, yes: bool) -> ClientConfig {
        self.pipelining = yes;
        self
    }

    /// SMTP (the default) or LMTP (RFC 2033): LHLO instead of EHLO, and one reply per
    /// recipient after the data ([`SendReport::per_recipient`](crate::SendReport::per_recipient)).
    pub fn protocol(mut self, protocol: Protocol) -> ClientConfig {
        self.protocol = protocol;
        self
    }

    /// Connects to this Unix-domain socket instead of the hosts (where LMTP servers usually
    /// listen). The host given to [`new`](Self::new) only names the server in errors; the
    /// EHLO/LHLO name defaults to `localhost`. There is no TLS over a local socket: any
    /// [`TlsMode`] but [`TlsMode::None`] is [`Error::Unsupported`](crate::Error::Unsupported)
    /// before connecting.
    ///
    /// ```
    /// use smtp_client::{ClientConfig, Protocol, TlsMode};
    /// let config = ClientConfig::new("localhost")
    ///     .unix_socket("/var/run/dovecot/lmtp")
    ///     .protocol(Protocol::Lmtp)
    ///     .tls_mode(TlsMode::None);
    /// assert!(config.unix_socket_path().is_some());
    /// ```
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> ClientConfig {
        self.unix_socket = Some(path.into());
        self
    }

    /// The Unix-domain socket connected to instead of the hosts, if any.
    pub fn unix_socket_path(&self) -> Option<&std::path::Path> {
        self.unix_socket.as_deref()
    }

    /// Bounds on each reply from the server.
    pub fn reply_limits(mut self, limits: ReplyLimits) -> ClientConfig {
        self.reply_limits = limits;
        self
    }

    /// Calls `callback` with every line sent and received (Net::Cmd's `Debug`). AUTH payloads
    /// are masked as `****`; the body is summarised. The same lines also go to `tracing`
    /// (target [`TRANSCRIPT_TARGET`](crate::TRANSCRIPT_TARGET), level DEBUG).
    pub fn transcript(
        mut self,
        callback: impl FnMut(Direction, &str) + Send + 'static,
    ) -> ClientConfig {
        self.transcript = Some(Arc::new(Mutex::new(callback)));
        self
    }

    /// Connects through `proxy`: `connect` opens the TCP connection to the proxy and asks
    /// it for a tunnel to each host in turn (SOCKS5: by name, so the proxy resolves it).
    /// Everything above is unchanged: TLS checks the mail server's certificate against the
    /// mail server's name, never the proxy's. `open` on a socket of one's own runs no proxy
    /// handshake.
    pub fn proxy(mut self, proxy: Proxy) -> ClientConfig {
        self.proxy = Some(proxy);
        self
    }

    /// The proxy, if one is set.
    pub fn proxy_config(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// The hosts, in the order they are tried.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The port that will be used.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls_mode.default_port())
    }

    /// The TLS mode.
    pub fn mode(&self) -> TlsMode {
        self.tls_mode
    }

    pub(crate) fn transcript_fn(&self) -> Option<TranscriptFn> {
        let shared = self.transcript.clone()?;
        Some(Box::new(move |direction, line| {
            if let Ok(mut f) = shared.lock() {
                f(direction, line);
            }
        }))
    }
}
