//! The NTLM server (feature `server`): answers the client's type-1 message with a type-2
//! challenge it builds itself, then checks the type-3 message's NTLMv2 or NTLMv1 response.

use ntlmclient::Flags;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::ntlm::{desl, filetime_now, hmac_md5, ntowf_v1, ntowf_v2};
use crate::ntlmssp::{check_header, security_buffer, u32_at, SIGNATURE};
use crate::scram::ct_eq;
use crate::server::{Authenticated, PasswordLookup, ServerMechanism, ServerStep};
use crate::SaslError;

const NAME: &str = "NTLM";

/// The largest client message (type 1 or type 3) the server reads. Security buffers have
/// 16-bit lengths, so a real message is far below this.
pub const MAX_CLIENT_MESSAGE_LEN: usize = 64 * 1024;

/// Where the payload of the type-2 message starts: the 48-byte header plus the 8-byte
/// Version field, sent as zeros (the field is there so that clients reading a fixed
/// 56-byte header find the payload where they expect it).
const TYPE2_PAYLOAD: usize = 56;

/// NTLMv2 response: NTProofStr (16) + the fixed part of the client blob (28).
const MIN_V2_RESPONSE: usize = 16 + 28;

fn malformed(reason: impl Into<String>) -> SaslError {
    SaslError::MalformedResponse {
        mechanism: NAME,
        reason: reason.into(),
    }
}

/// The longest target name kept, in characters: keeps every length within 16 bits.
const MAX_TARGET_CHARS: usize = 255;

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn push_av(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    // Values are built here from short names and 8-byte timestamps.
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// The bytes a type-3 security buffer (length, capacity, offset) at `at` points to.
fn field<'a>(msg: &'a [u8], at: usize, what: &str) -> Result<&'a [u8], SaslError> {
    security_buffer(msg, at, what).map_err(malformed)
}

/// Decodes a type-3 string: UTF-16LE when Unicode was negotiated, else the OEM bytes read as
/// ISO-8859-1.
fn text(b: &[u8], unicode: bool, what: &str) -> Result<String, SaslError> {
    if !unicode {
        return Ok(b.iter().map(|&c| char::from(c)).collect());
    }
    if b.len() % 2 != 0 {
        return Err(malformed(format!("{what}: odd length for UTF-16")));
    }
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| malformed(format!("{what}: invalid UTF-16")))
}

/// A parsed type-3 (authenticate) message, borrowing the responses.
struct AuthenticateMessage<'a> {
    nt_response: &'a [u8],
    domain: String,
    user: String,
}

impl<'a> AuthenticateMessage<'a> {
    /// Parses a type-3 message; `negotiated_unicode` is what the type-2 message chose, used
    /// when the message is too short to carry its own flags.
    fn parse(msg: &'a [u8], negotiated_unicode: bool) -> Result<Self, SaslError> {
        // 52 bytes: signature, type, and the five buffers up to the workstation's.
        check_header(msg, 3, 52, MAX_CLIENT_MESSAGE_LEN).map_err(malformed)?;
        // The oldest clients stop after the workstation buffer (52 bytes); the others add
        // the session key buffer and the flags.
        let unicode = match u32_at(msg, 60) {
            Some(f) if msg.len() >= 64 => {
                Flags::from_bits_retain(f).contains(Flags::NEGOTIATE_UNICODE)
            }
            _ => negotiated_unicode,
        };
        let _lm_response = field(msg, 12, "LM response")?;
        let nt_response = field(msg, 20, "NT response")?;
        let domain = text(field(msg, 28, "domain")?, unicode, "domain")?;
        let user = text(field(msg, 36, "user name")?, unicode, "user name")?;
        let _workstation = text(field(msg, 44, "workstation")?, unicode, "workstation")?;
        Ok(AuthenticateMessage {
            nt_response,
            domain,
            user,
        })
    }
}

enum State {
    ExpectNegotiate,
    ExpectAuthenticate {
        server_challenge: [u8; 8],
        unicode: bool,
    },
    Done,
}

