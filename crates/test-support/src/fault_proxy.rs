//! A loopback TCP proxy that cuts, stalls or resets connections at chosen byte counts.
//!
//! Tests put a [`FaultProxy`] between a client (or a connection pool) and a real server, and
//! point the client at [`FaultProxy::addr`]. Each accepted connection gets at most one
//! [`Fault`]: after a number of bytes in one [`Direction`] the link is cut (FIN both ways),
//! reset (RST both ways) or stalled (nothing forwarded for a while, then cut).
//!
//! Faults come from a [`FaultPlan`]: the fault of connection `n` (0 for the first accepted
//! connection) depends only on the plan's seed and `n`, so a failing run is replayed by
//! running it again with the same seed, and [`FaultPlan::fault_for`] tells what connection
//! `n` got. [`FaultProxy::start_with`] takes any schedule instead, for tests that need one
//! exact fault.
//!
//! The proxy uses blocking `std::net` sockets: one thread accepts, each connection has two
//! threads (one per direction), and each holds one 16 KiB buffer. Sockets wait at most
//! 20 ms at a time, so every thread notices [`FaultProxy::stop`] promptly.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//! use test_support::fault_proxy::{Direction, FaultPlan, FaultProxy};
//!
//! // A server that greets and closes.
//! let server = TcpListener::bind("127.0.0.1:0").unwrap();
//! let upstream = server.local_addr().unwrap();
//! std::thread::spawn(move || {
//!     let (mut conn, _) = server.accept().unwrap();
//!     conn.write_all(b"220 ready\r\n").unwrap();
//! });
//!
//! // Every connection is cut, after 0..=4 bytes in one direction or the other.
//! let plan = FaultPlan { cut: 1.0, max_bytes: 4, ..FaultPlan::clean(7) };
//! let proxy = FaultProxy::start(upstream, plan).unwrap();
//!
//! let mut client = TcpStream::connect(proxy.addr()).unwrap();
//! client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
//! let mut got = Vec::new();
//! client.read_to_end(&mut got).unwrap();
//!
//! // The plan says where the first connection was cut.
//! let fault = plan.fault_for(0).unwrap();
//! match fault.direction {
//!     Direction::ToClient => assert_eq!(got, &b"220 ready\r\n"[..fault.after]),
//!     // The client sent nothing, so a fault toward the server never fired.
//!     Direction::ToServer => assert_eq!(got, b"220 ready\r\n"),
//! }
//! assert_eq!(proxy.stop().connections, 1);
//! ```

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a socket call waits before the thread checks for a fault or a stop.
const POLL: Duration = Duration::from_millis(20);
/// How long the proxy waits for the upstream server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After a cut, how long the proxy keeps reading (and discarding) what the peers still send.
/// Closing a socket with unread data makes the kernel send RST instead of FIN, which would
/// turn a cut into a reset.
const DRAIN_FOR: Duration = Duration::from_secs(1);
/// The buffer of each direction: the most the proxy holds of a connection's data at once.
const BUFFER: usize = 16 * 1024;

/// Which way bytes travel through the proxy.
///
/// ```
/// use test_support::fault_proxy::Direction;
/// assert_ne!(Direction::ToServer, Direction::ToClient);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client that connected to the proxy to the upstream server.
    ToServer,
    /// From the upstream server back to the client.
    ToClient,
}

/// What happens to a connection when its fault fires.
///
/// ```
/// use std::time::Duration;
/// use test_support::fault_proxy::FaultKind;
/// let stall = FaultKind::Stall(Duration::from_secs(30));
/// assert_ne!(stall, FaultKind::Cut);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Both sides are closed cleanly: each peer reads the bytes already forwarded, then EOF.
    Cut,
    /// Nothing more is forwarded either way for the given time, then both sides are cut.
    /// Make it longer than the client's timeout so the client's deadline fires first.
    Stall(Duration),
    /// Both sides are closed with RST (SO_LINGER 0): a peer's read fails with
    /// `ECONNRESET` ([`ErrorKind::ConnectionReset`]).
    Reset,
}

/// One connection's fault: what happens, and where.
///
/// The fault fires when `after` bytes have gone through in `direction` and more arrive: the
/// peer on the receiving side gets exactly `after` bytes of that direction, never more. If
/// the direction never carries more than `after` bytes, the connection stays clean.
///
/// ```
/// use test_support::fault_proxy::{Direction, Fault, FaultKind};
/// // The client reads the first 5 bytes of the server's greeting, then EOF.
/// let fault = Fault { kind: FaultKind::Cut, direction: Direction::ToClient, after: 5 };
/// # let _ = fault;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// The direction whose byte count triggers the fault.
    pub direction: Direction,
    /// How many bytes of `direction` are forwarded before the fault.
    pub after: usize,
}

