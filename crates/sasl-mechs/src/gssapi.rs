//! GSSAPI (RFC 4752): the Kerberos V5 mechanism, client side.
//!
//! The exchange has two parts. First the GSS-API security context is established: the
//! client's initial response is the first token of `GSS_Init_sec_context` (a Kerberos
//! AP-REQ for `service@host`), and each server challenge is fed back to it until the
//! context is complete (with mutual authentication, the server's AP-REP; the client then
//! answers with no data). Then the security layer is negotiated (RFC 4752 §3.1): the server
//! sends 4 octets wrapped with `GSS_Wrap` (a bit mask of the layers it supports, and the
//! largest message it accepts), and the client answers, wrapped too, with the layer it
//! chooses, the largest message it accepts, and the authorization identity.
//!
//! This client chooses no security layer (after AUTH the connection carries no SASL
//! framing; protect it with TLS instead), so it refuses a server that does not offer one
//! ([`SaslError::SecurityLayerRequired`]) rather than going on unprotected.
//!
//! What is in this module whatever the features:
//!
//! - the layer tokens: [`LayerOffer`] (the server's 4 octets) and [`LayerChoice`] (the
//!   client's answer), each with a bounded parser and its encoder, and
//!   [`answer_layer_offer`], the client's decision from the unwrapped offer to the bytes it
//!   wraps; all of it pure, so it is tested and fuzzed without a KDC;
//! - the errors of the GSS-API calls ([`GssapiError`], [`GssStatus`]).
//!
//! With feature `gssapi`, `Gssapi` (`sasl_mechs::Gssapi`) is the mechanism itself, over
//! the system's MIT Kerberos through the `libgssapi` crate: credentials come from the
//! default ticket cache (`KRB5CCNAME`, filled by `kinit`), never from a password.
//!
//! ```
//! use sasl_mechs::gssapi::{answer_layer_offer, LayerOffer, SecurityLayers};
//!
//! // The server offers "no security layer" only, and a maximum message size of 0.
//! let offer = LayerOffer::parse(&[0x01, 0x00, 0x00, 0x00])?;
//! assert_eq!(offer.layers, SecurityLayers::NONE);
//! // The client chooses no layer, accepts no message size, and acts as "alice".
//! let reply = answer_layer_offer(&[0x01, 0x00, 0x00, 0x00], "alice")?;
//! assert_eq!(&reply[..], b"\x01\x00\x00\x00alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use crate::SaslError;

/// The mechanism's IANA name.
const NAME: &str = "GSSAPI";

/// The longest challenge accepted from the server, in octets. Kerberos tokens a server
/// sends are small (an AP-REP, a wrapped 4-octet offer: well under 1 KiB); this leaves room
/// for other GSS-API tokens while bounding what is handed to the library.
pub const MAX_GSSAPI_CHALLENGE: usize = 64 * 1024;

/// The longest authorization identity sent or parsed, in octets.
pub const MAX_AUTHZID: usize = 1024;

/// The length of the server's security-layer offer, once unwrapped (RFC 4752 §3.1).
pub const LAYER_OFFER_LEN: usize = 4;

/// The largest "maximum message size": three octets in network byte order.
pub const MAX_BUFFER_SIZE: u32 = 0x00ff_ffff;

/// A set of SASL security layers (RFC 4752 §3.3): the first octet of a layer token.
///
/// Bits other than the three defined are kept as received; RFC 4752 says they "must be
/// negotiated off", so a client never chooses them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityLayers(u8);

impl SecurityLayers {
    /// Bit 1: no security layer.
    pub const NONE: SecurityLayers = SecurityLayers(0x01);
    /// Bit 2: integrity protection (`GSS_Wrap` without confidentiality).
    pub const INTEGRITY: SecurityLayers = SecurityLayers(0x02);
    /// Bit 4: confidentiality protection (`GSS_Wrap` with confidentiality).
    pub const CONFIDENTIALITY: SecurityLayers = SecurityLayers(0x04);

    /// The set with these bits.
    pub const fn from_bits(bits: u8) -> SecurityLayers {
        SecurityLayers(bits)
    }

    /// The bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True when every bit of `other` is set here.
    pub const fn contains(self, other: SecurityLayers) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when a layer that protects the data (integrity or confidentiality) is set.
    pub const fn has_protection(self) -> bool {
        self.0 & (Self::INTEGRITY.0 | Self::CONFIDENTIALITY.0) != 0
    }
}

impl fmt::Debug for SecurityLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        for (layer, name) in [
            (Self::NONE, "none"),
            (Self::INTEGRITY, "integrity"),
            (Self::CONFIDENTIALITY, "confidentiality"),
        ] {
            if self.contains(layer) {
                names.push(name);
            }
        }
        let unknown = self.0 & !0x07;
        if unknown != 0 {
            return write!(f, "{}+0x{unknown:02x}", names.join("|"));
        }
        if names.is_empty() {
            return f.write_str("(nothing)");
        }
        f.write_str(&names.join("|"))
    }
}

