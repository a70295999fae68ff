//! What only the async client has: cancellation, and many connections on one thread.
//! Everything else is tested against both clients in `scripted.rs`.
#![cfg(feature = "tokio")]

use std::time::{Duration, Instant};

use smtp_client::tokio::AsyncSmtpClient;
use smtp_client::{ClientConfig, Envelope, Error, Misuse, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_testserver::scripted::{Script, ScriptedServer};

fn config(server: &ScriptedServer) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

const CANCELLED: &str =
    "a previous operation was cancelled mid-command; the connection must be closed";

#[tokio::test]
async fn a_dropped_command_poisons_the_client_and_nothing_more_is_sent() {
    // The server reads NOOP and never answers; then it checks that the client sends
    // nothing else (no second NOOP reading the first one's late reply, no QUIT) and closes.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING"])
            .expect("NOOP")
            .pause(Duration::from_millis(300))
            .send("250 late reply to the first NOOP\r\n")
            .expect_eof(),
    )
    .unwrap();
    let mut client = AsyncSmtpClient::connect(config(&server)).await.unwrap();
    assert!(!client.is_poisoned());
    let dropped = tokio::time::timeout(Duration::from_millis(100), client.noop()).await;
    assert!(dropped.is_err(), "the server never answered: {dropped:?}");
    assert!(client.is_poisoned());
    // Give the late reply time to arrive: it must not be taken as the answer to this NOOP.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = client.noop().await.unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::Cancelled)) && err.to_string() == CANCELLED,
        "{err:?}"
    );
    let err = client.quit().await.unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::Cancelled)) && err.to_string() == CANCELLED,
        "{err:?}"
    );
    // What was learnt before the drop is still readable.
    assert_eq!(client.banner().unwrap().code().get(), 220);
    assert!(client.supports("PIPELINING"));
    drop(client);
    let record = server.finish();
    assert!(record.result.is_ok(), "{:?}", record.result);
    assert_eq!(record.clear_lines(), vec!["EHLO client.test", "NOOP"]);
}

#[tokio::test]
async fn a_dropped_send_poisons_the_client() {
    // The body reader never yields: the send is dropped with MAIL not even written.
    let server =
        ScriptedServer::start(Script::new().greet_ehlo(&["PIPELINING"]).expect_eof()).unwrap();
    let mut client = AsyncSmtpClient::connect(config(&server)).await.unwrap();
    let env = Envelope::new(
        ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap()),
        [ForwardPath::new("bob@example.test").unwrap()],
    );
    let (_writer, never) = tokio::io::duplex(64);
    let dropped = tokio::time::timeout(Duration::from_millis(100), client.send(&env, never)).await;
    assert!(dropped.is_err());
    let err = client.send(&env, &b"hi\r\n"[..]).await.unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::Cancelled)) && err.to_string() == CANCELLED,
        "{err:?}"
    );
    drop(client);
    let record = server.finish();
    assert!(record.result.is_ok(), "{:?}", record.result);
    assert_eq!(record.clear_lines(), vec!["EHLO client.test"]);
}

#[tokio::test]
async fn the_clients_own_timeout_leaves_a_clear_error_not_a_poisoned_client() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[])
            .expect("NOOP")
            .pause(Duration::from_millis(600))
            .close(),
    )
    .unwrap();
    let mut timeouts = Timeouts::uniform(Duration::from_secs(5));
    timeouts.command = Duration::from_millis(200);
    let mut client = AsyncSmtpClient::connect(config(&server).timeouts(timeouts))
        .await
        .unwrap();
    let start = Instant::now();
    let err = client.noop().await.unwrap_err();
    assert!(
        matches!(&err, Error::Timeout { awaiting, .. } if awaiting == "the reply to NOOP"),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_millis(500));
    assert!(!client.is_poisoned());
    let err = client.noop().await.unwrap_err();
    assert!(
        matches!(err, Error::Misuse(Misuse::ConnectionBroken))
            && err.to_string().contains("failed earlier"),
        "{err:?}"
    );
    server.finish();
}

#[tokio::test]
async fn many_connections_wait_concurrently_on_one_thread() {
    // Each server waits 300 ms before its greeting: one after the other, ten connections
    // would take 3 s; on one current-thread runtime they overlap.
    let servers: Vec<ScriptedServer> = (0..10)
        .map(|_| {
            ScriptedServer::start(
                Script::new()
                    .pause(Duration::from_millis(300))
                    .greet_ehlo(&[])
                    .expect("QUIT")
                    .reply("221 bye"),
            )
            .unwrap()
        })
        .collect();
    let start = Instant::now();
    let tasks: Vec<_> = servers
        .iter()
        .map(|s| {
            let config = config(s);
            tokio::spawn(async move {
                let mut client = AsyncSmtpClient::connect(config).await?;
                client.quit().await
            })
        })
        .collect();
    for task in tasks {
        let bye = task.await.unwrap().unwrap().unwrap();
        assert_eq!(bye.code().get(), 221);
    }
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    for s in servers {
        let record = s.finish();
        assert!(record.result.is_ok(), "{:?}", record.result);
    }
}
