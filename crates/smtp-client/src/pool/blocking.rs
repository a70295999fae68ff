//! The blocking pool: [`Pool`].

use std::collections::VecDeque;
use std::io::{Cursor, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::{Book, Checkout, Lease, PoolConfig, PoolStats};
use crate::accounting::{shared, BatchSummary, MessageResult, MessageState};
use crate::blocking::SmtpClient;
use crate::config::ClientConfig;
use crate::envelope::{Envelope, SendReport};
use crate::error::{Error, Misuse};

/// How the pool opens a connection: connect, and whatever set-up each connection needs
/// (STARTTLS is part of connecting; AUTH is `smtp-auth`'s, which offers a connector).
pub type Connector = Arc<dyn Fn(&ClientConfig) -> Result<SmtpClient, Error> + Send + Sync>;

/// A pool of blocking connections to one server (see [the module](super)).
///
/// ```no_run
/// use smtp_client::pool::{blocking::Pool, PoolConfig};
/// use smtp_client::{ClientConfig, Envelope, TlsMode};
/// use smtp_proto::{ForwardPath, Mailbox, ReversePath};
///
/// let pool = Pool::new(PoolConfig::new(ClientConfig::new("mx.example.test").tls_mode(TlsMode::None)).max_connections(8));
/// let from = ReversePath::Mailbox(Mailbox::new("news@example.test")?);
/// let messages = (0..10_000)
///     .map(|i| {
///         let to = ForwardPath::new(&format!("reader{i}@example.test")).unwrap();
///         (Envelope::new(from.clone(), [to]), format!("Subject: {i}\r\n\r\nHi\r\n").into_bytes())
///     })
///     .collect();
/// let (summary, _results) = pool.send_all(messages);
/// println!("{} accepted, {} not sent, {} unknown", summary.accepted, summary.not_sent, summary.unknown);
/// pool.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    config: PoolConfig,
    connector: Connector,
    book: Mutex<Book<SmtpClient>>,
    freed: Condvar,
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
    /// A pool whose connections are made with [`SmtpClient::connect`].
    pub fn new(config: PoolConfig) -> Pool {
        Pool::with_connector(config, |c| SmtpClient::connect(c.clone()))
    }

    /// A pool whose connections are made by `connector` (for AUTH, or anything else each
    /// connection needs before its first message).
    pub fn with_connector(
        config: PoolConfig,
        connector: impl Fn(&ClientConfig) -> Result<SmtpClient, Error> + Send + Sync + 'static,
    ) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                book: Mutex::new(Book::new(&config)),
                config,
                connector: Arc::new(connector),
                freed: Condvar::new(),
            }),
        }
    }

    /// What the pool did so far.
    pub fn stats(&self) -> PoolStats {
        self.inner.lock().stats()
    }

    /// Sends one message over a pooled connection.
    pub fn send(&self, envelope: &Envelope, message: impl Read) -> Result<SendReport, Error> {
        let mut lease = self.inner.checkout()?;
        let result = lease.client.send(envelope, message);
        lease.sent += 1;
        self.inner.checkin(lease);
        result
    }

    /// Sends every message, spread over up to [`PoolConfig::max_connections`] connections
    /// (one thread each), each connection a batch. Returns how many ended in each state and
    /// every message's result, by its index in `messages`.
    ///
    /// A body is anything that lends its octets (`Vec<u8>`, `String`, `&[u8]`,
    /// `Arc<[u8]>`, `bytes::Bytes`...): one body shared by many messages is sent without
    /// being copied for each.
    pub fn send_all<B: AsRef<[u8]> + Sync>(
        &self,
        messages: Vec<(Envelope, B)>,
    ) -> (BatchSummary, Vec<MessageResult>) {
        self.send_all_observed(messages, |_, _| {})
    }

    /// [`send_all`](Self::send_all), telling `observe` of each message's final state as
    /// it is known (from any of the pool's threads), for a progress display.
    pub fn send_all_observed<B: AsRef<[u8]> + Sync>(
        &self,
        messages: Vec<(Envelope, B)>,
        observe: impl Fn(usize, &MessageState) + Sync,
    ) -> (BatchSummary, Vec<MessageResult>) {
        let work = Work::new(messages, self.inner.config.retries).observed(&observe);
        let workers = self.inner.config.max_connections.min(work.len()).max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| self.inner.worker(&work));
            }
        });
        work.finish()
    }

    /// Closes every idle connection with QUIT and refuses further use; connections still
    /// lent out are closed when they come back.
    pub fn shutdown(&self) {
        let idle = self.inner.lock().close();
        self.inner.freed.notify_all();
        self.inner.quit_all(idle, "shutdown");
    }
}

