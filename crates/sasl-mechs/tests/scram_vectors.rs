//! SCRAM against the RFC 5802 section 5 and RFC 7677 section 3 example exchanges.

use sasl_mechs::{Credentials, Mechanism, SaslError, Scram, ScramHash};

struct Vector {
    hash: ScramHash,
    client_nonce: &'static str,
    client_first: &'static str,
    server_first: &'static str,
    client_final: &'static str,
    server_final: &'static str,
}

const RFC5802: Vector = Vector {
    hash: ScramHash::Sha1,
    client_nonce: "fyko+d2lbbFgONRv9qkxdawL",
    client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    client_final:
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

const RFC7677: Vector = Vector {
    hash: ScramHash::Sha256,
    client_nonce: "rOprNGfwEbeRWgbNEkqO",
    client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

fn client(v: &Vector) -> Scram {
    let creds = Credentials::new("user", "pencil").unwrap();
    Scram::with_nonce(v.hash, &creds, v.client_nonce).unwrap()
}

fn to_client_final(v: &Vector) -> Scram {
    let mut c = client(v);
    assert_eq!(
        &c.initial_response().unwrap().unwrap()[..],
        v.client_first.as_bytes()
    );
    assert_eq!(
        &c.respond(v.server_first.as_bytes()).unwrap()[..],
        v.client_final.as_bytes()
    );
    c
}

#[test]
fn vectors_server_final_as_challenge() {
    for v in [&RFC5802, &RFC7677] {
        let mut c = to_client_final(v);
        assert_eq!(&c.respond(v.server_final.as_bytes()).unwrap()[..], b"");
        c.finish(None).unwrap();
    }
}

#[test]
fn vectors_server_final_with_success() {
    for v in [&RFC5802, &RFC7677] {
        let mut c = to_client_final(v);
        c.finish(Some(v.server_final.as_bytes())).unwrap();
    }
}

#[test]
fn wrong_server_signature_is_a_failure() {
    for v in [&RFC5802, &RFC7677] {
        // Flip one character of the signature.
        let mut bad = v.server_final.to_owned().into_bytes();
        let i = bad.len() - 3;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let mut c = to_client_final(v);
        assert!(matches!(
            c.respond(&bad),
            Err(SaslError::ServerNotAuthenticated { .. })
        ));
        let mut c = to_client_final(v);
        assert!(matches!(
            c.finish(Some(&bad)),
            Err(SaslError::ServerNotAuthenticated { .. })
        ));
    }
}

#[test]
fn success_without_signature_is_a_failure() {
    for v in [&RFC5802, &RFC7677] {
        let mut c = to_client_final(v);
        assert!(matches!(
            c.finish(None),
            Err(SaslError::ServerNotAuthenticated { .. })
        ));
    }
}

#[test]
fn server_error_and_extra_rounds() {
    let mut c = to_client_final(&RFC5802);
    assert_eq!(
        c.respond(b"e=invalid-proof"),
        Err(SaslError::ServerError {
            mechanism: "SCRAM-SHA-1",
            message: "invalid-proof".into()
        })
    );
    let mut c = to_client_final(&RFC5802);
    c.respond(RFC5802.server_final.as_bytes()).unwrap();
    assert!(matches!(
        c.respond(b""),
        Err(SaslError::UnexpectedChallenge { .. })
    ));
}

#[test]
fn hostile_server_first_messages() {
    let n = RFC5802.client_nonce;
    for bad in [
        String::new(),
        "garbage".into(),
        format!("m=ext,r={n}x,s=QSXCR+Q6sek8bf92,i=4096"),
        format!("r={n},s=QSXCR+Q6sek8bf92,i=4096"), // no server part
        "r=other,s=QSXCR+Q6sek8bf92,i=4096".into(),
        format!("r={n}x,s=***,i=4096"),
        format!("r={n}x,s=,i=4096"),
        format!("r={n}x,s=QSXCR+Q6sek8bf92,i=0"),
        format!("r={n}x,s=QSXCR+Q6sek8bf92,i=-1"),
        format!("r={n}x,s=QSXCR+Q6sek8bf92,i=4294967295"),
        format!("r={n}x,s=QSXCR+Q6sek8bf92,i=99999999999999999999"),
        format!("r={n}x,i=4096,s=QSXCR+Q6sek8bf92"),
    ] {
        let mut c = client(&RFC5802);
        c.initial_response().unwrap();
        assert!(
            matches!(
                c.respond(bad.as_bytes()),
                Err(SaslError::MalformedChallenge { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn authzid_and_escaped_names() {
    let creds = Credentials::new("a=b,c", "pencil")
        .unwrap()
        .with_authzid("z,=")
        .unwrap();
    let mut c = Scram::with_nonce(ScramHash::Sha256, &creds, "abc").unwrap();
    assert_eq!(
        &c.initial_response().unwrap().unwrap()[..],
        b"n,a=z=2C=3D,n=a=3Db=2Cc,r=abc"
    );
}

#[cfg(feature = "server")]
mod server {
    use super::*;
    use base64::Engine as _;
    use sasl_mechs::server::{ServerMechanism, ServerStep};
    use sasl_mechs::{ScramServer, Secret};
    use std::sync::Arc;

    /// The server side alone, fed the RFC's client messages with its nonce and salt fixed.
    #[test]
    fn server_against_vectors() {
        for v in [&RFC5802, &RFC7677] {
            let first: Vec<&str> = v.server_first.split(',').collect();
            let full_nonce = &first[0][2..];
            let server_part = &full_nonce[v.client_nonce.len()..];
            let salt = base64::engine::general_purpose::STANDARD
                .decode(&first[1][2..])
                .unwrap();
            let lookup = Arc::new(|u: &str| (u == "user").then(|| Secret::new("pencil")));
            let mut s = ScramServer::new(v.hash, lookup).with_fixed(server_part, &salt, 4096);
            assert_eq!(
                s.step(Some(v.client_first.as_bytes())).unwrap(),
                ServerStep::Challenge(v.server_first.as_bytes().to_vec())
            );
            assert_eq!(
                s.step(Some(v.client_final.as_bytes())).unwrap(),
                ServerStep::Success(Some(v.server_final.as_bytes().to_vec()))
            );
            assert_eq!(s.authenticated().unwrap().authcid, "user");

            // Wrong password: same messages, failure.
            let lookup = Arc::new(|_: &str| Some(Secret::new("pencil2")));
            let mut s = ScramServer::new(v.hash, lookup).with_fixed(server_part, &salt, 4096);
            s.step(Some(v.client_first.as_bytes())).unwrap();
            assert_eq!(
                s.step(Some(v.client_final.as_bytes())).unwrap(),
                ServerStep::Failure
            );
        }
    }
}
