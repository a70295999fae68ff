//! The client-side mechanism trait: the contract every mechanism implements.

use std::fmt;

use zeroize::Zeroizing;

use crate::{OAuthError, SaslError};

/// A client response: raw bytes, zeroed when dropped (it may hold a password).
pub type Response = Zeroizing<Vec<u8>>;

/// One SASL client mechanism: a state machine over raw bytes.
///
/// The driving code (SMTP `AUTH`, IMAP `AUTHENTICATE`, ...) owns the transport and its base64;
/// it holds a `Box<dyn Mechanism>` and never needs to know which mechanism it is. The contract:
///
/// 1. Send the mechanism [`name`](Self::name). If the transport can carry an initial response
///    (SMTP always; IMAP with SASL-IR), call [`initial_response`](Self::initial_response) once,
///    before anything else, and send its bytes with the command (`Some(empty)` is sent as `=`).
///    `None` means the mechanism has none: send the command alone.
///    If the transport cannot carry it, do not call `initial_response`: the first challenge
///    (normally empty) goes to `respond`, which then returns what the initial response would
///    have been.
/// 2. For each server challenge (SMTP `334`, IMAP `+`), decoded from base64, call
///    [`respond`](Self::respond) and send what it returns (possibly empty). An `Err` means
///    the exchange cannot go on: cancel it (`*`) and report the error. A challenge the
///    mechanism did not expect (one round too many) is [`SaslError::UnexpectedChallenge`].
/// 3. When the server says success (SMTP `235`, IMAP `OK`), call [`finish`](Self::finish) with
///    the server's additional success data, if the protocol carried any. `finish` fails if the
///    exchange is incomplete or the server did not prove itself (SCRAM without a verified
///    server signature): treat that as an authentication failure.
/// 4. When the server says failure (SMTP `535`, IMAP `NO`), the exchange is over; call
///    [`failure_detail`](Self::failure_detail) for what the mechanism learnt about the
///    failure (the parsed OAuth error JSON).
///
/// A mechanism is used for one exchange only; build a new one to try again.
pub trait Mechanism: Send + fmt::Debug {
    /// The IANA-registered name, upper case (e.g. `"SCRAM-SHA-256"`).
    fn name(&self) -> &'static str;

    /// True when the client speaks first (PLAIN, SCRAM, NTLM, OAUTHBEARER, ...), false when the
    /// server does (LOGIN, CRAM-MD5, DIGEST-MD5): the default.
    fn has_initial_response(&self) -> bool {
        false
    }

    /// The initial response, to send with the command; `None` if the mechanism has none
    /// (the default, for server-first mechanisms). Call at most once, before any `respond`.
    fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
        Ok(None)
    }

    /// The response to one server challenge (raw bytes, base64 already removed).
    fn respond(&mut self, challenge: &[u8]) -> Result<Response, SaslError>;

    /// Called when the server reports success, with its additional data if any. Fails when
    /// the mechanism has not completed, or has not verified the server where it can.
    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError>;

    /// True when the mechanism sends the password itself, readable by anyone on the wire
    /// (PLAIN, LOGIN): use it only over an encrypted channel.
    fn sends_password_in_clear(&self) -> bool {
        false
    }

    /// What the server said about a failed exchange, as far as the mechanism carried it:
    /// the parsed error JSON for OAUTHBEARER and XOAUTH2, `None` otherwise.
    fn failure_detail(&self) -> Option<&OAuthError> {
        None
    }
}

/// Turns bytes into a [`Response`].
pub(crate) fn response(bytes: Vec<u8>) -> Response {
    Zeroizing::new(bytes)
}
