//! The error every validated value returns when its constructor refuses the input.

use std::fmt;

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The value is empty where something is required.
    Empty,
    /// The value contains a carriage return (the classic injection vector).
    Cr,
    /// The value contains a line feed.
    Lf,
    /// The value contains a NUL byte.
    Nul,
    /// The value contains another control character (given as its byte value).
    Control(u8),
    /// The value contains a character that its grammar does not allow at that place.
    Char(char),
    /// The value is not ASCII where only ASCII is allowed.
    NonAscii,
    /// The value is longer than its limit (both in octets).
    TooLong {
        /// The length of the value.
        len: usize,
        /// The largest length allowed.
        limit: usize,
    },
    /// The value does not match its grammar; the text says how.
    Syntax(&'static str),
    /// The verb cannot be sent as an extension command ([`Verb`](crate::Verb)): it
    /// belongs to a typed [`Command`](crate::Command), or it changes the session's state
    /// in a way the session would not know of.
    ReservedVerb {
        /// The typed command to send instead (`"Command::Data"`), or `None` when there
        /// is none (TURN, ATRN, BURL).
        use_instead: Option<&'static str>,
    },
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidReason::Empty => f.write_str("is empty"),
            InvalidReason::Cr => f.write_str("contains CR"),
            InvalidReason::Lf => f.write_str("contains LF"),
            InvalidReason::Nul => f.write_str("contains NUL"),
            InvalidReason::Control(b) => write!(f, "contains control character 0x{b:02x}"),
            InvalidReason::Char(c) => write!(f, "contains {c:?}, which is not allowed there"),
            InvalidReason::NonAscii => f.write_str("is not ASCII"),
            InvalidReason::TooLong { len, limit } => {
                write!(f, "is {len} octets long, the limit is {limit}")
            }
            InvalidReason::Syntax(msg) => f.write_str(msg),
            InvalidReason::ReservedVerb {
                use_instead: Some(typed),
            } => write!(f, "has a typed command: use {typed}"),
            InvalidReason::ReservedVerb { use_instead: None } => f.write_str(
                "changes the session's state and cannot be sent as an extension command",
            ),
        }
    }
}

/// A value refused at construction: which kind of value, the value (escaped), and why.
///
/// The value is shown escaped, so the message itself can never carry a raw CR or LF.
///
/// ```
/// let err = smtp_proto::Mailbox::new("a\r\nb@x").unwrap_err();
/// assert_eq!(err.to_string(), r#"mailbox "a\r\nb@x": contains CR"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    what: &'static str,
    value: String,
    reason: InvalidReason,
}

/// At most this many input bytes are quoted in an error message.
const QUOTE_LIMIT: usize = 80;

impl InvalidInput {
    /// An error for the value `value` of kind `what` (for example "mailbox"), refused for `reason`.
    pub fn new(what: &'static str, value: &[u8], reason: InvalidReason) -> InvalidInput {
        InvalidInput {
            what,
            value: escape(value, QUOTE_LIMIT),
            reason,
        }
    }

    /// Which kind of value was refused ("domain", "mailbox", "ESMTP keyword", ...).
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The refused value, escaped (control characters as `\r`, `\n`, `\0`, `\x07`) and
    /// cut after 80 bytes.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Why it was refused.
    pub fn reason(&self) -> &InvalidReason {
        &self.reason
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} \"{}\": {}", self.what, self.value, self.reason)
    }
}

impl std::error::Error for InvalidInput {}

/// `bytes` as printable text: UTF-8 kept, control characters, quotes and backslashes
/// escaped, invalid UTF-8 as `\xNN`; cut after `limit` input bytes with "...".
pub(crate) fn escape(bytes: &[u8], limit: usize) -> String {
    let cut = bytes.len() > limit;
    let bytes = &bytes[..bytes.len().min(limit)];
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\0' => out.push_str("\\0"),
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if cut {
        out.push_str("...");
    }
    out
}

/// Refuses CR, LF and NUL (in that order of precedence, by position), the bytes that
/// would let a value break out of its line.
pub(crate) fn check_line_safe(what: &'static str, value: &[u8]) -> Result<(), InvalidInput> {
    if let Some(pos) = memchr::memchr3(b'\r', b'\n', 0, value) {
        let reason = match value[pos] {
            b'\r' => InvalidReason::Cr,
            b'\n' => InvalidReason::Lf,
            _ => InvalidReason::Nul,
        };
        return Err(InvalidInput::new(what, value, reason));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_never_contains_raw_line_ends() {
        let s = escape(b"a\r\nb\0\x07\"\\\xff", 80);
        assert_eq!(s, "a\\r\\nb\\0\\x07\\\"\\\\\\xff");
    }

    #[test]
    fn escape_cuts_long_values() {
        let s = escape(&[b'a'; 100], 80);
        assert_eq!(s.len(), 83);
        assert!(s.ends_with("..."));
    }

    #[test]
    fn line_safe_names_the_first_bad_byte() {
        let e = check_line_safe("text", b"ab\ncd\r").unwrap_err();
        assert_eq!(e.reason(), &InvalidReason::Lf);
        assert_eq!(e.to_string(), "text \"ab\\ncd\\r\": contains LF");
    }
}