/// A seeded, reproducible choice of faults: per connection, the chance of each fault kind
/// and the range of byte counts where it fires.
///
/// For each connection, at most one fault: a cut with probability `cut`, a stall with
/// probability `stall`, a reset with probability `reset`, otherwise none. Its direction is
/// either way with equal chance, and its byte count is uniform in `0..=max_bytes`.
///
/// The draw uses SplitMix64 written out here rather than a `rand` generator, whose output
/// may change between versions: a seed written in a bug report replays the same faults.
///
/// ```
/// use std::time::Duration;
/// use test_support::fault_proxy::FaultPlan;
///
/// let plan = FaultPlan {
///     cut: 0.2,
///     stall: 0.1,
///     reset: 0.2,
///     stall_for: Duration::from_secs(5),
///     max_bytes: 300,
///     ..FaultPlan::clean(42)
/// };
/// // The same seed gives the same faults.
/// assert_eq!(plan.fault_for(3), FaultPlan { ..plan }.fault_for(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultPlan {
    /// The seed: with the connection's sequence number, it decides that connection's fault.
    pub seed: u64,
    /// The probability that a connection is cut.
    pub cut: f64,
    /// The probability that a connection stalls.
    pub stall: f64,
    /// The probability that a connection is reset.
    pub reset: f64,
    /// How long a stall lasts before the connection is cut.
    pub stall_for: Duration,
    /// The largest byte count at which a fault fires.
    pub max_bytes: usize,
}

impl FaultPlan {
    /// A plan that injects no fault: every byte is forwarded both ways.
    /// `stall_for` is 30 seconds and `max_bytes` 1024, for plans that change the
    /// probabilities only.
    ///
    /// ```
    /// use test_support::fault_proxy::FaultPlan;
    /// let plan = FaultPlan::clean(1);
    /// assert!((0..100).all(|n| plan.fault_for(n).is_none()));
    /// ```
    pub fn clean(seed: u64) -> FaultPlan {
        FaultPlan {
            seed,
            cut: 0.0,
            stall: 0.0,
            reset: 0.0,
            stall_for: Duration::from_secs(30),
            max_bytes: 1024,
        }
    }

    /// The fault of connection `connection` (0 for the first connection the proxy accepts),
    /// or `None` if it is left clean. The same plan always gives the same answer.
    ///
    /// ```
    /// use test_support::fault_proxy::{FaultKind, FaultPlan};
    /// let plan = FaultPlan { reset: 1.0, max_bytes: 10, ..FaultPlan::clean(9) };
    /// let fault = plan.fault_for(0).unwrap();
    /// assert_eq!(fault.kind, FaultKind::Reset);
    /// assert!(fault.after <= 10);
    /// ```
    pub fn fault_for(&self, connection: u64) -> Option<Fault> {
        let mut rng = SplitMix64::new(self.seed, connection);
        let roll = rng.next_unit();
        let kind = if roll < self.cut {
            FaultKind::Cut
        } else if roll < self.cut + self.stall {
            FaultKind::Stall(self.stall_for)
        } else if roll < self.cut + self.stall + self.reset {
            FaultKind::Reset
        } else {
            return None;
        };
        let direction = if rng.next_u64() & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let after = match u64::try_from(self.max_bytes) {
            Ok(max) if max < u64::MAX => rng.next_u64() % (max + 1),
            _ => rng.next_u64(),
        };
        Some(Fault {
            kind,
            direction,
            // At most `max_bytes`, so it fits in a `usize`.
            after: usize::try_from(after).unwrap_or(self.max_bytes),
        })
    }

    /// Checks that each probability is in `0..=1` and that they add up to at most 1.
    fn check(&self) -> io::Result<()> {
        let probabilities = [
            ("cut", self.cut),
            ("stall", self.stall),
            ("reset", self.reset),
        ];
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("fault plan: probability `{name}` is {p}, outside 0..=1"),
                ));
            }
        }
        let total = self.cut + self.stall + self.reset;
        if total > 1.0 + 1e-9 {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                format!("fault plan: cut + stall + reset is {total}, more than 1"),
            ));
        }
        Ok(())
    }
}

