//! The NTLM server's type-1 and type-3 parsers: any client bytes give a challenge, a
//! failure or a typed error, never a panic, and never success without the password.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sasl_mechs::server::{ServerMechanism, ServerStep};
use sasl_mechs::{NtlmServer, Secret};

/// A type-1 message as a client sends it (Unicode, NTLM).
const TYPE1: &[u8] = b"NTLMSSP\0\x01\0\0\0\x07\x02\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fuzz_target!(|data: &[u8]| {
    let Some((sel, data)) = data.split_first() else { return };
    let lookup = Arc::new(|u: &str| {
        (u.eq_ignore_ascii_case("user")).then(|| Secret::new("a password no fuzzer guesses 7f3a"))
    });
    let mut s = NtlmServer::new(lookup, "DOMAIN").with_fixed_challenge([1, 2, 3, 4, 5, 6, 7, 8], 0);
    // Even selector: a good type 1, then the input as type 3. Odd: the input as type 1,
    // then (if it was accepted) again as type 3.
    let first = if sel % 2 == 0 { TYPE1 } else { data };
    match s.step(Some(first)) {
        Ok(ServerStep::Challenge(c)) => assert!(c.starts_with(b"NTLMSSP\0\x02\0\0\0")),
        Ok(other) => panic!("type 1 answered with {other:?}"),
        Err(_) => return,
    }
    match s.step(Some(data)) {
        Ok(ServerStep::Success(_)) => panic!("success without the password"),
        Ok(ServerStep::Challenge(_)) => panic!("a challenge after type 3"),
        Ok(ServerStep::Failure) | Err(_) => assert!(s.authenticated().is_none()),
    }
});
