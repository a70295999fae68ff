//! The error of an AUTH exchange: who said no, and why.

use std::fmt;

use sasl_mechs::{OAuthError, SaslError};
use smtp_proto::{ChallengeError, Reply};

/// Everything that can end an AUTH exchange without success.
///
/// The variants tell apart a refusal made before anything was sent (the first four: the
/// connection is untouched), the server's verdict (its reply code decides the variant, and
/// the reply is kept whole), a server that broke the exchange, and a broken connection.
/// After any variant but [`Client`](AuthError::Client) (when it
/// [is fatal](smtp_client::Error::is_fatal)) the connection stays usable: another `auth`,
/// with another mechanism, may follow.
///
/// No variant holds a secret: replies are the server's, commands are not kept, and the
/// mechanism's responses never leave the exchange.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// AUTH already succeeded on this connection; RFC 4954 forbids a second one. Nothing
    /// was sent.
    #[error("already authenticated: RFC 4954 allows one successful AUTH per session")]
    AlreadyAuthenticated,
    /// The server did not offer the mechanism after its last EHLO. Nothing was sent.
    #[error("{}", not_offered(.mechanism, .offered, *.encrypted))]
    NotOffered {
        /// The mechanism asked for.
        mechanism: String,
        /// What the server offered (upper case), perhaps nothing.
        offered: Vec<String>,
        /// Whether the channel was encrypted (servers often offer AUTH only after STARTTLS).
        encrypted: bool,
    },
    /// The mechanism sends the password readable on the wire (PLAIN, LOGIN) and the
    /// channel is not encrypted; allow it with
    /// [`AuthOptions::allow_plaintext_without_tls`](crate::AuthOptions::allow_plaintext_without_tls).
    /// Nothing was sent.
    #[error("{mechanism} would send the password in clear on an unencrypted connection; use TLS or allow it explicitly")]
    PlaintextRefused {
        /// The mechanism refused.
        mechanism: String,
    },
    /// No mechanism is offered by the server, allowed by the options and usable with the
    /// credentials (automatic choice). Nothing was sent.
    #[error(
        "no usable SASL mechanism among those offered ({}){}",
        .offered.join(" "),
        if *.plaintext_refused { "; PLAIN/LOGIN refused on an unencrypted connection" } else { "" }
    )]
    NoSuitableMechanism {
        /// What the server offered.
        offered: Vec<String>,
        /// True when PLAIN or LOGIN would have done but the channel is not encrypted.
        plaintext_refused: bool,
    },
    /// `auth_auto` tried several mechanisms and none succeeded: each refused as a mechanism
    /// (504, 534, 538, 454) and the last one ended the attempts (any error, 535 among
    /// them), or no usable mechanism was left. In the order tried.
    #[error("every mechanism tried failed: {}", format_attempts(.attempts))]
    AllAttemptsFailed {
        /// Each mechanism tried and its error.
        attempts: Vec<crate::AuthAttempt>,
    },
    /// 535: the server refused the credentials (RFC 4954 "Authentication credentials
    /// invalid").
    #[error("{mechanism}: bad credentials: {reply}{}", detail_suffix(.detail.as_deref()))]
    BadCredentials {
        /// The mechanism used.
        mechanism: &'static str,
        /// The server's reply.
        reply: Reply,
        /// For OAUTHBEARER and XOAUTH2: the error JSON the server sent before the 535.
        detail: Option<Box<OAuthError>>,
    },
    /// 454 or 432: a temporary failure (the server's authentication back end is
    /// unavailable, or a password transition is needed); try again later.
    #[error("{mechanism}: temporary authentication failure: {reply}")]
    Temporary {
        /// The mechanism used.
        mechanism: &'static str,
        /// The server's reply.
        reply: Reply,
    },
    /// 538: the server wants this mechanism only over an encrypted connection.
    #[error("{mechanism}: encryption required for this mechanism: {reply}")]
    EncryptionRequired {
        /// The mechanism used.
        mechanism: &'static str,
        /// The server's reply.
        reply: Reply,
    },
    /// 534: the server's policy needs a stronger mechanism than this one.
    #[error("{mechanism}: mechanism too weak for the server's policy: {reply}")]
    TooWeak {
        /// The mechanism used.
        mechanism: &'static str,
        /// The server's reply.
        reply: Reply,
    },
    /// Any other negative reply (504 unknown mechanism, 503 bad sequence, 501, 421...).
    #[error("{mechanism}: AUTH refused: {reply}")]
    Refused {
        /// The mechanism used.
        mechanism: &'static str,
        /// The server's reply.
        reply: Reply,
    },
    /// The server broke the exchange; the client cancelled it with `*` where it could.
    #[error("{mechanism}: the server broke the AUTH exchange: {violation}{}", cancel_suffix(.cancel_reply.as_ref()))]
    ServerMisbehaved {
        /// The mechanism used.
        mechanism: &'static str,
        /// What the server did wrong.
        violation: Violation,
        /// The server's reply to the client's `*` (usually 501); `None` when no `*` was
        /// sent (the server had already ended the exchange).
        cancel_reply: Option<Reply>,
    },
    /// The mechanism refused what the server sent (a malformed challenge, a SCRAM server
    /// signature that does not verify, a server error inside the mechanism). Within the
    /// exchange the client cancelled with `*`; after a 235 it could not, and the server
    /// must be treated as unauthenticated: close the connection.
    #[error("{}{}", named(.mechanism, .source), cancel_suffix(.cancel_reply.as_ref()))]
    Mechanism {
        /// The mechanism used.
        mechanism: &'static str,
        /// What the mechanism found.
        source: Box<SaslError>,
        /// The server's reply to the client's `*`, when one was sent.
        cancel_reply: Option<Reply>,
    },
    /// The mechanism could not be built or started (unknown name, credentials it cannot
    /// carry, a missing token). Nothing was sent.
    #[error("SASL: {0}")]
    Sasl(#[from] SaslError),
    /// The connection failed or the client refused the command (see
    /// [`smtp_client::Error::is_fatal`]).
    #[error("{0}")]
    Client(#[from] smtp_client::Error),
}

/// How the server broke an AUTH exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A 334 whose text is not one line of base64.
    BadChallenge(ChallengeError),
    /// A 334 where none is possible: after the mechanism had finished, a non-empty
    /// challenge where the initial response was due, or a 334 in answer to `*`.
    UnexpectedChallenge,
    /// More 334 challenges than any mechanism needs.
    TooManyRounds {
        /// How many challenges were answered.
        limit: usize,
    },
    /// A reply that has no meaning in an AUTH exchange (a 3xx other than 334, a 2xx other
    /// than 235, a 1xx).
    UnexpectedReply(Box<Reply>),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::BadChallenge(e) => write!(f, "{e}"),
            Violation::UnexpectedChallenge => f.write_str("a 334 challenge where none is possible"),
            Violation::TooManyRounds { limit } => {
                write!(f, "more than {limit} challenges")
            }
            Violation::UnexpectedReply(reply) => write!(f, "unexpected reply {reply}"),
        }
    }
}

