//! `cargo xtask bench smtp`: SMTP throughput over loopback against Postfix's `smtp-sink`,
//! our client beside Postfix's `smtp-source` and the libraries people use today (Perl's
//! Net::SMTP, Python's smtplib), same load, same run.
//!
//! Loads: 2,000 one-KiB messages over one connection (messages/s), and one 20 MiB
//! dot-heavy message (MB/s). Our client's peak memory is measured inside its process
//! (VmHWM) for 2, 20 and 100 MiB bodies streamed from a generator. The others' peak
//! memory comes from `/usr/bin/time -f %M` when it is installed.
//!
//! The sink runs on a fixed loopback port and is stopped by its pid; every contender run
//! is bounded in time and killed by its pid when it overruns. The sink's own message
//! counter (`-c`) is checked after each run, so a figure is only reported for messages
//! the sink actually accepted.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, describe};

/// Where the sink listens.
const HOST: &str = "127.0.0.1";
const PORT: u16 = 12025;
/// One-KiB messages per run of the message-rate load.
const MANY: u64 = 2000;
/// Messages per run for Net::SMTP, which waits on delayed ACKs (about 22 messages/s).
const MANY_NET_SMTP: u64 = 200;
/// The dot-heavy message of the MB/s load.
const BIG: u64 = 20 * 1024 * 1024;
/// Body sizes for our client's peak memory.
const MEMORY_SIZES: [u64; 3] = [2 * 1024 * 1024, 20 * 1024 * 1024, 100 * 1024 * 1024];
/// Timed runs per contender (contenders take turns within each round).
const REPS: usize = 5;
/// Timed runs for Net::SMTP's message-rate load (each takes about 9 s).
const REPS_NET_SMTP: usize = 3;
/// A library script stops sending after this long and reports what it sent.
const SCRIPT_LIMIT_S: u32 = 30;
/// Any contender still running after this long is killed.
const KILL_AFTER: Duration = Duration::from_secs(60);
/// `/usr/bin/time`, for the peak memory of programs we do not measure from inside.
const TIME: &str = "/usr/bin/time";

const SENDER: &str = "a@example.test";
const RECIPIENT: &str = "b@example.test";

/// Net::SMTP (Perl core): COUNT messages from PATH over one connection, stopping after
/// LIMIT seconds; prints `result msgs= secs=`.
const PERL_NET_SMTP: &str = r#"
use strict; use warnings; use Net::SMTP; use Time::HiRes qw(time);
my ($host, $port, $count, $path, $limit) = @ARGV;
open(my $fh, '<:raw', $path) or die "open $path: $!";
my $msg = do { local $/; <$fh> };
my $t0 = time;
my $smtp = Net::SMTP->new($host, Port => $port, Hello => 'localhost') or die "connect: $@";
my $n = 0;
while ($n < $count && time - $t0 < $limit) {
    $smtp->mail('a@example.test') && $smtp->to('b@example.test') && $smtp->data($msg)
        or die "send: " . $smtp->message;
    $n++;
}
$smtp->quit;
printf "result msgs=%d secs=%.6f\n", $n, time - $t0;
"#;

/// Python's smtplib: the same as [`PERL_NET_SMTP`].
const PYTHON_SMTPLIB: &str = r#"
import smtplib, sys, time
host, port, count, path, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
with open(path, "rb") as f:
    msg = f.read()
t0 = time.perf_counter()
s = smtplib.SMTP(host, port, local_hostname="localhost")
n = 0
while n < count and time.perf_counter() - t0 < limit:
    s.sendmail("a@example.test", ["b@example.test"], msg)
    n += 1
s.quit()
print(f"result msgs={n} secs={time.perf_counter() - t0:.6f}")
"#;

