//! Both clients through a scripted proxy: the scripted server plays the proxy's side of the
//! handshake, then (for a tunnel that opens) the mail server's. Each fault must end in a
//! clear [`Error::Proxy`] with nothing sent past the handshake (`expect_eof`: any byte the
//! client sent after it fails the script).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_client::{
    ClientConfig, Direction, Error, ErrorKind, Proxy, ProxyError, Timeouts, TlsConfig, TlsError,
    TlsMode,
};
use smtp_proto::Domain;
use smtp_testserver::scripted::{test_cert, Record, Script, ScriptedServer, Step};

use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    socks5_with_credentials_and_the_greeting_in_the_same_write,
    socks5_to_an_address,
    http_connect_keeps_the_greeting_that_follows_the_blank_line,
    implicit_tls_checks_the_mail_servers_name_not_the_proxys,
    starttls_through_the_tunnel,
    socks5_refusal_names_the_reply_code,
    socks5_wrong_credentials,
    socks5_credentials_required,
    http_refusal_names_the_status,
    http_credentials_required_and_rejected,
    a_stalled_proxy_times_out,
    a_dripping_proxy_does_not_extend_the_deadline,
    malformed_replies,
    a_proxy_that_closes,
    bytes_before_implicit_tls_are_refused,
    a_proxy_that_is_not_listening_is_a_connect_error,
);

const PASSWORD: &str = "Proxy-Pass-42";

fn config(mode: TlsMode, host: &str, proxy: Proxy) -> ClientConfig {
    ClientConfig::new(host)
        .port(25)
        .tls_mode(mode)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .tls(TlsConfig::no_default_roots().add_ca_der(test_cert().ca_der.clone()))
        .proxy(proxy)
}

fn socks(server: &ScriptedServer) -> Proxy {
    Proxy::socks5("127.0.0.1", server.port())
}

fn http(server: &ScriptedServer) -> Proxy {
    Proxy::http_connect("127.0.0.1", server.port())
}

/// The SOCKS5 CONNECT request for `localhost:25`, by name.
fn connect_localhost() -> Vec<u8> {
    [&[5, 1, 0, 3, 9][..], b"localhost", &[0, 25]].concat()
}

const SOCKS_OK: &[u8] = &[5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40];

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "{:?}", record.result);
    record
}

/// The error of a connection that must fail with a proxy error; checks its kind.
fn proxy_error(err: Error) -> ProxyError {
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.is_fatal());
    match err {
        Error::Proxy { error, proxy } => {
            assert!(proxy.starts_with("127.0.0.1:"), "{proxy}");
            error
        }
        other => panic!("not a proxy error: {other:?}"),
    }
}

type Lines = Arc<Mutex<Vec<String>>>;

fn with_transcript(config: ClientConfig) -> (ClientConfig, Lines) {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let config = config.transcript(move |d: Direction, l: &str| {
        sink.lock().unwrap().push(format!("{d} {l}"));
    });
    (config, lines)
}

