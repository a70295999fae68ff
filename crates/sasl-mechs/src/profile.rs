//! Protocol profiles (RFC 4422 §4): how any [`Mechanism`] runs over SMTP (RFC 4954), IMAP
//! (RFC 9051 §6.2.2, SASL-IR RFC 4959), POP3 (RFC 5034) and ManageSieve (RFC 5804 §2.1),
//! and the value form of an LDAP SASL bind (RFC 4513 §5.2.1.2).
//!
//! A [`Profile`] knows each protocol's lines: the command with its initial response, the
//! server's continuation, success and failure, the client's response and cancel lines. It
//! does no I/O: [`authenticate`] runs a whole exchange given a function that sends one line
//! and one that reads one, and [`LdapBind`] gives the values of each `BindRequest`.
//!
//! ```
//! use sasl_mechs::profile::{authenticate, Profile};
//! use sasl_mechs::{client_mechanism, ClientOptions, Credentials};
//! let creds = Credentials::new("tim", "tanstaaftanstaaf")?;
//! let mut mech = client_mechanism("PLAIN", &creds, &ClientOptions::default())?;
//! let mut sent = Vec::new();
//! let mut replies = vec![b"a1 OK done".to_vec()].into_iter();
//! authenticate(
//!     mech.as_mut(),
//!     &Profile::imap("a1", true),
//!     |line| Ok(sent.push(String::from_utf8_lossy(line).into_owned())),
//!     || Ok(replies.next().unwrap_or_default()),
//! )?;
//! assert_eq!(sent, ["a1 AUTHENTICATE PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::{Mechanism, SaslError};

/// The longest server line a profile accepts, CRLF excluded: room for the base64 of a
/// 64 KiB challenge (NTLM's bound) and the protocol's framing.
pub const MAX_PROFILE_LINE: usize = 96 * 1024;

/// Most challenges answered in one exchange before the client cancels.
pub const MAX_PROFILE_ROUNDS: usize = 16;

/// Most server lines read in one exchange, untagged and multi-line-reply lines included:
/// a server that talks on and on gets a protocol error rather than a client that loops.
pub const MAX_PROFILE_LINES: usize = 1024;

/// A line-oriented protocol that carries SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP `AUTH` (RFC 4954): `334` continues, `235` succeeds, other codes fail.
    Smtp,
    /// IMAP `AUTHENTICATE` (RFC 9051): `+` continues, the tagged `OK` succeeds.
    Imap,
    /// POP3 `AUTH` (RFC 5034): `+ ` continues, `+OK` succeeds, `-ERR` fails.
    Pop3,
    /// ManageSieve `AUTHENTICATE` (RFC 5804): quoted strings, `OK (SASL "...")`.
    ManageSieve,
}

/// How one protocol carries SASL, with what this connection allows (IMAP's tag and
/// SASL-IR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    protocol: Protocol,
    tag: String,
    initial_response: bool,
}

/// What one server line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    /// A challenge (decoded).
    Challenge(Vec<u8>),
    /// ManageSieve: a literal `{n}` announces the challenge, `n` base64 octets on the next
    /// line.
    Literal(usize),
    /// Success, with the server's additional data if the protocol carried some.
    Success(Option<Vec<u8>>),
    /// Failure: the line as sent (it never holds a secret of the client's).
    Failure(String),
    /// A line that does not end the exchange: an IMAP untagged response, a non-final line
    /// of a multi-line SMTP reply.
    Ignored,
}

/// Why a profile exchange did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The server refused: its final line.
    #[error("server refused authentication: {line}")]
    Rejected {
        /// The server's final line.
        line: String,
    },
    /// The mechanism failed (a malformed challenge, an unverified server...); the exchange
    /// was cancelled. `server` is the server's answer to the cancel, if one came.
    #[error("{source}")]
    Mechanism {
        /// What the mechanism said.
        source: SaslError,
        /// The server's final line after the cancel.
        server: Option<String>,
    },
    /// The server broke the protocol's rules.
    #[error("protocol error: {what}: {line:?}")]
    Protocol {
        /// Which rule.
        what: &'static str,
        /// The start of the offending line (at most 80 characters, lossy UTF-8).
        line: String,
    },
    /// More than [`MAX_PROFILE_ROUNDS`] challenges; the exchange was cancelled.
    #[error("more than {MAX_PROFILE_ROUNDS} challenges")]
    TooManyRounds,
    /// Sending or reading a line failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

