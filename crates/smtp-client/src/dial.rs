//! Connecting: which host and address come next, and which error ends a failed connect.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::config::{AddressFamily, ClientConfig};
use crate::error::{ConnectAttempt, Error};

/// Where a client is connected: a TCP address, or a Unix-domain socket's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A TCP connection to this address.
    Tcp(SocketAddr),
    /// A Unix-domain socket at this path ([`ClientConfig::unix_socket`]).
    Unix(PathBuf),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Refuses what cannot be done over a Unix-domain socket, before connecting: TLS.
pub(crate) fn check_unix_socket(config: &ClientConfig) -> Result<(), Error> {
    if config.tls_mode != crate::tls::TlsMode::None {
        return Err(Error::Unsupported(
            "TLS over a Unix-domain socket (set TlsMode::None)",
        ));
    }
    Ok(())
}

/// What the driver must do next to connect.
#[derive(Debug)]
pub(crate) enum DialStep {
    /// Resolve this name (brackets removed) and pass the result to [`Dialer::resolved`].
    Resolve { name: String, port: u16 },
    /// Connect to this address; then [`Dialer::connect_failed`], or run the session over the
    /// socket and, if that fails, [`Dialer::session_failed`].
    Connect { host: String, addr: SocketAddr },
    /// Nothing left to try: the error to return.
    Failed(Error),
}

/// The order in which hosts and addresses are tried, and the error when all fail.
///
/// Each host in turn, each of its addresses (IPv4 and IPv6) in turn. A host whose TCP
/// connection was accepted but whose session failed (bad greeting, TLS required but not
/// offered...) is given up and the next host tried; the last such error is returned, else
/// [`Error::Connect`] with every attempt.
#[derive(Debug)]
pub(crate) struct Dialer {
    hosts: VecDeque<String>,
    port: u16,
    current: Option<String>,
    addrs: VecDeque<SocketAddr>,
    attempts: Vec<ConnectAttempt>,
    last_error: Option<Error>,
    /// With a proxy: its host (brackets removed), port and `host:port` for messages. Every
    /// connection goes to the proxy; the host is what the proxy is asked for.
    proxy: Option<(String, u16, String)>,
    family: AddressFamily,
}

impl Dialer {
    pub(crate) fn new(config: &ClientConfig) -> Dialer {
        Dialer {
            hosts: config.hosts.iter().cloned().collect(),
            port: config.effective_port(),
            current: None,
            addrs: VecDeque::new(),
            attempts: Vec::new(),
            last_error: None,
            proxy: config
                .proxy
                .as_ref()
                .map(|p| (p.bare_host().to_owned(), p.port(), p.display_addr())),
            family: config.family,
        }
    }

    /// Queues `addr` unless the configured family excludes it; an excluded one is listed
    /// among the attempts.
    fn add(&mut self, addr: SocketAddr) {
        if self.family.allows(addr.ip()) {
            self.addrs.push_back(addr);
        } else {
            self.attempts.push(ConnectAttempt {
                host: self.current.clone().unwrap_or_default(),
                address: Some(addr),
                error: io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("skipped: not {:?} (ClientConfig::family)", self.family),
                ),
            });
        }
    }

    pub(crate) fn next_step(&mut self) -> DialStep {
        loop {
            if let (Some(host), Some(addr)) = (&self.current, self.addrs.pop_front()) {
                return DialStep::Connect {
                    host: host.clone(),
                    addr,
                };
            }
            let Some(host) = self.hosts.pop_front() else {
                let attempts = std::mem::take(&mut self.attempts);
                return DialStep::Failed(
                    self.last_error
                        .take()
                        .unwrap_or(Error::Connect { attempts }),
                );
            };
            let (bare, port) = match &self.proxy {
                Some((proxy, port, _)) => (proxy.clone(), *port),
                None => {
                    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
                    (bare.unwrap_or(&host).to_owned(), self.port)
                }
            };
            self.current = Some(host);
            if let Ok(ip) = bare.parse::<IpAddr>() {
                self.add(SocketAddr::new(ip, port));
                continue;
            }
            return DialStep::Resolve { name: bare, port };
        }
    }

    pub(crate) fn resolved(&mut self, result: io::Result<impl IntoIterator<Item = SocketAddr>>) {
        match result {
            Ok(addrs) => addrs.into_iter().for_each(|a| self.add(a)),
            Err(error) => self.attempts.push(ConnectAttempt {
                host: self.attempt_host(),
                address: None,
                error,
            }),
        }
    }

    pub(crate) fn connect_failed(&mut self, addr: SocketAddr, error: io::Error) {
        self.attempts.push(ConnectAttempt {
            host: self.attempt_host(),
            address: Some(addr),
            error,
        });
    }

    /// The host of a failed attempt: with a proxy, the proxy and what it was to be asked for.
    fn attempt_host(&self) -> String {
        let host = self.current.clone().unwrap_or_default();
        match &self.proxy {
            Some((_, _, proxy)) => format!("proxy {proxy} (for {host})"),
            None => host,
        }
    }

    pub(crate) fn session_failed(&mut self, addr: SocketAddr, error: Error) {
        let host = self.current.as_deref().unwrap_or_default();
        tracing::debug!(host = %host, %addr, error = %error, "SMTP session failed");
        self.last_error = Some(error);
        self.addrs.clear();
    }
}