fn socks5_with_credentials_and_the_greeting_in_the_same_write<C: Driver>() {
    let auth = [&[1, 5][..], b"alice", &[13], PASSWORD.as_bytes()].concat();
    let server = ScriptedServer::start(
        Script::new()
            .read_bytes(4)
            .send([5, 2])
            .read_bytes(auth.len())
            .send([1, 0])
            .read_bytes(connect_localhost().len())
            .send([SOCKS_OK, b"220 mx.test ESMTP\r\n"].concat())
            .expect("EHLO client.test")
            .reply("250 mx.test")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let proxy = socks(&server).user("alice").password(PASSWORD);
    let (config, lines) = with_transcript(config(TlsMode::None, "localhost", proxy));
    assert!(!format!("{config:?}").contains(PASSWORD));
    let mut client = C::connect(config).unwrap();
    assert_eq!(client.banner().unwrap().to_string(), "220 mx.test ESMTP");
    assert_eq!(client.domain().as_deref(), Some("mx.test"));
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(record.messages[0], [5, 2, 0, 2]);
    assert_eq!(record.messages[1], auth);
    assert_eq!(record.messages[2], connect_localhost());
    let transcript = lines.lock().unwrap().join("\n");
    assert!(
        transcript.starts_with(
            ">>> SOCKS5 methods: no authentication, username/password\n\
             <<< SOCKS5 method: username/password\n\
             >>> SOCKS5 username/password: alice ****\n\
             <<< SOCKS5 username/password: accepted\n\
             >>> SOCKS5 CONNECT localhost:25\n\
             <<< SOCKS5 reply 0: succeeded, bound 127.0.0.1:40000\n\
             <<< 220 mx.test ESMTP\n>>> EHLO client.test"
        ),
        "{transcript}"
    );
    assert!(!transcript.contains(PASSWORD));
}

fn socks5_to_an_address<C: Driver>() {
    let v6 = [&[5, 1, 0, 4][..], &[0; 15], &[1], &[0, 25]].concat();
    // The reply's bound address is a name (ATYP 3).
    let reply = [&[5, 0, 0, 3, 4][..], b"mx.t", &[0, 25]].concat();
    let server = ScriptedServer::start(
        Script::new()
            .read_bytes(3)
            .send([5, 0])
            .read_bytes(v6.len())
            .send(reply)
            .greet_ehlo(&[])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(TlsMode::None, "[IPv6:::1]", socks(&server))).unwrap();
    client.quit().unwrap();
    let record = finish_ok(server);
    assert_eq!(record.messages[0], [5, 1, 0]);
    assert_eq!(record.messages[1], v6);
}

fn http_connect_keeps_the_greeting_that_follows_the_blank_line<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .expect("CONNECT localhost:25 HTTP/1.1")
            .expect("Host: localhost:25")
            .expect("Proxy-Authorization: Basic Ym9iOlByb3h5LVBhc3MtNDI=")
            .expect("")
            .send(
                "HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n\
                 220 mx.test ESMTP\r\n",
            )
            .expect("EHLO client.test")
            .reply("250 mx.test")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let proxy = http(&server).user("bob").password(PASSWORD);
    let (config, lines) = with_transcript(config(TlsMode::None, "localhost", proxy));
    let mut client = C::connect(config).unwrap();
    assert_eq!(client.banner().unwrap().code().get(), 220);
    client.quit().unwrap();
    finish_ok(server);
    let transcript = lines.lock().unwrap().join("\n");
    assert!(
        transcript
            .contains(">>> Proxy-Authorization: Basic ****\n<<< HTTP 200 Connection established"),
        "{transcript}"
    );
    assert!(!transcript.contains("Ym9iOlByb3h5LVBhc3MtNDI="));
}

fn implicit_tls_checks_the_mail_servers_name_not_the_proxys<C: Driver>() {
    // The certificate names localhost and 127.0.0.1, the proxy's address: the mail server
    // asked for is another name, so the handshake must fail.
    let tunnel = |host: &str| {
        Script::new()
            .expect(&format!("CONNECT {host}:25 HTTP/1.1"))
            .expect(&format!("Host: {host}:25"))
            .expect("")
            .send("HTTP/1.1 200 OK\r\n\r\n")
            .start_tls()
    };
    let server = ScriptedServer::start(tunnel("mx.example.test")).unwrap();
    let err = C::connect(config(TlsMode::Implicit, "mx.example.test", http(&server))).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(TlsError::Handshake(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            )))
        ),
        "{err:?}"
    );
    server.finish();

    let server = ScriptedServer::start(
        tunnel("localhost")
            .greet_ehlo(&[])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(TlsMode::Implicit, "localhost", http(&server))).unwrap();
    assert!(client.is_encrypted());
    client.quit().unwrap();
    let record = finish_ok(server);
    assert!(record.tls_text.starts_with(b"EHLO client.test\r\n"));
}

fn starttls_through_the_tunnel<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .read_bytes(3)
            .send([5, 0])
            .read_bytes(connect_localhost().len())
            .send(SOCKS_OK)
            .greet_ehlo(&["STARTTLS"])
            .expect("STARTTLS")
            .reply("220 go ahead")
            .start_tls()
            .expect("EHLO client.test")
            .reply("250 mx.test")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(
        TlsMode::StartTlsRequired,
        "localhost",
        socks(&server),
    ))
    .unwrap();
    assert!(client.is_encrypted());
    client.quit().unwrap();
    finish_ok(server);
}

