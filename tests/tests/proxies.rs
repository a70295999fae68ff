//! Both clients through real proxies on loopback (`cargo xtask servers up`, or
//! `servers proxies-up` once the mail servers run): Dante (SOCKS5) and tinyproxy (HTTP
//! CONNECT), each without and with credentials, in front of Postfix's plain-text,
//! STARTTLS-required and implicit-TLS listeners.
//!
//! Through each proxy and each listener: TLS as configured (the certificate checked against
//! the mail server's name), AUTH, a message delivered byte for byte, and a transcript that
//! shows neither password. Then what the proxies refuse: a target they do not allow, wrong
//! or missing credentials; each a typed [`Error::Proxy`] naming the proxy's reply code,
//! with no SMTP command in the transcript. Last, a proxy of the test's own that opens a real
//! connection to Postfix and then stalls or answers malformed: a timeout or a `Malformed`
//! error, and not one byte relayed to Postfix.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use interop_tests::{
    as_delivered, ca_pem_path, require_proxies, require_servers, strip_delivery_headers,
    unique_marker, wait_for_message, Listener, ProxyListener, ALICE, PROXY_USER,
};
use smtp_auth::AuthOptions;
use smtp_client::{
    ClientConfig, Direction, Envelope, Error, ErrorKind, Proxy, ProxyError, Timeouts, TlsConfig,
    TlsError, TlsMode,
};
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};

use test_support::auth::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    #[ignore = "needs real servers: cargo xtask servers up"]
    socks5_without_credentials,
    socks5_with_credentials,
    http_connect_without_credentials,
    http_connect_with_credentials,
    socks5_target_as_an_address,
    the_certificate_is_checked_against_the_mail_servers_name,
    the_proxy_refuses_the_target,
    wrong_or_missing_proxy_credentials,
    a_misbehaving_proxy_in_front_of_postfix_gets_nothing_through,
);

/// The three Postfix listeners with Dovecot SASL, and the client's TLS mode for each.
const LISTENERS: [(Listener, TlsMode); 3] = [
    // AUTH in clear is what this listener is for.
    (Listener::DovecotPlain, TlsMode::None),
    (Listener::DovecotStartTls, TlsMode::StartTlsRequired),
    (Listener::DovecotImplicitTls, TlsMode::Implicit),
];

type Lines = Arc<Mutex<Vec<(Direction, String)>>>;

fn proxy(listener: ProxyListener, with_credentials: bool) -> Proxy {
    let proxy = if listener.is_socks5() {
        Proxy::socks5("127.0.0.1", listener.port())
    } else {
        Proxy::http_connect("127.0.0.1", listener.port())
    }
    .handshake_timeout(Duration::from_secs(10));
    if with_credentials {
        proxy.user(PROXY_USER.login).password(PROXY_USER.password)
    } else {
        proxy
    }
}

/// A configuration for `host:port` through `proxy`, recording the transcript in `lines`.
fn config(host: &str, port: u16, mode: TlsMode, proxy: Proxy, lines: &Lines) -> ClientConfig {
    let sink = Arc::clone(lines);
    ClientConfig::new(host)
        .port(port)
        .tls_mode(mode)
        .hello(Domain::new("client.example.test").expect("valid domain"))
        .timeouts(Timeouts::uniform(Duration::from_secs(30)))
        .tls(
            TlsConfig::no_default_roots()
                .add_ca_pem_file(ca_pem_path())
                .expect("the test CA"),
        )
        .proxy(proxy)
        .transcript(move |direction, line| {
            sink.lock()
                .expect("transcript lock")
                .push((direction, line.to_owned()));
        })
}

/// No line shows a password, the proxy's Basic token or an AUTH payload in clear.
fn check_transcript(lines: &Lines) {
    let basic = STANDARD.encode(format!("{}:{}", PROXY_USER.login, PROXY_USER.password));
    let plain = STANDARD.encode(format!("\0{}\0{}", ALICE.login, ALICE.password));
    for (direction, line) in lines.lock().expect("transcript lock").iter() {
        for secret in [PROXY_USER.password, ALICE.password, &basic, &plain] {
            assert!(
                !line.contains(secret),
                "transcript shows a secret: {direction} {line}"
            );
        }
    }
}

