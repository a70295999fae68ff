//! Choosing a mechanism from what the server offers, and building it by name.

use crate::{Credentials, Mechanism, MechanismName, Needs, SaslError};

/// The names of [`MechanismName::ALL_KNOWN`], strongest first: the order [`select`]
/// prefers. [`MechanismName::ALL_KNOWN`] says why.
pub const STRENGTH_ORDER: &[&str] = &crate::name::KNOWN_NAMES;

/// Whether the mechanism called `name` (any case) sends the password in clear: PLAIN and
/// LOGIN. False for a name this crate does not know. See
/// [`MechanismName::sends_password_in_clear`].
///
/// ```
/// use sasl_mechs::{is_plaintext, MechanismName};
/// assert!(is_plaintext("login"));
/// assert!(is_plaintext(MechanismName::Plain));
/// assert!(!is_plaintext("SCRAM-SHA-256"));
/// ```
pub fn is_plaintext(name: impl AsRef<str>) -> bool {
    name.as_ref()
        .parse::<MechanismName>()
        .is_ok_and(|n| n.sends_password_in_clear())
}

/// The caller's rules for [`select`].
///
/// ```
/// use sasl_mechs::Policy;
/// let p = Policy::new(false).allow(&["CRAM-MD5", "PLAIN"]).allow_plaintext(true);
/// assert!(!p.channel_encrypted);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The mechanisms the caller accepts (any case). Empty: every mechanism in
    /// [`STRENGTH_ORDER`] except EXTERNAL and ANONYMOUS.
    pub allowed: Vec<String>,
    /// True when the channel is encrypted (TLS, STARTTLS done).
    pub channel_encrypted: bool,
    /// True to allow PLAIN and LOGIN on an unencrypted channel.
    pub allow_plaintext: bool,
    /// True when the caller has channel-binding data for the TLS channel (see
    /// [`ClientOptions::channel_binding`]): only then are the -PLUS mechanisms chosen.
    pub channel_binding: bool,
}

impl Policy {
    /// The default policy for a channel: every mechanism but EXTERNAL/ANONYMOUS, clear-text
    /// ones only if encrypted.
    pub fn new(channel_encrypted: bool) -> Policy {
        Policy {
            channel_encrypted,
            ..Policy::default()
        }
    }

    /// Restricts the choice to these mechanisms.
    pub fn allow(mut self, names: &[&str]) -> Policy {
        self.allowed = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Says whether the caller has channel-binding data, so that -PLUS mechanisms may be
    /// chosen.
    pub fn channel_binding(mut self, yes: bool) -> Policy {
        self.channel_binding = yes;
        self
    }

    /// Allows (or not) PLAIN and LOGIN on an unencrypted channel.
    pub fn allow_plaintext(mut self, yes: bool) -> Policy {
        self.allow_plaintext = yes;
        self
    }
}

/// Picks the strongest mechanism that the server offers, the policy allows and the
/// credentials can drive; returns its canonical name, for [`client_mechanism`].
///
/// Names compare case-insensitively. Token mechanisms need [`Credentials::token`], the others
/// (but EXTERNAL and ANONYMOUS) a password. PLAIN and LOGIN are refused on an unencrypted
/// channel unless [`Policy::allow_plaintext`] is set; the error then says so.
///
/// ```
/// use sasl_mechs::{select, Credentials, Policy, SaslError};
/// let creds = Credentials::new("tim", "tanstaaftanstaaf")?;
/// let offered = ["plain", "LOGIN", "CRAM-MD5"];
/// assert_eq!(select(&offered, &creds, &Policy::new(false))?, "CRAM-MD5");
/// assert!(matches!(
///     select(&["PLAIN", "LOGIN"], &creds, &Policy::new(false)),
///     Err(SaslError::NoSuitableMechanism { plaintext_refused: true, .. })
/// ));
/// assert_eq!(select(&["LOGIN", "PLAIN"], &creds, &Policy::new(true))?, "PLAIN");
/// # Ok::<(), SaslError>(())
/// ```
pub fn select(
    offered: &[impl AsRef<str>],
    creds: &Credentials,
    policy: &Policy,
) -> Result<&'static str, SaslError> {
    let mut plaintext_refused = false;
    for mechanism in MechanismName::ALL_KNOWN {
        let (Some(name), Some(needs)) = (mechanism.static_str(), mechanism.needs()) else {
            continue; // Every name in ALL_KNOWN has both.
        };
        if !offered
            .iter()
            .any(|o| o.as_ref().eq_ignore_ascii_case(name))
        {
            continue;
        }
        let allowed = if policy.allowed.is_empty() {
            needs != Needs::Nothing
        } else {
            policy.allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
        };
        if !allowed {
            continue;
        }
        let usable = match needs {
            Needs::Password => creds.password().is_some(),
            Needs::PasswordAndChannelBinding => {
                creds.password().is_some() && policy.channel_binding
            }
            Needs::Token => creds.token().is_some(),
            // GSSAPI's ticket is the system's: it can only be used when the crate can call
            // the GSS-API library.
            Needs::Nothing => mechanism != MechanismName::Gssapi || cfg!(feature = "gssapi"),
        };
        if !usable {
            continue;
        }
        if mechanism.sends_password_in_clear()
            && !policy.channel_encrypted
            && !policy.allow_plaintext
        {
            plaintext_refused = true;
            continue;
        }
        return Ok(name);
    }
    Err(SaslError::NoSuitableMechanism {
        offered: offered.iter().map(|o| o.as_ref().to_owned()).collect(),
        plaintext_refused,
    })
}

