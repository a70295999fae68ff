//! Channel binding for the -PLUS mechanisms: the binding data a TLS channel gives (RFC 5929
//! `tls-server-end-point`, RFC 9266 `tls-exporter`) and the GS2 header that carries the
//! choice (RFC 5801 §4, RFC 5802 §7).
//!
//! The mechanism never looks at the TLS connection: the caller gets the data from its TLS
//! library and hands it over. [`tls_server_end_point`] computes RFC 5929's hash from the
//! server's certificate for callers whose TLS library does not.

use std::fmt;

use sha2::{Digest, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

/// The label RFC 9266 §2 gives the TLS exporter for `tls-exporter` (empty context, 32
/// bytes).
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// The length of `tls-exporter` binding data (RFC 9266 §2).
pub const TLS_EXPORTER_LEN: usize = 32;
/// The longest channel-binding type name accepted in a GS2 header. The registered names are
/// at most 20 characters (`tls-server-end-point`).
pub const MAX_CB_NAME: usize = 64;

/// A channel-binding type this crate can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingType {
    /// `tls-exporter` (RFC 9266): the TLS 1.3 exporter with label
    /// [`TLS_EXPORTER_LABEL`], no context, 32 bytes. The one to use over TLS 1.3.
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4): a hash of the server's certificate. Works over
    /// any TLS version, binds to the server's certificate rather than the session.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// The registered name (`"tls-exporter"`, `"tls-server-end-point"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBindingType::TlsExporter => "tls-exporter",
            ChannelBindingType::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// The type named `name` (exact, names are case-sensitive), if this crate knows it.
    pub fn from_name(name: &str) -> Option<ChannelBindingType> {
        match name {
            "tls-exporter" => Some(ChannelBindingType::TlsExporter),
            "tls-server-end-point" => Some(ChannelBindingType::TlsServerEndPoint),
            _ => None,
        }
    }
}

impl fmt::Display for ChannelBindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Channel-binding data of one type, taken from the TLS connection the exchange runs over.
///
/// The data is zeroed on drop and never printed: the exporter value is derived from the
/// session's secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelBinding {
    kind: ChannelBindingType,
    data: Zeroizing<Vec<u8>>,
}

impl ChannelBinding {
    /// Binding data of type `kind`.
    pub fn new(kind: ChannelBindingType, data: impl Into<Vec<u8>>) -> ChannelBinding {
        ChannelBinding {
            kind,
            data: Zeroizing::new(data.into()),
        }
    }

    /// `tls-exporter` data: the 32 bytes of the TLS exporter (RFC 9266).
    pub fn tls_exporter(data: impl Into<Vec<u8>>) -> ChannelBinding {
        ChannelBinding::new(ChannelBindingType::TlsExporter, data)
    }

    /// The type.
    pub fn kind(&self) -> ChannelBindingType {
        self.kind
    }

    /// The binding data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelBinding")
            .field("kind", &self.kind)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

/// Why [`tls_server_end_point`] could not hash a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndPointError {
    /// The bytes are not a DER certificate (`SEQUENCE { tbs, signatureAlgorithm, .. }`).
    #[error("not a DER-encoded certificate")]
    NotACertificate,
    /// RFC 5929 §4.1 defines no hash for this signature algorithm (Ed25519, RSASSA-PSS
    /// whose hash sits in the parameters, or an algorithm this crate does not know).
    #[error("no tls-server-end-point hash for the certificate's signature algorithm")]
    NoHashForSignature,
}

/// `tls-server-end-point` data (RFC 5929 §4.1) from the server certificate's DER: the
/// certificate hashed with the hash of its signature algorithm, SHA-256 where that is MD5
/// or SHA-1.
///
/// Only the outer structure is read (the signature algorithm's OID); the certificate is not
/// validated here, that is the TLS library's job.
pub fn tls_server_end_point(certificate_der: &[u8]) -> Result<ChannelBinding, EndPointError> {
    let data = match signature_hash(certificate_der)? {
        EndPointHash::Sha256 => Sha256::digest(certificate_der).to_vec(),
        EndPointHash::Sha384 => Sha384::digest(certificate_der).to_vec(),
        EndPointHash::Sha512 => Sha512::digest(certificate_der).to_vec(),
    };
    Ok(ChannelBinding::new(
        ChannelBindingType::TlsServerEndPoint,
        data,
    ))
}

enum EndPointHash {
    Sha256,
    Sha384,
    Sha512,
}

