//! LOGIN (draft-murchison-sasl-login): the user name, then the password, one per challenge.

use crate::mechanism::{response, Response};
use crate::{Credentials, Mechanism, SaslError, Secret};

const NAME: &str = "LOGIN";

/// The LOGIN client. Answers by step, whatever the prompt text (`Username:`, `Password:`,
/// anything else, or empty): the first challenge gets the user name, the second the password,
/// a third is [`SaslError::UnexpectedChallenge`]. Sends the password in clear. No
/// authorization id: LOGIN cannot carry one, so building it with one is refused.
#[derive(Debug)]
pub struct Login {
    authcid: String,
    password: Secret,
    step: usize,
}

impl Login {
    /// Builds the client; needs a password and no authorization id.
    pub fn new(creds: &Credentials) -> Result<Login, SaslError> {
        let password = creds.password_without_authzid(NAME)?;
        Ok(Login {
            authcid: creds.authcid().to_owned(),
            password: password.clone(),
            step: 0,
        })
    }
}

impl Mechanism for Login {
    fn name(&self) -> &'static str {
        NAME
    }

    fn respond(&mut self, _prompt: &[u8]) -> Result<Response, SaslError> {
        let out = match self.step {
            0 => self.authcid.as_bytes().to_vec(),
            1 => self.password.expose().as_bytes().to_vec(),
            step => {
                return Err(SaslError::UnexpectedChallenge {
                    mechanism: NAME,
                    step,
                })
            }
        };
        self.step += 1;
        Ok(response(out))
    }

    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        if self.step < 2 {
            return Err(SaslError::PrematureSuccess { mechanism: NAME });
        }
        if success_data.is_some_and(|d| !d.is_empty()) {
            return Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: self.step,
            });
        }
        Ok(())
    }

    fn sends_password_in_clear(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_step_whatever_the_prompt() {
        for (p1, p2) in [
            (&b"Username:"[..], &b"Password:"[..]),
            (b"", b""),
            (b"Password:", b"Username:"),
            (b"\xff\x00garbage", b"User Name\0"),
        ] {
            let creds = Credentials::new("tim", "tanstaaf").unwrap();
            let mut m = Login::new(&creds).unwrap();
            assert!(!m.has_initial_response());
            assert_eq!(m.initial_response().unwrap(), None);
            assert_eq!(&m.respond(p1).unwrap()[..], b"tim");
            assert!(matches!(
                m.finish(None),
                Err(SaslError::PrematureSuccess { .. })
            ));
            assert_eq!(&m.respond(p2).unwrap()[..], b"tanstaaf");
            assert!(matches!(
                m.respond(b"Again:"),
                Err(SaslError::UnexpectedChallenge {
                    mechanism: "LOGIN",
                    step: 2
                })
            ));
            m.finish(None).unwrap();
        }
    }

    #[test]
    fn authzid_refused() {
        let creds = Credentials::new("tim", "x")
            .unwrap()
            .with_authzid("z")
            .unwrap();
        assert!(Login::new(&creds).is_err());
    }
}
