//! The DIGEST-MD5 server (feature `server`), authentication only (`qop=auth`).

use rand::rngs::OsRng;
use rand::RngCore;

use crate::cram_md5::hex;
use crate::digest_md5::{
    directives, from_latin1, hash_form, push_quoted, push_token, DigestInput, MAX_DIGEST_RESPONSE,
    NONCE_COUNT,
};
use crate::scram::ct_eq;
use crate::server::{Authenticated, PasswordLookup, ServerMechanism, ServerStep};
use crate::SaslError;

const NAME: &str = "DIGEST-MD5";

fn malformed(reason: impl Into<String>) -> SaslError {
    SaslError::MalformedResponse {
        mechanism: NAME,
        reason: reason.into(),
    }
}

enum State {
    Start,
    ExpectResponse { nonce: String },
    Done,
}

/// The DIGEST-MD5 server (RFC 2831): one realm, a fresh nonce from the OS RNG,
/// `qop="auth"`, `charset=utf-8`, `algorithm=md5-sess`.
///
/// The digest-response must carry the server's nonce, `nc=00000001`, `qop=auth` (or none),
/// the server's realm (or none), and a digest-uri whose service is the server's (the host
/// part is not checked). The password is looked up under the user name as sent; the
/// user name, realm and password are hashed as RFC 2831 2.1.2.1 says (ISO-8859-1 when they
/// fit). On success the step carries `rspauth=...` for the client. Subsequent
/// authentication (an initial response) is not supported.
pub struct DigestMd5Server {
    lookup: PasswordLookup,
    realm: String,
    service: String,
    nonce: Option<String>,
    state: State,
    authenticated: Option<Authenticated>,
}

impl DigestMd5Server {
    /// A server checking passwords from `lookup`, offering `realm` and expecting digest-uris
    /// for `service` (`"smtp"`, `"imap"`, ...). A `"` or `\` in the realm is quoted.
    pub fn new(lookup: PasswordLookup, realm: &str, service: &str) -> DigestMd5Server {
        DigestMd5Server {
            lookup,
            realm: realm.to_owned(),
            service: service.to_owned(),
            nonce: None,
            state: State::Start,
            authenticated: None,
        }
    }

    /// Fixes the nonce. For tests against fixed vectors only.
    pub fn with_nonce(mut self, nonce: &str) -> DigestMd5Server {
        self.nonce = Some(nonce.to_owned());
        self
    }

    fn challenge(&mut self) -> ServerStep {
        let nonce = self.nonce.clone().unwrap_or_else(|| {
            let mut raw = [0u8; 16];
            OsRng.fill_bytes(&mut raw);
            hex(&raw)
        });
        let mut out = Vec::new();
        push_quoted(&mut out, "realm", self.realm.as_bytes());
        push_quoted(&mut out, "nonce", nonce.as_bytes());
        push_quoted(&mut out, "qop", b"auth");
        push_token(&mut out, "charset", "utf-8");
        push_token(&mut out, "algorithm", "md5-sess");
        self.state = State::ExpectResponse { nonce };
        ServerStep::Challenge(out)
    }

