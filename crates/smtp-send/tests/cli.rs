//! The built `smtp-send` binary against the demo server: exit codes, the stderr line of each
//! failure, checks made before connecting, and secrets kept out of the transcript.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use smtp_demo_server::{
    DemoConfig, DemoServer, DEMO_PASSWORD, DEMO_USER, MECHANISMS, TOKEN_MECHANISMS,
};

const BIN: &str = env!("CARGO_BIN_EXE_smtp-send");
const PW_VAR: &str = "SMTP_SEND_TEST_PASSWORD";

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "smtp-send-test-{}-{}",
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

fn server() -> (DemoServer, TempFile) {
    let server = DemoServer::start(DemoConfig::new().port(0)).expect("demo server");
    let ca = TempFile::new(server.ca_pem().as_bytes());
    (server, ca)
}

/// Runs the binary against `server` with `args` after the connection flags; the password
/// is passed in the environment.
fn run(server: &DemoServer, ca: &TempFile, password: &str, args: &[&str]) -> Output {
    let addr = server.addr().to_string();
    Command::new(BIN)
        .args(["--server", &addr, "--ca-file", ca.path(), "--timeout", "20"])
        .args(args)
        .env(PW_VAR, password)
        .output()
        .expect("run smtp-send")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn base64(bytes: &[u8]) -> String {
    // RFC 4648 section 4, written out here so the test does not trust the code under test.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const AUTH_FLAGS: &[&str] = &["--user", DEMO_USER, "--password-env", PW_VAR];
const ENVELOPE: &[&str] = &["--from", "alice@example.test", "--to", "bob@example.test"];

fn flags(parts: &[&[&str]]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| p.iter().map(|s| (*s).to_owned()))
        .collect()
}

fn args_of(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn base64_helper_matches_rfc4648_vectors() {
    // RFC 4648 section 10.
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn each_mechanism_sends_and_exits_0() {
    let (server, ca) = server();
    let every: Vec<&str> = MECHANISMS
        .iter()
        .chain(TOKEN_MECHANISMS.iter())
        .copied()
        .collect();
    for mech in &every {
        let v = flags(&[&["--auth", mech], AUTH_FLAGS, ENVELOPE]);
        let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
        assert_eq!(out.status.code(), Some(0), "{mech}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("accepted for 1 recipient"),
            "{}",
            stdout(&out)
        );
    }
    let got = server.received();
    assert_eq!(got.len(), every.len());
    for (m, mech) in got.iter().zip(&every) {
        assert_eq!(m.mechanism.as_deref(), Some(*mech));
        assert_eq!(m.authenticated.as_deref(), Some(DEMO_USER));
        assert!(m.tls, "STARTTLS is the default");
        assert_eq!(m.from, "alice@example.test");
        assert_eq!(m.to, ["bob@example.test"]);
        let text = String::from_utf8_lossy(&m.data);
        assert!(text.contains("\r\nMessage-ID: <"), "{text}");
        assert!(text.starts_with("Date: "), "{text}");
    }
}

#[test]
fn wrong_password_exits_4_naming_the_stage_and_reply() {
    let (server, ca) = server();
    let v = flags(&[&["--auth", "PLAIN"], AUTH_FLAGS, ENVELOPE]);
    let out = run(&server, &ca, "not-the-password", &args_of(&v));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("auth failed: 535 5.7.8 Authentication credentials invalid"),
        "{}",
        stderr(&out)
    );
    assert!(server.received().is_empty());
}

#[test]
fn transcript_shows_both_directions_and_no_secret() {
    let (server, ca) = server();
    for mech in ["PLAIN", "LOGIN"] {
        let v = flags(&[&["--auth", mech, "--transcript"], AUTH_FLAGS, ENVELOPE]);
        let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!(">>> AUTH {mech}")), "{err}");
        assert!(err.contains("<<< 235 2.7.0"), "{err}");
        assert!(err.contains(">>> MAIL FROM:<alice@example.test>"), "{err}");
        let plain = format!("\0{DEMO_USER}\0{DEMO_PASSWORD}");
        for secret in [
            DEMO_PASSWORD.to_owned(),
            base64(DEMO_PASSWORD.as_bytes()),
            base64(plain.as_bytes()),
        ] {
            assert!(
                !err.contains(&secret),
                "{mech}: {secret:?} in the transcript:\n{err}"
            );
            assert!(!stdout(&out).contains(&secret));
        }
    }
}

