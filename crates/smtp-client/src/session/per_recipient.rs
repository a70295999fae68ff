//! Replies per recipient after the data, in RCPT order, one for each recipient accepted
//! at RCPT: LMTP's end of data (RFC 2033 4.2), and PRDR's replies between its 353 and the
//! final reply (draft-hall-prdr-00, as Exim implements it).
//!
//! The replies are owed like any other: one entry per accepted recipient, each with its own
//! deadline and named after its recipient, so a server that sends too few is a timeout (or
//! a closed connection) that says whose reply never came. A server that sends too many
//! leaves a reply no command asked for, which the next operation finds as
//! [`ProtocolError::UnsolicitedReply`](crate::ProtocolError::UnsolicitedReply).

use std::time::Instant;

use smtp_proto::{ForwardPath, Reply};

use super::core::Core;
use super::owed::{Label, Owed};
use crate::envelope::RecipientReply;
use crate::error::{Error, RefusedRecipient};

/// The per-recipient replies of one LMTP transaction, as they arrive.
#[derive(Debug, Default)]
pub(super) struct PerRecipient {
    /// The recipients whose reply is awaited, in RCPT order.
    expected: Vec<ForwardPath>,
    replies: Vec<RecipientReply>,
}

impl PerRecipient {
    /// Awaits one reply per recipient in `accepted` (RCPT order). Under LMTP
    /// (`first_owed`) the reply to the end of data just written (the final `.` or
    /// `BDAT ... LAST`), the newest in `owed`, is the first recipient's; under PRDR they
    /// all follow the 353. Reply `k` is owed as `tag(k)`, within the end-of-data timeout.
    pub(super) fn await_replies<T>(
        accepted: &[ForwardPath],
        core: &Core,
        owed: &mut Owed<T>,
        tag: fn(usize) -> T,
        first_owed: bool,
        now: Instant,
    ) -> PerRecipient {
        let timeout = core.config.timeouts.data_end;
        for (k, rcpt) in accepted.iter().enumerate() {
            let label = Label::EndOfDataFor(rcpt.to_string());
            if k == 0 && first_owed {
                owed.relabel_newest(label);
            } else {
                owed.push(tag(k), label, timeout, now);
            }
        }
        PerRecipient {
            expected: accepted.to_vec(),
            replies: Vec::with_capacity(accepted.len()),
        }
    }

    /// Records the reply for accepted recipient `index`.
    pub(super) fn record(&mut self, index: usize, reply: Reply) {
        if let Some(recipient) = self.expected.get(index) {
            self.replies.push(RecipientReply {
                recipient: recipient.clone(),
                reply,
            });
        }
    }

    /// True once every accepted recipient has its reply.
    pub(super) fn complete(&self) -> bool {
        self.replies.len() == self.expected.len()
    }

    /// The replies, in RCPT order (PRDR: the final reply decides the outcome).
    pub(super) fn into_replies(self) -> Vec<RecipientReply> {
        self.replies
    }

    /// The outcome once every reply is in: the first positive reply with every reply, or,
    /// when none is positive, [`Error::RecipientsRefused`] with each refusal.
    pub(super) fn finish(self) -> Result<(Reply, Vec<RecipientReply>), Error> {
        match self
            .replies
            .iter()
            .find(|r| r.reply.is_positive_completion())
        {
            Some(first) => Ok((first.reply.clone(), self.replies)),
            None => Err(Error::RecipientsRefused {
                refused: self
                    .replies
                    .into_iter()
                    .map(|r| RefusedRecipient {
                        recipient: r.recipient,
                        reply: r.reply,
                    })
                    .collect(),
            }),
        }
    }
}