/// RFC 5929 §4.1's hash for the certificate's `signatureAlgorithm`.
fn signature_hash(der: &[u8]) -> Result<EndPointHash, EndPointError> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE {
    // algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }, signatureValue BIT STRING }
    let (cert, rest) = der_element(der, 0x30).ok_or(EndPointError::NotACertificate)?;
    if !rest.is_empty() {
        return Err(EndPointError::NotACertificate);
    }
    let (_tbs, after_tbs) = der_element(cert, 0x30).ok_or(EndPointError::NotACertificate)?;
    let (alg, _) = der_element(after_tbs, 0x30).ok_or(EndPointError::NotACertificate)?;
    let (oid, _) = der_element(alg, 0x06).ok_or(EndPointError::NotACertificate)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
    Ok(match oid {
        // md5WithRSAEncryption, sha1WithRSAEncryption, ecdsa-with-SHA1: SHA-256 instead.
        [r @ .., 0x04 | 0x05] if r == RSA => EndPointHash::Sha256,
        [e @ .., 0x01] if e == ECDSA => EndPointHash::Sha256,
        [r @ .., 0x0b] if r == RSA => EndPointHash::Sha256,
        [r @ .., 0x0c] if r == RSA => EndPointHash::Sha384,
        [r @ .., 0x0d] if r == RSA => EndPointHash::Sha512,
        [e @ .., 0x03, 0x02] if e == ECDSA => EndPointHash::Sha256,
        [e @ .., 0x03, 0x03] if e == ECDSA => EndPointHash::Sha384,
        [e @ .., 0x03, 0x04] if e == ECDSA => EndPointHash::Sha512,
        _ => return Err(EndPointError::NoHashForSignature),
    })
}

/// One DER element with tag `tag` at the start of `input`: its content and what follows.
/// Definite lengths only, at most four length octets, minimal encoding not required.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The channel-binding flag of a GS2 header (RFC 5801 §4, RFC 5802 §7 `gs2-cbind-flag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CbindFlag {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports channel binding but thinks the server does not (it did not
    /// offer a -PLUS mechanism). A server that does support it must fail the exchange:
    /// someone removed -PLUS from its list.
    ClientSupportsServerDoesNot,
    /// `p=name`: the client binds to the channel with this type. The name is kept as sent;
    /// [`ChannelBindingType::from_name`] says whether this crate knows it.
    Bound(String),
}

/// A parsed GS2 header: `gs2-cbind-flag "," [ "a=" saslname ] ","`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs2Header {
    /// The channel-binding flag.
    pub flag: CbindFlag,
    /// The authorization id, still escaped (`=2C`, `=3D`), if any.
    pub authzid: Option<String>,
}

/// Why a GS2 header did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Gs2Error {
    /// Fewer than two commas: no header at all.
    #[error("no GS2 header")]
    Missing,
    /// The flag is not `n`, `y` or `p=` followed by a well-formed name.
    #[error("bad channel-binding flag")]
    BadFlag,
    /// The authorization id part is neither empty nor `a=` with a non-empty value.
    #[error("bad authorization id in the GS2 header")]
    BadAuthzid,
}

impl Gs2Header {
    /// Parses the header at the start of `msg`; returns it and the rest of the message
    /// (what follows the second comma). Borrows nothing: the header is short.
    pub fn parse(msg: &str) -> Result<(Gs2Header, &str), Gs2Error> {
        let (flag, rest) = msg.split_once(',').ok_or(Gs2Error::Missing)?;
        let (authz, rest) = rest.split_once(',').ok_or(Gs2Error::Missing)?;
        let flag = match flag {
            "n" => CbindFlag::NotSupported,
            "y" => CbindFlag::ClientSupportsServerDoesNot,
            f => match f.strip_prefix("p=") {
                // cb-name = 1*(ALPHA / DIGIT / "." / "-") (RFC 5802 §7).
                Some(name)
                    if !name.is_empty()
                        && name.len() <= MAX_CB_NAME
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
                {
                    CbindFlag::Bound(name.to_owned())
                }
                _ => return Err(Gs2Error::BadFlag),
            },
        };
        let authzid = match authz {
            "" => None,
            a => match a.strip_prefix("a=") {
                Some(z) if !z.is_empty() => Some(z.to_owned()),
                _ => return Err(Gs2Error::BadAuthzid),
            },
        };
        Ok((Gs2Header { flag, authzid }, rest))
    }

