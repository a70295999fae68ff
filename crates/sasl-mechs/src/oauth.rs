//! OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's older form of the same idea).

use crate::mechanism::{response, Response};
use crate::scram::escape_name;
use crate::{Credentials, Mechanism, OAuthError, SaslError, Secret};

/// The two token mechanisms: they differ only in framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthKind {
    /// OAUTHBEARER (RFC 7628): GS2 header, `auth=Bearer` and optional host/port, `0x01`
    /// separators; after an error challenge the client sends a single `0x01`.
    OAuthBearer,
    /// XOAUTH2: `user=... 0x01 auth=Bearer ... 0x01 0x01`; after an error challenge the
    /// client sends an empty response.
    XOAuth2,
}

impl OAuthKind {
    /// The mechanism's IANA (or de facto) name.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            OAuthKind::OAuthBearer => "OAUTHBEARER",
            OAuthKind::XOAuth2 => "XOAUTH2",
        }
    }
}

#[derive(Debug, PartialEq)]
enum State {
    Start,
    Sent,
    /// The server sent its error JSON; we acknowledged it; the exchange must fail.
    ErrorAcknowledged,
    Done,
}

/// The OAUTHBEARER / XOAUTH2 client.
///
/// The user name goes in XOAUTH2's `user=` and OAUTHBEARER's GS2 `a=` (the authorization
/// id when one is set, else the authentication id), which is what Gmail, Microsoft and
/// Dovecot read. On a challenge after the initial response (the server's error JSON) the
/// client answers as RFC 7628 section 3.2.3 says and keeps the parsed error: the server then
/// fails the exchange, and [`Mechanism::failure_detail`] returns it.
#[derive(Debug)]
pub struct OAuth {
    kind: OAuthKind,
    user: String,
    token: Secret,
    host: Option<String>,
    port: Option<u16>,
    state: State,
    error: Option<OAuthError>,
}

impl OAuth {
    /// Builds the client; needs a token. `host` and `port` are sent by OAUTHBEARER only.
    pub fn new(
        kind: OAuthKind,
        creds: &Credentials,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<OAuth, SaslError> {
        let name = kind.mechanism_name();
        let token = creds.token().ok_or(SaslError::MissingCredential {
            mechanism: name,
            needs: "a bearer token",
        })?;
        let user = creds.authzid().unwrap_or(creds.authcid());
        let bad = |s: &str| s.bytes().any(|b| b < 0x20 || b == 0x7f);
        if bad(user) {
            return Err(SaslError::InvalidCredentials {
                field: "authentication id",
                reason: "contains a control character",
            });
        }
        if token.expose().is_empty() || bad(token.expose()) {
            return Err(SaslError::InvalidCredentials {
                field: "token",
                reason: "is empty or contains a control character",
            });
        }
        if host.is_some_and(bad) {
            return Err(SaslError::InvalidCredentials {
                field: "host",
                reason: "contains a control character",
            });
        }
        Ok(OAuth {
            kind,
            user: user.to_owned(),
            token: token.clone(),
            host: host.map(str::to_owned),
            port,
            state: State::Start,
            error: None,
        })
    }

    fn message(&mut self) -> Response {
        let token = self.token.expose();
        let out = match self.kind {
            OAuthKind::XOAuth2 => format!("user={}\x01auth=Bearer {token}\x01\x01", self.user),
            OAuthKind::OAuthBearer => {
                let mut s = format!("n,a={},\x01", escape_name(&self.user));
                if let Some(h) = &self.host {
                    s.push_str(&format!("host={h}\x01"));
                }
                if let Some(p) = self.port {
                    s.push_str(&format!("port={p}\x01"));
                }
                s.push_str(&format!("auth=Bearer {token}\x01\x01"));
                s
            }
        };
        self.state = State::Sent;
        response(out.into_bytes())
    }
}

impl Mechanism for OAuth {
    fn name(&self) -> &'static str {
        self.kind.mechanism_name()
    }

    fn has_initial_response(&self) -> bool {
        true
    }

    fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
        if self.state != State::Start {
            return Err(SaslError::OutOfOrder {
                mechanism: self.name(),
                what: "initial_response after the exchange started",
            });
        }
        Ok(Some(self.message()))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
        match self.state {
            State::Start => Ok(self.message()),
            State::Sent => {
                // Whatever the JSON holds, the answer is the same; a JSON we cannot parse
                // still gets it, and the error says what was wrong.
                self.error = Some(
                    OAuthError::parse(challenge).unwrap_or_else(|why| OAuthError {
                        status: format!("unparsable error JSON: {why}"),
                        scope: None,
                        openid_configuration: None,
                    }),
                );
                self.state = State::ErrorAcknowledged;
                Ok(response(match self.kind {
                    OAuthKind::OAuthBearer => vec![0x01],
                    OAuthKind::XOAuth2 => Vec::new(),
                }))
            }
            State::ErrorAcknowledged | State::Done => Err(SaslError::UnexpectedChallenge {
                mechanism: self.name(),
                step: 2,
            }),
        }
    }

    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        match self.state {
            State::Sent if success_data.is_none_or(<[u8]>::is_empty) => {
                self.state = State::Done;
                Ok(())
            }
            State::Sent => Err(SaslError::UnexpectedChallenge {
                mechanism: self.name(),
                step: 1,
            }),
            // Success after the server reported an error: do not trust it.
            State::ErrorAcknowledged => {
                Err(SaslError::OAuth(self.error.clone().unwrap_or_else(|| {
                    OAuthError {
                        status: String::new(),
                        scope: None,
                        openid_configuration: None,
                    }
                })))
            }
            State::Start | State::Done => Err(SaslError::PrematureSuccess {
                mechanism: self.name(),
            }),
        }
    }

    fn failure_detail(&self) -> Option<&OAuthError> {
        self.error.as_ref()
    }
}

/// One message and nothing else: EXTERNAL and ANONYMOUS.
#[derive(Debug)]
struct OneShot {
    name: &'static str,
    message: Vec<u8>,
    sent: bool,
}

impl OneShot {
    fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
        if self.sent {
            return Err(SaslError::OutOfOrder {
                mechanism: self.name,
                what: "initial_response after the message was sent",
            });
        }
        self.sent = true;
        Ok(Some(response(self.message.clone())))
    }

    fn respond(&mut self) -> Result<Response, SaslError> {
        if self.sent {
            return Err(SaslError::UnexpectedChallenge {
                mechanism: self.name,
                step: 1,
            });
        }
        self.sent = true;
        Ok(response(self.message.clone()))
    }

    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        if !self.sent {
            return Err(SaslError::PrematureSuccess {
                mechanism: self.name,
            });
        }
        if success_data.is_some_and(|d| !d.is_empty()) {
            return Err(SaslError::UnexpectedChallenge {
                mechanism: self.name,
                step: 1,
            });
        }
        Ok(())
    }
}

macro_rules! one_shot_mechanism {
    ($ty:ident) => {
        impl Mechanism for $ty {
            fn name(&self) -> &'static str {
                self.0.name
            }
            fn has_initial_response(&self) -> bool {
                true
            }
            fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
                self.0.initial_response()
            }
            fn respond(&mut self, _challenge: &[u8]) -> Result<Response, SaslError> {
                self.0.respond()
            }
            fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
                self.0.finish(success_data)
            }
        }
    };
}

/// EXTERNAL (RFC 4422 appendix A): the client is authenticated by the channel (a TLS client
/// certificate); it sends only the authorization id it wants (empty: the one the channel
/// implies).
#[derive(Debug)]
pub struct External(OneShot);

impl External {
    /// Sends `creds.authzid()`, or nothing.
    pub fn new(creds: &Credentials) -> External {
        External(OneShot {
            name: "EXTERNAL",
            message: creds.authzid().unwrap_or("").as_bytes().to_vec(),
            sent: false,
        })
    }
}
one_shot_mechanism!(External);

/// ANONYMOUS (RFC 4505): sends a trace string (the credentials' authentication id, from
/// [`Credentials::without_secret`]).
#[derive(Debug)]
pub struct Anonymous(OneShot);

