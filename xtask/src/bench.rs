//! `cargo xtask bench [SUITE...]`: runs benchmark suites and writes docs/performance.md.
//!
//! Each suite runs its benchmarks (each beside its baseline, in the same run) and returns
//! a Markdown section; the section is written under the suite's own `## ` heading. The
//! file starts with a header naming the machine (cores, rustc, date). Sections of suites
//! not run this time are kept as they were, so suites can be refreshed one at a time.
//!
//! `--quick` makes it a check run (see [`quick`]); every new section names the date and the
//! load average, and says when its figures are provisional.
//!
//! To add a suite: write a `fn() -> Result<String, String>` that runs it and returns the
//! section body, and list it in [`SUITES`].

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cmd::{cargo, describe, root};

/// A benchmark suite: its name on the command line, its heading in the document, and
/// the function that runs it and returns the section body (Markdown).
struct Suite {
    name: &'static str,
    heading: &'static str,
    run: fn() -> Result<String, String>,
}

/// Every suite, in document order.
const SUITES: &[Suite] = &[
    Suite {
        name: "codec",
        heading: "Codec (smtp-proto)",
        run: codec,
    },
    Suite {
        name: "sasl",
        heading: "SASL exchanges (sasl-mechs beside rsasl)",
        run: sasl,
    },
    Suite {
        name: "concurrency",
        heading: "Concurrent connections (smtp-client, async and blocking)",
        run: crate::bench_concurrency::concurrency,
    },
    Suite {
        name: "smtp",
        heading: "SMTP throughput (smtp-client against smtp-sink)",
        run: crate::bench_smtp::run,
    },
    Suite {
        name: "batch-memory",
        heading: "Peak memory of one large batch (smtp-client against smtp-sink)",
        run: crate::bench_bulk::batch_memory,
    },
    Suite {
        name: "bdat",
        heading: "BDAT against DATA (one 20 MiB message, Postfix)",
        run: crate::bench_bulk::bdat,
    },
];

const TITLE: &str = "# Performance";

/// `--quick`: a check run, to show that every row works. The concurrency suite runs a small
/// load once; the others run as usual. Every section it writes says it is provisional.
static QUICK: AtomicBool = AtomicBool::new(false);

/// True under `cargo xtask bench --quick`.
pub fn quick() -> bool {
    QUICK.load(Ordering::Relaxed)
}

