//! The server side of the mechanisms (feature `server`): verify a client against stored
//! passwords (or tokens). Used by test servers and by any project that needs a small SASL
//! server. [`server_mechanism`] builds any of them by name: PLAIN, LOGIN, CRAM-MD5,
//! DIGEST-MD5, SCRAM-SHA-1, SCRAM-SHA-256 (and -PLUS, see [`server_mechanism_bound`]), NTLM, OAUTHBEARER, XOAUTH2, EXTERNAL (always
//! fails there: no channel identity), ANONYMOUS.

use std::sync::Arc;

use crate::{MechanismName, SaslError, Secret};

/// Looks up the stored password (or, for OAUTHBEARER/XOAUTH2, the valid token) of an
/// authentication id; `None` for an unknown user.
pub type PasswordLookup = Arc<dyn Fn(&str) -> Option<Secret> + Send + Sync>;

/// What the server sends next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// A challenge (raw bytes; the transport base64-encodes it: SMTP `334`, IMAP `+`).
    Challenge(Vec<u8>),
    /// The client is authenticated; `Some` carries additional data for the client (SCRAM's
    /// `v=`). A protocol that cannot send data with success (SMTP) sends it as a challenge,
    /// waits for the empty response, then says success.
    Success(Option<Vec<u8>>),
    /// Wrong credentials or unknown user (SMTP `535`, IMAP `NO`).
    Failure,
}

/// Who authenticated, after [`ServerStep::Success`]. Whether `authcid` may act as `authzid`
/// is the caller's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The authentication id whose secret was checked.
    pub authcid: String,
    /// The authorization id the client asked for, if any.
    pub authzid: Option<String>,
    /// The realm or domain the client named, for the mechanisms that carry one (NTLM's
    /// domain, DIGEST-MD5's realm); `None` for the others or when empty.
    pub realm: Option<String>,
}

/// One SASL server mechanism: a state machine over raw bytes, the mirror of
/// [`Mechanism`](crate::Mechanism).
///
/// Call [`step`](Self::step) with the client's initial response (`None` if the command came
/// without one), then with each response, until it returns `Success` or `Failure`. An `Err`
/// is a malformed response or a call out of order: fail the exchange.
pub trait ServerMechanism: Send {
    /// The IANA-registered name.
    fn name(&self) -> &'static str;

    /// Consumes the client's next message and says what to send back.
    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError>;

    /// The authenticated identity, once `step` has returned `Success`.
    fn authenticated(&self) -> Option<&Authenticated>;
}

/// Builds the server mechanism called `name` (any case, or a [`MechanismName`]), checking
/// against `lookup`.
///
/// Fixed parameters: CRAM-MD5 challenges name `localhost`, DIGEST-MD5 offers realm
/// `localhost` for service `smtp`, NTLM names itself `LOCALHOST`. Build
/// `CramMd5Server`, `DigestMd5Server` or `NtlmServer` directly for others. GSSAPI has no
/// server here: it is [`SaslError::UnknownMechanism`].
///
/// ```
/// use std::sync::Arc;
/// use sasl_mechs::server::{server_mechanism, ServerStep};
/// use sasl_mechs::Secret;
/// let lookup = Arc::new(|user: &str| (user == "tim").then(|| Secret::new("tanstaaftanstaaf")));
/// let mut s = server_mechanism("PLAIN", lookup)?;
/// assert_eq!(s.step(Some(b"\0tim\0tanstaaftanstaaf"))?, ServerStep::Success(None));
/// assert_eq!(s.authenticated().unwrap().authcid, "tim");
/// # Ok::<(), sasl_mechs::SaslError>(())
/// ```
pub fn server_mechanism(
    name: impl AsRef<str>,
    lookup: PasswordLookup,
) -> Result<Box<dyn ServerMechanism>, SaslError> {
    server_mechanism_bound(name, lookup, Vec::new())
}

/// [`server_mechanism`] on a TLS channel that gives `bindings` (one per channel-binding type
/// the server supports). SCRAM-SHA-*-PLUS then checks the client's binding against them,
/// and plain SCRAM fails a client that says `y` (RFC 5802 §6: it could bind, saw no -PLUS
/// offered, and this server supports binding). With no bindings, every -PLUS exchange
/// fails, like EXTERNAL without a channel identity.
pub fn server_mechanism_bound(
    name: impl AsRef<str>,
    lookup: PasswordLookup,
    bindings: Vec<crate::ChannelBinding>,
) -> Result<Box<dyn ServerMechanism>, SaslError> {
    use crate::scram::ScramHash;
    use crate::scram_server::ScramServer;
    let name = name.as_ref();
    let unknown = || SaslError::UnknownMechanism {
        name: name.to_owned(),
    };
    Ok(
        match name.parse::<MechanismName>().map_err(|_| unknown())? {
            MechanismName::Plain => Box::new(crate::simple_server::PlainServer::new(lookup)),
            MechanismName::Login => Box::new(crate::simple_server::LoginServer::new(lookup)),
            MechanismName::CramMd5 => Box::new(crate::simple_server::CramMd5Server::new(
                lookup,
                "localhost",
            )),
            MechanismName::DigestMd5 => Box::new(crate::digest_md5_server::DigestMd5Server::new(
                lookup,
                "localhost",
                "smtp",
            )),
            MechanismName::OAuthBearer => Box::new(crate::oauth_server::OAuthServer::new(
                crate::OAuthKind::OAuthBearer,
                lookup,
            )),
            MechanismName::XOAuth2 => Box::new(crate::oauth_server::OAuthServer::new(
                crate::OAuthKind::XOAuth2,
                lookup,
            )),
            // No channel identity is known here: every EXTERNAL exchange fails. A server with
            // TLS client certificates builds `ExternalServer::new(Some(identity))` itself.
            MechanismName::External => Box::new(crate::oauth_server::ExternalServer::new(None)),
            MechanismName::Anonymous => Box::new(crate::oauth_server::AnonymousServer::new()),
            MechanismName::Ntlm => {
                Box::new(crate::ntlm_server::NtlmServer::new(lookup, "LOCALHOST"))
            }
            MechanismName::ScramSha1 => Box::new(
                ScramServer::new(ScramHash::Sha1, lookup).supporting_channel_binding(bindings),
            ),
            MechanismName::ScramSha256 => Box::new(
                ScramServer::new(ScramHash::Sha256, lookup).supporting_channel_binding(bindings),
            ),
            MechanismName::ScramSha1Plus => {
                Box::new(ScramServer::new_plus(ScramHash::Sha1, lookup, bindings))
            }
            MechanismName::ScramSha256Plus => {
                Box::new(ScramServer::new_plus(ScramHash::Sha256, lookup, bindings))
            }
            // No GSSAPI acceptor: the crate has the client side only.
            MechanismName::Gssapi | MechanismName::Other(_) => return Err(unknown()),
        },
    )
}
