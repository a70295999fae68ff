//! DATA transparency (RFC 5321 4.5.2): dot-stuffing for the client, unstuffing for servers.

/// Streaming DATA encoder: message bytes in, wire bytes out.
///
/// Bare LF and bare CR become CRLF, a `.` at the start of a line is doubled, and
/// [`finish`](DotStuffer::finish) writes the `.` line, adding a CRLF first when the
/// message did not end with a line end. Input may be cut anywhere (between CR and LF,
/// just before a dot): the output is the same.
///
/// ```
/// use smtp_proto::DotStuffer;
/// let mut stuffer = DotStuffer::new();
/// let mut out = Vec::new();
/// stuffer.stuff(b"Hi\n.hidden\r", &mut out);
/// stuffer.stuff(b"\nbye", &mut out);
/// stuffer.finish(&mut out);
/// assert_eq!(out, b"Hi\r\n..hidden\r\nbye\r\n.\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct DotStuffer {
    /// The next byte starts a line.
    at_line_start: bool,
    /// The last byte was a CR (already written as CRLF): an LF right after belongs to it.
    after_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// An encoder at the start of a message.
    pub fn new() -> Self {
        DotStuffer {
            at_line_start: true,
            after_cr: false,
        }
    }

    /// Appends the wire form of `input` to `out`.
    pub fn stuff(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut start = 0;
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if input[0] == b'\n' {
                start = 1; // the LF of a CRLF cut in two: already written
            }
        }
        if start == input.len() {
            return;
        }
        out.reserve(input.len() + input.len() / 16 + 8);
        if self.at_line_start && input[start] == b'.' {
            out.push(b'.');
        }
        // Bytes are copied in runs; a run ends only where the output differs from the
        // input: a bare CR or LF, or a dot opening a line. Proper CRLFs stay in the run,
        // and each line costs one search.
        let mut run = start;
        let mut pos = start;
        while let Some(found) = memchr::memchr2(b'\r', b'\n', &input[pos..]) {
            let at = pos + found;
            if input[at] == b'\n' {
                // An LF found by the search never follows a CR (a CR's LF is skipped
                // below): it is bare.
                out.extend_from_slice(&input[run..at]);
                out.extend_from_slice(b"\r\n");
                run = at + 1;
                pos = at + 1;
            } else {
                match input.get(at + 1) {
                    Some(b'\n') => pos = at + 2,
                    next => {
                        // Bare CR, or a CR ending the chunk: write CRLF.
                        out.extend_from_slice(&input[run..=at]);
                        out.push(b'\n');
                        run = at + 1;
                        pos = at + 1;
                        self.after_cr = next.is_none();
                    }
                }
            }
            if input.get(pos) == Some(&b'.') {
                out.extend_from_slice(&input[run..pos]);
                out.push(b'.');
                run = pos;
            }
        }
        out.extend_from_slice(&input[run..]);
        self.at_line_start = matches!(input.last(), Some(b'\r' | b'\n'));
    }

    /// Ends the message: CRLF if the last line was not ended, then `.` CRLF. The
    /// encoder is then ready for a new message.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        *self = DotStuffer::new();
    }
}

/// What [`Unstuffer::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnstuffStatus {
    /// The end-of-data line has not been seen yet; all input was consumed.
    NeedMore,
    /// The end-of-data line ended after `consumed` bytes of this input; bytes after it
    /// (the next command, when pipelined) were not read.
    Done {
        /// Bytes of this input up to and including the end-of-data line.
        consumed: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnstuffState {
    LineStart,
    /// A line began with a dot, not yet written.
    Dot,
    /// A line began with a dot and a CR.
    DotCr,
    InLine,
    Done,
}

/// Streaming DATA decoder for servers: wire bytes in, message bytes out, until the
/// end-of-data line `.` CRLF.
///
/// A leading dot is removed from every line that has one (RFC 5321 4.5.2); line ends
/// are passed through as received; the end-of-data line is not output, but the line
/// end before it is (it ends the message's last line). Only CRLF ends a line: a bare LF
/// is message content, so `LF . LF` or `LF . CRLF` never ends the data. Reading the end
/// of data more leniently than the next server in a relay chain is what "SMTP
/// smuggling" exploits; RFC 5321 2.3.8 and 4.1.1.4 define the end as `CRLF . CRLF`.
///
/// ```
/// use smtp_proto::{Unstuffer, UnstuffStatus};
/// let mut un = Unstuffer::new();
/// let mut msg = Vec::new();
/// assert_eq!(un.feed(b"Hi\r\n..hidden\r\n.", &mut msg), UnstuffStatus::NeedMore);
/// assert_eq!(un.feed(b"\r\nQUIT\r\n", &mut msg), UnstuffStatus::Done { consumed: 2 });
/// assert_eq!(msg, b"Hi\r\n.hidden\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct Unstuffer {
    state: UnstuffState,
    /// In `InLine`: the last byte fed was a CR, so an LF at the start of the next input
    /// ends the line.
    cr_pending: bool,
}

