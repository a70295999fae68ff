//! A server reply: a validated code, an optional enhanced status code and the text lines.

use std::fmt;

use bytes::Bytes;

use crate::invalid::{escape, InvalidInput, InvalidReason};

/// A reply code: three digits, the first one 2 to 5 (RFC 5321 4.2).
///
/// ```
/// use smtp_proto::{ReplyCode, Severity};
/// let code = ReplyCode::new(354).unwrap();
/// assert_eq!(code.severity(), Severity::PositiveIntermediate);
/// assert!(ReplyCode::new(199).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

/// Named reply codes, for comparisons (`reply.code() == ReplyCode::OK`) and `match`
/// patterns. A name is the meaning the RFC gives the code; where one code has two
/// meanings, both names exist and are equal (452, 454, 554).
///
/// ```
/// use smtp_proto::{Reply, ReplyCode};
/// let reply = Reply::new(ReplyCode::AUTH_CREDENTIALS_INVALID,
///                        &[b"5.7.8 Authentication credentials invalid"]).unwrap();
/// match reply.code() {
///     ReplyCode::AUTH_SUCCESS => unreachable!(),
///     ReplyCode::AUTH_CREDENTIALS_INVALID => {}
///     other => panic!("unexpected {other}"),
/// }
/// assert_eq!(ReplyCode::START_MAIL_INPUT.get(), 354);
/// ```
impl ReplyCode {
    /// 211: system status, or system help reply (RFC 5321 4.2.3).
    pub const SYSTEM_STATUS: ReplyCode = ReplyCode(211);
    /// 214: help message (RFC 5321 4.2.3).
    pub const HELP_MESSAGE: ReplyCode = ReplyCode(214);
    /// 220: service ready, the greeting (RFC 5321 4.2.3); also the answer to STARTTLS,
    /// "Ready to start TLS" (RFC 3207 4).
    pub const SERVICE_READY: ReplyCode = ReplyCode(220);
    /// 221: service closing transmission channel, the answer to QUIT (RFC 5321 4.2.3).
    pub const CLOSING: ReplyCode = ReplyCode(221);
    /// 235: authentication succeeded (RFC 4954 6).
    pub const AUTH_SUCCESS: ReplyCode = ReplyCode(235);
    /// 250: requested mail action okay, completed (RFC 5321 4.2.3).
    pub const OK: ReplyCode = ReplyCode(250);
    /// 251: user not local; will forward (RFC 5321 4.2.3).
    pub const USER_NOT_LOCAL_WILL_FORWARD: ReplyCode = ReplyCode(251);
    /// 252: cannot VRFY user, but will accept message and attempt delivery
    /// (RFC 5321 4.2.3, 3.5.3).
    pub const CANNOT_VRFY: ReplyCode = ReplyCode(252);
    /// 334: a SASL challenge follows in the text; the server waits for the client's
    /// response (RFC 4954 4).
    pub const AUTH_CONTINUE: ReplyCode = ReplyCode(334);
    /// 353: per-recipient replies follow, the answer to the end of data when the
    /// transaction asked for PRDR (Exim's PRDR extension, draft-hall-prdr).
    pub const PRDR_START: ReplyCode = ReplyCode(353);
    /// 354: start mail input; end with `<CRLF>.<CRLF>`, the answer to DATA
    /// (RFC 5321 4.2.3).
    pub const START_MAIL_INPUT: ReplyCode = ReplyCode(354);
    /// 421: service not available, closing transmission channel (RFC 5321 4.2.3); may
    /// answer any command (RFC 5321 3.8).
    pub const SERVICE_UNAVAILABLE: ReplyCode = ReplyCode(421);
    /// 432: a password transition is needed (RFC 4954 6).
    pub const PASSWORD_TRANSITION_NEEDED: ReplyCode = ReplyCode(432);
    /// 450: requested mail action not taken: mailbox unavailable, for now (busy or
    /// blocked by policy; RFC 5321 4.2.3).
    pub const MAILBOX_BUSY: ReplyCode = ReplyCode(450);
    /// 451: requested action aborted: local error in processing (RFC 5321 4.2.3).
    pub const LOCAL_ERROR: ReplyCode = ReplyCode(451);
    /// 452: requested action not taken: insufficient system storage (RFC 5321 4.2.3).
    /// The same code as [`TOO_MANY_RECIPIENTS`](Self::TOO_MANY_RECIPIENTS).
    pub const INSUFFICIENT_STORAGE: ReplyCode = ReplyCode(452);
    /// 452: too many recipients, the answer to a RCPT over the server's limit
    /// (RFC 5321 4.5.3.1.10). The same code as
    /// [`INSUFFICIENT_STORAGE`](Self::INSUFFICIENT_STORAGE).
    pub const TOO_MANY_RECIPIENTS: ReplyCode = ReplyCode(452);
    /// 454: temporary authentication failure (RFC 4954 6). The same code as
    /// [`TLS_NOT_AVAILABLE`](Self::TLS_NOT_AVAILABLE).
    pub const TEMP_AUTH_FAILURE: ReplyCode = ReplyCode(454);
    /// 454: TLS not available due to a temporary reason, an answer to STARTTLS
    /// (RFC 3207 4). The same code as [`TEMP_AUTH_FAILURE`](Self::TEMP_AUTH_FAILURE).
    pub const TLS_NOT_AVAILABLE: ReplyCode = ReplyCode(454);
    /// 455: server unable to accommodate parameters (RFC 5321 4.2.3).
    pub const PARAMS_NOT_ACCOMMODATED: ReplyCode = ReplyCode(455);
    /// 500: syntax error, command unrecognized (RFC 5321 4.2.3); also "line too long".
    pub const SYNTAX_ERROR: ReplyCode = ReplyCode(500);
    /// 501: syntax error in parameters or arguments (RFC 5321 4.2.3).
    pub const PARAM_SYNTAX_ERROR: ReplyCode = ReplyCode(501);
    /// 502: command not implemented (RFC 5321 4.2.3).
    pub const COMMAND_NOT_IMPLEMENTED: ReplyCode = ReplyCode(502);
    /// 503: bad sequence of commands (RFC 5321 4.2.3).
    pub const BAD_SEQUENCE: ReplyCode = ReplyCode(503);
    /// 504: command parameter not implemented (RFC 5321 4.2.3); also an unknown AUTH
    /// mechanism (RFC 4954 4).
    pub const PARAM_NOT_IMPLEMENTED: ReplyCode = ReplyCode(504);
    /// 530: authentication required (RFC 4954 6); "Must issue a STARTTLS command first"
    /// (RFC 3207 4).
    pub const AUTH_REQUIRED: ReplyCode = ReplyCode(530);
    /// 534: authentication mechanism is too weak (RFC 4954 6).
    pub const AUTH_TOO_WEAK: ReplyCode = ReplyCode(534);
    /// 535: authentication credentials invalid (RFC 4954 6).
    pub const AUTH_CREDENTIALS_INVALID: ReplyCode = ReplyCode(535);
    /// 538: encryption required for the requested authentication mechanism (RFC 4954 6).
    pub const ENCRYPTION_REQUIRED: ReplyCode = ReplyCode(538);
    /// 550: requested action not taken: mailbox unavailable (not found, no access, or
    /// refused by policy; RFC 5321 4.2.3).
    pub const MAILBOX_UNAVAILABLE: ReplyCode = ReplyCode(550);
    /// 551: user not local; please try the forward-path given (RFC 5321 4.2.3).
    pub const USER_NOT_LOCAL: ReplyCode = ReplyCode(551);
    /// 552: requested mail action aborted: exceeded storage allocation (RFC 5321 4.2.3).
    pub const EXCEEDED_STORAGE: ReplyCode = ReplyCode(552);
    /// 553: requested action not taken: mailbox name not allowed (RFC 5321 4.2.3).
    pub const MAILBOX_NAME_NOT_ALLOWED: ReplyCode = ReplyCode(553);
    /// 554: no SMTP service here, as the greeting (RFC 5321 4.2.3, 3.1). The same code as
    /// [`TRANSACTION_FAILED`](Self::TRANSACTION_FAILED).
    pub const NO_SERVICE: ReplyCode = ReplyCode(554);
    /// 554: transaction failed, after a transaction's command (RFC 5321 4.2.3). The same
    /// code as [`NO_SERVICE`](Self::NO_SERVICE).
    pub const TRANSACTION_FAILED: ReplyCode = ReplyCode(554);
    /// 555: MAIL FROM/RCPT TO parameters not recognized or not implemented
    /// (RFC 5321 4.2.3).
    pub const PARAMS_NOT_RECOGNIZED: ReplyCode = ReplyCode(555);

