//! Postfix's XCLIENT and XFORWARD: a trusted proxy or content filter tells the server about
//! the client it speaks for (its address, name, HELO, login...), as `ATTR=value` pairs whose
//! values are xtext (RFC 3461 4), or `[UNAVAILABLE]` / `[TEMPUNAVAIL]`.
//!
//! XCLIENT (Postfix `XCLIENT_README`) makes the server start over as if that client had
//! connected: it answers with a new 220 greeting, and EHLO must be sent again. XFORWARD
//! (`XFORWARD_README`) only records the attributes for logging and is answered with 250.
//!
//! ```
//! use smtp_proto::{Command, Xclient};
//! let x = Xclient::new()
//!     .name(&"spike.porcupine.org".parse()?)
//!     .addr("168.100.189.2".parse()?);
//! let mut out = Vec::new();
//! Command::Xclient(&x).encode(&mut out)?;
//! assert_eq!(out, b"XCLIENT NAME=spike.porcupine.org ADDR=168.100.189.2\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::IpAddr;

use crate::domain::Domain;
use crate::invalid::{InvalidInput, InvalidReason};
use crate::params::XText;

/// An attribute of XCLIENT, as Postfix 3.7 offers them (`XCLIENT NAME ADDR PROTO HELO
/// REVERSE_NAME PORT LOGIN DESTADDR DESTPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum XclientAttr {
    /// The client's verified host name.
    Name,
    /// The client's host name from the reverse lookup alone.
    ReverseName,
    /// The client's IP address (`IPV6:` before an IPv6 address).
    Addr,
    /// The client's TCP port.
    Port,
    /// `SMTP` or `ESMTP`.
    Proto,
    /// The client's HELO or EHLO name.
    Helo,
    /// The SASL login name the client authenticated as.
    Login,
    /// The server address the client connected to.
    DestAddr,
    /// The server port the client connected to.
    DestPort,
}

/// An attribute of XFORWARD, as Postfix 3.7 offers them (`XFORWARD NAME ADDR PROTO HELO
/// SOURCE PORT IDENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum XforwardAttr {
    /// The original client's host name.
    Name,
    /// The original client's IP address (`IPV6:` before an IPv6 address).
    Addr,
    /// The original client's TCP port.
    Port,
    /// `SMTP` or `ESMTP`.
    Proto,
    /// The original client's HELO or EHLO name.
    Helo,
    /// The original queue id (for logging).
    Ident,
    /// `LOCAL` or `REMOTE`: where the original message came from.
    Source,
}

/// The names of an attribute list's keys, as sent and as listed in the EHLO reply.
pub trait AttrName: Copy + Eq + fmt::Debug {
    /// The attribute's name, upper case.
    fn name(self) -> &'static str;
}

impl AttrName for XclientAttr {
    fn name(self) -> &'static str {
        match self {
            XclientAttr::Name => "NAME",
            XclientAttr::ReverseName => "REVERSE_NAME",
            XclientAttr::Addr => "ADDR",
            XclientAttr::Port => "PORT",
            XclientAttr::Proto => "PROTO",
            XclientAttr::Helo => "HELO",
            XclientAttr::Login => "LOGIN",
            XclientAttr::DestAddr => "DESTADDR",
            XclientAttr::DestPort => "DESTPORT",
        }
    }
}

impl AttrName for XforwardAttr {
    fn name(self) -> &'static str {
        match self {
            XforwardAttr::Name => "NAME",
            XforwardAttr::Addr => "ADDR",
            XforwardAttr::Port => "PORT",
            XforwardAttr::Proto => "PROTO",
            XforwardAttr::Helo => "HELO",
            XforwardAttr::Ident => "IDENT",
            XforwardAttr::Source => "SOURCE",
        }
    }
}

/// The value of one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// A value, xtext-encoded on the wire.
    Value(XText),
    /// `[UNAVAILABLE]`: the information is not available.
    Unavailable,
    /// `[TEMPUNAVAIL]`: the information is not available now (a lookup failed for a
    /// while); Postfix answers such clients with 4xx where it would use the value.
    TempUnavailable,
}