/// The NTLM server (MS-NLMP, connectionless parts only; no signing or sealing, as SASL NTLM
/// has no security layer).
///
/// Its type-2 message holds a fresh 8-byte server challenge from the OS RNG, the target
/// name (as a domain), and target information: MsvAvNbDomainName, MsvAvNbComputerName,
/// MsvAvTimestamp and MsvAvEOL. It does not offer extended session security (NTLM2 session
/// response), key exchange or signing.
///
/// The type-3 message is parsed with every security buffer checked to lie inside it. An NT
/// response of 24 bytes is checked as NTLMv1 (`DESL(NTOWFv1(password), server challenge)`);
/// a longer one as NTLMv2 (NTProofStr = `HMAC-MD5(NTOWFv2(password, user, domain), server
/// challenge || blob)`, the user upper-cased and the domain exactly as the client sent it,
/// per MS-NLMP 3.3.2). Anything else (an LM-only or anonymous response) is refused as
/// malformed. The LM response is not checked. The password is looked up under the user
/// name as sent, without the domain; [`Authenticated::realm`] holds the domain (`None` if
/// empty).
pub struct NtlmServer {
    lookup: PasswordLookup,
    target: String,
    fixed: Option<([u8; 8], u64)>,
    state: State,
    authenticated: Option<Authenticated>,
}

impl NtlmServer {
    /// A server checking passwords from `lookup`, naming itself `target` (a NetBIOS-style
    /// domain name such as `"EXAMPLE"`, at most 255 characters kept) in its challenges.
    pub fn new(lookup: PasswordLookup, target: &str) -> NtlmServer {
        NtlmServer {
            lookup,
            target: target.chars().take(MAX_TARGET_CHARS).collect(),
            fixed: None,
            state: State::ExpectNegotiate,
            authenticated: None,
        }
    }

    /// Fixes the server challenge and the MsvAvTimestamp value. For tests against fixed
    /// vectors only.
    pub fn with_fixed_challenge(mut self, server_challenge: [u8; 8], timestamp: u64) -> NtlmServer {
        self.fixed = Some((server_challenge, timestamp));
        self
    }

    /// Reads the type-1 message (loosely: signature, type, flags) and builds the type-2.
    fn challenge(&mut self, negotiate: &[u8]) -> Result<ServerStep, SaslError> {
        // 16 bytes: signature, type, flags.
        check_header(negotiate, 1, 16, MAX_CLIENT_MESSAGE_LEN).map_err(malformed)?;
        let client = Flags::from_bits_retain(u32_at(negotiate, 12).unwrap_or(0));
        let unicode =
            client.contains(Flags::NEGOTIATE_UNICODE) || !client.contains(Flags::NEGOTIATE_OEM);
        let (server_challenge, timestamp) = self.fixed.unwrap_or_else(|| {
            let mut c = [0u8; 8];
            OsRng.fill_bytes(&mut c);
            (c, filetime_now())
        });
        let target_utf16 = utf16le(&self.target);
        let target = if unicode {
            target_utf16.clone()
        } else {
            // OEM: ISO-8859-1, '?' for what it cannot hold.
            self.target
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect()
        };
        let mut info = Vec::new();
        push_av(&mut info, 2, &target_utf16); // MsvAvNbDomainName
        push_av(&mut info, 1, &target_utf16); // MsvAvNbComputerName
        push_av(&mut info, 7, &timestamp.to_le_bytes()); // MsvAvTimestamp
        push_av(&mut info, 0, &[]); // MsvAvEOL
        let flags = Flags::REQUEST_TARGET
            | Flags::NEGOTIATE_NTLM
            | Flags::NEGOTIATE_ALWAYS_SIGN
            | Flags::TARGET_TYPE_DOMAIN
            | Flags::NEGOTIATE_TARGET_INFO
            | if unicode {
                Flags::NEGOTIATE_UNICODE
            } else {
                Flags::NEGOTIATE_OEM
            };
        let mut m = Vec::with_capacity(TYPE2_PAYLOAD + target.len() + info.len());
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&2u32.to_le_bytes());
        // At most 255 characters (`new`), so at most 1020 bytes of UTF-16.
        let name_len = target.len() as u16;
        m.extend_from_slice(&name_len.to_le_bytes());
        m.extend_from_slice(&name_len.to_le_bytes());
        m.extend_from_slice(&(TYPE2_PAYLOAD as u32).to_le_bytes());
        m.extend_from_slice(&flags.bits().to_le_bytes());
        m.extend_from_slice(&server_challenge);
        m.extend_from_slice(&[0; 8]); // Reserved (context)
        let info_len = info.len() as u16;
        m.extend_from_slice(&info_len.to_le_bytes());
        m.extend_from_slice(&info_len.to_le_bytes());
        m.extend_from_slice(&((TYPE2_PAYLOAD + usize::from(name_len)) as u32).to_le_bytes());
        m.extend_from_slice(&[0; 8]); // Version: not negotiated
        m.extend_from_slice(&target);
        m.extend_from_slice(&info);
        self.state = State::ExpectAuthenticate {
            server_challenge,
            unicode,
        };
        Ok(ServerStep::Challenge(m))
    }

    fn verify(
        &mut self,
        msg: &[u8],
        server_challenge: [u8; 8],
        unicode: bool,
    ) -> Result<ServerStep, SaslError> {
        let a = AuthenticateMessage::parse(msg, unicode)?;
        let nt = a.nt_response;
        let v2 = match nt.len() {
            24 => false,
            n if n >= MIN_V2_RESPONSE => {
                if nt[16..18] != [1, 1] {
                    return Err(malformed("NTLMv2 blob: bad response version"));
                }
                true
            }
            n => {
                return Err(malformed(format!(
                    "NT response of {n} bytes: neither NTLMv1 (24) nor NTLMv2 (at least {MIN_V2_RESPONSE})"
                )))
            }
        };
        if a.user.is_empty() {
            return Err(malformed(
                "empty user name (anonymous NTLM is not supported)",
            ));
        }
        let Some(password) = (self.lookup)(&a.user) else {
            return Ok(ServerStep::Failure);
        };
        let ok = if v2 {
            let key = ntowf_v2(&a.user, &a.domain, password.expose());
            let proof = hmac_md5(&key[..], &[&server_challenge, &nt[16..]]);
            ct_eq(&proof, &nt[..16])
        } else {
            let expected = desl(&ntowf_v1(password.expose()), &server_challenge);
            ct_eq(&expected, nt)
        };
        if !ok {
            return Ok(ServerStep::Failure);
        }
        self.authenticated = Some(Authenticated {
            authcid: a.user,
            authzid: None,
            realm: (!a.domain.is_empty()).then_some(a.domain),
        });
        Ok(ServerStep::Success(None))
    }
}

