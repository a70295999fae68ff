//! The phases of a session: what it is doing, each holding only what it needs, moved from
//! one to the next by value.
//!
//! ```text
//!            start_open / start_hello / start_starttls
//!  Ready ─┬──────────────────────────────────────────▶ Setup ──────────────┐
//!    ▲    ├─ start_command ─────────────────────────▶ Command ────────────┤
//!    │    ├─ start_recipients ──────────────────────▶ Recipients ─────────┤
//!    │    ├─ start_send ────────────────────────────▶ Send ───────────────┤
//!    │    ├─ start_batch ───────────────────────────▶ Batch ──────────────┤
//!    │    └─ start_quit ────────────────────────────▶ Quit ───────────────┤
//!    │                                                                     ▼
//!    └──────────────── poll returns the outcome ◀──────────────────── Done
//!  Done ── 354 to DATA ──▶ InData ── start_data_end ──▶ Command
//!  Done ── 354 to start_data_stream's DATA ──▶ Streaming ─┬─ start_stream_end ──▶ Command
//!                                                          └─ anything else: abandoned
//! ```

use std::time::Instant;

use smtp_proto::{DotStuffer, Reply};

use super::batch::Batch;
use super::command::{Quit, SingleCommand};
use super::core::Core;
use super::data::DataStream;
use super::owed::Awaits;
use super::rcpt::Recipients;
use super::send::Sending;
use super::setup::Setup;
use super::Outcome;
use crate::error::{Error, ProtocolError};

/// What the session is doing.
#[derive(Debug)]
pub(super) enum Phase {
    /// Nothing: a new operation may start.
    Ready,
    /// DATA was answered with 354: the caller sends the message with `data_send`.
    InData(DotStuffer),
    /// DATA was answered with 354 and a writer streams the message (`stream_data`) until
    /// `start_stream_end`; any other call means the writer is gone, and abandons it.
    Streaming(DataStream),
    Setup(Setup),
    Command(SingleCommand),
    Recipients(Recipients),
    Send(Box<Sending>),
    Batch(Box<Batch>),
    Quit(Quit),
    /// The operation ended; `poll` hands out the result once.
    Done(Done),
}

/// An ended operation.
#[derive(Debug)]
pub(super) struct Done {
    pub(super) result: Result<Outcome, Error>,
    pub(super) then: Then,
}

/// Where the session stands once the result is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    Ready,
    InData,
    Streaming,
    /// The connection can no longer be used, whatever the error.
    Broken,
    Closed,
}

impl Phase {
    pub(super) fn finish(result: Result<Outcome, Error>, then: Then) -> Phase {
        Phase::Done(Done { result, then })
    }

    pub(super) fn done(outcome: Outcome) -> Phase {
        Phase::finish(Ok(outcome), Then::Ready)
    }

    /// The operation failed; a fatal error ([`Error::is_fatal`]) breaks the connection.
    pub(super) fn failed(err: Error) -> Phase {
        Phase::finish(Err(err), Then::Ready)
    }

    /// The operation failed and the connection cannot be used after it.
    pub(super) fn broken(err: Error) -> Phase {
        Phase::finish(Err(err), Then::Broken)
    }

    /// A reply arrived that the phase did not ask for.
    pub(super) fn unsolicited(reply: Reply) -> Phase {
        Phase::broken(Error::Protocol(ProtocolError::UnsolicitedReply(
            reply.to_string(),
        )))
    }

    /// The replies this phase is owed, if it waits for any.
    pub(super) fn owed(&self) -> Option<&dyn Awaits> {
        match self {
            Phase::Setup(s) => s.owed(),
            Phase::Command(c) => Some(&c.owed),
            Phase::Recipients(r) => Some(r.owed()),
            Phase::Send(s) => s.owed(),
            Phase::Batch(b) => b.owed(),
            Phase::Quit(q) => Some(&q.owed),
            Phase::Ready | Phase::InData(_) | Phase::Streaming(_) | Phase::Done(_) => None,
        }
    }

    /// When the oldest reply this phase waits for must be complete.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.owed()?.deadline()
    }

    /// The error for the server closing the connection during this phase.
    pub(super) fn closed(&self) -> Error {
        match self.owed() {
            Some(owed) => owed.closed(),
            None => Error::ConnectionClosed {
                awaiting: String::new(),
            },
        }
    }

    /// Moves the phase on with the reply that arrived.
    pub(super) fn on_reply(self, reply: Reply, core: &mut Core, now: Instant) -> Phase {
        match self {
            Phase::Setup(s) => s.on_reply(reply, core, now),
            Phase::Command(c) => c.on_reply(reply, core, now),
            Phase::Recipients(r) => r.on_reply(reply, core, now),
            Phase::Send(s) => (*s).on_reply(reply, core, now),
            Phase::Batch(mut b) => {
                b.on_reply(reply, core, now);
                Phase::Batch(b)
            }
            Phase::Quit(q) => q.on_reply(reply, core, now),
            Phase::Ready | Phase::InData(_) | Phase::Streaming(_) | Phase::Done(_) => {
                Phase::unsolicited(reply)
            }
        }
    }
}
