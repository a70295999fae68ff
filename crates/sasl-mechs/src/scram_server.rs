//! The SCRAM server (feature `server`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;

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
    gs2_header: String,
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
            lookup,
            nonce: None,
            salt: None,
            iterations: SERVER_ITERATIONS,
            state: State::Start,
            authenticated: None,
        }
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
            mechanism: self.hash.mechanism_name(),
            reason: reason.to_owned(),
        }
    }

    fn client_first(&mut self, msg: &[u8]) -> Result<ServerStep, SaslError> {
        let msg = std::str::from_utf8(msg).map_err(|_| self.malformed("not UTF-8"))?;
        // gs2-header: cbind-flag "," [authzid] ","
        let mut parts = msg.splitn(3, ',');
        let (flag, authz, bare) = match (parts.next(), parts.next(), parts.next()) {
            (Some(f), Some(a), Some(b)) => (f, a, b),
            _ => return Err(self.malformed("no GS2 header")),
        };
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(self.malformed("channel binding not supported")),
            _ => return Err(self.malformed("bad channel binding flag")),
        }
        let authzid = match authz {
            "" => None,
            a => match a.strip_prefix("a=").and_then(unescape_name) {
                Some(z) if !z.is_empty() => Some(z),
                _ => return Err(self.malformed("bad authzid")),
            },
        };
        let gs2_header = format!("{flag},{authz},");
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
            gs2_header,
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
            gs2_header,
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
        if B64.decode(c).ok().as_deref() != Some(gs2_header.as_bytes()) {
            return Err(self.malformed("channel binding data does not match the GS2 header"));
        }
        if r != nonce {
            return Err(self.malformed("nonce mismatch"));
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
        self.hash.mechanism_name()
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match (&self.state, response) {
            (State::Start, None) => Ok(ServerStep::Challenge(Vec::new())),
            (State::Start, Some(r)) => self.client_first(r),
            (State::ExpectClientFinal(_), Some(r)) => self.client_final(r),
            _ => Err(SaslError::OutOfOrder {
                mechanism: self.hash.mechanism_name(),
                what: "step after the exchange ended, or without a response",
            }),
        }
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}
