//! SCRAM with channel binding (RFC 5802 §6, RFC 9266, RFC 5929), client against server:
//! the -PLUS variants, a man in the middle (different binding data), and the `y` flag rule.
#![cfg(feature = "server")]

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sasl_mechs::channel_binding::tls_server_end_point;
use sasl_mechs::server::{server_mechanism, server_mechanism_bound, ServerMechanism, ServerStep};
use sasl_mechs::{
    client_mechanism, select, ChannelBinding, ChannelBindingType, ClientOptions, Credentials,
    Mechanism, Policy, SaslError, Scram, ScramBinding, ScramHash, Secret,
};

const USER: &str = "user";
const PASSWORD: &str = "pencil";

fn lookup() -> sasl_mechs::server::PasswordLookup {
    Arc::new(|u: &str| (u == USER).then(|| Secret::new(PASSWORD)))
}

fn creds() -> Credentials {
    Credentials::new(USER, PASSWORD).unwrap()
}

fn exporter(byte: u8) -> ChannelBinding {
    ChannelBinding::tls_exporter(vec![byte; 32])
}

/// Runs one exchange; Ok(true) on success, Ok(false) on the server's failure.
fn run(client: &mut dyn Mechanism, server: &mut dyn ServerMechanism) -> Result<bool, SaslError> {
    let first = client.initial_response()?;
    let mut step = server.step(first.as_ref().map(|r| &r[..]))?;
    for _ in 0..4 {
        match step {
            ServerStep::Challenge(c) => {
                let r = client.respond(&c)?;
                step = server.step(Some(&r))?;
            }
            ServerStep::Success(data) => {
                client.finish(data.as_deref())?;
                return Ok(true);
            }
            ServerStep::Failure => return Ok(false),
        }
    }
    panic!("exchange did not end");
}

fn options(cb: Option<ChannelBinding>, plus_offered: bool) -> ClientOptions {
    let mut o = ClientOptions::default();
    o.channel_binding = cb;
    o.plus_offered = plus_offered;
    o
}

#[test]
fn plus_binds_with_either_type() {
    let cert = test_certificate();
    let end_point = tls_server_end_point(&cert).unwrap();
    for cb in [exporter(7), end_point] {
        for mech in ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"] {
            let mut client =
                client_mechanism(mech, &creds(), &options(Some(cb.clone()), true)).unwrap();
            assert_eq!(client.name(), mech);
            // The server's channel gives both kinds; the client picks one.
            let bindings = vec![exporter(7), tls_server_end_point(&cert).unwrap()];
            let mut server = server_mechanism_bound(mech, lookup(), bindings).unwrap();
            assert_eq!(server.name(), mech);
            assert!(
                run(client.as_mut(), server.as_mut()).unwrap(),
                "{mech} {cb:?}"
            );
            assert_eq!(server.authenticated().unwrap().authcid, USER);
        }
    }
}

#[test]
fn different_binding_data_fails_the_exchange() {
    // A man in the middle: the client's TLS session is not the server's.
    for mech in ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"] {
        let mut client =
            client_mechanism(mech, &creds(), &options(Some(exporter(1)), true)).unwrap();
        let mut server = server_mechanism_bound(mech, lookup(), vec![exporter(2)]).unwrap();
        assert!(!run(client.as_mut(), server.as_mut()).unwrap(), "{mech}");
        assert!(server.authenticated().is_none());
    }
    // A type the server's channel cannot give fails the same way.
    let mut client = client_mechanism(
        "SCRAM-SHA-256-PLUS",
        &creds(),
        &options(Some(exporter(1)), true),
    )
    .unwrap();
    let end_point = ChannelBinding::new(ChannelBindingType::TlsServerEndPoint, vec![1; 32]);
    let mut server =
        server_mechanism_bound("SCRAM-SHA-256-PLUS", lookup(), vec![end_point]).unwrap();
    assert!(!run(client.as_mut(), server.as_mut()).unwrap());
    // With no binding data at all (server_mechanism), -PLUS always fails.
    let mut client = client_mechanism(
        "SCRAM-SHA-256-PLUS",
        &creds(),
        &options(Some(exporter(1)), true),
    )
    .unwrap();
    let mut server = server_mechanism("SCRAM-SHA-256-PLUS", lookup()).unwrap();
    assert!(!run(client.as_mut(), server.as_mut()).unwrap());
}

