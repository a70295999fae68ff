//! What the caller decides (options) and what the session knows (context).

use sasl_mechs::{ChannelBinding, ClientOptions};
use smtp_proto::{Capabilities, Reply};

/// The caller's rules for an AUTH exchange. `Default`: PLAIN and LOGIN only over TLS, any
/// offered mechanism for [`auth_auto`](crate::SmtpAuth::auth_auto) but EXTERNAL and
/// ANONYMOUS, default [`ClientOptions`].
///
/// ```
/// use smtp_auth::AuthOptions;
/// let options = AuthOptions::new()
///     .allow_plaintext_without_tls(true)
///     .allowed(&["SCRAM-SHA-256", "PLAIN"]);
/// assert!(options.allow_plaintext_without_tls);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AuthOptions {
    /// Allow PLAIN and LOGIN (which send the password itself) on an unencrypted
    /// connection. Off by default: they are refused before anything is sent.
    pub allow_plaintext_without_tls: bool,
    /// For the automatic choice: the mechanisms accepted (any case). `None`: every
    /// mechanism `sasl-mechs` implements but EXTERNAL and ANONYMOUS.
    pub allowed: Option<Vec<String>>,
    /// How mechanisms are built by name (SCRAM iteration cap, OAUTHBEARER host, NTLM).
    pub client_options: ClientOptions,
    /// Most 334 challenges answered before the client gives up and cancels
    /// ([`MAX_ROUNDS`](crate::MAX_ROUNDS) when `None`).
    pub max_rounds: Option<usize>,
    /// Send AUTH with a mechanism the server did not advertise (or when it advertised no
    /// AUTH at all), as Net::SMTP_auth does: some servers take an unadvertised LOGIN. Only
    /// for a mechanism named by the caller (`auth`, `auth_with`); the automatic choice
    /// never picks one. Off by default: [`AuthError::NotOffered`](crate::AuthError::NotOffered)
    /// before anything is sent.
    pub allow_unadvertised: bool,
    /// Never bind SCRAM to the TLS channel. Off by default: over TLS the connection's
    /// binding data ([`AuthContext::channel_bindings`]) goes to SCRAM, so a server that
    /// offers SCRAM-SHA-*-PLUS gets the -PLUS variant, and one that offers only plain SCRAM
    /// gets the `y` flag that lets it detect a downgrade (RFC 5802 §6). Binding data set in
    /// [`client_options`](Self::client_options) is used whatever this says.
    pub without_channel_binding: bool,
}

impl AuthOptions {
    /// The default options.
    pub fn new() -> AuthOptions {
        AuthOptions::default()
    }

    /// Allows (or not) PLAIN and LOGIN on an unencrypted connection.
    pub fn allow_plaintext_without_tls(mut self, yes: bool) -> AuthOptions {
        self.allow_plaintext_without_tls = yes;
        self
    }

    /// Restricts the automatic choice to these mechanisms.
    pub fn allowed(mut self, names: &[&str]) -> AuthOptions {
        self.allowed = Some(names.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Allows (or not) a mechanism the server did not advertise, on explicit request.
    pub fn allow_unadvertised(mut self, yes: bool) -> AuthOptions {
        self.allow_unadvertised = yes;
        self
    }

    /// Sets how mechanisms are built by name.
    pub fn client_options(mut self, options: ClientOptions) -> AuthOptions {
        self.client_options = options;
        self
    }

    /// Uses (the default) or not the TLS channel's binding data for SCRAM.
    pub fn channel_binding(mut self, yes: bool) -> AuthOptions {
        self.without_channel_binding = !yes;
        self
    }

    /// The client options a mechanism is built with: [`client_options`](Self::client_options),
    /// plus, over TLS and unless [`without_channel_binding`](Self::without_channel_binding),
    /// the channel's binding data (the first of `context.channel_bindings`: `tls-exporter`
    /// on TLS 1.3, else `tls-server-end-point`), and whether the server offered -PLUS.
    pub fn effective_client_options(&self, context: &AuthContext) -> ClientOptions {
        let mut options = self.client_options.clone();
        if options.channel_binding.is_none() && !self.without_channel_binding && context.encrypted {
            options.channel_binding = context.channel_bindings.first().cloned();
        }
        options.plus_offered = context.offered.iter().any(|m| m.ends_with("-PLUS"));
        options
    }

    /// Sets the most 334 challenges answered in one exchange.
    pub fn max_rounds(mut self, rounds: usize) -> AuthOptions {
        self.max_rounds = Some(rounds);
        self
    }
}

/// What the session knows that decides whether an AUTH may start: the mechanisms offered
/// after the last EHLO, whether the channel is encrypted, whether AUTH already succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthContext {
    /// The mechanisms the server offered (upper case), empty when it offered none.
    pub offered: Vec<String>,
    /// True when the connection is protected by TLS.
    pub encrypted: bool,
    /// True when AUTH already succeeded on this connection.
    pub authenticated: bool,
    /// The TLS channel's binding data, best first (`tls-exporter` on TLS 1.3, then
    /// `tls-server-end-point`); empty without TLS.
    pub channel_bindings: Vec<ChannelBinding>,
}

impl AuthContext {
    /// The context of a session with these capabilities (`None`: HELO, no EHLO).
    pub fn new(caps: Option<&Capabilities>, encrypted: bool, authenticated: bool) -> AuthContext {
        AuthContext {
            offered: caps
                .map(|c| c.auth_mechanisms().to_vec())
                .unwrap_or_default(),
            encrypted,
            authenticated,
            channel_bindings: Vec::new(),
        }
    }

