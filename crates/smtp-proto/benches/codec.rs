//! Codec benchmarks, each beside a baseline measured in the same run:
//!
//! - reply parsing (replies/s, MB/s) on three corpora (single-line replies, multi-line
//!   EHLO replies, replies with long lines), against a memchr scan for line ends over
//!   the same bytes;
//! - dot-stuffing (MB/s) of a dot-heavy 20 MiB body, against a plain copy of the same
//!   bytes in the same chunks.
//!
//! A small harness: one warm-up run, then timed samples; best and median are printed.
//! Output lines are machine-readable (`cargo xtask bench` turns them into
//! docs/performance.md):
//!
//! ```text
//! bench name=<id> corpus=<id> bytes=<n> items=<n> best_ns=<n> median_ns=<n> mb_s=<f> items_s=<f>
//! ratio name=<id> value=<f> aim=<text> met=<yes|no>
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use smtp_proto::{parse_reply, DotStuffer, ReplyLimits, ReplyParser, Status, Unstuffer};

/// Timed samples per benchmark (after one warm-up run).
const SAMPLES: usize = 15;
/// Bytes handed to the parser per `feed`, like one socket read.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes handed to the stuffer per call, like one buffered write.
const WRITE_CHUNK: usize = 64 * 1024;

struct Measured {
    best: Duration,
    median: Duration,
}

/// Runs `f` once to warm up, then `SAMPLES` times; returns best and median.
fn measure(mut f: impl FnMut()) -> Measured {
    f();
    let mut times: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    Measured {
        best: times[0],
        median: times[SAMPLES / 2],
    }
}

/// Prints one result line and returns the MB/s of the best sample.
fn report(name: &str, corpus: &str, bytes: usize, items: usize, m: &Measured) -> f64 {
    let secs = m.best.as_secs_f64();
    let mb_s = bytes as f64 / secs / 1e6;
    let items_s = items as f64 / secs;
    println!(
        "bench name={name} corpus={corpus} bytes={bytes} items={items} best_ns={} median_ns={} mb_s={mb_s:.1} items_s={items_s:.0}",
        m.best.as_nanos(),
        m.median.as_nanos()
    );
    mb_s
}

fn ratio(name: &str, value: f64, aim: &str, met: bool) {
    println!(
        "ratio name={name} value={value:.2} aim={aim} met={}",
        if met { "yes" } else { "no" }
    );
}

/// `count` copies of `reply`.
fn repeat(reply: &[u8], count: usize) -> (Vec<u8>, usize) {
    let mut v = Vec::with_capacity(reply.len() * count);
    for _ in 0..count {
        v.extend_from_slice(reply);
    }
    (v, count)
}

/// The three reply corpora, each about 4 MB: (id, bytes, number of replies).
fn reply_corpora() -> Vec<(&'static str, Vec<u8>, usize)> {
    let single = b"250 2.1.5 Ok\r\n";
    let ehlo = b"250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256\r\n250-AUTH=PLAIN LOGIN\r\n\
250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
    let mut long = Vec::new();
    for (i, sep) in [b'-', b'-', b' '].into_iter().enumerate() {
        long.extend_from_slice(b"550");
        long.push(sep);
        long.extend_from_slice(b"5.7.1 ");
        long.extend(std::iter::repeat_n(b'a' + i as u8, 1000));
        long.extend_from_slice(b"\r\n");
    }
    let target = 4_000_000;
    let (s, sn) = repeat(single, target / single.len());
    let (e, en) = repeat(ehlo, target / ehlo.len());
    let (l, ln) = repeat(&long, target / long.len());
    vec![
        ("single_line", s, sn),
        ("ehlo_multiline", e, en),
        ("long_lines", l, ln),
    ]
}

/// The end offset of every reply in `data`, which holds only whole replies.
fn reply_ends(data: &[u8], limits: &ReplyLimits) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    while let Ok(Status::Complete(len)) = parse_reply(&data[pos..], limits) {
        pos += len;
        ends.push(pos);
    }
    assert_eq!(pos, data.len());
    ends
}

