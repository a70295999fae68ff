//! Net::SMTP's methods, written once for both drivers.
//!
//! Both clients are one type, [`Client<D>`]: [`SmtpClient`](crate::SmtpClient) is
//! `Client<Blocking>` and `tokio::AsyncSmtpClient` is `Client<Tokio>`, where `D` is the
//! driver's half of the connection (its socket). So:
//!
//! - the methods that only read what the session learnt ([`banner`](Client::banner),
//!   [`capabilities`](Client::capabilities), [`last_reply`](Client::last_reply)...) are one
//!   `impl<D> Client<D>` block, below;
//! - each method that talks to the server is an [`Op`], built here by one function per
//!   method ([`mail`], [`data`], [`quit`]...): which session operation it starts and what
//!   the outcome means to the caller. The blocking and the async client each have a public
//!   method of the same name whose body is one line, running that `Op` with the driver's
//!   loop (a plain `fn` there, an `async fn` here: one method cannot be both).
//!
//! How an operation's bytes move, when the connection closes and what a failure does are
//! not here: they are [`DriverCore`]'s, shared by both loops.

use std::net::SocketAddr;
use std::time::Instant;

use smtp_proto::{
    Capabilities, Command, Domain, ForwardPath, MailParams, RcptParams, Reply, ReversePath, Text,
    Xclient, Xforward,
};

use crate::accounting::BatchSummary;
use crate::driver::{DriverCore, Peer};
use crate::envelope::{Envelope, RecipientsReport, SendReport};
use crate::error::Error;
use crate::session::{Expect, Outcome, Session};

/// An SMTP client connection: Net::SMTP's methods over a driver `D` that moves the bytes.
///
/// Use it as [`SmtpClient`](crate::SmtpClient) (blocking) or, with feature `tokio`, as
/// `tokio::AsyncSmtpClient`: their documentation lists the methods that talk to the
/// server. The methods here do not talk to it, and are the same for both.
pub struct Client<D> {
    pub(crate) core: DriverCore,
    pub(crate) io: D,
}

impl<D> Client<D> {
    /// The server's greeting (Net::SMTP's `banner`).
    pub fn banner(&self) -> Option<&Reply> {
        self.core.session.banner()
    }

    /// The server's name for itself, from the greeting (Net::SMTP's `domain`).
    pub fn domain(&self) -> Option<String> {
        self.core.session.greeting_domain()
    }

