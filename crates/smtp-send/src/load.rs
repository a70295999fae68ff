//! Load mode, as Postfix's smtp-source: the same message `--count` times over
//! `--concurrency` pooled connections (each authenticated when AUTH is asked for), then
//! messages per second and how many ended in each state.

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use smtp_client::pool::{blocking::Pool, PoolConfig};
use smtp_client::{ClientConfig, Envelope, Error, MessageState, SmtpClient};

use crate::auth::{authenticate, ServerName};
use crate::cli::{Body, Load, Plan};
use crate::composition::Composition;
use crate::exit::{Failure, Kind};
use crate::send::{composed, default_port};

/// Sends `load.count` messages per `plan`; prints the figures unless `--quiet`.
pub fn run(plan: &mut Plan, config: ClientConfig, load: Load) -> Result<(), Failure> {
    let messages = messages(plan, load.count)?;
    let pool = Pool::with_connector(
        PoolConfig::new(config).max_connections(load.concurrency),
        connector(plan),
    );
    let bar = progress(load.count, plan.quiet);
    let started = Instant::now();
    let (summary, results) = pool.send_all_observed(messages, |_, _| bar.inc(1));
    let took = started.elapsed();
    bar.finish_and_clear();
    pool.shutdown();
    let rate = summary.total() as f64 / took.as_secs_f64().max(1e-9);
    if !plan.quiet {
        println!(
            "{} messages in {:.2} s ({rate:.0} msg/s): accepted {}, refused {}, not sent {}, unknown {}",
            summary.total(),
            took.as_secs_f64(),
            summary.accepted,
            summary.refused,
            summary.not_sent,
            summary.unknown
        );
    }
    let first = |f: fn(&MessageState) -> Option<String>| results.iter().find_map(|r| f(&r.state));
    if summary.refused > 0 {
        let why = first(|s| match s {
            MessageState::Refused(e) => Some(e.to_string()),
            _ => None,
        });
        return Err(Failure::new(
            Kind::Refused,
            format!(
                "{} of {} messages refused (first: {})",
                summary.refused,
                summary.total(),
                why.unwrap_or_default()
            ),
        ));
    }
    if summary.not_sent + summary.unknown > 0 {
        let why = first(|s| match s {
            MessageState::NotSent(e) | MessageState::Unknown(e) => Some(e.to_string()),
            _ => None,
        });
        return Err(Failure::new(
            Kind::Connection,
            format!(
                "{} not sent and {} unknown of {} messages (first: {})",
                summary.not_sent,
                summary.unknown,
                summary.total(),
                why.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// A progress bar on a terminal; a hidden one when stderr is piped or `--quiet`.
fn progress(count: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(count);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} messages, {per_sec}, {elapsed_precise} (ETA {eta})",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One message of the load: its envelope and its body, which may be shared.
type Message = (Envelope, Arc<[u8]>);

/// The messages: the generated one with its own Date and Message-ID each time, or the
/// file's (or standard input's) bytes, read once and shared by every message.
fn messages(plan: &mut Plan, count: u64) -> Result<Vec<Message>, Failure> {
    let envelope = plan
        .extensions
        .envelope(&plan.from, &plan.to)
        .prefer_chunking(plan.bdat);
    let fixed = match &mut plan.body {
        Body::Generated(_) => None,
        Body::File(file, _) => Some(Arc::<[u8]>::from(read_all(file)?)),
        Body::Stdin => Some(Arc::<[u8]>::from(read_all(&mut std::io::stdin().lock())?)),
    };
    let composition = match &plan.body {
        Body::Generated(c) => c.clone(),
        _ => Composition::default(),
    };
    let now = SystemTime::now();
    Ok((0..count)
        .map(|i| {
            let body = match &fixed {
                Some(bytes) => Arc::clone(bytes),
                // A nanosecond apart: each message gets its own Message-ID.
                None => Arc::from(composed(plan, &composition, now + Duration::from_nanos(i))),
            };
            let size = body.len() as u64;
            (envelope.clone().size(size), body)
        })
        .collect())
}

fn read_all(from: &mut impl Read) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    from.read_to_end(&mut bytes)
        .map_err(|e| Failure::usage(format!("--data: {e}")))?;
    Ok(bytes)
}

/// Each pooled connection: connect, then AUTH as the command line says.
fn connector(plan: &Plan) -> impl Fn(&ClientConfig) -> Result<SmtpClient, Error> + Send + Sync {
    let auth = plan.auth.clone();
    let host = plan
        .tls_server_name
        .clone()
        .unwrap_or_else(|| plan.host.clone());
    let port = plan
        .port
        .unwrap_or_else(|| default_port(plan.tls, plan.submission));
    move |config| {
        let mut client = SmtpClient::connect(config.clone())?;
        if let Some(auth) = &auth {
            let server = ServerName { host: &host, port };
            authenticate(&mut client, auth, server)
                .map_err(|failure| Error::Setup(Box::new(failure)))?;
        }
        Ok(client)
    }
}
