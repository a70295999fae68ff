//! One whole message: MAIL, RCPT for each recipient, then the body with DATA or BDAT,
//! pipelined when the server offers it.
//!
//! ```text
//!  PeekBody ──first chunk──▶ Envelope ──354 / last RCPT (BDAT)──▶ Body ⇄ (BdatWait) ──last chunk──▶ AwaitEnd ──2xx──▶ sent
//!                               │                                                                      │
//!                               └──── refusal ──▶ Failing (drain owed replies) ──▶ Resetting (RSET) ──▶ error
//! ```

use std::time::Instant;

use smtp_proto::{Command, DotStuffer, Reply, ReplyCode};

use super::config::Protocol;
use super::core::{Core, Link, Wait};
use super::owed::{Awaits, Label, Owed};
use super::per_recipient::PerRecipient;
use super::phase::Phase;
use super::prepare::{declare_body, has_8bit, Prepared};
use super::rcpt::RcptBatch;
use super::Outcome;
use crate::envelope::{Prdr, RecipientReply, SendReport};
use crate::error::{Error, Misuse, ProtocolError};

/// At most this many BDAT chunks await their reply at once.
const BDAT_WINDOW: usize = 8;

/// A reply the transaction waits for.
#[derive(Debug, Clone, Copy)]
enum Awaited {
    Mail,
    Rcpt(usize),
    Data,
    DataEnd,
    Bdat {
        last: bool,
    },
    /// LMTP, PRDR: the reply for the k-th accepted recipient after the end of data.
    PerRecipient(usize),
    /// PRDR: the reply to the end of data, 353 when the server goes on with a reply per
    /// recipient.
    PrdrStart,
    Rset,
}

fn rcpt(i: usize) -> Awaited {
    Awaited::Rcpt(i)
}

/// How the body goes out.
#[derive(Debug)]
enum Stream {
    /// After 354, dot-stuffed.
    Data(DotStuffer),
    /// In BDAT chunks, as they are.
    Bdat,
}

/// What the transaction is doing once MAIL went out.
#[derive(Debug)]
enum Step {
    /// MAIL, RCPT (and DATA when pipelined) sent; the first chunk waits for the server to be
    /// ready for the body.
    Envelope { first: Vec<u8>, last: bool },
    /// The driver pushes body chunks.
    Body(Stream),
    /// An unpipelined BDAT chunk was sent; its reply comes before the next chunk.
    BdatWait,
    /// The end of data (or BDAT LAST) was sent; the final reply is awaited.
    AwaitEnd,
    /// The transaction failed; replies still owed are read before the error is returned.
    /// (Boxed, as is the rarely used per-recipient state: a transaction is moved with
    /// every reply, so its size is paid on every message.)
    Failing(Box<Error>),
    /// RSET sent to leave the session clean; its reply comes before the error.
    Resetting(Box<Error>),
}

/// Where a transaction stands after a reply or a chunk of the body.
#[derive(Debug)]
pub(super) enum TxNext {
    /// Still under way.
    Continue(Transaction),
    /// Over: the report, or why not (and whether the connection is unusable after it).
    Done {
        result: Result<SendReport, Error>,
        broken: bool,
    },
}

impl TxNext {
    fn failed(err: Error) -> TxNext {
        TxNext::Done {
            result: Err(err),
            broken: false,
        }
    }

    fn broken(err: Error) -> TxNext {
        TxNext::Done {
            result: Err(err),
            broken: true,
        }
    }

    fn unsolicited(reply: Reply) -> TxNext {
        TxNext::broken(Error::Protocol(ProtocolError::UnsolicitedReply(
            reply.to_string(),
        )))
    }

    /// As the phase of a single `send`.
    fn into_phase(self) -> Phase {
        match self {
            TxNext::Continue(tx) => Phase::Send(Box::new(Sending::Started(tx))),
            TxNext::Done {
                result: Ok(report), ..
            } => Phase::done(Outcome::Sent(report)),
            TxNext::Done {
                result: Err(err),
                broken: false,
            } => Phase::failed(err),
            TxNext::Done {
                result: Err(err),
                broken: true,
            } => Phase::broken(err),
        }
    }
}

