//! The common part of SASLprep (RFC 4013) used by SCRAM.
//!
//! Done: non-ASCII spaces (RFC 3454 table C.1.2) become U+0020, and the characters
//! "commonly mapped to nothing" (table B.1) are removed. Not done: NFKC normalisation and
//! the prohibited-character and bidirectional checks, which need the Unicode tables. ASCII
//! strings pass through unchanged, so they always match; a non-ASCII password only matches a
//! server that stores it in the same (usually NFC) form. Dovecot does not SASLprep at all.

/// Applies the mapping step of SASLprep to `s`.
pub(crate) fn saslprep(s: &str) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    s.chars()
        .filter(|c| !mapped_to_nothing(*c))
        .map(|c| if non_ascii_space(c) { ' ' } else { c })
        .collect()
}

/// RFC 3454 table B.1.
fn mapped_to_nothing(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{1806}' | '\u{180B}'..='\u{180D}'
        | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}')
}

/// RFC 3454 table C.1.2.
fn non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200B}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

#[cfg(test)]
mod tests {
    use super::saslprep;

    /// RFC 4013 section 3 examples that need only the mapping step.
    #[test]
    fn rfc4013_examples() {
        assert_eq!(saslprep("I\u{00AD}X"), "IX"); // SOFT HYPHEN mapped to nothing
        assert_eq!(saslprep("user"), "user");
        assert_eq!(saslprep("USER"), "USER"); // case preserved
        assert_eq!(saslprep("a\u{00A0}b\u{3000}c"), "a b c");
        assert_eq!(saslprep("p\u{00e9}\u{200B}"), "p\u{e9}"); // U+200B is in both tables; B.1 wins
    }
}