/// A listener that must see no connection: bad input is refused before connecting.
fn untouched_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

fn assert_untouched(l: &TcpListener) {
    assert_eq!(
        l.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "smtp-send connected despite bad input"
    );
}

#[test]
fn crlf_in_from_exits_2_before_connecting() {
    let (l, addr) = untouched_listener();
    let out = Command::new(BIN)
        .args(["--server", &addr, "--tls", "none"])
        .args(["--from", "a@example.test\r\nRCPT TO:<evil@example.test>"])
        .args(["--to", "b@example.test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--from"), "{}", stderr(&out));
    assert!(stderr(&out).contains("CR"), "{}", stderr(&out));
    assert_untouched(&l);
}

#[test]
fn bad_input_exits_2_before_connecting() {
    let (l, addr) = untouched_listener();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--data", "/nonexistent/message.eml"],
            "--data /nonexistent/message.eml",
        ),
        (&["--to", "not an address"], "--to"),
        (&["--helo", "bad\nname"], "--helo"),
        (
            &[
                "--user",
                "demo",
                "--password-env",
                "SMTP_SEND_UNSET_VARIABLE",
            ],
            "not set",
        ),
        (&["--auth", "PLAIN"], "--auth needs --user"),
        (&["--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
    ];
    for (extra, expected) in cases {
        let out = Command::new(BIN)
            .args(["--server", &addr, "--tls", "none"])
            .args(["--from", "a@example.test", "--to", "b@example.test"])
            .args(*extra)
            .env_remove("SMTP_SEND_UNSET_VARIABLE")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert_untouched(&l);
    }
}

#[test]
fn bad_proxy_flags_exit_2_with_one_line_before_connecting() {
    let (server, server_addr) = untouched_listener();
    let (proxy, proxy_addr) = untouched_listener();
    let with_user = format!("socks5://smtpuser@{proxy_addr}");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![format!("--proxy={proxy_addr}")], "no scheme"),
        (
            vec!["--proxy=socks4://127.0.0.1:1080".into()],
            "not socks5 or http",
        ),
        (vec!["--proxy=socks5://127.0.0.1".into()], "no port"),
        (
            vec![format!(
                "--proxy=http://smtpuser:Hunter2-secret@{proxy_addr}"
            )],
            "a password in the URL is not allowed",
        ),
        (vec![format!("--proxy={with_user}")], "no password"),
        (
            vec![
                format!("--proxy=socks5://{proxy_addr}"),
                "--proxy-password-env=SMTP_SEND_PROXY_PW".into(),
            ],
            "needs a user",
        ),
        (
            vec![
                format!("--proxy={with_user}"),
                "--proxy-password-env=SMTP_SEND_UNSET_VARIABLE".into(),
            ],
            "not set",
        ),
        (
            vec![
                format!("--proxy={with_user}"),
                "--proxy-password-env=SMTP_SEND_LONG_PW".into(),
            ],
            "longer than 255",
        ),
    ];
    for (extra, expected) in cases {
        let out = Command::new(BIN)
            .args(["--server", &server_addr, "--tls", "none"])
            .args(["--from", "a@example.test", "--to", "b@example.test"])
            .args(&extra)
            .env("SMTP_SEND_PROXY_PW", "Hunter2-secret")
            .env("SMTP_SEND_LONG_PW", "x".repeat(256))
            .env_remove("SMTP_SEND_UNSET_VARIABLE")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(expected), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra:?}: {err}");
        assert!(!err.contains("Hunter2"), "{extra:?}: {err}");
        assert_untouched(&server);
        assert_untouched(&proxy);
    }
    // The password is never a flag.
    let out = Command::new(BIN)
        .args(["--proxy-password", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN)
        .args(["--to", "b@example.test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .arg("--password")
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "there is no bare password flag");
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for line in [
        "0  the message was accepted",
        "2  usage",
        "3  connection or TLS",
        "4  authentication",
        "5  refused by the server",
    ] {
        assert!(help.contains(line), "{line:?} missing from --help");
    }
}

#[test]
fn refused_recipient_exits_5_and_the_others_get_it() {
    let (server, ca) = server();
    let v = flags(&[
        &["--auth", "CRAM-MD5"],
        AUTH_FLAGS,
        ENVELOPE,
        &["--to", "reject@example.test"],
    ]);
    let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rcpt failed: <reject@example.test>: 550 5.1.1"),
        "{}",
        stderr(&out)
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, ["bob@example.test"]);
}

