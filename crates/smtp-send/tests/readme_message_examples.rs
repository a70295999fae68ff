//! The README's examples of the composition and output flags, run as written (with the
//! README's `export` lines; a header added to find the delivered message), against the
//! real servers (`cargo xtask servers up`); the `--generate` example needs none.

mod support;

use mail_parser::{MessageParser, MimeHeaders};
use support::*;

/// The README's exports, then `command`, then `extra` after it.
fn script(command: &str, extra: &str) -> String {
    format!(
        "set -e\n{}\n{command}{extra}\n",
        readme_exports().join("\n")
    )
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_composition_example_delivers_its_headers_body_and_attachments() {
    let command = readme_command("--attach report.pdf");
    let dir = TempDir::new();
    let notes = "Figures for the quarter attached.\n";
    dir.file("notes.txt", notes.as_bytes());
    let pdf: Vec<u8> = b"%PDF-1.4\n"
        .iter()
        .copied()
        .chain((0..4096u32).map(|i| (i % 256) as u8))
        .collect();
    dir.file("report.pdf", &pdf);
    dir.file("q1.data", b"month,total\njan,1\n");
    dir.file("q2.data", b"month,total\napr,2\n");
    let marker = marker("readme-compose");
    let script = script(&command, &format!(" --header 'X-Readme-Marker: {marker}'"));
    let out = run_script("sh", &script, dir.path());
    assert!(out.status.success(), "{script}\n{}", stderr(&out));

    let raw = delivered_with(&marker);
    let m = MessageParser::default().parse(&raw).expect("a message");
    assert_eq!(m.subject(), Some("Quarterly figures"));
    let reply_to = m.reply_to().and_then(|a| a.first()).expect("a Reply-To");
    assert_eq!(reply_to.address(), Some("bob@example.test"));
    assert_eq!(m.header("X-Priority").and_then(|v| v.as_text()), Some("3"));
    assert_eq!(
        m.body_text(0).map(|b| b.replace("\r\n", "\n")).as_deref(),
        Some(notes)
    );
    let expected: [(&str, &str, &[u8]); 3] = [
        ("report.pdf", "application/pdf", &pdf),
        ("q1.data", "text/csv", b"month,total\njan,1\n"),
        ("q2.data", "text/csv", b"month,total\napr,2\n"),
    ];
    assert_eq!(m.attachment_count(), expected.len());
    for (i, (name, ctype, bytes)) in expected.iter().enumerate() {
        let a = m.attachment(i as u32).unwrap();
        assert_eq!(a.attachment_name(), Some(*name));
        let ct = a.content_type().unwrap();
        assert_eq!(
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")),
            *ctype
        );
        assert_eq!(a.contents(), *bytes, "{name}");
    }
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_transcript_time_example_times_every_line_and_masks_auth() {
    let command = readme_command("--transcript-time");
    let dir = TempDir::new();
    let script = script(&command, "");
    let out = run_script("sh", &script, dir.path());
    let err = stderr(&out);
    assert!(out.status.success(), "{script}\n{err}");
    assert!(!err.contains('\u{1b}'), "piped: plain text: {err:?}");
    for line in err.lines() {
        let rest = line
            .strip_prefix('[')
            .and_then(|l| l.split_once("s] "))
            .unwrap_or_else(|| panic!("no time on {line:?}"));
        assert!(rest.0.trim().parse::<f64>().is_ok(), "{line:?}");
        assert!(
            rest.1.starts_with(">>> ") || rest.1.starts_with("<<< "),
            "{line:?}"
        );
    }
    assert!(err.contains("s] >>> AUTH LOGIN\n"), "{err}");
    assert!(err.contains("s] >>> ****\n"), "{err}");
    assert!(!err.contains("Alice-Secret-1"), "{err}");
    assert!(!err.contains(&base64(b"Alice-Secret-1")), "{err}");
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_json_example_prints_what_the_readme_shows() {
    let command = readme_command("--json");
    let dir = TempDir::new();
    let script = script(&command, "");
    let out = run_script("sh", &script, dir.path());
    // One recipient refused: exit 5, as the README says.
    assert_eq!(out.status.code(), Some(5), "{script}\n{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 5);
    assert_eq!(v["server"]["port"], 12587);
    assert_eq!(v["server"]["banner"]["code"], 220);
    assert_eq!(v["tls"]["version"], "TLSv1.3");
    assert_eq!(v["auth"]["mechanism"], "SCRAM-SHA-256");
    assert_eq!(v["recipients"][0]["status"], "accepted");
    assert_eq!(v["recipients"][0]["reply"]["enhanced_code"], "2.1.5");
    assert_eq!(v["recipients"][1]["address"], "refused@example.test");
    assert_eq!(v["recipients"][1]["status"], "refused");
    assert_eq!(v["recipients"][1]["reply"]["code"], 550);
    assert_eq!(v["reply"]["code"], 250);
    assert_eq!(v["failure"]["stage"], "rcpt");
    assert_eq!(v["failure"]["reply"]["code"], 550);
    assert_eq!(v["stopped_after"], serde_json::Value::Null);
    let timings = v["timings_ms"].as_object().expect("timings_ms");
    for stage in [
        "connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt", "data", "quit", "total",
    ] {
        assert!(timings[stage].as_f64().is_some(), "{stage}: {v}");
    }
}

#[test]
fn the_readme_generate_example_completes_the_new_flags() {
    let command = readme_command("--generate bash");
    let dir = TempDir::new();
    // The example, then what its comment says to do: complete `--att`.
    let script = format!(
        "set -e\n{command}\n\
         f=$(complete -p smtp-send | sed 's/.* -F \\([^ ]*\\) .*/\\1/')\n\
         COMP_WORDS=(smtp-send --att); COMP_CWORD=1\n\
         \"$f\" smtp-send --att smtp-send\n\
         echo \"${{COMPREPLY[@]}}\"\n"
    );
    let out = run_script("bash", &script, dir.path());
    assert!(out.status.success(), "{script}\n{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "--attach --attach-type", "{script}");
    assert!(dir.path().join("smtp-send.bash").is_file());
}
