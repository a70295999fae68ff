//! Deadlines hold over TLS too: a server that sends the bytes of one TLS record (or of its
//! handshake flight) slowly cannot keep the client waiting past the deadline, even though
//! every single socket read returns a byte in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::ServerConnection;
use smtp_client::{ClientConfig, Error, SmtpClient, Timeouts, TlsConfig, TlsMode};
use smtp_proto::Domain;
use smtp_testserver::scripted::test_cert;

/// How long the server goes on dripping at most (the client must give up long before).
const DRIP_FOR: Duration = Duration::from_secs(4);

#[derive(Clone, Copy)]
enum Drip {
    /// Drip the server's handshake flight.
    Handshake,
    /// Finish the handshake, then drip one TLS record holding the greeting.
    Greeting,
}

fn drip_server(what: Drip) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut conn = ServerConnection::new(test_cert().server_config().unwrap()).unwrap();
        let mut wire = Vec::new();
        match what {
            Drip::Handshake => {
                while !conn.wants_write() {
                    if conn.read_tls(&mut tcp).unwrap() == 0 {
                        return;
                    }
                    conn.process_new_packets().unwrap();
                }
            }
            Drip::Greeting => {
                while conn.is_handshaking() {
                    if conn.complete_io(&mut tcp).is_err() {
                        return;
                    }
                }
                conn.writer()
                    .write_all(b"220 a greeting sent one byte at a time\r\n")
                    .unwrap();
            }
        }
        while conn.wants_write() {
            conn.write_tls(&mut wire).unwrap();
        }
        let start = Instant::now();
        for b in wire {
            if start.elapsed() > DRIP_FOR || tcp.write_all(&[b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = tcp.shutdown(std::net::Shutdown::Both);
        let _ = tcp.read(&mut [0; 16]);
    });
    (addr, handle)
}

fn config(addr: SocketAddr) -> ClientConfig {
    let mut timeouts = Timeouts::uniform(Duration::from_secs(5));
    timeouts.greeting = Duration::from_millis(500);
    ClientConfig::new("127.0.0.1")
        .port(addr.port())
        .tls_mode(TlsMode::Implicit)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(timeouts)
        .tls(TlsConfig::no_default_roots().add_ca_der(test_cert().ca_der.clone()))
}

fn check(err: &Error, elapsed: Duration, awaiting_what: &str) {
    assert!(
        matches!(err, Error::Timeout { awaiting, .. } if awaiting == awaiting_what),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_millis(2000), "{elapsed:?}");
}

#[test]
fn a_dripped_handshake_does_not_extend_the_deadline() {
    let (addr, server) = drip_server(Drip::Handshake);
    let start = Instant::now();
    let err = SmtpClient::connect(config(addr)).unwrap_err();
    check(&err, start.elapsed(), "the TLS handshake");
    server.join().unwrap();
}

#[test]
fn a_dripped_tls_record_does_not_extend_the_deadline() {
    let (addr, server) = drip_server(Drip::Greeting);
    let start = Instant::now();
    let err = SmtpClient::connect(config(addr)).unwrap_err();
    check(&err, start.elapsed(), "the greeting");
    server.join().unwrap();
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_a_dripped_handshake_does_not_extend_the_deadline() {
    let (addr, server) = drip_server(Drip::Handshake);
    let start = Instant::now();
    let err = smtp_client::tokio::AsyncSmtpClient::connect(config(addr))
        .await
        .unwrap_err();
    check(&err, start.elapsed(), "the TLS handshake");
    server.join().unwrap();
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_a_dripped_tls_record_does_not_extend_the_deadline() {
    let (addr, server) = drip_server(Drip::Greeting);
    let start = Instant::now();
    let err = smtp_client::tokio::AsyncSmtpClient::connect(config(addr))
        .await
        .unwrap_err();
    check(&err, start.elapsed(), "the greeting");
    server.join().unwrap();
}
