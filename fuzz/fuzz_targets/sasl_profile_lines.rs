//! The protocol profiles' server-line parsers (SMTP 334/235, IMAP +/tagged, POP3 +/+OK/-ERR,
//! ManageSieve strings, literals and `OK (SASL ...)`), alone and driving a whole exchange
//! from lines split on LF: a typed result, never a panic, never more than MAX_PROFILE_LINES lines
//! read, and no success for SCRAM without a verified server signature.
#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use sasl_mechs::profile::{authenticate, Profile, MAX_PROFILE_LINES};
use sasl_mechs::{client_mechanism, ClientOptions, Credentials};

fuzz_target!(|data: &[u8]| {
    let Some((sel, data)) = data.split_first() else { return };
    let profiles = [
        Profile::smtp(),
        Profile::imap("a1", true),
        Profile::imap("a1", false),
        Profile::pop3(),
        Profile::managesieve(),
    ];
    let profile = &profiles[usize::from(*sel) % profiles.len()];
    for line in data.split(|b| *b == b'\n') {
        let _ = profile.parse(line);
    }
    let names = ["PLAIN", "CRAM-MD5", "SCRAM-SHA-256", "DIGEST-MD5", "LOGIN"];
    let name = names[usize::from(*sel / 8) % names.len()];
    let creds = Credentials::new("user", "a password no fuzzer guesses 7f3a").unwrap();
    let mut mech = client_mechanism(name, &creds, &ClientOptions::default()).unwrap();
    let mut lines = data.split(|b| *b == b'\n');
    let mut reads = 0;
    let result = authenticate(
        mech.as_mut(),
        profile,
        |_| Ok(()),
        || {
            reads += 1;
            lines.next().map(<[u8]>::to_vec).ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
        },
    );
    assert!(reads <= MAX_PROFILE_LINES + 1);
    if result.is_ok() && name == "SCRAM-SHA-256" {
        panic!("SCRAM succeeded without the server's signature");
    }
});
