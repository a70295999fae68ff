//! A scripted SMTP server for tests: it plays an exact sequence of replies and faults and
//! records every byte the client sent.
//!
//! The server binds `127.0.0.1` on an ephemeral port chosen by the kernel. That is fine here
//! (unlike the fixed ports of the real servers): it lives inside the test process, serves one
//! connection, and the test learns the port from [`ScriptedServer::addr`]; nothing outside
//! the process needs to find it, and parallel tests never collide.
//!
//! Every wait is bounded ([`Script::step_timeout`], 10 s by default): a broken client or test
//! makes the script fail, never hang.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use smtp_testserver::scripted::{Script, ScriptedServer};
//!
//! let server = ScriptedServer::start(
//!     Script::new().reply("220 test ready").expect("QUIT").reply("221 bye"),
//! )?;
//! let mut tcp = std::net::TcpStream::connect(server.addr())?;
//! let mut greeting = String::new();
//! BufReader::new(tcp.try_clone()?).read_line(&mut greeting)?;
//! assert_eq!(greeting, "220 test ready\r\n");
//! tcp.write_all(b"QUIT\r\n")?;
//! let record = server.finish();
//! assert!(record.result.is_ok(), "{:?}", record.result);
//! assert_eq!(record.clear_text, b"QUIT\r\n");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};
use smtp_proto::ReplyCode;

use crate::tls12::{self, Tls12};

/// Largest message [`Step::ReadData`] accepts, so a runaway client cannot exhaust memory.
pub const MAX_DATA: usize = 64 * 1024 * 1024;

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes as they are, in one write.
    Send(Vec<u8>),
    /// Read one line (CRLF-ended) and check it equals this (without the CRLF).
    Expect(Vec<u8>),
    /// Read one line and check it starts with this.
    ExpectPrefix(Vec<u8>),
    /// Read one line, whatever it is.
    ReadLine,
    /// Read a DATA body up to and including `CRLF.CRLF`; it is recorded (still dot-stuffed)
    /// in [`Record::messages`].
    ReadData,
    /// Read exactly this many bytes (a BDAT chunk); recorded in [`Record::messages`].
    ReadBytes(usize),
    /// Write these bytes one at a time, sleeping `interval` before each.
    Drip {
        /// The bytes.
        bytes: Vec<u8>,
        /// The pause before each byte.
        interval: Duration,
    },
    /// Send nothing for this long (reads nothing either).
    Pause(Duration),
    /// Run the server side of a TLS handshake (after the 220 to STARTTLS, or first thing for
    /// implicit TLS), with the [`test_cert`] certificate for `localhost` and `127.0.0.1`.
    StartTls,
    /// [`Step::StartTls`] restricted to TLS 1.2 (ChaCha20-Poly1305), after which the server
    /// seals and opens its records by hand, so that it can send [`Step::HelloRequest`].
    StartTls12,
    /// Ask the client to renegotiate: a TLS 1.2 HelloRequest (after [`Step::StartTls12`]).
    /// The client's alerts are recorded in [`Record::tls_alerts`].
    HelloRequest,
    /// Wait until the client closes the connection; any byte received first is an error.
    ExpectEof,
    /// Read everything until the client closes the connection (at most [`MAX_DATA`]
    /// bytes); recorded in [`Record::messages`]: what came of a message whose end of data
    /// never came.
    ReadToEof,
    /// Close the connection. Under TLS the TCP connection is closed without a
    /// `close_notify` alert, as a crashing server or a cut network would.
    Close,
    /// Send TLS `close_notify`, then close the connection (plain TCP: the same as
    /// [`Step::Close`]).
    CloseNotify,
}

/// A sequence of [`Step`]s, built fluently.
#[derive(Debug, Clone)]
pub struct Script {
    steps: Vec<Step>,
    step_timeout: Duration,
}

impl Default for Script {
    fn default() -> Self {
        Script::new()
    }
}

impl Script {
    /// An empty script.
    pub fn new() -> Script {
        Script {
            steps: Vec::new(),
            step_timeout: Duration::from_secs(10),
        }
    }