impl From<SaslError> for ProfileError {
    fn from(source: SaslError) -> ProfileError {
        ProfileError::Mechanism {
            source,
            server: None,
        }
    }
}

fn protocol_error(what: &'static str, line: &[u8]) -> ProfileError {
    ProfileError::Protocol {
        what,
        line: String::from_utf8_lossy(line).chars().take(80).collect(),
    }
}

fn decode(b64: &[u8], line: &[u8]) -> Result<Vec<u8>, ProfileError> {
    B64.decode(b64)
        .map_err(|_| protocol_error("challenge is not base64", line))
}

impl Profile {
    /// SMTP (RFC 4954). The initial response goes on the `AUTH` line when the line stays
    /// within 512 octets.
    pub fn smtp() -> Profile {
        Profile {
            protocol: Protocol::Smtp,
            tag: String::new(),
            initial_response: true,
        }
    }

    /// IMAP with command tag `tag`; `sasl_ir`: the server announced `SASL-IR` (RFC 4959),
    /// so the initial response may go on the command line.
    pub fn imap(tag: &str, sasl_ir: bool) -> Profile {
        Profile {
            protocol: Protocol::Imap,
            tag: tag.to_owned(),
            initial_response: sasl_ir,
        }
    }

    /// POP3 (RFC 5034). The initial response goes on the `AUTH` line when the line stays
    /// within 255 octets.
    pub fn pop3() -> Profile {
        Profile {
            protocol: Protocol::Pop3,
            tag: String::new(),
            initial_response: true,
        }
    }

