//! The built `smtp-send` binary's connection and envelope-extension flags against the demo
//! server, checked from the server's side: the DSN parameters it received, the commands of
//! each session (nothing after a `--quit-after` stage but QUIT), the peer address it saw
//! (`--local-addr`, `-4`, `-6`), the client certificate it verified (`--tls-cert` with
//! `--auth EXTERNAL`); and every bad value refused with one line before any connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_demo_server::{DemoConfig, DemoServer, SessionLog, DEMO_PASSWORD, DEMO_USER};

const BIN: &str = env!("CARGO_BIN_EXE_smtp-send");
const PW_VAR: &str = "SMTP_SEND_TEST_PASSWORD";
const AUTH: &[&str] = &["--user", DEMO_USER, "--password-env", PW_VAR];
const ENVELOPE: &[&str] = &["--from", "alice@example.test", "--to", "bob@example.test"];

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "smtp-send-connection-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the binary against `server` (its CA trusted) with `args` after the connection flags.
fn run(server: &DemoServer, ca: &TempFile, args: &[&str]) -> Output {
    run_at(&server.addr().to_string(), ca, args)
}

fn run_at(addr: &str, ca: &TempFile, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--server", addr, "--ca-file", ca.path(), "--timeout", "20"])
        .args(args)
        .env(PW_VAR, DEMO_PASSWORD)
        .output()
        .expect("run smtp-send")
}

fn start(config: DemoConfig) -> (DemoServer, TempFile) {
    let server = DemoServer::start(config).expect("demo server");
    let ca = TempFile::new(server.ca_pem().as_bytes());
    (server, ca)
}

fn demo() -> (DemoServer, TempFile) {
    start(DemoConfig::new().port(0))
}

/// The one session the server saw, once it has ended.
fn only_session(server: &DemoServer) -> SessionLog {
    let sessions = server.wait_for_sessions_to_end(Duration::from_secs(10));
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].ended, "{sessions:?}");
    sessions[0].clone()
}