fn bench_replies(filter: Option<&str>) {
    let limits = ReplyLimits::default();
    for (corpus, data, replies) in reply_corpora() {
        if filter.is_some_and(|f| !corpus.contains(f)) {
            continue;
        }
        // Baseline: visit every line end, nothing else. (Each position goes through
        // black_box so the scan is not folded into memchr's bulk count.)
        let scan = measure(|| {
            for pos in memchr::memchr_iter(b'\n', black_box(&data)) {
                black_box(pos);
            }
        });
        let base = report("memchr_line_scan", corpus, data.len(), replies, &scan);

        // What handing out zero-copy replies costs on its own: the same 16 KiB reads
        // appended to a `BytesMut`, and one `split_to(..).freeze()` view per reply at
        // reply ends computed beforehand (nothing searched, nothing checked), dropped
        // at once. Its cost is the buffer copy, the split, and the two atomic
        // reference-count operations a `Bytes` view takes and gives back.
        let ends = reply_ends(&data, &limits);
        assert_eq!(ends.len(), replies);
        let mut buf = BytesMut::new();
        let views = measure(|| {
            let mut taken = 0;
            let mut next = ends.iter().peekable();
            for chunk in data.chunks(READ_CHUNK) {
                buf.extend_from_slice(chunk);
                while let Some(&end) = next.next_if(|&&end| end - taken <= buf.len()) {
                    let view = buf.split_to(end - taken).freeze();
                    black_box(view.len());
                    taken = end;
                }
            }
            assert_eq!(taken, data.len());
        });
        let split = report("zero_copy_split", corpus, data.len(), replies, &views);

        // The incremental parser, fed in socket-sized reads; each reply is a zero-copy
        // view of the parser's buffer.
        let mut parser = ReplyParser::new();
        let parsed = measure(|| {
            let mut n = 0usize;
            for chunk in data.chunks(READ_CHUNK) {
                parser.feed(chunk);
                while let Ok(Some(reply)) = parser.next_reply() {
                    n += usize::from(black_box(reply.code().get()) != 0);
                }
            }
            assert_eq!(n, replies);
        });
        let incr = report("reply_parser", corpus, data.len(), replies, &parsed);

        // The borrowing parser over the whole buffer (no copy at all).
        let borrowed = measure(|| {
            let mut pos = 0;
            let mut n = 0;
            while let Ok(Status::Complete(len)) = parse_reply(black_box(&data[pos..]), &limits) {
                pos += len;
                n += 1;
            }
            assert_eq!(n, replies);
        });
        let borrow = report("parse_reply", corpus, data.len(), replies, &borrowed);

        // Scanning plus splitting: what the incremental parser costs before it checks
        // anything (times add, so MB/s combine harmonically).
        let r = base * (1.0 / base + 1.0 / split);
        ratio(
            &format!("memchr_plus_zero_copy_split_vs_memchr/{corpus}"),
            r,
            "none",
            true,
        );
        let r = base / incr;
        ratio(
            &format!("reply_parser_vs_memchr/{corpus}"),
            r,
            "<=3.0",
            r <= 3.0,
        );
        let r = base / borrow;
        ratio(
            &format!("parse_reply_vs_memchr/{corpus}"),
            r,
            "<=3.0",
            r <= 3.0,
        );
    }
}

/// A 20 MiB body in which every other line starts with a dot, with some bare LFs.
fn dot_heavy_body() -> Vec<u8> {
    let size = 20 * 1024 * 1024;
    let mut body = Vec::with_capacity(size + 100);
    let mut i = 0u32;
    while body.len() < size {
        if i % 2 == 0 {
            body.push(b'.');
        }
        body.extend_from_slice(b"The quick brown fox jumps over the lazy dog ");
        body.extend_from_slice(i.to_string().as_bytes());
        body.extend_from_slice(if i % 7 == 0 { b"\n" } else { b"\r\n" });
        i += 1;
    }
    body.truncate(size);
    body
}

fn bench_dot_stuffing() {
    let body = dot_heavy_body();
    let lines = memchr::memchr_iter(b'\n', &body).count();
    let mut out = Vec::with_capacity(body.len() * 2);

    let copy = measure(|| {
        out.clear();
        for chunk in body.chunks(WRITE_CHUNK) {
            out.extend_from_slice(black_box(chunk));
        }
        black_box(&out);
    });
    let base = report("plain_copy", "dot_heavy_20mib", body.len(), lines, &copy);

    let stuffed = measure(|| {
        out.clear();
        let mut stuffer = DotStuffer::new();
        for chunk in body.chunks(WRITE_CHUNK) {
            stuffer.stuff(black_box(chunk), &mut out);
        }
        stuffer.finish(&mut out);
        black_box(&out);
    });
    let stuff = report(
        "dot_stuffer",
        "dot_heavy_20mib",
        body.len(),
        lines,
        &stuffed,
    );
    let r = stuff / base;
    ratio("dot_stuffer_vs_copy", r, ">=0.5", r >= 0.5);

    // Context: visiting every line end of the body, which any stuffer must do.
    let scan = measure(|| {
        for pos in memchr::memchr_iter(b'\n', black_box(&body)) {
            black_box(pos);
        }
    });
    let lines_mb = report(
        "memchr_line_scan",
        "dot_heavy_20mib",
        body.len(),
        lines,
        &scan,
    );
    ratio(
        "dot_stuffer_vs_memchr_line_scan",
        stuff / lines_mb,
        "none",
        true,
    );

    // The server side, on the wire form just produced.
    let wire = out.clone();
    let mut msg = Vec::with_capacity(wire.len());
    let unstuffed = measure(|| {
        msg.clear();
        let mut un = Unstuffer::new();
        for chunk in wire.chunks(WRITE_CHUNK) {
            un.feed(black_box(chunk), &mut msg);
        }
        assert!(un.is_done());
        black_box(&msg);
    });
    let un = report(
        "unstuffer",
        "dot_heavy_20mib_wire",
        wire.len(),
        lines,
        &unstuffed,
    );
    ratio("unstuffer_vs_copy", un / base, "none", true);
}

fn main() {
    // `cargo bench` passes "--bench"; `cargo test --benches` does not: run a quick check.
    if !std::env::args().any(|a| a == "--bench") {
        let mut stuffer = DotStuffer::new();
        let mut out = Vec::new();
        stuffer.stuff(b".x", &mut out);
        stuffer.finish(&mut out);
        assert_eq!(out, b"..x\r\n.\r\n");
        return;
    }
    // An optional argument keeps only the corpora whose name contains it (for profiling
    // one corpus, e.g. under callgrind): `cargo bench --bench codec -- single_line`.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    bench_replies(filter.as_deref());
    if filter
        .as_deref()
        .is_none_or(|f| "dot_heavy_20mib".contains(f))
    {
        bench_dot_stuffing();
    }
}