    /// The longest any read step waits (default 10 s).
    pub fn step_timeout(mut self, timeout: Duration) -> Script {
        self.step_timeout = timeout;
        self
    }

    /// Adds a step.
    pub fn step(mut self, step: Step) -> Script {
        self.steps.push(step);
        self
    }

    /// Sends `text` as is.
    pub fn send(self, text: impl AsRef<[u8]>) -> Script {
        self.step(Step::Send(text.as_ref().to_vec()))
    }

    /// Sends each line of `lines` (separated by `\n`) ended with CRLF, in one write.
    pub fn reply(self, lines: &str) -> Script {
        let mut bytes = Vec::new();
        for line in lines.split('\n') {
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        self.step(Step::Send(bytes))
    }

    /// Expects the line `line` exactly.
    pub fn expect(self, line: &str) -> Script {
        self.step(Step::Expect(line.as_bytes().to_vec()))
    }

    /// Expects a line starting with `prefix`.
    pub fn expect_prefix(self, prefix: &str) -> Script {
        self.step(Step::ExpectPrefix(prefix.as_bytes().to_vec()))
    }

    /// Reads a DATA body up to `CRLF.CRLF`.
    pub fn read_data(self) -> Script {
        self.step(Step::ReadData)
    }

    /// Reads `n` bytes (a BDAT chunk).
    pub fn read_bytes(self, n: usize) -> Script {
        self.step(Step::ReadBytes(n))
    }

    /// Sends `text` one byte every `interval`.
    pub fn drip(self, text: &str, interval: Duration) -> Script {
        self.step(Step::Drip {
            bytes: text.as_bytes().to_vec(),
            interval,
        })
    }

    /// Stays silent for `d`.
    pub fn pause(self, d: Duration) -> Script {
        self.step(Step::Pause(d))
    }

    /// Runs the TLS handshake.
    pub fn start_tls(self) -> Script {
        self.step(Step::StartTls)
    }

    /// Runs a TLS 1.2 handshake; the records after it are sealed by hand ([`Step::StartTls12`]).
    pub fn start_tls12(self) -> Script {
        self.step(Step::StartTls12)
    }

    /// Sends a TLS 1.2 HelloRequest ([`Step::HelloRequest`]).
    pub fn hello_request(self) -> Script {
        self.step(Step::HelloRequest)
    }

    /// Sends `close_notify`, then closes ([`Step::CloseNotify`]).
    pub fn close_notify(self) -> Script {
        self.step(Step::CloseNotify)
    }

    /// Waits for the client to close, failing if it sends anything.
    pub fn expect_eof(self) -> Script {
        self.step(Step::ExpectEof)
    }

    /// Reads until the client closes ([`Step::ReadToEof`]).
    pub fn read_to_eof(self) -> Script {
        self.step(Step::ReadToEof)
    }

    /// Closes the connection (under TLS, without `close_notify`).
    pub fn close(self) -> Script {
        self.step(Step::Close)
    }

    /// The usual opening: greeting, EHLO, and a multi-line EHLO reply with `capabilities`
    /// (one keyword line each).
    pub fn greet_ehlo(self, capabilities: &[&str]) -> Script {
        let ok = ReplyCode::OK;
        let mut ehlo = ok.to_string();
        if capabilities.is_empty() {
            ehlo.push_str(" test.invalid");
        } else {
            ehlo.push_str("-test.invalid");
            for (i, c) in capabilities.iter().enumerate() {
                let sep = if i + 1 == capabilities.len() {
                    ' '
                } else {
                    '-'
                };
                ehlo.push_str(&format!("\n{ok}{sep}{c}"));
            }
        }
        self.reply(&format!(
            "{} test.invalid ESMTP scripted",
            ReplyCode::SERVICE_READY
        ))
        .expect_prefix("EHLO ")
        .reply(&ehlo)
    }
}

/// What the server saw, returned by [`ScriptedServer::finish`].
#[derive(Debug, Clone)]
pub struct Record {
    /// Every byte received before TLS (or on a connection that never used TLS).
    pub clear_text: Vec<u8>,
    /// Every byte received inside TLS (decrypted).
    pub tls_text: Vec<u8>,
    /// Each DATA body (still dot-stuffed, with the final `.` line) or BDAT chunk read.
    pub messages: Vec<Vec<u8>>,
    /// The TLS alerts the client sent (level, description) after [`Step::StartTls12`].
    pub tls_alerts: Vec<(u8, u8)>,
    /// `Ok` when every step ran as scripted; otherwise which step failed and why.
    pub result: Result<(), String>,
    /// After a TLS 1.3 handshake: the server's `tls-exporter` channel-binding data
    /// (RFC 9266: label `EXPORTER-Channel-Binding`, empty context, 32 bytes), for checking
    /// the client's.
    pub tls_exporter: Option<Vec<u8>>,
}

impl Record {
    /// The lines the client sent in clear, without their CRLF (lossy UTF-8).
    pub fn clear_lines(&self) -> Vec<String> {
        lines(&self.clear_text)
    }

