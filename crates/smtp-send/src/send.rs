//! One message through one server: connect, AUTH, send, QUIT.

use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use smtp_client::{ClientConfig, Delivery, Envelope, SmtpClient, Timeouts, TlsConfig, TlsMode};

use crate::auth::{authenticate, ServerName};
use crate::cli::{Body, Plan, TlsArg};
use crate::exit::{Failure, Kind};
use crate::message::test_message;

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
    /// Recipients accepted.
    pub accepted: usize,
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
    if plan.transcript {
        config = config.transcript(|direction, line| eprintln!("{direction} {line}"));
    }
    Ok(config)
}

/// Runs one send per `plan` with `config`.
pub fn send(plan: &mut Plan, config: ClientConfig) -> Result<Sent, Failure> {
    let port = plan
        .port
        .unwrap_or_else(|| default_port(plan.tls, plan.submission));
    let mut client =
        SmtpClient::connect(config).map_err(|e| Failure::from_client("connect", &e))?;
    let server = ServerName {
        host: plan.tls_server_name.as_deref().unwrap_or(&plan.host),
        port,
    };
    let mechanism = match &plan.auth {
        Some(auth) => Some(authenticate(&mut client, auth, server)?),
        None => None,
    };
    let mut envelope =
        Envelope::new(plan.from.clone(), plan.to.iter().cloned()).prefer_chunking(plan.bdat);
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
            let id_domain = plan
                .helo
                .as_ref()
                .filter(|d| !d.is_address_literal())
                .map_or("smtp-send.invalid", |d| d.as_str())
                .to_owned();
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
    .map_err(|e| Failure::from_client("send", &e))?;
    // The message is in; a failed QUIT changes nothing for it.
    let _ = client.quit();
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
        .chain(left_over)
        .chain(unsent)
        .collect();
    let accepted = delivery.accepted().count();
    if !failed.is_empty() {
        return Err(Failure::new(
            Kind::Refused,
            format!(
                "rcpt failed: {} (the message went to the {accepted} other recipient(s))",
                failed.join("; "),
            ),
        ));
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
    })
}
