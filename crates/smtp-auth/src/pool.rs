//! Connectors for `smtp-client`'s pools that authenticate each new connection: with fixed
//! credentials (the strongest mechanism both sides have), or with a mechanism built afresh
//! for each connection (an OAuth token that changes).

use sasl_mechs::{Credentials, Mechanism};
use smtp_client::{ClientConfig, Error, SmtpClient};

use crate::{AuthError, AuthOptions, SmtpAuth};

/// What an authentication failure is to a pool: the client's error when it is one, else
/// [`Error::Setup`].
fn setup_error(err: AuthError) -> Error {
    match err {
        AuthError::Client(err) => err,
        other => Error::Setup(Box::new(other)),
    }
}

/// A connector for the blocking pool: connects, then `auth_auto` with `credentials`.
///
/// ```no_run
/// use sasl_mechs::Credentials;
/// use smtp_auth::{pool::authenticating, AuthOptions};
/// use smtp_client::pool::{blocking::Pool, PoolConfig};
/// use smtp_client::ClientConfig;
///
/// let credentials = Credentials::new("alice", "secret")?;
/// let pool = Pool::with_connector(
///     PoolConfig::new(ClientConfig::new("mail.example.test").port(587)),
///     authenticating(credentials, AuthOptions::default()),
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn authenticating(
    credentials: Credentials,
    options: AuthOptions,
) -> impl Fn(&ClientConfig) -> Result<SmtpClient, Error> + Send + Sync + 'static {
    move |config| {
        let mut client = SmtpClient::connect(config.clone())?;
        client
            .auth_auto(&credentials, &options)
            .map_err(setup_error)?;
        Ok(client)
    }
}

/// A connector for the blocking pool that authenticates each new connection with the
/// mechanism `mechanism` builds for it (a fresh OAuth token each time, say).
pub fn authenticating_with(
    mechanism: impl Fn() -> Result<Box<dyn Mechanism>, AuthError> + Send + Sync + 'static,
    options: AuthOptions,
) -> impl Fn(&ClientConfig) -> Result<SmtpClient, Error> + Send + Sync + 'static {
    move |config| {
        let mut client = SmtpClient::connect(config.clone())?;
        let mechanism = mechanism().map_err(setup_error)?;
        client.auth_with(mechanism, &options).map_err(setup_error)?;
        Ok(client)
    }
}

/// Connectors for the async pool (feature `tokio`).
#[cfg(feature = "tokio")]
pub mod tokio {
    use std::sync::Arc;

    use super::*;
    use crate::tokio::AsyncSmtpAuth;
    use smtp_client::pool::tokio::Connecting;
    use smtp_client::tokio::AsyncSmtpClient;

    /// The async twin of [`authenticating`](super::authenticating).
    pub fn authenticating(
        credentials: Credentials,
        options: AuthOptions,
    ) -> impl Fn(ClientConfig) -> Connecting + Send + Sync + 'static {
        let shared = Arc::new((credentials, options));
        move |config| {
            let shared = Arc::clone(&shared);
            Box::pin(async move {
                let mut client = AsyncSmtpClient::connect(config).await?;
                let (credentials, options) = &*shared;
                client
                    .auth_auto(credentials, options)
                    .await
                    .map_err(setup_error)?;
                Ok(client)
            })
        }
    }
}
