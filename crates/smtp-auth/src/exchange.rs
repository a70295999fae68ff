//! The AUTH exchange of RFC 4954 as a sans-IO state machine: it names the next command
//! to send and reads each reply; the driver only moves them.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use sasl_mechs::{
    client_mechanism, is_plaintext, select, Credentials, Mechanism, Policy, Response, SaslError,
};
use smtp_proto::{auth_line_fits, decode_challenge, Command, Reply, ReplyCode};

use crate::error::{AuthError, Violation};
use crate::options::{AuthContext, AuthOptions, AuthSuccess};

/// Most 334 challenges answered in one exchange by default. No mechanism here needs more
/// than three (SCRAM with its server-final as a challenge); a server that keeps asking is
/// cancelled.
pub const MAX_ROUNDS: usize = 10;

/// Whether `AUTH mechanism initial-response` fits on one command line for an initial
/// response of `len` raw bytes.
///
/// RFC 4954 section 4: "the AUTH command is still subject to the line length limitations
/// defined in \[SMTP\]" (512 octets with CRLF, RFC 5321 4.5.3.1.4); "If use of the initial
/// response argument would cause the AUTH command to exceed this length, the client MUST
/// NOT use the initial response parameter". The longer 12288-octet limit is for the
/// responses that follow a 334. An empty initial response is sent as `=`.
///
/// ```
/// use smtp_auth::initial_response_fits;
/// assert!(initial_response_fits("PLAIN", 0));
/// // "AUTH PLAIN " (11) + 4 * 124 (496) + CRLF (2) = 509
/// assert!(initial_response_fits("PLAIN", 372));
/// // 4 * 126 = 504: 517 octets
/// assert!(!initial_response_fits("PLAIN", 376));
/// ```
pub fn initial_response_fits(mechanism: &str, len: usize) -> bool {
    // smtp-proto holds the AUTH line to the same 512 octets (MAX_COMMAND_LINE).
    auth_line_fits(mechanism, len)
}

/// What the exchange does next.
enum State {
    /// Send `AUTH mechanism [initial-response]`.
    SendAuth {
        /// The initial response carried on the AUTH line, if any.
        on_line: Option<Response>,
    },
    /// Send one response line (after a 334).
    SendResponse(Response),
    /// Send `*`, then report `error` with the server's answer to it.
    SendCancel(AuthError),
    /// Over.
    Done(Result<AuthSuccess, AuthError>),
}

/// One AUTH exchange (RFC 4954) driving a `sasl-mechs` [`Mechanism`], with no I/O.
///
/// [`start`](Self::start) checks what can be refused before anything is sent (already
/// authenticated, mechanism not offered, a clear-text mechanism on an unencrypted
/// connection) and asks the mechanism for its initial response, which goes on the AUTH
/// line when the line fits ([`initial_response_fits`]; an empty one is `=`) and otherwise
/// after the server's first, empty, 334. Then the driver loops:
///
/// 1. [`next_command`](Self::next_command): the command to send (`AUTH`, a base64
///    response line, or `*`), `None` when the exchange is over;
/// 2. sends it and reads one reply, whatever its code;
/// 3. [`receive`](Self::receive) that reply.
///
/// and takes [`into_result`](Self::into_result). A 334 is decoded (invalid base64 or
/// several lines: cancelled) and answered by the mechanism; an error of the mechanism, a
/// 334 where none is possible, or more than [`MAX_ROUNDS`] challenges cancel with `*`, read
/// the server's answer, and report the first problem. 235 asks the mechanism to
/// [`finish`](Mechanism::finish) (SCRAM checks the server signature here); each negative
/// code has its [`AuthError`] variant.
///
/// ```
/// use sasl_mechs::{client_mechanism, ClientOptions, Credentials};
/// use smtp_auth::{AuthContext, AuthExchange, AuthOptions};
/// use smtp_proto::{Command, Reply, ReplyCode};
///
/// let creds = Credentials::new("tim", "tanstaaftanstaaf")?;
/// let mech = client_mechanism("CRAM-MD5", &creds, &ClientOptions::default())?;
/// let context = AuthContext { offered: vec!["CRAM-MD5".into()], ..AuthContext::default() };
/// let mut exchange = AuthExchange::start(mech, &context, &AuthOptions::default())?;
///
/// let reply = |code, text: &str| Reply::new(code, &[text.as_bytes()]).unwrap();
/// let mut line = Vec::new();
/// exchange.next_command().unwrap().encode(&mut line)?;
/// assert_eq!(line, b"AUTH CRAM-MD5\r\n");
/// // RFC 2195's example challenge.
/// exchange.receive(reply(ReplyCode::AUTH_CONTINUE, "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"));
/// line.clear();
/// exchange.next_command().unwrap().encode(&mut line)?;
/// assert_eq!(line, b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n");
/// exchange.receive(reply(ReplyCode::AUTH_SUCCESS, "2.7.0 Authentication successful"));
/// assert!(exchange.next_command().is_none());
/// assert_eq!(exchange.into_result()?.mechanism, "CRAM-MD5");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AuthExchange {
    mech: Box<dyn Mechanism>,
    state: State,
    /// An initial response too long for the AUTH line: sent after the first (empty) 334.
    held: Option<Response>,
    rounds: usize,
    max_rounds: usize,
}

