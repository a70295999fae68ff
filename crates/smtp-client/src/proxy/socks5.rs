//! SOCKS5 (RFC 1928) with username/password authentication (RFC 1929): the messages the
//! client sends and the proxy's replies, each encoded and parsed here, side by side.
//!
//! Every parser borrows its input and returns [`Status::Partial`] until the whole message is
//! in, then `Complete` with the value and the number of bytes it took; bytes after it (the
//! mail server's greeting, relayed by the proxy) are the caller's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smtp_proto::Status;
use zeroize::Zeroizing;

use super::{ProxyError, Target};

/// The protocol version byte of every SOCKS5 message but RFC 1929's.
const VERSION: u8 = 5;
/// The version byte of RFC 1929's sub-negotiation.
const AUTH_VERSION: u8 = 1;

/// An authentication method (RFC 1928 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// X'00' NO AUTHENTICATION REQUIRED.
    NoAuth,
    /// X'02' USERNAME/PASSWORD (RFC 1929).
    UsernamePassword,
    /// X'FF' NO ACCEPTABLE METHODS: the proxy takes none of those offered.
    NoneAcceptable,
    /// Any other method: one the client did not offer.
    Other(u8),
}

impl Method {
    fn from_byte(b: u8) -> Method {
        match b {
            0x00 => Method::NoAuth,
            0x02 => Method::UsernamePassword,
            0xff => Method::NoneAcceptable,
            other => Method::Other(other),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Method::NoAuth => 0x00,
            Method::UsernamePassword => 0x02,
            Method::NoneAcceptable => 0xff,
            Method::Other(b) => b,
        }
    }
}

/// The method-selection message: what the client can do. With credentials both no-auth and
/// username/password are offered, so a proxy that wants either is answered.
pub fn encode_greeting(with_credentials: bool, out: &mut Vec<u8>) {
    if with_credentials {
        out.extend_from_slice(&[
            VERSION,
            2,
            Method::NoAuth.byte(),
            Method::UsernamePassword.byte(),
        ]);
    } else {
        out.extend_from_slice(&[VERSION, 1, Method::NoAuth.byte()]);
    }
}

/// The proxy's choice of method: `05 MM`.
pub fn parse_method_reply(buf: &[u8]) -> Result<Status<(Method, usize)>, ProxyError> {
    let [version, method, ..] = *buf else {
        return Ok(Status::Partial);
    };
    if version != VERSION {
        return Err(ProxyError::malformed(
            "method selection: version is not 5",
            &buf[..2],
        ));
    }
    Ok(Status::Complete((Method::from_byte(method), 2)))
}

/// The RFC 1929 request: `01 ULEN USER PLEN PASSWD`, in a buffer that is wiped when dropped.
/// Both must be 1..=255 octets (checked when the [`Proxy`](super::Proxy) is built).
pub fn encode_credentials(user: &str, password: &str, out: &mut Zeroizing<Vec<u8>>) {
    // Room first: a reallocation after the password is in would free a copy unwiped.
    out.reserve(3 + user.len() + password.len());
    out.push(AUTH_VERSION);
    out.push(user.len() as u8);
    out.extend_from_slice(user.as_bytes());
    out.push(password.len() as u8);
    out.extend_from_slice(password.as_bytes());
}

/// The RFC 1929 status: `01 SS`, `SS` zero for success. Returns the status byte.
pub fn parse_credentials_reply(buf: &[u8]) -> Result<Status<(u8, usize)>, ProxyError> {
    let [version, status, ..] = *buf else {
        return Ok(Status::Partial);
    };
    if version != AUTH_VERSION {
        return Err(ProxyError::malformed(
            "username/password status: version is not 1",
            &buf[..2],
        ));
    }
    Ok(Status::Complete((status, 2)))
}