    /// The header as sent, both commas included.
    pub fn encode(&self) -> String {
        let flag = match &self.flag {
            CbindFlag::NotSupported => "n".to_owned(),
            CbindFlag::ClientSupportsServerDoesNot => "y".to_owned(),
            CbindFlag::Bound(name) => format!("p={name}"),
        };
        match &self.authzid {
            Some(z) => format!("{flag},a={z},"),
            None => format!("{flag},,"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gs2_headers() {
        let (h, rest) = Gs2Header::parse("p=tls-exporter,a=bob=2C,n=u,r=x").unwrap();
        assert_eq!(h.flag, CbindFlag::Bound("tls-exporter".into()));
        assert_eq!(h.authzid.as_deref(), Some("bob=2C"));
        assert_eq!(rest, "n=u,r=x");
        assert_eq!(h.encode(), "p=tls-exporter,a=bob=2C,");
        let (h, _) = Gs2Header::parse("y,,n=u").unwrap();
        assert_eq!(h.flag, CbindFlag::ClientSupportsServerDoesNot);
        assert_eq!(h.authzid, None);
        for bad in [
            "", "n", "n,", "x,,", "p=,,", "p=a b,,", "n,a=,", "n,b=x,", "P=x,,",
        ] {
            assert!(Gs2Header::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("p={},,", "a".repeat(MAX_CB_NAME + 1));
        assert_eq!(Gs2Header::parse(&long), Err(Gs2Error::BadFlag));
    }

    #[test]
    fn type_names() {
        for t in [
            ChannelBindingType::TlsExporter,
            ChannelBindingType::TlsServerEndPoint,
        ] {
            assert_eq!(ChannelBindingType::from_name(t.as_str()), Some(t));
        }
        assert_eq!(ChannelBindingType::from_name("tls-unique"), None);
        assert_eq!(ChannelBindingType::from_name("TLS-EXPORTER"), None);
    }

    #[test]
    fn data_is_masked() {
        let cb = ChannelBinding::tls_exporter(vec![0x41; 32]);
        let shown = format!("{cb:?}");
        assert!(shown.contains("32 bytes") && !shown.contains("65") && !shown.contains('A'));
    }

    /// A certificate skeleton with the given signature algorithm OID (content bytes).
    fn cert(oid: &[u8]) -> Vec<u8> {
        let mut alg = vec![0x06, oid.len() as u8];
        alg.extend_from_slice(oid);
        alg.extend_from_slice(&[0x05, 0x00]);
        let mut body = vec![0x30, 0x03, 0x02, 0x01, 0x01]; // tbsCertificate stand-in
        body.push(0x30);
        body.push(alg.len() as u8);
        body.extend_from_slice(&alg);
        body.extend_from_slice(&[0x03, 0x02, 0x00, 0xff]); // signature
        let mut out = vec![0x30, 0x81, body.len() as u8]; // long-form length
        out.extend_from_slice(&body);
        out
    }

    /// RFC 5929 §4.1: MD5 and SHA-1 become SHA-256, others keep their own hash.
    #[test]
    fn end_point_hash_rules() {
        let rsa = |last: u8| {
            let mut o = vec![0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
            o.push(last);
            o
        };
        let ecdsa = |tail: &[u8]| {
            let mut o = vec![0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
            o.extend_from_slice(tail);
            o
        };
        let cases: [(Vec<u8>, usize); 8] = [
            (rsa(0x04), 32),            // md5WithRSAEncryption -> SHA-256
            (rsa(0x05), 32),            // sha1WithRSAEncryption -> SHA-256
            (rsa(0x0b), 32),            // sha256WithRSAEncryption
            (rsa(0x0c), 48),            // sha384WithRSAEncryption
            (rsa(0x0d), 64),            // sha512WithRSAEncryption
            (ecdsa(&[0x01]), 32),       // ecdsa-with-SHA1 -> SHA-256
            (ecdsa(&[0x03, 0x03]), 48), // ecdsa-with-SHA384
            (ecdsa(&[0x03, 0x04]), 64), // ecdsa-with-SHA512
        ];
        for (oid, len) in cases {
            let der = cert(&oid);
            let cb = tls_server_end_point(&der).unwrap();
            assert_eq!(cb.kind(), ChannelBindingType::TlsServerEndPoint);
            assert_eq!(cb.data().len(), len);
            if len == 32 {
                assert_eq!(cb.data(), &Sha256::digest(&der)[..]);
            }
        }
        // Ed25519 (1.3.101.112) and RSASSA-PSS: RFC 5929 names no hash.
        for oid in [vec![0x2b, 0x65, 0x70], rsa(0x0a)] {
            assert_eq!(
                tls_server_end_point(&cert(&oid)).unwrap_err(),
                EndPointError::NoHashForSignature
            );
        }
        let mut trailing = cert(&rsa(0x0b));
        trailing.push(0);
        for bad in [&[][..], &[0x30], &[0x30, 0x85, 1, 1, 1, 1, 1], &trailing] {
            assert_eq!(
                tls_server_end_point(bad).unwrap_err(),
                EndPointError::NotACertificate
            );
        }
    }

    proptest! {
        #[test]
        fn gs2_parse_encode_round_trip(s in "[npy=a-z0-9.,-]{0,24}") {
            if let Ok((h, rest)) = Gs2Header::parse(&s) {
                prop_assert_eq!(format!("{}{}", h.encode(), rest), s);
            }
        }

        #[test]
        fn end_point_never_panics(der in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = tls_server_end_point(&der);
        }
    }
}
