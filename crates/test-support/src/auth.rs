//! The AUTH tests' driver: the client's [`client::Driver`](crate::client::Driver) plus the
//! AUTH calls of [`SmtpAuth`] and STARTTLS, for the blocking client and, with feature
//! `tokio`, for the async client with `AsyncSmtpAuth` on the same
//! `client::Tokio` wrapper. The trait's methods are the crates' own, one
//! line each.

use sasl_mechs::{Credentials, Mechanism};
use smtp_auth::{AuthError, AuthOptions, AuthSuccess, AuthTypes, SmtpAuth};
use smtp_client::{Error, SmtpClient};
use smtp_proto::Reply;

/// The client API the tests use, with the blocking signatures: the client's, plus AUTH.
#[allow(missing_docs)] // Each method is the AUTH trait's or the client's of the same name.
pub trait Driver: crate::client::Driver {
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
    use crate::client::Tokio;

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
