//! A loopback SMTP server for tests.
//!
//! [`scripted`]: a server that plays an exact script of replies and faults (silence,
//! dripping bytes, bytes injected after STARTTLS, garbage instead of a TLS handshake) and
//! records what the client sent, for the client's behaviour tests.
//!
//! The demo server, a small submission server with STARTTLS and AUTH that behaves like a
//! real one, is the published crate `smtp-demo-server`: `smtp-send --demo` runs it.

pub mod scripted;
mod tls12;
