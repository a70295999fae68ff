//! The demo server's behaviour, driven over TCP by a line-based test client.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::config::DemoConfig;
use crate::config::{DEMO_PASSWORD, DEMO_USER};
use crate::envelope::*;
use crate::server::DemoServer;
use crate::test_client::{server, Client};
use crate::*;
use rustls::StreamOwned;
use sasl_mechs::{client_mechanism, ClientOptions, Credentials};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ----- auth.rs ------------------------------------------------------------
#[test]
fn wrong_password_is_535_and_mail_then_needs_auth() {
    let server = server();
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    // "\0demo\0wrong"
    assert_eq!(
        c.cmd("AUTH PLAIN AGRlbW8Ad3Jvbmc="),
        ["535 5.7.8 Authentication credentials invalid"]
    );
    assert_eq!(c.code("MAIL FROM:<alice@example.test>"), "530");
    assert!(server.received().is_empty());
}

#[test]
fn auth_login_in_two_challenges() {
    let server = server();
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    let r = c.cmd("AUTH LOGIN");
    assert_eq!(r, ["334 VXNlcm5hbWU6"], "Username: challenge");
    assert_eq!(
        c.cmd("ZGVtbw=="),
        ["334 UGFzc3dvcmQ6"],
        "Password: challenge"
    );
    assert_eq!(c.code("ZGVtby1wYXNzd29yZA=="), "235");
    assert_eq!(c.code("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="), "503");
}

