//! AUTH for the blocking [`SmtpClient`]: the extension trait [`SmtpAuth`].

use sasl_mechs::{Credentials, Mechanism};
use smtp_client::SmtpClient;

use crate::auto::AutoAuth;
use crate::error::AuthError;
use crate::exchange::AuthExchange;
use crate::options::{AuthOptions, AuthSuccess, AuthTypes};
use crate::{context, named_exchange};

/// Net::SMTP_auth's methods on the blocking [`SmtpClient`]: `use smtp_auth::SmtpAuth;`.
///
/// Every method runs one [`AuthExchange`] over the client's
/// [`command`](SmtpClient::command), records success with
/// [`confirm_authenticated`](SmtpClient::confirm_authenticated), and refuses a second AUTH once
/// one succeeded (RFC 4954 4) without sending anything. A failure leaves the connection
/// open and usable: another `auth`, with another mechanism, may follow.
///
/// ```no_run
/// use smtp_auth::{AuthOptions, SmtpAuth};
/// use smtp_client::{ClientConfig, SmtpClient, TlsMode};
///
/// let mut smtp = SmtpClient::connect(
///     ClientConfig::new("mail.example.test").port(587).tls_mode(TlsMode::StartTlsRequired),
/// )?;
/// println!("offered: {}", smtp.auth_types().joined());
/// smtp.auth("CRAM-MD5", "user", "password")?;
/// assert!(smtp.is_authenticated());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SmtpAuth {
    /// The mechanisms offered after the last EHLO, as a list and as the server's AUTH line
    /// (Net::SMTP_auth's `auth_types`). After STARTTLS this is the list the server sent
    /// under TLS.
    fn auth_types(&self) -> AuthTypes;

    /// Authenticates with `mechanism` (any case) as `user` with `password`
    /// (Net::SMTP_auth's `auth`), with the default [`AuthOptions`]: PLAIN and LOGIN are
    /// refused on an unencrypted connection.
    fn auth(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Result<AuthSuccess, AuthError>;

    /// [`auth`](Self::auth) with options (clear-text mechanisms without TLS, SCRAM
    /// iteration cap, NTLM settings).
    fn auth_with_options(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError>;

    /// Authenticates with a mechanism built by the caller: an authorization id, a bearer
    /// token, any mechanism of `sasl-mechs` or another crate.
    fn auth_with(
        &mut self,
        mechanism: Box<dyn Mechanism>,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError>;

    /// Authenticates with the strongest mechanism that the server offers, the options
    /// allow and the credentials can drive (SCRAM-SHA-256 first, PLAIN and LOGIN last).
    /// When the server refuses the mechanism itself (504, 534, 538, 454) the next one is
    /// tried; a 535 (bad credentials) or any other error ends the attempts. The success
    /// lists the mechanisms refused before it ([`AuthSuccess::failed_attempts`]); a failure
    /// after more than one attempt is [`AuthError::AllAttemptsFailed`] with each.
    fn auth_auto(
        &mut self,
        credentials: &Credentials,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError>;
}

/// Runs an exchange to its end over the client.
fn run(client: &mut SmtpClient, mut exchange: AuthExchange) -> Result<AuthSuccess, AuthError> {
    while let Some(command) = exchange.next_command() {
        let reply = client.command(&command)?;
        exchange.receive(reply);
    }
    let success = exchange.into_result()?;
    client.confirm_authenticated()?;
    Ok(success)
}

impl SmtpAuth for SmtpClient {
    fn auth_types(&self) -> AuthTypes {
        AuthTypes::from_capabilities(self.capabilities())
    }

    fn auth(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Result<AuthSuccess, AuthError> {
        self.auth_with_options(mechanism, user, password, &AuthOptions::default())
    }

    fn auth_with_options(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        let exchange = named_exchange(self, mechanism, user, password, options)?;
        run(self, exchange)
    }

    fn auth_with(
        &mut self,
        mechanism: Box<dyn Mechanism>,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        let exchange = AuthExchange::start(mechanism, &context(self), options)?;
        run(self, exchange)
    }

    fn auth_auto(
        &mut self,
        credentials: &Credentials,
        options: &AuthOptions,
    ) -> Result<AuthSuccess, AuthError> {
        let mut auto = AutoAuth::default();
        loop {
            let exchange = auto.next(credentials, &context(self), options)?;
            let mechanism = exchange.mechanism();
            match run(self, exchange) {
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
