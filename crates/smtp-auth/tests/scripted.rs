//! The AUTH exchange against the scripted server: exact reply sequences, exact lines sent.
//!
//! Each test is written once, generic over [`Driver`], and run against the blocking client
//! (`blocking::*`) and the async client (`tokio::*`, feature `tokio`). Vectors come from
//! RFC 2195 (CRAM-MD5), RFC 5802 and RFC 7677 (SCRAM), RFC 4616 (PLAIN).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sasl_mechs::{
    client_mechanism, ClientOptions, Credentials, External, Mechanism, Response, SaslError, Scram,
    ScramHash,
};
use smtp_auth::{AuthError, AuthOptions, Violation};
use smtp_client::{ClientConfig, Direction, Timeouts, TlsConfig, TlsMode};
use smtp_proto::{ChallengeError, Domain};
use smtp_testserver::scripted::{test_cert, Record, Script, ScriptedServer, Step};

use test_support::auth::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    plain_rides_on_the_auth_line_and_a_second_auth_is_refused_client_side,
    plain_and_login_are_refused_in_clear_unless_allowed,
    cram_md5_answers_the_rfc2195_challenge,
    login_sends_the_password_alone_and_the_transcript_masks_it,
    bad_credentials_leave_the_connection_usable_for_another_auth,
    each_refusal_code_has_its_own_error,
    invalid_base64_in_a_challenge_is_cancelled,
    a_multi_line_challenge_is_cancelled,
    a_challenge_after_the_mechanism_finished_is_cancelled,
    too_many_challenges_are_cancelled,
    an_empty_initial_response_is_an_equals_sign,
    an_initial_response_too_long_for_the_line_waits_for_the_334,
    a_held_initial_response_needs_an_empty_challenge,
    scram_server_final_as_a_challenge_is_verified,
    scram_server_final_with_the_235_is_verified,
    a_forged_scram_server_signature_is_cancelled,
    scram_success_without_a_server_signature_is_refused,
    a_2xx_other_than_235_is_reported_without_cancel,
    auth_types_gives_the_list_and_the_line,
    a_mechanism_not_offered_sends_nothing,
    after_starttls_the_auth_list_is_read_again,
    auth_auto_picks_the_strongest_allowed_mechanism,
    auth_auto_refuses_plaintext_in_clear,
    xoauth2_failure_keeps_the_servers_error_json,
);

fn b64(bytes: impl AsRef<[u8]>) -> String {
    B64.encode(bytes)
}

fn config(server: &ScriptedServer, mode: TlsMode) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(mode)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .tls(TlsConfig::no_default_roots().add_ca_der(test_cert().ca_der.clone()))
}

fn connect<C: Driver>(server: &ScriptedServer) -> C {
    C::connect(config(server, TlsMode::None)).expect("connect")
}

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "script failed: {:?}", record.result);
    record
}

fn allow_plain() -> AuthOptions {
    AuthOptions::new().allow_plaintext_without_tls(true)
}

fn auth_lines(record: &Record) -> usize {
    record
        .clear_lines()
        .iter()
        .filter(|l| l.starts_with("AUTH"))
        .count()
}

fn quit<C: Driver>(client: &mut C) {
    client.quit().expect("QUIT");
}

fn plain_rides_on_the_auth_line_and_a_second_auth_is_refused_client_side<C: Driver>() {
    // RFC 4616: authzid NUL authcid NUL passwd.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH PLAIN LOGIN CRAM-MD5"])
            .expect(&format!("AUTH PLAIN {}", b64("\0alice\0s3cret")))
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    assert!(!client.is_authenticated());
    let ok = client
        .auth_with_options("plain", "alice", "s3cret", &allow_plain())
        .expect("PLAIN succeeds");
    assert_eq!(ok.mechanism, "PLAIN");
    assert_eq!(ok.reply.code().get(), 235);
    assert!(client.is_authenticated());

    let again = client.auth("CRAM-MD5", "alice", "s3cret").unwrap_err();
    assert!(
        matches!(again, AuthError::AlreadyAuthenticated),
        "{again:?}"
    );
    assert!(again.nothing_sent());
    quit(&mut client);
    let record = finish_ok(server);
    assert_eq!(auth_lines(&record), 1, "{:?}", record.clear_lines());
}

