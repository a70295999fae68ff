//! The address family (Net::SMTP's `Domain`) against the real Postfix, on both drivers:
//! given both loopback addresses as hosts (the resolver here maps `localhost` to 127.0.0.1
//! only), each family skips the other's, though both have a listener on port 12525.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use interop_tests::{require_servers, STATE_DIR};
use smtp_client::{AddressFamily, ClientConfig, Timeouts, TlsMode};
use smtp_proto::Domain;
use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    each_family_reaches_its_own_listener,
);

fn connect<C: Driver>(family: AddressFamily, first: &str, second: &str) -> C {
    let config = ClientConfig::new(first)
        .host(second)
        .port(12525)
        .family(family)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(30)));
    C::connect(config).unwrap()
}

fn each_family_reaches_its_own_listener<C: Driver>() {
    require_servers();
    let mut client = connect::<C>(AddressFamily::Ipv4, "::1", "127.0.0.1");
    assert_eq!(client.peer_addr().ip(), IpAddr::from([127, 0, 0, 1]));
    client.noop().unwrap();
    client.quit().unwrap();
    // `servers up` leaves this marker when the IPv6 loopback works and [::1]:12525 listens.
    if Path::new(STATE_DIR).join("ipv6-up").exists() {
        let mut client = connect::<C>(AddressFamily::Ipv6, "127.0.0.1", "::1");
        assert_eq!(client.peer_addr().ip(), "::1".parse::<IpAddr>().unwrap());
        client.noop().unwrap();
        client.quit().unwrap();
    }
}
