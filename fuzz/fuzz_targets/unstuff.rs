//! The DATA decoder on arbitrary wire bytes: never panics, any split gives the same
//! message and end position, and it never outputs more than it read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::{unstuff, UnstuffStatus, Unstuffer};

fuzz_target!(|data: &[u8]| {
    let (cut, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c).min(rest.len()), rest),
        None => return,
    };
    let whole = unstuff(data);
    if let Some((msg, consumed)) = &whole {
        assert!(*consumed <= data.len());
        assert!(msg.len() < *consumed);
    }
    let mut u = Unstuffer::new();
    let mut out = Vec::new();
    let split = match u.feed(&data[..cut], &mut out) {
        UnstuffStatus::Done { consumed } => Some((out, consumed)),
        UnstuffStatus::NeedMore => match u.feed(&data[cut..], &mut out) {
            UnstuffStatus::Done { consumed } => Some((out, cut + consumed)),
            UnstuffStatus::NeedMore => None,
        },
    };
    match (&whole, &split) {
        (Some(a), Some(b)) => assert_eq!(a, b),
        (None, None) => {}
        _ => panic!("split changed the outcome: {whole:?} vs {split:?}"),
    }
});