    /// The code `code` when it is 200..=599, `None` otherwise.
    pub const fn new(code: u16) -> Option<ReplyCode> {
        if code >= 200 && code <= 599 {
            Some(ReplyCode(code))
        } else {
            None
        }
    }

    /// The code spelt by three ASCII digits, the first `'2'..='5'`: the caller has
    /// checked them, so no range check is repeated on the parser's hot path.
    pub(crate) const fn from_digits(a: u8, b: u8, c: u8) -> ReplyCode {
        debug_assert!(matches!(a, b'2'..=b'5') && b.is_ascii_digit() && c.is_ascii_digit());
        ReplyCode((a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16)
    }

    /// The code as a number, 200..=599.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// What the first digit says about the outcome.
    pub fn severity(self) -> Severity {
        match self.0 / 100 {
            2 => Severity::PositiveCompletion,
            3 => Severity::PositiveIntermediate,
            4 => Severity::TransientNegative,
            _ => Severity::PermanentNegative,
        }
    }

    /// 2xx: the command succeeded.
    pub fn is_positive_completion(self) -> bool {
        self.severity() == Severity::PositiveCompletion
    }

    /// 3xx: the server waits for more (354 after DATA, 334 during AUTH).
    pub fn is_positive_intermediate(self) -> bool {
        self.severity() == Severity::PositiveIntermediate
    }

    /// 4xx: failed for now; the same command may succeed later.
    pub fn is_transient_negative(self) -> bool {
        self.severity() == Severity::TransientNegative
    }

    /// 5xx: failed; repeating the same command will fail again.
    pub fn is_permanent_negative(self) -> bool {
        self.severity() == Severity::PermanentNegative
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The first digit of a reply code (RFC 5321 4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// 2yz.
    PositiveCompletion,
    /// 3yz.
    PositiveIntermediate,
    /// 4yz.
    TransientNegative,
    /// 5yz.
    PermanentNegative,
}

/// An RFC 3463 enhanced status code `class.subject.detail`, such as `5.7.8`.
///
/// ```
/// use smtp_proto::EnhancedStatus;
/// let s = EnhancedStatus { class: 5, subject: 7, detail: 8 };
/// assert_eq!(s.to_string(), "5.7.8");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// 0..=999: the subject (for example 7, security or policy status).
    pub subject: u16,
    /// 0..=999: the detail within the subject.
    pub detail: u16,
}

impl EnhancedStatus {
    /// Recognises an enhanced status code at the start of `text`, followed by a space or
    /// the end of the text. Returns it and the number of bytes it took (without the space).
    ///
    /// Grammar (RFC 3463 2): class "." 1*3digit "." 1*3digit, class one of 2, 4, 5.
    pub fn parse_prefix(text: &[u8]) -> Option<(EnhancedStatus, usize)> {
        let class = match text {
            [b'2', b'.', ..] => 2,
            [b'4', b'.', ..] => 4,
            [b'5', b'.', ..] => 5,
            _ => return None,
        };
        let (subject, n1) = digits_1_3(&text[2..])?;
        let after_subject = 2 + n1;
        if text.get(after_subject) != Some(&b'.') {
            return None;
        }
        let (detail, n2) = digits_1_3(&text[after_subject + 1..])?;
        let end = after_subject + 1 + n2;
        match text.get(end) {
            None | Some(b' ') => Some((
                EnhancedStatus {
                    class,
                    subject,
                    detail,
                },
                end,
            )),
            _ => None,
        }
    }
}

/// One to three digits at the start of `s`, and how many there were (a fourth digit fails).
fn digits_1_3(s: &[u8]) -> Option<(u16, usize)> {
    let digit = |i: usize| match s.get(i) {
        Some(&b @ b'0'..=b'9') => Some(u16::from(b - b'0')),
        _ => None,
    };
    let a = digit(0)?;
    let Some(b) = digit(1) else {
        return Some((a, 1));
    };
    let Some(c) = digit(2) else {
        return Some((a * 10 + b, 2));
    };
    match digit(3) {
        Some(_) => None,
        None => Some((a * 100 + b * 10 + c, 3)),
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete server reply: code, enhanced status code (when the first line has one)
/// and every text line, kept as the bytes the server sent.
///
/// A reply from [`ReplyParser`](crate::ReplyParser) shares the parser's buffer (no copy).
/// Text may be any bytes (servers do send non-UTF-8); [`Reply::text`] and `Display`
/// show it lossily.
///
/// ```
/// use smtp_proto::{Reply, ReplyCode};
/// let reply = Reply::new(ReplyCode::AUTH_CREDENTIALS_INVALID,
///                        &[b"5.7.8 Authentication credentials invalid"]).unwrap();
/// assert_eq!(reply.enhanced().unwrap().to_string(), "5.7.8");
/// assert!(reply.is_permanent_negative());
/// assert_eq!(reply.to_string(), "535 5.7.8 Authentication credentials invalid");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    code: ReplyCode,
    raw: Bytes,
    line_count: usize,
}

impl Reply {
    /// A reply with `code` and the given text lines (at least one; a line may be empty),
    /// for servers and tests. A line holding CR, LF or NUL is refused.
    pub fn new(code: ReplyCode, lines: &[&[u8]]) -> Result<Reply, InvalidInput> {
        if lines.is_empty() {
            return Err(InvalidInput::new(
                "reply text",
                b"",
                InvalidReason::Syntax("a reply needs at least one line"),
            ));
        }
        for line in lines {
            crate::invalid::check_line_safe("reply line", line)?;
        }
        let mut raw = Vec::with_capacity(lines.iter().map(|l| l.len() + 6).sum());
        encode_lines(code, lines.iter().copied(), &mut raw);
        Ok(Reply {
            code,
            raw: Bytes::from(raw),
            line_count: lines.len(),
        })
    }

    /// Builds a reply from wire bytes the parser has already checked.
    pub(crate) fn from_parsed(code: ReplyCode, raw: Bytes, line_count: usize) -> Reply {
        Reply {
            code,
            raw,
            line_count,
        }
    }

    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The RFC 3463 enhanced status code at the start of the first line, when there is
    /// one whose class matches the reply code's first digit (RFC 2034 3).
    ///
    /// Recognised from the first line when asked (a look at its first few octets), so
    /// parsing a reply whose enhanced code nobody reads does not pay for it.
    pub fn enhanced(&self) -> Option<EnhancedStatus> {
        enhanced_for(self.code, first_text_head(&self.raw))
    }

    /// Each line's text: what follows `"ddd-"` or `"ddd "`, without the line end.
    /// The enhanced status code, when present, is part of the text.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let body = self.raw.strip_suffix(b"\n").unwrap_or(&self.raw);
        body.split(|&b| b == b'\n').map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            line.get(4..).unwrap_or(&[])
        })
    }

