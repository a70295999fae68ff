//! DIGEST-MD5 (RFC 2831; moved to Historic by RFC 6331, still offered by Dovecot and Cyrus
//! SASL): authentication only (`qop=auth`), no integrity or confidentiality layer.

use md5::{Digest, Md5};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::cram_md5::hex;
use crate::mechanism::{response, Response};
use crate::scram::ct_eq;
use crate::{Credentials, Mechanism, SaslError, Secret};

const NAME: &str = "DIGEST-MD5";

/// The largest digest-challenge accepted: RFC 2831 section 2.1.1 says it MUST be less than
/// 2048 bytes.
pub const MAX_DIGEST_CHALLENGE: usize = 2048;

/// The largest digest-response a server accepts: RFC 2831 section 2.1.2 says it MUST be less
/// than 4096 bytes.
pub const MAX_DIGEST_RESPONSE: usize = 4096;

/// The only nonce count this crate sends or accepts: one authentication per nonce.
pub(crate) const NONCE_COUNT: &str = "00000001";

/// Parses an RFC 2831 directive list: `name=value` elements, values tokens or quoted
/// strings (`\` quotes the next byte), separated by commas with optional white space, empty
/// elements allowed. Names are returned lower-case; values unquoted, as raw bytes.
pub(crate) fn directives(input: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    fn is_separator(b: u8) -> bool {
        b"()<>@,;:\\\"/[]?={} \t".contains(&b)
    }
    fn is_token(b: u8) -> bool {
        (0x21..0x7f).contains(&b) && !is_separator(b)
    }
    let lws = |i: &mut usize| {
        while input.get(*i).is_some_and(|b| b" \t\r\n".contains(b)) {
            *i += 1;
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        lws(&mut i);
        match input.get(i) {
            None => return Ok(out),
            Some(b',') => {
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let start = i;
        while input.get(i).copied().is_some_and(is_token) {
            i += 1;
        }
        if i == start {
            return Err(format!("expected a directive name at byte {i}"));
        }
        let name = String::from_utf8_lossy(&input[start..i]).to_ascii_lowercase();
        lws(&mut i);
        if input.get(i) != Some(&b'=') {
            return Err(format!("directive {name:?} has no '='"));
        }
        i += 1;
        lws(&mut i);
        let mut value = Vec::new();
        if input.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match input.get(i) {
                    None => return Err(format!("unterminated quoted string in {name:?}")),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let &b = input
                            .get(i + 1)
                            .ok_or_else(|| format!("unterminated quoted string in {name:?}"))?;
                        value.push(b);
                        i += 2;
                    }
                    Some(0) => return Err(format!("NUL in {name:?}")),
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            i += 1;
        } else {
            let start = i;
            while input.get(i).copied().is_some_and(is_token) {
                i += 1;
            }
            if i == start {
                return Err(format!("directive {name:?} has no value"));
            }
            value.extend_from_slice(&input[start..i]);
        }
        out.push((name, value));
        lws(&mut i);
        match input.get(i) {
            None => return Ok(out),
            Some(b',') => i += 1,
            Some(_) => return Err(format!("expected ',' after directive at byte {i}")),
        }
    }
}

/// Appends `name="value"` with `"` and `\` quoted.
pub(crate) fn push_quoted(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends `name=token`.
pub(crate) fn push_token(out: &mut Vec<u8>, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value.as_bytes());
}

/// `s` in ISO-8859-1, if every character fits.
pub(crate) fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Bytes read as ISO-8859-1.
pub(crate) fn from_latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// The bytes that go into the hash for a user name, realm or password (RFC 2831 2.1.2.1):
/// with `charset=utf-8`, ISO-8859-1 when every character fits and UTF-8 otherwise; without
/// it, ISO-8859-1 (`None` if a character does not fit).
pub(crate) fn hash_form(s: &str, utf8: bool) -> Option<Zeroizing<Vec<u8>>> {
    match latin1(s) {
        Some(l) => Some(Zeroizing::new(l)),
        None if utf8 => Some(Zeroizing::new(s.as_bytes().to_vec())),
        None => None,
    }
}

/// The inputs of the response and rspauth values (RFC 2831 2.1.2.1), `qop=auth` only.
pub(crate) struct DigestInput<'a> {
    /// username, realm and password, already in their hash form ([`hash_form`]).
    pub(crate) user: &'a [u8],
    pub(crate) realm: &'a [u8],
    pub(crate) password: &'a [u8],
    pub(crate) nonce: &'a [u8],
    pub(crate) cnonce: &'a [u8],
    pub(crate) authzid: Option<&'a [u8]>,
    pub(crate) digest_uri: &'a [u8],
}

impl DigestInput<'_> {
    /// (response, rspauth), lower-case hex.
    pub(crate) fn compute(&self) -> (String, String) {
        let mut inner = Md5::new();
        for part in [self.user, b":", self.realm, b":", self.password] {
            inner.update(part);
        }
        let inner = Zeroizing::new(<[u8; 16]>::from(inner.finalize()));
        let mut a1 = Md5::new();
        a1.update(&inner[..]);
        for part in [b":", self.nonce, b":", self.cnonce] {
            a1.update(part);
        }
        if let Some(z) = self.authzid {
            a1.update(b":");
            a1.update(z);
        }
        let ha1 = Zeroizing::new(hex(&a1.finalize()));
        let kd = |a2_prefix: &[u8]| {
            let ha2 = hex(&Md5::new()
                .chain_update(a2_prefix)
                .chain_update(self.digest_uri)
                .finalize());
            let mut k = Md5::new();
            for part in [
                ha1.as_bytes(),
                b":",
                self.nonce,
                b":",
                NONCE_COUNT.as_bytes(),
                b":",
                self.cnonce,
                b":auth:",
                ha2.as_bytes(),
            ] {
                k.update(part);
            }
            hex(&k.finalize())
        };
        (kd(b"AUTHENTICATE:"), kd(b":"))
    }
}