impl AttrValue {
    /// The value as it goes on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            AttrValue::Value(x) => x.as_str(),
            AttrValue::Unavailable => "[UNAVAILABLE]",
            AttrValue::TempUnavailable => "[TEMPUNAVAIL]",
        }
    }
}

/// `SMTP` or `ESMTP`: whether the client greeted with HELO or EHLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProto {
    /// The client sent HELO.
    Smtp,
    /// The client sent EHLO.
    Esmtp,
}

impl ClientProto {
    fn as_str(self) -> &'static str {
        match self {
            ClientProto::Smtp => "SMTP",
            ClientProto::Esmtp => "ESMTP",
        }
    }
}

/// `LOCAL` or `REMOTE` (XFORWARD's SOURCE): whether the message came from this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Submitted on the local machine.
    Local,
    /// Received from the network.
    Remote,
}

/// The attributes of one command, in the order they were set; an attribute set twice keeps
/// its first place and its last value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs<A> {
    list: Vec<(A, AttrValue)>,
}

impl<A: AttrName> Attrs<A> {
    fn empty() -> Self {
        Attrs { list: Vec::new() }
    }

    fn set(mut self, attr: A, value: AttrValue) -> Self {
        match self.list.iter_mut().find(|(a, _)| *a == attr) {
            Some(slot) => slot.1 = value,
            None => self.list.push((attr, value)),
        }
        self
    }

    /// The attributes and their values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (A, &AttrValue)> {
        self.list.iter().map(|(a, v)| (*a, v))
    }

    /// True when no attribute is set (such a command cannot be sent).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Appends ` NAME=value` for each attribute.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for (attr, value) in &self.list {
            out.push(b' ');
            out.extend_from_slice(attr.name().as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_str().as_bytes());
        }
    }
}

impl<A: AttrName> Default for Attrs<A> {
    /// No attributes yet.
    fn default() -> Self {
        Attrs::empty()
    }
}

/// A free-text attribute value (HELO, LOGIN, IDENT): not empty, and no space, CR, LF, NUL
/// or other control character, although xtext could carry them: such a value is a
/// mistake or an injection attempt, never a name.
fn text_value(what: &'static str, value: &str) -> Result<AttrValue, InvalidInput> {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Err(InvalidInput::new(what, bytes, InvalidReason::Empty));
    }
    for &b in bytes {
        let reason = match b {
            b'\r' => InvalidReason::Cr,
            b'\n' => InvalidReason::Lf,
            0 => InvalidReason::Nul,
            b' ' => InvalidReason::Char(' '),
            b if b < 0x20 || b == 0x7f => InvalidReason::Control(b),
            _ => continue,
        };
        return Err(InvalidInput::new(what, bytes, reason));
    }
    Ok(AttrValue::Value(XText::encode(bytes)))
}

/// An address as Postfix reads ADDR and DESTADDR: dotted IPv4, or `IPV6:` and the IPv6
/// address (an IPv4-mapped IPv6 address is sent as IPv4).
fn addr_value(ip: IpAddr) -> AttrValue {
    let text = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("IPV6:{v6}"),
        },
    };
    AttrValue::Value(XText::encode(text.as_bytes()))
}

fn plain(text: &str) -> AttrValue {
    AttrValue::Value(XText::encode(text.as_bytes()))
}

/// The attributes of an `XCLIENT` command ([`Command::Xclient`](crate::Command::Xclient)).
///
/// Every value is valid by construction: names are [`Domain`]s, addresses [`IpAddr`]s,
/// ports numbers; HELO and LOGIN are refused when empty or holding a space or control
/// character.
pub type Xclient = Attrs<XclientAttr>;

impl Attrs<XclientAttr> {
    /// No attributes yet.
    pub fn new() -> Xclient {
        Attrs::empty()
    }

    /// `NAME=`: the client's verified host name.
    pub fn name(self, name: &Domain) -> Xclient {
        self.set(XclientAttr::Name, plain(name.as_str()))
    }

    /// `REVERSE_NAME=`: the client's host name from the reverse lookup alone.
    pub fn reverse_name(self, name: &Domain) -> Xclient {
        self.set(XclientAttr::ReverseName, plain(name.as_str()))
    }

    /// `ADDR=`: the client's address.
    pub fn addr(self, ip: IpAddr) -> Xclient {
        self.set(XclientAttr::Addr, addr_value(ip))
    }