/// Options for building client mechanisms. `Default` suits most servers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// SCRAM: the largest iteration count accepted from the server
    /// ([`DEFAULT_MAX_ITERATIONS`](crate::DEFAULT_MAX_ITERATIONS)).
    pub scram_max_iterations: u32,
    /// OAUTHBEARER: the server host name to send (`host=`), if any.
    pub oauth_host: Option<String>,
    /// OAUTHBEARER: the server port to send (`port=`), if any.
    pub oauth_port: Option<u16>,
    /// NTLM: version, workstation, domain.
    pub ntlm: crate::NtlmOptions,
    /// DIGEST-MD5: the service part of the digest-uri (default `"smtp"`; `"imap"`,
    /// `"pop"`, `"ldap"`, ... for other protocols).
    pub digest_uri_service: String,
    /// GSSAPI: the service of the acceptor name `service@host` (default `"smtp"`; `"imap"`,
    /// `"pop"`, `"ldap"`, ... for other protocols): the server's principal is
    /// `service/host@REALM`.
    pub gssapi_service: String,
    /// The server's host name, as the user named it: the host part of DIGEST-MD5's
    /// digest-uri and of GSSAPI's acceptor name (its fully qualified name, as the KDC
    /// knows it). `None`: `"localhost"`. Cyrus SASL compares it with its own host name.
    pub host: Option<String>,
    /// DIGEST-MD5: the realm to use, whatever the server offers. `None`: the first realm the
    /// server offers, or none.
    pub digest_realm: Option<String>,
    /// SCRAM: the channel-binding data of the TLS connection, if the caller has it. Needed
    /// for SCRAM-SHA-*-PLUS. With a plain SCRAM it makes the client send `y` ("I could
    /// bind") unless [`plus_offered`](Self::plus_offered) is set (RFC 5802 §6).
    pub channel_binding: Option<crate::ChannelBinding>,
    /// SCRAM: true when the server offered a -PLUS mechanism. A plain SCRAM then says `n`
    /// even with binding data (the client chose not to bind); false with binding data it
    /// says `y`, which a server that does support binding fails: a downgrade is caught.
    pub plus_offered: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            scram_max_iterations: crate::DEFAULT_MAX_ITERATIONS,
            oauth_host: None,
            oauth_port: None,
            ntlm: crate::NtlmOptions::default(),
            digest_uri_service: "smtp".to_owned(),
            gssapi_service: "smtp".to_owned(),
            host: None,
            digest_realm: None,
            channel_binding: None,
            plus_offered: false,
        }
    }
}

