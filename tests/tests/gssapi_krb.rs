//! GSSAPI (RFC 4752) against a real MIT Kerberos realm on loopback
//! (`cargo xtask servers krb-up`, also started by `servers up`): Postfix with Cyrus SASL
//! GSSAPI over SMTP, on both drivers, and Dovecot IMAP with GSSAPI through the protocol
//! profile of `sasl-mechs`.
//!
//! Each test gets a ticket cache of its own (alice's, from her keytab, or none at all) and
//! runs with `KRB5_CONFIG`/`KRB5CCNAME` pointing at the realm and that cache
//! ([`with_ticket_cache`]). The client never holds a password: what proves alice is her
//! ticket, and what proves the server is its AP-REP (mutual authentication).
#![cfg(feature = "gssapi")]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use interop_tests::krb::{
    maildir_new, require_krb_servers, with_ticket_cache, TicketCache, ALICE_PRINCIPAL, IMAP_ADDR,
    SMTP_ADDR, STATE_DIR,
};
use interop_tests::{unique_marker, wait_for_messages_in};
use sasl_mechs::gssapi::GssapiError;
use sasl_mechs::profile::{authenticate, Profile, ProfileError};
use sasl_mechs::{client_mechanism, ClientOptions, Credentials, Mechanism, SaslError};
use smtp_auth::{AuthError, AuthOptions};
use smtp_client::{ClientConfig, Direction, Envelope, Timeouts, TlsMode};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};
use test_support::auth::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    smtp_gssapi_with_a_ticket_authenticates_and_delivers,
    smtp_gssapi_with_an_authzid,
    smtp_gssapi_without_a_ticket_is_refused_before_anything_is_sent,
    smtp_gssapi_with_someone_elses_ticket_is_refused_before_anything_is_sent,
    smtp_gssapi_for_a_service_the_kdc_does_not_know_sends_nothing,
);

/// Every line of one connection's transcript.
type Lines = Arc<Mutex<Vec<(Direction, String)>>>;

fn connect<C: Driver>(lines: &Lines) -> C {
    let sink = Arc::clone(lines);
    let config = ClientConfig::new(SMTP_ADDR.ip().to_string())
        .port(SMTP_ADDR.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.example.test").expect("valid domain"))
        .timeouts(Timeouts::uniform(Duration::from_secs(30)))
        .transcript(move |direction, line| {
            sink.lock()
                .expect("transcript lock")
                .push((direction, line.to_owned()));
        });
    let client = C::connect(config).expect("connect to the Kerberos Postfix");
    assert!(
        client.auth_types().mechanisms.iter().any(|m| m == "GSSAPI"),
        "{:?}",
        client.auth_types()
    );
    client
}

/// The lines the client sent that start an AUTH exchange.
fn auth_lines(lines: &Lines) -> Vec<String> {
    lines
        .lock()
        .expect("transcript lock")
        .iter()
        .filter(|(d, l)| *d == Direction::Sent && l.to_ascii_uppercase().starts_with("AUTH"))
        .map(|(_, l)| l.clone())
        .collect()
}

/// The transcript holds the AUTH line with its initial response masked, and the
/// continuation lines masked: no Kerberos token is shown.
fn check_masked(lines: &Lines) {
    let lines = lines.lock().expect("transcript lock");
    let mut in_auth = false;
    let mut seen = false;
    for (direction, line) in lines.iter() {
        if *direction != Direction::Sent {
            in_auth = in_auth && line.starts_with("334");
            continue;
        }
        if let Some(rest) = line.strip_prefix("AUTH GSSAPI") {
            assert!(
                rest.is_empty() || rest == " ****",
                "unmasked initial response {line:?}"
            );
            in_auth = true;
            seen = true;
        } else if in_auth {
            assert_eq!(line, "****", "unmasked AUTH response line");
        }
    }
    assert!(seen, "no AUTH GSSAPI in the transcript");
}

/// Sends a marked message to the sink; returns the marker.
fn send_marked<C: Driver>(client: &mut C, tag: &str) -> String {
    let marker = unique_marker(tag);
    let message = format!(
        "Message-ID: {marker}\r\nFrom: alice@example.test\r\nTo: sink@example.test\r\n\
         Subject: {tag}\r\n\r\nAuthenticated with a Kerberos ticket.\r\n"
    );
    let from = ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap());
    let to = ForwardPath::new("sink@example.test").unwrap();
    client
        .send(&Envelope::new(from, [to]), message.as_bytes())
        .expect("send after AUTH GSSAPI");
    marker
}

/// The `Received:` header Postfix wrote for a delivered message.
fn received(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let start = text.find("Received:").expect("a Received header");
    let mut header = String::new();
    for (i, line) in text[start..].lines().enumerate() {
        if i > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        header.push_str(line.trim());
        header.push(' ');
    }
    header
}

