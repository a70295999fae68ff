//! The conversation stage by stage, for the runs that need to see each stage: one stopped
//! by `--quit-after`, one sending XCLIENT (after TLS, before AUTH), one authenticating with
//! EXTERNAL. Any other run connects in one call ([`SmtpClient::connect`]), which makes the
//! same stages without stopping between them.
//!
//! ```text
//!  connect ─▶ [tls: implicit] ─▶ banner ─▶ ehlo ─▶ [tls: STARTTLS, EHLO] ─▶ [XCLIENT, EHLO]
//!          ─▶ [auth] ─▶ mail ─▶ rcpt ─▶ data
//! ```

use sasl_mechs::{client_mechanism, ClientOptions, Credentials};
use smtp_auth::{AuthOptions, SmtpAuth};
use smtp_client::{ClientConfig, Error, ErrorKind, SmtpClient, TlsMode, TlsUnavailable};
use smtp_proto::{ForwardPath, RcptParams};

use crate::auth::{authenticate, ServerName};
use crate::cli::{AuthChoice, AuthPlan, Plan};
use crate::connection::External;
use crate::exit::{Failure, Kind};
use crate::report::Observed;
use crate::stage::Stage;

/// Where a run that stopped early stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The stage `--quit-after` named.
    pub stage: Stage,
    /// The last reply of that stage (the greeting, the EHLO reply, the 235, ...), when one
    /// came.
    pub reply: Option<String>,
    /// What the run saw that it did not judge (a refused greeting under `--quit-after
    /// connect`, STARTTLS not offered under `--tls opportunistic`).
    pub note: Option<String>,
    /// The SASL mechanism AUTH used, when the run got that far.
    pub mechanism: Option<String>,
}

/// A connection ready for the transaction: every stage before MAIL done.
pub struct Ready {
    /// The client.
    pub client: SmtpClient,
    /// The SASL mechanism AUTH used, if AUTH was done.
    pub mechanism: Option<String>,
}

/// What [`open`] did.
pub enum Opened {
    /// `--quit-after` stopped the run before the transaction (QUIT sent).
    Stopped(Stopped),
    /// Every stage before MAIL went well.
    Ready(Box<Ready>),
}

fn fail(stage: Stage, err: &Error) -> Failure {
    Failure::from_client(stage.name(), err).at(stage)
}

/// Sends QUIT (its failure changes nothing: the stage asked for went well) and reports the
/// stop.
fn stop(
    mut client: SmtpClient,
    stage: Stage,
    note: Option<String>,
    (mode, observed): (TlsMode, &mut Observed),
) -> Opened {
    observed.connected(&client, mode == TlsMode::Implicit);
    let reply = client.last_reply().map(ToString::to_string);
    let _ = client.quit();
    Opened::Stopped(Stopped {
        stage,
        reply,
        note,
        mechanism: None,
    })
}

/// True when this run must make its stages one at a time.
pub fn is_staged(plan: &Plan) -> bool {
    plan.link.quit_after.is_some_and(|s| s <= Stage::Tls)
        || plan.extensions.xclient.is_some()
        || plan.link.external.is_some()
}

