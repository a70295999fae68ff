//! Channel binding against the real servers (`cargo xtask servers up`): over TLS the client
//! has binding data (`tls-exporter` on TLS 1.3, `tls-server-end-point`), none of the
//! servers offers a -PLUS mechanism, so SCRAM says `y` (RFC 5802 §6), and Dovecot 2.3 and
//! Cyrus SASL 2.1.28 behind Postfix, which do not support channel binding, must accept it.

use std::time::Duration;

use interop_tests::{ca_pem_path, require_servers, Listener, TlsMode as ListenerTls, ALICE};
use sasl_mechs::channel_binding::tls_server_end_point;
use sasl_mechs::{client_mechanism, ChannelBindingType, ClientOptions, Credentials};
use smtp_auth::{AuthError, AuthOptions, SmtpAuth};
use smtp_client::{ClientConfig, SmtpClient, Timeouts, TlsConfig, TlsMode};
use smtp_proto::Domain;

const TLS_LISTENERS: [Listener; 4] = [
    Listener::DovecotStartTls,
    Listener::DovecotImplicitTls,
    Listener::CyrusStartTls,
    Listener::CyrusImplicitTls,
];

fn connect(listener: Listener) -> SmtpClient {
    let mode = match listener.tls() {
        ListenerTls::Implicit => TlsMode::Implicit,
        _ => TlsMode::StartTlsRequired,
    };
    let config = ClientConfig::new(listener.ip().to_string())
        .port(listener.port())
        .tls_mode(mode)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)))
        .tls(
            TlsConfig::no_default_roots()
                .add_ca_pem_file(ca_pem_path())
                .unwrap(),
        );
    SmtpClient::connect(config).unwrap()
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn scram_says_y_over_tls_and_real_servers_accept_it() {
    require_servers();
    for listener in TLS_LISTENERS {
        let name = listener.name();
        let mut client = connect(listener);
        let offered = client.auth_types().mechanisms;
        assert!(
            !offered.iter().any(|m| m.ends_with("-PLUS")),
            "{name} offers -PLUS now: {offered:?}"
        );
        let exporter = client
            .tls_exporter()
            .expect("TLS 1.3 with Postfix/OpenSSL 3");
        assert_eq!(exporter.len(), 32);
        let cert = client.server_certificate().expect("a server certificate");
        let end_point = tls_server_end_point(cert).unwrap();
        assert_eq!(end_point.kind(), ChannelBindingType::TlsServerEndPoint);

        for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
            for (cb, password, ok) in [
                (end_point.clone(), "wrong password", false),
                (
                    sasl_mechs::ChannelBinding::tls_exporter(exporter.clone()),
                    ALICE.password,
                    true,
                ),
            ] {
                let mut options = ClientOptions::default();
                options.host = Some(interop_tests::SERVER_HOSTNAME.to_owned());
                options.channel_binding = Some(cb);
                options.plus_offered = false;
                let creds = Credentials::new(ALICE.login, password).unwrap();
                let m = client_mechanism(mech, &creds, &options).unwrap();
                let result = client.auth_with(m, &AuthOptions::default());
                match (ok, result) {
                    (true, Ok(s)) => assert_eq!(s.mechanism, mech),
                    (false, Err(AuthError::BadCredentials { .. })) => {}
                    (_, other) => panic!("{name} {mech} ok={ok}: {other:?}"),
                }
            }
            client.quit().unwrap();
            client = connect(listener);
        }
        // The automatic choice over TLS: SCRAM-SHA-256 with y, accepted.
        let creds = Credentials::new(ALICE.login, ALICE.password).unwrap();
        let success = client.auth_auto(&creds, &AuthOptions::default()).unwrap();
        assert_eq!(success.mechanism, "SCRAM-SHA-256", "{name}");
        client.quit().unwrap();
    }
}
