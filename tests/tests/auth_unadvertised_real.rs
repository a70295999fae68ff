//! AUTH with a mechanism the server did not advertise, against the real Postfix with
//! Dovecot SASL (which offers no NTLM), on both drivers: without the option nothing is
//! sent; with it the AUTH line reaches the server, which refuses the mechanism itself.

use std::time::Duration;

use interop_tests::{require_servers, Listener, ALICE};
use smtp_auth::{AuthError, AuthOptions};
use smtp_client::{ClientConfig, Timeouts, TlsMode};
use smtp_proto::Domain;
use test_support::auth::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    an_unadvertised_mechanism_goes_out_only_when_asked,
);

fn an_unadvertised_mechanism_goes_out_only_when_asked<C: Driver>() {
    require_servers();
    let addr = Listener::DovecotPlain.addr();
    let config = ClientConfig::new(addr.ip().to_string())
        .port(addr.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)));
    let mut client = C::connect(config).unwrap();
    assert!(!client.auth_types().mechanisms.iter().any(|m| m == "NTLM"));
    let err = client
        .auth_with_options("NTLM", ALICE.login, ALICE.password, &AuthOptions::new())
        .unwrap_err();
    assert!(matches!(err, AuthError::NotOffered { .. }), "{err:?}");
    let options = AuthOptions::new().allow_unadvertised(true);
    let err = client
        .auth_with_options("NTLM", ALICE.login, ALICE.password, &options)
        .unwrap_err();
    // Dovecot behind Postfix: "535 5.7.8 Error: authentication failed: Invalid
    // authentication mechanism".
    let reply = err.reply().expect("the server answered");
    assert_eq!(reply.code().get(), 535, "{reply}");
    assert!(
        reply.text().contains("Invalid authentication mechanism"),
        "{reply}"
    );
    // The connection is still usable: an advertised mechanism succeeds.
    client
        .auth_with_options("CRAM-MD5", ALICE.login, ALICE.password, &AuthOptions::new())
        .unwrap();
    client.quit().unwrap();
}