impl Inner {
    /// Closes `client` with QUIT, waiting for the reply no longer than the pool's
    /// `quit_timeout`.
    fn quit(&self, mut client: SmtpClient, why: &str) {
        tracing::debug!(target: "smtp_client::pool", event = "retired", why, peer = %client.peer_addr());
        if client.set_timeouts(self.config.quitting_timeouts()).is_ok() {
            let _ = client.quit();
        }
    }

    /// Closes every one of `clients` at once, one thread each: a silent server holds this
    /// up for one `quit_timeout`, not one per connection.
    fn quit_all(&self, clients: Vec<SmtpClient>, why: &str) {
        match clients.len() {
            0 => {}
            1 => clients.into_iter().for_each(|c| self.quit(c, why)),
            _ => std::thread::scope(|scope| {
                for client in clients {
                    scope.spawn(move || self.quit(client, why));
                }
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Book<SmtpClient>> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection: an idle one, or a new one while fewer than the maximum are open,
    /// waiting at most the checkout timeout for one to come back.
    fn checkout(&self) -> Result<Lease<SmtpClient>, Error> {
        let started = Instant::now();
        let deadline = started + self.config.checkout_timeout;
        let mut book = self.lock();
        loop {
            let (next, stale) = book.checkout(Instant::now());
            if !stale.is_empty() {
                drop(book);
                self.quit_all(stale, "idle too long");
                book = self.lock();
            }
            match next {
                Checkout::Closed => return Err(Misuse::PoolClosed.into()),
                Checkout::Reuse(lease) => {
                    tracing::debug!(target: "smtp_client::pool", event = "reused", peer = %lease.client.peer_addr());
                    return Ok(lease);
                }
                Checkout::Open => {
                    drop(book);
                    return self.open();
                }
                Checkout::Wait => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::PoolTimeout {
                    waited: now - started,
                });
            }
            book = self
                .freed
                .wait_timeout(book, deadline - now)
                .map(|(b, _)| b)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn open(&self) -> Result<Lease<SmtpClient>, Error> {
        match (self.connector)(&self.config.client) {
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

    /// A lent connection comes back: kept, retired when used up or the pool is closed,
    /// dropped when it failed.
    fn checkin(&self, lease: Lease<SmtpClient>) {
        let session = lease.client.session();
        let usable = !session.is_broken() && !session.is_closed();
        if !usable {
            tracing::debug!(target: "smtp_client::pool", event = "dropped", peer = %lease.client.peer_addr());
        }
        let retire = self.lock().check_in(lease, usable, Instant::now());
        self.freed.notify_one();
        if let Some(client) = retire {
            self.quit(client, "used up");
        }
    }

    /// One connection's share of `send_all`: batches until no message is left.
    fn worker<B: AsRef<[u8]>>(&self, work: &Work<'_, B>) {
        while work.has_queued() {
            let mut lease = match self.checkout() {
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
                Some((envelope, Cursor::new(work.body(index))))
            });
            let mut ended = Vec::new();
            let result = lease.client.send_batch_ready(messages, |r| ended.push(r));
            lease.sent += ended.len();
            for r in ended {
                work.record(given[r.index], r.state);
            }
            if let Err(err) = result {
                // The batch could not start: nothing was taken from the queue.
                tracing::debug!(target: "smtp_client::pool", event = "batch refused", error = %err);
            }
            self.checkin(lease);
        }
    }
}

/// What `send_all_observed` calls with each message's final state.
type Observer<'o> = dyn Fn(usize, &MessageState) + Sync + 'o;

/// The messages of one `send_all`: the queue, the attempts, the results.
pub(crate) struct Work<'o, B> {
    /// The bodies, lent to the connections as slices.
    bodies: Vec<B>,
    retries: usize,
    state: Mutex<WorkState>,
    observe: Option<&'o Observer<'o>>,
}

struct WorkState {
    queue: VecDeque<usize>,
    attempts: Vec<usize>,
    /// Each message's envelope until its last allowed attempt takes it (a session consumes
    /// the envelope it sends; an earlier attempt gets a copy, for the retry).
    envelopes: Vec<Option<Envelope>>,
    results: Vec<Option<MessageState>>,
}

impl<'o, B: AsRef<[u8]>> Work<'o, B> {
    pub(crate) fn new(messages: Vec<(Envelope, B)>, retries: usize) -> Work<'o, B> {
        let n = messages.len();
        let (envelopes, bodies): (Vec<_>, Vec<_>) =
            messages.into_iter().map(|(e, b)| (Some(e), b)).unzip();
        Work {
            bodies,
            retries,
            observe: None,
            state: Mutex::new(WorkState {
                queue: (0..n).collect(),
                attempts: vec![0; n],
                envelopes,
                results: (0..n).map(|_| None).collect(),
            }),
        }
    }

    fn observed(mut self, observe: &'o Observer<'o>) -> Work<'o, B> {
        self.observe = Some(observe);
        self
    }

    fn lock(&self) -> MutexGuard<'_, WorkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn len(&self) -> usize {
        self.bodies.len()
    }

    /// The body of message `index`.
    pub(crate) fn body(&self, index: usize) -> &[u8] {
        self.bodies[index].as_ref()
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// The next message to send and its envelope, counted as an attempt. The last attempt
    /// [`record`](Self::record) allows takes the envelope; an earlier one gets a copy.
    pub(crate) fn next(&self) -> Option<(usize, Envelope)> {
        loop {
            let mut s = self.lock();
            let index = s.queue.pop_front()?;
            s.attempts[index] += 1;
            let envelope = if s.attempts[index] > self.retries {
                s.envelopes[index].take()
            } else {
                s.envelopes[index].clone()
            };
            drop(s);
            match envelope {
                Some(envelope) => return Some((index, envelope)),
                // Cannot happen: a message is queued again only while attempts remain.
                None => self.record(
                    index,
                    MessageState::NotSent(Arc::new(Error::Internal(
                        "a message was queued after its last attempt",
                    ))),
                ),
            }
        }
    }

    /// A message ended: final, unless it was not sent and may be tried again.
    pub(crate) fn record(&self, index: usize, state: MessageState) {
        let mut s = self.lock();
        if matches!(state, MessageState::NotSent(_)) && s.attempts[index] <= self.retries {
            s.queue.push_back(index);
            return;
        }
        if let Some(observe) = self.observe {
            observe(index, &state);
        }
        s.results[index] = Some(state);
    }

    /// No connection could be had: the next message is not sent (or queued again).
    pub(crate) fn fail_one(&self, err: &Error) {
        if let Some((index, _)) = self.next() {
            self.record(index, MessageState::NotSent(shared(err)));
        }
    }

    pub(crate) fn finish(self) -> (BatchSummary, Vec<MessageResult>) {
        let state = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut summary = BatchSummary::default();
        let results: Vec<MessageResult> = state
            .results
            .into_iter()
            .enumerate()
            .map(|(index, state)| {
                // Every message was taken and recorded before the workers ended.
                let state = state.unwrap_or_else(|| {
                    MessageState::NotSent(Arc::new(Error::Internal("a message was never sent")))
                });
                summary.count(&state);
                MessageResult { index, state }
            })
            .collect();
        (summary, results)
    }
}

#[cfg(test)]
mod tests {
    use smtp_proto::{ForwardPath, Mailbox, ReversePath};

    use super::*;

    fn message(to: &str) -> (Envelope, Vec<u8>) {
        let from = ReversePath::Mailbox(Mailbox::new("a@example.test").unwrap());
        let to = ForwardPath::new(to).unwrap();
        (
            Envelope::new(from, [to]),
            b"Subject: x\r\n\r\nx\r\n".to_vec(),
        )
    }

    fn not_sent() -> MessageState {
        MessageState::NotSent(Arc::new(Error::Internal("the connection failed")))
    }

    fn recipient(e: &Envelope) -> String {
        e.recipients()[0].0.to_string()
    }

    #[test]
    fn each_attempt_gets_the_messages_envelope_and_the_last_one_ends_it() {
        let work = Work::new(
            vec![message("b@example.test"), message("c@example.test")],
            1,
        );
        let (i, e) = work.next().unwrap();
        assert_eq!((i, recipient(&e)), (0, "<b@example.test>".to_owned()));
        assert_eq!(work.body(i), b"Subject: x\r\n\r\nx\r\n");
        // Not sent with a retry left: queued again behind the other message, with its
        // envelope.
        work.record(i, not_sent());
        let (i, e) = work.next().unwrap();
        assert_eq!((i, recipient(&e)), (1, "<c@example.test>".to_owned()));
        work.record(i, not_sent());
        let (i, e) = work.next().unwrap();
        assert_eq!((i, recipient(&e)), (0, "<b@example.test>".to_owned()));
        // The second attempt was the last: not sent again, it ends so.
        work.record(i, not_sent());
        let (i, e) = work.next().unwrap();
        assert_eq!((i, recipient(&e)), (1, "<c@example.test>".to_owned()));
        work.record(i, not_sent());
        assert!(work.next().is_none());
        let (summary, results) = work.finish();
        assert_eq!((summary.not_sent, results.len()), (2, 2));
        assert!(results
            .iter()
            .all(|r| matches!(&r.state, MessageState::NotSent(e) if matches!(**e, Error::Internal("the connection failed")))));
    }

    #[test]
    fn without_retries_a_message_is_tried_once() {
        let work = Work::new(vec![message("b@example.test")], 0);
        let (i, e) = work.next().unwrap();
        assert_eq!((i, recipient(&e)), (0, "<b@example.test>".to_owned()));
        work.record(i, not_sent());
        assert!(work.next().is_none());
        assert_eq!(work.finish().0.not_sent, 1);
    }
}
