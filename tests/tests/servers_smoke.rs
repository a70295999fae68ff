//! Smoke tests of the real servers of `cargo xtask servers up`, with only std sockets:
//! if these fail, the set-up is broken, not the client crates.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use interop_tests::{
    greeting, require_servers, Listener, TlsMode, IMAP_ADDR, MESSAGE_SIZE_LIMIT, SERVER_HOSTNAME,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends EHLO and returns the reply lines (without CRLF).
fn ehlo(listener: Listener) -> Vec<String> {
    let mut stream = TcpStream::connect_timeout(&listener.addr(), TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{listener:?} greeting {line:?}");
    stream.write_all(b"EHLO client.example.test\r\n").unwrap();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.ends_with("\r\n"),
            "{listener:?}: truncated line {line:?}"
        );
        let line = line.trim_end().to_string();
        let last = line.starts_with("250 ");
        assert!(last || line.starts_with("250-"), "{listener:?}: {line:?}");
        lines.push(line);
        if last {
            break;
        }
    }
    stream.write_all(b"QUIT\r\n").unwrap();
    lines
}

fn auth_line(lines: &[String]) -> Option<&str> {
    lines.iter().find_map(|l| l[4..].strip_prefix("AUTH "))
}

fn plaintext_listeners() -> impl Iterator<Item = Listener> {
    Listener::ALL
        .into_iter()
        .filter(|l| l.tls() != TlsMode::Implicit && l.is_configured())
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn plaintext_listeners_greet_with_220() {
    require_servers();
    for l in plaintext_listeners() {
        let line = greeting(l.addr(), TIMEOUT).unwrap();
        assert!(
            line.starts_with(&format!("220 {SERVER_HOSTNAME} ESMTP")),
            "{l:?}: {line:?}"
        );
    }
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn ehlo_lists_each_backends_mechanisms_where_auth_is_allowed() {
    require_servers();
    for l in plaintext_listeners() {
        let lines = ehlo(l);
        assert_eq!(lines[0], format!("250-{SERVER_HOSTNAME}"), "{l:?}");
        assert!(
            lines.iter().any(|x| x[4..] == *"STARTTLS"),
            "{l:?}: {lines:?}"
        );
        match l.tls() {
            TlsMode::StartTlsOffered => {
                let auth =
                    auth_line(&lines).unwrap_or_else(|| panic!("{l:?}: no AUTH in {lines:?}"));
                let offered: Vec<&str> = auth.split(' ').collect();
                assert_eq!(offered, l.mechanisms(), "{l:?}");
            }
            // AUTH only after STARTTLS there.
            _ => assert_eq!(auth_line(&lines), None, "{l:?}: {lines:?}"),
        }
    }
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn only_the_cyrus_listeners_offer_ntlm() {
    require_servers();
    let cyrus = ehlo(Listener::CyrusPlain);
    assert!(auth_line(&cyrus).unwrap().split(' ').any(|m| m == "NTLM"));
    let dovecot = ehlo(Listener::DovecotPlain);
    assert!(!auth_line(&dovecot).unwrap().split(' ').any(|m| m == "NTLM"));
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn ehlo_advertises_size_smtputf8_and_pipelining() {
    require_servers();
    let lines = ehlo(Listener::DovecotPlain);
    let has = |k: &str| lines.iter().any(|l| l[4..] == *k);
    assert!(has(&format!("SIZE {MESSAGE_SIZE_LIMIT}")), "{lines:?}");
    assert!(has("SMTPUTF8"), "{lines:?}");
    assert!(has("PIPELINING"), "{lines:?}");
    assert!(has("8BITMIME"), "{lines:?}");
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn implicit_tls_listeners_accept_tcp_and_send_nothing_in_clear() {
    require_servers();
    for l in Listener::ALL
        .into_iter()
        .filter(|l| l.tls() == TlsMode::Implicit)
    {
        let stream = TcpStream::connect_timeout(&l.addr(), TIMEOUT).unwrap();
        // A TLS server waits for the ClientHello: a plain-text greeting would be a bug.
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 16];
        let read = std::io::Read::read(&mut &stream, &mut buf);
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut),
            "{l:?}: expected silence, got {read:?}"
        );
    }
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn imap_greets_and_offers_starttls_and_sasl() {
    require_servers();
    let line = greeting(IMAP_ADDR, TIMEOUT).unwrap();
    assert!(line.starts_with("* OK [CAPABILITY IMAP4rev1"), "{line:?}");
    assert!(line.contains(" STARTTLS "), "{line:?}");
    assert!(line.contains(" AUTH=PLAIN "), "{line:?}");
    assert!(line.contains(" SASL-IR "), "{line:?}");
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn ipv6_listener_answers_when_configured() {
    require_servers();
    if !Listener::DovecotPlainV6.is_configured() {
        eprintln!("no IPv6 loopback here: [::1]:12525 not configured");
        return;
    }
    let line = greeting(Listener::DovecotPlainV6.addr(), TIMEOUT).unwrap();
    assert!(line.starts_with("220 "), "{line:?}");
}

/// Reads one (possibly multi-line) reply and returns its last line.
fn reply(reader: &mut impl BufRead) -> String {
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.ends_with("\r\n"), "truncated reply line {line:?}");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.trim_end().to_string();
        }
    }
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn delivery_is_byte_for_byte_and_refused_recipient_gets_550() {
    use interop_tests::{
        as_delivered, delivered_to, strip_delivery_headers, unique_marker, wait_for_message,
        REFUSED_RECIPIENT,
    };
    require_servers();
    let marker = unique_marker("smoke");
    let body = format!(
        "From: <alice@example.test>\r\nTo: <someone@example.test>\r\n\
         Message-ID: {marker}\r\nSubject: smoke\r\n\r\nline one\r\n\
         .leading dot, stuffed on the wire\r\n\r\nlast line\r\n"
    );
    let mut stream = TcpStream::connect_timeout(&Listener::DovecotPlain.addr(), TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut step = |command: &str, expected: &str| {
        if !command.is_empty() {
            stream.write_all(command.as_bytes()).unwrap();
        }
        let line = reply(&mut reader);
        assert!(line.starts_with(expected), "{command:?} -> {line:?}");
        line
    };
    step("", "220 ");
    step("EHLO client.example.test\r\n", "250 ");
    step("MAIL FROM:<alice@example.test>\r\n", "250 ");
    step("RCPT TO:<someone@example.test>\r\n", "250 ");
    let refused = step(&format!("RCPT TO:<{REFUSED_RECIPIENT}>\r\n"), "550 ");
    assert!(refused.starts_with("550 5.1.1"), "{refused:?}");
    step("DATA\r\n", "354 ");
    let stuffed = body.replace("\r\n.", "\r\n..");
    step(&format!("{stuffed}.\r\n"), "250 ");
    step("QUIT\r\n", "221 ");

    let delivered = wait_for_message(&marker).unwrap();
    assert_eq!(delivered_to(&delivered), Some("someone@example.test"));
    let rest = strip_delivery_headers(&delivered).unwrap();
    assert_eq!(
        String::from_utf8_lossy(rest),
        String::from_utf8_lossy(&as_delivered(body.as_bytes()))
    );
}
