//! The sans-IO [`AuthExchange`] against the server side of `sasl-mechs`, in memory: no
//! socket, no client. Each command the exchange names is encoded to its wire line and
//! parsed back by a small RFC 4954 server loop written here, so the base64, the `=` for an
//! empty initial response and the `*` are checked as they would travel.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sasl_mechs::server::{
    server_mechanism, server_mechanism_bound, PasswordLookup, ServerMechanism, ServerStep,
};
use sasl_mechs::{
    client_mechanism, ChannelBinding, ClientOptions, Credentials, MechanismName, Needs, SaslError,
    Secret,
};
use smtp_auth::{AuthContext, AuthError, AuthExchange, AuthOptions, AuthSuccess};
use smtp_proto::{Reply, ReplyCode};

const USER: &str = "alice";
const PASSWORD: &str = "pässwörd with spaces ✓";

/// Every mechanism both sides of `sasl-mechs` implement with a password or token.
fn mechanisms() -> impl Iterator<Item = &'static str> {
    let known: &'static [MechanismName] = &MechanismName::ALL_KNOWN;
    known
        .iter()
        .filter(|m| m.needs() != Some(Needs::Nothing))
        .map(MechanismName::as_str)
}

/// Where the server puts SCRAM's server-final message (the data that comes with success).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SuccessData {
    /// As a last 334, answered by an empty line, then 235 (what servers do).
    AsChallenge,
    /// On the 235 line itself, after the enhanced status code.
    OnTheSuccessLine,
}

/// How the in-memory server tampers with what it sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tamper {
    None,
    /// Flip one bit of the success data (a forged SCRAM server signature).
    SuccessData,
}

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(ReplyCode::new(code).unwrap(), &[text.as_bytes()]).unwrap()
}

fn lookup() -> PasswordLookup {
    Arc::new(|user: &str| (user == USER).then(|| Secret::new(PASSWORD)))
}

/// What one exchange put on the wire, and its outcome.
struct Run {
    lines: Vec<Vec<u8>>,
    result: Result<AuthSuccess, AuthError>,
    authenticated: Option<sasl_mechs::server::Authenticated>,
}

/// Runs `exchange` against `server` until it is over.
fn run(
    mut exchange: AuthExchange,
    mut server: Box<dyn ServerMechanism>,
    mode: SuccessData,
    tamper: Tamper,
) -> Run {
    let mut lines = Vec::new();
    // The server's pending 235 after it sent success data as a challenge.
    let mut success_pending = false;
    let mut steps = 0;
    while let Some(command) = exchange.next_command() {
        steps += 1;
        assert!(steps < 32, "the exchange does not end");
        let mut line = Vec::new();
        command.encode(&mut line).expect("encodable");
        assert!(line.ends_with(b"\r\n"));
        let text = std::str::from_utf8(&line[..line.len() - 2])
            .expect("ASCII line")
            .to_owned();
        lines.push(line);

        let client_data: Option<Vec<u8>> = if let Some(rest) = text.strip_prefix("AUTH ") {
            let mut words = rest.splitn(2, ' ');
            let name = words.next().unwrap();
            assert_eq!(name, server.name());
            match words.next() {
                None => None,
                Some("=") => Some(Vec::new()),
                Some(b) => Some(B64.decode(b).expect("initial response is base64")),
            }
        } else if text == "*" {
            exchange.receive(reply(501, "5.7.0 Authentication aborted"));
            continue;
        } else {
            Some(B64.decode(&text).expect("response is base64"))
        };

        if success_pending {
            assert_eq!(
                client_data.as_deref(),
                Some(&b""[..]),
                "empty line after data"
            );
            success_pending = false;
            exchange.receive(reply(235, "2.7.0 Authentication successful"));
            continue;
        }
        let step = match server.step(client_data.as_deref()) {
            Ok(step) => step,
            Err(_) => ServerStep::Failure,
        };
        let answer = match step {
            ServerStep::Challenge(c) => reply(334, &B64.encode(c)),
            ServerStep::Failure => reply(535, "5.7.8 Authentication credentials invalid"),
            ServerStep::Success(None) => reply(235, "2.7.0 Authentication successful"),
            ServerStep::Success(Some(mut data)) => {
                if tamper == Tamper::SuccessData {
                    // "v=" then base64: change the first character of the signature to
                    // another base64 character, so it still decodes but no longer verifies.
                    data[2] = if data[2] == b'A' { b'B' } else { b'A' };
                }
                match mode {
                    SuccessData::AsChallenge => {
                        success_pending = true;
                        reply(334, &B64.encode(&data))
                    }
                    SuccessData::OnTheSuccessLine => {
                        reply(235, &format!("2.7.0 {}", B64.encode(&data)))
                    }
                }
            }
        };
        exchange.receive(answer);
    }
    Run {
        lines,
        result: exchange.into_result(),
        authenticated: server.authenticated().cloned(),
    }
}

