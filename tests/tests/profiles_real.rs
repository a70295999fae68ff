//! `sasl_mechs::profile` against Dovecot 2.3 (`cargo xtask servers up`): the one
//! transport-agnostic driver runs every mechanism Dovecot offers over IMAP (127.0.0.1:12143,
//! with and without SASL-IR), POP3 (127.0.0.1:12110, RFC 5034) and ManageSieve
//! (127.0.0.1:14190, RFC 5804), for every test user: the wrong password is refused, then the
//! right one succeeds on the same connection. The only protocol code here is reading the
//! greeting and the mechanism list; AUTH itself is the profile's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use interop_tests::{require_servers, User, IMAP_ADDR, USERS};
use sasl_mechs::profile::{authenticate, Profile, ProfileError};
use sasl_mechs::{client_mechanism, ClientOptions, Credentials, Mechanism};

const POP3_ADDR: &str = "127.0.0.1:12110";
const SIEVE_ADDR: &str = "127.0.0.1:14190";

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Conn {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        Conn {
            reader: BufReader::new(tcp.try_clone().unwrap()),
            writer: tcp,
        }
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let mut out = line.to_vec();
        out.extend_from_slice(b"\r\n");
        self.writer.write_all(&out)
    }

    fn read(&mut self) -> io::Result<Vec<u8>> {
        read_line(&mut self.reader)
    }

    fn read_text(&mut self) -> String {
        String::from_utf8(self.read().unwrap()).unwrap()
    }

    fn auth(&mut self, mech: &mut dyn Mechanism, profile: &Profile) -> Result<(), ProfileError> {
        let Conn { reader, writer } = self;
        authenticate(
            mech,
            profile,
            |l| {
                let mut out = l.to_vec();
                out.extend_from_slice(b"\r\n");
                writer.write_all(&out)
            },
            || read_line(reader),
        )
    }
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

fn mechanism(name: &str, user: &User, secret: &str, service: &str) -> Box<dyn Mechanism> {
    let creds = if matches!(name, "OAUTHBEARER" | "XOAUTH2") {
        Credentials::with_token(user.login, secret)
    } else {
        Credentials::new(user.login, secret)
    }
    .unwrap();
    let mut options = ClientOptions::default();
    options.digest_uri_service = service.to_owned();
    client_mechanism(name, &creds, &options).unwrap()
}

/// Wrong password refused, then the right one accepted, over `profile` on `conn`.
fn wrong_then_right(
    conn: &mut Conn,
    profile: &Profile,
    name: &str,
    user: &User,
    service: &str,
) -> Result<(), String> {
    let wrong = format!("{}-wrong", user.password);
    match conn.auth(mechanism(name, user, &wrong, service).as_mut(), profile) {
        Err(ProfileError::Rejected { .. }) => {}
        // OAUTHBEARER: the server's error JSON comes as a challenge the mechanism answers;
        // the final line is still a refusal.
        other => return Err(format!("wrong password: {other:?}")),
    }
    conn.auth(
        mechanism(name, user, user.password, service).as_mut(),
        profile,
    )
    .map_err(|e| format!("right password: {e}"))
}

/// Runs every (mechanism, user) cell; panics with all failures at the end.
fn every_cell(
    protocol: &str,
    mechanisms: &[String],
    mut cell: impl FnMut(&str, &User) -> Result<(), String>,
) {
    assert!(
        mechanisms.len() >= 8,
        "{protocol}: Dovecot offers {mechanisms:?}"
    );
    let mut failures = Vec::new();
    for name in mechanisms {
        for user in &USERS {
            if let Err(e) = cell(name, user) {
                failures.push(format!("{protocol} {name} {}: {e}", user.login));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    println!(
        "{protocol}: {} mechanisms x {} users passed",
        mechanisms.len(),
        USERS.len()
    );
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn imap_every_mechanism_with_and_without_sasl_ir() {
    require_servers();
    let greeting = Conn::connect(IMAP_ADDR).read_text();
    let mechanisms: Vec<String> = greeting
        .split([' ', ']'])
        .filter_map(|w| w.strip_prefix("AUTH="))
        .map(str::to_owned)
        .collect();
    let mut tag = 0;
    every_cell("IMAP", &mechanisms, |name, user| {
        for sasl_ir in [true, false] {
            let mut conn = Conn::connect(IMAP_ADDR);
            conn.read_text();
            tag += 1;
            let profile = Profile::imap(&format!("p{tag}"), sasl_ir);
            wrong_then_right(&mut conn, &profile, name, user, "imap")?;
            conn.send(b"z LOGOUT").unwrap();
        }
        Ok(())
    });
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn pop3_every_mechanism() {
    require_servers();
    let addr: SocketAddr = POP3_ADDR.parse().unwrap();
    let mut conn = Conn::connect(addr);
    assert!(conn.read_text().starts_with("+OK"));
    conn.send(b"CAPA").unwrap();
    let mut mechanisms = Vec::new();
    loop {
        let line = conn.read_text();
        if line == "." {
            break;
        }
        if let Some(list) = line.strip_prefix("SASL ") {
            mechanisms = list.split(' ').map(str::to_owned).collect();
        }
    }
    every_cell("POP3", &mechanisms, |name, user| {
        let mut conn = Conn::connect(addr);
        conn.read_text();
        wrong_then_right(&mut conn, &Profile::pop3(), name, user, "pop")?;
        conn.send(b"QUIT").unwrap();
        Ok(())
    });
}

/// The ManageSieve greeting: capability lines, then `OK`.
fn sieve_greeting(conn: &mut Conn) -> Vec<String> {
    let mut mechanisms = Vec::new();
    loop {
        let line = conn.read_text();
        if line.starts_with("OK") {
            return mechanisms;
        }
        if let Some(list) = line.strip_prefix("\"SASL\" \"") {
            mechanisms = list
                .trim_end_matches('"')
                .split(' ')
                .map(str::to_owned)
                .collect();
        }
    }
}

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn managesieve_every_mechanism() {
    require_servers();
    let addr: SocketAddr = SIEVE_ADDR.parse().unwrap();
    let mechanisms = sieve_greeting(&mut Conn::connect(addr));
    every_cell("ManageSieve", &mechanisms, |name, user| {
        let mut conn = Conn::connect(addr);
        sieve_greeting(&mut conn);
        wrong_then_right(&mut conn, &Profile::managesieve(), name, user, "sieve")?;
        conn.send(b"LOGOUT").unwrap();
        Ok(())
    });
}
