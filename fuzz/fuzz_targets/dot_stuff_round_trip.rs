//! DATA transparency on arbitrary messages: unstuff(stuff(x)) == crlf_normalise(x),
//! whatever the chunking, and the wire form ends exactly at its end-of-data line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::{crlf_normalise, unstuff, DotStuffer};

fuzz_target!(|data: &[u8]| {
    let (step, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c).max(1), rest),
        None => return,
    };
    let mut stuffer = DotStuffer::new();
    let mut wire = Vec::new();
    for chunk in data.chunks(step) {
        stuffer.stuff(chunk, &mut wire);
    }
    stuffer.finish(&mut wire);

    let mut whole = Vec::new();
    let mut stuffer = DotStuffer::new();
    stuffer.stuff(data, &mut whole);
    stuffer.finish(&mut whole);
    assert_eq!(wire, whole);

    let (message, consumed) = unstuff(&wire).expect("stuffed data has an end-of-data line");
    assert_eq!(consumed, wire.len());
    assert_eq!(message, crlf_normalise(data));
});
