//! Failures and their exit codes: one line on stderr naming the stage, one code per kind.

use std::fmt;
use std::process::ExitCode;

use smtp_client::{Error, ErrorKind};
use smtp_proto::Reply;

use crate::stage::Stage;

/// What went wrong, as far as the exit status tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anything else: exit 1.
    Other,
    /// Usage or bad input, found before any connection: exit 2.
    Usage,
    /// Connection or TLS: exit 3.
    Connection,
    /// Authentication: exit 4.
    Auth,
    /// The server refused the greeting, the sender, a recipient or the message: exit 5.
    /// Also a partial failure: the message reached some recipients but not all (one refused
    /// at RCPT, or under LMTP and PRDR by its own reply after the data); the line names each
    /// recipient that did not get it.
    Refused,
}

impl Kind {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Kind::Other => 1,
            Kind::Usage => 2,
            Kind::Connection => 3,
            Kind::Auth => 4,
            Kind::Refused => 5,
        }
    }

    /// As a process exit code.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// A failure: its kind, the line printed on stderr (`auth failed: 535 5.7.8 ...`) and,
/// once the run had started, the stage it failed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: Kind,
    /// The line, without the program name.
    pub line: String,
    /// The server's reply that caused it, when one did (for `--json`).
    pub reply: Option<Reply>,
    /// The stage the run failed at; `None` for a failure before any connection (usage).
    pub stage: Option<Stage>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// Usage or bad input.
    pub fn usage(msg: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Usage,
            line: msg.into(),
            reply: None,
            stage: None,
        }
    }

    /// A failure of this kind with this line.
    pub fn new(kind: Kind, line: impl Into<String>) -> Failure {
        Failure {
            kind,
            line: line.into(),
            reply: None,
            stage: None,
        }
    }

    /// The same failure, caused by the server's `reply`.
    pub fn with_reply(mut self, reply: Option<Reply>) -> Failure {
        self.reply = reply;
        self
    }

    /// The same failure, met at `stage` (an earlier stage already set is kept: it is the
    /// more precise).
    pub fn at(mut self, stage: Stage) -> Failure {
        self.stage.get_or_insert(stage);
        self
    }

    /// Classifies a client error met at `stage` ("connect", "mail", "data", ...).
    pub fn from_client(stage: &str, err: &Error) -> Failure {
        let kind = classify(err);
        let line = match err {
            // The reply is what a person needs; the command is already named by the stage.
            Error::Refused { command, reply } => {
                let verb = command
                    .split([' ', ':'])
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let stage = match verb.as_str() {
                    "" => stage.to_owned(),
                    v => v.to_owned(),
                };
                format!("{stage} failed: {reply}")
            }
            Error::RecipientsRefused { refused } => {
                let each: Vec<String> = refused.iter().map(ToString::to_string).collect();
                format!("rcpt failed: {}", each.join("; "))
            }
            Error::Tls(tls) => format!("tls failed: {tls}"),
            Error::TlsRequired(_) => format!("tls failed: {err}"),
            other => format!("{stage} failed: {other}"),
        };
        Failure {
            kind,
            line,
            reply: err.reply().cloned(),
            stage: None,
        }
    }
}

/// The exit kind of a client error, from the client's own [`ErrorKind`].
pub fn classify(err: &Error) -> Kind {
    match err.kind() {
        ErrorKind::Connection | ErrorKind::Tls | ErrorKind::Protocol => Kind::Connection,
        ErrorKind::Refused | ErrorKind::NotSupported => Kind::Refused,
        ErrorKind::Input => Kind::Usage,
        _ => Kind::Other,
    }
}
