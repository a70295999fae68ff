//! NTLM (MS-NLMP) as a SASL mechanism: negotiate (type 1) → challenge (type 2) →
//! authenticate (type 3). Hash functions and message encoding come from `ntlmclient`; the
//! type-2 message is parsed here, bounds-checked field by field, so that no server can make
//! the client panic.
//!
//! The crate root exports the mechanism ([`Ntlm`], [`NtlmOptions`], [`NtlmVersion`], and
//! `NtlmServer` with feature `server`); what only NTLM has stays under this path: the
//! type-2 parser [`ChallengeMessage`], [`split_user`] and the message size limits.

use hmac::{Hmac, Mac};
use md5::Md5;
use ntlmclient::{AuthenticateMessage, Flags, Message, NegotiateMessage};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::mechanism::{response, Response};
use crate::ntlmssp::{check_header, security_buffer, u16_at, u32_at};
use crate::{Credentials, Mechanism, SaslError};

const NAME: &str = "NTLM";

/// The largest type-2 message accepted. Security buffers have 16-bit lengths, so a real
/// message is far below this.
pub const MAX_CHALLENGE_LEN: usize = 64 * 1024;

#[cfg(feature = "server")]
pub use crate::ntlm_server::MAX_CLIENT_MESSAGE_LEN;

/// Which NTLM response to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NtlmVersion {
    /// NTLMv2 and LMv2 (MS-NLMP 3.3.2). The default.
    #[default]
    V2,
    /// NTLMv1 and LMv1 (MS-NLMP 3.3.1): weak, for old servers only, when asked.
    V1,
}

/// NTLM options.
#[derive(Debug, Clone)]
pub struct NtlmOptions {
    /// NTLMv2 (default) or NTLMv1.
    pub version: NtlmVersion,
    /// The workstation name sent in the type-3 message. Default: empty (the client's host
    /// name is not disclosed).
    pub workstation: String,
    /// The domain, when the user name does not carry one (`DOMAIN\user`, `user@domain`).
    pub domain: Option<String>,
    /// Upper-case the domain before hashing and sending it (default true): Cyrus SASL
    /// upper-cases it when it checks an NTLMv2 response, Windows does not care.
    pub uppercase_domain: bool,
}

impl Default for NtlmOptions {
    fn default() -> NtlmOptions {
        NtlmOptions {
            version: NtlmVersion::V2,
            workstation: String::new(),
            domain: None,
            uppercase_domain: true,
        }
    }
}

/// Splits `DOMAIN\user` or `user@domain` into (user, domain).
pub fn split_user(name: &str) -> (&str, Option<&str>) {
    if let Some((d, u)) = name.split_once('\\') {
        return (u, Some(d));
    }
    if let Some((u, d)) = name.rsplit_once('@') {
        return (u, Some(d));
    }
    (name, None)
}

/// A type-2 (challenge) message, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeMessage<'a> {
    /// The server's negotiated flags.
    pub flags: Flags,
    /// The 8-byte server challenge.
    pub server_challenge: [u8; 8],
    /// The raw target name bytes (UTF-16LE or OEM per `flags`).
    pub target_name: &'a [u8],
    /// The raw target information (AV pairs, ending with MsvAvEOL), empty if none.
    pub target_info: &'a [u8],
    /// The MsvAvTimestamp value, if the target information has one.
    pub timestamp: Option<u64>,
}

fn bad(reason: impl Into<String>) -> SaslError {
    SaslError::MalformedChallenge {
        mechanism: NAME,
        reason: reason.into(),
    }
}