/// Runs `cargo xtask bench [--quick] [SUITE...]` with the arguments after the command name.
pub fn run(args: &[String]) -> Result<(), String> {
    let (flags, args): (Vec<String>, Vec<String>) =
        args.iter().cloned().partition(|a| a.starts_with("--"));
    for flag in &flags {
        match flag.as_str() {
            "--quick" => QUICK.store(true, Ordering::Relaxed),
            other => return Err(format!("unknown bench flag {other}; flags: --quick")),
        }
    }
    let selected: Vec<&Suite> = if args.is_empty() {
        SUITES.iter().collect()
    } else {
        args.iter()
            .map(|a| {
                SUITES.iter().find(|s| s.name == a).ok_or_else(|| {
                    let names: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
                    format!("no bench suite {a:?}; suites: {}", names.join(", "))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let path = doc_path();
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut sections = parse_sections(&old);
    for suite in selected {
        eprintln!("bench: running suite {}", suite.name);
        let body = (suite.run)()?;
        match sections.iter_mut().find(|(h, _)| h == suite.heading) {
            Some((_, b)) => *b = body,
            None => sections.push((suite.heading.to_owned(), body)),
        }
    }
    // Known suites first, in SUITES order; sections written by hand or by others after.
    sections.sort_by_key(|(h, _)| {
        SUITES
            .iter()
            .position(|s| s.heading == h)
            .unwrap_or(SUITES.len())
    });
    let mut doc = format!("{TITLE}\n\n{}\n", machine_header());
    for (heading, body) in &sections {
        doc.push_str(&format!("\n## {heading}\n\n{}\n", body.trim()));
    }
    std::fs::write(&path, doc).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("bench: wrote {}", path.display());
    Ok(())
}

fn doc_path() -> PathBuf {
    root().join("docs").join("performance.md")
}

/// When and under what load a suite ran, for its section: the date, the load average at
/// its start, and "provisional" when the figures are not a measurement to keep (a check
/// run, `--quick`, or a machine already busy: a 1-minute load average above half its
/// cores).
pub fn conditions() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_else(|_| "unknown".into());
    let load: Option<f64> = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok());
    let busy = load.is_some_and(|l| l > cores as f64 / 2.0);
    let load_text = load.map_or("unknown".to_owned(), |l| format!("{l:.2}"));
    let verdict = if quick() {
        " **Provisional: a check run (`cargo xtask bench --quick`), to be replaced by a full run on a quiet machine.**"
    } else if busy {
        " **Provisional: the machine was busy (other work running), to be replaced by a run on a quiet machine.**"
    } else {
        ""
    };
    format!("Run {date}; 1-minute load average at the start {load_text} on {cores} cores.{verdict}")
}

/// The `## ` sections of an existing document: (heading, body). The header above the
/// first section is regenerated, not kept.
fn parse_sections(doc: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            sections.push((h.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}

/// What the figures were measured on.
fn machine_header() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = output(Command::new("rustc").arg("-V")).unwrap_or_else(|_| "unknown".into());
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_else(|_| "unknown".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    format!(
        "Written by `cargo xtask bench`; numbers are from one run on one machine, for \
comparison within a run (each figure sits beside its baseline), not across machines.\n\n\
- machine: {cores} cores ({cpu})\n- rustc: {rustc}\n- last written: {date} (a section written by a suite since then says when it ran)"
    )
}

/// Runs `cmd` and returns its trimmed stdout; a failure names the command.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", describe(cmd)))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", describe(cmd), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One `key=value ...` line of the codec bench output, after its leading tag.
fn fields(line: &str) -> Vec<(&str, &str)> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn field<'a>(f: &[(&'a str, &'a str)], key: &str) -> &'a str {
    f.iter().find(|(k, _)| *k == key).map_or("?", |(_, v)| v)
}

/// Nanoseconds as milliseconds with two decimals.
fn ms(ns: &str) -> String {
    ns.parse::<f64>()
        .map_or_else(|_| "?".into(), |n| format!("{:.2}", n / 1e6))
}

/// The smtp-proto codec suite: `cargo bench -p smtp-proto --bench codec`.
fn codec() -> Result<String, String> {
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "smtp-proto", "--bench", "codec"]);
    let out = output(&mut cmd)?;
    let mut table = String::from(
        "| benchmark | corpus | MB/s | items/s | best ms | median ms |\n|---|---|---:|---:|---:|---:|\n",
    );
    let mut ratios = String::from("| ratio | value | aim | met |\n|---|---:|---|---|\n");
    for line in out.lines() {
        let f = fields(line);
        if line.starts_with("bench ") {
            let items_s: f64 = field(&f, "items_s").parse().unwrap_or(0.0);
            table.push_str(&format!(
                "| {} | {} | {} | {:.2e} | {} | {} |\n",
                field(&f, "name"),
                field(&f, "corpus"),
                field(&f, "mb_s"),
                items_s,
                ms(field(&f, "best_ns")),
                ms(field(&f, "median_ns")),
            ));
        } else if line.starts_with("ratio ") {
            ratios.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                field(&f, "name"),
                field(&f, "value"),
                field(&f, "aim"),
                field(&f, "met"),
            ));
        }
    }
    Ok(format!(
        "Command: `cargo bench -p smtp-proto --bench codec`. Harness: one warm-up run, then 15 timed samples; MB/s and items/s \
from the best sample. Items are replies for the parsers, lines for the DATA coders.\n\n\
Corpora (about 4 MB each): `single_line` is `250 2.1.5 Ok` repeated; `ehlo_multiline` a \
13-line Postfix-style EHLO reply; `long_lines` 3-line replies with 1000-octet lines; \
`dot_heavy_20mib` a 20 MiB body of ~50-octet lines, every other one starting with a dot, \
every seventh ended by a bare LF.\n\n\
Baselines: `memchr_line_scan` visits every line end with `memchr` (what any line parser \
must at least do); `plain_copy` copies the same bytes in the same 64 KiB chunks into a \
reused buffer; `zero_copy_split` appends the same 16 KiB reads to a `BytesMut` and \
splits one frozen `Bytes` view per reply at reply ends computed beforehand (nothing \
searched or checked: the cost of handing out zero-copy replies). `reply_parser` is fed \
16 KiB reads and hands out zero-copy `Reply` values (a `Bytes` view of its buffer); `parse_reply` is the borrowing parser over the whole \
buffer.\n\n{table}\nRatios (for the parsers: baseline MB/s / parser MB/s, lower is better; \
for the DATA coders: coder MB/s / copy MB/s, higher is better):\n\n{ratios}\n{CODEC_NOTES}"
    ))
}

/// The SASL suite: `cargo bench -p sasl-mechs --features server --bench exchange`.
fn sasl() -> Result<String, String> {
    let mut cmd = cargo();
    cmd.args([
        "bench",
        "-p",
        "sasl-mechs",
        "--features",
        "server",
        "--bench",
        "exchange",
    ]);
    let out = output(&mut cmd)?;
    let mut table = String::from(
        "| implementation | mechanism | exchanges/s | best ms | median ms |\n|---|---|---:|---:|---:|\n",
    );
    let mut ratios = String::from(
        "| ratio (ours / rsasl, exchanges/s) | value | aim | met |\n|---|---:|---|---|\n",
    );
    for line in out.lines() {
        let f = fields(line);
        if line.starts_with("bench ") {
            table.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                field(&f, "name"),
                field(&f, "corpus"),
                field(&f, "items_s"),
                ms(field(&f, "best_ns")),
                ms(field(&f, "median_ns")),
            ));
        } else if line.starts_with("ratio ") {
            ratios.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                field(&f, "name"),
                field(&f, "value"),
                field(&f, "aim"),
                field(&f, "met"),
            ));
        }
    }
    Ok(format!(
        "Command: `cargo bench -p sasl-mechs --features server --bench exchange`. One full \
client+server exchange per item, both sides in one thread, built afresh each time (client \
credentials, client and server mechanism); one warm-up run, then 15 timed samples, \
exchanges/s from the best. rsasl 2.3 (dev-dependency only), PLAIN and SCRAM-SHA-256 at \
4096 iterations. Both servers get the user's plaintext password, so a SCRAM exchange runs \
PBKDF2 on each side; `rsasl_stored_keys` is rsasl's server given precomputed StoredKey and \
ServerKey (one PBKDF2 per exchange), shown for reference only.\n\n{table}\n{ratios}"
    ))
}

