//! Servers for PLAIN, LOGIN and CRAM-MD5 (feature `server`).

use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::cram_md5::hmac_md5_hex;
use crate::saslprep::{saslprep, StringKind};
use crate::scram::ct_eq;
use crate::server::{Authenticated, PasswordLookup, ServerMechanism, ServerStep};
use crate::SaslError;

fn check(lookup: &PasswordLookup, user: &str, password: &[u8]) -> bool {
    match lookup(user) {
        Some(stored) => ct_eq(stored.expose().as_bytes(), password),
        None => false,
    }
}

/// RFC 4616 §2: prepares the presented user name and password (query strings) and the
/// stored password (a stored string), then compares in constant time. The prepared user
/// name on success; `None` when a string is refused, empty after preparation, unknown, or
/// the password differs. ASCII strings pass SASLprep unchanged and are not copied; any
/// prepared copy of a password is zeroed.
fn check_prepared(lookup: &PasswordLookup, authcid: &str, password: &str) -> Option<String> {
    let user = saslprep(authcid, StringKind::Query).ok()?;
    let presented = saslprep(password, StringKind::Query).ok().map(Secretish)?;
    let stored = lookup(&user)?;
    let stored = saslprep(stored.expose(), StringKind::Stored)
        .ok()
        .map(Secretish)?;
    (!user.is_empty()
        && !presented.0.is_empty()
        && ct_eq(stored.0.as_bytes(), presented.0.as_bytes()))
    .then(|| user.into_owned())
}

/// A prepared password: zeroed on drop when SASLprep had to copy it.
struct Secretish<'a>(std::borrow::Cow<'a, str>);

impl Drop for Secretish<'_> {
    fn drop(&mut self) {
        if let std::borrow::Cow::Owned(s) = &mut self.0 {
            zeroize::Zeroize::zeroize(s);
        }
    }
}

fn utf8<'a>(mechanism: &'static str, field: &str, b: &'a [u8]) -> Result<&'a str, SaslError> {
    std::str::from_utf8(b).map_err(|_| SaslError::MalformedResponse {
        mechanism,
        reason: format!("{field} is not UTF-8"),
    })
}

fn out_of_order(mechanism: &'static str) -> SaslError {
    SaslError::OutOfOrder {
        mechanism,
        what: "step after the exchange ended",
    }
}

/// The PLAIN server (RFC 4616). As RFC 4616 §2 recommends, the presented user name and
/// password are SASLprep'ed as query strings and the stored password as a stored string
/// (RFC 4013); a string SASLprep refuses fails verification. The lookup gets the prepared
/// user name.
pub struct PlainServer {
    lookup: PasswordLookup,
    done: bool,
    authenticated: Option<Authenticated>,
}

impl PlainServer {
    /// A server checking passwords from `lookup`.
    pub fn new(lookup: PasswordLookup) -> PlainServer {
        PlainServer {
            lookup,
            done: false,
            authenticated: None,
        }
    }
}

impl ServerMechanism for PlainServer {
    fn name(&self) -> &'static str {
        "PLAIN"
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        const NAME: &str = "PLAIN";
        if self.done {
            return Err(out_of_order(NAME));
        }
        let Some(msg) = response else {
            return Ok(ServerStep::Challenge(Vec::new()));
        };
        self.done = true;
        let mut fields = msg.split(|b| *b == 0);
        let (Some(z), Some(c), Some(p), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(SaslError::MalformedResponse {
                mechanism: NAME,
                reason: "expected authzid NUL authcid NUL passwd".into(),
            });
        };
        let authzid = utf8(NAME, "authzid", z)?;
        let authcid = utf8(NAME, "authcid", c)?;
        if authcid.is_empty() || p.is_empty() {
            return Err(SaslError::MalformedResponse {
                mechanism: NAME,
                reason: "empty authcid or password".into(),
            });
        }
        let password = utf8(NAME, "password", p)?;
        let Some(authcid) = check_prepared(&self.lookup, authcid, password) else {
            return Ok(ServerStep::Failure);
        };
        self.authenticated = Some(Authenticated {
            authcid,
            authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
            realm: None,
        });
        Ok(ServerStep::Success(None))
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}

