//! SASL mechanisms over raw bytes, for any protocol (SMTP, IMAP, POP3, LDAP, XMPP).
//!
//! A mechanism is a state machine: it names itself, may have an initial response, answers
//! each server challenge with a response (or an error), and checks the server's success.
//! Base64 and the protocol's framing (`AUTH`/`334`/`235`, `AUTHENTICATE`/`+`/`OK`) belong to
//! the transport, not to this crate.
//!
//! # The contract
//!
//! Driving code holds a `Box<dyn` [`Mechanism`]`>` built by [`client_mechanism`] from a name
//! (usually the one [`select`] picked from the server's list; a string or a
//! [`MechanismName`]) and [`Credentials`]:
//!
//! 1. `initial_response()` once, if the transport can send one with the command
//!    (`Ok(None)`: the mechanism has none; LOGIN and CRAM-MD5 wait for the server).
//! 2. `respond(challenge)` for each server challenge, raw bytes in, raw bytes out.
//!    Errors are typed: [`SaslError::UnexpectedChallenge`] for a round too many,
//!    [`SaslError::MalformedChallenge`] for bytes that do not parse.
//! 3. `finish(success_data)` when the server says success: fails if the exchange is not
//!    complete or the server has not proved itself (SCRAM's server signature).
//! 4. `failure_detail()` when the server says failure: the OAuth error JSON, parsed.
//!
//! A trait object, not an enum, so that other crates can add mechanisms and driving code
//! never matches on which one it holds.
//!
//! Responses are [`Response`]s (`Zeroizing<Vec<u8>>`) because they may hold the password;
//! [`Secret`] prints as `***`.
//!
//! # Mechanisms
//!
//! Clients: PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5 ([`DigestMd5`], RFC 2831, `qop=auth` only),
//! SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants with channel binding
//! ([`channel_binding`]: `tls-exporter`, `tls-server-end-point`), GSSAPI ([`gssapi`],
//! RFC 4752, Kerberos V5 with feature `gssapi`), NTLM (v2 by default, v1 on request),
//! OAUTHBEARER, XOAUTH2, EXTERNAL, ANONYMOUS: [`MechanismName::ALL_KNOWN`], in the order
//! [`select`] prefers them (it says why). Each name's properties (what it needs, whether it sends the password in
//! clear) sit on [`MechanismName`].
//!
//! # Server side (feature `server`)
//!
//! `server::server_mechanism(name, lookup)` builds the server of every mechanism above from
//! a password (or token) lookup: a `ServerMechanism` steps through the client's messages and
//! reports who authenticated (user, authorization id, and the NTLM domain or DIGEST-MD5
//! realm). EXTERNAL needs the channel's identity, which only `ExternalServer::new` can be
//! given. GSSAPI has no server side here (a Kerberos acceptor needs a keytab; Cyrus SASL
//! and Dovecot are the servers it is proven against).
//!
//! ```
//! use sasl_mechs::{client_mechanism, select, ClientOptions, Credentials, Policy};
//!
//! let creds = Credentials::new("tim", "tanstaaftanstaaf")?;
//! let name = select(&["LOGIN", "CRAM-MD5"], &creds, &Policy::new(false))?;
//! let mut mech = client_mechanism(name, &creds, &ClientOptions::default())?;
//! assert_eq!(mech.initial_response()?, None);            // AUTH CRAM-MD5
//! let challenge = b"<1896.697170952@postoffice.reston.mci.net>"; // from 334
//! let response = mech.respond(challenge)?;
//! assert_eq!(&response[..], b"tim b913a602c7eda7a495b4e6e7334d3890");
//! mech.finish(None)?;                                     // on 235
//! # Ok::<(), sasl_mechs::SaslError>(())
//! ```

pub mod channel_binding;
mod cram_md5;
mod credentials;
mod digest_md5;
#[cfg(feature = "server")]
mod digest_md5_server;
mod error;
pub mod gssapi;
mod login;
mod mechanism;
mod name;
pub mod ntlm;
#[cfg(feature = "server")]
mod ntlm_server;
mod ntlmssp;
mod oauth;
mod oauth_error;
#[cfg(feature = "server")]
mod oauth_server;
mod plain;
pub mod profile;
pub mod saslprep;
mod scram;
#[cfg(feature = "server")]
mod scram_server;
mod select;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
mod simple_server;

pub use channel_binding::{ChannelBinding, ChannelBindingType};
pub use cram_md5::CramMd5;
pub use credentials::{Credentials, Secret};
pub use digest_md5::{DigestChallenge, DigestMd5, MAX_DIGEST_CHALLENGE, MAX_DIGEST_RESPONSE};
#[cfg(feature = "server")]
pub use digest_md5_server::DigestMd5Server;
pub use error::SaslError;
#[cfg(feature = "gssapi")]
pub use gssapi::Gssapi;
pub use login::Login;
pub use mechanism::{Mechanism, Response};
pub use name::{
    InvalidMechanismName, MechanismName, Needs, OtherMechanismName, MAX_MECHANISM_NAME,
};
pub use ntlm::{Ntlm, NtlmOptions, NtlmVersion};
#[cfg(feature = "server")]
pub use ntlm_server::NtlmServer;
pub use oauth::{Anonymous, External, OAuth, OAuthKind};
pub use oauth_error::{OAuthError, MAX_ERROR_JSON};
#[cfg(feature = "server")]
pub use oauth_server::{AnonymousServer, ExternalServer, OAuthServer, MAX_TOKEN_MESSAGE};
pub use plain::Plain;
pub use scram::{Scram, ScramBinding, ScramHash, DEFAULT_MAX_ITERATIONS};
#[cfg(feature = "server")]
pub use scram_server::{ScramServer, SERVER_ITERATIONS};
pub use select::{client_mechanism, is_plaintext, select, ClientOptions, Policy, STRENGTH_ORDER};
#[cfg(feature = "server")]
pub use simple_server::{CramMd5Server, LoginServer, PlainServer};
