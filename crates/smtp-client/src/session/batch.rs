//! Many messages over one connection, the next one's MAIL, RCPT and DATA written right
//! behind the previous one's end of data (RFC 2920 3.1 lets commands follow the final dot
//! in one group): with PIPELINING, one round trip per message.
//!
//! Each message is a [`Transaction`] of its own, in wire order; replies come in the order
//! the commands went out, so the oldest transaction still owed a reply takes the next one.
//! The next message starts once the newest one's end of data is written (so a failed
//! transaction's RSET always goes out before the next MAIL), and at most `window`
//! transactions are under way. Each message ends in exactly one [`MessageState`]; when the
//! connection fails, those whose end of data went out are unknown, the others not sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use smtp_proto::Reply;

use super::core::Core;
use super::owed::Awaits;
use super::prepare::{prepare, Prepared};
use super::send::{Transaction, TxNext};
use super::{Event, Outcome};
use crate::accounting::{shared, BatchSummary, MessageResult, MessageState};
use crate::envelope::{Envelope, SendReport};
use crate::error::{Error, Misuse, ProtocolError};

/// The batch phase.
#[derive(Debug)]
pub(super) struct Batch {
    window: usize,
    next_index: usize,
    /// Transactions under way, in wire order.
    active: VecDeque<(usize, Transaction)>,
    /// The next message, checked, waiting for its first chunk before MAIL goes out.
    peeking: Option<(usize, Prepared)>,
    /// Ended messages not yet handed to the driver.
    results: VecDeque<MessageResult>,
    /// The driver has no more messages.
    exhausted: bool,
    summary: BatchSummary,
}

impl Batch {
    pub(super) fn new(window: usize) -> Batch {
        Batch {
            window: window.max(1),
            next_index: 0,
            active: VecDeque::new(),
            peeking: None,
            results: VecDeque::new(),
            exhausted: false,
            summary: BatchSummary::default(),
        }
    }

    /// The replies owed to the oldest transaction, if one is owed any.
    pub(super) fn owed(&self) -> Option<&dyn Awaits> {
        self.active.front().map(|(_, tx)| tx.owed())
    }

    /// What the driver does next when it is not a reply to read; `None`: read replies.
    pub(super) fn next_event(&mut self, core: &mut Core) -> Option<Event> {
        if let Some(result) = self.results.pop_front() {
            return Some(Event::MessageDone(result));
        }
        if self.peeking.is_some() {
            return Some(Event::NeedBody);
        }
        if self.active.back().is_some_and(|(_, tx)| tx.wants_body()) {
            if self.active.iter().all(|(_, tx)| tx.owed().owes_nothing()) {
                if let Some(err) = core.unsolicited() {
                    // A reply that came with the 354 would pass for this message's answer.
                    self.abort(&err);
                    return self.next_event(core);
                }
            }
            return Some(Event::NeedBody);
        }
        let room = self.active.len() < self.window;
        let newest_done = self.active.back().is_none_or(|(_, tx)| tx.end_written());
        if !self.exhausted && room && newest_done {
            return Some(Event::NeedMessage);
        }
        if self.exhausted && self.active.is_empty() {
            return Some(Event::Done(Outcome::Batch(std::mem::take(
                &mut self.summary,
            ))));
        }
        None
    }

    /// The next message's envelope, or `None` when there are no more.
    pub(super) fn push_message(&mut self, core: &Core, envelope: Option<Envelope>) {
        let Some(envelope) = envelope else {
            self.exhausted = true;
            return;
        };
        let index = self.next_index;
        self.next_index += 1;
        if let Some(err) = &self.summary.connection_error {
            // The connection is gone: every message still given is one not sent.
            let state = MessageState::NotSent(Arc::clone(err));
            self.finish(index, state);
            return;
        }
        match prepare(core, envelope) {
            Ok(prepared) => self.peeking = Some((index, prepared)),
            Err(err) => self.finish(index, MessageState::Refused(err)),
        }
    }

