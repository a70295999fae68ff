//! A pool of connections to one server: at most N at once, at most M messages each, idle
//! ones closed after a while, set up (connect, STARTTLS, AUTH) by a connector the caller
//! may supply, and reused without a NOOP per message.
//!
//! A connection is given back after each use unless it broke (an I/O error, a timeout, a
//! 421): then it is dropped and the next caller gets a new one. The session already sends
//! RSET after a failed transaction, so a connection given back is always outside a
//! transaction. Callers wait for a free connection no longer than
//! [`PoolConfig::checkout_timeout`], then get [`Error::PoolTimeout`](crate::Error::PoolTimeout). Events are logged
//! with `tracing` under the target `smtp_client::pool` (opened, reused, retired, dropped).
//!
//! [`send_all`](blocking::Pool::send_all) spreads messages over the connections, each
//! connection sending a batch (one round trip per message with PIPELINING). Every message
//! ends in exactly one [`MessageState`](crate::MessageState); a message not sent because
//! its connection failed before its end of data is sent again on another connection when
//! [`PoolConfig::retries`] allows (never one whose end of data went out).

pub mod blocking;
mod book;
#[cfg(feature = "tokio")]
pub mod tokio;

use std::time::Duration;

use crate::config::ClientConfig;

pub(crate) use book::{Book, Checkout, Lease};

/// How a pool behaves.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// How each connection is made.
    pub client: ClientConfig,
    /// At most this many connections at once (default 4).
    pub max_connections: usize,
    /// A connection is closed (QUIT) after this many messages (default 1,000).
    pub max_messages_per_connection: usize,
    /// An idle connection older than this is closed instead of reused (default 30 s).
    pub idle_timeout: Duration,
    /// How long a caller waits for a free connection (default 60 s).
    pub checkout_timeout: Duration,
    /// How many times `send_all` sends again a message that was not sent because its
    /// connection failed before its end of data (default 0: opt-in).
    pub retries: usize,
    /// How long a connection being closed waits for the reply to its QUIT (and for each
    /// write of it) before it is dropped anyway (default 10 s; never longer than the
    /// client's own timeouts). Closing is a courtesy: a silent server must not hold up a
    /// caller waiting for a connection, nor `shutdown`, for the command timeout.
    pub quit_timeout: Duration,
}

impl PoolConfig {
    /// A pool of connections made with `client`, with the defaults above.
    pub fn new(client: ClientConfig) -> PoolConfig {
        PoolConfig {
            client,
            max_connections: 4,
            max_messages_per_connection: 1000,
            idle_timeout: Duration::from_secs(30),
            checkout_timeout: Duration::from_secs(60),
            retries: 0,
            quit_timeout: Duration::from_secs(10),
        }
    }

    /// Sets [`max_connections`](Self::max_connections) (at least 1).
    pub fn max_connections(mut self, n: usize) -> PoolConfig {
        self.max_connections = n.max(1);
        self
    }

    /// Sets [`max_messages_per_connection`](Self::max_messages_per_connection) (at least 1).
    pub fn max_messages_per_connection(mut self, n: usize) -> PoolConfig {
        self.max_messages_per_connection = n.max(1);
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn idle_timeout(mut self, t: Duration) -> PoolConfig {
        self.idle_timeout = t;
        self
    }

    /// Sets [`checkout_timeout`](Self::checkout_timeout).
    pub fn checkout_timeout(mut self, t: Duration) -> PoolConfig {
        self.checkout_timeout = t;
        self
    }

    /// Sets [`retries`](Self::retries).
    pub fn retries(mut self, n: usize) -> PoolConfig {
        self.retries = n;
        self
    }

    /// Sets [`quit_timeout`](Self::quit_timeout).
    pub fn quit_timeout(mut self, t: Duration) -> PoolConfig {
        self.quit_timeout = t;
        self
    }

    /// The client's timeouts with the reply and write waits cut to
    /// [`quit_timeout`](Self::quit_timeout), for closing a connection.
    pub(crate) fn quitting_timeouts(&self) -> crate::Timeouts {
        let mut t = self.client.timeouts;
        t.command = t.command.min(self.quit_timeout);
        t.write = t.write.min(self.quit_timeout);
        t
    }
}

/// What a pool did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened.
    pub opened: usize,
    /// Times an idle connection was used again.
    pub reused: usize,
    /// Connections closed with QUIT (used up, idle too long, or at shutdown).
    pub retired: usize,
    /// Connections dropped because they failed.
    pub dropped: usize,
    /// Connections idle now.
    pub idle: usize,
}
