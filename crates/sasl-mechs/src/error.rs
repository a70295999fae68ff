//! The one error type of the crate.

use crate::gssapi::{GssapiError, SecurityLayers};
use crate::oauth_error::OAuthError;

/// Everything that can go wrong in a SASL exchange, on either side.
///
/// Variants name who misbehaved: the caller (`InvalidCredentials`, `MissingCredential`,
/// `OutOfOrder`), the peer (`UnexpectedChallenge`, `MalformedChallenge`,
/// `ServerNotAuthenticated`, `SecurityLayerRequired`, `MalformedResponse`), the local
/// security library (`Gssapi`), or the outcome (`ServerError`, `OAuth`,
/// `AuthenticationFailed`). No variant ever holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// A credential field holds something no mechanism can carry (a NUL, an empty user name).
    #[error("invalid {field}: {reason}")]
    InvalidCredentials {
        /// Which field: "authentication id", "authorization id", "password", "token".
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The mechanism needs a credential the caller did not give (a token for XOAUTH2, a
    /// password for CRAM-MD5), or one it cannot carry.
    #[error("{mechanism} needs {needs}")]
    MissingCredential {
        /// The mechanism's IANA name.
        mechanism: &'static str,
        /// What it needs.
        needs: &'static str,
    },
    /// The name is not a mechanism this crate implements.
    #[error("unknown SASL mechanism {name:?}")]
    UnknownMechanism {
        /// The name as given.
        name: String,
    },
    /// [`select`](crate::select) found no mechanism that the server offers, the caller allows
    /// and the credentials can drive.
    #[error(
        "no usable SASL mechanism among those offered ({}){}",
        offered.join(" "),
        if *plaintext_refused { "; PLAIN/LOGIN refused on an unencrypted channel" } else { "" }
    )]
    NoSuitableMechanism {
        /// What the server offered, as given.
        offered: Vec<String>,
        /// True when a clear-text mechanism was offered and allowed but refused because the
        /// channel is not encrypted.
        plaintext_refused: bool,
    },
    /// The server sent a challenge the mechanism did not expect at this point: one round too
    /// many (LOGIN's third challenge), or a non-empty challenge after PLAIN's response.
    #[error("{mechanism}: unexpected challenge at step {step}")]
    UnexpectedChallenge {
        /// The mechanism's IANA name.
        mechanism: &'static str,
        /// How many challenges the mechanism had already answered.
        step: usize,
    },
    /// The server's challenge could not be parsed (a truncated NTLM type-2 message, a SCRAM
    /// server-first-message without a nonce, ...).
    #[error("{mechanism}: malformed challenge: {reason}")]
    MalformedChallenge {
        /// The mechanism's IANA name.
        mechanism: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The server reported success before the mechanism had completed its exchange.
    #[error("{mechanism}: server reported success before the exchange was complete")]
    PrematureSuccess {
        /// The mechanism's IANA name.
        mechanism: &'static str,
    },
    /// The server did not prove that it knows the password (SCRAM: a wrong or missing server
    /// signature). Treat this as an authentication failure, even if the server said success.
    #[error("{mechanism}: server not authenticated: {reason}")]
    ServerNotAuthenticated {
        /// The mechanism's IANA name.
        mechanism: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The client could bind to the channel and saw no -PLUS mechanism offered, yet the
    /// server says it supports channel binding (SCRAM's
    /// `e=server-does-support-channel-binding`, RFC 5802 §6): the mechanism list was
    /// altered on the way. Do not retry without TLS checks.
    #[error("{mechanism}: the server supports channel binding but offered no -PLUS mechanism: the mechanism list was tampered with")]
    ChannelBindingDowngrade {
        /// The mechanism's IANA name.
        mechanism: &'static str,
    },
    /// The server reported an error inside the mechanism (SCRAM's `e=` attribute).
    #[error("{mechanism}: server error: {message}")]
    ServerError {
        /// The mechanism's IANA name.
        mechanism: &'static str,
        /// The server's error value.
        message: String,
    },
    /// The server rejected an OAuth bearer token; the error JSON it sent, parsed.
    #[error("{0}")]
    OAuth(OAuthError),
    /// The mechanism was driven out of order (a challenge after it finished, an initial
    /// response asked twice): a bug in the driving code.
    #[error("{mechanism}: called out of order: {what}")]
    OutOfOrder {
        /// The mechanism's IANA name.
        mechanism: &'static str,
        /// What was called when.
        what: &'static str,
    },
    /// The server offers only security layers this client does not provide (GSSAPI's
    /// integrity or confidentiality, RFC 4752 §3.3): going on would leave the connection
    /// unprotected where the server expects protection, so the exchange is refused.
    #[error("{mechanism}: the server requires a security layer ({offered}); only \"no security layer\" is supported")]
    SecurityLayerRequired {
        /// The mechanism's IANA name.
        mechanism: &'static str,
        /// The layers the server offered.
        offered: SecurityLayers,
    },
    /// The GSS-API library (Kerberos) refused: no ticket, an unknown service, a token that
    /// does not verify.
    #[error("GSSAPI: {0}")]
    Gssapi(GssapiError),
    /// Server side: the client's response could not be parsed.
    #[error("{mechanism}: malformed client response: {reason}")]
    MalformedResponse {
        /// The mechanism's IANA name.
        mechanism: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Server side: the client's credentials are wrong or the user is unknown.
    #[error("{mechanism}: authentication failed")]
    AuthenticationFailed {
        /// The mechanism's IANA name.
        mechanism: &'static str,
    },
}

impl From<GssapiError> for SaslError {
    fn from(e: GssapiError) -> SaslError {
        SaslError::Gssapi(e)
    }
}
