//! Command encoding from any validated values: whatever the constructors accept encodes
//! to exactly one CRLF-ended line within its limit, or to nothing and an error.
//!
//! The input is split on `0x1f` (unit separator): the first field is tried as an
//! extension verb, a mailbox, a text argument and an XCLIENT/XFORWARD value, the rest as
//! extension arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::{
    Argument, Command, CommandError, Mailbox, ReversePath, Text, Verb, Xclient, Xforward,
    MAX_COMMAND_LINE,
};

/// `out` after `start` is one line: CRLF at the end and nowhere else, no NUL, at most
/// `MAX_COMMAND_LINE` octets.
fn assert_one_line(out: &[u8], start: usize) {
    let line = &out[start..];
    assert!(line.len() <= MAX_COMMAND_LINE, "{} octets", line.len());
    assert!(line.ends_with(b"\r\n"));
    let body = &line[..line.len() - 2];
    assert!(!body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
}

fn check(cmd: Command<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    match cmd.encode(out) {
        Ok(()) => assert_one_line(out, start),
        Err(CommandError::TooLong { len, limit, .. }) => {
            assert!(len > limit);
            assert_eq!(out.len(), start);
        }
        Err(_) => assert_eq!(out.len(), start),
    }
    // Never panics, never shows a raw line end.
    let shown = cmd.redacted();
    assert!(!shown.contains(['\r', '\n']));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.split('\u{1f}');
    let head = fields.next().unwrap_or_default();
    let args: Vec<Argument> = fields.filter_map(|f| Argument::new(f).ok()).collect();
    let mut out = Vec::new();
    if let Ok(verb) = Verb::new(head) {
        check(
            Command::Extension {
                verb: &verb,
                args: &args,
            },
            &mut out,
        );
        check(
            Command::Extension {
                verb: &verb,
                args: &[],
            },
            &mut out,
        );
    }
    if let Ok(mailbox) = Mailbox::new(head) {
        let from = ReversePath::Mailbox(mailbox);
        check(Command::Send { from: &from }, &mut out);
        check(Command::Soml { from: &from }, &mut out);
        check(Command::Saml { from: &from }, &mut out);
    }
    if let Ok(t) = Text::new(head) {
        check(Command::Vrfy(&t), &mut out);
        check(Command::Help(Some(&t)), &mut out);
    }
    // XCLIENT/XFORWARD values: xtext whatever bytes were accepted.
    if let Ok(x) = Xclient::new().helo(head).and_then(|x| x.login(head)) {
        check(Command::Xclient(&x), &mut out);
    }
    if let Ok(x) = Xforward::new().ident(head) {
        check(Command::Xforward(&x), &mut out);
    }
});