/// SplitMix64 (Steele, Lea and Flood), seeded from the plan's seed and a connection number.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64, connection: u64) -> SplitMix64 {
        let mut mixer = SplitMix64(seed);
        // Mix the seed first so that seeds `s` and `s + 1` do not give shifted sequences.
        let base = mixer.next_u64();
        SplitMix64(base ^ connection.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0.0..1.0`, from the top 53 bits.
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the proxy has done so far: a snapshot of its counters.
///
/// A connection counts in `cut`, `stalled` or `reset` when its fault fires, in `clean` when
/// it ends without one, and in `unreachable` when the upstream server did not accept it.
/// Once the proxy has stopped, `connections` is the sum of the other four.
///
/// ```
/// use test_support::fault_proxy::FaultStats;
/// let stats = FaultStats::default();
/// assert_eq!(stats.connections, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections cut.
    pub cut: u64,
    /// Connections stalled.
    pub stalled: u64,
    /// Connections reset.
    pub reset: u64,
    /// Connections that ended without a fault.
    pub clean: u64,
    /// Connections closed because the upstream server could not be reached.
    pub unreachable: u64,
    /// Bytes forwarded from clients to the server.
    pub bytes_to_server: u64,
    /// Bytes forwarded from the server to clients.
    pub bytes_to_client: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    cut: AtomicU64,
    stalled: AtomicU64,
    reset: AtomicU64,
    clean: AtomicU64,
    unreachable: AtomicU64,
    bytes_to_server: AtomicU64,
    bytes_to_client: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> FaultStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        FaultStats {
            connections: get(&self.connections),
            cut: get(&self.cut),
            stalled: get(&self.stalled),
            reset: get(&self.reset),
            clean: get(&self.clean),
            unreachable: get(&self.unreachable),
            bytes_to_server: get(&self.bytes_to_server),
            bytes_to_client: get(&self.bytes_to_client),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::SeqCst);
}

/// What every thread of one proxy shares: the stop signal and the counters.
#[derive(Default)]
struct Shared {
    stopped: Mutex<bool>,
    wake: Condvar,
    counters: Counters,
}

