//! The client's error type: one variant per kind of failure a person must act on differently.

use std::fmt;
use std::time::Duration;

use smtp_proto::{CommandError, ForwardPath, InvalidInput, Reply, ReplyCode, ReplyError};

/// Everything that can go wrong in an SMTP client session.
///
/// The variants tell apart a broken network ([`Io`](Error::Io), [`Timeout`](Error::Timeout),
/// [`ConnectionClosed`](Error::ConnectionClosed)), a misbehaving server
/// ([`Protocol`](Error::Protocol)), a TLS failure ([`Tls`](Error::Tls),
/// [`TlsRequired`](Error::TlsRequired)), a server that said no ([`Refused`](Error::Refused),
/// [`RecipientsRefused`](Error::RecipientsRefused)), a server that lacks what the message
/// needs ([`ExtensionMissing`](Error::ExtensionMissing), [`SizeExceeded`](Error::SizeExceeded))
/// and the caller's own mistake ([`InvalidInput`](Error::InvalidInput),
/// [`Misuse`](Error::Misuse)), apart from a bug of this crate ([`Internal`](Error::Internal)).
/// [`Error::kind`] sorts them into these groups.
///
/// No variant ever holds a secret: commands are stored redacted (`AUTH PLAIN ****`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on the connection failed.
    #[error("I/O error while {op}: {source}")]
    Io {
        /// What the client was doing ("connecting to 127.0.0.1:25", "writing", "reading").
        op: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No address of any host accepted a TCP connection.
    #[error("could not connect: {}", format_attempts(.attempts))]
    Connect {
        /// Each address tried, in order, with why it failed.
        attempts: Vec<ConnectAttempt>,
    },
    /// The server did not complete an awaited reply (or handshake) before its deadline.
    ///
    /// The deadline is absolute: a server that drips bytes slowly does not extend it.
    #[error("timed out after {after:?} waiting for {awaiting}")]
    Timeout {
        /// What was awaited ("the greeting", "the reply to MAIL", "the TLS handshake").
        awaiting: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The server closed the connection while a reply was awaited (under TLS, with or
    /// without `close_notify`). Awaiting the reply to the end of a message (DATA's final dot,
    /// BDAT LAST), `awaiting` says that the message was sent whole and whether it was
    /// delivered is unknown: the server may have queued it before closing.
    #[error("connection closed by the server while waiting for {awaiting}")]
    ConnectionClosed {
        /// What was awaited.
        awaiting: String,
    },
    /// The proxy ([`ClientConfig::proxy`](crate::ClientConfig::proxy)) did not open the
    /// tunnel to the mail server: it refused (its reply code is in the [`ProxyError`](crate::ProxyError)),
    /// refused the credentials, broke its protocol, stalled or closed. Nothing was sent to
    /// the mail server.
    #[error("proxy {proxy}: {error}")]
    Proxy {
        /// The proxy, `host:port`.
        proxy: String,
        /// What went wrong.
        error: crate::proxy::ProxyError,
    },
    /// TLS failed: configuration, handshake, or certificate verification.
    #[error("TLS error: {0}")]
    Tls(#[from] TlsError),
    /// TLS is required but could not be had; nothing but EHLO, STARTTLS and QUIT was sent in clear.
    #[error("TLS required but {0}")]
    TlsRequired(TlsUnavailable),
    /// The server broke the protocol. The connection is unusable afterwards.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server refused a command (4xx or 5xx, or an unexpected code).
    #[error("{command} refused: {reply}")]
    Refused {
        /// The command, redacted when it holds a secret (`AUTH PLAIN ****`).
        command: String,
        /// The server's full reply: code, enhanced status code, text.
        reply: Reply,
    },
    /// The server refused every recipient of a transaction (each one with its reply).
    #[error("all recipients refused: {}", format_refused(.refused))]
    RecipientsRefused {
        /// Each refused recipient with the server's reply to its RCPT (under LMTP, when every
        /// recipient was refused after the data, its reply then).
        refused: Vec<RefusedRecipient>,
    },
    /// The message or envelope needs an extension the server does not offer.
    #[error("the server does not offer {extension}, needed for {needed_for}")]
    ExtensionMissing {
        /// The EHLO keyword ("SMTPUTF8", "8BITMIME", "CHUNKING", "BINARYMIME", "STARTTLS").
        extension: &'static str,
        /// Why it is needed ("a non-ASCII address", "8-bit data in the body").
        needed_for: &'static str,
    },
    /// The server offers the extension, but not this attribute of it (an XCLIENT or
    /// XFORWARD attribute missing from its EHLO line); nothing was sent.
    #[error("the server's {extension} does not take the attribute {attribute}")]
    AttributeNotOffered {
        /// The EHLO keyword ("XCLIENT", "XFORWARD").
        extension: &'static str,
        /// The attribute ("LOGIN", "DESTADDR").
        attribute: &'static str,
    },
    /// The declared message size exceeds the server's SIZE limit (RFC 1870).
    #[error("message of {size} bytes exceeds the server's SIZE limit of {limit} bytes")]
    SizeExceeded {
        /// The message size the caller declared.
        size: u64,
        /// The limit the server announced.
        limit: u64,
    },
    /// A value given by the caller is not valid SMTP; nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(#[from] InvalidInput),
    /// A command could not be encoded (too long, needs SMTPUTF8); nothing was sent.
    #[error("cannot encode command: {0}")]
    Command(#[from] CommandError),
    /// The call does not fit the session's state (DATA not started, a fatal error earlier,
    /// another operation in progress...); nothing was sent. The caller's mistake, never
    /// the server's.
    #[error("{0}")]
    Misuse(#[from] Misuse),
    /// The session reached a state its types should rule out: a bug in this crate. Please
    /// report it with the transcript. The connection must be dropped.
    #[error("internal error (a bug in smtp-client): {0}")]
    Internal(&'static str),
    /// What was asked for is not supported by this client or this build.
    #[error("{0} is not supported")]
    Unsupported(&'static str),
    /// A pool's set-up of a new connection (AUTH, or whatever its connector does) failed.
    #[error("setting up the connection failed: {0}")]
    Setup(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No pooled connection came free within the pool's checkout timeout.
    #[error("no pooled connection came free within {waited:?}")]
    PoolTimeout {
        /// How long the caller waited.
        waited: Duration,
    },
    /// Reading the message body from the caller's reader failed.
    #[error("reading the message body failed: {0}")]
    Body(#[source] std::io::Error),
}

impl Error {
    /// True when the connection can no longer be used after this error.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Io { .. }
            | Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::ConnectionClosed { .. }
            | Error::Proxy { .. }
            | Error::Tls(_)
            | Error::TlsRequired(_)
            | Error::Protocol(_)
            | Error::Internal(_)
            | Error::Body(_) => true,
            Error::Refused { reply, .. } => reply.code() == ReplyCode::SERVICE_UNAVAILABLE,
            _ => false,
        }
    }

    /// What kind of failure this is: what a caller (or a command-line tool choosing its exit
    /// code) acts on.
    ///
    /// ```
    /// use smtp_client::{Error, ErrorKind, Misuse};
    /// assert_eq!(Error::Misuse(Misuse::Busy).kind(), ErrorKind::Misuse);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. }
            | Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::PoolTimeout { .. }
            | Error::Setup(_)
            | Error::ConnectionClosed { .. } => ErrorKind::Connection,
            Error::Proxy { error, .. } if error.is_input() => ErrorKind::Input,
            Error::Proxy { .. } => ErrorKind::Connection,
            Error::Tls(_) | Error::TlsRequired(_) => ErrorKind::Tls,
            Error::Protocol(_) => ErrorKind::Protocol,
            Error::Refused { reply, .. } if reply.code() == ReplyCode::SERVICE_UNAVAILABLE => {
                ErrorKind::Connection
            }
            Error::Refused { .. } | Error::RecipientsRefused { .. } => ErrorKind::Refused,
            Error::ExtensionMissing { .. }
            | Error::AttributeNotOffered { .. }
            | Error::SizeExceeded { .. } => ErrorKind::NotSupported,
            Error::Unsupported(_) => ErrorKind::NotSupported,
            Error::InvalidInput(_) | Error::Command(_) | Error::Body(_) => ErrorKind::Input,
            Error::Misuse(_) => ErrorKind::Misuse,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The server's reply carried by this error, if any (the first one for refused recipients).
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::Refused { reply, .. } => Some(reply),
            Error::RecipientsRefused { refused } => refused.first().map(|r| &r.reply),
            Error::TlsRequired(TlsUnavailable::Refused(reply)) => Some(reply),
            _ => None,
        }
    }
}

/// The kinds of [`Error`], for callers that act on the kind rather than the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The network: connecting, reading, writing, a timeout, the server closing, a 421, or
    /// a proxy that did not open the tunnel.
    Connection,
    /// TLS could not be had or failed.
    Tls,
    /// The server broke the protocol.
    Protocol,
    /// The server refused a command, a recipient or the message.
    Refused,
    /// The server lacks what the message needs (an extension, a large enough SIZE), or the
    /// command is obsolete.
    NotSupported,
    /// A value the caller gave (an address, a command, the body's reader) is not usable.
    Input,
    /// A call that does not fit the session's state.
    Misuse,
    /// A bug in this crate.
    Internal,
}

/// A call that does not fit the session's state: the caller's mistake, with nothing sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// A fatal error happened earlier: the connection cannot be used.
    #[error("the connection failed earlier and cannot be used")]
    ConnectionBroken,
    /// QUIT was answered: the session is over.
    #[error("the session was closed with QUIT")]
    SessionClosed,
    /// Another operation is in progress.
    #[error("another operation is in progress")]
    Busy,
    /// DATA was accepted and not yet ended: only `datasend` and `dataend` may follow.
    #[error("DATA in progress: end it with dataend first")]
    DataInProgress,
    /// `datasend` or `dataend` without a 354 reply to DATA.
    #[error("DATA was not accepted with 354")]
    NotInData,
    /// A DATA writer asked for with no mail transaction to send its message in: MAIL and
    /// at least one RCPT must be accepted first (again after an end of data, RSET, EHLO or
    /// `send`). DATA was not sent.
    #[error("no mail transaction: MAIL and at least one RCPT must be accepted before DATA")]
    NoMailTransaction,
    /// A DATA writer was dropped (or forgotten) before `finish`: the message was abandoned
    /// and the connection dropped without the end of data, so that it is never delivered.
    #[error("a message was abandoned mid-DATA (its writer dropped before finish): the connection was dropped")]
    DataAbandoned,
    /// `poll` with no operation started.
    #[error("no operation in progress")]
    NoOperation,
    /// An envelope or a recipient batch with no recipient.
    #[error("no recipient given")]
    NoRecipients,
    /// The greeting was already received on this connection.
    #[error("the greeting was already received")]
    AlreadyGreeted,
    /// STARTTLS on a connection that is already encrypted.
    #[error("the connection is already encrypted")]
    AlreadyEncrypted,
    /// `tls_established` without a STARTTLS handshake asked for.
    #[error("no STARTTLS handshake in progress")]
    NotHandshaking,
    /// `push_body` when the session did not ask for body data.
    #[error("the session did not ask for body data")]
    NoBodyWanted,
    /// The session asked for body data and the driver has none (a driver bug).
    #[error("the session asked for a body and none was given")]
    NoBody,
    /// A command that changes what the session knows, sent through the generic command
    /// call: it has a method of its own.
    #[error("use {method} for {verb}")]
    UseDedicatedMethod {
        /// The verb refused.
        verb: &'static str,
        /// The method to call instead.
        method: &'static str,
    },
    /// `confirm_authenticated` without a 235 reply to AUTH just before.
    #[error("no 235 reply to AUTH to confirm")]
    NoAuthSuccess,
    /// The outcome of an AUTH exchange asked for before its last reply.
    #[error("the AUTH exchange is not finished")]
    AuthUnfinished,
    /// The pool was shut down.
    #[error("the pool was shut down")]
    PoolClosed,
    /// A previous call of the async client was cancelled mid-command.
    #[error("a previous operation was cancelled mid-command; the connection must be closed")]
    Cancelled,
}

/// One failed connection attempt.
#[derive(Debug)]
pub struct ConnectAttempt {
    /// The host name as configured; through a proxy, `proxy HOST:PORT (for HOST)`, the
    /// address being the proxy's.
    pub host: String,
    /// The address tried, or `None` when the name did not resolve.
    pub address: Option<std::net::SocketAddr>,
    /// Why it failed.
    pub error: std::io::Error,
}

fn format_attempts(attempts: &[ConnectAttempt]) -> String {
    if attempts.is_empty() {
        return "no host to try".to_owned();
    }
    attempts
        .iter()
        .map(|a| match a.address {
            Some(addr) => format!("{} ({addr}): {}", a.host, a.error),
            None => format!("{}: {}", a.host, a.error),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A recipient the server refused, with its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRecipient {
    /// The recipient as given.
    pub recipient: ForwardPath,
    /// The server's reply to its RCPT TO (or, under LMTP, for it after the data).
    pub reply: Reply,
}

impl RefusedRecipient {
    /// True for a temporary refusal (4xx): the same recipient may be tried again later.
    pub fn is_temporary(&self) -> bool {
        self.reply.is_transient_negative()
    }

    /// True when the server refused the recipient only because the transaction already
    /// has as many recipients as it takes (RFC 5321 4.5.3.1.10): `452` with the enhanced
    /// code `4.5.3`, or `452` with none (the code RFC 5321 names for it).
    pub fn is_too_many_recipients(&self) -> bool {
        self.reply.code() == smtp_proto::ReplyCode::TOO_MANY_RECIPIENTS
            && self
                .reply
                .enhanced()
                .is_none_or(|e| (e.class, e.subject, e.detail) == (4, 5, 3))
    }
}

impl fmt::Display for RefusedRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.recipient, self.reply)
    }
}

fn format_refused(refused: &[RefusedRecipient]) -> String {
    refused
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why TLS could not be had when it was required.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsUnavailable {
    /// The EHLO reply did not offer STARTTLS (or EHLO was refused and only HELO would work).
    NotOffered,
    /// The server answered STARTTLS with this reply instead of 220.
    Refused(Reply),
    /// The caller asked for a command other than EHLO, STARTTLS or QUIT before TLS was up.
    NotYetEstablished {
        /// The verb that was held back.
        verb: &'static str,
    },
}

impl fmt::Display for TlsUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsUnavailable::NotOffered => f.write_str("the server does not offer STARTTLS"),
            TlsUnavailable::Refused(reply) => write!(f, "the server refused STARTTLS: {reply}"),
            TlsUnavailable::NotYetEstablished { verb } => {
                write!(f, "{verb} held back: TLS is not established yet")
            }
        }
    }
}

/// A TLS failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The TLS configuration could not be built (bad CA file, no roots...).
    #[error("configuration: {0}")]
    Config(String),
    /// The host name is not usable as a TLS server name.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// The handshake failed; for a certificate problem this says which.
    #[error("handshake failed: {0}")]
    Handshake(#[source] rustls::Error),
    /// The handshake failed on an I/O error.
    #[error("handshake I/O: {0}")]
    HandshakeIo(#[source] std::io::Error),
    /// TLS failed after the handshake: the server sent something TLS forbids there (a
    /// fatal alert, a record that does not decrypt, renegotiation asked again after the
    /// client declined it). The connection is unusable.
    #[error("TLS session failed: {0}")]
    Session(#[source] rustls::Error),
}

/// How the server broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A reply could not be parsed, or it exceeded the reply limits.
    #[error("bad reply: {0}")]
    BadReply(#[from] ReplyError),
    /// Bytes followed the 220 reply to STARTTLS before the TLS handshake: a response
    /// injection attempt (CVE-2011-0411). They are never read as a reply.
    #[error("{0} bytes received after the STARTTLS reply and before the TLS handshake (possible response injection)")]
    BytesBeforeTlsHandshake(usize),
    /// A reply arrived when none was awaited.
    #[error("unsolicited reply from the server: {0}")]
    UnsolicitedReply(String),
    /// The greeting or a reply had a code that makes no sense at that point.
    #[error("unexpected reply {code} to {awaiting}")]
    UnexpectedCode {
        /// The code received.
        code: u16,
        /// What was awaited.
        awaiting: String,
    },
}