/// A transaction under way.
#[derive(Debug)]
pub(super) struct Transaction {
    rcpts: RcptBatch,
    bdat: bool,
    eight_bit_ok: bool,
    pipelined: bool,
    /// MAIL was accepted: a failure is followed by RSET.
    mail_ok: bool,
    owed: Owed<Awaited>,
    step: Step,
    /// LMTP, PRDR: the replies after the end of data, once they are awaited.
    per_recipient: Option<Box<PerRecipient>>,
    /// `MAIL ... PRDR` was sent.
    prdr: bool,
}

/// `send()`.
#[derive(Debug)]
pub(super) enum Sending {
    /// Nothing sent yet: the first chunk of the body decides BODY= before MAIL goes out.
    PeekBody(Prepared),
    /// MAIL went out.
    Started(Transaction),
}

impl Sending {
    /// True when the driver must push the next body chunk.
    pub(super) fn wants_body(&self) -> bool {
        match self {
            Sending::PeekBody(_) => true,
            Sending::Started(tx) => tx.wants_body(),
        }
    }

    pub(super) fn owed(&self) -> Option<&dyn Awaits> {
        match self {
            Sending::PeekBody(_) => None,
            Sending::Started(tx) => Some(tx.owed()),
        }
    }

    /// Takes the next chunk of the body. The session is left in the returned phase.
    pub(super) fn push_body(
        self,
        chunk: &[u8],
        last: bool,
        core: &mut Core,
        now: Instant,
    ) -> (Phase, Result<(), Error>) {
        let next = match self {
            Sending::PeekBody(prepared) => Transaction::start(prepared, chunk, last, core, now),
            Sending::Started(tx) => tx.push_chunk(chunk, last, core, now),
        };
        match next {
            Ok(tx) => (Phase::Send(Box::new(Sending::Started(tx))), Ok(())),
            Err(e) => (Phase::Ready, Err(e)),
        }
    }

    pub(super) fn on_reply(self, reply: Reply, core: &mut Core, now: Instant) -> Phase {
        match self {
            Sending::PeekBody(_) => Phase::unsolicited(reply),
            Sending::Started(tx) => tx.on_reply(reply, core, now).into_phase(),
        }
    }
}

