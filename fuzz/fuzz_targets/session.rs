//! The sans-IO session driven by arbitrary calls against a modelled server, stray replies,
//! arbitrary bytes in arbitrary splits, end of stream and time passing: no panic, no
//! internal error, memory bounded by the reply limits, and a message reported sent only
//! when its reply arrived after its end of data. The fuzz twin of the proptest
//! `crates/smtp-client/tests/session_props.rs`; both run `test_support::session_model`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use test_support::session_model;

fuzz_target!(|data: &[u8]| {
    if let Some(case) = session_model::decode(data) {
        let _ = session_model::run(case);
    }
});