/// True when the transcript shows any SMTP command sent: the mail server got nothing
/// when it shows none.
fn any_smtp_sent(lines: &Lines) -> bool {
    lines.lock().expect("transcript lock").iter().any(|(d, l)| {
        *d == Direction::Sent
            && !l.starts_with("SOCKS5 ")
            && !l.starts_with("CONNECT ")
            && !l.starts_with("Host: ")
            && !l.starts_with("Proxy-Authorization: ")
    })
}

/// Through `proxy` to each listener as `host`: TLS as configured, AUTH PLAIN, a message
/// delivered byte for byte.
fn deliver_through<C: Driver>(proxy_listener: ProxyListener, with_credentials: bool, host: &str) {
    require_servers();
    require_proxies();
    for (listener, mode) in LISTENERS {
        let lines: Lines = Arc::default();
        let what = format!(
            "{proxy_listener:?} to {host}:{} ({mode:?})",
            listener.port()
        );
        let cfg = config(
            host,
            listener.port(),
            mode,
            proxy(proxy_listener, with_credentials),
            &lines,
        );
        let mut client = C::connect(cfg).unwrap_or_else(|e| panic!("{what}: connect: {e}"));
        assert_eq!(client.is_encrypted(), mode != TlsMode::None, "{what}");
        let options = AuthOptions::new().allow_plaintext_without_tls(mode == TlsMode::None);
        let success = client
            .auth_with_options("PLAIN", ALICE.login, ALICE.password, &options)
            .unwrap_or_else(|e| panic!("{what}: AUTH: {e}"));
        assert_eq!(success.reply.code().get(), 235, "{what}");

        let marker = unique_marker(&format!(
            "proxy-{}-{}",
            proxy_listener.port(),
            listener.port()
        ));
        let message = format!(
            "Message-ID: {marker}\r\nFrom: {0}\r\nTo: sink@example.test\r\nSubject: through {what}\r\n\r\n\
             Sent through a proxy.\r\n.a leading dot\r\n",
            ALICE.address()
        );
        let from = ReversePath::Mailbox(Mailbox::new(&ALICE.address()).expect("address"));
        let to = ForwardPath::new("sink@example.test").expect("address");
        client
            .send(&Envelope::new(from, [to]), message.as_bytes())
            .unwrap_or_else(|e| panic!("{what}: send: {e}"));
        client
            .quit()
            .unwrap_or_else(|e| panic!("{what}: quit: {e}"));
        let delivered = wait_for_message(&marker).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            strip_delivery_headers(&delivered).expect("delivery headers"),
            &as_delivered(message.as_bytes())[..],
            "{what}"
        );
        check_transcript(&lines);
        let first = lines.lock().expect("transcript lock")[0].1.clone();
        let expected = if proxy_listener.is_socks5() {
            "SOCKS5 methods"
        } else {
            "CONNECT "
        };
        assert!(first.starts_with(expected), "{what}: {first}");
    }
}

fn socks5_without_credentials<C: Driver>() {
    deliver_through::<C>(ProxyListener::DanteOpen, false, "localhost");
}

fn socks5_with_credentials<C: Driver>() {
    deliver_through::<C>(ProxyListener::DanteAuth, true, "localhost");
}

fn http_connect_without_credentials<C: Driver>() {
    deliver_through::<C>(ProxyListener::TinyproxyOpen, false, "localhost");
}

fn http_connect_with_credentials<C: Driver>() {
    deliver_through::<C>(ProxyListener::TinyproxyAuth, true, "localhost");
}

fn socks5_target_as_an_address<C: Driver>() {
    // The certificate also names 127.0.0.1: sent as ATYP 1, checked as an IP address.
    deliver_through::<C>(ProxyListener::DanteAuth, true, "127.0.0.1");
}

/// A name of this machine's /etc/hosts for 127.0.0.1 that the certificate does not carry.
fn other_loopback_name() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("127.0.0.1"))
            .then(|| words.find(|w| !w.starts_with('#') && *w != "localhost"))
            .flatten()
            .map(str::to_owned)
    })
}