/// A TCP socket for `addr`, not yet connected: TCP_NODELAY set, bound to the configured
/// local address and port when there are any.
pub(crate) fn tcp_socket(addr: SocketAddr, config: &ClientConfig) -> io::Result<socket2::Socket> {
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
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_proxy_every_host_is_reached_through_the_proxy() {
        let proxy = crate::Proxy::socks5("[::1]", 1080);
        let config = ClientConfig::new("mx1.example.test")
            .host("192.0.2.1")
            .port(587)
            .proxy(proxy);
        let mut dial = Dialer::new(&config);
        let DialStep::Connect { host, addr } = dial.next_step() else {
            panic!("the proxy's address needs no lookup; the mail host is not resolved");
        };
        assert_eq!(
            (host.as_str(), addr),
            ("mx1.example.test", "[::1]:1080".parse().unwrap())
        );
        dial.connect_failed(addr, io::Error::from(io::ErrorKind::ConnectionRefused));
        let DialStep::Connect { host, addr } = dial.next_step() else {
            panic!("second host");
        };
        assert_eq!((host.as_str(), addr.port()), ("192.0.2.1", 1080));
        dial.connect_failed(addr, io::Error::from(io::ErrorKind::ConnectionRefused));
        let DialStep::Failed(err) = dial.next_step() else {
            panic!("all failed");
        };
        assert!(
            err.to_string()
                .contains("proxy [::1]:1080 (for mx1.example.test) ([::1]:1080)"),
            "{err}"
        );
    }

    #[test]
    fn dialer_tries_each_host_and_reports_every_attempt() {
        let config = ClientConfig::new("[::1]").host("127.0.0.1").port(2525);
        let mut dial = Dialer::new(&config);
        let DialStep::Connect { host, addr } = dial.next_step() else {
            panic!("an address literal needs no lookup");
        };
        assert_eq!(
            (host.as_str(), addr),
            ("[::1]", "[::1]:2525".parse().unwrap())
        );
        dial.connect_failed(addr, io::Error::from(io::ErrorKind::ConnectionRefused));
        let DialStep::Connect { addr, .. } = dial.next_step() else {
            panic!("second host");
        };
        dial.connect_failed(addr, io::Error::from(io::ErrorKind::ConnectionRefused));
        let DialStep::Failed(Error::Connect { attempts }) = dial.next_step() else {
            panic!("all failed");
        };
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[1].host, "127.0.0.1");
    }

    #[test]
    fn the_family_keeps_only_its_addresses() {
        let config = ClientConfig::new("mx.example.test")
            .host("[::1]")
            .family(AddressFamily::Ipv4);
        let mut dial = Dialer::new(&config);
        let DialStep::Resolve { .. } = dial.next_step() else {
            panic!("a name is resolved");
        };
        let both: [SocketAddr; 2] = [
            "[2001:db8::7]:25".parse().unwrap(),
            "192.0.2.7:25".parse().unwrap(),
        ];
        dial.resolved(Ok(both));
        let DialStep::Connect { addr, .. } = dial.next_step() else {
            panic!("the IPv4 address");
        };
        assert_eq!(addr, both[1]);
        dial.connect_failed(addr, io::Error::from(io::ErrorKind::ConnectionRefused));
        // The IPv6 literal host is skipped too: nothing left.
        let DialStep::Failed(Error::Connect { attempts }) = dial.next_step() else {
            panic!("all failed or skipped");
        };
        let skipped: Vec<_> = attempts
            .iter()
            .filter(|a| a.error.kind() == io::ErrorKind::Unsupported)
            .map(|a| a.address.unwrap())
            .collect();
        assert_eq!(skipped, [both[0], "[::1]:25".parse().unwrap()]);
        assert_eq!(attempts.len(), 3);
    }

    #[test]
    fn dialer_moves_to_the_next_host_after_a_session_failure() {
        let config = ClientConfig::new("mx1.example.test").host("192.0.2.1");
        let mut dial = Dialer::new(&config);
        let DialStep::Resolve { name, port } = dial.next_step() else {
            panic!("a name is resolved");
        };
        assert_eq!((name.as_str(), port), ("mx1.example.test", 25));
        let two: [SocketAddr; 2] = [
            "192.0.2.7:25".parse().unwrap(),
            "192.0.2.8:25".parse().unwrap(),
        ];
        dial.resolved(Ok(two));
        let DialStep::Connect { addr, .. } = dial.next_step() else {
            panic!("first address");
        };
        assert_eq!(addr, two[0]);
        dial.session_failed(addr, Error::Internal("bad greeting"));
        let DialStep::Connect { host, .. } = dial.next_step() else {
            panic!("the second address of the failed host is skipped");
        };
        assert_eq!(host, "192.0.2.1");
        dial.connect_failed(addr, io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(
            dial.next_step(),
            DialStep::Failed(Error::Internal("bad greeting"))
        ));
    }
}
