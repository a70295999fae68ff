//! One test body, two drivers: the blocking client with [`SmtpAuth`] and, with feature
//! `tokio`, the async client with `AsyncSmtpAuth`, each call run to completion on a
//! current-thread runtime. The trait's methods are the crates' own, one line each.
//!
//! Shared by `crates/smtp-auth/tests/*.rs` and `tests/tests/auth_interop.rs`.

#![allow(dead_code)]

use sasl_mechs::{Credentials, Mechanism};
use smtp_auth::{AuthError, AuthOptions, AuthSuccess, AuthTypes, SmtpAuth};
use smtp_client::{ClientConfig, Envelope, Error, SendReport, SmtpClient};
use smtp_proto::Reply;

/// The client API the tests use, with the blocking signatures.
pub trait Driver: Sized + std::fmt::Debug {
    fn connect(config: ClientConfig) -> Result<Self, Error>;
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
    fn is_encrypted(&self) -> bool;
    fn starttls(&mut self) -> Result<Reply, Error>;
    fn noop(&mut self) -> Result<Reply, Error>;
    fn quit(&mut self) -> Result<Option<Reply>, Error>;
    fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<SendReport, Error>;
}

impl Driver for SmtpClient {
    fn connect(config: ClientConfig) -> Result<Self, Error> {
        SmtpClient::connect(config)
    }
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
    fn is_encrypted(&self) -> bool {
        SmtpClient::is_encrypted(self)
    }
    fn starttls(&mut self) -> Result<Reply, Error> {
        SmtpClient::starttls(self)
    }
    fn noop(&mut self) -> Result<Reply, Error> {
        SmtpClient::noop(self)
    }
    fn quit(&mut self) -> Result<Option<Reply>, Error> {
        SmtpClient::quit(self)
    }
    fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<SendReport, Error> {
        SmtpClient::send(self, envelope, body)
    }
}

#[cfg(feature = "tokio")]
pub use self::tokio_driver::Tokio;

#[cfg(feature = "tokio")]
mod tokio_driver {
    use smtp_auth::tokio::AsyncSmtpAuth;
    use smtp_client::tokio::AsyncSmtpClient;
    use tokio::runtime::Runtime;

    use super::*;

    /// The async client, each call run to completion on its own current-thread runtime.
    #[derive(Debug)]
    pub struct Tokio {
        rt: Runtime,
        client: AsyncSmtpClient,
    }

    impl Driver for Tokio {
        fn connect(config: ClientConfig) -> Result<Self, Error> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime");
            let client = rt.block_on(AsyncSmtpClient::connect(config))?;
            Ok(Tokio { rt, client })
        }
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
        fn is_encrypted(&self) -> bool {
            self.client.is_encrypted()
        }
        fn starttls(&mut self) -> Result<Reply, Error> {
            self.rt.block_on(self.client.starttls())
        }
        fn noop(&mut self) -> Result<Reply, Error> {
            self.rt.block_on(self.client.noop())
        }
        fn quit(&mut self) -> Result<Option<Reply>, Error> {
            self.rt.block_on(self.client.quit())
        }
        fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<SendReport, Error> {
            self.rt.block_on(self.client.send(envelope, body))
        }
    }
}

/// Makes a `#[test]` of each generic test function for each driver: `blocking::name` and
/// (with feature `tokio`) `tokio::name`. `for_both_drivers!(#[ignore = "why"] a, b)` puts
/// the attribute on every generated test.
macro_rules! for_both_drivers {
    (#[$meta:meta] $($name:ident),* $(,)?) => {
        mod blocking {
            $( #[test] #[$meta] fn $name() { super::$name::<smtp_client::SmtpClient>() } )*
        }
        #[cfg(feature = "tokio")]
        mod tokio {
            $( #[test] #[$meta] fn $name() { super::$name::<super::drivers::Tokio>() } )*
        }
    };
    ($($name:ident),* $(,)?) => {
        for_both_drivers!(#[allow(unused)] $($name),*);
    };
}
