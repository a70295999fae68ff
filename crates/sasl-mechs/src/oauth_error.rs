//! The error JSON an OAuth server sends in an OAUTHBEARER or XOAUTH2 challenge
//! (RFC 7628 section 3.2.2), and a small bounded parser for it.

use std::fmt;

/// The largest error JSON accepted, in bytes. Real ones are under 300.
pub const MAX_ERROR_JSON: usize = 16 * 1024;

/// Nesting depth allowed inside skipped values.
const MAX_DEPTH: usize = 16;

/// The server's OAuth error report, from the JSON object in its failure challenge.
///
/// ```
/// use sasl_mechs::OAuthError;
/// let e = OAuthError::parse(br#"{"status":"invalid_token","scope":"example_scope"}"#)?;
/// assert_eq!(e.status, "invalid_token");
/// assert_eq!(e.scope.as_deref(), Some("example_scope"));
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `status`: an RFC 6749/6750 error code such as `invalid_token`, or an HTTP status such as
    /// `401` (XOAUTH2).
    pub status: String,
    /// `scope`: the scope the token would need, if given.
    pub scope: Option<String>,
    /// `openid-configuration`: where to discover the authorization server, if given.
    pub openid_configuration: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OAuth token rejected: status {:?}", self.status)?;
        if let Some(scope) = &self.scope {
            write!(f, ", scope {scope:?}")?;
        }
        Ok(())
    }
}

impl OAuthError {
    /// Parses the error JSON. Returns a short description of the problem if it is not a JSON
    /// object with a string `status` member. Unknown members are skipped; input longer than
    /// [`MAX_ERROR_JSON`] or nested deeper than 16 levels is refused.
    pub fn parse(json: &[u8]) -> Result<OAuthError, String> {
        if json.len() > MAX_ERROR_JSON {
            return Err(format!("error JSON longer than {MAX_ERROR_JSON} bytes"));
        }
        let mut p = Parser { s: json, i: 0 };
        p.ws();
        p.expect(b'{')?;
        let mut status = None;
        let mut scope = None;
        let mut openid_configuration = None;
        p.ws();
        if p.peek() == Some(b'}') {
            p.i += 1;
        } else {
            loop {
                p.ws();
                let key = p.string()?;
                p.ws();
                p.expect(b':')?;
                p.ws();
                let value = if p.peek() == Some(b'"') {
                    Some(p.string()?)
                } else {
                    p.skip_value(0)?;
                    None
                };
                match key.as_str() {
                    "status" => status = value,
                    "scope" => scope = value,
                    "openid-configuration" => openid_configuration = value,
                    _ => {}
                }
                p.ws();
                match p.next() {
                    Some(b',') => continue,
                    Some(b'}') => break,
                    _ => return Err("expected ',' or '}'".into()),
                }
            }
        }
        p.ws();
        if p.i != p.s.len() {
            return Err("trailing bytes after the JSON object".into());
        }
        let status = status.ok_or("no string \"status\" member")?;
        Ok(OAuthError {
            status,
            scope,
            openid_configuration,
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.next() == Some(b) {
            Ok(())
        } else {
            Err(format!("expected '{}'", b as char))
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .next()
                .and_then(|b| (b as char).to_digit(16))
                .ok_or("bad \\u escape")?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next().ok_or("unterminated string")? {
                b'"' => break,
                b'\\' => match self.next().ok_or("unterminated escape")? {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let mut c = self.hex4()?;
                        if (0xD800..0xDC00).contains(&c) {
                            self.expect(b'\\')?;
                            self.expect(b'u')?;
                            let lo = self.hex4()?;
                            if !(0xDC00..0xE000).contains(&lo) {
                                return Err("bad surrogate pair".into());
                            }
                            c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                        }
                        let ch = char::from_u32(c).ok_or("bad \\u escape")?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return Err("bad escape".into()),
                },
                b if b < 0x20 => return Err("control character in string".into()),
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8".into())
    }

    fn skip_value(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("JSON nested too deeply".into());
        }
        self.ws();
        match self.peek().ok_or("missing value")? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let close = if self.next() == Some(b'{') {
                    b'}'
                } else {
                    b']'
                };
                self.ws();
                if self.peek() == Some(close) {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if close == b'}' {
                        self.string()?;
                        self.ws();
                        self.expect(b':')?;
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => continue,
                        Some(c) if c == close => break,
                        _ => return Err("expected ',' or closing bracket".into()),
                    }
                }
            }
            _ => {
                let start = self.i;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
                ) {
                    self.i += 1;
                }
                let word = &self.s[start..self.i];
                let is_number = word
                    .first()
                    .is_some_and(|b| *b == b'-' || b.is_ascii_digit());
                if !(is_number || word == b"true" || word == b"false" || word == b"null") {
                    return Err("bad JSON value".into());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7628_example() {
        // RFC 7628 section 4.3 (failed exchange): the server's error JSON.
        let e = OAuthError::parse(
            br#"{
     "status":"invalid_token",
     "scope":"example_scope",
     "openid-configuration":"https://example.com/.well-known/openid-configuration"
   }"#,
        )
        .unwrap();
        assert_eq!(e.status, "invalid_token");
        assert_eq!(e.scope.as_deref(), Some("example_scope"));
        assert_eq!(
            e.openid_configuration.as_deref(),
            Some("https://example.com/.well-known/openid-configuration")
        );
    }

    #[test]
    fn xoauth2_style_and_skipped_members() {
        let e = OAuthError::parse(
            br#"{"status":"401","schemes":"bearer","n":-1.5e3,"x":[1,{"a":null}],"scope":"https://mail.google.com/"}"#,
        )
        .unwrap();
        assert_eq!(e.status, "401");
        assert_eq!(e.scope.as_deref(), Some("https://mail.google.com/"));
        assert_eq!(e.openid_configuration, None);
    }

    #[test]
    fn escapes() {
        let e = OAuthError::parse(br#"{"status":"a\"b\u00e9\ud83d\ude00"}"#).unwrap();
        assert_eq!(e.status, "a\"b\u{e9}\u{1F600}");
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            &b""[..],
            b"{",
            b"{}",
            b"[]",
            br#"{"status":1}"#,
            br#"{"status":"x"} trailing"#,
            br#"{"status":"x",}"#,
            br#"{"status":"\ud800"}"#,
            br#"{"status":"x","y":bogus}"#,
        ] {
            assert!(
                OAuthError::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!(
            r#"{{"status":"x","d":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(OAuthError::parse(deep.as_bytes()).is_err());
        let long = format!(r#"{{"status":"{}"}}"#, "a".repeat(MAX_ERROR_JSON));
        assert!(OAuthError::parse(long.as_bytes()).is_err());
    }
}
