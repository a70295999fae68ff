//! The OAuth error-JSON parser, alone and through OAUTHBEARER / XOAUTH2: never a panic, and
//! the client's answer to any error challenge is the fixed acknowledgement.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sasl_mechs::{Credentials, Mechanism, OAuth, OAuthError, OAuthKind};

fuzz_target!(|data: &[u8]| {
    let _ = OAuthError::parse(data);
    for (kind, ack) in [(OAuthKind::OAuthBearer, &b"\x01"[..]), (OAuthKind::XOAuth2, &b""[..])] {
        let creds = Credentials::with_token("user@example.com", "token").expect("valid credentials");
        let mut m = OAuth::new(kind, &creds, None, None).expect("token given");
        m.initial_response().expect("initial response");
        let r = m.respond(data).expect("error challenge is acknowledged");
        assert_eq!(&r[..], ack);
        assert!(m.failure_detail().is_some());
        assert!(m.finish(None).is_err());
    }
});
