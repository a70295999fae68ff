//! A batch of RCPT commands with Net::SMTP's SkipBad semantics: each recipient accepted or
//! refused with its reply, the good ones kept. Used by `recipients()` and by `send()`.

use std::time::Instant;

use smtp_proto::{Command, ForwardPath, RcptParams, Reply, ReplyCode};

use super::core::{Core, Wait};
use super::owed::Owed;
use super::phase::Phase;
use super::Outcome;
use crate::envelope::{RecipientReply, RecipientsReport};
use crate::error::{Error, RefusedRecipient};

/// The recipients of one transaction and what became of each.
#[derive(Debug)]
pub(super) struct RcptBatch {
    list: Vec<(ForwardPath, RcptParams)>,
    /// How many RCPT commands were written.
    sent: usize,
    accepted: Vec<ForwardPath>,
    /// The RCPT reply of each of `accepted`, in the same order.
    accepted_replies: Vec<RecipientReply>,
    refused: Vec<RefusedRecipient>,
    /// Past the server's limit for this transaction: for a new one.
    deferred: Vec<RefusedRecipient>,
}

impl RcptBatch {
    pub(super) fn new(list: Vec<(ForwardPath, RcptParams)>) -> RcptBatch {
        RcptBatch {
            list,
            sent: 0,
            accepted: Vec::new(),
            accepted_replies: Vec::new(),
            refused: Vec::new(),
            deferred: Vec::new(),
        }
    }

    /// True while some RCPT has not been written yet.
    pub(super) fn has_unsent(&self) -> bool {
        self.sent < self.list.len()
    }

    /// Writes the next RCPT, or with `all` every one not yet written (pipelined); the reply
    /// of recipient `index` is owed as `tag(index)`.
    pub(super) fn send<T>(
        &mut self,
        core: &mut Core,
        owed: &mut Owed<T>,
        tag: fn(usize) -> T,
        all: bool,
        now: Instant,
    ) -> Result<(), Error> {
        while let Some((to, params)) = self.list.get(self.sent) {
            core.request(
                owed,
                &Command::Rcpt { to, params },
                tag(self.sent),
                Wait::Command,
                now,
            )?;
            self.sent += 1;
            if !all {
                break;
            }
        }
        Ok(())
    }

    /// Records the reply to the RCPT of recipient `index`.
    pub(super) fn record(&mut self, index: usize, reply: Reply) {
        let Some((to, _)) = self.list.get(index) else {
            return;
        };
        if reply.is_positive_completion() {
            self.accepted.push(to.clone());
            self.accepted_replies.push(RecipientReply {
                recipient: to.clone(),
                reply,
            });
            return;
        }
        let refused = RefusedRecipient {
            recipient: to.clone(),
            reply,
        };
        if refused.is_too_many_recipients() {
            self.deferred.push(refused);
        } else {
            self.refused.push(refused);
        }
    }

    /// True once every recipient has its reply.
    pub(super) fn all_answered(&self) -> bool {
        self.accepted.len() + self.refused.len() + self.deferred.len() == self.list.len()
    }

    /// True when every answered recipient was refused.
    pub(super) fn none_accepted(&self) -> bool {
        self.accepted.is_empty()
    }

    /// The error when no recipient was accepted: those past the limit count as refused,
    /// since a new transaction would meet the same limit at its first recipient.
    pub(super) fn all_refused(&self) -> Error {
        let mut refused = self.refused.clone();
        refused.extend(self.deferred.iter().cloned());
        Error::RecipientsRefused { refused }
    }

    /// The recipients accepted so far, in RCPT order.
    pub(super) fn accepted(&self) -> &[ForwardPath] {
        &self.accepted
    }

    pub(super) fn into_report(self) -> RecipientsReport {
        RecipientsReport {
            accepted: self.accepted,
            accepted_replies: self.accepted_replies,
            refused: self.refused,
            deferred: self.deferred,
        }
    }
}

/// `recipients()`: RCPT for each recipient, pipelined when offered.
#[derive(Debug)]
pub(super) struct Recipients {
    batch: RcptBatch,
    pipelined: bool,
    owed: Owed<usize>,
}

fn index(i: usize) -> usize {
    i
}

impl Recipients {
    pub(super) fn start(
        core: &mut Core,
        list: Vec<(ForwardPath, RcptParams)>,
        now: Instant,
    ) -> Result<Recipients, Error> {
        let mut op = Recipients {
            batch: RcptBatch::new(list),
            pipelined: core.pipelining(),
            owed: Owed::default(),
        };
        op.batch
            .send(core, &mut op.owed, index, op.pipelined, now)?;
        Ok(op)
    }

    pub(super) fn owed(&self) -> &Owed<usize> {
        &self.owed
    }

    pub(super) fn on_reply(mut self, reply: Reply, core: &mut Core, now: Instant) -> Phase {
        let Some(awaited) = self.owed.pop(now) else {
            return Phase::unsolicited(reply);
        };
        let closing = reply.code() == ReplyCode::SERVICE_UNAVAILABLE;
        self.batch.record(awaited.what, reply.clone());
        if closing {
            return Phase::failed(awaited.label.refused(reply));
        }
        if !self.pipelined && self.batch.has_unsent() {
            return match self.batch.send(core, &mut self.owed, index, false, now) {
                Ok(()) => Phase::Recipients(self),
                Err(e) => Phase::failed(e),
            };
        }
        if !self.owed.is_empty() {
            return Phase::Recipients(self);
        }
        if self.batch.none_accepted() {
            return Phase::failed(self.batch.all_refused());
        }
        Phase::done(Outcome::Recipients(self.batch.into_report()))
    }
}
