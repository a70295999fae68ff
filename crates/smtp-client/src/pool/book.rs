//! The pool's bookkeeping, the same for both drivers: which idle connection is handed out,
//! which are retired, and the counts. Waiting for a free slot is the driver's.

use std::time::{Duration, Instant};

use super::PoolStats;

/// A connection lent out, with how many messages it has carried.
pub(crate) struct Lease<C> {
    pub(crate) client: C,
    pub(crate) sent: usize,
}

struct Idle<C> {
    client: C,
    since: Instant,
    sent: usize,
}

/// What a caller asking for a connection does next.
pub(crate) enum Checkout<C> {
    /// The pool was shut down.
    Closed,
    /// Use this idle connection.
    Reuse(Lease<C>),
    /// Open a new one (a slot is taken for it: [`Book::opened`] or [`Book::open_failed`]).
    Open,
    /// Every slot is taken: wait for one to come back.
    Wait,
}

/// The idle connections, the slots taken, and the counts.
pub(crate) struct Book<C> {
    idle: Vec<Idle<C>>,
    stats: PoolStats,
    idle_timeout: Duration,
    max_messages: usize,
    max_connections: usize,
    /// Connections lent out or being opened.
    busy: usize,
    closed: bool,
}

impl<C> Book<C> {
    pub(crate) fn new(config: &super::PoolConfig) -> Book<C> {
        Book {
            idle: Vec::new(),
            stats: PoolStats::default(),
            idle_timeout: config.idle_timeout,
            max_messages: config.max_messages_per_connection,
            max_connections: config.max_connections,
            busy: 0,
            closed: false,
        }
    }

    /// What a caller asking for a connection does next, and the idle connections that
    /// idled too long (to be closed by the caller).
    pub(crate) fn checkout(&mut self, now: Instant) -> (Checkout<C>, Vec<C>) {
        if self.closed {
            return (Checkout::Closed, Vec::new());
        }
        let (lease, stale) = self.take(now);
        let next = match lease {
            Some(lease) => Checkout::Reuse(lease),
            None if self.busy < self.max_connections => Checkout::Open,
            None => return (Checkout::Wait, stale),
        };
        self.busy += 1;
        (next, stale)
    }

    /// Opening a connection failed: its slot is free again.
    pub(crate) fn open_failed(&mut self) {
        self.busy -= 1;
    }

    /// A lent connection comes back: kept, or returned to be closed with QUIT (used up, or
    /// the pool shut down); one that failed (`usable` false) is dropped.
    pub(crate) fn check_in(&mut self, lease: Lease<C>, usable: bool, now: Instant) -> Option<C> {
        self.busy -= 1;
        if !usable {
            self.stats.dropped += 1;
            return None;
        }
        if self.closed {
            self.stats.retired += 1;
            return Some(lease.client);
        }
        self.give_back(lease, now)
    }

    /// Shuts the pool: every idle connection, to be closed with QUIT.
    pub(crate) fn close(&mut self) -> Vec<C> {
        self.closed = true;
        self.drain()
    }

    /// The most recently used idle connection that is young enough, and the ones that
    /// idled too long (to be closed by the caller).
    fn take(&mut self, now: Instant) -> (Option<Lease<C>>, Vec<C>) {
        let timeout = self.idle_timeout;
        let (fresh, stale): (Vec<_>, Vec<_>) = self
            .idle
            .drain(..)
            .partition(|i| now.saturating_duration_since(i.since) < timeout);
        self.idle = fresh;
        self.stats.retired += stale.len();
        let lease = self.idle.pop().map(|i| {
            self.stats.reused += 1;
            Lease {
                client: i.client,
                sent: i.sent,
            }
        });
        self.stats.idle = self.idle.len();
        (lease, stale.into_iter().map(|i| i.client).collect())
    }

    /// A new connection was opened.
    pub(crate) fn opened(&mut self) {
        self.stats.opened += 1;
    }

    /// A lent connection comes back having carried `sent` messages in all. Returns it when
    /// it is used up (to be closed with QUIT by the caller).
    fn give_back(&mut self, lease: Lease<C>, now: Instant) -> Option<C> {
        if lease.sent >= self.max_messages {
            self.stats.retired += 1;
            return Some(lease.client);
        }
        self.idle.push(Idle {
            client: lease.client,
            since: now,
            sent: lease.sent,
        });
        self.stats.idle = self.idle.len();
        None
    }

    fn drain(&mut self) -> Vec<C> {
        self.stats.retired += self.idle.len();
        self.stats.idle = 0;
        self.idle.drain(..).map(|i| i.client).collect()
    }

    /// Messages a connection that has carried `sent` may still carry.
    pub(crate) fn budget(&self, sent: usize) -> usize {
        self.max_messages.saturating_sub(sent).max(1)
    }

    pub(crate) fn stats(&self) -> PoolStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_are_reused_until_used_up_or_too_old() {
        let t0 = Instant::now();
        let config = super::super::PoolConfig::new(crate::ClientConfig::new("mx.example.test"))
            .max_messages_per_connection(3);
        let mut book: Book<&str> = Book::new(&config);
        book.opened();
        let lease = Lease {
            client: "a",
            sent: 2,
        };
        assert!(book.give_back(lease, t0).is_none());
        let (lease, stale) = book.take(t0 + Duration::from_secs(1));
        let lease = lease.expect("the idle one is reused");
        assert_eq!((lease.client, lease.sent, stale.len()), ("a", 2, 0));
        // A third message uses it up: it is retired, not kept.
        let used_up = Lease {
            client: "a",
            sent: 3,
        };
        assert_eq!(book.give_back(used_up, t0), Some("a"));
        // One that idled past the timeout is handed back for closing.
        let lease = Lease {
            client: "b",
            sent: 0,
        };
        assert!(book.give_back(lease, t0).is_none());
        let (lease, stale) = book.take(t0 + Duration::from_secs(31));
        assert!(lease.is_none());
        assert_eq!(stale, ["b"]);
        let stats = book.stats();
        assert_eq!((stats.opened, stats.reused, stats.retired), (1, 1, 2));
    }
}
