//! One SMTP session: the command loop that reads a line, dispatches it, and ends the session
//! on QUIT, a timeout or too many errors; the session state (HELO name, user, TLS, the mail
//! transaction); and the commands that only change that state (EHLO, STARTTLS, RSET, ...).
//! AUTH, MAIL/RCPT and DATA/BDAT have modules of their own.

use std::net::TcpStream;
use std::sync::atomic::Ordering;

use smtp_proto::MAX_COMMAND_LINE;

use crate::auth::offered;
use crate::config::DemoConfig;
use crate::log::{loggable, SessionLog};
use crate::server::{lock, Shared};
use crate::transport::{End, Stream};

/// Errors after which the server closes the connection (421), as real servers do.
const MAX_ERRORS: u32 = 20;

/// Command lines kept in one session's log: a client sending NOOP for ever must not grow it
/// without bound.
pub(crate) const MAX_LOGGED_COMMANDS: usize = 1000;

/// Sessions kept in the log; later ones are served but not logged.
pub(crate) const MAX_LOGGED_SESSIONS: usize = 10_000;

/// The state of the current mail transaction.
#[derive(Default)]
pub(crate) struct Transaction {
    pub(crate) from: Option<String>,
    pub(crate) mail_params: Vec<String>,
    pub(crate) to: Vec<String>,
    /// The parameters of each RCPT in `to`, in the same order.
    pub(crate) rcpt_params: Vec<Vec<String>>,
    /// BDAT chunks so far (`None` before the first).
    pub(crate) chunks: Option<Vec<u8>>,
    /// A BDAT chunk made the message too big: later chunks are read and dropped.
    pub(crate) too_big: bool,
}

/// One client's SMTP session: its socket, buffers and what the client has established.
pub(crate) struct Connection<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) stream: Stream,
    /// Bytes read and not yet consumed (a pipelined batch may hold several commands).
    pub(crate) input: Vec<u8>,
    /// Replies queued until the server next waits for input.
    pub(crate) output: Vec<u8>,
    /// The name given in EHLO/HELO (`None` until then, and again after STARTTLS).
    pub(crate) helo: Option<String>,
    /// The authenticated user and the mechanism used.
    pub(crate) auth: Option<(String, String)>,
    pub(crate) tls: bool,
    pub(crate) txn: Transaction,
    /// Errors so far; at [`MAX_ERRORS`] the session ends.
    pub(crate) errors: u32,
    /// This session's entry in the store's session logs.
    pub(crate) log_index: usize,
}

