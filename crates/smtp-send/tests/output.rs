//! The output flags through the built binary against the demo server: `--json` read back
//! with serde_json, the transcript's colours (on only when forced, `NO_COLOR` winning) and
//! `--transcript-time`, with AUTH masked in every mode; `--generate`'s man page and
//! completions.

mod support;

use serde_json::Value;
use smtp_demo_server::{DEMO_PASSWORD, DEMO_USER};
use support::*;

fn json(out: &std::process::Output) -> Value {
    let text = stdout(out);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The stages a run with STARTTLS, AUTH and one message goes through, and `total`.
const STAGES: &[&str] = &[
    "connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt", "data", "quit",
];

fn assert_reply(v: &Value, code: u64, enhanced: &str, text: &str) {
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["enhanced_code"], enhanced, "{v}");
    let lines = v["lines"].as_array().expect("lines");
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains(text))),
        "{text:?} in {v}"
    );
}

#[test]
fn json_describes_a_successful_run() {
    let (server, dir) = server();
    let out = run(
        &server,
        &dir,
        DEMO_PASSWORD,
        &flags(&[
            &["--json", "--auth", "SCRAM-SHA-256", "--subject", "json"],
            AUTH_FLAGS,
            ENVELOPE,
            &["--to", "carol@example.test"],
        ]),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["server"]["host"], "127.0.0.1");
    assert_eq!(v["server"]["port"], server.port());
    assert_eq!(v["server"]["address"], server.addr().to_string());
    assert_eq!(v["server"]["banner"]["code"], 220);
    assert_eq!(v["tls"]["version"], "TLSv1.3");
    assert!(
        v["tls"]["cipher"]
            .as_str()
            .is_some_and(|c| c.starts_with("TLS13_")),
        "{v}"
    );
    assert_eq!(v["auth"]["mechanism"], "SCRAM-SHA-256");
    assert_eq!(v["auth"]["user"], DEMO_USER);
    assert_eq!(v["from"], "alice@example.test");
    let rcpts = v["recipients"].as_array().expect("recipients");
    assert_eq!(rcpts.len(), 2);
    for (r, addr) in rcpts.iter().zip(["bob@example.test", "carol@example.test"]) {
        assert_eq!(r["address"], addr);
        assert_eq!(r["status"], "accepted");
        assert_reply(&r["reply"], 250, "2.1.5", "Recipient OK");
        assert_eq!(r["data_reply"], Value::Null);
    }
    assert_reply(&v["reply"], 250, "2.0.0", "accepted");
    assert_eq!(v["failure"], Value::Null);
    assert_eq!(v["stopped_after"], Value::Null);
    let got = server.received();
    assert_eq!(v["message_size"], got[0].data.len());
    let timings = v["timings_ms"].as_object().expect("timings_ms");
    let total = timings["total"].as_f64().expect("total");
    assert!(total > 0.0, "{v}");
    for stage in STAGES {
        let ms = timings
            .get(*stage)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{stage} missing: {v}"));
        // Each stage is a part of the run.
        assert!((0.0..=total).contains(&ms), "{stage}: {ms} of {total}");
    }
    assert_eq!(timings.len(), STAGES.len() + 1, "{v}");
}

#[test]
fn json_describes_a_wrong_password_with_the_stage_and_the_reply_and_exits_4() {
    let (server, dir) = server();
    let out = run(
        &server,
        &dir,
        "not-the-password",
        &flags(&[&["--json", "--auth", "PLAIN"], AUTH_FLAGS, ENVELOPE]),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // The stderr line is unchanged.
    assert!(
        stderr(&out).contains("auth failed: 535 5.7.8 Authentication credentials invalid"),
        "{}",
        stderr(&out)
    );
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 4);
    assert_eq!(v["failure"]["stage"], "auth");
    assert_reply(
        &v["failure"]["reply"],
        535,
        "5.7.8",
        "Authentication credentials invalid",
    );
    assert!(v["failure"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("auth failed: 535")));
    // The one asked for: AUTH failed with it.
    assert_eq!(v["auth"]["mechanism"], "PLAIN");
    assert_eq!(v["tls"]["version"], "TLSv1.3");
    assert_eq!(v["recipients"][0]["status"], "not_sent");
    assert_eq!(v["reply"], Value::Null);
    let timings = v["timings_ms"].as_object().expect("timings_ms");
    assert!(
        timings.contains_key("auth") && !timings.contains_key("mail"),
        "{v}"
    );
    let text = stdout(&out);
    assert!(!text.contains("not-the-password"), "{text}");
    assert!(server.received().is_empty());
}