fn plain_and_login_are_refused_in_clear_unless_allowed<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH PLAIN LOGIN"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    for mech in ["PLAIN", "login"] {
        let e = client.auth(mech, "alice", "s3cret").unwrap_err();
        assert!(
            matches!(&e, AuthError::PlaintextRefused { mechanism } if mechanism.eq_ignore_ascii_case(mech)),
            "{e:?}"
        );
        assert!(e.to_string().contains("in clear"), "{e}");
        let creds = Credentials::new("alice", "s3cret").unwrap();
        let m = client_mechanism(mech, &creds, &ClientOptions::default()).unwrap();
        let e = client.auth_with(m, &AuthOptions::default()).unwrap_err();
        assert!(matches!(e, AuthError::PlaintextRefused { .. }), "{e:?}");
    }
    quit(&mut client);
    let record = finish_ok(server);
    assert_eq!(auth_lines(&record), 0, "nothing sent");
}

fn cram_md5_answers_the_rfc2195_challenge<C: Driver>() {
    // RFC 2195 section 2.
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH LOGIN CRAM-MD5"])
            .expect("AUTH CRAM-MD5")
            .reply("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
            .expect("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw")
            .reply("235 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let ok = client
        .auth("CRAM-MD5", "tim", "tanstaaftanstaaf")
        .expect("CRAM-MD5");
    assert_eq!(ok.mechanism, "CRAM-MD5");
    assert!(client.is_authenticated());
    quit(&mut client);
    finish_ok(server);
}

fn login_sends_the_password_alone_and_the_transcript_masks_it<C: Driver>() {
    let password = "Pa55 word-Secret";
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH LOGIN PLAIN"])
            .expect("AUTH LOGIN")
            .reply("334 VXNlcm5hbWU6")
            .expect(&b64("alice"))
            .reply("334 UGFzc3dvcmQ6")
            .expect(&b64(password))
            .reply("535 5.7.8 Authentication credentials invalid")
            .expect(&format!(
                "AUTH PLAIN {}",
                b64(format!("\0alice\0{password}"))
            ))
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<(Direction, String)>::new()));
    let sink = Arc::clone(&lines);
    let config = config(&server, TlsMode::None)
        .transcript(move |d, l| sink.lock().unwrap().push((d, l.to_owned())));
    let mut client = C::connect(config).unwrap();
    let e = client
        .auth_with_options("LOGIN", "alice", password, &allow_plain())
        .unwrap_err();
    assert!(matches!(e, AuthError::BadCredentials { .. }), "{e:?}");
    client
        .auth_with_options("PLAIN", "alice", password, &allow_plain())
        .expect("PLAIN");
    quit(&mut client);
    finish_ok(server);

    let lines = lines.lock().unwrap();
    let sent: Vec<&str> = lines
        .iter()
        .filter(|(d, _)| *d == Direction::Sent)
        .map(|(_, l)| l.as_str())
        .collect();
    assert!(sent.contains(&"AUTH LOGIN"), "{sent:?}");
    assert!(sent.contains(&"AUTH PLAIN ****"), "{sent:?}");
    assert_eq!(sent.iter().filter(|l| **l == "****").count(), 2, "{sent:?}");
    let secrets = [
        password.to_owned(),
        b64(password),
        b64(format!("\0alice\0{password}")),
        "UGE1NSB3b3Jk".to_owned(), // a prefix of the password's base64
    ];
    for (_, line) in lines.iter() {
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "transcript leaks: {line}");
        }
    }
    for text in [e.to_string(), format!("{e:?}")] {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "error leaks: {text}");
        }
    }
}

