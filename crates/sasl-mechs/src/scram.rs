//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), and their -PLUS variants with channel
//! binding (RFC 5802 §6, RFC 9266, RFC 5929).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::channel_binding::ChannelBinding;
use crate::mechanism::{response, Response};
use crate::saslprep::{saslprep, SaslprepError, StringKind};
use crate::{Credentials, Mechanism, SaslError};

/// The default limit on the server's iteration count (`i=`): a hostile server cannot make
/// the client hash for minutes.
pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;

/// The hash function of a SCRAM variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
}

impl ScramHash {
    /// The mechanism's IANA name.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1",
            ScramHash::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// The IANA name of the variant with channel binding.
    pub fn plus_name(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1-PLUS",
            ScramHash::Sha256 => "SCRAM-SHA-256-PLUS",
        }
    }

    pub(crate) fn name(self, plus: bool) -> &'static str {
        if plus {
            self.plus_name()
        } else {
            self.mechanism_name()
        }
    }

    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
        // HMAC takes keys of any length: new_from_slice cannot fail.
        Zeroizing::new(match self {
            ScramHash::Sha1 => {
                let mut m =
                    <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha256 => {
                let mut m =
                    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        })
    }

    pub(crate) fn h(self, data: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        })
    }

    /// `Hi()` of RFC 5802: PBKDF2 with this HMAC, one block.
    pub(crate) fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<Vec<u8>> {
        match self {
            ScramHash::Sha1 => {
                let mut out = Zeroizing::new(vec![0u8; 20]);
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha256 => {
                let mut out = Zeroizing::new(vec![0u8; 32]);
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// The keys derived from a password: what a server may store instead of it.
pub(crate) struct Keys {
    pub(crate) client_key: Zeroizing<Vec<u8>>,
    pub(crate) stored_key: Zeroizing<Vec<u8>>,
    pub(crate) server_key: Zeroizing<Vec<u8>>,
}

/// `Normalize(password)` of RFC 5802 §2.2: SASLprep with the password as a stored string
/// (unassigned code points refused), on both sides.
pub(crate) fn normalize_password(password: &str) -> Result<Zeroizing<String>, SaslprepError> {
    saslprep(password, StringKind::Stored).map(|p| Zeroizing::new(p.into_owned()))
}

/// The keys of RFC 5802 §3 from a password already through [`normalize_password`].
pub(crate) fn keys(hash: ScramHash, normalized: &str, salt: &[u8], iterations: u32) -> Keys {
    let salted = hash.hi(normalized.as_bytes(), salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.h(&client_key);
    let server_key = hash.hmac(&salted, b"Server Key");
    Keys {
        client_key,
        stored_key,
        server_key,
    }
}

/// `saslname` of RFC 5802: `=` as `=3D`, `,` as `=2C`.
pub(crate) fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The inverse of [`escape_name`]; `None` for a bad escape.
#[cfg(feature = "server")]
pub(crate) fn unescape_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3)?;
        out.push(match esc {
            "=3D" => '=',
            "=2C" => ',',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// `printable` of RFC 5802 (what a nonce may hold): `%x21-2B / %x2D-7E`.
pub(crate) fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// A fresh random nonce: 24 bytes from the OS, base64 (no `,` can appear).
pub(crate) fn random_nonce() -> String {
    let mut raw = [0u8; 24];
    OsRng.fill_bytes(&mut raw);
    B64.encode(raw)
}

/// Constant-time comparison of two byte strings of public length.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `k=v,k=v` into attributes, in order.
pub(crate) fn attributes(msg: &str) -> Vec<(u8, &str)> {
    msg.split(',')
        .map(|a| {
            let b = a.as_bytes();
            if b.len() >= 2 && b[1] == b'=' && b[0].is_ascii_alphabetic() {
                (b[0], &a[2..])
            } else {
                (0, a)
            }
        })
        .collect()
}

/// What a SCRAM client says about channel binding: the `gs2-cbind-flag` (RFC 5802 §6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ScramBinding {
    /// `n`: the client cannot bind to the channel (no TLS, or no binding data).
    #[default]
    None,
    /// `y`: the client could bind, but the server did not offer a -PLUS mechanism. A server
    /// that does support channel binding fails the exchange: this is how a downgrade (a
    /// -PLUS name removed from the server's list on the way) is caught.
    ServerDidNotOffer,
    /// `p=type`: the -PLUS mechanism, bound to the channel with this data.
    Bound(ChannelBinding),
}

enum State {
    Start,
    /// Sent client-first; waits for server-first.
    ExpectServerFirst {
        client_first_bare: String,
    },
    /// Sent client-final; waits for server-final (as a challenge or success data).
    ExpectServerFinal {
        server_signature: Zeroizing<Vec<u8>>,
    },
    /// The server's signature checked out.
    Verified,
    /// An error ended the exchange.
    Failed,
}

/// The SCRAM client. Names are SASLprep'ed as query strings and the password as a stored
/// string (RFC 5802 §2.2, §5.1); a string SASLprep refuses is
/// [`SaslError::InvalidCredentials`]. User names are escaped. Channel binding is not supported (`n,,`). The server's iteration
/// count is capped ([`DEFAULT_MAX_ITERATIONS`] unless set otherwise), and a wrong or
/// missing server signature is [`SaslError::ServerNotAuthenticated`].
pub struct Scram {
    hash: ScramHash,
    /// `"a=name"` or empty.
    authzid: String,
    binding: ScramBinding,
    gs2_header: String,
    user: String,
    password: Zeroizing<String>,
    nonce: String,
    max_iterations: u32,
    state: State,
}

impl std::fmt::Debug for Scram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scram")
            .field("hash", &self.hash)
            .field("user", &self.user)
            .field("binding", &self.binding)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

impl Scram {
    /// Builds the client with a fresh random nonce; needs a password.
    pub fn new(hash: ScramHash, creds: &Credentials) -> Result<Scram, SaslError> {
        Scram::with_nonce(hash, creds, &random_nonce())
    }

    /// Builds the client with a given nonce. For tests against fixed vectors (RFC 5802,
    /// RFC 7677) only: a real exchange needs [`Scram::new`]'s random nonce.
    pub fn with_nonce(
        hash: ScramHash,
        creds: &Credentials,
        nonce: &str,
    ) -> Result<Scram, SaslError> {
        let name = hash.mechanism_name();
        let password = creds.password().ok_or(SaslError::MissingCredential {
            mechanism: name,
            needs: "a password",
        })?;
        if nonce.is_empty() || !is_printable(nonce) {
            return Err(SaslError::OutOfOrder {
                mechanism: name,
                what: "nonce must be printable ASCII without ','",
            });
        }
        // Names are query strings (RFC 5802 §5.1). SASLprep may map a name to nothing; an
        // empty authzid is no authzid, an empty user cannot be sent.
        let refused = |field| SaslError::InvalidCredentials {
            field,
            reason: "refused by SASLprep (RFC 4013)",
        };
        let authzid = match creds.authzid() {
            Some(z) => {
                Some(saslprep(z, StringKind::Query).map_err(|_| refused("authorization id"))?)
            }
            None => None,
        };
        let authzid = match authzid.filter(|z| !z.is_empty()) {
            Some(z) => format!("a={}", escape_name(&z)),
            None => String::new(),
        };
        let user = saslprep(creds.authcid(), StringKind::Query)
            .map_err(|_| refused("authentication id"))?;
        if user.is_empty() {
            return Err(SaslError::InvalidCredentials {
                field: "authentication id",
                reason: "empty after SASLprep",
            });
        }
        let password = normalize_password(password.expose()).map_err(|_| refused("password"))?;
        Ok(Scram {
            hash,
            gs2_header: format!("n,{authzid},"),
            authzid,
            binding: ScramBinding::None,
            user: escape_name(&user),
            password,
            nonce: nonce.to_owned(),
            max_iterations: DEFAULT_MAX_ITERATIONS,
            state: State::Start,
        })
    }

    /// Sets what the client says about channel binding; with [`ScramBinding::Bound`] the
    /// mechanism is the -PLUS variant (its [`name`](Mechanism::name) says so).
    pub fn channel_binding(mut self, binding: ScramBinding) -> Scram {
        let flag = match &binding {
            ScramBinding::None => "n".to_owned(),
            ScramBinding::ServerDidNotOffer => "y".to_owned(),
            ScramBinding::Bound(cb) => format!("p={}", cb.kind().as_str()),
        };
        self.gs2_header = format!("{flag},{},", self.authzid);
        self.binding = binding;
        self
    }

    /// Sets the largest iteration count accepted from the server.
    pub fn max_iterations(mut self, max: u32) -> Scram {
        self.max_iterations = max;
        self
    }

    fn plus(&self) -> bool {
        matches!(self.binding, ScramBinding::Bound(_))
    }

    fn malformed(&mut self, reason: &str) -> SaslError {
        self.state = State::Failed;
        SaslError::MalformedChallenge {
            mechanism: self.name(),
            reason: reason.to_owned(),
        }
    }

    fn client_first(&mut self) -> Response {
        let bare = format!("n={},r={}", self.user, self.nonce);
        let msg = format!("{}{}", self.gs2_header, bare);
        self.state = State::ExpectServerFirst {
            client_first_bare: bare,
        };
        response(msg.into_bytes())
    }

    fn client_final(
        &mut self,
        client_first_bare: &str,
        server_first: &[u8],
    ) -> Result<Response, SaslError> {
        let name = self.name();
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| self.malformed("server-first-message is not UTF-8"))?;
        let attrs = attributes(server_first);
        let (nonce, salt, iterations) = match attrs.as_slice() {
            [(b'r', r), (b's', s), (b'i', i), ..] => (*r, *s, *i),
            [(b'm', _), ..] => return Err(self.malformed("mandatory extension (m=) not supported")),
            [(b'e', "server-does-support-channel-binding"), ..]
                if self.binding == ScramBinding::ServerDidNotOffer =>
            {
                self.state = State::Failed;
                return Err(SaslError::ChannelBindingDowngrade { mechanism: name });
            }
            [(b'e', e), ..] => {
                self.state = State::Failed;
                return Err(SaslError::ServerError {
                    mechanism: name,
                    message: (*e).to_owned(),
                });
            }
            _ => return Err(self.malformed("expected r=, s=, i=")),
        };
        if !nonce.starts_with(&self.nonce)
            || nonce.len() == self.nonce.len()
            || !is_printable(nonce)
        {
            return Err(self.malformed("server nonce does not extend the client nonce"));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| self.malformed("salt is not base64"))?;
        if salt.is_empty() {
            return Err(self.malformed("empty salt"));
        }
        let iterations: u32 = match iterations.parse() {
            Ok(i) if i > 0 && !iterations.starts_with('+') => i,
            _ => return Err(self.malformed("bad iteration count")),
        };
        if iterations > self.max_iterations {
            return Err(self.malformed("iteration count above the configured limit"));
        }
        // c= is the GS2 header followed, for -PLUS, by the binding data (RFC 5802 §7).
        let mut cbind_input = Zeroizing::new(self.gs2_header.clone().into_bytes());
        if let ScramBinding::Bound(cb) = &self.binding {
            cbind_input.extend_from_slice(cb.data());
        }
        let without_proof = format!("c={},r={}", B64.encode(&cbind_input[..]), nonce);
        let auth_message = Zeroizing::new(format!(
            "{client_first_bare},{server_first},{without_proof}"
        ));
        let keys = keys(self.hash, &self.password, &salt, iterations);
        let client_signature = self.hash.hmac(&keys.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = keys
            .client_key
            .iter()
            .zip(client_signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_signature = self.hash.hmac(&keys.server_key, auth_message.as_bytes());
        self.state = State::ExpectServerFinal { server_signature };
        Ok(response(
            format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
        ))
    }

    fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), SaslError> {
        let name = self.name();
        let expected = match std::mem::replace(&mut self.state, State::Failed) {
            State::ExpectServerFinal { server_signature } => server_signature,
            _ => unreachable!("checked by the caller"),
        };
        let text = std::str::from_utf8(server_final)
            .map_err(|_| self.malformed("server-final-message is not UTF-8"))?;
        match attributes(text).first() {
            // RFC 5802 §6: the server supports channel binding, yet the client saw no -PLUS
            // name: the list was tampered with on the way.
            Some((b'e', e))
                if *e == "server-does-support-channel-binding"
                    && self.binding == ScramBinding::ServerDidNotOffer =>
            {
                Err(SaslError::ChannelBindingDowngrade { mechanism: name })
            }
            Some((b'e', e)) => Err(SaslError::ServerError {
                mechanism: name,
                message: (*e).to_owned(),
            }),
            Some((b'v', v)) => {
                let got = B64
                    .decode(v)
                    .map_err(|_| self.malformed("verifier is not base64"))?;
                if ct_eq(&got, &expected) {
                    self.state = State::Verified;
                    Ok(())
                } else {
                    Err(SaslError::ServerNotAuthenticated {
                        mechanism: name,
                        reason: "wrong server signature",
                    })
                }
            }
            _ => Err(self.malformed("expected v= or e=")),
        }
    }
}

impl Mechanism for Scram {
    fn name(&self) -> &'static str {
        self.hash.name(self.plus())
    }

    fn has_initial_response(&self) -> bool {
        true
    }

    fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
        match self.state {
            State::Start => Ok(Some(self.client_first())),
            _ => Err(SaslError::OutOfOrder {
                mechanism: self.name(),
                what: "initial_response after the exchange started",
            }),
        }
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Start => Ok(self.client_first()),
            State::ExpectServerFirst { client_first_bare } => {
                self.client_final(&client_first_bare, challenge)
            }
            s @ State::ExpectServerFinal { .. } => {
                self.state = s;
                self.verify_server_final(challenge)?;
                Ok(response(Vec::new()))
            }
            State::Verified | State::Failed => Err(SaslError::UnexpectedChallenge {
                mechanism: self.name(),
                step: 2,
            }),
        }
    }

    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        let name = self.name();
        match (&self.state, success_data) {
            (State::Verified, None) => Ok(()),
            (State::Verified, Some([])) => Ok(()),
            (State::ExpectServerFinal { .. }, Some(d)) if !d.is_empty() => {
                self.verify_server_final(d)
            }
            (State::ExpectServerFinal { .. }, _) => Err(SaslError::ServerNotAuthenticated {
                mechanism: name,
                reason: "success without a server signature",
            }),
            (State::Verified, Some(_)) => Err(SaslError::UnexpectedChallenge {
                mechanism: name,
                step: 3,
            }),
            _ => Err(SaslError::PrematureSuccess { mechanism: name }),
        }
    }
}
