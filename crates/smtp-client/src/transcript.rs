//! The protocol transcript (Net::Cmd's `Debug`): every line in both directions, secrets masked.

use std::fmt;

/// Which way a transcript line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the server (Net::Cmd prints `>>>`).
    Sent,
    /// From the server to the client (Net::Cmd prints `<<<`).
    Received,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Sent => ">>>",
            Direction::Received => "<<<",
        })
    }
}

/// A transcript callback: called with each line, without its CRLF.
pub type TranscriptFn = Box<dyn FnMut(Direction, &str) + Send>;

/// Target of the `tracing` events carrying the transcript (at `DEBUG` level).
pub const TRANSCRIPT_TARGET: &str = "smtp_client::transcript";

/// Where transcript lines go: always a `tracing` event, plus an optional callback.
///
/// Command lines are recorded redacted when they hold a secret (`AUTH PLAIN ****`, and
/// `****` for each AUTH continuation line). The message body is summarised
/// (`[message data: N bytes]`) rather than printed, which keeps transcripts bounded.
#[derive(Default)]
pub(crate) struct Transcript {
    callback: Option<TranscriptFn>,
}

impl Transcript {
    pub(crate) fn set_callback(&mut self, callback: Option<TranscriptFn>) {
        self.callback = callback;
    }

    pub(crate) fn line(&mut self, direction: Direction, line: &str) {
        tracing::debug!(target: TRANSCRIPT_TARGET, "{direction} {line}");
        if let Some(cb) = &mut self.callback {
            cb(direction, line);
        }
    }

    /// Records each line of a reply exactly as received (lossy UTF-8, CRLF removed).
    pub(crate) fn reply(&mut self, raw: &[u8]) {
        let tracing_on = tracing::enabled!(target: TRANSCRIPT_TARGET, tracing::Level::DEBUG);
        if !tracing_on && self.callback.is_none() {
            return;
        }
        for line in raw.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            self.line(Direction::Received, &String::from_utf8_lossy(line));
        }
    }
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcript")
            .field("callback", &self.callback.as_ref().map(|_| "FnMut"))
            .finish()
    }
}
