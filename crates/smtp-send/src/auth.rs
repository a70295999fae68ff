//! AUTH through `smtp-auth`: the command line's choices turned into a call to
//! [`SmtpAuth`], and its [`AuthError`] turned into an exit code and a one-line message.

use sasl_mechs::{client_mechanism, ClientOptions, Credentials};
use smtp_auth::{AuthError, AuthOptions, SmtpAuth};
use smtp_client::SmtpClient;
use smtp_proto::ReplyCode;

use crate::cli::{AuthChoice, AuthPlan};
use crate::exit::{Failure, Kind};

/// The mechanisms whose secret is an OAuth 2.0 bearer token: for them the "password"
/// (from `--password-env`, `--password-file` or the prompt) is the token.
const TOKEN_MECHANISMS: &[&str] = &["OAUTHBEARER", "XOAUTH2"];

/// Where the server is, as the user named it: the host name goes into DIGEST-MD5's
/// digest-uri and OAUTHBEARER's `host=`, the port into OAUTHBEARER's `port=`.
#[derive(Debug, Clone, Copy)]
pub struct ServerName<'a> {
    /// `--tls-server-name` when given (the server's own name), else the host of `--server`.
    pub host: &'a str,
    /// The port connected to.
    pub port: u16,
}

/// Authenticates; returns the mechanism used.
pub fn authenticate(
    client: &mut SmtpClient,
    plan: &AuthPlan,
    server: ServerName<'_>,
) -> Result<String, Failure> {
    let options = options(plan, server);
    let credentials = credentials(plan)?;
    let result = match &plan.choice {
        AuthChoice::Auto => client.auth_auto(&credentials, &options),
        // The common case, by name: the library checks the offer before building the
        // mechanism, so a mechanism the server lacks is reported as not offered.
        AuthChoice::Mechanism(name) if plan.authzid.is_none() && !is_token(name) => {
            client.auth_with_options(name, &plan.user, plan.password.expose(), &options)
        }
        // An authorization id or a bearer token: the mechanism is built from the credentials.
        AuthChoice::Mechanism(name) => {
            client_mechanism(name, &credentials, &options.client_options)
                .map_err(AuthError::from)
                .and_then(|mechanism| client.auth_with(mechanism, &options))
        }
    };
    result
        .map(|success| success.mechanism.to_owned())
        .map_err(|e| failure(&e))
}

/// The server's reply an AUTH failure carries, if any.
fn server_reply(err: &AuthError) -> Option<smtp_proto::Reply> {
    match err {
        AuthError::BadCredentials { reply, .. }
        | AuthError::Temporary { reply, .. }
        | AuthError::EncryptionRequired { reply, .. }
        | AuthError::TooWeak { reply, .. }
        | AuthError::Refused { reply, .. } => Some(reply.clone()),
        AuthError::Client(e) => e.reply().cloned(),
        _ => None,
    }
}

fn is_token(mechanism: &str) -> bool {
    TOKEN_MECHANISMS
        .iter()
        .any(|t| t.eq_ignore_ascii_case(mechanism))
}

/// The library's options from the command line.
fn options(plan: &AuthPlan, server: ServerName<'_>) -> AuthOptions {
    let mut client = ClientOptions::default();
    client.ntlm.version = plan.ntlm_version;
    client.host = Some(server.host.to_owned());
    client.oauth_host = Some(server.host.to_owned());
    client.oauth_port = Some(server.port);
    AuthOptions::new()
        .allow_plaintext_without_tls(plan.allow_plaintext)
        .client_options(client)
}

/// The credentials, checked before anything is sent: a value no mechanism can carry is a
/// usage error (exit 2), like any other bad flag.
fn credentials(plan: &AuthPlan) -> Result<Credentials, Failure> {
    let token = matches!(&plan.choice, AuthChoice::Mechanism(m) if is_token(m));
    let credentials = if token {
        Credentials::with_token(&plan.user, plan.password.clone())
    } else {
        Credentials::new(&plan.user, plan.password.clone())
    };
    let mut credentials =
        credentials.map_err(|e| Failure::usage(format!("--user/password: {e}")))?;
    if let Some(z) = &plan.authzid {
        credentials = credentials
            .with_authzid(z)
            .map_err(|e| Failure::usage(format!("--authzid: {e}")))?;
    }
    Ok(credentials)
}

/// The exit kind and stderr line of an AUTH failure: the server's reply when it gave one
/// (`auth failed: 535 5.7.8 Authentication credentials invalid`), else what went wrong.
pub fn failure(err: &AuthError) -> Failure {
    describe(err).with_reply(server_reply(err))
}