fn bad_credentials_leave_the_connection_usable_for_another_auth<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH CRAM-MD5 LOGIN"])
            .expect("AUTH CRAM-MD5")
            .reply("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
            .step(Step::ReadLine)
            .reply("535 5.7.8 Authentication credentials invalid")
            .expect("AUTH CRAM-MD5")
            .reply("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
            .expect("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw")
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let e = client.auth("CRAM-MD5", "tim", "wrong").unwrap_err();
    match &e {
        AuthError::BadCredentials {
            mechanism,
            reply,
            detail,
        } => {
            assert_eq!(*mechanism, "CRAM-MD5");
            assert_eq!(reply.code().get(), 535);
            assert_eq!(reply.enhanced().unwrap().to_string(), "5.7.8");
            assert!(detail.is_none());
        }
        other => panic!("expected BadCredentials, got {other:?}"),
    }
    assert!(e.to_string().contains("535 5.7.8"), "{e}");
    assert!(!client.is_authenticated());
    client
        .auth("CRAM-MD5", "tim", "tanstaaftanstaaf")
        .expect("second try");
    assert!(client.is_authenticated());
    quit(&mut client);
    finish_ok(server);
}

fn each_refusal_code_has_its_own_error<C: Driver>() {
    type Check = fn(&AuthError) -> bool;
    let cases: [(&str, Check); 6] = [
        ("454 4.7.0 Temporary authentication failure", |e| {
            matches!(e, AuthError::Temporary { .. })
        }),
        ("432 4.7.12 A password transition is needed", |e| {
            matches!(e, AuthError::Temporary { .. })
        }),
        (
            "538 5.7.11 Encryption required for requested authentication mechanism",
            |e| matches!(e, AuthError::EncryptionRequired { .. }),
        ),
        ("534 5.7.9 Authentication mechanism is too weak", |e| {
            matches!(e, AuthError::TooWeak { .. })
        }),
        ("504 5.5.4 Unrecognized authentication type", |e| {
            matches!(e, AuthError::Refused { .. })
        }),
        ("503 5.5.1 Error: already authenticated", |e| {
            matches!(e, AuthError::Refused { .. })
        }),
    ];
    for (line, check) in cases {
        let server = ScriptedServer::start(
            Script::new()
                .greet_ehlo(&["AUTH CRAM-MD5"])
                .expect("AUTH CRAM-MD5")
                .reply(line)
                .expect("NOOP")
                .reply("250 2.0.0 Ok")
                .expect("QUIT")
                .reply("221 bye"),
        )
        .unwrap();
        let mut client: C = connect(&server);
        let e = client.auth("CRAM-MD5", "tim", "pw").unwrap_err();
        assert!(check(&e), "{line}: {e:?}");
        assert_eq!(e.reply().unwrap().to_string(), line);
        assert!(!e.nothing_sent());
        assert!(!client.is_authenticated());
        client.noop().expect("the connection is still usable");
        quit(&mut client);
        finish_ok(server);
    }
}

fn invalid_base64_in_a_challenge_is_cancelled<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH CRAM-MD5"])
            .expect("AUTH CRAM-MD5")
            .reply("334 !!not*base64!!")
            .expect("*")
            .reply("501 5.7.0 Authentication aborted")
            .expect("NOOP")
            .reply("250 2.0.0 Ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let e = client.auth("CRAM-MD5", "tim", "pw").unwrap_err();
    match &e {
        AuthError::ServerMisbehaved {
            violation: Violation::BadChallenge(ChallengeError::BadBase64 { .. }),
            cancel_reply: Some(reply),
            ..
        } => assert_eq!(reply.code().get(), 501),
        other => panic!("expected a bad challenge, got {other:?}"),
    }
    assert!(e.to_string().contains("cancelled"), "{e}");
    client.noop().expect("usable after the cancel");
    quit(&mut client);
    finish_ok(server);
}

fn a_multi_line_challenge_is_cancelled<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH CRAM-MD5"])
            .expect("AUTH CRAM-MD5")
            .reply("334-PDE4OTYu\n334 Njk3MTcwOTUy")
            .expect("*")
            .reply("501 5.7.0 Authentication aborted")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let e = client.auth("CRAM-MD5", "tim", "pw").unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::ServerMisbehaved {
                violation: Violation::BadChallenge(ChallengeError::MultiLine),
                cancel_reply: Some(_),
                ..
            }
        ),
        "{e:?}"
    );
    quit(&mut client);
    finish_ok(server);
}

