//! `sasl-mechs` knows nothing of SMTP: the very mechanism objects smtp-auth drives through
//! `AUTH` / `334` / `235` authenticate to Dovecot's IMAP server (`cargo xtask servers up`,
//! 127.0.0.1:12143) through `AUTHENTICATE` / `+` / `OK` (RFC 9051 6.2.2, SASL-IR RFC 4959).
//!
//! The IMAP driver below is the whole of it: a tagged command, base64 lines, `*` to cancel,
//! the tagged `OK` (then [`Mechanism::finish`]) or `NO`. It follows the contract in
//! `sasl_mechs::Mechanism`'s documentation, nothing else.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use interop_tests::{
    require_servers, tls_client_config, SaslBackend, User, IMAP_ADDR, SERVER_NAME, USERS,
};
use sasl_mechs::{client_mechanism, ClientOptions, Credentials, Mechanism};

/// A byte stream: TCP, or TLS over TCP after STARTTLS.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// Longest server line accepted (the tests' own bound).
const MAX_LINE: usize = 64 * 1024;

/// Most `+` continuations answered before cancelling.
const MAX_ROUNDS: usize = 10;

struct Imap {
    stream: Box<dyn Stream>,
    tag: u32,
    /// The server's capabilities, from the greeting or a CAPABILITY command.
    capabilities: Vec<String>,
}

/// How an AUTHENTICATE ended.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Tagged `OK`, and the mechanism accepted the end of the exchange.
    Ok,
    /// Tagged `NO` (the text after the tag).
    No(String),
}

impl Imap {
    fn connect() -> io::Result<Imap> {
        let tcp = TcpStream::connect_timeout(&IMAP_ADDR, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(15)))?;
        let mut imap = Imap {
            stream: Box::new(tcp),
            tag: 0,
            capabilities: Vec::new(),
        };
        let greeting = imap.read_line()?;
        if !greeting.starts_with("* OK") {
            return Err(other(format!("greeting {greeting:?}")));
        }
        imap.capability()?;
        Ok(imap)
    }

    /// STARTTLS, certificate checked against the test CA for `localhost`.
    fn starttls(mut self) -> io::Result<Imap> {
        let tag = self.next_tag();
        self.write_line(&format!("{tag} STARTTLS"))?;
        let reply = self.read_tagged(&tag)?;
        if !reply.starts_with("OK") {
            return Err(other(format!("STARTTLS: {reply}")));
        }
        let name = rustls_pki_types::ServerName::try_from(SERVER_NAME)
            .map_err(|e| other(e.to_string()))?;
        let conn = rustls::ClientConnection::new(tls_client_config(), name)
            .map_err(|e| other(e.to_string()))?;
        let tls = rustls::StreamOwned::new(conn, self.stream);
        let mut imap = Imap {
            stream: Box::new(tls),
            tag: self.tag,
            capabilities: Vec::new(),
        };
        imap.capability()?;
        Ok(imap)
    }

    fn capability(&mut self) -> io::Result<()> {
        let tag = self.next_tag();
        self.write_line(&format!("{tag} CAPABILITY"))?;
        loop {
            let line = self.read_line()?;
            if let Some(caps) = line.strip_prefix("* CAPABILITY ") {
                self.capabilities = caps.split(' ').map(str::to_ascii_uppercase).collect();
            } else if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return if rest.starts_with("OK") {
                    Ok(())
                } else {
                    Err(other(format!("CAPABILITY: {rest}")))
                };
            }
        }
    }

    fn has(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("a{}", self.tag)
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.stream.write_all(line.as_bytes())?;
        self.stream.write_all(b"\r\n")?;
        self.stream.flush()
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() > MAX_LINE {
                return Err(other("line too long".into()));
            }
            if self.stream.read(&mut byte)? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            line.push(byte[0]);
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|e| other(e.to_string()))
    }

    /// Reads until the tagged reply; returns its text after the tag.
    fn read_tagged(&mut self, tag: &str) -> io::Result<String> {
        loop {
            let line = self.read_line()?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return Ok(rest.to_owned());
            }
        }
    }

    /// `AUTHENTICATE` with `mech`; the initial response rides on the command when the
    /// server has SASL-IR and `use_sasl_ir` (an empty one is `=`).
    fn authenticate(
        &mut self,
        mut mech: Box<dyn Mechanism>,
        use_sasl_ir: bool,
    ) -> io::Result<Verdict> {
        let tag = self.next_tag();
        let name = mech.name();
        let mut command = format!("{tag} AUTHENTICATE {name}");
        if use_sasl_ir && self.has("SASL-IR") && mech.has_initial_response() {
            if let Some(ir) = mech.initial_response().map_err(|e| other(e.to_string()))? {
                command.push(' ');
                if ir.is_empty() {
                    command.push('=');
                } else {
                    command.push_str(&STANDARD.encode(&ir[..]));
                }
            }
        }
        self.write_line(&command)?;
        let mut rounds = 0;
        loop {
            let line = self.read_line()?;
            if let Some(text) = line.strip_prefix('+') {
                rounds += 1;
                let text = text.strip_prefix(' ').unwrap_or(text);
                let response = if rounds > MAX_ROUNDS {
                    Err("too many challenges".to_owned())
                } else {
                    STANDARD
                        .decode(text)
                        .map_err(|e| format!("challenge not base64: {e}"))
                        .and_then(|c| mech.respond(&c).map_err(|e| e.to_string()))
                };
                match response {
                    Ok(response) => self.write_line(&STANDARD.encode(&response[..]))?,
                    Err(problem) => {
                        self.write_line("*")?;
                        let after = self.read_tagged(&tag)?;
                        return Err(other(format!("{name}: {problem}; cancelled: {after}")));
                    }
                }
            } else if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return if rest.starts_with("OK") {
                    mech.finish(None)
                        .map_err(|e| other(format!("{name}: OK but {e}")))?;
                    Ok(Verdict::Ok)
                } else {
                    Ok(Verdict::No(rest.to_owned()))
                };
            }
            // Untagged data (`* CAPABILITY ...`): not part of the exchange.
        }
    }
}