impl fmt::Debug for AuthExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::SendAuth { on_line } => {
                if on_line.is_some() {
                    "send AUTH with initial response"
                } else {
                    "send AUTH"
                }
            }
            State::SendResponse(_) => "send response",
            State::SendCancel(_) => "send cancel",
            State::Done(Ok(_)) => "succeeded",
            State::Done(Err(_)) => "failed",
        };
        f.debug_struct("AuthExchange")
            .field("mechanism", &self.mech.name())
            .field("state", &state)
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

impl AuthExchange {
    /// Starts an exchange with `mech`, or refuses before anything is sent.
    pub fn start(
        mut mech: Box<dyn Mechanism>,
        context: &AuthContext,
        options: &AuthOptions,
    ) -> Result<AuthExchange, AuthError> {
        check_start(
            context,
            mech.name(),
            mech.sends_password_in_clear(),
            options,
        )?;
        let mut on_line = None;
        let mut held = None;
        if mech.has_initial_response() {
            if let Some(ir) = mech.initial_response()? {
                if initial_response_fits(mech.name(), ir.len()) {
                    on_line = Some(ir);
                } else {
                    held = Some(ir);
                }
            }
        }
        Ok(AuthExchange {
            mech,
            state: State::SendAuth { on_line },
            held,
            rounds: 0,
            max_rounds: options.max_rounds.unwrap_or(MAX_ROUNDS),
        })
    }

    /// Builds the mechanism called `mechanism` for `credentials` and starts an exchange
    /// with it. The checks that need only the name come first, so a mechanism the server
    /// does not offer is reported as such even when `sasl-mechs` does not implement it.
    pub fn start_named(
        mechanism: &str,
        credentials: &Credentials,
        context: &AuthContext,
        options: &AuthOptions,
    ) -> Result<AuthExchange, AuthError> {
        check_start(context, mechanism, is_plaintext(mechanism), options)?;
        let mech = client_mechanism(
            mechanism,
            credentials,
            &options.effective_client_options(context),
        )?;
        AuthExchange::start(mech, context, options)
    }

    /// Picks the strongest mechanism that the server offers, the options allow and the
    /// credentials can drive (`sasl_mechs::select`), and starts an exchange with it.
    pub fn start_auto(
        credentials: &Credentials,
        context: &AuthContext,
        options: &AuthOptions,
    ) -> Result<AuthExchange, AuthError> {
        if context.authenticated {
            return Err(AuthError::AlreadyAuthenticated);
        }
        let mut policy = Policy::new(context.encrypted)
            .allow_plaintext(options.allow_plaintext_without_tls)
            .channel_binding(
                options
                    .effective_client_options(context)
                    .channel_binding
                    .is_some(),
            );
        if let Some(allowed) = &options.allowed {
            policy.allowed.clone_from(allowed);
        }
        let name = select(&context.offered, credentials, &policy).map_err(|e| match e {
            SaslError::NoSuitableMechanism {
                offered,
                plaintext_refused,
            } => AuthError::NoSuitableMechanism {
                offered,
                plaintext_refused,
            },
            other => AuthError::Sasl(other),
        })?;
        AuthExchange::start_named(name, credentials, context, options)
    }