impl<'a> ChallengeMessage<'a> {
    /// Parses and validates a type-2 message: signature, type, every security buffer within
    /// the message, target information made of whole AV pairs ending with MsvAvEOL.
    pub fn parse(msg: &'a [u8]) -> Result<ChallengeMessage<'a>, SaslError> {
        // 32 bytes: signature, type, target name buffer, flags, server challenge.
        check_header(msg, 2, 32, MAX_CHALLENGE_LEN).map_err(bad)?;
        let target_name = security_buffer(msg, 12, "target name").map_err(bad)?;
        let flags = Flags::from_bits_retain(u32_at(msg, 20).unwrap_or(0));
        let mut server_challenge = [0u8; 8];
        server_challenge.copy_from_slice(&msg[24..32]);
        // Context (8 bytes) and the target-info buffer are absent from the oldest servers'
        // 32-byte messages.
        let target_info = if msg.len() >= 48 && flags.contains(Flags::NEGOTIATE_TARGET_INFO) {
            security_buffer(msg, 40, "target info").map_err(bad)?
        } else {
            &[]
        };
        let timestamp = parse_av_pairs(target_info)?;
        Ok(ChallengeMessage {
            flags,
            server_challenge,
            target_name,
            target_info,
            timestamp,
        })
    }
}

/// Checks AV pairs (MS-NLMP 2.2.2.1); returns the MsvAvTimestamp value, if any.
pub(crate) fn parse_av_pairs(mut info: &[u8]) -> Result<Option<u64>, SaslError> {
    let mut timestamp = None;
    if info.is_empty() {
        return Ok(None);
    }
    while !info.is_empty() {
        let id = u16_at(info, 0).ok_or_else(|| bad("target info: truncated AV pair"))?;
        let len =
            usize::from(u16_at(info, 2).ok_or_else(|| bad("target info: truncated AV pair"))?);
        let value = info
            .get(4..4 + len)
            .ok_or_else(|| bad("target info: AV pair past the end"))?;
        match id {
            0 => return Ok(timestamp), // MsvAvEOL; anything after it is ignored.
            7 => {
                let v: [u8; 8] = value
                    .try_into()
                    .map_err(|_| bad("target info: timestamp is not 8 bytes"))?;
                timestamp = Some(u64::from_le_bytes(v));
            }
            _ => {}
        }
        info = &info[4 + len..];
    }
    Err(bad("target info: no MsvAvEOL"))
}

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut m = <Hmac<Md5> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// DES-encrypts `block` with a 56-bit key given as 7 bytes (MS-NLMP 6, `DES()`), the key
/// spread over 8 bytes with the low (parity) bit of each unused.
fn des7(key7: &[u8], block: &[u8; 8]) -> [u8; 8] {
    use des::cipher::{BlockEncrypt, KeyInit};
    let k = key7;
    let key8 = [
        k[0] & 0xfe,
        (k[0] << 7) | (k[1] >> 1),
        (k[1] << 6) | (k[2] >> 2),
        (k[2] << 5) | (k[3] >> 3),
        (k[3] << 4) | (k[4] >> 4),
        (k[4] << 3) | (k[5] >> 5),
        (k[5] << 2) | (k[6] >> 6),
        k[6] << 1,
    ];
    let cipher = des::Des::new(&key8.into());
    let mut b = (*block).into();
    cipher.encrypt_block(&mut b);
    b.into()
}

/// `DESL()` of MS-NLMP 6: three DES blocks keyed by the 16-byte key, zero-padded to 21.
pub(crate) fn desl(key: &[u8; 16], data: &[u8; 8]) -> [u8; 24] {
    let mut k = [0u8; 21];
    k[..16].copy_from_slice(key);
    let mut out = [0u8; 24];
    for i in 0..3 {
        out[i * 8..i * 8 + 8].copy_from_slice(&des7(&k[i * 7..i * 7 + 7], data));
    }
    out
}

/// `LMOWFv1()` of MS-NLMP 3.3.1: the upper-cased password, 14 bytes, as two DES keys.
pub(crate) fn lmowf_v1(password: &str) -> Zeroizing<[u8; 16]> {
    let mut p = Zeroizing::new([0u8; 14]);
    let upper = Zeroizing::new(password.to_uppercase());
    for (d, s) in p.iter_mut().zip(upper.bytes()) {
        *d = s;
    }
    let mut out = Zeroizing::new([0u8; 16]);
    out[..8].copy_from_slice(&des7(&p[..7], b"KGS!@#$%"));
    out[8..].copy_from_slice(&des7(&p[7..], b"KGS!@#$%"));
    out
}

/// `NTOWFv1()` of MS-NLMP 3.3.1: MD4 of the UTF-16LE password.
pub(crate) fn ntowf_v1(password: &str) -> Zeroizing<[u8; 16]> {
    Zeroizing::new(ntlmclient::ntlm_v1_password_func(password))
}

/// The NTLMv1 computation of MS-NLMP 3.3.1 (no extended session security):
/// (LM response, NT response).
pub(crate) fn v1_response(password: &str, server_challenge: &[u8; 8]) -> (Vec<u8>, Vec<u8>) {
    let nt = desl(&ntowf_v1(password), server_challenge);
    let lm = desl(&lmowf_v1(password), server_challenge);
    (lm.to_vec(), nt.to_vec())
}

/// The NTLMv2 computation of MS-NLMP 3.3.2, with the client challenge and time given.
pub(crate) struct V2Response {
    pub(crate) nt_response: Vec<u8>,
    pub(crate) lm_response: Vec<u8>,
    /// Checked against MS-NLMP 4.2.4; SASL NTLM has no security layer that would use it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) session_base_key: Zeroizing<[u8; 16]>,
}

pub(crate) fn ntowf_v2(user: &str, domain: &str, password: &str) -> Zeroizing<[u8; 16]> {
    Zeroizing::new(ntlmclient::ntlm_v2_password_func(
        &ntlmclient::Credentials {
            username: user.to_owned(),
            password: password.to_owned(),
            domain: domain.to_owned(),
        },
    ))
}

pub(crate) fn v2_response(
    response_key_nt: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    time: u64,
    target_info: &[u8],
) -> V2Response {
    let mut temp = Vec::with_capacity(32 + target_info.len());
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&time.to_le_bytes());
    temp.extend_from_slice(client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(target_info);
    temp.extend_from_slice(&[0; 4]);
    let nt_proof = hmac_md5(response_key_nt, &[server_challenge, &temp]);
    let mut nt_response = nt_proof.to_vec();
    nt_response.extend_from_slice(&temp);
    let mut lm_response = hmac_md5(response_key_nt, &[server_challenge, client_challenge]).to_vec();
    lm_response.extend_from_slice(client_challenge);
    let session_base_key = Zeroizing::new(hmac_md5(response_key_nt, &[&nt_proof]));
    V2Response {
        nt_response,
        lm_response,
        session_base_key,
    }
}

/// Now in Windows FILETIME units (100 ns since 1601-01-01).
pub(crate) fn filetime_now() -> u64 {
    const UNIX_TO_1601: u64 = 11_644_473_600;
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() + UNIX_TO_1601) * 10_000_000 + u64::from(d.subsec_nanos() / 100)
}

