//! HTTP CONNECT (RFC 9110 9.3.6) with optional Basic proxy credentials (RFC 7617): the
//! request and the proxy's response head, encoded and parsed side by side.
//!
//! The response head ends at its blank line; the bytes after it belong to the tunnel (the
//! mail server's greeting may arrive in the same read) and are left to the caller.

use base64::Engine as _;
use smtp_proto::Status;
use zeroize::Zeroizing;

use super::{ProxyError, Target, TargetHost};

/// The most octets of a response head (status line, headers, blank line) read before the
/// response is refused: a proxy cannot make the client buffer without bound.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// The most header lines in a response head.
pub const MAX_HEADERS: usize = 64;

/// The most octets of the reason phrase kept for an error message.
const MAX_REASON: usize = 200;

/// The CONNECT request for `target`, with a `Proxy-Authorization: Basic` header when
/// credentials are given. The buffer is wiped when dropped: it holds the credentials.
pub fn encode_request(
    target: &Target,
    credentials: Option<(&str, &str)>,
    out: &mut Zeroizing<Vec<u8>>,
) {
    let authority = authority(target);
    let head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    let Some((user, password)) = credentials else {
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(b"\r\n");
        return;
    };
    // Sized once, like everything below that holds the password (`encode` allocates the
    // exact length): no reallocation leaves a copy behind.
    let mut pair = Zeroizing::new(String::with_capacity(user.len() + 1 + password.len()));
    pair.push_str(user);
    pair.push(':');
    pair.push_str(password);
    let token = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
    const FIELD: &[u8] = b"Proxy-Authorization: Basic ";
    out.reserve(head.len() + FIELD.len() + token.len() + 4);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(FIELD);
    out.extend_from_slice(token.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b"\r\n");
}

/// `host:port`, an IPv6 address in brackets (RFC 9110 7.2).
pub(super) fn authority(target: &Target) -> String {
    match &target.host {
        TargetHost::Name(name) => format!("{name}:{}", target.port),
        TargetHost::Addr(ip) => std::net::SocketAddr::new(*ip, target.port).to_string(),
    }
}

/// The status line of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The three-digit status code.
    pub status: u16,
    /// The reason phrase: printable ASCII only (anything else is shown as `?`), at most 200
    /// octets.
    pub reason: String,
}