impl Shared {
    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    /// Sleeps for `time`, or less if the proxy stops meanwhile.
    fn sleep(&self, time: Duration) {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .wake
            .wait_timeout_while(stopped, time, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// The fault of each connection, by its sequence number.
type Schedule = Box<dyn FnMut(u64) -> Option<Fault> + Send>;

/// A running fault-injection proxy on `127.0.0.1`.
///
/// Dropping it stops it as [`FaultProxy::stop`] does, so a failing test leaves no thread
/// behind.
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use test_support::fault_proxy::{FaultPlan, FaultProxy};
///
/// let server = TcpListener::bind("127.0.0.1:0").unwrap();
/// let proxy = FaultProxy::start(server.local_addr().unwrap(), FaultPlan::clean(0)).unwrap();
/// let _client = TcpStream::connect(proxy.addr()).unwrap();
/// let _upstream_side = server.accept().unwrap();
/// drop(_client);
/// assert_eq!(proxy.stop().connections, 1);
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1` (a free port) that forwards each connection to
    /// `upstream`, with the faults of `plan`.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] if a probability is outside `0..=1` or they add
    /// up to more than 1, or with the error of binding the listener.
    ///
    /// ```
    /// use std::net::TcpListener;
    /// use test_support::fault_proxy::{FaultPlan, FaultProxy};
    ///
    /// let server = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let upstream = server.local_addr().unwrap();
    /// let plan = FaultPlan { cut: 0.7, reset: 0.7, ..FaultPlan::clean(0) };
    /// assert!(FaultProxy::start(upstream, plan).is_err());
    /// ```
    pub fn start(upstream: SocketAddr, plan: FaultPlan) -> io::Result<FaultProxy> {
        plan.check()?;
        FaultProxy::start_with(upstream, move |connection| plan.fault_for(connection))
    }

    /// Starts a proxy like [`FaultProxy::start`], with the fault of each connection given by
    /// `schedule` (called with 0 for the first accepted connection, then 1, ...).
    ///
    /// ```
    /// use std::net::TcpListener;
    /// use test_support::fault_proxy::{Direction, Fault, FaultKind, FaultProxy};
    ///
    /// let server = TcpListener::bind("127.0.0.1:0").unwrap();
    /// // Reset only the second connection, as soon as the client sends anything.
    /// let proxy = FaultProxy::start_with(server.local_addr().unwrap(), |connection| {
    ///     (connection == 1).then_some(Fault {
    ///         kind: FaultKind::Reset,
    ///         direction: Direction::ToServer,
    ///         after: 0,
    ///     })
    /// })
    /// .unwrap();
    /// proxy.stop();
    /// ```
    pub fn start_with(
        upstream: SocketAddr,
        schedule: impl FnMut(u64) -> Option<Fault> + Send + 'static,
    ) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        // Non-blocking so that the accept loop sees a stop within one poll interval.
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared::default());
        let acceptor = thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn({
                let shared = Arc::clone(&shared);
                let schedule: Schedule = Box::new(schedule);
                move || accept_loop(&listener, upstream, schedule, &shared)
            })?;
        Ok(FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    ///
    /// ```
    /// # use std::net::TcpListener;
    /// # use test_support::fault_proxy::{FaultPlan, FaultProxy};
    /// # let server = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let proxy = FaultProxy::start(server.local_addr().unwrap(), FaultPlan::clean(0)).unwrap();
    /// assert!(proxy.addr().ip().is_loopback());
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the proxy has done so far. Connections still open are in `connections` and, if
    /// their fault has fired, in its count; they are in `clean` only once they end.
    ///
    /// ```
    /// # use std::net::TcpListener;
    /// # use test_support::fault_proxy::{FaultPlan, FaultProxy, FaultStats};
    /// # let server = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let proxy = FaultProxy::start(server.local_addr().unwrap(), FaultPlan::clean(0)).unwrap();
    /// assert_eq!(proxy.stats(), FaultStats::default());
    /// ```
    pub fn stats(&self) -> FaultStats {
        self.shared.counters.snapshot()
    }

    /// Stops the proxy and returns its final counts: stops accepting, closes every
    /// connection (stalled ones too) and waits for all its threads. It returns within a few
    /// poll intervals, or at worst the upstream connect timeout (2 s) if a connection is
    /// still being opened.
    ///
    /// ```
    /// # use std::net::TcpListener;
    /// # use test_support::fault_proxy::{FaultPlan, FaultProxy};
    /// # let server = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let proxy = FaultProxy::start(server.local_addr().unwrap(), FaultPlan::clean(0)).unwrap();
    /// let stats = proxy.stop();
    /// assert_eq!(stats.connections, 0);
    /// ```
    pub fn stop(mut self) -> FaultStats {
        self.shut_down();
        self.stats()
    }

    fn shut_down(&mut self) {
        self.shared.stop();
        if let Some(acceptor) = self.acceptor.take() {
            // A panic in the caller's schedule ends the accept loop; its threads are joined
            // all the same.
            let _ = acceptor.join();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn accept_loop(
    listener: &TcpListener,
    upstream: SocketAddr,
    mut schedule: Schedule,
    shared: &Arc<Shared>,
) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let mut sequence = 0u64;
    while !shared.is_stopped() {
        match listener.accept() {
            Ok((client, _)) => {
                let fault = schedule(sequence);
                sequence += 1;
                bump(&shared.counters.connections, 1);
                let spawned = thread::Builder::new()
                    .name("fault-proxy-conn".into())
                    .spawn({
                        let shared = Arc::clone(shared);
                        move || run_connection(client, upstream, fault, &shared)
                    });
                match spawned {
                    Ok(handle) => connections.push(handle),
                    // Out of threads: the client sees its connection closed.
                    Err(_) => bump(&shared.counters.clean, 1),
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // WouldBlock: nothing to accept yet. Anything else (out of file descriptors):
            // back off the same way rather than spin.
            Err(_) => shared.sleep(POLL),
        }
        // Forget finished connections so a long run does not grow this list.
        connections.retain(|handle| !handle.is_finished());
    }
    for handle in connections {
        let _ = handle.join();
    }
}

fn run_connection(client: TcpStream, upstream: SocketAddr, fault: Option<Fault>, shared: &Shared) {
    let Ok(server) = TcpStream::connect_timeout(&upstream, CONNECT_TIMEOUT) else {
        bump(&shared.counters.unreachable, 1);
        return;
    };
    for stream in [&client, &server] {
        // Accepted sockets may inherit the listener's non-blocking mode on some systems.
        let configured = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(POLL)))
            .and_then(|()| stream.set_write_timeout(Some(POLL)))
            .and_then(|()| stream.set_nodelay(true));
        if configured.is_err() {
            bump(&shared.counters.clean, 1);
            return;
        }
    }
    let link = Link {
        client: &client,
        server: &server,
        fault,
        phase: Mutex::new(Phase::Open),
        faulted: AtomicBool::new(false),
        shared,
    };
    thread::scope(|scope| {
        let to_client = thread::Builder::new()
            .name("fault-proxy-pump".into())
            .spawn_scoped(scope, || link.pump(Direction::ToClient));
        if to_client.is_ok() {
            link.pump(Direction::ToServer);
        }
    });
    if !link.faulted.load(Ordering::SeqCst) {
        bump(&shared.counters.clean, 1);
    }
    // Both sockets close here. After a reset their linger time is 0, so the kernel sends
    // RST; both pump threads have ended, so no other handle keeps them open.
}

/// Where a connection is. Only `Open` forwards bytes.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Forwarding both ways.
    Open,
    /// A stall fired: nothing is forwarded until `until`, then the link is cut.
    Stalled { until: Instant },
    /// A cut fired (or a stall ended): both peers have been sent FIN; the proxy reads and
    /// discards what they still send until they close or `until`.
    Closing { until: Instant },
    /// A reset fired or a socket failed: both pumps end and the sockets close.
    Done,
}

/// One proxied connection: the two sockets and the state both pumps share.
struct Link<'a> {
    client: &'a TcpStream,
    server: &'a TcpStream,
    fault: Option<Fault>,
    phase: Mutex<Phase>,
    faulted: AtomicBool,
    shared: &'a Shared,
}

impl Link<'_> {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the link after a socket error, unless a fault already decides how it ends.
    fn fail(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Open = *phase {
            *phase = Phase::Done;
        }
    }

    /// Moves bytes from one socket to the other until the link ends.
    fn pump(&self, direction: Direction) {
        let (mut from, to, forwarded) = match direction {
            Direction::ToServer => (
                self.client,
                self.server,
                &self.shared.counters.bytes_to_server,
            ),
            Direction::ToClient => (
                self.server,
                self.client,
                &self.shared.counters.bytes_to_client,
            ),
        };
        let limit = self.fault.filter(|fault| fault.direction == direction);
        let mut carried = 0usize;
        let mut buffer = vec![0u8; BUFFER];
        loop {
            if self.shared.is_stopped() {
                return;
            }
            match self.phase() {
                Phase::Open => {}
                Phase::Done => return,
                Phase::Stalled { until } => {
                    let now = Instant::now();
                    if now >= until {
                        self.end_stall();
                    } else {
                        self.shared.sleep(until - now);
                    }
                    continue;
                }
                Phase::Closing { until } => {
                    if Instant::now() >= until {
                        return;
                    }
                    match from.read(&mut buffer) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e) if is_retry(&e) => {}
                        Err(_) => return,
                    }
                    continue;
                }
            }
            let read = match from.read(&mut buffer) {
                Ok(0) => {
                    // The peer finished sending: pass its FIN on and let the other direction
                    // carry on.
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(read) => read,
                Err(e) if is_retry(&e) => continue,
                Err(_) => {
                    self.fail();
                    return;
                }
            };
            let allowed = limit.map_or(read, |fault| read.min(fault.after - carried));
            if !self.forward(to, &buffer[..allowed]) {
                self.fail();
                continue;
            }
            carried += allowed;
            bump(forwarded, allowed as u64);
            if let Some(fault) = limit.filter(|_| allowed < read) {
                self.fire(fault.kind);
            }
        }
    }

