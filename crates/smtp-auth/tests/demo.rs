//! Every mechanism against the demo server, whose AUTH is the server side of `sasl-mechs`:
//! real challenges (random nonces, NTLM type 2, SCRAM's proof as a last 334), right and
//! wrong passwords, a second try on the same connection, and a message sent afterwards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sasl_mechs::Credentials;
use smtp_auth::{AuthError, AuthOptions};
use smtp_client::{ClientConfig, Timeouts, TlsConfig, TlsMode};
use smtp_demo_server::{DemoConfig, DemoServer, MECHANISMS};
use smtp_proto::Domain;

use test_support::auth::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    every_mechanism_right_then_wrong_then_right,
    utf8_and_spaces_in_passwords,
    auth_auto_over_starttls_picks_scram_sha_256_plus,
    the_transcript_never_shows_a_password,
);

const USER: &str = "alice";
const PASSWORD: &str = "Alice-Secret-1";

fn server() -> DemoServer {
    DemoServer::start(
        DemoConfig::new()
            .port(0)
            .no_users()
            .user(USER, PASSWORD)
            .user("bob", "correct horse battery staple")
            .user("carol", "pässwörd-✓"),
    )
    .expect("demo server")
}

fn config(server: &DemoServer, mode: TlsMode) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(mode)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(10)))
        .tls(TlsConfig::no_default_roots().add_ca_der(server.ca_der()))
}

fn allow_plain() -> AuthOptions {
    AuthOptions::new().allow_plaintext_without_tls(true)
}

fn every_mechanism_right_then_wrong_then_right<C: Driver>() {
    let server = server();
    for &mech in MECHANISMS.iter() {
        let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
        let e = client
            .auth_with_options(mech, USER, "wrong password", &allow_plain())
            .unwrap_err();
        match &e {
            AuthError::BadCredentials { reply, .. } => assert_eq!(reply.code().get(), 535),
            other => panic!("{mech} wrong password: {other:?}"),
        }
        let ok = client
            .auth_with_options(mech, USER, PASSWORD, &allow_plain())
            .unwrap_or_else(|e| panic!("{mech} right password after a failure: {e}"));
        assert_eq!(ok.mechanism, mech);
        assert!(client.is_authenticated());
        let again = client
            .auth_with_options(mech, USER, PASSWORD, &allow_plain())
            .unwrap_err();
        assert!(
            matches!(again, AuthError::AlreadyAuthenticated),
            "{again:?}"
        );
        client.quit().unwrap();
    }
    server.stop();
}

fn utf8_and_spaces_in_passwords<C: Driver>() {
    let server = server();
    for (user, password) in [
        ("bob", "correct horse battery staple"),
        ("carol", "pässwörd-✓"),
    ] {
        for mech in ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
            let mut client = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap();
            client
                .auth(mech, user, password)
                .unwrap_or_else(|e| panic!("{mech} {user}: {e}"));
            client.quit().unwrap();
        }
    }
    server.stop();
}

/// Over TLS the demo server offers SCRAM-SHA-*-PLUS, bound to its side of the channel: the
/// automatic choice takes SCRAM-SHA-256-PLUS with the client's `tls-exporter` value, which
/// only matches if both ends see the same TLS session. With channel binding switched off
/// it takes SCRAM-SHA-256 (flag `n`: -PLUS was offered, so no downgrade).
fn auth_auto_over_starttls_picks_scram_sha_256_plus<C: Driver>() {
    let server = server();
    let mut client = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap();
    assert!(client.is_encrypted());
    let offered = client.auth_types().mechanisms;
    assert!(offered.iter().any(|m| m == "PLAIN"));
    assert!(
        offered.iter().any(|m| m == "SCRAM-SHA-256-PLUS"),
        "{offered:?}"
    );
    let creds = Credentials::new(USER, PASSWORD).unwrap();
    let ok = client.auth_auto(&creds, &AuthOptions::default()).unwrap();
    assert_eq!(ok.mechanism, "SCRAM-SHA-256-PLUS");
    client.quit().unwrap();

    let mut client = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap();
    let off = AuthOptions::default().channel_binding(false);
    let ok = client.auth_auto(&creds, &off).unwrap();
    assert_eq!(ok.mechanism, "SCRAM-SHA-256");
    client.quit().unwrap();

    // In clear there is nothing to bind to: no -PLUS offered.
    let mut client = C::connect(config(&server, TlsMode::None)).unwrap();
    let offered = client.auth_types().mechanisms;
    assert!(!offered.iter().any(|m| m.ends_with("-PLUS")), "{offered:?}");
    client.quit().unwrap();
    server.stop();
}

fn the_transcript_never_shows_a_password<C: Driver>() {
    let server = server();
    let seen = Arc::new(Mutex::new(String::new()));
    for &mech in MECHANISMS.iter() {
        for password in [PASSWORD, "wrong-Secret-2"] {
            let sink = Arc::clone(&seen);
            let config = config(&server, TlsMode::None).transcript(move |d, l| {
                let mut s = sink.lock().unwrap();
                s.push_str(&format!("{d} {l}\n"));
            });
            let mut client = C::connect(config).unwrap();
            let result = client.auth_with_options(mech, USER, password, &allow_plain());
            if let Err(e) = &result {
                let text = format!("{e} {e:?}");
                assert!(!text.contains("Secret"), "{mech}: {text}");
            }
            client.quit().unwrap();
        }
    }
    server.stop();
    let seen = seen.lock().unwrap();
    assert!(seen.contains(">>> AUTH PLAIN ****"), "{seen}");
    assert!(seen.contains(">>> AUTH LOGIN"), "{seen}");
    for secret in [PASSWORD, "wrong-Secret-2"] {
        assert!(!seen.contains(secret), "{seen}");
        for text in [
            B64.encode(secret),
            B64.encode(format!("\0{USER}\0{secret}")),
        ] {
            assert!(!seen.contains(&text), "{seen}");
        }
    }
    // Every line the client sent after an AUTH command is masked.
    let mut in_auth = false;
    for line in seen.lines() {
        if let Some(sent) = line.strip_prefix(">>> ") {
            if in_auth && !sent.starts_with("AUTH") {
                assert!(sent == "****" || sent == "*" || sent == "QUIT", "{line}");
            }
            in_auth = sent.starts_with("AUTH") || (in_auth && sent != "QUIT");
        }
    }
}
