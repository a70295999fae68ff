//! The envelope's extensions, checked before any connection: DSN (RFC 3461: `--notify`,
//! `--ret`, `--envid`, `--orcpt`), Postfix's XCLIENT (`--xclient ATTR=VALUE`) and PRDR
//! (`--prdr`), turned into the `smtp-proto` values `smtp-client` sends.

use clap::ValueEnum;
use smtp_client::Envelope;
use smtp_proto::{
    ClientProto, Domain, ForwardPath, MailParams, Mailbox, Notify, Orcpt, RcptParams, Ret,
    ReversePath, XText, Xclient, XclientAttr,
};

use crate::cli::{no_line_breaks, Args};
use crate::exit::Failure;

/// `--ret`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetArg {
    /// The whole message comes back with a notification (`RET=FULL`).
    Full,
    /// Only its headers (`RET=HDRS`).
    Hdrs,
}

/// The extension flags, checked.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    /// MAIL FROM parameters: RET and ENVID.
    pub mail: MailParams,
    /// NOTIFY, the same for every recipient.
    pub notify: Option<Notify>,
    /// ORCPT of each recipient, in `--to` order (empty: none).
    pub orcpt: Vec<Orcpt>,
    /// XCLIENT's attributes, when any were given.
    pub xclient: Option<Xclient>,
    /// `--prdr`.
    pub prdr: bool,
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::usage(msg)
}

/// The names `--xclient` takes, as Postfix offers them.
const XCLIENT_NAMES: &str =
    "NAME, REVERSE_NAME, ADDR, PORT, PROTO, HELO, LOGIN, DESTADDR, DESTPORT";

/// Checks the extension flags; `recipients` is the number of `--to`.
pub fn plan(args: &Args, recipients: usize) -> Result<Extensions, Failure> {
    let notify = args.notify.as_deref().map(notify).transpose()?;
    let envid = args.envid.as_deref().map(envid).transpose()?;
    if !args.orcpt.is_empty() && args.orcpt.len() != recipients {
        return Err(usage(format!(
            "--orcpt: {} given for {recipients} --to; give one for each --to, in the same order",
            args.orcpt.len()
        )));
    }
    let orcpt = args
        .orcpt
        .iter()
        .map(|o| orcpt(o))
        .collect::<Result<Vec<_>, _>>()?;
    let xclient = match args.xclient.as_slice() {
        [] => None,
        attrs => Some(xclient(attrs)?),
    };
    Ok(Extensions {
        mail: MailParams {
            ret: args.ret.map(|r| match r {
                RetArg::Full => Ret::Full,
                RetArg::Hdrs => Ret::Hdrs,
            }),
            envid,
            ..MailParams::default()
        },
        notify,
        orcpt,
        xclient,
        prdr: args.prdr,
    })
}

/// `never`, or a comma-separated list of `success`, `failure` and `delay` (RFC 3461 4.1).
fn notify(text: &str) -> Result<Notify, Failure> {
    no_line_breaks("notify", text)?;
    let bad = |why: &str| usage(format!("--notify {text:?}: {why}"));
    if text.eq_ignore_ascii_case("never") {
        return Ok(Notify::never());
    }
    let (mut success, mut failure, mut delay) = (false, false, false);
    for word in text.split(',') {
        let flag = match word.to_ascii_lowercase().as_str() {
            "success" => &mut success,
            "failure" => &mut failure,
            "delay" => &mut delay,
            "never" => return Err(bad("never cannot be combined with the others")),
            _ => {
                return Err(bad(
                    "expected never, or success, failure and delay separated by commas",
                ))
            }
        };
        if *flag {
            return Err(bad(&format!("{word} given twice")));
        }
        *flag = true;
    }
    Ok(Notify::on(success, failure, delay))
}

/// ENVID: 1 to 100 printable ASCII characters (RFC 3461 4.4), sent as xtext.
fn envid(text: &str) -> Result<XText, Failure> {
    no_line_breaks("envid", text)?;
    let bad = |why: &str| usage(format!("--envid {text:?}: {why}"));
    if text.is_empty() {
        return Err(bad("is empty"));
    }
    if text.len() > 100 {
        return Err(bad("longer than 100 characters"));
    }
    if let Some(c) = text.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(bad(&format!("{c:?} is not printable ASCII")));
    }
    Ok(XText::encode(text.as_bytes()))
}

