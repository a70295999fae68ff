//! The SCRAM server (feature `server`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::channel_binding::{CbindFlag, ChannelBinding, Gs2Header};
use crate::saslprep::{saslprep, StringKind};
use crate::scram::{
    attributes, ct_eq, is_printable, keys, normalize_password, random_nonce, unescape_name, Keys,
    ScramHash,
};
use crate::server::{Authenticated, PasswordLookup, ServerMechanism, ServerStep};
use crate::SaslError;

/// The iteration count the server asks for (RFC 7677 recommends at least 4096).
pub const SERVER_ITERATIONS: u32 = 4096;

enum State {
    Start,
    ExpectClientFinal(Box<Pending>),
    Done,
}

struct Pending {
    /// What `c=` must decode to: the GS2 header, then the binding data for -PLUS.
    cbind_input: zeroize::Zeroizing<Vec<u8>>,
    /// The client sent `y` to a server that supports channel binding (RFC 5802 §6).
    downgraded: bool,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    user: Authenticated,
    keys: Option<Keys>,
}

/// The SCRAM server: a random salt and nonce per exchange, [`SERVER_ITERATIONS`] rounds.
/// An unknown user runs the whole exchange and fails at the end. The user name is
/// SASLprep'ed as a query string before the lookup, the stored password as a stored string
/// (RFC 5802 §2.2, §5.1).
pub struct ScramServer {
    hash: ScramHash,
    /// The -PLUS variant: the client must bind (`p=`).
    plus: bool,
    /// The binding data this server's channel gives, one per type it supports. Non-empty:
    /// the server supports channel binding, and a client's `y` fails the exchange.
    bindings: Vec<ChannelBinding>,
    lookup: PasswordLookup,
    nonce: Option<String>,
    salt: Option<Vec<u8>>,
    iterations: u32,
    state: State,
    authenticated: Option<Authenticated>,
}

impl ScramServer {
    /// A server checking passwords from `lookup`.
    pub fn new(hash: ScramHash, lookup: PasswordLookup) -> ScramServer {
        ScramServer {
            hash,
            plus: false,
            bindings: Vec::new(),
            lookup,
            nonce: None,
            salt: None,
            iterations: SERVER_ITERATIONS,
            state: State::Start,
            authenticated: None,
        }
    }

    /// The -PLUS variant (RFC 5802 §6): the client must bind to the channel with one of
    /// `bindings` (the data of this server's TLS channel, one per type it supports). With
    /// no bindings every exchange fails.
    pub fn new_plus(
        hash: ScramHash,
        lookup: PasswordLookup,
        bindings: Vec<ChannelBinding>,
    ) -> ScramServer {
        ScramServer {
            plus: true,
            bindings,
            ..ScramServer::new(hash, lookup)
        }
    }

    /// The plain variant on a server that supports channel binding (it offers -PLUS too):
    /// a client that says `y` (it could bind but saw no -PLUS offered) is failed, as
    /// RFC 5802 §6 requires.
    pub fn supporting_channel_binding(mut self, bindings: Vec<ChannelBinding>) -> ScramServer {
        self.bindings = bindings;
        self
    }

    /// Fixes the server nonce part, salt and iteration count. For tests against fixed
    /// vectors only.
    pub fn with_fixed(mut self, nonce: &str, salt: &[u8], iterations: u32) -> ScramServer {
        self.nonce = Some(nonce.to_owned());
        self.salt = Some(salt.to_vec());
        self.iterations = iterations;
        self
    }

    fn malformed(&mut self, reason: &str) -> SaslError {
        self.state = State::Done;
        SaslError::MalformedResponse {
            mechanism: self.hash.name(self.plus),
            reason: reason.to_owned(),
        }
    }