    /// Writes all of `bytes` to `to`; false if the socket fails, the proxy stops or a fault
    /// fires in the other direction meanwhile.
    fn forward(&self, mut to: &TcpStream, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.shared.is_stopped() || !matches!(self.phase(), Phase::Open) {
                return false;
            }
            match to.write(bytes) {
                Ok(0) => return false,
                Ok(written) => bytes = &bytes[written..],
                Err(e) if is_retry(&e) => {}
                Err(_) => return false,
            }
        }
        true
    }

    fn fire(&self, kind: FaultKind) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(*phase, Phase::Open) {
            return;
        }
        self.faulted.store(true, Ordering::SeqCst);
        let counters = &self.shared.counters;
        match kind {
            FaultKind::Cut => {
                bump(&counters.cut, 1);
                *phase = self.cut();
            }
            FaultKind::Stall(time) => {
                bump(&counters.stalled, 1);
                let now = Instant::now();
                // A stall too long to represent lasts until the proxy stops.
                let until = now
                    .checked_add(time)
                    .unwrap_or(now + Duration::from_secs(86_400));
                *phase = Phase::Stalled { until };
            }
            FaultKind::Reset => {
                bump(&counters.reset, 1);
                for stream in [self.client, self.server] {
                    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
                }
                *phase = Phase::Done;
            }
        }
    }

    fn end_stall(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Stalled { .. } = *phase {
            *phase = self.cut();
        }
    }

    /// Sends FIN to both peers and returns the phase that drains them.
    fn cut(&self) -> Phase {
        for stream in [self.client, self.server] {
            let _ = stream.shutdown(Shutdown::Write);
        }
        Phase::Closing {
            until: Instant::now() + DRAIN_FOR,
        }
    }
}