/// `ADDR-TYPE;ADDRESS` (RFC 3461 4.2): `rfc822;bob@example.test` checked as a mailbox, any
/// other address type as an atom with a non-empty address.
fn orcpt(text: &str) -> Result<Orcpt, Failure> {
    no_line_breaks("orcpt", text)?;
    let bad = |why: String| usage(format!("--orcpt {text:?}: {why}"));
    let Some((addr_type, addr)) = text.split_once(';') else {
        return Err(bad(
            "expected ADDR-TYPE;ADDRESS, as rfc822;bob@example.test".into(),
        ));
    };
    if addr.is_empty() {
        return Err(bad("no address after ';'".into()));
    }
    if addr_type.eq_ignore_ascii_case("rfc822") {
        let mailbox = Mailbox::new(addr).map_err(|e| bad(e.to_string()))?;
        return Ok(Orcpt::rfc822(&mailbox));
    }
    if let Some(c) = addr.chars().find(|c| c.is_control() || *c == ' ') {
        return Err(bad(format!("{c:?} in the address")));
    }
    Orcpt::new(addr_type, XText::encode(addr.as_bytes())).map_err(|e| bad(e.to_string()))
}

/// Each `ATTR=VALUE`, typed as Postfix reads it; `[UNAVAILABLE]` and `[TEMPUNAVAIL]` for
/// any attribute.
fn xclient(attrs: &[String]) -> Result<Xclient, Failure> {
    let mut x = Xclient::new();
    let mut seen: Vec<XclientAttr> = Vec::new();
    for text in attrs {
        no_line_breaks("xclient", text)?;
        let bad = |why: String| usage(format!("--xclient {text:?}: {why}"));
        let Some((name, value)) = text.split_once('=') else {
            return Err(bad("expected ATTR=VALUE".into()));
        };
        if value.is_empty() {
            return Err(bad("no value after '='".into()));
        }
        if value.contains(' ') {
            return Err(bad("a space in the value".into()));
        }
        let attr = match name.to_ascii_uppercase().as_str() {
            "NAME" => XclientAttr::Name,
            "REVERSE_NAME" => XclientAttr::ReverseName,
            "ADDR" => XclientAttr::Addr,
            "PORT" => XclientAttr::Port,
            "PROTO" => XclientAttr::Proto,
            "HELO" => XclientAttr::Helo,
            "LOGIN" => XclientAttr::Login,
            "DESTADDR" => XclientAttr::DestAddr,
            "DESTPORT" => XclientAttr::DestPort,
            _ => return Err(bad(format!("unknown attribute (known: {XCLIENT_NAMES})"))),
        };
        if seen.contains(&attr) {
            return Err(bad(format!("{} given twice", name.to_ascii_uppercase())));
        }
        seen.push(attr);
        if value.eq_ignore_ascii_case("[UNAVAILABLE]") {
            x = x.unavailable(attr);
            continue;
        }
        if value.eq_ignore_ascii_case("[TEMPUNAVAIL]") {
            x = x.temp_unavailable(attr);
            continue;
        }
        let domain = || Domain::new(value).map_err(|e| bad(e.to_string()));
        let ip = || {
            let v = value
                .get(..5)
                .filter(|p| p.eq_ignore_ascii_case("IPV6:"))
                .map_or(value, |_| &value[5..]);
            v.parse::<std::net::IpAddr>()
                .map_err(|_| bad("not an IP address".into()))
        };
        let port = || {
            value
                .parse::<u16>()
                .map_err(|_| bad("not a port number".into()))
        };
        x = match attr {
            XclientAttr::Name => x.name(&domain()?),
            XclientAttr::ReverseName => x.reverse_name(&domain()?),
            XclientAttr::Addr => x.addr(ip()?),
            XclientAttr::DestAddr => x.dest_addr(ip()?),
            XclientAttr::Port => x.port(port()?),
            XclientAttr::DestPort => x.dest_port(port()?),
            XclientAttr::Proto => match value.to_ascii_uppercase().as_str() {
                "SMTP" => x.proto(ClientProto::Smtp),
                "ESMTP" => x.proto(ClientProto::Esmtp),
                _ => return Err(bad("PROTO is SMTP or ESMTP".into())),
            },
            XclientAttr::Helo => x.helo(value).map_err(|e| bad(e.to_string()))?,
            XclientAttr::Login => x.login(value).map_err(|e| bad(e.to_string()))?,
            _ => return Err(bad(format!("unknown attribute (known: {XCLIENT_NAMES})"))),
        };
    }
    Ok(x)
}