impl Default for Unstuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Unstuffer {
    /// A decoder at the start of a message.
    pub fn new() -> Self {
        Unstuffer {
            state: UnstuffState::LineStart,
            cr_pending: false,
        }
    }

    /// Whether the end-of-data line has been seen.
    pub fn is_done(&self) -> bool {
        self.state == UnstuffState::Done
    }

    /// Starts over for a new message.
    pub fn reset(&mut self) {
        *self = Unstuffer::new();
    }

    /// Decodes `input`, appending message bytes to `out`. Once done, further input is
    /// not read (`Done { consumed: 0 }`) until [`reset`](Self::reset).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> UnstuffStatus {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                UnstuffState::Done => return UnstuffStatus::Done { consumed: 0 },
                UnstuffState::LineStart => {
                    if b == b'.' {
                        self.state = UnstuffState::Dot;
                        i += 1;
                    } else {
                        self.state = UnstuffState::InLine;
                    }
                }
                UnstuffState::Dot => match b {
                    b'\r' => {
                        self.state = UnstuffState::DotCr;
                        i += 1;
                    }
                    // The dot was a stuffed one (a bare LF is content, not a line end):
                    // drop it, keep the rest of the line.
                    _ => {
                        self.state = UnstuffState::InLine;
                        self.cr_pending = false;
                    }
                },
                UnstuffState::DotCr => {
                    if b == b'\n' {
                        self.state = UnstuffState::Done;
                        return UnstuffStatus::Done { consumed: i + 1 };
                    }
                    // "." CR then something else: the line is CR + more; the dot goes.
                    out.push(b'\r');
                    self.state = UnstuffState::InLine;
                    self.cr_pending = false;
                }
                UnstuffState::InLine => match memchr::memchr(b'\n', &input[i..]) {
                    Some(j) => {
                        let crlf = if j == 0 {
                            self.cr_pending
                        } else {
                            input[i + j - 1] == b'\r'
                        };
                        out.extend_from_slice(&input[i..=i + j]);
                        i += j + 1;
                        self.cr_pending = false;
                        if crlf {
                            self.state = UnstuffState::LineStart;
                        }
                    }
                    None => {
                        out.extend_from_slice(&input[i..]);
                        self.cr_pending = input.last() == Some(&b'\r');
                        i = input.len();
                    }
                },
            }
        }
        if self.state == UnstuffState::Done {
            UnstuffStatus::Done { consumed: 0 }
        } else {
            UnstuffStatus::NeedMore
        }
    }
}

/// Decodes one whole DATA transfer: the message and the bytes it took, or `None` when
/// `input` holds no end-of-data line.
///
/// ```
/// assert_eq!(smtp_proto::unstuff(b"..a\r\n.\r\n"), Some((b".a\r\n".to_vec(), 8)));
/// ```
pub fn unstuff(input: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(input.len());
    match Unstuffer::new().feed(input, &mut out) {
        UnstuffStatus::Done { consumed } => Some((out, consumed)),
        UnstuffStatus::NeedMore => None,
    }
}

