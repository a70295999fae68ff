//! SMTP throughput of the blocking client over loopback, run by `cargo xtask bench smtp`
//! against Postfix's `smtp-sink` (the suite starts the sink, runs Postfix's `smtp-source`
//! and other clients beside this one with the same load, and writes docs/performance.md).
//!
//! Commands (the first argument; `--bench`, added by `cargo bench`, is ignored):
//!
//! ```text
//! throughput many ADDR COUNT [--no-pipelining] [--batch]   COUNT one-KiB messages over one
//!                                                  connection (--batch: one send_batch_ready)
//! throughput big ADDR BYTES [--no-pipelining] [--bdat|--writer]   one dot-heavy message
//!                                                  of BYTES octets (--bdat: BDAT when
//!                                                  offered; --writer: MAIL, RCPT, then the
//!                                                  DATA writer, one 64-octet write per line)
//! throughput write small|BYTES PATH              the same message, LF line ends, to a file
//! ```
//!
//! `many` and `big` time one session, from connect to the reply to QUIT, and print:
//!
//! ```text
//! result mode=<many|big|batch> pipelining=<yes|no> bdat=<yes|no> msgs=<n> bytes=<n> secs=<f> hwm_start_kib=<n> hwm_end_kib=<n>
//! ```
//!
//! `bytes` counts message octets as given (before dot-stuffing). `hwm_*` is the process's
//! peak resident set (VmHWM, /proc/self/status) before connecting and after QUIT: the
//! body of `big` is produced line by line by [`Generated`] (an `impl Read`), never held in
//! memory, so the difference is what the client itself needed.
//!
//! `write` puts the same message into a file with LF line ends, the form `smtp-source -F`
//! reads (it sends each line followed by CRLF, dot-stuffed), so both clients put the same
//! octets on the wire.
//!
//! Run with no command (a plain `cargo bench`), it prints how to run it and exits.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use smtp_client::{ClientConfig, Envelope, SmtpClient, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};

/// Octets per generated line, line end included (CRLF on the wire).
const LINE: usize = 64;
/// Lines of the small message: 16 x 64 = 1024 octets.
const SMALL_LINES: u64 = 16;

/// A message produced on demand, line by line: `lines` lines of [`LINE`] octets. With
/// `dots`, every other line starts with a dot (dot-stuffing doubles it on the wire).
///
/// Each line holds its number, so no two lines in a row are the same.
struct Generated {
    lines: u64,
    dots: bool,
    crlf: bool,
    next: u64,
    line: [u8; LINE],
    len: usize,
    pos: usize,
}

impl Generated {
    fn new(lines: u64, dots: bool, crlf: bool) -> Generated {
        Generated {
            lines,
            dots,
            crlf,
            next: 0,
            line: [0; LINE],
            len: 0,
            pos: 0,
        }
    }

    /// The small message: 1 KiB of plain text lines.
    fn small(crlf: bool) -> Generated {
        Generated::new(SMALL_LINES, false, crlf)
    }

    /// A dot-heavy message of about `bytes` octets (whole lines, rounded up).
    fn dot_heavy(bytes: u64, crlf: bool) -> Generated {
        Generated::new(bytes.div_ceil(LINE as u64), true, crlf)
    }

    /// Octets of the message with CRLF line ends.
    fn wire_len(&self) -> u64 {
        self.lines * LINE as u64
    }

    /// Fills `self.line` with line number `self.next`.
    fn make_line(&mut self) {
        let n = self.next;
        let mut text = [b'x'; LINE - 2];
        let mut at = 0;
        if self.dots && n % 2 == 0 {
            text[0] = b'.';
            at = 1;
        }
        let head = format!("line {n:010} ");
        text[at..at + head.len()].copy_from_slice(head.as_bytes());
        for (i, b) in text[at + head.len()..].iter_mut().enumerate() {
            *b = b"abcdefghijklmnopqrstuvwxyz"[(n as usize + i) % 26];
        }
        self.line[..LINE - 2].copy_from_slice(&text);
        self.len = if self.crlf {
            self.line[LINE - 2..].copy_from_slice(b"\r\n");
            LINE
        } else {
            self.line[LINE - 2] = b'\n';
            LINE - 1
        };
        self.pos = 0;
        self.next += 1;
    }
}

impl Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < out.len() {
            if self.pos == self.len {
                if self.next == self.lines {
                    break;
                }
                self.make_line();
            }
            let n = (self.len - self.pos).min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&self.line[self.pos..self.pos + n]);
            self.pos += n;
            filled += n;
        }
        Ok(filled)
    }
}

/// Peak resident set of this process in KiB (VmHWM), 0 when unknown.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn connect(addr: &str, pipelining: bool) -> Result<SmtpClient, Box<dyn std::error::Error>> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("address {addr:?} is not HOST:PORT"))?;
    let config = ClientConfig::new(host)
        .port(port.parse()?)
        .tls_mode(TlsMode::None)
        .hello(Domain::new("localhost")?)
        .pipelining(pipelining)
        .timeouts(Timeouts::uniform(Duration::from_secs(30)));
    Ok(SmtpClient::connect(config)?)
}

