//! Mailboxes and the paths of MAIL FROM and RCPT TO.

use std::fmt;

use crate::domain::{char_reason, validate_domain};
use crate::invalid::{check_line_safe, InvalidInput, InvalidReason};

/// Longest local part, in octets (RFC 5321 4.5.3.1.1).
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// Longest mailbox, in octets: a path is at most 256 octets including `<` and `>`
/// (RFC 5321 4.5.3.1.3).
pub const MAX_MAILBOX_LEN: usize = 254;

/// A validated mailbox `local-part@domain` (RFC 5321 4.1.2), without angle brackets.
///
/// The local part is a dot-atom or a quoted string; the domain a domain name or an
/// address literal. UTF-8 is allowed (RFC 6531), but such a mailbox can only be sent
/// with SMTPUTF8: see [`Mailbox::is_ascii`] and [`Command::encode`](crate::Command::encode).
///
/// ```
/// use smtp_proto::Mailbox;
/// let m = Mailbox::new("jane.doe@example.com").unwrap();
/// assert_eq!(m.as_str(), "jane.doe@example.com");
/// assert!(Mailbox::new("\"john smith\"@example.com").is_ok());
/// assert!(!Mailbox::new("jürgen@example.de").unwrap().is_ascii());
/// assert!(Mailbox::new("a@b>\r\nRCPT TO:<c@d").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox(String);

impl Mailbox {
    /// Validates `s` as a mailbox.
    pub fn new(s: &str) -> Result<Mailbox, InvalidInput> {
        validate_mailbox(s)?;
        Ok(Mailbox(s.to_owned()))
    }

    /// The mailbox as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the mailbox is all ASCII. A non-ASCII mailbox needs the server's
    /// SMTPUTF8 extension and the `SMTPUTF8` MAIL parameter.
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// The part before the last `@` (quotes kept).
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    /// The part after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

crate::value::string_value_impls!(Mailbox);

const WHAT: &str = "mailbox";

fn validate_mailbox(s: &str) -> Result<(), InvalidInput> {
    let bytes = s.as_bytes();
    check_line_safe(WHAT, bytes)?;
    let err = |reason| Err(InvalidInput::new(WHAT, bytes, reason));
    if s.is_empty() {
        return err(InvalidReason::Empty);
    }
    if bytes.len() > MAX_MAILBOX_LEN {
        return err(InvalidReason::TooLong {
            len: bytes.len(),
            limit: MAX_MAILBOX_LEN,
        });
    }
    let local_len = if s.starts_with('"') {
        quoted_string_len(s).map_err(|r| InvalidInput::new(WHAT, bytes, r))?
    } else {
        let Some(at) = s.find('@') else {
            return err(InvalidReason::Syntax("has no '@'"));
        };
        dot_atom(&s[..at]).map_err(|r| InvalidInput::new(WHAT, bytes, r))?;
        at
    };
    if local_len > MAX_LOCAL_PART_LEN {
        return err(InvalidReason::Syntax(
            "has a local part longer than 64 octets",
        ));
    }
    let Some(domain) = s[local_len..].strip_prefix('@') else {
        return err(InvalidReason::Syntax(
            "has no '@' after the quoted local part",
        ));
    };
    validate_domain(WHAT, domain, true)
        .map_err(|e| InvalidInput::new(WHAT, bytes, e.reason().clone()))
}

/// `Dot-string = Atom *("." Atom)`, atext extended with UTF-8 (RFC 6531).
fn dot_atom(local: &str) -> Result<(), InvalidReason> {
    if local.is_empty() {
        return Err(InvalidReason::Syntax("has an empty local part"));
    }
    for c in local.chars() {
        let ok = c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~.".contains(c)
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace());
        if !ok {
            return Err(char_reason(c));
        }
    }
    if local.split('.').any(str::is_empty) {
        return Err(InvalidReason::Syntax(
            "has a leading, trailing or double dot in the local part",
        ));
    }
    Ok(())
}

/// The length of the quoted string at the start of `s` (quotes included).
fn quoted_string_len(s: &str) -> Result<usize, InvalidReason> {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok(i + 1),
            '\\' => match chars.next() {
                Some((_, q)) if (' '..='~').contains(&q) => {}
                Some((_, q)) => return Err(char_reason(q)),
                None => break,
            },
            c if (' '..='~').contains(&c) => {}
            c if !c.is_ascii() && !c.is_control() => {}
            c => return Err(char_reason(c)),
        }
    }
    Err(InvalidReason::Syntax(
        "has an unterminated quoted local part",
    ))
}

/// The reverse-path of MAIL FROM: a mailbox, or the null path `<>` used for bounces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`.
    Null,
    /// `<mailbox>`.
    Mailbox(Mailbox),
}

impl ReversePath {
    /// The mailbox, unless this is the null path.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ReversePath::Null => None,
            ReversePath::Mailbox(m) => Some(m),
        }
    }

    /// Whether the path is all ASCII (the null path is).
    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }
}

impl From<Mailbox> for ReversePath {
    fn from(m: Mailbox) -> Self {
        ReversePath::Mailbox(m)
    }
}

impl ReversePath {
    /// Appends the path with its angle brackets to `out`: the octets [`Display`](fmt::Display)
    /// shows, without the formatting machinery (MAIL is encoded once per message).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ReversePath::Null => out.extend_from_slice(b"<>"),
            ReversePath::Mailbox(m) => {
                out.push(b'<');
                out.extend_from_slice(m.as_str().as_bytes());
                out.push(b'>');
            }
        }
    }
}

