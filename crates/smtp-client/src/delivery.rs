//! One message to every recipient, in as many transactions as the server needs: a server
//! that takes only so many recipients per transaction answers the others
//! `452 4.5.3 too many recipients` (RFC 5321 4.5.3.1.10), and the client sends the message
//! again, in a new transaction, to the recipients left.

use smtp_proto::{ForwardPath, RcptParams};

use crate::envelope::{Envelope, SendReport};
use crate::error::{Error, RefusedRecipient};

/// What became of a message sent with `send_to_all`: one report per transaction, and the
/// error that stopped a later transaction, if one did.
///
/// Every recipient ends in exactly one of [`accepted`](Self::accepted),
/// [`refused`](Self::refused) or [`unsent`](Self::unsent).
#[derive(Debug)]
pub struct Delivery {
    /// Each transaction's report, in order; the first holds the recipients the server
    /// took first.
    pub transactions: Vec<SendReport>,
    /// A later transaction failed (the connection dropped, MAIL was refused...): its error
    /// and the recipients it was for, who have no answer. `None` when every recipient
    /// got one.
    pub stopped: Option<(Vec<ForwardPath>, Error)>,
}

impl Delivery {
    /// The recipients a server accepted the message for, in every transaction.
    pub fn accepted(&self) -> impl Iterator<Item = &ForwardPath> {
        self.transactions.iter().flat_map(|t| t.accepted.iter())
    }

    /// The recipients refused, each with the reply (temporary ones tell by
    /// [`RefusedRecipient::is_temporary`]).
    pub fn refused(&self) -> impl Iterator<Item = &RefusedRecipient> {
        self.transactions.iter().flat_map(|t| t.refused.iter())
    }

    /// The recipients left without an answer by the error in [`stopped`](Self::stopped).
    pub fn unsent(&self) -> &[ForwardPath] {
        self.stopped.as_ref().map_or(&[], |(left, _)| left)
    }

    /// True when the message was accepted for every recipient.
    pub fn all_accepted(&self) -> bool {
        self.stopped.is_none() && self.transactions.iter().all(|t| t.refused.is_empty())
    }
}

/// The plan both drivers follow: the envelope of each transaction, and what the results
/// add up to. Each transaction after the first is for the recipients the previous one
/// deferred, and the session makes one that accepts nobody an error, so there are at most
/// as many transactions as recipients.
#[derive(Debug)]
pub(crate) struct Resend {
    next: Option<Envelope>,
    delivery: Delivery,
}

impl Resend {
    pub(crate) fn new(envelope: &Envelope) -> Resend {
        Resend {
            next: Some(envelope.clone()),
            delivery: Delivery {
                transactions: Vec::new(),
                stopped: None,
            },
        }
    }

    /// The envelope of the next transaction, and whether the body must be read again from
    /// its start; `None` when every recipient has an answer.
    pub(crate) fn next(&self) -> Option<(&Envelope, bool)> {
        let envelope = self.next.as_ref()?;
        Some((envelope, !self.delivery.transactions.is_empty()))
    }

    /// Records the result of the transaction for [`next`](Self::next)'s envelope. An error
    /// in the first transaction is returned as it is: nothing was delivered.
    pub(crate) fn record(&mut self, result: Result<SendReport, Error>) -> Result<(), Error> {
        let Some(envelope) = self.next.take() else {
            return Ok(());
        };
        let report = match result {
            Ok(report) => report,
            Err(err) if self.delivery.transactions.is_empty() => return Err(err),
            Err(err) => {
                let left = envelope.recipients.into_iter().map(|(to, _)| to).collect();
                self.delivery.stopped = Some((left, err));
                return Ok(());
            }
        };
        if !report.deferred.is_empty() {
            let params_of = |to: &ForwardPath| -> RcptParams {
                envelope
                    .recipients
                    .iter()
                    .find(|(r, _)| r == to)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default()
            };
            let recipients = report
                .deferred
                .iter()
                .map(|d| (d.recipient.clone(), params_of(&d.recipient)))
                .collect();
            self.next = Some(Envelope {
                recipients,
                ..envelope
            });
        }
        self.delivery.transactions.push(report);
        Ok(())
    }

    pub(crate) fn finish(self) -> Delivery {
        self.delivery
    }
}
