//! SASL mechanism names as a type (RFC 4422 section 3.1), and the one table of what this
//! crate knows about each mechanism it implements: the selection order, the clear-text
//! check and both factories read it, so no list of names can drift from another.

use std::fmt;
use std::str::FromStr;

/// The longest mechanism name RFC 4422 section 3.1 allows, in characters.
pub const MAX_MECHANISM_NAME: usize = 20;

/// A SASL mechanism name: one this crate implements, or any other well-formed name.
///
/// Parsing is case-insensitive and gives the upper-case form; a well-formed name is 1 to 20
/// characters of `A-Z`, `0-9`, `-` and `_` (RFC 4422 section 3.1). A name this crate knows
/// always parses to its own variant, never to [`Other`](Self::Other): the value inside
/// `Other` can only be made by parsing.
///
/// ```
/// use sasl_mechs::{MechanismName, Needs};
/// let name: MechanismName = "scram-sha-256".parse()?;
/// assert_eq!(name, MechanismName::ScramSha256);
/// assert_eq!(name.as_str(), "SCRAM-SHA-256");
/// assert_eq!(name.needs(), Some(Needs::Password));
/// assert!(MechanismName::Plain.sends_password_in_clear());
///
/// let other = MechanismName::try_from("gs2-krb5")?;
/// assert_eq!(other.to_string(), "GS2-KRB5");
/// assert_eq!(other.needs(), None);
/// assert!("PLAIN TEXT".parse::<MechanismName>().is_err());
/// # Ok::<(), sasl_mechs::InvalidMechanismName>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MechanismName {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login).
    Login,
    /// `CRAM-MD5` (RFC 2195).
    CramMd5,
    /// `DIGEST-MD5` (RFC 2831; Historic since RFC 6331).
    DigestMd5,
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-1-PLUS` (RFC 5802 §6): SCRAM-SHA-1 bound to the TLS channel.
    ScramSha1Plus,
    /// `SCRAM-SHA-256-PLUS` (RFC 7677, RFC 5802 §6): SCRAM-SHA-256 bound to the TLS channel.
    ScramSha256Plus,
    /// `NTLM` (MS-NLMP).
    Ntlm,
    /// `XOAUTH2` (the bearer-token mechanism of Google and Microsoft).
    XOAuth2,
    /// `OAUTHBEARER` (RFC 7628).
    OAuthBearer,
    /// `EXTERNAL` (RFC 4422 appendix A).
    External,
    /// `ANONYMOUS` (RFC 4505).
    Anonymous,
    /// `GSSAPI` (RFC 4752): Kerberos V5 through the GSS-API (feature `gssapi`).
    Gssapi,
    /// Any other well-formed name, upper case. This crate implements no such mechanism.
    Other(OtherMechanismName),
}

/// What a mechanism needs from the [`Credentials`](crate::Credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Needs {
    /// A password ([`Credentials::new`](crate::Credentials::new)).
    Password,
    /// A bearer token ([`Credentials::with_token`](crate::Credentials::with_token)).
    Token,
    /// A password, and channel-binding data from the TLS connection
    /// ([`ClientOptions::channel_binding`](crate::ClientOptions::channel_binding)): the
    /// -PLUS mechanisms.
    PasswordAndChannelBinding,
    /// No secret in the [`Credentials`](crate::Credentials): EXTERNAL takes the identity
    /// from the channel, GSSAPI from the Kerberos ticket cache (`kinit`), ANONYMOUS has
    /// none.
    Nothing,
}

/// What the crate knows about one mechanism it implements.
struct Known {
    name: MechanismName,
    text: &'static str,
    needs: Needs,
    sends_password_in_clear: bool,
}

const fn known(
    name: MechanismName,
    text: &'static str,
    needs: Needs,
    sends_password_in_clear: bool,
) -> Known {
    Known {
        name,
        text,
        needs,
        sends_password_in_clear,
    }
}

/// Every mechanism this crate implements and what it needs, strongest first: a
/// mechanism's strength rank is its place here. [`MechanismName::ALL_KNOWN`] says why.
const KNOWN: [Known; 14] = {
    use MechanismName::*;
    use Needs::*;
    [
        known(
            ScramSha256Plus,
            "SCRAM-SHA-256-PLUS",
            PasswordAndChannelBinding,
            false,
        ),
        known(
            ScramSha1Plus,
            "SCRAM-SHA-1-PLUS",
            PasswordAndChannelBinding,
            false,
        ),
        known(Gssapi, "GSSAPI", Nothing, false),
        known(ScramSha256, "SCRAM-SHA-256", Password, false),
        known(ScramSha1, "SCRAM-SHA-1", Password, false),
        known(OAuthBearer, "OAUTHBEARER", Token, false),
        known(XOAuth2, "XOAUTH2", Token, false),
        known(CramMd5, "CRAM-MD5", Password, false),
        known(DigestMd5, "DIGEST-MD5", Password, false),
        known(Ntlm, "NTLM", Password, false),
        known(Plain, "PLAIN", Password, true),
        known(Login, "LOGIN", Password, true),
        known(External, "EXTERNAL", Nothing, false),
        known(Anonymous, "ANONYMOUS", Nothing, false),
    ]
};

/// The names of [`KNOWN`], strongest first, as strings.
pub(crate) const KNOWN_NAMES: [&str; KNOWN.len()] = {
    let mut out = [""; KNOWN.len()];
    let mut i = 0;
    while i < KNOWN.len() {
        out[i] = KNOWN[i].text;
        i += 1;
    }
    out
};

impl MechanismName {
    /// Every mechanism this crate implements, strongest first: the order
    /// [`select`](crate::select) prefers.
    ///
    /// SCRAM proves both sides and keeps the password off the wire; its -PLUS variants also
    /// bind the exchange to the TLS channel, so a man in the middle holding a certificate
    /// the client trusts still cannot relay it: they come first, SHA-256 before SHA-1, and
    /// are chosen only with channel-binding data. GSSAPI comes next: Kerberos authenticates
    /// both sides with keys the KDC issued, and no password reaches the server; it needs a
    /// ticket rather than anything in the credentials, so it is chosen only when the caller
    /// lists it in [`Policy::allowed`](crate::Policy::allowed) (and the crate has feature
    /// `gssapi`). The token mechanisms
    /// come next (they are only chosen when a token is given, and password mechanisms only
    /// when a password is); CRAM-MD5, DIGEST-MD5 and NTLM are challenge-response with weak
    /// hashes. DIGEST-MD5 has a client nonce and proves the server, but RFC 6331 moved it to
    /// Historic for its interoperability problems (digest-uri and realm checks, charset
    /// rules), and it is no harder to attack offline than CRAM-MD5 (both are MD5 over a
    /// password-equivalent secret): when a server offers both, CRAM-MD5 is the one that
    /// works more often, so DIGEST-MD5 comes after it and before NTLM. PLAIN and LOGIN send
    /// the password itself; EXTERNAL and ANONYMOUS are only chosen when the caller lists them
    /// in [`Policy::allowed`](crate::Policy::allowed).
    pub const ALL_KNOWN: [MechanismName; KNOWN.len()] = {
        let mut out = [MechanismName::Plain; KNOWN.len()];
        let mut i = 0;
        while i < KNOWN.len() {
            out[i] = KNOWN[i].name;
            i += 1;
        }
        out
    };

    /// The name, upper case (`"SCRAM-SHA-256"`).
    pub fn as_str(&self) -> &str {
        match self {
            MechanismName::Other(other) => other.as_str(),
            _ => self.static_str().unwrap_or_default(),
        }
    }

    /// What the mechanism needs from the credentials; `None` for [`Other`](Self::Other).
    pub fn needs(&self) -> Option<Needs> {
        self.known().map(|k| k.needs)
    }

    /// True when the mechanism sends the password itself, readable by anyone on the wire
    /// (PLAIN, LOGIN): use it only over an encrypted channel. False for
    /// [`Other`](Self::Other), which this crate cannot build.
    pub fn sends_password_in_clear(&self) -> bool {
        self.known().is_some_and(|k| k.sends_password_in_clear)
    }

    /// The mechanism's place in [`ALL_KNOWN`](Self::ALL_KNOWN): 0 is the strongest;
    /// `None` for [`Other`](Self::Other).
    pub fn strength_rank(&self) -> Option<usize> {
        KNOWN.iter().position(|k| k.name == *self)
    }

    /// True for the mechanisms this crate implements (every variant but `Other`).
    pub fn is_known(&self) -> bool {
        self.known().is_some()
    }

    /// The name of a known mechanism, for the errors and the functions that return
    /// `&'static str`.
    pub(crate) fn static_str(&self) -> Option<&'static str> {
        self.known().map(|k| k.text)
    }

    fn known(&self) -> Option<&'static Known> {
        KNOWN.iter().find(|k| k.name == *self)
    }
}