/// A socket call that ran out of its poll interval or was interrupted: try again.
fn is_retry(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATTERN_LEN: usize = 64;

    fn pattern() -> Vec<u8> {
        (0..PATTERN_LEN).map(|i| b'a' + (i % 26) as u8).collect()
    }

    fn fault(kind: FaultKind, direction: Direction, after: usize) -> Fault {
        Fault {
            kind,
            direction,
            after,
        }
    }

    /// A server for one connection that sends `greeting`, then records what it receives
    /// until EOF or an error.
    fn server(greeting: Vec<u8>) -> (SocketAddr, JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let _ = conn.write_all(&greeting);
            let mut received = Vec::new();
            let _ = conn.read_to_end(&mut received);
            received
        });
        (addr, handle)
    }

    /// An echo server for one connection.
    fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut writer = conn.try_clone().unwrap();
            let _ = io::copy(&mut conn, &mut writer);
            let _ = writer.shutdown(Shutdown::Write);
        });
        (addr, handle)
    }

    fn connect(proxy: &FaultProxy) -> TcpStream {
        let client = TcpStream::connect(proxy.addr()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
    }

    /// Reads until EOF or an error; returns the bytes and how it ended.
    fn read_all(client: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
        let mut got = Vec::new();
        let mut buffer = [0u8; 1024];
        loop {
            match client.read(&mut buffer) {
                Ok(0) => return (got, Ok(())),
                Ok(n) => got.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return (got, Err(e)),
            }
        }
    }

    #[test]
    fn clean_plan_forwards_every_byte_both_ways() {
        let (upstream, echo) = echo_server();
        let proxy = FaultProxy::start(upstream, FaultPlan::clean(5)).unwrap();
        let mut client = connect(&proxy);
        let sent: Vec<u8> = (0..256 * 1024).map(|i: u32| (i * 7 % 251) as u8).collect();
        let writer = thread::spawn({
            let mut client = client.try_clone().unwrap();
            let sent = sent.clone();
            move || {
                client.write_all(&sent).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
            }
        });
        let (echoed, end) = read_all(&mut client);
        writer.join().unwrap();
        echo.join().unwrap();
        end.unwrap();
        assert!(
            echoed == sent,
            "echo differs: {} bytes of {}",
            echoed.len(),
            sent.len()
        );
        drop(client);
        let stats = proxy.stop();
        let len = sent.len() as u64;
        assert_eq!(
            stats,
            FaultStats {
                connections: 1,
                clean: 1,
                bytes_to_server: len,
                bytes_to_client: len,
                ..FaultStats::default()
            }
        );
    }

    #[test]
    fn cut_to_client_delivers_exactly_the_chosen_bytes_then_eof() {
        let (upstream, server) = server(pattern());
        let cut = fault(FaultKind::Cut, Direction::ToClient, 5);
        let proxy = FaultProxy::start_with(upstream, move |_| Some(cut)).unwrap();
        let mut client = connect(&proxy);
        let (got, end) = read_all(&mut client);
        end.expect("a cut ends with EOF, not an error");
        assert_eq!(got, &pattern()[..5]);
        // The server sees EOF too.
        assert_eq!(server.join().unwrap(), b"");
        let stats = proxy.stop();
        assert_eq!((stats.cut, stats.bytes_to_client), (1, 5));
    }

    #[test]
    fn cut_to_server_delivers_exactly_the_chosen_bytes_then_eof() {
        let (upstream, server) = server(Vec::new());
        let cut = fault(FaultKind::Cut, Direction::ToServer, 5);
        let proxy = FaultProxy::start_with(upstream, move |_| Some(cut)).unwrap();
        let mut client = connect(&proxy);
        client.write_all(b"hello world").unwrap();
        assert_eq!(server.join().unwrap(), b"hello");
        let (got, end) = read_all(&mut client);
        end.expect("a cut ends with EOF, not an error");
        assert_eq!(got, b"");
        assert_eq!(proxy.stop().cut, 1);
    }

    #[test]
    fn cut_after_zero_bytes_forwards_nothing() {
        let (upstream, server) = server(pattern());
        let cut = fault(FaultKind::Cut, Direction::ToClient, 0);
        let proxy = FaultProxy::start_with(upstream, move |_| Some(cut)).unwrap();
        let mut client = connect(&proxy);
        let (got, end) = read_all(&mut client);
        end.unwrap();
        assert_eq!(got, b"");
        server.join().unwrap();
        assert_eq!(proxy.stop().cut, 1);
    }

    #[test]
    fn reset_to_client_gives_connection_reset_after_the_chosen_bytes() {
        let (upstream, server) = server(pattern());
        let reset = fault(FaultKind::Reset, Direction::ToClient, 5);
        let proxy = FaultProxy::start_with(upstream, move |_| Some(reset)).unwrap();
        let mut client = connect(&proxy);
        let (got, end) = read_all(&mut client);
        let error = end.expect_err("a reset is an error, not EOF");
        assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
        assert_eq!(got, &pattern()[..5]);
        server.join().unwrap();
        assert_eq!(proxy.stop().reset, 1);
    }

    #[test]
    fn reset_to_server_resets_the_server_side() {
        let (upstream, server) = server(Vec::new());
        let reset = fault(FaultKind::Reset, Direction::ToServer, 3);
        let proxy = FaultProxy::start_with(upstream, move |_| Some(reset)).unwrap();
        let mut client = connect(&proxy);
        client.write_all(b"hello").unwrap();
        let (got, end) = read_all(&mut client);
        assert_eq!(got, b"");
        assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);
        // The server got the first 3 bytes, then its read failed.
        assert_eq!(server.join().unwrap(), b"hel");
        assert_eq!(proxy.stop().reset, 1);
    }

    #[test]
    fn stall_holds_the_rest_then_closes() {
        let stall_for = Duration::from_millis(400);
        let (upstream, server) = server(pattern());
        let stall = fault(FaultKind::Stall(stall_for), Direction::ToClient, 5);
        let proxy = FaultProxy::start_with(upstream, move |_| Some(stall)).unwrap();
        let started = Instant::now();
        let mut client = connect(&proxy);
        let mut head = [0u8; 5];
        client.read_exact(&mut head).unwrap();
        assert_eq!(head, pattern()[..5]);
        // A client deadline shorter than the stall fires.
        client
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let error = client
            .read(&mut [0u8; 16])
            .expect_err("nothing arrives during a stall");
        assert!(is_retry(&error), "{error}");
        // Then the proxy closes the connection, with nothing more forwarded.
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (rest, end) = read_all(&mut client);
        end.expect("a stall ends with a cut");
        assert_eq!(rest, b"");
        assert!(started.elapsed() >= stall_for);
        server.join().unwrap();
        let stats = proxy.stop();
        assert_eq!((stats.stalled, stats.bytes_to_client), (1, 5));
    }

    #[test]
    fn same_seed_same_faults() {
        let plan = FaultPlan {
            cut: 0.3,
            stall: 0.2,
            reset: 0.1,
            stall_for: Duration::from_secs(3),
            max_bytes: 500,
            ..FaultPlan::clean(2024)
        };
        let first: Vec<_> = (0..10_000).map(|n| plan.fault_for(n)).collect();
        let rebuilt = FaultPlan { seed: 2024, ..plan };
        let again: Vec<_> = (0..10_000).map(|n| rebuilt.fault_for(n)).collect();
        assert_eq!(first, again);
        let other = FaultPlan { seed: 2025, ..plan };
        assert_ne!(
            first,
            (0..10_000).map(|n| other.fault_for(n)).collect::<Vec<_>>()
        );

        let count = |kind: FaultKind| first.iter().flatten().filter(|f| f.kind == kind).count();
        let near = |n: usize, p: f64| (n as f64 / 10_000.0 - p).abs() < 0.02;
        assert!(near(count(FaultKind::Cut), 0.3));
        assert!(near(count(FaultKind::Stall(plan.stall_for)), 0.2));
        assert!(near(count(FaultKind::Reset), 0.1));
        assert!(first.iter().flatten().all(|f| f.after <= 500));
        assert!(first.iter().flatten().any(|f| f.after == 0));
        assert!(first.iter().flatten().any(|f| f.after == 500));
        let to_server = first
            .iter()
            .flatten()
            .filter(|f| f.direction == Direction::ToServer);
        assert!(near(to_server.count(), 0.3));
    }

    #[test]
    fn bad_probabilities_are_refused() {
        let upstream: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for plan in [
            FaultPlan {
                cut: -0.1,
                ..FaultPlan::clean(0)
            },
            FaultPlan {
                stall: 1.5,
                ..FaultPlan::clean(0)
            },
            FaultPlan {
                reset: f64::NAN,
                ..FaultPlan::clean(0)
            },
            FaultPlan {
                cut: 0.6,
                reset: 0.6,
                ..FaultPlan::clean(0)
            },
        ] {
            let error = FaultProxy::start(upstream, plan).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{plan:?}");
        }
    }

    /// A server for `connections` connections, one after another in parallel threads: each
    /// is sent 16 bytes, and read until EOF.
    fn greeting_server(connections: usize) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let mut served = Vec::new();
            for _ in 0..connections {
                let (mut conn, _) = listener.accept().unwrap();
                served.push(thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let _ = conn.write_all(&pattern()[..16]);
                    let _ = io::copy(&mut conn, &mut io::sink());
                }));
            }
            for conn in served {
                conn.join().unwrap();
            }
        });
        (addr, handle)
    }

    #[test]
    fn the_proxy_follows_the_plan_connection_by_connection() {
        const CONNECTIONS: u64 = 24;
        let plan = FaultPlan {
            cut: 0.4,
            reset: 0.3,
            max_bytes: 8,
            ..FaultPlan::clean(77)
        };
        let (upstream, server) = greeting_server(CONNECTIONS as usize);
        let proxy = FaultProxy::start(upstream, plan).unwrap();
        for n in 0..CONNECTIONS {
            let mut client = connect(&proxy);
            // 16 bytes each way: more than `max_bytes`, so every planned fault fires.
            let _ = client.write_all(&pattern()[..16]);
            let _ = client.shutdown(Shutdown::Write);
            let (got, end) = read_all(&mut client);
            match plan.fault_for(n) {
                None => {
                    end.unwrap();
                    assert_eq!(got, &pattern()[..16], "connection {n}");
                }
                Some(f) if f.direction == Direction::ToClient => {
                    assert_eq!(got, &pattern()[..f.after], "connection {n}: {f:?}");
                    let reset = end.is_err_and(|e| e.kind() == ErrorKind::ConnectionReset);
                    assert_eq!(reset, f.kind == FaultKind::Reset, "connection {n}: {f:?}");
                }
                // Faults toward the server: the client sees some prefix of the greeting.
                Some(f) => assert!(pattern().starts_with(&got), "connection {n}: {f:?}"),
            }
        }
        server.join().unwrap();
        let stats = proxy.stop();
        let planned: Vec<_> = (0..CONNECTIONS).filter_map(|n| plan.fault_for(n)).collect();
        let count = |kind| planned.iter().filter(|f| f.kind == kind).count() as u64;
        assert_eq!(stats.connections, CONNECTIONS);
        assert_eq!(stats.cut, count(FaultKind::Cut));
        assert_eq!(stats.reset, count(FaultKind::Reset));
        assert_eq!(stats.clean, CONNECTIONS - planned.len() as u64);
        // The plan is not trivial: it has clean, cut and reset connections.
        assert!(
            stats.cut > 0 && stats.reset > 0 && stats.clean > 0,
            "{stats:?}"
        );
    }

    #[test]
    fn stop_ends_stalled_and_idle_connections_promptly() {
        let (stalled_upstream, stalled_server) = server(pattern());
        let stall = fault(
            FaultKind::Stall(Duration::from_secs(3600)),
            Direction::ToClient,
            1,
        );
        let proxy = FaultProxy::start_with(stalled_upstream, move |_| Some(stall)).unwrap();
        let mut client = connect(&proxy);
        let mut first = [0u8; 1];
        client.read_exact(&mut first).unwrap();
        let started = Instant::now();
        let stats = proxy.stop();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(stats.stalled, 1);
        // The client's connection is closed, one way or the other.
        let (rest, _) = read_all(&mut client);
        assert_eq!(rest, b"");
        stalled_server.join().unwrap();
    }

    #[test]
    fn an_unreachable_server_closes_the_client() {
        // A port nothing listens on: bind one, note it, close it.
        let upstream = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = FaultProxy::start(upstream, FaultPlan::clean(0)).unwrap();
        let mut client = connect(&proxy);
        let (got, _) = read_all(&mut client);
        assert_eq!(got, b"");
        let stats = proxy.stop();
        assert_eq!((stats.connections, stats.unreachable), (1, 1));
    }
}