impl fmt::Display for SecurityLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What is wrong with a security-layer token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerTokenError {
    /// Fewer octets than the token needs (the offer is 4; a choice at least 4).
    #[error("{len} octets where at least 4 are needed")]
    Truncated {
        /// The length received.
        len: usize,
    },
    /// The offer is longer than 4 octets (RFC 4752: "if the resulting cleartext is not 4
    /// octets long, the client fails the negotiation").
    #[error("{len} octets where the offer has exactly 4")]
    TooLong {
        /// The length received.
        len: usize,
    },
    /// A choice of no security layer with a maximum message size that is not 0 (RFC 4752
    /// §3.2: the server verifies that it is 0).
    #[error("no security layer chosen but a maximum message size of {max_buffer}")]
    BufferWithoutLayer {
        /// The size received.
        max_buffer: u32,
    },
    /// A choice must name exactly one known layer.
    #[error("a choice names exactly one of the layers 1, 2, 4, not {layers}")]
    NotOneLayer {
        /// The bits received.
        layers: SecurityLayers,
    },
    /// The authorization identity is not UTF-8.
    #[error("the authorization identity is not UTF-8")]
    AuthzidNotUtf8,
    /// The authorization identity holds a NUL (RFC 4752: it is not NUL-terminated, and
    /// servers read it as a C string).
    #[error("the authorization identity contains a NUL")]
    AuthzidHasNul,
    /// The authorization identity is longer than [`MAX_AUTHZID`].
    #[error("the authorization identity is {len} octets, more than {MAX_AUTHZID}")]
    AuthzidTooLong {
        /// Its length.
        len: usize,
    },
}

/// The server's security-layer offer (RFC 4752 §3.1), once unwrapped: the layers it
/// supports and the largest message it accepts (0 without a protecting layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerOffer {
    /// The layers the server supports.
    pub layers: SecurityLayers,
    /// The largest wrapped message the server accepts, at most [`MAX_BUFFER_SIZE`].
    pub max_buffer: u32,
}

impl LayerOffer {
    /// Parses the 4 octets; any other length is an error.
    ///
    /// RFC 4752 §3.1 has the client verify that the size is 0 when the server offers no
    /// protecting layer. Dovecot 2.3 offers "no security layer" only with a size of
    /// 16777215 (`01 ff ff ff`), and a client that chooses no layer never sends a wrapped
    /// message, so the size is read as given and not held against the server.
    ///
    /// ```
    /// use sasl_mechs::gssapi::{LayerOffer, LayerTokenError, SecurityLayers};
    /// let offer = LayerOffer::parse(&[0x07, 0x00, 0x10, 0x00])?;
    /// assert!(offer.layers.contains(SecurityLayers::CONFIDENTIALITY));
    /// assert_eq!(offer.max_buffer, 4096);
    /// assert_eq!(LayerOffer::parse(&[0x01, 0, 0]), Err(LayerTokenError::Truncated { len: 3 }));
    /// # Ok::<(), LayerTokenError>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<LayerOffer, LayerTokenError> {
        let octets: [u8; LAYER_OFFER_LEN] = match bytes.len() {
            LAYER_OFFER_LEN => [bytes[0], bytes[1], bytes[2], bytes[3]],
            len if len < LAYER_OFFER_LEN => return Err(LayerTokenError::Truncated { len }),
            len => return Err(LayerTokenError::TooLong { len }),
        };
        Ok(LayerOffer {
            layers: SecurityLayers(octets[0]),
            max_buffer: u32::from_be_bytes([0, octets[1], octets[2], octets[3]]),
        })
    }

    /// The 4 octets (a size above [`MAX_BUFFER_SIZE`] is cut to its low 24 bits).
    pub fn encode(&self) -> [u8; LAYER_OFFER_LEN] {
        let size = self.max_buffer.to_be_bytes();
        [self.layers.0, size[1], size[2], size[3]]
    }
}

/// The client's answer to the offer (RFC 4752 §3.1), before `GSS_Wrap`: the layer chosen,
/// the largest message the client accepts, and the authorization identity (empty: the
/// identity the ticket names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerChoice {
    /// Exactly one layer.
    pub layer: SecurityLayers,
    /// The largest wrapped message the client accepts; 0 with no layer.
    pub max_buffer: u32,
    /// The identity to act as, UTF-8, without a NUL; empty for none.
    pub authzid: String,
}

impl LayerChoice {
    /// No security layer, a maximum size of 0, acting as `authzid` (empty: as oneself).
    pub fn no_layer(authzid: &str) -> Result<LayerChoice, LayerTokenError> {
        check_authzid(authzid.as_bytes())?;
        Ok(LayerChoice {
            layer: SecurityLayers::NONE,
            max_buffer: 0,
            authzid: authzid.to_owned(),
        })
    }

    /// The octets to wrap: layer, size in three octets, authorization identity.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LAYER_OFFER_LEN + self.authzid.len());
        out.extend_from_slice(
            &LayerOffer {
                layers: self.layer,
                max_buffer: self.max_buffer,
            }
            .encode(),
        );
        out.extend_from_slice(self.authzid.as_bytes());
        out
    }

    /// Parses an unwrapped choice (what a server reads): one known layer, a size of 0 with
    /// no layer, and an authorization identity of at most [`MAX_AUTHZID`] UTF-8 octets
    /// without a NUL.
    ///
    /// ```
    /// use sasl_mechs::gssapi::{LayerChoice, SecurityLayers};
    /// let choice = LayerChoice::parse(b"\x01\x00\x00\x00bob")?;
    /// assert_eq!((choice.layer, choice.max_buffer, &choice.authzid[..]), (SecurityLayers::NONE, 0, "bob"));
    /// assert_eq!(choice.encode(), b"\x01\x00\x00\x00bob");
    /// # Ok::<(), sasl_mechs::gssapi::LayerTokenError>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<LayerChoice, LayerTokenError> {
        if bytes.len() < LAYER_OFFER_LEN {
            return Err(LayerTokenError::Truncated { len: bytes.len() });
        }
        let (head, authzid) = bytes.split_at(LAYER_OFFER_LEN);
        let layer = SecurityLayers(head[0]);
        if !matches!(layer.0, 0x01 | 0x02 | 0x04) {
            return Err(LayerTokenError::NotOneLayer { layers: layer });
        }
        let max_buffer = u32::from_be_bytes([0, head[1], head[2], head[3]]);
        if layer == SecurityLayers::NONE && max_buffer != 0 {
            return Err(LayerTokenError::BufferWithoutLayer { max_buffer });
        }
        check_authzid(authzid)?;
        let authzid = std::str::from_utf8(authzid)
            .map_err(|_| LayerTokenError::AuthzidNotUtf8)?
            .to_owned();
        Ok(LayerChoice {
            layer,
            max_buffer,
            authzid,
        })
    }
}

