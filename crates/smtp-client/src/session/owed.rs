//! The replies a phase is owed: one per command it sent, in order, each with its own
//! deadline.
//!
//! Each phase keeps its own queue, tagged with what that phase needs to know about each
//! reply (which recipient, whether a BDAT chunk was the last). A reply that arrives when the
//! phase's queue is empty answers nothing that was sent: it is a protocol error, never the
//! answer to a later command.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use smtp_proto::Reply;

use crate::error::Error;
use crate::timeouts::deadline_after;

/// Said of a message whose end went out with no reply to it: neither delivered nor refused.
pub(crate) const DELIVERY_UNKNOWN: &str =
    " (the whole message was sent: whether it was delivered is unknown)";

/// How an awaited reply is named in errors.
#[derive(Debug, Clone)]
pub(super) enum Label {
    /// The server's greeting.
    Greeting,
    /// The reply to the final `.` of DATA.
    EndOfData,
    /// The reply for this recipient to the end of data (LMTP, RFC 2033 4.2; PRDR).
    EndOfDataFor(String),
    /// The reply to `BDAT <size> LAST`, as shown in the transcript: the end of the message.
    LastChunk(String),
    /// The reply to this command line, as shown in the transcript (redacted).
    Command(String),
}

impl Label {
    /// What was awaited, for [`Error::Timeout`] and [`Error::ConnectionClosed`]. Past the end
    /// of a message it says that the message's fate is unknown: the server has it whole and
    /// may have accepted it, but only its reply would tell (RFC 5321 4.1.1.4 and 6.1).
    pub(super) fn awaiting(&self) -> String {
        match self {
            Label::Greeting => "the greeting".to_owned(),
            Label::EndOfData => format!("the reply to the end of data{DELIVERY_UNKNOWN}"),
            Label::EndOfDataFor(r) => {
                format!("the reply for {r} to the end of data{DELIVERY_UNKNOWN}")
            }
            Label::LastChunk(c) => format!("the reply to {c}{DELIVERY_UNKNOWN}"),
            Label::Command(c) => format!("the reply to {c}"),
        }
    }

    /// The command a refusal names.
    pub(super) fn refused(&self, reply: Reply) -> Error {
        let command = match self {
            Label::Greeting => "connection (greeting)".to_owned(),
            Label::EndOfData => "end of data".to_owned(),
            Label::EndOfDataFor(r) => format!("end of data for {r}"),
            Label::LastChunk(c) | Label::Command(c) => c.clone(),
        };
        Error::Refused { command, reply }
    }
}

/// One reply awaited.
#[derive(Debug)]
pub(super) struct Pending<T> {
    /// What the phase needs to know about this reply.
    pub(super) what: T,
    pub(super) label: Label,
    pub(super) timeout: Duration,
}

/// The replies owed to one phase, oldest first, and the deadline of the oldest.
///
/// The deadline is absolute and restarts for each reply: a pipelined batch of many
/// commands gets each reply's own timeout, and a server dripping bytes does not extend it.
#[derive(Debug)]
pub(super) struct Owed<T> {
    queue: VecDeque<Pending<T>>,
    deadline: Option<Instant>,
}

impl<T> Default for Owed<T> {
    fn default() -> Self {
        Owed {
            queue: VecDeque::new(),
            deadline: None,
        }
    }
}

impl<T> Owed<T> {
    /// Records that a reply to something just sent is awaited.
    pub(super) fn push(&mut self, what: T, label: Label, timeout: Duration, now: Instant) {
        if self.queue.is_empty() {
            self.deadline = Some(deadline_after(now, timeout));
        }
        self.queue.push_back(Pending {
            what,
            label,
            timeout,
        });
    }

    /// The oldest awaited reply has arrived; the next one's deadline starts now.
    pub(super) fn pop(&mut self, now: Instant) -> Option<Pending<T>> {
        let done = self.queue.pop_front()?;
        self.deadline = self
            .queue
            .front()
            .map(|next| deadline_after(now, next.timeout));
        Some(done)
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Names the reply awaited last otherwise (LMTP: a `BDAT ... LAST` awaited for its
    /// first recipient).
    pub(super) fn relabel_newest(&mut self, label: Label) {
        if let Some(newest) = self.queue.back_mut() {
            newest.label = label;
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The oldest awaited reply and its deadline.
    pub(super) fn head(&self) -> Option<(&Pending<T>, Instant)> {
        Some((self.queue.front()?, self.deadline?))
    }
}

/// What the session asks of any phase's owed replies, whatever they are tagged with.
pub(super) trait Awaits {
    /// True when no reply is owed.
    fn owes_nothing(&self) -> bool;
    /// When the oldest awaited reply must be complete.
    fn deadline(&self) -> Option<Instant>;
    /// The error for the oldest awaited reply not arriving in time.
    fn timed_out(&self) -> Option<Error>;
    /// The error for the server closing while the oldest reply was awaited.
    fn closed(&self) -> Error;
}

impl<T> Awaits for Owed<T> {
    fn owes_nothing(&self) -> bool {
        self.is_empty()
    }

    fn deadline(&self) -> Option<Instant> {
        self.head().map(|(_, deadline)| deadline)
    }

    fn timed_out(&self) -> Option<Error> {
        let (head, _) = self.head()?;
        Some(Error::Timeout {
            awaiting: head.label.awaiting(),
            after: head.timeout,
        })
    }

    fn closed(&self) -> Error {
        Error::ConnectionClosed {
            awaiting: self
                .head()
                .map(|(head, _)| head.label.awaiting())
                .unwrap_or_default(),
        }
    }
}