    /// ManageSieve (RFC 5804): mechanism and responses are quoted strings.
    pub fn managesieve() -> Profile {
        Profile {
            protocol: Protocol::ManageSieve,
            tag: String::new(),
            initial_response: true,
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The command line (no CRLF) that starts the exchange, with the initial response if
    /// given (empty as `=`, or `""` in ManageSieve). `None` when the initial response does
    /// not fit this protocol's line: send [`command`](Self::command) without one, and the
    /// response after the server's first, empty, challenge.
    pub fn command(&self, mechanism: &str, initial: Option<&[u8]>) -> Option<Vec<u8>> {
        let ir = initial.map(|r| match (self.protocol, r.is_empty()) {
            (Protocol::ManageSieve, _) => format!("\"{}\"", B64.encode(r)),
            (_, true) => "=".to_owned(),
            (_, false) => B64.encode(r),
        });
        let line = match (self.protocol, ir) {
            (Protocol::Smtp | Protocol::Pop3, None) => format!("AUTH {mechanism}"),
            (Protocol::Smtp | Protocol::Pop3, Some(ir)) => format!("AUTH {mechanism} {ir}"),
            (Protocol::Imap, None) => format!("{} AUTHENTICATE {mechanism}", self.tag),
            (Protocol::Imap, Some(ir)) => format!("{} AUTHENTICATE {mechanism} {ir}", self.tag),
            (Protocol::ManageSieve, None) => format!("AUTHENTICATE \"{mechanism}\""),
            (Protocol::ManageSieve, Some(ir)) => format!("AUTHENTICATE \"{mechanism}\" {ir}"),
        };
        // RFC 4954 §4 (512 octets with CRLF) and RFC 5034 §4 (255 octets with CRLF).
        let limit = match self.protocol {
            Protocol::Smtp => 510,
            Protocol::Pop3 => 253,
            Protocol::Imap | Protocol::ManageSieve => usize::MAX,
        };
        (initial.is_none() || line.len() <= limit).then(|| line.into_bytes())
    }

    /// The client's response line (no CRLF) to a challenge.
    pub fn response(&self, data: &[u8]) -> Vec<u8> {
        match self.protocol {
            Protocol::ManageSieve => format!("\"{}\"", B64.encode(data)).into_bytes(),
            _ => B64.encode(data).into_bytes(),
        }
    }

    /// The line that cancels the exchange (RFC 4422 §3.5).
    pub fn cancel(&self) -> &'static [u8] {
        match self.protocol {
            Protocol::ManageSieve => b"\"*\"",
            _ => b"*",
        }
    }

    /// What one server line (no CRLF) means.
    pub fn parse(&self, line: &[u8]) -> Result<ServerLine, ProfileError> {
        if line.len() > MAX_PROFILE_LINE {
            return Err(protocol_error("line too long", line));
        }
        let failure = || ServerLine::Failure(String::from_utf8_lossy(line).into_owned());
        match self.protocol {
            Protocol::Smtp => {
                let code = line.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit));
                let (Some(code), sep) = (code, line.get(3).copied()) else {
                    return Err(protocol_error("no reply code", line));
                };
                match (code, sep) {
                    (_, Some(b'-')) => Ok(ServerLine::Ignored),
                    (b"334", Some(b' ') | None) => Ok(ServerLine::Challenge(decode(
                        line.get(4..).unwrap_or(b""),
                        line,
                    )?)),
                    (b"235", Some(b' ') | None) => Ok(ServerLine::Success(None)),
                    ([b'2' | b'3', ..], _) => Err(protocol_error("unexpected reply", line)),
                    ([b'4' | b'5', ..], Some(b' ') | None) => Ok(failure()),
                    _ => Err(protocol_error("bad reply line", line)),
                }
            }
            Protocol::Imap => {
                if line == b"+" {
                    return Ok(ServerLine::Challenge(Vec::new()));
                }
                if let Some(b64) = line.strip_prefix(b"+ ") {
                    return Ok(ServerLine::Challenge(decode(b64, line)?));
                }
                if line.starts_with(b"* ") {
                    return Ok(ServerLine::Ignored);
                }
                let rest = line
                    .strip_prefix(self.tag.as_bytes())
                    .and_then(|r| r.strip_prefix(b" "))
                    .ok_or_else(|| protocol_error("neither tagged, untagged nor +", line))?;
                match word(rest).to_ascii_uppercase().as_slice() {
                    b"OK" => Ok(ServerLine::Success(None)),
                    b"NO" | b"BAD" => Ok(failure()),
                    _ => Err(protocol_error("tagged reply is not OK, NO or BAD", line)),
                }
            }
            Protocol::Pop3 => {
                if line == b"+" {
                    return Ok(ServerLine::Challenge(Vec::new()));
                }
                if let Some(b64) = line.strip_prefix(b"+ ") {
                    return Ok(ServerLine::Challenge(decode(b64, line)?));
                }
                match word(line) {
                    b"+OK" => Ok(ServerLine::Success(None)),
                    b"-ERR" => Ok(failure()),
                    _ => Err(protocol_error("not +, +OK or -ERR", line)),
                }
            }
            Protocol::ManageSieve => {
                if line.first() == Some(&b'"') {
                    let (s, rest) =
                        quoted(line).ok_or_else(|| protocol_error("bad string", line))?;
                    if !rest.is_empty() {
                        return Err(protocol_error("text after the challenge", line));
                    }
                    return Ok(ServerLine::Challenge(decode(s, line)?));
                }
                if line.first() == Some(&b'{') {
                    return literal_length(line)
                        .map(ServerLine::Literal)
                        .ok_or_else(|| protocol_error("bad literal", line));
                }
                match word(line).to_ascii_uppercase().as_slice() {
                    b"OK" => {
                        let rest = line[2..].trim_ascii_start();
                        let data = match strip_prefix_ci(rest, b"(SASL ") {
                            Some(r) => {
                                let (s, after) = quoted(r)
                                    .ok_or_else(|| protocol_error("bad SASL code", line))?;
                                if after.first() != Some(&b')') {
                                    return Err(protocol_error("bad SASL code", line));
                                }
                                Some(decode(s, line)?)
                            }
                            None => None,
                        };
                        Ok(ServerLine::Success(data))
                    }
                    b"NO" | b"BYE" => Ok(failure()),
                    _ => Err(protocol_error("not a string, OK, NO or BYE", line)),
                }
            }
        }
    }
}