    /// The mechanism's name.
    pub fn mechanism(&self) -> &'static str {
        self.mech.name()
    }

    /// The command to send now; `None` once the exchange is over. The same command is
    /// returned until [`receive`](Self::receive) is called with its reply.
    pub fn next_command(&self) -> Option<Command<'_>> {
        match &self.state {
            State::SendAuth { on_line } => Some(Command::Auth {
                mechanism: self.mech.name(),
                initial_response: on_line.as_ref().map(|r| r.as_slice()),
            }),
            State::SendResponse(response) => Some(Command::AuthResponse(response)),
            State::SendCancel(_) => Some(Command::AuthCancel),
            State::Done(_) => None,
        }
    }

    /// True once the exchange is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// Takes the server's reply to the command [`next_command`](Self::next_command)
    /// returned. Ignored once the exchange is over.
    pub fn receive(&mut self, reply: Reply) {
        let state = std::mem::replace(
            &mut self.state,
            State::Done(Err(AuthError::Client(smtp_client::Error::Internal(
                "AUTH exchange state lost",
            )))),
        );
        self.state = match state {
            State::SendAuth { .. } | State::SendResponse(_) => self.on_reply(reply),
            State::SendCancel(error) => State::Done(Err(with_cancel_reply(error, reply))),
            done @ State::Done(_) => done,
        };
    }

    /// The outcome, once [`next_command`](Self::next_command) returns `None`.
    pub fn into_result(self) -> Result<AuthSuccess, AuthError> {
        match self.state {
            State::Done(result) => result,
            _ => Err(AuthError::Client(smtp_client::Error::Misuse(
                smtp_client::Misuse::AuthUnfinished,
            ))),
        }
    }

    fn on_reply(&mut self, reply: Reply) -> State {
        let mechanism = self.mech.name();
        let code = reply.code();
        match code {
            ReplyCode::AUTH_SUCCESS => State::Done(self.finish(reply)),
            ReplyCode::AUTH_CONTINUE => self.on_challenge(&reply),
            ReplyCode::AUTH_CREDENTIALS_INVALID => State::Done(Err(AuthError::BadCredentials {
                mechanism,
                detail: self.mech.failure_detail().cloned().map(Box::new),
                reply,
            })),
            ReplyCode::TEMP_AUTH_FAILURE | ReplyCode::PASSWORD_TRANSITION_NEEDED => {
                State::Done(Err(AuthError::Temporary { mechanism, reply }))
            }
            ReplyCode::ENCRYPTION_REQUIRED => {
                State::Done(Err(AuthError::EncryptionRequired { mechanism, reply }))
            }
            ReplyCode::AUTH_TOO_WEAK => State::Done(Err(AuthError::TooWeak { mechanism, reply })),
            _ if code.is_transient_negative() || code.is_permanent_negative() => {
                State::Done(Err(AuthError::Refused { mechanism, reply }))
            }
            // Another 3xx: the server waits for something; tell it to stop.
            _ if code.is_positive_intermediate() => {
                self.cancel_for(Violation::UnexpectedReply(Box::new(reply)))
            }
            // Another 2xx: the server thinks the exchange is over; nothing to cancel.
            _ => State::Done(Err(AuthError::ServerMisbehaved {
                mechanism,
                violation: Violation::UnexpectedReply(Box::new(reply)),
                cancel_reply: None,
            })),
        }
    }

    fn on_challenge(&mut self, reply: &Reply) -> State {
        self.rounds += 1;
        if self.rounds > self.max_rounds {
            return self.cancel_for(Violation::TooManyRounds {
                limit: self.max_rounds,
            });
        }
        let challenge = match decode_challenge(reply) {
            Ok(c) => c,
            Err(e) => return self.cancel_for(Violation::BadChallenge(e)),
        };
        if let Some(initial) = self.held.take() {
            // RFC 4422 5 / RFC 4954 4: without the initial response on the AUTH line, the
            // server asks for it with an empty challenge.
            if !challenge.is_empty() {
                return self.cancel_for(Violation::UnexpectedChallenge);
            }
            return State::SendResponse(initial);
        }
        match self.mech.respond(&challenge) {
            Ok(response) => State::SendResponse(response),
            Err(SaslError::UnexpectedChallenge { .. }) => {
                self.cancel_for(Violation::UnexpectedChallenge)
            }
            Err(source) => State::SendCancel(AuthError::Mechanism {
                mechanism: self.mech.name(),
                source: Box::new(source),
                cancel_reply: None,
            }),
        }
    }

    fn cancel_for(&self, violation: Violation) -> State {
        State::SendCancel(AuthError::ServerMisbehaved {
            mechanism: self.mech.name(),
            violation,
            cancel_reply: None,
        })
    }

    /// 235: the mechanism checks the server where it can. RFC 4954 gives 235 no data
    /// (servers send SCRAM's server-final as a last 334); a 235 whose text is one base64
    /// word is read as success data only when the mechanism still waits for the server's
    /// proof, so an ordinary text is never fed to a mechanism as data.
    fn finish(&mut self, reply: Reply) -> Result<AuthSuccess, AuthError> {
        let mechanism = self.mech.name();
        let mut result = self.mech.finish(None);
        if let Err(SaslError::ServerNotAuthenticated { .. }) = result {
            if let Some(data) = success_data(&reply) {
                result = self.mech.finish(Some(&data));
            }
        }
        match result {
            Ok(()) => {
                tracing::debug!(mechanism, "AUTH succeeded");
                Ok(AuthSuccess {
                    mechanism,
                    reply,
                    failed_attempts: Vec::new(),
                })
            }
            Err(source) => Err(AuthError::Mechanism {
                mechanism,
                source: Box::new(source),
                cancel_reply: None,
            }),
        }
    }
}