fn check_authzid(authzid: &[u8]) -> Result<(), LayerTokenError> {
    if authzid.len() > MAX_AUTHZID {
        return Err(LayerTokenError::AuthzidTooLong { len: authzid.len() });
    }
    if authzid.contains(&0) {
        return Err(LayerTokenError::AuthzidHasNul);
    }
    Ok(())
}

/// The client's decision, from the server's unwrapped offer to the octets it wraps and
/// sends: no security layer, a maximum size of 0, and `authzid` (empty for none).
///
/// A malformed offer is [`SaslError::MalformedChallenge`]; an offer without "no security
/// layer" is [`SaslError::SecurityLayerRequired`]: this client does not protect the
/// connection after AUTH, and must not pretend to.
pub fn answer_layer_offer(unwrapped: &[u8], authzid: &str) -> Result<Vec<u8>, SaslError> {
    let offer = LayerOffer::parse(unwrapped).map_err(|e| SaslError::MalformedChallenge {
        mechanism: NAME,
        reason: format!("security-layer offer: {e}"),
    })?;
    if !offer.layers.contains(SecurityLayers::NONE) {
        return Err(SaslError::SecurityLayerRequired {
            mechanism: NAME,
            offered: offer.layers,
        });
    }
    let choice = LayerChoice::no_layer(authzid).map_err(authzid_refused)?;
    Ok(choice.encode())
}

/// An authorization id [`LayerChoice::no_layer`] refused, as the caller's error.
fn authzid_refused(e: LayerTokenError) -> SaslError {
    SaslError::InvalidCredentials {
        field: "authorization id",
        reason: match e {
            LayerTokenError::AuthzidTooLong { .. } => "is longer than 1024 octets",
            _ => "contains a NUL character",
        },
    }
}

/// What a GSS-API call reported: its major and minor status codes and the library's text
/// for them (`gss_display_status`). The text names principals and ticket caches, never a
/// key or a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssStatus {
    /// The major status (RFC 2744 §3.9.1): the routine error in bits 16 to 23.
    pub major: u32,
    /// The mechanism's minor status (for MIT Kerberos, a `com_err` code).
    pub minor: u32,
    /// The library's text for both.
    pub message: String,
}

impl GssStatus {
    /// The routine error of the major status (`GSS_ROUTINE_ERROR`): 7 is `GSS_S_NO_CRED`,
    /// 11 `GSS_S_CREDENTIALS_EXPIRED`, 13 `GSS_S_FAILURE`.
    pub fn routine_error(&self) -> u32 {
        (self.major >> 16) & 0xff
    }
}

impl fmt::Display for GssStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (major 0x{:x}, minor {})",
            self.message.trim(),
            self.major,
            self.minor
        )
    }
}

/// A failure of the GSS-API side of the exchange: what the Kerberos library refused, and
/// what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GssapiError {
    /// No usable Kerberos credentials: no ticket cache, an empty one, or an expired ticket.
    /// Run `kinit` (or point `KRB5CCNAME` at a cache that holds a ticket).
    #[error("no usable Kerberos credentials (run kinit, or set KRB5CCNAME): {0}")]
    NoCredentials(GssStatus),
    /// The ticket cache belongs to another principal than the user the caller named.
    #[error("the ticket cache holds {principal}, not {user}")]
    PrincipalMismatch {
        /// The principal of the default credentials.
        principal: String,
        /// The authentication id the caller gave.
        user: String,
    },
    /// `service@host` could not be imported as a host-based service name.
    #[error("the service name {target:?} is not valid: {status}")]
    BadTargetName {
        /// The name as built.
        target: String,
        /// What the library said.
        status: GssStatus,
    },
    /// `GSS_Init_sec_context` failed: the KDC cannot be reached, does not know the
    /// service principal, or the server's token does not verify.
    #[error("establishing the security context failed: {0}")]
    Context(GssStatus),
    /// The server's wrapped security-layer offer does not verify (`GSS_Unwrap`).
    #[error("the server's security-layer token does not verify: {0}")]
    Unwrap(GssStatus),
    /// `GSS_Wrap` of the client's answer failed.
    #[error("wrapping the security-layer answer failed: {0}")]
    Wrap(GssStatus),
    /// The crate was built without the `gssapi` feature: there is no GSS-API library to
    /// call.
    #[error("built without the gssapi feature (sasl-mechs/gssapi)")]
    NotBuilt,
}

/// One call of `GSS_Init_sec_context`: the token to send (possibly empty) and whether the
/// context is now established.
#[cfg(any(feature = "gssapi", test))]
pub(crate) struct InitStep {
    pub(crate) token: Vec<u8>,
    pub(crate) complete: bool,
}

