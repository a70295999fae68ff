//! The values of an extension command (Net::Cmd's `command(VERB, ARGS)`): a [`Verb`] and
//! its [`Argument`]s, sent with [`Command::Extension`](crate::Command::Extension).

use std::hash::{Hash, Hasher};

use crate::domain::char_reason;
use crate::invalid::{check_line_safe, InvalidInput, InvalidReason};

/// Verbs an extension command may not carry, and the typed command to use instead.
///
/// A typed command validates its arguments and the session keeps track of it (a
/// transaction opened by MAIL, the end of data, a TLS upgrade, a new EHLO), so the same
/// verb must not reach the wire past it. The verbs without a typed command change the
/// session beyond what it can follow: TURN (RFC 821 4.1.1) and ATRN (RFC 2645) reverse
/// the client and server roles, and BURL (RFC 4468) adds message data as BDAT does.
/// Postfix's XCLIENT, which answers with a new greeting that wants a new EHLO, has its
/// typed command.
const RESERVED: &[(&str, Option<&str>)] = &[
    ("EHLO", Some("Command::Ehlo")),
    ("HELO", Some("Command::Helo")),
    ("LHLO", Some("Command::Lhlo")),
    ("MAIL", Some("Command::Mail")),
    ("RCPT", Some("Command::Rcpt")),
    ("DATA", Some("Command::Data")),
    ("BDAT", Some("Command::Bdat")),
    ("RSET", Some("Command::Rset")),
    ("NOOP", Some("Command::Noop")),
    ("QUIT", Some("Command::Quit")),
    ("STARTTLS", Some("Command::StartTls")),
    ("VRFY", Some("Command::Vrfy")),
    ("EXPN", Some("Command::Expn")),
    ("HELP", Some("Command::Help")),
    ("ETRN", Some("Command::Etrn")),
    ("AUTH", Some("Command::Auth")),
    ("SEND", Some("Command::Send")),
    ("SOML", Some("Command::Soml")),
    ("SAML", Some("Command::Saml")),
    ("TURN", None),
    ("ATRN", None),
    ("BURL", None),
    ("XCLIENT", Some("Command::Xclient")),
];

/// The verb of an extension command: an ASCII letter, then letters, digits and hyphens
/// (the shape of RFC 5321's verbs and of the `ehlo-keyword` that announces an extension,
/// RFC 5321 4.1.1.1). Kept as given and sent as given; compared case-insensitively, as
/// servers read verbs (RFC 5321 2.4).
///
/// The verbs of the typed commands (EHLO, MAIL, DATA, STARTTLS, AUTH, QUIT, ...) are
/// refused, with [`InvalidReason::ReservedVerb`] naming the command to use, so that
/// nothing the session tracks can be sent behind its back (XCLIENT among them: it makes
/// the server greet again); so are TURN, ATRN and BURL, which change the session in ways
/// it cannot follow.
///
/// A verb has no length limit of its own: the whole command line has one
/// ([`MAX_COMMAND_LINE`](crate::MAX_COMMAND_LINE)), checked when it is encoded.
///
/// ```
/// use smtp_proto::{InvalidReason, Verb};
/// let verb = Verb::new("XForward")?;
/// assert_eq!(verb.as_str(), "XForward");
/// assert_eq!(verb, Verb::new("XFORWARD")?);
/// assert!(Verb::new("X FOO").is_err());
/// assert!(Verb::new("9X").is_err());
/// let refused = Verb::new("data").unwrap_err();
/// assert_eq!(
///     refused.reason(),
///     &InvalidReason::ReservedVerb { use_instead: Some("Command::Data") }
/// );
/// # Ok::<(), smtp_proto::InvalidInput>(())
/// ```
#[derive(Debug, Clone)]
pub struct Verb(String);

impl Verb {
    /// Validates `s` as an extension verb.
    pub fn new(s: &str) -> Result<Verb, InvalidInput> {
        const V: &str = "extension verb";
        let b = s.as_bytes();
        check_line_safe(V, b)?;
        let mut chars = s.chars();
        let Some(first) = chars.next() else {
            return Err(InvalidInput::new(V, b, InvalidReason::Empty));
        };
        if !first.is_ascii_alphabetic() {
            let reason = if first.is_ascii_alphanumeric() || first == '-' {
                InvalidReason::Syntax("does not start with a letter")
            } else {
                word_char_reason(first)
            };
            return Err(InvalidInput::new(V, b, reason));
        }
        if let Some(c) = chars.find(|&c| !(c.is_ascii_alphanumeric() || c == '-')) {
            return Err(InvalidInput::new(V, b, word_char_reason(c)));
        }
        if let Some(&(_, use_instead)) = RESERVED
            .iter()
            .find(|(reserved, _)| reserved.eq_ignore_ascii_case(s))
        {
            return Err(InvalidInput::new(
                V,
                b,
                InvalidReason::ReservedVerb { use_instead },
            ));
        }
        Ok(Verb(s.to_owned()))
    }

    /// The verb as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why `c` cannot be in a verb: non-ASCII said as such, the rest as `char_reason` says.
fn word_char_reason(c: char) -> InvalidReason {
    if c.is_ascii() {
        char_reason(c)
    } else {
        InvalidReason::NonAscii
    }
}

impl PartialEq for Verb {
    fn eq(&self, other: &Verb) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Verb {}

impl Hash for Verb {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_uppercase());
        }
        state.write_u8(0xff);
    }
}

crate::value::string_value_impls!(Verb);

