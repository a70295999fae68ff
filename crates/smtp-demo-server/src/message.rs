//! What the demo server keeps of each message it accepts: the envelope, the session facts
//! (HELO name, user, mechanism, TLS) and the body as the client meant it.

use std::fmt;

/// How a message's body reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// `DATA`, dot-stuffed, ended by `.`.
    Data,
    /// `BDAT` chunks (RFC 3030).
    Bdat,
}

/// A message the demo server accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The name the client gave in EHLO/HELO.
    pub helo: String,
    /// The user who authenticated on the connection, if any.
    pub authenticated: Option<String>,
    /// The mechanism that user authenticated with.
    pub mechanism: Option<String>,
    /// Whether the connection was encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The reverse-path of MAIL FROM, without angle brackets (`""` for the null path `<>`).
    pub from: String,
    /// The MAIL FROM parameters as sent (`SIZE=120`, `BODY=8BITMIME`, ...).
    pub mail_params: Vec<String>,
    /// Each accepted recipient, without angle brackets (`Postmaster` for `<Postmaster>`).
    pub to: Vec<String>,
    /// The RCPT TO parameters of each recipient in [`to`](Self::to), in the same order, as
    /// sent (`NOTIFY=SUCCESS,FAILURE`, `ORCPT=rfc822;bob@example.test`).
    pub rcpt_params: Vec<Vec<String>>,
    /// The message, as the client meant it: dot-unstuffed (DATA) or the concatenated chunks
    /// (BDAT), end-of-data line excluded.
    pub data: Vec<u8>,
    /// How the body came.
    pub transfer: Transfer,
}

impl fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("helo", &self.helo)
            .field("authenticated", &self.authenticated)
            .field("mechanism", &self.mechanism)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("mail_params", &self.mail_params)
            .field("to", &self.to)
            .field("rcpt_params", &self.rcpt_params)
            .field("data", &String::from_utf8_lossy(&self.data))
            .field("transfer", &self.transfer)
            .finish()
    }
}
