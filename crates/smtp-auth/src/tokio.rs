//! AUTH for the async [`AsyncSmtpClient`] (feature `tokio`): the extension trait
//! [`AsyncSmtpAuth`], running the same [`AuthExchange`] as the blocking [`SmtpAuth`].
//!
//! [`SmtpAuth`]: crate::SmtpAuth

use std::future::Future;

use sasl_mechs::{Credentials, Mechanism};
use smtp_client::tokio::AsyncSmtpClient;

use crate::auto::AutoAuth;
use crate::error::AuthError;
use crate::exchange::AuthExchange;
use crate::options::{AuthOptions, AuthSuccess, AuthTypes};
use crate::{context, named_exchange};

/// Net::SMTP_auth's methods on the async [`AsyncSmtpClient`]: `use
/// smtp_auth::tokio::AsyncSmtpAuth;`. The same methods, checks and errors as the blocking
/// [`SmtpAuth`](crate::SmtpAuth), each returning a future.
///
/// Dropping one of these futures mid-exchange poisons the client like any other of its
/// operations (see `AsyncSmtpClient`'s cancellation rules): the connection must be closed.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use smtp_auth::tokio::AsyncSmtpAuth;
/// use smtp_client::tokio::AsyncSmtpClient;
/// use smtp_client::{ClientConfig, TlsMode};
///
/// let mut smtp = AsyncSmtpClient::connect(
///     ClientConfig::new("mail.example.test").port(587).tls_mode(TlsMode::StartTlsRequired),
/// )
/// .await?;
/// println!("offered: {}", smtp.auth_types().joined());
/// smtp.auth("SCRAM-SHA-256", "user", "password").await?;
/// # Ok(())
/// # }
/// ```
pub trait AsyncSmtpAuth {
    /// The mechanisms offered after the last EHLO, as a list and as the server's AUTH line.
    fn auth_types(&self) -> AuthTypes;

    /// Authenticates with `mechanism` as `user` with `password`, default [`AuthOptions`].
    fn auth(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> impl Future<Output = Result<AuthSuccess, AuthError>> + Send;

    /// [`auth`](Self::auth) with options.
    fn auth_with_options(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
        options: &AuthOptions,
    ) -> impl Future<Output = Result<AuthSuccess, AuthError>> + Send;

    /// Authenticates with a mechanism built by the caller.
    fn auth_with(
        &mut self,
        mechanism: Box<dyn Mechanism>,
        options: &AuthOptions,
    ) -> impl Future<Output = Result<AuthSuccess, AuthError>> + Send;

    /// Authenticates with the strongest mechanism both sides allow.
    fn auth_auto(
        &mut self,
        credentials: &Credentials,
        options: &AuthOptions,
    ) -> impl Future<Output = Result<AuthSuccess, AuthError>> + Send;
}

/// Runs an exchange to its end over the client: the blocking loop with `.await`.
async fn run(
    client: &mut AsyncSmtpClient,
    mut exchange: AuthExchange,
) -> Result<AuthSuccess, AuthError> {
    while let Some(command) = exchange.next_command() {
        let reply = client.command(&command).await?;
        exchange.receive(reply);
    }
    let success = exchange.into_result()?;
    client.confirm_authenticated()?;
    Ok(success)
}

impl AsyncSmtpAuth for AsyncSmtpClient {
    fn auth_types(&self) -> AuthTypes {
        AuthTypes::from_capabilities(self.capabilities())
    }

    async fn auth(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Result<AuthSuccess, AuthError> {
        self.auth_with_options(mechanism, user, password, &AuthOptions::default())
            .await
    }

    async fn auth_with_options(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        let exchange = named_exchange(self, mechanism, user, password, options)?;
        run(self, exchange).await
    }

    async fn auth_with(
        &mut self,
        mechanism: Box<dyn Mechanism>,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        let exchange = AuthExchange::start(mechanism, &context(self), options)?;
        run(self, exchange).await
    }

    async fn auth_auto(
        &mut self,
        credentials: &Credentials,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        let mut auto = AutoAuth::default();
        loop {
            let exchange = auto.next(credentials, &context(self), options)?;
            let mechanism = exchange.mechanism();
            match run(self, exchange).await {
                Ok(success) => return Ok(auto.succeeded(success)),
                Err(error) => {
                    if let Some(end) = auto.failed(mechanism, error) {
                        return Err(end);
                    }
                }
            }
        }
    }
}
