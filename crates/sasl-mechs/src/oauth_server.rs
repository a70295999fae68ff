//! Servers for OAUTHBEARER, XOAUTH2, EXTERNAL and ANONYMOUS (feature `server`).

use crate::scram::{ct_eq, unescape_name};
use crate::server::{Authenticated, PasswordLookup, ServerMechanism, ServerStep};
use crate::{OAuthKind, SaslError};

/// The largest client message the token servers read (a bearer token is a few KiB at most).
pub const MAX_TOKEN_MESSAGE: usize = 64 * 1024;

fn malformed(mechanism: &'static str, reason: impl Into<String>) -> SaslError {
    SaslError::MalformedResponse {
        mechanism,
        reason: reason.into(),
    }
}

fn out_of_order(mechanism: &'static str) -> SaslError {
    SaslError::OutOfOrder {
        mechanism,
        what: "step after the exchange ended",
    }
}

#[derive(Debug, PartialEq)]
enum TokenState {
    Start,
    /// The error JSON went out; the client's dummy response ends the exchange in failure.
    ErrorSent,
    Done,
}

/// The OAUTHBEARER (RFC 7628) and XOAUTH2 server: checks the bearer token against the secret
/// `lookup` gives for the user (OAUTHBEARER's `a=`, XOAUTH2's `user=`), in constant time, as
/// Dovecot does with its passdb. No OAuth server is involved.
///
/// A wrong token (or unknown user) gets the error challenge, a JSON object
/// (`{"status":"invalid_token","schemes":"bearer"}`, with status `"401"` for XOAUTH2); the
/// client's next message (`0x01` or empty, per RFC 7628 3.2.3), whatever it holds, then gets
/// [`ServerStep::Failure`]. OAUTHBEARER without `a=` is malformed (no user to check), and so
/// is channel binding (`p=`).
pub struct OAuthServer {
    kind: OAuthKind,
    lookup: PasswordLookup,
    state: TokenState,
    authenticated: Option<Authenticated>,
}

impl OAuthServer {
    /// A server of this kind checking tokens from `lookup`.
    pub fn new(kind: OAuthKind, lookup: PasswordLookup) -> OAuthServer {
        OAuthServer {
            kind,
            lookup,
            state: TokenState::Start,
            authenticated: None,
        }
    }