/// A server's digest-challenge (RFC 2831 section 2.1.1), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// The realms offered, in order (possibly none).
    pub realms: Vec<String>,
    /// The nonce, as sent.
    pub nonce: Vec<u8>,
    /// The quality-of-protection options (`auth` when the directive is absent).
    pub qop: Vec<String>,
    /// True when the server sent `charset=utf-8`.
    pub utf8: bool,
    /// True when the server sent `stale=true`.
    pub stale: bool,
}

fn bad(reason: impl Into<String>) -> SaslError {
    SaslError::MalformedChallenge {
        mechanism: NAME,
        reason: reason.into(),
    }
}

impl DigestChallenge {
    /// Parses a digest-challenge: at most [`MAX_DIGEST_CHALLENGE`] bytes, exactly one
    /// `nonce` and `algorithm=md5-sess`, at most one `qop`, `charset` (`utf-8` only),
    /// `stale` and `maxbuf`. Realms are UTF-8 with `charset=utf-8`, ISO-8859-1 without.
    /// Unknown directives are ignored.
    ///
    /// ```
    /// use sasl_mechs::DigestChallenge;
    /// let c = DigestChallenge::parse(br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#)?;
    /// assert_eq!(c.realms, ["elwood.innosoft.com"]);
    /// assert_eq!(c.nonce, b"OA6MG9tEQGm2hh");
    /// assert!(c.utf8);
    /// # Ok::<(), sasl_mechs::SaslError>(())
    /// ```
    pub fn parse(challenge: &[u8]) -> Result<DigestChallenge, SaslError> {
        if challenge.len() >= MAX_DIGEST_CHALLENGE {
            return Err(bad("challenge of 2048 bytes or more"));
        }
        let list = directives(challenge).map_err(bad)?;
        let mut raw_realms = Vec::new();
        let (mut nonce, mut qop, mut charset, mut algorithm, mut stale, mut maxbuf) =
            (None, None, None, None, None, None);
        for (name, value) in list {
            let slot = match name.as_str() {
                "realm" => {
                    raw_realms.push(value);
                    continue;
                }
                "nonce" => &mut nonce,
                "qop" => &mut qop,
                "charset" => &mut charset,
                "algorithm" => &mut algorithm,
                "stale" => &mut stale,
                "maxbuf" => &mut maxbuf,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(bad(format!("more than one {name} directive")));
            }
        }
        let utf8 = match charset {
            None => false,
            Some(c) if c.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return Err(bad("charset is not utf-8")),
        };
        match algorithm {
            Some(a) if a.eq_ignore_ascii_case(b"md5-sess") => {}
            Some(_) => return Err(bad("algorithm is not md5-sess")),
            None => return Err(bad("no algorithm directive")),
        }
        let nonce = nonce
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("no nonce"))?;
        let qop = match qop {
            None => vec!["auth".to_owned()],
            Some(q) => String::from_utf8_lossy(&q)
                .split(',')
                .map(|o| o.trim().to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
        };
        let realms = raw_realms
            .into_iter()
            .map(|r| match utf8 {
                true => String::from_utf8(r).map_err(|_| bad("realm is not UTF-8")),
                false => Ok(from_latin1(&r)),
            })
            .collect::<Result<_, _>>()?;
        Ok(DigestChallenge {
            realms,
            nonce,
            qop,
            utf8,
            stale: stale.is_some_and(|s| s.eq_ignore_ascii_case(b"true")),
        })
    }
}

