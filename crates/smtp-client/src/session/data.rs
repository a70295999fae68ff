//! A message the caller sends after DATA, in pieces: Net::SMTP's `data`, `datasend` and
//! `dataend`, and the stream a DATA writer (Net::SMTP's `datafh`) feeds.
//!
//! ```text
//!  start_data ──354──▶ InData ── data_send … ──▶ start_data_end ──▶ the final reply
//!  start_data_stream ──354──▶ Streaming ── stream_data … ──▶ start_stream_end ──▶ the final reply
//!                                 │
//!                                 └── any other call, or abandon_stream: Abandoned
//!                                     (no end of data ever; the driver drops the connection)
//! ```
//!
//! The two differ in who may end the message. `InData` is ended by whoever calls
//! `start_data_end`. `Streaming` belongs to one writer: SMTP cannot cancel DATA but by
//! dropping the connection, so a call that is not the writer's (the writer was dropped, or
//! forgotten) abandons the message rather than let a later end of data deliver what the
//! caller never finished.

use std::time::Instant;

use smtp_proto::{Command, DotStuffer};

use super::command::{Effect, SingleCommand};
use super::config::Protocol;
use super::core::{Link, MailTransaction};
use super::owed::Owed;
use super::phase::Phase;
use super::{Expect, Session};
use crate::body::BODY_CHUNK;
use crate::error::{Error, Misuse};
use crate::transcript::Direction;

/// What the transcript shows when a streamed message is abandoned.
const ABANDONED: &str = "[message abandoned: the connection is dropped without the end of data]";

/// A message being streamed after the 354.
#[derive(Debug)]
pub(super) struct DataStream {
    stuffer: DotStuffer,
    /// Message bytes taken since the transcript last showed a count: it shows one line per
    /// 64 KiB, as for `send`, not one per (possibly tiny) write.
    unnoted: usize,
}

impl DataStream {
    pub(super) fn new() -> DataStream {
        DataStream {
            stuffer: DotStuffer::new(),
            unnoted: 0,
        }
    }
}

impl Session {
    /// Sends DATA and waits for 354; then [`data_send`](Self::data_send) and
    /// [`start_data_end`](Self::start_data_end).
    pub fn start_data(&mut self, now: Instant) -> Result<(), Error> {
        self.start_command(&Command::Data, Expect::Intermediate, now)
    }