fn envelope() -> Result<Envelope, Box<dyn std::error::Error>> {
    // `--bdat` (read once from the command line): BDAT when the server offers CHUNKING.
    let bdat = std::env::args().any(|a| a == "--bdat");
    Ok(Envelope::new(
        ReversePath::Mailbox(Mailbox::new("a@example.test")?),
        [ForwardPath::new("b@example.test")?],
    )
    .prefer_chunking(bdat))
}

/// Sends `count` messages made by `make` over one connection; prints the result line.
fn session(
    mode: &str,
    addr: &str,
    pipelining: bool,
    count: u64,
    make: impl Fn() -> Generated,
) -> Result<(), Box<dyn std::error::Error>> {
    let envelope = envelope()?;
    let bytes = make().wire_len() * count;
    let hwm_start = vm_hwm_kib();
    let start = Instant::now();
    let mut client = connect(addr, pipelining)?;
    let writer = std::env::args().any(|a| a == "--writer");
    // The session sends BDAT when asked and CHUNKING is offered (and DATA otherwise).
    let bdat = std::env::args().any(|a| a == "--bdat") && client.supports("CHUNKING");
    for _ in 0..count {
        if writer {
            write_message(&mut client, &envelope, make())?;
        } else {
            client.send(&envelope, make())?;
        }
    }
    client.quit()?;
    let secs = start.elapsed().as_secs_f64();
    let hwm_end = vm_hwm_kib();
    println!(
        "result mode={mode} pipelining={} bdat={} msgs={count} bytes={bytes} secs={secs:.6} \
hwm_start_kib={hwm_start} hwm_end_kib={hwm_end}",
        if pipelining { "yes" } else { "no" },
        if bdat { "yes" } else { "no" }
    );
    Ok(())
}

/// Sends `message` through the DATA writer, one write per line: the writer's buffer, not
/// the caller, decides how large each write to the socket is.
fn write_message(
    client: &mut SmtpClient,
    envelope: &Envelope,
    mut message: Generated,
) -> Result<(), Box<dyn std::error::Error>> {
    client.mail(envelope.from(), &Default::default())?;
    for (to, params) in envelope.recipients() {
        client.rcpt(to, params)?;
    }
    let mut writer = client.data_writer()?;
    let mut line = [0u8; LINE];
    loop {
        let n = message.read(&mut line)?;
        if n == 0 {
            break;
        }
        writer.write_all(&line[..n])?;
    }
    writer.finish()?;
    Ok(())
}

/// Sends `count` one-KiB messages over one connection with one `send_batch`.
fn batch_session(
    addr: &str,
    pipelining: bool,
    count: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let envelope = envelope()?;
    let bytes = Generated::small(true).wire_len() * count;
    let hwm_start = vm_hwm_kib();
    let start = Instant::now();
    let mut client = connect(addr, pipelining)?;
    let messages = (0..count).map(|_| (envelope.clone(), Generated::small(true)));
    let summary = client.send_batch_ready(messages, |_| {})?;
    if summary.accepted as u64 != count {
        return Err(format!("{} of {count} accepted: {summary:?}", summary.accepted).into());
    }
    client.quit()?;
    let secs = start.elapsed().as_secs_f64();
    let hwm_end = vm_hwm_kib();
    println!(
        "result mode=batch pipelining={} bdat=no msgs={count} bytes={bytes} secs={secs:.6} \
hwm_start_kib={hwm_start} hwm_end_kib={hwm_end}",
        if pipelining { "yes" } else { "no" }
    );
    Ok(())
}

/// Writes the message to `path` with LF line ends, for `smtp-source -F`.
fn write_file(what: &str, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut message = if what == "small" {
        Generated::small(false)
    } else {
        Generated::dot_heavy(what.parse()?, false)
    };
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    io::copy(&mut message, &mut file)?;
    file.flush()?;
    Ok(())
}

const USAGE: &str = "\
usage: throughput many ADDR COUNT [--no-pipelining] [--batch]
       throughput big ADDR BYTES [--no-pipelining] [--bdat|--writer]
       throughput write small|BYTES PATH
Run by `cargo xtask bench smtp`, which starts smtp-sink and runs the other clients.";

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let pipelining = !args.iter().any(|a| a == "--no-pipelining");
    let batch = args.iter().any(|a| a == "--batch");
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.as_slice() {
        ["many", addr, count] if batch => batch_session(addr, pipelining, count.parse()?),
        ["many", addr, count] => session("many", addr, pipelining, count.parse()?, || {
            Generated::small(true)
        }),
        ["big", addr, bytes] => {
            let bytes: u64 = bytes.parse()?;
            session("big", addr, pipelining, 1, || {
                Generated::dot_heavy(bytes, true)
            })
        }
        ["write", what, path] => write_file(what, path),
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().all(|a| a.starts_with("--")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throughput: {e}");
            ExitCode::FAILURE
        }
    }
}