fn the_certificate_is_checked_against_the_mail_servers_name<C: Driver>() {
    require_servers();
    require_proxies();
    // The proxy, addressed as `localhost`, is a name the certificate carries; the mail
    // server is asked for by another name of the same address, which it does not.
    let Some(name) = other_loopback_name() else {
        eprintln!("skipped: /etc/hosts has no other name for 127.0.0.1");
        return;
    };
    for (listener, mode) in &LISTENERS[1..] {
        let lines: Lines = Arc::default();
        let proxy = Proxy::socks5("localhost", ProxyListener::DanteOpen.port());
        let err = C::connect(config(&name, listener.port(), *mode, proxy, &lines)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Tls(TlsError::Handshake(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. }
                )))
            ),
            "{name} {mode:?}: {err:?}"
        );
    }
}

/// Connects and returns the proxy error, checking that no SMTP command was sent.
fn refused<C: Driver>(host: &str, port: u16, proxy: Proxy) -> ProxyError {
    let lines: Lines = Arc::default();
    let err = C::connect(config(host, port, TlsMode::None, proxy, &lines)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(!any_smtp_sent(&lines), "{:?}", lines.lock().expect("lock"));
    check_transcript(&lines);
    println!("{host}:{port}: {err}");
    match err {
        Error::Proxy { error, .. } => error,
        other => panic!("not a proxy error: {other:?}"),
    }
}

fn the_proxy_refuses_the_target<C: Driver>() {
    require_servers();
    require_proxies();
    // 12143 (Dovecot's IMAP) is not among the ports the proxies allow.
    let err = refused::<C>("127.0.0.1", 12143, proxy(ProxyListener::DanteOpen, false));
    assert_eq!(
        err,
        ProxyError::Socks5Refused {
            target: "127.0.0.1:12143".into(),
            code: 2
        }
    );
    // Dante resolves the name first: a name that does not resolve is "host unreachable".
    let err = refused::<C>(
        "no-such-host.invalid",
        12525,
        proxy(ProxyListener::DanteAuth, true),
    );
    assert_eq!(err.reply_code(), Some(4), "{err}");
    let err = refused::<C>(
        "127.0.0.1",
        12143,
        proxy(ProxyListener::TinyproxyOpen, false),
    );
    assert!(
        matches!(&err, ProxyError::HttpRefused { status: 403, reason, .. } if reason == "Access violation"),
        "{err:?}"
    );
    let err = refused::<C>(
        "mx.example.test",
        12525,
        proxy(ProxyListener::TinyproxyAuth, true),
    );
    assert!(
        matches!(&err, ProxyError::HttpRefused { status: 403, reason, .. } if reason == "Filtered"),
        "{err:?}"
    );
}

fn wrong_or_missing_proxy_credentials<C: Driver>() {
    require_servers();
    require_proxies();
    let wrong = |listener: ProxyListener| {
        proxy(listener, false)
            .user(PROXY_USER.login)
            .password(format!("{}-wrong", PROXY_USER.password))
    };
    let port = Listener::DovecotPlain.port();
    assert_eq!(
        refused::<C>("localhost", port, wrong(ProxyListener::DanteAuth)),
        ProxyError::CredentialsRejected { code: 1 }
    );
    assert_eq!(
        refused::<C>("localhost", port, proxy(ProxyListener::DanteAuth, false)),
        ProxyError::CredentialsRequired { code: 255 }
    );
    assert_eq!(
        refused::<C>("localhost", port, wrong(ProxyListener::TinyproxyAuth)),
        ProxyError::CredentialsRejected { code: 401 }
    );
    assert_eq!(
        refused::<C>(
            "localhost",
            port,
            proxy(ProxyListener::TinyproxyAuth, false)
        ),
        ProxyError::CredentialsRequired { code: 407 }
    );
}

/// A SOCKS5 proxy that opens a real connection to Postfix's 12525 for the client, then
/// misbehaves: sends `reply` (or nothing: it stalls) instead of a valid CONNECT reply, and
/// relays whatever the client sends next to Postfix. Returns its port and, once the client
/// has closed, the bytes it relayed.
fn misbehaving_proxy(reply: Option<Vec<u8>>) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let handle = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().expect("accept");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut greeting = [0u8; 3];
        client.read_exact(&mut greeting).expect("method selection");
        client.write_all(&[5, 0]).expect("method");
        // VER CMD RSV ATYP=3 LEN "localhost" PORT
        let mut request = [0u8; 4 + 1 + 9 + 2];
        client.read_exact(&mut request).expect("CONNECT request");
        let mut postfix =
            TcpStream::connect(Listener::DovecotPlain.addr()).expect("Postfix listens");
        if let Some(reply) = reply {
            client.write_all(&reply).expect("reply");
        }
        let mut relayed = Vec::new();
        let mut buf = [0u8; 1024];
        // Until the client closes (or 10 s pass), everything it sends goes to Postfix.
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            relayed.extend_from_slice(&buf[..n]);
            let _ = postfix.write_all(&buf[..n]);
        }
        relayed
    });
    (port, handle)
}

