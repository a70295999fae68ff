//! `--json`: one JSON object on stdout describing the run, whether it succeeded or not.
//!
//! The schema (`schema_version` 1) is the README's; its field names are stable: a field
//! may be added, none renamed or removed without a new `schema_version`.

use std::time::Instant;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use smtp_client::SmtpClient;
use smtp_proto::Reply;

use crate::cli::Args;
use crate::exit::{Failure, Kind};
use crate::timeline::{Marks, Stage, Timeline, Timings};

/// The version of the JSON schema.
pub const SCHEMA_VERSION: u32 = 1;

/// What became of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The message was delivered to it (the final reply, or its own reply after the data
    /// under LMTP and PRDR, was positive).
    Accepted,
    /// The server refused it, at RCPT or in its reply after the data.
    Refused,
    /// It got no answer: the run stopped before, or a later transaction failed.
    NotSent,
}

/// A recipient and what became of it.
#[derive(Debug, Clone)]
pub struct RecipientOutcome {
    /// The address (`bob@example.test`).
    pub address: String,
    /// Its status.
    pub status: Status,
    /// The reply to its RCPT, when it got one.
    pub reply: Option<Reply>,
    /// Its own reply after the data (LMTP, PRDR), when there is one.
    pub data_reply: Option<Reply>,
}

/// What one send saw of the session, filled in as it goes (a failure leaves the rest
/// empty).
#[derive(Debug, Default)]
pub struct Observed {
    /// The server's address.
    pub address: Option<String>,
    /// The greeting.
    pub banner: Option<Reply>,
    /// TLS version and cipher suite, when TLS was used.
    pub tls: Option<(&'static str, &'static str)>,
    /// The SASL mechanism used, or the one asked for when AUTH failed.
    pub mechanism: Option<String>,
    /// When the connection opened and TLS came up, from the client.
    pub marks: Marks,
    /// Each recipient's outcome.
    pub recipients: Vec<RecipientOutcome>,
    /// The final reply to the message.
    pub reply: Option<Reply>,
    /// The size of the message sent, when known before sending.
    pub message_size: Option<u64>,
    /// The stage after which the run stopped on purpose (`--quit-after`), if it did.
    pub stopped_after: Option<String>,
}

impl Observed {
    /// Records what the client knows once connected.
    pub fn connected(&mut self, client: &SmtpClient, implicit_tls: bool) {
        self.address = Some(client.peer().to_string());
        self.banner = client.banner().cloned();
        self.tls = client.tls_version().zip(client.tls_cipher_suite());
        self.marks = Marks {
            connected: Some(client.connected_at()),
            tls: client.tls_established_at(),
            implicit_tls,
        };
    }
}

/// A reply in JSON: `{"code": 250, "enhanced_code": "2.0.0", "lines": ["2.0.0 Ok"]}`.
#[derive(Debug, Serialize)]
pub struct ReplyJson {
    /// The three-digit code.
    pub code: u16,
    /// The RFC 3463 enhanced status code of the first line, if any.
    pub enhanced_code: Option<String>,
    /// Each line's text after the code (lossy UTF-8).
    pub lines: Vec<String>,
}

impl From<&Reply> for ReplyJson {
    fn from(r: &Reply) -> ReplyJson {
        ReplyJson {
            code: r.code().get(),
            enhanced_code: r.enhanced().map(|e| e.to_string()),
            lines: r
                .lines()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect(),
        }
    }
}

fn reply(r: &Option<Reply>) -> Option<ReplyJson> {
    r.as_ref().map(ReplyJson::from)
}

/// The server part.
#[derive(Debug, Serialize)]
pub struct ServerJson {
    /// The host as given (`--server`).
    pub host: String,
    /// The port connected to; `null` when the command line was refused.
    pub port: Option<u16>,
    /// The address actually connected to, once connected.
    pub address: Option<String>,
    /// The greeting.
    pub banner: Option<ReplyJson>,
}

/// The TLS part.
#[derive(Debug, Serialize)]
pub struct TlsJson {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: &'static str,
    /// The IANA name of the cipher suite.
    pub cipher: &'static str,
}

/// The AUTH part.
#[derive(Debug, Serialize)]
pub struct AuthJson {
    /// The mechanism used (`SCRAM-SHA-256`); when AUTH failed, the one `--auth` asked for,
    /// or `null` after `--auth auto`.
    pub mechanism: Option<String>,
    /// The user.
    pub user: String,
}

/// One recipient.
#[derive(Debug, Serialize)]
pub struct RecipientJson {
    /// The address (`bob@example.test`).
    pub address: String,
    /// `accepted`, `refused` or `not_sent`.
    pub status: Status,
    /// The reply to its RCPT.
    pub reply: Option<ReplyJson>,
    /// Its own reply after the data (LMTP, PRDR).
    pub data_reply: Option<ReplyJson>,
}

/// Why the run failed.
#[derive(Debug, Serialize)]
pub struct FailureJson {
    /// The stage it stopped in (a [`Stage`] name, or `input` for bad input).
    pub stage: &'static str,
    /// The line also printed on stderr.
    pub message: String,
    /// The server's reply that ended it, when one did.
    pub reply: Option<ReplyJson>,
}

/// The time of each stage, in milliseconds, in a fixed order, then `total`.
#[derive(Debug)]
pub struct TimingsJson(pub Timings);

impl Serialize for TimingsJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let mut map = serializer.serialize_map(Some(self.0.stages.len() + 1))?;
        for (stage, took) in &self.0.stages {
            map.serialize_entry(stage.name(), &ms(*took))?;
        }
        map.serialize_entry("total", &ms(self.0.total))?;
        map.end()
    }
}

