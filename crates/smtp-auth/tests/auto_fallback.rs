//! `auth_auto` moving to the next mechanism when the server refuses the mechanism itself
//! (504, 534, 538, 454) and stopping at 535, each attempt reported, on both drivers.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sasl_mechs::Credentials;
use smtp_auth::{AuthError, AuthOptions};
use smtp_client::{ClientConfig, Timeouts, TlsMode};
use smtp_proto::Domain;
use smtp_testserver::scripted::{Record, Script, ScriptedServer};

use test_support::auth::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    each_refused_mechanism_moves_on_to_the_next,
    a_535_ends_the_attempts,
    a_single_attempt_keeps_its_own_error,
    every_mechanism_refused_reports_each,
);

const OFFERED: &str = "AUTH SCRAM-SHA-256 CRAM-MD5 PLAIN";

fn connect<C: Driver>(server: &ScriptedServer) -> C {
    let config = ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)));
    C::connect(config).expect("connect")
}

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "script failed: {:?}", record.result);
    record
}

fn credentials() -> Credentials {
    Credentials::new("tim", "tanstaaftanstaaf").unwrap()
}

fn options() -> AuthOptions {
    AuthOptions::new().allow_plaintext_without_tls(true)
}

fn plain_line() -> String {
    // RFC 4616: authzid empty, authcid, password, NUL separated.
    format!("AUTH PLAIN {}", B64.encode(b"\0tim\0tanstaaftanstaaf"))
}

fn each_refused_mechanism_moves_on_to_the_next<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[OFFERED])
            .expect_prefix("AUTH SCRAM-SHA-256 ")
            .reply("504 5.5.4 Unrecognized authentication type")
            .expect("AUTH CRAM-MD5")
            .reply("534 5.7.9 Authentication mechanism is too weak")
            .expect(&plain_line())
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = connect::<C>(&server);
    let success = client.auth_auto(&credentials(), &options()).unwrap();
    assert_eq!(success.mechanism, "PLAIN");
    let tried: Vec<(&str, u16)> = success
        .failed_attempts
        .iter()
        .map(|a| (a.mechanism, a.error.reply().unwrap().code().get()))
        .collect();
    assert_eq!(tried, [("SCRAM-SHA-256", 504), ("CRAM-MD5", 534)]);
    assert!(matches!(
        success.failed_attempts[1].error,
        AuthError::TooWeak { .. }
    ));
    client.quit().unwrap();
    finish_ok(server);
}

fn a_535_ends_the_attempts<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[OFFERED])
            .expect_prefix("AUTH SCRAM-SHA-256 ")
            .reply("454 4.7.0 Temporary authentication failure")
            .expect("AUTH CRAM-MD5")
            .reply("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
            .expect_prefix("dGlt")
            .reply("535 5.7.8 Authentication credentials invalid")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = connect::<C>(&server);
    let err = client.auth_auto(&credentials(), &options()).unwrap_err();
    let AuthError::AllAttemptsFailed { attempts } = &err else {
        panic!("expected AllAttemptsFailed, got {err:?}");
    };
    assert_eq!(attempts.len(), 2);
    assert!(matches!(attempts[0].error, AuthError::Temporary { .. }));
    assert!(matches!(
        attempts[1].error,
        AuthError::BadCredentials { .. }
    ));
    assert_eq!(err.reply().unwrap().code().get(), 535);
    // PLAIN was never tried: the credentials are wrong for every mechanism.
    client.quit().unwrap();
    let record = finish_ok(server);
    assert!(!record.sent_in_clear("AUTH PLAIN"));
}

fn a_single_attempt_keeps_its_own_error<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH CRAM-MD5"])
            .expect("AUTH CRAM-MD5")
            .reply("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
            .expect_prefix("dGlt")
            .reply("535 5.7.8 Authentication credentials invalid")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = connect::<C>(&server);
    let err = client.auth_auto(&credentials(), &options()).unwrap_err();
    assert!(matches!(err, AuthError::BadCredentials { .. }), "{err:?}");
    client.quit().unwrap();
    finish_ok(server);
}

fn every_mechanism_refused_reports_each<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[OFFERED])
            .expect_prefix("AUTH SCRAM-SHA-256 ")
            .reply("538 5.7.11 Encryption required for requested authentication mechanism")
            .expect("AUTH CRAM-MD5")
            .reply("504 5.5.4 Unrecognized authentication type")
            .expect(&plain_line())
            .reply("504 5.5.4 Unrecognized authentication type")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = connect::<C>(&server);
    let err = client.auth_auto(&credentials(), &options()).unwrap_err();
    let AuthError::AllAttemptsFailed { attempts } = &err else {
        panic!("expected AllAttemptsFailed, got {err:?}");
    };
    let tried: Vec<&str> = attempts.iter().map(|a| a.mechanism).collect();
    assert_eq!(tried, ["SCRAM-SHA-256", "CRAM-MD5", "PLAIN"]);
    assert!(err.to_string().contains("SCRAM-SHA-256: "), "{err}");
    client.quit().unwrap();
    finish_ok(server);
}
