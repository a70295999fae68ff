//! ESMTP parameters of MAIL and RCPT, RFC 3461 xtext, and free text arguments.

use std::fmt;

use crate::address::Mailbox;
use crate::domain::char_reason;
use crate::invalid::{check_line_safe, InvalidInput, InvalidReason};

/// Parameters of MAIL FROM. `Default` is none at all.
///
/// ```
/// use smtp_proto::{Body, MailParams};
/// let params = MailParams { size: Some(1024), body: Some(Body::EightBitMime), ..Default::default() };
/// let mut line = Vec::new();
/// params.encode(&mut line);
/// assert_eq!(line, b" SIZE=1024 BODY=8BITMIME");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870): the message size the client declares.
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152, RFC 3030).
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531): needed for a non-ASCII mailbox.
    pub smtp_utf8: bool,
    /// `RET=` (RFC 3461): what a DSN returns.
    pub ret: Option<Ret>,
    /// `ENVID=` (RFC 3461): the envelope identifier.
    pub envid: Option<XText>,
    /// `AUTH=` (RFC 4954 5): the authenticated sender.
    pub auth: Option<AuthParam>,
    /// Any other parameter, sent as given after the ones above.
    pub extra: Vec<EsmtpParam>,
}

impl MailParams {
    /// Appends each parameter as `" KEY=value"`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(size) = self.size {
            crate::command::push_fmt(out, format_args!(" SIZE={size}"));
        }
        if let Some(body) = self.body {
            out.extend_from_slice(b" BODY=");
            out.extend_from_slice(body.as_str().as_bytes());
        }
        if self.smtp_utf8 {
            out.extend_from_slice(b" SMTPUTF8");
        }
        if let Some(ret) = self.ret {
            out.extend_from_slice(b" RET=");
            out.extend_from_slice(ret.as_str().as_bytes());
        }
        if let Some(envid) = &self.envid {
            out.extend_from_slice(b" ENVID=");
            out.extend_from_slice(envid.as_str().as_bytes());
        }
        if let Some(auth) = &self.auth {
            out.extend_from_slice(b" AUTH=");
            match auth {
                AuthParam::Unknown => out.extend_from_slice(b"<>"),
                AuthParam::Identity(x) => out.extend_from_slice(x.as_str().as_bytes()),
            }
        }
        for p in &self.extra {
            p.encode(out);
        }
    }
}

/// Parameters of RCPT TO. `Default` is none at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// `NOTIFY=` (RFC 3461 4.1).
    pub notify: Option<Notify>,
    /// `ORCPT=` (RFC 3461 4.2).
    pub orcpt: Option<Orcpt>,
    /// Any other parameter, sent as given after the ones above.
    pub extra: Vec<EsmtpParam>,
}

impl RcptParams {
    /// Appends each parameter as `" KEY=value"`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(notify) = self.notify {
            out.extend_from_slice(b" NOTIFY=");
            out.extend_from_slice(notify.to_string().as_bytes());
        }
        if let Some(orcpt) = &self.orcpt {
            out.extend_from_slice(b" ORCPT=");
            out.extend_from_slice(orcpt.addr_type.as_bytes());
            out.push(b';');
            out.extend_from_slice(orcpt.addr.as_str().as_bytes());
        }
        for p in &self.extra {
            p.encode(out);
        }
    }
}

/// The `BODY=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// `7BIT`.
    SevenBit,
    /// `8BITMIME` (RFC 6152).
    EightBitMime,
    /// `BINARYMIME` (RFC 3030; needs BDAT).
    BinaryMime,
}

impl Body {
    /// The wire keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        }
    }
}

/// The `RET=` value (RFC 3461 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `FULL`: return the whole message.
    Full,
    /// `HDRS`: return the headers only.
    Hdrs,
}

impl Ret {
    /// The wire keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

/// The `AUTH=` value of MAIL FROM (RFC 4954 5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthParam {
    /// `AUTH=<>`: the sender is not known to be authenticated.
    Unknown,
    /// `AUTH=xtext`: the authenticated identity, usually a mailbox.
    Identity(XText),
}

impl AuthParam {
    /// `AUTH=` naming `mailbox`.
    pub fn mailbox(mailbox: &Mailbox) -> Self {
        AuthParam::Identity(XText::encode(mailbox.as_str().as_bytes()))
    }
}

/// The `NOTIFY=` value (RFC 3461 4.1): `NEVER`, or a non-empty set of conditions.
///
/// ```
/// use smtp_proto::Notify;
/// assert_eq!(Notify::on(true, true, false).to_string(), "SUCCESS,FAILURE");
/// assert_eq!(Notify::never().to_string(), "NEVER");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Notify {
    never: bool,
    success: bool,
    failure: bool,
    delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub fn never() -> Self {
        Notify {
            never: true,
            success: false,
            failure: false,
            delay: false,
        }
    }

    /// Notify on the chosen conditions. Choosing none is the same as [`Notify::never`].
    pub fn on(success: bool, failure: bool, delay: bool) -> Self {
        if !(success || failure || delay) {
            return Notify::never();
        }
        Notify {
            never: false,
            success,
            failure,
            delay,
        }
    }

    /// Whether this is `NEVER`.
    pub fn is_never(self) -> bool {
        self.never
    }

    /// Whether `SUCCESS` is asked for.
    pub fn success(self) -> bool {
        self.success
    }

    /// Whether `FAILURE` is asked for.
    pub fn failure(self) -> bool {
        self.failure
    }

    /// Whether `DELAY` is asked for.
    pub fn delay(self) -> bool {
        self.delay
    }
}