#[test]
fn all_recipients_refused_exits_5() {
    let (server, ca) = server();
    let v = flags(&[
        AUTH_FLAGS,
        &[
            "--from",
            "alice@example.test",
            "--to",
            "reject@example.test",
        ],
    ]);
    let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("rcpt failed: "), "{}", stderr(&out));
    assert!(server.received().is_empty());
}

#[test]
fn no_auth_on_a_server_that_requires_it_is_refused_at_mail() {
    let (server, ca) = server();
    let out = run(&server, &ca, DEMO_PASSWORD, ENVELOPE);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("mail failed: 530 5.7.0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_ca_exits_3() {
    let (server, _ca) = server();
    let addr = server.addr().to_string();
    let v = flags(&[AUTH_FLAGS, ENVELOPE]);
    let out = Command::new(BIN)
        .args(["--server", &addr, "--timeout", "20"])
        .args(args_of(&v))
        .env(PW_VAR, DEMO_PASSWORD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("tls failed: "), "{}", stderr(&out));
    assert!(server.received().is_empty());
}

#[test]
fn connection_refused_exits_3() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let out = Command::new(BIN)
        .args(["--server", &addr, "--tls", "none", "--timeout", "5"])
        .args(ENVELOPE)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("connect failed: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn data_file_is_sent_as_is_and_bdat_works() {
    let (server, ca) = server();
    let message = b"Subject: from a file\r\n\r\n.leading dot\r\nend\r\n";
    let file = TempFile::new(message);
    let v = flags(&[AUTH_FLAGS, ENVELOPE, &["--data", file.path(), "--bdat"]]);
    let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = flags(&[
        AUTH_FLAGS,
        ENVELOPE,
        &["--data", file.path(), "--pipelining", "off"],
    ]);
    let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].transfer, smtp_demo_server::Transfer::Bdat);
    assert_eq!(got[1].transfer, smtp_demo_server::Transfer::Data);
    for m in got {
        assert_eq!(m.data, message);
    }
}

