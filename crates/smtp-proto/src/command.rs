//! Client commands and their encoding into a caller's buffer.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::address::{ForwardPath, ReversePath};
use crate::domain::{char_reason, Domain};
use crate::extension::{Argument, Verb};
use crate::invalid::{InvalidInput, InvalidReason};
use crate::params::{MailParams, RcptParams, Text};
use crate::reply::{Reply, ReplyCode};

/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest SASL response line (the client's answer to a 334), CRLF included (RFC 4954 4).
/// The `AUTH` command line itself, initial response included, keeps the ordinary
/// [`MAX_COMMAND_LINE`]: RFC 4954 4 says a client "MUST NOT use the initial response
/// parameter" when it would make the AUTH command exceed the SMTP line limit.
pub const MAX_AUTH_RESPONSE_LINE: usize = 12288;
/// Longest SASL mechanism name (RFC 4422 3.1).
const MAX_MECHANISM_LEN: usize = 20;

/// A command the client sends. Arguments are validated values, so the encoded line can
/// only ever be one line.
///
/// ```
/// use smtp_proto::{Command, Domain};
/// let domain = Domain::new("client.example.org").unwrap();
/// let mut out = Vec::new();
/// Command::Ehlo(&domain).encode(&mut out).unwrap();
/// Command::Auth { mechanism: "PLAIN", initial_response: Some(b"\0user\0pass") }
///     .encode(&mut out).unwrap();
/// assert_eq!(out, b"EHLO client.example.org\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\n");
/// let auth = Command::Auth { mechanism: "PLAIN", initial_response: Some(b"\0user\0pass") };
/// assert_eq!(auth.redacted(), "AUTH PLAIN ****");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO domain`.
    Ehlo(&'a Domain),
    /// `LHLO domain`: LMTP's EHLO (RFC 2033 4.1), the only greeting an LMTP server takes.
    Lhlo(&'a Domain),
    /// `XCLIENT attr=value ...` (Postfix): the server starts over as if the client named
    /// there had connected, and greets again with 220.
    Xclient(&'a crate::Xclient),
    /// `XFORWARD attr=value ...` (Postfix): the original client, for the server's logs.
    Xforward(&'a crate::Xforward),
    /// `HELO domain`.
    Helo(&'a Domain),
    /// `MAIL FROM:<path> params`.
    Mail {
        /// The reverse-path.
        from: &'a ReversePath,
        /// ESMTP parameters.
        params: &'a MailParams,
    },
    /// `RCPT TO:<path> params`.
    Rcpt {
        /// The forward-path.
        to: &'a ForwardPath,
        /// ESMTP parameters.
        params: &'a RcptParams,
    },
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030); the chunk itself follows, not encoded here.
    Bdat {
        /// Octets in the chunk.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `VRFY text`.
    Vrfy(&'a Text),
    /// `EXPN text`.
    Expn(&'a Text),
    /// `HELP [text]`.
    Help(Option<&'a Text>),
    /// `ETRN text` (RFC 1985).
    Etrn(&'a Text),
    /// `AUTH mechanism [initial-response]` (RFC 4954). The initial response is raw
    /// bytes, base64-encoded here; an empty one is sent as `=`.
    Auth {
        /// The SASL mechanism name (RFC 4422: up to 20 of A-Z, 0-9, `-`, `_`; lower case
        /// is accepted and sent as given).
        mechanism: &'a str,
        /// The client's first response, when the mechanism has one.
        initial_response: Option<&'a [u8]>,
    },
    /// A SASL response to a 334 challenge: raw bytes, base64-encoded on a line of its own.
    AuthResponse(&'a [u8]),
    /// `*`: cancels the AUTH exchange (RFC 4954 4).
    AuthCancel,
    /// `SEND FROM:<path>` (RFC 821 4.1.1): deliver to the recipients' terminals. The
    /// reverse-path must be ASCII; no ESMTP parameters.
    Send {
        /// The reverse-path.
        from: &'a ReversePath,
    },
    /// `SOML FROM:<path>` (RFC 821 4.1.1): send to terminals or mailboxes. The
    /// reverse-path must be ASCII; no ESMTP parameters.
    Soml {
        /// The reverse-path.
        from: &'a ReversePath,
    },
    /// `SAML FROM:<path>` (RFC 821 4.1.1): send to terminals and mailboxes. The
    /// reverse-path must be ASCII; no ESMTP parameters.
    Saml {
        /// The reverse-path.
        from: &'a ReversePath,
    },
    /// `VERB arg arg ...`: a command of an extension that has no typed variant
    /// (Net::Cmd's `command(VERB, ARGS)`), the arguments separated by single spaces.
    /// [`Verb`] refuses the verbs of the typed commands and of state-changing ones.
    ///
    /// ```
    /// use smtp_proto::{Argument, Command, Verb};
    /// let verb = Verb::new("XFORWARD")?;
    /// let args = [Argument::new("NAME=spike.porcupine.org")?, Argument::new("ADDR=168.100.189.2")?];
    /// let mut out = Vec::new();
    /// Command::Extension { verb: &verb, args: &args }.encode(&mut out)?;
    /// assert_eq!(out, b"XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2\r\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Extension {
        /// The verb, sent as given.
        verb: &'a Verb,
        /// The arguments, possibly none.
        args: &'a [Argument],
    },
}

/// Why a command could not be encoded. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The line would exceed its limit; it is refused, never truncated.
    TooLong {
        /// The command's verb (see [`Command::verb`]).
        verb: &'static str,
        /// The length the line would have, CRLF included.
        len: usize,
        /// The limit, CRLF included.
        limit: usize,
    },
    /// MAIL with a non-ASCII path but without the SMTPUTF8 parameter (RFC 6531 3.4).
    NeedsSmtpUtf8 {
        /// The non-ASCII mailbox.
        mailbox: String,
    },
    /// An argument is not valid (for example the AUTH mechanism name).
    Invalid(InvalidInput),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::TooLong { verb, len, limit } => write!(
                f,
                "{verb} command line would be {len} octets, the limit is {limit}"
            ),
            CommandError::NeedsSmtpUtf8 { mailbox } => write!(
                f,
                "mailbox \"{mailbox}\" is not ASCII: MAIL needs the SMTPUTF8 parameter"
            ),
            CommandError::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

impl From<InvalidInput> for CommandError {
    fn from(e: InvalidInput) -> Self {
        CommandError::Invalid(e)
    }
}

/// The length of the base64 encoding of `n` bytes (padded).
fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Whether `AUTH mechanism initial-response` fits the SMTP command line limit
/// ([`MAX_COMMAND_LINE`], 512 octets with CRLF), for an initial response of
/// `initial_response_len` raw bytes. When it does not, RFC 4954 4 requires the client to
/// send `AUTH mechanism` alone and the response after the first 334, on a line of up to
/// [`MAX_AUTH_RESPONSE_LINE`].
///
/// ```
/// assert!(smtp_proto::auth_line_fits("PLAIN", 100));
/// assert!(!smtp_proto::auth_line_fits("PLAIN", 400)); // 536 base64 octets
/// ```
pub fn auth_line_fits(mechanism: &str, initial_response_len: usize) -> bool {
    auth_line_len(mechanism, Some(initial_response_len)) <= MAX_COMMAND_LINE
}

fn auth_line_len(mechanism: &str, initial_response_len: Option<usize>) -> usize {
    let ir = match initial_response_len {
        None => 0,
        Some(0) => 2,
        Some(n) => 1 + base64_len(n),
    };
    "AUTH ".len() + mechanism.len() + ir + 2
}

fn validate_mechanism(mechanism: &str) -> Result<(), InvalidInput> {
    const M: &str = "SASL mechanism";
    let b = mechanism.as_bytes();
    crate::invalid::check_line_safe(M, b)?;
    if mechanism.is_empty() {
        return Err(InvalidInput::new(M, b, InvalidReason::Empty));
    }
    if let Some(c) = mechanism
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(InvalidInput::new(M, b, char_reason(c)));
    }
    if b.len() > MAX_MECHANISM_LEN {
        return Err(InvalidInput::new(
            M,
            b,
            InvalidReason::TooLong {
                len: b.len(),
                limit: MAX_MECHANISM_LEN,
            },
        ));
    }
    Ok(())
}

/// XCLIENT or XFORWARD without any attribute: not a command Postfix takes.
fn empty_attrs(verb: &'static str) -> CommandError {
    CommandError::Invalid(InvalidInput::new(
        verb,
        b"",
        InvalidReason::Syntax("has no attribute"),
    ))
}

impl<'a> Command<'a> {
    /// The command's verb: `"EHLO"`, `"MAIL"`, ..., `"AUTH"`; for the lines of an AUTH
    /// exchange that have no verb, `"AUTH response"` and `"AUTH cancel"`; for an
    /// [`Extension`](Command::Extension) command, `"extension"` (its own verb is
    /// [`name`](Command::name)).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Lhlo(_) => "LHLO",
            Command::Xclient(_) => "XCLIENT",
            Command::Xforward(_) => "XFORWARD",
            Command::Helo(_) => "HELO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::StartTls => "STARTTLS",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::Help(_) => "HELP",
            Command::Etrn(_) => "ETRN",
            Command::Auth { .. } => "AUTH",
            Command::AuthResponse(_) => "AUTH response",
            Command::AuthCancel => "AUTH cancel",
            Command::Send { .. } => "SEND",
            Command::Soml { .. } => "SOML",
            Command::Saml { .. } => "SAML",
            Command::Extension { .. } => "extension",
        }
    }

    /// The verb as it goes on the wire: [`verb`](Command::verb) for the typed commands,
    /// the extension's own verb, as given, for an [`Extension`](Command::Extension).
    pub fn name(&self) -> &'a str {
        match self {
            Command::Extension { verb, .. } => verb.as_str(),
            _ => self.verb(),
        }
    }

    /// Whether the line carries a secret (an AUTH initial response or SASL response).
    /// An extension command never does: its verb cannot be AUTH.
    pub fn is_secret(&self) -> bool {
        matches!(
            self,
            Command::Auth {
                initial_response: Some(_),
                ..
            } | Command::AuthResponse(_)
        )
    }

    /// The line's limit, CRLF included.
    fn limit(&self) -> usize {
        match self {
            Command::AuthResponse(_) => MAX_AUTH_RESPONSE_LINE,
            _ => MAX_COMMAND_LINE,
        }
    }

    /// Appends the command as one CRLF-ended line to `out`; on error appends nothing.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CommandError> {
        let start = out.len();
        let result = self.encode_unchecked(out).and_then(|()| {
            let len = out.len() - start;
            if len > self.limit() {
                Err(CommandError::TooLong {
                    verb: self.verb(),
                    len,
                    limit: self.limit(),
                })
            } else {
                Ok(())
            }
        });
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, out: &mut Vec<u8>) -> Result<(), CommandError> {
        let mut word = |verb: &str, arg: Option<&str>| {
            out.extend_from_slice(verb.as_bytes());
            if let Some(arg) = arg {
                out.push(b' ');
                out.extend_from_slice(arg.as_bytes());
            }
        };
        match self {
            Command::Ehlo(d) => word("EHLO", Some(d.as_str())),
            Command::Lhlo(d) => word("LHLO", Some(d.as_str())),
            Command::Xclient(attrs) => {
                if attrs.is_empty() {
                    return Err(empty_attrs("XCLIENT"));
                }
                out.extend_from_slice(b"XCLIENT");
                attrs.encode(out);
            }
            Command::Xforward(attrs) => {
                if attrs.is_empty() {
                    return Err(empty_attrs("XFORWARD"));
                }
                out.extend_from_slice(b"XFORWARD");
                attrs.encode(out);
            }
            Command::Helo(d) => word("HELO", Some(d.as_str())),
            Command::Mail { from, params } => {
                if !from.is_ascii() && !params.smtp_utf8 {
                    return Err(CommandError::NeedsSmtpUtf8 {
                        mailbox: from.mailbox().map(|m| m.to_string()).unwrap_or_default(),
                    });
                }
                out.extend_from_slice(b"MAIL FROM:");
                from.encode(out);
                params.encode(out);
            }
            Command::Rcpt { to, params } => {
                out.extend_from_slice(b"RCPT TO:");
                to.encode(out);
                params.encode(out);
            }
            Command::Data => word("DATA", None),
            Command::Bdat { size, last } => {
                push_fmt(out, format_args!("BDAT {size}"));
                if *last {
                    out.extend_from_slice(b" LAST");
                }
            }
            Command::Rset => word("RSET", None),
            Command::Noop => word("NOOP", None),
            Command::Quit => word("QUIT", None),
            Command::StartTls => word("STARTTLS", None),
            Command::Vrfy(t) => word("VRFY", Some(t.as_str())),
            Command::Expn(t) => word("EXPN", Some(t.as_str())),
            Command::Help(t) => word("HELP", t.map(Text::as_str)),
            Command::Etrn(t) => word("ETRN", Some(t.as_str())),
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                validate_mechanism(mechanism)?;
                let len = auth_line_len(mechanism, initial_response.map(<[u8]>::len));
                if len > MAX_COMMAND_LINE {
                    return Err(CommandError::TooLong {
                        verb: "AUTH",
                        len,
                        limit: MAX_COMMAND_LINE,
                    });
                }
                word("AUTH", Some(mechanism));
                match initial_response {
                    None => {}
                    Some([]) => out.extend_from_slice(b" ="),
                    Some(ir) => {
                        out.push(b' ');
                        push_base64(ir, out);
                    }
                }
            }
            Command::AuthResponse(bytes) => {
                let len = base64_len(bytes.len()) + 2;
                if len > MAX_AUTH_RESPONSE_LINE {
                    return Err(CommandError::TooLong {
                        verb: self.verb(),
                        len,
                        limit: MAX_AUTH_RESPONSE_LINE,
                    });
                }
                push_base64(bytes, out);
            }
            Command::AuthCancel => out.push(b'*'),
            Command::Send { from } | Command::Soml { from } | Command::Saml { from } => {
                if !from.is_ascii() {
                    let mailbox = from.mailbox().map(|m| m.as_str()).unwrap_or_default();
                    return Err(CommandError::Invalid(InvalidInput::new(
                        "reverse-path",
                        mailbox.as_bytes(),
                        InvalidReason::NonAscii,
                    )));
                }
                out.extend_from_slice(self.verb().as_bytes());
                out.extend_from_slice(b" FROM:");
                from.encode(out);
            }
            Command::Extension { verb, args } => {
                let len = verb.as_str().len()
                    + args.iter().map(|a| 1 + a.as_str().len()).sum::<usize>()
                    + 2;
                if len > MAX_COMMAND_LINE {
                    return Err(CommandError::TooLong {
                        verb: self.verb(),
                        len,
                        limit: MAX_COMMAND_LINE,
                    });
                }
                out.extend_from_slice(verb.as_str().as_bytes());
                for arg in *args {
                    out.push(b' ');
                    out.extend_from_slice(arg.as_str().as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// The line for a transcript, without CRLF, with every SASL payload replaced by
    /// `****`: `"AUTH PLAIN ****"`, `"****"`. An unencodable command shows as its verb
    /// followed by `(invalid)`.
    pub fn redacted(&self) -> String {
        match self {
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let mech = match validate_mechanism(mechanism) {
                    Ok(()) => *mechanism,
                    Err(_) => "(invalid)",
                };
                match initial_response {
                    Some(_) => format!("AUTH {mech} ****"),
                    None => format!("AUTH {mech}"),
                }
            }
            Command::AuthResponse(_) => "****".to_owned(),
            _ => {
                let mut line = Vec::new();
                match self.encode(&mut line) {
                    Ok(()) => {
                        line.truncate(line.len() - 2);
                        String::from_utf8_lossy(&line).into_owned()
                    }
                    Err(_) => format!("{} (invalid)", self.name()),
                }
            }
        }
    }
}

fn push_base64(raw: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + base64_len(raw.len()), 0);
    let written = STANDARD
        .encode_slice(raw, &mut out[start..])
        .unwrap_or_default();
    out.truncate(start + written);
}

impl fmt::Debug for Command<'_> {
    /// The redacted line: never shows a SASL payload.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({:?})", self.redacted())
    }
}

/// Why a 334 reply did not yield a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The reply is not 334.
    NotChallenge {
        /// The reply's code.
        code: u16,
    },
    /// The 334 reply has more than one line.
    MultiLine,
    /// The text is not base64.
    BadBase64 {
        /// The base64 decoder's explanation.
        reason: String,
    },
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeError::NotChallenge { code } => {
                write!(f, "expected a 334 challenge, got a {code} reply")
            }
            ChallengeError::MultiLine => f.write_str("334 challenge has more than one line"),
            ChallengeError::BadBase64 { reason } => {
                write!(f, "334 challenge is not base64: {reason}")
            }
        }
    }
}

impl std::error::Error for ChallengeError {}

/// The base64 decoder for challenges: padding optional (some servers omit it).
const CHALLENGE_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The raw challenge of a `334` reply (RFC 4954 4): its text base64-decoded. An empty
/// text (or a lone `=`) is an empty challenge.
///
/// ```
/// use smtp_proto::{decode_challenge, Reply, ReplyCode};
/// let reply = Reply::new(ReplyCode::AUTH_CONTINUE, &[b"VXNlcm5hbWU6"]).unwrap();
/// assert_eq!(decode_challenge(&reply).unwrap(), b"Username:");
/// ```
pub fn decode_challenge(reply: &Reply) -> Result<Vec<u8>, ChallengeError> {
    if reply.code() != ReplyCode::AUTH_CONTINUE {
        return Err(ChallengeError::NotChallenge {
            code: reply.code().get(),
        });
    }
    if reply.line_count() != 1 {
        return Err(ChallengeError::MultiLine);
    }
    let text = reply.lines().next().unwrap_or_default();
    let text = text.trim_ascii();
    if text.is_empty() || text == b"=" {
        return Ok(Vec::new());
    }
    CHALLENGE_ENGINE
        .decode(text)
        .map_err(|e| ChallengeError::BadBase64 {
            reason: e.to_string(),
        })
}

/// Appends formatted text to `out` without an intermediate `String` (one allocation less
/// per command on the sending path). Writing to a `Vec` cannot fail.
pub(crate) fn push_fmt(out: &mut Vec<u8>, args: fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = out.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Argument, Verb};
    use crate::{AuthParam, Body, Mailbox, Notify, Orcpt};

    fn line(cmd: Command<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        cmd.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn rfc5321_d1_transaction_lines() {
        // RFC 5321 D.1 "A Typical SMTP Transaction Scenario", client side.
        let bar = Domain::new("bar.com").unwrap();
        let from = ReversePath::Mailbox(Mailbox::new("Smith@bar.com").unwrap());
        let to = ForwardPath::new("Jones@foo.com").unwrap();
        assert_eq!(line(Command::Ehlo(&bar)), b"EHLO bar.com\r\n");
        // RFC 2033 4.2's example: "C: LHLO foo.edu".
        let foo = Domain::new("foo.edu").unwrap();
        assert_eq!(line(Command::Lhlo(&foo)), b"LHLO foo.edu\r\n");
        assert_eq!(
            line(Command::Mail {
                from: &from,
                params: &MailParams::default()
            }),
            b"MAIL FROM:<Smith@bar.com>\r\n"
        );
        assert_eq!(
            line(Command::Rcpt {
                to: &to,
                params: &RcptParams::default()
            }),
            b"RCPT TO:<Jones@foo.com>\r\n"
        );
        assert_eq!(line(Command::Data), b"DATA\r\n");
        assert_eq!(line(Command::Quit), b"QUIT\r\n");
    }

    #[test]
    fn every_simple_command() {
        let d = Domain::new("[192.0.2.1]").unwrap();
        let t = Text::new("Smith").unwrap();
        assert_eq!(line(Command::Helo(&d)), b"HELO [192.0.2.1]\r\n");
        assert_eq!(line(Command::Rset), b"RSET\r\n");
        assert_eq!(line(Command::Noop), b"NOOP\r\n");
        assert_eq!(line(Command::StartTls), b"STARTTLS\r\n");
        assert_eq!(line(Command::Vrfy(&t)), b"VRFY Smith\r\n");
        assert_eq!(line(Command::Expn(&t)), b"EXPN Smith\r\n");
        assert_eq!(line(Command::Help(None)), b"HELP\r\n");
        assert_eq!(line(Command::Help(Some(&t))), b"HELP Smith\r\n");
        assert_eq!(line(Command::Etrn(&t)), b"ETRN Smith\r\n");
        // RFC 3030 examples.
        assert_eq!(
            line(Command::Bdat {
                size: 86,
                last: false
            }),
            b"BDAT 86\r\n"
        );
        assert_eq!(
            line(Command::Bdat {
                size: 44,
                last: true
            }),
            b"BDAT 44 LAST\r\n"
        );
        assert_eq!(line(Command::AuthCancel), b"*\r\n");
        assert_eq!(
            line(Command::Mail {
                from: &ReversePath::Null,
                params: &MailParams::default()
            }),
            b"MAIL FROM:<>\r\n"
        );
        assert_eq!(
            line(Command::Rcpt {
                to: &ForwardPath::postmaster(),
                params: &RcptParams::default()
            }),
            b"RCPT TO:<Postmaster>\r\n"
        );
    }

    #[test]
    fn rfc4954_auth_lines() {
        // RFC 4954 6 examples: "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=" and the empty "=".
        assert_eq!(
            line(Command::Auth {
                mechanism: "PLAIN",
                initial_response: Some(b"test\0test\x001234")
            }),
            b"AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=\r\n"
        );
        assert_eq!(
            line(Command::Auth {
                mechanism: "EXTERNAL",
                initial_response: Some(b"")
            }),
            b"AUTH EXTERNAL =\r\n"
        );
        assert_eq!(
            line(Command::Auth {
                mechanism: "CRAM-MD5",
                initial_response: None
            }),
            b"AUTH CRAM-MD5\r\n"
        );
        // RFC 2195 example response.
        assert_eq!(
            line(Command::AuthResponse(
                b"tim b913a602c7eda7a495b4e6e7334d3890"
            )),
            b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"
        );
        assert_eq!(line(Command::AuthResponse(b"")), b"\r\n");
    }

    #[test]
    fn bad_mechanism_names_are_refused() {
        for bad in [
            "",
            "PLAIN\r\nMAIL",
            "A B",
            "TOO-LONG-MECHANISM-NAME",
            "PLAIN=",
        ] {
            let mut out = b"kept".to_vec();
            let e = Command::Auth {
                mechanism: bad,
                initial_response: None,
            }
            .encode(&mut out)
            .unwrap_err();
            assert!(matches!(e, CommandError::Invalid(_)), "{bad:?}");
            assert_eq!(out, b"kept");
        }
    }

    #[test]
    fn secrets_never_in_redacted_or_debug() {
        let secret = b"\0user\0hunter2";
        let cmds = [
            Command::Auth {
                mechanism: "PLAIN",
                initial_response: Some(secret),
            },
            Command::AuthResponse(b"hunter2"),
        ];
        for cmd in cmds {
            assert!(cmd.is_secret());
            let mut wire = Vec::new();
            cmd.encode(&mut wire).unwrap();
            let b64 = String::from_utf8(wire).unwrap();
            let b64 = b64.trim_end().rsplit(' ').next().unwrap().to_owned();
            for shown in [cmd.redacted(), format!("{cmd:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(!shown.contains(&b64), "{shown}");
                assert!(shown.contains("****"), "{shown}");
            }
        }
        assert_eq!(Command::AuthResponse(b"x").redacted(), "****");
        assert!(!Command::Auth {
            mechanism: "LOGIN",
            initial_response: None
        }
        .is_secret());
        assert_eq!(
            Command::Auth {
                mechanism: "LOGIN",
                initial_response: None
            }
            .redacted(),
            "AUTH LOGIN"
        );
        assert_eq!(Command::Quit.redacted(), "QUIT");
    }

    #[test]
    fn mail_with_params_and_smtputf8() {
        let from = ReversePath::Mailbox(Mailbox::new("jürgen@example.de").unwrap());
        let mut out = b"x".to_vec();
        let e = Command::Mail {
            from: &from,
            params: &MailParams::default(),
        }
        .encode(&mut out)
        .unwrap_err();
        assert_eq!(
            e,
            CommandError::NeedsSmtpUtf8 {
                mailbox: "jürgen@example.de".into()
            }
        );
        assert_eq!(out, b"x");
        let params = MailParams {
            smtp_utf8: true,
            body: Some(Body::EightBitMime),
            ..Default::default()
        };
        assert_eq!(
            line(Command::Mail {
                from: &from,
                params: &params
            }),
            "MAIL FROM:<jürgen@example.de> BODY=8BITMIME SMTPUTF8\r\n".as_bytes()
        );
        let sender = Mailbox::new("e+e@example.org").unwrap();
        let params = MailParams {
            auth: Some(AuthParam::mailbox(&sender)),
            ..Default::default()
        };
        assert_eq!(
            line(Command::Mail {
                from: &ReversePath::Null,
                params: &params
            }),
            b"MAIL FROM:<> AUTH=e+2Be@example.org\r\n"
        );
        let to = ForwardPath::new("Bob@Example.COM").unwrap();
        let rp = RcptParams {
            notify: Some(Notify::never()),
            orcpt: Some(Orcpt::rfc822(to.mailbox().unwrap())),
            extra: vec![],
        };
        assert_eq!(
            line(Command::Rcpt {
                to: &to,
                params: &rp
            }),
            b"RCPT TO:<Bob@Example.COM> NOTIFY=NEVER ORCPT=rfc822;Bob@Example.COM\r\n"
        );
    }

    #[test]
    fn over_long_lines_are_refused_not_truncated() {
        let from = ReversePath::Mailbox(Mailbox::new("a@example.com").unwrap());
        let extra: Vec<_> = (0..60)
            .map(|i| crate::EsmtpParam::new(&format!("X{i}"), Some("vvvv")).unwrap())
            .collect();
        let params = MailParams {
            extra,
            ..Default::default()
        };
        let mut out = Vec::new();
        let e = Command::Mail {
            from: &from,
            params: &params,
        }
        .encode(&mut out)
        .unwrap_err();
        match e {
            CommandError::TooLong {
                verb: "MAIL",
                len,
                limit: 512,
            } => assert!(len > 512),
            other => panic!("{other:?}"),
        }
        assert!(out.is_empty());
        // Exactly 512 with CRLF is fine: "VRFY " + 505 + CRLF.
        let t = Text::new(&"a".repeat(505)).unwrap();
        assert_eq!(line(Command::Vrfy(&t)).len(), 512);
        let t = Text::new(&"a".repeat(506)).unwrap();
        assert!(Command::Vrfy(&t).encode(&mut out).is_err());
    }

    #[test]
    fn auth_line_limit_rfc4954() {
        // RFC 4954 4: the AUTH line with its initial response keeps SMTP's 512 octets.
        // "AUTH PLAIN " (11) + base64 + CRLF (2) <= 512: base64 <= 499 -> 496 (124 * 4),
        // which carries 372 raw bytes.
        let raw_max = 496 / 4 * 3;
        assert!(auth_line_fits("PLAIN", raw_max));
        assert!(!auth_line_fits("PLAIN", raw_max + 1));
        let ir = vec![7u8; raw_max];
        let l = line(Command::Auth {
            mechanism: "PLAIN",
            initial_response: Some(&ir),
        });
        assert_eq!(l.len(), 509);
        let ir = vec![7u8; raw_max + 1];
        let e = Command::Auth {
            mechanism: "PLAIN",
            initial_response: Some(&ir),
        }
        .encode(&mut Vec::new())
        .unwrap_err();
        assert!(matches!(
            e,
            CommandError::TooLong {
                verb: "AUTH",
                limit: 512,
                ..
            }
        ));
        // The response line after a 334 may be up to 12288 octets: 12286 / 4 * 4 = 12284
        // base64 octets, 9213 raw bytes.
        let big = vec![0u8; 9214];
        assert!(Command::AuthResponse(&big).encode(&mut Vec::new()).is_err());
        assert_eq!(line(Command::AuthResponse(&big[..9213])).len(), 12286);
    }

    #[test]
    fn rfc821_send_soml_saml() {
        // RFC 821 4.1.2: "SEND <SP> FROM:<reverse-path> <CRLF>", the same for SOML and
        // SAML; the mailbox from RFC 821's own examples.
        let from = ReversePath::Mailbox(Mailbox::new("Smith@Alpha.ARPA").unwrap());
        assert_eq!(
            line(Command::Send { from: &from }),
            b"SEND FROM:<Smith@Alpha.ARPA>\r\n"
        );
        assert_eq!(
            line(Command::Soml { from: &from }),
            b"SOML FROM:<Smith@Alpha.ARPA>\r\n"
        );
        assert_eq!(
            line(Command::Saml { from: &from }),
            b"SAML FROM:<Smith@Alpha.ARPA>\r\n"
        );
        assert_eq!(
            line(Command::Send {
                from: &ReversePath::Null
            }),
            b"SEND FROM:<>\r\n"
        );
        let cmd = Command::Saml { from: &from };
        assert_eq!(cmd.verb(), "SAML");
        assert_eq!(cmd.name(), "SAML");
        assert!(!cmd.is_secret());
        assert_eq!(cmd.redacted(), "SAML FROM:<Smith@Alpha.ARPA>");
    }

    #[test]
    fn send_refuses_a_non_ascii_path() {
        // SMTPUTF8 (RFC 6531) is a MAIL parameter: SEND, SOML and SAML stay ASCII.
        let from = ReversePath::Mailbox(Mailbox::new("jürgen@example.de").unwrap());
        for cmd in [
            Command::Send { from: &from },
            Command::Soml { from: &from },
            Command::Saml { from: &from },
        ] {
            let mut out = b"kept".to_vec();
            match cmd.encode(&mut out).unwrap_err() {
                CommandError::Invalid(e) => {
                    assert_eq!(e.reason(), &InvalidReason::NonAscii);
                    assert_eq!(e.what(), "reverse-path");
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(out, b"kept");
        }
    }

    #[test]
    fn extension_lines() {
        // Postfix XFORWARD_README's example command.
        let verb = Verb::new("XFORWARD").unwrap();
        let args = [
            Argument::new("NAME=spike.porcupine.org").unwrap(),
            Argument::new("ADDR=168.100.189.2").unwrap(),
            Argument::new("PROTO=ESMTP").unwrap(),
        ];
        let cmd = Command::Extension {
            verb: &verb,
            args: &args,
        };
        assert_eq!(
            line(cmd),
            b"XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP\r\n"
        );
        assert_eq!(cmd.verb(), "extension");
        assert_eq!(cmd.name(), "XFORWARD");
        assert!(!cmd.is_secret());
        assert_eq!(
            cmd.redacted(),
            "XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP"
        );
        assert_eq!(
            format!("{cmd:?}"),
            "Command(\"XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP\")"
        );
        // Sendmail's VERB takes no argument; the verb is sent as spelt.
        let verb = Verb::new("Verb").unwrap();
        assert_eq!(
            line(Command::Extension {
                verb: &verb,
                args: &[]
            }),
            b"Verb\r\n"
        );
    }

    #[test]
    fn extension_line_limit_is_512_with_crlf() {
        // RFC 5321 4.5.3.1.4: 512 octets including CRLF. "XFOO" + " " + 505 + CRLF = 512.
        let verb = Verb::new("XFOO").unwrap();
        let fits = [Argument::new(&"a".repeat(505)).unwrap()];
        let cmd = Command::Extension {
            verb: &verb,
            args: &fits,
        };
        assert_eq!(line(cmd).len(), 512);
        let over = [
            Argument::new(&"a".repeat(500)).unwrap(),
            Argument::new("bcdef").unwrap(),
        ];
        let mut out = b"kept".to_vec();
        let e = Command::Extension {
            verb: &verb,
            args: &over,
        }
        .encode(&mut out)
        .unwrap_err();
        assert_eq!(
            e,
            CommandError::TooLong {
                verb: "extension",
                len: 513,
                limit: 512
            }
        );
        assert_eq!(out, b"kept");
        assert_eq!(
            Command::Extension {
                verb: &verb,
                args: &over
            }
            .redacted(),
            "XFOO (invalid)"
        );
        // A verb alone can be too long too.
        let long = Verb::new(&format!("X{}", "Y".repeat(510))).unwrap();
        assert!(matches!(
            Command::Extension {
                verb: &long,
                args: &[]
            }
            .encode(&mut out),
            Err(CommandError::TooLong { len: 513, .. })
        ));
        assert_eq!(out, b"kept");
    }

    #[test]
    fn challenges() {
        let code = |c| ReplyCode::new(c).unwrap();
        // RFC 4954 6 / RFC 2195 challenge.
        let r = Reply::new(
            code(334),
            &[b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"],
        )
        .unwrap();
        assert_eq!(
            decode_challenge(&r).unwrap(),
            b"<1896.697170952@postoffice.reston.mci.net>"
        );
        assert_eq!(
            decode_challenge(&Reply::new(code(334), &[b""]).unwrap()).unwrap(),
            b""
        );
        assert_eq!(
            decode_challenge(&Reply::new(code(334), &[b"YQ"]).unwrap()).unwrap(),
            b"a"
        );
        assert!(matches!(
            decode_challenge(&Reply::new(code(334), &[b"!!"]).unwrap()),
            Err(ChallengeError::BadBase64 { .. })
        ));
        assert_eq!(
            decode_challenge(&Reply::new(code(235), &[b"ok"]).unwrap()),
            Err(ChallengeError::NotChallenge { code: 235 })
        );
        assert_eq!(
            decode_challenge(&Reply::new(code(334), &[b"YQ", b"YQ"]).unwrap()),
            Err(ChallengeError::MultiLine)
        );
    }
}