    /// The error JSON sent on failure.
    pub fn error_json(&self) -> &'static [u8] {
        match self.kind {
            OAuthKind::OAuthBearer => br#"{"status":"invalid_token","schemes":"bearer"}"#,
            OAuthKind::XOAuth2 => br#"{"status":"401","schemes":"bearer"}"#,
        }
    }

    /// (user, token) from the client's message.
    fn parse<'a>(&self, msg: &'a [u8]) -> Result<(String, &'a str), SaslError> {
        let name = self.kind.mechanism_name();
        let bad = |reason: &str| malformed(name, reason);
        if msg.len() > MAX_TOKEN_MESSAGE {
            return Err(bad("message longer than 64 KiB"));
        }
        let msg = std::str::from_utf8(msg).map_err(|_| bad("not UTF-8"))?;
        let (gs2_user, pairs) = match self.kind {
            OAuthKind::OAuthBearer => {
                // gs2-header = cbind-flag "," [ "a=" saslname ] "," then kvsep.
                let mut parts = msg.splitn(3, ',');
                let (Some(flag), Some(authz), Some(rest)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad("no GS2 header"));
                };
                match flag {
                    "n" | "y" => {}
                    f if f.starts_with("p=") => return Err(bad("channel binding not supported")),
                    _ => return Err(bad("bad channel binding flag")),
                }
                let user = match authz.strip_prefix("a=").map(unescape_name) {
                    Some(Some(u)) if !u.is_empty() => u,
                    Some(_) => return Err(bad("bad authzid")),
                    None if authz.is_empty() => {
                        return Err(bad("no a= (the user whose token this is)"))
                    }
                    None => return Err(bad("bad GS2 header")),
                };
                let rest = rest
                    .strip_prefix('\x01')
                    .ok_or_else(|| bad("no 0x01 after the GS2 header"))?;
                (Some(user), rest)
            }
            OAuthKind::XOAuth2 => (None, msg),
        };
        // kvpairs, each ending with 0x01, then a final 0x01.
        let body = pairs
            .strip_suffix('\x01')
            .ok_or_else(|| bad("does not end with 0x01"))?;
        let mut user = gs2_user;
        let mut token = None;
        if !body.is_empty() {
            let body = body
                .strip_suffix('\x01')
                .ok_or_else(|| bad("does not end with 0x01 0x01"))?;
            for kv in body.split('\x01') {
                let (k, v) = kv.split_once('=').ok_or_else(|| bad("key without '='"))?;
                match k {
                    "auth" => {
                        let (scheme, t) = v
                            .split_once(' ')
                            .ok_or_else(|| bad("auth is not 'Bearer token'"))?;
                        if !scheme.eq_ignore_ascii_case("bearer") || t.is_empty() {
                            return Err(bad("auth is not 'Bearer token'"));
                        }
                        if token.replace(t).is_some() {
                            return Err(bad("more than one auth"));
                        }
                    }
                    "user" if self.kind == OAuthKind::XOAuth2 => {
                        let previous = user.replace(v.to_owned());
                        if previous.is_some() {
                            return Err(bad("more than one user"));
                        }
                    }
                    _ => {}
                }
            }
        }
        let user = user
            .filter(|u| !u.is_empty())
            .ok_or_else(|| bad("no user"))?;
        let token = token.ok_or_else(|| bad("no auth=Bearer token"))?;
        Ok((user, token))
    }
}

impl ServerMechanism for OAuthServer {
    fn name(&self) -> &'static str {
        self.kind.mechanism_name()
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        let name = self.kind.mechanism_name();
        match (&self.state, response) {
            (TokenState::Start, None) => Ok(ServerStep::Challenge(Vec::new())),
            (TokenState::Start, Some(msg)) => {
                self.state = TokenState::Done;
                let (user, token) = self.parse(msg)?;
                let ok = (self.lookup)(&user)
                    .is_some_and(|secret| ct_eq(secret.expose().as_bytes(), token.as_bytes()));
                if !ok {
                    self.state = TokenState::ErrorSent;
                    return Ok(ServerStep::Challenge(self.error_json().to_vec()));
                }
                self.authenticated = Some(Authenticated {
                    authcid: user,
                    authzid: None,
                    realm: None,
                });
                Ok(ServerStep::Success(None))
            }
            (TokenState::ErrorSent, Some(_)) => {
                self.state = TokenState::Done;
                Ok(ServerStep::Failure)
            }
            _ => Err(out_of_order(name)),
        }
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}

/// The EXTERNAL server (RFC 4422 appendix A): the channel (a TLS client certificate, a
/// Unix socket's peer) has already authenticated the client; the message is the
/// authorization id it asks for (empty: the channel's identity).
///
/// Without a channel identity every exchange fails: [`server_mechanism`] builds it that way,
/// since it cannot know the channel. Whether the identity may act as the authorization id
/// is the caller's policy.
///
/// [`server_mechanism`]: crate::server::server_mechanism
pub struct ExternalServer {
    identity: Option<String>,
    done: bool,
    authenticated: Option<Authenticated>,
}

impl ExternalServer {
    /// A server for a channel that authenticated the client as `identity` (`None`: it did
    /// not).
    pub fn new(identity: Option<String>) -> ExternalServer {
        ExternalServer {
            identity,
            done: false,
            authenticated: None,
        }
    }
}