    /// The capabilities of the last EHLO reply (`None` after HELO).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.session.capabilities()
    }

    /// True when the last EHLO reply offered `keyword` (Net::SMTP's `supports`).
    pub fn supports(&self, keyword: &str) -> bool {
        self.core.session.supports(keyword)
    }

    /// True when the connection is protected by TLS.
    pub fn is_encrypted(&self) -> bool {
        self.core.session.is_encrypted()
    }

    /// The last reply received (Net::Cmd's `code`, `message`, `ok`, `status` read it).
    pub fn last_reply(&self) -> Option<&Reply> {
        self.core.session.last_reply()
    }

    /// Records that the AUTH exchange which just got a 235 reply succeeded on the client's
    /// side too (see [`Session::confirm_authenticated`]); refused unless the last reply was
    /// a 235 to an AUTH line. EHLO and STARTTLS clear it.
    pub fn confirm_authenticated(&mut self) -> Result<(), Error> {
        self.core.session.confirm_authenticated()
    }

    /// True once an AUTH exchange succeeded, until EHLO or STARTTLS.
    pub fn is_authenticated(&self) -> bool {
        self.core.session.is_authenticated()
    }

    /// The sans-IO session (capabilities, state).
    pub fn session(&self) -> &Session {
        &self.core.session
    }

    /// The TCP address connected to; over a Unix-domain socket, which has none, the
    /// unspecified IPv4 address with port 0 ([`peer`](Self::peer) gives the path).
    pub fn peer_addr(&self) -> SocketAddr {
        match &self.core.peer {
            Peer::Tcp(addr) => *addr,
            Peer::Unix(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Where the client is connected: a TCP address or a Unix-domain socket's path.
    pub fn peer(&self) -> &Peer {
        &self.core.peer
    }

    /// When the connection was up and the session began: after the TCP connection (and any
    /// proxy's handshake), before the TLS handshake of implicit TLS and before the greeting.
    /// With [`open`](crate::SmtpClient::open) on a socket of the caller's, when `open` was
    /// called. For timing each stage of a session against the caller's own clock.
    ///
    /// ```no_run
    /// use std::time::Instant;
    /// use smtp_client::{ClientConfig, SmtpClient};
    ///
    /// let started = Instant::now();
    /// let client = SmtpClient::connect(ClientConfig::new("mail.example.test"))?;
    /// println!("connected in {:?}", client.connected_at() - started);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connected_at(&self) -> Instant {
        self.core.opened_at
    }

    /// When the last TLS handshake finished (implicit TLS, or after STARTTLS); `None`
    /// without TLS.
    pub fn tls_established_at(&self) -> Option<Instant> {
        self.core.tls_at
    }
}

/// The channel-binding material of the TLS connection (RFC 5056), for SASL's -PLUS
/// mechanisms. Both need TLS; the hash of `tls-server-end-point` (RFC 5929 §4.1, by the
/// certificate's signature algorithm) is the SASL layer's:
/// `sasl_mechs::channel_binding::tls_server_end_point(client.server_certificate()?)`.
impl<D: sealed::TlsSide> Client<D> {
    /// The `tls-exporter` channel-binding data (RFC 9266 §2): 32 bytes of the TLS exporter
    /// with label `EXPORTER-Channel-Binding` and an empty context. `None` without TLS, and
    /// on TLS 1.2 (RFC 9266 §3 requires the extended master secret there; use
    /// `tls-server-end-point` instead).
    pub fn tls_exporter(&self) -> Option<Vec<u8>> {
        let conn = self.io.tls()?;
        if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return None;
        }
        conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", Some(&[]))
            .ok()
    }

    /// The TLS version negotiated, as OpenSSL and most tools name it (`"TLSv1.3"`,
    /// `"TLSv1.2"`); `None` without TLS.
    ///
    /// ```no_run
    /// use smtp_client::{ClientConfig, SmtpClient};
    ///
    /// let client = SmtpClient::connect(ClientConfig::new("mail.example.test"))?;
    /// if let (Some(version), Some(cipher)) = (client.tls_version(), client.tls_cipher_suite()) {
    ///     println!("{version} with {cipher}"); // TLSv1.3 with TLS13_AES_256_GCM_SHA384
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls_version(&self) -> Option<&'static str> {
        use rustls::ProtocolVersion;
        Some(match self.io.tls()?.protocol_version()? {
            ProtocolVersion::TLSv1_3 => "TLSv1.3",
            ProtocolVersion::TLSv1_2 => "TLSv1.2",
            // Not offered by this client's rustls configuration; named all the same.
            ProtocolVersion::TLSv1_1 => "TLSv1.1",
            ProtocolVersion::TLSv1_0 => "TLSv1.0",
            other => other.as_str().unwrap_or("unknown"),
        })
    }

    /// The cipher suite negotiated, by its IANA name (`"TLS13_AES_256_GCM_SHA384"`,
    /// `"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"`); `None` without TLS.
    pub fn tls_cipher_suite(&self) -> Option<&'static str> {
        let suite = self.io.tls()?.negotiated_cipher_suite()?.suite();
        Some(suite.as_str().unwrap_or("unknown"))
    }

    /// The server's end-entity certificate (DER), as received in the TLS handshake; `None`
    /// without TLS. `tls-server-end-point` (RFC 5929) is its hash.
    pub fn server_certificate(&self) -> Option<&[u8]> {
        self.io
            .tls()?
            .peer_certificates()?
            .first()
            .map(|c| c.as_ref())
    }
}

pub(crate) mod sealed {
    /// What [`Client`](super::Client)'s TLS accessors need from a driver's connection.
    /// Implemented by this crate's two drivers only.
    pub trait TlsSide {
        /// The rustls connection, once TLS is up.
        fn tls(&self) -> Option<&rustls::ClientConnection>;
    }
}

// ----- Operations --------------------------------------------------------------------------

/// One method's exchange with the server: the session operation it starts, and how its
/// outcome becomes the method's result.
pub(crate) struct Op<'a, T> {
    pub(crate) start: Start<'a>,
    pub(crate) finish: fn(Option<Outcome>) -> Result<T, Error>,
}