impl fmt::Display for Notify {
    /// The wire value: `NEVER` or e.g. `SUCCESS,DELAY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.never {
            return f.write_str("NEVER");
        }
        let mut sep = "";
        for (on, name) in [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ] {
            if on {
                write!(f, "{sep}{name}")?;
                sep = ",";
            }
        }
        Ok(())
    }
}

/// RFC 3461 4 xtext: any bytes, with `+`, `=` and everything outside `!`..=`~`
/// written as `+XX`. The encoded form is printable ASCII without space, so it cannot
/// break a command line.
///
/// ```
/// use smtp_proto::XText;
/// let x = XText::encode(b"a+b=c d");
/// assert_eq!(x.as_str(), "a+2Bb+3Dc+20d");
/// assert_eq!(x.decode(), b"a+b=c d");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XText(String);

impl XText {
    /// Encodes any bytes as xtext.
    pub fn encode(raw: &[u8]) -> XText {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut s = String::with_capacity(raw.len());
        for &b in raw {
            if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
                s.push(char::from(b));
            } else {
                s.push('+');
                s.push(char::from(HEX[usize::from(b >> 4)]));
                s.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        XText(s)
    }

    /// Validates an already encoded xtext (`+` followed by two upper-case hex digits).
    pub fn from_encoded(s: &str) -> Result<XText, InvalidInput> {
        check_line_safe("xtext", s.as_bytes())?;
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => {
                    let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                    if !(i + 2 < b.len() && hex(b[i + 1]) && hex(b[i + 2])) {
                        return Err(InvalidInput::new(
                            "xtext",
                            b,
                            InvalidReason::Syntax(
                                "has '+' not followed by two upper-case hex digits",
                            ),
                        ));
                    }
                    i += 3;
                }
                c if (b'!'..=b'~').contains(&c) && c != b'=' => i += 1,
                _ => {
                    let c = s[i..].chars().next().unwrap_or('\u{FFFD}');
                    return Err(InvalidInput::new("xtext", b, char_reason(c)));
                }
            }
        }
        Ok(XText(s.to_owned()))
    }

    /// The encoded form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The original bytes.
    pub fn decode(&self) -> Vec<u8> {
        let b = self.0.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'+' && i + 2 < b.len() {
                let hex = |c: u8| match c {
                    b'0'..=b'9' => c - b'0',
                    _ => c - b'A' + 10,
                };
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }
}

/// The `ORCPT=` value (RFC 3461 4.2): an address type and an xtext-encoded address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Orcpt {
    addr_type: String,
    addr: XText,
}

impl Orcpt {
    /// `ORCPT=rfc822;<xtext of mailbox>`.
    pub fn rfc822(mailbox: &Mailbox) -> Orcpt {
        Orcpt {
            addr_type: "rfc822".to_owned(),
            addr: XText::encode(mailbox.as_str().as_bytes()),
        }
    }

    /// Any address type (an atom such as `rfc822` or `utf-8`) and encoded address.
    pub fn new(addr_type: &str, addr: XText) -> Result<Orcpt, InvalidInput> {
        check_line_safe("ORCPT address type", addr_type.as_bytes())?;
        if addr_type.is_empty() {
            return Err(InvalidInput::new(
                "ORCPT address type",
                b"",
                InvalidReason::Empty,
            ));
        }
        if let Some(c) = addr_type
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)))
        {
            return Err(InvalidInput::new(
                "ORCPT address type",
                addr_type.as_bytes(),
                char_reason(c),
            ));
        }
        Ok(Orcpt {
            addr_type: addr_type.to_owned(),
            addr,
        })
    }

    /// The address type.
    pub fn addr_type(&self) -> &str {
        &self.addr_type
    }

    /// The encoded address.
    pub fn addr(&self) -> &XText {
        &self.addr
    }
}

/// Any other ESMTP parameter: `esmtp-keyword ["=" esmtp-value]` (RFC 5321 4.1.2).
///
/// ```
/// use smtp_proto::EsmtpParam;
/// assert!(EsmtpParam::new("MT-PRIORITY", Some("3")).is_ok());
/// assert!(EsmtpParam::new("X", Some("a b")).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EsmtpParam {
    keyword: String,
    value: Option<String>,
}

