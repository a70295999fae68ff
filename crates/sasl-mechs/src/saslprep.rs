//! SASLprep (RFC 4013), the stringprep profile (RFC 3454) for user names and passwords.
//!
//! The four steps, in order: mapping (non-ASCII spaces to U+0020, the characters "commonly
//! mapped to nothing" removed), NFKC normalisation, prohibited output (RFC 4013 §2.3), and
//! the bidirectional rule (RFC 3454 §6). The tables and the normalisation come from the
//! maintained `stringprep` and `unicode-normalization` crates; this module only chooses
//! between the two kinds of string RFC 3454 §7 distinguishes:
//!
//! - a **stored** string (what a server keeps, a password it checks against) may not hold a
//!   code point unassigned in Unicode 3.2: `stringprep::saslprep` does exactly this;
//! - a **query** string (what a client presents) may hold them, so that a client built
//!   against a newer Unicode still works.
//!
//! Errors say which rule failed, never which character: the string may be a password.

use std::borrow::Cow;

use stringprep::tables;
use unicode_normalization::UnicodeNormalization as _;

/// Which kind of string is prepared (RFC 3454 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringKind {
    /// Presented by a client: unassigned code points are allowed.
    Query,
    /// Kept by a server: unassigned code points are refused.
    Stored,
}

/// Why SASLprep refused a string. Holds no part of the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslprepError {
    /// A character of RFC 4013 §2.3's prohibited output (a control character, a private-use
    /// or non-character code point, a surrogate, a tagging character...).
    #[error("prohibited character (RFC 4013 section 2.3)")]
    Prohibited,
    /// Right-to-left text that breaks RFC 3454 §6 (mixed with left-to-right characters, or
    /// not starting and ending with a right-to-left character).
    #[error("bidirectional text not allowed (RFC 3454 section 6)")]
    Bidirectional,
    /// A code point unassigned in Unicode 3.2, in a stored string.
    #[error("unassigned code point in a stored string (RFC 4013 section 2.5)")]
    Unassigned,
}

/// Prepares `s` with SASLprep as a string of the given kind.
///
/// ```
/// use sasl_mechs::saslprep::{saslprep, StringKind};
/// assert_eq!(saslprep("I\u{00AD}X", StringKind::Stored).unwrap(), "IX");
/// assert_eq!(saslprep("\u{2168}", StringKind::Query).unwrap(), "IX");
/// assert!(saslprep("\u{0007}", StringKind::Query).is_err());
/// ```
pub fn saslprep(s: &str, kind: StringKind) -> Result<Cow<'_, str>, SaslprepError> {
    // Printable ASCII (and space) passes every step unchanged.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(Cow::Borrowed(s));
    }
    let prepared = query(s)?;
    if kind == StringKind::Stored && prepared.chars().any(tables::unassigned_code_point) {
        return Err(SaslprepError::Unassigned);
    }
    Ok(Cow::Owned(prepared))
}

/// Mapping, NFKC, prohibited output and the bidirectional rule (RFC 4013 §2.1 to §2.4).
fn query(s: &str) -> Result<String, SaslprepError> {
    let normalized: String = s
        .chars()
        .filter(|&c| !tables::commonly_mapped_to_nothing(c))
        .map(|c| {
            if tables::non_ascii_space_character(c) {
                ' '
            } else {
                c
            }
        })
        .nfkc()
        .collect();
    if normalized.chars().any(prohibited) {
        return Err(SaslprepError::Prohibited);
    }
    if breaks_bidi_rule(&normalized) {
        return Err(SaslprepError::Bidirectional);
    }
    Ok(normalized)
}

/// RFC 4013 §2.3: tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9.
fn prohibited(c: char) -> bool {
    tables::non_ascii_space_character(c)
        || tables::ascii_control_character(c)
        || tables::non_ascii_control_character(c)
        || tables::private_use(c)
        || tables::non_character_code_point(c)
        || tables::surrogate_code(c)
        || tables::inappropriate_for_plain_text(c)
        || tables::inappropriate_for_canonical_representation(c)
        || tables::change_display_properties_or_deprecated(c)
        || tables::tagging_character(c)
}

/// RFC 3454 §6: a string with a RandALCat character holds no LCat character, and starts and
/// ends with a RandALCat character.
fn breaks_bidi_rule(s: &str) -> bool {
    if !s.chars().any(tables::bidi_r_or_al) {
        return false;
    }
    s.chars().any(tables::bidi_l)
        || !s.chars().next().is_some_and(tables::bidi_r_or_al)
        || !s.chars().next_back().is_some_and(tables::bidi_r_or_al)
}

