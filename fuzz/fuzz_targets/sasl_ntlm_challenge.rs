//! The NTLM client's type-2 (challenge) parser, through the mechanism: any bytes give a
//! type-3 message or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sasl_mechs::ntlm::ChallengeMessage;
use sasl_mechs::{Credentials, Mechanism, Ntlm, NtlmOptions, NtlmVersion};

fuzz_target!(|data: &[u8]| {
    let _ = ChallengeMessage::parse(data);
    for version in [NtlmVersion::V2, NtlmVersion::V1] {
        let creds = Credentials::new("DOMAIN\\user", "password").expect("valid credentials");
        let opts = NtlmOptions { version, ..NtlmOptions::default() };
        let mut m = Ntlm::new(&creds, &opts).expect("password given");
        m.initial_response().expect("type 1 encodes");
        if let Ok(t3) = m.respond(data) {
            assert!(t3.starts_with(b"NTLMSSP\0\x03\0\0\0"));
        }
    }
});