fn socks5_refusal_names_the_reply_code<C: Driver>() {
    for code in [2u8, 5] {
        let server = ScriptedServer::start(
            Script::new()
                .read_bytes(3)
                .send([5, 0])
                .read_bytes(connect_localhost().len())
                .send([5, code, 0, 1, 0, 0, 0, 0, 0, 0])
                .expect_eof(),
        )
        .unwrap();
        let err = C::connect(config(TlsMode::None, "localhost", socks(&server))).unwrap_err();
        let text = err.to_string();
        let error = proxy_error(err);
        assert_eq!(
            error,
            ProxyError::Socks5Refused {
                target: "localhost:25".into(),
                code
            }
        );
        assert_eq!(error.reply_code(), Some(u16::from(code)));
        assert!(text.contains(&format!("reply {code} (")), "{text}");
        finish_ok(server);
    }
}

fn socks5_wrong_credentials<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .read_bytes(4)
            .send([5, 2])
            .read_bytes(3 + 5 + 5)
            .send([1, 1])
            .expect_eof(),
    )
    .unwrap();
    let proxy = socks(&server).user("alice").password("wrong");
    let err = C::connect(config(TlsMode::None, "localhost", proxy)).unwrap_err();
    assert!(!format!("{err}{err:?}").contains("wrong"));
    assert_eq!(
        proxy_error(err),
        ProxyError::CredentialsRejected { code: 1 }
    );
    finish_ok(server);
}

fn socks5_credentials_required<C: Driver>() {
    let server =
        ScriptedServer::start(Script::new().read_bytes(3).send([5, 0xff]).expect_eof()).unwrap();
    let err = C::connect(config(TlsMode::None, "localhost", socks(&server))).unwrap_err();
    assert!(err.to_string().contains("requires credentials"), "{err}");
    assert_eq!(
        proxy_error(err),
        ProxyError::CredentialsRequired { code: 255 }
    );
    finish_ok(server);
}

fn http_refusal_names_the_status<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .expect_prefix("CONNECT ")
            .expect_prefix("Host: ")
            .expect("")
            .send("HTTP/1.0 403 Access violation\r\nContent-Type: text/html\r\n\r\n<html>")
            .expect_eof(),
    )
    .unwrap();
    let err = C::connect(config(TlsMode::None, "localhost", http(&server))).unwrap_err();
    assert!(err.to_string().ends_with("403 Access violation"), "{err}");
    let error = proxy_error(err);
    assert_eq!(error.reply_code(), Some(403));
    finish_ok(server);
}

fn http_credentials_required_and_rejected<C: Driver>() {
    for (creds, status, expected) in [
        (false, 407, ProxyError::CredentialsRequired { code: 407 }),
        (true, 401, ProxyError::CredentialsRejected { code: 401 }),
        (true, 407, ProxyError::CredentialsRejected { code: 407 }),
    ] {
        let server = ScriptedServer::start(
            Script::new()
                .expect_prefix("CONNECT ")
                .expect_prefix("Host: ")
                .step(if creds {
                    Step::ExpectPrefix(b"Proxy-Authorization: Basic ".to_vec())
                } else {
                    Step::Expect(Vec::new())
                })
                .send(format!("HTTP/1.0 {status} No\r\n\r\n"))
                .expect_eof(),
        )
        .unwrap();
        let mut proxy = http(&server);
        if creds {
            proxy = proxy.user("bob").password("wrong");
        }
        let err = C::connect(config(TlsMode::None, "localhost", proxy)).unwrap_err();
        assert_eq!(proxy_error(err), expected);
        // The script may end before reading the blank line: its own result is not checked.
        server.finish();
    }
}

fn a_stalled_proxy_times_out<C: Driver>() {
    for http_proxy in [false, true] {
        let server =
            ScriptedServer::start(Script::new().pause(Duration::from_millis(1500)).close())
                .unwrap();
        let proxy = if http_proxy {
            http(&server)
        } else {
            socks(&server)
        }
        .handshake_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let err = C::connect(config(TlsMode::None, "localhost", proxy)).unwrap_err();
        let took = started.elapsed();
        assert!(
            err.to_string().contains("did not finish within 300ms"),
            "{err}"
        );
        assert_eq!(
            proxy_error(err),
            ProxyError::Timeout {
                after: Duration::from_millis(300)
            }
        );
        assert!(took < Duration::from_millis(1200), "{took:?}");
        let record = server.finish();
        assert!(!record.clear_text.windows(4).any(|w| w == b"EHLO"));
    }
}