impl FromStr for MechanismName {
    type Err = InvalidMechanismName;

    fn from_str(s: &str) -> Result<MechanismName, InvalidMechanismName> {
        if let Some(k) = KNOWN.iter().find(|k| k.text.eq_ignore_ascii_case(s)) {
            return Ok(k.name);
        }
        OtherMechanismName::parse(s).map(MechanismName::Other)
    }
}

impl TryFrom<&str> for MechanismName {
    type Error = InvalidMechanismName;

    fn try_from(s: &str) -> Result<MechanismName, InvalidMechanismName> {
        s.parse()
    }
}

impl AsRef<str> for MechanismName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for MechanismName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A well-formed mechanism name this crate does not implement, upper case: what
/// [`MechanismName::Other`] holds. Made only by parsing a [`MechanismName`].
///
/// Kept inline (at most 20 ASCII bytes) so that a [`MechanismName`] is `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OtherMechanismName {
    bytes: [u8; MAX_MECHANISM_NAME],
    len: u8,
}

impl OtherMechanismName {
    fn parse(s: &str) -> Result<OtherMechanismName, InvalidMechanismName> {
        let refuse = |reason| Err(InvalidMechanismName::new(s, reason));
        if s.is_empty() {
            return refuse("is empty");
        }
        if s.len() > MAX_MECHANISM_NAME {
            return refuse("is longer than 20 characters");
        }
        let mut bytes = [0u8; MAX_MECHANISM_NAME];
        for (to, &b) in bytes.iter_mut().zip(s.as_bytes()) {
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return refuse("has a character other than A-Z, 0-9, '-' and '_'");
            }
            *to = b.to_ascii_uppercase();
        }
        Ok(OtherMechanismName {
            bytes,
            // At most 20, checked above.
            len: s.len() as u8,
        })
    }

    /// The name, upper case.
    pub fn as_str(&self) -> &str {
        // `parse` stores ASCII only, so the bytes are always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for OtherMechanismName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A string that is not a SASL mechanism name: the name as given (shortened) and why.
///
/// ```
/// let e = "SCRAM SHA".parse::<sasl_mechs::MechanismName>().unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     r#"invalid SASL mechanism name "SCRAM SHA": has a character other than A-Z, 0-9, '-' and '_'"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SASL mechanism name {name:?}: {reason}")]
pub struct InvalidMechanismName {
    name: String,
    reason: &'static str,
}

/// At most this many characters of a refused name are kept for the error message.
const QUOTE_LIMIT: usize = 40;

impl InvalidMechanismName {
    fn new(name: &str, reason: &'static str) -> InvalidMechanismName {
        InvalidMechanismName {
            name: name.chars().take(QUOTE_LIMIT).collect(),
            reason,
        }
    }

    /// The name as given, cut after 40 characters.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why it is refused.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant but `Other`, written out so that the tests below cover a variant even if
    /// it were missing from the table.
    const VARIANTS: [MechanismName; 14] = [
        MechanismName::ScramSha1Plus,
        MechanismName::ScramSha256Plus,
        MechanismName::Plain,
        MechanismName::Login,
        MechanismName::CramMd5,
        MechanismName::DigestMd5,
        MechanismName::ScramSha1,
        MechanismName::ScramSha256,
        MechanismName::Ntlm,
        MechanismName::XOAuth2,
        MechanismName::OAuthBearer,
        MechanismName::External,
        MechanismName::Anonymous,
        MechanismName::Gssapi,
    ];

    #[test]
    fn every_variant_is_in_the_table_once() {
        assert_eq!(MechanismName::ALL_KNOWN.len(), VARIANTS.len());
        for v in VARIANTS {
            assert_eq!(
                MechanismName::ALL_KNOWN.iter().filter(|k| **k == v).count(),
                1,
                "{v:?}"
            );
            assert!(v.is_known());
        }
    }

    #[test]
    fn every_known_name_round_trips_in_any_case() {
        for name in MechanismName::ALL_KNOWN {
            let text = name.as_str();
            assert!(!text.is_empty(), "{name:?}");
            assert_eq!(text, text.to_ascii_uppercase());
            assert_eq!(text.parse::<MechanismName>(), Ok(name));
            assert_eq!(MechanismName::try_from(text), Ok(name));
            assert_eq!(text.to_ascii_lowercase().parse::<MechanismName>(), Ok(name));
            assert_eq!(name.to_string(), text);
            assert_eq!(name.as_ref(), text);
        }
    }

    #[test]
    fn the_properties_table() {
        use MechanismName::*;
        let expected = [
            // name, text, needs, sends the password in clear
            (
                ScramSha256Plus,
                "SCRAM-SHA-256-PLUS",
                Needs::PasswordAndChannelBinding,
                false,
            ),
            (
                ScramSha1Plus,
                "SCRAM-SHA-1-PLUS",
                Needs::PasswordAndChannelBinding,
                false,
            ),
            (Gssapi, "GSSAPI", Needs::Nothing, false),
            (ScramSha256, "SCRAM-SHA-256", Needs::Password, false),
            (ScramSha1, "SCRAM-SHA-1", Needs::Password, false),
            (OAuthBearer, "OAUTHBEARER", Needs::Token, false),
            (XOAuth2, "XOAUTH2", Needs::Token, false),
            (CramMd5, "CRAM-MD5", Needs::Password, false),
            (DigestMd5, "DIGEST-MD5", Needs::Password, false),
            (Ntlm, "NTLM", Needs::Password, false),
            (Plain, "PLAIN", Needs::Password, true),
            (Login, "LOGIN", Needs::Password, true),
            (External, "EXTERNAL", Needs::Nothing, false),
            (Anonymous, "ANONYMOUS", Needs::Nothing, false),
        ];
        for (rank, (name, text, needs, clear)) in expected.into_iter().enumerate() {
            assert_eq!(MechanismName::ALL_KNOWN[rank], name);
            assert_eq!(name.strength_rank(), Some(rank), "{name:?}");
            assert_eq!(name.as_str(), text);
            assert_eq!(name.needs(), Some(needs), "{name:?}");
            assert_eq!(name.sends_password_in_clear(), clear, "{name:?}");
            assert_eq!(KNOWN_NAMES[rank], text);
        }
    }

    #[test]
    fn other_names_are_validated_and_upper_cased() {
        let other = "x-Vendor_Mech-2".parse::<MechanismName>().unwrap();
        assert_eq!(other.as_str(), "X-VENDOR_MECH-2");
        assert_eq!(format!("{other:?}"), r#"Other("X-VENDOR_MECH-2")"#);
        assert!(!other.is_known());
        assert_eq!(other.needs(), None);
        assert_eq!(other.strength_rank(), None);
        assert!(!other.sends_password_in_clear());
        assert_eq!(other, "X-VENDOR_MECH-2".parse().unwrap());
        let twenty = "A".repeat(20);
        assert_eq!(twenty.parse::<MechanismName>().unwrap().as_str(), twenty);
        assert_eq!("9".parse::<MechanismName>().unwrap().as_str(), "9");
    }

    #[test]
    fn malformed_names_are_refused() {
        let too_long = "A".repeat(21);
        for bad in [
            "",
            too_long.as_str(),
            "SCRAM SHA",
            " PLAIN",
            "PLAIN ",
            "PLA\0IN",
            "\0",
            "PLAIN\r\n",
            "SCRAM.SHA",
            "PLAİN",
            "é",
        ] {
            let e = bad.parse::<MechanismName>().unwrap_err();
            assert!(!e.reason().is_empty());
            assert!(bad.starts_with(e.name()), "{bad:?}");
        }
        let long = "x".repeat(1000);
        let e = long.parse::<MechanismName>().unwrap_err();
        assert_eq!(e.name().len(), QUOTE_LIMIT);
        assert_eq!(e.reason(), "is longer than 20 characters");
    }
}