/// How to read the codec figures; kept with the code that writes them.
const CODEC_NOTES: &str = "\
Reading the figures:

- Allocation: no allocation per reply on the hot path. `ReplyParser` appends reads to one
  `BytesMut`; a reply is `split_to(len).freeze()` of it, which shares the allocation
  (a reference count, no copy); once the replies are dropped the buffer's space is reused
  by the next `reserve`. `parse_reply` borrows and allocates nothing. (A counting global
  allocator cannot be written in this workspace's safe-only Rust, so this is
  argued from the design; `reply_shares_the_parser_buffer` tests that two replies are
  views of one allocation.)
- Short single-line replies are the worst case for the incremental parser: each reply is
  a `Bytes` view, and taking and dropping one (two atomic reference-count operations plus
  the `BytesMut` split) costs more than three times the line-end scan of a 14-octet reply
  on its own: `zero_copy_split` does only that, and
  `memchr_plus_zero_copy_split_vs_memchr` is scan plus split before any check. So
  `reply_parser` cannot come within 3x on `single_line` while it hands out zero-copy
  replies; what it adds beyond scan plus split is the checks, the same as
  `parse_reply`'s. The borrowing parser shows the parsing cost alone (code digits,
  separator, code consistency, line-length and line-count limits on every line; the
  enhanced status code is recognised when `Reply::enhanced` is called, from the first
  line's first octets). On EHLO and long-line replies both stay within 3x of the bare
  line-end scan.
- DATA: the baseline copy runs at memory/cache bandwidth; dot-stuffing must find every
  line end (one `memchr2` per line) to look at the byte after it, so on ~50-octet lines
  it is bounded by the line-end scan (`dot_stuffer_vs_memchr_line_scan`), not by the
  copy. Proper CRLF lines are copied in long runs; only bare CR/LF and leading dots
  break a run.";
