//! Many connections from one process: the async client on one tokio runtime against the
//! blocking client on one thread per connection. Run by `cargo xtask bench concurrency`
//! against Postfix's `smtp-sink`; prints one `result key=value...` line.
//!
//! ```text
//! cargo run --release -p smtp-client --features tokio --example concurrency -- \
//!     --port 12026 --driver async --connections 50 --messages 200 --size 1024
//! ```
//!
//! Drivers: `blocking` (one thread per connection), `async` (multi-thread runtime, one
//! worker per core), `async-1` (current-thread runtime: every connection on one thread),
//! `pool-1` (the async pool on a current-thread runtime: `send_all` of every message over
//! `--connections` connections of `--messages` messages each, one batch per connection),
//! `floor-1` (no SMTP client at all: the pool's exact bytes, made once before the run and
//! replayed on a current-thread runtime, one write and one read per message, replies only
//! counted: the least CPU a client pipelining one round trip per message can spend, to
//! tell the client's cost from the server's and the kernel's).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_client::{ClientConfig, Envelope, Error, SmtpClient, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};

struct Args {
    port: u16,
    driver: String,
    connections: usize,
    messages: usize,
    size: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 12026,
        driver: "async".to_owned(),
        connections: 50,
        messages: 200,
        size: 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--port" => args.port = value.parse().map_err(|e| format!("--port: {e}"))?,
            "--driver" => args.driver = value.clone(),
            "--connections" => args.connections = number()?,
            "--messages" => args.messages = number()?,
            "--size" => args.size = number()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn config(port: u16) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(port)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("bench.example.test").expect("a valid domain"))
        .timeouts(Timeouts::uniform(Duration::from_secs(60)))
}

fn envelope() -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::new("sender@example.test").expect("a valid mailbox")),
        [ForwardPath::new("sink@example.test").expect("a valid path")],
    )
}

/// A message of exactly `size` bytes: headers, then 64-byte lines.
fn message(size: usize) -> Vec<u8> {
    let mut m =
        b"From: sender@example.test\r\nTo: sink@example.test\r\nSubject: bench\r\n\r\n".to_vec();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    while m.len() + 2 < size {
        m.push(b'x');
    }
    m.extend_from_slice(b"\r\n");
    m
}

/// A `Threads:` or `VmHWM:` figure of this process.
fn proc_status(key: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn blocking(args: &Args, body: Arc<Vec<u8>>) -> Result<usize, Error> {
    let handles: Vec<_> = (0..args.connections)
        .map(|_| {
            let body = body.clone();
            let (port, messages) = (args.port, args.messages);
            std::thread::spawn(move || -> Result<usize, Error> {
                let mut client = SmtpClient::connect(config(port))?;
                let env = envelope();
                for _ in 0..messages {
                    client.send(&env, &body[..])?;
                }
                client.quit()?;
                Ok(messages)
            })
        })
        .collect();
    let mut sent = 0;
    for h in handles {
        sent += h
            .join()
            .map_err(|_| Error::Internal("a thread panicked"))??;
    }
    Ok(sent)
}

#[cfg(feature = "tokio")]
fn run_async(args: &Args, body: Arc<Vec<u8>>, one_thread: bool) -> Result<usize, Error> {
    use smtp_client::tokio::AsyncSmtpClient;
    let rt = if one_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()
    .map_err(|source| Error::Io {
        op: "starting the runtime".to_owned(),
        source,
    })?;
    rt.block_on(async {
        let tasks: Vec<_> = (0..args.connections)
            .map(|_| {
                let body = body.clone();
                let (port, messages) = (args.port, args.messages);
                tokio::spawn(async move {
                    let mut client = AsyncSmtpClient::connect(config(port)).await?;
                    let env = envelope();
                    for _ in 0..messages {
                        client.send(&env, &body[..]).await?;
                    }
                    client.quit().await?;
                    Ok::<usize, Error>(messages)
                })
            })
            .collect();
        messages_sent(tasks).await
    })
}

/// The messages sent by every task, once all have ended; the first failure otherwise.
#[cfg(feature = "tokio")]
async fn messages_sent(
    tasks: Vec<tokio::task::JoinHandle<Result<usize, Error>>>,
) -> Result<usize, Error> {
    let mut sent = 0;
    for t in tasks {
        sent += t.await.map_err(|_| Error::Internal("a task panicked"))??;
    }
    Ok(sent)
}

#[cfg(feature = "tokio")]
fn run_pool(args: &Args, body: Arc<Vec<u8>>) -> Result<usize, Error> {
    use smtp_client::pool::{tokio::Pool, PoolConfig};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            op: "starting the runtime".to_owned(),
            source,
        })?;
    rt.block_on(async {
        let pool = Pool::new(
            PoolConfig::new(config(args.port))
                .max_connections(args.connections)
                .max_messages_per_connection(args.messages),
        );
        let env = envelope();
        // One body for every message, as the other drivers send it: `send_all` lends
        // each message's body to its connection, so a shared body is never copied.
        let body: Arc<[u8]> = Arc::from(body.as_slice());
        let messages: Vec<_> = (0..args.connections * args.messages)
            .map(|_| (env.clone(), Arc::clone(&body)))
            .collect();
        let (summary, _) = pool.send_all(messages).await;
        pool.shutdown().await;
        Ok(summary.accepted)
    })
}