impl EsmtpParam {
    /// Validates `keyword` (`(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`) and `value`
    /// (one or more of `!`..=`~` except `=`).
    pub fn new(keyword: &str, value: Option<&str>) -> Result<EsmtpParam, InvalidInput> {
        const K: &str = "ESMTP keyword";
        const V: &str = "ESMTP value";
        let kb = keyword.as_bytes();
        check_line_safe(K, kb)?;
        if keyword.is_empty() {
            return Err(InvalidInput::new(K, kb, InvalidReason::Empty));
        }
        if let Some(c) = keyword
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(InvalidInput::new(K, kb, char_reason(c)));
        }
        if keyword.starts_with('-') {
            return Err(InvalidInput::new(
                K,
                kb,
                InvalidReason::Syntax("starts with '-'"),
            ));
        }
        if let Some(v) = value {
            let vb = v.as_bytes();
            check_line_safe(V, vb)?;
            if v.is_empty() {
                return Err(InvalidInput::new(V, vb, InvalidReason::Empty));
            }
            if let Some(c) = v.chars().find(|&c| !(('!'..='~').contains(&c) && c != '=')) {
                return Err(InvalidInput::new(V, vb, char_reason(c)));
            }
        }
        Ok(EsmtpParam {
            keyword: keyword.to_owned(),
            value: value.map(str::to_owned),
        })
    }

    /// The keyword.
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// The value, if any.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b' ');
        out.extend_from_slice(self.keyword.as_bytes());
        if let Some(v) = &self.value {
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
    }
}

/// A free argument of VRFY, EXPN, HELP or ETRN: non-empty, printable (spaces and UTF-8
/// allowed), no CR, LF, NUL or other control character.
///
/// ```
/// use smtp_proto::Text;
/// assert!(Text::new("John Smith").is_ok());
/// assert!(Text::new("x\r\nDATA").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<Text, InvalidInput> {
        const T: &str = "text argument";
        let b = s.as_bytes();
        check_line_safe(T, b)?;
        if s.is_empty() {
            return Err(InvalidInput::new(T, b, InvalidReason::Empty));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(InvalidInput::new(T, b, char_reason(c)));
        }
        Ok(Text(s.to_owned()))
    }

    /// The text as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::value::string_value_impls!(Text);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_rfc3461_examples() {
        // RFC 3461 4: "+" and "=" must be encoded, as must CTLs and space.
        assert_eq!(
            XText::encode(b"Bob+x@example.com").as_str(),
            "Bob+2Bx@example.com"
        );
        assert_eq!(XText::encode(b"a=b").as_str(), "a+3Db");
        assert_eq!(XText::encode(b"\r\n\0\xff").as_str(), "+0D+0A+00+FF");
        let x = XText::from_encoded("Bob+2Bx@example.com").unwrap();
        assert_eq!(x.decode(), b"Bob+x@example.com");
        for bad in ["a+2", "a+zz", "a b", "a=b", "a+2b", "a\r\n", "ä"] {
            assert!(XText::from_encoded(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mail_params_rfc_syntax() {
        let p = MailParams {
            size: Some(5),
            body: Some(Body::BinaryMime),
            smtp_utf8: true,
            ret: Some(Ret::Hdrs),
            envid: Some(XText::encode(b"QQ314159")),
            auth: Some(AuthParam::Unknown),
            extra: vec![EsmtpParam::new("HOLDFOR", Some("60")).unwrap()],
        };
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(
            out,
            b" SIZE=5 BODY=BINARYMIME SMTPUTF8 RET=HDRS ENVID=QQ314159 AUTH=<> HOLDFOR=60"
        );
    }

    #[test]
    fn rcpt_params_rfc3461_example() {
        // RFC 3461 4.1/4.2 example: NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.COM
        let p = RcptParams {
            notify: Some(Notify::on(true, true, false)),
            orcpt: Some(Orcpt::rfc822(&Mailbox::new("Bob@Example.COM").unwrap())),
            extra: vec![],
        };
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(out, b" NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.COM");
        assert_eq!(Notify::on(false, false, false), Notify::never());
        assert_eq!(Notify::on(false, false, true).to_string(), "DELAY");
    }

    #[test]
    fn esmtp_param_grammar() {
        assert!(EsmtpParam::new("X-A1", None).is_ok());
        let e = EsmtpParam::new("A\r\nB", None).unwrap_err();
        assert_eq!(e.reason(), &InvalidReason::Cr);
        assert_eq!(e.what(), "ESMTP keyword");
        assert!(EsmtpParam::new("-A", None).is_err());
        assert!(EsmtpParam::new("", None).is_err());
        assert!(EsmtpParam::new("A_B", None).is_err());
        let e = EsmtpParam::new("A", Some("x\ny")).unwrap_err();
        assert_eq!(e.what(), "ESMTP value");
        assert!(EsmtpParam::new("A", Some("")).is_err());
        assert!(EsmtpParam::new("A", Some("a=b")).is_err());
        assert!(EsmtpParam::new("A", Some("\0")).is_err());
    }

    #[test]
    fn text_and_orcpt() {
        assert!(Text::new("").is_err());
        assert_eq!(
            Text::new("a\tb").unwrap_err().reason(),
            &InvalidReason::Control(9)
        );
        assert_eq!(Text::new("a\0").unwrap_err().reason(), &InvalidReason::Nul);
        assert!(Orcpt::new("rfc822", XText::encode(b"a")).is_ok());
        assert!(Orcpt::new("rfc 822", XText::encode(b"a")).is_err());
        assert!(Orcpt::new("", XText::encode(b"a")).is_err());
    }
}