/// The canonical wire form of a message body: bare CR and bare LF become CRLF, and a
/// final CRLF is added when the body is not empty and does not end with a line end.
/// This is what a DATA transfer preserves: `unstuff(stuff(x))` equals
/// `crlf_normalise(x)`.
///
/// ```
/// assert_eq!(smtp_proto::crlf_normalise(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd\r\n");
/// assert_eq!(smtp_proto::crlf_normalise(b""), b"");
/// ```
pub fn crlf_normalise(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 2);
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        for c in chunks {
            s.stuff(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn rfc5321_4_5_2_transparency() {
        assert_eq!(stuff_chunks(&[b".\r\n"]), b"..\r\n.\r\n");
        assert_eq!(stuff_chunks(&[b"a\r\n.\r\nb"]), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(stuff_chunks(&[b"..x\r\n"]), b"...x\r\n.\r\n");
        assert_eq!(stuff_chunks(&[b"a.b\r\n"]), b"a.b\r\n.\r\n");
        assert_eq!(stuff_chunks(&[]), b".\r\n");
        assert_eq!(stuff_chunks(&[b"x"]), b"x\r\n.\r\n");
    }

    #[test]
    fn line_ends_are_normalised() {
        assert_eq!(
            stuff_chunks(&[b"a\nb\rc\r\n\r\rd"]),
            b"a\r\nb\r\nc\r\n\r\n\r\nd\r\n.\r\n"
        );
        assert_eq!(
            stuff_chunks(&[b"\n.\r.\r\n."]),
            b"\r\n..\r\n..\r\n..\r\n.\r\n"
        );
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let whole = stuff_chunks(&[b"a\r\n.b\r\r\n.\n\r."]);
        assert_eq!(
            stuff_chunks(&[b"a\r", b"\n", b".b\r", b"\r", b"\n", b".", b"\n\r", b"."]),
            whole
        );
        assert_eq!(
            stuff_chunks(&[b"a\r\n", b"", b".b\r\r\n.\n\r", b"", b"."]),
            whole
        );
    }

    #[test]
    fn finish_resets() {
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        s.stuff(b"a\r", &mut out);
        s.finish(&mut out);
        s.stuff(b"\n.", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"a\r\n.\r\n\r\n..\r\n.\r\n");
    }

    #[test]
    fn unstuffer_rfc_cases() {
        assert_eq!(unstuff(b".\r\n"), Some((Vec::new(), 3)));
        assert_eq!(
            unstuff(b"a\r\n..\r\n.\r\nMAIL"),
            Some((b"a\r\n.\r\n".to_vec(), 10))
        );
        // Only CRLF . CRLF ends the data: a bare LF is content (no SMTP smuggling).
        assert_eq!(unstuff(b"a\n.\n"), None);
        assert_eq!(unstuff(b"a\n.\r\n"), None);
        assert_eq!(unstuff(b"a\r\n.\n"), None);
        assert_eq!(
            unstuff(b"a\n.\r\nb\r\n.\r\n"),
            Some((b"a\n.\r\nb\r\n".to_vec(), 11))
        );
        // A CR at the end of one input and the LF at the start of the next end a line.
        let mut u = Unstuffer::new();
        let mut out = Vec::new();
        assert_eq!(u.feed(b"a\r", &mut out), UnstuffStatus::NeedMore);
        assert_eq!(
            u.feed(b"\n.\r\n", &mut out),
            UnstuffStatus::Done { consumed: 4 }
        );
        assert_eq!(out, b"a\r\n");
        assert_eq!(unstuff(b"a\r\n.x\r\n"), None);
        assert_eq!(unstuff(b"a.\r\n"), None);
        // "." CR then not LF: the CR stays, the dot goes.
        assert_eq!(unstuff(b".\rx\r\n.\r\n"), Some((b"\rx\r\n".to_vec(), 8)));
    }

    #[test]
    fn unstuffer_any_split_and_done_stops() {
        let wire = b"l1\r\n..l2\r\n.\r\nNEXT";
        for cut in 0..=wire.len() {
            let mut u = Unstuffer::new();
            let mut out = Vec::new();
            let first = u.feed(&wire[..cut], &mut out);
            let second = u.feed(&wire[cut..], &mut out);
            assert_eq!(out, b"l1\r\n.l2\r\n", "cut {cut}");
            let total = match (first, second) {
                (UnstuffStatus::Done { consumed }, UnstuffStatus::Done { consumed: 0 }) => consumed,
                (UnstuffStatus::NeedMore, UnstuffStatus::Done { consumed }) => cut + consumed,
                other => panic!("cut {cut}: {other:?}"),
            };
            assert_eq!(total, wire.len() - 4);
            assert!(u.is_done());
        }
    }
}