impl Response {
    /// 2xx: the tunnel is open.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Parses a response head. A 2xx is `Complete` at the end of its blank line (the byte count
/// is the head's length); any other status is `Complete` as soon as its status line is in
/// (the tunnel will not open, and a proxy that never ends its head is not waited for).
///
/// Lines end in CRLF (a bare LF is accepted); the head is refused past
/// [`MAX_RESPONSE_HEAD`] octets or [`MAX_HEADERS`] header lines, and a header line must hold a
/// `:` after a non-empty name.
pub fn parse_response(buf: &[u8]) -> Result<Status<(Response, usize)>, ProxyError> {
    let window = &buf[..buf.len().min(MAX_RESPONSE_HEAD)];
    let mut lines = LineIter {
        buf: window,
        pos: 0,
    };
    let Some(status_line) = lines.next() else {
        return partial_or_too_long(buf);
    };
    let response = parse_status_line(status_line)?;
    if !response.is_success() {
        return Ok(Status::Complete((response, lines.pos)));
    }
    let mut headers = 0;
    loop {
        let Some(line) = lines.next() else {
            return partial_or_too_long(buf);
        };
        if line.is_empty() {
            return Ok(Status::Complete((response, lines.pos)));
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(ProxyError::ReplyTooLong {
                limit: MAX_RESPONSE_HEAD,
            });
        }
        let name_len = line.iter().position(|&b| b == b':');
        let valid = matches!(name_len, Some(n) if n > 0)
            && line
                .iter()
                .all(|&b| b == b'\t' || (b' '..=0x7e).contains(&b) || b >= 0x80);
        if !valid {
            return Err(ProxyError::malformed(
                "CONNECT response: bad header line",
                line,
            ));
        }
    }
}

fn partial_or_too_long<T>(buf: &[u8]) -> Result<Status<T>, ProxyError> {
    if buf.len() >= MAX_RESPONSE_HEAD {
        Err(ProxyError::ReplyTooLong {
            limit: MAX_RESPONSE_HEAD,
        })
    } else {
        Ok(Status::Partial)
    }
}

/// `HTTP/1.x SP 3DIGIT SP reason`.
fn parse_status_line(line: &[u8]) -> Result<Response, ProxyError> {
    let bad = |what| ProxyError::malformed(what, line);
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or_else(|| bad("CONNECT response: not HTTP/1.x"))?;
    let [minor, b' ', d1, d2, d3, ref rest @ ..] = *rest else {
        return Err(bad("CONNECT response: bad status line"));
    };
    if !minor.is_ascii_digit() || ![d1, d2, d3].iter().all(u8::is_ascii_digit) || d1 == b'0' {
        return Err(bad("CONNECT response: bad status code"));
    }
    let reason = match rest {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return Err(bad("CONNECT response: bad status line")),
    };
    let status = u16::from(d1 - b'0') * 100 + u16::from(d2 - b'0') * 10 + u16::from(d3 - b'0');
    let reason = reason
        .iter()
        .take(MAX_REASON)
        .map(|&b| {
            if (b' '..=0x7e).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    Ok(Response { status, reason })
}

/// Complete lines of `buf`, without their CRLF (or LF); `pos` is just past the last one.
struct LineIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n')?;
        self.pos += end + 1;
        let line = &rest[..end];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str) -> Target {
        Target::new(host, 587).unwrap()
    }

    #[test]
    fn request_with_and_without_credentials() {
        let mut out = Zeroizing::new(Vec::new());
        encode_request(&target("mx.example.test"), None, &mut out);
        assert_eq!(
            &out[..],
            b"CONNECT mx.example.test:587 HTTP/1.1\r\nHost: mx.example.test:587\r\n\r\n"
        );
        out.clear();
        // RFC 7617 2's example.
        encode_request(&target("[::1]"), Some(("Aladdin", "open sesame")), &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "CONNECT [::1]:587 HTTP/1.1\r\nHost: [::1]:587\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }

    #[test]
    fn success_keeps_the_bytes_after_the_head() {
        let buf = b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n220 mx ESMTP\r\n";
        let Ok(Status::Complete((response, n))) = parse_response(buf) else {
            panic!("complete");
        };
        assert_eq!(response.status, 200);
        assert_eq!(response.reason, "Connection established");
        assert_eq!(&buf[n..], b"220 mx ESMTP\r\n");
        for cut in 0..n {
            assert!(
                matches!(parse_response(&buf[..cut]), Ok(Status::Partial)),
                "{cut}"
            );
        }
    }

    #[test]
    fn a_refusal_is_complete_at_its_status_line() {
        let Ok(Status::Complete((response, _))) = parse_response(b"HTTP/1.0 403 Filtered\r\n")
        else {
            panic!("complete");
        };
        assert_eq!(
            (response.status, response.reason.as_str()),
            (403, "Filtered")
        );
        assert!(!response.is_success());
    }

    #[test]
    fn malformed_and_unbounded_heads_are_refused() {
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 20 OK\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert!(parse_response(&vec![b'H'; MAX_RESPONSE_HEAD]).is_err());
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"X: y\r\n");
        }
        assert!(matches!(
            parse_response(&many),
            Err(ProxyError::ReplyTooLong { .. })
        ));
        let long = [
            b"HTTP/1.1 200 OK\r\nX: ".to_vec(),
            vec![b'y'; MAX_RESPONSE_HEAD],
        ]
        .concat();
        assert!(matches!(
            parse_response(&long),
            Err(ProxyError::ReplyTooLong { .. })
        ));
    }
}