fn smtp_gssapi_with_a_ticket_authenticates_and_delivers<C: Driver>() {
    require_krb_servers();
    let cache = TicketCache::alice().unwrap();
    with_ticket_cache(&cache, || {
        let lines = Lines::default();
        let mut client: C = connect(&lines);
        // Net::SMTP_auth's form: the user names the ticket's principal, no password.
        let success = client.auth("GSSAPI", "alice", "").expect("AUTH GSSAPI");
        assert_eq!(success.mechanism, "GSSAPI");
        assert_eq!(success.reply.code().get(), 235);
        assert!(client.is_authenticated());
        let marker = send_marked(&mut client, "gssapi");
        client.quit().unwrap();
        check_masked(&lines);

        let delivered = wait_for_messages_in(&maildir_new(), &marker, 1).unwrap();
        // Postfix relays only for an authenticated client, and says who it was: Cyrus
        // reports the principal without the realm, which is its default realm.
        let received = received(&delivered[0]);
        assert!(received.contains("with ESMTPA"), "{received}");
        assert!(
            received.contains("(Authenticated sender: alice)"),
            "{received}"
        );
    });
}

fn smtp_gssapi_with_an_authzid<C: Driver>() {
    require_krb_servers();
    let cache = TicketCache::alice().unwrap();
    with_ticket_cache(&cache, || {
        let lines = Lines::default();
        let mut client: C = connect(&lines);
        // The principal's own name as the identity to act as: Cyrus accepts it, and it
        // travels in the wrapped layer answer (RFC 4752 §3.1).
        let creds = Credentials::without_secret(ALICE_PRINCIPAL)
            .unwrap()
            .with_authzid("alice")
            .unwrap();
        let mech = client_mechanism("GSSAPI", &creds, &ClientOptions::default()).unwrap();
        let success = client
            .auth_with(mech, &AuthOptions::default())
            .expect("AUTH GSSAPI with an authzid");
        assert_eq!(success.reply.code().get(), 235);
        let marker = send_marked(&mut client, "gssapi-authzid");
        client.quit().unwrap();
        let delivered = wait_for_messages_in(&maildir_new(), &marker, 1).unwrap();
        let received = received(&delivered[0]);
        assert!(received.contains("with ESMTPA"), "{received}");
    });
}

fn smtp_gssapi_without_a_ticket_is_refused_before_anything_is_sent<C: Driver>() {
    require_krb_servers();
    let cache = TicketCache::missing();
    with_ticket_cache(&cache, || {
        let lines = Lines::default();
        let mut client: C = connect(&lines);
        let err = client.auth("GSSAPI", "alice", "").unwrap_err();
        match &err {
            AuthError::Sasl(SaslError::Gssapi(GssapiError::NoCredentials(status))) => {
                // The library's own words name the cache it looked in.
                assert!(
                    status.message.contains(cache.path().to_str().unwrap()),
                    "{status}"
                );
            }
            other => panic!("expected NoCredentials, got {other:?}"),
        }
        assert!(err.to_string().contains("run kinit"), "{err}");
        assert!(err.nothing_sent());
        assert_eq!(auth_lines(&lines), Vec::<String>::new());
        assert!(!client.is_authenticated());
        // The connection is still usable, and the server still refuses to relay.
        assert_eq!(client.noop().unwrap().code().get(), 250);
        let from = ReversePath::Mailbox(Mailbox::new("alice@example.test").unwrap());
        client.mail(&from, &Default::default()).unwrap();
        let refused = client
            .rcpt(
                &ForwardPath::new("sink@example.test").unwrap(),
                &Default::default(),
            )
            .unwrap_err();
        assert_eq!(refused.reply().map(|r| r.code().get()), Some(554));
        client.quit().unwrap();
    });
}

fn smtp_gssapi_with_someone_elses_ticket_is_refused_before_anything_is_sent<C: Driver>() {
    require_krb_servers();
    let cache = TicketCache::alice().unwrap();
    with_ticket_cache(&cache, || {
        let lines = Lines::default();
        let mut client: C = connect(&lines);
        let err = client.auth("GSSAPI", "bob", "").unwrap_err();
        match &err {
            AuthError::Sasl(SaslError::Gssapi(GssapiError::PrincipalMismatch {
                principal,
                user,
            })) => {
                assert_eq!(principal, ALICE_PRINCIPAL);
                assert_eq!(user, "bob");
            }
            other => panic!("expected PrincipalMismatch, got {other:?}"),
        }
        assert!(err.nothing_sent());
        assert_eq!(auth_lines(&lines), Vec::<String>::new());
        // The same ticket, named as its own principal in full, works on this connection.
        client
            .auth("GSSAPI", ALICE_PRINCIPAL, "")
            .expect("AUTH GSSAPI as alice@REALM");
        client.quit().unwrap();
    });
}