impl AuthError {
    /// The server's reply that decided the outcome, if any (for
    /// [`ServerMisbehaved`](AuthError::ServerMisbehaved) and
    /// [`Mechanism`](AuthError::Mechanism): the reply to the cancel).
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            AuthError::BadCredentials { reply, .. }
            | AuthError::Temporary { reply, .. }
            | AuthError::EncryptionRequired { reply, .. }
            | AuthError::TooWeak { reply, .. }
            | AuthError::Refused { reply, .. } => Some(reply),
            AuthError::ServerMisbehaved { cancel_reply, .. }
            | AuthError::Mechanism { cancel_reply, .. } => cancel_reply.as_ref(),
            AuthError::Client(e) => e.reply(),
            AuthError::AllAttemptsFailed { attempts } => attempts.last()?.error.reply(),
            _ => None,
        }
    }

    /// True when nothing was sent to the server: the caller's or the policy's refusal.
    pub fn nothing_sent(&self) -> bool {
        matches!(
            self,
            AuthError::AlreadyAuthenticated
                | AuthError::NotOffered { .. }
                | AuthError::PlaintextRefused { .. }
                | AuthError::NoSuitableMechanism { .. }
                | AuthError::Sasl(_)
        )
    }
}

fn not_offered(mechanism: &str, offered: &[String], encrypted: bool) -> String {
    if offered.is_empty() {
        let hint = if encrypted {
            ""
        } else {
            " (some servers offer it only after STARTTLS)"
        };
        format!("the server offers no AUTH mechanism{hint}; {mechanism} not offered")
    } else {
        format!(
            "the server does not offer {mechanism} (it offers {})",
            offered.join(" ")
        )
    }
}

/// The mechanism's error, prefixed with its name unless the error already starts with it.
fn named(mechanism: &str, source: &SaslError) -> String {
    let text = source.to_string();
    if text.starts_with(mechanism) {
        text
    } else {
        format!("{mechanism}: {text}")
    }
}

fn format_attempts(attempts: &[crate::AuthAttempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}: {}", a.mechanism, a.error))
        .collect::<Vec<_>>()
        .join("; ")
}

fn detail_suffix(detail: Option<&OAuthError>) -> String {
    detail.map(|d| format!(" ({d})")).unwrap_or_default()
}

fn cancel_suffix(reply: Option<&Reply>) -> String {
    reply
        .map(|r| format!("; exchange cancelled, server answered {r}"))
        .unwrap_or_default()
}
