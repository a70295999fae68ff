//! AUTH (RFC 4954): the mechanisms the demo server offers, and the exchange of base64
//! challenges and responses that drives a `sasl-mechs` server mechanism to a verdict.

use std::sync::LazyLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sasl_mechs::server::{server_mechanism_bound, ServerMechanism, ServerStep};
use sasl_mechs::{ExternalServer, MechanismName, Needs};
use smtp_proto::MAX_AUTH_RESPONSE_LINE;

use crate::session::Connection;
use crate::transport::End;

/// The password mechanisms the demo server offers, strongest last (the start of its EHLO
/// AUTH line): every mechanism of `sasl-mechs` that needs a password. DIGEST-MD5 offers realm
/// `localhost` and expects the service `smtp` in the digest-uri.
pub static MECHANISMS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| weakest_first(Needs::Password));

/// The bearer-token mechanisms the demo server also offers (after [`MECHANISMS`] on its
/// EHLO AUTH line), strongest last. No OAuth server is involved: the token it accepts for a
/// user is that user's password, so a client passes the password where a token goes.
pub static TOKEN_MECHANISMS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| weakest_first(Needs::Token));

/// The mechanisms of `sasl-mechs` that need `needs`, weakest first. Offering the strongest
/// last checks that clients choose by strength, not by the order of the AUTH line.
fn weakest_first(needs: Needs) -> Vec<&'static str> {
    let known: &'static [MechanismName] = &MechanismName::ALL_KNOWN;
    known
        .iter()
        .rev()
        .filter(|m| m.needs() == Some(needs))
        .map(MechanismName::as_str)
        .collect()
}

/// The mechanisms with channel binding, offered after [`MECHANISMS`] and
/// [`TOKEN_MECHANISMS`] once TLS is up (weakest first): SCRAM-SHA-1-PLUS, SCRAM-SHA-256-PLUS.
pub static PLUS_MECHANISMS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| weakest_first(Needs::PasswordAndChannelBinding));

/// Every mechanism offered, in the order of the EHLO AUTH line; the -PLUS ones only over
/// TLS, where there is a channel to bind to; EXTERNAL last, only when the TLS handshake
/// authenticated the client with a certificate (`external`).
pub(crate) fn offered(tls: bool, external: bool) -> impl Iterator<Item = &'static str> {
    let plus: &[&str] = if tls { &PLUS_MECHANISMS } else { &[] };
    let external: &[&str] = if tls && external { &["EXTERNAL"] } else { &[] };
    MECHANISMS
        .iter()
        .chain(TOKEN_MECHANISMS.iter())
        .chain(plus)
        .chain(external)
        .copied()
}

impl Connection<'_> {
    /// AUTH: runs one SASL exchange; `Ok(true)` whatever its verdict (the session goes on).
    pub(crate) fn auth(&mut self, arg: &str) -> Result<bool, End> {
        if self.helo.is_none() {
            self.error(503, "5.5.1 Send EHLO first");
            return Ok(true);
        }
        if self.auth.is_some() {
            self.error(503, "5.5.1 Already authenticated");
            return Ok(true);
        }
        if self.txn.from.is_some() {
            self.error(503, "5.5.1 AUTH not permitted during a mail transaction");
            return Ok(true);
        }
        let (name, initial) = match arg.split_once(' ') {
            Some((n, i)) => (n, Some(i)),
            None => (arg, None),
        };
        let identity = self.client_identity();
        let Some(name) =
            offered(self.tls, identity.is_some()).find(|m| m.eq_ignore_ascii_case(name))
        else {
            self.error(504, "5.5.4 Unrecognized authentication type");
            return Ok(true);
        };
        let mut mech: Box<dyn ServerMechanism> = if name == "EXTERNAL" {
            // The identity is the verified client certificate's, never a claim.
            Box::new(ExternalServer::new(identity))
        } else {
            // SCRAM checks a -PLUS client's binding against this channel, and fails a plain
            // SCRAM client that says it could bind (`y`) while -PLUS is on offer here.
            let bindings = self.channel_bindings();
            match server_mechanism_bound(name, self.shared.lookup.clone(), bindings) {
                Ok(mech) => mech,
                Err(_) => {
                    self.error(504, "5.5.4 Unrecognized authentication type");
                    return Ok(true);
                }
            }
        };
        let initial = match initial {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(text) => match B64.decode(text) {
                Ok(bytes) => Some(bytes),
                Err(_) => {
                    self.error(501, "5.5.2 Cannot decode the initial response");
                    return Ok(true);
                }
            },
        };
        let mut step = mech.step(initial.as_deref());
        loop {
            match step {
                Ok(ServerStep::Challenge(challenge)) => {
                    let text = B64.encode(&challenge);
                    self.reply(334, &[&text]);
                    let Some(response) = self.auth_response()? else {
                        return Ok(true);
                    };
                    step = mech.step(Some(&response));
                }
                Ok(ServerStep::Success(additional)) => {
                    if let Some(data) = additional {
                        // SMTP cannot carry data with 235: send it as a last challenge and
                        // wait for the client's empty answer (RFC 4954 section 4).
                        let text = B64.encode(&data);
                        self.reply(334, &[&text]);
                        let Some(response) = self.auth_response()? else {
                            return Ok(true);
                        };
                        if !response.is_empty() {
                            self.error(535, "5.7.8 Authentication credentials invalid");
                            return Ok(true);
                        }
                    }
                    let Some(who) = mech.authenticated().cloned() else {
                        self.error(454, "4.7.0 Temporary authentication failure");
                        return Ok(true);
                    };
                    if who.authzid.as_ref().is_some_and(|z| *z != who.authcid) {
                        // The demo has no proxy rights: a user may act only as itself.
                        self.error(535, "5.7.8 Authentication credentials invalid");
                        return Ok(true);
                    }
                    self.auth = Some((who.authcid, name.to_owned()));
                    self.reply(235, &["2.7.0 Authentication successful"]);
                    return Ok(true);
                }
                Ok(ServerStep::Failure) => {
                    self.error(535, "5.7.8 Authentication credentials invalid");
                    return Ok(true);
                }
                Err(_) => {
                    self.error(501, "5.5.2 Malformed authentication response");
                    return Ok(true);
                }
            }
        }
    }

    /// Reads one AUTH response line: `Some(bytes)`, or `None` after answering a cancel
    /// (`*`) or undecodable base64.
    fn auth_response(&mut self) -> Result<Option<Vec<u8>>, End> {
        let line = self.read_line(MAX_AUTH_RESPONSE_LINE)?;
        if line == b"*" {
            self.error(501, "5.7.0 Authentication cancelled");
            return Ok(None);
        }
        match B64.decode(&line) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(_) => {
                self.error(501, "5.5.2 Cannot decode the response");
                Ok(None)
            }
        }
    }
}