    /// How many lines the reply has (at least one).
    pub fn line_count(&self) -> usize {
        self.line_count
    }

    /// All text lines joined with `'\n'`, invalid UTF-8 replaced by U+FFFD.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&String::from_utf8_lossy(line));
        }
        out
    }

    /// The reply exactly as received (for a reply built by [`Reply::new`]: as encoded).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Appends the reply in wire form, every line ended by CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_lines(self.code, self.lines(), out);
    }

    /// 2xx.
    pub fn is_positive_completion(&self) -> bool {
        self.code.is_positive_completion()
    }

    /// 3xx.
    pub fn is_positive_intermediate(&self) -> bool {
        self.code.is_positive_intermediate()
    }

    /// 4xx.
    pub fn is_transient_negative(&self) -> bool {
        self.code.is_transient_negative()
    }

    /// 5xx.
    pub fn is_permanent_negative(&self) -> bool {
        self.code.is_permanent_negative()
    }
}

/// How many octets of a line's text [`EnhancedStatus::parse_prefix`] can look at: the
/// longest code (`"5.999.999"`, nine octets) and the octet after it (a fourth digit or
/// what ends the code).
const ENHANCED_LOOKAHEAD: usize = 10;

/// The first line's text (after `"ddd "` / `"ddd-"`, without its line end) of the wire
/// form `raw`, or, when that line is longer, at least its first [`ENHANCED_LOOKAHEAD`]
/// octets: all that recognising an enhanced status code needs. Never scans further.
///
/// The window holds one octet past the look-ahead, so that a CR at the look-ahead's
/// last position is seen with the octet after it: the line end when an LF follows,
/// text otherwise.
fn first_text_head(raw: &[u8]) -> &[u8] {
    let window = &raw[..raw.len().min(4 + ENHANCED_LOOKAHEAD + 1)];
    let line = match memchr::memchr(b'\n', window) {
        Some(lf) => {
            let line = &window[..lf];
            line.strip_suffix(b"\r").unwrap_or(line)
        }
        // The line goes on past the window: its first octets are all that matter.
        None => window,
    };
    line.get(4..).unwrap_or(&[])
}

