//! The server-side parsers (PLAIN, LOGIN, CRAM-MD5, SCRAM client messages): arbitrary client
//! bytes give a step or a typed error, never a panic, and never success for a wrong secret.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sasl_mechs::server::{server_mechanism, ServerStep};
use sasl_mechs::Secret;

fuzz_target!(|data: &[u8]| {
    let Some((sel, data)) = data.split_first() else { return };
    let names = ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"];
    let name = names[usize::from(*sel) % names.len()];
    let lookup = Arc::new(|u: &str| (u == "user").then(|| Secret::new("a password no fuzzer guesses 7f3a")));
    let mut s = server_mechanism(name, lookup).expect("known mechanism");
    // Feed the input as successive client messages split on 0xff.
    let mut first = true;
    for msg in data.split(|b| *b == 0xff) {
        let r = if first && name == "CRAM-MD5" { s.step(None) } else { s.step(Some(msg)) };
        first = false;
        match r {
            Ok(ServerStep::Success(_)) => panic!("success without the password"),
            Ok(ServerStep::Challenge(_)) => continue,
            Ok(ServerStep::Failure) | Err(_) => break,
        }
    }
});