#[test]
fn json_with_quit_after_names_the_stage_it_stopped_after_and_sends_no_message() {
    let (server, dir) = server();
    let out = run(
        &server,
        &dir,
        DEMO_PASSWORD,
        &flags(&[
            &["--json", "--auth", "PLAIN", "--quit-after", "auth"],
            AUTH_FLAGS,
            ENVELOPE,
        ]),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["stopped_after"], "auth", "{v}");
    assert_eq!(v["failure"], Value::Null, "{v}");
    assert_eq!(v["auth"]["mechanism"], "PLAIN", "{v}");
    assert_eq!(v["tls"]["version"], "TLSv1.3", "{v}");
    assert_eq!(v["reply"], Value::Null, "{v}");
    let timings = v["timings_ms"].as_object().expect("timings_ms");
    assert!(
        timings.contains_key("auth") && !timings.contains_key("mail"),
        "{v}"
    );
    assert!(server.received().is_empty());
}

#[test]
fn json_names_a_refused_recipient_and_the_stage() {
    let (server, dir) = server();
    let out = run(
        &server,
        &dir,
        DEMO_PASSWORD,
        &flags(&[
            &["--json"],
            AUTH_FLAGS,
            ENVELOPE,
            &["--to", "reject@example.test"],
        ]),
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["failure"]["stage"], "rcpt");
    assert_eq!(v["failure"]["reply"]["code"], 550);
    let rcpts = v["recipients"].as_array().unwrap();
    assert_eq!(rcpts[0]["status"], "accepted");
    assert_eq!(rcpts[1]["address"], "reject@example.test");
    assert_eq!(rcpts[1]["status"], "refused");
    assert_eq!(rcpts[1]["reply"]["code"], 550);
    // The message still went to the other one.
    assert_eq!(v["reply"]["code"], 250);
    assert_eq!(server.received().len(), 1);
}

#[test]
fn json_on_bad_input_and_on_a_refused_connection() {
    let (l, addr) = untouched_listener();
    let out = std::process::Command::new(BIN)
        .args(["--server", &addr, "--tls", "none", "--json"])
        .args(ENVELOPE)
        .args(["--header", "no colon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["exit_code"], 2);
    assert_eq!(v["failure"]["stage"], "input");
    assert!(v["failure"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("--header")));
    assert_untouched(&l);

    // A --ca-file that holds no certificate is found before connecting too.
    let dir = TempDir::new();
    let not_pem = dir.file("ca.pem", b"not a certificate\n");
    let out = std::process::Command::new(BIN)
        .args(["--server", &addr, "--json", "--ca-file", &not_pem])
        .args(ENVELOPE)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["failure"]["stage"], "input");
    assert!(v["failure"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("--ca-file")));
    assert_untouched(&l);
    drop(l);

    let out = std::process::Command::new(BIN)
        .args([
            "--server",
            &addr,
            "--tls",
            "none",
            "--json",
            "--timeout",
            "5",
        ])
        .args(ENVELOPE)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["failure"]["stage"], "connect");
    assert_eq!(v["server"]["address"], Value::Null);
    assert_eq!(v["tls"], Value::Null);
    assert!(v["timings_ms"]["connect"].as_f64().is_some(), "{v}");
}

const ESC: char = '\u{1b}';

/// Runs a PLAIN then a LOGIN send with the transcript and `extra` flags and `env`; each
/// run's stderr. Every form of the password is absent from both streams.
fn transcripts(extra: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let (server, dir) = server();
    ["PLAIN", "LOGIN"]
        .iter()
        .map(|mech| {
            let mut cmd = command(&server, &dir, DEMO_PASSWORD);
            cmd.args(flags(&[&["--auth", mech], AUTH_FLAGS, ENVELOPE, extra]))
                .envs(env.iter().copied());
            let out = cmd.output().expect("run smtp-send");
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let err = stderr(&out);
            let plain = format!("\0{DEMO_USER}\0{DEMO_PASSWORD}");
            for secret in [
                DEMO_PASSWORD.to_owned(),
                base64(DEMO_PASSWORD.as_bytes()),
                base64(plain.as_bytes()),
            ] {
                assert!(!err.contains(&secret), "{mech} {extra:?} {env:?}: {err}");
                assert!(!stdout(&out).contains(&secret));
            }
            assert!(err.contains("****"), "masked, not dropped: {err}");
            err
        })
        .collect()
}