    /// True between a 354 reply to [`start_data`](Self::start_data) and
    /// [`start_data_end`](Self::start_data_end).
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::InData(_))
    }

    /// True between a 354 reply to [`start_data_stream`](Self::start_data_stream) and
    /// [`start_stream_end`](Self::start_stream_end) (or the message's abandonment).
    pub fn in_stream(&self) -> bool {
        matches!(self.phase, Phase::Streaming(_))
    }

    /// The bytes that arrived with the 354 reply answer nothing the client sent: the
    /// message must not start, or a later reply would be read as its answer.
    fn check_nothing_owed_arrived(&mut self) -> Result<(), Error> {
        match self.core.unsolicited() {
            Some(err) => {
                self.core.link = Link::Broken;
                self.phase = Phase::Ready;
                Err(err)
            }
            None => Ok(()),
        }
    }

    /// Appends message bytes after a 354 reply, dot-stuffed (Net::SMTP's `datasend`).
    pub fn data_send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if !self.in_data() {
            return Err(self.not_now());
        }
        self.check_nothing_owed_arrived()?;
        let Phase::InData(stuffer) = &mut self.phase else {
            return Err(Misuse::NotInData.into());
        };
        stuffer.stuff(bytes, &mut self.core.output);
        self.core.note_data(bytes.len());
        Ok(())
    }

    /// Ends the data with `CRLF.CRLF` and waits for the reply (Net::SMTP's `dataend`).
    pub fn start_data_end(&mut self, now: Instant) -> Result<(), Error> {
        if !self.in_data() {
            return Err(self.not_now());
        }
        self.check_nothing_owed_arrived()?;
        let Phase::InData(mut stuffer) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return Err(Misuse::NotInData.into());
        };
        stuffer.finish(&mut self.core.output);
        self.await_end_of_data(now);
        Ok(())
    }

    /// Sends DATA for a message a writer streams in pieces of any size
    /// ([`stream_data`](Self::stream_data)) and ends with
    /// [`start_stream_end`](Self::start_stream_end): the session's side of
    /// `SmtpClient::data_writer` (Net::SMTP's `datafh`). The outcome is the 354 reply.
    ///
    /// Refused with nothing sent: [`Misuse::NoMailTransaction`] unless MAIL and at least one
    /// RCPT were accepted since the last end of data, BDAT, RSET, EHLO, STARTTLS, XCLIENT or
    /// `send`; [`Error::Unsupported`] under LMTP (its replies per recipient after the data
    /// are `start_send`'s). A reply to DATA other than 354 is an error; a 3xx other than 354
    /// leaves the server's state unknown and breaks the session.
    ///
    /// While the message streams, every other call abandons it
    /// ([`abandon_stream`](Self::abandon_stream)): the writer that would have ended it is gone.
    pub fn start_data_stream(&mut self, now: Instant) -> Result<(), Error> {
        self.ready()?;
        if self.core.config.protocol == Protocol::Lmtp {
            return Err(Error::Unsupported(
                "a DATA writer under LMTP (one reply per recipient after the data): use send",
            ));
        }
        if self.core.transaction != MailTransaction::Recipients {
            return Err(Misuse::NoMailTransaction.into());
        }
        let command = Command::Data;
        self.send_single(&command, Expect::Intermediate, Effect::StartsStream, now)
    }

    /// Appends the next piece of a streamed message, dot-stuffed (bare CR and LF made CRLF):
    /// no reply is awaited. The pieces may be cut anywhere; the output is that of the whole
    /// message stuffed at once. The transcript shows `[message data: N bytes]` once per
    /// 64 KiB taken, and for the rest at the end.
    ///
    /// Without a message streaming: the error every operation gets
    /// ([`Misuse::ConnectionBroken`] after a failure, [`Misuse::DataAbandoned`]...), or
    /// [`Misuse::NotInData`].
    pub fn stream_data(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if !self.in_stream() {
            return Err(self.not_now());
        }
        self.check_nothing_owed_arrived()?;
        let Phase::Streaming(stream) = &mut self.phase else {
            return Err(Misuse::NotInData.into());
        };
        stream.stuffer.stuff(bytes, &mut self.core.output);
        stream.unnoted += bytes.len();
        if stream.unnoted >= BODY_CHUNK {
            let noted = std::mem::take(&mut stream.unnoted);
            self.core.note_data(noted);
        }
        Ok(())
    }

    /// Ends a streamed message with `CRLF.CRLF` (CRLF only when needed) and waits for the
    /// final reply: a 2xx is the outcome, anything else [`Error::Refused`].
    pub fn start_stream_end(&mut self, now: Instant) -> Result<(), Error> {
        if !self.in_stream() {
            return Err(self.not_now());
        }
        self.check_nothing_owed_arrived()?;
        let Phase::Streaming(mut stream) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return Err(Misuse::NotInData.into());
        };
        if stream.unnoted > 0 {
            self.core.note_data(stream.unnoted);
        }
        stream.stuffer.finish(&mut self.core.output);
        self.await_end_of_data(now);
        Ok(())
    }

    /// Abandons the message being streamed: SMTP has no way to cancel DATA but to drop the
    /// connection, which the driver must now do. What of the message is still in
    /// [`output`](Self::output) is discarded, no end of data is ever sent, and every later
    /// operation is refused with [`Misuse::DataAbandoned`]. Returns false, doing nothing,
    /// when no message is streaming.
    pub fn abandon_stream(&mut self) -> bool {
        if !self.in_stream() {
            return false;
        }
        self.phase = Phase::Ready;
        self.core.output.clear();
        self.core.link = Link::Abandoned;
        self.core.transaction = MailTransaction::None;
        self.core.transcript.line(Direction::Sent, ABANDONED);
        true
    }

    /// Why a call that adds to (or ends) a message cannot, when the session is not in the
    /// state it needs: the error any operation would get (the connection broken, another
    /// operation under way, a streamed message abandoned, which this abandons when the call
    /// is not the writer's), else [`Misuse::NotInData`].
    fn not_now(&mut self) -> Error {
        match self.ready() {
            Err(misuse) => misuse.into(),
            Ok(()) => Misuse::NotInData.into(),
        }
    }

    /// The end of data is in the output: its reply is awaited, and the mail transaction is
    /// over whatever the reply (RFC 5321 4.1.1.4).
    fn await_end_of_data(&mut self, now: Instant) {
        self.core.transaction = MailTransaction::None;
        let mut owed = Owed::default();
        self.core.await_end_of_data(&mut owed, (), now);
        self.phase = Phase::Command(SingleCommand {
            owed,
            expect: Expect::Completion,
            effect: Effect::None,
        });
    }
}
