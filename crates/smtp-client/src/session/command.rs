//! One command and its reply: Net::Cmd's `command` + `response`, DATA's 354, the end of
//! data, one BDAT chunk, and QUIT.

use std::time::Instant;

use smtp_proto::{Reply, ReplyCode};

use super::core::{AuthState, Core, Link, MailTransaction};
use super::owed::Owed;
use super::phase::{Phase, Then};
use super::{Expect, Outcome};
use crate::error::{Error, ProtocolError};

/// What the reply to a single command leads to besides being returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// Nothing.
    None,
    /// DATA: a 354 starts the message data.
    StartsData,
    /// DATA for a message streamed by a writer: a 354 starts the stream, and any other
    /// 3xx leaves the client unable to tell whether the server reads a message.
    StartsStream,
    /// MAIL (SEND, SOML, SAML): a 2xx opens a mail transaction.
    OpensTransaction,
    /// RCPT: a 2xx adds a recipient to the open transaction.
    AddsRecipient,
    /// An AUTH line: a 235 is the server accepting the authentication.
    Auth,
}

/// One command sent, its reply awaited.
#[derive(Debug)]
pub(super) struct SingleCommand {
    pub(super) owed: Owed<()>,
    pub(super) expect: Expect,
    pub(super) effect: Effect,
}

impl SingleCommand {
    pub(super) fn on_reply(mut self, reply: Reply, core: &mut Core, now: Instant) -> Phase {
        let Some(awaited) = self.owed.pop(now) else {
            return Phase::unsolicited(reply);
        };
        let ok = match self.expect {
            Expect::AnyReply => true,
            Expect::Completion => reply.is_positive_completion(),
            Expect::Intermediate => reply.is_positive_intermediate(),
        };
        if !ok {
            return Phase::failed(awaited.label.refused(reply));
        }
        let code = reply.code();
        let completed = reply.is_positive_completion();
        match self.effect {
            Effect::StartsData if code == ReplyCode::START_MAIL_INPUT => {
                return Phase::finish(Ok(Outcome::Reply(reply)), Then::InData);
            }
            Effect::StartsStream if code == ReplyCode::START_MAIL_INPUT => {
                return Phase::finish(Ok(Outcome::Reply(reply)), Then::Streaming);
            }
            Effect::StartsStream => {
                return Phase::broken(Error::Protocol(ProtocolError::UnexpectedCode {
                    code: code.get(),
                    awaiting: "354 to DATA".to_owned(),
                }));
            }
            Effect::OpensTransaction if completed => core.transaction = MailTransaction::Sender,
            Effect::AddsRecipient if completed && core.transaction != MailTransaction::None => {
                core.transaction = MailTransaction::Recipients;
            }
            Effect::Auth if code == ReplyCode::AUTH_SUCCESS => {
                core.auth = AuthState::ServerAccepted
            }
            _ => {}
        }
        Phase::done(Outcome::Reply(reply))
    }
}

/// QUIT sent: its reply, or the server closing, ends the session.
#[derive(Debug)]
pub(super) struct Quit {
    pub(super) owed: Owed<()>,
}

impl Quit {
    pub(super) fn on_reply(mut self, reply: Reply, core: &mut Core, now: Instant) -> Phase {
        if self.owed.pop(now).is_none() {
            return Phase::unsolicited(reply);
        }
        core.link = Link::Closed;
        Phase::finish(Ok(Outcome::Closed(Some(reply))), Then::Closed)
    }
}