/// The first space-separated word.
fn word(line: &[u8]) -> &[u8] {
    line.split(|b| *b == b' ').next().unwrap_or(b"")
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// A ManageSieve quoted string at the start of `s` (RFC 5804 §4: `\"` and `\\` escapes; a
/// base64 value needs none): its content and what follows. Escapes are refused: base64 never
/// holds `"` or `\`.
fn quoted(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = s.strip_prefix(b"\"")?;
    let end = body.iter().position(|b| *b == b'"' || *b == b'\\')?;
    (body[end] == b'"').then(|| (&body[..end], &body[end + 1..]))
}

/// `{n}` or `{n+}` alone on the line; `n` at most [`MAX_PROFILE_LINE`].
fn literal_length(line: &[u8]) -> Option<usize> {
    let inner = line.strip_prefix(b"{")?.strip_suffix(b"}")?;
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    if digits.is_empty() || digits.len() > 6 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (n <= MAX_PROFILE_LINE).then_some(n)
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Smtp => "SMTP",
            Protocol::Imap => "IMAP",
            Protocol::Pop3 => "POP3",
            Protocol::ManageSieve => "ManageSieve",
        })
    }
}

/// Runs `mech` over a line protocol: `send` sends one line (the caller adds CRLF), `read`
/// reads one (without its CRLF). Ok once the server said success and the mechanism
/// accepted it ([`Mechanism::finish`]: SCRAM's server signature checked).
///
/// The initial response goes on the command line when the profile allows it and it fits;
/// otherwise it waits for the server's first, empty, challenge. A mechanism error cancels
/// the exchange and waits for the server's final line.
pub fn authenticate(
    mech: &mut dyn Mechanism,
    profile: &Profile,
    mut send: impl FnMut(&[u8]) -> io::Result<()>,
    mut read_line: impl FnMut() -> io::Result<Vec<u8>>,
) -> Result<(), ProfileError> {
    let mut lines_read = 0;
    let mut read = move || {
        lines_read += 1;
        if lines_read > MAX_PROFILE_LINES {
            return Err(io::Error::other(format!(
                "more than {MAX_PROFILE_LINES} server lines in one exchange"
            )));
        }
        read_line()
    };
    let name = mech.name();
    let mut held = None;
    let mut command = None;
    if profile.initial_response && mech.has_initial_response() {
        if let Some(ir) = mech.initial_response()? {
            command = profile.command(name, Some(&ir));
            if command.is_none() {
                held = Some(ir);
            }
        }
    }
    let command = match command {
        Some(c) => c,
        None => profile.command(name, None).unwrap_or_default(),
    };
    send(&command)?;
    let mut rounds = 0;
    loop {
        let line = read()?;
        let parsed = match profile.parse(&line)? {
            ServerLine::Literal(n) => {
                let content = read()?;
                if content.len() != n {
                    return Err(protocol_error("literal of the wrong length", &content));
                }
                ServerLine::Challenge(decode(&content, &content)?)
            }
            other => other,
        };
        match parsed {
            ServerLine::Ignored | ServerLine::Literal(_) => continue,
            ServerLine::Challenge(challenge) => {
                rounds += 1;
                if rounds > MAX_PROFILE_ROUNDS {
                    send(profile.cancel())?;
                    finish_after_cancel(profile, &mut read)?;
                    return Err(ProfileError::TooManyRounds);
                }
                let answer = match held.take() {
                    Some(ir) if challenge.is_empty() => Ok(ir),
                    Some(_) => Err(protocol_error("non-empty first challenge", &line)),
                    None => mech.respond(&challenge).map_err(ProfileError::from),
                };
                match answer {
                    Ok(a) => send(&profile.response(&a))?,
                    Err(ProfileError::Mechanism { source, .. }) => {
                        send(profile.cancel())?;
                        let server = finish_after_cancel(profile, &mut read)?;
                        return Err(ProfileError::Mechanism { source, server });
                    }
                    Err(e) => return Err(e),
                }
            }
            ServerLine::Success(data) => {
                if held.is_some() {
                    return Err(SaslError::PrematureSuccess { mechanism: name }.into());
                }
                return Ok(mech.finish(data.as_deref())?);
            }
            ServerLine::Failure(line) => return Err(ProfileError::Rejected { line }),
        }
    }
}

