//! CRAM-MD5 (RFC 2195): `user SP hex(HMAC-MD5(password, challenge))`.

use hmac::{Hmac, Mac};
use md5::Md5;

use crate::mechanism::{response, Response};
use crate::{Credentials, Mechanism, SaslError, Secret};

const NAME: &str = "CRAM-MD5";

/// Lower-case hex of `HMAC-MD5(key, data)`: the digest part of a CRAM-MD5 response.
pub(crate) fn hmac_md5_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC accepts keys of any length (longer ones are hashed first), so this cannot fail.
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    hex(&mac.finalize().into_bytes())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The CRAM-MD5 client (RFC 2195). The server speaks first with a challenge; the one
/// response is the user name, a space, and the keyed digest in lower-case hex. The server
/// does not prove itself. No authorization id.
#[derive(Debug)]
pub struct CramMd5 {
    authcid: String,
    password: Secret,
    answered: bool,
}

impl CramMd5 {
    /// Builds the client; needs a password and no authorization id.
    pub fn new(creds: &Credentials) -> Result<CramMd5, SaslError> {
        let password = creds.password_without_authzid(NAME)?;
        Ok(CramMd5 {
            authcid: creds.authcid().to_owned(),
            password: password.clone(),
            answered: false,
        })
    }
}

impl Mechanism for CramMd5 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
        if self.answered {
            return Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: 1,
            });
        }
        if challenge.is_empty() {
            return Err(SaslError::MalformedChallenge {
                mechanism: NAME,
                reason: "empty challenge".into(),
            });
        }
        let digest = hmac_md5_hex(self.password.expose().as_bytes(), challenge);
        let mut out = Vec::with_capacity(self.authcid.len() + 33);
        out.extend_from_slice(self.authcid.as_bytes());
        out.push(b' ');
        out.extend_from_slice(digest.as_bytes());
        self.answered = true;
        Ok(response(out))
    }

    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        if !self.answered {
            return Err(SaslError::PrematureSuccess { mechanism: NAME });
        }
        if success_data.is_some_and(|d| !d.is_empty()) {
            return Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: 1,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2195 section 2, the example exchange.
    #[test]
    fn rfc2195_example() {
        let creds = Credentials::new("tim", "tanstaaftanstaaf").unwrap();
        let mut m = CramMd5::new(&creds).unwrap();
        assert!(m.initial_response().unwrap().is_none());
        assert!(matches!(
            m.finish(None),
            Err(SaslError::PrematureSuccess { .. })
        ));
        let r = m
            .respond(b"<1896.697170952@postoffice.reston.mci.net>")
            .unwrap();
        assert_eq!(&r[..], b"tim b913a602c7eda7a495b4e6e7334d3890");
        assert!(matches!(
            m.respond(b"again"),
            Err(SaslError::UnexpectedChallenge { .. })
        ));
        m.finish(None).unwrap();
    }

    #[test]
    fn empty_challenge_refused() {
        let creds = Credentials::new("tim", "x").unwrap();
        let mut m = CramMd5::new(&creds).unwrap();
        assert!(matches!(
            m.respond(b""),
            Err(SaslError::MalformedChallenge { .. })
        ));
    }
}
