//! The channel-binding parsers: the GS2 header (`gs2-cbind-flag "," [authzid] ","`) and the
//! certificate walk behind `tls-server-end-point`. Arbitrary bytes give a value or a typed
//! error, never a panic; a parsed header encodes back to the bytes it came from; and the
//! SCRAM-PLUS server never grants success for a message that is not a proof.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sasl_mechs::channel_binding::{tls_server_end_point, ChannelBinding, Gs2Header};
use sasl_mechs::server::{server_mechanism_bound, ServerStep};
use sasl_mechs::Secret;

fuzz_target!(|data: &[u8]| {
    if let Ok(cb) = tls_server_end_point(data) {
        assert!(matches!(cb.data().len(), 32 | 48 | 64));
    }
    let lookup = Arc::new(|u: &str| (u == "user").then(|| Secret::new("a password no fuzzer guesses 7f3a")));
    for mech in ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"] {
        let bindings = vec![ChannelBinding::tls_exporter(vec![7; 32])];
        let mut s = server_mechanism_bound(mech, lookup.clone(), bindings).expect("known");
        for msg in data.split(|b| *b == 0xff) {
            match s.step(Some(msg)) {
                Ok(ServerStep::Success(_)) => panic!("success without the password"),
                Ok(ServerStep::Challenge(_)) => continue,
                Ok(ServerStep::Failure) | Err(_) => break,
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok((header, rest)) = Gs2Header::parse(text) {
            assert_eq!(format!("{}{rest}", header.encode()), text);
        }
    }
});