fn a_challenge_after_the_mechanism_finished_is_cancelled<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH PLAIN"])
            .expect(&format!("AUTH PLAIN {}", b64("\0alice\0s3cret")))
            .reply("334 Zm9v")
            .expect("*")
            .reply("501 5.7.0 Authentication aborted")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let e = client
        .auth_with_options("PLAIN", "alice", "s3cret", &allow_plain())
        .unwrap_err();
    assert!(
        matches!(
            &e,
            AuthError::ServerMisbehaved {
                violation: Violation::UnexpectedChallenge,
                cancel_reply: Some(r),
                ..
            } if r.code().get() == 501
        ),
        "{e:?}"
    );
    assert!(!client.is_authenticated());
    quit(&mut client);
    finish_ok(server);
}

/// A mechanism that answers every challenge with an empty response, for ever.
#[derive(Debug)]
struct Endless;

impl Mechanism for Endless {
    fn name(&self) -> &'static str {
        "X-ENDLESS"
    }
    fn has_initial_response(&self) -> bool {
        false
    }
    fn initial_response(&mut self) -> Result<Option<Response>, SaslError> {
        Ok(None)
    }
    fn respond(&mut self, _challenge: &[u8]) -> Result<Response, SaslError> {
        Ok(Response::new(Vec::new()))
    }
    fn finish(&mut self, _success_data: Option<&[u8]>) -> Result<(), SaslError> {
        Ok(())
    }
}

fn too_many_challenges_are_cancelled<C: Driver>() {
    let mut script = Script::new()
        .greet_ehlo(&["AUTH X-ENDLESS"])
        .expect("AUTH X-ENDLESS");
    for _ in 0..smtp_auth::MAX_ROUNDS {
        script = script.reply("334 ").expect("");
    }
    let script = script
        .reply("334 ")
        .expect("*")
        .reply("501 5.7.0 Authentication aborted")
        .expect("QUIT")
        .reply("221 bye");
    let server = ScriptedServer::start(script).unwrap();
    let mut client: C = connect(&server);
    let e = client
        .auth_with(Box::new(Endless), &AuthOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::ServerMisbehaved {
                violation: Violation::TooManyRounds {
                    limit: smtp_auth::MAX_ROUNDS
                },
                cancel_reply: Some(_),
                ..
            }
        ),
        "{e:?}"
    );
    quit(&mut client);
    finish_ok(server);
}

fn an_empty_initial_response_is_an_equals_sign<C: Driver>() {
    // RFC 4954 4: "If the client is transmitting an initial response of zero length, it
    // MUST instead transmit the response as a single equals sign".
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH EXTERNAL"])
            .expect("AUTH EXTERNAL =")
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let creds = Credentials::without_secret("").unwrap();
    client
        .auth_with(Box::new(External::new(&creds)), &AuthOptions::default())
        .expect("EXTERNAL");
    quit(&mut client);
    finish_ok(server);
}

fn an_initial_response_too_long_for_the_line_waits_for_the_334<C: Driver>() {
    // "\0alice\0" is 7 bytes. 365 password bytes: 372 bytes, 496 in base64,
    // "AUTH PLAIN " + 496 + CRLF = 509 octets: on the line. 369: 376 bytes, 504 in base64,
    // 517 octets: too long for RFC 5321's 512.
    let fits = "f".repeat(365);
    let too_long = "t".repeat(369);
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH PLAIN"])
            .expect(&format!("AUTH PLAIN {}", b64(format!("\0alice\0{fits}"))))
            .reply("535 5.7.8 Authentication credentials invalid")
            .expect("AUTH PLAIN")
            .reply("334 ")
            .expect(&b64(format!("\0alice\0{too_long}")))
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let e = client
        .auth_with_options("PLAIN", "alice", &fits, &allow_plain())
        .unwrap_err();
    assert!(matches!(e, AuthError::BadCredentials { .. }), "{e:?}");
    client
        .auth_with_options("PLAIN", "alice", &too_long, &allow_plain())
        .expect("after the 334");
    quit(&mut client);
    let record = finish_ok(server);
    assert!(record.clear_lines().iter().all(|l| l.len() + 2 <= 512));
}