impl<'a> Connection<'a> {
    pub(crate) fn new(tcp: TcpStream, shared: &'a Shared) -> Connection<'a> {
        let peer = tcp
            .peer_addr()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        // Past the bound, sessions are served but not logged (usize::MAX matches none).
        let log_index = {
            let mut store = lock(&shared.store);
            if store.sessions.len() < MAX_LOGGED_SESSIONS {
                store.sessions.push(SessionLog::new(peer));
                store.sessions.len() - 1
            } else {
                usize::MAX
            }
        };
        Connection {
            shared,
            stream: Stream::Plain(tcp),
            input: Vec::new(),
            output: Vec::new(),
            helo: None,
            auth: None,
            tls: false,
            txn: Transaction::default(),
            errors: 0,
            log_index,
        }
    }

    /// Adds a command line to this session's log, up to [`MAX_LOGGED_COMMANDS`]; later ones
    /// are only counted.
    fn log_command(&self, line: &str) {
        if let Some(log) = lock(&self.shared.store).sessions.get_mut(self.log_index) {
            if log.commands.len() < MAX_LOGGED_COMMANDS {
                log.commands.push(loggable(line));
            } else {
                log.unlogged += 1;
            }
        }
    }

    pub(crate) fn config(&self) -> &DemoConfig {
        &self.shared.config
    }

    /// Greets the client and answers its commands until the session ends.
    pub(crate) fn serve(&mut self) {
        if self.config().implicit_tls && self.start_tls().is_err() {
            return;
        }
        let greeting = format!("{} ESMTP smtp-demo-server ready", self.config().hostname);
        self.reply(220, &[&greeting]);
        let end = loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                break End::Say("421 4.3.2 Server shutting down");
            }
            let line = match self.read_line(MAX_COMMAND_LINE) {
                Ok(line) => line,
                Err(end) => break end,
            };
            match self.command(&line) {
                Ok(true) => {}
                Ok(false) => break End::Gone,
                Err(end) => break end,
            }
            if self.errors >= MAX_ERRORS {
                break End::Say("421 4.7.0 Too many errors, closing connection");
            }
        };
        if let End::Say(text) = end {
            self.output.extend_from_slice(text.as_bytes());
            self.output.extend_from_slice(b"\r\n");
        }
        let _ = self.flush();
    }

    /// Handles one command line. `Ok(false)`: the session is over (QUIT).
    fn command(&mut self, line: &[u8]) -> Result<bool, End> {
        let Ok(line) = std::str::from_utf8(line) else {
            self.error(500, "5.5.2 Syntax error: command is not UTF-8");
            return Ok(true);
        };
        if line.bytes().any(|b| b == b'\r' || b == 0) {
            self.error(500, "5.5.2 Syntax error: control character in command");
            return Ok(true);
        }
        self.log_command(line);
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, a),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.ehlo(arg, true),
            "HELO" => self.ehlo(arg, false),
            "STARTTLS" => return self.starttls(arg),
            "AUTH" => return self.auth(arg),
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => return self.data(arg),
            "BDAT" => return self.bdat(arg),
            "RSET" => {
                self.txn = Transaction::default();
                self.reply(250, &["2.0.0 Reset"]);
            }
            "NOOP" => self.reply(250, &["2.0.0 OK"]),
            "VRFY" => {
                if arg.is_empty() {
                    self.error(501, "5.5.4 VRFY needs an argument");
                } else {
                    self.reply(252, &["2.5.2 Cannot VRFY user, but will accept message"]);
                }
            }
            "HELP" => self.reply(
                214,
                &[
                    "2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT",
                    "2.0.0 RSET NOOP VRFY HELP QUIT",
                ],
            ),
            "QUIT" => {
                self.reply(221, &["2.0.0 Bye"]);
                return Ok(false);
            }
            _ => self.error(500, "5.5.2 Command not recognized"),
        }
        Ok(true)
    }

    fn ehlo(&mut self, arg: &str, extended: bool) {
        let name = arg.trim();
        if name.is_empty() || name.contains(' ') || smtp_proto::Domain::new(name).is_err() {
            self.error(501, "5.5.4 A domain name or address literal is required");
            return;
        }
        self.helo = Some(name.to_owned());
        self.txn = Transaction::default();
        let host = self.config().hostname.clone();
        let first = format!("{host} Hello {name}");
        if !extended {
            self.reply(250, &[&first]);
            return;
        }
        let size = format!("SIZE {}", self.config().max_message_size);
        let external = self.client_identity().is_some();
        let auth = format!(
            "AUTH {}",
            offered(self.tls, external).collect::<Vec<_>>().join(" ")
        );
        let mut lines: Vec<&str> = vec![
            &first,
            "PIPELINING",
            "8BITMIME",
            "SMTPUTF8",
            &size,
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
            "DSN",
        ];
        if !self.tls {
            lines.push("STARTTLS");
        }
        if self.auth.is_none() {
            lines.push(&auth);
        }
        self.reply(250, &lines);
    }

    fn starttls(&mut self, arg: &str) -> Result<bool, End> {
        if !arg.is_empty() {
            self.error(501, "5.5.4 STARTTLS takes no argument");
        } else if self.tls {
            self.error(503, "5.5.1 TLS is already active");
        } else if self.helo.is_none() {
            self.error(503, "5.5.1 Send EHLO first");
        } else {
            self.reply(220, &["2.0.0 Ready to start TLS"]);
            // Anything the client pipelined after STARTTLS was sent in clear: drop it
            // (RFC 3207 section 6, the STARTTLS command injection attack).
            self.input.clear();
            self.start_tls()?;
            // RFC 3207 4.2: the client starts over with EHLO; forget what came before.
            self.helo = None;
            self.auth = None;
            self.txn = Transaction::default();
        }
        Ok(true)
    }
}
