//! TLS client authentication ([`TlsConfig::client_cert`]) against the demo server asking for
//! client certificates, on both drivers: a certificate its client CA issued is verified and
//! names the user (the server then offers AUTH EXTERNAL); no certificate, no EXTERNAL; one
//! from another CA fails the handshake; and the PEM loader refuses what it cannot use.

use std::path::PathBuf;
use std::time::Duration;

use smtp_client::{ClientConfig, Error, Timeouts, TlsConfig, TlsMode};
use smtp_demo_server::{DemoConfig, DemoServer};
use smtp_proto::Domain;
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    an_issued_certificate_is_verified_and_names_the_user,
    without_a_certificate_the_server_offers_no_external,
    a_certificate_from_another_ca_fails_the_handshake,
);

fn server() -> DemoServer {
    DemoServer::start(DemoConfig::new().port(0).client_certificates(true)).unwrap()
}

fn config(server: &DemoServer, tls: TlsConfig) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::StartTlsRequired)
        .tls(tls.add_ca_der(server.ca_der()).server_name("localhost"))
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(10)))
}

fn offers_external<C: Driver>(client: &C) -> bool {
    client
        .capabilities()
        .unwrap()
        .auth_mechanisms()
        .iter()
        .any(|m| m == "EXTERNAL")
}

fn an_issued_certificate_is_verified_and_names_the_user<C: Driver>() {
    let server = server();
    let issued = server.issue_client_certificate("certuser").unwrap();
    let tls =
        TlsConfig::no_default_roots().client_cert(vec![issued.cert_der.clone()], issued.key());
    assert!(tls.has_client_cert());
    let mut client = C::connect(config(&server, tls)).unwrap();
    assert!(client.is_encrypted());
    assert!(offers_external(&client));
    client.quit().unwrap();
    let sessions = server.wait_for_sessions_to_end(Duration::from_secs(5));
    assert_eq!(sessions[0].client_certificate.as_deref(), Some("certuser"));
}

fn without_a_certificate_the_server_offers_no_external<C: Driver>() {
    let server = server();
    let mut client = C::connect(config(&server, TlsConfig::no_default_roots())).unwrap();
    assert!(client.is_encrypted());
    assert!(!offers_external(&client));
    client.quit().unwrap();
    let sessions = server.wait_for_sessions_to_end(Duration::from_secs(5));
    assert_eq!(sessions[0].client_certificate, None);
}

fn a_certificate_from_another_ca_fails_the_handshake<C: Driver>() {
    let server = server();
    // Issued by the server CA, which the server does not trust for clients.
    let other = smtp_demo_server::cert::demo_cert();
    let tls = TlsConfig::no_default_roots().client_cert(vec![other.cert_der.clone()], other.key());
    let err = C::connect(config(&server, tls)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(_) | Error::ConnectionClosed { .. } | Error::Io { .. }
        ),
        "{err:?}"
    );
    assert!(server.received().is_empty());
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("smtp-client-cert-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn pem_files_load_and_a_key_that_is_not_the_certificates_is_refused() {
    let ca = smtp_demo_server::cert::client_ca();
    let alice = ca.issue("alice").unwrap();
    let bob = ca.issue("bob").unwrap();
    let cert = TempFile::new("alice.pem", &alice.cert_pem);
    let key = TempFile::new("alice.key", alice.key_pem());
    let wrong_key = TempFile::new("bob.key", bob.key_pem());
    let tls = TlsConfig::webpki_roots()
        .client_cert_pem_files(&cert.0, &key.0)
        .unwrap();
    assert!(tls.has_client_cert());
    tls.build().unwrap();
    // The key must never show in Debug output.
    let debug = format!("{tls:?}");
    assert!(debug.contains("client_cert: Some(1)"), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");

    let tls = TlsConfig::webpki_roots()
        .client_cert_pem_files(&cert.0, &wrong_key.0)
        .unwrap();
    let err = tls.build().unwrap_err().to_string();
    assert!(err.contains("client certificate"), "{err}");

    // A key file without a key, a certificate file without a certificate, no file at all.
    let err = TlsConfig::webpki_roots()
        .client_cert_pem_files(&cert.0, &cert.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no usable private key"), "{err}");
    let err = TlsConfig::webpki_roots()
        .client_cert_pem_files(&key.0, &key.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no certificate"), "{err}");
    assert!(TlsConfig::webpki_roots()
        .client_cert_pem_files("/nonexistent/cert.pem", &key.0)
        .is_err());
}
