//! `cargo xtask bench concurrency`: many SMTP connections from one process, async client
//! against blocking client, both sending to Postfix's `smtp-sink` on loopback.
//!
//! Starts `/usr/sbin/smtp-sink` on 127.0.0.1:12026 (stopped by its pid when done), then runs
//! `crates/smtp-client/examples/concurrency.rs` once per driver, each in its own process so
//! peak RSS and thread counts are that driver's alone.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, describe};

const SINK: &str = "/usr/sbin/smtp-sink";
const PORT: u16 = 12026;
const CONNECTIONS: usize = 50;
const MESSAGES: usize = 200;
const SIZE: usize = 1024;

/// The drivers compared, in table order: (name on the example's command line, description).
const DRIVERS: &[(&str, &str)] = &[
    ("async", "async, multi-thread runtime (one worker per core)"),
    ("async-1", "async, current-thread runtime"),
    ("blocking", "blocking, one thread per connection"),
    (
        "pool-1",
        "async pool, current-thread runtime (send_all: one batch per connection)",
    ),
];

const SOURCE: &str = "/usr/sbin/smtp-source";

/// `smtp-sink`, stopped (by pid) when dropped.
struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sink() -> Result<Sink, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], PORT));
    if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        return Err(format!("something already listens on {addr}"));
    }
    let mut cmd = Command::new(SINK);
    // smtp-sink refuses to run as root without a user to switch to.
    if std::env::var("USER").as_deref() == Ok("root") || is_root() {
        cmd.args(["-u", "nobody"]);
    }
    cmd.args([&format!("127.0.0.1:{PORT}"), "256"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
    let sink = Sink(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{SINK} did not listen on {addr} within 5 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(sink)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn example(driver: &str) -> Command {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "-q",
        "-p",
        "smtp-client",
        "--features",
        "tokio",
        "--example",
        "concurrency",
        "--",
        "--port",
        &PORT.to_string(),
        "--driver",
        driver,
        "--connections",
        &CONNECTIONS.to_string(),
        "--messages",
        &MESSAGES.to_string(),
        "--size",
        &SIZE.to_string(),
    ]);
    cmd
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map_or("?", |(_, v)| v)
}

/// Runs the suite and returns its section of docs/performance.md.
pub fn concurrency() -> Result<String, String> {
    // Build first, so the sink only runs while the clients do.
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-q",
        "-p",
        "smtp-client",
        "--features",
        "tokio",
        "--example",
        "concurrency",
    ]);
    crate::cmd::exec(&mut build)?;
    let sink = start_sink()?;
    let mut rows = String::new();
    for (driver, description) in DRIVERS {
        let mut cmd = example(driver);
        eprintln!("+ {}", describe(&cmd));
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
        if !out.status.success() {
            return Err(format!("{} failed: {}", describe(&cmd), out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("result "))
            .ok_or_else(|| format!("no result line from {}", describe(&cmd)))?;
        let sent: usize = field(line, "sent").parse().unwrap_or(0);
        if sent != CONNECTIONS * MESSAGES {
            return Err(format!(
                "{driver}: sent {sent} of {}",
                CONNECTIONS * MESSAGES
            ));
        }
        let rss_mib = field(line, "peak_rss_kib")
            .parse::<f64>()
            .map_or_else(|_| "?".to_owned(), |k| format!("{:.1}", k / 1024.0));
        rows.push_str(&format!(
            "| {description} | {} | {} | {rss_mib} | {} |\n",
            field(line, "msgs_s"),
            field(line, "wall_ms"),
            field(line, "threads"),
        ));
    }
    // The reference: Postfix's smtp-source, the same load, 50 sessions each keeping its
    // connection (-d), timed as a process.
    let mut source = Command::new(SOURCE);
    source.args([
        "-s",
        &CONNECTIONS.to_string(),
        "-d",
        "-m",
        &(CONNECTIONS * MESSAGES).to_string(),
        "-l",
        &SIZE.to_string(),
        "-f",
        "bench@example.test",
        "-t",
        "sink@example.test",
        "-M",
        "localhost",
        &format!("127.0.0.1:{PORT}"),
    ]);
    source.stdout(Stdio::null()).stderr(Stdio::inherit());
    eprintln!("+ {}", describe(&source));
    let started = Instant::now();
    let status = source
        .status()
        .map_err(|e| format!("cannot start {}: {e}", describe(&source)))?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{} failed: {status}", describe(&source)));
    }
    let source_rate = (CONNECTIONS * MESSAGES) as f64 / wall;
    rows.push_str(&format!(
        "| smtp-source -s {CONNECTIONS} -d (Postfix, the reference) | {source_rate:.0} | {:.1} | - | - |\n",
        wall * 1e3
    ));
    let ratio_of = |name: &str| {
        rows.lines()
            .find(|l| l.starts_with(&format!("| {name}")))
            .and_then(|l| l.split('|').nth(2))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or_else(|| "?".to_owned(), |r| format!("{:.2}", r / source_rate))
    };
    let ratios = format!(
        "Ratios to smtp-source -s {CONNECTIONS} -d (higher is better; aim for the pool 2.5x): \
async pool {}, async current-thread {}, blocking {}.\n",
        ratio_of("async pool"),
        ratio_of("async, current-thread"),
        ratio_of("blocking")
    );
    drop(sink);
    Ok(format!(
        "Command: `cargo xtask bench concurrency`. {CONNECTIONS} connections × {MESSAGES} \
messages of {SIZE} bytes from one process to Postfix's `smtp-sink` on 127.0.0.1:{PORT} \
(PIPELINING offered: MAIL, RCPT and DATA in one write, body and final `.` in one write; \
one QUIT per connection). Each driver runs in its own process \
(`crates/smtp-client/examples/concurrency.rs`, release build), so peak RSS (VmHWM) and the \
thread count (sampled every 5 ms, sampler excluded) are its own. One run; `smtp-sink` \
shares the machine's cores with the client.\n\n\
| driver | msgs/s | wall ms | peak RSS MiB | threads |\n|---|---:|---:|---:|---:|\n{rows}\n\
{ratios}\n{NOTES}"
    ))
}

/// How to read the figures; kept with the code that writes them.
const NOTES: &str = "\
Reading the figures:

- Both clients run the same sans-IO session and the same write path, so the bytes on the
  wire are identical; the figures compare only how the waiting is done.
- The async client holds the 50 connections on one runtime thread (current-thread) or
  one worker per core; the blocking client needs one OS thread per connection (51 with
  the main thread). Peak RSS stays close because a thread's stack is reserved address
  space and only its touched pages count; what grows with the blocking client is the
  thread count (scheduler work, per-thread kernel state), which matters at hundreds or
  thousands of connections rather than 50.
- Each connection waits for the reply to its final `.` before its next message, so
  throughput comes from the number of connections; with `smtp-sink` sharing the two
  cores, the current-thread runtime is fastest (no wake-ups across threads), the
  multi-thread runtime and the blocking threads pay for cross-thread hand-offs.
- A run is short (10 000 messages, a fraction of a second): differences of 10-20 %
  between runs are noise; the thread counts are not.
- Per connection, each client keeps a 64 KiB read buffer and a 64 KiB body chunk
  buffer, in both drivers.";
