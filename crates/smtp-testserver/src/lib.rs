//! Loopback SMTP servers for tests and the demo.
