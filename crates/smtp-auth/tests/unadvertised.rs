//! AUTH with a mechanism the server did not advertise, on explicit request
//! (`AuthOptions::allow_unadvertised`, as Net::SMTP_auth sends it without looking), on
//! both drivers.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use smtp_auth::{AuthError, AuthOptions};
use smtp_client::{ClientConfig, Timeouts, TlsMode};
use smtp_proto::Domain;
use smtp_testserver::scripted::{Record, Script, ScriptedServer};

use test_support::auth::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    an_unadvertised_login_is_sent_when_asked_for,
    without_the_option_nothing_is_sent,
);

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

fn an_unadvertised_login_is_sent_when_asked_for<C: Driver>() {
    // RFC 4954's LOGIN is not in the AUTH line; the server takes it all the same.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH CRAM-MD5"])
            .expect("AUTH LOGIN")
            .reply(&format!("334 {}", B64.encode("Username:")))
            .expect(&B64.encode("tim"))
            .reply(&format!("334 {}", B64.encode("Password:")))
            .expect(&B64.encode("tanstaaftanstaaf"))
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = connect::<C>(&server);
    let options = AuthOptions::new()
        .allow_plaintext_without_tls(true)
        .allow_unadvertised(true);
    let success = client
        .auth_with_options("LOGIN", "tim", "tanstaaftanstaaf", &options)
        .unwrap();
    assert_eq!(success.mechanism, "LOGIN");
    client.quit().unwrap();
    finish_ok(server);
}

fn without_the_option_nothing_is_sent<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH CRAM-MD5"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = connect::<C>(&server);
    let options = AuthOptions::new().allow_plaintext_without_tls(true);
    let err = client
        .auth_with_options("LOGIN", "tim", "tanstaaftanstaaf", &options)
        .unwrap_err();
    assert!(matches!(err, AuthError::NotOffered { .. }), "{err:?}");
    client.quit().unwrap();
    finish_ok(server);
}
