//! PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, in one message.

use crate::mechanism::{response, Response};
use crate::{Credentials, Mechanism, SaslError, Secret};

const NAME: &str = "PLAIN";

/// The PLAIN client (RFC 4616). Sends the password in clear.
#[derive(Debug)]
pub struct Plain {
    authzid: Option<String>,
    authcid: String,
    password: Secret,
    sent: bool,
    done: bool,
}

impl Plain {
    /// Builds the client; needs a password.
    pub fn new(creds: &Credentials) -> Result<Plain, SaslError> {
        let password = creds.password().ok_or(SaslError::MissingCredential {
            mechanism: NAME,
            needs: "a password",
        })?;
        if password.expose().is_empty() {
            return Err(SaslError::InvalidCredentials {
                field: "password",
                reason: "PLAIN needs a non-empty password (RFC 4616)",
            });
        }
        Ok(Plain {
            authzid: creds.authzid().map(str::to_owned),
            authcid: creds.authcid().to_owned(),
            password: password.clone(),
            sent: false,
            done: false,
        })
    }

    fn message(&mut self) -> Response {
        let mut out = Vec::with_capacity(
            self.authzid.as_ref().map_or(0, String::len)
                + self.authcid.len()
                + self.password.expose().len()
                + 2,
        );
        if let Some(z) = &self.authzid {
            out.extend_from_slice(z.as_bytes());
        }
        out.push(0);
        out.extend_from_slice(self.authcid.as_bytes());
        out.push(0);
        out.extend_from_slice(self.password.expose().as_bytes());
        self.sent = true;
        response(out)
    }
}

impl Mechanism for Plain {
    fn name(&self) -> &'static str {
        NAME
    }

    fn has_initial_response(&self) -> bool {
        true
    }

    fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
        if self.sent {
            return Err(SaslError::OutOfOrder {
                mechanism: NAME,
                what: "initial_response after the message was sent",
            });
        }
        Ok(Some(self.message()))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
        // Before the message is sent, the server's challenge is empty (RFC 4616 section 2);
        // after it, there is no further round. A non-empty challenge after our response
        // means the server expects something PLAIN has not got.
        if !self.sent {
            return Ok(self.message());
        }
        let _ = challenge;
        Err(SaslError::UnexpectedChallenge {
            mechanism: NAME,
            step: 1,
        })
    }

    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        if !self.sent {
            return Err(SaslError::PrematureSuccess { mechanism: NAME });
        }
        if success_data.is_some_and(|d| !d.is_empty()) {
            return Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: 1,
            });
        }
        self.done = true;
        Ok(())
    }

    fn sends_password_in_clear(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4616 section 4, both examples.
    #[test]
    fn rfc4616_examples() {
        let creds = Credentials::new("tim", "tanstaaftanstaaf").unwrap();
        let mut m = Plain::new(&creds).unwrap();
        assert_eq!(
            &m.initial_response().unwrap().unwrap()[..],
            b"\0tim\0tanstaaftanstaaf"
        );
        m.finish(None).unwrap();

        let creds = Credentials::new("Kurt", "xipj3plmq")
            .unwrap()
            .with_authzid("Ursel")
            .unwrap();
        let mut m = Plain::new(&creds).unwrap();
        assert_eq!(
            &m.initial_response().unwrap().unwrap()[..],
            b"Ursel\0Kurt\0xipj3plmq"
        );
    }

    #[test]
    fn without_initial_response_and_extra_rounds() {
        let creds = Credentials::new("tim", "tanstaaftanstaaf").unwrap();
        let mut m = Plain::new(&creds).unwrap();
        assert!(matches!(
            m.finish(None),
            Err(SaslError::PrematureSuccess { .. })
        ));
        assert_eq!(&m.respond(b"").unwrap()[..], b"\0tim\0tanstaaftanstaaf");
        assert!(matches!(
            m.respond(b"more?"),
            Err(SaslError::UnexpectedChallenge {
                mechanism: "PLAIN",
                ..
            })
        ));
        assert!(m.initial_response().is_err());
        assert!(m.finish(Some(b"x")).is_err());
        m.finish(Some(b"")).unwrap();
        assert!(m.sends_password_in_clear());
    }

    #[test]
    fn empty_password_and_missing_password_refused() {
        assert!(Plain::new(&Credentials::new("tim", "").unwrap()).is_err());
        assert!(matches!(
            Plain::new(&Credentials::with_token("tim", "t").unwrap()),
            Err(SaslError::MissingCredential { .. })
        ));
    }
}
