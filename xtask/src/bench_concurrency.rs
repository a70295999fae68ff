//! `cargo xtask bench concurrency`: many SMTP connections from one process to Postfix's
//! `smtp-sink` on loopback: our async and blocking clients and the async pool, beside
//! Postfix's `smtp-source -s 50 -d` and lettre's async pool, the same load in one run.
//!
//! Starts `smtp-sink` on 127.0.0.1:12026 (stopped by its pid when done, its message
//! counter checked after every run), then runs each contender in its own process, in
//! turns over [`ROUNDS`] rounds: `crates/smtp-client/examples/concurrency.rs` once per
//! driver, `smtp-source`, and `xtask/lettre-pool` (lettre 0.11, built apart from the
//! workspace) as shipped and with TCP_NODELAY. Every run is measured from outside the same
//! way: peak RSS by `/usr/bin/time -f %M`, the client's CPU time by
//! `perf stat -e task-clock` (all its threads, user and system), the sink's CPU time from
//! `/proc/PID/schedstat` before and after the run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench_smtp::{ensure_postfix_tools, sbin, Sink, WorkDir};
use crate::cmd::{cargo, describe, root};

const PORT: u16 = 12026;
const CONNECTIONS: usize = 50;
const MESSAGES: usize = 200;
/// Messages per connection with `--quick` (a check that every row works, not a figure).
const MESSAGES_QUICK: usize = 20;
const SIZE: usize = 1024;
/// Runs of each contender; the table shows medians.
const ROUNDS: usize = 5;
/// Any run still going after this long is killed (by its pid).
const KILL_AFTER: Duration = Duration::from_secs(120);
const TIME: &str = "/usr/bin/time";

/// Our drivers, in table order: (name on the example's command line, description).
const DRIVERS: &[(&str, &str)] = &[
    ("async", "async, multi-thread runtime (one worker per core)"),
    ("async-1", "async, current-thread runtime"),
    ("blocking", "blocking, one thread per connection"),
    (
        "pool-1",
        "async pool, current-thread runtime (send_all: one batch per connection)",
    ),
    ("floor-1", FLOOR),
];

const POOL: &str = "async pool, current-thread runtime (send_all: one batch per connection)";
const FLOOR: &str = "wire floor: the pool's bytes made once and replayed, one write and one read per message (current-thread runtime; no SMTP client)";
const SOURCE_ROW: &str = "smtp-source -s 50 -d (Postfix, the reference)";
const LETTRE_SHIPPED: &str = "lettre 0.11 async pool, as shipped (current-thread runtime)";
const LETTRE_NODELAY: &str =
    "lettre 0.11 async connections with TCP_NODELAY, the pool's steps (current-thread runtime)";