/// After a cancel: reads up to the final line, which should be a failure.
fn finish_after_cancel(
    profile: &Profile,
    read: &mut impl FnMut() -> io::Result<Vec<u8>>,
) -> Result<Option<String>, ProfileError> {
    for _ in 0..MAX_PROFILE_ROUNDS {
        let line = read()?;
        match profile.parse(&line) {
            Ok(ServerLine::Failure(l)) => return Ok(Some(l)),
            Ok(ServerLine::Ignored) => continue,
            Ok(_) | Err(_) => return Ok(None),
        }
    }
    Ok(None)
}

/// The values of an LDAP SASL bind (RFC 4513 §5.2.1.2, RFC 4511 §4.2): each `BindRequest`
/// carries the mechanism name and raw credentials (no base64); the server answers
/// `saslBindInProgress` (14) with `serverSaslCreds` while the exchange goes on and
/// `success` (0) at the end. The caller encodes and decodes the BER.
#[derive(Debug)]
pub struct LdapBind {
    name: &'static str,
    rounds: usize,
}

/// What to put in the next `BindRequest`'s `SaslCredentials`.
#[derive(Debug, PartialEq, Eq)]
pub struct SaslCredentials {
    /// The `mechanism` field.
    pub mechanism: &'static str,
    /// The `credentials` field: `None` when absent (a server-first mechanism's first
    /// request), `Some(empty)` when present and empty.
    pub credentials: Option<crate::Response>,
}

/// LDAP `resultCode` success (RFC 4511 §4.1.9).
pub const LDAP_SUCCESS: u32 = 0;
/// LDAP `resultCode` saslBindInProgress.
pub const LDAP_SASL_BIND_IN_PROGRESS: u32 = 14;

impl LdapBind {
    /// The first `BindRequest`: with the initial response, if the mechanism has one (LDAP
    /// always carries it).
    pub fn start(mech: &mut dyn Mechanism) -> Result<(LdapBind, SaslCredentials), ProfileError> {
        let name = mech.name();
        let credentials = if mech.has_initial_response() {
            mech.initial_response()?
        } else {
            None
        };
        Ok((
            LdapBind { name, rounds: 0 },
            SaslCredentials {
                mechanism: name,
                credentials,
            },
        ))
    }