/// Which session operation starts. [`DriverCore`] runs them all alike, except where the
/// variant says otherwise.
pub(crate) enum Start<'a> {
    /// The greeting and the first EHLO; after the TLS handshake with implicit TLS.
    Open,
    Hello(Option<&'a Domain>),
    Starttls,
    Xclient(&'a Xclient),
    Xforward(&'a Xforward),
    Command(Command<'a>, Expect),
    Recipients(&'a [(ForwardPath, RcptParams)]),
    Data,
    /// Message bytes: buffered, and written once there are enough of them; no reply.
    DataSend(&'a [u8]),
    DataEnd,
    /// DATA for a message a DATA writer streams; its bytes do not go through operations.
    DataStream,
    /// The end of the DATA writer's message.
    StreamEnd,
    Bdat(&'a [u8], bool),
    /// QUIT: the connection is closed afterwards, whatever the outcome.
    Quit,
    /// A whole message: the driver reads the body the core asks for.
    Send(&'a Envelope),
    /// Many messages, at most this many under way at once: the driver gives each message
    /// and its body as the core asks, and hands back each message's end.
    Batch {
        /// At most this many messages under way at once.
        window: usize,
        /// The caller's messages are ready without waiting (the pool's queue): a message's
        /// end of data waits for the next message's MAIL, RCPT and DATA, and both leave in
        /// one write. Otherwise the end of data is written before the next message is
        /// asked for, since an iterator that waits for its next item would hold it.
        coalesce: bool,
    },
}

impl Start<'_> {
    /// Starts the operation on the session.
    pub(crate) fn start(self, session: &mut Session, now: Instant) -> Result<(), Error> {
        match self {
            Start::Open => session.start_open(now),
            Start::Hello(domain) => session.start_hello(domain, now),
            Start::Starttls => session.start_starttls(now),
            Start::Xclient(attrs) => session.start_xclient(attrs, now),
            Start::Xforward(attrs) => session.start_xforward(attrs, now),
            Start::Command(command, expect) => session.start_command(&command, expect, now),
            Start::Recipients(recipients) => session.start_recipients(recipients, now),
            Start::Data => session.start_data(now),
            Start::DataSend(bytes) => session.data_send(bytes),
            Start::DataEnd => session.start_data_end(now),
            Start::DataStream => session.start_data_stream(now),
            Start::StreamEnd => session.start_stream_end(now),
            Start::Bdat(chunk, last) => session.start_bdat(chunk, last, now),
            Start::Quit => session.start_quit(now),
            Start::Send(envelope) => session.start_send(envelope.clone(), now),
            Start::Batch { window, .. } => session.start_batch(window, now),
        }
    }
}

fn unexpected() -> Error {
    Error::Internal("unexpected outcome")
}

fn nothing(_: Option<Outcome>) -> Result<(), Error> {
    Ok(())
}

fn into_reply(outcome: Option<Outcome>) -> Result<Reply, Error> {
    match outcome {
        Some(Outcome::Reply(r) | Outcome::Closed(Some(r))) => Ok(r),
        _ => Err(unexpected()),
    }
}

fn reply(start: Start<'_>) -> Op<'_, Reply> {
    Op {
        start,
        finish: into_reply,
    }
}

/// A command whose reply must be a completion (2xx), else [`Error::Refused`].
fn completion(command: Command<'_>) -> Op<'_, Reply> {
    reply(Start::Command(command, Expect::Completion))
}

/// The greeting and EHLO (`connect`, `open`).
pub(crate) fn open() -> Op<'static, ()> {
    Op {
        start: Start::Open,
        finish: nothing,
    }
}

/// `hello`.
pub(crate) fn hello(domain: Option<&Domain>) -> Op<'_, Reply> {
    reply(Start::Hello(domain))
}

/// `starttls`.
pub(crate) fn starttls() -> Op<'static, Reply> {
    reply(Start::Starttls)
}

/// `xclient`.
pub(crate) fn xclient(attrs: &Xclient) -> Op<'_, Reply> {
    reply(Start::Xclient(attrs))
}

/// `xforward`.
pub(crate) fn xforward(attrs: &Xforward) -> Op<'_, Reply> {
    reply(Start::Xforward(attrs))
}

/// `mail`.
pub(crate) fn mail<'a>(from: &'a ReversePath, params: &'a MailParams) -> Op<'a, Reply> {
    completion(Command::Mail { from, params })
}

/// `rcpt`.
pub(crate) fn rcpt<'a>(to: &'a ForwardPath, params: &'a RcptParams) -> Op<'a, Reply> {
    completion(Command::Rcpt { to, params })
}

/// `recipients`.
pub(crate) fn recipients(recipients: &[(ForwardPath, RcptParams)]) -> Op<'_, RecipientsReport> {
    Op {
        start: Start::Recipients(recipients),
        finish: |outcome| match outcome {
            Some(Outcome::Recipients(r)) => Ok(r),
            _ => Err(unexpected()),
        },
    }
}

/// `data`.
pub(crate) fn data() -> Op<'static, Reply> {
    reply(Start::Data)
}

/// `datasend`.
pub(crate) fn datasend(bytes: &[u8]) -> Op<'_, ()> {
    Op {
        start: Start::DataSend(bytes),
        finish: nothing,
    }
}