/// One client and how to run it.
struct Contender {
    description: &'static str,
    argv: Vec<String>,
    /// Prints a `result ... wall_ms= threads=` line; otherwise timed as a process.
    self_timed: bool,
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
struct Sample {
    msgs_s: f64,
    wall_ms: f64,
    rss_kib: Option<f64>,
    threads: Option<f64>,
    /// The client's CPU time (task-clock), milliseconds.
    client_cpu_ms: Option<f64>,
    /// The sink's CPU time during the run, milliseconds.
    sink_cpu_ms: Option<f64>,
}

/// Runs the suite and returns its section of docs/performance.md.
pub fn concurrency() -> Result<String, String> {
    ensure_postfix_tools()?;
    let quick = crate::bench::quick();
    let messages = if quick { MESSAGES_QUICK } else { MESSAGES };
    let rounds = if quick { 1 } else { ROUNDS };
    let total = CONNECTIONS * messages;
    let example = built(
        cargo().args([
            "build",
            "--release",
            "-p",
            "smtp-client",
            "--features",
            "tokio",
            "--example",
            "concurrency",
            "--message-format=json",
        ]),
        "concurrency",
    )?;
    // lettre is built apart from the workspace (its own lock file), into the same target
    // directory. Without it (no registry, a build failure) its rows say why.
    let lettre = built(
        cargo()
            .args([
                "build",
                "--release",
                "--manifest-path",
                "xtask/lettre-pool/Cargo.toml",
                "--message-format=json",
            ])
            .env("CARGO_TARGET_DIR", root().join("target")),
        "lettre-pool-bench",
    );
    let common = |flag: &str, value: &str| {
        let mut v: Vec<String> = vec![flag.into(), value.into()];
        for (f, n) in [
            ("--port", PORT as usize),
            ("--connections", CONNECTIONS),
            ("--messages", messages),
            ("--size", SIZE),
        ] {
            v.push(f.into());
            v.push(n.to_string());
        }
        v
    };
    let mut contenders: Vec<Contender> = DRIVERS
        .iter()
        .map(|(driver, description)| Contender {
            description,
            argv: std::iter::once(example.display().to_string())
                .chain(common("--driver", driver))
                .collect(),
            self_timed: true,
        })
        .collect();
    contenders.push(Contender {
        description: SOURCE_ROW,
        argv: [
            sbin("smtp-source"),
            "-s".into(),
            CONNECTIONS.to_string(),
            "-d".into(),
            "-m".into(),
            total.to_string(),
            "-l".into(),
            SIZE.to_string(),
            "-f".into(),
            "bench@example.test".into(),
            "-t".into(),
            "sink@example.test".into(),
            "-M".into(),
            "localhost".into(),
            format!("127.0.0.1:{PORT}"),
        ]
        .to_vec(),
        self_timed: false,
    });
    let mut skipped = Vec::new();
    match &lettre {
        Ok(bin) => {
            for (mode, description) in [("shipped", LETTRE_SHIPPED), ("nodelay", LETTRE_NODELAY)] {
                contenders.push(Contender {
                    description,
                    argv: std::iter::once(bin.display().to_string())
                        .chain(common("--mode", mode))
                        .collect(),
                    self_timed: true,
                });
            }
        }
        Err(e) => skipped.push(format!("lettre rows skipped: {e}")),
    }

    let perf = perf_works();
    let has_time = Path::new(TIME).is_file();
    let conditions = crate::bench::conditions();
    let work = WorkDir::new()?;
    let sink = Sink::start_on(&work.0, PORT)?;
    let mut samples: Vec<Vec<Sample>> = contenders.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        eprintln!("bench concurrency: round {} of {rounds}", round + 1);
        for (c, runs) in contenders.iter().zip(samples.iter_mut()) {
            let before = sink.messages();
            let sink_cpu = cpu_ns(sink.pid());
            let sample = measure(c, &work.0, perf, has_time)?;
            let counted = sink.wait_count(before + total as u64) - before;
            if counted != total as u64 {
                return Err(format!(
                    "{}: the sink counted {counted} messages of {total}",
                    c.description
                ));
            }
            let sink_cpu_ms = match (sink_cpu, cpu_ns(sink.pid())) {
                (Some(a), Some(b)) => Some((b - a) as f64 / 1e6),
                _ => None,
            };
            runs.push(Sample {
                sink_cpu_ms,
                ..sample
            });
        }
    }
    let argv_sink = sink.argv().join(" ");
    drop(sink);
    Ok(section(&Report {
        conditions: &conditions,
        contenders: &contenders,
        samples: &samples,
        messages,
        rounds,
        quick,
        perf,
        skipped: &skipped,
        sink: &argv_sink,
        example: &example,
        lettre: lettre.as_ref().ok(),
    }))
}