#[test]
fn piped_transcript_has_no_escape_codes() {
    for err in transcripts(&["--transcript"], &[]) {
        assert!(!err.contains(ESC), "{err:?}");
        assert!(
            err.contains("\n>>> MAIL FROM:<alice@example.test>"),
            "{err}"
        );
        assert!(err.contains("\n<<< 235 2.7.0"), "{err}");
    }
}

#[test]
fn forced_colour_tells_client_server_and_masked_lines_apart_and_no_color_wins() {
    let errs = transcripts(&["--transcript"], &[("CLICOLOR_FORCE", "1")]);
    for err in &errs {
        assert!(err.contains(ESC), "{err:?}");
        let style_of = |needle: &str| {
            let line = err
                .lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in {err}"));
            line[..line.find(needle).unwrap()].to_owned()
        };
        let sent = style_of(">>> MAIL FROM");
        let received = style_of("<<< 250 2.1.0");
        let masked = style_of("****");
        assert!(sent.starts_with(ESC), "{sent:?}");
        assert!(received.starts_with(ESC), "{received:?}");
        assert!(masked.starts_with(ESC), "{masked:?}");
        assert_ne!(sent, received);
        assert_ne!(sent, masked);
        assert_ne!(received, masked);
    }
    for err in transcripts(
        &["--transcript"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    ) {
        assert!(!err.contains(ESC), "{err:?}");
    }
}

/// `[   0.012s] ` at the start of `line`: the seconds, three decimals.
fn time_prefix(line: &str) -> Option<f64> {
    let rest = line.strip_prefix('[')?;
    let (secs, after) = rest.split_once("s] ")?;
    let (whole, frac) = secs.trim_start().split_once('.')?;
    let ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.len() == 3
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (after.starts_with(">>> ") || after.starts_with("<<< "));
    ok.then(|| secs.trim().parse().ok()).flatten()
}

#[test]
fn transcript_time_puts_the_seconds_before_every_line() {
    // --transcript-time alone turns the transcript on.
    for err in transcripts(&["--transcript-time"], &[]) {
        let times: Vec<f64> = err
            .lines()
            .map(|l| time_prefix(l).unwrap_or_else(|| panic!("no time on {l:?}")))
            .collect();
        assert!(times.len() > 10, "{err}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "in order: {err}");
        assert!(err.contains("s] >>> AUTH "), "{err}");
    }
    // With colour forced: the same lines, styled.
    for err in transcripts(&["--transcript-time"], &[("CLICOLOR_FORCE", "1")]) {
        assert!(err.contains(ESC), "{err:?}");
        let plain: String = strip_escapes(&err);
        assert!(plain.lines().all(|l| time_prefix(l).is_some()), "{plain}");
    }
}

/// The text without its ANSI escape sequences (`ESC [ ... m`).
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == ESC {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_man_page_and_the_completions_know_the_new_flags() {
    let new_flags = [
        "--header",
        "--body",
        "--attach",
        "--attach-type",
        "--json",
        "--transcript-time",
    ];
    let generate = |what: &str| {
        let out = std::process::Command::new(BIN)
            .args(["--generate", what])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        stdout(&out)
    };
    let man = generate("man");
    assert!(man.contains(".TH smtp-send 1"), "{man}");
    let bash = generate("bash");
    let fish = generate("fish");
    for flag in new_flags {
        // roff writes each dash as \- and the flag in bold, with its own entry.
        let roff = format!(".TP\n\\fB{}\\fR", flag.replace('-', "\\-"));
        assert!(man.contains(&roff), "man: {roff} missing");
        assert!(
            bash.split([' ', '"', '\n']).any(|w| w == flag),
            "bash: {flag} missing"
        );
        assert!(
            fish.contains(&format!("-l {} ", &flag[2..])),
            "fish: {flag} missing"
        );
    }
    // Values the completion offers.
    assert!(
        bash.contains("man bash zsh fish elvish powershell"),
        "{bash}"
    );
    // --generate stands alone.
    let out = std::process::Command::new(BIN)
        .args(["--generate", "bash", "--server", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