impl ServerMechanism for ExternalServer {
    fn name(&self) -> &'static str {
        "EXTERNAL"
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        const NAME: &str = "EXTERNAL";
        if self.done {
            return Err(out_of_order(NAME));
        }
        let Some(msg) = response else {
            return Ok(ServerStep::Challenge(Vec::new()));
        };
        self.done = true;
        if msg.len() > MAX_TOKEN_MESSAGE {
            return Err(malformed(NAME, "authorization id longer than 64 KiB"));
        }
        let authzid = std::str::from_utf8(msg)
            .ok()
            .filter(|z| !z.contains('\0'))
            .ok_or_else(|| malformed(NAME, "authorization id is not UTF-8 or holds a NUL"))?;
        let Some(identity) = self.identity.clone() else {
            return Ok(ServerStep::Failure);
        };
        self.authenticated = Some(Authenticated {
            authcid: identity,
            authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
            realm: None,
        });
        Ok(ServerStep::Success(None))
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}

/// The ANONYMOUS server (RFC 4505): accepts any trace of at most 255 UTF-8 characters.
/// The authenticated identity is `"anonymous"`; the trace is [`trace`](Self::trace), for
/// logging only.
pub struct AnonymousServer {
    done: bool,
    trace: Option<String>,
    authenticated: Option<Authenticated>,
}

impl AnonymousServer {
    /// A server accepting anyone.
    pub fn new() -> AnonymousServer {
        AnonymousServer {
            done: false,
            trace: None,
            authenticated: None,
        }
    }

    /// The client's trace string, once the exchange succeeded.
    pub fn trace(&self) -> Option<&str> {
        self.trace.as_deref()
    }
}

impl Default for AnonymousServer {
    fn default() -> AnonymousServer {
        AnonymousServer::new()
    }
}

impl ServerMechanism for AnonymousServer {
    fn name(&self) -> &'static str {
        "ANONYMOUS"
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        const NAME: &str = "ANONYMOUS";
        if self.done {
            return Err(out_of_order(NAME));
        }
        let Some(msg) = response else {
            return Ok(ServerStep::Challenge(Vec::new()));
        };
        self.done = true;
        // 255 characters of at most 4 bytes.
        if msg.len() > 255 * 4 {
            return Err(malformed(NAME, "trace longer than 255 characters"));
        }
        let trace = std::str::from_utf8(msg).map_err(|_| malformed(NAME, "trace is not UTF-8"))?;
        if trace.chars().count() > 255 {
            return Err(malformed(NAME, "trace longer than 255 characters"));
        }
        self.trace = Some(trace.to_owned());
        self.authenticated = Some(Authenticated {
            authcid: "anonymous".to_owned(),
            authzid: None,
            realm: None,
        });
        Ok(ServerStep::Success(None))
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Secret;

