//! The channel-binding material both clients expose for SASL's -PLUS mechanisms: the
//! `tls-exporter` value equals the server's own export (RFC 9266), and the server
//! certificate is the one the server sent; neither exists before TLS. Likewise the TLS
//! version and cipher suite negotiated, and when the handshake ended.

use std::time::Duration;

use smtp_client::{ClientConfig, SmtpClient, Timeouts, TlsConfig, TlsMode};
use smtp_proto::Domain;
use smtp_testserver::scripted::{test_cert, Script, ScriptedServer};

fn config(server: &ScriptedServer, mode: TlsMode) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(mode)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .tls(TlsConfig::no_default_roots().add_ca_der(test_cert().ca_der.clone()))
}

fn starttls_script() -> Script {
    Script::new()
        .greet_ehlo(&["STARTTLS"])
        .expect("STARTTLS")
        .reply("220 go ahead")
        .start_tls()
        .expect("EHLO client.test")
        .reply("250 test.invalid")
        .expect("QUIT")
        .reply("221 bye")
}

#[test]
fn blocking_client_exposes_exporter_and_certificate() {
    // Before TLS: nothing.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = SmtpClient::connect(config(&server, TlsMode::None)).unwrap();
    assert_eq!(client.tls_exporter(), None);
    assert_eq!(client.server_certificate(), None);
    client.quit().unwrap();
    server.finish();

    let server = ScriptedServer::start(starttls_script()).unwrap();
    let mut client = SmtpClient::connect(config(&server, TlsMode::StartTlsRequired)).unwrap();
    let exporter = client.tls_exporter().expect("TLS 1.3");
    assert_eq!(exporter.len(), 32);
    assert_eq!(
        client.server_certificate(),
        Some(test_cert().cert_der.as_ref())
    );
    client.quit().unwrap();
    let record = server.finish();
    assert!(record.result.is_ok(), "{:?}", record.result);
    assert_eq!(record.tls_exporter, Some(exporter));
}

#[test]
fn blocking_client_names_the_tls_version_and_cipher_suite() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let before = std::time::Instant::now();
    let mut client = SmtpClient::connect(config(&server, TlsMode::None)).unwrap();
    assert_eq!(client.tls_version(), None);
    assert_eq!(client.tls_cipher_suite(), None);
    assert_eq!(client.tls_established_at(), None);
    assert!(client.connected_at() >= before);
    client.quit().unwrap();
    server.finish();

    let server = ScriptedServer::start(starttls_script()).unwrap();
    let before = std::time::Instant::now();
    let mut client = SmtpClient::connect(config(&server, TlsMode::StartTlsRequired)).unwrap();
    let after = std::time::Instant::now();
    // Both ends are rustls with its defaults: TLS 1.3, one of RFC 8446's suites.
    assert_eq!(client.tls_version(), Some("TLSv1.3"));
    let suite = client.tls_cipher_suite().expect("a cipher suite");
    assert!(
        [
            "TLS13_AES_256_GCM_SHA384",
            "TLS13_AES_128_GCM_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256"
        ]
        .contains(&suite),
        "{suite}"
    );
    let connected = client.connected_at();
    let tls = client.tls_established_at().expect("TLS is up");
    assert!(before <= connected && connected <= tls && tls <= after);
    client.quit().unwrap();
    assert!(server.finish().result.is_ok());
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_client_exposes_exporter_and_certificate() {
    use smtp_client::tokio::AsyncSmtpClient;
    let server = ScriptedServer::start(starttls_script()).unwrap();
    let mut client = AsyncSmtpClient::connect(config(&server, TlsMode::StartTlsRequired))
        .await
        .unwrap();
    let exporter = client.tls_exporter().expect("TLS 1.3");
    assert_eq!(
        client.server_certificate(),
        Some(test_cert().cert_der.as_ref())
    );
    client.quit().await.unwrap();
    let record = tokio::task::spawn_blocking(move || server.finish())
        .await
        .unwrap();
    assert!(record.result.is_ok(), "{:?}", record.result);
    assert_eq!(record.tls_exporter, Some(exporter));
}
