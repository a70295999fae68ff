//! One message through one server: connect, AUTH, send, QUIT.

use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use smtp_client::{ClientConfig, Delivery, Timeouts, TlsConfig, TlsMode};

use crate::auth::ServerName;
use crate::cli::{Body, Plan, TlsArg};
use crate::conversation::{self, Opened, Ready, Stopped};
use crate::exit::{Failure, Kind};
use crate::message::{id_domain, test_message};
use crate::recipients;
use crate::stage::Stage;

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
    if plan.transcript {
        config = config.transcript(|direction, line| eprintln!("{direction} {line}"));
    }
    Ok(crate::connection::apply(&plan.link, config))
}

/// Runs one send per `plan` with `config`.
pub fn send(plan: &mut Plan, config: ClientConfig) -> Result<Sent, Failure> {
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
    } = match conversation::open(plan, config, server)? {
        Opened::Ready(ready) => *ready,
        Opened::Stopped(stopped) => return Ok(Sent::stopped(None, stopped)),
    };
    if let Some(stage @ (Stage::Mail | Stage::Rcpt | Stage::Data)) = plan.link.quit_after {
        let stopped = conversation::transaction_until(&mut client, plan, stage)?;
        // Dropped without QUIT after DATA's 354: see `Stage::Data`.
        return Ok(Sent::stopped(mechanism, stopped));
    }
    let mut envelope = plan
        .extensions
        .envelope(&plan.from, &plan.to)
        .prefer_chunking(plan.bdat);
    let body = std::mem::replace(
        &mut plan.body,
        Body::Generated {
            subject: String::new(),
        },
    );
    // Recipients past the server's limit for one transaction get the message in a new
    // one: the body is read again, which a file or a generated message allows.
    let delivery = match body {
        Body::Generated { subject } => {
            let id_domain = id_domain(plan);
            let message = test_message(
                &plan.from,
                &plan.to,
                &subject,
                &id_domain,
                SystemTime::now(),
            );
            envelope = envelope.size(message.len() as u64);
            client.send_to_all(&envelope, std::io::Cursor::new(message))
        }
        Body::File(file, len) => {
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
    .map_err(|e| Failure::from_client("send", &e).at(Stage::of_transaction_error(&e)))?;
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
