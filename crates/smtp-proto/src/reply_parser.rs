//! The incremental, bounded reply parser.

use std::fmt;

use bytes::BytesMut;

use crate::invalid::escape;
use crate::reply::{Reply, ReplyCode};

/// Bounds on what the parser buffers for one reply. Exceeding either is an error, so a
/// hostile or broken server cannot make the parser hold unbounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Longest line, in octets, without its line end. Default 4096 (RFC 5321 4.5.3.1.5
    /// asks for 512; real servers stay far below 4096).
    pub max_line_len: usize,
    /// Most lines in one reply. Default 512.
    pub max_lines: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_line_len: 4096,
            max_lines: 512,
        }
    }
}

/// A reply the server sent that is not valid SMTP, or that exceeds the [`ReplyLimits`].
///
/// `line` fields hold at most the first 64 bytes of the offending line, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// The line does not start with three digits, the first 2 to 5.
    BadCode {
        /// The start of the line.
        line: Vec<u8>,
    },
    /// A line of a multi-line reply has another code than the first line.
    CodeMismatch {
        /// The code of the reply's first line.
        first: u16,
        /// The start of the line with the other code.
        line: Vec<u8>,
    },
    /// The code is followed by something else than `' '`, `'-'` or the line end.
    BadSeparator {
        /// The start of the line.
        line: Vec<u8>,
    },
    /// A line (complete or not yet ended) is longer than `limit` octets.
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The reply has more than `limit` lines.
    TooManyLines {
        /// The limit in force.
        limit: usize,
    },
}

const ERROR_PREFIX: usize = 64;

impl ReplyError {
    fn prefix(line: &[u8]) -> Vec<u8> {
        line[..line.len().min(ERROR_PREFIX)].to_vec()
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::BadCode { line } => write!(
                f,
                "reply line does not start with a reply code (three digits, the first 2-5): \"{}\"",
                escape(line, ERROR_PREFIX)
            ),
            ReplyError::CodeMismatch { first, line } => write!(
                f,
                "reply line has another code than the reply's first line ({first}): \"{}\"",
                escape(line, ERROR_PREFIX)
            ),
            ReplyError::BadSeparator { line } => write!(
                f,
                "reply code is not followed by ' ', '-' or the line end: \"{}\"",
                escape(line, ERROR_PREFIX)
            ),
            ReplyError::LineTooLong { limit } => {
                write!(f, "reply line is longer than {limit} octets")
            }
            ReplyError::TooManyLines { limit } => {
                write!(f, "reply has more than {limit} lines")
            }
        }
    }
}

impl std::error::Error for ReplyError {}

/// The outcome of [`parse_reply`]: a complete reply and its length, or more bytes needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A complete reply; the value is the number of bytes it took.
    Complete(T),
    /// The input ends inside a reply.
    Partial,
}

/// Where a scan through a reply stands. Scanning resumes where it stopped, so bytes fed
/// one at a time cost O(n) in total.
#[derive(Debug, Clone, Default)]
struct Scan {
    /// Offset of the first byte of the current (unfinished) line.
    line_start: usize,
    /// Offset up to which the current line is known to hold no LF.
    scanned: usize,
    /// Lines of the current reply seen so far.
    lines: usize,
    /// Code of the current reply's first line.
    first: Option<ReplyCode>,
}

/// A finished reply found by [`Scan::advance`].
struct Found {
    len: usize,
    code: ReplyCode,
    lines: usize,
}

