//! The error JSON an OAuth server sends in an OAUTHBEARER or XOAUTH2 challenge
//! (RFC 7628 section 3.2.2), read with `serde_json` within a size and a depth bound.

use std::fmt;

/// The largest error JSON accepted, in bytes. Real ones are under 300.
pub const MAX_ERROR_JSON: usize = 16 * 1024;

/// The deepest nesting of objects and arrays accepted, the error object itself included.
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
    /// object with a string `status` member. Unknown members are skipped, and so are
    /// `scope` and `openid-configuration` when they are not strings; input longer than
    /// [`MAX_ERROR_JSON`] or nested deeper than 16 levels is refused.
    pub fn parse(json: &[u8]) -> Result<OAuthError, String> {
        if json.len() > MAX_ERROR_JSON {
            return Err(format!("error JSON longer than {MAX_ERROR_JSON} bytes"));
        }
        // serde_json would also read an array as a struct (its fields in order).
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err("not a JSON object".into());
        }
        // serde_json's own limit (128 levels) is far above what an error report needs.
        if nesting_depth(json) > MAX_DEPTH {
            return Err("JSON nested too deeply".into());
        }
        let members: ErrorMembers = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        Ok(OAuthError {
            status: members.status,
            scope: members.scope,
            openid_configuration: members.openid_configuration,
        })
    }
}

/// The members of the error JSON this crate reads (RFC 7628 section 3.2.2).
#[derive(serde::Deserialize)]
struct ErrorMembers {
    status: String,
    #[serde(default, deserialize_with = "string_or_none")]
    scope: Option<String>,
    #[serde(
        rename = "openid-configuration",
        default,
        deserialize_with = "string_or_none"
    )]
    openid_configuration: Option<String>,
}

/// A string member's value; any other JSON value is skipped (`None`) rather than refused,
/// since the status alone is worth reporting.
fn string_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::Deserialize;
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// The deepest nesting of arrays and objects in `json`, strings skipped. Exact for valid
/// JSON; for anything else the parser refuses the input anyway.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
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

    #[test]
    fn only_an_object_is_read() {
        for bad in [&br#"["x"]"#[..], br#""x""#, b"null", b"401"] {
            assert_eq!(
                OAuthError::parse(bad),
                Err("not a JSON object".to_owned()),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(OAuthError::parse(b" \r\n\t{\"status\":\"x\"} \n").is_ok());
    }

    #[test]
    fn depth_limit_counts_the_object_and_not_strings() {
        let nested = |levels: usize| {
            format!(
                r#"{{"status":"x","d":{}{}}}"#,
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        assert!(OAuthError::parse(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            OAuthError::parse(nested(MAX_DEPTH + 1).as_bytes()),
            Err("JSON nested too deeply".to_owned())
        );
        let brackets_in_strings =
            format!(r#"{{"status":"{}\"{}"}}"#, "[".repeat(40), "{".repeat(40));
        let e = OAuthError::parse(brackets_in_strings.as_bytes()).unwrap();
        assert_eq!(e.status.len(), 81);
    }

    #[test]
    fn a_duplicated_member_is_refused() {
        assert!(OAuthError::parse(br#"{"status":"a","status":"b"}"#).is_err());
        assert!(OAuthError::parse(br#"{"status":"a","scope":"x","scope":"y"}"#).is_err());
    }

    #[test]
    fn optional_members_that_are_not_strings_are_skipped() {
        let e = OAuthError::parse(
            br#"{"scope":["a","b"],"openid-configuration":null,"status":"invalid_token"}"#,
        )
        .unwrap();
        assert_eq!(e.status, "invalid_token");
        assert_eq!(e.scope, None);
        assert_eq!(e.openid_configuration, None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_give_a_value_or_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = OAuthError::parse(&bytes);
        }
    }
}