fn context() -> AuthContext {
    AuthContext {
        offered: mechanisms().map(str::to_owned).collect(),
        encrypted: true,
        authenticated: false,
        channel_bindings: vec![binding()],
    }
}

fn credentials(mechanism: &str, secret: &str) -> Credentials {
    match mechanism.parse::<MechanismName>().map(|m| m.needs()) {
        Ok(Some(Needs::Token)) => Credentials::with_token(USER, secret).unwrap(),
        _ => Credentials::new(USER, secret).unwrap(),
    }
}

/// The channel-binding data both sides see (as if from one TLS connection), so that the
/// -PLUS mechanisms run too.
fn binding() -> ChannelBinding {
    ChannelBinding::tls_exporter(vec![0x5a; 32])
}

/// The server of `mechanism`, on a channel that gives [`binding`].
fn bound_server(mechanism: &str) -> Box<dyn ServerMechanism> {
    server_mechanism_bound(mechanism, lookup(), vec![binding()]).unwrap()
}

fn exchange(mechanism: &str, secret: &str) -> AuthExchange {
    let mut options = ClientOptions::default();
    options.channel_binding = Some(binding());
    options.plus_offered = true;
    let mech = client_mechanism(mechanism, &credentials(mechanism, secret), &options).unwrap();
    AuthExchange::start(mech, &context(), &AuthOptions::default()).unwrap()
}

/// Neither the error's Display nor its Debug shows the secret or its base64.
fn assert_error_shows_no_secret(run: &Run, secret: &str) {
    if let Err(e) = &run.result {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains(&B64.encode(secret)), "{shown}");
    }
}

#[test]
fn every_mechanism_succeeds_with_the_right_password() {
    for mechanism in mechanisms() {
        // RFC 4954 gives 235 no data: servers send the last data as a 334 (every mechanism
        // here). SCRAM's server-final on the 235 line is accepted too, and verified.
        let modes: &[SuccessData] = if mechanism.starts_with("SCRAM") {
            &[SuccessData::AsChallenge, SuccessData::OnTheSuccessLine]
        } else {
            &[SuccessData::AsChallenge]
        };
        for &mode in modes {
            let server = bound_server(mechanism);
            let run = run(exchange(mechanism, PASSWORD), server, mode, Tamper::None);
            let success = run
                .result
                .as_ref()
                .unwrap_or_else(|e| panic!("{mechanism} {mode:?}: {e}"));
            assert_eq!(success.mechanism, mechanism);
            assert_eq!(success.reply.code().get(), 235);
            assert_eq!(
                run.authenticated.as_ref().map(|a| a.authcid.as_str()),
                Some(USER),
                "{mechanism}"
            );
        }
    }
}

#[test]
fn every_mechanism_gets_bad_credentials_with_a_wrong_password() {
    for mechanism in mechanisms() {
        let wrong = "not the password";
        let server = bound_server(mechanism);
        let run = run(
            exchange(mechanism, wrong),
            server,
            SuccessData::AsChallenge,
            Tamper::None,
        );
        match &run.result {
            Err(AuthError::BadCredentials {
                mechanism: m,
                reply,
                ..
            }) => {
                assert_eq!(*m, mechanism);
                assert_eq!(reply.code().get(), 535);
            }
            other => panic!("{mechanism}: expected 535, got {other:?}"),
        }
        assert!(run.authenticated.is_none());
        assert_error_shows_no_secret(&run, wrong);
    }
}