#[derive(Debug, PartialEq)]
enum State {
    ExpectChallenge,
    /// Sent the digest-response; waits for `rspauth` (as a challenge or success data).
    ExpectRspauth {
        rspauth: String,
    },
    /// The server's rspauth checked out.
    Verified,
    /// An error ended the exchange.
    Failed,
}

/// The DIGEST-MD5 client (RFC 2831), authentication only.
///
/// The server speaks first. The response carries `qop=auth`, `nc=00000001`, a 16-byte
/// client nonce from the OS RNG, the digest-uri `service/host` (e.g. `smtp/mail.example.com`),
/// the first realm the server offered (or the one set with
/// [`ClientOptions::digest_realm`](crate::ClientOptions::digest_realm)), and `charset=utf-8`
/// when the server offered it. As RFC 2831 2.1.2.1 says, the user name, realm and password
/// are hashed in ISO-8859-1 when all their characters fit (in UTF-8 otherwise, which needs
/// `charset=utf-8`). The server proves itself with `rspauth`, checked in constant time
/// whether it comes as a second challenge (answered with an empty response) or with the
/// success; a wrong or missing one is [`SaslError::ServerNotAuthenticated`].
pub struct DigestMd5 {
    user: String,
    authzid: Option<String>,
    password: Secret,
    digest_uri: String,
    realm: Option<String>,
    cnonce: Option<String>,
    state: State,
}

impl std::fmt::Debug for DigestMd5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestMd5")
            .field("user", &self.user)
            .field("authzid", &self.authzid)
            .field("password", &self.password)
            .field("digest_uri", &self.digest_uri)
            .field("realm", &self.realm)
            .finish()
    }
}

