//! smtp-auth against real servers on loopback (`cargo xtask servers up`): Postfix with
//! Dovecot SASL and with Cyrus SASL (sasldb), on the plain-text, STARTTLS-required and
//! implicit-TLS listeners.
//!
//! The matrix test runs, for every configured listener × every mechanism it advertises ×
//! every test user, on one connection: a wrong password (which must give the 535
//! [`AuthError::BadCredentials`]), then the right one on the same connection (which must
//! succeed), then a message that must be delivered. Failures are collected, the whole
//! matrix is printed, and the test fails if any cell failed. Every transcript is checked
//! for the password and the base64 that carries it.
//!
//! Each test is written once, generic over [`Driver`], and run with the blocking client and
//! [`smtp_auth::SmtpAuth`] (`blocking::*`) and, with feature `tokio`, with the async client
//! and `smtp_auth::tokio::AsyncSmtpAuth` (`tokio::*`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use interop_tests::{
    ca_pem_path, require_servers, unique_marker, wait_for_message, Listener, SaslBackend,
    TlsMode as ListenerTls, User, ALICE, BOB, CAROL, USERS,
};
use sasl_mechs::{client_mechanism, ClientOptions, Credentials, Mechanism};
use smtp_auth::{AuthError, AuthOptions};
use smtp_client::{ClientConfig, Direction, Envelope, Timeouts, TlsConfig, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};

use test_support::auth::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    every_listener_mechanism_and_user,
    starttls_required_listener_offers_auth_only_after_starttls,
    plaintext_mechanisms_are_refused_in_clear_by_default_and_nothing_is_sent,
    oauth_failure_detail_from_dovecot,
);

/// The driver's name, for the matrix and failure messages.
fn driver_name<C: Driver>() -> &'static str {
    let name = std::any::type_name::<C>();
    name.rsplit("::").next().unwrap_or(name)
}

/// Every line of one connection's transcript.
type Lines = Arc<Mutex<Vec<(Direction, String)>>>;

fn client_tls(listener: Listener) -> TlsMode {
    match listener.tls() {
        // AUTH in clear: that is what these listeners are for.
        ListenerTls::StartTlsOffered => TlsMode::None,
        ListenerTls::StartTlsRequired => TlsMode::StartTlsRequired,
        ListenerTls::Implicit => TlsMode::Implicit,
    }
}

fn config(listener: Listener, mode: TlsMode, lines: &Lines) -> ClientConfig {
    let sink = Arc::clone(lines);
    // The certificate names 127.0.0.1 and ::1 too, and is checked against them.
    ClientConfig::new(listener.ip().to_string())
        .port(listener.port())
        .tls_mode(mode)
        .hello(Domain::new("client.example.test").expect("valid domain"))
        .timeouts(Timeouts::uniform(Duration::from_secs(30)))
        .tls(
            TlsConfig::no_default_roots()
                .add_ca_pem_file(ca_pem_path())
                .expect("the test CA"),
        )
        .transcript(move |direction, line| {
            sink.lock()
                .expect("transcript lock")
                .push((direction, line.to_owned()));
        })
}

/// How mechanisms are built for a backend: Cyrus checks DIGEST-MD5's digest-uri host
/// against Postfix's host name; NTLM's domain is the realm, upper-cased (Cyrus upper-cases
/// it when it checks NTLMv2).
fn client_options(backend: SaslBackend) -> ClientOptions {
    let mut options = ClientOptions::default();
    if backend == SaslBackend::Cyrus {
        options.host = Some(interop_tests::SERVER_HOSTNAME.to_owned());
    }
    options
}

/// The mechanism `name` for `user` with `secret` (the secret doubles as the bearer token:
/// Dovecot 2.3 checks OAUTHBEARER/XOAUTH2 tokens against the passdb password).
fn mechanism(
    name: &str,
    user: &User,
    secret: &str,
    backend: SaslBackend,
) -> Result<Box<dyn Mechanism>, String> {
    let creds = if matches!(name, "OAUTHBEARER" | "XOAUTH2") {
        Credentials::with_token(user.login, secret)
    } else {
        Credentials::new(user.login, secret)
    }
    .map_err(|e| format!("credentials: {e}"))?;
    client_mechanism(name, &creds, &client_options(backend)).map_err(|e| format!("build: {e}"))
}

fn options() -> AuthOptions {
    AuthOptions::new().allow_plaintext_without_tls(true)
}

/// Checks that no transcript line shows the password, its base64, or an AUTH payload.
fn check_transcript(lines: &Lines, passwords: &[&str]) -> Result<(), String> {
    let lines = lines.lock().expect("transcript lock");
    let mut in_auth = false;
    for (direction, line) in lines.iter() {
        for password in passwords {
            if line.contains(password) || line.contains(&STANDARD.encode(password)) {
                return Err(format!("transcript shows a password: {direction} {line}"));
            }
        }
        if *direction != Direction::Sent {
            in_auth = in_auth && line.starts_with("334");
            continue;
        }
        let mut words = line.split(' ');
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AUTH")) {
            let _mechanism = words.next();
            match words.next() {
                None | Some("****") => {}
                Some(other) => return Err(format!("unmasked initial response {other:?}")),
            }
            in_auth = true;
        } else if in_auth && line != "****" && line != "*" {
            return Err(format!("unmasked AUTH response line {line:?}"));
        }
    }
    Ok(())
}