    /// `PORT=`: the client's port.
    pub fn port(self, port: u16) -> Xclient {
        self.set(XclientAttr::Port, plain(&port.to_string()))
    }

    /// `PROTO=`: `SMTP` or `ESMTP`.
    pub fn proto(self, proto: ClientProto) -> Xclient {
        self.set(XclientAttr::Proto, plain(proto.as_str()))
    }

    /// `HELO=`: the client's HELO/EHLO name (any word: clients send all sorts).
    pub fn helo(self, helo: &str) -> Result<Xclient, InvalidInput> {
        Ok(self.set(XclientAttr::Helo, text_value("XCLIENT HELO", helo)?))
    }

    /// `LOGIN=`: the SASL login name the client authenticated as.
    pub fn login(self, login: &str) -> Result<Xclient, InvalidInput> {
        Ok(self.set(XclientAttr::Login, text_value("XCLIENT LOGIN", login)?))
    }

    /// `DESTADDR=`: the server address the client connected to.
    pub fn dest_addr(self, ip: IpAddr) -> Xclient {
        self.set(XclientAttr::DestAddr, addr_value(ip))
    }

    /// `DESTPORT=`: the server port the client connected to.
    pub fn dest_port(self, port: u16) -> Xclient {
        self.set(XclientAttr::DestPort, plain(&port.to_string()))
    }

    /// `attr=[UNAVAILABLE]`.
    pub fn unavailable(self, attr: XclientAttr) -> Xclient {
        self.set(attr, AttrValue::Unavailable)
    }

    /// `attr=[TEMPUNAVAIL]`.
    pub fn temp_unavailable(self, attr: XclientAttr) -> Xclient {
        self.set(attr, AttrValue::TempUnavailable)
    }
}

/// The attributes of an `XFORWARD` command ([`Command::Xforward`](crate::Command::Xforward)),
/// valid by construction as [`Xclient`]'s are.
pub type Xforward = Attrs<XforwardAttr>;

impl Attrs<XforwardAttr> {
    /// No attributes yet.
    pub fn new() -> Xforward {
        Attrs::empty()
    }

    /// `NAME=`: the original client's host name.
    pub fn name(self, name: &Domain) -> Xforward {
        self.set(XforwardAttr::Name, plain(name.as_str()))
    }

    /// `ADDR=`: the original client's address.
    pub fn addr(self, ip: IpAddr) -> Xforward {
        self.set(XforwardAttr::Addr, addr_value(ip))
    }

    /// `PORT=`: the original client's port.
    pub fn port(self, port: u16) -> Xforward {
        self.set(XforwardAttr::Port, plain(&port.to_string()))
    }

    /// `PROTO=`: `SMTP` or `ESMTP`.
    pub fn proto(self, proto: ClientProto) -> Xforward {
        self.set(XforwardAttr::Proto, plain(proto.as_str()))
    }

    /// `HELO=`: the original client's HELO/EHLO name.
    pub fn helo(self, helo: &str) -> Result<Xforward, InvalidInput> {
        Ok(self.set(XforwardAttr::Helo, text_value("XFORWARD HELO", helo)?))
    }

    /// `IDENT=`: the original queue id.
    pub fn ident(self, ident: &str) -> Result<Xforward, InvalidInput> {
        Ok(self.set(XforwardAttr::Ident, text_value("XFORWARD IDENT", ident)?))
    }

    /// `SOURCE=`: `LOCAL` or `REMOTE`.
    pub fn source(self, source: Source) -> Xforward {
        let text = match source {
            Source::Local => "LOCAL",
            Source::Remote => "REMOTE",
        };
        self.set(XforwardAttr::Source, plain(text))
    }

    /// `attr=[UNAVAILABLE]`.
    pub fn unavailable(self, attr: XforwardAttr) -> Xforward {
        self.set(attr, AttrValue::Unavailable)
    }

