//! The reply parser on arbitrary bytes: never panics, any split gives the same outcome,
//! the borrowing parser agrees, and every reply it returns re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::{parse_reply, Reply, ReplyLimits, ReplyParser, Status};

/// Small limits so the fuzzer reaches them.
const LIMITS: ReplyLimits = ReplyLimits {
    max_line_len: 64,
    max_lines: 8,
};

fn drain(chunks: &[&[u8]]) -> (Vec<Reply>, Option<smtp_proto::ReplyError>) {
    let mut p = ReplyParser::with_limits(LIMITS);
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c);
        loop {
            match p.next_reply() {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where to cut the rest.
    let (cut, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c), rest),
        None => return,
    };
    let whole = drain(&[data]);
    let cut = cut.min(data.len());
    let split = drain(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole, split);

    match (parse_reply(data, &LIMITS), whole.0.first(), &whole.1) {
        (Ok(Status::Complete(n)), Some(r), _) => assert_eq!(r.raw(), &data[..n]),
        (Ok(Status::Partial), None, None) => {}
        (Err(a), None, Some(b)) => assert_eq!(&a, b),
        (a, r, e) => panic!("parse_reply {a:?} vs parser {r:?} / {e:?}"),
    }

    for r in &whole.0 {
        let mut wire = Vec::new();
        r.encode(&mut wire);
        let mut p = ReplyParser::with_limits(LIMITS);
        p.feed(&wire);
        let back = p
            .next_reply()
            .expect("re-encoded reply parses")
            .expect("complete");
        assert_eq!(back.code(), r.code());
        assert!(back.lines().eq(r.lines()));
        let _ = (r.text(), r.to_string(), r.enhanced());
    }
});
