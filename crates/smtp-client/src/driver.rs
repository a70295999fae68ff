//! What the blocking and the async driver share: every decision that is not moving bytes.
//!
//! A driver connects a socket, writes [`Session::output`], reads into
//! [`Session::handle_input`], reads the caller's body, and runs the TLS handshake. Which
//! address comes next, which error a failed connect ends with, how long a read may wait, what
//! a read's result means to the session, how the body is cut into chunks and which outcome
//! a method returns are decided here, once, so the two drivers cannot drift apart.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use smtp_proto::Domain;

use crate::config::ClientConfig;
use crate::error::{ConnectAttempt, Error};
use crate::session::{Outcome, Session, SessionConfig};
use crate::timeouts::{deadline_after, Timeouts};

/// Size of each chunk of the body read from the caller and pushed into the session.
pub const BODY_CHUNK: usize = 64 * 1024;

/// Above this many buffered bytes, `datasend` writes them out.
pub(crate) const DATASEND_FLUSH: usize = 64 * 1024;

/// Size of the buffer each read from the connection goes into.
pub(crate) const READ_BUF: usize = 64 * 1024;

// ----- Connecting ------------------------------------------------------------------------

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
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(&host)
                .to_owned();
            self.current = Some(host);
            if let Ok(ip) = bare.parse::<IpAddr>() {
                self.addrs.push_back(SocketAddr::new(ip, self.port));
                continue;
            }
            return DialStep::Resolve {
                name: bare,
                port: self.port,
            };
        }
    }

    pub(crate) fn resolved(&mut self, result: io::Result<impl IntoIterator<Item = SocketAddr>>) {
        match result {
            Ok(addrs) => self.addrs.extend(addrs),
            Err(error) => self.attempts.push(ConnectAttempt {
                host: self.current.clone().unwrap_or_default(),
                address: None,
                error,
            }),
        }
    }

    pub(crate) fn connect_failed(&mut self, addr: SocketAddr, error: io::Error) {
        self.attempts.push(ConnectAttempt {
            host: self.current.clone().unwrap_or_default(),
            address: Some(addr),
            error,
        });
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

// ----- The session -----------------------------------------------------------------------

/// The session for a connection from `local`, configured from `config`.
pub(crate) fn new_session(config: &ClientConfig, local: SocketAddr) -> Session {
    let client_id = match &config.hello {
        Some(d) => d.clone(),
        None => default_client_id(local),
    };
    let mut session_config = SessionConfig::new(client_id);
    session_config.timeouts = config.timeouts;
    session_config.reply_limits = config.reply_limits;
    session_config.send_hello = config.send_hello;
    session_config.pipelining = config.pipelining;
    session_config.tls = config.tls_mode;
    let mut session = Session::new(session_config);
    session.set_transcript(config.transcript_fn());
    session
}

/// The EHLO name when none is configured: the host name if it is a fully qualified domain,
/// else the local address as an address literal (RFC 5321 4.1.4).
pub(crate) fn default_client_id(local: SocketAddr) -> Domain {
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

/// Which handshake a driver runs, and so how long it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// RFC 8314 implicit TLS, before the greeting: the greeting timeout.
    Implicit,
    /// After a 220 to STARTTLS: the command timeout.
    StartTls,
}

impl Handshake {
    pub(crate) fn timeout(self, timeouts: &Timeouts) -> Duration {
        match self {
            Handshake::Implicit => timeouts.greeting,
            Handshake::StartTls => timeouts.command,
        }
    }
}

// ----- Reading ---------------------------------------------------------------------------

/// The instant by which the next read must return, or `None` when the awaited reply's
/// deadline has already passed (the session has been told: its next `poll` is the timeout).
pub(crate) fn read_deadline(session: &mut Session, timeouts: &Timeouts) -> Option<Instant> {
    let now = Instant::now();
    let deadline = session
        .poll_timeout()
        .unwrap_or_else(|| deadline_after(now, timeouts.command));
    if now >= deadline {
        session.handle_timeout(now);
        return None;
    }
    Some(deadline)
}

/// Passes the result of one read to the session: bytes, the end of the stream, or the
/// deadline. Only a real I/O failure is an error.
pub(crate) fn handle_read(
    session: &mut Session,
    result: io::Result<usize>,
    buf: &[u8],
) -> Result<(), Error> {
    match result {
        Ok(0) => session.handle_eof(),
        Ok(n) => session.handle_input(&buf[..n]),
        Err(e) if is_timeout(&e) => session.handle_timeout(Instant::now()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => session.handle_eof(),
        Err(source) => {
            return Err(Error::Io {
                op: "reading".to_owned(),
                source,
            })
        }
    }
    Ok(())
}

/// True for the errors a socket read or write returns when its timeout expires.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

// ----- The body --------------------------------------------------------------------------

/// Cuts the caller's body into [`BODY_CHUNK`]-sized chunks and knows whether a chunk is the
/// last one (one byte of read-ahead), so the last chunk and the end of data go out together.
///
/// The driver fills [`spare`](Self::spare) with reads until it returns `None`, pushes
/// [`chunk`](Self::chunk) into the session, then calls [`consumed`](Self::consumed).
pub(crate) struct BodyChunks {
    buf: Box<[u8]>,
    len: usize,
    peek: [u8; 1],
    state: ChunkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Filling,
    Peeking,
    Ready { last: bool },
    Done,
}

impl BodyChunks {
    pub(crate) fn new() -> BodyChunks {
        BodyChunks {
            buf: vec![0; BODY_CHUNK].into_boxed_slice(),
            len: 0,
            peek: [0],
            state: ChunkState::Filling,
        }
    }

    /// Where the next read goes, or `None` when a chunk is ready.
    pub(crate) fn spare(&mut self) -> Option<&mut [u8]> {
        match self.state {
            ChunkState::Filling => Some(&mut self.buf[self.len..]),
            ChunkState::Peeking => Some(&mut self.peek),
            ChunkState::Ready { .. } | ChunkState::Done => None,
        }
    }

    /// Records the result of a read into [`spare`](Self::spare).
    pub(crate) fn advance(&mut self, result: io::Result<usize>) -> Result<(), Error> {
        let n = match result {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(Error::Body(e)),
        };
        match self.state {
            ChunkState::Filling if n == 0 => self.state = ChunkState::Ready { last: true },
            ChunkState::Filling => {
                self.len += n.min(self.buf.len() - self.len);
                if self.len == self.buf.len() {
                    self.state = ChunkState::Peeking;
                }
            }
            ChunkState::Peeking => self.state = ChunkState::Ready { last: n == 0 },
            ChunkState::Ready { .. } | ChunkState::Done => {}
        }
        Ok(())
    }

    /// The chunk and whether it is the last one (an empty last chunk after the end).
    pub(crate) fn chunk(&self) -> (&[u8], bool) {
        match self.state {
            ChunkState::Ready { last } => (&self.buf[..self.len], last),
            _ => (&[], true),
        }
    }

    /// The chunk was pushed: start the next one with the byte read ahead.
    pub(crate) fn consumed(&mut self) {
        match self.state {
            ChunkState::Ready { last: false } => {
                self.buf[0] = self.peek[0];
                self.len = 1;
                self.state = if self.buf.len() == 1 {
                    ChunkState::Peeking
                } else {
                    ChunkState::Filling
                };
            }
            ChunkState::Ready { last: true } => {
                self.len = 0;
                self.state = ChunkState::Done;
            }
            _ => {}
        }
    }
}

// ----- Outcomes --------------------------------------------------------------------------

fn unexpected() -> Error {
    Error::InvalidState("internal: unexpected outcome")
}

/// The reply a single-command operation ended with.
pub(crate) fn into_reply(outcome: Outcome) -> Result<smtp_proto::Reply, Error> {
    match outcome {
        Outcome::Reply(r) | Outcome::Closed(Some(r)) => Ok(r),
        _ => Err(unexpected()),
    }
}

/// The report of [`Session::start_recipients`].
pub(crate) fn into_recipients(outcome: Outcome) -> Result<crate::RecipientsReport, Error> {
    match outcome {
        Outcome::Recipients(r) => Ok(r),
        _ => Err(unexpected()),
    }
}

/// The report of [`Session::start_send`].
pub(crate) fn into_sent(outcome: Outcome) -> Result<crate::SendReport, Error> {
    match outcome {
        Outcome::Sent(r) => Ok(r),
        _ => Err(unexpected()),
    }
}

/// The reply to QUIT, if the server sent one before closing.
pub(crate) fn into_closed(outcome: Outcome) -> Result<Option<smtp_proto::Reply>, Error> {
    match outcome {
        Outcome::Closed(r) => Ok(r),
        _ => Err(unexpected()),
    }
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

    fn chunks_of(body: &[u8], read_size: usize) -> Vec<(Vec<u8>, bool)> {
        let mut chunks = BodyChunks::new();
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            while let Some(spare) = chunks.spare() {
                let n = spare.len().min(read_size).min(body.len() - pos);
                spare[..n].copy_from_slice(&body[pos..pos + n]);
                pos += n;
                chunks.advance(Ok(n)).unwrap();
            }
            let (chunk, last) = chunks.chunk();
            out.push((chunk.to_vec(), last));
            chunks.consumed();
            if last {
                return out;
            }
        }
    }

    #[test]
    fn body_chunks_are_full_and_the_last_is_marked() {
        let body: Vec<u8> = (0..BODY_CHUNK * 2 + 10).map(|i| i as u8).collect();
        for read_size in [1000, 7, BODY_CHUNK, usize::MAX] {
            let got = chunks_of(&body, read_size);
            let lens: Vec<(usize, bool)> = got.iter().map(|(c, l)| (c.len(), *l)).collect();
            assert_eq!(lens, [(BODY_CHUNK, false), (BODY_CHUNK, false), (10, true)]);
            assert_eq!(got.concat_bytes(), body);
        }
    }

    #[test]
    fn a_body_of_exactly_one_chunk_is_one_last_chunk() {
        let body = vec![b'x'; BODY_CHUNK];
        let got = chunks_of(&body, 4096);
        assert_eq!(got.len(), 1);
        assert!(got[0].1);
        assert_eq!(got[0].0.len(), BODY_CHUNK);
        assert_eq!(chunks_of(b"", 10), vec![(Vec::new(), true)]);
    }

    trait ConcatBytes {
        fn concat_bytes(&self) -> Vec<u8>;
    }

    impl ConcatBytes for Vec<(Vec<u8>, bool)> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|(c, _)| c.iter().copied()).collect()
        }
    }

    #[test]
    fn read_errors_are_body_errors_and_interrupts_are_retried() {
        let mut chunks = BodyChunks::new();
        let interrupted = io::Error::from(io::ErrorKind::Interrupted);
        assert!(chunks.advance(Err(interrupted)).is_ok());
        assert!(chunks.spare().is_some());
        let err = chunks
            .advance(Err(io::Error::other("disk on fire")))
            .unwrap_err();
        assert!(matches!(err, Error::Body(_)), "{err:?}");
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
        dial.session_failed(addr, Error::InvalidState("bad greeting"));
        let DialStep::Connect { host, .. } = dial.next_step() else {
            panic!("the second address of the failed host is skipped");
        };
        assert_eq!(host, "192.0.2.1");
        dial.connect_failed(addr, io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(
            dial.next_step(),
            DialStep::Failed(Error::InvalidState("bad greeting"))
        ));
    }
}