impl Anonymous {
    /// Sends `creds.authcid()` as the trace; RFC 4505 limits it to 255 characters.
    pub fn new(creds: &Credentials) -> Result<Anonymous, SaslError> {
        if creds.authcid().chars().count() > 255 {
            return Err(SaslError::InvalidCredentials {
                field: "authentication id",
                reason: "ANONYMOUS trace longer than 255 characters",
            });
        }
        Ok(Anonymous(OneShot {
            name: "ANONYMOUS",
            message: creds.authcid().as_bytes().to_vec(),
            sent: false,
        }))
    }
}
one_shot_mechanism!(Anonymous);

#[cfg(test)]
mod tests {
    use super::*;

    /// The client of RFC 7628 section 4's examples (IMAP on server.example.com:143).
    fn rfc7628_client() -> OAuth {
        let creds = Credentials::with_token(
            "user@example.com",
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        )
        .unwrap();
        OAuth::new(
            OAuthKind::OAuthBearer,
            &creds,
            Some("server.example.com"),
            Some(143),
        )
        .unwrap()
    }

    /// RFC 7628 section 4.1: the example initial client response (IMAP, with host and port).
    #[test]
    fn rfc7628_initial_response() {
        let mut m = rfc7628_client();
        assert_eq!(
            &m.initial_response().unwrap().unwrap()[..],
            &b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"[..]
        );
        m.finish(None).unwrap();
    }

    /// RFC 7628 section 4.3: failed exchange; the client answers the error with 0x01.
    #[test]
    fn rfc7628_failed_exchange() {
        let mut m = rfc7628_client();
        m.initial_response().unwrap();
        let json = br#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#;
        assert_eq!(&m.respond(json).unwrap()[..], b"\x01");
        let e = m.failure_detail().unwrap();
        assert_eq!(e.status, "invalid_token");
        assert_eq!(e.scope.as_deref(), Some("example_scope"));
        assert!(matches!(
            m.respond(b"x"),
            Err(SaslError::UnexpectedChallenge { .. })
        ));
        assert!(matches!(m.finish(None), Err(SaslError::OAuth(e)) if e.status == "invalid_token"));
    }

    /// Google's XOAUTH2 documentation: `user=someuser@example.com^Aauth=Bearer ya29...^A^A`;
    /// the error challenge gets an empty response.
    #[test]
    fn xoauth2_format_and_error() {
        let creds = Credentials::with_token(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg",
        )
        .unwrap();
        let mut m = OAuth::new(OAuthKind::XOAuth2, &creds, None, None).unwrap();
        assert_eq!(
            &m.initial_response().unwrap().unwrap()[..],
            &b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01"[..]
        );
        let r = m
            .respond(br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#)
            .unwrap();
        assert!(r.is_empty());
        assert_eq!(m.failure_detail().unwrap().status, "401");
    }

    #[test]
    fn bad_tokens_refused() {
        let creds = Credentials::with_token("u", "a\x01b").unwrap();
        assert!(OAuth::new(OAuthKind::XOAuth2, &creds, None, None).is_err());
        let creds = Credentials::new("u", "pw").unwrap();
        assert!(matches!(
            OAuth::new(OAuthKind::OAuthBearer, &creds, None, None),
            Err(SaslError::MissingCredential { .. })
        ));
    }

    #[test]
    fn external_and_anonymous() {
        let creds = Credentials::without_secret("").unwrap();
        let mut m = External::new(&creds);
        assert_eq!(&m.initial_response().unwrap().unwrap()[..], b"");
        m.finish(None).unwrap();
        let creds = Credentials::without_secret("")
            .unwrap()
            .with_authzid("admin")
            .unwrap();
        let mut m = External::new(&creds);
        assert_eq!(&m.respond(b"").unwrap()[..], b"admin");
        assert!(m.respond(b"").is_err());
        // RFC 4505 section 4: trace "sirhc".
        let mut m = Anonymous::new(&Credentials::without_secret("sirhc").unwrap()).unwrap();
        assert_eq!(&m.initial_response().unwrap().unwrap()[..], b"sirhc");
        assert!(Anonymous::new(&Credentials::without_secret(&"x".repeat(256)).unwrap()).is_err());
    }
}