impl Transaction {
    /// Writes MAIL, and when pipelined every RCPT and DATA, in one batch. On failure nothing of
    /// the transaction stays in the output.
    pub(super) fn start(
        mut prepared: Prepared,
        chunk: &[u8],
        last: bool,
        core: &mut Core,
        now: Instant,
    ) -> Result<Transaction, Error> {
        declare_body(core, &mut prepared, chunk, last)?;
        let Prepared {
            mut envelope,
            bdat,
            eight_bit_ok,
            pipelined,
            prdr,
        } = prepared;
        let mut tx = Transaction {
            rcpts: RcptBatch::new(std::mem::take(&mut envelope.recipients)),
            bdat,
            eight_bit_ok,
            pipelined,
            mail_ok: false,
            owed: Owed::default(),
            per_recipient: None,
            prdr,
            step: Step::Envelope {
                first: chunk.to_vec(),
                last,
            },
        };
        let mark = core.output.len();
        let result = (|| {
            let mail = Command::Mail {
                from: &envelope.from,
                params: &envelope.mail_params,
            };
            core.request(&mut tx.owed, &mail, Awaited::Mail, Wait::Command, now)?;
            if pipelined {
                tx.rcpts.send(core, &mut tx.owed, rcpt, true, now)?;
                if !bdat {
                    tx.request_data(core, now)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Nothing of this transaction may go out half-made.
            core.output.truncate(mark);
            return Err(e);
        }
        Ok(tx)
    }

    /// Takes the next chunk of the body (after [`wants_body`](Self::wants_body)). An error
    /// leaves nothing to wait for: 8-bit data the server cannot take (the connection must be
    /// dropped) or a chunk that cannot be written.
    pub(super) fn push_chunk(
        mut self,
        chunk: &[u8],
        last: bool,
        core: &mut Core,
        now: Instant,
    ) -> Result<Transaction, Error> {
        let Step::Body(stream) = std::mem::replace(&mut self.step, Step::AwaitEnd) else {
            return Err(Misuse::NoBodyWanted.into());
        };
        if !self.eight_bit_ok && has_8bit(chunk) {
            // MAIL went out without BODY=8BITMIME and the server lacks it: the message
            // cannot be finished correctly, and DATA cannot be aborted but by closing.
            core.link = Link::Broken;
            return Err(Error::ExtensionMissing {
                extension: "8BITMIME",
                needed_for: "8-bit data in the body",
            });
        }
        self.send_chunk(stream, chunk, last, core, now)?;
        Ok(self)
    }

    /// True when the driver must push the next chunk of the body.
    pub(super) fn wants_body(&self) -> bool {
        match self.step {
            // Pipelined BDAT chunks go out without waiting for each 250 (RFC 3030), but
            // no more than a window of them: their replies are read before the next one.
            Step::Body(Stream::Bdat) => self.owed.len() < BDAT_WINDOW,
            Step::Body(_) => true,
            _ => false,
        }
    }

    /// True once the end of data (or BDAT LAST) is in the output: from then on, a lost
    /// connection leaves the message's fate unknown (it may have been delivered).
    pub(super) fn end_written(&self) -> bool {
        matches!(self.step, Step::AwaitEnd)
    }

    pub(super) fn owed(&self) -> &dyn Awaits {
        &self.owed
    }

    fn request_data(&mut self, core: &mut Core, now: Instant) -> Result<(), Error> {
        core.request(
            &mut self.owed,
            &Command::Data,
            Awaited::Data,
            Wait::DataStart,
            now,
        )
    }

    fn send_chunk(
        &mut self,
        stream: Stream,
        chunk: &[u8],
        last: bool,
        core: &mut Core,
        now: Instant,
    ) -> Result<(), Error> {
        match stream {
            Stream::Data(mut stuffer) => {
                stuffer.stuff(chunk, &mut core.output);
                core.note_data(chunk.len());
                if last {
                    stuffer.finish(&mut core.output);
                    if core.config.protocol == Protocol::Lmtp {
                        core.await_end_of_data(&mut self.owed, Awaited::PerRecipient(0), now);
                        self.await_per_recipient(core, now);
                    } else if self.prdr {
                        core.await_end_of_data(&mut self.owed, Awaited::PrdrStart, now);
                    } else {
                        core.await_end_of_data(&mut self.owed, Awaited::DataEnd, now);
                    }
                    self.step = Step::AwaitEnd;
                } else {
                    self.step = Step::Body(Stream::Data(stuffer));
                }
            }
            Stream::Bdat => {
                let lmtp_end = last && core.config.protocol == Protocol::Lmtp;
                let what = if lmtp_end {
                    Awaited::PerRecipient(0)
                } else if last && self.prdr {
                    Awaited::PrdrStart
                } else {
                    Awaited::Bdat { last }
                };
                core.write_bdat(&mut self.owed, chunk, last, what, now)?;
                if lmtp_end {
                    self.await_per_recipient(core, now);
                }
                self.step = if last {
                    Step::AwaitEnd
                } else if self.pipelined {
                    Step::Body(Stream::Bdat)
                } else {
                    Step::BdatWait
                };
            }
        }
        Ok(())
    }

    /// LMTP: the end of data just written (owed as the first recipient's reply) is answered
    /// once per accepted recipient.
    fn await_per_recipient(&mut self, core: &Core, now: Instant) {
        let accepted = self.rcpts.accepted();
        self.per_recipient = Some(Box::new(PerRecipient::await_replies(
            accepted,
            core,
            &mut self.owed,
            Awaited::PerRecipient,
            true,
            now,
        )));
    }

    /// PRDR: after the 353, a reply per accepted recipient, then the final reply.
    fn await_prdr_replies(&mut self, core: &Core, now: Instant) {
        let accepted = self.rcpts.accepted();
        self.per_recipient = Some(Box::new(PerRecipient::await_replies(
            accepted,
            core,
            &mut self.owed,
            Awaited::PerRecipient,
            false,
            now,
        )));
        let timeout = core.config.timeouts.data_end;
        self.owed
            .push(Awaited::DataEnd, Label::EndOfData, timeout, now);
    }

    /// The server is ready for the body: the chunk read before MAIL goes out.
    fn start_body(
        mut self,
        stream: Stream,
        first: &[u8],
        last: bool,
        core: &mut Core,
        now: Instant,
    ) -> TxNext {
        if self.owed.is_empty() {
            if let Some(err) = core.unsolicited() {
                // A reply that came with the 354 (or with the last RCPT reply before BDAT)
                // answers nothing sent: read later, it would pass for the message's reply.
                return TxNext::broken(err);
            }
        }
        match self.send_chunk(stream, first, last, core, now) {
            Ok(()) => TxNext::Continue(self),
            Err(e) => TxNext::failed(e),
        }
    }

    fn fail(&mut self, err: Error) {
        if !matches!(self.step, Step::Failing(_) | Step::Resetting(_)) {
            self.step = Step::Failing(Box::new(err));
        }
    }

    fn is_failing(&self) -> bool {
        matches!(self.step, Step::Failing(_) | Step::Resetting(_))
    }

    pub(super) fn on_reply(mut self, reply: Reply, core: &mut Core, now: Instant) -> TxNext {
        let Some(awaited) = self.owed.pop(now) else {
            return TxNext::unsolicited(reply);
        };
        let code = reply.code();
        // 421: the server is closing the channel; no RSET, no further command.
        let closing =
            (code == ReplyCode::SERVICE_UNAVAILABLE).then(|| awaited.label.refused(reply.clone()));
        let ok = reply.is_positive_completion();
        match awaited.what {
            Awaited::Mail => {
                if !ok {
                    self.fail(awaited.label.refused(reply));
                } else {
                    self.mail_ok = true;
                    if !self.pipelined {
                        if let Err(e) = self.rcpts.send(core, &mut self.owed, rcpt, false, now) {
                            return TxNext::failed(e);
                        }
                    }
                }
            }
            Awaited::Rcpt(i) => {
                self.rcpts.record(i, reply);
                if self.rcpts.all_answered() && !self.is_failing() && self.rcpts.none_accepted() {
                    let err = self.rcpts.all_refused();
                    self.fail(err);
                }
                if !self.pipelined && closing.is_none() && !self.is_failing() {
                    let next = if self.rcpts.has_unsent() {
                        self.rcpts.send(core, &mut self.owed, rcpt, false, now)
                    } else if !self.bdat {
                        self.request_data(core, now)
                    } else {
                        Ok(())
                    };
                    if let Err(e) = next {
                        return TxNext::failed(e);
                    }
                }
            }
            Awaited::Data => {
                if code == ReplyCode::START_MAIL_INPUT {
                    match std::mem::replace(&mut self.step, Step::AwaitEnd) {
                        Step::Envelope { first, last } => {
                            let stream = Stream::Data(DotStuffer::new());
                            return self.start_body(stream, &first, last, core, now);
                        }
                        other => self.step = other,
                    }
                    // RFC 2920 3.1: the server accepted DATA although the transaction
                    // failed; end it with an empty message so the session stays in step.
                    core.output.extend_from_slice(b".\r\n");
                    core.await_end_of_data(&mut self.owed, Awaited::DataEnd, now);
                } else {
                    self.fail(awaited.label.refused(reply));
                }
            }
            Awaited::DataEnd => {
                if !self.is_failing() {
                    // The transaction is over either way (RFC 5321 4.1.1.4): no RSET.
                    if ok {
                        return self.sent(reply);
                    }
                    // PRDR: the replies per recipient were read; the final one refuses
                    // the message for all.
                    return TxNext::failed(awaited.label.refused(reply));
                }
                // Else: the reply to an empty message sent only to get back in step.
            }
            Awaited::Bdat { last } => {
                if !ok {
                    self.fail(awaited.label.refused(reply));
                } else if last && !self.is_failing() {
                    return self.sent(reply);
                } else if matches!(self.step, Step::BdatWait) && self.owed.is_empty() {
                    // Unpipelined BDAT: the chunk was accepted, ask for the next one.
                    self.step = Step::Body(Stream::Bdat);
                }
            }
            Awaited::PerRecipient(k) => {
                if let Some(per_recipient) = &mut self.per_recipient {
                    per_recipient.record(k, reply);
                    if per_recipient.complete() && !self.is_failing() && !self.prdr {
                        // The transaction is over either way: no RSET.
                        return self.sent_per_recipient();
                    }
                }
            }
            Awaited::PrdrStart => {
                if !self.is_failing() {
                    if code == ReplyCode::PRDR_START {
                        self.await_prdr_replies(core, now);
                    } else if ok {
                        // No 353: the one reply stands for every recipient.
                        return self.sent(reply);
                    } else {
                        return TxNext::failed(awaited.label.refused(reply));
                    }
                }
            }
            Awaited::Rset => {
                return match self.step {
                    Step::Resetting(err) | Step::Failing(err) => TxNext::failed(*err),
                    step => {
                        self.step = step;
                        TxNext::Continue(self)
                    }
                };
            }
        }
        if let Some(closing) = closing {
            let err = match self.step {
                Step::Failing(err) | Step::Resetting(err) => *err,
                _ => closing,
            };
            return TxNext::broken(err);
        }
        if !self.owed.is_empty() {
            return TxNext::Continue(self);
        }
        match self.step {
            Step::Failing(err) if self.mail_ok => {
                // Leave the session clean for the next transaction.
                match core.request(
                    &mut self.owed,
                    &Command::Rset,
                    Awaited::Rset,
                    Wait::Command,
                    now,
                ) {
                    Ok(()) => {
                        self.step = Step::Resetting(err);
                        TxNext::Continue(self)
                    }
                    Err(e) => TxNext::failed(e),
                }
            }
            Step::Failing(err) => TxNext::failed(*err),
            Step::Envelope { first, last } if self.bdat => {
                self.step = Step::AwaitEnd;
                self.start_body(Stream::Bdat, &first, last, core, now)
            }
            step => {
                self.step = step;
                TxNext::Continue(self)
            }
        }
    }

    fn sent(self, reply: Reply) -> TxNext {
        let (per_recipient, prdr) = match (self.prdr, self.per_recipient) {
            (false, _) => (Vec::new(), None),
            (true, None) => (Vec::new(), Some(Prdr::Skipped)),
            (true, Some(replies)) => (replies.into_replies(), Some(Prdr::Answered)),
        };
        self.rcpts.sent(reply, per_recipient, prdr)
    }

    /// LMTP: every accepted recipient has its reply after the data.
    fn sent_per_recipient(mut self) -> TxNext {
        let Some(per_recipient) = self.per_recipient.take() else {
            return TxNext::failed(Error::Internal("LMTP replies without an end of data"));
        };
        match per_recipient.finish() {
            Ok((reply, per_recipient)) => self.rcpts.sent(reply, per_recipient, None),
            Err(err) => TxNext::failed(err),
        }
    }
}

impl RcptBatch {
    /// The transaction ended with the message accepted: the report of who got it.
    fn sent(self, reply: Reply, per_recipient: Vec<RecipientReply>, prdr: Option<Prdr>) -> TxNext {
        let report = self.into_report();
        TxNext::Done {
            result: Ok(SendReport {
                accepted: report.accepted,
                accepted_replies: report.accepted_replies,
                refused: report.refused,
                deferred: report.deferred,
                reply,
                per_recipient,
                prdr,
            }),
            broken: false,
        }
    }
}