#[test]
fn demo_mode_sends_through_every_mechanism() {
    let out = Command::new(BIN)
        .args(["--demo", "--demo-port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let every: Vec<&str> = MECHANISMS
        .iter()
        .chain(TOKEN_MECHANISMS.iter())
        .copied()
        .collect();
    assert_eq!(
        text.matches("server received, over TLS, from user demo")
            .count(),
        every.len(),
        "{text}"
    );
    for mech in &every {
        assert!(
            text.contains(&format!("from user demo ({mech})")),
            "{mech}: {text}"
        );
    }
    let err = stderr(&out);
    assert!(
        err.contains("<<< 235 2.7.0"),
        "the transcript is on in the demo: {err}"
    );
    assert!(!err.contains(DEMO_PASSWORD));
}

#[test]
fn demo_mode_with_a_wrong_password_exits_4() {
    let out = demo("SCRAM-SHA-256", Some("wrong"));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("auth failed: 535 5.7.8"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn demo_mode_ntlm_v1_and_v2() {
    for version in ["1", "2"] {
        let out = Command::new(BIN)
            .args([
                "--demo",
                "--demo-port",
                "0",
                "--auth",
                "NTLM",
                "--ntlm-version",
                version,
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "NTLMv{version}: {}",
            stderr(&out)
        );
        assert!(
            stdout(&out).contains("from user demo (NTLM)"),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn clear_text_mechanism_without_tls_exits_4_unless_allowed() {
    let (server, ca) = server();
    let v = flags(&[&["--tls", "none", "--auth", "PLAIN"], AUTH_FLAGS, ENVELOPE]);
    let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("auth failed: PLAIN would send the password in clear"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("--allow-plaintext-auth"),
        "{}",
        stderr(&out)
    );
    assert!(server.received().is_empty());

    let v = flags(&[
        &["--tls", "none", "--auth", "PLAIN", "--allow-plaintext-auth"],
        AUTH_FLAGS,
        ENVELOPE,
    ]);
    let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(!got[0].tls);
    assert_eq!(got[0].mechanism.as_deref(), Some("PLAIN"));
}

#[test]
fn a_mechanism_the_server_lacks_exits_4_naming_what_it_offers() {
    let (server, ca) = server();
    let v = flags(&[&["--auth", "GSSAPI"], AUTH_FLAGS, ENVELOPE]);
    let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("auth failed: the server does not offer GSSAPI (it offers LOGIN"),
        "{err}"
    );
    assert!(server.received().is_empty());
}

/// `smtp-send --demo --auth MECH` with the demo password, or with `password` from the
/// environment when given.
fn demo(mech: &str, password: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["--demo", "--demo-port", "0", "--auth", mech]);
    if let Some(pw) = password {
        cmd.args(["--password-env", PW_VAR]).env(PW_VAR, pw);
    }
    cmd.output().expect("run smtp-send --demo")
}

#[test]
fn demo_mode_digest_md5() {
    let out = demo("DIGEST-MD5", None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("from user demo (DIGEST-MD5)"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    // rspauth comes as a last 334, answered by an empty (masked) line, then 235.
    assert!(err.contains(">>> AUTH DIGEST-MD5"), "{err}");
    assert!(err.contains("<<< 235 2.7.0"), "{err}");
    assert!(!err.contains(DEMO_PASSWORD), "{err}");

    let out = demo("DIGEST-MD5", Some("wrong"));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("auth failed: 535 5.7.8"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn demo_mode_xoauth2_and_oauthbearer_take_the_password_as_the_token() {
    for mech in ["XOAUTH2", "OAUTHBEARER"] {
        let out = demo(mech, None);
        assert_eq!(out.status.code(), Some(0), "{mech}: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("from user demo ({mech})")),
            "{}",
            stdout(&out)
        );
        let err = stderr(&out);
        assert!(err.contains(&format!(">>> AUTH {mech} ")), "{err}");
        assert!(!err.contains(DEMO_PASSWORD), "{err}");
        assert!(!err.contains(&base64(DEMO_PASSWORD.as_bytes())), "{err}");

        // A wrong token: 535, with the server's error JSON (RFC 7628 3.2.2) on the line.
        let out = demo(mech, Some("wrong-token"));
        assert_eq!(out.status.code(), Some(4), "{mech}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("auth failed: 535 5.7.8"), "{err}");
        assert!(err.contains("status"), "the error JSON: {err}");
    }
}

/// Against the project's real Postfix (`cargo xtask servers up`): 127.0.0.1:12527 takes at
/// most ten recipients per transaction. One run of the tool to 35 recipients delivers one
/// copy to each (the sink Maildir gets 35 files with the run's subject) and exits 0.
#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn recipients_past_the_servers_limit_each_get_one_copy() {
    let subject = format!(
        "limit-cli-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--server",
        "127.0.0.1:12527",
        "--tls",
        "none",
        "--timeout",
        "30",
    ])
    .args(["--from", "alice@example.test", "--subject", &subject]);
    for i in 0..35 {
        cmd.args(["--to", &format!("cli{i:02}@example.test")]);
    }
    let out = cmd.output().expect("run smtp-send");
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = PathBuf::from("/var/tmp/smtp-auth-it/maildir/sink/new");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let count = loop {
        let count = std::fs::read_dir(&dir)
            .expect("sink Maildir")
            .flatten()
            .filter(|e| {
                std::fs::read(e.path())
                    .is_ok_and(|b| b.windows(subject.len()).any(|w| w == subject.as_bytes()))
            })
            .count();
        if count >= 35 || std::time::Instant::now() > deadline {
            break count;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(count, 35, "one copy per recipient");
}

#[test]
fn load_mode_sends_count_messages_over_pooled_authenticated_connections() {
    let (server, ca) = server();
    let v = flags(&[
        &["--auth", "PLAIN", "--count", "30", "--concurrency", "3"],
        AUTH_FLAGS,
        ENVELOPE,
    ]);
    let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(line.starts_with("30 messages in "), "{line}");
    assert!(
        line.contains("msg/s): accepted 30, refused 0, not sent 0, unknown 0"),
        "{line}"
    );
    // Piped: no progress bar on stderr.
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let got = server.received();
    assert_eq!(got.len(), 30);
    let mut ids: Vec<String> = got
        .iter()
        .inspect(|m| assert_eq!(m.authenticated.as_deref(), Some(DEMO_USER)))
        .map(|m| {
            let text = String::from_utf8_lossy(&m.data);
            let at = text.find("Message-ID: ").expect("a Message-ID");
            text[at..].lines().next().unwrap_or_default().to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "each message has its own Message-ID");
}

#[test]
fn load_mode_flags_are_checked_before_connecting() {
    let (server, ca) = server();
    for bad in [
        &["--count", "0"][..],
        &["--count", "2000000"],
        &["--count", "5", "--concurrency", "0"],
        &["--concurrency", "4"],
    ] {
        let v = flags(&[bad, ENVELOPE]);
        let out = run(&server, &ca, DEMO_PASSWORD, &args_of(&v));
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    assert!(server.received().is_empty());
}

#[test]
fn load_mode_with_wrong_credentials_exits_3_with_nothing_sent() {
    let (server, ca) = server();
    let v = flags(&[&["--auth", "PLAIN", "--count", "5"], AUTH_FLAGS, ENVELOPE]);
    let out = run(&server, &ca, "wrong password", &args_of(&v));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("5 not sent"), "{}", stderr(&out));
    assert!(server.received().is_empty());
}

/// The README's load-mode example, as written, against the project's real Postfix.
#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_load_mode_example_runs() {
    let out = Command::new(BIN)
        .args([
            "--server",
            "127.0.0.1:12525",
            "--tls",
            "none",
            "--from",
            "alice@example.test",
        ])
        .args([
            "--to",
            "sink@example.test",
            "--count",
            "1000",
            "--concurrency",
            "8",
        ])
        .output()
        .expect("run smtp-send");
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(line.starts_with("1000 messages in "), "{line}");
    assert!(
        line.contains("accepted 1000, refused 0, not sent 0, unknown 0"),
        "{line}"
    );
}

/// `--auth GSSAPI` against the Kerberos realm's Postfix with Cyrus GSSAPI (`cargo xtask
/// servers krb-up`, also started by `servers up`): with alice's ticket the message is
/// delivered with no password given; with no ticket cache it exits 4 saying to run kinit,
/// before any AUTH is sent.
#[cfg(feature = "gssapi")]
#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn auth_gssapi_uses_the_ticket_cache() {
    const KRB: &str = "/var/tmp/smtp-auth-it-krb";
    let krb5_config = format!("{KRB}/krb5.conf");
    let cache = TempFile::new(b"");
    let cache_name = format!("FILE:{}", cache.path());
    let _ = std::fs::remove_file(cache.path());
    let kinit = Command::new("kinit")
        .env("KRB5_CONFIG", &krb5_config)
        .env("KRB5CCNAME", &cache_name)
        .args(["-k", "-t", &format!("{KRB}/keytabs/alice.keytab")])
        .arg("alice@SMTP-AUTH.TEST")
        .output()
        .expect("run kinit");
    assert!(kinit.status.success(), "{}", stderr(&kinit));

    // Short and without spaces: the composed message folds a long Subject.
    let subject = format!(
        "gssapi-cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let send = |ccache: &str| {
        Command::new(BIN)
            .env("KRB5_CONFIG", &krb5_config)
            .env("KRB5CCNAME", ccache)
            // The acceptor is smtp@localhost: the server is named as the KDC knows it.
            .args([
                "--server",
                "localhost:12530",
                "--tls",
                "none",
                "--timeout",
                "30",
            ])
            .args(["--auth", "GSSAPI", "--user", "alice", "--transcript"])
            .args(["--from", "alice@example.test", "--to", "sink@example.test"])
            .args(["--subject", &subject])
            .output()
            .expect("run smtp-send")
    };

    let out = send(&cache_name);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = PathBuf::from(format!("{KRB}/maildir/sink/new"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let delivered = loop {
        let found = std::fs::read_dir(&dir)
            .expect("the Kerberos sink Maildir")
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .find(|b| b.windows(subject.len()).any(|w| w == subject.as_bytes()));
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let text = String::from_utf8_lossy(&delivered);
    assert!(text.contains("(Authenticated sender: alice)"), "{text}");

    let missing = format!("FILE:{}.none", cache.path());
    let out = send(&missing);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("auth failed:") && err.contains("run kinit"),
        "{err}"
    );
    // The transcript is on: EHLO shows, AUTH never went out.
    assert!(err.contains(">>> EHLO"), "{err}");
    assert!(!err.contains(">>> AUTH"), "an AUTH line went out: {err}");
}