/// The client-final `c=` is base64 of the GS2 header followed by the binding data
/// (RFC 5802 §7 `cbind-input`).
#[test]
fn client_final_carries_header_and_data() {
    let cb = exporter(0xab);
    let mut client = Scram::with_nonce(ScramHash::Sha256, &creds(), "rOprNGfwEbeRWgbNEkqO")
        .unwrap()
        .channel_binding(ScramBinding::Bound(cb.clone()));
    let first = client.initial_response().unwrap().unwrap();
    assert_eq!(&first[..], b"p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let r = client
        .respond(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        .unwrap();
    let mut expected = b"p=tls-exporter,,".to_vec();
    expected.extend_from_slice(cb.data());
    let text = std::str::from_utf8(&r).unwrap();
    assert!(
        text.starts_with(&format!("c={},", B64.encode(&expected))),
        "{text}"
    );
    // With an authzid, the header carries it too; y and n have no data.
    let with_z = Credentials::new(USER, PASSWORD)
        .unwrap()
        .with_authzid("admin")
        .unwrap();
    for (binding, header) in [
        (ScramBinding::Bound(cb), "p=tls-exporter,a=admin,"),
        (ScramBinding::ServerDidNotOffer, "y,a=admin,"),
        (ScramBinding::None, "n,a=admin,"),
    ] {
        let mut c = Scram::new(ScramHash::Sha1, &with_z)
            .unwrap()
            .channel_binding(binding);
        let first = c.initial_response().unwrap().unwrap();
        assert!(first.starts_with(header.as_bytes()));
    }
}

/// RFC 5802 §6: `y` (client could bind, saw no -PLUS) fails on a server that supports
/// binding, and succeeds on one that does not; `n` succeeds on both.
#[test]
fn y_flag_downgrade_rule() {
    for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
        // Binding data but no -PLUS offered: the client says y.
        let y = options(Some(exporter(3)), false);
        let mut client = client_mechanism(mech, &creds(), &y).unwrap();
        let first = client.initial_response().unwrap().unwrap();
        assert!(first.starts_with(b"y,,"), "{mech}");

        let mut client = client_mechanism(mech, &creds(), &y).unwrap();
        let mut server = server_mechanism_bound(mech, lookup(), vec![exporter(3)]).unwrap();
        assert!(
            !run(client.as_mut(), server.as_mut()).unwrap(),
            "{mech}: y accepted"
        );

        let mut client = client_mechanism(mech, &creds(), &y).unwrap();
        let mut server = server_mechanism(mech, lookup()).unwrap();
        assert!(run(client.as_mut(), server.as_mut()).unwrap(), "{mech}");

        // -PLUS offered but not used: n, accepted by both servers.
        let n = options(Some(exporter(3)), true);
        let mut client = client_mechanism(mech, &creds(), &n).unwrap();
        assert!(client
            .initial_response()
            .unwrap()
            .unwrap()
            .starts_with(b"n,,"));
        let mut client = client_mechanism(mech, &creds(), &n).unwrap();
        let mut server = server_mechanism_bound(mech, lookup(), vec![exporter(3)]).unwrap();
        assert!(run(client.as_mut(), server.as_mut()).unwrap(), "{mech}");
        let mut client = client_mechanism(mech, &creds(), &ClientOptions::default()).unwrap();
        let mut server = server_mechanism_bound(mech, lookup(), vec![exporter(3)]).unwrap();
        assert!(run(client.as_mut(), server.as_mut()).unwrap(), "{mech}");
    }
}

/// A server that reports `e=server-does-support-channel-binding` to a client that said `y`
/// has had its -PLUS names removed on the way: a typed error, not a plain server error.
#[test]
fn client_reports_the_downgrade() {
    let mut c = Scram::with_nonce(ScramHash::Sha256, &creds(), "abc")
        .unwrap()
        .channel_binding(ScramBinding::ServerDidNotOffer);
    c.initial_response().unwrap();
    c.respond(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
    assert_eq!(
        c.finish(Some(b"e=server-does-support-channel-binding")),
        Err(SaslError::ChannelBindingDowngrade {
            mechanism: "SCRAM-SHA-256"
        })
    );
    // Said n: the same e= is just the server's error.
    let mut c = Scram::with_nonce(ScramHash::Sha256, &creds(), "abc").unwrap();
    c.initial_response().unwrap();
    c.respond(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
    assert!(matches!(
        c.finish(Some(b"e=server-does-support-channel-binding")),
        Err(SaslError::ServerError { .. })
    ));
}

#[test]
fn server_refuses_mismatched_flags() {
    // -PLUS without p=, and p= with plain SCRAM: malformed.
    let mut s = server_mechanism_bound("SCRAM-SHA-256-PLUS", lookup(), vec![exporter(1)]).unwrap();
    assert!(matches!(
        s.step(Some(b"n,,n=user,r=abc")),
        Err(SaslError::MalformedResponse { .. })
    ));
    let mut s = server_mechanism_bound("SCRAM-SHA-256", lookup(), vec![exporter(1)]).unwrap();
    assert!(matches!(
        s.step(Some(b"p=tls-exporter,,n=user,r=abc")),
        Err(SaslError::MalformedResponse { .. })
    ));
}

#[test]
fn selection_prefers_plus_only_with_binding_data() {
    let offered = [
        "SCRAM-SHA-256",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1-PLUS",
        "PLAIN",
    ];
    let with = Policy::new(true).channel_binding(true);
    assert_eq!(
        select(&offered, &creds(), &with).unwrap(),
        "SCRAM-SHA-256-PLUS"
    );
    assert_eq!(
        select(&offered, &creds(), &Policy::new(true)).unwrap(),
        "SCRAM-SHA-256"
    );
    // -PLUS-1 beats plain SHA-256: binding to the channel outweighs the hash.
    let offered = ["SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"];
    assert_eq!(
        select(&offered, &creds(), &with).unwrap(),
        "SCRAM-SHA-1-PLUS"
    );
    // Not allowed by the caller: not chosen.
    let only_plain_scram = with.clone().allow(&["SCRAM-SHA-256"]);
    assert_eq!(
        select(&offered, &creds(), &only_plain_scram).unwrap(),
        "SCRAM-SHA-256"
    );
    // Without binding data a -PLUS mechanism cannot be built.
    assert!(matches!(
        client_mechanism("SCRAM-SHA-256-PLUS", &creds(), &ClientOptions::default()),
        Err(SaslError::MissingCredential { .. })
    ));
}

/// A real DER certificate (ECDSA P-256 with SHA-256, made with `openssl req -x509`), so
/// that this crate needs no certificate generator.
fn test_certificate() -> Vec<u8> {
    B64.decode(ECDSA_SHA256_CERT).unwrap()
}

/// RFC 5929 §4.1 against `openssl x509 -fingerprint`: the hash of the certificate with its
/// signature's hash (SHA-256 for ecdsa-with-SHA256, SHA-384 for sha384WithRSAEncryption).
#[test]
fn end_point_hash_matches_openssl_fingerprints() {
    for (cert, fingerprint) in [
        (ECDSA_SHA256_CERT, ECDSA_SHA256_FINGERPRINT),
        (RSA_SHA384_CERT, RSA_SHA384_FINGERPRINT),
    ] {
        let cb = tls_server_end_point(&B64.decode(cert).unwrap()).unwrap();
        let hex: Vec<String> = cb.data().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex.join(":"), fingerprint);
    }
}

const ECDSA_SHA256_CERT: &str = "MIIBfTCCASOgAwIBAgIUAoxQnjM/A1yPtPSBek1rosS1PP0wCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJbG9jYWxob3N0MB4XDTI2MTEzMDE2MTUxMVoXDTM2MTEyNzE2MTUxMVowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3ddZcSpoYBPQngSB+1tyljM3m24CoXE7wjBm/HvfqQBJHYyerucRtHJXkBvATj6/JITvU5VyB4MwLU6DQPPSyKNTMFEwHQYDVR0OBBYEFEjY0+isIPHpre3iWO3fXq6/VYdYMB8GA1UdIwQYMBaAFEjY0+isIPHpre3iWO3fXq6/VYdYMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAPAR7zgjEKWVupmZeaGiPVtIceN3wwy5OUNrvb360B7pAiBDbXgJft5gt9jjnYsM/1KXnGlAEuib2lvJoy7Ph2gR1w==";
const ECDSA_SHA256_FINGERPRINT: &str = "03:C4:C0:B5:41:E2:7D:5E:01:FC:B9:CF:E7:49:4A:7D:B7:90:01:3C:FD:8F:B3:46:08:49:8B:43:DE:0F:2C:C9";
const RSA_SHA384_CERT: &str = "MIIDCTCCAfGgAwIBAgIUK+ciCO6XCf26x4U8swDV5po/uBswDQYJKoZIhvcNAQEMBQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MB4XDTI2MTEzMDE2MTUxMVoXDTM2MTEyNzE2MTUxMVowFDESMBAGA1UEAwwJbG9jYWxob3N0MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAm2u8D81Rx5te9dpNf79MVlMmA5wUE69seHFm6++bc4SAbpJdrUPjNTTLUje4Sde8P8AyaQkstbFEbQmGl1IefRU3iLWxBcoVHT9I/x3RFSzFAkwsWZDYcSZcp10W0tDPw3Rm9HTenwoK65ZUfwqV+Cyhb+qS05Z7ZrX3gPHBftXVflb0m6QmQ9/fLnRYn6qWMy9htC4mHc7dhsr/l8825ji289JIQJXfaMK1orFmNJUY3wPJw9n/YN2erao0rfsU8kZDPQSzFG7vng2Gp5Ti5syuYJj+9BQ7UpdGUdxoh2UrFYbK7AscGPKctBO7Ne93ECOuK809zsGoC4hd4sjVlQIDAQABo1MwUTAdBgNVHQ4EFgQU4ahQCxmNA5oFUd447rTL5voaYWMwHwYDVR0jBBgwFoAU4ahQCxmNA5oFUd447rTL5voaYWMwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQwFAAOCAQEAXoEIgLLeBBWlHiDgSD3aDWUj+g+JQS5n5/LFjdgXMUI+sC5r2yzvZU+xt6niEGKpPgguqZI/2BMhGqJk/Ua9c2rdZVmd1UGkgN0Pl3nYDb/c+iSal0Xl1IzFHuDhDTpFjljVSzi5gTls5fTEqZaXG5/4HOVU84KqUJkVHJJGDllDM9ZypKq6mfjUsBi1wVHE8yMtJBTeMhHZ/m+1EBP9O/rDjoeGMn2rEVnHiMhxhI6RUDoOD6CMj0Gzc/P71Co0B/fn+O+fQeY47CkI5+Ub3yogIymxfWO/E3qQAoc7lPmQCk2shQTO94OOFCinJaZHJVqp1fA2jeWQoT29BddTbA==";
const RSA_SHA384_FINGERPRINT: &str = "3D:57:EF:08:DD:12:CA:19:07:6C:41:EF:9B:28:18:94:ED:CC:62:B9:C6:53:17:51:11:84:44:1C:C5:37:C0:6B:30:3B:50:13:33:AE:68:BC:DD:1E:D6:FB:02:1B:EC:86";