#[test]
fn dsn_flags_reach_the_server_as_rfc3461_parameters() {
    let (server, ca) = demo();
    let out = run(
        &server,
        &ca,
        &[
            AUTH,
            &["--from", "alice@example.test"],
            &["--to", "bob@example.test", "--to", "carol@example.test"],
            &["--notify", "success,failure", "--ret", "hdrs"],
            &["--envid", "env 1+x"],
            &["--orcpt", "rfc822;orig.bob@example.test"],
            &["--orcpt", "rfc822;orig.carol@example.test"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = server.received();
    assert_eq!(got.len(), 1);
    // RFC 3461 4: xtext writes ' ' as +20 and '+' as +2B.
    assert!(
        got[0].mail_params.contains(&"RET=HDRS".to_owned()),
        "{got:?}"
    );
    assert!(
        got[0].mail_params.contains(&"ENVID=env+201+2Bx".to_owned()),
        "{got:?}"
    );
    assert_eq!(got[0].to, ["bob@example.test", "carol@example.test"]);
    assert_eq!(
        got[0].rcpt_params,
        [
            [
                "NOTIFY=SUCCESS,FAILURE",
                "ORCPT=rfc822;orig.bob@example.test"
            ],
            [
                "NOTIFY=SUCCESS,FAILURE",
                "ORCPT=rfc822;orig.carol@example.test"
            ],
        ]
    );

    let out = run(
        &server,
        &ca,
        &[AUTH, ENVELOPE, &["--notify", "never", "--ret", "full"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = server.received();
    assert!(
        got[1].mail_params.contains(&"RET=FULL".to_owned()),
        "{got:?}"
    );
    assert_eq!(got[1].rcpt_params, [["NOTIFY=NEVER"]]);
}

/// The verbs of the run up to and including each stage, STARTTLS required (the default).
const STAGES: &[(&str, &[&str])] = &[
    ("connect", &["QUIT"]),
    ("banner", &["QUIT"]),
    ("ehlo", &["EHLO", "QUIT"]),
    ("tls", &["EHLO", "STARTTLS", "EHLO", "QUIT"]),
    ("auth", &["EHLO", "STARTTLS", "EHLO", "AUTH", "QUIT"]),
    (
        "mail",
        &["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "QUIT"],
    ),
    (
        "rcpt",
        &["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "QUIT"],
    ),
    // After 354 nothing can be a command: the connection is closed, without QUIT.
    (
        "data",
        &["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA"],
    ),
];

#[test]
fn quit_after_each_stage_sends_nothing_after_it_but_quit() {
    for (stage, verbs) in STAGES {
        let (server, ca) = demo();
        let out = run(
            &server,
            &ca,
            &[AUTH, ENVELOPE, &["--auth", "PLAIN", "--quit-after", stage]].concat(),
        );
        assert_eq!(out.status.code(), Some(0), "{stage}: {}", stderr(&out));
        let line = stdout(&out);
        assert!(
            line.starts_with(&format!("stopped after {stage} as asked (")),
            "{stage}: {line}"
        );
        let session = only_session(&server);
        assert_eq!(session.verbs(), *verbs, "{stage}: {session:?}");
        assert!(server.received().is_empty(), "{stage}: nothing delivered");
    }
}

#[test]
fn quit_after_shows_the_stage_reply() {
    let (server, ca) = demo();
    let out = run(
        &server,
        &ca,
        &[AUTH, ENVELOPE, &["--quit-after", "auth"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.starts_with("stopped after auth as asked (QUIT sent), authenticated with "),
        "{line}"
    );
    assert!(
        line.trim_end()
            .ends_with(": 235 2.7.0 Authentication successful"),
        "{line}"
    );
    let out = run(
        &server,
        &ca,
        &[AUTH, ENVELOPE, &["--quit-after", "data"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(connection closed, no message sent)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn quit_after_tls_under_implicit_tls_stops_after_the_greeting() {
    let (server, ca) = start(DemoConfig::new().port(0).implicit_tls(true));
    let out = run(
        &server,
        &ca,
        &[
            AUTH,
            ENVELOPE,
            &["--tls", "implicit", "--quit-after", "tls"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(only_session(&server).verbs(), ["QUIT"]);
}

#[test]
fn a_refused_recipient_before_quit_after_rcpt_exits_5_after_quit() {
    let (server, ca) = demo();
    let out = run(
        &server,
        &ca,
        &[
            AUTH,
            ENVELOPE,
            &["--to", "reject@example.test", "--quit-after", "rcpt"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rcpt failed: <reject@example.test>: 550 5.1.1"),
        "{}",
        stderr(&out)
    );
    let session = only_session(&server);
    assert_eq!(
        session.verbs(),
        ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "RCPT", "QUIT"]
    );
}

/// A server that refuses service at its greeting (RFC 5321 3.1: 554), then reads until the
/// client goes; returns what the client sent.
fn refusing_server() -> (SocketAddr, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(b"554 5.3.2 No service here\r\n").unwrap();
        let mut sent = String::new();
        let mut reader = BufReader::new(tcp);
        while reader.read_line(&mut sent).is_ok_and(|n| n > 0) {}
        sent
    });
    (addr, handle)
}

#[test]
fn a_refused_greeting_ends_quit_after_connect_well_and_banner_with_5() {
    let (_server, ca) = demo();
    let (addr, sent) = refusing_server();
    let out = run_at(
        &addr.to_string(),
        &ca,
        &[ENVELOPE, &["--quit-after", "connect"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("554 5.3.2 No service here"),
        "{}",
        stdout(&out)
    );
    let _ = sent.join();
    let (addr, sent) = refusing_server();
    let out = run_at(
        &addr.to_string(),
        &ca,
        &[ENVELOPE, &["--quit-after", "banner"]].concat(),
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("554 5.3.2"), "{}", stderr(&out));
    // No command after a refused greeting but, at most, QUIT.
    let sent = sent.join().unwrap();
    assert!(sent.is_empty() || sent == "QUIT\r\n", "{sent:?}");
}

#[test]
fn local_addr_is_the_address_the_server_sees() {
    let (server, ca) = demo();
    let out = run(
        &server,
        &ca,
        &[AUTH, ENVELOPE, &["--local-addr", "127.0.0.2"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        only_session(&server).peer.ip(),
        IpAddr::from([127, 0, 0, 2])
    );
    // With a port: one free right now.
    let (server, ca) = demo();
    let port = TcpListener::bind("127.0.0.3:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let local = format!("127.0.0.3:{port}");
    let out = run(
        &server,
        &ca,
        &[AUTH, ENVELOPE, &["--local-addr", &local]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(only_session(&server).peer, local.parse().unwrap());
}

#[test]
fn ipv4_and_ipv6_only() {
    // `localhost` has an IPv4 address, and at most an IPv6 one where nothing listens on
    // this port: -4 reaches the server, -6 does not.
    let (server, ca) = demo();
    let host = format!("localhost:{}", server.port());
    let out = run_at(
        &host,
        &ca,
        &[AUTH, ENVELOPE, &["-4", "--tls-server-name", "localhost"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        only_session(&server).peer.ip(),
        IpAddr::from([127, 0, 0, 1])
    );
    let out = run_at(&host, &ca, &[AUTH, ENVELOPE, &["-6"]].concat());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("connect failed: "),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        server.sessions().len(),
        1,
        "-6 never reached the IPv4 listener"
    );

    // A server on the IPv6 loopback, reached with -6.
    let (server, ca) = start(DemoConfig::new().bind("[::1]:0".parse().unwrap()));
    let addr = server.addr().to_string();
    let out = run_at(
        &addr,
        &ca,
        &[AUTH, ENVELOPE, &["-6", "--tls-server-name", "localhost"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        only_session(&server).peer.ip(),
        "::1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn a_client_certificate_authenticates_with_external() {
    let (server, ca) = start(DemoConfig::new().port(0).client_certificates(true));
    let issued = server.issue_client_certificate("certuser").unwrap();
    let cert = TempFile::new(issued.cert_pem.as_bytes());
    let key = TempFile::new(issued.key_pem().as_bytes());
    let tls = ["--tls-cert", cert.path(), "--tls-key", key.path()];
    let out = run(
        &server,
        &ca,
        &[ENVELOPE, &tls, &["--auth", "EXTERNAL"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("authenticated with EXTERNAL"),
        "{}",
        stdout(&out)
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authenticated.as_deref(), Some("certuser"));
    assert_eq!(got[0].mechanism.as_deref(), Some("EXTERNAL"));

    // A certificate of the same CA that this server did not issue: the handshake passes,
    // but it names nobody here, and EXTERNAL is not offered.
    let other = DemoServer::start(DemoConfig::new().port(0)).unwrap();
    let stranger = other.issue_client_certificate("certuser").unwrap();
    let cert = TempFile::new(stranger.cert_pem.as_bytes());
    let key = TempFile::new(stranger.key_pem().as_bytes());
    let tls = ["--tls-cert", cert.path(), "--tls-key", key.path()];
    let out = run(
        &server,
        &ca,
        &[ENVELOPE, &tls, &["--auth", "EXTERNAL"]].concat(),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("auth failed: the server does not offer EXTERNAL"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.received().len(), 1);
}

/// A listener that must see no connection: bad input is refused before connecting.
fn untouched_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

#[test]
fn bad_connection_and_extension_flags_exit_2_with_one_line_before_connecting() {
    let (listener, addr) = untouched_listener();
    let ca = smtp_demo_server::cert::client_ca();
    let (alice, bob) = (ca.issue("alice").unwrap(), ca.issue("bob").unwrap());
    let cert = TempFile::new(alice.cert_pem.as_bytes());
    let key = TempFile::new(alice.key_pem().as_bytes());
    let wrong_key = TempFile::new(bob.key_pem().as_bytes());
    let (cert, key, wrong_key) = (cert.path(), key.path(), wrong_key.path());
    let server: &[&str] = &["--server", &addr];
    let long_envid = "x".repeat(101);
    let socket: &[&str] = &["--socket", "/nonexistent/lmtp.sock"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // DSN.
        (
            vec!["--notify", "sometimes"],
            "--notify \"sometimes\": expected never",
        ),
        (
            vec!["--notify", "never,success"],
            "never cannot be combined",
        ),
        (
            vec!["--notify", "success\r\nRCPT TO:<x@example.test>"],
            "--notify",
        ),
        (vec!["--envid", "a\r\nb"], "--envid"),
        (vec!["--envid", &long_envid], "longer than 100"),
        (vec!["--envid", "caf\u{e9}"], "not printable ASCII"),
        (
            vec!["--orcpt", "bob@example.test"],
            "expected ADDR-TYPE;ADDRESS",
        ),
        (vec!["--orcpt", "rfc822;not an address"], "--orcpt"),
        (
            vec![
                "--orcpt",
                "rfc822;a@example.test",
                "--orcpt",
                "rfc822;b@example.test",
            ],
            "one for each --to",
        ),
        (vec!["--orcpt", "rfc822;a@example.test\n"], "contains LF"),
        // XCLIENT.
        (vec!["--xclient", "NAME=bad name"], "a space in the value"),
        (vec!["--xclient", "COLOR=blue"], "unknown attribute"),
        (
            vec!["--xclient", "ADDR=192.0.2.7\r\nMAIL FROM:<x@example.test>"],
            "contains CR",
        ),
        (vec!["--xclient", "HELO=a\rb"], "contains CR"),
        (
            vec!["--xclient", "NAME=a.example", "--xclient", "name=b.example"],
            "given twice",
        ),
        (vec!["--xclient", "ADDR"], "expected ATTR=VALUE"),
        (vec!["--xclient", "ADDR=not-an-ip"], "not an IP address"),
        // Client certificate.
        (
            vec!["--tls-cert", "/nonexistent/cert.pem", "--tls-key", key],
            "--tls-cert /nonexistent/cert.pem",
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", "/nonexistent/key.pem"],
            "--tls-key /nonexistent/key.pem",
        ),
        (vec!["--tls-cert", cert], "--tls-cert needs --tls-key"),
        (vec!["--tls-key", key], "--tls-key needs --tls-cert"),
        (
            vec!["--tls-cert", cert, "--tls-key", wrong_key],
            "--tls-cert/--tls-key: client certificate",
        ),
        (
            vec!["--tls-cert", key, "--tls-key", key],
            "--tls-cert/--tls-key: no certificate",
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", key, "--tls", "none"],
            "needs TLS",
        ),
        (
            vec!["--auth", "EXTERNAL"],
            "--auth EXTERNAL needs --tls-cert",
        ),
        (
            vec![
                "--auth",
                "EXTERNAL",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
                "--user",
                "demo",
            ],
            "takes no --user",
        ),
        // Conflicts.
        (vec!["-4", "-6"], "-4 and -6"),
        (vec!["-6"], "an IPv4 address with -6"),
        (
            vec!["--prdr", "--protocol", "lmtp"],
            "--prdr with --protocol lmtp",
        ),
        (
            vec!["--local-addr", "mail.example.test"],
            "--local-addr \"mail.example.test\": not an IP address",
        ),
        (vec!["--local-addr", "127.0.0.2\r\n"], "contains CR"),
        (
            vec!["--local-addr", "127.0.0.2:0"],
            "the port is not a number",
        ),
        (
            vec!["--local-addr", "::1"],
            "not of the same family as --server",
        ),
        (vec!["--local-addr", "::1", "-4"], "an IPv6 address with -4"),
        (
            vec!["--quit-after", "tls", "--tls", "none"],
            "--quit-after tls: --tls none makes no TLS",
        ),
        (
            vec!["--quit-after", "auth"],
            "--quit-after auth: no AUTH is asked for",
        ),
        (
            vec!["--quit-after", "data", "--bdat"],
            "--quit-after data: --bdat",
        ),
        (
            vec!["--quit-after", "mail", "--count", "5"],
            "not in load mode",
        ),
    ];
    let socket_cases: Vec<(Vec<&str>, &str)> = vec![
        ([socket, server].concat(), "--socket and --server"),
        (
            [socket, &["--tls", "starttls"]].concat(),
            "--socket: TLS over a Unix socket is not supported: add --tls none",
        ),
        (
            [socket, &["--tls", "implicit", "--protocol", "lmtp"]].concat(),
            "--tls implicit with --protocol lmtp over a Unix socket",
        ),
        (
            [socket, &["--tls", "none", "-4"]].concat(),
            "--socket with -4 or -6",
        ),
        (vec!["--socket", "/tmp/a\nb", "--tls", "none"], "--socket"),
    ];
    let with_server = cases.into_iter().map(|(c, e)| ([server, &c].concat(), e));
    for (args, expected) in with_server.chain(socket_cases) {
        let out = Command::new(BIN)
            .args(["--from", "a@example.test", "--to", "b@example.test"])
            .args(&args)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert_eq!(
            listener.accept().map(|_| ()).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "{args:?}: connected despite bad input"
        );
    }
    // Values clap checks itself: exit 2 too.
    for bad in [
        &["--ret", "most"][..],
        &["--protocol", "esmtp"],
        &["--quit-after", "xclient"],
    ] {
        let out = Command::new(BIN)
            .args([
                "--server",
                &addr,
                "--from",
                "a@example.test",
                "--to",
                "b@example.test",
            ])
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
}

#[test]
fn the_connection_flags_are_refused_with_demo() {
    for bad in [
        &["--prdr"][..],
        &["--socket", "/tmp/x"],
        &["-6"],
        &["--quit-after", "ehlo"],
    ] {
        let out = Command::new(BIN)
            .args(["--demo", "--demo-port", "0"])
            .args(bad)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert!(err.contains("with --demo"), "{bad:?}: {err}");
    }
}

#[test]
fn prdr_that_the_server_does_not_offer_exits_5_before_mail() {
    let (server, ca) = demo();
    let out = run(&server, &ca, &[AUTH, ENVELOPE, &["--prdr"]].concat());
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("PRDR"), "{}", stderr(&out));
    let session = only_session(&server);
    assert!(!session.verbs().contains(&"MAIL".to_owned()), "{session:?}");
    assert!(server.received().is_empty());
}

/// Over --socket, --tls left out means none: the client speaks to the socket in clear and
/// asks for no STARTTLS (an explicit --tls starttls is refused above).
#[cfg(unix)]
#[test]
fn a_unix_socket_needs_no_tls_flag() {
    use std::os::unix::net::UnixListener;
    let dir = std::env::temp_dir().join(format!("smtp-send-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lmtp.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut out = conn.try_clone().unwrap();
        let mut lines = BufReader::new(conn);
        let _ = out.write_all(b"220 lmtp.test LMTP\r\n");
        let mut heard = Vec::new();
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            heard.push(line.trim_end().to_owned());
            line.clear();
            let reply: &[u8] = match verb.as_str() {
                "LHLO" => b"250-lmtp.test\r\n250 PIPELINING\r\n",
                // Refuse the sender: enough to show the conversation ran in clear.
                "MAIL" => b"550 5.7.1 not today\r\n",
                "QUIT" => b"221 bye\r\n",
                _ => b"250 ok\r\n",
            };
            if out.write_all(reply).is_err() || verb == "QUIT" {
                break;
            }
        }
        heard
    });
    let out = Command::new(BIN)
        .args(["--socket", path.to_str().unwrap(), "--protocol", "lmtp"])
        .args(["--from", "a@example.test", "--to", "b@example.test"])
        .output()
        .unwrap();
    if !server.is_finished() {
        // The client never connected (refused before it did): wake the accept so that
        // the test fails on its assertions instead of waiting forever.
        let _ = std::os::unix::net::UnixStream::connect(&path);
    }
    let heard = server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("550 5.7.1 not today"), "{err}");
    assert!(heard[0].starts_with("LHLO "), "{heard:?}");
    assert!(
        heard
            .iter()
            .any(|l| l.starts_with("MAIL FROM:<a@example.test>")),
        "{heard:?}"
    );
    assert!(
        !heard.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")),
        "{heard:?}"
    );
}