    /// Adds the TLS channel's binding data, from the connection's `tls-exporter` value and
    /// server certificate (whose `tls-server-end-point` hash is taken here; a certificate
    /// RFC 5929 gives no hash for adds nothing).
    pub fn with_tls_channel(
        mut self,
        exporter: Option<Vec<u8>>,
        certificate: Option<&[u8]>,
    ) -> AuthContext {
        self.channel_bindings = exporter
            .map(ChannelBinding::tls_exporter)
            .into_iter()
            .chain(
                certificate.and_then(|c| sasl_mechs::channel_binding::tls_server_end_point(c).ok()),
            )
            .collect();
        self
    }

    /// True when the server offered `mechanism` (any case).
    pub fn offers(&self, mechanism: &str) -> bool {
        self.offered
            .iter()
            .any(|o| o.eq_ignore_ascii_case(mechanism))
    }
}

/// The server's AUTH offer after the last EHLO, in both of Net::SMTP_auth's forms.
///
/// ```
/// use smtp_auth::AuthTypes;
/// use smtp_proto::{Capabilities, Reply, ReplyCode};
/// let ehlo = Reply::new(ReplyCode::OK,
///     &[b"mx.example.test", b"AUTH=LOGIN PLAIN", b"PIPELINING"]).unwrap();
/// let types = AuthTypes::from_capabilities(Some(&Capabilities::from_ehlo(&ehlo)));
/// assert_eq!(types.mechanisms, ["LOGIN", "PLAIN"]);
/// assert_eq!(types.line.as_deref(), Some("AUTH=LOGIN PLAIN"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthTypes {
    /// The mechanisms, upper case, `AUTH` and legacy `AUTH=` lines merged (Perl's list
    /// context).
    pub mechanisms: Vec<String>,
    /// The AUTH line exactly as the server sent it (the `AUTH=` line when there is no
    /// `AUTH` line); `None` when the server offered no AUTH.
    pub line: Option<String>,
}

impl AuthTypes {
    /// Reads both forms from the capabilities of the last EHLO (`None`: no EHLO).
    pub fn from_capabilities(caps: Option<&Capabilities>) -> AuthTypes {
        AuthTypes {
            mechanisms: caps
                .map(|c| c.auth_mechanisms().to_vec())
                .unwrap_or_default(),
            line: caps.and_then(|c| c.auth_line()).map(str::to_owned),
        }
    }

    /// The mechanisms as one space-separated string, as Net::SMTP_auth's `auth_types`
    /// returns in scalar context.
    pub fn joined(&self) -> String {
        self.mechanisms.join(" ")
    }
}

/// A successful AUTH.
#[derive(Debug)]
pub struct AuthSuccess {
    /// The mechanism that succeeded.
    pub mechanism: &'static str,
    /// The server's 235 reply.
    pub reply: Reply,
    /// `auth_auto`: the stronger mechanisms tried first that the server refused as such
    /// (504, 534, 538, 454), each with its error, in the order tried. Empty otherwise.
    pub failed_attempts: Vec<crate::AuthAttempt>,
}