fn send_marked<C: Driver>(client: &mut C, user: &User, tag: &str) -> Result<String, String> {
    let marker = unique_marker(tag);
    let message = format!(
        "Message-ID: {marker}\r\nFrom: {0}\r\nTo: sink@example.test\r\nSubject: {tag}\r\n\r\nAuthenticated as {0}.\r\n",
        user.address()
    );
    let from = ReversePath::Mailbox(Mailbox::new(&user.address()).map_err(|e| e.to_string())?);
    let to = ForwardPath::new("sink@example.test").map_err(|e| e.to_string())?;
    client
        .send(&Envelope::new(from, [to]), message.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    Ok(marker)
}

/// One cell: wrong password (535, connection kept), right password (235), a delivered
/// message. Returns the marker of the message to wait for.
fn cell<C: Driver>(listener: Listener, name: &str, user: &User) -> Result<String, String> {
    let backend = listener.backend();
    let lines: Lines = Arc::default();
    let wrong = format!("{}-wrong", user.password);
    let mut client = C::connect(config(listener, client_tls(listener), &lines))
        .map_err(|e| format!("connect: {e}"))?;
    let offered = client.auth_types();
    if !offered.mechanisms.iter().any(|m| m == name) {
        return Err(format!("not offered: {:?}", offered.line));
    }

    match client.auth_with(mechanism(name, user, &wrong, backend)?, &options()) {
        Err(AuthError::BadCredentials { reply, .. }) if reply.code().get() == 535 => {}
        Err(e) => return Err(format!("wrong password: expected 535, got {e}")),
        Ok(s) => return Err(format!("wrong password accepted: {}", s.reply)),
    }
    if client.is_authenticated() {
        return Err("authenticated after a 535".into());
    }

    let success = client
        .auth_with(mechanism(name, user, user.password, backend)?, &options())
        .map_err(|e| format!("right password after a 535: {e}"))?;
    if success.reply.code().get() != 235 || success.mechanism != name {
        return Err(format!("unexpected success {success:?}"));
    }
    if !client.is_authenticated() {
        return Err("not marked authenticated".into());
    }
    match client.auth_with(mechanism(name, user, user.password, backend)?, &options()) {
        Err(AuthError::AlreadyAuthenticated) => {}
        other => return Err(format!("second AUTH not refused: {other:?}")),
    }

    let marker = send_marked(&mut client, user, &format!("{}-{name}", listener.name()))?;
    client.quit().map_err(|e| format!("quit: {e}"))?;
    check_transcript(&lines, &[user.password, &wrong])?;
    Ok(marker)
}

/// Why a cell is not run, if it is not.
fn skip_reason(listener: Listener, name: &str, user: &User) -> Option<&'static str> {
    if listener.backend() == SaslBackend::Cyrus && name == "NTLM" && *user == CAROL {
        // Cyrus turns the password into UTF-16 byte by byte (UTF-8 read as Latin-1), so a
        // correct client is refused for a non-ASCII password; covered by MS-NLMP vectors.
        return Some("Cyrus NTLM mangles non-ASCII passwords");
    }
    None
}

