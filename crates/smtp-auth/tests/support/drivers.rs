//! One test body, two drivers: the blocking client with [`SmtpAuth`] and, with feature
//! `tokio`, the async client with `AsyncSmtpAuth`, each call run to completion on a
//! current-thread runtime. The trait's methods are the crates' own, one line each.
//! It builds on the client's test driver (connect, NOOP, QUIT, send, the `Tokio` wrapper
//! and [`for_both_drivers!`]) and adds the AUTH calls and STARTTLS.
//!
//! Shared by `crates/smtp-auth/tests/*.rs` and `tests/tests/auth_interop.rs`.

#![allow(dead_code)]

#[path = "../../../smtp-client/tests/support/drivers.rs"]
#[macro_use]
mod client_drivers;

use sasl_mechs::{Credentials, Mechanism};
use smtp_auth::{AuthError, AuthOptions, AuthSuccess, AuthTypes, SmtpAuth};
use smtp_client::{Error, SmtpClient};
use smtp_proto::Reply;

#[cfg(feature = "tokio")]
pub use self::client_drivers::Tokio;

/// The client API the tests use, with the blocking signatures: the client's, plus AUTH.
pub trait Driver: client_drivers::Driver {
    fn auth_types(&self) -> AuthTypes;
    fn auth(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Result<AuthSuccess, AuthError>;
    fn auth_with_options(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError>;
    fn auth_with(
        &mut self,
        mechanism: Box<dyn Mechanism>,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError>;
    fn auth_auto(
        &mut self,
        credentials: &Credentials,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError>;
    fn is_authenticated(&self) -> bool;
    fn starttls(&mut self) -> Result<Reply, Error>;
}

impl Driver for SmtpClient {
    fn auth_types(&self) -> AuthTypes {
        SmtpAuth::auth_types(self)
    }
    fn auth(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Result<AuthSuccess, AuthError> {
        SmtpAuth::auth(self, mechanism, user, password)
    }
    fn auth_with_options(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        SmtpAuth::auth_with_options(self, mechanism, user, password, options)
    }
    fn auth_with(
        &mut self,
        mechanism: Box<dyn Mechanism>,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        SmtpAuth::auth_with(self, mechanism, options)
    }
    fn auth_auto(
        &mut self,
        credentials: &Credentials,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        SmtpAuth::auth_auto(self, credentials, options)
    }
    fn is_authenticated(&self) -> bool {
        SmtpClient::is_authenticated(self)
    }
    fn starttls(&mut self) -> Result<Reply, Error> {
        SmtpClient::starttls(self)
    }
}

#[cfg(feature = "tokio")]
mod tokio_driver {
    use smtp_auth::tokio::AsyncSmtpAuth;

    use super::*;

    impl Driver for Tokio {
        fn auth_types(&self) -> AuthTypes {
            AsyncSmtpAuth::auth_types(&self.client)
        }
        fn auth(
            &mut self,
            mechanism: &str,
            user: &str,
            password: &str,
        ) -> Result<AuthSuccess, AuthError> {
            self.rt.block_on(AsyncSmtpAuth::auth(
                &mut self.client,
                mechanism,
                user,
                password,
            ))
        }
        fn auth_with_options(
            &mut self,
            mechanism: &str,
            user: &str,
            password: &str,
            options: &AuthOptions,
        ) -> Result<AuthSuccess, AuthError> {
            self.rt.block_on(AsyncSmtpAuth::auth_with_options(
                &mut self.client,
                mechanism,
                user,
                password,
                options,
            ))
        }
        fn auth_with(
            &mut self,
            mechanism: Box<dyn Mechanism>,
            options: &AuthOptions,
        ) -> Result<AuthSuccess, AuthError> {
            self.rt.block_on(AsyncSmtpAuth::auth_with(
                &mut self.client,
                mechanism,
                options,
            ))
        }
        fn auth_auto(
            &mut self,
            credentials: &Credentials,
            options: &AuthOptions,
        ) -> Result<AuthSuccess, AuthError> {
            self.rt.block_on(AsyncSmtpAuth::auth_auto(
                &mut self.client,
                credentials,
                options,
            ))
        }
        fn is_authenticated(&self) -> bool {
            self.client.is_authenticated()
        }
        fn starttls(&mut self) -> Result<Reply, Error> {
            self.rt.block_on(self.client.starttls())
        }
    }
}