fn a_held_initial_response_needs_an_empty_challenge<C: Driver>() {
    let too_long = "t".repeat(400);
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH PLAIN"])
            .expect("AUTH PLAIN")
            .reply("334 Zm9v")
            .expect("*")
            .reply("501 5.7.0 Authentication aborted")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let e = client
        .auth_with_options("PLAIN", "alice", &too_long, &allow_plain())
        .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::ServerMisbehaved {
                violation: Violation::UnexpectedChallenge,
                ..
            }
        ),
        "{e:?}"
    );
    quit(&mut client);
    finish_ok(server);
}

/// RFC 7677 section 3 (SCRAM-SHA-256): user "user", password "pencil".
const SHA256_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SHA256_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SHA256_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SHA256_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SHA256_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/// RFC 5802 section 5 (SCRAM-SHA-1): user "user", password "pencil".
const SHA1_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
const SHA1_CLIENT_FIRST: &str = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
const SHA1_SERVER_FIRST: &str =
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
const SHA1_CLIENT_FINAL: &str =
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
const SHA1_SERVER_FINAL: &str = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

fn scram(hash: ScramHash, nonce: &str) -> Box<dyn Mechanism> {
    let creds = Credentials::new("user", "pencil").unwrap();
    Box::new(Scram::with_nonce(hash, &creds, nonce).unwrap())
}

fn scram_script(mech: &str, first: &str, server_first: &str, client_final: &str) -> Script {
    Script::new()
        .greet_ehlo(&[&format!("AUTH {mech}")])
        .expect(&format!("AUTH {mech} {}", b64(first)))
        .reply(&format!("334 {}", b64(server_first)))
        .expect(&b64(client_final))
}