fn a_dripping_proxy_does_not_extend_the_deadline<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .expect_prefix("CONNECT ")
            .expect_prefix("Host: ")
            .expect("")
            .step(Step::Drip {
                bytes: b"HTTP/1.1 200 OK\r\nX: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n\r\n"
                    .to_vec(),
                interval: Duration::from_millis(50),
            }),
    )
    .unwrap();
    let proxy = http(&server).handshake_timeout(Duration::from_millis(600));
    let started = Instant::now();
    let err = C::connect(config(TlsMode::None, "localhost", proxy)).unwrap_err();
    assert!(matches!(proxy_error(err), ProxyError::Timeout { .. }));
    assert!(started.elapsed() < Duration::from_millis(1800));
    server.finish();
}

fn malformed_replies<C: Driver>() {
    let socks_cases: [&[u8]; 4] = [
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        &[5, 0x80],
        &[5, 0, 0, 9],
        &[5, 0, 1, 1],
    ];
    for (i, reply) in socks_cases.into_iter().enumerate() {
        let mut script = Script::new().read_bytes(3);
        script = if i < 2 {
            script.send(reply)
        } else {
            script
                .send([5, 0])
                .read_bytes(connect_localhost().len())
                .send(reply)
        };
        let server = ScriptedServer::start(script.expect_eof()).unwrap();
        let err = C::connect(config(TlsMode::None, "localhost", socks(&server))).unwrap_err();
        let error = proxy_error(err);
        assert!(
            matches!(error, ProxyError::Malformed { .. }),
            "{i}: {error}"
        );
        finish_ok(server);
    }
    for reply in [
        "SSH-2.0-OpenSSH_9.2\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    ] {
        let server = ScriptedServer::start(
            Script::new()
                .expect_prefix("CONNECT ")
                .expect_prefix("Host: ")
                .expect("")
                .send(reply)
                .expect_eof(),
        )
        .unwrap();
        let err = C::connect(config(TlsMode::None, "localhost", http(&server))).unwrap_err();
        let error = proxy_error(err);
        assert!(
            matches!(error, ProxyError::Malformed { .. }),
            "{reply:?}: {error}"
        );
        finish_ok(server);
    }
    // An endless head is bounded.
    let server = ScriptedServer::start(
        Script::new()
            .expect_prefix("CONNECT ")
            .expect_prefix("Host: ")
            .expect("")
            .send(format!("HTTP/1.1 200 OK\r\nX: {}", "y".repeat(20_000))),
    )
    .unwrap();
    let err = C::connect(config(TlsMode::None, "localhost", http(&server))).unwrap_err();
    assert!(matches!(proxy_error(err), ProxyError::ReplyTooLong { .. }));
    server.finish();
}

fn a_proxy_that_closes<C: Driver>() {
    let server = ScriptedServer::start(Script::new().read_bytes(3).send([5]).close()).unwrap();
    let err = C::connect(config(TlsMode::None, "localhost", socks(&server))).unwrap_err();
    assert_eq!(proxy_error(err), ProxyError::Closed);
    finish_ok(server);
}

fn bytes_before_implicit_tls_are_refused<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .read_bytes(3)
            .send([5, 0])
            .read_bytes(connect_localhost().len())
            .send([SOCKS_OK, b"220 not TLS\r\n"].concat())
            .expect_eof(),
    )
    .unwrap();
    let err = C::connect(config(TlsMode::Implicit, "localhost", socks(&server))).unwrap_err();
    assert_eq!(proxy_error(err), ProxyError::BytesBeforeTls { len: 13 });
    finish_ok(server);
}

fn a_proxy_that_is_not_listening_is_a_connect_error<C: Driver>() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let proxy = Proxy::socks5("127.0.0.1", port);
    let err = C::connect(config(TlsMode::None, "mx.example.test", proxy)).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("proxy 127.0.0.1:{port} (for mx.example.test)")),
        "{err}"
    );
}
