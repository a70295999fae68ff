//! The bytes of one connection: the socket in clear or inside TLS, replies queued until the
//! server next waits for input, reads bounded by the read timeout, lines bounded in length,
//! and the TLS handshake.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;

use rustls::{ServerConnection, StreamOwned};
use sasl_mechs::channel_binding::tls_server_end_point;
use sasl_mechs::ChannelBinding;
use smtp_proto::ReplyCode;

use crate::server::lock;
use crate::session::Connection;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The connection's socket, in clear or inside TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Closed,
}

/// Why a session ends early.
pub(crate) enum End {
    /// The client closed, the read timed out, or the socket failed: nothing more to say.
    Gone,
    /// Say this (a `421`) and close.
    Say(&'static str),
}

impl Connection<'_> {
    /// Shuts the socket down both ways, so that a client still sending sees the end.
    pub(crate) fn close(&mut self) {
        let tcp = match &self.stream {
            Stream::Plain(s) => Some(s),
            Stream::Tls(s) => Some(&s.sock),
            Stream::Closed => None,
        };
        if let Some(tcp) = tcp {
            let _ = tcp.shutdown(Shutdown::Both);
        }
        self.stream = Stream::Closed;
    }

    /// Queues a reply; it goes out before the server next waits for input (so that a
    /// pipelined batch is answered in one write).
    pub(crate) fn reply(&mut self, code: u16, lines: &[&str]) {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let reply = ReplyCode::new(code).and_then(|c| smtp_proto::Reply::new(c, &lines).ok());
        match reply {
            Some(reply) => reply.encode(&mut self.output),
            None => self
                .output
                .extend_from_slice(b"451 4.3.0 Internal error building a reply\r\n"),
        }
    }

    /// Queues an error reply and counts it towards the per-connection error bound.
    pub(crate) fn error(&mut self, code: u16, text: &str) {
        self.errors += 1;
        self.reply(code, &[text]);
    }

    /// Sends the queued replies.
    pub(crate) fn flush(&mut self) -> Result<(), End> {
        if self.output.is_empty() {
            return Ok(());
        }
        let result = match &mut self.stream {
            Stream::Plain(s) => s.write_all(&self.output),
            Stream::Tls(s) => s.write_all(&self.output).and_then(|()| s.flush()),
            Stream::Closed => return Err(End::Gone),
        };
        self.output.clear();
        result.map_err(|_| End::Gone)
    }

    /// Reads more input, after sending what is queued.
    pub(crate) fn fill(&mut self) -> Result<(), End> {
        self.flush()?;
        if self.shared.stop.load(Ordering::SeqCst) {
            return Err(End::Say("421 4.3.2 Server shutting down"));
        }
        let mut buf = [0u8; READ_CHUNK];
        let n = match &mut self.stream {
            Stream::Plain(s) => s.read(&mut buf),
            Stream::Tls(s) => s.read(&mut buf),
            Stream::Closed => return Err(End::Gone),
        };
        match n {
            Ok(0) => Err(End::Gone),
            Ok(n) => {
                self.input.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(End::Say("421 4.4.2 Timeout waiting for the client"))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(_) => Err(End::Gone),
        }
    }

    /// One line without its line end (CRLF, or a bare LF), at most `limit` octets with it.
    pub(crate) fn read_line(&mut self, limit: usize) -> Result<Vec<u8>, End> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.input[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                if end + 1 > limit {
                    return Err(End::Say("500 5.5.6 Line too long"));
                }
                let mut line: Vec<u8> = self.input.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.input.len();
            if scanned > limit {
                return Err(End::Say("500 5.5.6 Line too long"));
            }
            self.fill()?;
        }
    }

    /// Runs the server side of the TLS handshake over the plain socket.
    pub(crate) fn start_tls(&mut self) -> Result<(), End> {
        self.flush()?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(End::Gone);
        };
        let conn = ServerConnection::new(self.shared.tls.clone()).map_err(|_| End::Gone)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            if tls.conn.complete_io(&mut tls.sock).is_err() {
                let _ = tls.sock.shutdown(Shutdown::Both);
                return Err(End::Gone);
            }
        }
        self.stream = Stream::Tls(Box::new(tls));
        self.tls = true;
        let identity = self.client_identity();
        if let Some(log) = lock(&self.shared.store).sessions.get_mut(self.log_index) {
            log.client_certificate = identity;
        }
        Ok(())
    }

    /// The user named by the client certificate presented in the TLS handshake: rustls has
    /// verified it against the demo client CA; the user is the one it was issued to by
    /// [`DemoServer::issue_client_certificate`](crate::DemoServer::issue_client_certificate).
    /// `None` in clear, without a certificate, or for one issued elsewhere.
    pub(crate) fn client_identity(&self) -> Option<String> {
        let Stream::Tls(s) = &self.stream else {
            return None;
        };
        let leaf = s.conn.peer_certificates()?.first()?;
        lock(&self.shared.store)
            .client_certs
            .iter()
            .find(|(der, _)| der == leaf)
            .map(|(_, user)| user.clone())
    }
}

impl Connection<'_> {
    /// The channel-binding data of this connection (RFC 5056), for SCRAM-SHA-*-PLUS: the
    /// `tls-exporter` value on TLS 1.3 (RFC 9266) and the demo certificate's
    /// `tls-server-end-point` hash (RFC 5929); empty in clear.
    pub(crate) fn channel_bindings(&self) -> Vec<ChannelBinding> {
        let Stream::Tls(s) = &self.stream else {
            return Vec::new();
        };
        let exporter = (s.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3))
            .then(|| {
                s.conn
                    .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", Some(&[]))
                    .ok()
            })
            .flatten()
            .map(ChannelBinding::tls_exporter);
        let end_point = tls_server_end_point(crate::cert::demo_cert().cert_der.as_ref()).ok();
        exporter.into_iter().chain(end_point).collect()
    }
}