/// Builds with `cmd` (which asks for `--message-format=json`) and returns the path of the
/// executable named `name`.
fn built(cmd: &mut Command, name: &str) -> Result<PathBuf, String> {
    cmd.stderr(Stdio::inherit());
    eprintln!("+ {}", describe(cmd));
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", describe(cmd)))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", describe(cmd), out.status));
    }
    let target = format!(r#""name":"{name}""#);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&target))
        .find_map(|l| {
            let rest = &l[l.find(r#""executable":""#)? + r#""executable":""#.len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .ok_or_else(|| format!("{} named no executable {name}", describe(cmd)))
}

/// True when `perf stat -e task-clock` runs here (it needs perf_event_open).
pub(crate) fn perf_works() -> bool {
    Command::new("perf")
        .args(["stat", "-x,", "-e", "task-clock", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Time a process has spent on a CPU, in nanoseconds (`/proc/PID/schedstat`, its main
/// thread: `smtp-sink` has one).
fn cpu_ns(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs one contender once under `perf stat` and `/usr/bin/time`, killed by its pid after
/// [`KILL_AFTER`].
fn measure(c: &Contender, dir: &Path, perf: bool, has_time: bool) -> Result<Sample, String> {
    let cpu_file = dir.join("run.cpu");
    let rss_file = dir.join("run.rss");
    let out_file = dir.join("run.out");
    for f in [&cpu_file, &rss_file] {
        let _ = fs::remove_file(f);
    }
    let mut argv: Vec<String> = Vec::new();
    if perf {
        argv.extend(["perf", "stat", "-x,", "-e", "task-clock", "-o"].map(String::from));
        argv.push(cpu_file.display().to_string());
        argv.push("--".into());
    }
    if has_time {
        argv.extend([TIME, "-f", "%M", "-o"].map(String::from));
        argv.push(rss_file.display().to_string());
    }
    argv.extend(c.argv.iter().cloned());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let out = fs::File::create(&out_file).map_err(|e| format!("{}: {e}", out_file.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::inherit());
    eprintln!("+ {}", describe(&cmd));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("waiting for {}: {e}", describe(&cmd)))?
        {
            break status;
        }
        if started.elapsed() > KILL_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} still running after {} s: killed",
                describe(&cmd),
                KILL_AFTER.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{} failed: {status}", describe(&cmd)));
    }
    let text = fs::read_to_string(&out_file).unwrap_or_default();
    let mut sample = Sample {
        rss_kib: fs::read_to_string(&rss_file)
            .ok()
            .and_then(|s| s.lines().last()?.trim().parse().ok()),
        client_cpu_ms: fs::read_to_string(&cpu_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.contains(",task-clock,"))
                .and_then(|l| l.split(',').next()?.parse().ok())
        }),
        ..Sample::default()
    };
    if c.self_timed {
        let line = text
            .lines()
            .find(|l| l.starts_with("result "))
            .ok_or_else(|| format!("no result line from {}", describe(&cmd)))?;
        let num = |k: &str| field(line, k).parse::<f64>().ok();
        sample.wall_ms = num("wall_ms").unwrap_or(wall * 1e3);
        sample.msgs_s = num("msgs_s").unwrap_or(0.0);
        sample.threads = num("threads");
    } else {
        sample.wall_ms = wall * 1e3;
    }
    Ok(sample)
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map_or("?", |(_, v)| v)
}

/// The median of the values `f` gives (`None` when no run gave one).
fn median(runs: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = runs.iter().filter_map(f).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// What [`section`] writes up.
struct Report<'a> {
    conditions: &'a str,
    contenders: &'a [Contender],
    samples: &'a [Vec<Sample>],
    messages: usize,
    rounds: usize,
    quick: bool,
    perf: bool,
    skipped: &'a [String],
    sink: &'a str,
    example: &'a Path,
    lettre: Option<&'a PathBuf>,
}

fn section(r: &Report<'_>) -> String {
    let total = (CONNECTIONS * r.messages) as f64;
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
    };
    let mut rows = String::new();
    let mut rate = std::collections::HashMap::new();
    for (c, runs) in r.contenders.iter().zip(r.samples) {
        let msgs_s = if c.self_timed {
            median(runs, |s| Some(s.msgs_s))
        } else {
            median(runs, |s| Some(total / (s.wall_ms / 1e3)))
        };
        rate.insert(c.description, msgs_s);
        rows.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            c.description,
            opt(msgs_s, 0),
            opt(median(runs, |s| Some(s.wall_ms)), 1),
            opt(median(runs, |s| s.rss_kib.map(|k| k / 1024.0)), 1),
            opt(median(runs, |s| s.threads), 0),
            opt(
                median(runs, |s| s.client_cpu_ms.map(|ms| ms * 1e3 / total)),
                2
            ),
            opt(
                median(runs, |s| s.sink_cpu_ms.map(|ms| ms * 1e3 / total)),
                2
            ),
        ));
    }
    let get = |name: &str| rate.get(name).copied().flatten();
    let pool = get(POOL);
    let source = get(SOURCE_ROW);
    let lettre_best = match (get(LETTRE_SHIPPED), get(LETTRE_NODELAY)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let met = |v: Option<f64>, aim: f64| match v {
        Some(v) if v >= aim => "yes",
        Some(_) => "no",
        None => "-",
    };
    let vs_source = ratio(pool, source);
    let vs_lettre = ratio(pool, lettre_best);
    let targets = format!(
        "| target (medians) | ratio | aim | met |\n|---|---:|---:|---|\n\
| async pool / smtp-source -s {CONNECTIONS} -d | {} | 2.5 | {} |\n\
| async pool / lettre's pool, the faster of as shipped and TCP_NODELAY | {} | 2.0 | {} |\n\
| async, current-thread / smtp-source -s {CONNECTIONS} -d | {} | none | - |\n\
| blocking / smtp-source -s {CONNECTIONS} -d | {} | none | - |\n\
| wire floor / smtp-source -s {CONNECTIONS} -d | {} | none | - |\n\
| async pool / wire floor | {} | none | - |\n",
        opt(vs_source, 2),
        met(vs_source, 2.5),
        opt(vs_lettre, 2),
        met(vs_lettre, 2.0),
        opt(ratio(get("async, current-thread runtime"), source), 2),
        opt(ratio(get("blocking, one thread per connection"), source), 2),
        opt(ratio(get(FLOOR), source), 2),
        opt(ratio(pool, get(FLOOR)), 2),
    );
    let quick = if r.quick {
        format!(
            "\n**Quick run (`cargo xtask bench --quick concurrency`): {} messages per \
connection, one round. It shows that every row works; its figures are not the \
measurement.**\n",
            r.messages
        )
    } else {
        String::new()
    };
    let skipped = if r.skipped.is_empty() {
        String::new()
    } else {
        format!("\n{}\n", r.skipped.join("\n"))
    };
    let cpu_note = if r.perf {
        ""
    } else {
        "\n(`perf stat` cannot run here: no client CPU figures.)\n"
    };
    let lettre_bin = r
        .lettre
        .map_or("lettre-pool-bench".to_owned(), |p| p.display().to_string());
    let commands = {
        let mut s = format!("{}\n", r.sink);
        for c in r.contenders {
            s.push_str(
                &c.argv
                    .join(" ")
                    .replace(&r.example.display().to_string(), "concurrency")
                    .replace(&lettre_bin, "lettre-pool-bench"),
            );
            s.push('\n');
        }
        s
    };
    format!(
        "{conditions}\n\nCommand: `cargo xtask bench concurrency`. {CONNECTIONS} connections × {messages} \
messages of {SIZE} octets from one process to Postfix's `smtp-sink` on 127.0.0.1:{PORT} \
(it offers PIPELINING; its message counter is checked after every run). Each contender runs \
in its own process, in turns, {rounds} round(s); the table shows the median of each column. \
Peak RSS is `/usr/bin/time -f %M`; client CPU is `perf stat -e task-clock` (every thread of \
the client, user and system time) divided by the messages; sink CPU is the time \
`smtp-sink` spent on a CPU during the run (`/proc/PID/schedstat`) divided by the messages. \
Threads are sampled every 5 ms inside the client (sampler excluded). `smtp-sink` shares the \
machine's cores with the client.\n{quick}{skipped}{cpu_note}\n\
| client | msgs/s | wall ms | peak RSS MiB | threads | client CPU µs/msg | sink CPU µs/msg |\n\
|---|---:|---:|---:|---:|---:|---:|\n{rows}\n{targets}\n### Commands\n\n```text\n{commands}```\n\n\
`concurrency` is `crates/smtp-client/examples/concurrency.rs` (release build), \
`lettre-pool-bench` is `xtask/lettre-pool` (release build, lettre 0.11.23 from crates.io, \
unchanged). Each command runs under `perf stat -x, -e task-clock -o FILE -- /usr/bin/time \
-f %M -o FILE`.\n\n{NOTES}",
        conditions = r.conditions,
        messages = r.messages,
        rounds = r.rounds,
    )
}

/// How to read the figures; kept with the code that writes them.
const NOTES: &str = "\
Reading the figures:

- Our clients (async, blocking, pool) run the same sans-IO session and the same write
  path. `send` (the first three rows) writes MAIL, RCPT and DATA in one write and the
  body with the final `.` in another: two round trips per message. The pool's `send_all`
  gives each connection a batch (`send_batch_ready`): each end of data goes in one write
  with the next message's MAIL, RCPT and DATA, so a message costs one round trip, one
  `sendto` and one `recvfrom`. That is the floor for DATA: the body cannot leave before
  the 354.
- System calls per message (`strace -c -f`, 10 000 messages, 50 connections): the async
  pool 2.1 (1.02 `sendto`, 1.03 `recvfrom`, 0.04 `epoll_wait`); lettre with TCP_NODELAY
  11.1 (6 `sendto`, 5 `recvfrom`, 0.1 `epoll_wait`); `smtp-source` 26 (4 `write`, 4
  `read`, 8 `poll`, 8 `rt_sigprocmask`, 2 `epoll_ctl`, 0.1 `epoll_wait`).
- Instructions per message of the pool's client (`valgrind --tool=callgrind`, the runtime
  thread, 10 000 messages including start-up and building the 10 000 messages): 35,200
  before and 23,600 after these changes: the 8-bit check of each body uses `is_ascii` (a
  word at a time) instead of a byte loop (about 5,000 instructions per 1 KiB message);
  MAIL and RCPT append their paths to the output buffer directly, and BDAT and SIZE
  format their numbers into it, instead of going through a `String`; the line kept for
  error messages is made with `str::from_utf8` (a word at a time over ASCII) instead of
  `from_utf8_lossy`; the async pool's workers lend each body to the batch as a slice
  instead of copying it, and hand each envelope over instead of cloning it when the
  attempt is the message's last (every attempt, with the default of no retries); a
  transaction's rarely used parts (a failing one's error, LMTP and PRDR replies) are
  boxed, so the value moved with every reply is smaller; the example builds the
  envelope once and clones it for each message (as the lettre client does) instead of
  parsing the addresses again (3,500 to 1,400 per message for building the messages).
  The pool's own path (`send_all`'s tasks) went from 28,600 to 19,800. What is left is
  spread thin: moving the session's state values (about 50 `memcpy` calls per message,
  3,900 instructions: a transaction, 200 octets (296 before), is moved several times
  per reply), about a dozen small allocations per message (the reply, the envelope's
  parts, the commands' lines for error messages, the first body chunk kept until the
  354, the result kept for the caller), dot-stuffing (2,300), the tokio timeout around
  each read and write (5 %). Since then the session polls a batch in place instead of
  moving its phase out and back for every event and reply, and the example lends one
  shared body (`Arc<[u8]>`: `send_all` takes any `AsRef<[u8]>` body) instead of copying
  10 MB of bodies before the run: 24,600 to 22,700 instructions per message for the whole
  process, and 0.85 µs less client CPU per message (`perf stat`, building the messages
  alone). Of the client's CPU time about 60 % is the kernel's (`perf record -F 25000`:
  59 % kernel, 23 % our code, 16 % libc, mostly `memcpy` and `malloc`): sending and
  receiving on loopback, which no client avoids.