fn scram_server_final_as_a_challenge_is_verified<C: Driver>() {
    let server = ScriptedServer::start(
        scram_script(
            "SCRAM-SHA-256",
            SHA256_CLIENT_FIRST,
            SHA256_SERVER_FIRST,
            SHA256_CLIENT_FINAL,
        )
        .reply(&format!("334 {}", b64(SHA256_SERVER_FINAL)))
        .expect("")
        .reply("235 2.7.0 Authentication successful")
        .expect("QUIT")
        .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    client
        .auth_with(
            scram(ScramHash::Sha256, SHA256_NONCE),
            &AuthOptions::default(),
        )
        .expect("SCRAM-SHA-256");
    assert!(client.is_authenticated());
    quit(&mut client);
    finish_ok(server);
}

fn scram_server_final_with_the_235_is_verified<C: Driver>() {
    let server = ScriptedServer::start(
        scram_script(
            "SCRAM-SHA-1",
            SHA1_CLIENT_FIRST,
            SHA1_SERVER_FIRST,
            SHA1_CLIENT_FINAL,
        )
        .reply(&format!("235 2.7.0 {}", b64(SHA1_SERVER_FINAL)))
        .expect("QUIT")
        .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    client
        .auth_with(scram(ScramHash::Sha1, SHA1_NONCE), &AuthOptions::default())
        .expect("SCRAM-SHA-1 with its proof in the 235");
    assert!(client.is_authenticated());
    quit(&mut client);
    finish_ok(server);
}

fn a_forged_scram_server_signature_is_cancelled<C: Driver>() {
    let forged = "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    let server = ScriptedServer::start(
        scram_script(
            "SCRAM-SHA-256",
            SHA256_CLIENT_FIRST,
            SHA256_SERVER_FIRST,
            SHA256_CLIENT_FINAL,
        )
        .reply(&format!("334 {}", b64(forged)))
        .expect("*")
        .reply("501 5.7.0 Authentication aborted")
        .expect("QUIT")
        .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let e = client
        .auth_with(
            scram(ScramHash::Sha256, SHA256_NONCE),
            &AuthOptions::default(),
        )
        .unwrap_err();
    match &e {
        AuthError::Mechanism {
            source,
            cancel_reply: Some(reply),
            ..
        } => {
            assert!(
                matches!(**source, SaslError::ServerNotAuthenticated { .. }),
                "{source:?}"
            );
            assert_eq!(reply.code().get(), 501);
        }
        other => panic!("expected a mechanism error, got {other:?}"),
    }
    assert!(!client.is_authenticated());
    quit(&mut client);
    finish_ok(server);
}

fn scram_success_without_a_server_signature_is_refused<C: Driver>() {
    for last in [
        "235 2.7.0 Authentication successful".to_owned(),
        format!(
            "235 2.7.0 {}",
            b64("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        ),
    ] {
        let server = ScriptedServer::start(
            scram_script(
                "SCRAM-SHA-256",
                SHA256_CLIENT_FIRST,
                SHA256_SERVER_FIRST,
                SHA256_CLIENT_FINAL,
            )
            .reply(&last)
            .expect("QUIT")
            .reply("221 bye"),
        )
        .unwrap();
        let mut client: C = connect(&server);
        let e = client
            .auth_with(
                scram(ScramHash::Sha256, SHA256_NONCE),
                &AuthOptions::default(),
            )
            .unwrap_err();
        assert!(
            matches!(
                &e,
                AuthError::Mechanism { source, cancel_reply: None, .. }
                    if matches!(**source, SaslError::ServerNotAuthenticated { .. })
            ),
            "{last}: {e:?}"
        );
        assert!(!client.is_authenticated(), "{last}");
        quit(&mut client);
        finish_ok(server);
    }
}

fn a_2xx_other_than_235_is_reported_without_cancel<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH CRAM-MD5"])
            .expect("AUTH CRAM-MD5")
            .reply("250 2.0.0 Ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let e = client.auth("CRAM-MD5", "tim", "pw").unwrap_err();
    assert!(
        matches!(
            &e,
            AuthError::ServerMisbehaved {
                violation: Violation::UnexpectedReply(r),
                cancel_reply: None,
                ..
            } if r.code().get() == 250
        ),
        "{e:?}"
    );
    assert!(!client.is_authenticated());
    quit(&mut client);
    finish_ok(server);
}

fn auth_types_gives_the_list_and_the_line<C: Driver>() {
    let cases: [(&[&str], &[&str], Option<&str>); 3] = [
        (
            &["AUTH=LOGIN PLAIN", "PIPELINING"],
            &["LOGIN", "PLAIN"],
            Some("AUTH=LOGIN PLAIN"),
        ),
        (
            &["AUTH login PLAIN cram-md5", "AUTH=LOGIN PLAIN"],
            &["LOGIN", "PLAIN", "CRAM-MD5"],
            Some("AUTH login PLAIN cram-md5"),
        ),
        (&["PIPELINING"], &[], None),
    ];
    for (ehlo, mechanisms, line) in cases {
        let server = ScriptedServer::start(
            Script::new()
                .greet_ehlo(ehlo)
                .expect("QUIT")
                .reply("221 bye"),
        )
        .unwrap();
        let mut client: C = connect(&server);
        let types = client.auth_types();
        assert_eq!(types.mechanisms, mechanisms, "{ehlo:?}");
        assert_eq!(types.line.as_deref(), line, "{ehlo:?}");
        assert_eq!(types.joined(), mechanisms.join(" "));
        quit(&mut client);
        finish_ok(server);
    }
}

fn a_mechanism_not_offered_sends_nothing<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH LOGIN PLAIN"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    for mech in ["CRAM-MD5", "GSSAPI"] {
        let e = client.auth(mech, "tim", "pw").unwrap_err();
        match &e {
            AuthError::NotOffered {
                mechanism, offered, ..
            } => {
                assert_eq!(mechanism, mech);
                assert_eq!(offered, &["LOGIN", "PLAIN"]);
            }
            other => panic!("expected NotOffered, got {other:?}"),
        }
        assert!(e.nothing_sent());
    }
    quit(&mut client);
    let record = finish_ok(server);
    assert_eq!(auth_lines(&record), 0);
}

fn after_starttls_the_auth_list_is_read_again<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["STARTTLS", "AUTH LOGIN"])
            .expect("STARTTLS")
            .reply("220 2.0.0 Ready to start TLS")
            .start_tls()
            .expect_prefix("EHLO ")
            .reply("250-test.invalid\n250-AUTH PLAIN SCRAM-SHA-256 CRAM-MD5\n250 PIPELINING")
            .expect(&format!("AUTH PLAIN {}", b64("\0alice\0s3cret")))
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server, TlsMode::StartTlsRequired)).unwrap();
    assert!(client.is_encrypted());
    let types = client.auth_types();
    assert_eq!(types.mechanisms, ["PLAIN", "SCRAM-SHA-256", "CRAM-MD5"]);
    assert_eq!(
        types.line.as_deref(),
        Some("AUTH PLAIN SCRAM-SHA-256 CRAM-MD5")
    );
    // Encrypted: PLAIN needs no permission.
    client
        .auth("PLAIN", "alice", "s3cret")
        .expect("PLAIN over TLS");
    quit(&mut client);
    let record = finish_ok(server);
    assert_eq!(auth_lines(&record), 0, "no AUTH in clear");
}