    /// The server's `BindResponse`: `Ok(Some(next request))` while in progress, `Ok(None)`
    /// once bound (and the mechanism accepted the server's final data).
    pub fn on_response(
        &mut self,
        mech: &mut dyn Mechanism,
        result_code: u32,
        server_sasl_creds: Option<&[u8]>,
    ) -> Result<Option<SaslCredentials>, ProfileError> {
        match result_code {
            LDAP_SASL_BIND_IN_PROGRESS => {
                self.rounds += 1;
                if self.rounds > MAX_PROFILE_ROUNDS {
                    return Err(ProfileError::TooManyRounds);
                }
                let r = mech.respond(server_sasl_creds.unwrap_or_default())?;
                Ok(Some(SaslCredentials {
                    mechanism: self.name,
                    credentials: Some(r),
                }))
            }
            LDAP_SUCCESS => {
                mech.finish(server_sasl_creds)?;
                Ok(None)
            }
            code => Err(ProfileError::Rejected {
                line: format!("resultCode {code}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{client_mechanism, ClientOptions, Credentials};

    fn plain() -> Box<dyn Mechanism> {
        let creds = Credentials::new("tim", "tanstaaftanstaaf").unwrap();
        client_mechanism("PLAIN", &creds, &ClientOptions::default()).unwrap()
    }

    fn cram() -> Box<dyn Mechanism> {
        let creds = Credentials::new("tim", "tanstaaftanstaaf").unwrap();
        client_mechanism("CRAM-MD5", &creds, &ClientOptions::default()).unwrap()
    }

    /// Runs `mech` against scripted server lines; the lines the client sent, and the result.
    fn script(
        mech: &mut dyn Mechanism,
        profile: &Profile,
        server: &[&[u8]],
    ) -> (Vec<String>, Result<(), ProfileError>) {
        let mut sent = Vec::new();
        let mut lines = server.iter().map(|l| l.to_vec());
        let result = authenticate(
            mech,
            profile,
            |l| {
                sent.push(String::from_utf8(l.to_vec()).unwrap());
                Ok(())
            },
            || {
                lines
                    .next()
                    .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
            },
        );
        (sent, result)
    }

    const PLAIN_IR: &str = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";
    const CRAM_CHALLENGE: &str = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
    const CRAM_RESPONSE: &str = "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw";

    #[test]
    fn each_protocol_with_an_initial_response() {
        let cases: [(Profile, &[u8], String); 4] = [
            (
                Profile::smtp(),
                b"235 2.7.0 ok",
                format!("AUTH PLAIN {PLAIN_IR}"),
            ),
            (
                Profile::imap("a1", true),
                b"a1 OK done",
                format!("a1 AUTHENTICATE PLAIN {PLAIN_IR}"),
            ),
            (
                Profile::pop3(),
                b"+OK maildrop locked",
                format!("AUTH PLAIN {PLAIN_IR}"),
            ),
            (
                Profile::managesieve(),
                b"OK \"Logged in\"",
                format!("AUTHENTICATE \"PLAIN\" \"{PLAIN_IR}\""),
            ),
        ];
        for (profile, ok, command) in cases {
            let (sent, result) = script(plain().as_mut(), &profile, &[ok]);
            result.unwrap();
            assert_eq!(sent, [command]);
        }
    }

    #[test]
    fn imap_without_sasl_ir_waits_for_the_empty_challenge() {
        let (sent, result) = script(
            plain().as_mut(),
            &Profile::imap("x", false),
            &[b"+ ", b"* CAPABILITY IMAP4rev1", b"x OK"],
        );
        result.unwrap();
        assert_eq!(
            sent,
            ["x AUTHENTICATE PLAIN".to_owned(), PLAIN_IR.to_owned()]
        );
    }

    #[test]
    fn server_first_mechanism_over_each_protocol() {
        let challenge_lines: [(Profile, Vec<u8>, &[u8], String); 4] = [
            (
                Profile::smtp(),
                format!("334 {CRAM_CHALLENGE}").into_bytes(),
                b"235 ok",
                CRAM_RESPONSE.into(),
            ),
            (
                Profile::imap("t", true),
                format!("+ {CRAM_CHALLENGE}").into_bytes(),
                b"t OK",
                CRAM_RESPONSE.into(),
            ),
            (
                Profile::pop3(),
                format!("+ {CRAM_CHALLENGE}").into_bytes(),
                b"+OK",
                CRAM_RESPONSE.into(),
            ),
            (
                Profile::managesieve(),
                format!("\"{CRAM_CHALLENGE}\"").into_bytes(),
                b"OK",
                format!("\"{CRAM_RESPONSE}\""),
            ),
        ];
        for (profile, challenge, ok, response) in challenge_lines {
            let (sent, result) = script(cram().as_mut(), &profile, &[&challenge, ok]);
            result.unwrap();
            assert_eq!(sent[1], response, "{:?}", profile.protocol());
        }
    }

    #[test]
    fn managesieve_literal_challenge_and_sasl_success_data() {
        let lit = format!("{{{}}}", CRAM_CHALLENGE.len());
        let (sent, result) = script(
            cram().as_mut(),
            &Profile::managesieve(),
            &[lit.as_bytes(), CRAM_CHALLENGE.as_bytes(), b"OK"],
        );
        result.unwrap();
        assert_eq!(sent[1], format!("\"{CRAM_RESPONSE}\""));
        assert_eq!(
            Profile::managesieve()
                .parse(b"OK (SASL \"dj1hYmM=\") \"Logged in\"")
                .unwrap(),
            ServerLine::Success(Some(b"v=abc".to_vec()))
        );
        for bad in [
            &b"{}"[..],
            b"{12",
            b"{1a}",
            b"\"ab",
            b"\"a\\\"b\"",
            b"OK (SASL \"x\"",
            b"MAYBE",
        ] {
            assert!(Profile::managesieve().parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn failures_and_empty_initial_responses() {
        let (_, result) = script(
            plain().as_mut(),
            &Profile::smtp(),
            &[
                b"535-5.7.8 first line",
                b"535 5.7.8 Authentication credentials invalid",
            ],
        );
        assert!(matches!(result, Err(ProfileError::Rejected { line }) if line.starts_with("535 ")));
        let (_, result) = script(plain().as_mut(), &Profile::pop3(), &[b"-ERR [AUTH] nope"]);
        assert!(matches!(result, Err(ProfileError::Rejected { .. })));
        let (_, result) = script(
            plain().as_mut(),
            &Profile::imap("a", true),
            &[b"a NO [AUTHENTICATIONFAILED] x"],
        );
        assert!(matches!(result, Err(ProfileError::Rejected { .. })));
        let (_, result) = script(
            plain().as_mut(),
            &Profile::managesieve(),
            &[b"NO \"Authentication failed\""],
        );
        assert!(matches!(result, Err(ProfileError::Rejected { .. })));
        // RFC 4954 / 4959 / 5034: an empty initial response is "="; ManageSieve: "".
        assert_eq!(
            Profile::smtp().command("EXTERNAL", Some(b"")).unwrap(),
            b"AUTH EXTERNAL ="
        );
        assert_eq!(
            Profile::imap("a", true)
                .command("EXTERNAL", Some(b""))
                .unwrap(),
            b"a AUTHENTICATE EXTERNAL ="
        );
        assert_eq!(
            Profile::pop3().command("EXTERNAL", Some(b"")).unwrap(),
            b"AUTH EXTERNAL ="
        );
        assert_eq!(
            Profile::managesieve()
                .command("EXTERNAL", Some(b""))
                .unwrap(),
            b"AUTHENTICATE \"EXTERNAL\" \"\""
        );
    }

    #[test]
    fn initial_responses_too_long_for_the_line_wait_for_the_challenge() {
        // POP3: 255 octets with CRLF (RFC 5034 §4); SMTP: 512 (RFC 4954 §4).
        let long = vec![b'x'; 200];
        assert!(Profile::pop3().command("PLAIN", Some(&long)).is_none());
        assert!(Profile::smtp().command("PLAIN", Some(&long)).is_some());
        assert!(Profile::smtp()
            .command("PLAIN", Some(&[b'x'; 400]))
            .is_none());
        let creds = Credentials::new("tim", "p".repeat(200)).unwrap();
        let mut m = client_mechanism("PLAIN", &creds, &ClientOptions::default()).unwrap();
        let (sent, result) = script(m.as_mut(), &Profile::pop3(), &[b"+ ", b"+OK"]);
        result.unwrap();
        assert_eq!(sent[0], "AUTH PLAIN");
        assert!(sent[1].len() > 255);
    }

    #[test]
    fn a_mechanism_error_cancels_and_reads_the_final_line() {
        // SCRAM given a server-first without a nonce.
        let creds = Credentials::new("user", "pencil").unwrap();
        let mut m = client_mechanism("SCRAM-SHA-256", &creds, &ClientOptions::default()).unwrap();
        let bad = format!("+ {}", B64.encode("x=1"));
        let (sent, result) = script(
            m.as_mut(),
            &Profile::imap("c", true),
            &[bad.as_bytes(), b"c BAD cancelled"],
        );
        assert_eq!(sent.last().unwrap(), "*");
        match result {
            Err(ProfileError::Mechanism { source, server }) => {
                assert!(matches!(source, SaslError::MalformedChallenge { .. }));
                assert_eq!(server.as_deref(), Some("c BAD cancelled"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn endless_challenges_are_cut_off() {
        let creds = Credentials::new("tim", "pw").unwrap();
        let mut m = client_mechanism("LOGIN", &creds, &ClientOptions::default()).unwrap();
        let lines: Vec<&[u8]> = vec![b"+ "; 40];
        let (_, result) = script(m.as_mut(), &Profile::pop3(), &lines);
        // LOGIN refuses the third challenge itself.
        assert!(
            matches!(result, Err(ProfileError::Mechanism { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn ldap_value_form() {
        let mut m = cram();
        let (mut bind, first) = LdapBind::start(m.as_mut()).unwrap();
        assert_eq!(first.mechanism, "CRAM-MD5");
        assert_eq!(first.credentials, None);
        let challenge = B64.decode(CRAM_CHALLENGE).unwrap();
        let next = bind
            .on_response(m.as_mut(), LDAP_SASL_BIND_IN_PROGRESS, Some(&challenge))
            .unwrap()
            .unwrap();
        assert_eq!(
            &next.credentials.unwrap()[..],
            &B64.decode(CRAM_RESPONSE).unwrap()[..]
        );
        assert_eq!(
            bind.on_response(m.as_mut(), LDAP_SUCCESS, None).unwrap(),
            None
        );

        let mut m = plain();
        let (mut bind, first) = LdapBind::start(m.as_mut()).unwrap();
        assert_eq!(&first.credentials.unwrap()[..], b"\0tim\0tanstaaftanstaaf");
        assert!(matches!(
            bind.on_response(m.as_mut(), 49, None),
            Err(ProfileError::Rejected { .. })
        ));
    }

    #[test]
    fn parsers_refuse_what_they_do_not_know() {
        assert!(Profile::smtp().parse(b"250 ok").is_err());
        assert!(Profile::smtp().parse(b"33").is_err());
        assert!(Profile::smtp().parse(b"334 !!!").is_err());
        assert!(Profile::imap("a", true).parse(b"b OK").is_err());
        assert!(Profile::imap("a", true).parse(b"a MAYBE").is_err());
        assert!(Profile::pop3().parse(b"+OKAY").is_err());
        assert!(Profile::pop3()
            .parse(&vec![b'+'; MAX_PROFILE_LINE + 1])
            .is_err());
        assert_eq!(
            Profile::imap("a", true).parse(b"+").unwrap(),
            ServerLine::Challenge(vec![])
        );
        assert_eq!(
            Profile::smtp().parse(b"334").unwrap(),
            ServerLine::Challenge(vec![])
        );
    }

    /// A mechanism that answers every challenge, and a server that never stops: cut off
    /// after MAX_PROFILE_ROUNDS with a cancel; endless untagged lines after MAX_PROFILE_LINES.
    #[test]
    fn endless_servers_are_cut_off() {
        #[derive(Debug)]
        struct Chatty;
        impl Mechanism for Chatty {
            fn name(&self) -> &'static str {
                "X-CHATTY"
            }
            fn respond(&mut self, _: &[u8]) -> Result<crate::Response, SaslError> {
                Ok(crate::Response::new(b"more".to_vec()))
            }
            fn finish(&mut self, _: Option<&[u8]>) -> Result<(), SaslError> {
                Ok(())
            }
        }
        let mut lines: Vec<&[u8]> = vec![b"334 "; MAX_PROFILE_ROUNDS + 1];
        lines.push(b"501 cancelled");
        let (sent, result) = script(&mut Chatty, &Profile::smtp(), &lines);
        assert!(
            matches!(result, Err(ProfileError::TooManyRounds)),
            "{result:?}"
        );
        assert_eq!(sent.last().unwrap(), "*");
        let untagged: Vec<&[u8]> = vec![b"* OK still here"; MAX_PROFILE_LINES + 10];
        let (_, result) = script(&mut Chatty, &Profile::imap("a", true), &untagged);
        assert!(matches!(result, Err(ProfileError::Io(_))), "{result:?}");
    }
}
