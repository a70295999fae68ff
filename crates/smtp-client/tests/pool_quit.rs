//! A pool closing its connections to a server that never answers QUIT: each waits at most
//! the pool's `quit_timeout`, all at once, never the client's command timeout one after
//! the other (which would be minutes per connection with the defaults).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_client::pool::PoolConfig;
use smtp_client::{ClientConfig, Envelope, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};

/// Connections the pool opens: `send_all` gives each of its workers one.
const CONNECTIONS: usize = 4;
/// Long enough that waiting for it once per connection would fail the test by far.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Closing one after the other would take `CONNECTIONS * QUIT_TIMEOUT` (8 s); all at once,
/// one `QUIT_TIMEOUT`. The bound sits between, with room for a slow machine.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(6);

/// A server that accepts mail and never answers QUIT (it keeps the connection open until
/// the client closes it). Its greeting comes after a pause, so that every worker of
/// `send_all` asks for a connection before the first one is ready.
struct SilentQuitServer {
    port: u16,
    quits: Arc<AtomicUsize>,
}

impl SilentQuitServer {
    fn start() -> SilentQuitServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let quits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&quits);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || serve(conn, &seen));
            }
        });
        SilentQuitServer { port, quits }
    }
}

fn serve(conn: TcpStream, quits: &AtomicUsize) {
    let mut out = conn.try_clone().unwrap();
    let mut lines = BufReader::new(conn);
    std::thread::sleep(Duration::from_millis(300));
    let _ = out.write_all(b"220 silent.test ESMTP\r\n");
    let mut line = String::new();
    let mut in_data = false;
    loop {
        line.clear();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = if in_data {
            if line != ".\r\n" {
                continue;
            }
            in_data = false;
            b"250 2.0.0 queued\r\n"
        } else {
            match verb.as_str() {
                "EHLO" => b"250-silent.test\r\n250 PIPELINING\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go on\r\n"
                }
                "QUIT" => {
                    quits.fetch_add(1, Ordering::SeqCst);
                    // No reply: hold the connection until the client drops it.
                    continue;
                }
                _ => b"250 2.0.0 ok\r\n",
            }
        };
        if out.write_all(reply).is_err() {
            return;
        }
    }
}

fn pool_config(port: u16) -> PoolConfig {
    let client = ClientConfig::new("127.0.0.1")
        .port(port)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(COMMAND_TIMEOUT));
    PoolConfig::new(client)
        .max_connections(CONNECTIONS)
        .quit_timeout(QUIT_TIMEOUT)
}

fn messages(n: usize) -> Vec<(Envelope, &'static [u8])> {
    let from = ReversePath::Mailbox(Mailbox::new("a@example.test").unwrap());
    let to = ForwardPath::new("b@example.test").unwrap();
    (0..n)
        .map(|_| {
            let body: &'static [u8] = b"Subject: hi\r\n\r\nhi\r\n";
            (Envelope::new(from.clone(), [to.clone()]), body)
        })
        .collect()
}

#[test]
fn blocking_pool_shutdown_waits_one_quit_timeout_for_a_silent_server() {
    let server = SilentQuitServer::start();
    let pool = smtp_client::pool::blocking::Pool::new(pool_config(server.port));
    let (summary, _) = pool.send_all(messages(2 * CONNECTIONS));
    assert_eq!(summary.accepted, 2 * CONNECTIONS, "{summary:?}");
    assert_eq!(pool.stats().idle, CONNECTIONS, "{:?}", pool.stats());
    let started = Instant::now();
    pool.shutdown();
    let took = started.elapsed();
    assert!(took >= QUIT_TIMEOUT, "QUIT was not waited for: {took:?}");
    assert!(took < SHUTDOWN_BOUND, "shutdown took {took:?}");
    assert_eq!(server.quits.load(Ordering::SeqCst), CONNECTIONS);
    assert_eq!(pool.stats().retired, CONNECTIONS);
}

#[cfg(feature = "tokio")]
#[test]
fn async_pool_shutdown_waits_one_quit_timeout_for_a_silent_server() {
    let server = SilentQuitServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = smtp_client::pool::tokio::Pool::new(pool_config(server.port));
        let (summary, _) = pool.send_all(messages(2 * CONNECTIONS)).await;
        assert_eq!(summary.accepted, 2 * CONNECTIONS, "{summary:?}");
        assert_eq!(pool.stats().idle, CONNECTIONS, "{:?}", pool.stats());
        let started = Instant::now();
        pool.shutdown().await;
        let took = started.elapsed();
        assert!(took >= QUIT_TIMEOUT, "QUIT was not waited for: {took:?}");
        assert!(took < SHUTDOWN_BOUND, "shutdown took {took:?}");
        assert_eq!(pool.stats().retired, CONNECTIONS);
    });
    assert_eq!(server.quits.load(Ordering::SeqCst), CONNECTIONS);
}