/// Runs the suite and returns the section body.
pub fn run() -> Result<String, String> {
    ensure_postfix_tools()?;
    let bin = build_bench()?;
    let work = WorkDir::new()?;
    let files = Files::write(&bin, &work.0)?;
    let sink = Sink::start(&work.0)?;
    let has_time = Path::new(TIME).is_file();

    let contenders = contenders(&bin, &files);
    let mut many: Vec<Series> = contenders
        .iter()
        .map(|c| Series::new(c, Load::Many))
        .collect();
    let mut big: Vec<Series> = contenders
        .iter()
        .filter(|c| c.big)
        .map(|c| Series::new(c, Load::Big))
        .collect();
    for round in 0..REPS {
        eprintln!("bench smtp: round {} of {REPS}", round + 1);
        for s in many.iter_mut().chain(big.iter_mut()) {
            if round < s.reps {
                s.run_once(&sink, has_time)?;
            }
        }
    }
    let mut memory = Vec::new();
    for size in MEMORY_SIZES {
        let mut cmd = Command::new(&bin);
        cmd.args(["big", &addr(), &size.to_string()]);
        let run = timed(&mut cmd, &work.0, false)?;
        let result = run
            .result
            .ok_or_else(|| format!("{} gave no result: {}", describe(&cmd), run.problem))?;
        memory.push((size, result));
    }
    let setup = Setup {
        sink: &sink,
        bin: &bin,
        work: &work.0,
    };
    let section = write_section(&setup, &many, &big, &memory, has_time);
    drop(sink);
    Ok(section)
}

fn addr() -> String {
    format!("{HOST}:{PORT}")
}

// ----- Tools -----------------------------------------------------------------------------

/// Installs the `postfix` package (which holds smtp-sink and smtp-source) when missing.
pub(crate) fn ensure_postfix_tools() -> Result<(), String> {
    if which("smtp-sink") && which("smtp-source") {
        return Ok(());
    }
    eprintln!("bench smtp: installing postfix (for smtp-sink and smtp-source)");
    // "No configuration": the package must not prompt, write /etc/postfix/main.cf or start.
    let mut debconf = Command::new("debconf-set-selections");
    debconf.stdin(Stdio::piped());
    let mut child = debconf
        .spawn()
        .map_err(|e| format!("cannot start debconf-set-selections: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(b"postfix postfix/main_mailer_type select No configuration\n")
            .map_err(|e| format!("debconf-set-selections: {e}"))?;
    }
    child
        .wait()
        .map_err(|e| format!("debconf-set-selections: {e}"))?;
    for args in [
        &["update"][..],
        &["install", "-y", "--no-install-recommends", "postfix"][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot start apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("apt-get {} failed: {status}", args.join(" ")));
        }
    }
    if which("smtp-sink") && which("smtp-source") {
        Ok(())
    } else {
        Err("postfix is installed but smtp-sink or smtp-source is not on PATH".into())
    }
}

fn which(program: &str) -> bool {
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .iter()
        .chain(extra.iter())
        .any(|dir| dir.join(program).is_file())
}

