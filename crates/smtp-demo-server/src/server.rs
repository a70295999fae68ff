//! The running server: the loopback listener, the acceptor thread that bounds concurrent
//! connections, one thread per connection, what they share, and a stop that closes every
//! connection and joins every thread.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use sasl_mechs::server::PasswordLookup;

use crate::cert::{client_ca, ClientCertificate};
use crate::cert::{demo_cert, DemoCert};
use crate::config::DemoConfig;
use crate::log::SessionLog;
use crate::message::ReceivedMessage;
use crate::session::Connection;

/// The messages accepted so far, oldest first, and every session seen.
#[derive(Default)]
pub(crate) struct Store {
    pub(crate) messages: Vec<ReceivedMessage>,
    pub(crate) sessions: Vec<SessionLog>,
    /// Each client certificate issued for this server, and the user it names.
    pub(crate) client_certs: Vec<(CertificateDer<'static>, String)>,
}

/// What the acceptor and every connection thread share.
pub(crate) struct Shared {
    pub(crate) config: DemoConfig,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) lookup: PasswordLookup,
    pub(crate) stop: AtomicBool,
    pub(crate) store: Mutex<Store>,
    pub(crate) arrived: Condvar,
    /// Every open connection, so that `stop` can wake the threads blocked reading them.
    pub(crate) open: Mutex<HashMap<u64, TcpStream>>,
    pub(crate) next_id: AtomicU64,
}

/// Locks `m`, recovering the data if a thread panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
        let tls = match config.client_certificates {
            true => cert.server_config_verifying_clients(),
            false => cert.server_config(),
        }
        .map_err(io::Error::other)?;
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

    /// Every connection so far, oldest first: the client's address and the commands it
    /// sent.
    pub fn sessions(&self) -> Vec<SessionLog> {
        lock(&self.shared.store).sessions.clone()
    }

    /// Waits until every connection so far has ended, or `timeout` has passed; returns
    /// the sessions as they are then.
    pub fn wait_for_sessions_to_end(&self, timeout: Duration) -> Vec<SessionLog> {
        let deadline = Instant::now() + timeout;
        loop {
            let sessions = self.sessions();
            if sessions.iter().all(|s| s.ended) || Instant::now() >= deadline {
                return sessions;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Issues a client certificate for `user` from the demo client CA
    /// ([`cert::client_ca`](crate::cert::client_ca)). A server started with
    /// [`DemoConfig::client_certificates`] authenticates a client presenting it as `user`
    /// with AUTH EXTERNAL; a certificate the CA issued for another server is verified but
    /// names nobody here, and EXTERNAL fails.
    pub fn issue_client_certificate(&self, user: &str) -> io::Result<ClientCertificate> {
        let issued = client_ca().issue(user).map_err(io::Error::other)?;
        lock(&self.shared.store)
            .client_certs
            .push((issued.cert_der.clone(), user.to_owned()));
        Ok(issued)
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
            if let Some(log) = lock(&shared.store).sessions.get_mut(conn.log_index) {
                log.ended = true;
            }
            lock(&shared.open).remove(&id);
        })
}
