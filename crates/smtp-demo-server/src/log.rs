//! What the server saw of each connection: the client's address and every command line, in
//! order, so that a test can check what a client sent, and what it did not send.

use std::net::SocketAddr;

/// One connection as the server saw it ([`DemoServer::sessions`](crate::DemoServer::sessions)):
/// the first 1000 command lines of each of the first 10000 sessions, so that no client can
/// make the log grow without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLog {
    /// The client's address: the peer of the accepted TCP connection.
    pub peer: SocketAddr,
    /// Every command line, in the order received, as sent (without its CRLF), except that an
    /// AUTH initial response is shown as `****`. The lines answering a 334 and the message
    /// itself are not commands and are not listed.
    pub commands: Vec<String>,
    /// The client certificate's user, when the client presented one the server verified
    /// ([`DemoConfig::client_certificates`](crate::DemoConfig::client_certificates)).
    pub client_certificate: Option<String>,
    /// Whether the session is over (after QUIT, the client closing, a timeout or a stop).
    pub ended: bool,
    /// Command lines past the log's bound (1000 a session), counted but not kept.
    pub unlogged: usize,
}

impl SessionLog {
    /// A session that has just begun.
    pub(crate) fn new(peer: SocketAddr) -> SessionLog {
        SessionLog {
            peer,
            commands: Vec::new(),
            client_certificate: None,
            ended: false,
            unlogged: 0,
        }
    }

    /// The verbs of the commands, upper case, in order (`["EHLO", "STARTTLS", ...]`).
    pub fn verbs(&self) -> Vec<String> {
        self.commands
            .iter()
            .map(|c| c.split(' ').next().unwrap_or_default().to_ascii_uppercase())
            .collect()
    }
}

/// The line to log for a command: AUTH's initial response masked, anything else as sent.
pub(crate) fn loggable(line: &str) -> String {
    let mut words = line.splitn(3, ' ');
    let verb = words.next().unwrap_or_default();
    if !verb.eq_ignore_ascii_case("AUTH") {
        return line.to_owned();
    }
    match (words.next(), words.next()) {
        (Some(mech), Some(_)) => format!("{verb} {mech} ****"),
        _ => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_initial_responses_are_masked() {
        assert_eq!(loggable("AUTH PLAIN AGRlbW8AcGFzcw=="), "AUTH PLAIN ****");
        assert_eq!(loggable("AUTH LOGIN"), "AUTH LOGIN");
        assert_eq!(
            loggable("MAIL FROM:<a@example.test> RET=HDRS"),
            "MAIL FROM:<a@example.test> RET=HDRS"
        );
    }
}