/// What became of one cell.
enum Outcome {
    Skipped(&'static str),
    /// Authenticated; the message with this marker was accepted for delivery.
    Sent(String),
    Failed(String),
}

/// (listener, mechanism), user, outcome.
type Cell = ((String, String), User, Outcome);

fn listener_cells<C: Driver>(listener: Listener) -> Vec<Cell> {
    let mut cells = Vec::new();
    for name in listener.mechanisms() {
        for user in USERS {
            let key = (listener.name().to_owned(), (*name).to_owned());
            let outcome = match skip_reason(listener, name, &user) {
                Some(reason) => Outcome::Skipped(reason),
                None => match cell::<C>(listener, name, &user) {
                    Ok(marker) => Outcome::Sent(marker),
                    Err(e) => Outcome::Failed(e),
                },
            };
            cells.push((key, user, outcome));
        }
    }
    cells
}

fn every_listener_mechanism_and_user<C: Driver>() {
    require_servers();
    let mut matrix: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut pending = Vec::new();
    // One thread per listener: the cells of a listener run in order, listeners side by side.
    let results: Vec<Vec<Cell>> = std::thread::scope(|scope| {
        let handles: Vec<_> = Listener::ALL
            .into_iter()
            .filter(|l| l.is_configured())
            .map(|listener| scope.spawn(move || listener_cells::<C>(listener)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a listener's thread panicked"))
            .collect()
    });
    for (key, user, outcome) in results.into_iter().flatten() {
        match outcome {
            Outcome::Skipped(reason) => matrix
                .entry(key)
                .or_default()
                .push(format!("{}:skip ({reason})", user.login)),
            Outcome::Sent(marker) => pending.push((key, user, marker)),
            Outcome::Failed(e) => {
                matrix
                    .entry(key.clone())
                    .or_default()
                    .push(format!("{}:FAIL", user.login));
                failures.push(format!("{} {} {}: {e}", key.0, key.1, user.login));
            }
        }
    }
    for (key, user, marker) in pending {
        let verdict = match wait_for_message(&marker) {
            Ok(_) => "ok",
            Err(e) => {
                failures.push(format!(
                    "{} {} {}: not delivered: {e}",
                    key.0, key.1, user.login
                ));
                "FAIL(delivery)"
            }
        };
        matrix
            .entry(key)
            .or_default()
            .push(format!("{}:{verdict}", user.login));
    }

    let mut table = format!(
        "driver {}\nlistener          mechanism       wrong→535, right→235, delivered\n",
        driver_name::<C>()
    );
    for ((listener, name), cells) in &matrix {
        let _ = writeln!(table, "{listener:<17} {name:<15} {}", cells.join(" "));
    }
    println!("{table}");
    assert!(
        failures.is_empty(),
        "{} failures with the {} driver:\n{}",
        failures.len(),
        driver_name::<C>(),
        failures.join("\n")
    );
}

fn starttls_required_listener_offers_auth_only_after_starttls<C: Driver>() {
    require_servers();
    for listener in [Listener::DovecotStartTls, Listener::CyrusStartTls] {
        let lines: Lines = Arc::default();
        let mut client = C::connect(config(listener, TlsMode::None, &lines)).unwrap();
        assert!(!client.is_encrypted());
        let before = client.auth_types();
        assert!(before.mechanisms.is_empty(), "{before:?}");
        assert_eq!(before.line, None);
        let err = client
            .auth("CRAM-MD5", ALICE.login, ALICE.password)
            .unwrap_err();
        assert!(
            matches!(
                err,
                AuthError::NotOffered {
                    encrypted: false,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("after STARTTLS"), "{err}");

        client.starttls().unwrap();
        assert!(client.is_encrypted());
        let after = client.auth_types();
        assert_eq!(after.mechanisms, listener.mechanisms(), "{listener:?}");
        assert!(after
            .line
            .as_deref()
            .is_some_and(|l| l.starts_with("AUTH ")));
        // PLAIN is allowed by default now that the channel is encrypted.
        client.auth("PLAIN", BOB.login, BOB.password).unwrap();
        client.quit().unwrap();
        check_transcript(&lines, &[BOB.password]).unwrap();
    }
}

fn plaintext_mechanisms_are_refused_in_clear_by_default_and_nothing_is_sent<C: Driver>() {
    require_servers();
    for listener in [Listener::DovecotPlain, Listener::CyrusPlain] {
        let lines: Lines = Arc::default();
        let mut client = C::connect(config(listener, TlsMode::None, &lines)).unwrap();
        for name in ["PLAIN", "LOGIN"] {
            let err = client.auth(name, ALICE.login, ALICE.password).unwrap_err();
            assert!(matches!(err, AuthError::PlaintextRefused { .. }), "{err}");
        }
        let sent_auth = lines
            .lock()
            .unwrap()
            .iter()
            .any(|(d, l)| *d == Direction::Sent && l.starts_with("AUTH"));
        assert!(!sent_auth, "AUTH sent despite the refusal");
        // The connection is untouched: the automatic choice takes the strongest one.
        let creds = Credentials::new(ALICE.login, ALICE.password).unwrap();
        let success = client.auth_auto(&creds, &AuthOptions::default()).unwrap();
        assert_eq!(success.mechanism, "SCRAM-SHA-256");
        client.quit().unwrap();
    }
}

fn oauth_failure_detail_from_dovecot<C: Driver>() {
    require_servers();
    let lines: Lines = Arc::default();
    let mut client = C::connect(config(
        Listener::DovecotImplicitTls,
        TlsMode::Implicit,
        &lines,
    ))
    .unwrap();
    let creds = Credentials::with_token(ALICE.login, "not-the-token").unwrap();
    let mech = client_mechanism("OAUTHBEARER", &creds, &ClientOptions::default()).unwrap();
    let err = client.auth_with(mech, &AuthOptions::default()).unwrap_err();
    match &err {
        AuthError::BadCredentials { reply, detail, .. } => {
            assert_eq!(reply.code().get(), 535);
            assert!(detail.is_some(), "no OAuth error detail: {err}");
        }
        other => panic!("expected 535 with detail, got {other}"),
    }
    assert!(!err.to_string().contains("not-the-token"));
    // Still usable.
    let creds = Credentials::with_token(ALICE.login, ALICE.password).unwrap();
    let mech = client_mechanism("XOAUTH2", &creds, &ClientOptions::default()).unwrap();
    client.auth_with(mech, &AuthOptions::default()).unwrap();
    client.quit().unwrap();
    check_transcript(&lines, &[ALICE.password, "not-the-token"]).unwrap();
}
