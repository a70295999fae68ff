//! Loopback SMTP servers for tests and the demo.
//!
//! - [`scripted`]: a server that plays an exact script of replies and faults (silence,
//!   dripping bytes, bytes injected after STARTTLS, garbage instead of a TLS handshake) and
//!   records what the client sent, for the client's behaviour tests.
//! - [`demo`]: a small submission server with STARTTLS and AUTH that keeps what it receives,
//!   for the demo (`cargo xtask demo`) and end-to-end tests.

pub mod demo;
pub mod scripted;