    fn client_first(&mut self, msg: &[u8]) -> Result<ServerStep, SaslError> {
        let msg = std::str::from_utf8(msg).map_err(|_| self.malformed("not UTF-8"))?;
        let (header, bare) = match Gs2Header::parse(msg) {
            Ok(h) => h,
            Err(e) => return Err(self.malformed(&e.to_string())),
        };
        let authzid = match header.authzid.as_deref().map(unescape_name) {
            None => None,
            Some(Some(z)) if !z.is_empty() => Some(z),
            Some(_) => return Err(self.malformed("bad authzid")),
        };
        let mut cbind_input = zeroize::Zeroizing::new(header.encode().into_bytes());
        let mut downgraded = false;
        match (&header.flag, self.plus) {
            (CbindFlag::Bound(name), true) => {
                // A type this server's channel cannot give fails like a wrong binding.
                match self.bindings.iter().find(|b| b.kind().as_str() == name) {
                    Some(b) => cbind_input.extend_from_slice(b.data()),
                    None => downgraded = true,
                }
            }
            (_, true) => return Err(self.malformed("-PLUS mechanism without p= binding")),
            (CbindFlag::Bound(_), false) => {
                return Err(self.malformed("p= binding with a mechanism without -PLUS"))
            }
            (CbindFlag::ClientSupportsServerDoesNot, false) => {
                downgraded = !self.bindings.is_empty();
            }
            (CbindFlag::NotSupported, false) => {}
        }
        let attrs = attributes(bare);
        let (user, cnonce) = match attrs.as_slice() {
            [(b'n', u), (b'r', r), ..] => (*u, *r),
            [(b'm', _), ..] => return Err(self.malformed("mandatory extension not supported")),
            _ => return Err(self.malformed("expected n=, r=")),
        };
        let Some(user) = unescape_name(user) else {
            return Err(self.malformed("bad user name"));
        };
        // RFC 5802 §5.1: the user name is prepared as a query string; a refused or empty
        // one aborts the exchange.
        let user = match saslprep(&user, StringKind::Query) {
            Ok(u) if !u.is_empty() => u.into_owned(),
            _ => return Err(self.malformed("user name refused by SASLprep")),
        };
        if cnonce.is_empty() || !is_printable(cnonce) {
            return Err(self.malformed("bad client nonce"));
        }
        let salt = self.salt.clone().unwrap_or_else(|| {
            let mut s = vec![0u8; 16];
            OsRng.fill_bytes(&mut s);
            s
        });
        let nonce = format!(
            "{cnonce}{}",
            self.nonce.clone().unwrap_or_else(random_nonce)
        );
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&salt), self.iterations);
        // A stored password SASLprep refuses can match no client: the exchange runs on and
        // fails, as for an unknown user.
        let keys = (self.lookup)(&user)
            .and_then(|pw| normalize_password(pw.expose()).ok())
            .map(|pw| keys(self.hash, &pw, &salt, self.iterations));
        self.state = State::ExpectClientFinal(Box::new(Pending {
            cbind_input,
            downgraded,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
            user: Authenticated {
                authcid: user,
                authzid,
                realm: None,
            },
            keys,
        }));
        Ok(ServerStep::Challenge(server_first.into_bytes()))
    }

    fn client_final(&mut self, msg: &[u8]) -> Result<ServerStep, SaslError> {
        let State::ExpectClientFinal(pending) = std::mem::replace(&mut self.state, State::Done)
        else {
            unreachable!("checked by the caller")
        };
        let Pending {
            cbind_input,
            downgraded,
            client_first_bare,
            server_first,
            nonce,
            user,
            keys,
        } = *pending;
        let msg = std::str::from_utf8(msg).map_err(|_| self.malformed("not UTF-8"))?;
        let Some(p_at) = msg.rfind(",p=") else {
            return Err(self.malformed("no proof"));
        };
        let without_proof = &msg[..p_at];
        let proof = B64
            .decode(&msg[p_at + 3..])
            .map_err(|_| self.malformed("proof is not base64"))?;
        let attrs = attributes(without_proof);
        let (c, r) = match attrs.as_slice() {
            [(b'c', c), (b'r', r), ..] => (*c, *r),
            _ => return Err(self.malformed("expected c=, r=")),
        };
        let Ok(c) = B64.decode(c).map(zeroize::Zeroizing::new) else {
            return Err(self.malformed("c= is not base64"));
        };
        if r != nonce {
            return Err(self.malformed("nonce mismatch"));
        }
        // c= must repeat the GS2 header and, for -PLUS, carry this channel's binding data:
        // a different one means a man in the middle (RFC 5802 §6), an authentication
        // failure, as is a client's `y` when this server supports channel binding.
        if !ct_eq(&c, &cbind_input) || downgraded {
            return Ok(ServerStep::Failure);
        }
        let Some(keys) = keys else {
            return Ok(ServerStep::Failure);
        };
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = self.hash.hmac(&keys.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Ok(ServerStep::Failure);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        if !ct_eq(&self.hash.h(&client_key), &keys.stored_key) {
            return Ok(ServerStep::Failure);
        }
        let server_signature = self.hash.hmac(&keys.server_key, auth_message.as_bytes());
        self.authenticated = Some(user);
        Ok(ServerStep::Success(Some(
            format!("v={}", B64.encode(&server_signature[..])).into_bytes(),
        )))
    }
}

impl ServerMechanism for ScramServer {
    fn name(&self) -> &'static str {
        self.hash.name(self.plus)
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match (&self.state, response) {
            (State::Start, None) => Ok(ServerStep::Challenge(Vec::new())),
            (State::Start, Some(r)) => self.client_first(r),
            (State::ExpectClientFinal(_), Some(r)) => self.client_final(r),
            _ => Err(SaslError::OutOfOrder {
                mechanism: self.hash.name(self.plus),
                what: "step after the exchange ended, or without a response",
            }),
        }
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}