#[cfg(test)]
mod tests {
    use super::{saslprep, SaslprepError, StringKind};
    use proptest::prelude::*;

    const BOTH: [StringKind; 2] = [StringKind::Query, StringKind::Stored];

    /// RFC 4013 section 3, every example, as query and as stored string.
    #[test]
    fn rfc4013_section3_examples() {
        for kind in BOTH {
            assert_eq!(saslprep("I\u{00AD}X", kind).unwrap(), "IX"); // 1: SOFT HYPHEN mapped to nothing
            assert_eq!(saslprep("user", kind).unwrap(), "user"); // 2: no transformation
            assert_eq!(saslprep("USER", kind).unwrap(), "USER"); // 3: case preserved
            assert_eq!(saslprep("\u{00AA}", kind).unwrap(), "a"); // 4: output is NFKC
            assert_eq!(saslprep("\u{2168}", kind).unwrap(), "IX"); // 5: NFKC, matches #1
            assert_eq!(
                saslprep("\u{0007}", kind), // 6: prohibited character
                Err(SaslprepError::Prohibited)
            );
            assert_eq!(
                saslprep("\u{0627}\u{0031}", kind), // 7: bidirectional check
                Err(SaslprepError::Bidirectional)
            );
        }
    }

    /// RFC 4013 §2.5 / RFC 3454 §7: U+0221 is unassigned in Unicode 3.2 (table A.1).
    #[test]
    fn unassigned_allowed_in_queries_refused_in_stored_strings() {
        assert_eq!(
            saslprep("pass\u{0221}", StringKind::Query).unwrap(),
            "pass\u{0221}"
        );
        assert_eq!(
            saslprep("pass\u{0221}", StringKind::Stored),
            Err(SaslprepError::Unassigned)
        );
    }

    #[test]
    fn mapping_and_prohibited_output() {
        for kind in BOTH {
            // Non-ASCII spaces (C.1.2) map to U+0020; U+200B is in B.1 too, and B.1 wins.
            assert_eq!(saslprep("a\u{00A0}b\u{3000}c", kind).unwrap(), "a b c");
            assert_eq!(saslprep("p\u{e9}\u{200B}", kind).unwrap(), "p\u{e9}");
            // NFKC composes: e + COMBINING ACUTE becomes U+00E9.
            assert_eq!(saslprep("e\u{0301}", kind).unwrap(), "\u{e9}");
            // ASCII controls (C.2.1), even alone among ASCII: the fast path does not skip them.
            assert_eq!(saslprep("a\u{7f}", kind), Err(SaslprepError::Prohibited));
            assert_eq!(saslprep("a\tb", kind), Err(SaslprepError::Prohibited));
            // Private use (C.3), non-character (C.4), tagging (C.9), display (C.8: LRM).
            for s in ["\u{E000}", "\u{FFFF}", "\u{E0001}", "a\u{200E}"] {
                assert_eq!(saslprep(s, kind), Err(SaslprepError::Prohibited), "{s:?}");
            }
            // Right-to-left only, first and last RandALCat: allowed.
            assert_eq!(
                saslprep("\u{0627}1\u{0628}", kind).unwrap(),
                "\u{0627}1\u{0628}"
            );
            // RandALCat mixed with LCat: refused.
            assert_eq!(
                saslprep("\u{0627}a\u{0628}", kind),
                Err(SaslprepError::Bidirectional)
            );
        }
    }

    #[test]
    fn errors_hold_no_part_of_the_string() {
        let e = saslprep("secret\u{0007}", StringKind::Query).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("secret"));
    }

    proptest! {
        /// Our stored-string result is the `stringprep` crate's own SASLprep, and a query
        /// gives the same string whenever it holds no unassigned code point.
        #[test]
        fn stored_matches_stringprep_and_query(s in "\\PC{0,12}|[ -~\u{a0}-\u{3000}]{0,12}") {
            let ours = saslprep(&s, StringKind::Stored).map(|c| c.into_owned()).ok();
            let theirs = stringprep::saslprep(&s).map(|c| c.into_owned()).ok();
            prop_assert_eq!(&ours, &theirs);
            if let Some(stored) = ours {
                prop_assert_eq!(saslprep(&s, StringKind::Query).unwrap(), stored);
            }
        }

        /// SASLprep is idempotent.
        #[test]
        fn idempotent(s in "\\PC{0,12}") {
            if let Ok(once) = saslprep(&s, StringKind::Query) {
                prop_assert_eq!(saslprep(&once, StringKind::Query).unwrap(), once.clone());
            }
        }
    }
}