/// Connects per `config` and makes every stage before the transaction: greeting, EHLO,
/// TLS, XCLIENT, AUTH; stops after `--quit-after`'s stage when it is one of them.
pub fn open(
    plan: &Plan,
    config: ClientConfig,
    server: ServerName<'_>,
    observed: &mut Observed,
) -> Result<Opened, Failure> {
    let quit_after = plan.link.quit_after;
    let mode = config.mode();
    let client = if is_staged(plan) {
        let client = match SmtpClient::connect(config.send_hello(false)) {
            Ok(client) => client,
            // Connected, and the greeting said no: under `--quit-after connect` that is
            // not this run's business (the server has closed; there is nobody to QUIT).
            Err(Error::Refused { reply, .. }) if quit_after == Some(Stage::Connect) => {
                return Ok(Opened::Stopped(Stopped {
                    stage: Stage::Connect,
                    reply: Some(reply.to_string()),
                    note: Some("the server refused service at its greeting".to_owned()),
                    mechanism: None,
                }))
            }
            Err(e) => return Err(fail(connect_stage(&e, mode), &e)),
        };
        if matches!(quit_after, Some(Stage::Connect | Stage::Banner))
            || (quit_after == Some(Stage::Tls) && mode == TlsMode::Implicit)
        {
            return Ok(stop(
                client,
                quit_after.unwrap_or(Stage::Banner),
                None,
                (mode, observed),
            ));
        }
        staged_setup(client, plan, mode, observed)?
    } else {
        match SmtpClient::connect(config) {
            Ok(client) => StagedClient::Ready(Box::new(client)),
            Err(e) => return Err(fail(connect_stage(&e, mode), &e)),
        }
    };
    let mut client = match client {
        StagedClient::Ready(client) => *client,
        StagedClient::Stopped(stopped) => return Ok(stopped),
    };
    observed.connected(&client, mode == TlsMode::Implicit);
    if let Some(AuthPlan {
        choice: AuthChoice::Mechanism(name),
        ..
    }) = &plan.auth
    {
        // The one asked for, even if it fails.
        observed.mechanism = Some(name.clone());
    } else if plan.link.external.is_some() {
        observed.mechanism = Some("EXTERNAL".to_owned());
    }
    let mechanism = match (&plan.auth, &plan.link.external) {
        (Some(auth), _) => {
            Some(authenticate(&mut client, auth, server).map_err(|f| f.at(Stage::Auth))?)
        }
        (None, Some(external)) => Some(authenticate_external(&mut client, external)?),
        (None, None) => None,
    };
    observed.mechanism.clone_from(&mechanism);
    if quit_after == Some(Stage::Auth) {
        let reply = client.last_reply().map(ToString::to_string);
        let _ = client.quit();
        return Ok(Opened::Stopped(Stopped {
            stage: Stage::Auth,
            reply,
            note: None,
            mechanism,
        }));
    }
    Ok(Opened::Ready(Box::new(Ready { client, mechanism })))
}

enum StagedClient {
    Ready(Box<SmtpClient>),
    Stopped(Opened),
}

/// EHLO, TLS and XCLIENT one at a time, after the greeting.
fn staged_setup(
    mut client: SmtpClient,
    plan: &Plan,
    mode: TlsMode,
    observed: &mut Observed,
) -> Result<StagedClient, Failure> {
    let quit_after = plan.link.quit_after;
    client.hello(None).map_err(|e| fail(Stage::Ehlo, &e))?;
    if quit_after == Some(Stage::Ehlo) {
        return Ok(StagedClient::Stopped(stop(
            client,
            Stage::Ehlo,
            None,
            (mode, observed),
        )));
    }
    let mut note = None;
    match mode {
        TlsMode::StartTlsRequired if !client.supports("STARTTLS") => {
            return Err(fail(
                Stage::Tls,
                &Error::TlsRequired(TlsUnavailable::NotOffered),
            ))
        }
        TlsMode::StartTlsRequired => {
            client.starttls().map_err(|e| fail(Stage::Tls, &e))?;
        }
        TlsMode::StartTlsOpportunistic if client.supports("STARTTLS") => {
            match client.starttls() {
                Ok(_) => {}
                // Opportunistic: a refusal leaves the session in clear, as it was.
                Err(Error::Refused { reply, .. }) => {
                    note = Some(format!("STARTTLS refused ({reply}); going on in clear"));
                }
                Err(e) => return Err(fail(Stage::Tls, &e)),
            }
        }
        TlsMode::StartTlsOpportunistic => {
            note = Some("the server does not offer STARTTLS; going on in clear".to_owned());
        }
        _ => {}
    }
    if quit_after == Some(Stage::Tls) {
        return Ok(StagedClient::Stopped(stop(
            client,
            Stage::Tls,
            note,
            (mode, observed),
        )));
    }
    if let Some(attrs) = &plan.extensions.xclient {
        client
            .xclient(attrs)
            .map_err(|e| fail(Stage::Xclient, &e))?;
    }
    Ok(StagedClient::Ready(Box::new(client)))
}

