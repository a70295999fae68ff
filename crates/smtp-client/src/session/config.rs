//! How a session behaves, independent of any socket.

use smtp_proto::{Domain, ReplyLimits};

use crate::timeouts::Timeouts;
use crate::tls::TlsMode;

/// How a session behaves, independent of any socket.
///
/// The TLS behaviour is one value, [`TlsMode`]: a session cannot be told "implicit TLS" and
/// "STARTTLS required" at once.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The name sent in EHLO/HELO.
    pub client_id: Domain,
    /// Deadlines for each phase.
    pub timeouts: Timeouts,
    /// Bounds on each reply (line length, line count).
    pub reply_limits: ReplyLimits,
    /// When TLS is used: from the first byte, after STARTTLS (required or opportunistic),
    /// or never.
    pub tls: TlsMode,
    /// Send EHLO after the greeting (Net::SMTP's `SendHello`).
    pub send_hello: bool,
    /// Use PIPELINING (RFC 2920) when the server offers it (default true).
    pub pipelining: bool,
    /// SMTP (the default) or LMTP (RFC 2033: LHLO, one reply per recipient after the data).
    pub protocol: Protocol,
}

/// The protocol a session speaks: SMTP, or LMTP (RFC 2033), its variant for the last hop
/// into a mail store.
///
/// LMTP greets with `LHLO` instead of `EHLO` (there is no HELO to fall back to) and, after
/// the end of data (or `BDAT ... LAST`), answers once per accepted recipient, in RCPT order;
/// [`send`](crate::SmtpClient::send) puts each of those replies in
/// [`SendReport::per_recipient`](crate::SendReport::per_recipient).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// RFC 5321 SMTP.
    #[default]
    Smtp,
    /// RFC 2033 LMTP.
    Lmtp,
}

impl SessionConfig {
    /// A configuration with default timeouts and limits, STARTTLS required, EHLO sent.
    pub fn new(client_id: Domain) -> SessionConfig {
        SessionConfig {
            client_id,
            timeouts: Timeouts::default(),
            reply_limits: ReplyLimits::default(),
            tls: TlsMode::StartTlsRequired,
            send_hello: true,
            pipelining: true,
            protocol: Protocol::Smtp,
        }
    }

    /// Nothing but EHLO, STARTTLS and QUIT may be sent before TLS is up.
    pub(super) fn starttls_required(&self) -> bool {
        self.tls == TlsMode::StartTlsRequired
    }

    /// STARTTLS is tried after EHLO on a plaintext connection.
    pub(super) fn starttls_wanted(&self) -> bool {
        matches!(
            self.tls,
            TlsMode::StartTlsRequired | TlsMode::StartTlsOpportunistic
        )
    }
}