fn with_cancel_reply(error: AuthError, reply: Reply) -> AuthError {
    match error {
        AuthError::ServerMisbehaved {
            mechanism,
            violation,
            ..
        } => AuthError::ServerMisbehaved {
            mechanism,
            violation,
            cancel_reply: Some(reply),
        },
        AuthError::Mechanism {
            mechanism, source, ..
        } => AuthError::Mechanism {
            mechanism,
            source,
            cancel_reply: Some(reply),
        },
        other => other,
    }
}

/// The checks that refuse an AUTH before anything is sent.
pub(crate) fn check_start(
    context: &AuthContext,
    mechanism: &str,
    sends_password_in_clear: bool,
    options: &AuthOptions,
) -> Result<(), AuthError> {
    if context.authenticated {
        return Err(AuthError::AlreadyAuthenticated);
    }
    if !context.offers(mechanism) && !options.allow_unadvertised {
        return Err(AuthError::NotOffered {
            mechanism: mechanism.to_owned(),
            offered: context.offered.clone(),
            encrypted: context.encrypted,
        });
    }
    if sends_password_in_clear && !context.encrypted && !options.allow_plaintext_without_tls {
        return Err(AuthError::PlaintextRefused {
            mechanism: mechanism.to_ascii_uppercase(),
        });
    }
    Ok(())
}

/// Base64 with optional padding, for success data.
const SUCCESS_DATA: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Additional data carried by a 235: its one-line text, after the enhanced status code if
/// any, when that is a single base64 word.
fn success_data(reply: &Reply) -> Option<Vec<u8>> {
    if reply.line_count() != 1 {
        return None;
    }
    let text = String::from_utf8_lossy(reply.lines().next()?).into_owned();
    let mut words = text.split_ascii_whitespace().peekable();
    if reply.enhanced().is_some() {
        words.next();
    }
    let word = words.next()?;
    if words.next().is_some() {
        return None;
    }
    SUCCESS_DATA.decode(word).ok().filter(|d| !d.is_empty())
}