impl ServerMechanism for NtlmServer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn step(&mut self, response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match (std::mem::replace(&mut self.state, State::Done), response) {
            (State::ExpectNegotiate, None) => {
                self.state = State::ExpectNegotiate;
                Ok(ServerStep::Challenge(Vec::new()))
            }
            (State::ExpectNegotiate, Some(m)) => self.challenge(m),
            (
                State::ExpectAuthenticate {
                    server_challenge,
                    unicode,
                },
                Some(m),
            ) => self.verify(m, server_challenge, unicode),
            _ => Err(SaslError::OutOfOrder {
                mechanism: NAME,
                what: "step after the exchange ended, or without a response",
            }),
        }
    }

    fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ntlm::ChallengeMessage;
    use crate::ntlmssp::unhex;
    use crate::Secret;

    /// MS-NLMP 4.2.1: the server challenge of every example.
    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    /// A type-1 message as our client sends it (Unicode, NTLM).
    fn type1() -> Vec<u8> {
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&1u32.to_le_bytes());
        let f = Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_OEM | Flags::NEGOTIATE_NTLM;
        m.extend_from_slice(&f.bits().to_le_bytes());
        m.extend_from_slice(&[0; 16]);
        m
    }

    /// A type-3 message laid out as MS-NLMP 2.2.1.3 describes (64-byte header, payload in
    /// the order LM, NT, domain, user, workstation), Unicode strings.
    fn type3(lm: &[u8], nt: &[u8], domain: &str, user: &str, workstation: &str) -> Vec<u8> {
        let fields: [Vec<u8>; 6] = [
            lm.to_vec(),
            nt.to_vec(),
            utf16le(domain),
            utf16le(user),
            utf16le(workstation),
            Vec::new(),
        ];
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&3u32.to_le_bytes());
        let mut offset = 64u32;
        for f in &fields {
            m.extend_from_slice(&(f.len() as u16).to_le_bytes());
            m.extend_from_slice(&(f.len() as u16).to_le_bytes());
            m.extend_from_slice(&offset.to_le_bytes());
            offset += f.len() as u32;
        }
        let flags = Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_NTLM | Flags::REQUEST_TARGET;
        m.extend_from_slice(&flags.bits().to_le_bytes());
        for f in &fields {
            m.extend_from_slice(f);
        }
        m
    }

    fn server(users: &'static [(&'static str, &'static str)]) -> NtlmServer {
        let lookup = Arc::new(move |u: &str| {
            users
                .iter()
                .find(|(n, _)| *n == u)
                .map(|(_, p)| Secret::new(*p))
        });
        NtlmServer::new(lookup, "Domain").with_fixed_challenge(SERVER_CHALLENGE, 0)
    }

    fn challenged(s: &mut NtlmServer) -> Vec<u8> {
        match s.step(Some(&type1())).unwrap() {
            ServerStep::Challenge(c) => c,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    /// MS-NLMP 4.2.4.1.3: the AV pairs of the NTLMv2 example (MsvAvNbDomainName "Domain",
    /// MsvAvNbComputerName "Server", MsvAvEOL).
    fn ms_nlmp_v2_blob() -> Vec<u8> {
        let mut temp = unhex("0101000000000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000");
        temp.extend(unhex(
            "02000c0044006f006d00610069006e0001000c005300650072007600650072000000 0000",
        ));
        temp.extend([0; 4]);
        temp
    }

    /// MS-NLMP 4.2.4.2.2: NTProofStr for User / Domain / Password, client challenge aa..aa,
    /// time 0.
    const MS_NLMP_NT_PROOF: &str = "68cd0ab851e51c96aabc927bebef6a1c";

    #[test]
    fn type2_is_well_formed() {
        let mut s = server(&[]);
        let c = challenged(&mut s);
        let parsed = ChallengeMessage::parse(&c).unwrap();
        assert_eq!(parsed.server_challenge, SERVER_CHALLENGE);
        assert_eq!(parsed.target_name, &utf16le("Domain")[..]);
        assert_eq!(parsed.timestamp, Some(0));
        assert!(parsed
            .flags
            .contains(Flags::NEGOTIATE_TARGET_INFO | Flags::NEGOTIATE_UNICODE));
        // Domain, computer name, timestamp, EOL, in that order, and nothing after EOL.
        let d = utf16le("Domain");
        let mut expect = vec![2, 0, d.len() as u8, 0];
        expect.extend(&d);
        expect.extend([1, 0, d.len() as u8, 0]);
        expect.extend(&d);
        expect.extend([7, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parsed.target_info, &expect[..]);
        assert_eq!(&c[c.len() - expect.len()..], &expect[..]);
        // A random challenge differs each time.
        let lookup = Arc::new(|_: &str| None);
        let mut a = NtlmServer::new(lookup.clone(), "X");
        let mut b = NtlmServer::new(lookup, "X");
        let (ca, cb) = (challenged(&mut a), challenged(&mut b));
        assert_ne!(ca[24..32], cb[24..32]);
    }

    #[test]
    fn ms_nlmp_4_2_4_ntlm_v2_verified() {
        let mut nt = unhex(MS_NLMP_NT_PROOF);
        nt.extend(ms_nlmp_v2_blob());
        let lm = unhex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa");
        let mut s = server(&[("User", "Password")]);
        challenged(&mut s);
        let t3 = type3(&lm, &nt, "Domain", "User", "COMPUTER");
        assert_eq!(s.step(Some(&t3)).unwrap(), ServerStep::Success(None));
        let who = s.authenticated().unwrap();
        assert_eq!(who.authcid, "User");
        assert_eq!(who.realm.as_deref(), Some("Domain"));
        assert_eq!(who.authzid, None);
        assert!(s.step(Some(&t3)).is_err(), "a step after the end");
    }

    #[test]
    fn ntlm_v2_case_rules() {
        let mut nt = unhex(MS_NLMP_NT_PROOF);
        nt.extend(ms_nlmp_v2_blob());
        // NTOWFv2 upper-cases the user: "USER" gives the same key as "User".
        let mut s = server(&[("USER", "Password")]);
        challenged(&mut s);
        let t3 = type3(&[], &nt, "Domain", "USER", "");
        assert_eq!(s.step(Some(&t3)).unwrap(), ServerStep::Success(None));
        // The domain is hashed as sent: "DOMAIN" is another key.
        let mut s = server(&[("User", "Password")]);
        challenged(&mut s);
        let t3 = type3(&[], &nt, "DOMAIN", "User", "");
        assert_eq!(s.step(Some(&t3)).unwrap(), ServerStep::Failure);
    }

    #[test]
    fn ms_nlmp_4_2_2_ntlm_v1_verified() {
        let nt = unhex("67c43011f30298a2ad35ece64f16331c44bdbed927841f94");
        let lm = unhex("98def7b87f88aa5dafe2df779688a172def11c7d5ccdef13");
        let mut s = server(&[("User", "Password")]);
        challenged(&mut s);
        let t3 = type3(&lm, &nt, "Domain", "User", "COMPUTER");
        assert_eq!(s.step(Some(&t3)).unwrap(), ServerStep::Success(None));
        assert_eq!(s.authenticated().unwrap().authcid, "User");
    }

    #[test]
    fn wrong_password_and_unknown_user_fail() {
        let mut nt = unhex(MS_NLMP_NT_PROOF);
        nt.extend(ms_nlmp_v2_blob());
        let v1 = unhex("67c43011f30298a2ad35ece64f16331c44bdbed927841f94");
        for (users, resp) in [
            (&[("User", "password")][..], &nt),
            (&[("User", "password")][..], &v1),
            (&[("Other", "Password")][..], &nt),
        ] {
            let users: &'static [(&str, &str)] = Box::leak(users.to_vec().into_boxed_slice());
            let mut s = server(users);
            challenged(&mut s);
            let t3 = type3(&[], resp, "Domain", "User", "");
            assert_eq!(s.step(Some(&t3)).unwrap(), ServerStep::Failure);
            assert!(s.authenticated().is_none());
        }
        // A different server challenge: the same v1 response no longer matches.
        let lookup = Arc::new(|_: &str| Some(Secret::new("Password")));
        let mut s = NtlmServer::new(lookup, "D").with_fixed_challenge([0; 8], 0);
        challenged(&mut s);
        assert_eq!(
            s.step(Some(&type3(&[], &v1, "Domain", "User", "")))
                .unwrap(),
            ServerStep::Failure
        );
    }

    #[test]
    fn hostile_type3_messages_are_errors() {
        let mut nt = unhex(MS_NLMP_NT_PROOF);
        nt.extend(ms_nlmp_v2_blob());
        let good = type3(&[], &nt, "Domain", "User", "W");
        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), SIGNATURE.to_vec(), vec![0; 64]];
        for cut in [8, 12, 51, good.len() - 1] {
            cases.push(good[..cut].to_vec());
        }
        let mut wrong_type = good.clone();
        wrong_type[8] = 1;
        cases.push(wrong_type);
        // Each buffer's offset past the end, or near u32::MAX; absurd lengths.
        for at in [12usize, 20, 28, 36, 44] {
            for off in [good.len() as u32, u32::MAX, u32::MAX - 1] {
                let mut m = good.clone();
                m[at + 4..at + 8].copy_from_slice(&off.to_le_bytes());
                m[at..at + 2].copy_from_slice(&4u16.to_le_bytes());
                cases.push(m);
            }
            let mut m = good.clone();
            m[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
            cases.push(m);
        }
        // Odd-length and unpaired-surrogate UTF-16 user names.
        let mut m = good.clone();
        m[36..38].copy_from_slice(&3u16.to_le_bytes());
        cases.push(m);
        cases.push(type3(&[], &nt, "Domain", "", ""));
        let mut bad_utf16 = type3(&[], &nt, "Domain", "Us", "");
        let user_at = bad_utf16.len() - 4;
        bad_utf16[user_at..].copy_from_slice(&[0x00, 0xd8, 0x41, 0x00]);
        cases.push(bad_utf16);
        // NT responses neither v1 nor v2; a v2 blob with a bad version.
        for len in [0usize, 16, 23, 25, 43] {
            cases.push(type3(&[], &nt[..len], "Domain", "User", ""));
        }
        let mut bad_blob = nt.clone();
        bad_blob[16] = 2;
        cases.push(type3(&[], &bad_blob, "Domain", "User", ""));
        cases.push(vec![0; MAX_CLIENT_MESSAGE_LEN + 1]);
        for c in cases {
            let mut s = server(&[("User", "Password")]);
            challenged(&mut s);
            assert!(
                matches!(s.step(Some(&c)), Err(SaslError::MalformedResponse { .. })),
                "{c:02x?}"
            );
        }
    }

    #[test]
    fn hostile_type1_messages_are_errors() {
        let mut wrong = type1();
        wrong[8] = 3;
        for c in [Vec::new(), b"NTLMSSP\0".to_vec(), wrong, vec![0; 70_000]] {
            let mut s = server(&[]);
            assert!(matches!(
                s.step(Some(&c)),
                Err(SaslError::MalformedResponse { .. })
            ));
        }
        // No initial response: an empty challenge asks for the type-1 message.
        let mut s = server(&[]);
        assert_eq!(s.step(None).unwrap(), ServerStep::Challenge(Vec::new()));
        assert!(matches!(
            s.step(Some(&type1())).unwrap(),
            ServerStep::Challenge(_)
        ));
    }
}
