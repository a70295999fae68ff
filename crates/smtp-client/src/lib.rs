//! SMTP client in the manner of Perl's Net::SMTP: a sans-IO session with a blocking and an
//! async (tokio) driver, STARTTLS and implicit TLS with rustls, PIPELINING, streaming DATA
//! and BDAT.
//!
//! - [`SmtpClient`] + [`ClientConfig`]: the blocking client, Net::SMTP's methods.
//! - `tokio::AsyncSmtpClient` (feature `tokio`): the same methods as `async fn`, over
//!   tokio and tokio-rustls; see its documentation for what cancelling a call does.
//! - [`Client`]: the type both clients are, over their driver; the methods that do not talk
//!   to the server ([`banner`](Client::banner), [`capabilities`](Client::capabilities)...)
//!   are its own, the same for both.
//! - [`DataWriter`] (`tokio::AsyncDataWriter`): Net::SMTP's `datafh`, the message after
//!   DATA written with `std::io::Write` (tokio's `AsyncWrite`), dot-stuffed as it goes and
//!   ended by `finish`; dropped unfinished, it abandons the message
//!   ([`SmtpClient::data_writer`]).
//! - [`Session`]: the protocol state machine with no I/O and no clock, shared by both
//!   drivers, which differ only in how bytes move. Deadlines are values.
//! - [`TlsConfig`] / [`TlsMode`]: certificate trust and when TLS is used; checks are on by
//!   default, and the only way to turn them off is loudly named.
//! - [`Proxy`]: connect through a SOCKS5 or HTTP CONNECT proxy
//!   ([`ClientConfig::proxy`]); the handshake is the sans-IO [`ProxyHandshake`].
//! - [`Error`]: each failure tells what to do about it, and carries the server's reply and
//!   the (redacted) command it answered.
//!
//! ```no_run
//! use smtp_client::{ClientConfig, SmtpClient, TlsMode};
//! use smtp_proto::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};
//!
//! let mut smtp = SmtpClient::connect(
//!     ClientConfig::new("mail.example.test").tls_mode(TlsMode::StartTlsRequired),
//! )?;
//! println!("{:?} supports 8BITMIME: {}", smtp.domain(), smtp.supports("8BITMIME"));
//! smtp.mail(&ReversePath::Mailbox(Mailbox::new("alice@example.test")?), &MailParams::default())?;
//! smtp.rcpt(&ForwardPath::new("bob@example.test")?, &RcptParams::default())?;
//! smtp.data()?;
//! smtp.datasend(b"Subject: hello\r\n\r\nHi Bob\r\n")?;
//! smtp.dataend()?;
//! smtp.quit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod accounting;
mod blocking;
mod body;
mod config;
mod data_writer;
mod delivery;
mod dial;
mod driver;
mod envelope;
mod error;
mod feed;
mod methods;
pub mod pool;
pub mod proxy;
mod session;
mod timeouts;
mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;
mod transcript;

pub use accounting::{BatchSummary, MessageResult, MessageState};
pub use blocking::SmtpClient;
pub use config::{AddressFamily, ClientConfig};
pub use data_writer::DataWriter;
pub use delivery::Delivery;
pub use dial::Peer;
pub use driver::BODY_CHUNK;
pub use envelope::{Envelope, Prdr, RecipientReply, RecipientsReport, SendReport};
pub use error::{
    ConnectAttempt, Error, ErrorKind, Misuse, ProtocolError, RefusedRecipient, TlsError,
    TlsUnavailable,
};
pub use methods::Client;
pub use proxy::{Proxy, ProxyError, ProxyEvent, ProxyHandshake, ProxyKind, ProxyUrlError};
pub use session::{Event, Expect, Outcome, Protocol, Session, SessionConfig};
pub use timeouts::Timeouts;
pub use tls::{TlsConfig, TlsMode};
pub use transcript::{Direction, TranscriptFn, TRANSCRIPT_TARGET};
