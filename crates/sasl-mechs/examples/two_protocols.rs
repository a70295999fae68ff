//! The same mechanism, driven by the same ten-line loop, over SMTP AUTH and IMAP
//! AUTHENTICATE. The servers are scripted with the RFC 2195 CRAM-MD5 example.
//!
//! Run: `cargo run -p sasl-mechs --example two_protocols`

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sasl_mechs::{client_mechanism, ClientOptions, Credentials, Mechanism, SaslError};

/// What differs between protocols: how to start, what a challenge and a success look like.
struct Framing {
    command: fn(&str, Option<String>) -> String,
    challenge: &'static str,
    success: &'static str,
}

const SMTP: Framing = Framing {
    command: |m, ir| {
        format!(
            "AUTH {m}{}",
            ir.map(|r| format!(" {r}")).unwrap_or_default()
        )
    },
    challenge: "334 ",
    success: "235 ",
};

const IMAP: Framing = Framing {
    command: |m, ir| {
        format!(
            "a1 AUTHENTICATE {m}{}",
            ir.map(|r| format!(" {r}")).unwrap_or_default()
        )
    },
    challenge: "+ ",
    success: "a1 OK",
};

/// The driving loop: protocol-neutral, mechanism-neutral.
fn authenticate(
    mech: &mut dyn Mechanism,
    p: &Framing,
    send: &mut dyn FnMut(String) -> String,
) -> Result<(), SaslError> {
    let ir = mech.initial_response()?.map(|r| {
        if r.is_empty() {
            "=".to_owned()
        } else {
            B64.encode(&r[..])
        }
    });
    let mut reply = send((p.command)(mech.name(), ir));
    while let Some(challenge) = reply.strip_prefix(p.challenge) {
        let challenge = B64.decode(challenge).unwrap_or_default();
        reply = send(B64.encode(&mech.respond(&challenge)?[..]));
    }
    match reply.starts_with(p.success) {
        true => mech.finish(None),
        false => Err(SaslError::AuthenticationFailed {
            mechanism: mech.name(),
        }),
    }
}

/// A scripted server: checks each client line, answers with the next reply.
fn scripted(script: &[(&str, &str)]) -> impl FnMut(String) -> String {
    let mut script: VecDeque<(String, String)> = script
        .iter()
        .map(|(c, s)| (c.to_string(), s.to_string()))
        .collect();
    move |line| {
        let (expected, reply) = script
            .pop_front()
            .expect("client sent more than the script");
        assert_eq!(line, expected);
        println!("C: {line}\nS: {reply}");
        reply
    }
}

/// Runs both exchanges and a failing one against scripted servers.
pub fn main() {
    let creds = Credentials::new("tim", "tanstaaftanstaaf").expect("valid credentials");
    let challenge = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
    let response = "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw";

    let mut mech =
        client_mechanism("CRAM-MD5", &creds, &ClientOptions::default()).expect("known mechanism");
    let mut smtp = scripted(&[
        ("AUTH CRAM-MD5", &format!("334 {challenge}")),
        (response, "235 2.7.0 Authentication successful"),
    ]);
    authenticate(mech.as_mut(), &SMTP, &mut smtp).expect("SMTP AUTH succeeds");

    let mut mech =
        client_mechanism("CRAM-MD5", &creds, &ClientOptions::default()).expect("known mechanism");
    let mut imap = scripted(&[
        ("a1 AUTHENTICATE CRAM-MD5", &format!("+ {challenge}")),
        (response, "a1 OK AUTHENTICATE completed"),
    ]);
    authenticate(mech.as_mut(), &IMAP, &mut imap).expect("IMAP AUTHENTICATE succeeds");

    // A failure is reported, not mistaken for success.
    let mut mech =
        client_mechanism("CRAM-MD5", &creds, &ClientOptions::default()).expect("known mechanism");
    let mut smtp = scripted(&[
        ("AUTH CRAM-MD5", &format!("334 {challenge}")),
        (response, "535 5.7.8 Authentication credentials invalid"),
    ]);
    assert!(authenticate(mech.as_mut(), &SMTP, &mut smtp).is_err());
}