/// `dataend`.
pub(crate) fn dataend() -> Op<'static, Reply> {
    reply(Start::DataEnd)
}

/// `data_writer`: DATA, and the 354 that starts the writer's message.
pub(crate) fn data_stream() -> Op<'static, Reply> {
    reply(Start::DataStream)
}

/// The writer's `finish`: the end of data, and the final reply.
pub(crate) fn stream_end() -> Op<'static, Reply> {
    reply(Start::StreamEnd)
}

/// `bdat` (`last` false) and `bdat_last`.
pub(crate) fn bdat(chunk: &[u8], last: bool) -> Op<'_, Reply> {
    reply(Start::Bdat(chunk, last))
}

/// `reset`.
pub(crate) fn reset() -> Op<'static, Reply> {
    completion(Command::Rset)
}

/// `verify`: the reply is returned whatever its code.
pub(crate) fn verify(address: &Text) -> Op<'_, Reply> {
    command(Command::Vrfy(address))
}

/// `expand`: the reply is returned whatever its code.
pub(crate) fn expand(list: &Text) -> Op<'_, Reply> {
    command(Command::Expn(list))
}

/// `help`: the reply is returned whatever its code.
pub(crate) fn help(topic: Option<&Text>) -> Op<'_, Reply> {
    command(Command::Help(topic))
}

/// `noop`.
pub(crate) fn noop() -> Op<'static, Reply> {
    completion(Command::Noop)
}

/// `etrn`.
pub(crate) fn etrn(node: &Text) -> Op<'_, Reply> {
    completion(Command::Etrn(node))
}

/// `command`: any command, its reply returned whatever its code.
pub(crate) fn command(command: Command<'_>) -> Op<'_, Reply> {
    reply(Start::Command(command, Expect::AnyReply))
}

/// `quit`.
pub(crate) fn quit() -> Op<'static, Option<Reply>> {
    Op {
        start: Start::Quit,
        finish: |outcome| match outcome {
            Some(Outcome::Closed(r)) => Ok(r),
            _ => Err(unexpected()),
        },
    }
}

/// `send`.
pub(crate) fn send(envelope: &Envelope) -> Op<'_, SendReport> {
    Op {
        start: Start::Send(envelope),
        finish: |outcome| match outcome {
            Some(Outcome::Sent(r)) => Ok(r),
            _ => Err(unexpected()),
        },
    }
}

/// `send_batch`: many messages, each handed back as it ends.
pub(crate) fn batch(window: usize, coalesce: bool) -> Op<'static, BatchSummary> {
    Op {
        start: Start::Batch { window, coalesce },
        finish: |outcome| match outcome {
            Some(Outcome::Batch(summary)) => Ok(summary),
            _ => Err(unexpected()),
        },
    }
}

/// `send_to_terminal`, `send_or_mail`, `send_and_mail`: RFC 821's SEND, SOML and SAML,
/// each starting a transaction like MAIL (a 2xx or [`Error::Refused`]).
pub(crate) fn rfc821_transaction(command: Command<'_>) -> Op<'_, Reply> {
    completion(command)
}