pub(crate) fn sbin(program: &str) -> String {
    let path = Path::new("/usr/sbin").join(program);
    if path.is_file() {
        path.display().to_string()
    } else {
        program.to_owned()
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|r| r.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Builds the bench binary and returns its path (from cargo's JSON messages).
pub(crate) fn build_bench() -> Result<PathBuf, String> {
    let mut cmd = cargo();
    cmd.args([
        "bench",
        "-p",
        "smtp-client",
        "--bench",
        "throughput",
        "--no-run",
        "--message-format=json",
    ])
    .stderr(Stdio::inherit());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", describe(&cmd), out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter(|l| l.contains(r#""name":"throughput""#) && l.contains(r#""kind":["bench"]"#))
        .find_map(|l| {
            let rest = &l[l.find(r#""executable":""#)? + r#""executable":""#.len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .ok_or_else(|| format!("{} named no executable", describe(&cmd)))
}

/// A scratch directory, removed when dropped.
pub(crate) struct WorkDir(pub(crate) PathBuf);

impl WorkDir {
    pub(crate) fn new() -> Result<WorkDir, String> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("smtp-bench-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The messages as files: LF line ends for `smtp-source -F` (it sends each line with CRLF
/// and dot-stuffs), CRLF for the libraries. Written by the bench binary's generator, so
/// every client puts the same octets on the wire.
struct Files {
    small_lf: PathBuf,
    small_crlf: PathBuf,
    big_lf: PathBuf,
    big_crlf: PathBuf,
}

impl Files {
    fn write(bin: &Path, dir: &Path) -> Result<Files, String> {
        let files = Files {
            small_lf: dir.join("small.eml"),
            small_crlf: dir.join("small-crlf.eml"),
            big_lf: dir.join("big.eml"),
            big_crlf: dir.join("big-crlf.eml"),
        };
        for (what, lf, crlf) in [
            ("small".to_owned(), &files.small_lf, &files.small_crlf),
            (BIG.to_string(), &files.big_lf, &files.big_crlf),
        ] {
            let mut cmd = Command::new(bin);
            cmd.arg("write").arg(&what).arg(lf);
            let status = cmd
                .status()
                .map_err(|e| format!("cannot start {}: {e}", describe(&cmd)))?;
            if !status.success() {
                return Err(format!("{} failed: {status}", describe(&cmd)));
            }
            let text = fs::read(lf).map_err(|e| format!("{}: {e}", lf.display()))?;
            let mut out = Vec::with_capacity(text.len() + text.len() / 32);
            for &b in &text {
                if b == b'\n' {
                    out.push(b'\r');
                }
                out.push(b);
            }
            fs::write(crlf, out).map_err(|e| format!("{}: {e}", crlf.display()))?;
        }
        Ok(files)
    }
}

// ----- The sink --------------------------------------------------------------------------

/// `smtp-sink` on a loopback port, counting messages (`-c`) into a log; killed by pid on
/// drop. Also used by the concurrency and batch-memory suites.
pub(crate) struct Sink {
    child: Child,
    log: PathBuf,
    command: String,
    argv: Vec<String>,
}

impl Sink {
    /// The sink of this suite, on [`PORT`].
    fn start(dir: &Path) -> Result<Sink, String> {
        Sink::start_on(dir, PORT)
    }

    /// Starts `smtp-sink` on 127.0.0.1:`port`, its log in `dir`; fails when something
    /// already listens there.
    pub(crate) fn start_on(dir: &Path, port: u16) -> Result<Sink, String> {
        let addr = format!("{HOST}:{port}");
        let target: SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
        if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
            return Err(format!(
                "something already listens on {target}; stop it first"
            ));
        }
        let log = dir.join("sink.log");
        let out = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(sbin("smtp-sink"));
        if is_root() {
            // smtp-sink refuses to keep root privileges.
            cmd.args(["-u", "nobody"]);
        }
        cmd.args(["-c", &addr, "256"])
            .stdin(Stdio::null())
            .stderr(
                out.try_clone()
                    .map_err(|e| format!("{}: {e}", log.display()))?,
            )
            .stdout(out);
        let command = describe(&cmd);
        let argv = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {command}: {e}"))?;
        let mut sink = Sink {
            child,
            log,
            command,
            argv,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
                return Ok(sink);
            }
            if let Ok(Some(status)) = sink.child.try_wait() {
                let log = fs::read_to_string(&sink.log).unwrap_or_default();
                return Err(format!("{} exited ({status}): {log}", sink.command));
            }
            if Instant::now() > deadline {
                return Err(format!("{} not listening after 5 s", sink.command));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The sink's process id (for its CPU time).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line the sink was started with.
    pub(crate) fn argv(&self) -> &[String] {
        &self.argv
    }

    /// Messages the sink has counted so far (its last `mesg=` counter).
    pub(crate) fn messages(&self) -> u64 {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .rsplit("mesg=")
            .next()
            .and_then(|t| {
                t.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Waits (up to 2 s) until the sink's counter reaches `want`; returns what it counted.
    pub(crate) fn wait_count(&self, want: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let n = self.messages();
            if n >= want || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Child::kill signals this child's own pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- Contenders ------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    Many,
    Big,
}

/// One client, and how to run it for each load.
struct Contender {
    name: &'static str,
    /// Takes part in the 20 MiB load.
    big: bool,
    /// Reports its own time (`result ... secs=`); otherwise the process is timed.
    self_timed: bool,
    /// Messages per run of the message-rate load.
    many_count: u64,
    many_reps: usize,
    many: Vec<String>,
    big_cmd: Vec<String>,
}

fn contenders(bin: &Path, f: &Files) -> Vec<Contender> {
    let bin = bin.display().to_string();
    let p = |p: &Path| p.display().to_string();
    let source = |count: u64, file: &Path, keep: bool| {
        let mut v = vec![sbin("smtp-source")];
        if keep {
            v.push("-d".into());
        }
        v.extend(
            [
                "-m",
                &count.to_string(),
                "-F",
                &p(file),
                "-f",
                SENDER,
                "-t",
                RECIPIENT,
                "-M",
                "localhost",
                &addr(),
            ]
            .map(String::from),
        );
        v
    };
    let script = |interp: &str, code: &str, count: u64, file: &Path| {
        let flag = if interp == "perl" { "-e" } else { "-c" };
        vec![
            interp.to_owned(),
            flag.to_owned(),
            code.to_owned(),
            HOST.to_owned(),
            PORT.to_string(),
            count.to_string(),
            p(file),
            SCRIPT_LIMIT_S.to_string(),
        ]
    };
    let ours = |extra: &[&str], load: &str, n: String| {
        let mut v = vec![bin.clone(), load.to_owned(), addr(), n];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    vec![
        Contender {
            name: "smtp-source (Postfix)",
            big: true,
            self_timed: false,
            many_count: MANY,
            many_reps: REPS,
            many: source(MANY, &f.small_lf, true),
            big_cmd: source(1, &f.big_lf, false),
        },
        Contender {
            name: "smtp-client, PIPELINING",
            big: true,
            self_timed: true,
            many_count: MANY,
            many_reps: REPS,
            many: ours(&[], "many", MANY.to_string()),
            big_cmd: ours(&[], "big", BIG.to_string()),
        },
        Contender {
            name: "smtp-client, send_batch (PIPELINING)",
            big: false,
            self_timed: true,
            many_count: MANY,
            many_reps: REPS,
            many: ours(&["--batch"], "many", MANY.to_string()),
            big_cmd: Vec::new(),
        },
        Contender {
            name: "smtp-client, PIPELINING off",
            big: true,
            self_timed: true,
            many_count: MANY,
            many_reps: REPS,
            many: ours(&["--no-pipelining"], "many", MANY.to_string()),
            big_cmd: ours(&["--no-pipelining"], "big", BIG.to_string()),
        },
        Contender {
            name: "Python smtplib",
            big: true,
            self_timed: true,
            many_count: MANY,
            many_reps: REPS,
            many: script("python3", PYTHON_SMTPLIB, MANY, &f.small_crlf),
            big_cmd: script("python3", PYTHON_SMTPLIB, 1, &f.big_crlf),
        },
        Contender {
            name: "Perl Net::SMTP",
            big: true,
            self_timed: true,
            many_count: MANY_NET_SMTP,
            many_reps: REPS_NET_SMTP,
            many: script("perl", PERL_NET_SMTP, MANY_NET_SMTP, &f.small_crlf),
            big_cmd: script("perl", PERL_NET_SMTP, 1, &f.big_crlf),
        },
    ]
}

/// What one run printed or measured.
#[derive(Clone, Copy, Debug)]
struct RunResult {
    msgs: u64,
    secs: f64,
    /// Peak resident set in KiB, from `/usr/bin/time`.
    max_rss_kib: Option<u64>,
    /// VmHWM before connecting and after QUIT, our client only.
    hwm: Option<(u64, u64)>,
}

struct Run {
    result: Option<RunResult>,
    problem: String,
}

/// Runs `cmd` in `dir` (under `/usr/bin/time` when `measure_rss`), killed by its pid after
/// [`KILL_AFTER`]. Parses its `result` line; a process without one is timed from outside.
fn timed(cmd: &mut Command, dir: &Path, measure_rss: bool) -> Result<Run, String> {
    let out_path = dir.join("run.out");
    let rss_path = dir.join("run.rss");
    let _ = fs::remove_file(&rss_path);
    let mut full = if measure_rss {
        let mut t = Command::new(TIME);
        t.args(["-f", "%M", "-o"])
            .arg(&rss_path)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        t
    } else {
        let mut c = Command::new(cmd.get_program());
        c.args(cmd.get_args());
        c
    };
    let out = fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
    full.current_dir(dir)
        .stdin(Stdio::null())
        .stderr(
            out.try_clone()
                .map_err(|e| format!("{}: {e}", out_path.display()))?,
        )
        .stdout(out);
    let start = Instant::now();
    let mut child = full
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", describe(&full)))?;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("waiting for {}: {e}", describe(&full)))?
        {
            break Some(status);
        }
        if start.elapsed() > KILL_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let wall = start.elapsed().as_secs_f64();
    let text = fs::read_to_string(&out_path).unwrap_or_default();
    let Some(status) = status else {
        return Ok(Run {
            result: None,
            problem: format!("killed after {} s", KILL_AFTER.as_secs()),
        });
    };
    if !status.success() {
        let tail: String = text.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        return Ok(Run {
            result: None,
            problem: format!("failed ({status}): {tail}"),
        });
    }
    let max_rss_kib = fs::read_to_string(&rss_path)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    let result = match text.lines().find(|l| l.starts_with("result ")) {
        Some(line) => {
            let get = |k: &str| {
                line.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            };
            RunResult {
                msgs: get("msgs").and_then(|v| v.parse().ok()).unwrap_or(0),
                secs: get("secs").and_then(|v| v.parse().ok()).unwrap_or(wall),
                max_rss_kib,
                hwm: get("hwm_start_kib")
                    .and_then(|a| a.parse().ok())
                    .zip(get("hwm_end_kib").and_then(|b| b.parse().ok())),
            }
        }
        None => RunResult {
            msgs: 0,
            secs: wall,
            max_rss_kib,
            hwm: None,
        },
    };
    Ok(Run {
        result: Some(result),
        problem: String::new(),
    })
}

/// The runs of one contender on one load.
struct Series {
    name: &'static str,
    load: Load,
    argv: Vec<String>,
    self_timed: bool,
    count: u64,
    reps: usize,
    runs: Vec<RunResult>,
    problems: Vec<String>,
}

impl Series {
    fn new(c: &Contender, load: Load) -> Series {
        let (argv, count, reps) = match load {
            Load::Many => (c.many.clone(), c.many_count, c.many_reps),
            Load::Big => (c.big_cmd.clone(), 1, REPS),
        };
        Series {
            name: c.name,
            load,
            argv,
            self_timed: c.self_timed,
            count,
            reps,
            runs: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn run_once(&mut self, sink: &Sink, has_time: bool) -> Result<(), String> {
        let before = sink.messages();
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]);
        let dir = sink.log.parent().unwrap_or(Path::new("."));
        let run = timed(&mut cmd, dir, has_time && self.load == Load::Big)?;
        let Some(mut result) = run.result else {
            eprintln!("bench smtp: {}: {}", self.name, run.problem);
            self.problems.push(run.problem);
            return Ok(());
        };
        let counted = sink.wait_count(before + self.count) - before;
        if !self.self_timed {
            result.msgs = counted;
        }
        if counted != result.msgs {
            let problem = format!(
                "reported {} messages, the sink counted {counted}",
                result.msgs
            );
            eprintln!("bench smtp: {}: {problem}", self.name);
            self.problems.push(problem);
            result.msgs = result.msgs.min(counted);
        }
        if result.msgs < self.count {
            self.problems.push(format!(
                "stopped at {} of {} messages (time limit {SCRIPT_LIMIT_S} s)",
                result.msgs, self.count
            ));
        }
        self.runs.push(result);
        Ok(())
    }

    /// Per-run rates (messages/s or MB/s), best first.
    fn rates(&self) -> Vec<f64> {
        let mut r: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| r.secs > 0.0 && r.msgs > 0)
            .map(|r| match self.load {
                Load::Many => r.msgs as f64 / r.secs,
                Load::Big => r.msgs as f64 * BIG as f64 / r.secs / 1e6,
            })
            .collect();
        r.sort_by(|a, b| b.total_cmp(a));
        r
    }

    fn best(&self) -> Option<f64> {
        self.rates().first().copied()
    }

    fn median(&self) -> Option<f64> {
        let r = self.rates();
        r.get(r.len() / 2).copied()
    }
}

// ----- The section -----------------------------------------------------------------------

fn fmt_rate(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0}"))
}

fn fmt_mb(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a / b < 0.1 => format!("{:.4}", a / b),
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "no"
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

fn problems(s: &Series) -> String {
    let mut p = s.problems.clone();
    if s.load == Load::Many && s.count < MANY {
        p.insert(
            0,
            format!(
                "{} messages per run, not {MANY}: it waits on a delayed ACK per message",
                s.count
            ),
        );
    }
    p.dedup();
    p.join("; ")
}

/// `argv` for the document: the scripts as SCRIPT, the bench binary as `throughput`, the
/// scratch directory as `$WORK`.
fn command_line(argv: &[String], bin: &Path, work: &Path) -> String {
    let bin = bin.display().to_string();
    let work = work.display().to_string();
    argv.iter()
        .map(|a| {
            if a.contains('\n') {
                "SCRIPT".to_owned()
            } else if *a == bin {
                "throughput".to_owned()
            } else {
                a.replace(&work, "$WORK")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn find<'a>(series: &'a [Series], name: &str) -> Option<&'a Series> {
    series.iter().find(|x| x.name == name)
}

/// What the section names besides the results: the sink, the bench binary, the scratch
/// directory.
struct Setup<'a> {
    sink: &'a Sink,
    bin: &'a Path,
    work: &'a Path,
}

fn write_section(
    setup: &Setup<'_>,
    many: &[Series],
    big: &[Series],
    memory: &[(u64, RunResult)],
    has_time: bool,
) -> String {
    let Setup { sink, bin, work } = *setup;
    let reference = |series: &[Series]| (series[0].best(), series[0].median());
    let mut s = String::new();
    s.push_str(&format!(
        "Command: `cargo xtask bench smtp`. Sink: Postfix's `smtp-sink` on {addr} (command \
below), which reads and discards, on loopback; it advertises \
PIPELINING. Every contender sends the same octets to it over one connection; the sink's \
own message counter is checked after each run. Contenders take turns within each round, \
{REPS} rounds (Net::SMTP's message-rate load: {REPS_NET_SMTP}); best and median of the \
runs. Ratios are each client / `smtp-source` (higher is better), best against best and median \
against median.\n\n\
Messages: the 1-KiB message is 16 lines of 64 octets (1,024 octets with CRLF); the \
20 MiB message is 327,680 lines of 64 octets (20,971,520 octets), every other line \
starting with a dot (163,840 dots added by dot-stuffing). `smtp-source -F` reads the \
message with LF line ends and sends each line with CRLF, dot-stuffed; the libraries \
get the CRLF file; our client reads it from a generator (`impl Read`), line by line. \
Timing: our client and the library scripts time one session from connect to the reply \
to QUIT; `smtp-source` is timed as a process (start to exit, which adds about a \
millisecond).\n\n",
        addr = addr()
    ));

    s.push_str(&format!(
        "### {MANY} one-KiB messages over one connection\n\n\
| client | messages per run | runs | best msg/s | median msg/s | ratio best | ratio median | notes |\n\
|---|---:|---:|---:|---:|---:|---:|---|\n"
    ));
    let (rb, rm) = reference(many);
    for series in many {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            series.name,
            series.count,
            series.runs.len(),
            fmt_rate(series.best()),
            fmt_rate(series.median()),
            ratio(series.best(), rb),
            ratio(series.median(), rm),
            problems(series),
        ));
    }
    s.push_str(&format!(
        "\n### One {} dot-heavy message\n\n\
| client | runs | best MB/s | median MB/s | ratio best | ratio median | peak RSS KiB | notes |\n\
|---|---:|---:|---:|---:|---:|---:|---|\n",
        mib(BIG)
    ));
    let (rb, rm) = reference(big);
    for series in big {
        let rss = series
            .runs
            .iter()
            .filter_map(|r| r.max_rss_kib)
            .max()
            .map_or_else(|| "-".into(), |v| v.to_string());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            series.name,
            series.runs.len(),
            fmt_mb(series.best()),
            fmt_mb(series.median()),
            ratio(series.best(), rb),
            ratio(series.median(), rm),
            rss,
            problems(series),
        ));
    }
    if !has_time {
        s.push_str("\n(`/usr/bin/time` is not installed: no peak RSS for the other clients.)\n");
    }

    s.push_str(
        "\n### Peak memory of our client by message size\n\n\
VmHWM of the bench process (`/proc/self/status`) before connecting and after QUIT; the \
body comes from a generator, so the growth is what the client itself holds.\n\n\
| message | VmHWM before KiB | VmHWM after KiB | growth KiB | MB/s (one run) |\n\
|---|---:|---:|---:|---:|\n",
    );
    for (size, r) in memory {
        let (a, b) = r.hwm.unwrap_or((0, 0));
        s.push_str(&format!(
            "| {} | {a} | {b} | {} | {:.1} |\n",
            mib(*size),
            b.saturating_sub(a),
            *size as f64 / r.secs / 1e6
        ));
    }

    // Targets.
    let src_many = many[0].median();
    let ours_p = find(many, "smtp-client, PIPELINING").and_then(Series::median);
    let ours_np = find(many, "smtp-client, PIPELINING off").and_then(Series::median);
    let ours_batch = find(many, "smtp-client, send_batch (PIPELINING)").and_then(Series::median);
    let src_big = big[0].median();
    let ours_big = find(big, "smtp-client, PIPELINING").and_then(Series::median);
    let growth: Vec<u64> = memory
        .iter()
        .map(|(_, r)| r.hwm.map_or(u64::MAX, |(a, b)| b.saturating_sub(a)))
        .collect();
    let flat = growth.iter().max().copied().unwrap_or(u64::MAX) <= 2048;
    let ge =
        |a: Option<f64>, b: Option<f64>, k: f64| matches!((a, b), (Some(a), Some(b)) if a >= k * b);
    s.push_str(&format!(
        "\n### Targets (medians)\n\n\
| target | ours | smtp-source | ratio | met |\n|---|---:|---:|---:|---|\n\
| msg/s with PIPELINING >= smtp-source, well past it (aim 1.5x) | {} | {} | {} | {} |\n\
| msg/s without PIPELINING >= smtp-source | {} | {} | {} | {} |\n\
| msg/s with send_batch, one round trip per message (aim 3x) | {} | {} | {} | {} |\n\
| MB/s (20 MiB dot-heavy) >= smtp-source | {} | {} | {} | {} |\n\
| peak memory does not grow with size (growth <= 2 MiB at 2, 20 and 100 MiB) | {} KiB max | - | - | {} |\n",
        fmt_rate(ours_p),
        fmt_rate(src_many),
        ratio(ours_p, src_many),
        yes_no(ge(ours_p, src_many, 1.5)),
        fmt_rate(ours_np),
        fmt_rate(src_many),
        ratio(ours_np, src_many),
        yes_no(ge(ours_np, src_many, 1.0)),
        fmt_rate(ours_batch),
        fmt_rate(src_many),
        ratio(ours_batch, src_many),
        yes_no(ge(ours_batch, src_many, 3.0)),
        fmt_mb(ours_big),
        fmt_mb(src_big),
        ratio(ours_big, src_big),
        yes_no(ge(ours_big, src_big, 1.0)),
        growth.iter().max().map_or("-".into(), |g| g.to_string()),
        yes_no(flat),
    ));

    s.push_str(&format!(
        "\n### Commands\n\n```text\n{}\n",
        command_line(&sink.argv, bin, work)
    ));
    for series in many.iter().chain(big.iter()) {
        s.push_str(&command_line(&series.argv, bin, work));
        s.push('\n');
    }
    for size in MEMORY_SIZES {
        s.push_str(&format!("throughput big {} {size}\n", addr()));
    }
    s.push_str(
        "```\n\nSCRIPT is the inline Perl or Python program in `xtask/src/bench_smtp.rs` \
(`PERL_NET_SMTP`, `PYTHON_SMTPLIB`): connect, then `mail`/`to`/`data` (Net::SMTP) or \
`sendmail` (smtplib) in a loop, then QUIT; it stops after the time limit and says how \
many it sent. Paths are in a scratch directory removed after the run; the bench \
binary (`throughput`) is built by `cargo bench -p smtp-client --bench throughput --no-run`; \
the files are written by `throughput write small|20971520 $WORK/FILE` (LF line ends), the \
CRLF copies by the suite. The other clients' peak RSS is from `/usr/bin/time -f %M`.\n",
    );
    s.push_str(&format!("\n{SMTP_NOTES}\n"));
    s
}

/// How to read the SMTP figures; kept with the code that writes them.
const SMTP_NOTES: &str = "\
Reading the figures:

- Round trips per message decide the message rate on loopback. `smtp-source` does not
  pipeline: MAIL, RCPT, DATA and the body each wait for a reply (4 round trips).
  Our client with PIPELINING writes MAIL, RCPT and DATA in one write and the body with
  the final `.` in another: 2 round trips and 2 writes per message (strace: 2 `sendto`,
  2 `recvfrom` per message). `send()` sends one message per call, so the next
  message's MAIL cannot join the previous end of data; `send_batch` and
  `send_batch_ready` (and the pool) put each end of data in the same write as the next
  message's MAIL, RCPT and DATA: 1 round trip a message.
  With PIPELINING off it makes the same 4 round trips as `smtp-source`.
- Net::SMTP writes the body (`datasend`) and the final `.` (`dataend`) in two
  writes and then waits: with Nagle on, the kernel holds the 3-octet `.` until the
  body is acknowledged, and the receiver delays that ACK (about 40 ms on Linux), so
  every message waits one delayed ACK: the ~22 messages/s. Python's smtplib sends the
  body and the final `.` in one `send`, so it does not meet this on loopback. Our
  client sets TCP_NODELAY and writes each batch once, so no write waits on an ACK.
- Without PIPELINING both clients make the same 4 round trips per message and are bound
  by loopback round-trip latency, so the ratio sits near 1 and the row's yes/no is
  decided by run-to-run noise. Our client makes fewer system calls per message
  (`strace -c -f`, 200 messages: 4 `sendto`, 4 `recvfrom`, 4 `setsockopt` = 12;
  `smtp-source`: 4 `write`, 4 `read`, 8 `poll`, 8 `rt_sigprocmask`, 4 `epoll_wait`,
  2 `epoll_ctl` = 30), no write smaller than a whole command batch, and TCP_NODELAY.
  The `setsockopt(SO_RCVTIMEO)` before every read (the read deadline turned into a
  socket timeout) is the one avoidable call: a third of ours, cheap next to a round
  trip.
- The machine has 2 cores shared by the sink, the client and anything else running:
  runs vary by up to 2x between rounds, so compare medians within one run.
- Peak memory: `smtp-source -F` and both libraries hold the whole message in memory
  (their peak RSS grows with it); our client streams the body in 64 KiB chunks: the
  table by message size shows whether its peak grows.";
