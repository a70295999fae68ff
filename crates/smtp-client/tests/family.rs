//! The address family (Net::SMTP's `Domain`) against a scripted server, on both drivers.

use std::io;
use std::time::Duration;

use smtp_client::{AddressFamily, ClientConfig, Error, Timeouts, TlsMode};
use smtp_proto::Domain;
use smtp_testserver::scripted::{Script, ScriptedServer};

use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    ipv4_only_connects_to_the_ipv4_address,
    ipv6_only_skips_an_ipv4_host_without_connecting,
);

fn config(host: &str, port: u16, family: AddressFamily) -> ClientConfig {
    ClientConfig::new(host)
        .port(port)
        .family(family)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn ipv4_only_connects_to_the_ipv4_address<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    // An IPv6 host first: skipped, never connected to.
    let config = config("::1", server.port(), AddressFamily::Ipv4).host("127.0.0.1");
    let mut client = C::connect(config).unwrap();
    assert_eq!(client.peer_addr(), server.addr());
    client.quit().unwrap();
    assert!(server.finish().result.is_ok());
}

fn ipv6_only_skips_an_ipv4_host_without_connecting<C: Driver>() {
    let err = C::connect(config("127.0.0.1", 9, AddressFamily::Ipv6)).unwrap_err();
    let Error::Connect { attempts } = &err else {
        panic!("expected Connect, got {err:?}");
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].error.kind(), io::ErrorKind::Unsupported);
    assert_eq!(attempts[0].address, Some("127.0.0.1:9".parse().unwrap()));
}