/// The GSS-API calls the mechanism makes, so that the RFC 4752 steps run without a KDC in
/// the tests.
#[cfg(any(feature = "gssapi", test))]
pub(crate) trait SecurityContext: Send {
    /// `GSS_Init_sec_context` with the server's token (`None` on the first call).
    fn init(&mut self, token: Option<&[u8]>) -> Result<InitStep, GssapiError>;
    /// True when the established context authenticated the server (mutual authentication).
    fn mutual(&self) -> bool;
    /// `GSS_Unwrap`: the server's wrapped message, verified.
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssapiError>;
    /// `GSS_Wrap` with `conf_flag` false.
    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssapiError>;
}

/// Where the exchange is, named for what it waits for.
#[cfg(any(feature = "gssapi", test))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet.
    Start,
    /// The context needs the server's next token.
    ExpectContextToken,
    /// The context is established: the next challenge is the wrapped layer offer.
    ExpectLayerOffer,
    /// The answer was sent: the server's success is next.
    ExpectSuccess,
    /// Success accepted.
    Done,
    /// An error ended the exchange.
    Failed,
}

/// The RFC 4752 client steps over a [`SecurityContext`].
#[cfg(any(feature = "gssapi", test))]
pub(crate) struct Exchange<C> {
    context: C,
    authzid: String,
    state: State,
    /// Challenges answered, for [`SaslError::UnexpectedChallenge`].
    answered: usize,
}

#[cfg(any(feature = "gssapi", test))]
impl<C: SecurityContext> Exchange<C> {
    pub(crate) fn new(context: C, authzid: &str) -> Result<Exchange<C>, SaslError> {
        LayerChoice::no_layer(authzid).map_err(authzid_refused)?;
        Ok(Exchange {
            context,
            authzid: authzid.to_owned(),
            state: State::Start,
            answered: 0,
        })
    }

    pub(crate) fn initial_response(&mut self) -> Result<crate::Response, SaslError> {
        if self.state != State::Start {
            return Err(SaslError::OutOfOrder {
                mechanism: NAME,
                what: "initial_response after the exchange started",
            });
        }
        let step = self.fail_on_error(|c| c.init(None).map_err(SaslError::Gssapi))?;
        self.context_step(step)
    }

    pub(crate) fn respond(&mut self, challenge: &[u8]) -> Result<crate::Response, SaslError> {
        if challenge.len() > MAX_GSSAPI_CHALLENGE {
            self.state = State::Failed;
            return Err(SaslError::MalformedChallenge {
                mechanism: NAME,
                reason: format!(
                    "{} octets, more than {MAX_GSSAPI_CHALLENGE}",
                    challenge.len()
                ),
            });
        }
        let answer = match self.state {
            // The transport could not carry the initial response: the server's first
            // challenge is empty, and the answer is what the initial response would be.
            State::Start if challenge.is_empty() => return self.initial_response(),
            State::Start => Err(SaslError::MalformedChallenge {
                mechanism: NAME,
                reason: "a non-empty first challenge: GSSAPI is client-first".into(),
            }),
            State::ExpectContextToken => {
                let step =
                    self.fail_on_error(|c| c.init(Some(challenge)).map_err(SaslError::Gssapi))?;
                self.context_step(step)
            }
            State::ExpectLayerOffer => {
                let authzid = self.authzid.clone();
                self.fail_on_error(|c| {
                    let offer = c.unwrap(challenge).map_err(SaslError::Gssapi)?;
                    let answer = answer_layer_offer(&offer, &authzid)?;
                    c.wrap(&answer).map_err(SaslError::Gssapi)
                })
                .map(|wrapped| {
                    self.state = State::ExpectSuccess;
                    crate::mechanism::response(wrapped)
                })
            }
            State::ExpectSuccess | State::Done | State::Failed => {
                Err(SaslError::UnexpectedChallenge {
                    mechanism: NAME,
                    step: self.answered,
                })
            }
        };
        if answer.is_ok() {
            self.answered += 1;
        } else {
            self.state = State::Failed;
        }
        answer
    }

    pub(crate) fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        match self.state {
            // RFC 4752 §3.2: "the server is not expected to return any additional data".
            State::ExpectSuccess if success_data.is_none_or(<[u8]>::is_empty) => {
                self.state = State::Done;
                Ok(())
            }
            State::ExpectSuccess => Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: self.answered,
            }),
            _ => Err(SaslError::PrematureSuccess { mechanism: NAME }),
        }
    }

    /// Records a context step: its token is the response; once the context is complete,
    /// the server must have proved itself.
    fn context_step(&mut self, step: InitStep) -> Result<crate::Response, SaslError> {
        if step.complete {
            if !self.context.mutual() {
                self.state = State::Failed;
                return Err(SaslError::ServerNotAuthenticated {
                    mechanism: NAME,
                    reason: "the security context has no mutual authentication",
                });
            }
            self.state = State::ExpectLayerOffer;
        } else {
            self.state = State::ExpectContextToken;
        }
        Ok(crate::mechanism::response(step.token))
    }

    fn fail_on_error<T>(
        &mut self,
        call: impl FnOnce(&mut C) -> Result<T, SaslError>,
    ) -> Result<T, SaslError> {
        call(&mut self.context).inspect_err(|_| self.state = State::Failed)
    }
}

