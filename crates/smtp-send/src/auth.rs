//! The AUTH exchange (RFC 4954): a `sasl-mechs` mechanism driven through `AUTH` / `334` /
//! `235` over the client's low-level `command()`.
//!
//! This is the exchange `smtp-auth` exists to provide; once its blocking API is in the
//! tree, this module shrinks to a call to it.

use sasl_mechs::{client_mechanism, is_plaintext, select, ClientOptions, Credentials, Policy};
use smtp_client::SmtpClient;
use smtp_proto::{auth_line_fits, decode_challenge, Command};

use crate::cli::{AuthChoice, AuthPlan};
use crate::exit::{Failure, Kind};

/// Most `334` challenges answered in one exchange; no mechanism needs more than three.
const MAX_ROUNDS: usize = 10;

fn auth_failed(msg: impl std::fmt::Display) -> Failure {
    Failure::new(Kind::Auth, format!("auth failed: {msg}"))
}

/// Authenticates; returns the mechanism used.
pub fn authenticate(client: &mut SmtpClient, plan: &AuthPlan) -> Result<String, Failure> {
    let offered: Vec<String> = client
        .capabilities()
        .map(|c| c.auth_mechanisms().to_vec())
        .unwrap_or_default();
    if offered.is_empty() {
        return Err(auth_failed(if client.is_encrypted() {
            "the server offers no AUTH mechanism"
        } else {
            "the server offers no AUTH mechanism (some servers offer it only after STARTTLS)"
        }));
    }
    let mut creds = Credentials::new(&plan.user, plan.password.clone())
        .map_err(|e| Failure::usage(format!("--user/password: {e}")))?;
    if let Some(z) = &plan.authzid {
        creds = creds
            .with_authzid(z)
            .map_err(|e| Failure::usage(format!("--authzid: {e}")))?;
    }
    let encrypted = client.is_encrypted();
    let name: String = match &plan.choice {
        AuthChoice::Auto => {
            let policy = Policy::new(encrypted).allow_plaintext(plan.allow_plaintext);
            select(&offered, &creds, &policy)
                .map_err(|e| {
                    auth_failed(format!(
                        "{e} (offered: {}{})",
                        offered.join(" "),
                        if encrypted {
                            ""
                        } else {
                            "; without TLS, PLAIN and LOGIN need --allow-plaintext-auth"
                        }
                    ))
                })?
                .to_owned()
        }
        AuthChoice::Mechanism(m) => {
            if !offered.iter().any(|o| o.eq_ignore_ascii_case(m)) {
                return Err(auth_failed(format!(
                    "the server does not offer {m} (it offers {})",
                    offered.join(" ")
                )));
            }
            if is_plaintext(m) && !encrypted && !plan.allow_plaintext {
                return Err(auth_failed(format!(
                    "{m} would send the password in clear without TLS; use TLS or --allow-plaintext-auth"
                )));
            }
            m.clone()
        }
    };
    let mut options = ClientOptions::default();
    options.ntlm.version = plan.ntlm_version;
    let mut mech = client_mechanism(&name, &creds, &options).map_err(auth_failed)?;

    let initial = mech.initial_response().map_err(auth_failed)?;
    let initial = initial.filter(|ir| auth_line_fits(&name, ir.len()));
    let mut reply = client
        .command(&Command::Auth {
            mechanism: &name,
            initial_response: initial.as_deref().map(|r| &r[..]),
        })
        .map_err(|e| Failure::from_client("auth", &e))?;
    for _ in 0..MAX_ROUNDS {
        let code = reply.code().get();
        if code == 235 {
            mech.finish(None).map_err(auth_failed)?;
            client.set_authenticated();
            return Ok(name);
        }
        if code != 334 {
            // `auth failed: 535 5.7.8 Authentication credentials invalid`
            return Err(auth_failed(reply));
        }
        let challenge = decode_challenge(&reply).map_err(auth_failed)?;
        let response = match mech.respond(&challenge) {
            Ok(r) => r,
            Err(e) => {
                // Tell the server we give up (RFC 4954: "*"), then report why.
                let _ = client.command(&Command::AuthCancel);
                return Err(auth_failed(e));
            }
        };
        reply = client
            .command(&Command::AuthResponse(&response))
            .map_err(|e| Failure::from_client("auth", &e))?;
    }
    let _ = client.command(&Command::AuthCancel);
    Err(auth_failed(format!(
        "the server sent more than {MAX_ROUNDS} challenges"
    )))
}
