//! `Domain`: the argument of EHLO/HELO and the part of a mailbox after the `@`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::invalid::{check_line_safe, InvalidInput, InvalidReason};

/// Longest domain, in octets (RFC 5321 4.5.3.1.2).
pub const MAX_DOMAIN_LEN: usize = 255;
/// Longest label of a domain, in octets (RFC 1035 2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// A validated domain: a dotted domain name (`mail.example.com`) or an address literal
/// (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, or the general `[tag:content]` form of
/// RFC 5321 4.1.3). ASCII only; no CR, LF, NUL, space or other byte outside the grammar
/// can be held.
///
/// Labels are letters, digits and hyphens, not starting or ending with a hyphen. An
/// underscore is tolerated inside a label because real host names carry them.
///
/// ```
/// use smtp_proto::Domain;
/// assert_eq!(Domain::new("mail.example.com").unwrap().as_str(), "mail.example.com");
/// assert!(Domain::new("[192.0.2.1]").is_ok());
/// assert!(Domain::new("example.com\r\nMAIL FROM:<x>").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    /// Validates `s` as a domain or address literal.
    pub fn new(s: &str) -> Result<Domain, InvalidInput> {
        validate_domain("domain", s, false)?;
        Ok(Domain(s.to_owned()))
    }

    /// The domain as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an address literal (`[...]`).
    pub fn is_address_literal(&self) -> bool {
        self.0.starts_with('[')
    }
}

crate::value::string_value_impls!(Domain);

/// Checks a domain or address literal. With `utf8`, labels may also hold non-ASCII
/// characters (RFC 6531 U-labels, for mailboxes under SMTPUTF8).
pub(crate) fn validate_domain(what: &'static str, s: &str, utf8: bool) -> Result<(), InvalidInput> {
    let bytes = s.as_bytes();
    check_line_safe(what, bytes)?;
    let err = |reason| Err(InvalidInput::new(what, bytes, reason));
    if s.is_empty() {
        return err(InvalidReason::Empty);
    }
    if bytes.len() > MAX_DOMAIN_LEN {
        return err(InvalidReason::TooLong {
            len: bytes.len(),
            limit: MAX_DOMAIN_LEN,
        });
    }
    if let Some(inner) = s.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return err(InvalidReason::Syntax(
                "address literal does not end with ']'",
            ));
        };
        return validate_address_literal(inner).or_else(err);
    }
    for c in s.chars() {
        let ok = c.is_ascii_alphanumeric()
            || matches!(c, '.' | '-' | '_')
            || (utf8 && !c.is_ascii() && !c.is_control() && !c.is_whitespace());
        if !ok {
            return err(char_reason(c));
        }
    }
    for label in s.split('.') {
        if label.is_empty() {
            return err(InvalidReason::Syntax(
                "has an empty label (leading, trailing or double dot)",
            ));
        }
        if label.len() > MAX_LABEL_LEN {
            return err(InvalidReason::Syntax("has a label longer than 63 octets"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return err(InvalidReason::Syntax(
                "has a label starting or ending with '-'",
            ));
        }
    }
    Ok(())
}

/// The reason for refusing character `c`.
pub(crate) fn char_reason(c: char) -> InvalidReason {
    match c {
        '\0' => InvalidReason::Nul,
        c if c.is_ascii_control() => InvalidReason::Control(c as u8),
        c => InvalidReason::Char(c),
    }
}

/// The inside of `[...]`: IPv4, `IPv6:` + IPv6, or `tag:content` (RFC 5321 4.1.3).
fn validate_address_literal(inner: &str) -> Result<(), InvalidReason> {
    if let Some(v6) = inner
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("IPv6:"))
        .map(|_| &inner[5..])
    {
        return v6
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| InvalidReason::Syntax("is not a valid IPv6 address literal"));
    }
    if let Some((tag, content)) = inner.split_once(':') {
        // General-address-literal: Standardized-tag ":" 1*dcontent.
        let tag_ok = !tag.is_empty()
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !tag.ends_with('-');
        let content_ok = !content.is_empty()
            && content
                .bytes()
                .all(|b| (33..=90).contains(&b) || (94..=126).contains(&b));
        return if tag_ok && content_ok {
            Ok(())
        } else {
            Err(InvalidReason::Syntax(
                "is not a valid general address literal",
            ))
        };
    }
    if inner.bytes().all(|b| b.is_ascii_digit() || b == b'.') && inner.parse::<Ipv4Addr>().is_ok() {
        Ok(())
    } else {
        Err(InvalidReason::Syntax("is not a valid IPv4 address literal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc5321_forms() {
        for ok in [
            "example.com",
            "localhost",
            "mail-1.example.co.uk",
            "a_b.example",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
            "[ipv6:::1]",
            "[x-tag:some-content]",
            "123.example",
        ] {
            assert!(Domain::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_domains_with_reasons() {
        let cases: &[(&str, InvalidReason)] = &[
            ("", InvalidReason::Empty),
            ("a\rb", InvalidReason::Cr),
            ("a\nb", InvalidReason::Lf),
            ("a\0b", InvalidReason::Nul),
            ("a b", InvalidReason::Char(' ')),
            ("a\tb", InvalidReason::Control(9)),
            ("exämple.com", InvalidReason::Char('ä')),
            ("a<b", InvalidReason::Char('<')),
        ];
        for (input, reason) in cases {
            let e = Domain::new(input).unwrap_err();
            assert_eq!(e.reason(), reason, "{input:?}");
            assert_eq!(e.what(), "domain");
        }
        for bad in [
            ".example.com",
            "example.com.",
            "a..b",
            "-a.b",
            "a-.b",
            "[192.0.2.1",
            "[192.0.2.256]",
            "[1.2.3]",
            "[IPv6:zz::1]",
            "[:x]",
            "[tag:]",
            "[tag:a]b]",
        ] {
            assert!(Domain::new(bad).is_err(), "{bad}");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(Domain::new(&long).is_err());
        let too_long = vec!["abcdefghi"; 26].join(".");
        assert!(matches!(
            Domain::new(&too_long).unwrap_err().reason(),
            InvalidReason::TooLong { limit: 255, .. }
        ));
    }

    #[test]
    fn error_message_escapes() {
        let e = Domain::new("x\r\nRCPT TO:<a@b>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "domain \"x\\r\\nRCPT TO:<a@b>\": contains CR"
        );
    }
}