#[test]
fn the_initial_response_rides_on_the_auth_line_only_for_client_first_mechanisms() {
    for (mechanism, client_first) in [
        ("PLAIN", true),
        ("SCRAM-SHA-256", true),
        ("NTLM", true),
        ("OAUTHBEARER", true),
        ("LOGIN", false),
        ("CRAM-MD5", false),
        ("DIGEST-MD5", false),
    ] {
        let server = bound_server(mechanism);
        let run = run(
            exchange(mechanism, PASSWORD),
            server,
            SuccessData::AsChallenge,
            Tamper::None,
        );
        assert!(run.result.is_ok(), "{mechanism}: {:?}", run.result);
        let first = String::from_utf8(run.lines[0].clone()).unwrap();
        let words = first.trim_end().split(' ').count();
        assert_eq!(words == 3, client_first, "{mechanism}: {first:?}");
    }
}

#[test]
fn a_forged_scram_signature_fails_wherever_it_comes() {
    for mechanism in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
        for mode in [SuccessData::AsChallenge, SuccessData::OnTheSuccessLine] {
            let server = bound_server(mechanism);
            let run = run(
                exchange(mechanism, PASSWORD),
                server,
                mode,
                Tamper::SuccessData,
            );
            match (&run.result, mode) {
                // Inside the exchange: cancelled with `*`, the 501 kept.
                (
                    Err(AuthError::Mechanism {
                        source,
                        cancel_reply: Some(r),
                        ..
                    }),
                    SuccessData::AsChallenge,
                ) => {
                    assert!(
                        matches!(**source, SaslError::ServerNotAuthenticated { .. }),
                        "{source:?}"
                    );
                    assert_eq!(r.code().get(), 501);
                    assert_eq!(run.lines.last().unwrap(), b"*\r\n");
                }
                // With the 235: nothing left to cancel.
                (
                    Err(AuthError::Mechanism {
                        source,
                        cancel_reply: None,
                        ..
                    }),
                    SuccessData::OnTheSuccessLine,
                ) => {
                    assert!(
                        matches!(**source, SaslError::ServerNotAuthenticated { .. }),
                        "{source:?}"
                    );
                    assert_ne!(run.lines.last().unwrap(), b"*\r\n");
                }
                (other, _) => {
                    panic!("{mechanism} {mode:?}: expected a forged signature, got {other:?}")
                }
            }
        }
    }
}

#[test]
fn the_authorization_id_reaches_the_server() {
    let creds = Credentials::new(USER, PASSWORD)
        .unwrap()
        .with_authzid("postmaster")
        .unwrap();
    let mech = client_mechanism("PLAIN", &creds, &ClientOptions::default()).unwrap();
    let exchange = AuthExchange::start(mech, &context(), &AuthOptions::default()).unwrap();
    let server = server_mechanism("PLAIN", lookup()).unwrap();
    let run = run(exchange, server, SuccessData::AsChallenge, Tamper::None);
    assert!(run.result.is_ok());
    let who = run.authenticated.unwrap();
    assert_eq!(who.authcid, USER);
    assert_eq!(who.authzid.as_deref(), Some("postmaster"));
}

