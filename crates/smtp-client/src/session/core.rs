//! What a session knows whatever phase it is in: the connection's state, what the server
//! said about itself, and the bytes going out.

use std::time::Instant;

use smtp_proto::{Capabilities, Command, Reply, ReplyParser};

use super::config::SessionConfig;
use super::owed::{Label, Owed};
use crate::error::{Error, ProtocolError, TlsUnavailable};
use crate::transcript::{Direction, Transcript};

/// The state of the connection under the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    /// Usable.
    Open,
    /// The server closed its side; replies already received may still be read.
    EndOfStream,
    /// A fatal error happened: nothing more may be sent.
    Broken,
    /// A message streamed after DATA was left unfinished (its writer dropped): the
    /// connection is dropped without the end of data, so that the message is never
    /// delivered. Nothing more may be sent.
    Abandoned,
    /// QUIT was answered (or the server closed after it).
    Closed,
}

/// Where AUTH stands (RFC 4954: one successful AUTH per session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthState {
    /// Not authenticated.
    None,
    /// The last reply was a 235 to an AUTH line; the client has not yet checked the
    /// server's proof (SCRAM), so it is not counted as authenticated yet.
    ServerAccepted,
    /// AUTH succeeded for both sides.
    Authenticated,
}

/// How far the mail transaction the caller builds command by command (MAIL, RCPT) has
/// gone, as far as the client can know: a message streamed after DATA needs a sender and a
/// recipient the server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MailTransaction {
    /// None open: never started, or ended by the end of data, BDAT, RSET, EHLO or STARTTLS
    /// (RFC 5321 4.1.1.4, 4.1.1.5, 4.1.4), or by a whole `send`.
    None,
    /// MAIL (or SEND, SOML, SAML) was accepted.
    Sender,
    /// MAIL and at least one RCPT were accepted.
    Recipients,
}

/// Which timeout a reply is awaited within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// Any command's reply.
    Command,
    /// The 354 to DATA.
    DataStart,
}

/// Everything but the phase.
#[derive(Debug)]
pub(super) struct Core {
    pub(super) config: SessionConfig,
    pub(super) parser: ReplyParser,
    pub(super) output: Vec<u8>,
    pub(super) transcript: Transcript,
    pub(super) link: Link,
    pub(super) banner: Option<Reply>,
    pub(super) caps: Option<Capabilities>,
    pub(super) last_reply: Option<Reply>,
    pub(super) encrypted: bool,
    pub(super) auth: AuthState,
    pub(super) transaction: MailTransaction,
}

impl Core {
    pub(super) fn new(config: SessionConfig) -> Core {
        Core {
            parser: ReplyParser::with_limits(config.reply_limits),
            encrypted: config.tls == crate::tls::TlsMode::Implicit,
            config,
            output: Vec::new(),
            transcript: Transcript::default(),
            link: Link::Open,
            banner: None,
            caps: None,
            last_reply: None,
            auth: AuthState::None,
            transaction: MailTransaction::None,
        }
    }

    /// True when the last EHLO offered what `offers` looks for.
    pub(super) fn has(&self, offers: fn(&Capabilities) -> bool) -> bool {
        self.caps.as_ref().is_some_and(offers)
    }

    /// True when commands may be pipelined: configured, and offered by the server.
    pub(super) fn pipelining(&self) -> bool {
        self.config.pipelining && self.has(Capabilities::pipelining)
    }

    /// Encodes `command` into the output and shows it in the transcript (redacted when
    /// secret), returning the line as shown. Under STARTTLS-required nothing but EHLO,
    /// STARTTLS and QUIT goes out in clear.
    pub(super) fn write_command(&mut self, command: &Command<'_>) -> Result<String, Error> {
        if self.config.starttls_required()
            && !self.encrypted
            && !matches!(
                command,
                Command::Ehlo(_) | Command::Lhlo(_) | Command::StartTls | Command::Quit
            )
        {
            return Err(Error::TlsRequired(TlsUnavailable::NotYetEstablished {
                verb: command.verb(),
            }));
        }
        let start = self.output.len();
        command.encode(&mut self.output)?;
        let shown = if command.is_secret() {
            command.redacted()
        } else {
            let line = &self.output[start..];
            let line = line.strip_suffix(b"\r\n").unwrap_or(line);
            // Commands are ASCII, or UTF-8 under SMTPUTF8: the checked conversion (a
            // word at a time over ASCII) nearly always succeeds.
            match std::str::from_utf8(line) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(line).into_owned(),
            }
        };
        self.transcript.line(Direction::Sent, &shown);
        Ok(shown)
    }

    /// Writes `command` and records in `owed` that its reply is awaited within the timeout
    /// `wait` names.
    pub(super) fn request<T>(
        &mut self,
        owed: &mut Owed<T>,
        command: &Command<'_>,
        what: T,
        wait: Wait,
        now: Instant,
    ) -> Result<(), Error> {
        let timeouts = &self.config.timeouts;
        let timeout = match wait {
            Wait::Command => timeouts.command,
            Wait::DataStart => timeouts.data_start,
        };
        let label = Label::Command(self.write_command(command)?);
        owed.push(what, label, timeout, now);
        Ok(())
    }

    /// Writes `BDAT <len> [LAST]` and the chunk as is (RFC 3030); its reply is owed as
    /// `what`, within the end-of-data timeout for the last chunk.
    pub(super) fn write_bdat<T>(
        &mut self,
        owed: &mut Owed<T>,
        chunk: &[u8],
        last: bool,
        what: T,
        now: Instant,
    ) -> Result<(), Error> {
        let size = chunk.len() as u64;
        if last {
            // The end of the message: its reply is awaited like the one to DATA's final dot,
            // within the end-of-data timeout.
            let shown = self.write_command(&Command::Bdat { size, last })?;
            let timeout = self.config.timeouts.data_end;
            owed.push(what, Label::LastChunk(shown), timeout, now);
        } else {
            self.request(
                owed,
                &Command::Bdat { size, last },
                what,
                Wait::Command,
                now,
            )?;
        }
        self.output.extend_from_slice(chunk);
        self.note_data(chunk.len());
        Ok(())
    }

    /// Shows a piece of the message in the transcript (its size, never its bytes).
    pub(super) fn note_data(&mut self, len: usize) {
        self.transcript
            .line(Direction::Sent, &format!("[message data: {len} bytes]"));
    }

    /// Writes the end-of-data `.` line after the stuffer's own ending and awaits its reply.
    pub(super) fn await_end_of_data<T>(&mut self, owed: &mut Owed<T>, what: T, now: Instant) {
        self.transcript.line(Direction::Sent, ".");
        let timeout = self.config.timeouts.data_end;
        owed.push(what, Label::EndOfData, timeout, now);
    }

    /// Bytes received that no command asked for: a protocol error, never a reply.
    pub(super) fn unsolicited(&mut self) -> Option<Error> {
        if self.parser.buffered_len() == 0 {
            return None;
        }
        let text = match self.parser.next_reply() {
            Ok(Some(reply)) => reply.to_string(),
            _ => format!("{} bytes", self.parser.buffered_len()),
        };
        Some(Error::Protocol(ProtocolError::UnsolicitedReply(text)))
    }

    /// Forgets what was learnt in clear or before a new EHLO.
    pub(super) fn forget_capabilities(&mut self) {
        self.caps = None;
        self.auth = AuthState::None;
    }
}
