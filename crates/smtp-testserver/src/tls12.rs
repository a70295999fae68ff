//! A TLS 1.2 server connection that goes on by hand after a rustls handshake, so that a
//! script can send what no rustls server sends: a HelloRequest (a request to renegotiate,
//! RFC 5246 7.4.1.1).
//!
//! The handshake is rustls's, restricted to TLS 1.2 and ChaCha20-Poly1305 (RFC 7905) with
//! secret extraction on. Its traffic keys are then taken out of rustls and every record is
//! sealed and opened here: ChaCha20-Poly1305's TLS 1.2 nonce is the IV XOR the record's
//! sequence number, its additional data the sequence number, type, version and plaintext
//! length (RFC 5246 6.2.3.3). Nothing but this test server needs it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use rustls::{ConnectionTrafficSecrets, ServerConfig, ServerConnection};

/// TLS record content types (RFC 5246 6.2.1).
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const TLS12: [u8; 2] = [3, 3];
const TAG_LEN: usize = 16;

/// A TLS 1.2 only server configuration with ChaCha20-Poly1305 and secret extraction.
pub(crate) fn server_config() -> Result<Arc<ServerConfig>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![
        rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        rustls::crypto::ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    let cert = crate::scripted::test_cert();
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .map_err(|e| format!("TLS 1.2 config: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert_der.clone()], cert.key())
        .map_err(|e| format!("TLS 1.2 config: {e}"))?;
    config.enable_secret_extraction = true;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// One direction's key and next sequence number.
struct Direction {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Direction {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> Result<Direction, String> {
        let ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } = secrets else {
            return Err("not ChaCha20-Poly1305".to_owned());
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, key.as_ref())
            .map_err(|_| "bad ChaCha20-Poly1305 key".to_owned())?;
        let iv: [u8; 12] = iv
            .as_ref()
            .try_into()
            .map_err(|_| "bad ChaCha20-Poly1305 IV".to_owned())?;
        Ok(Direction {
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// The nonce and additional data of the next record, then the sequence number moves on.
    fn next(&mut self, content_type: u8, len: usize) -> (Nonce, [u8; 13]) {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&self.seq.to_be_bytes());
        aad[8] = content_type;
        aad[9..11].copy_from_slice(&TLS12);
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        self.seq += 1;
        (Nonce::assume_unique_for_key(nonce), aad)
    }
}

/// The connection after the handshake, its records sealed and opened by hand.
pub(crate) struct Tls12 {
    pub(crate) tcp: TcpStream,
    tx: Direction,
    rx: Direction,
    /// Received bytes not yet a whole record.
    pending: Vec<u8>,
    /// The alerts the client sent (level, description).
    pub(crate) alerts: Vec<(u8, u8)>,
}

impl Tls12 {
    /// Takes the keys out of a connection whose handshake is complete.
    pub(crate) fn take_over(conn: ServerConnection, tcp: TcpStream) -> Result<Tls12, String> {
        let secrets = conn
            .dangerous_extract_secrets()
            .map_err(|e| format!("secret extraction: {e}"))?;
        Ok(Tls12 {
            tcp,
            tx: Direction::new(secrets.tx)?,
            rx: Direction::new(secrets.rx)?,
            pending: Vec::new(),
            alerts: Vec::new(),
        })
    }

    fn seal(&mut self, content_type: u8, plain: &[u8]) -> io::Result<()> {
        let (nonce, aad) = self.tx.next(content_type, plain.len());
        let mut body = plain.to_vec();
        self.tx
            .key
            .seal_in_place_append_tag(nonce, Aad::from(aad), &mut body)
            .map_err(|_| io::Error::other("seal failed"))?;
        let mut record = vec![content_type, TLS12[0], TLS12[1]];
        record.extend_from_slice(&(body.len() as u16).to_be_bytes());
        record.extend_from_slice(&body);
        self.tcp.write_all(&record)
    }

    /// Sends application data.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        for chunk in bytes.chunks(16 * 1024) {
            self.seal(APPLICATION_DATA, chunk)?;
        }
        Ok(())
    }

    /// Sends a HelloRequest: handshake type 0, empty body (RFC 5246 7.4.1.1).
    pub(crate) fn hello_request(&mut self) -> io::Result<()> {
        self.seal(HANDSHAKE, &[0, 0, 0, 0])
    }

    /// Reads application data into `out`; `Ok(0)` at end of stream. Alerts are recorded and
    /// skipped.
    pub(crate) fn read(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            if self.pending.len() >= 5 {
                let len = usize::from(u16::from_be_bytes([self.pending[3], self.pending[4]]));
                if self.pending.len() >= 5 + len {
                    let record: Vec<u8> = self.pending.drain(..5 + len).collect();
                    let content_type = record[0];
                    let mut body = record[5..].to_vec();
                    let plain_len = body.len().saturating_sub(TAG_LEN);
                    let (nonce, aad) = self.rx.next(content_type, plain_len);
                    let plain = self
                        .rx
                        .key
                        .open_in_place(nonce, Aad::from(aad), &mut body)
                        .map_err(|_| io::Error::other("a record from the client did not open"))?;
                    match content_type {
                        APPLICATION_DATA if !plain.is_empty() => {
                            out.extend_from_slice(plain);
                            return Ok(plain.len());
                        }
                        ALERT if plain.len() == 2 => self.alerts.push((plain[0], plain[1])),
                        APPLICATION_DATA | ALERT => {}
                        other => {
                            return Err(io::Error::other(format!(
                                "unexpected record type {other} from the client"
                            )))
                        }
                    }
                    continue;
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.tcp.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}