impl Extensions {
    /// The envelope from `from` to each of `to`, with every parameter asked for.
    pub fn envelope(&self, from: &ReversePath, to: &[ForwardPath]) -> Envelope {
        let mut envelope = Envelope::new(from.clone(), []).mail_params(self.mail.clone());
        for (i, rcpt) in to.iter().enumerate() {
            envelope = envelope.recipient(rcpt.clone(), self.rcpt_params(i));
        }
        envelope.prdr(self.prdr)
    }

    /// The RCPT parameters of the `index`th recipient.
    pub fn rcpt_params(&self, index: usize) -> RcptParams {
        RcptParams {
            notify: self.notify,
            orcpt: self.orcpt.get(index).cloned(),
            ..RcptParams::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(params: &RcptParams) -> String {
        let to = ForwardPath::new("bob@example.test").unwrap();
        let mut out = Vec::new();
        smtp_proto::Command::Rcpt { to: &to, params }
            .encode(&mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn notify_values_of_rfc3461() {
        assert_eq!(notify("never").unwrap(), Notify::never());
        assert_eq!(notify("NEVER").unwrap(), Notify::never());
        assert_eq!(
            notify("success,failure,delay").unwrap(),
            Notify::on(true, true, true)
        );
        assert_eq!(notify("delay").unwrap(), Notify::on(false, false, true));
        for bad in [
            "",
            "sometimes",
            "never,success",
            "success,success",
            "success failure",
        ] {
            assert!(notify(bad).is_err(), "{bad:?}");
        }
        let params = RcptParams {
            notify: Some(notify("success,delay").unwrap()),
            ..RcptParams::default()
        };
        assert_eq!(
            encoded(&params),
            "RCPT TO:<bob@example.test> NOTIFY=SUCCESS,DELAY\r\n"
        );
    }

    #[test]
    fn orcpt_and_envid_are_xtext() {
        // RFC 3461 4.2's example address; '+' and '=' are xtext-encoded (section 4).
        let o = orcpt("rfc822;Bob+ext@Example.COM").unwrap();
        let params = RcptParams {
            orcpt: Some(o),
            ..RcptParams::default()
        };
        assert_eq!(
            encoded(&params),
            "RCPT TO:<bob@example.test> ORCPT=rfc822;Bob+2Bext@Example.COM\r\n"
        );
        for bad in [
            "bob@example.test",
            "rfc822;",
            "rfc822;not an address",
            ";bob@example.test",
            "x 400;a",
        ] {
            assert!(orcpt(bad).is_err(), "{bad:?}");
        }
        assert_eq!(envid("a+b=c").unwrap().as_str(), "a+2Bb+3Dc");
        assert!(envid("").is_err());
        assert!(envid(&"x".repeat(101)).is_err());
        assert!(envid("caf\u{e9}").is_err());
    }

    #[test]
    fn xclient_attributes_are_typed() {
        let attrs: Vec<String> = [
            "NAME=mail.forwarded.example",
            "ADDR=192.0.2.7",
            "port=4711",
            "PROTO=esmtp",
            "HELO=helo.forwarded.example",
            "LOGIN=[UNAVAILABLE]",
        ]
        .map(String::from)
        .to_vec();
        let x = xclient(&attrs).unwrap();
        let mut out = Vec::new();
        smtp_proto::Command::Xclient(&x).encode(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "XCLIENT NAME=mail.forwarded.example ADDR=192.0.2.7 PORT=4711 PROTO=ESMTP \
             HELO=helo.forwarded.example LOGIN=[UNAVAILABLE]\r\n"
        );
        let v6 = xclient(&["ADDR=IPV6:2001:db8::1".to_owned()]).unwrap();
        let mut out = Vec::new();
        smtp_proto::Command::Xclient(&v6).encode(&mut out).unwrap();
        assert_eq!(out, b"XCLIENT ADDR=IPV6:2001:db8::1\r\n");
        for bad in [
            "NAME",
            "NAME=",
            "COLOR=blue",
            "ADDR=not-an-ip",
            "PORT=http",
            "PROTO=LMTP",
            "HELO=a b",
            "NAME=bad name",
        ] {
            assert!(xclient(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
        assert!(xclient(&["ADDR=192.0.2.7".into(), "addr=192.0.2.8".into()]).is_err());
    }
}