fn auth_auto_picks_the_strongest_allowed_mechanism<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH PLAIN LOGIN CRAM-MD5"])
            .expect("AUTH CRAM-MD5")
            .reply("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
            .expect("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw")
            .reply("235 2.7.0 Authentication successful")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let creds = Credentials::new("tim", "tanstaaftanstaaf").unwrap();
    let ok = client
        .auth_auto(&creds, &allow_plain())
        .expect("auto choice");
    assert_eq!(ok.mechanism, "CRAM-MD5");
    quit(&mut client);
    finish_ok(server);
}

fn auth_auto_refuses_plaintext_in_clear<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH PLAIN LOGIN CRAM-MD5"])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let creds = Credentials::new("tim", "tanstaaftanstaaf").unwrap();
    let e = client
        .auth_auto(&creds, &AuthOptions::new().allowed(&["PLAIN", "LOGIN"]))
        .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::NoSuitableMechanism {
                plaintext_refused: true,
                ..
            }
        ),
        "{e:?}"
    );
    quit(&mut client);
    let record = finish_ok(server);
    assert_eq!(auth_lines(&record), 0);
}

fn xoauth2_failure_keeps_the_servers_error_json<C: Driver>() {
    let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.example.test/"}"#;
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["AUTH XOAUTH2"])
            .expect_prefix("AUTH XOAUTH2 ")
            .reply(&format!("334 {}", b64(json)))
            .expect("")
            .reply("535 5.7.8 Username and Password not accepted")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client: C = connect(&server);
    let creds = Credentials::with_token("alice", "ya29.token").unwrap();
    let mech = client_mechanism("XOAUTH2", &creds, &ClientOptions::default()).unwrap();
    let e = client.auth_with(mech, &AuthOptions::default()).unwrap_err();
    match &e {
        AuthError::BadCredentials {
            detail: Some(detail),
            reply,
            ..
        } => {
            assert_eq!(detail.status, "401");
            assert_eq!(reply.code().get(), 535);
        }
        other => panic!("expected BadCredentials with detail, got {other:?}"),
    }
    assert!(!e.to_string().contains("ya29"), "{e}");
    quit(&mut client);
    finish_ok(server);
}
