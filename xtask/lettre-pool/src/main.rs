//! lettre 0.11's async SMTP client under the load of `cargo xtask bench concurrency`:
//! `--connections` connections × `--messages` messages of `--size` octets to Postfix's
//! `smtp-sink`, on a current-thread tokio runtime (as our pool's row). Prints one
//! `result key=value...` line in the format of `crates/smtp-client/examples/concurrency.rs`.
//!
//! ```text
//! lettre-pool-bench --port 12026 --mode shipped --connections 50 --messages 200 --size 1024
//! ```
//!
//! Modes:
//!
//! - `shipped`: lettre's pool as shipped: one `AsyncSmtpTransport` with
//!   `PoolConfig::max_size(connections)`, and `connections` tasks each calling `send_raw`
//!   `messages` times. lettre's connector opens plain `tokio::net::TcpStream`s and offers
//!   no way to set TCP_NODELAY on them (its `Executor` trait, which connects, is sealed).
//! - `nodelay`: the same steps with TCP_NODELAY on every socket. The pool's connector cannot
//!   be replaced, so each task opens its own `tokio::net::TcpStream`, sets TCP_NODELAY,
//!   and hands it to lettre's `AsyncSmtpConnection::connect_with_transport` (its public
//!   entry for a caller's stream, which sends EHLO); then it does per message what the pool
//!   does: a NOOP when a connection is used again (the pool's `test_connected` on every
//!   checkout of an idle connection), then `AsyncSmtpConnection::send`. With 50 tasks and
//!   50 connections each task keeps one connection, as the pool's tasks do.
//!
//! lettre itself is not changed in either mode.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    port: u16,
    mode: String,
    connections: usize,
    messages: usize,
    size: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 12026,
        mode: "shipped".to_owned(),
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
            "--mode" => args.mode = value.clone(),
            "--connections" => args.connections = number()?,
            "--messages" => args.messages = number()?,
            "--size" => args.size = number()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// The message of `crates/smtp-client/examples/concurrency.rs`: exactly `size` octets,
/// headers then 64-octet lines.
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

fn envelope() -> Result<Envelope, Failure> {
    let from: Address = "sender@example.test".parse()?;
    let to: Address = "sink@example.test".parse()?;
    Ok(Envelope::new(Some(from), vec![to])?)
}

fn hello() -> ClientId {
    ClientId::Domain("bench.example.test".to_owned())
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

/// lettre's pool as shipped.
async fn shipped(args: &Args, body: Arc<Vec<u8>>) -> Result<usize, Failure> {
    let transport: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(args.port)
            .hello_name(hello())
            .timeout(Some(Duration::from_secs(60)))
            .pool_config(PoolConfig::new().max_size(args.connections as u32))
            .build();
    let envelope = envelope()?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (transport, envelope, body) = (transport.clone(), envelope.clone(), body.clone());
        let messages = args.messages;
        tasks.spawn(async move {
            for _ in 0..messages {
                transport.send_raw(&envelope, &body).await?;
            }
            Ok::<usize, Failure>(messages)
        });
    }
    let mut sent = 0;
    while let Some(done) = tasks.join_next().await {
        sent += done??;
    }
    transport.shutdown().await;
    Ok(sent)
}

/// The pool's steps over connections with TCP_NODELAY (see the module documentation).
async fn nodelay(args: &Args, body: Arc<Vec<u8>>) -> Result<usize, Failure> {
    let envelope = envelope()?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (envelope, body) = (envelope.clone(), body.clone());
        let (port, messages) = (args.port, args.messages);
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            stream.set_nodelay(true)?;
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello()).await?;
            for i in 0..messages {
                if i > 0 && !conn.test_connected().await {
                    return Err("NOOP failed".into());
                }
                conn.send(&envelope, &body).await?;
            }
            conn.quit().await?;
            Ok::<usize, Failure>(messages)
        });
    }
    let mut sent = 0;
    while let Some(done) = tasks.join_next().await {
        sent += done??;
    }
    Ok(sent)
}

fn main() -> Result<(), Failure> {
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let sent = rt.block_on(async {
        match args.mode.as_str() {
            "shipped" => shipped(&args, body).await,
            "nodelay" => nodelay(&args, body).await,
            other => Err(format!("unknown mode {other}").into()),
        }
    })?;
    let wall = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    println!(
        "result driver=lettre-{} connections={} messages={} size={} sent={sent} wall_ms={:.1} msgs_s={:.0} peak_rss_kib={} threads={}",
        args.mode,
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
