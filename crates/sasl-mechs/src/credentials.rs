//! Who authenticates, as whom, with what secret.

use std::fmt;

use zeroize::Zeroizing;

use crate::SaslError;

/// A password or token: zeroed when dropped, printed as `***` by `Debug`.
///
/// ```
/// use sasl_mechs::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "***");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(secret.into()))
    }

    /// The secret itself. Named so that every use stands out in review.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s)
    }
}

/// Credentials for a SASL exchange: an authentication id (the user whose secret is used), an
/// optional authorization id (the identity to act as), and a password and/or a bearer token.
///
/// Constructors refuse what no mechanism can carry: a NUL in any field (it is PLAIN's field
/// separator and ends C strings on servers) and an empty authentication id. Mechanism-specific
/// limits (XOAUTH2's `0x01` separator, for instance) are checked when the mechanism is built.
///
/// ```
/// use sasl_mechs::Credentials;
/// let c = Credentials::new("tim", "tanstaaftanstaaf")?.with_authzid("admin")?;
/// assert_eq!(c.authcid(), "tim");
/// assert_eq!(c.authzid(), Some("admin"));
/// assert!(!format!("{c:?}").contains("tanstaaf"));
/// assert!(Credentials::new("tim", "pass\0word").is_err());
/// # Ok::<(), sasl_mechs::SaslError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    authcid: String,
    authzid: Option<String>,
    password: Option<Secret>,
    token: Option<Secret>,
}

fn check(field: &'static str, value: &str) -> Result<(), SaslError> {
    if value.contains('\0') {
        return Err(SaslError::InvalidCredentials {
            field,
            reason: "contains a NUL character",
        });
    }
    Ok(())
}

fn check_authcid(authcid: &str) -> Result<(), SaslError> {
    check("authentication id", authcid)?;
    if authcid.is_empty() {
        return Err(SaslError::InvalidCredentials {
            field: "authentication id",
            reason: "is empty",
        });
    }
    Ok(())
}

impl Credentials {
    /// A user name and password: for PLAIN, LOGIN, CRAM-MD5, SCRAM-*, NTLM.
    pub fn new(authcid: &str, password: impl Into<Secret>) -> Result<Credentials, SaslError> {
        check_authcid(authcid)?;
        let password = password.into();
        check("password", password.expose())?;
        Ok(Credentials {
            authcid: authcid.to_owned(),
            authzid: None,
            password: Some(password),
            token: None,
        })
    }

    /// A user name and OAuth 2.0 bearer token: for OAUTHBEARER and XOAUTH2.
    pub fn with_token(authcid: &str, token: impl Into<Secret>) -> Result<Credentials, SaslError> {
        check_authcid(authcid)?;
        let token = token.into();
        check("token", token.expose())?;
        Ok(Credentials {
            authcid: authcid.to_owned(),
            authzid: None,
            password: None,
            token: Some(token),
        })
    }

    /// A name with no secret: the trace string for ANONYMOUS (may be empty). For EXTERNAL,
    /// set the identity to act as with [`with_authzid`](Self::with_authzid).
    pub fn without_secret(name: &str) -> Result<Credentials, SaslError> {
        check("authentication id", name)?;
        Ok(Credentials {
            authcid: name.to_owned(),
            authzid: None,
            password: None,
            token: None,
        })
    }

    /// Adds an authorization id: the identity to act as, when it differs from the
    /// authentication id. An empty string means none.
    pub fn with_authzid(mut self, authzid: &str) -> Result<Credentials, SaslError> {
        check("authorization id", authzid)?;
        self.authzid = (!authzid.is_empty()).then(|| authzid.to_owned());
        Ok(self)
    }

    /// Adds a bearer token to password credentials (so [`select`](crate::select) may also
    /// consider OAUTHBEARER and XOAUTH2).
    pub fn and_token(mut self, token: impl Into<Secret>) -> Result<Credentials, SaslError> {
        let token = token.into();
        check("token", token.expose())?;
        self.token = Some(token);
        Ok(self)
    }

    /// The authentication id: whose secret this is.
    pub fn authcid(&self) -> &str {
        &self.authcid
    }

    /// The authorization id, if one was set.
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }

    /// The password, if any.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// The bearer token, if any.
    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    /// The password, for a `mechanism` that needs one and has no field for an authorization
    /// id (LOGIN, CRAM-MD5, NTLM). An authorization id is refused rather than dropped: the
    /// caller asked to act as someone else, and authenticating as oneself instead would be
    /// a silent change of identity.
    pub(crate) fn password_without_authzid(
        &self,
        mechanism: &'static str,
    ) -> Result<&Secret, SaslError> {
        let password = self.password().ok_or(SaslError::MissingCredential {
            mechanism,
            needs: "a password",
        })?;
        if self.authzid().is_some() {
            return Err(SaslError::MissingCredential {
                mechanism,
                needs: "no authorization id (it cannot carry one)",
            });
        }
        Ok(password)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authcid", &self.authcid)
            .field("authzid", &self.authzid)
            .field("password", &self.password)
            .field("token", &self.token)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_secrets() {
        let c = Credentials::new("u", "s3cr3t-pw")
            .unwrap()
            .and_token("tok-value")
            .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("s3cr3t"), "{d}");
        assert!(!d.contains("tok-value"), "{d}");
        assert!(d.contains("***"), "{d}");
    }

    #[test]
    fn nul_and_empty_refused() {
        for (r, field) in [
            (Credentials::new("a\0b", "p"), "authentication id"),
            (Credentials::new("", "p"), "authentication id"),
            (Credentials::new("a", "p\0"), "password"),
            (Credentials::with_token("a", "t\0"), "token"),
        ] {
            match r {
                Err(SaslError::InvalidCredentials { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected InvalidCredentials, got {other:?}"),
            }
        }
        assert!(Credentials::new("a", "p")
            .unwrap()
            .with_authzid("x\0")
            .is_err());
    }

    #[test]
    fn password_without_authzid_refuses_a_token_or_an_authzid() {
        let plain = Credentials::new("u", "pw").unwrap();
        assert_eq!(
            plain.password_without_authzid("LOGIN").unwrap().expose(),
            "pw"
        );
        let with_authzid = plain.clone().with_authzid("boss").unwrap();
        let token = Credentials::with_token("u", "tok").unwrap();
        for (creds, needs) in [
            (with_authzid, "no authorization id (it cannot carry one)"),
            (token, "a password"),
        ] {
            assert_eq!(
                creds.password_without_authzid("CRAM-MD5").unwrap_err(),
                SaslError::MissingCredential {
                    mechanism: "CRAM-MD5",
                    needs
                }
            );
        }
    }
}
