//! One message through one server: connect, AUTH, send, QUIT.

use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use smtp_client::{ClientConfig, Delivery, Error, Timeouts, TlsConfig, TlsMode};
use smtp_proto::ForwardPath;

use crate::auth::ServerName;
use crate::cli::{Body, Plan, TlsArg};
use crate::composition::Composition;
use crate::conversation::{self, Opened, Ready, Stopped};
use crate::exit::{Failure, Kind};
use crate::message::{compose, id_domain};
use crate::recipients;
use crate::report::{Observed, RecipientOutcome, Status};
use crate::stage::Stage;
use crate::transcript::Printer;

/// Where the server's certificate chain is trusted from.
pub enum Trust {
    /// The bundled Mozilla roots, plus `--ca-file` if given.
    Default,
    /// Only this CA (the demo server's).
    Only(CertificateDer<'static>),
}

/// What a successful send produced.
#[derive(Debug)]
pub struct Sent {
    /// The mechanism used, when AUTH was done.
    pub mechanism: Option<String>,
    /// The final reply text (`250 2.0.0 Ok: queued as ...`).
    pub reply: String,
    /// Recipients the message reached (under LMTP and PRDR, those whose own reply after
    /// the data was a success).
    pub accepted: usize,
    /// Where `--quit-after` stopped the run, when it did (nothing was delivered then).
    pub stopped_after: Option<Stopped>,
}

impl Sent {
    fn stopped(mechanism: Option<String>, stopped: Stopped) -> Sent {
        Sent {
            mechanism: mechanism.or_else(|| stopped.mechanism.clone()),
            reply: stopped.reply.clone().unwrap_or_default(),
            accepted: 0,
            stopped_after: Some(stopped),
        }
    }
}

fn tls_mode(tls: TlsArg) -> TlsMode {
    match tls {
        TlsArg::Starttls => TlsMode::StartTlsRequired,
        TlsArg::Implicit => TlsMode::Implicit,
        TlsArg::None => TlsMode::None,
        TlsArg::Opportunistic => TlsMode::StartTlsOpportunistic,
    }
}

/// The port when `--server` has none.
pub fn default_port(tls: TlsArg, submission: bool) -> u16 {
    match (tls, submission) {
        (TlsArg::Implicit, _) => 465,
        (_, true) => 587,
        _ => 25,
    }
}

/// The client configuration for `plan`; reads the CA file (a bad one is a usage error).
pub fn client_config(plan: &Plan, trust: Trust) -> Result<ClientConfig, Failure> {
    let mut tls = match trust {
        Trust::Default => TlsConfig::webpki_roots(),
        Trust::Only(ca) => TlsConfig::no_default_roots().add_ca_der(ca),
    };
    if let Some(path) = &plan.ca_file {
        tls = tls
            .add_ca_pem_file(path)
            .map_err(|e| Failure::usage(format!("--ca-file {}: {e}", path.display())))?;
    }
    if let Some(name) = &plan.tls_server_name {
        tls = tls.server_name(name.clone());
    }
    let tls = crate::connection::apply_tls(&plan.link, tls)?;
    let mut config = ClientConfig::new(plan.host.clone())
        .port(
            plan.port
                .unwrap_or_else(|| default_port(plan.tls, plan.submission)),
        )
        .tls_mode(tls_mode(plan.tls))
        .tls(tls)
        .timeouts(Timeouts::uniform(plan.timeout))
        .pipelining(plan.pipelining);
    if let Some(helo) = &plan.helo {
        config = config.hello(helo.clone());
    }
    if let Some(proxy) = &plan.proxy {
        config = config.proxy(proxy.clone());
    }
    let mut printer = plan.transcript.then(|| {
        Printer::new(
            plan.observe
                .transcript_time
                .then(|| plan.observe.timeline.started()),
        )
    });
    let timeline = plan.observe.json.then(|| plan.observe.timeline.clone());
    if printer.is_some() || timeline.is_some() {
        config = config.transcript(move |direction, line| {
            if let Some(timeline) = &timeline {
                timeline.record(direction, line);
            }
            if let Some(printer) = &mut printer {
                printer.line(direction, line);
            }
        });
    }
    Ok(crate::connection::apply(&plan.link, config))
}

/// The message composed per `plan`, with a new Date and Message-ID.
pub fn composed(plan: &Plan, composition: &Composition, now: SystemTime) -> Vec<u8> {
    compose(composition, &plan.from, &plan.to, &id_domain(plan), now)
}

/// Runs one send per `plan` with `config`.
pub fn send(plan: &mut Plan, config: ClientConfig) -> Result<Sent, Failure> {
    send_observed(plan, config, &mut Observed::default())
}

/// Runs one send per `plan` with `config`, recording in `observed` what it sees.
pub fn send_observed(
    plan: &mut Plan,
    config: ClientConfig,
    observed: &mut Observed,
) -> Result<Sent, Failure> {
    let port = plan
        .port
        .unwrap_or_else(|| default_port(plan.tls, plan.submission));
    let server = ServerName {
        host: plan.tls_server_name.as_deref().unwrap_or(&plan.host),
        port,
    };
    let Ready {
        mut client,
        mechanism,
    } = match conversation::open(plan, config, server, observed)? {
        Opened::Ready(ready) => *ready,
        Opened::Stopped(stopped) => {
            observed.stopped_after = Some(stopped.stage.name().to_owned());
            return Ok(Sent::stopped(None, stopped));
        }
    };
    if let Some(stage @ (Stage::Mail | Stage::Rcpt | Stage::Data)) = plan.link.quit_after {
        let stopped = conversation::transaction_until(&mut client, plan, stage)?;
        observed.stopped_after = Some(stopped.stage.name().to_owned());
        // Dropped without QUIT after DATA's 354: see `Stage::Data`.
        return Ok(Sent::stopped(mechanism, stopped));
    }
    let mut envelope = plan
        .extensions
        .envelope(&plan.from, &plan.to)
        .prefer_chunking(plan.bdat);
    let body = std::mem::replace(&mut plan.body, Body::Generated(Composition::default()));
    // Recipients past the server's limit for one transaction get the message in a new
    // one: the body is read again, which a file or a composed message allows. The size
    // declared is checked against the server's SIZE before MAIL: a message too big is
    // refused with nothing of it sent.
    let delivery = match body {
        Body::Generated(composition) => {
            let message = composed(plan, &composition, SystemTime::now());
            observed.message_size = Some(message.len() as u64);
            envelope = envelope.size(message.len() as u64);
            client.send_to_all(&envelope, std::io::Cursor::new(message))
        }
        Body::File(file, len) => {
            observed.message_size = Some(len);
            envelope = envelope.size(len);
            client.send_to_all(&envelope, file)
        }
        Body::Stdin => client
            .send(&envelope, std::io::stdin().lock())
            .map(|report| Delivery {
                transactions: vec![report],
                stopped: None,
            }),
    }
    .map_err(|e| {
        if let Error::RecipientsRefused { refused } = &e {
            observed.recipients = refused
                .iter()
                .map(|r| RecipientOutcome {
                    address: address(&r.recipient),
                    status: Status::Refused,
                    reply: Some(r.reply.clone()),
                    data_reply: None,
                })
                .collect();
        }
        Failure::from_client("send", &e).at(Stage::of_transaction_error(&e))
    })?;
    observed.recipients = outcomes(&delivery, &plan.to);
    observed.reply = delivery.transactions.last().map(|t| t.reply.clone());
    // The message is in; a failed QUIT changes nothing for it.
    let _ = client.quit();
    // Each recipient's own reply after the data (LMTP, PRDR), before the outcome.
    if !plan.quiet {
        for line in recipients::reply_lines(&delivery) {
            println!("{line}");
        }
    }
    let left_over = delivery
        .transactions
        .last()
        .into_iter()
        .flat_map(|t| t.deferred.iter())
        .map(|d| format!("{d} (past the server's recipient limit; stdin cannot be read again)"));
    let unsent = delivery.stopped.iter().flat_map(|(left, err)| {
        left.iter()
            .map(move |r| format!("{r}: not sent, a later transaction failed: {err}"))
    });
    let failed: Vec<String> = delivery
        .refused()
        .map(ToString::to_string)
        .chain(recipients::refused_after_data(&delivery))
        .chain(left_over)
        .chain(unsent)
        .collect();
    let accepted = recipients::delivered(&delivery);
    if !failed.is_empty() {
        let first_refusal = delivery
            .refused()
            .next()
            .or_else(|| delivery.transactions.last()?.deferred.first())
            .map(|r| &r.reply)
            .or_else(|| {
                // Refused by its own reply after the data (LMTP, PRDR).
                delivery
                    .transactions
                    .iter()
                    .flat_map(|t| &t.per_recipient)
                    .map(|r| &r.reply)
                    .find(|reply| !reply.is_positive_completion())
            })
            .cloned();
        // Refused only by their replies after the data (LMTP, PRDR): the data stage.
        let after_data = failed.len() == recipients::refused_after_data(&delivery).len();
        let (verb, stage) = match after_data {
            true => ("data", Stage::Data),
            false => ("rcpt", Stage::Rcpt),
        };
        return Err(Failure::new(
            Kind::Refused,
            format!(
                "{verb} failed: {} (the message went to the {accepted} other recipient(s))",
                failed.join("; "),
            ),
        )
        .with_reply(first_refusal)
        .at(stage));
    }
    let reply = delivery
        .transactions
        .last()
        .map(|t| t.reply.to_string())
        .unwrap_or_default();
    Ok(Sent {
        mechanism,
        reply,
        accepted,
        stopped_after: None,
    })
}

/// An address without its angle brackets, as the JSON report gives it.
pub fn address(path: &ForwardPath) -> String {
    let text = path.to_string();
    text.strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .map(str::to_owned)
        .unwrap_or(text)
}

/// Each recipient's outcome in `delivery`, in the order of `to`.
fn outcomes(delivery: &Delivery, to: &[ForwardPath]) -> Vec<RecipientOutcome> {
    let mut out: Vec<(&ForwardPath, RecipientOutcome)> = Vec::new();
    for t in &delivery.transactions {
        for accepted in &t.accepted_replies {
            let data_reply = t
                .per_recipient
                .iter()
                .find(|r| r.recipient == accepted.recipient)
                .map(|r| r.reply.clone());
            let refused_after_data = data_reply
                .as_ref()
                .is_some_and(|r| !r.is_positive_completion());
            out.push((
                &accepted.recipient,
                RecipientOutcome {
                    address: address(&accepted.recipient),
                    status: if refused_after_data {
                        Status::Refused
                    } else {
                        Status::Accepted
                    },
                    reply: Some(accepted.reply.clone()),
                    data_reply,
                },
            ));
        }
        for refused in &t.refused {
            out.push((
                &refused.recipient,
                RecipientOutcome {
                    address: address(&refused.recipient),
                    status: Status::Refused,
                    reply: Some(refused.reply.clone()),
                    data_reply: None,
                },
            ));
        }
    }
    // Past the limit in the last transaction (the body could not be read again).
    for deferred in delivery
        .transactions
        .last()
        .into_iter()
        .flat_map(|t| &t.deferred)
    {
        out.push((
            &deferred.recipient,
            RecipientOutcome {
                address: address(&deferred.recipient),
                status: Status::NotSent,
                reply: Some(deferred.reply.clone()),
                data_reply: None,
            },
        ));
    }
    for left in delivery.unsent() {
        out.push((
            left,
            RecipientOutcome {
                address: address(left),
                status: Status::NotSent,
                reply: None,
                data_reply: None,
            },
        ));
    }
    out.sort_by_key(|(r, _)| to.iter().position(|t| t == *r).unwrap_or(usize::MAX));
    out.into_iter().map(|(_, o)| o).collect()
}

/// The line printed when `--quit-after` stopped the run:
/// `stopped after auth as asked (QUIT sent): 235 2.7.0 Authentication successful`.
pub fn stopped_line(stopped: &Stopped, mechanism: Option<&str>) -> String {
    let how = match stopped.stage {
        Stage::Data => "connection closed, no message sent",
        _ => "QUIT sent",
    };
    let mut line = format!("stopped after {} as asked ({how})", stopped.stage);
    if let Some(m) = mechanism {
        line.push_str(&format!(", authenticated with {m}"));
    }
    if let Some(reply) = &stopped.reply {
        line.push_str(&format!(": {reply}"));
    }
    if let Some(note) = &stopped.note {
        line.push_str(&format!(" ({note})"));
    }
    line
}