/// The CONNECT request: `05 01 00 ATYP DST.ADDR DST.PORT`. A name goes as a domain (ATYP 3)
/// for the proxy to resolve, an address as ATYP 1 or 4.
pub fn encode_connect(target: &Target, out: &mut Vec<u8>) {
    out.extend_from_slice(&[VERSION, 0x01, 0x00]);
    match &target.host {
        super::TargetHost::Addr(IpAddr::V4(a)) => {
            out.push(0x01);
            out.extend_from_slice(&a.octets());
        }
        super::TargetHost::Addr(IpAddr::V6(a)) => {
            out.push(0x04);
            out.extend_from_slice(&a.octets());
        }
        super::TargetHost::Name(name) => {
            out.push(0x03);
            // At most 255 octets: checked when the target was made.
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
    }
    out.extend_from_slice(&target.port.to_be_bytes());
}

/// The address a proxy reports in its reply (BND.ADDR, BND.PORT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundAddr {
    /// ATYP 1 or 4.
    Ip(IpAddr, u16),
    /// ATYP 3: a name (Dante echoes the name it could not resolve), lossy UTF-8.
    Domain(String, u16),
}

impl std::fmt::Display for BoundAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BoundAddr::Ip(ip, port) => write!(f, "{}", std::net::SocketAddr::new(*ip, *port)),
            BoundAddr::Domain(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

/// A complete CONNECT reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectReply {
    /// REP: 0 is success, anything else a refusal ([`reply_text`]).
    pub code: u8,
    /// BND.ADDR and BND.PORT.
    pub bound: BoundAddr,
}

/// The proxy's CONNECT reply: `05 REP 00 ATYP BND.ADDR BND.PORT`, ATYP 1, 3 or 4.
///
/// A refusal is reported as soon as its code is in (`Complete` with the two bytes read), so a
/// proxy that closes after the code, or never sends the address, is not waited for.
pub fn parse_connect_reply(buf: &[u8]) -> Result<Status<(ConnectReply, usize)>, ProxyError> {
    let [version, code, ..] = *buf else {
        return Ok(Status::Partial);
    };
    if version != VERSION {
        return Err(ProxyError::malformed(
            "CONNECT reply: version is not 5",
            &buf[..2],
        ));
    }
    if code != 0 {
        let bound = BoundAddr::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        return Ok(Status::Complete((ConnectReply { code, bound }, 2)));
    }
    let [_, _, reserved, atyp, ref rest @ ..] = *buf else {
        return Ok(Status::Partial);
    };
    if reserved != 0 {
        return Err(ProxyError::malformed(
            "CONNECT reply: reserved byte is not 0",
            &buf[..4],
        ));
    }
    let addr_len = match atyp {
        0x01 => 4,
        0x04 => 16,
        0x03 => match rest.first() {
            None => return Ok(Status::Partial),
            Some(&n) => 1 + usize::from(n),
        },
        _ => {
            return Err(ProxyError::malformed(
                "CONNECT reply: address type is not 1, 3 or 4",
                &buf[..4],
            ))
        }
    };
    let Some(addr_and_port) = rest.get(..addr_len + 2) else {
        return Ok(Status::Partial);
    };
    let (addr, port) = addr_and_port.split_at(addr_len);
    let port = u16::from_be_bytes([port[0], port[1]]);
    let bound = match atyp {
        0x01 => {
            let mut octets = [0; 4];
            octets.copy_from_slice(addr);
            BoundAddr::Ip(IpAddr::V4(Ipv4Addr::from(octets)), port)
        }
        0x04 => {
            let mut octets = [0; 16];
            octets.copy_from_slice(addr);
            BoundAddr::Ip(IpAddr::V6(Ipv6Addr::from(octets)), port)
        }
        _ => BoundAddr::Domain(String::from_utf8_lossy(&addr[1..]).into_owned(), port),
    };
    Ok(Status::Complete((
        ConnectReply { code, bound },
        4 + addr_len + 2,
    )))
}