impl Scan {
    /// Reads lines from `buf` (whose first byte is the first byte of a reply) until a
    /// reply ends (`Some`) or the input does (`None`).
    ///
    /// Every check runs on every line, in one order (line count, line length, code,
    /// separator, code consistency), so the outcome does not depend on where the input
    /// was cut. The error values are built out of line, keeping this loop small: it
    /// runs once per line, and a single-line reply is one trip through it.
    #[inline]
    fn advance(&mut self, buf: &[u8], limits: &ReplyLimits) -> Result<Option<Found>, ReplyError> {
        while let Some(pos) = buf
            .get(self.scanned..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
        {
            let lf = self.scanned + pos;
            if self.lines >= limits.max_lines {
                return Err(too_many_lines(limits));
            }
            let line = &buf[self.line_start..lf];
            let line = match line {
                [text @ .., b'\r'] => text,
                _ => line,
            };
            if line.len() > limits.max_line_len {
                return Err(line_too_long(limits));
            }
            let (code, last) = match *line {
                [a @ b'2'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', ref sep @ ..] => {
                    let code = ReplyCode::from_digits(a, b, c);
                    match sep.first() {
                        None | Some(b' ') => (code, true),
                        Some(b'-') => (code, false),
                        Some(_) => return Err(bad_separator(line)),
                    }
                }
                _ => return Err(bad_code(line)),
            };
            let first_code = *self.first.get_or_insert(code);
            if code != first_code {
                return Err(code_mismatch(first_code, line));
            }
            self.lines += 1;
            self.line_start = lf + 1;
            self.scanned = self.line_start;
            if last {
                let found = Found {
                    len: self.line_start,
                    code: first_code,
                    lines: self.lines,
                };
                *self = Scan::default();
                return Ok(Some(found));
            }
        }
        self.partial(buf, limits)
    }

    /// The input ends inside a line: records that it was scanned and applies the checks
    /// that can already fail on the unfinished line. Reached once per read, not per line:
    /// kept out of line.
    #[inline(never)]
    fn partial(&mut self, buf: &[u8], limits: &ReplyLimits) -> Result<Option<Found>, ReplyError> {
        self.scanned = buf.len();
        let partial = buf.get(self.line_start..).unwrap_or(&[]);
        // A further line has begun where none may: fail now, not at its end.
        // The checks run in the same order as for a complete line, so the
        // outcome does not depend on where the input was cut.
        if self.lines >= limits.max_lines && !partial.is_empty() {
            return Err(too_many_lines(limits));
        }
        let content = partial.len() - usize::from(partial.last() == Some(&b'\r'));
        if content > limits.max_line_len {
            return Err(line_too_long(limits));
        }
        Ok(None)
    }
}

#[cold]
fn too_many_lines(limits: &ReplyLimits) -> ReplyError {
    ReplyError::TooManyLines {
        limit: limits.max_lines,
    }
}

#[cold]
fn line_too_long(limits: &ReplyLimits) -> ReplyError {
    ReplyError::LineTooLong {
        limit: limits.max_line_len,
    }
}

#[cold]
fn bad_code(line: &[u8]) -> ReplyError {
    ReplyError::BadCode {
        line: ReplyError::prefix(line),
    }
}

#[cold]
fn bad_separator(line: &[u8]) -> ReplyError {
    ReplyError::BadSeparator {
        line: ReplyError::prefix(line),
    }
}

#[cold]
fn code_mismatch(first: ReplyCode, line: &[u8]) -> ReplyError {
    ReplyError::CodeMismatch {
        first: first.get(),
        line: ReplyError::prefix(line),
    }
}

/// Finds the end of the first complete reply in `buf`, httparse style: borrows, never
/// allocates, never copies.
///
/// Line ends may be CRLF or a bare LF. A last line that is the code alone (`"250"` then
/// the line end) is accepted as a reply with empty text, as RFC 5321 4.2's grammar allows.
///
/// ```
/// use smtp_proto::{parse_reply, ReplyLimits, Status};
/// let limits = ReplyLimits::default();
/// assert_eq!(parse_reply(b"250-a\r\n250 b\r\n", &limits), Ok(Status::Complete(14)));
/// assert_eq!(parse_reply(b"250-a\r\n250 b", &limits), Ok(Status::Partial));
/// ```
pub fn parse_reply(buf: &[u8], limits: &ReplyLimits) -> Result<Status<usize>, ReplyError> {
    let mut scan = Scan::default();
    Ok(match scan.advance(buf, limits)? {
        Some(found) => Status::Complete(found.len),
        None => Status::Partial,
    })
}

/// The incremental reply parser: feed bytes in any split, take complete replies out.
///
/// It owns one buffer and resumes scanning where it stopped, so a reply dripping in a
/// byte at a time costs O(n) in total. A returned [`Reply`] shares the buffer's memory
/// (no copy). After an error the parser keeps returning that error until [`clear`]: the
/// byte stream is no longer trustworthy.
///
/// [`clear`]: ReplyParser::clear
///
/// ```
/// use smtp_proto::ReplyParser;
/// let mut parser = ReplyParser::new();
/// parser.feed(b"250-mail.example.com Hello\r\n250-PIPE");
/// assert!(parser.next_reply().unwrap().is_none()); // needs more
/// parser.feed(b"LINING\r\n250 8BITMIME\r\n220 next");
/// let reply = parser.next_reply().unwrap().unwrap();
/// assert_eq!(reply.code().get(), 250);
/// assert_eq!(reply.line_count(), 3);
/// assert_eq!(parser.buffered_len(), 8);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReplyParser {
    buf: BytesMut,
    scan: Scan,
    limits: ReplyLimits,
    failed: Option<ReplyError>,
}