- What bounds the pool here is the sink and the kernel, not the client's own work. The
  wire floor row is no SMTP client at all: the pool's exact bytes, made once, replayed
  over the same 50 connections on the same runtime, one write and one read per message,
  replies only counted (`floor-1` in the example). It spends about half the pool's
  client CPU per message and is not faster than the pool (it was slower in every run so
  far, and the sink spent more CPU per message on it: a client that answers sooner wakes
  the sink for fewer ready connections at a time). With the pool the sink spends about
  9.5 µs of CPU per message (`strace -c` on it: 1 `read`, 2 `write`, 3 `poll`, 5
  `rt_sigprocmask` per message), so even with a core to itself it could take at most
  about 100 000 messages a second, about 2.5x `smtp-source -s 50 -d`'s rate, while the
  client (about 0.9 of a core at this rate) and the kernel's loopback work share the
  other core. The aim of 2.5x sits at that ceiling; the pool runs at about 90 % of it.
- `smtp-source -s 50 -d` does not pipeline: MAIL, RCPT, DATA and the end of data each
  wait for their reply, four round trips per message.
- lettre's pool (`AsyncSmtpTransport` with `PoolConfig::max_size(50)`, 50 tasks each
  calling `send_raw`) does not pipeline either, and checks every connection it takes from
  the pool with a NOOP: five round trips per message. As shipped it writes the body and
  the final `.` in two writes on a socket without TCP_NODELAY: the kernel holds the
  5-octet `.` until the body is acknowledged, and the sink delays that ACK (about 40 ms),
  so each connection sends about 20 messages a second. Its pool also opens more
  connections than tasks: a connection goes back to the pool in a spawned task, and a
  task that asks before that has run opens a new one (strace: 88 `connect` for 50 tasks
  of 10 messages each; the surplus is closed with QUIT when the pool is full). lettre
  has no setting for TCP_NODELAY, and its pool's connector cannot be replaced (it
  connects through its sealed `Executor` trait). The TCP_NODELAY row therefore opens
  its own `tokio::net::TcpStream`s, sets TCP_NODELAY, and hands each to lettre's public
  `AsyncSmtpConnection::connect_with_transport`; each task then does what the pool does
  per message (a NOOP when the connection is used again, then `send`). lettre itself is
  not changed. The pool ratio is taken against the faster of the two lettre rows.
- Peak RSS: the pool row holds all 10 000 envelopes and, at the end, 10 000 results
  (`send_all` returns one per message); the body is one `Arc<[u8]>` shared by every
  message. The other rows make the same body once and send it again and again.
- Per connection, each of our clients keeps a 64 KiB read buffer and a 64 KiB body chunk
  buffer, in both drivers.
- The current-thread runtime is fastest on two cores shared with the sink: no wake-ups
  across threads. The multi-thread runtime and the blocking threads pay for cross-thread
  hand-offs; the blocking client needs one OS thread per connection.
- The machine has 2 cores shared by the sink, the client and anything else running: a
  run of 10 000 messages lasts a fraction of a second, so differences of 10-20 % between
  runs are noise, hence 5 rounds and medians. On the virtual machine these figures come
  from, even the client's CPU time for the same run varied up to 2-3x between
  consecutive runs (28 to 203 ms of user time for the pool) while the load average was
  below 0.5; a quiet ping-pong also runs slower than a busy one (idle CPUs wake up late).
  Instruction counts (`valgrind --tool=callgrind`) are the repeatable measure of the
  client's own work.";
