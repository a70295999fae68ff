//! The DIGEST-MD5 challenge parser, through the client: any server bytes give a response or
//! a typed error, never a panic; a second message never passes as rspauth (the fuzzer does
//! not know the password); a response only for a challenge that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sasl_mechs::{Credentials, DigestChallenge, DigestMd5, Mechanism};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0xff);
    let first = parts.next().unwrap_or_default();
    let second = parts.next();
    let parsed = DigestChallenge::parse(first);
    let creds = Credentials::new("user\u{e9}", "a password no fuzzer guesses 7f3a")
        .expect("valid credentials")
        .with_authzid("admin")
        .expect("valid authzid");
    let mut m = DigestMd5::new(&creds, "smtp", "localhost", None).expect("password given");
    match m.respond(first) {
        Ok(r) => {
            let c = parsed.expect("the client answered a challenge that does not parse");
            assert!(!c.nonce.is_empty() && r.starts_with(if c.utf8 { b"charset=utf-8," } else { b"username=\"" }));
            if let Some(second) = second {
                assert!(m.respond(second).is_err(), "rspauth accepted without the password");
            }
        }
        Err(_) => assert!(m.finish(None).is_err()),
    }
});