    /// The lines the client sent inside TLS.
    pub fn tls_lines(&self) -> Vec<String> {
        lines(&self.tls_text)
    }

    /// True when a line sent in clear starts with `prefix` (case-insensitive).
    pub fn sent_in_clear(&self, prefix: &str) -> bool {
        self.clear_lines()
            .iter()
            .any(|l| l.len() >= prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(prefix))
    }
}

impl Default for Record {
    fn default() -> Self {
        Record {
            clear_text: Vec::new(),
            tls_text: Vec::new(),
            messages: Vec::new(),
            tls_alerts: Vec::new(),
            result: Ok(()),
            tls_exporter: None,
        }
    }
}

fn lines(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The certificate the scripted server presents for `localhost` and `127.0.0.1`, and the CA
/// that issued it: the demo server's throwaway one, made once per process.
pub use smtp_demo_server::cert::{demo_cert as test_cert, DemoCert as TestCert};

/// A running scripted server: one connection, one script, on its own thread.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    handle: JoinHandle<Record>,
}

impl ScriptedServer {
    /// Binds `127.0.0.1:0` and runs `script` on the first connection.
    pub fn start(script: Script) -> io::Result<ScriptedServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let handle = thread::spawn(move || serve(listener, script));
        Ok(ScriptedServer { addr, handle })
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for the script to end (bounded by its step timeouts) and returns what it saw.
    pub fn finish(self) -> Record {
        self.handle.join().unwrap_or_else(|_| Record {
            result: Err("the script thread panicked".to_owned()),
            ..Record::default()
        })
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Tls12(Box<Tls12>),
    Closed,
}

struct Runner {
    conn: Conn,
    buf: Vec<u8>,
    record: Record,
    step_timeout: Duration,
}

fn serve(listener: TcpListener, script: Script) -> Record {
    let deadline = Instant::now() + script.step_timeout;
    if let Err(e) = listener.set_nonblocking(true) {
        return failed(format!("listener: {e}"));
    }
    let tcp = loop {
        match listener.accept() {
            Ok((tcp, _)) => break tcp,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return failed("no client connected in time".to_owned());
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return failed(format!("accept: {e}")),
        }
    };
    if let Err(e) = tcp
        .set_nonblocking(false)
        .and_then(|()| tcp.set_nodelay(true))
    {
        return failed(format!("socket: {e}"));
    }
    let mut runner = Runner {
        conn: Conn::Plain(tcp),
        buf: Vec::new(),
        record: Record::default(),
        step_timeout: script.step_timeout,
    };
    for (i, step) in script.steps.iter().enumerate() {
        if let Err(e) = runner.run(step) {
            runner.record.result = Err(format!("step {i} ({step:?}): {e}"));
            break;
        }
    }
    runner.close();
    runner.record
}

fn failed(msg: String) -> Record {
    Record {
        result: Err(msg),
        ..Record::default()
    }
}

impl Runner {
    fn tcp(&self) -> Option<&TcpStream> {
        match &self.conn {
            Conn::Plain(s) => Some(s),
            Conn::Tls(s) => Some(&s.sock),
            Conn::Tls12(s) => Some(&s.tcp),
            Conn::Closed => None,
        }
    }