/// Builds the client mechanism called `name` (any case, or a [`MechanismName`]) for these
/// credentials.
///
/// ```
/// use sasl_mechs::{client_mechanism, ClientOptions, Credentials, MechanismName};
/// let creds = Credentials::new("tim", "tanstaaftanstaaf")?;
/// let mut m = client_mechanism("cram-md5", &creds, &ClientOptions::default())?;
/// assert_eq!(m.name(), "CRAM-MD5");
/// let r = m.respond(b"<1896.697170952@postoffice.reston.mci.net>")?;
/// assert_eq!(&r[..], b"tim b913a602c7eda7a495b4e6e7334d3890");
/// m.finish(None)?;
/// let m = client_mechanism(MechanismName::Plain, &creds, &ClientOptions::default())?;
/// assert!(m.sends_password_in_clear());
/// # Ok::<(), sasl_mechs::SaslError>(())
/// ```
pub fn client_mechanism(
    name: impl AsRef<str>,
    creds: &Credentials,
    options: &ClientOptions,
) -> Result<Box<dyn Mechanism>, SaslError> {
    let name = name.as_ref();
    let unknown = || SaslError::UnknownMechanism {
        name: name.to_owned(),
    };
    let scram = |hash| {
        let binding = match (&options.channel_binding, options.plus_offered) {
            (Some(_), false) => crate::ScramBinding::ServerDidNotOffer,
            _ => crate::ScramBinding::None,
        };
        crate::Scram::new(hash, creds).map(|s| {
            s.max_iterations(options.scram_max_iterations)
                .channel_binding(binding)
        })
    };
    let scram_plus = |hash| {
        let Some(cb) = &options.channel_binding else {
            return Err(SaslError::MissingCredential {
                mechanism: crate::ScramHash::plus_name(hash),
                needs: "channel-binding data (ClientOptions::channel_binding)",
            });
        };
        crate::Scram::new(hash, creds).map(|s| {
            s.max_iterations(options.scram_max_iterations)
                .channel_binding(crate::ScramBinding::Bound(cb.clone()))
        })
    };
    Ok(
        match name.parse::<MechanismName>().map_err(|_| unknown())? {
            MechanismName::Plain => Box::new(crate::Plain::new(creds)?),
            MechanismName::Login => Box::new(crate::Login::new(creds)?),
            MechanismName::CramMd5 => Box::new(crate::CramMd5::new(creds)?),
            MechanismName::ScramSha1 => Box::new(scram(crate::ScramHash::Sha1)?),
            MechanismName::ScramSha256 => Box::new(scram(crate::ScramHash::Sha256)?),
            MechanismName::ScramSha1Plus => Box::new(scram_plus(crate::ScramHash::Sha1)?),
            MechanismName::ScramSha256Plus => Box::new(scram_plus(crate::ScramHash::Sha256)?),
            MechanismName::DigestMd5 => Box::new(crate::DigestMd5::new(
                creds,
                &options.digest_uri_service,
                options.host.as_deref().unwrap_or("localhost"),
                options.digest_realm.as_deref(),
            )?),
            MechanismName::Ntlm => Box::new(crate::Ntlm::new(creds, &options.ntlm)?),
            MechanismName::OAuthBearer => Box::new(crate::OAuth::new(
                crate::OAuthKind::OAuthBearer,
                creds,
                options.oauth_host.as_deref(),
                options.oauth_port,
            )?),
            MechanismName::XOAuth2 => Box::new(crate::OAuth::new(
                crate::OAuthKind::XOAuth2,
                creds,
                None,
                None,
            )?),
            MechanismName::External => Box::new(crate::External::new(creds)),
            MechanismName::Anonymous => Box::new(crate::Anonymous::new(creds)?),
            #[cfg(feature = "gssapi")]
            MechanismName::Gssapi => Box::new(crate::Gssapi::new(
                creds,
                &options.gssapi_service,
                options.host.as_deref().unwrap_or("localhost"),
            )?),
            #[cfg(not(feature = "gssapi"))]
            MechanismName::Gssapi => return Err(crate::gssapi::GssapiError::NotBuilt.into()),
            MechanismName::Other(_) => return Err(unknown()),
        },
    )
}
