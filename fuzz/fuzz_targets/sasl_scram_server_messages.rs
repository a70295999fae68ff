//! The SCRAM client's parsers for server-first and server-final messages: arbitrary bytes
//! give a response or a typed error, never a panic, and success is never granted without
//! the right signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sasl_mechs::{Credentials, Mechanism, SaslError, Scram, ScramHash};

fuzz_target!(|data: &[u8]| {
    // First byte chooses where the data goes; iteration counts are capped low so a
    // hostile i= cannot slow the fuzzer.
    let Some((sel, data)) = data.split_first() else { return };
    let creds = Credentials::new("user", "pencil").expect("valid credentials");
    let hash = if sel & 1 == 0 { ScramHash::Sha1 } else { ScramHash::Sha256 };
    let mut m = Scram::with_nonce(hash, &creds, "fyko+d2lbbFgONRv9qkxdawL")
        .expect("valid nonce")
        .max_iterations(64);
    m.initial_response().expect("client-first");
    if sel & 2 == 0 {
        let _ = m.respond(data);
    } else {
        let server_first = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=16";
        m.respond(server_first).expect("valid server-first");
        let r = if sel & 4 == 0 { m.respond(data).map(|_| ()) } else { m.finish(Some(data)) };
        if let Err(e) = r {
            assert!(!matches!(e, SaslError::OutOfOrder { .. }), "{e:?}");
        }
    }
});