impl DigestMd5 {
    /// Builds the client; needs a password. `service` and `host` make the digest-uri
    /// (`smtp` and the server's host name for SMTP, `imap` for IMAP); `realm` overrides the
    /// realm the server offers.
    ///
    /// ```
    /// use sasl_mechs::{Credentials, DigestMd5, Mechanism};
    /// let creds = Credentials::new("chris", "secret")?;
    /// // RFC 2831 section 4.
    /// let mut m = DigestMd5::new(&creds, "imap", "elwood.innosoft.com", None)?
    ///     .with_cnonce("OA6MHXh6VqTrRk");
    /// let r = m.respond(br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#)?;
    /// assert!(std::str::from_utf8(&r).unwrap().contains("response=d388dad90d4bbd760a152321f2143af7"));
    /// assert!(m.respond(b"rspauth=ea40f60335c427b5527b84dbabcdfffd")?.is_empty());
    /// m.finish(None)?;
    /// # Ok::<(), sasl_mechs::SaslError>(())
    /// ```
    pub fn new(
        creds: &Credentials,
        service: &str,
        host: &str,
        realm: Option<&str>,
    ) -> Result<DigestMd5, SaslError> {
        let password = creds.password().ok_or(SaslError::MissingCredential {
            mechanism: NAME,
            needs: "a password",
        })?;
        let bad_uri_part = |s: &str| {
            s.is_empty()
                || s.bytes()
                    .any(|b| b <= 0x20 || b == b'"' || b == b'\\' || b == b'/' || b == 0x7f)
        };
        if bad_uri_part(service) || bad_uri_part(host) {
            return Err(SaslError::InvalidCredentials {
                field: "digest-uri",
                reason: "service or host is empty or holds a space, control character, quote, backslash or slash",
            });
        }
        Ok(DigestMd5 {
            user: creds.authcid().to_owned(),
            authzid: creds.authzid().map(str::to_owned),
            password: password.clone(),
            digest_uri: format!("{service}/{host}"),
            realm: realm.map(str::to_owned),
            cnonce: None,
            state: State::ExpectChallenge,
        })
    }

    /// Fixes the client nonce. For tests against fixed vectors only.
    pub fn with_cnonce(mut self, cnonce: &str) -> DigestMd5 {
        self.cnonce = Some(cnonce.to_owned());
        self
    }

    fn answer(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
        let c = DigestChallenge::parse(challenge)?;
        if !c.qop.iter().any(|q| q == "auth") {
            return Err(bad("the server does not offer qop=auth"));
        }
        let realm = self
            .realm
            .clone()
            .or_else(|| c.realms.first().cloned())
            .unwrap_or_default();
        let not_latin1 = |field: &'static str| SaslError::InvalidCredentials {
            field,
            reason:
                "holds characters outside ISO-8859-1 and the server did not offer charset=utf-8",
        };
        let user = hash_form(&self.user, c.utf8).ok_or_else(|| not_latin1("authentication id"))?;
        let realm_h = hash_form(&realm, c.utf8).ok_or_else(|| not_latin1("realm"))?;
        let password =
            hash_form(self.password.expose(), c.utf8).ok_or_else(|| not_latin1("password"))?;
        let cnonce = self.cnonce.clone().unwrap_or_else(|| {
            let mut raw = [0u8; 16];
            OsRng.fill_bytes(&mut raw);
            hex(&raw)
        });
        let (resp, rspauth) = DigestInput {
            user: &user,
            realm: &realm_h,
            password: &password,
            nonce: &c.nonce,
            cnonce: cnonce.as_bytes(),
            authzid: self.authzid.as_deref().map(str::as_bytes),
            digest_uri: self.digest_uri.as_bytes(),
        }
        .compute();
        // On the wire: UTF-8 with charset=utf-8, ISO-8859-1 without (checked above).
        let wire = |s: &str| match c.utf8 {
            true => s.as_bytes().to_vec(),
            false => latin1(s).unwrap_or_default(),
        };
        let mut out = Vec::new();
        if c.utf8 {
            push_token(&mut out, "charset", "utf-8");
        }
        push_quoted(&mut out, "username", &wire(&self.user));
        if !realm.is_empty() {
            push_quoted(&mut out, "realm", &wire(&realm));
        }
        push_quoted(&mut out, "nonce", &c.nonce);
        push_token(&mut out, "nc", NONCE_COUNT);
        push_quoted(&mut out, "cnonce", cnonce.as_bytes());
        push_quoted(&mut out, "digest-uri", self.digest_uri.as_bytes());
        push_token(&mut out, "response", &resp);
        push_token(&mut out, "qop", "auth");
        if let Some(z) = &self.authzid {
            push_quoted(&mut out, "authzid", z.as_bytes());
        }
        self.state = State::ExpectRspauth { rspauth };
        Ok(response(out))
    }

    /// Checks the server's `rspauth=...` message.
    fn verify(&mut self, msg: &[u8]) -> Result<(), SaslError> {
        let State::ExpectRspauth { rspauth } = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: 2,
            });
        };
        if msg.len() >= MAX_DIGEST_CHALLENGE {
            return Err(bad("rspauth message of 2048 bytes or more"));
        }
        let list = directives(msg).map_err(bad)?;
        let mut found = list.iter().filter(|(n, _)| n == "rspauth");
        let (Some((_, value)), None) = (found.next(), found.next()) else {
            return Err(SaslError::ServerNotAuthenticated {
                mechanism: NAME,
                reason: "no single rspauth directive",
            });
        };
        if !ct_eq(&value.to_ascii_lowercase(), rspauth.as_bytes()) {
            return Err(SaslError::ServerNotAuthenticated {
                mechanism: NAME,
                reason: "wrong rspauth",
            });
        }
        self.state = State::Verified;
        Ok(())
    }
}

