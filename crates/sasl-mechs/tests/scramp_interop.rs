//! SCRAM and SCRAM-PLUS against Python's scramp, an independent implementation, on both
//! sides: our client against its server, its client against our server. Binding type
//! `tls-server-end-point` (scramp 1.5 has no `tls-exporter`), with the binding data
//! computed on each side from the same certificate, so RFC 5929's hash is checked too.
//!
//! Runs when `python3 -c "import scramp"` works (`pip install scramp`); otherwise it says
//! so and passes.
#![cfg(feature = "server")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sasl_mechs::channel_binding::tls_server_end_point;
use sasl_mechs::server::{server_mechanism_bound, ServerStep};
use sasl_mechs::{client_mechanism, ClientOptions, Credentials, SaslError, Secret};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scramp_peer.py");
const USER: &str = "user";
const PASSWORD: &str = "pencil";

fn scramp_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import scramp"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: python3 with scramp not available (pip install scramp)");
    }
    ok
}

struct Peer {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Peer {
    fn start(mode: &str, mech: &str, password: &str, cert: &[u8], bind: bool) -> Peer {
        let hex: String = cert.iter().map(|b| format!("{b:02x}")).collect();
        let mut child = Command::new("python3")
            .args([SCRIPT, mode, mech, USER, password, &hex])
            .arg(if bind { "bind" } else { "none" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Peer { child, out }
    }

    fn send(&mut self, msg: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{}", B64.encode(msg)).unwrap();
        stdin.flush().unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.trim_end().to_owned()
    }

    fn recv(&mut self) -> Vec<u8> {
        B64.decode(self.line()).unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cert() -> Vec<u8> {
    B64.decode(ECDSA_SHA256_CERT).unwrap()
}

/// Our client, scramp's server. Ok(()) when the exchange succeeded and the server was
/// verified.
fn our_client(
    mech: &str,
    password: &str,
    plus_offered: bool,
    server_binds: bool,
) -> Result<(), SaslError> {
    let cert = cert();
    let mut options = ClientOptions::default();
    options.channel_binding = Some(tls_server_end_point(&cert).unwrap());
    options.plus_offered = plus_offered;
    let creds = Credentials::new(USER, password).unwrap();
    let mut client = client_mechanism(mech, &creds, &options)?;
    let mut peer = Peer::start("server", client.name(), PASSWORD, &cert, server_binds);
    peer.send(&client.initial_response()?.unwrap());
    let server_first = peer.recv();
    let client_final = client.respond(&server_first)?;
    peer.send(&client_final);
    client.finish(Some(&peer.recv()))
}

/// scramp's client, our server. The client's verdict line, and whether our server said
/// success.
fn their_client(
    mech: &str,
    password: &str,
    client_binds: bool,
    server_binds: bool,
) -> (String, bool) {
    let cert = cert();
    let mut peer = Peer::start("client", mech, password, &cert, client_binds);
    let (u, p) = (USER.to_owned(), PASSWORD.to_owned());
    let lookup = Arc::new(move |name: &str| (name == u).then(|| Secret::new(p.clone())));
    let bindings = if server_binds {
        vec![tls_server_end_point(&cert).unwrap()]
    } else {
        Vec::new()
    };
    let mut server = server_mechanism_bound(mech, lookup, bindings).unwrap();
    let first = peer.recv();
    let ServerStep::Challenge(server_first) = server.step(Some(&first)).unwrap() else {
        panic!("no server-first");
    };
    peer.send(&server_first);
    let client_final = peer.recv();
    let (ok, last) = match server.step(Some(&client_final)).unwrap() {
        ServerStep::Success(Some(v)) => (true, v),
        ServerStep::Failure => (false, b"e=invalid-proof".to_vec()),
        other => panic!("unexpected {other:?}"),
    };
    peer.send(&last);
    (peer.line(), ok)
}

#[test]
fn our_client_against_scramp_server() {
    if !scramp_available() {
        return;
    }
    for mech in ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"] {
        our_client(mech, PASSWORD, true, true).unwrap();
        assert!(our_client(mech, "wrong", true, true).is_err(), "{mech}");
    }
    for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
        // -PLUS offered, not used: n, accepted.
        our_client(mech, PASSWORD, true, true).unwrap();
        // Not offered, server without binding: y, accepted.
        our_client(mech, PASSWORD, false, false).unwrap();
        // Not offered, yet the server binds: scramp says
        // e=server-does-support-channel-binding, and our client names the downgrade.
        assert_eq!(
            our_client(mech, PASSWORD, false, true),
            Err(SaslError::ChannelBindingDowngrade {
                mechanism: mech_static(mech)
            })
        );
    }
}

#[test]
fn scramp_client_against_our_server() {
    if !scramp_available() {
        return;
    }
    for mech in ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"] {
        assert_eq!(
            their_client(mech, PASSWORD, true, true),
            ("OK".to_owned(), true)
        );
        let (verdict, ok) = their_client(mech, "wrong", true, true);
        assert!(!ok && verdict.starts_with("ERR"), "{mech}: {verdict}");
    }
    for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
        // scramp with binding data and a plain mechanism says y: our binding server fails
        // it, our server without binding accepts it.
        let (verdict, ok) = their_client(mech, PASSWORD, true, true);
        assert!(!ok && verdict.starts_with("ERR"), "{mech}: {verdict}");
        assert_eq!(
            their_client(mech, PASSWORD, true, false),
            ("OK".to_owned(), true)
        );
        assert_eq!(
            their_client(mech, PASSWORD, false, true),
            ("OK".to_owned(), true)
        );
    }
}

fn mech_static(mech: &str) -> &'static str {
    match mech {
        "SCRAM-SHA-1" => "SCRAM-SHA-1",
        _ => "SCRAM-SHA-256",
    }
}

/// A real certificate (ECDSA P-256 with SHA-256, made with `openssl req -x509`), DER.
const ECDSA_SHA256_CERT: &str = "MIIBfTCCASOgAwIBAgIUAoxQnjM/A1yPtPSBek1rosS1PP0wCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJbG9jYWxob3N0MB4XDTI2MTEzMDE2MTUxMVoXDTM2MTEyNzE2MTUxMVowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3ddZcSpoYBPQngSB+1tyljM3m24CoXE7wjBm/HvfqQBJHYyerucRtHJXkBvATj6/JITvU5VyB4MwLU6DQPPSyKNTMFEwHQYDVR0OBBYEFEjY0+isIPHpre3iWO3fXq6/VYdYMB8GA1UdIwQYMBaAFEjY0+isIPHpre3iWO3fXq6/VYdYMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAPAR7zgjEKWVupmZeaGiPVtIceN3wwy5OUNrvb360B7pAiBDbXgJft5gt9jjnYsM/1KXnGlAEuib2lvJoy7Ph2gR1w==";