/// One argument of an extension command: a non-empty word of printable characters, no
/// space (the encoder puts one space between arguments), no CR, LF, NUL or other control
/// character. UTF-8 is allowed, as in [`Text`](crate::Text); a server reads it only
/// after SMTPUTF8 (RFC 6531), which is the caller's to know.
///
/// ```
/// use smtp_proto::Argument;
/// assert_eq!(Argument::new("NAME=spike.porcupine.org")?.as_str(), "NAME=spike.porcupine.org");
/// assert!(Argument::new("two words").is_err());
/// assert!(Argument::new("x\r\nDATA").is_err());
/// assert!(Argument::new("").is_err());
/// # Ok::<(), smtp_proto::InvalidInput>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Argument(String);

impl Argument {
    /// Validates `s` as one argument.
    pub fn new(s: &str) -> Result<Argument, InvalidInput> {
        const A: &str = "extension argument";
        let b = s.as_bytes();
        check_line_safe(A, b)?;
        if s.is_empty() {
            return Err(InvalidInput::new(A, b, InvalidReason::Empty));
        }
        if let Some(c) = s.chars().find(|&c| c == ' ' || c.is_control()) {
            return Err(InvalidInput::new(A, b, char_reason(c)));
        }
        Ok(Argument(s.to_owned()))
    }

    /// The argument as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::value::string_value_impls!(Argument);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn reason_of_verb(s: &str) -> InvalidReason {
        Verb::new(s).unwrap_err().reason().clone()
    }

    #[test]
    fn verb_grammar() {
        for ok in ["XFORWARD", "X", "x-Foo-1", "ATRNX", "Turnip", "PRDR"] {
            assert_eq!(Verb::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(reason_of_verb(""), InvalidReason::Empty);
        assert_eq!(reason_of_verb("X\rY"), InvalidReason::Cr);
        assert_eq!(reason_of_verb("X\nY"), InvalidReason::Lf);
        assert_eq!(reason_of_verb("X\0"), InvalidReason::Nul);
        assert_eq!(reason_of_verb("X Y"), InvalidReason::Char(' '));
        assert_eq!(reason_of_verb(" X"), InvalidReason::Char(' '));
        assert_eq!(reason_of_verb("X\t"), InvalidReason::Control(9));
        assert_eq!(reason_of_verb("X:"), InvalidReason::Char(':'));
        assert_eq!(reason_of_verb("X_Y"), InvalidReason::Char('_'));
        assert_eq!(reason_of_verb("XÜ"), InvalidReason::NonAscii);
        assert_eq!(reason_of_verb("ÜX"), InvalidReason::NonAscii);
        for digit_first in ["1X", "-X", "0"] {
            assert!(matches!(
                reason_of_verb(digit_first),
                InvalidReason::Syntax(_)
            ));
        }
        assert_eq!(
            Verb::new("X Y").unwrap_err().to_string(),
            "extension verb \"X Y\": contains ' ', which is not allowed there"
        );
    }

    #[test]
    fn verbs_compare_case_insensitively_and_keep_their_spelling() {
        let a = Verb::new("XForward").unwrap();
        let b = Verb::new("xforward").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, Verb::new("XFORWARD2").unwrap());
        assert_eq!(a.to_string(), "XForward");
        let set: HashSet<Verb> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn typed_and_state_changing_verbs_are_refused() {
        for (verb, typed) in [
            ("EHLO", "Command::Ehlo"),
            ("helo", "Command::Helo"),
            ("lhlo", "Command::Lhlo"),
            ("Mail", "Command::Mail"),
            ("RCPT", "Command::Rcpt"),
            ("DATA", "Command::Data"),
            ("bdat", "Command::Bdat"),
            ("RSET", "Command::Rset"),
            ("QUIT", "Command::Quit"),
            ("StartTLS", "Command::StartTls"),
            ("AUTH", "Command::Auth"),
            ("SEND", "Command::Send"),
            ("SOML", "Command::Soml"),
            ("SAML", "Command::Saml"),
        ] {
            assert_eq!(
                reason_of_verb(verb),
                InvalidReason::ReservedVerb {
                    use_instead: Some(typed)
                },
                "{verb}"
            );
        }
        assert_eq!(
            reason_of_verb("XClient"),
            InvalidReason::ReservedVerb {
                use_instead: Some("Command::Xclient")
            }
        );
        for verb in ["TURN", "atrn", "BURL"] {
            assert_eq!(
                reason_of_verb(verb),
                InvalidReason::ReservedVerb { use_instead: None },
                "{verb}"
            );
        }
        assert_eq!(
            Verb::new("starttls").unwrap_err().to_string(),
            "extension verb \"starttls\": has a typed command: use Command::StartTls"
        );
    }

    #[test]
    fn argument_grammar() {
        for ok in [
            "NAME=spike.porcupine.org",
            "x",
            "düsseldorf.example",
            "<a@b>",
        ] {
            assert_eq!(Argument::new(ok).unwrap().as_str(), ok);
        }
        let reason = |s: &str| Argument::new(s).unwrap_err().reason().clone();
        assert_eq!(reason(""), InvalidReason::Empty);
        assert_eq!(reason("a\r\nRSET"), InvalidReason::Cr);
        assert_eq!(reason("a\nb"), InvalidReason::Lf);
        assert_eq!(reason("a\0b"), InvalidReason::Nul);
        assert_eq!(reason("a b"), InvalidReason::Char(' '));
        assert_eq!(reason("a\tb"), InvalidReason::Control(9));
        assert_eq!(reason("a\x7f"), InvalidReason::Control(0x7f));
        assert_eq!(reason("a\u{85}"), InvalidReason::Char('\u{85}'));
    }
}
