//! Loopback SMTP servers for tests and the demo.
//!
//! - [`scripted`]: a server that plays an exact script of replies and faults (silence,
//!   dripping bytes, bytes injected after STARTTLS, garbage instead of a TLS handshake) and
//!   records what the client sent, for the client's behaviour tests.

pub mod scripted;