/// The whole object.
#[derive(Debug, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// True when the message was accepted for every recipient (exit status 0).
    pub ok: bool,
    /// The exit status.
    pub exit_code: u8,
    /// The server.
    pub server: ServerJson,
    /// TLS, when used.
    pub tls: Option<TlsJson>,
    /// AUTH, when asked for.
    pub auth: Option<AuthJson>,
    /// The envelope sender (`""` for the null sender).
    pub from: String,
    /// Each recipient.
    pub recipients: Vec<RecipientJson>,
    /// The size of the message in bytes, when known before sending.
    pub message_size: Option<u64>,
    /// The final reply to the message.
    pub reply: Option<ReplyJson>,
    /// Why the run failed; `null` on success.
    pub failure: Option<FailureJson>,
    /// The stage after which the run stopped on purpose, if it did.
    pub stopped_after: Option<String>,
    /// Milliseconds per stage (see the README), and `total`.
    pub timings_ms: TimingsJson,
}

/// The run as the JSON report needs it.
pub struct Run<'a> {
    /// Host and port as given.
    pub host: &'a str,
    /// Port connected to.
    pub port: u16,
    /// The envelope sender.
    pub from: String,
    /// The recipients as given, for a run that stopped before any answer.
    pub to: Vec<String>,
    /// The user, when AUTH was asked for.
    pub user: Option<&'a str>,
    /// What the send saw.
    pub observed: Observed,
    /// The lines' times.
    pub timeline: &'a Timeline,
    /// When the run ended.
    pub end: Instant,
}

/// The stage of a failure the lines do not place: from the failure's own line.
fn stage_of_line(failure: &Failure) -> &'static str {
    if failure.kind == Kind::Usage {
        return "input";
    }
    let word = failure.line.split(' ').next().unwrap_or("");
    Stage::ALL
        .iter()
        .map(|s| s.name())
        .find(|n| *n == word)
        .unwrap_or(match word {
            "bdat" => "data",
            "starttls" => "tls",
            "helo" | "lhlo" => "ehlo",
            "send" => "mail",
            _ => "connect",
        })
}

impl Run<'_> {
    /// The report of the run, with `result` its end.
    pub fn report(self, result: &Result<(), Failure>) -> Report {
        let o = self.observed;
        let failure = result.as_ref().err().map(|f| {
            let stage = match f.kind {
                Kind::Usage => "input",
                // Where the code that failed says it was, else where the lines place it.
                _ => f
                    .stage
                    .map(|s| s.name())
                    .or_else(|| {
                        self.timeline
                            .failed_stage(o.marks, self.end)
                            .map(Stage::name)
                    })
                    .unwrap_or_else(|| stage_of_line(f)),
            };
            FailureJson {
                stage,
                message: f.line.clone(),
                reply: reply(&f.reply),
            }
        });
        let recipients = if o.recipients.is_empty() {
            self.to
                .iter()
                .map(|a| RecipientJson {
                    address: a.clone(),
                    status: Status::NotSent,
                    reply: None,
                    data_reply: None,
                })
                .collect()
        } else {
            o.recipients
                .iter()
                .map(|r| RecipientJson {
                    address: r.address.clone(),
                    status: r.status,
                    reply: reply(&r.reply),
                    data_reply: reply(&r.data_reply),
                })
                .collect()
        };
        let exit_code = match result {
            Ok(()) => 0,
            Err(f) => f.kind.code(),
        };
        Report {
            schema_version: SCHEMA_VERSION,
            ok: result.is_ok(),
            exit_code,
            server: ServerJson {
                host: self.host.to_owned(),
                port: Some(self.port),
                address: o.address,
                banner: reply(&o.banner),
            },
            tls: o.tls.map(|(version, cipher)| TlsJson { version, cipher }),
            auth: self.user.map(|user| AuthJson {
                mechanism: o.mechanism,
                user: user.to_owned(),
            }),
            from: self.from,
            recipients,
            message_size: o.message_size,
            reply: reply(&o.reply),
            failure,
            stopped_after: o.stopped_after,
            timings_ms: TimingsJson(self.timeline.timings(o.marks, self.end)),
        }
    }
}

/// Prints the report of a run whose command line was refused (exit 2): what was given,
/// and why.
pub fn print_input_failure(args: &Args, failure: &Failure) {
    let not_sent = |a: &String| RecipientJson {
        address: a.clone(),
        status: Status::NotSent,
        reply: None,
        data_reply: None,
    };
    print(&Report {
        schema_version: SCHEMA_VERSION,
        ok: false,
        exit_code: failure.kind.code(),
        server: ServerJson {
            host: args.server.clone().unwrap_or_default(),
            port: None,
            address: None,
            banner: None,
        },
        tls: None,
        auth: args.user.as_ref().map(|user| AuthJson {
            mechanism: None,
            user: user.clone(),
        }),
        from: args.from.clone().unwrap_or_default(),
        recipients: args.to.iter().map(not_sent).collect(),
        message_size: None,
        reply: None,
        failure: Some(FailureJson {
            stage: "input",
            message: failure.line.clone(),
            reply: None,
        }),
        stopped_after: None,
        timings_ms: TimingsJson(Timings {
            stages: Vec::new(),
            total: std::time::Duration::ZERO,
        }),
    });
}

/// Prints `report` on stdout as one line of JSON.
pub fn print(report: &Report) {
    match serde_json::to_string(report) {
        Ok(json) => println!("{json}"),
        // Cannot happen: every field serialises; say so rather than print half an object.
        Err(e) => eprintln!("smtp-send: cannot write the JSON report: {e}"),
    }
}
