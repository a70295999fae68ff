//! What became of each message of a batch: exactly one of four states, so a caller knows
//! which messages it may send again.

use std::sync::Arc;

use crate::envelope::SendReport;
use crate::error::Error;

/// The end of one message of a batch, in the order the messages were given.
#[derive(Debug)]
pub struct MessageResult {
    /// The message's place in the batch, from 0.
    pub index: usize,
    /// What became of it.
    pub state: MessageState,
}

/// What became of a message: accepted, refused, not sent, or unknown (RFC 5321 6.1: once
/// the final dot went out, a lost reply leaves the message's fate to the server).
#[derive(Debug)]
pub enum MessageState {
    /// The server accepted the message (a 2xx after its end of data or BDAT LAST).
    Accepted(SendReport),
    /// The server, or a check made before anything was sent, refused it: the error holds
    /// the reply (per recipient when every recipient was refused).
    Refused(Error),
    /// The connection failed before the message's end of data went out: nothing was
    /// delivered, and it is safe to send it again.
    NotSent(Arc<Error>),
    /// The end of data went out and no reply came: the server may have delivered it. Never
    /// sent again by this crate.
    Unknown(Arc<Error>),
}

impl MessageState {
    /// True for [`Accepted`](Self::Accepted).
    pub fn is_accepted(&self) -> bool {
        matches!(self, MessageState::Accepted(_))
    }
}

/// How many messages of a batch ended in each state, and the error that ended the
/// connection if one did.
#[derive(Debug, Clone, Default)]
pub struct BatchSummary {
    /// Messages accepted.
    pub accepted: usize,
    /// Messages refused.
    pub refused: usize,
    /// Messages not sent (safe to send again).
    pub not_sent: usize,
    /// Messages whose fate is unknown.
    pub unknown: usize,
    /// The failure that ended the connection, when one did; the batch stopped there.
    pub connection_error: Option<Arc<Error>>,
}

impl BatchSummary {
    pub(crate) fn count(&mut self, state: &MessageState) {
        match state {
            MessageState::Accepted(_) => self.accepted += 1,
            MessageState::Refused(_) => self.refused += 1,
            MessageState::NotSent(_) => self.not_sent += 1,
            MessageState::Unknown(_) => self.unknown += 1,
        }
    }

    /// Messages in all.
    pub fn total(&self) -> usize {
        self.accepted + self.refused + self.not_sent + self.unknown
    }
}

impl PartialEq for BatchSummary {
    fn eq(&self, other: &Self) -> bool {
        (self.accepted, self.refused, self.not_sent, self.unknown)
            == (other.accepted, other.refused, other.not_sent, other.unknown)
            && self.connection_error.is_some() == other.connection_error.is_some()
    }
}

impl Eq for BatchSummary {}

/// The same failure, shared by every message it left unsent or unknown. `Error` holds
/// `io::Error`s and is not `Clone`: the kinds that carry a reply are rebuilt, the others
/// kept as their message.
pub(crate) fn shared(err: &Error) -> Arc<Error> {
    Arc::new(match err {
        Error::Refused { command, reply } => Error::Refused {
            command: command.clone(),
            reply: reply.clone(),
        },
        Error::Timeout { awaiting, after } => Error::Timeout {
            awaiting: awaiting.clone(),
            after: *after,
        },
        Error::ConnectionClosed { awaiting } => Error::ConnectionClosed {
            awaiting: awaiting.clone(),
        },
        Error::Protocol(p) => Error::Protocol(p.clone()),
        other => Error::Io {
            op: "sending the batch".to_owned(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}
