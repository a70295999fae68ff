//! The SMTP AUTH extension (RFC 4954) in the manner of Perl's Net::SMTP_auth, over any
//! `sasl-mechs` mechanism.
//!
//! - [`AuthExchange`]: the exchange (`AUTH` / `334` / `235`) as a sans-IO state machine:
//!   it names the next command, reads each reply, and ends in [`AuthSuccess`] or a typed
//!   [`AuthError`]. Both front ends run it; they differ only in how a command travels.
//! - [`SmtpAuth`]: Net::SMTP_auth's `auth` and `auth_types` (and `auth_with`,
//!   `auth_auto`) on the blocking [`SmtpClient`](smtp_client::SmtpClient).
//! - `tokio::AsyncSmtpAuth` (feature `tokio`): the same methods on
//!   `smtp_client::tokio::AsyncSmtpClient`, as futures.
//! - [`AuthOptions`]: PLAIN and LOGIN only over TLS unless allowed, the mechanisms the
//!   automatic choice may use, how mechanisms are built.
//!
//! What the exchange gets right: the initial response rides on the AUTH line when the
//! mechanism has one and the line fits 512 octets (an empty one is `=`), otherwise it
//! follows the server's empty 334; challenges are base64 (an empty one is valid); a 334
//! that is not base64, one where none is possible, or too many of them are cancelled with
//! `*`; SCRAM's server signature is checked whether it comes in a last 334 or with the
//! 235; a second AUTH after success is refused before anything is sent. Transcripts and
//! errors never hold the password nor the base64 that carries it.
//!
//! # From Net::SMTP_auth
//!
//! ```perl
//! use Net::SMTP_auth;
//!
//! $smtp = Net::SMTP_auth->new('mailhost');
//! $smtp->auth('CRAM-MD5', 'user', 'password');
//!
//! $smtp->mail($ENV{USER});
//! $smtp->to('postmaster');
//!
//! $smtp->data();
//! $smtp->datasend("To: postmaster\n");
//! $smtp->datasend("\n");
//! $smtp->datasend("A simple test message\n");
//! $smtp->dataend();
//!
//! $smtp->quit;
//! ```
//!
//! ```no_run
//! use smtp_auth::SmtpAuth;
//! use smtp_client::{ClientConfig, SmtpClient};
//! use smtp_proto::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};
//!
//! let mut smtp = SmtpClient::connect(ClientConfig::new("mailhost"))?;
//! smtp.auth("CRAM-MD5", "user", "password")?;
//!
//! let user = std::env::var("USER")?;
//! smtp.mail(&ReversePath::Mailbox(Mailbox::new(&format!("{user}@mailhost"))?), &MailParams::default())?;
//! smtp.rcpt(&ForwardPath::postmaster(), &RcptParams::default())?;
//!
//! smtp.data()?;
//! smtp.datasend(b"To: postmaster\n")?;
//! smtp.datasend(b"\n")?;
//! smtp.datasend(b"A simple test message\n")?;
//! smtp.dataend()?;
//!
//! smtp.quit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where Perl's `auth` returns false, the Rust one returns an [`AuthError`] that says who
//! refused and why: [`AuthError::BadCredentials`] with the 535 reply,
//! [`AuthError::NotOffered`], [`AuthError::PlaintextRefused`], and so on.

mod blocking;
mod error;
mod exchange;
mod options;
pub mod pool;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use blocking::SmtpAuth;
pub use error::{AuthError, Violation};
pub use exchange::{initial_response_fits, AuthExchange, MAX_ROUNDS};
pub use options::{AuthContext, AuthOptions, AuthSuccess, AuthTypes};

// ----- What the blocking and the async front ends share -----------------------------------
//
// Both clients are `smtp_client::Client<D>`: everything but sending a command is the same
// for both, and written here once.

/// What the exchange needs to know about the client, blocking or async.
fn context<D>(client: &smtp_client::Client<D>) -> AuthContext {
    AuthContext::new(
        client.capabilities(),
        client.is_encrypted(),
        client.is_authenticated(),
    )
}

/// The exchange of `auth_with_options`: the checks on a mechanism named by the caller
/// (offered, not clear text without TLS unless allowed), then the mechanism itself.
fn named_exchange<D>(
    client: &smtp_client::Client<D>,
    mechanism: &str,
    user: &str,
    password: &str,
    options: &AuthOptions,
) -> Result<AuthExchange, AuthError> {
    let context = context(client);
    exchange::check_start(
        &context,
        mechanism,
        sasl_mechs::is_plaintext(mechanism),
        options,
    )?;
    let credentials = sasl_mechs::Credentials::new(user, password)?;
    AuthExchange::start_named(mechanism, &credentials, &context, options)
}

/// The README's Rust example, compiled as a doc test so it keeps matching the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme_doctests {}