    /// `attr=[TEMPUNAVAIL]`.
    pub fn temp_unavailable(self, attr: XforwardAttr) -> Xforward {
        self.set(attr, AttrValue::TempUnavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;

    fn line(c: Command<'_>) -> String {
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn postfix_readme_examples() {
        // XCLIENT_README: "XCLIENT NAME=spike.porcupine.org ADDR=168.100.189.2".
        let x = Xclient::new()
            .name(&Domain::new("spike.porcupine.org").unwrap())
            .addr("168.100.189.2".parse().unwrap());
        assert_eq!(
            line(Command::Xclient(&x)),
            "XCLIENT NAME=spike.porcupine.org ADDR=168.100.189.2\r\n"
        );
        // XFORWARD_README: "XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP"
        // and "XFORWARD HELO=spike.porcupine.org".
        let f = Xforward::new()
            .name(&Domain::new("spike.porcupine.org").unwrap())
            .addr("168.100.189.2".parse().unwrap())
            .proto(ClientProto::Esmtp);
        assert_eq!(
            line(Command::Xforward(&f)),
            "XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP\r\n"
        );
        let f = Xforward::new().helo("spike.porcupine.org").unwrap();
        assert_eq!(
            line(Command::Xforward(&f)),
            "XFORWARD HELO=spike.porcupine.org\r\n"
        );
    }

    #[test]
    fn every_attribute_and_the_special_values() {
        let x = Xclient::new()
            .addr("2001:db8::7".parse().unwrap())
            .port(4711)
            .proto(ClientProto::Smtp)
            .helo("[192.0.2.7]")
            .unwrap()
            .login("us+er=1")
            .unwrap()
            .dest_addr("::ffff:192.0.2.1".parse().unwrap())
            .dest_port(25)
            .unavailable(XclientAttr::Name)
            .temp_unavailable(XclientAttr::ReverseName);
        assert_eq!(
            line(Command::Xclient(&x)),
            "XCLIENT ADDR=IPV6:2001:db8::7 PORT=4711 PROTO=SMTP HELO=[192.0.2.7] \
             LOGIN=us+2Ber+3D1 DESTADDR=192.0.2.1 DESTPORT=25 NAME=[UNAVAILABLE] \
             REVERSE_NAME=[TEMPUNAVAIL]\r\n"
        );
        let f = Xforward::new()
            .ident("4QbF0C1Z0nz9t")
            .unwrap()
            .source(Source::Remote)
            .port(25)
            .temp_unavailable(XforwardAttr::Name);
        assert_eq!(
            line(Command::Xforward(&f)),
            "XFORWARD IDENT=4QbF0C1Z0nz9t SOURCE=REMOTE PORT=25 NAME=[TEMPUNAVAIL]\r\n"
        );
    }

    #[test]
    fn an_attribute_set_twice_keeps_its_place_and_last_value() {
        let x = Xclient::new()
            .port(1)
            .addr("192.0.2.1".parse().unwrap())
            .port(2);
        assert_eq!(
            line(Command::Xclient(&x)),
            "XCLIENT PORT=2 ADDR=192.0.2.1\r\n"
        );
    }

    #[test]
    fn space_cr_lf_nul_and_empty_are_refused() {
        for (bad, reason) in [
            ("a b", InvalidReason::Char(' ')),
            ("a\rb", InvalidReason::Cr),
            ("a\nb", InvalidReason::Lf),
            ("a\0b", InvalidReason::Nul),
            ("a\x07b", InvalidReason::Control(7)),
            ("", InvalidReason::Empty),
        ] {
            let err = Xclient::new().helo(bad).unwrap_err();
            assert_eq!(err.reason(), &reason, "{bad:?}");
            assert_eq!(err.what(), "XCLIENT HELO");
            let err = Xclient::new().login(bad).unwrap_err();
            assert_eq!(err.reason(), &reason, "{bad:?}");
            let err = Xforward::new().ident(bad).unwrap_err();
            assert_eq!(err.reason(), &reason, "{bad:?}");
        }
    }

    #[test]
    fn an_empty_command_is_not_encoded() {
        let mut out = b"kept".to_vec();
        let x = Xclient::new();
        assert!(Command::Xclient(&x).encode(&mut out).is_err());
        assert_eq!(out, b"kept");
    }

    #[test]
    fn utf8_in_a_login_goes_as_xtext() {
        let x = Xclient::new().login("jörg").unwrap();
        assert_eq!(line(Command::Xclient(&x)), "XCLIENT LOGIN=j+C3+B6rg\r\n");
    }
}
