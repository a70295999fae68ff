//! Exact accounting under faults: 10,000 messages through the blocking pool to the real
//! Postfix (`cargo xtask servers up`), every connection passing through a seeded proxy that
//! cuts, stalls or resets some of them at random bytes. Afterwards the Maildir must hold
//! every accepted message exactly once and no message reported not sent; unknown ones
//! (end of data sent, no reply) may hold zero or one copy. No message is in two states
//! (one result per message) and nothing panics or hangs.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use interop_tests::maildir_new;
use smtp_client::pool::{blocking::Pool, PoolConfig};
use smtp_client::{ClientConfig, Envelope, MessageState, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use test_support::fault_proxy::{FaultPlan, FaultProxy};

const MESSAGES: usize = 10_000;

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn ten_thousand_messages_through_faults_each_in_exactly_one_state() {
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let token = format!("faults-{}-{run}", std::process::id());
    let plan = FaultPlan {
        seed: 20261130,
        cut: 0.15,
        stall: 0.05,
        reset: 0.15,
        // Longer than the client's timeouts, so a stall ends in the client's deadline.
        stall_for: Duration::from_secs(3),
        // A connection carries up to 40 messages of about 300 octets each way.
        max_bytes: 16_000,
    };
    let proxy = FaultProxy::start("127.0.0.1:12525".parse().unwrap(), plan).unwrap();
    let client = ClientConfig::new("127.0.0.1")
        .port(proxy.addr().port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(1)));
    let pool = Pool::new(
        PoolConfig::new(client)
            .max_connections(8)
            .max_messages_per_connection(40)
            .retries(5),
    );
    let from = ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap());
    let messages: Vec<(Envelope, Vec<u8>)> = (0..MESSAGES)
        .map(|i| {
            let to = ForwardPath::new(&format!("f{}@example.test", i % 97)).unwrap();
            let body = format!(
                "Message-ID: <{token}.{i}@client.example.test>\r\n\
                 Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: {i}\r\n\r\nbody {i}\r\n"
            );
            (Envelope::new(from.clone(), [to]), body.into_bytes())
        })
        .collect();
    let started = Instant::now();
    let (summary, results) = pool.send_all(messages);
    let took = started.elapsed();
    pool.shutdown();
    let stats = proxy.stop();
    assert_eq!(results.len(), MESSAGES);
    assert_eq!(summary.total(), MESSAGES);
    assert_eq!(summary.refused, 0, "{summary:?}");
    // The faults did happen.
    assert!(stats.cut + stats.reset + stats.stalled > 10, "{stats:?}");

    // Read back what Postfix delivered, by Message-ID.
    let accepted: Vec<usize> = results
        .iter()
        .filter(|r| r.state.is_accepted())
        .map(|r| r.index)
        .collect();
    let copies = wait_for_copies(&token, accepted.len());
    for r in &results {
        let n = copies.get(&r.index).copied().unwrap_or(0);
        match &r.state {
            MessageState::Accepted(_) => {
                assert_eq!(n, 1, "accepted message {} stored {n} times", r.index)
            }
            MessageState::NotSent(_) => {
                assert_eq!(n, 0, "message {} reported not sent was stored", r.index)
            }
            MessageState::Unknown(_) => {
                assert!(n <= 1, "unknown message {} stored {n} times", r.index)
            }
            MessageState::Refused(e) => panic!("message {} refused: {e}", r.index),
        }
    }
    let unknown_delivered = results
        .iter()
        .filter(|r| matches!(r.state, MessageState::Unknown(_)) && copies.contains_key(&r.index))
        .count();
    eprintln!(
        "{MESSAGES} messages in {took:?}: accepted {}, not sent {}, unknown {} ({unknown_delivered} \
         of them delivered); proxy {stats:?}; pool {:?}",
        summary.accepted,
        summary.not_sent,
        summary.unknown,
        pool.stats()
    );
}

/// How many stored copies each message has, once at least `accepted` are in (or after 120 s).
fn wait_for_copies(token: &str, accepted: usize) -> HashMap<usize, usize> {
    let dir = maildir_new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let prefix = format!("<{token}.");
    let mut seen: HashMap<std::ffi::OsString, usize> = HashMap::new();
    loop {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name();
            if seen.contains_key(&name) {
                continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            if let Some(at) = text.find(&prefix) {
                let rest = &text[at + prefix.len()..];
                if let Some(index) = rest.split('@').next().and_then(|n| n.parse().ok()) {
                    seen.insert(name, index);
                }
            }
        }
        if seen.len() >= accepted || Instant::now() > deadline {
            // Let late deliveries (unknown ones) land, then count.
            std::thread::sleep(Duration::from_secs(2));
            let mut copies = HashMap::new();
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let Ok(bytes) = std::fs::read(entry.path()) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&bytes);
                if let Some(at) = text.find(&prefix) {
                    let rest = &text[at + prefix.len()..];
                    if let Some(index) =
                        rest.split('@').next().and_then(|n| n.parse::<usize>().ok())
                    {
                        *copies.entry(index).or_insert(0) += 1;
                    }
                }
            }
            return copies;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