#[cfg(feature = "gssapi")]
pub use krb5::Gssapi;

#[cfg(feature = "gssapi")]
mod krb5 {
    use std::fmt;

    use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext as _};
    use libgssapi::credential::{Cred, CredUsage};
    use libgssapi::error::Error;
    use libgssapi::name::Name;
    use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE};

    use super::{Exchange, GssStatus, GssapiError, InitStep, SecurityContext, NAME};
    use crate::{Credentials, Mechanism, Response, SaslError};

    fn status(e: Error) -> GssStatus {
        GssStatus {
            major: e.major.bits(),
            minor: e.minor,
            message: e.to_string(),
        }
    }

    /// `GSS_S_NO_CRED` and `GSS_S_CREDENTIALS_EXPIRED`: the caller has to run kinit.
    fn no_credentials(status: &GssStatus) -> bool {
        matches!(status.routine_error(), 7 | 11)
    }

    /// The Kerberos context of the system's GSS-API library.
    struct Krb5Context {
        ctx: ClientCtx,
    }

    impl SecurityContext for Krb5Context {
        fn init(&mut self, token: Option<&[u8]>) -> Result<InitStep, GssapiError> {
            let out = self.ctx.step(token, None).map_err(|e| {
                let status = status(e);
                if no_credentials(&status) {
                    GssapiError::NoCredentials(status)
                } else {
                    GssapiError::Context(status)
                }
            })?;
            Ok(InitStep {
                token: out.map(|b| b.to_vec()).unwrap_or_default(),
                complete: self.ctx.is_complete(),
            })
        }

        fn mutual(&self) -> bool {
            self.ctx
                .flags()
                .is_ok_and(|f| f.contains(CtxFlags::GSS_C_MUTUAL_FLAG))
        }

        fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssapiError> {
            self.ctx
                .unwrap(token)
                .map(|b| b.to_vec())
                .map_err(|e| GssapiError::Unwrap(status(e)))
        }

        fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssapiError> {
            self.ctx
                .wrap(false, message)
                .map(|b| b.to_vec())
                .map_err(|e| GssapiError::Wrap(status(e)))
        }
    }

    /// The GSSAPI client (RFC 4752) over the system's MIT Kerberos: Kerberos V5 with mutual
    /// authentication, no security layer.
    ///
    /// The credentials are the default ticket cache's (`KRB5CCNAME`, or the system default;
    /// fill it with `kinit`): no password is used, and the one in [`Credentials`], if any,
    /// is ignored. The authentication id must name the cache's principal, in full
    /// (`alice@EXAMPLE.TEST`) or without its realm (`alice`), so that a ticket for someone
    /// else is not used silently. The authorization id, if set, is sent as the identity to
    /// act as; without one the server takes the principal's.
    ///
    /// [`Gssapi::new`] reads the ticket cache (no ticket: [`GssapiError::NoCredentials`]
    /// before anything is sent); the initial response asks the KDC for a ticket for
    /// `service@host` unless the cache holds one, so it may block for a network round trip
    /// to the KDC, whatever the driver.
    pub struct Gssapi {
        exchange: Exchange<Krb5Context>,
        principal: String,
        target: String,
    }

    impl fmt::Debug for Gssapi {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Gssapi")
                .field("principal", &self.principal)
                .field("target", &self.target)
                .field("authzid", &self.exchange.authzid)
                .field("state", &self.exchange.state)
                .finish()
        }
    }

    impl Gssapi {
        /// The client for the service `service` (`"smtp"`, `"imap"`, `"pop"`, `"ldap"`: the
        /// protocol's GSSAPI service name) on `host` (the server's fully qualified name, as
        /// the KDC knows it: `smtp/host@REALM`), with the default ticket cache.
        ///
        /// ```no_run
        /// use sasl_mechs::{Credentials, Gssapi, Mechanism};
        /// // After `kinit alice`:
        /// let creds = Credentials::without_secret("alice")?;
        /// let mut mech = Gssapi::new(&creds, "smtp", "mail.example.test")?;
        /// let first = mech.initial_response()?; // the Kerberos AP-REQ, for AUTH GSSAPI
        /// # Ok::<(), sasl_mechs::SaslError>(())
        /// ```
        pub fn new(creds: &Credentials, service: &str, host: &str) -> Result<Gssapi, SaslError> {
            for (field, value) in [("service", service), ("host", host)] {
                if value.is_empty()
                    || value
                        .bytes()
                        .any(|b| b == b'@' || b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(SaslError::InvalidCredentials {
                        field,
                        reason: "is empty or has '@', a space or a control character",
                    });
                }
            }
            let mechs = OidSet::singleton(GSS_MECH_KRB5)
                .map_err(|e| GssapiError::NoCredentials(status(e)))?;
            let cred = Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs))
                .map_err(|e| GssapiError::NoCredentials(status(e)))?;
            let principal = cred
                .name()
                .map_err(|e| GssapiError::NoCredentials(status(e)))?
                .to_string();
            let user = creds.authcid();
            let without_realm = principal
                .rsplit_once('@')
                .map_or(&principal[..], |(u, _)| u);
            if user != principal && user != without_realm {
                return Err(GssapiError::PrincipalMismatch {
                    principal,
                    user: user.to_owned(),
                }
                .into());
            }
            let target = format!("{service}@{host}");
            let name =
                Name::new(target.as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE)).map_err(|e| {
                    GssapiError::BadTargetName {
                        target: target.clone(),
                        status: status(e),
                    }
                })?;
            // RFC 4752 §3.1: integrity is required (the layer negotiation is wrapped);
            // mutual authentication, so that the server proves itself with its AP-REP.
            let flags = CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_INTEG_FLAG;
            let ctx = ClientCtx::new(Some(cred), name, flags, Some(GSS_MECH_KRB5));
            Ok(Gssapi {
                exchange: Exchange::new(Krb5Context { ctx }, creds.authzid().unwrap_or(""))?,
                principal,
                target,
            })
        }

        /// The principal of the ticket cache (`alice@EXAMPLE.TEST`).
        pub fn principal(&self) -> &str {
            &self.principal
        }

        /// The acceptor name, `service@host`.
        pub fn target(&self) -> &str {
            &self.target
        }
    }

    impl Mechanism for Gssapi {
        fn name(&self) -> &'static str {
            NAME
        }

        fn has_initial_response(&self) -> bool {
            true
        }

        fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
            self.exchange.initial_response().map(Some)
        }

        fn respond(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
            self.exchange.respond(challenge)
        }

        fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
            self.exchange.finish(success_data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4752 §3.3's bit masks, and a choice that selects no layer.
    #[test]
    fn offer_of_no_layer_gives_the_rfc_reply_bytes() {
        let offer = LayerOffer::parse(&[0x01, 0, 0, 0]).unwrap();
        assert_eq!(offer.layers, SecurityLayers::NONE);
        assert_eq!(offer.max_buffer, 0);
        // First octet: the selected layer (1, none); octets 2 to 4: the client's maximum
        // size, which "MUST be 0 if the client does not support any security layer";
        // then the authorization identity, not NUL-terminated.
        assert_eq!(
            answer_layer_offer(&[0x01, 0, 0, 0], "").unwrap(),
            [0x01, 0, 0, 0]
        );
        assert_eq!(
            answer_layer_offer(&[0x01, 0, 0, 0], "postmaster@example.test").unwrap(),
            b"\x01\x00\x00\x00postmaster@example.test"
        );
    }

    #[test]
    fn an_offer_of_every_layer_still_gets_no_layer() {
        // Cyrus SASL servers offer all three with a buffer size; the client picks none and
        // says its own size is 0.
        let offered = [0x07, 0x00, 0xff, 0xff];
        let offer = LayerOffer::parse(&offered).unwrap();
        assert!(offer.layers.contains(SecurityLayers::NONE));
        assert!(offer.layers.contains(SecurityLayers::CONFIDENTIALITY));
        assert_eq!(offer.max_buffer, 0xffff);
        assert_eq!(answer_layer_offer(&offered, "").unwrap(), [0x01, 0, 0, 0]);
        // Bits RFC 4752 does not define are negotiated off, not refused.
        assert_eq!(
            answer_layer_offer(&[0xf1, 0, 0, 0], "u").unwrap(),
            b"\x01\x00\x00\x00u"
        );
    }

    #[test]
    fn a_server_that_demands_a_layer_is_refused() {
        for (bits, name) in [
            (0x02, "integrity"),
            (0x04, "confidentiality"),
            (0x06, "integrity|confidentiality"),
        ] {
            let err = answer_layer_offer(&[bits, 0x00, 0x10, 0x00], "").unwrap_err();
            assert_eq!(
                err,
                SaslError::SecurityLayerRequired {
                    mechanism: "GSSAPI",
                    offered: SecurityLayers::from_bits(bits),
                }
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        // Nothing offered at all is no better.
        assert!(matches!(
            answer_layer_offer(&[0x00, 0, 0, 0], ""),
            Err(SaslError::SecurityLayerRequired { .. })
        ));
    }

    #[test]
    fn truncated_oversized_and_inconsistent_offers_are_typed_errors() {
        for (bytes, expected) in [
            (&b""[..], LayerTokenError::Truncated { len: 0 }),
            (b"\x01\x00\x00", LayerTokenError::Truncated { len: 3 }),
            (b"\x01\x00\x00\x00\x00", LayerTokenError::TooLong { len: 5 }),
            (
                b"\x01\x00\x00\x00alice",
                LayerTokenError::TooLong { len: 9 },
            ),
        ] {
            assert_eq!(LayerOffer::parse(bytes), Err(expected.clone()), "{bytes:?}");
            match answer_layer_offer(bytes, "") {
                Err(SaslError::MalformedChallenge { mechanism, reason }) => {
                    assert_eq!(mechanism, "GSSAPI");
                    assert!(reason.contains(&expected.to_string()), "{reason}");
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_size_with_no_layer_offered_is_read_and_not_used() {
        // What Dovecot 2.3.19 sends (seen on the wire here): no layer only, with the
        // largest size. RFC 4752 wants 0; the client chooses no layer and answers 0.
        let offer = LayerOffer::parse(&[0x01, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!(offer.layers, SecurityLayers::NONE);
        assert_eq!(offer.max_buffer, MAX_BUFFER_SIZE);
        assert_eq!(offer.encode(), [0x01, 0xff, 0xff, 0xff]);
        assert_eq!(
            answer_layer_offer(&[0x01, 0xff, 0xff, 0xff], "").unwrap(),
            [0x01, 0, 0, 0]
        );
    }

    #[test]
    fn choices_parse_and_encode_back() {
        let c = LayerChoice::parse(b"\x04\x00\x10\x00boss").unwrap();
        assert_eq!(c.layer, SecurityLayers::CONFIDENTIALITY);
        assert_eq!(c.max_buffer, 4096);
        assert_eq!(c.authzid, "boss");
        assert_eq!(c.encode(), b"\x04\x00\x10\x00boss");
        for (bytes, expected) in [
            (&b"\x01\x00"[..], LayerTokenError::Truncated { len: 2 }),
            (
                b"\x03\x00\x00\x00",
                LayerTokenError::NotOneLayer {
                    layers: SecurityLayers::from_bits(3),
                },
            ),
            (
                b"\x01\x00\x00\x01",
                LayerTokenError::BufferWithoutLayer { max_buffer: 1 },
            ),
            (b"\x01\x00\x00\x00a\x00b", LayerTokenError::AuthzidHasNul),
            (b"\x01\x00\x00\x00\xff", LayerTokenError::AuthzidNotUtf8),
        ] {
            assert_eq!(LayerChoice::parse(bytes), Err(expected), "{bytes:?}");
        }
        let long = [&b"\x01\x00\x00\x00"[..], &[b'a'; MAX_AUTHZID + 1]].concat();
        assert_eq!(
            LayerChoice::parse(&long),
            Err(LayerTokenError::AuthzidTooLong {
                len: MAX_AUTHZID + 1
            })
        );
        assert!(LayerChoice::no_layer(&"a".repeat(MAX_AUTHZID)).is_ok());
        assert!(LayerChoice::no_layer(&"a".repeat(MAX_AUTHZID + 1)).is_err());
    }

    #[test]
    fn layers_print_by_name() {
        assert_eq!(
            SecurityLayers::from_bits(0x07).to_string(),
            "none|integrity|confidentiality"
        );
        assert_eq!(SecurityLayers::from_bits(0x00).to_string(), "(nothing)");
        assert_eq!(SecurityLayers::from_bits(0x21).to_string(), "none+0x20");
    }

    /// A context that "wraps" by prefixing a tag, and a script of what the KDC-backed one
    /// would do: the steps of RFC 4752 §3.1, without a KDC.
    #[derive(Debug)]
    struct FakeContext {
        /// Tokens `init` returns, in order, and whether the context is complete after each.
        steps: Vec<(Vec<u8>, bool)>,
        /// The server tokens `init` was given.
        given: Vec<Option<Vec<u8>>>,
        mutual: bool,
        wrapped: Vec<Vec<u8>>,
    }

    const WRAP_TAG: &[u8] = b"WRAPPED:";

    impl SecurityContext for FakeContext {
        fn init(&mut self, token: Option<&[u8]>) -> Result<InitStep, GssapiError> {
            self.given.push(token.map(<[u8]>::to_vec));
            if self.steps.is_empty() {
                return Err(GssapiError::Context(GssStatus {
                    major: 0x000d_0000,
                    minor: 0,
                    message: "no more steps".into(),
                }));
            }
            let (token, complete) = self.steps.remove(0);
            Ok(InitStep { token, complete })
        }
        fn mutual(&self) -> bool {
            self.mutual
        }
        fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssapiError> {
            token
                .strip_prefix(WRAP_TAG)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    GssapiError::Unwrap(GssStatus {
                        major: 0x0006_0000,
                        minor: 0,
                        message: "bad signature".into(),
                    })
                })
        }
        fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssapiError> {
            self.wrapped.push(message.to_vec());
            Ok([WRAP_TAG, message].concat())
        }
    }

    fn kerberos_like(mutual: bool) -> FakeContext {
        FakeContext {
            // AP-REQ, then nothing once the AP-REP is in.
            steps: vec![(b"AP-REQ".to_vec(), false), (Vec::new(), true)],
            given: Vec::new(),
            mutual,
            wrapped: Vec::new(),
        }
    }

    fn wrapped(bytes: &[u8]) -> Vec<u8> {
        [WRAP_TAG, bytes].concat()
    }

    #[test]
    fn the_whole_exchange_over_a_scripted_context() {
        let mut ex = Exchange::new(kerberos_like(true), "boss").unwrap();
        assert_eq!(&ex.initial_response().unwrap()[..], b"AP-REQ");
        assert_eq!(
            ex.finish(None),
            Err(SaslError::PrematureSuccess {
                mechanism: "GSSAPI"
            })
        );
        // The AP-REP completes the context: the answer is empty.
        assert!(ex.respond(b"AP-REP").unwrap().is_empty());
        assert_eq!(ex.context.given, [None, Some(b"AP-REP".to_vec())]);
        // The wrapped offer: no layer chosen, size 0, the authorization id, wrapped.
        let answer = ex.respond(&wrapped(&[0x07, 0x00, 0x10, 0x00])).unwrap();
        assert_eq!(&answer[..], &wrapped(b"\x01\x00\x00\x00boss")[..]);
        assert_eq!(ex.context.wrapped, [b"\x01\x00\x00\x00boss".to_vec()]);
        assert_eq!(
            ex.respond(b"more"),
            Err(SaslError::UnexpectedChallenge {
                mechanism: "GSSAPI",
                step: 2
            })
        );
    }

    #[test]
    fn success_is_accepted_only_after_the_answer_and_without_data() {
        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        ex.initial_response().unwrap();
        ex.respond(b"AP-REP").unwrap();
        // Success before the layer negotiation: the server skipped a step.
        assert_eq!(
            ex.finish(None),
            Err(SaslError::PrematureSuccess {
                mechanism: "GSSAPI"
            })
        );

        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        ex.initial_response().unwrap();
        ex.respond(b"AP-REP").unwrap();
        ex.respond(&wrapped(&[0x01, 0, 0, 0])).unwrap();
        assert!(matches!(
            ex.finish(Some(b"extra")),
            Err(SaslError::UnexpectedChallenge { .. })
        ));
        assert_eq!(ex.finish(Some(b"")), Ok(()));
    }

    #[test]
    fn a_layer_demand_or_a_bad_wrap_ends_the_exchange() {
        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        ex.initial_response().unwrap();
        ex.respond(b"AP-REP").unwrap();
        assert!(matches!(
            ex.respond(&wrapped(&[0x04, 0x00, 0x10, 0x00])),
            Err(SaslError::SecurityLayerRequired { .. })
        ));
        // Nothing was wrapped: no answer left the client.
        assert!(ex.context.wrapped.is_empty());
        assert_eq!(
            ex.finish(None),
            Err(SaslError::PrematureSuccess {
                mechanism: "GSSAPI"
            })
        );

        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        ex.initial_response().unwrap();
        ex.respond(b"AP-REP").unwrap();
        assert!(matches!(
            ex.respond(&[0x01, 0, 0, 0]),
            Err(SaslError::Gssapi(GssapiError::Unwrap(_)))
        ));
        assert!(ex.context.wrapped.is_empty());
    }

    #[test]
    fn a_context_without_mutual_authentication_is_refused() {
        let mut ex = Exchange::new(kerberos_like(false), "").unwrap();
        ex.initial_response().unwrap();
        assert_eq!(
            ex.respond(b"AP-REP"),
            Err(SaslError::ServerNotAuthenticated {
                mechanism: "GSSAPI",
                reason: "the security context has no mutual authentication",
            })
        );
    }

    #[test]
    fn without_an_initial_response_the_first_empty_challenge_gets_it() {
        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        assert_eq!(&ex.respond(b"").unwrap()[..], b"AP-REQ");
        assert!(ex.respond(b"AP-REP").unwrap().is_empty());

        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        assert!(matches!(
            ex.respond(b"server first?"),
            Err(SaslError::MalformedChallenge { .. })
        ));
        assert!(ex.context.given.is_empty());
    }

    #[test]
    fn an_oversized_challenge_never_reaches_the_library() {
        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        ex.initial_response().unwrap();
        let huge = vec![0u8; MAX_GSSAPI_CHALLENGE + 1];
        assert!(matches!(
            ex.respond(&huge),
            Err(SaslError::MalformedChallenge { .. })
        ));
        assert_eq!(ex.context.given, [None]);

        // At the bound, the token goes to the library.
        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        ex.initial_response().unwrap();
        ex.respond(&vec![0u8; MAX_GSSAPI_CHALLENGE]).unwrap();
        assert_eq!(
            ex.context.given[1].as_ref().map(Vec::len),
            Some(MAX_GSSAPI_CHALLENGE)
        );
    }

    #[test]
    fn an_authzid_no_server_can_read_is_refused_up_front() {
        for authzid in ["a\0b".to_owned(), "x".repeat(MAX_AUTHZID + 1)] {
            assert!(matches!(
                Exchange::new(kerberos_like(true), &authzid),
                Err(SaslError::InvalidCredentials {
                    field: "authorization id",
                    ..
                })
            ));
        }
    }

    #[test]
    fn select_takes_gssapi_only_when_allowed_and_built() {
        use crate::{select, Credentials, Policy};
        let creds = Credentials::new("alice", "pw").unwrap();
        let offered = ["GSSAPI", "SCRAM-SHA-256", "PLAIN"];
        // A ticket is nothing the credentials say: not chosen unless listed.
        assert_eq!(
            select(&offered, &creds, &Policy::new(true)),
            Ok("SCRAM-SHA-256")
        );
        let listed = Policy::new(true).allow(&["SCRAM-SHA-256", "GSSAPI"]);
        let expected = if cfg!(feature = "gssapi") {
            "GSSAPI"
        } else {
            "SCRAM-SHA-256"
        };
        assert_eq!(select(&offered, &creds, &listed), Ok(expected));
    }

    #[cfg(not(feature = "gssapi"))]
    #[test]
    fn without_the_feature_the_mechanism_says_so() {
        let creds = crate::Credentials::without_secret("alice").unwrap();
        let err = crate::client_mechanism("GSSAPI", &creds, &crate::ClientOptions::default())
            .unwrap_err();
        assert_eq!(err, SaslError::Gssapi(GssapiError::NotBuilt));
        assert!(err.to_string().contains("gssapi feature"), "{err}");
    }

    /// Checked before the ticket cache is read: no KDC needed.
    #[cfg(feature = "gssapi")]
    #[test]
    fn a_service_or_host_that_cannot_name_an_acceptor_is_refused() {
        let creds = crate::Credentials::without_secret("alice").unwrap();
        for (service, host, field) in [
            ("", "localhost", "service"),
            ("smtp@x", "localhost", "service"),
            ("smtp", "", "host"),
            ("smtp", "mx example", "host"),
            ("smtp", "mx\r\n", "host"),
        ] {
            match Gssapi::new(&creds, service, host) {
                Err(SaslError::InvalidCredentials { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{service:?} {host:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_initial_response_is_asked_once() {
        let mut ex = Exchange::new(kerberos_like(true), "").unwrap();
        ex.initial_response().unwrap();
        assert!(matches!(
            ex.initial_response(),
            Err(SaslError::OutOfOrder { .. })
        ));
    }
}