    fn close(&mut self) {
        if let Some(tcp) = self.tcp() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
        if let Conn::Tls12(s) = &self.conn {
            self.record.tls_alerts.clone_from(&s.alerts);
        }
        self.conn = Conn::Closed;
    }

    fn close_notify(&mut self) -> Result<(), String> {
        match &mut self.conn {
            Conn::Tls(s) => {
                s.conn.send_close_notify();
                s.flush().map_err(|e| format!("close_notify: {e}"))?;
            }
            Conn::Tls12(_) => return Err("close_notify after StartTls12: not scripted".to_owned()),
            Conn::Plain(_) | Conn::Closed => {}
        }
        self.close();
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let r = match &mut self.conn {
            Conn::Plain(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Conn::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Conn::Tls12(s) => s.write(bytes),
            Conn::Closed => return Err("connection closed".to_owned()),
        };
        r.map_err(|e| format!("write: {e}"))
    }

    /// Reads more bytes into `buf` before `deadline`; `Ok(0)` at end of stream.
    fn fill(&mut self, deadline: Instant) -> Result<usize, String> {
        let now = Instant::now();
        if now >= deadline {
            return Err("timed out waiting for the client".to_owned());
        }
        let wait = deadline - now;
        let mut chunk = [0u8; 16 * 1024];
        let (r, tls) = match &mut self.conn {
            Conn::Plain(s) => {
                let _ = s.set_read_timeout(Some(wait));
                (s.read(&mut chunk), false)
            }
            Conn::Tls(s) => {
                let _ = s.sock.set_read_timeout(Some(wait));
                (s.read(&mut chunk), true)
            }
            Conn::Tls12(s) => {
                let _ = s.tcp.set_read_timeout(Some(wait));
                let mut got = Vec::new();
                let r = s.read(&mut got);
                let n = got.len().min(chunk.len());
                chunk[..n].copy_from_slice(&got[..n]);
                (r.map(|_| n), true)
            }
            Conn::Closed => return Ok(0),
        };
        match r {
            Ok(n) => {
                let got = &chunk[..n];
                if tls {
                    self.record.tls_text.extend_from_slice(got);
                } else {
                    self.record.clear_text.extend_from_slice(got);
                }
                self.buf.extend_from_slice(got);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err("timed out waiting for the client".to_owned())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(0),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn read_line(&mut self) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.step_timeout;
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).take(pos).collect();
                return Ok(line);
            }
            if self.buf.len() > 64 * 1024 {
                return Err("line longer than 64 KiB".to_owned());
            }
            if self.fill(deadline)? == 0 {
                return Err(format!(
                    "client closed the connection (partial line {:?})",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
        }
    }

    fn run(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Send(bytes) => self.write(bytes),
            Step::Expect(want) => {
                let line = self.read_line()?;
                if &line == want {
                    Ok(())
                } else {
                    Err(format!("got {:?}", String::from_utf8_lossy(&line)))
                }
            }
            Step::ExpectPrefix(want) => {
                let line = self.read_line()?;
                if line.len() >= want.len() && line[..want.len()].eq_ignore_ascii_case(want) {
                    Ok(())
                } else {
                    Err(format!("got {:?}", String::from_utf8_lossy(&line)))
                }
            }
            Step::ReadLine => self.read_line().map(drop),
            Step::ReadData => {
                let deadline = Instant::now() + self.step_timeout;
                let mut scan_from = 0;
                loop {
                    let at_start = self.buf.starts_with(b".\r\n");
                    let found = if at_start {
                        Some(3)
                    } else {
                        self.buf[scan_from..]
                            .windows(5)
                            .position(|w| w == b"\r\n.\r\n")
                            .map(|p| scan_from + p + 5)
                    };
                    if let Some(end) = found {
                        let msg: Vec<u8> = self.buf.drain(..end).collect();
                        self.record.messages.push(msg);
                        return Ok(());
                    }
                    scan_from = self.buf.len().saturating_sub(4);
                    if self.buf.len() > MAX_DATA {
                        return Err("message larger than MAX_DATA".to_owned());
                    }
                    if self.fill(deadline)? == 0 {
                        return Err("client closed the connection during DATA".to_owned());
                    }
                }
            }
            Step::ReadBytes(n) => {
                let deadline = Instant::now() + self.step_timeout;
                while self.buf.len() < *n {
                    if self.fill(deadline)? == 0 {
                        return Err("client closed the connection during BDAT".to_owned());
                    }
                }
                let chunk: Vec<u8> = self.buf.drain(..*n).collect();
                self.record.messages.push(chunk);
                Ok(())
            }
            Step::Drip { bytes, interval } => {
                for b in bytes {
                    thread::sleep(*interval);
                    if self.write(std::slice::from_ref(b)).is_err() {
                        // The client gave up (as it should on a drip): not a script failure.
                        return Ok(());
                    }
                }
                Ok(())
            }
            Step::Pause(d) => {
                thread::sleep(*d);
                Ok(())
            }
            Step::StartTls => self.start_tls(),
            Step::StartTls12 => self.start_tls12(),
            Step::HelloRequest => match &mut self.conn {
                Conn::Tls12(s) => s.hello_request().map_err(|e| format!("write: {e}")),
                _ => Err("HelloRequest needs StartTls12 first".to_owned()),
            },
            Step::ExpectEof => {
                let deadline = Instant::now() + self.step_timeout;
                loop {
                    if !self.buf.is_empty() {
                        return Err(format!(
                            "client sent {:?} instead of closing",
                            String::from_utf8_lossy(&self.buf)
                        ));
                    }
                    if self.fill(deadline)? == 0 {
                        return Ok(());
                    }
                }
            }
            Step::ReadToEof => {
                let deadline = Instant::now() + self.step_timeout;
                while self.fill(deadline)? > 0 {
                    if self.buf.len() > MAX_DATA {
                        return Err("more than MAX_DATA before the end of the stream".to_owned());
                    }
                }
                let rest = std::mem::take(&mut self.buf);
                self.record.messages.push(rest);
                Ok(())
            }
            Step::Close => {
                self.close();
                Ok(())
            }
            Step::CloseNotify => self.close_notify(),
        }
    }

    fn start_tls(&mut self) -> Result<(), String> {
        let config = test_cert()
            .server_config()
            .map_err(|e| format!("server config: {e}"))?;
        let (conn, tcp) = self.handshake(config)?;
        self.conn = Conn::Tls(Box::new(StreamOwned::new(conn, tcp)));
        Ok(())
    }

    fn start_tls12(&mut self) -> Result<(), String> {
        let (conn, tcp) = self.handshake(tls12::server_config()?)?;
        self.conn = Conn::Tls12(Box::new(Tls12::take_over(conn, tcp)?));
        Ok(())
    }

    /// The server side of a TLS handshake on the plain connection.
    fn handshake(
        &mut self,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> Result<(ServerConnection, TcpStream), String> {
        let Conn::Plain(mut tcp) = std::mem::replace(&mut self.conn, Conn::Closed) else {
            return Err("TLS already started".to_owned());
        };
        let mut conn = ServerConnection::new(config).map_err(|e| format!("TLS: {e}"))?;
        // Bytes the client sent right after its STARTTLS line belong to the handshake.
        let early = std::mem::take(&mut self.buf);
        let mut early = &early[..];
        while !early.is_empty() {
            conn.read_tls(&mut early).map_err(|e| format!("TLS: {e}"))?;
            conn.process_new_packets()
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        let deadline = Instant::now() + self.step_timeout;
        while conn.is_handshaking() {
            let now = Instant::now();
            if now >= deadline {
                return Err("TLS handshake timed out".to_owned());
            }
            let _ = tcp.set_read_timeout(Some(deadline - now));
            conn.complete_io(&mut tcp)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        while conn.wants_write() {
            conn.write_tls(&mut tcp)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
            self.record.tls_exporter = conn
                .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", Some(&[]))
                .ok();
        }
        Ok((conn, tcp))
    }
}