#[derive(Debug, PartialEq)]
enum State {
    Start,
    ExpectChallenge,
    Done,
}

/// The NTLM client. The initial response is the type-1 (negotiate) message; the answer to
/// the server's type-2 challenge is the type-3 (authenticate) message. The server does not
/// prove itself. No session key is sent (no signing or sealing: SASL NTLM has no security
/// layer).
pub struct Ntlm {
    user: String,
    domain: String,
    password: Zeroizing<String>,
    options: NtlmOptions,
    fixed: Option<([u8; 8], u64)>,
    state: State,
}

impl std::fmt::Debug for Ntlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ntlm")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("password", &"***")
            .field("options", &self.options)
            .finish()
    }
}

impl Ntlm {
    /// Builds the client; needs a password. The user name may be `DOMAIN\user` or
    /// `user@domain`; otherwise the domain is `options.domain` (or empty).
    pub fn new(creds: &Credentials, options: &NtlmOptions) -> Result<Ntlm, SaslError> {
        let password = creds.password_without_authzid(NAME)?;
        let (user, domain) = split_user(creds.authcid());
        let domain = domain.or(options.domain.as_deref()).unwrap_or("");
        let domain = if options.uppercase_domain {
            domain.to_uppercase()
        } else {
            domain.to_owned()
        };
        Ok(Ntlm {
            user: user.to_owned(),
            domain,
            password: Zeroizing::new(password.expose().to_owned()),
            options: options.clone(),
            fixed: None,
            state: State::Start,
        })
    }