    fn server(kind: OAuthKind) -> OAuthServer {
        let lookup = Arc::new(|u: &str| {
            (u == "user@example.com")
                .then(|| Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="))
        });
        OAuthServer::new(kind, lookup)
    }

    /// RFC 7628 section 4.1: the example initial response, accepted.
    #[test]
    fn rfc7628_example_accepted() {
        let mut s = server(OAuthKind::OAuthBearer);
        let msg = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
        assert_eq!(s.step(Some(msg)).unwrap(), ServerStep::Success(None));
        assert_eq!(s.authenticated().unwrap().authcid, "user@example.com");
    }

    /// RFC 7628 section 4.3 shape: error JSON challenge, the client's 0x01, failure.
    #[test]
    fn wrong_token_gets_the_error_json_then_failure() {
        let mut s = server(OAuthKind::OAuthBearer);
        let msg = b"n,a=user@example.com,\x01auth=Bearer wrong\x01\x01";
        let ServerStep::Challenge(json) = s.step(Some(msg)).unwrap() else {
            panic!("no error challenge")
        };
        assert_eq!(
            crate::OAuthError::parse(&json).unwrap().status,
            "invalid_token"
        );
        assert_eq!(s.step(Some(b"\x01")).unwrap(), ServerStep::Failure);
        assert!(s.authenticated().is_none());
        assert!(s.step(Some(b"\x01")).is_err());
        let mut s = server(OAuthKind::XOAuth2);
        let msg = b"user=user@example.com\x01auth=Bearer wrong\x01\x01";
        let ServerStep::Challenge(json) = s.step(Some(msg)).unwrap() else {
            panic!("no error challenge")
        };
        assert_eq!(crate::OAuthError::parse(&json).unwrap().status, "401");
        assert_eq!(s.step(Some(b"")).unwrap(), ServerStep::Failure);
    }

    #[test]
    fn malformed_token_messages() {
        for (kind, msg) in [
            (OAuthKind::OAuthBearer, &b""[..]),
            (OAuthKind::OAuthBearer, b"n,,\x01auth=Bearer t\x01\x01"),
            (
                OAuthKind::OAuthBearer,
                b"p=tls-unique,a=u,\x01auth=Bearer t\x01\x01",
            ),
            (OAuthKind::OAuthBearer, b"n,a=u,auth=Bearer t\x01\x01"),
            (OAuthKind::OAuthBearer, b"n,a=u,\x01auth=Bearer t\x01"),
            (OAuthKind::OAuthBearer, b"n,a=u,\x01auth=Basic t\x01\x01"),
            (OAuthKind::OAuthBearer, b"n,a=u,\x01auth=Bearer \x01\x01"),
            (OAuthKind::OAuthBearer, b"n,a=u=2,\x01auth=Bearer t\x01\x01"),
            (OAuthKind::OAuthBearer, b"n,a=u,\x01\x01"),
            (OAuthKind::OAuthBearer, b"n,a=u,\x01novalue\x01\x01"),
            (
                OAuthKind::OAuthBearer,
                b"n,a=\xff,\x01auth=Bearer t\x01\x01",
            ),
            (OAuthKind::XOAuth2, b"auth=Bearer t\x01\x01"),
            (
                OAuthKind::XOAuth2,
                b"user=u\x01auth=Bearer t\x01auth=Bearer t\x01\x01",
            ),
            (OAuthKind::XOAuth2, b"user=u\x01auth=Bearer t"),
        ] {
            let mut s = server(kind);
            assert!(
                matches!(s.step(Some(msg)), Err(SaslError::MalformedResponse { .. })),
                "{:?}",
                String::from_utf8_lossy(msg)
            );
        }
        let mut s = server(OAuthKind::XOAuth2);
        assert!(s.step(Some(&vec![b'a'; MAX_TOKEN_MESSAGE + 1])).is_err());
    }

    #[test]
    fn external_needs_a_channel_identity() {
        let mut s = ExternalServer::new(None);
        assert_eq!(s.step(Some(b"")).unwrap(), ServerStep::Failure);
        let mut s = ExternalServer::new(Some("CN=client".into()));
        assert_eq!(s.step(None).unwrap(), ServerStep::Challenge(Vec::new()));
        assert_eq!(s.step(Some(b"admin")).unwrap(), ServerStep::Success(None));
        let who = s.authenticated().unwrap();
        assert_eq!(
            (who.authcid.as_str(), who.authzid.as_deref()),
            ("CN=client", Some("admin"))
        );
        let mut s = ExternalServer::new(Some("CN=client".into()));
        assert!(s.step(Some(b"a\0b")).is_err());
    }

    #[test]
    fn anonymous_trace() {
        // RFC 4505 section 4: trace "sirhc".
        let mut s = AnonymousServer::new();
        assert_eq!(s.step(Some(b"sirhc")).unwrap(), ServerStep::Success(None));
        assert_eq!(s.trace(), Some("sirhc"));
        assert_eq!(s.authenticated().unwrap().authcid, "anonymous");
        for bad in [vec![b'x'; 256], vec![0xff]] {
            assert!(AnonymousServer::new().step(Some(&bad)).is_err());
        }
        assert!(AnonymousServer::new()
            .step(Some("\u{e9}".repeat(255).as_bytes()))
            .is_ok());
    }
}