impl Mechanism for DigestMd5 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
        match self.state {
            State::ExpectChallenge => self.answer(challenge).inspect_err(|_| {
                self.state = State::Failed;
            }),
            State::ExpectRspauth { .. } => {
                self.verify(challenge)?;
                Ok(response(Vec::new()))
            }
            State::Verified | State::Failed => Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: 2,
            }),
        }
    }

    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        match (&self.state, success_data) {
            (State::Verified, None) => Ok(()),
            (State::Verified, Some([])) => Ok(()),
            (State::Verified, Some(_)) => Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: 3,
            }),
            (State::ExpectRspauth { .. }, Some(d)) if !d.is_empty() => self.verify(d),
            (State::ExpectRspauth { .. }, _) => {
                self.state = State::Failed;
                Err(SaslError::ServerNotAuthenticated {
                    mechanism: NAME,
                    reason: "success without rspauth",
                })
            }
            (State::ExpectChallenge | State::Failed, _) => {
                Err(SaslError::PrematureSuccess { mechanism: NAME })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 section 4, the IMAP example.
    const RFC_CHALLENGE: &[u8] = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;

    fn rfc_client() -> DigestMd5 {
        let creds = Credentials::new("chris", "secret").unwrap();
        DigestMd5::new(&creds, "imap", "elwood.innosoft.com", None)
            .unwrap()
            .with_cnonce("OA6MHXh6VqTrRk")
    }

    #[test]
    fn rfc2831_example() {
        let mut m = rfc_client();
        assert_eq!(m.initial_response().unwrap(), None);
        let r = m.respond(RFC_CHALLENGE).unwrap();
        let got = directives(&r).unwrap();
        let get = |n: &str| {
            got.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        };
        assert_eq!(
            get("response").as_deref(),
            Some("d388dad90d4bbd760a152321f2143af7")
        );
        assert_eq!(get("username").as_deref(), Some("chris"));
        assert_eq!(get("realm").as_deref(), Some("elwood.innosoft.com"));
        assert_eq!(get("nonce").as_deref(), Some("OA6MG9tEQGm2hh"));
        assert_eq!(get("cnonce").as_deref(), Some("OA6MHXh6VqTrRk"));
        assert_eq!(get("nc").as_deref(), Some("00000001"));
        assert_eq!(get("qop").as_deref(), Some("auth"));
        assert_eq!(
            get("digest-uri").as_deref(),
            Some("imap/elwood.innosoft.com")
        );
        assert_eq!(get("charset").as_deref(), Some("utf-8"));
        assert_eq!(get("authzid"), None);
        let r2 = m
            .respond(b"rspauth=ea40f60335c427b5527b84dbabcdfffd")
            .unwrap();
        assert!(r2.is_empty());
        m.finish(None).unwrap();
        assert!(matches!(
            m.respond(b""),
            Err(SaslError::UnexpectedChallenge { .. })
        ));
    }

    #[test]
    fn rspauth_as_success_data() {
        let mut m = rfc_client();
        m.respond(RFC_CHALLENGE).unwrap();
        m.finish(Some(b"rspauth=ea40f60335c427b5527b84dbabcdfffd"))
            .unwrap();
    }

    #[test]
    fn wrong_or_missing_rspauth_is_a_failure() {
        for second in [
            &b"rspauth=ea40f60335c427b5527b84dbabcdfffe"[..],
            b"rspauth=\"\"",
            b"realm=\"x\"",
            b"rspauth=ea40f60335c427b5527b84dbabcdfffd,rspauth=ea40f60335c427b5527b84dbabcdfffd",
        ] {
            let mut m = rfc_client();
            m.respond(RFC_CHALLENGE).unwrap();
            assert!(
                matches!(
                    m.respond(second),
                    Err(SaslError::ServerNotAuthenticated { .. })
                ),
                "{:?}",
                String::from_utf8_lossy(second)
            );
            assert!(m.finish(None).is_err());
        }
        let mut m = rfc_client();
        m.respond(RFC_CHALLENGE).unwrap();
        assert!(matches!(
            m.finish(None),
            Err(SaslError::ServerNotAuthenticated { .. })
        ));
        let mut m = rfc_client();
        assert!(matches!(
            m.finish(None),
            Err(SaslError::PrematureSuccess { .. })
        ));
    }

    #[test]
    fn parser_rules() {
        // Quoted pairs, white space, empty elements, names in any case, several realms.
        let c = DigestChallenge::parse(
            b" , Realm = \"a\\\"b\\\\c\" ,, realm=\"second\",NONCE=\"n\\x\",qop=\"auth,auth-int\" , ALGORITHM=MD5-SESS,stale=true,maxbuf=1024,future=\"x\"",
        )
        .unwrap();
        assert_eq!(c.realms, ["a\"b\\c", "second"]);
        assert_eq!(c.nonce, b"nx");
        assert_eq!(c.qop, ["auth", "auth-int"]);
        assert!(!c.utf8 && c.stale);
        // No qop: auth. Realm in ISO-8859-1 without charset, UTF-8 with it.
        let c =
            DigestChallenge::parse(b"realm=\"caf\xe9\",nonce=\"n\",algorithm=md5-sess").unwrap();
        assert_eq!(c.qop, ["auth"]);
        assert_eq!(c.realms, ["caf\u{e9}"]);
        let c = DigestChallenge::parse(
            "realm=\"caf\u{e9}\",nonce=\"n\",algorithm=md5-sess,charset=utf-8".as_bytes(),
        )
        .unwrap();
        assert_eq!(c.realms, ["caf\u{e9}"]);
        for bad in [
            &b""[..],
            b"nonce=\"n\"",
            b"nonce=\"n\",algorithm=md5",
            b"algorithm=md5-sess",
            b"nonce=\"\",algorithm=md5-sess",
            b"nonce=\"a\",nonce=\"b\",algorithm=md5-sess",
            b"nonce=\"a\",algorithm=md5-sess,algorithm=md5-sess",
            b"nonce=\"a\",algorithm=md5-sess,charset=iso-8859-1",
            b"nonce=\"a\",algorithm=md5-sess,charset=utf-8,charset=utf-8",
            b"nonce=\"a\",algorithm=md5-sess,qop=auth,qop=auth",
            b"nonce=\"a,algorithm=md5-sess",
            b"nonce=\"a\\",
            b"nonce=\"a\" x,algorithm=md5-sess",
            b"nonce,algorithm=md5-sess",
            b"nonce=,algorithm=md5-sess",
            b"=x",
            b"nonce=\"a\0\",algorithm=md5-sess",
            b"realm=\"\xff\",nonce=\"a\",algorithm=md5-sess,charset=utf-8",
        ] {
            assert!(
                matches!(
                    DigestChallenge::parse(bad),
                    Err(SaslError::MalformedChallenge { .. })
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"nonce=\"a\",algorithm=md5-sess,x=\"".to_vec();
        long.resize(MAX_DIGEST_CHALLENGE, b'y');
        long.push(b'"');
        assert!(DigestChallenge::parse(&long).is_err());
        // Only auth-int / auth-conf offered: this client cannot answer.
        let mut m = rfc_client();
        assert!(m
            .respond(b"nonce=\"a\",algorithm=md5-sess,qop=\"auth-conf\"")
            .is_err());
    }

    /// RFC 2831 2.1.2.1: with charset=utf-8, strings that fit in ISO-8859-1 are hashed in
    /// it. "caf\u{e9}" and "s\u{e9}cret" must hash as their one-byte-per-character form,
    /// "\u{4e2d}" (outside ISO-8859-1) as UTF-8.
    #[test]
    fn charset_conversion() {
        let input = |user: &[u8], pw: &[u8]| {
            DigestInput {
                user,
                realm: b"r",
                password: pw,
                nonce: b"n",
                cnonce: b"c",
                authzid: None,
                digest_uri: b"smtp/h",
            }
            .compute()
            .0
        };
        let respond = |user: &str, pw: &str, utf8: bool| {
            let creds = Credentials::new(user, pw).unwrap();
            let mut m = DigestMd5::new(&creds, "smtp", "h", None)
                .unwrap()
                .with_cnonce("c");
            let ch = format!(
                "realm=\"r\",nonce=\"n\",algorithm=md5-sess{}",
                if utf8 { ",charset=utf-8" } else { "" }
            );
            let r = m.respond(ch.as_bytes())?;
            let d = directives(&r).unwrap();
            Ok::<_, SaslError>((
                String::from_utf8(d.iter().find(|(k, _)| k == "response").unwrap().1.clone())
                    .unwrap(),
                d.iter().find(|(k, _)| k == "username").unwrap().1.clone(),
            ))
        };
        let (r, wire_user) = respond("caf\u{e9}", "s\u{e9}cret", true).unwrap();
        assert_eq!(r, input(b"caf\xe9", b"s\xe9cret"));
        assert_ne!(r, input("caf\u{e9}".as_bytes(), "s\u{e9}cret".as_bytes()));
        assert_eq!(wire_user, "caf\u{e9}".as_bytes(), "UTF-8 on the wire");
        let (r, _) = respond("caf\u{e9}", "\u{4e2d}", true).unwrap();
        assert_eq!(r, input(b"caf\xe9", "\u{4e2d}".as_bytes()));
        // Without charset=utf-8: ISO-8859-1 on the wire too, and no way to send U+4E2D.
        let (r, wire_user) = respond("caf\u{e9}", "s\u{e9}cret", false).unwrap();
        assert_eq!(r, input(b"caf\xe9", b"s\xe9cret"));
        assert_eq!(wire_user, b"caf\xe9");
        assert!(matches!(
            respond("u", "\u{4e2d}", false),
            Err(SaslError::InvalidCredentials {
                field: "password",
                ..
            })
        ));
    }

    #[test]
    fn authzid_and_quoting_in_the_response() {
        let creds = Credentials::new("a\"b", "pw")
            .unwrap()
            .with_authzid("z\\")
            .unwrap();
        let mut m = DigestMd5::new(&creds, "smtp", "mx.example.test", Some("R")).unwrap();
        let r = m
            .respond(b"realm=\"offered\",nonce=\"n\",algorithm=md5-sess")
            .unwrap();
        let d = directives(&r).unwrap();
        let get = |n: &str| d.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("username").unwrap(), b"a\"b");
        assert_eq!(get("authzid").unwrap(), b"z\\");
        assert_eq!(get("realm").unwrap(), b"R");
        assert_eq!(get("digest-uri").unwrap(), b"smtp/mx.example.test");
        assert_eq!(get("cnonce").unwrap().len(), 32);
        assert!(DigestMd5::new(&creds, "smtp", "a b", None).is_err());
        assert!(DigestMd5::new(&creds, "", "h", None).is_err());
    }
}