impl ReplyParser {
    /// A parser with the default [`ReplyLimits`].
    pub fn new() -> Self {
        Self::with_limits(ReplyLimits::default())
    }

    /// A parser with the given limits.
    pub fn with_limits(limits: ReplyLimits) -> Self {
        ReplyParser {
            buf: BytesMut::new(),
            scan: Scan::default(),
            limits,
            failed: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ReplyLimits {
        &self.limits
    }

    /// Appends received bytes. Cheap: the scan happens in [`next_reply`](Self::next_reply).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next complete reply, `Ok(None)` when more bytes are needed, or the error that
    /// makes the stream unusable.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.scan.advance(&self.buf, &self.limits) {
            Ok(Some(found)) => {
                let raw = self.buf.split_to(found.len).freeze();
                Ok(Some(Reply::from_parsed(found.code, raw, found.lines)))
            }
            Ok(None) => Ok(None),
            Err(err) => {
                self.buf.clear();
                self.scan = Scan::default();
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    /// Bytes fed but not yet returned as part of a reply.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Drops every buffered byte and any error, keeping the limits. Used after STARTTLS:
    /// bytes received before the TLS handshake must not be read as TLS-protected
    /// (RFC 3207 6).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.scan = Scan::default();
        self.failed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_replies(parser: &mut ReplyParser) -> Vec<Reply> {
        let mut out = Vec::new();
        while let Some(r) = parser.next_reply().unwrap() {
            out.push(r);
        }
        out
    }

    fn one(input: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let mut p = ReplyParser::new();
        p.feed(input);
        p.next_reply()
    }

    #[test]
    fn rfc5321_d1_ehlo_reply() {
        let input =
            b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n";
        let r = one(input).unwrap().unwrap();
        assert_eq!(r.code().get(), 250);
        assert_eq!(r.line_count(), 5);
        assert_eq!(r.raw(), input);
        let lines: Vec<&[u8]> = r.lines().collect();
        assert_eq!(
            lines,
            [
                &b"foo.com greets bar.com"[..],
                b"8BITMIME",
                b"SIZE",
                b"DSN",
                b"HELP"
            ]
        );
        assert_eq!(
            parse_reply(input, &ReplyLimits::default()),
            Ok(Status::Complete(input.len()))
        );
    }

    #[test]
    fn rfc2920_pipelined_replies_in_one_read() {
        // RFC 2920 3.2: the server answers a pipelined batch in one go.
        let input = b"250 Sender <ned@dbc.mtview.ca.us> Ok\r\n\
250 Recipient <tom@foo.com> Ok\r\n\
550 No such user here\r\n\
250 Recipient <dan@foo.com> Ok\r\n\
354 Enter mail, end with line containing only \".\"\r\n";
        let mut p = ReplyParser::new();
        p.feed(input);
        let replies = all_replies(&mut p);
        let codes: Vec<u16> = replies.iter().map(|r| r.code().get()).collect();
        assert_eq!(codes, [250, 250, 550, 250, 354]);
        assert_eq!(replies[2].text(), "No such user here");
        assert_eq!(p.buffered_len(), 0);
    }

    #[test]
    fn rfc3463_enhanced_code_on_first_line() {
        let r = one(b"550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 https://support.example/?p=NoSuchUser\r\n").unwrap().unwrap();
        let e = r.enhanced().unwrap();
        assert_eq!((e.class, e.subject, e.detail), (5, 1, 1));
        assert_eq!(one(b"250 ok\r\n").unwrap().unwrap().enhanced(), None);
    }

    #[test]
    fn bare_lf_and_code_alone() {
        let r = one(b"250-a\n250 b\n").unwrap().unwrap();
        assert_eq!(r.lines().collect::<Vec<_>>(), [&b"a"[..], b"b"]);
        let r = one(b"250\r\n").unwrap().unwrap();
        assert_eq!(r.code().get(), 250);
        assert_eq!(r.lines().collect::<Vec<_>>(), [&b""[..]]);
        let r = one(b"334 \r\n").unwrap().unwrap();
        assert_eq!(r.lines().collect::<Vec<_>>(), [&b""[..]]);
        // "250-" then a final "250": the empty last line ends the reply.
        let r = one(b"250-x\r\n250\r\n").unwrap().unwrap();
        assert_eq!(r.line_count(), 2);
    }

    #[test]
    fn non_utf8_text_is_kept() {
        let r = one(b"550 caf\xe9\r\n").unwrap().unwrap();
        assert_eq!(r.lines().next().unwrap(), b"caf\xe9");
        assert_eq!(r.text(), "caf\u{FFFD}");
    }

    #[test]
    fn typed_errors() {
        for bad in [
            &b"25 x\r\n"[..],
            b"abc\r\n",
            b"199 x\r\n",
            b"600 x\r\n",
            b"\r\n",
            b"2x0 a\n",
            b" 250 a\n",
        ] {
            assert!(
                matches!(one(bad), Err(ReplyError::BadCode { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            one(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::CodeMismatch {
                first: 250,
                line: b"251 b".to_vec()
            })
        );
        assert_eq!(
            one(b"250xok\r\n"),
            Err(ReplyError::BadSeparator {
                line: b"250xok".to_vec()
            })
        );
        assert!(matches!(
            one(b"2500 ok\r\n"),
            Err(ReplyError::BadSeparator { .. })
        ));
        let e = one(b"250\tok\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "reply code is not followed by ' ', '-' or the line end: \"250\\tok\""
        );
    }

    #[test]
    fn line_length_limit_is_exact() {
        let limits = ReplyLimits {
            max_line_len: 10,
            max_lines: 512,
        };
        let mut p = ReplyParser::with_limits(limits);
        p.feed(b"250 123456\r\n"); // 10 octets without CRLF
        assert!(p.next_reply().unwrap().is_some());
        p.feed(b"250 1234567\r\n");
        assert_eq!(p.next_reply(), Err(ReplyError::LineTooLong { limit: 10 }));
    }

    #[test]
    fn unending_line_fails_once_over_limit() {
        let limits = ReplyLimits {
            max_line_len: 100,
            max_lines: 512,
        };
        let mut p = ReplyParser::with_limits(limits);
        p.feed(b"250 ");
        p.feed(&[b'a'; 96]); // exactly 100: still fine
        assert_eq!(p.next_reply(), Ok(None));
        p.feed(b"\r"); // a CR may still be the line end
        assert_eq!(p.next_reply(), Ok(None));
        p.feed(b"a");
        assert_eq!(p.next_reply(), Err(ReplyError::LineTooLong { limit: 100 }));
        // Sticky, and nothing more is buffered.
        p.feed(&[b'a'; 1000]);
        assert_eq!(p.buffered_len(), 0);
        assert_eq!(p.next_reply(), Err(ReplyError::LineTooLong { limit: 100 }));
        p.clear();
        p.feed(b"220 ready\r\n");
        assert_eq!(p.next_reply().unwrap().unwrap().code().get(), 220);
    }

    #[test]
    fn line_count_limit() {
        let limits = ReplyLimits {
            max_line_len: 100,
            max_lines: 3,
        };
        let mut p = ReplyParser::with_limits(limits);
        p.feed(b"250-a\r\n250-b\r\n250 c\r\n");
        assert_eq!(p.next_reply().unwrap().unwrap().line_count(), 3);
        p.feed(b"250-a\r\n250-b\r\n250-c\r\n250-d\r\n");
        assert_eq!(p.next_reply(), Err(ReplyError::TooManyLines { limit: 3 }));
        assert_eq!(
            parse_reply(b"250-a\r\n250-b\r\n250-c\r\n250-d", &limits),
            Err(ReplyError::TooManyLines { limit: 3 })
        );
    }

    #[test]
    fn drip_feed_resumes_without_rescanning() {
        let input = b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
        let mut p = ReplyParser::new();
        let mut got = Vec::new();
        for &b in input.iter() {
            p.feed(&[b]);
            if let Some(r) = p.next_reply().unwrap() {
                got.push(r);
            } else {
                // Everything buffered has been scanned once: the next call starts at the end.
                assert_eq!(p.scan.scanned, p.buf.len());
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].raw(), input);
    }

    #[test]
    fn reply_shares_the_parser_buffer() {
        let mut p = ReplyParser::new();
        p.feed(b"250 a\r\n251 b\r\n");
        let a = p.next_reply().unwrap().unwrap();
        let b = p.next_reply().unwrap().unwrap();
        // Both are views of the one allocation the parser filled.
        assert_eq!(
            a.raw().as_ptr().wrapping_add(a.raw().len()),
            b.raw().as_ptr()
        );
    }

    #[test]
    fn partial_is_not_an_error() {
        let limits = ReplyLimits::default();
        for input in [
            &b""[..],
            b"2",
            b"250",
            b"250-a\r\n",
            b"250-a\r\n250 b",
            b"250 b\r",
        ] {
            assert_eq!(
                parse_reply(input, &limits),
                Ok(Status::Partial),
                "{input:?}"
            );
        }
    }
}
