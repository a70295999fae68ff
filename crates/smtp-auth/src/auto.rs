//! `auth_auto`'s fallback: the mechanisms in order of strength, and when a failure moves on
//! to the next one. Shared by the blocking and the async front ends, which only run each
//! exchange.
//!
//! A refusal of the mechanism itself says nothing of the credentials, so the next
//! mechanism is tried: 504 (not supported, RFC 4954 6), 534 (too weak), 538 (encryption
//! required for this mechanism) and 454 (temporary failure, which servers give when the
//! mechanism's back end is unavailable). Anything else ends the attempts: 535 (the
//! credentials are wrong, and would be for every mechanism), a broken exchange or
//! connection.

use sasl_mechs::Credentials;

use crate::error::AuthError;
use crate::exchange::AuthExchange;
use crate::options::{AuthContext, AuthOptions, AuthSuccess};

/// A mechanism `auth_auto` tried, and the error it ended with.
#[derive(Debug)]
pub struct AuthAttempt {
    /// The mechanism.
    pub mechanism: &'static str,
    /// How it failed.
    pub error: AuthError,
}

/// True when `err` refuses the mechanism rather than the credentials or the connection.
pub(crate) fn refuses_mechanism(err: &AuthError) -> bool {
    match err {
        AuthError::Refused { reply, .. } => reply.code().get() == 504,
        AuthError::Temporary { reply, .. } => reply.code().get() == 454,
        AuthError::TooWeak { .. } | AuthError::EncryptionRequired { .. } => true,
        _ => false,
    }
}

/// The attempts of one `auth_auto`.
#[derive(Debug, Default)]
pub(crate) struct AutoAuth {
    attempts: Vec<AuthAttempt>,
}

impl AutoAuth {
    /// The next exchange: the strongest mechanism offered, allowed and usable that was not
    /// tried yet.
    pub(crate) fn next(
        &mut self,
        credentials: &Credentials,
        context: &AuthContext,
        options: &AuthOptions,
    ) -> Result<AuthExchange, AuthError> {
        let mut left = context.clone();
        left.offered.retain(|m| {
            !self
                .attempts
                .iter()
                .any(|a| a.mechanism.eq_ignore_ascii_case(m))
        });
        match AuthExchange::start_auto(credentials, &left, options) {
            Ok(exchange) => Ok(exchange),
            Err(e) if self.attempts.is_empty() => Err(e),
            // Every usable mechanism refused itself.
            Err(_) => Err(self.end()),
        }
    }

    /// Records a failure; `None` when the next mechanism should be tried, else the error
    /// that ends `auth_auto`.
    pub(crate) fn failed(
        &mut self,
        mechanism: &'static str,
        error: AuthError,
    ) -> Option<AuthError> {
        let go_on = refuses_mechanism(&error);
        self.attempts.push(AuthAttempt { mechanism, error });
        if go_on {
            None
        } else {
            Some(self.end())
        }
    }

    /// The success, with the attempts that failed before it.
    pub(crate) fn succeeded(self, mut success: AuthSuccess) -> AuthSuccess {
        success.failed_attempts = self.attempts;
        success
    }

    /// The error that ends `auth_auto`: the only attempt's own error, or every attempt.
    fn end(&mut self) -> AuthError {
        let mut attempts = std::mem::take(&mut self.attempts);
        if attempts.len() == 1 {
            if let Some(only) = attempts.pop() {
                return only.error;
            }
        }
        AuthError::AllAttemptsFailed { attempts }
    }
}