    fn verify(&mut self, msg: &[u8], nonce: &str) -> Result<ServerStep, SaslError> {
        if msg.len() >= MAX_DIGEST_RESPONSE {
            return Err(malformed("response of 4096 bytes or more"));
        }
        let list = directives(msg).map_err(malformed)?;
        let get = |name: &str, required: bool| -> Result<Option<Vec<u8>>, SaslError> {
            let mut found = list.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
            match (found.next(), found.next()) {
                (Some(_), Some(_)) => Err(malformed(format!("more than one {name}"))),
                (None, _) if required => Err(malformed(format!("no {name}"))),
                (v, _) => Ok(v.cloned()),
            }
        };
        let utf8 = match get("charset", false)? {
            None => false,
            Some(c) if c.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return Err(malformed("charset is not utf-8")),
        };
        let text = |b: Vec<u8>, what: &str| match utf8 {
            true => String::from_utf8(b).map_err(|_| malformed(format!("{what} is not UTF-8"))),
            false => Ok(from_latin1(&b)),
        };
        let user = text(get("username", true)?.unwrap_or_default(), "username")?;
        let realm = text(get("realm", false)?.unwrap_or_default(), "realm")?;
        let got_nonce = get("nonce", true)?.unwrap_or_default();
        let cnonce = get("cnonce", true)?.unwrap_or_default();
        let nc = get("nc", true)?.unwrap_or_default();
        let qop = get("qop", false)?;
        let digest_uri = get("digest-uri", true)?.unwrap_or_default();
        let response = get("response", true)?.unwrap_or_default();
        let authzid = match get("authzid", false)? {
            None => None,
            Some(z) => Some(String::from_utf8(z).map_err(|_| malformed("authzid is not UTF-8"))?),
        };
        if user.is_empty() {
            return Err(malformed("empty username"));
        }
        if !realm.is_empty() && realm != self.realm {
            return Err(malformed("realm is not the one offered"));
        }
        if !ct_eq(&got_nonce, nonce.as_bytes()) {
            return Err(malformed("nonce is not the one sent"));
        }
        if cnonce.is_empty() {
            return Err(malformed("empty cnonce"));
        }
        if nc != NONCE_COUNT.as_bytes() {
            return Err(malformed("nc is not 00000001"));
        }
        if qop.is_some_and(|q| !q.eq_ignore_ascii_case(b"auth")) {
            return Err(malformed("qop is not auth"));
        }
        let service_ok = digest_uri
            .split(|b| *b == b'/')
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case(self.service.as_bytes()));
        if !service_ok || !digest_uri.contains(&b'/') {
            return Err(malformed(format!(
                "digest-uri is not {}/host",
                self.service
            )));
        }
        if response.len() != 32 || !response.iter().all(u8::is_ascii_hexdigit) {
            return Err(malformed("response is not 32 hex digits"));
        }
        self.state = State::Done;
        let Some(password) = (self.lookup)(&user) else {
            return Ok(ServerStep::Failure);
        };
        // With charset=utf-8 every string has a hash form; without it, a stored password
        // outside ISO-8859-1 cannot have been used by the client.
        let (Some(user_h), Some(realm_h), Some(password_h)) = (
            hash_form(&user, utf8),
            hash_form(&realm, utf8),
            hash_form(password.expose(), utf8),
        ) else {
            return Ok(ServerStep::Failure);
        };
        let (expected, rspauth) = DigestInput {
            user: &user_h,
            realm: &realm_h,
            password: &password_h,
            nonce: nonce.as_bytes(),
            cnonce: &cnonce,
            authzid: authzid.as_deref().map(str::as_bytes),
            digest_uri: &digest_uri,
        }
        .compute();
        if !ct_eq(expected.as_bytes(), &response.to_ascii_lowercase()) {
            return Ok(ServerStep::Failure);
        }
        self.authenticated = Some(Authenticated {
            authcid: user,
            authzid,
            realm: (!realm.is_empty()).then_some(realm),
        });
        Ok(ServerStep::Success(Some(
            format!("rspauth={rspauth}").into_bytes(),
        )))
    }
}