/// The LOGIN server: prompts `Username:` then `Password:`. A client's initial response is
/// taken as the user name.
pub struct LoginServer {
    lookup: PasswordLookup,
    user: Option<String>,
    done: bool,
    authenticated: Option<Authenticated>,
}

impl LoginServer {
    /// A server checking passwords from `lookup`.
    pub fn new(lookup: PasswordLookup) -> LoginServer {
        LoginServer {
            lookup,
            user: None,
            done: false,
            authenticated: None,
        }
    }
}

impl ServerMechanism for LoginServer {
    fn name(&self) -> &'static str {
        "LOGIN"
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        const NAME: &str = "LOGIN";
        if self.done {
            return Err(out_of_order(NAME));
        }
        let Some(msg) = response else {
            return Ok(ServerStep::Challenge(b"Username:".to_vec()));
        };
        match self.user.take() {
            None => {
                self.user = Some(utf8(NAME, "user name", msg)?.to_owned());
                Ok(ServerStep::Challenge(b"Password:".to_vec()))
            }
            Some(user) => {
                self.done = true;
                if !check(&self.lookup, &user, msg) {
                    return Ok(ServerStep::Failure);
                }
                self.authenticated = Some(Authenticated {
                    authcid: user,
                    authzid: None,
                    realm: None,
                });
                Ok(ServerStep::Success(None))
            }
        }
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}

/// The CRAM-MD5 server (RFC 2195): challenge `<random.random@host>`.
pub struct CramMd5Server {
    lookup: PasswordLookup,
    host: String,
    challenge: Option<Vec<u8>>,
    done: bool,
    authenticated: Option<Authenticated>,
}

impl CramMd5Server {
    /// A server checking passwords from `lookup`, naming `host` in its challenges.
    pub fn new(lookup: PasswordLookup, host: &str) -> CramMd5Server {
        CramMd5Server {
            lookup,
            host: host.to_owned(),
            challenge: None,
            done: false,
            authenticated: None,
        }
    }
}

impl ServerMechanism for CramMd5Server {
    fn name(&self) -> &'static str {
        "CRAM-MD5"
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        const NAME: &str = "CRAM-MD5";
        if self.done {
            return Err(out_of_order(NAME));
        }
        let Some(challenge) = self.challenge.take() else {
            if response.is_some() {
                self.done = true;
                return Err(SaslError::MalformedResponse {
                    mechanism: NAME,
                    reason: "CRAM-MD5 has no initial response".into(),
                });
            }
            let c =
                format!("<{}.{}@{}>", OsRng.next_u32(), OsRng.next_u64(), self.host).into_bytes();
            self.challenge = Some(c.clone());
            return Ok(ServerStep::Challenge(c));
        };
        self.done = true;
        let msg = response.unwrap_or_default();
        let text = utf8(NAME, "response", msg)?;
        let Some((user, digest)) = text.rsplit_once(' ') else {
            return Err(SaslError::MalformedResponse {
                mechanism: NAME,
                reason: "expected user SP digest".into(),
            });
        };
        if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SaslError::MalformedResponse {
                mechanism: NAME,
                reason: "digest is not 32 hex digits".into(),
            });
        }
        let ok = match (self.lookup)(user) {
            Some(pw) => {
                let expected = Zeroizing::new(hmac_md5_hex(pw.expose().as_bytes(), &challenge));
                ct_eq(expected.as_bytes(), digest.to_ascii_lowercase().as_bytes())
            }
            None => false,
        };
        if !ok {
            return Ok(ServerStep::Failure);
        }
        self.authenticated = Some(Authenticated {
            authcid: user.to_owned(),
            authzid: None,
            realm: None,
        });
        Ok(ServerStep::Success(None))
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}