#[test]
fn the_exchange_debug_shows_no_secret() {
    let e = exchange("PLAIN", PASSWORD);
    let shown = format!("{e:?}");
    assert!(shown.contains("PLAIN"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    let ir = B64.encode(format!("\0{USER}\0{PASSWORD}"));
    assert!(!shown.contains(&ir), "{shown}");
}

#[test]
fn automatic_choice_drives_the_strongest_offered_mechanism() {
    let creds = Credentials::new(USER, PASSWORD).unwrap();
    let ctx = AuthContext {
        offered: vec!["PLAIN".into(), "CRAM-MD5".into(), "SCRAM-SHA-1".into()],
        encrypted: false,
        authenticated: false,
        channel_bindings: Vec::new(),
    };
    let exchange = AuthExchange::start_auto(&creds, &ctx, &AuthOptions::default()).unwrap();
    assert_eq!(exchange.mechanism(), "SCRAM-SHA-1");
    let server = server_mechanism("SCRAM-SHA-1", lookup()).unwrap();
    assert!(
        run(exchange, server, SuccessData::AsChallenge, Tamper::None)
            .result
            .is_ok()
    );

    // Restricted to what the caller allows.
    let options = AuthOptions::new().allowed(&["CRAM-MD5"]);
    let exchange = AuthExchange::start_auto(&creds, &ctx, &options).unwrap();
    assert_eq!(exchange.mechanism(), "CRAM-MD5");
}

#[test]
fn a_mechanism_error_names_the_mechanism_once() {
    let server = server_mechanism("SCRAM-SHA-256", lookup()).unwrap();
    let run = run(
        exchange("SCRAM-SHA-256", PASSWORD),
        server,
        SuccessData::AsChallenge,
        Tamper::SuccessData,
    );
    let shown = run.result.unwrap_err().to_string();
    assert!(shown.starts_with("SCRAM-SHA-256: "), "{shown}");
    assert_eq!(shown.matches("SCRAM-SHA-256").count(), 1, "{shown}");
    assert!(shown.contains("501"), "the reply to the cancel: {shown}");
}

/// Over TLS with binding data, the automatic choice takes SCRAM-SHA-256-PLUS when offered,
/// and the exchange succeeds against a server on the same channel; without TLS, or with
/// channel binding switched off, plain SCRAM; offered no -PLUS, SCRAM says `y`.
#[test]
fn auto_prefers_plus_over_tls_and_says_y_when_not_offered() {
    let creds = Credentials::new(USER, PASSWORD).unwrap();
    let offered = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect();
    let tls = AuthContext {
        offered: offered(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"]),
        encrypted: true,
        authenticated: false,
        channel_bindings: vec![binding()],
    };
    let exchange = AuthExchange::start_auto(&creds, &tls, &AuthOptions::default()).unwrap();
    assert_eq!(exchange.mechanism(), "SCRAM-SHA-256-PLUS");
    let plus = run(
        exchange,
        bound_server("SCRAM-SHA-256-PLUS"),
        SuccessData::AsChallenge,
        Tamper::None,
    );
    assert!(plus.result.is_ok(), "{:?}", plus.result);
    let ir = String::from_utf8(plus.lines[0].clone()).unwrap();
    let ir = B64
        .decode(ir.trim_end().rsplit(' ').next().unwrap())
        .unwrap();
    assert!(ir.starts_with(b"p=tls-exporter,,"));

    let off = AuthOptions::default().channel_binding(false);
    let exchange = AuthExchange::start_auto(&creds, &tls, &off).unwrap();
    assert_eq!(exchange.mechanism(), "SCRAM-SHA-256");
    let clear = AuthContext {
        encrypted: false,
        ..tls.clone()
    };
    let exchange = AuthExchange::start_auto(&creds, &clear, &AuthOptions::default()).unwrap();
    assert_eq!(exchange.mechanism(), "SCRAM-SHA-256");

    // No -PLUS offered, yet the client can bind: y; a server that supports binding fails
    // it (someone removed -PLUS from the list), one that does not accepts it.
    let stripped = AuthContext {
        offered: offered(&["SCRAM-SHA-256"]),
        ..tls.clone()
    };
    let start = || AuthExchange::start_auto(&creds, &stripped, &AuthOptions::default()).unwrap();
    let downgraded = run(
        start(),
        bound_server("SCRAM-SHA-256"),
        SuccessData::AsChallenge,
        Tamper::None,
    );
    assert!(
        matches!(downgraded.result, Err(AuthError::BadCredentials { .. })),
        "{:?}",
        downgraded.result
    );
    let plain_server = server_mechanism("SCRAM-SHA-256", lookup()).unwrap();
    let ok = run(
        start(),
        plain_server,
        SuccessData::AsChallenge,
        Tamper::None,
    );
    assert!(ok.result.is_ok(), "{:?}", ok.result);
    let ir = String::from_utf8(ok.lines[0].clone()).unwrap();
    let ir = B64
        .decode(ir.trim_end().rsplit(' ').next().unwrap())
        .unwrap();
    assert!(ir.starts_with(b"y,,"));
}