/// The meaning of a CONNECT reply code (RFC 1928 6).
pub fn reply_text(code: u8) -> &'static str {
    match code {
        0x00 => "succeeded",
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unassigned reply code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::TargetHost;

    #[test]
    fn greeting_offers_what_the_client_can_do() {
        let mut out = Vec::new();
        encode_greeting(false, &mut out);
        assert_eq!(out, [5, 1, 0]);
        out.clear();
        encode_greeting(true, &mut out);
        assert_eq!(out, [5, 2, 0, 2]);
    }

    #[test]
    fn method_reply() {
        assert!(matches!(parse_method_reply(&[5]), Ok(Status::Partial)));
        assert!(matches!(
            parse_method_reply(&[5, 0xff, 9]),
            Ok(Status::Complete((Method::NoneAcceptable, 2)))
        ));
        assert!(parse_method_reply(b"HT").is_err());
    }

    #[test]
    fn credentials_rfc_1929() {
        let mut out = Zeroizing::new(Vec::new());
        encode_credentials("u", "pw", &mut out);
        assert_eq!(&out[..], [1, 1, b'u', 2, b'p', b'w']);
        assert!(matches!(
            parse_credentials_reply(&[1, 1]),
            Ok(Status::Complete((1, 2)))
        ));
        assert!(parse_credentials_reply(&[5, 0]).is_err());
    }

    #[test]
    fn connect_request_by_name_and_by_address() {
        let mut out = Vec::new();
        let name = Target {
            host: TargetHost::Name("mx.example.test".into()),
            port: 25,
        };
        encode_connect(&name, &mut out);
        assert_eq!(&out[..5], [5, 1, 0, 3, 15]);
        assert_eq!(&out[5..20], b"mx.example.test");
        assert_eq!(&out[20..], [0, 25]);
        out.clear();
        let v6 = Target {
            host: TargetHost::Addr("::1".parse().unwrap()),
            port: 465,
        };
        encode_connect(&v6, &mut out);
        assert_eq!(out.len(), 4 + 16 + 2);
        assert_eq!(out[3], 4);
        assert_eq!(&out[20..], [1, 0xd1]);
    }

    #[test]
    fn connect_reply_each_address_type() {
        let v4 = [5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40, b'2'];
        let Ok(Status::Complete((reply, 10))) = parse_connect_reply(&v4) else {
            panic!("ATYP 1");
        };
        assert_eq!(reply.bound.to_string(), "127.0.0.1:40000");
        for n in 0..10 {
            assert!(matches!(parse_connect_reply(&v4[..n]), Ok(Status::Partial)));
        }
        let mut v6 = vec![5, 0, 0, 4];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0, 25]);
        let Ok(Status::Complete((reply, 22))) = parse_connect_reply(&v6) else {
            panic!("ATYP 4");
        };
        assert_eq!(reply.bound.to_string(), "[::1]:25");
        let name = b"\x05\x00\x00\x03\x04mx.t\x00\x19";
        let Ok(Status::Complete((reply, 11))) = parse_connect_reply(name) else {
            panic!("ATYP 3");
        };
        assert_eq!(reply.bound, BoundAddr::Domain("mx.t".into(), 25));
    }

    #[test]
    fn a_refusal_is_complete_at_its_code() {
        // Dante's reply for a name that does not resolve: 05 04 with an ATYP 3 address.
        let Ok(Status::Complete((reply, 2))) = parse_connect_reply(&[5, 4]) else {
            panic!("refusal");
        };
        assert_eq!(reply.code, 4);
        assert_eq!(reply_text(reply.code), "host unreachable");
    }

    #[test]
    fn malformed_connect_replies() {
        assert!(parse_connect_reply(&[4, 0]).is_err());
        assert!(parse_connect_reply(&[5, 0, 1, 1]).is_err());
        assert!(parse_connect_reply(&[5, 0, 0, 2]).is_err());
    }
}