/// The enhanced status code of a first line, when its class matches the code.
fn enhanced_for(code: ReplyCode, first_text: &[u8]) -> Option<EnhancedStatus> {
    let (status, _) = EnhancedStatus::parse_prefix(first_text)?;
    (u16::from(status.class) == code.get() / 100).then_some(status)
}

fn encode_lines<'a>(code: ReplyCode, lines: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let digits = code_digits(code);
    let mut lines = lines.peekable();
    while let Some(line) = lines.next() {
        out.extend_from_slice(&digits);
        let last = lines.peek().is_none();
        if !last {
            out.push(b'-');
        } else if !line.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

fn code_digits(code: ReplyCode) -> [u8; 3] {
    let c = code.get();
    [
        b'0' + (c / 100) as u8,
        b'0' + (c / 10 % 10) as u8,
        b'0' + (c % 10) as u8,
    ]
}

impl fmt::Display for Reply {
    /// `"535 5.7.8 Authentication credentials invalid"`; several lines joined by `" / "`;
    /// control characters escaped, invalid UTF-8 replaced.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str(" / ")?;
            } else if !line.is_empty() {
                f.write_str(" ")?;
            }
            for chunk in line.utf8_chunks() {
                for c in chunk.valid().chars() {
                    if c.is_control() {
                        write!(f, "{}", c.escape_default())?;
                    } else {
                        write!(f, "{c}")?;
                    }
                }
                if !chunk.invalid().is_empty() {
                    f.write_str("\u{FFFD}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("code", &self.code.get())
            .field("enhanced", &self.enhanced().map(|e| e.to_string()))
            .field("raw", &escape(&self.raw, 256))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: u16) -> ReplyCode {
        ReplyCode::new(c).unwrap()
    }

    #[test]
    fn named_codes_are_the_rfc_numbers() {
        // RFC 5321 4.2.3, RFC 4954 4 and 6, RFC 3207 4, draft-hall-prdr.
        let table = [
            (ReplyCode::SYSTEM_STATUS, 211),
            (ReplyCode::HELP_MESSAGE, 214),
            (ReplyCode::SERVICE_READY, 220),
            (ReplyCode::CLOSING, 221),
            (ReplyCode::AUTH_SUCCESS, 235),
            (ReplyCode::OK, 250),
            (ReplyCode::USER_NOT_LOCAL_WILL_FORWARD, 251),
            (ReplyCode::CANNOT_VRFY, 252),
            (ReplyCode::AUTH_CONTINUE, 334),
            (ReplyCode::PRDR_START, 353),
            (ReplyCode::START_MAIL_INPUT, 354),
            (ReplyCode::SERVICE_UNAVAILABLE, 421),
            (ReplyCode::PASSWORD_TRANSITION_NEEDED, 432),
            (ReplyCode::MAILBOX_BUSY, 450),
            (ReplyCode::LOCAL_ERROR, 451),
            (ReplyCode::INSUFFICIENT_STORAGE, 452),
            (ReplyCode::TOO_MANY_RECIPIENTS, 452),
            (ReplyCode::TEMP_AUTH_FAILURE, 454),
            (ReplyCode::TLS_NOT_AVAILABLE, 454),
            (ReplyCode::PARAMS_NOT_ACCOMMODATED, 455),
            (ReplyCode::SYNTAX_ERROR, 500),
            (ReplyCode::PARAM_SYNTAX_ERROR, 501),
            (ReplyCode::COMMAND_NOT_IMPLEMENTED, 502),
            (ReplyCode::BAD_SEQUENCE, 503),
            (ReplyCode::PARAM_NOT_IMPLEMENTED, 504),
            (ReplyCode::AUTH_REQUIRED, 530),
            (ReplyCode::AUTH_TOO_WEAK, 534),
            (ReplyCode::AUTH_CREDENTIALS_INVALID, 535),
            (ReplyCode::ENCRYPTION_REQUIRED, 538),
            (ReplyCode::MAILBOX_UNAVAILABLE, 550),
            (ReplyCode::USER_NOT_LOCAL, 551),
            (ReplyCode::EXCEEDED_STORAGE, 552),
            (ReplyCode::MAILBOX_NAME_NOT_ALLOWED, 553),
            (ReplyCode::NO_SERVICE, 554),
            (ReplyCode::TRANSACTION_FAILED, 554),
            (ReplyCode::PARAMS_NOT_RECOGNIZED, 555),
        ];
        for (named, number) in table {
            assert_eq!(named.get(), number);
            assert_eq!(Some(named), ReplyCode::new(number));
        }
    }

    #[test]
    fn named_codes_match_parsed_codes() {
        let mut p = crate::ReplyParser::new();
        p.feed(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n");
        let reply = p.next_reply().unwrap().unwrap();
        assert!(matches!(reply.code(), ReplyCode::START_MAIL_INPUT));
        assert_eq!(reply.code(), ReplyCode::START_MAIL_INPUT);
        assert_ne!(reply.code(), ReplyCode::OK);
    }

    #[test]
    fn code_range() {
        assert!(ReplyCode::new(199).is_none());
        assert!(ReplyCode::new(600).is_none());
        assert!(ReplyCode::new(0).is_none());
        assert_eq!(ReplyCode::new(200).unwrap().get(), 200);
        assert_eq!(ReplyCode::new(599).unwrap().get(), 599);
    }

    #[test]
    fn severities() {
        assert!(code(250).is_positive_completion());
        assert!(code(354).is_positive_intermediate());
        assert!(code(421).is_transient_negative());
        assert!(code(550).is_permanent_negative());
        assert!(!code(550).is_transient_negative());
    }

    #[test]
    fn enhanced_rfc3463_examples() {
        // RFC 3463 3.8 / RFC 4954 6 examples.
        assert_eq!(
            EnhancedStatus::parse_prefix(b"5.7.8 Authentication credentials invalid"),
            Some((
                EnhancedStatus {
                    class: 5,
                    subject: 7,
                    detail: 8
                },
                5
            ))
        );
        assert_eq!(
            EnhancedStatus::parse_prefix(b"2.1.5"),
            Some((
                EnhancedStatus {
                    class: 2,
                    subject: 1,
                    detail: 5
                },
                5
            ))
        );
        assert_eq!(
            EnhancedStatus::parse_prefix(b"4.123.999 x").map(|s| s.0.to_string()),
            Some("4.123.999".to_string())
        );
        for bad in [
            &b"3.1.1 x"[..],
            b"5.1234.1 x",
            b"5..1 x",
            b"5.1. x",
            b"5.1.1x",
            b"5-1-1",
            b"",
        ] {
            assert_eq!(EnhancedStatus::parse_prefix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn enhanced_class_must_match_code() {
        let r = Reply::new(code(250), &[b"5.1.1 odd"]).unwrap();
        assert_eq!(r.enhanced(), None);
        let r = Reply::new(code(550), &[b"5.1.1 <x@y>: Recipient address rejected"]).unwrap();
        assert_eq!(r.enhanced().unwrap().to_string(), "5.1.1");
    }

    /// What `enhanced()` must give: the whole first line's text read the plain way
    /// (up to the first LF, one CR before it dropped, after the code and separator),
    /// then `parse_prefix` and the class check.
    fn enhanced_of_whole_first_line(code: ReplyCode, raw: &[u8]) -> Option<EnhancedStatus> {
        let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (status, _) = EnhancedStatus::parse_prefix(line.get(4..).unwrap_or(&[]))?;
        (u16::from(status.class) == code.get() / 100).then_some(status)
    }

    fn parsed(wire: &[u8]) -> Reply {
        let mut p = crate::ReplyParser::new();
        p.feed(wire);
        p.next_reply().unwrap().unwrap()
    }

    #[test]
    fn enhanced_is_read_from_the_first_line_only() {
        let e = |wire: &[u8]| parsed(wire).enhanced().map(|s| s.to_string());
        // RFC 3463 grammar at its longest: three digits each side.
        assert_eq!(e(b"550 5.123.456 no\r\n"), Some("5.123.456".into()));
        assert_eq!(e(b"550 5.123.456\r\n"), Some("5.123.456".into()));
        assert_eq!(e(b"550 5.123.456\n"), Some("5.123.456".into()));
        // A fourth digit or another octet right after the code: no code.
        assert_eq!(e(b"550 5.123.4567 no\r\n"), None);
        assert_eq!(e(b"550 5.123.456x\r\n"), None);
        // A bare CR inside the line is text, not a line end.
        assert_eq!(e(b"550 5.1.1\rx\r\n"), None);
        // The code alone, with and without a separator.
        assert_eq!(e(b"550\r\n"), None);
        assert_eq!(e(b"550 \r\n"), None);
        // Multi-line: the first line decides, later lines do not count.
        assert_eq!(e(b"550-5.1.1 a\r\n550 b\r\n"), Some("5.1.1".into()));
        assert_eq!(e(b"550-a\r\n550 5.1.1 b\r\n"), None);
        assert_eq!(e(b"550-\r\n550 5.1.1 b\r\n"), None);
        assert_eq!(e(b"550-5.1.1\r\n550 b\r\n"), Some("5.1.1".into()));
        // RFC 2034 3: the class must match the reply code's first digit.
        assert_eq!(e(b"250 5.1.1 odd\r\n"), None);
        // A long first line: the code at its start is found without reading the rest.
        let mut long = b"452 4.5.3 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 3000));
        long.extend_from_slice(b"\r\n");
        assert_eq!(e(&long), Some("4.5.3".into()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// `enhanced()`, which looks at a few octets of the first line, agrees with
        /// reading the whole first line, for parsed replies (CRLF or bare LF, bare CR
        /// inside lines, any separator) and for built ones.
        #[test]
        fn enhanced_agrees_with_the_whole_first_line(
            code in 200u16..=599,
            // Mostly text that starts like an enhanced code (1 to 4 digits each side,
            // so the longest codes and the too-long ones both come up), then any of
            // the octets that can end or spoil one.
            class in proptest::sample::select(&b"234555x"[..]),
            subject in "[0-9]{0,4}",
            detail in "[0-9]{0,4}",
            tail in proptest::collection::vec(
                proptest::sample::select(&b"0123456789. \rx"[..]), 0..4),
            dots in proptest::prelude::any::<bool>(),
            more in proptest::collection::vec("[0-9. a-z]{0,12}", 0..3),
            bare_lf in proptest::prelude::any::<bool>(),
        ) {
            let code = ReplyCode::new(code).unwrap();
            let sep: &[u8] = if dots { b"." } else { b"-" };
            let first = [&[class][..], sep, subject.as_bytes(), b".", detail.as_bytes(), &tail]
                .concat();
            let digits = code_digits(code);
            let end: &[u8] = if bare_lf { b"\n" } else { b"\r\n" };
            let mut wire = Vec::new();
            let lines: Vec<&[u8]> = std::iter::once(first.as_slice())
                .chain(more.iter().map(|l| l.as_bytes()))
                .collect();
            for (i, line) in lines.iter().enumerate() {
                wire.extend_from_slice(&digits);
                wire.push(if i + 1 == lines.len() { b' ' } else { b'-' });
                wire.extend_from_slice(line);
                wire.extend_from_slice(end);
            }
            let reply = parsed(&wire);
            proptest::prop_assert_eq!(reply.raw(), &wire[..]);
            proptest::prop_assert_eq!(reply.enhanced(), enhanced_of_whole_first_line(code, &wire));

            if !first.contains(&b'\r') {
                let built = Reply::new(code, &lines).unwrap();
                proptest::prop_assert_eq!(built.enhanced(), enhanced_of_whole_first_line(code, built.raw()));
                proptest::prop_assert_eq!(built.enhanced(), reply.enhanced());
            }
        }
    }

    #[test]
    fn new_encodes_multiline() {
        let r = Reply::new(
            code(250),
            &[b"mail.example.com", b"PIPELINING", b"SIZE 1000"],
        )
        .unwrap();
        assert_eq!(
            r.raw(),
            b"250-mail.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
        );
        assert_eq!(r.line_count(), 3);
        let lines: Vec<&[u8]> = r.lines().collect();
        assert_eq!(
            lines,
            [&b"mail.example.com"[..], b"PIPELINING", b"SIZE 1000"]
        );
        assert_eq!(r.text(), "mail.example.com\nPIPELINING\nSIZE 1000");
        assert_eq!(
            r.to_string(),
            "250 mail.example.com / PIPELINING / SIZE 1000"
        );
    }

    #[test]
    fn empty_last_line_is_code_alone() {
        let r = Reply::new(code(354), &[b""]).unwrap();
        assert_eq!(r.raw(), b"354\r\n");
        assert_eq!(r.lines().collect::<Vec<_>>(), [&b""[..]]);
        assert_eq!(r.to_string(), "354");
    }

    #[test]
    fn new_refuses_line_breaks() {
        let e = Reply::new(code(250), &[b"ok\r\n250 injected"]).unwrap_err();
        assert_eq!(e.reason(), &InvalidReason::Cr);
        assert!(Reply::new(code(250), &[]).is_err());
    }

    #[test]
    fn display_is_lossy_and_escaped() {
        let r = Reply::new(code(550), &[b"bad \xff\x1b[31m"]).unwrap();
        assert_eq!(r.to_string(), "550 bad \u{FFFD}\\u{1b}[31m");
    }
}