/// The stage a failed connect stopped at: the connection itself, the TLS handshake, or the
/// greeting and what follows it in the one call.
fn connect_stage(err: &Error, mode: TlsMode) -> Stage {
    match err {
        Error::Connect { .. } => Stage::Connect,
        Error::Tls(_) if mode == TlsMode::Implicit => Stage::Tls,
        Error::Tls(_) | Error::TlsRequired(_) => Stage::Tls,
        Error::Refused { command, .. } if command.contains("greeting") => Stage::Banner,
        Error::Timeout { awaiting, .. } | Error::ConnectionClosed { awaiting }
            if awaiting.contains("greeting") =>
        {
            Stage::Banner
        }
        Error::Refused { command, .. }
            if command.starts_with("EHLO")
                || command.starts_with("LHLO")
                || command.starts_with("HELO") =>
        {
            Stage::Ehlo
        }
        Error::Refused { command, .. } if command.starts_with("STARTTLS") => Stage::Tls,
        _ if err.kind() == ErrorKind::Connection => Stage::Connect,
        _ => Stage::Banner,
    }
}

/// AUTH EXTERNAL (RFC 4422 appendix A): the server takes the identity from the client
/// certificate; the authorization id, when given, is the only thing sent.
pub fn authenticate_external(
    client: &mut SmtpClient,
    external: &External,
) -> Result<String, Failure> {
    let credentials = Credentials::without_secret("")
        .and_then(|c| match &external.authzid {
            Some(z) => c.with_authzid(z),
            None => Ok(c),
        })
        .map_err(|e| Failure::usage(format!("--authzid: {e}")))?;
    let mechanism = client_mechanism("EXTERNAL", &credentials, &ClientOptions::default())
        .map_err(|e| Failure::new(Kind::Auth, format!("auth failed: {e}")).at(Stage::Auth))?;
    client
        .auth_with(mechanism, &AuthOptions::new())
        .map(|success| success.mechanism.to_owned())
        .map_err(|e| crate::auth::failure(&e).at(Stage::Auth))
}

/// `--quit-after mail`, `rcpt` or `data`: MAIL, each RCPT and DATA one at a time, stopping
/// after `stage`. Recipients refused at RCPT are a failure (exit 5) even so, once QUIT is
/// sent.
pub fn transaction_until(
    client: &mut SmtpClient,
    plan: &Plan,
    stage: Stage,
) -> Result<Stopped, Failure> {
    let envelope = plan.extensions.envelope(&plan.from, &plan.to);
    client
        .mail(&plan.from, &plan.extensions.mail)
        .map_err(|e| fail(Stage::Mail, &e))?;
    if stage == Stage::Mail {
        let reply = client.last_reply().map(ToString::to_string);
        let _ = client.quit();
        return Ok(Stopped {
            stage,
            reply,
            note: None,
            mechanism: None,
        });
    }
    let list: Vec<(ForwardPath, RcptParams)> = envelope.recipients().to_vec();
    let report = client
        .recipients(&list)
        .map_err(|e| fail(Stage::Rcpt, &e))?;
    let refused: Vec<String> = report
        .refused
        .iter()
        .chain(report.deferred.iter())
        .map(ToString::to_string)
        .collect();
    let refusal = (!refused.is_empty()).then(|| {
        Failure::new(
            Kind::Refused,
            format!(
                "rcpt failed: {} ({} other recipient(s) accepted; stopped after {stage} as asked)",
                refused.join("; "),
                report.accepted.len()
            ),
        )
        .at(Stage::Rcpt)
    });
    if stage == Stage::Rcpt {
        let reply = client.last_reply().map(ToString::to_string);
        let _ = client.quit();
        if let Some(failure) = refusal {
            return Err(failure);
        }
        return Ok(Stopped {
            stage,
            reply,
            note: None,
            mechanism: None,
        });
    }
    let reply = client.data().map_err(|e| fail(Stage::Data, &e))?;
    // After 354 every line is message text: QUIT cannot be sent. The connection is closed
    // with the message unfinished, which the server discards.
    if let Some(failure) = refusal {
        return Err(failure);
    }
    Ok(Stopped {
        stage,
        reply: Some(reply.to_string()),
        note: Some("the connection was closed after 354, with no message sent".to_owned()),
        mechanism: None,
    })
}
