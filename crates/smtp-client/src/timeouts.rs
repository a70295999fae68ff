//! Per-phase timeouts: each awaited reply gets an absolute deadline.

use std::time::{Duration, Instant};

/// How long the client waits at each phase of a session.
///
/// Each deadline is absolute, set when the client starts to wait: a server that sends one
/// byte a second does not extend it. The defaults follow RFC 5321 4.5.3.2 (greeting and
/// each command 5 minutes, DATA initiation 2 minutes, end of data 10 minutes); the connect
/// and write timeouts follow Net::SMTP's default of 120 seconds.
///
/// ```
/// use std::time::Duration;
/// use smtp_client::Timeouts;
/// let t = Timeouts::uniform(Duration::from_secs(30));
/// assert_eq!(t.data_end, Duration::from_secs(30));
/// assert_eq!(Timeouts::default().data_end, Duration::from_secs(600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect, per address tried. Default 120 s.
    pub connect: Duration,
    /// The server's 220 greeting (and an implicit-TLS handshake). Default 300 s.
    pub greeting: Duration,
    /// The reply to each command (EHLO, MAIL, RCPT, RSET, AUTH...) and the STARTTLS
    /// handshake. Default 300 s.
    pub command: Duration,
    /// The 354 reply to DATA. Default 120 s.
    pub data_start: Duration,
    /// The reply after the final `.` of DATA (or BDAT LAST). Default 600 s.
    pub data_end: Duration,
    /// Each blocking write to the socket. Default 120 s.
    pub write: Duration,
}

impl Timeouts {
    /// The same timeout for every phase, like Net::SMTP's `Timeout` option.
    pub const fn uniform(t: Duration) -> Timeouts {
        Timeouts {
            connect: t,
            greeting: t,
            command: t,
            data_start: t,
            data_end: t,
            write: t,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(120),
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_start: Duration::from_secs(120),
            data_end: Duration::from_secs(600),
            write: Duration::from_secs(120),
        }
    }
}

/// The instant `timeout` after `now`. A timeout too large to represent (e.g.
/// `Duration::MAX`, "wait for ever") gives a deadline a century away instead of
/// overflowing, so no caller-supplied timeout can make the client panic.
pub(crate) fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    now.checked_add(timeout)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_after_never_overflows() {
        let now = Instant::now();
        assert_eq!(
            deadline_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let far = deadline_after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(365 * 24 * 60 * 60));
    }
}