impl ServerMechanism for DigestMd5Server {
    fn name(&self) -> &'static str {
        NAME
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match (std::mem::replace(&mut self.state, State::Done), response) {
            (State::Start, None) => Ok(self.challenge()),
            // SMTP clients may send an empty initial response ("=").
            (State::Start, Some([])) => Ok(self.challenge()),
            (State::Start, Some(_)) => Err(malformed(
                "initial response (subsequent authentication) not supported",
            )),
            (State::ExpectResponse { nonce }, Some(r)) => self.verify(r, &nonce),
            _ => Err(SaslError::OutOfOrder {
                mechanism: NAME,
                what: "step after the exchange ended, or without a response",
            }),
        }
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Credentials, DigestMd5, Mechanism, Secret};

    fn rfc_server() -> DigestMd5Server {
        let lookup = Arc::new(|u: &str| (u == "chris").then(|| Secret::new("secret")));
        DigestMd5Server::new(lookup, "elwood.innosoft.com", "imap").with_nonce("OA6MG9tEQGm2hh")
    }

    /// RFC 2831 section 4: the example response, verified by the server, which answers
    /// with the example rspauth.
    #[test]
    fn rfc2831_example_verified() {
        let mut s = rfc_server();
        let ServerStep::Challenge(c) = s.step(None).unwrap() else {
            panic!("no challenge")
        };
        assert_eq!(
            c,
            br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",charset=utf-8,algorithm=md5-sess"#
        );
        let resp = br#"charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth"#;
        assert_eq!(
            s.step(Some(resp)).unwrap(),
            ServerStep::Success(Some(b"rspauth=ea40f60335c427b5527b84dbabcdfffd".to_vec()))
        );
        let who = s.authenticated().unwrap();
        assert_eq!(who.authcid, "chris");
        assert_eq!(who.realm.as_deref(), Some("elwood.innosoft.com"));
        // One wrong digit: failure.
        let mut s = rfc_server();
        s.step(None).unwrap();
        let wrong = String::from_utf8(resp.to_vec())
            .unwrap()
            .replace("d388dad9", "d388dad8");
        assert_eq!(s.step(Some(wrong.as_bytes())).unwrap(), ServerStep::Failure);
        assert!(s.authenticated().is_none());
    }

    #[test]
    fn bad_responses_are_errors() {
        let good = r#"charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth"#;
        let cases = [
            good.replace("nonce=\"OA6MG9tEQGm2hh\"", "nonce=\"other\""),
            good.replace("nc=00000001", "nc=00000002"),
            good.replace("qop=auth", "qop=auth-int"),
            good.replace("imap/", "smtp/"),
            good.replace("\"imap/elwood.innosoft.com\"", "imap"),
            good.replace("realm=\"elwood.innosoft.com\"", "realm=\"other\""),
            good.replace(",response=d388dad90d4bbd760a152321f2143af7", ""),
            good.replace("d388dad90d4bbd760a152321f2143af7", "d388"),
            good.replace("username=\"chris\"", "username=\"\""),
            good.replace("charset=utf-8", "charset=latin1"),
            format!("{good},username=\"x\""),
            format!("{good},x=\"unterminated"),
            format!("{good},x=\"{}\"", "y".repeat(MAX_DIGEST_RESPONSE)),
        ];
        for c in cases {
            let mut s = rfc_server();
            s.step(None).unwrap();
            assert!(
                matches!(
                    s.step(Some(c.as_bytes())),
                    Err(SaslError::MalformedResponse { .. })
                ),
                "{c}"
            );
        }
        let mut s = rfc_server();
        assert!(s.step(Some(b"username=\"chris\"")).is_err());
    }

    #[test]
    fn client_and_server_with_latin1_and_wider_passwords() {
        for (user, pw) in [
            ("caf\u{e9}", "s\u{e9}cret"),
            ("\u{4e2d}", "\u{4e2d}\u{e9}"),
            ("a", "b"),
        ] {
            let creds = Credentials::new(user, pw).unwrap();
            let mut c = DigestMd5::new(&creds, "smtp", "localhost", None).unwrap();
            let (u, p) = (user.to_owned(), pw.to_owned());
            let lookup = Arc::new(move |n: &str| (n == u).then(|| Secret::new(p.clone())));
            let mut s = DigestMd5Server::new(lookup, "localhost", "smtp");
            let ServerStep::Challenge(ch) = s.step(None).unwrap() else {
                panic!()
            };
            let r = c.respond(&ch).unwrap();
            let ServerStep::Success(Some(data)) = s.step(Some(&r)).unwrap() else {
                panic!("{user}")
            };
            // As SMTP does it: the data as a challenge, an empty answer, then success.
            assert!(c.respond(&data).unwrap().is_empty());
            c.finish(None).unwrap();
            assert_eq!(s.authenticated().unwrap().authcid, user);
        }
    }
}