fn other(message: String) -> io::Error {
    io::Error::other(message)
}

/// The mechanism smtp-auth would use, built the same way, only DIGEST-MD5's digest-uri
/// names the `imap` service.
fn mechanism(name: &str, user: &User, secret: &str) -> Box<dyn Mechanism> {
    let creds = if matches!(name, "OAUTHBEARER" | "XOAUTH2") {
        Credentials::with_token(user.login, secret)
    } else {
        Credentials::new(user.login, secret)
    }
    .expect("valid credentials");
    let mut options = ClientOptions::default();
    options.digest_uri_service = "imap".to_owned();
    client_mechanism(name, &creds, &options).expect("a mechanism sasl-mechs implements")
}

/// Wrong password (`NO`), then the right one on the same connection (`OK`).
fn wrong_then_right(imap: &mut Imap, name: &str, user: &User, sasl_ir: bool) -> Result<(), String> {
    let wrong = format!("{}-wrong", user.password);
    match imap.authenticate(mechanism(name, user, &wrong), sasl_ir) {
        Ok(Verdict::No(text)) if text.contains("AUTHENTICATIONFAILED") => {}
        other => return Err(format!("wrong password: expected NO, got {other:?}")),
    }
    match imap.authenticate(mechanism(name, user, user.password), sasl_ir) {
        Ok(Verdict::Ok) => Ok(()),
        other => Err(format!("right password: expected OK, got {other:?}")),
    }
}

/// The table rows (with and without SASL-IR) of one mechanism, each with its failures.
fn mechanism_rows(name: &str) -> Vec<(String, Vec<String>)> {
    let mut rows = Vec::new();
    for sasl_ir in [true, false] {
        let mut cells = Vec::new();
        let mut failures = Vec::new();
        for user in USERS {
            let result = Imap::connect()
                .map_err(|e| format!("connect: {e}"))
                .and_then(|mut imap| {
                    if !imap.has(&format!("AUTH={name}")) {
                        return Err(format!("AUTH={name} not offered"));
                    }
                    wrong_then_right(&mut imap, name, &user, sasl_ir)
                });
            match result {
                Ok(()) => cells.push(format!("{}:ok", user.login)),
                Err(e) => {
                    cells.push(format!("{}:FAIL", user.login));
                    failures.push(format!("{name} sasl-ir={sasl_ir} {}: {e}", user.login));
                }
            }
        }
        let row = format!(
            "imap {name:<14} {:<8} {}\n",
            if sasl_ir { "SASL-IR" } else { "no IR" },
            cells.join(" ")
        );
        rows.push((row, failures));
    }
    rows
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn every_mechanism_and_user_over_imap_with_and_without_sasl_ir() {
    require_servers();
    // One thread per mechanism: each failed login costs Dovecot's login process a pause.
    let rows: Vec<(String, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = SaslBackend::Dovecot
            .mechanisms()
            .iter()
            .map(|name| scope.spawn(move || mechanism_rows(name)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a mechanism's thread panicked"))
            .collect()
    });
    let mut table = String::new();
    let mut failures = Vec::new();
    for (row, row_failures) in rows {
        table.push_str(&row);
        failures.extend(row_failures);
    }
    println!("mechanism          IR       wrong→NO, right→OK\n{table}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn scram_over_imap_starttls() {
    require_servers();
    let imap = Imap::connect().unwrap();
    assert!(imap.has("STARTTLS"));
    let mut imap = imap.starttls().unwrap();
    assert!(imap.has("AUTH=SCRAM-SHA-256"), "{:?}", imap.capabilities);
    for user in USERS {
        // One connection per user: IMAP allows one successful AUTHENTICATE.
        let mut fresh = Imap::connect().unwrap().starttls().unwrap();
        wrong_then_right(&mut fresh, "SCRAM-SHA-256", &user, true).unwrap();
    }
    wrong_then_right(&mut imap, "PLAIN", &USERS[1], true).unwrap();
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn a_broken_mechanism_is_cancelled_with_a_star() {
    require_servers();
    // DIGEST-MD5 refuses a challenge that is not a digest challenge: sent where CRAM-MD5's
    // would be, the client must cancel and the server must answer the tag (BAD or NO).
    let mut imap = Imap::connect().unwrap();
    let user = &USERS[0];
    let tag = imap.next_tag();
    imap.write_line(&format!("{tag} AUTHENTICATE CRAM-MD5"))
        .unwrap();
    let challenge = imap.read_line().unwrap();
    assert!(challenge.starts_with("+ "), "{challenge}");
    let mut digest = mechanism("DIGEST-MD5", user, user.password);
    let decoded = STANDARD.decode(&challenge[2..]).unwrap();
    assert!(digest.respond(&decoded).is_err(), "not a digest challenge");
    imap.write_line("*").unwrap();
    let after = imap.read_tagged(&tag).unwrap();
    assert!(
        after.starts_with("BAD") || after.starts_with("NO"),
        "{after}"
    );
    // Usable afterwards.
    assert_eq!(
        imap.authenticate(mechanism("CRAM-MD5", user, user.password), false)
            .unwrap(),
        Verdict::Ok
    );
}
