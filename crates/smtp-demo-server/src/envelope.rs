//! The envelope of a mail transaction: MAIL FROM with its parameters (SIZE, BODY, SMTPUTF8,
//! AUTH, and DSN's RET and ENVID) and RCPT TO with its DSN parameters (NOTIFY, ORCPT), the
//! recipient bound and the refused local part.

use smtp_proto::{ForwardPath, Mailbox};

use crate::session::{Connection, Transaction};

impl Connection<'_> {
    /// MAIL FROM: starts a transaction once EHLO (and AUTH, if required) came first.
    pub(crate) fn mail(&mut self, arg: &str) {
        if self.helo.is_none() {
            return self.error(503, "5.5.1 Send EHLO first");
        }
        if self.txn.from.is_some() {
            return self.error(503, "5.5.1 Sender already given");
        }
        if self.config().require_auth && self.auth.is_none() {
            return self.error(530, "5.7.0 Authentication required");
        }
        let Some((path, params)) = parse_path_arg(arg, "FROM:") else {
            return self.error(501, "5.5.4 Syntax: MAIL FROM:<address> [parameters]");
        };
        if !path.is_empty() && Mailbox::new(path).is_err() {
            return self.error(553, "5.1.7 Bad sender address syntax");
        }
        let mut kept = Vec::new();
        for param in params.split(' ').filter(|p| !p.is_empty()) {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (param, None),
            };
            match (key.to_ascii_uppercase().as_str(), value) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(n) if n > self.config().max_message_size as u64 => {
                        return self.error(552, "5.3.4 Message size exceeds fixed limit");
                    }
                    Ok(_) => {}
                    Err(_) => return self.error(501, "5.5.4 Bad SIZE value"),
                },
                ("BODY", Some(v))
                    if ["7BIT", "8BITMIME", "BINARYMIME"]
                        .iter()
                        .any(|b| b.eq_ignore_ascii_case(v)) => {}
                ("SMTPUTF8", None) => {}
                ("AUTH", Some(_)) => {}
                // RFC 3461 4.3 and 4.4.
                ("RET", Some(v))
                    if v.eq_ignore_ascii_case("FULL") || v.eq_ignore_ascii_case("HDRS") => {}
                ("ENVID", Some(v)) if is_xtext(v) && v.len() <= 100 => {}
                _ => return self.error(555, "5.5.4 Unsupported MAIL parameter"),
            }
            kept.push(param.to_owned());
        }
        self.txn = Transaction {
            from: Some(path.to_owned()),
            mail_params: kept,
            ..Transaction::default()
        };
        self.reply(250, &["2.1.0 Sender OK"]);
    }

    /// RCPT TO: adds a recipient to the current transaction.
    pub(crate) fn rcpt(&mut self, arg: &str) {
        if self.txn.from.is_none() {
            return self.error(503, "5.5.1 Need MAIL before RCPT");
        }
        let Some((path, params)) = parse_path_arg(arg, "TO:") else {
            return self.error(501, "5.5.4 Syntax: RCPT TO:<address> [parameters]");
        };
        let mut kept = Vec::new();
        for param in params.split(' ').filter(|p| !p.is_empty()) {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (param, None),
            };
            let ok = match (key.to_ascii_uppercase().as_str(), value) {
                ("NOTIFY", Some(v)) => is_notify(v),
                // RFC 3461 4.2: addr-type ";" xtext.
                ("ORCPT", Some(v)) => v
                    .split_once(';')
                    .is_some_and(|(t, a)| !t.is_empty() && !a.is_empty() && is_xtext(a)),
                _ => false,
            };
            if !ok {
                return self.error(555, "5.5.4 Unsupported RCPT parameter");
            }
            kept.push(param.to_owned());
        }
        let Ok(forward) = ForwardPath::new(path) else {
            return self.error(553, "5.1.3 Bad recipient address syntax");
        };
        if let (Some(mailbox), Some(refused)) =
            (forward.mailbox(), &self.config().refuse_local_part)
        {
            if mailbox.local_part().eq_ignore_ascii_case(refused) {
                return self.error(550, "5.1.1 Recipient address rejected: mailbox unavailable");
            }
        }
        if self.txn.to.len() >= self.config().max_recipients {
            return self.error(452, "4.5.3 Too many recipients");
        }
        self.txn.to.push(path.to_owned());
        self.txn.rcpt_params.push(kept);
        self.reply(250, &["2.1.5 Recipient OK"]);
    }
}

/// RFC 3461 4.1: `NEVER`, or a comma-separated list of `SUCCESS`, `FAILURE` and `DELAY`.
fn is_notify(value: &str) -> bool {
    if value.eq_ignore_ascii_case("NEVER") {
        return true;
    }
    value.split(',').all(|v| {
        ["SUCCESS", "FAILURE", "DELAY"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(v))
    })
}

/// RFC 3461 4: printable ASCII but `+` and `=`, or `+` and two upper-case hex digits.
fn is_xtext(value: &str) -> bool {
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                if !(i + 2 < b.len() && hex(b[i + 1]) && hex(b[i + 2])) {
                    return false;
                }
                i += 3;
            }
            b'!'..=b'~' if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Splits `FROM:<path> params` (keyword any case; a space after the colon tolerated) into
/// the path without brackets and the parameters.
pub(crate) fn parse_path_arg<'l>(arg: &'l str, keyword: &str) -> Option<(&'l str, &'l str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg.get(keyword.len()..)?.trim_start_matches(' ');
    let rest = rest.strip_prefix('<')?;
    let close = rest.find('>')?;
    let path = &rest[..close];
    let params = &rest[close + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    Some((path, params.trim_start_matches(' ')))
}
