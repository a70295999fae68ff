//! Pools of authenticated connections against the demo server: every message delivered
//! exactly once, connections reused up to their message limit, each new one authenticated.

use std::time::Duration;

use sasl_mechs::Credentials;
use smtp_auth::pool::authenticating;
use smtp_auth::AuthOptions;
use smtp_client::pool::{blocking, PoolConfig};
use smtp_client::{ClientConfig, Envelope, MessageState, Timeouts, TlsConfig, TlsMode};
use smtp_demo_server::{DemoConfig, DemoServer};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};

const USER: &str = "alice";
const PASSWORD: &str = "Alice-Secret-1";

fn server() -> DemoServer {
    DemoServer::start(DemoConfig::new().port(0).no_users().user(USER, PASSWORD))
        .expect("demo server")
}

fn pool_config(server: &DemoServer) -> PoolConfig {
    let client = ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::StartTlsRequired)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(10)))
        .tls(TlsConfig::no_default_roots().add_ca_der(server.ca_der()));
    PoolConfig::new(client)
        .max_connections(3)
        .max_messages_per_connection(10)
}

fn messages(n: usize) -> Vec<(Envelope, Vec<u8>)> {
    let from = ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap());
    (0..n)
        .map(|i| {
            let to = ForwardPath::new(&format!("r{i:03}@example.test")).unwrap();
            let body = format!("Subject: pooled {i:03}\r\n\r\nmessage {i:03}\r\n").into_bytes();
            (Envelope::new(from.clone(), [to]), body)
        })
        .collect()
}

/// Each of `n` messages arrived once, authenticated, over TLS, with its own body.
fn each_received_once(server: &DemoServer, n: usize) {
    let received = server.received();
    assert_eq!(received.len(), n);
    let mut bodies: Vec<String> = received
        .iter()
        .inspect(|m| {
            assert_eq!(m.authenticated.as_deref(), Some(USER));
            assert!(m.tls);
        })
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    bodies.sort();
    let expected: Vec<String> = (0..n)
        .map(|i| format!("Subject: pooled {i:03}\r\n\r\nmessage {i:03}\r\n"))
        .collect();
    assert_eq!(bodies, expected);
}

fn credentials() -> Credentials {
    Credentials::new(USER, PASSWORD).unwrap()
}

#[test]
fn blocking_pool_sends_every_message_once_over_reused_authenticated_connections() {
    let server = server();
    let pool = blocking::Pool::with_connector(
        pool_config(&server),
        authenticating(credentials(), AuthOptions::default()),
    );
    let (summary, results) = pool.send_all(messages(50));
    assert_eq!((summary.accepted, summary.total()), (50, 50), "{summary:?}");
    assert!(results
        .iter()
        .enumerate()
        .all(|(i, r)| r.index == i && r.state.is_accepted()));
    // Ten messages per connection: at least five connections, never more than three at
    // once; each used-up one retired with QUIT.
    let stats = pool.stats();
    assert!(stats.opened >= 5, "{stats:?}");
    assert_eq!(stats.dropped, 0);
    // One more message reuses an idle connection: no new one, no NOOP.
    let (env, body) = messages(1).remove(0);
    let opened = pool.stats().opened;
    let report = pool.send(&env, &body[..]).unwrap();
    assert_eq!(report.reply.code().get(), 250);
    assert_eq!(pool.stats().opened, opened);
    assert!(pool.stats().reused >= 1);
    pool.shutdown();
    assert!(matches!(
        pool.send(&env, &body[..]),
        Err(smtp_client::Error::Misuse(smtp_client::Misuse::PoolClosed))
    ));
    // The extra message went to r000 again: 51 in all, r000 twice.
    let received = server.received();
    assert_eq!(received.len(), 51);
    let to_r000 = received
        .iter()
        .filter(|m| m.to == ["r000@example.test"])
        .count();
    assert_eq!(to_r000, 2);
}

#[test]
fn blocking_pool_delivers_each_body_to_its_recipient() {
    let server = server();
    let pool = blocking::Pool::with_connector(
        pool_config(&server),
        authenticating(credentials(), AuthOptions::default()),
    );
    let (summary, _) = pool.send_all(messages(25));
    assert_eq!(summary.accepted, 25);
    pool.shutdown();
    each_received_once(&server, 25);
}

