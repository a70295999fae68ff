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

/// The idle connections and the counts.
pub(crate) struct Book<C> {
    idle: Vec<Idle<C>>,
    stats: PoolStats,
    idle_timeout: Duration,
    max_messages: usize,
}

impl<C> Book<C> {
    pub(crate) fn new(idle_timeout: Duration, max_messages: usize) -> Book<C> {
        Book {
            idle: Vec::new(),
            stats: PoolStats::default(),
            idle_timeout,
            max_messages,
        }
    }

    /// The most recently used idle connection that is young enough, and the ones that
    /// idled too long (to be closed by the caller).
    pub(crate) fn take(&mut self, now: Instant) -> (Option<Lease<C>>, Vec<C>) {
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
    pub(crate) fn give_back(&mut self, lease: Lease<C>, now: Instant) -> Option<C> {
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

    /// A lent connection failed and is dropped.
    pub(crate) fn dropped(&mut self) {
        self.stats.dropped += 1;
    }

    /// Every idle connection, for shutdown.
    pub(crate) fn drain(&mut self) -> Vec<C> {
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
        let mut book: Book<&str> = Book::new(Duration::from_secs(30), 3);
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