    /// Takes the next chunk of the body of the message being sent.
    pub(super) fn push_body(
        &mut self,
        chunk: &[u8],
        last: bool,
        core: &mut Core,
        now: Instant,
    ) -> Result<(), Error> {
        if let Some((index, prepared)) = self.peeking.take() {
            match Transaction::start(prepared, chunk, last, core, now) {
                Ok(tx) => self.active.push_back((index, tx)),
                Err(err) => self.finish(index, MessageState::Refused(err)),
            }
            return Ok(());
        }
        let Some((index, tx)) = self.active.pop_back() else {
            return Err(Misuse::NoBodyWanted.into());
        };
        if !tx.wants_body() {
            self.active.push_back((index, tx));
            return Err(Misuse::NoBodyWanted.into());
        }
        match tx.push_chunk(chunk, last, core, now) {
            Ok(tx) => self.active.push_back((index, tx)),
            Err(err) => {
                let broken = core.link == super::core::Link::Broken;
                let shared_err = broken.then(|| shared(&err));
                self.finish(index, MessageState::Refused(err));
                if let Some(err) = shared_err {
                    self.abort(&err);
                }
            }
        }
        Ok(())
    }

    /// The reply to the oldest transaction still owed one; marks the connection broken
    /// when it can no longer be used.
    pub(super) fn on_reply(&mut self, reply: Reply, core: &mut Core, now: Instant) {
        if self.settle_reply(reply, core, now) {
            core.link = super::core::Link::Broken;
        }
    }

    /// [`on_reply`](Self::on_reply)'s work; true when the connection can no longer be used.
    fn settle_reply(&mut self, reply: Reply, core: &mut Core, now: Instant) -> bool {
        let Some((index, tx)) = self.active.pop_front() else {
            let err = Error::Protocol(ProtocolError::UnsolicitedReply(reply.to_string()));
            self.abort(&err);
            return true;
        };
        match tx.on_reply(reply, core, now) {
            TxNext::Continue(tx) => {
                self.active.push_front((index, tx));
                false
            }
            TxNext::Done { result, broken } => {
                let fatal = broken || result.as_ref().is_err_and(Error::is_fatal);
                let shared_err = match (&result, fatal) {
                    (Err(err), true) => Some(shared(err)),
                    _ => None,
                };
                self.finish(index, state_of(result, broken));
                if let Some(err) = shared_err {
                    self.abort(&err);
                }
                fatal
            }
        }
    }

    /// The connection failed: each message under way ends unknown when its end of data
    /// went out, not sent otherwise, and every message given after this is not sent.
    pub(super) fn abort(&mut self, err: &Error) {
        let err = self
            .summary
            .connection_error
            .get_or_insert_with(|| shared(err))
            .clone();
        let mut ended = Vec::new();
        for (index, tx) in self.active.drain(..) {
            let state = if tx.end_written() {
                MessageState::Unknown(Arc::clone(&err))
            } else {
                MessageState::NotSent(Arc::clone(&err))
            };
            ended.push((index, state));
        }
        if let Some((index, _)) = self.peeking.take() {
            ended.push((index, MessageState::NotSent(Arc::clone(&err))));
        }
        for (index, state) in ended {
            self.finish(index, state);
        }
    }

    fn finish(&mut self, index: usize, state: MessageState) {
        self.summary.count(&state);
        self.results.push_back(MessageResult { index, state });
    }
}

/// A server that closes (421) or a connection that broke before the final reply leaves
/// the message undelivered and safe to send again; any other refusal is the server's word
/// on this message.
fn state_of(result: Result<SendReport, Error>, broken: bool) -> MessageState {
    match result {
        Ok(report) => MessageState::Accepted(report),
        Err(err) => {
            let closing = err
                .reply()
                .is_some_and(|r| r.code() == smtp_proto::ReplyCode::SERVICE_UNAVAILABLE);
            let server_said_no =
                matches!(err, Error::Refused { .. } | Error::RecipientsRefused { .. });
            if closing || (broken && !server_said_no) {
                MessageState::NotSent(shared(&err))
            } else {
                MessageState::Refused(err)
            }
        }
    }
}