impl fmt::Display for ReversePath {
    /// The path with its angle brackets: `<>` or `<a@b>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// The forward-path of RCPT TO: a mailbox, or the special local `Postmaster`
/// (RFC 5321 4.1.1.3).
///
/// ```
/// use smtp_proto::ForwardPath;
/// assert_eq!(ForwardPath::new("bob@example.org").unwrap().to_string(), "<bob@example.org>");
/// assert_eq!(ForwardPath::postmaster().to_string(), "<Postmaster>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForwardPath(Option<Mailbox>);

impl ForwardPath {
    /// Validates `s` as a mailbox; `"postmaster"` (any case, no domain) is the
    /// special Postmaster path.
    pub fn new(s: &str) -> Result<ForwardPath, InvalidInput> {
        if s.eq_ignore_ascii_case("postmaster") {
            return Ok(ForwardPath::postmaster());
        }
        Mailbox::new(s).map(|m| ForwardPath(Some(m)))
    }

    /// `<Postmaster>`.
    pub fn postmaster() -> Self {
        ForwardPath(None)
    }

    /// The mailbox; `None` for `<Postmaster>`.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        self.0.as_ref()
    }

    /// Whether the path is all ASCII.
    pub fn is_ascii(&self) -> bool {
        self.0.as_ref().is_none_or(Mailbox::is_ascii)
    }
}

impl From<Mailbox> for ForwardPath {
    fn from(m: Mailbox) -> Self {
        ForwardPath(Some(m))
    }
}

impl ForwardPath {
    /// Appends the path with its angle brackets to `out`: the octets [`Display`](fmt::Display)
    /// shows, without the formatting machinery (RCPT is encoded once per recipient).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match &self.0 {
            None => out.extend_from_slice(b"<Postmaster>"),
            Some(m) => {
                out.push(b'<');
                out.extend_from_slice(m.as_str().as_bytes());
                out.push(b'>');
            }
        }
    }
}

impl fmt::Display for ForwardPath {
    /// The path with its angle brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("<Postmaster>"),
            Some(m) => write!(f, "<{m}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_as_rfc5321_paths_with_angle_brackets() {
        // RFC 5321 4.1.2: Reverse-path = Path / "<>"; Forward-path = Path;
        // 4.1.1.3: "<Postmaster>" as a special local recipient.
        let cases: [(Vec<u8>, &str); 4] = [
            (encoded_reverse(&ReversePath::Null), "<>"),
            (
                encoded_reverse(&ReversePath::Mailbox(
                    Mailbox::new("a@example.com").unwrap(),
                )),
                "<a@example.com>",
            ),
            (encoded_forward(&ForwardPath::postmaster()), "<Postmaster>"),
            (
                encoded_forward(&ForwardPath::new("jane.doe@example.com").unwrap()),
                "<jane.doe@example.com>",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(String::from_utf8(got).unwrap(), want);
        }
    }

    fn encoded_reverse(p: &ReversePath) -> Vec<u8> {
        let mut out = b"x".to_vec();
        p.encode(&mut out);
        out.split_off(1)
    }

    fn encoded_forward(p: &ForwardPath) -> Vec<u8> {
        let mut out = b"x".to_vec();
        p.encode(&mut out);
        out.split_off(1)
    }

    #[test]
    fn accepts_rfc5321_and_rfc6531_mailboxes() {
        for ok in [
            "user@example.com",
            "first.last+tag@example.com",
            "!#$%&'*+-/=?^_`{|}~@example.com",
            "\"john smith\"@example.com",
            "\"a\\\"b\"@example.com",
            "\"a@b\"@example.com",
            "user@[192.0.2.1]",
            "user@[IPv6:2001:db8::1]",
            "用户@例子.广告",
            "jürgen@müller.de",
        ] {
            assert!(Mailbox::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_mailboxes() {
        let cases: &[(&str, InvalidReason)] = &[
            ("", InvalidReason::Empty),
            ("a\r@b", InvalidReason::Cr),
            ("a@b\n", InvalidReason::Lf),
            ("a\0@b", InvalidReason::Nul),
            ("a b@c", InvalidReason::Char(' ')),
            ("<a@b>", InvalidReason::Char('<')),
            ("a@b>", InvalidReason::Char('>')),
            ("a@b c", InvalidReason::Char(' ')),
        ];
        for (input, reason) in cases {
            let e = Mailbox::new(input).unwrap_err();
            assert_eq!(e.reason(), reason, "{input:?}");
            assert_eq!(e.what(), "mailbox");
        }
        for bad in [
            "noat",
            "@example.com",
            "a@",
            ".a@b",
            "a.@b",
            "a..b@c",
            "\"unterminated@b",
            "\"q\"x@b",
            "a@b@c",
            "a@[1.2.3.4",
        ] {
            assert!(Mailbox::new(bad).is_err(), "{bad}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(Mailbox::new(&long_local).is_err());
        let long = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
        assert!(matches!(
            Mailbox::new(&long).unwrap_err().reason(),
            InvalidReason::TooLong { .. }
        ));
    }

    #[test]
    fn parts() {
        let m = Mailbox::new("\"a@b\"@example.com").unwrap();
        assert_eq!(m.local_part(), "\"a@b\"");
        assert_eq!(m.domain(), "example.com");
    }

    #[test]
    fn paths() {
        assert_eq!(ReversePath::Null.to_string(), "<>");
        assert!(ReversePath::Null.is_ascii());
        let p = ForwardPath::new("PostMaster").unwrap();
        assert_eq!(p, ForwardPath::postmaster());
        assert!(p.mailbox().is_none());
        let p = ForwardPath::new("postmaster@example.com").unwrap();
        assert_eq!(p.mailbox().unwrap().as_str(), "postmaster@example.com");
    }
}