fn smtp_gssapi_for_a_service_the_kdc_does_not_know_sends_nothing<C: Driver>() {
    require_krb_servers();
    let cache = TicketCache::alice().unwrap();
    with_ticket_cache(&cache, || {
        let lines = Lines::default();
        let mut client: C = connect(&lines);
        // ldap/localhost is no principal of the realm.
        let mut client_options = ClientOptions::default();
        client_options.gssapi_service = "ldap".to_owned();
        let options = AuthOptions::default().client_options(client_options);
        let err = client
            .auth_with_options("GSSAPI", "alice", "", &options)
            .unwrap_err();
        match &err {
            AuthError::Sasl(SaslError::Gssapi(GssapiError::Context(status))) => {
                assert!(
                    status
                        .message
                        .contains("ldap/localhost@SMTP-AUTH.TEST not found in Kerberos database"),
                    "{status}"
                );
            }
            other => panic!("expected a context error, got {other:?}"),
        }
        assert!(err.nothing_sent());
        assert_eq!(auth_lines(&lines), Vec::<String>::new());
        client.quit().unwrap();
    });
}

// ---------------------------------------------------------------------------------------
// IMAP, through the protocol profile

struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// One CRLF-ended line, without its CRLF; at most 128 KiB.
fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    reader.take(128 * 1024).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

impl Imap {
    /// Connects and reads up to the greeting that lists the capabilities (Dovecot may
    /// first say `* OK Waiting for authentication process to respond..`).
    fn connect() -> Imap {
        let tcp = TcpStream::connect_timeout(&IMAP_ADDR, Duration::from_secs(5)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut imap = Imap {
            reader: BufReader::new(tcp.try_clone().unwrap()),
            writer: tcp,
        };
        loop {
            let line = String::from_utf8(imap.read()).unwrap();
            assert!(line.starts_with("* OK"), "{line}");
            if line.contains("[CAPABILITY") {
                assert!(line.contains("AUTH=GSSAPI"), "{line}");
                return imap;
            }
        }
    }

    fn read(&mut self) -> Vec<u8> {
        read_line(&mut self.reader).unwrap()
    }

    fn command(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        let tag = line.split(' ').next().unwrap();
        loop {
            let reply = String::from_utf8(self.read()).unwrap();
            if reply.starts_with(&format!("{tag} ")) {
                return reply;
            }
        }
    }

    fn authenticate(
        &mut self,
        mech: &mut dyn Mechanism,
        profile: &Profile,
    ) -> Result<(), ProfileError> {
        let Imap { reader, writer } = self;
        authenticate(
            mech,
            profile,
            |l| writer.write_all(&[l, b"\r\n"].concat()),
            || read_line(reader),
        )
    }
}

fn imap_mechanism(service: &str) -> Box<dyn Mechanism> {
    let mut options = ClientOptions::default();
    options.gssapi_service = service.to_owned();
    let creds = Credentials::without_secret("alice").unwrap();
    client_mechanism("GSSAPI", &creds, &options).unwrap()
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn imap_authenticate_gssapi_with_and_without_sasl_ir() {
    require_krb_servers();
    let cache = TicketCache::alice().unwrap();
    with_ticket_cache(&cache, || {
        for (tag, sasl_ir) in [("g1", true), ("g2", false)] {
            let mut imap = Imap::connect();
            imap.authenticate(
                imap_mechanism("imap").as_mut(),
                &Profile::imap(tag, sasl_ir),
            )
            .unwrap_or_else(|e| panic!("SASL-IR {sasl_ir}: {e}"));
            // Logged in: the mailbox opens, in alice's home (the realm stripped by
            // `auth_username_format = %Ln`).
            let select = imap.command("s1 SELECT INBOX");
            assert!(select.starts_with("s1 OK"), "{select}");
            assert!(Path::new(STATE_DIR).join("imap/alice/Maildir").is_dir());
            assert!(imap.command("z LOGOUT").starts_with("z OK"));
        }
    });
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn imap_refuses_a_ticket_for_another_service() {
    require_krb_servers();
    let cache = TicketCache::alice().unwrap();
    with_ticket_cache(&cache, || {
        let mut imap = Imap::connect();
        // A valid ticket, but for smtp/localhost: Dovecot's acceptor is imap@localhost.
        match imap.authenticate(imap_mechanism("smtp").as_mut(), &Profile::imap("w1", true)) {
            Err(ProfileError::Rejected { line }) => assert!(line.starts_with("w1 NO"), "{line}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The right service on the same connection succeeds.
        imap.authenticate(imap_mechanism("imap").as_mut(), &Profile::imap("w2", true))
            .expect("AUTHENTICATE GSSAPI for imap@localhost");
        assert!(imap.command("z LOGOUT").starts_with("z OK"));
    });
}
