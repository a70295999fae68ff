//! Invariants of the codec, checked on generated input.

use proptest::prelude::*;
use smtp_proto::{
    crlf_normalise, parse_reply, unstuff, Argument, Command, CommandError, Domain, DotStuffer,
    EsmtpParam, ForwardPath, MailParams, Mailbox, RcptParams, Reply, ReplyCode, ReplyError,
    ReplyLimits, ReplyParser, ReversePath, Status, Text, Verb, XText, MAX_COMMAND_LINE,
};

/// A reply line's text: any bytes but CR, LF and NUL.
fn text_line() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no line end", |b| !matches!(b, b'\r' | b'\n' | 0)),
        0..40,
    )
}

fn reply() -> impl Strategy<Value = Reply> {
    (200u16..600, prop::collection::vec(text_line(), 1..6)).prop_map(|(code, lines)| {
        let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        Reply::new(ReplyCode::new(code).unwrap(), &lines).unwrap()
    })
}

/// A parsed reply as plain data: code and text lines.
type Parsed = (u16, Vec<Vec<u8>>);

/// Every outcome of feeding `chunks` in order, draining replies after each chunk.
fn parse_chunks(chunks: &[&[u8]]) -> (Vec<Parsed>, Option<ReplyError>) {
    parse_chunks_with(chunks, ReplyLimits::default())
}

fn parse_chunks_with(chunks: &[&[u8]], limits: ReplyLimits) -> (Vec<Parsed>, Option<ReplyError>) {
    let mut p = ReplyParser::with_limits(limits);
    let mut replies = Vec::new();
    for chunk in chunks {
        p.feed(chunk);
        loop {
            match p.next_reply() {
                Ok(Some(r)) => {
                    replies.push((r.code().get(), r.lines().map(<[u8]>::to_vec).collect()))
                }
                Ok(None) => break,
                Err(e) => return (replies, Some(e)),
            }
        }
    }
    (replies, None)
}

