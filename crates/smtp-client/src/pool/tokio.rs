//! The async pool: [`Pool`], over [`AsyncSmtpClient`] (feature `tokio`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ::tokio::io::AsyncRead;
use ::tokio::sync::Notify;

use super::blocking::Work;
use super::{Book, Checkout, Lease, PoolConfig, PoolStats};
use crate::accounting::{BatchSummary, MessageResult};
use crate::config::ClientConfig;
use crate::envelope::{Envelope, SendReport};
use crate::error::{Error, Misuse};
use crate::tokio::AsyncSmtpClient;

/// The future a [`Connector`] returns.
pub type Connecting = Pin<Box<dyn Future<Output = Result<AsyncSmtpClient, Error>> + Send>>;

/// How the pool opens a connection (see the blocking [`Connector`](super::blocking::Connector)).
pub type Connector = Arc<dyn Fn(ClientConfig) -> Connecting + Send + Sync>;

/// A pool of async connections to one server: the blocking
/// [`Pool`](super::blocking::Pool)'s rules, with tokio tasks instead of threads.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use smtp_client::pool::{tokio::Pool, PoolConfig};
/// use smtp_client::{ClientConfig, TlsMode};
///
/// let pool = Pool::new(PoolConfig::new(ClientConfig::new("mx.example.test").tls_mode(TlsMode::None)).max_connections(50));
/// let (summary, _) = pool.send_all(Vec::<(smtp_client::Envelope, Vec<u8>)>::new()).await;
/// assert_eq!(summary.total(), 0);
/// pool.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    config: PoolConfig,
    connector: Connector,
    book: Mutex<Book<AsyncSmtpClient>>,
    freed: Notify,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// A pool whose connections are made with [`AsyncSmtpClient::connect`].
    pub fn new(config: PoolConfig) -> Pool {
        Pool::with_connector(config, |c| Box::pin(AsyncSmtpClient::connect(c)))
    }

    /// A pool whose connections are made by `connector`.
    pub fn with_connector(
        config: PoolConfig,
        connector: impl Fn(ClientConfig) -> Connecting + Send + Sync + 'static,
    ) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                book: Mutex::new(Book::new(&config)),
                config,
                connector: Arc::new(connector),
                freed: Notify::new(),
            }),
        }
    }

    /// What the pool did so far.
    pub fn stats(&self) -> PoolStats {
        self.inner.lock().stats()
    }

    /// Sends one message over a pooled connection.
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: impl AsyncRead + Unpin + Send,
    ) -> Result<SendReport, Error> {
        let mut lease = self.inner.checkout().await?;
        let result = lease.client.send(envelope, message).await;
        lease.sent += 1;
        self.inner.checkin(lease).await;
        result
    }

    /// Sends every message, spread over up to [`PoolConfig::max_connections`] connections
    /// (one task each), each connection a batch; every message's result by its index.
    ///
    /// A body is anything that lends its octets (`Vec<u8>`, `String`, `Arc<[u8]>`,
    /// `bytes::Bytes`...): one body shared by many messages is sent without being copied
    /// for each.
    pub async fn send_all<B: AsRef<[u8]> + Send + Sync + 'static>(
        &self,
        messages: Vec<(Envelope, B)>,
    ) -> (BatchSummary, Vec<MessageResult>) {
        let work = Arc::new(Work::new(messages, self.inner.config.retries));
        let workers = self.inner.config.max_connections.min(work.len()).max(1);
        let mut tasks = ::tokio::task::JoinSet::new();
        for _ in 0..workers {
            let inner = Arc::clone(&self.inner);
            let work = Arc::clone(&work);
            tasks.spawn(async move { inner.worker(&work).await });
        }
        while tasks.join_next().await.is_some() {}
        match Arc::try_unwrap(work) {
            Ok(work) => work.finish(),
            // Every task ended, so this is the only reference left.
            Err(_) => (BatchSummary::default(), Vec::new()),
        }
    }

    /// Closes every idle connection with QUIT and refuses further use.
    pub async fn shutdown(&self) {
        let idle = self.inner.lock().close();
        self.inner.freed.notify_waiters();
        self.inner.quit_all(idle, "shutdown").await;
    }
}