#[test]
fn digest_md5_rspauth_goes_out_as_a_334_before_the_235() {
    let server = server();
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    let creds = Credentials::new(DEMO_USER, DEMO_PASSWORD).unwrap();
    let mut mech = client_mechanism("DIGEST-MD5", &creds, &ClientOptions::default()).unwrap();
    let r = c.cmd("AUTH DIGEST-MD5");
    let challenge = B64
        .decode(r[0].strip_prefix("334 ").expect("a 334"))
        .unwrap();
    let text = String::from_utf8(challenge.clone()).unwrap();
    // RFC 2831 2.1.1: the realm offered and the only qop this server does.
    assert!(text.contains(r#"realm="localhost""#), "{text}");
    assert!(text.contains(r#"qop="auth""#), "{text}");
    let response = mech.respond(&challenge).unwrap();
    // RFC 2831 2.1.3 / RFC 4954 4: rspauth comes as a challenge, not with the 235.
    let r = c.cmd(&B64.encode(&response[..]));
    let rspauth = B64
        .decode(r[0].strip_prefix("334 ").expect("rspauth as a 334"))
        .unwrap();
    assert!(rspauth.starts_with(b"rspauth="), "{r:?}");
    let last = mech.respond(&rspauth).unwrap();
    assert!(last.is_empty());
    assert_eq!(c.cmd(""), ["235 2.7.0 Authentication successful"]);
    assert_eq!(c.code("MAIL FROM:<a@example.test>"), "250");
}

#[test]
fn xoauth2_and_oauthbearer_take_the_password_as_the_token() {
    let server = server();
    // XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A.
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    let good = B64.encode("user=demo\x01auth=Bearer demo-password\x01\x01");
    assert_eq!(c.code(&format!("AUTH XOAUTH2 {good}")), "235");
    // OAUTHBEARER (RFC 7628 3.1): gs2-header "n,a=demo," then ^A kvpairs ^A.
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    let good = B64.encode("n,a=demo,\x01auth=Bearer demo-password\x01\x01");
    assert_eq!(c.code(&format!("AUTH OAUTHBEARER {good}")), "235");
    // A wrong token: the error JSON as a 334, the client's dummy ^A, then 535
    // (RFC 7628 3.2.2, 3.2.3).
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    let bad = B64.encode("n,a=demo,\x01auth=Bearer wrong\x01\x01");
    let r = c.cmd(&format!("AUTH OAUTHBEARER {bad}"));
    let json = B64
        .decode(r[0].strip_prefix("334 ").expect("error JSON"))
        .unwrap();
    assert!(json.starts_with(b"{") && json.ends_with(b"}"), "{r:?}");
    assert_eq!(c.code("AQ=="), "535");
    assert_eq!(c.code("MAIL FROM:<a@example.test>"), "530");
}

#[test]
fn auth_cancel_and_bad_base64() {
    let server = server();
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    assert_eq!(c.code("AUTH LOGIN"), "334");
    assert_eq!(c.code("*"), "501");
    assert_eq!(c.code("AUTH PLAIN !!!notbase64"), "501");
    assert_eq!(c.code("AUTH GSSAPI"), "504");
    assert_eq!(c.code("NOOP"), "250");
}

// ----- body.rs ------------------------------------------------------------
#[test]
fn bdat_chunks_are_joined() {
    let server = server();
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    assert_eq!(c.code("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="), "235");
    c.tcp
        .write_all(b"MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nBDAT 5\r\n.a\r\nbBDAT 3 LAST\r\nc\r\n")
        .unwrap();
    for _ in 0..4 {
        assert_eq!(c.reply()[0][..3], *"250");
    }
    let got = server.received();
    assert_eq!(got[0].data, b".a\r\nbc\r\n");
    assert_eq!(got[0].from, "");
    assert_eq!(got[0].to, ["Postmaster"]);
    assert_eq!(got[0].transfer, Transfer::Bdat);
}

#[test]
fn oversized_message_is_552_and_not_kept() {
    let server = DemoServer::start(DemoConfig::new().port(0).max_message_size(100)).expect("start");
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    assert_eq!(c.code("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="), "235");
    assert_eq!(c.code("MAIL FROM:<a@example.test>"), "250");
    assert_eq!(c.code("RCPT TO:<b@example.test>"), "250");
    assert_eq!(c.code("DATA"), "354");
    let body = "0123456789\r\n".repeat(20) + ".\r\n";
    c.tcp.write_all(body.as_bytes()).unwrap();
    assert_eq!(c.reply()[0][..3], *"552");
    assert_eq!(c.code("NOOP"), "250");
    assert!(server.received().is_empty());
}

// ----- envelope.rs --------------------------------------------------------
#[test]
fn refused_recipient_and_sequence_errors() {
    let server = server();
    let mut c = Client::connect(&server);
    assert_eq!(c.code("MAIL FROM:<a@example.test>"), "503");
    c.cmd("EHLO client.example");
    assert_eq!(c.code("RCPT TO:<b@example.test>"), "503");
    assert_eq!(c.code("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="), "235");
    assert_eq!(c.code("MAIL FROM:<a@example.test> SIZE=99999999999"), "552");
    assert_eq!(c.code("MAIL FROM:<a@example.test> FOO=1"), "555");
    assert_eq!(c.code("MAIL FROM:<a@example.test> SIZE=10"), "250");
    assert_eq!(c.code("RCPT TO:<reject@example.test>"), "550");
    assert_eq!(c.code("DATA"), "554");
    assert_eq!(c.code("RCPT TO:<bad address>"), "553");
    assert_eq!(c.code("VRFY someone"), "252");
    assert_eq!(c.code("HELP"), "214");
    assert_eq!(c.code("RSET"), "250");
    assert_eq!(c.code("FROB"), "500");
}

#[test]
fn parse_path_arg_cases() {
    assert_eq!(parse_path_arg("FROM:<a@b>", "FROM:"), Some(("a@b", "")));
    assert_eq!(
        parse_path_arg("from: <a@b> SIZE=1", "FROM:"),
        Some(("a@b", "SIZE=1"))
    );
    assert_eq!(parse_path_arg("FROM:<>", "FROM:"), Some(("", "")));
    assert_eq!(parse_path_arg("FROM:a@b", "FROM:"), None);
    assert_eq!(parse_path_arg("FROM:<a@b>x", "FROM:"), None);
    assert_eq!(parse_path_arg("FR", "FROM:"), None);
    assert_eq!(parse_path_arg("FROMé:<a>", "FROM:"), None);
}

// ----- server.rs ----------------------------------------------------------
#[test]
fn stop_closes_idle_connections_and_joins() {
    let server = server();
    let mut c = Client::connect(&server);
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut rest = String::new();
    let _ = c.reader.read_to_string(&mut rest);
    assert!(!rest.starts_with("250"), "{rest:?}");
}

#[test]
fn connections_beyond_the_bound_get_421() {
    let server = DemoServer::start(DemoConfig::new().port(0).max_connections(1)).expect("start");
    let _first = Client::connect(&server);
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    BufReader::new(tcp).read_line(&mut line).unwrap();
    assert!(line.starts_with("421 "), "{line:?}");
}

#[test]
fn non_loopback_addresses_are_refused() {
    let config = DemoConfig::new().bind("0.0.0.0:0".parse().unwrap());
    assert!(DemoServer::start(config).is_err());
}

// ----- session.rs ---------------------------------------------------------
#[test]
fn ehlo_advertises_the_extensions_and_mechanisms() {
    let server = server();
    let mut c = Client::connect(&server);
    let ehlo = c.cmd("EHLO client.example");
    for kw in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "SIZE 10485760",
        "CHUNKING",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "AUTH LOGIN PLAIN NTLM DIGEST-MD5 CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 XOAUTH2 OAUTHBEARER",
    ] {
        assert!(ehlo.iter().any(|l| &l[4..] == kw), "{kw} missing: {ehlo:?}");
    }
    assert!(ehlo.last().unwrap().starts_with("250 "));
}

#[test]
fn starttls_drops_pipelined_cleartext_then_speaks_tls() {
    let server = server();
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    // A NOOP injected after STARTTLS in the same packet: were it kept, its bytes would
    // be read as the start of the TLS handshake and the handshake would fail.
    c.tcp.write_all(b"STARTTLS\r\nNOOP\r\n").unwrap();
    assert_eq!(c.reply(), ["220 2.0.0 Ready to start TLS"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = StreamOwned::new(conn, c.tcp.try_clone().unwrap());
    tls.write_all(b"EHLO client.example\r\n").unwrap();
    let mut reader = BufReader::new(tls);
    let mut ehlo = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a reply inside TLS");
        let last = line.as_bytes().get(3) == Some(&b' ');
        ehlo.push(line);
        if last {
            break;
        }
    }
    assert!(ehlo[0].starts_with("250-demo.localhost"), "{ehlo:?}");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert!(
        ehlo.iter().any(|l| l.contains("AUTH LOGIN PLAIN")),
        "{ehlo:?}"
    );
}

// ----- transport.rs -------------------------------------------------------
#[test]
fn too_long_line_closes_with_500() {
    let server = server();
    let mut c = Client::connect(&server);
    let long = "NOOP ".to_owned() + &"x".repeat(600);
    assert_eq!(c.cmd(&long), ["500 5.5.6 Line too long"]);
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

// ----- lib.rs -------------------------------------------------------------
#[test]
fn auth_plain_then_a_message_delivered_unstuffed() {
    let server = server();
    let mut c = Client::connect(&server);
    c.cmd("EHLO client.example");
    // RFC 4616: the message is authzid NUL authcid NUL passwd; here
    // "\0demo\0demo-password" in base64, worked out by hand from the octets.
    assert_eq!(
        c.cmd("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA=="),
        ["235 2.7.0 Authentication successful"]
    );
    assert_eq!(c.code("MAIL FROM:<alice@example.test>"), "250");
    assert_eq!(c.code("RCPT TO:<bob@example.test>"), "250");
    assert_eq!(c.code("DATA"), "354");
    c.tcp
        .write_all(b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\n.\r\n")
        .unwrap();
    assert_eq!(c.reply()[0][..3], *"250");
    assert_eq!(c.code("QUIT"), "221");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "alice@example.test");
    assert_eq!(got[0].to, ["bob@example.test"]);
    assert_eq!(got[0].authenticated.as_deref(), Some("demo"));
    assert_eq!(got[0].mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(got[0].transfer, Transfer::Data);
    assert_eq!(
        got[0].data,
        b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n"
    );
}

// ----- envelope.rs: DSN (RFC 3461) ------------------------------------------
#[test]
fn dsn_parameters_are_kept_and_bad_ones_refused() {
    let server = server();
    let mut c = Client::connect(&server);
    assert!(c
        .cmd("EHLO client.example")
        .iter()
        .any(|l| &l[4..] == "DSN"));
    c.cmd("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA==");
    // RFC 3461 4.3 and 4.4; the ENVID's "+2B" is xtext for "+".
    assert_eq!(
        c.code("MAIL FROM:<alice@example.test> RET=HDRS ENVID=QQ314159+2Bx"),
        "250"
    );
    // RFC 3461 4.1 and 4.2.
    assert_eq!(
        c.code("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob@Example.COM"),
        "250"
    );
    assert_eq!(c.code("RCPT TO:<carol@example.test> NOTIFY=NEVER"), "250");
    for bad in [
        "RCPT TO:<dave@example.test> NOTIFY=SOMETIMES",
        "RCPT TO:<dave@example.test> NOTIFY",
        "RCPT TO:<dave@example.test> ORCPT=bob@example.test",
        "RCPT TO:<dave@example.test> ORCPT=rfc822;a+b",
        "RCPT TO:<dave@example.test> XYZZY=1",
    ] {
        assert_eq!(c.code(bad), "555", "{bad}");
    }
    assert_eq!(c.code("DATA"), "354");
    c.tcp
        .write_all(b"Subject: dsn\r\n\r\nbody\r\n.\r\n")
        .unwrap();
    assert_eq!(c.reply()[0][..3], *"250");
    let got = server.received();
    assert_eq!(got[0].mail_params, ["RET=HDRS", "ENVID=QQ314159+2Bx"]);
    assert_eq!(got[0].to, ["bob@example.test", "carol@example.test"]);
    assert_eq!(
        got[0].rcpt_params,
        [
            vec![
                "NOTIFY=SUCCESS,DELAY".to_owned(),
                "ORCPT=rfc822;Bob@Example.COM".to_owned()
            ],
            vec!["NOTIFY=NEVER".to_owned()],
        ]
    );
    assert_eq!(c.code("MAIL FROM:<alice@example.test> RET=MOST"), "555");
}

// ----- log.rs ----------------------------------------------------------------
#[test]
fn the_session_log_has_the_peer_and_every_command_with_auth_masked() {
    let server = server();
    let mut c = Client::connect(&server);
    let local = c.tcp.local_addr().unwrap();
    c.cmd("EHLO client.example");
    c.cmd("AUTH PLAIN AGRlbW8AZGVtby1wYXNzd29yZA==");
    c.cmd("NOOP");
    assert_eq!(c.code("QUIT"), "221");
    let sessions = server.wait_for_sessions_to_end(Duration::from_secs(5));
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].peer, local);
    assert!(sessions[0].ended);
    assert_eq!(
        sessions[0].commands,
        ["EHLO client.example", "AUTH PLAIN ****", "NOOP", "QUIT"]
    );
    assert_eq!(sessions[0].verbs(), ["EHLO", "AUTH", "NOOP", "QUIT"]);
}

// ----- client certificates and EXTERNAL ----------------------------------------
/// EHLO, STARTTLS and the handshake over `c`, presenting `cert` when given; then EHLO
/// inside TLS. `Err` when the handshake fails.
fn starttls_with(
    c: &mut Client,
    server: &DemoServer,
    cert: Option<(
        rustls::pki_types::CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
) -> std::io::Result<(TlsLines, Vec<String>)> {
    c.cmd("EHLO client.example");
    assert_eq!(c.cmd("STARTTLS"), ["220 2.0.0 Ready to start TLS"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = TlsLines(BufReader::new(StreamOwned::new(
        conn,
        c.tcp.try_clone().unwrap(),
    )));
    let ehlo = tls.cmd("EHLO client.example")?;
    Ok((tls, ehlo))
}

struct TlsLines(BufReader<StreamOwned<rustls::ClientConnection, TcpStream>>);

impl TlsLines {
    fn cmd(&mut self, line: &str) -> std::io::Result<Vec<String>> {
        self.0
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())?;
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            if self.0.read_line(&mut l)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let last = l.as_bytes().get(3) == Some(&b' ');
            lines.push(l.trim_end().to_owned());
            if last {
                return Ok(lines);
            }
        }
    }
}

#[test]
fn a_verified_client_certificate_authenticates_with_external() {
    let server = DemoServer::start(DemoConfig::new().port(0).client_certificates(true)).unwrap();
    let issued = server.issue_client_certificate("certuser").unwrap();
    let mut c = Client::connect(&server);
    let (mut tls, ehlo) = starttls_with(
        &mut c,
        &server,
        Some((issued.cert_der.clone(), issued.key())),
    )
    .unwrap();
    let auth = ehlo.iter().find(|l| l[4..].starts_with("AUTH ")).unwrap();
    assert!(auth.ends_with(" EXTERNAL"), "{auth}");
    // RFC 4422 appendix A: an empty authorization id, "=" as the initial response.
    assert_eq!(
        tls.cmd("AUTH EXTERNAL =").unwrap(),
        ["235 2.7.0 Authentication successful"]
    );
    assert_eq!(
        tls.cmd("MAIL FROM:<a@example.test>").unwrap()[0][..3],
        *"250"
    );
    assert_eq!(tls.cmd("RCPT TO:<b@example.test>").unwrap()[0][..3], *"250");
    assert_eq!(tls.cmd("DATA").unwrap()[0][..3], *"354");
    assert_eq!(tls.cmd("Subject: x\r\n\r\nx\r\n.").unwrap()[0][..3], *"250");
    let got = server.received();
    assert_eq!(got[0].authenticated.as_deref(), Some("certuser"));
    assert_eq!(got[0].mechanism.as_deref(), Some("EXTERNAL"));
    assert_eq!(
        server.sessions()[0].client_certificate.as_deref(),
        Some("certuser")
    );
}

#[test]
fn without_a_certificate_there_is_no_external() {
    let server = DemoServer::start(DemoConfig::new().port(0).client_certificates(true)).unwrap();
    let mut c = Client::connect(&server);
    let (mut tls, ehlo) = starttls_with(&mut c, &server, None).unwrap();
    assert!(!ehlo.iter().any(|l| l.contains("EXTERNAL")), "{ehlo:?}");
    assert_eq!(tls.cmd("AUTH EXTERNAL =").unwrap()[0][..3], *"504");
}

#[test]
fn a_certificate_from_another_ca_fails_the_handshake() {
    let server = DemoServer::start(DemoConfig::new().port(0).client_certificates(true)).unwrap();
    // Self-signed: not issued by the demo client CA.
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["certuser".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
    );
    let mut c = Client::connect(&server);
    assert!(starttls_with(&mut c, &server, Some((cert.der().clone(), key_der))).is_err());
    assert!(server.received().is_empty());
}

#[test]
fn the_session_log_is_bounded() {
    let server = server();
    let mut c = Client::connect(&server);
    for _ in 0..crate::session::MAX_LOGGED_COMMANDS + 5 {
        c.tcp.write_all(b"NOOP\r\n").unwrap();
    }
    for _ in 0..crate::session::MAX_LOGGED_COMMANDS + 5 {
        c.reply();
    }
    assert_eq!(c.code("QUIT"), "221");
    let sessions = server.wait_for_sessions_to_end(Duration::from_secs(10));
    assert_eq!(
        sessions[0].commands.len(),
        crate::session::MAX_LOGGED_COMMANDS
    );
    assert_eq!(
        sessions[0].unlogged, 6,
        "five NOOPs and the QUIT past the bound"
    );
}