/// `data` cut at the given points (sorted, deduplicated, clamped).
fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&data[start..c]);
        start = c;
    }
    out.push(&data[start..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_of_valid_replies_gives_the_same_replies(
        replies in prop::collection::vec(reply(), 1..6),
        bare_lf in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for r in &replies {
            r.encode(&mut wire);
        }
        if bare_lf {
            // Text lines hold no CR, so every CR is part of a CRLF.
            wire.retain(|&b| b != b'\r');
        }
        let whole = parse_chunks(&[&wire]);
        prop_assert!(whole.1.is_none(), "{:?}", whole.1);
        let expected: Vec<Parsed> = replies
            .iter()
            .map(|r| (r.code().get(), r.lines().map(<[u8]>::to_vec).collect()))
            .collect();
        prop_assert_eq!(&whole.0, &expected);
        prop_assert_eq!(whole.0.len(), replies.len());
        let chunks = split(&wire, &cuts);
        prop_assert_eq!(parse_chunks(&chunks), whole);
    }

    #[test]
    fn any_split_of_any_bytes_gives_the_same_outcome(
        data in prop::collection::vec(prop::sample::select(b"25 0-\r\nab4".to_vec()), 0..200),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = parse_chunks(&[&data]);
        prop_assert_eq!(parse_chunks(&split(&data, &cuts)), whole);
    }

    #[test]
    fn any_split_gives_the_same_outcome_at_the_limits(
        data in prop::collection::vec(prop::sample::select(b"25 0-\r\nab4".to_vec()), 0..200),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        max_line_len in 0usize..12,
        max_lines in 0usize..4,
    ) {
        let limits = ReplyLimits { max_line_len, max_lines };
        let whole = parse_chunks_with(&[&data], limits);
        prop_assert_eq!(parse_chunks_with(&split(&data, &cuts), limits), whole.clone());
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        prop_assert_eq!(parse_chunks_with(&bytes, limits), whole);
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_outcome(
        data in prop::collection::vec(prop::sample::select(b"25 0-\r\nab4".to_vec()), 0..200),
    ) {
        let whole = parse_chunks(&[&data]);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        prop_assert_eq!(parse_chunks(&bytes), whole);
    }

    #[test]
    fn borrowing_parser_agrees_with_the_incremental_one(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let limits = ReplyLimits::default();
        let mut p = ReplyParser::new();
        p.feed(&data);
        match (parse_reply(&data, &limits), p.next_reply()) {
            (Ok(Status::Complete(n)), Ok(Some(r))) => prop_assert_eq!(r.raw(), &data[..n]),
            (Ok(Status::Partial), Ok(None)) => {}
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
        }
    }

    #[test]
    fn reply_encode_parse_round_trip(r in reply()) {
        let mut wire = Vec::new();
        r.encode(&mut wire);
        prop_assert_eq!(&wire[..], r.raw());
        let mut p = ReplyParser::new();
        p.feed(&wire);
        let back = p.next_reply().unwrap().unwrap();
        prop_assert_eq!(back.code(), r.code());
        prop_assert_eq!(back.enhanced(), r.enhanced());
        prop_assert_eq!(back.line_count(), r.line_count());
        prop_assert!(back.lines().eq(r.lines()));
        prop_assert_eq!(p.buffered_len(), 0);
    }

    #[test]
    fn unstuff_of_stuff_is_crlf_normalise(
        data in prop::collection::vec(prop::sample::select(b".\r\nab.".to_vec()), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        let mut s = DotStuffer::new();
        for chunk in split(&data, &cuts) {
            s.stuff(chunk, &mut wire);
        }
        s.finish(&mut wire);
        // Chunking does not change the output.
        let mut whole = Vec::new();
        let mut s = DotStuffer::new();
        s.stuff(&data, &mut whole);
        s.finish(&mut whole);
        prop_assert_eq!(&wire, &whole);
        // Only CRLF line ends on the wire, and exactly one end-of-data line, at the end.
        prop_assert!(wire.ends_with(b".\r\n"));
        for (i, &b) in wire.iter().enumerate() {
            if b == b'\r' { prop_assert_eq!(wire.get(i + 1), Some(&b'\n')); }
            if b == b'\n' { prop_assert!(i > 0 && wire[i - 1] == b'\r'); }
        }
        let (message, consumed) = unstuff(&wire).expect("an end-of-data line");
        prop_assert_eq!(consumed, wire.len());
        prop_assert_eq!(message, crlf_normalise(&data));
    }

    #[test]
    fn validated_values_never_hold_line_breaks(s in "[a-z.@\\[\\]:\r\n\0 \"é\\\\<>=+-]{0,30}") {
        fn clean(v: &str) -> bool {
            !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
        }
        if let Ok(d) = Domain::new(&s) { prop_assert!(clean(d.as_str())); }
        if let Ok(m) = Mailbox::new(&s) { prop_assert!(clean(m.as_str())); }
        if let Ok(t) = Text::new(&s) { prop_assert!(clean(t.as_str())); }
        if let Ok(x) = XText::from_encoded(&s) { prop_assert!(clean(x.as_str())); }
        prop_assert!(clean(XText::encode(s.as_bytes()).as_str()));
        if let Ok(p) = EsmtpParam::new(&s, None) { prop_assert!(clean(p.keyword())); }
        if let Ok(p) = EsmtpParam::new("X", Some(&s)) { prop_assert!(clean(p.value().unwrap())); }
        // Whatever encodes is exactly one line.
        let mut lines = Vec::new();
        if let Ok(m) = Mailbox::new(&s) {
            let params = MailParams { smtp_utf8: true, ..Default::default() };
            let from = ReversePath::Mailbox(m.clone());
            Command::Mail { from: &from, params: &params }.encode(&mut lines).unwrap();
            Command::Rcpt { to: &ForwardPath::from(m), params: &RcptParams::default() }.encode(&mut lines).unwrap();
        }
        if let Ok(t) = Text::new(&s) {
            let _ = Command::Vrfy(&t).encode(&mut lines);
        }
        let _ = Command::Auth { mechanism: &s, initial_response: Some(s.as_bytes()) }.encode(&mut lines);
        if let Ok(m) = Mailbox::new(&s) {
            let from = ReversePath::Mailbox(m);
            let _ = Command::Send { from: &from }.encode(&mut lines);
        }
        if let Ok(v) = Verb::new(&s) { prop_assert!(clean(v.as_str())); }
        if let Ok(a) = Argument::new(&s) {
            prop_assert!(clean(a.as_str()));
            let verb = Verb::new("XARG").unwrap();
            Command::Extension { verb: &verb, args: &[a] }.encode(&mut lines).unwrap();
        }
        for line in lines.split_inclusive(|&b| b == b'\n') {
            prop_assert!(line.ends_with(b"\r\n"));
            prop_assert!(!line[..line.len() - 2].iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
        }
    }

    #[test]
    fn extension_commands_that_validate_encode_to_one_bounded_line(
        verb in "[A-Za-z\r\n\0 é1-][A-Za-z0-9\r\n\0 é:-]{0,40}",
        args in prop::collection::vec("[!-~é\r\n\0 \t]{0,140}", 0..8),
    ) {
        let Ok(verb) = Verb::new(&verb) else { return Ok(()) };
        let args: Vec<Argument> = args.iter().filter_map(|a| Argument::new(a).ok()).collect();
        let mut out = b"kept".to_vec();
        match (Command::Extension { verb: &verb, args: &args }).encode(&mut out) {
            Ok(()) => {
                let line = &out[4..];
                prop_assert!(line.len() <= MAX_COMMAND_LINE);
                prop_assert!(line.ends_with(b"\r\n"));
                let body = &line[..line.len() - 2];
                prop_assert!(!body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
                // The words are the verb and the arguments, in order, one space apart.
                let words: Vec<&[u8]> = body.split(|&b| b == b' ').collect();
                prop_assert_eq!(words.len(), 1 + args.len());
                prop_assert_eq!(words[0], verb.as_str().as_bytes());
                for (word, arg) in words[1..].iter().zip(&args) {
                    prop_assert_eq!(*word, arg.as_str().as_bytes());
                }
            }
            Err(CommandError::TooLong { len, limit, .. }) => {
                prop_assert_eq!(limit, MAX_COMMAND_LINE);
                prop_assert!(len > MAX_COMMAND_LINE);
                prop_assert_eq!(len, verb.as_str().len() + args.iter().map(|a| 1 + a.as_str().len()).sum::<usize>() + 2);
                prop_assert_eq!(&out, b"kept");
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn verbs_and_arguments_refuse_every_line_break(
        before in "[A-Za-z]{1,10}",
        bad in prop::sample::select(vec!["\r", "\n", "\0", "\r\n"]),
        after in "[A-Za-z]{0,10}",
    ) {
        let s = format!("{before}{bad}{after}");
        prop_assert!(Verb::new(&s).is_err());
        prop_assert!(Argument::new(&s).is_err());
    }
}
