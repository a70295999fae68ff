//! The server-side parsers (PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5, SCRAM, NTLM, OAUTHBEARER,
//! XOAUTH2, EXTERNAL client messages): arbitrary client bytes give a step or a typed error,
//! never a panic, and never success for a wrong secret. (ANONYMOUS accepts anyone, so it
//! is not here; its bounds are unit-tested. GSSAPI has no server side in the crate.)
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sasl_mechs::server::{server_mechanism, ServerStep};
use sasl_mechs::{MechanismName, Secret};

fuzz_target!(|data: &[u8]| {
    let Some((sel, data)) = data.split_first() else { return };
    let names: Vec<MechanismName> = MechanismName::ALL_KNOWN
        .into_iter()
        .filter(|m| !matches!(m, MechanismName::Anonymous | MechanismName::Gssapi))
        .collect();
    let name = names[usize::from(*sel) % names.len()];
    let lookup = Arc::new(|u: &str| (u == "user").then(|| Secret::new("a password no fuzzer guesses 7f3a")));
    let mut s = server_mechanism(name, lookup).expect("known mechanism");
    // Feed the input as successive client messages split on 0xff.
    let mut first = true;
    for msg in data.split(|b| *b == 0xff) {
        let server_first = matches!(name, MechanismName::CramMd5 | MechanismName::DigestMd5);
        let r = if first && server_first { s.step(None) } else { s.step(Some(msg)) };
        first = false;
        match r {
            Ok(ServerStep::Success(_)) => panic!("success without the password"),
            Ok(ServerStep::Challenge(_)) => continue,
            Ok(ServerStep::Failure) | Err(_) => break,
        }
    }
});
