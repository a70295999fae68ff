//! A small SMTP submission server with AUTH, on loopback, for the demo and for tests that
//! need a server that behaves like a real one rather than a script.
//!
//! It speaks ESMTP with PIPELINING, 8BITMIME, SMTPUTF8, SIZE, CHUNKING (BDAT),
//! ENHANCEDSTATUSCODES, DSN (its parameters kept with each message), STARTTLS (a certificate
//! for `localhost` and `127.0.0.1` issued by a throwaway CA, see [`DemoServer::ca_pem`];
//! client certificates checked on request, [`DemoConfig::client_certificates`], for AUTH
//! EXTERNAL) and AUTH with every password mechanism the server side of `sasl-mechs` verifies
//! ([`MECHANISMS`]) and the two bearer-token ones ([`TOKEN_MECHANISMS`], where a user's token
//! is its password). It keeps every accepted message, with its envelope and the user who
//! authenticated, for the caller: [`DemoServer::received`]; and what it saw of each
//! connection, the client's address and every command line: [`DemoServer::sessions`].
//!
//! It is bounded everywhere a client could push it: command lines (RFC 5321's 512 octets,
//! 12288 for AUTH responses, as in `smtp-proto`), message size ([`DemoConfig::max_message_size`]),
//! recipients per message, concurrent connections, errors per connection, and the time any
//! read may wait. Nothing a client sends can make it panic.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use smtp_demo_server::{DemoConfig, DemoServer};
//!
//! let server = DemoServer::start(DemoConfig::new().port(0))?;
//! let mut tcp = std::net::TcpStream::connect(server.addr())?;
//! let mut lines = BufReader::new(tcp.try_clone()?);
//! let mut greeting = String::new();
//! lines.read_line(&mut greeting)?;
//! assert!(greeting.starts_with("220 "));
//! tcp.write_all(b"QUIT\r\n")?;
//! let mut bye = String::new();
//! lines.read_line(&mut bye)?;
//! assert!(bye.starts_with("221 "));
//! server.stop();
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod cert;

mod auth;
mod body;
mod config;
mod envelope;
mod log;
mod message;
mod server;
mod session;
#[cfg(test)]
mod test_client;
mod transport;

pub use auth::{MECHANISMS, PLUS_MECHANISMS, TOKEN_MECHANISMS};
pub use config::{DemoConfig, DEFAULT_PORT, DEMO_PASSWORD, DEMO_USER};
pub use log::SessionLog;
pub use message::{ReceivedMessage, Transfer};
pub use server::DemoServer;

#[cfg(test)]
mod tests;