    /// Fixes the NTLMv2 client challenge and time. For tests against MS-NLMP vectors only.
    #[doc(hidden)]
    pub fn with_fixed_client_challenge(mut self, client_challenge: [u8; 8], time: u64) -> Ntlm {
        self.fixed = Some((client_challenge, time));
        self
    }

    fn negotiate(&mut self) -> Result<Response, SaslError> {
        let msg = Message::Negotiate(NegotiateMessage {
            flags: Flags::NEGOTIATE_UNICODE
                | Flags::NEGOTIATE_OEM
                | Flags::REQUEST_TARGET
                | Flags::NEGOTIATE_NTLM
                | Flags::NEGOTIATE_ALWAYS_SIGN,
            supplied_domain: String::new(),
            supplied_workstation: String::new(),
            os_version: Default::default(),
        });
        let bytes = msg
            .to_bytes()
            .map_err(|e| bad(format!("encoding type 1: {e}")))?;
        self.state = State::ExpectChallenge;
        Ok(response(bytes))
    }

    fn authenticate(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
        let c = ChallengeMessage::parse(challenge)?;
        let (lm_response, nt_response) = match self.options.version {
            NtlmVersion::V2 => {
                let (client_challenge, time) = self.fixed.unwrap_or_else(|| {
                    let mut cc = [0u8; 8];
                    OsRng.fill_bytes(&mut cc);
                    (cc, c.timestamp.unwrap_or_else(filetime_now))
                });
                let key = ntowf_v2(&self.user, &self.domain, &self.password);
                let r = v2_response(
                    &key,
                    &c.server_challenge,
                    &client_challenge,
                    time,
                    c.target_info,
                );
                (r.lm_response, r.nt_response)
            }
            NtlmVersion::V1 => v1_response(&self.password, &c.server_challenge),
        };
        let mut flags =
            Flags::NEGOTIATE_NTLM | Flags::REQUEST_TARGET | Flags::NEGOTIATE_ALWAYS_SIGN;
        flags |= if c.flags.contains(Flags::NEGOTIATE_UNICODE)
            || !c.flags.contains(Flags::NEGOTIATE_OEM)
        {
            Flags::NEGOTIATE_UNICODE
        } else {
            Flags::NEGOTIATE_OEM
        };
        let msg = Message::Authenticate(AuthenticateMessage {
            lm_response,
            ntlm_response: nt_response,
            domain_name: self.domain.clone(),
            user_name: self.user.clone(),
            workstation_name: self.options.workstation.clone(),
            session_key: Vec::new(),
            flags,
            os_version: Default::default(),
        });
        let bytes = msg
            .to_bytes()
            .map_err(|e| bad(format!("encoding type 3: {e}")))?;
        self.state = State::Done;
        Ok(response(bytes))
    }
}

