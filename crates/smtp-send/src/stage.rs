//! The stages of one run, in the order they happen: where `--quit-after` stops, and where a
//! run stopped or failed ([`crate::exit::Failure::stage`], [`crate::send::Sent::stopped_after`]),
//! for any report that names it.
//!
//! Under `--tls implicit` the TLS handshake comes right after the connection, before the
//! greeting; otherwise STARTTLS comes after EHLO. SMTP lets a client send nothing before the
//! greeting, so every stop reads the greeting first, and QUIT is the first command after it.

use std::fmt;

use clap::ValueEnum;

/// A stage of the conversation with the server. The `--quit-after` values are the names
/// below, in lower case ([`Stage::name`]); `Xclient` is a stage a run can fail at, not one
/// it can be stopped after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Stage {
    /// The connection is open (TCP, through --proxy when given, or the --socket). The
    /// greeting is read but not judged: a server that refuses service at its greeting
    /// (554) still counts as connected.
    Connect,
    /// The greeting was read and is 220.
    Banner,
    /// EHLO (LHLO under --protocol lmtp; HELO when EHLO is refused) was answered 250.
    Ehlo,
    /// TLS is up: STARTTLS was answered 220, the handshake done (the server's certificate
    /// checked) and EHLO answered again inside TLS; or, under --tls implicit, the handshake
    /// and the greeting after it. Under --tls opportunistic, the point where STARTTLS would
    /// be when the server does not offer it.
    Tls,
    /// Postfix XCLIENT was answered with a new greeting and EHLO again (not a --quit-after
    /// value).
    #[value(skip)]
    Xclient,
    /// AUTH succeeded (235).
    Auth,
    /// MAIL FROM was accepted.
    Mail,
    /// Every RCPT TO was answered; at least one accepted.
    Rcpt,
    /// DATA was answered 354. Since every line after a 354 is message text, smtp-send then
    /// closes the connection without ending the message: no QUIT, and the server, which
    /// never saw the end of data, has no message to deliver.
    Data,
}

impl Stage {
    /// The stage's name as `--quit-after` takes it: `connect`, `banner`, ... `data`
    /// (`xclient` for [`Stage::Xclient`]).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Banner => "banner",
            Stage::Ehlo => "ehlo",
            Stage::Tls => "tls",
            Stage::Xclient => "xclient",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
        }
    }

    /// The stage a failed call of `send` (MAIL, RCPT, DATA or BDAT and the end of data)
    /// stopped at, from the command the server refused.
    pub fn of_transaction_error(err: &smtp_client::Error) -> Stage {
        use smtp_client::Error;
        match err {
            Error::Refused { command, .. } => {
                let verb = command.split([' ', ':']).next().unwrap_or_default();
                if verb.eq_ignore_ascii_case("MAIL") {
                    Stage::Mail
                } else if verb.eq_ignore_ascii_case("RCPT") {
                    Stage::Rcpt
                } else {
                    Stage::Data
                }
            }
            Error::RecipientsRefused { .. } => Stage::Rcpt,
            // SIZE, SMTPUTF8, 8BITMIME, DSN or PRDR missing: found before MAIL is sent.
            Error::ExtensionMissing { .. } | Error::SizeExceeded { .. } => Stage::Mail,
            _ => Stage::Data,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_quit_after_values() {
        for stage in Stage::value_variants() {
            let parsed = Stage::from_str(stage.name(), false).unwrap();
            assert_eq!(parsed, *stage);
        }
        let values: Vec<&str> = Stage::value_variants().iter().map(|s| s.name()).collect();
        assert_eq!(
            values,
            ["connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt", "data"]
        );
        assert!(Stage::from_str("xclient", false).is_err());
    }
}