/// The wire floor: per connection, the greeting, EHLO, then for each message one write
/// (the previous message's body and final dot with this one's MAIL, RCPT and DATA, as the
/// pool writes them) and reads until the replies it owes have all come.
#[cfg(feature = "tokio")]
fn run_floor(args: &Args, body: &[u8]) -> Result<usize, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = |op: &str| {
        let op = op.to_owned();
        move |source| Error::Io { op, source }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    let envelope: &[u8] =
        b"MAIL FROM:<sender@example.test>\r\nRCPT TO:<sink@example.test>\r\nDATA\r\n";
    if body.starts_with(b".") || body.windows(2).any(|w| w == b"\n.") || !body.ends_with(b"\r\n") {
        return Err(Error::Unsupported("the floor sends the body unstuffed"));
    }
    // Every write but the last: body, end of data, the next message's envelope.
    let mut middle = body.to_vec();
    middle.extend_from_slice(b".\r\n");
    middle.extend_from_slice(envelope);
    let mut last = body.to_vec();
    last.extend_from_slice(b".\r\nQUIT\r\n");
    let (middle, last) = (Arc::new(middle), Arc::new(last));
    let (port, messages) = (args.port, args.messages);
    rt.block_on(async move {
        let tasks: Vec<_> = (0..args.connections)
            .map(|_| {
                let (middle, last) = (Arc::clone(&middle), Arc::clone(&last));
                tokio::spawn(async move {
                    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .map_err(io("connecting"))?;
                    conn.set_nodelay(true).map_err(io("setting TCP_NODELAY"))?;
                    let mut replies = ReplyCounter::default();
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut owed = 1; // the greeting
                    for (i, write) in std::iter::once(&b"EHLO bench.example.test\r\n"[..])
                        .chain(std::iter::once(envelope))
                        .chain((1..messages).map(|_| &middle[..]))
                        .chain(std::iter::once(&last[..]))
                        .enumerate()
                    {
                        while owed > 0 {
                            let n = conn.read(&mut buf).await.map_err(io("reading"))?;
                            if n == 0 {
                                return Err(Error::Io {
                                    op: "reading".to_owned(),
                                    source: std::io::ErrorKind::UnexpectedEof.into(),
                                });
                            }
                            owed -= replies.count(&buf[..n]).min(owed);
                        }
                        conn.write_all(write).await.map_err(io("writing"))?;
                        // EHLO: one reply; the first envelope: three; then four (250 to the
                        // end of data, 250, 250, 354); the last: the end of data and QUIT.
                        owed = match i {
                            0 => 1,
                            1 => 3,
                            _ if i == messages + 1 => 2,
                            _ => 4,
                        };
                    }
                    while owed > 0 {
                        let n = conn.read(&mut buf).await.map_err(io("reading"))?;
                        if n == 0 {
                            break;
                        }
                        owed -= replies.count(&buf[..n]).min(owed);
                    }
                    Ok::<usize, Error>(messages)
                })
            })
            .collect();
        messages_sent(tasks).await
    })
}

/// Counts complete replies in a byte stream: lines whose fourth octet is a space end one.
#[derive(Default)]
struct ReplyCounter {
    /// Octets of the current line seen so far (only the first four matter).
    line: usize,
    last_reply_line: bool,
}

impl ReplyCounter {
    fn count(&mut self, bytes: &[u8]) -> usize {
        let mut ended = 0;
        for &b in bytes {
            if self.line == 3 {
                self.last_reply_line = b == b' ';
            }
            if b == b'\n' {
                ended += usize::from(self.last_reply_line);
                self.line = 0;
                self.last_reply_line = false;
            } else {
                self.line += 1;
            }
        }
        ended
    }
}

#[cfg(not(feature = "tokio"))]
fn run_floor(_: &Args, _: &[u8]) -> Result<usize, Error> {
    Err(Error::Unsupported(
        "the floor driver without --features tokio",
    ))
}

#[cfg(not(feature = "tokio"))]
fn run_pool(_: &Args, _: Arc<Vec<u8>>) -> Result<usize, Error> {
    Err(Error::Unsupported(
        "the pool driver without --features tokio",
    ))
}

#[cfg(not(feature = "tokio"))]
fn run_async(_: &Args, _: Arc<Vec<u8>>, _: bool) -> Result<usize, Error> {
    Err(Error::Unsupported(
        "the async driver without --features tokio",
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let body = Arc::new(message(args.size));
    // Samples the thread count while the run lasts (this sampler is not counted).
    let done = Arc::new(AtomicBool::new(false));
    let peak_threads = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak_threads.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(proc_status("Threads:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let start = Instant::now();
    let sent = match args.driver.as_str() {
        "blocking" => blocking(&args, body)?,
        "async" => run_async(&args, body, false)?,
        "async-1" => run_async(&args, body, true)?,
        "pool-1" => run_pool(&args, body)?,
        "floor-1" => run_floor(&args, &body)?,
        other => return Err(format!("unknown driver {other}").into()),
    };
    let wall = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    println!(
        "result driver={} connections={} messages={} size={} sent={sent} wall_ms={:.1} msgs_s={:.0} peak_rss_kib={} threads={}",
        args.driver,
        args.connections,
        args.messages,
        args.size,
        wall.as_secs_f64() * 1e3,
        sent as f64 / wall.as_secs_f64(),
        proc_status("VmHWM:"),
        peak_threads.load(Ordering::Relaxed).saturating_sub(1),
    );
    Ok(())
}