fn a_misbehaving_proxy_in_front_of_postfix_gets_nothing_through<C: Driver>() {
    require_servers();
    let cases: [(Option<Vec<u8>>, &str); 3] = [
        (None, "stalls"),
        (Some(vec![5, 0, 0, 9, 1, 2, 3, 4, 0, 25]), "address type 9"),
        (Some(b"HTTP/1.1 200 OK\r\n\r\n".to_vec()), "not SOCKS5"),
    ];
    for (reply, what) in cases {
        let stalls = reply.is_none();
        let (port, proxy_thread) = misbehaving_proxy(reply);
        let proxy = Proxy::socks5("127.0.0.1", port).handshake_timeout(Duration::from_millis(500));
        let lines: Lines = Arc::default();
        let cfg = config(
            "localhost",
            Listener::DovecotPlain.port(),
            TlsMode::None,
            proxy,
            &lines,
        );
        let err = C::connect(cfg).unwrap_err();
        println!("{what}: {err}");
        assert_eq!(err.kind(), ErrorKind::Connection, "{what}: {err}");
        match err {
            Error::Proxy {
                error: ProxyError::Timeout { .. },
                ..
            } if stalls => {}
            Error::Proxy {
                error: ProxyError::Malformed { .. },
                ..
            } if !stalls => {}
            other => panic!("{what}: {other:?}"),
        }
        let relayed = proxy_thread.join().expect("the proxy's thread");
        assert!(
            relayed.is_empty(),
            "{what}: sent to the mail server: {relayed:?}"
        );
        assert!(!any_smtp_sent(&lines), "{what}");
    }
}

/// The pool takes the proxy as part of its `ClientConfig`: every connection it opens goes
/// through Dante with credentials and STARTTLS, and every message is delivered.
#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn a_pool_sends_through_the_proxy() {
    use smtp_client::pool::{blocking::Pool, PoolConfig};

    require_servers();
    require_proxies();
    const MESSAGES: usize = 24;
    let lines: Lines = Arc::default();
    let client = config(
        "localhost",
        Listener::DovecotStartTls.port(),
        TlsMode::StartTlsRequired,
        proxy(ProxyListener::DanteAuth, true),
        &lines,
    );
    let pool = Pool::new(
        PoolConfig::new(client)
            .max_connections(4)
            .max_messages_per_connection(8),
    );
    // `<proxy-pool.PID.NANOS.N@...>`: message i is `<i.proxy-pool...>`.
    let marker = unique_marker("proxy-pool");
    let id = |i: usize| format!("<{i}.{}", &marker[1..]);
    let from = ReversePath::Mailbox(Mailbox::new("alice@example.test").expect("address"));
    let messages = (0..MESSAGES)
        .map(|i| {
            let to = ForwardPath::new("sink@example.test").expect("address");
            let body = format!(
                "Message-ID: {}\r\nSubject: pool {i}\r\n\r\nbody {i}\r\n",
                id(i)
            );
            (Envelope::new(from.clone(), [to]), body.into_bytes())
        })
        .collect();
    let (summary, _results) = pool.send_all(messages);
    pool.shutdown();
    assert_eq!(summary.accepted, MESSAGES, "{summary:?}");
    for i in 0..MESSAGES {
        wait_for_message(&id(i)).unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    let transcript = lines.lock().expect("transcript lock");
    let handshakes = transcript
        .iter()
        .filter(|(_, l)| l.starts_with("SOCKS5 username/password: smtpauthproxy ****"))
        .count();
    assert!(
        (3..=4 * 3).contains(&handshakes),
        "{handshakes} proxy handshakes"
    );
    drop(transcript);
    check_transcript(&lines);
}
