//! The local address and port a connection is made from ([`ClientConfig::local_addr`],
//! [`ClientConfig::local_port`], Net::SMTP's `LocalAddr` and `LocalPort`), checked by the
//! peer address the demo server records, on both drivers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use smtp_client::{ClientConfig, Error, Timeouts, TlsMode};
use smtp_demo_server::{DemoConfig, DemoServer};
use smtp_proto::Domain;
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    the_server_sees_the_local_address_given,
    the_server_sees_the_local_port_given,
    a_local_address_of_the_other_family_is_refused,
);

fn config(port: u16) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(port)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(10)))
}

fn server() -> DemoServer {
    DemoServer::start(DemoConfig::new().port(0)).unwrap()
}

fn the_server_sees_the_local_address_given<C: Driver>() {
    let server = server();
    // All of 127.0.0.0/8 is loopback: 127.0.0.2 reaches a listener on 127.0.0.1.
    let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut client = C::connect(config(server.port()).local_addr(local)).unwrap();
    client.noop().unwrap();
    client.quit().unwrap();
    let sessions = server.wait_for_sessions_to_end(Duration::from_secs(5));
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].peer.ip(), local);
}

fn the_server_sees_the_local_port_given<C: Driver>() {
    let server = server();
    // A port free right now: bound, read, released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut client = C::connect(config(server.port()).local_port(port)).unwrap();
    client.quit().unwrap();
    let sessions = server.wait_for_sessions_to_end(Duration::from_secs(5));
    assert_eq!(
        sessions[0].peer,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    );
}

fn a_local_address_of_the_other_family_is_refused<C: Driver>() {
    let server = server();
    let err = C::connect(config(server.port()).local_addr("::1".parse().unwrap())).unwrap_err();
    let Error::Connect { attempts } = &err else {
        panic!("expected Connect, got {err:?}");
    };
    assert_eq!(attempts[0].error.kind(), io::ErrorKind::InvalidInput);
    assert!(server.sessions().is_empty(), "nothing reached the server");
}