fn describe(err: &AuthError) -> Failure {
    let auth = |line: String| Failure::new(Kind::Auth, format!("auth failed: {line}"));
    match err {
        AuthError::BadCredentials { reply, detail, .. } => auth(match detail {
            // The OAuth error JSON tells why a token was refused.
            Some(d) => format!("{reply} ({d})"),
            None => reply.to_string(),
        }),
        AuthError::Temporary { reply, .. }
        | AuthError::EncryptionRequired { reply, .. }
        | AuthError::TooWeak { reply, .. } => auth(reply.to_string()),
        // 421: the server is closing the connection.
        AuthError::Refused { reply, .. } if reply.code() == ReplyCode::SERVICE_UNAVAILABLE => {
            Failure::new(Kind::Connection, format!("auth failed: {reply}"))
        }
        AuthError::Refused { reply, .. } => auth(reply.to_string()),
        AuthError::PlaintextRefused { mechanism } => auth(format!(
            "{mechanism} would send the password in clear without TLS; use TLS or \
             --allow-plaintext-auth"
        )),
        AuthError::NoSuitableMechanism {
            plaintext_refused: true,
            ..
        } => auth(format!(
            "{err} (--allow-plaintext-auth allows them without TLS)"
        )),
        AuthError::Client(e) => Failure::from_client("auth", e),
        // Cannot happen: smtp-send authenticates once per connection.
        AuthError::AlreadyAuthenticated => Failure::new(Kind::Other, format!("auth failed: {err}")),
        // NotOffered, NoSuitableMechanism, ServerMisbehaved, Mechanism, Sasl, and any
        // variant added later: the library's message says it all.
        _ => auth(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sasl_mechs::SaslError;
    use smtp_proto::Reply;

    fn reply(code: ReplyCode, text: &str) -> Reply {
        Reply::new(code, &[text.as_bytes()]).unwrap()
    }

    #[test]
    fn server_verdicts_keep_the_reply_and_exit_4() {
        let cases = [
            AuthError::BadCredentials {
                mechanism: "PLAIN",
                reply: reply(
                    ReplyCode::AUTH_CREDENTIALS_INVALID,
                    "5.7.8 Authentication credentials invalid",
                ),
                detail: None,
            },
            AuthError::Temporary {
                mechanism: "PLAIN",
                reply: reply(
                    ReplyCode::TEMP_AUTH_FAILURE,
                    "4.7.0 Temporary authentication failure",
                ),
            },
            AuthError::EncryptionRequired {
                mechanism: "PLAIN",
                reply: reply(ReplyCode::ENCRYPTION_REQUIRED, "5.7.11 Encryption required"),
            },
            AuthError::TooWeak {
                mechanism: "PLAIN",
                reply: reply(
                    ReplyCode::AUTH_TOO_WEAK,
                    "5.7.9 Authentication mechanism is too weak",
                ),
            },
            AuthError::Refused {
                mechanism: "PLAIN",
                reply: reply(
                    ReplyCode::PARAM_NOT_IMPLEMENTED,
                    "5.5.4 Unrecognized authentication type",
                ),
            },
        ];
        let expected = [
            "auth failed: 535 5.7.8 Authentication credentials invalid",
            "auth failed: 454 4.7.0 Temporary authentication failure",
            "auth failed: 538 5.7.11 Encryption required",
            "auth failed: 534 5.7.9 Authentication mechanism is too weak",
            "auth failed: 504 5.5.4 Unrecognized authentication type",
        ];
        for (err, line) in cases.iter().zip(expected) {
            let f = failure(err);
            assert_eq!(f.kind, Kind::Auth, "{err:?}");
            assert_eq!(f.line, line);
        }
    }

    #[test]
    fn a_421_during_auth_is_a_connection_failure() {
        let f = failure(&AuthError::Refused {
            mechanism: "LOGIN",
            reply: reply(ReplyCode::SERVICE_UNAVAILABLE, "4.3.2 Shutting down"),
        });
        assert_eq!(f.kind, Kind::Connection);
        assert_eq!(f.line, "auth failed: 421 4.3.2 Shutting down");
    }

    #[test]
    fn refusals_before_sending_exit_4_with_the_flag_to_use() {
        let f = failure(&AuthError::PlaintextRefused {
            mechanism: "LOGIN".into(),
        });
        assert_eq!(f.kind, Kind::Auth);
        assert!(f.line.starts_with("auth failed: LOGIN "), "{}", f.line);
        assert!(f.line.contains("--allow-plaintext-auth"), "{}", f.line);

        let f = failure(&AuthError::NoSuitableMechanism {
            offered: vec!["PLAIN".into(), "LOGIN".into()],
            plaintext_refused: true,
        });
        assert_eq!(f.kind, Kind::Auth);
        assert!(f.line.contains("(PLAIN LOGIN)"), "{}", f.line);
        assert!(f.line.contains("--allow-plaintext-auth"), "{}", f.line);

        let f = failure(&AuthError::NotOffered {
            mechanism: "CRAM-MD5".into(),
            offered: vec!["PLAIN".into()],
            encrypted: true,
        });
        assert_eq!(f.kind, Kind::Auth);
        assert_eq!(
            f.line,
            "auth failed: the server does not offer CRAM-MD5 (it offers PLAIN)"
        );

        let f = failure(&AuthError::Sasl(SaslError::UnknownMechanism {
            name: "GSSAPI".into(),
        }));
        assert_eq!(f.kind, Kind::Auth);
        assert!(f.line.contains("GSSAPI"), "{}", f.line);
    }

    #[test]
    fn client_errors_keep_their_own_kind() {
        let e = AuthError::Client(smtp_client::Error::ConnectionClosed {
            awaiting: "the AUTH reply".into(),
        });
        let f = failure(&e);
        assert_eq!(f.kind, Kind::Connection, "{}", f.line);
        assert!(f.line.starts_with("auth failed: "), "{}", f.line);
    }

    #[test]
    fn token_mechanisms_take_the_password_as_the_token() {
        let plan = AuthPlan {
            choice: AuthChoice::Mechanism("XOAUTH2".into()),
            user: "demo".into(),
            authzid: None,
            password: sasl_mechs::Secret::new("tok"),
            ntlm_version: sasl_mechs::NtlmVersion::V2,
            allow_plaintext: false,
        };
        let c = credentials(&plan).unwrap();
        assert_eq!(c.token().map(|t| t.expose()), Some("tok"));
        assert!(c.password().is_none());
        let plan = AuthPlan {
            choice: AuthChoice::Auto,
            ..plan
        };
        let c = credentials(&plan).unwrap();
        assert_eq!(c.password().map(|t| t.expose()), Some("tok"));
        assert!(
            c.token().is_none(),
            "auto never offers the password as a token"
        );
    }
}