async fn quit(mut client: AsyncSmtpClient, why: &'static str, timeouts: crate::Timeouts) {
    tracing::debug!(target: "smtp_client::pool", event = "retired", why, peer = %client.peer_addr());
    client.set_timeouts(timeouts);
    let _ = client.quit().await;
}

impl Inner {
    /// Closes `client` with QUIT, waiting for the reply no longer than the pool's
    /// `quit_timeout`.
    async fn quit(&self, client: AsyncSmtpClient, why: &'static str) {
        quit(client, why, self.config.quitting_timeouts()).await;
    }

    /// Closes every one of `clients` at once: a silent server holds this up for one
    /// `quit_timeout`, not one per connection.
    async fn quit_all(&self, clients: Vec<AsyncSmtpClient>, why: &'static str) {
        if clients.is_empty() {
            return;
        }
        let timeouts = self.config.quitting_timeouts();
        let mut quits = ::tokio::task::JoinSet::new();
        for client in clients {
            quits.spawn(quit(client, why, timeouts));
        }
        while quits.join_next().await.is_some() {}
    }

    fn lock(&self) -> MutexGuard<'_, Book<AsyncSmtpClient>> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn checkout(&self) -> Result<Lease<AsyncSmtpClient>, Error> {
        let started = Instant::now();
        let deadline = started + self.config.checkout_timeout;
        loop {
            let freed = self.freed.notified();
            let (next, stale) = self.lock().checkout(Instant::now());
            self.quit_all(stale, "idle too long").await;
            match next {
                Checkout::Closed => return Err(Misuse::PoolClosed.into()),
                Checkout::Reuse(lease) => {
                    tracing::debug!(target: "smtp_client::pool", event = "reused", peer = %lease.client.peer_addr());
                    return Ok(lease);
                }
                Checkout::Open => return self.open().await,
                Checkout::Wait => {}
            }
            if ::tokio::time::timeout_at(deadline.into(), freed)
                .await
                .is_err()
            {
                return Err(Error::PoolTimeout {
                    waited: started.elapsed(),
                });
            }
        }
    }

    async fn open(&self) -> Result<Lease<AsyncSmtpClient>, Error> {
        match (self.connector)(self.config.client.clone()).await {
            Ok(client) => {
                tracing::debug!(target: "smtp_client::pool", event = "opened", peer = %client.peer_addr());
                self.lock().opened();
                Ok(Lease { client, sent: 0 })
            }
            Err(err) => {
                self.lock().open_failed();
                self.freed.notify_one();
                Err(err)
            }
        }
    }

    async fn checkin(&self, lease: Lease<AsyncSmtpClient>) {
        let session = lease.client.session();
        let usable = !session.is_broken() && !session.is_closed() && !lease.client.is_poisoned();
        if !usable {
            tracing::debug!(target: "smtp_client::pool", event = "dropped", peer = %lease.client.peer_addr());
        }
        let retire = self.lock().check_in(lease, usable, Instant::now());
        self.freed.notify_one();
        if let Some(client) = retire {
            self.quit(client, "used up").await;
        }
    }

    async fn worker<B: AsRef<[u8]> + Send + Sync>(&self, work: &Work<'static, B>) {
        while work.has_queued() {
            let mut lease = match self.checkout().await {
                Ok(lease) => lease,
                Err(err) => {
                    work.fail_one(&err);
                    continue;
                }
            };
            let budget = self.lock().budget(lease.sent);
            let mut given = Vec::new();
            let messages = std::iter::from_fn(|| {
                if given.len() >= budget {
                    return None;
                }
                let (index, envelope) = work.next()?;
                given.push(index);
                Some((envelope, std::io::Cursor::new(work.body(index))))
            });
            let mut ended = Vec::new();
            let result = lease
                .client
                .send_batch_ready(messages, |r| ended.push(r))
                .await;
            lease.sent += ended.len();
            for r in ended {
                work.record(given[r.index], r.state);
            }
            if let Err(err) = result {
                tracing::debug!(target: "smtp_client::pool", event = "batch refused", error = %err);
            }
            self.checkin(lease).await;
        }
    }
}