#[test]
fn a_pool_that_cannot_authenticate_reports_every_message_not_sent() {
    let server = server();
    let wrong = Credentials::new(USER, "wrong").unwrap();
    let pool = blocking::Pool::with_connector(
        pool_config(&server),
        authenticating(wrong, AuthOptions::default()),
    );
    let (summary, results) = pool.send_all(messages(4));
    assert_eq!((summary.not_sent, summary.total()), (4, 4), "{summary:?}");
    let MessageState::NotSent(err) = &results[0].state else {
        panic!("{:?}", results[0]);
    };
    assert!(err.to_string().contains("535"), "{err}");
    assert!(server.received().is_empty());
}

#[cfg(feature = "tokio")]
#[test]
fn async_pool_sends_every_message_once_over_reused_authenticated_connections() {
    use smtp_client::pool::tokio::Pool;
    let server = server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = Pool::with_connector(
            pool_config(&server),
            smtp_auth::pool::tokio::authenticating(credentials(), AuthOptions::default()),
        );
        let (summary, results) = pool.send_all(messages(50)).await;
        assert_eq!((summary.accepted, summary.total()), (50, 50), "{summary:?}");
        assert!(results.iter().all(|r| r.state.is_accepted()));
        let stats = pool.stats();
        assert!(stats.opened >= 5 && stats.dropped == 0, "{stats:?}");
        pool.shutdown().await;
    });
    each_received_once(&server, 50);
}

/// `n` messages, each to its own recipient, all lending one shared body.
fn shared_body_messages(
    n: usize,
    body: &std::sync::Arc<[u8]>,
) -> Vec<(Envelope, std::sync::Arc<[u8]>)> {
    let from = ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap());
    (0..n)
        .map(|i| {
            let to = ForwardPath::new(&format!("s{i:03}@example.test")).unwrap();
            (
                Envelope::new(from.clone(), [to]),
                std::sync::Arc::clone(body),
            )
        })
        .collect()
}

/// Every recipient of `n` got `body`, once.
fn each_got_the_shared_body(server: &DemoServer, n: usize, body: &[u8]) {
    let received = server.received();
    assert_eq!(received.len(), n);
    assert!(received.iter().all(|m| m.data == body));
    let mut to: Vec<String> = received.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    let expected: Vec<String> = (0..n).map(|i| format!("s{i:03}@example.test")).collect();
    assert_eq!(to, expected);
}

#[test]
fn blocking_pool_sends_one_shared_body_to_every_recipient() {
    let server = server();
    let pool = blocking::Pool::with_connector(
        pool_config(&server),
        authenticating(credentials(), AuthOptions::default()),
    );
    // A dot line: the shared body is stuffed afresh for each message, never in place.
    let body: std::sync::Arc<[u8]> =
        std::sync::Arc::from(&b"Subject: shared\r\n\r\n.dot line\r\n"[..]);
    let (summary, _) = pool.send_all(shared_body_messages(12, &body));
    assert_eq!(summary.accepted, 12, "{summary:?}");
    pool.shutdown();
    each_got_the_shared_body(&server, 12, &body);
    // Only the messages' references were dropped: the caller's body is whole.
    assert_eq!(std::sync::Arc::strong_count(&body), 1);
}

#[cfg(feature = "tokio")]
#[test]
fn async_pool_sends_one_shared_body_to_every_recipient() {
    use smtp_client::pool::tokio::Pool;
    let server = server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: std::sync::Arc<[u8]> =
        std::sync::Arc::from(&b"Subject: shared\r\n\r\n.dot line\r\n"[..]);
    rt.block_on(async {
        let pool = Pool::with_connector(
            pool_config(&server),
            smtp_auth::pool::tokio::authenticating(credentials(), AuthOptions::default()),
        );
        let (summary, _) = pool.send_all(shared_body_messages(12, &body)).await;
        assert_eq!(summary.accepted, 12, "{summary:?}");
        pool.shutdown().await;
    });
    each_got_the_shared_body(&server, 12, &body);
}