impl Mechanism for Ntlm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn has_initial_response(&self) -> bool {
        true
    }

    fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
        if self.state != State::Start {
            return Err(SaslError::OutOfOrder {
                mechanism: NAME,
                what: "initial_response after the exchange started",
            });
        }
        self.negotiate().map(Some)
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Response, SaslError> {
        match self.state {
            State::Start => self.negotiate(),
            State::ExpectChallenge => self.authenticate(challenge),
            State::Done => Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: 2,
            }),
        }
    }

    fn finish(&mut self, success_data: Option<&[u8]>) -> Result<(), SaslError> {
        if self.state != State::Done {
            return Err(SaslError::PrematureSuccess { mechanism: NAME });
        }
        if success_data.is_some_and(|d| !d.is_empty()) {
            return Err(SaslError::UnexpectedChallenge {
                mechanism: NAME,
                step: 2,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntlmssp::{unhex, SIGNATURE};

    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    /// MS-NLMP 4.2.2: NTLMv1 with User / Domain / Password.
    #[test]
    fn ms_nlmp_4_2_2_ntlm_v1() {
        assert_eq!(
            ntlmclient::ntlm_v1_password_func("Password").to_vec(),
            unhex("a4f49c406510bdcab6824ee7c30fd852")
        );
        assert_eq!(
            lmowf_v1("Password").to_vec(),
            unhex("e52cac67419a9a224a3b108f3fa6cb6d")
        );
        let (lm, nt) = v1_response("Password", &SERVER_CHALLENGE);
        assert_eq!(
            nt,
            unhex("67c43011f30298a2ad35ece64f16331c44bdbed927841f94")
        );
        assert_eq!(
            lm,
            unhex("98def7b87f88aa5dafe2df779688a172def11c7d5ccdef13")
        );
    }

    /// MS-NLMP 4.2.4: the AV pairs (MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server").
    fn ms_nlmp_target_info() -> Vec<u8> {
        unhex("02000c0044006f006d00610069006e0001000c005300650072007600650072000000 0000")
    }

    /// MS-NLMP 4.2.4: NTLMv2 with client challenge aa..aa and time 0.
    #[test]
    fn ms_nlmp_4_2_4_ntlm_v2() {
        let key = ntowf_v2("User", "Domain", "Password");
        assert_eq!(key.to_vec(), unhex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let r = v2_response(
            &key,
            &SERVER_CHALLENGE,
            &[0xaa; 8],
            0,
            &ms_nlmp_target_info(),
        );
        assert_eq!(
            r.nt_response[..16],
            unhex("68cd0ab851e51c96aabc927bebef6a1c")[..]
        );
        assert_eq!(
            r.lm_response,
            unhex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        );
        assert_eq!(
            r.session_base_key.to_vec(),
            unhex("8de40ccadbc14a82f15cb0ad0de95ca3")
        );
    }

    /// A type-2 message as a server builds it, with the MS-NLMP 4.2.4 challenge and AV pairs.
    pub(crate) fn type2(target_info: &[u8], flags: Flags) -> Vec<u8> {
        let name: Vec<u8> = "Server".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&(name.len() as u16).to_le_bytes());
        m.extend_from_slice(&(name.len() as u16).to_le_bytes());
        m.extend_from_slice(&56u32.to_le_bytes());
        m.extend_from_slice(&flags.bits().to_le_bytes());
        m.extend_from_slice(&SERVER_CHALLENGE);
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(target_info.len() as u16).to_le_bytes());
        m.extend_from_slice(&(target_info.len() as u16).to_le_bytes());
        m.extend_from_slice(&(56 + name.len() as u32).to_le_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&name);
        m.extend_from_slice(target_info);
        m
    }

    #[test]
    fn full_exchange_carries_the_ms_nlmp_v2_response() {
        let creds = Credentials::new("Domain\\User", "Password").unwrap();
        let opts = NtlmOptions {
            uppercase_domain: false,
            workstation: "COMPUTER".into(),
            ..NtlmOptions::default()
        };
        let mut m = Ntlm::new(&creds, &opts)
            .unwrap()
            .with_fixed_client_challenge([0xaa; 8], 0);
        let t1 = m.initial_response().unwrap().unwrap();
        assert_eq!(&t1[..8], SIGNATURE);
        assert_eq!(t1[8], 1);
        let t2 = type2(
            &ms_nlmp_target_info(),
            Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_NTLM | Flags::NEGOTIATE_TARGET_INFO,
        );
        let t3 = m.respond(&t2).unwrap();
        let Ok(Message::Authenticate(a)) = Message::try_from(&t3[..]) else {
            panic!("not a type-3 message")
        };
        assert_eq!(a.user_name, "User");
        assert_eq!(a.domain_name, "Domain");
        assert_eq!(a.workstation_name, "COMPUTER");
        assert!(a.session_key.is_empty());
        assert_eq!(
            a.ntlm_response[..16],
            unhex("68cd0ab851e51c96aabc927bebef6a1c")[..]
        );
        assert_eq!(
            a.lm_response,
            unhex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        );
        assert!(matches!(
            m.respond(&t2),
            Err(SaslError::UnexpectedChallenge { .. })
        ));
        m.finish(None).unwrap();
    }

    #[test]
    fn user_forms_and_domain_case() {
        assert_eq!(split_user("DOM\\u"), ("u", Some("DOM")));
        assert_eq!(split_user("u@example.test"), ("u", Some("example.test")));
        assert_eq!(split_user("u"), ("u", None));
        let m = Ntlm::new(
            &Credentials::new("u@example.test", "p").unwrap(),
            &NtlmOptions::default(),
        )
        .unwrap();
        assert_eq!(m.domain, "EXAMPLE.TEST");
        assert_eq!(m.user, "u");
    }

    #[test]
    fn v1_when_asked() {
        let creds = Credentials::new("Domain\\User", "Password").unwrap();
        let opts = NtlmOptions {
            version: NtlmVersion::V1,
            ..NtlmOptions::default()
        };
        let mut m = Ntlm::new(&creds, &opts).unwrap();
        m.initial_response().unwrap();
        let t3 = m
            .respond(&type2(
                &[],
                Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_NTLM,
            ))
            .unwrap();
        let Ok(Message::Authenticate(a)) = Message::try_from(&t3[..]) else {
            panic!("not a type-3 message")
        };
        assert_eq!(
            a.ntlm_response,
            unhex("67c43011f30298a2ad35ece64f16331c44bdbed927841f94")
        );
    }

    #[test]
    fn hostile_type2_messages_are_errors() {
        let good = type2(
            &ms_nlmp_target_info(),
            Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_NTLM | Flags::NEGOTIATE_TARGET_INFO,
        );
        assert!(ChallengeMessage::parse(&good).is_ok());
        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), b"NTLMSSP\0".to_vec(), vec![0; 64]];
        for cut in [1, 10, 31, 40, 47, good.len() - 1] {
            cases.push(good[..cut].to_vec());
        }
        let mut wrong_type = good.clone();
        wrong_type[8] = 3;
        cases.push(wrong_type);
        // Target name offset past the end, and u32::MAX.
        for off in [good.len() as u32, u32::MAX, u32::MAX - 3] {
            let mut m = good.clone();
            m[16..20].copy_from_slice(&off.to_le_bytes());
            cases.push(m);
        }
        // Absurd target-info length.
        let mut m = good.clone();
        m[40..42].copy_from_slice(&u16::MAX.to_le_bytes());
        cases.push(m);
        // AV pair claiming more than there is; missing EOL; bad timestamp length.
        for info in [
            &b"\x02\x00\xff\xff"[..],
            b"\x02\x00\x02\x00ab",
            b"\x07\x00\x02\x00ab\x00\x00\x00\x00",
            b"\x01",
        ] {
            cases.push(type2(
                info,
                Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_TARGET_INFO,
            ));
        }
        cases.push(vec![0; MAX_CHALLENGE_LEN + 1]);
        for c in cases {
            let creds = Credentials::new("u", "p").unwrap();
            let mut m = Ntlm::new(&creds, &NtlmOptions::default()).unwrap();
            m.initial_response().unwrap();
            assert!(
                matches!(m.respond(&c), Err(SaslError::MalformedChallenge { .. })),
                "{c:02x?}"
            );
        }
    }

    #[test]
    fn minimal_32_byte_challenge_is_accepted() {
        let good = type2(&[], Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_NTLM);
        let mut short = good[..32].to_vec();
        short[12..20].copy_from_slice(&[0; 8]);
        let c = ChallengeMessage::parse(&short).unwrap();
        assert_eq!(c.server_challenge, SERVER_CHALLENGE);
        assert!(c.target_info.is_empty());
    }
}
