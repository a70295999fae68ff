//! TLS policy and certificate trust for the client (rustls, ring provider).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, TlsError};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain text only; STARTTLS is never tried. For tests and trusted local relays.
    None,
    /// STARTTLS when the server offers it, plain text otherwise. Open to a man in the
    /// middle who removes STARTTLS from the EHLO reply: prefer [`TlsMode::StartTlsRequired`].
    StartTlsOpportunistic,
    /// STARTTLS or fail (the default): nothing but EHLO, STARTTLS and QUIT is sent in clear.
    #[default]
    StartTlsRequired,
    /// TLS from the first byte (RFC 8314 "implicit TLS", port 465; Net::SMTP's `SSL`).
    Implicit,
}

impl TlsMode {
    /// The port used when none is given: 465 for implicit TLS, 25 otherwise (as Net::SMTP).
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 465,
            _ => 25,
        }
    }
}

#[derive(Clone)]
enum Roots {
    WebPki,
    Platform,
    None,
}

/// Which server certificates the client trusts, and how it checks them.
///
/// By default: the Mozilla roots bundled in `webpki-roots`, and the certificate must name
/// the host connected to (the host name given, or the `server_name` override). Add a private
/// CA with [`add_ca_pem_file`](Self::add_ca_pem_file) or [`add_ca_der`](Self::add_ca_der).
///
/// ```
/// use smtp_client::TlsConfig;
/// let tls = TlsConfig::webpki_roots().server_name("mail.example.test");
/// assert!(tls.build().is_ok());
/// assert!(!tls.accepts_any_certificate());
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    roots: Roots,
    extra: Vec<CertificateDer<'static>>,
    accept_any: bool,
    server_name: Option<String>,
    prebuilt: Option<Arc<rustls::ClientConfig>>,
    client_cert: Option<Arc<ClientCert>>,
}

/// A client certificate chain and its private key, presented when the server asks for one.
struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::webpki_roots()
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roots = match self.roots {
            Roots::WebPki => "webpki-roots",
            Roots::Platform => "platform",
            Roots::None => "none",
        };
        f.debug_struct("TlsConfig")
            .field("roots", &roots)
            .field("extra_cas", &self.extra.len())
            .field("accept_any_certificate", &self.accept_any)
            .field("server_name", &self.server_name)
            .field("prebuilt", &self.prebuilt.is_some())
            // The chain's length only: the key is never shown.
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|c| c.chain.len()),
            )
            .finish()
    }
}

impl TlsConfig {
    /// Trust the Mozilla roots bundled in `webpki-roots` (the default).
    pub fn webpki_roots() -> TlsConfig {
        TlsConfig {
            roots: Roots::WebPki,
            extra: Vec::new(),
            accept_any: false,
            server_name: None,
            prebuilt: None,
            client_cert: None,
        }
    }

    /// Trust the operating system's roots (`rustls-native-certs`).
    pub fn platform_roots() -> TlsConfig {
        TlsConfig {
            roots: Roots::Platform,
            ..TlsConfig::webpki_roots()
        }
    }

    /// Trust only the CAs added with [`add_ca_pem_file`](Self::add_ca_pem_file) /
    /// [`add_ca_der`](Self::add_ca_der).
    pub fn no_default_roots() -> TlsConfig {
        TlsConfig {
            roots: Roots::None,
            ..TlsConfig::webpki_roots()
        }
    }

    /// Uses a rustls configuration built by the caller (client certificates, pinned keys...).
    /// The server name rules still apply.
    pub fn from_rustls(config: Arc<rustls::ClientConfig>) -> TlsConfig {
        TlsConfig {
            prebuilt: Some(config),
            ..TlsConfig::webpki_roots()
        }
    }

    /// Also trusts every certificate in a PEM file (a private CA).
    pub fn add_ca_pem_file(mut self, path: impl AsRef<Path>) -> Result<TlsConfig, Error> {
        let path = path.as_ref();
        let iter = CertificateDer::pem_file_iter(path).map_err(|e| {
            TlsError::Config(format!("cannot read CA file {}: {e}", path.display()))
        })?;
        let mut n = 0;
        for cert in iter {
            let cert = cert.map_err(|e| {
                TlsError::Config(format!("bad certificate in {}: {e}", path.display()))
            })?;
            self.extra.push(cert);
            n += 1;
        }
        if n == 0 {
            return Err(TlsError::Config(format!("no certificate in {}", path.display())).into());
        }
        Ok(self)
    }

    /// Also trusts this certificate (DER) as a root.
    pub fn add_ca_der(mut self, cert: CertificateDer<'static>) -> TlsConfig {
        self.extra.push(cert);
        self
    }

    /// Presents this certificate chain (the client's own certificate first) and its private
    /// key when the server asks for a client certificate (TLS client authentication, which
    /// SASL EXTERNAL then relies on). Whether the key matches the certificate is checked by
    /// [`build`](Self::build). Without it, the client answers a certificate request with
    /// none, and the server decides whether to go on.
    ///
    /// A configuration from [`from_rustls`](Self::from_rustls) keeps its own client
    /// authentication.
    pub fn client_cert(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> TlsConfig {
        self.client_cert = Some(Arc::new(ClientCert { chain, key }));
        self
    }

    /// [`client_cert`](Self::client_cert) from PEM files: every certificate in `cert` (the
    /// client's own first, then any intermediates) and the first private key in `key`
    /// (PKCS#8, PKCS#1 or SEC1). The two may be the same file.
    ///
    /// ```no_run
    /// use smtp_client::TlsConfig;
    /// let tls = TlsConfig::webpki_roots().client_cert_pem_files("client.pem", "client.key")?;
    /// assert!(tls.has_client_cert());
    /// tls.build()?; // fails if the key is not the certificate's
    /// # Ok::<(), smtp_client::Error>(())
    /// ```
    pub fn client_cert_pem_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsConfig, Error> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| {
                TlsError::Config(format!(
                    "cannot read client certificate file {}: {e}",
                    cert.display()
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Config(format!("bad certificate in {}: {e}", cert.display())))?;
        if chain.is_empty() {
            return Err(TlsError::Config(format!("no certificate in {}", cert.display())).into());
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            TlsError::Config(format!("no usable private key in {}: {e}", key.display()))
        })?;
        Ok(self.client_cert(chain, key))
    }

    /// True when a client certificate is set ([`client_cert`](Self::client_cert)).
    pub fn has_client_cert(&self) -> bool {
        self.client_cert.is_some()
    }

    /// Checks the certificate against this name instead of the host name connected to (for
    /// example when connecting to an IP address of a named server).
    pub fn server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// **Disables all certificate and host name checks.** Any man in the middle can then read
    /// and change the session, credentials included. Only for tests against throwaway
    /// certificates; never in production.
    pub fn dangerous_accept_any_certificate_for_testing_only(mut self) -> TlsConfig {
        self.accept_any = true;
        self
    }

    /// True when certificate checks are off.
    pub fn accepts_any_certificate(&self) -> bool {
        self.accept_any
    }

    /// The name to verify for `host` (the override, or the host itself: a DNS name or an IP).
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, Error> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(name);
        ServerName::try_from(name.to_owned())
            .map_err(|_| Error::Tls(TlsError::ServerName(name.to_owned())))
    }

    /// Builds the rustls client configuration (ring provider, TLS 1.2 and 1.3).
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        if let Some(prebuilt) = &self.prebuilt {
            if !self.accept_any {
                return Ok(prebuilt.clone());
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let config = if self.accept_any {
            let builder = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)));
            match &self.client_cert {
                None => builder.with_no_client_auth(),
                Some(c) => builder
                    .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
                    .map_err(client_cert_error)?,
            }
        } else {
            let mut roots = RootCertStore::empty();
            match self.roots {
                Roots::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                Roots::Platform => {
                    let found = rustls_native_certs::load_native_certs();
                    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
                    if added == 0 && self.extra.is_empty() {
                        return Err(TlsError::Config(
                            "no usable certificate in the platform's root store".to_owned(),
                        )
                        .into());
                    }
                }
                Roots::None => {}
            }
            for cert in &self.extra {
                roots
                    .add(cert.clone())
                    .map_err(|e| TlsError::Config(format!("bad CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(TlsError::Config("no trusted root certificate".to_owned()).into());
            }
            let builder = builder.with_root_certificates(roots);
            match &self.client_cert {
                None => builder.with_no_client_auth(),
                Some(c) => builder
                    .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
                    .map_err(client_cert_error)?,
            }
        };
        Ok(Arc::new(config))
    }
}

/// The error of a client certificate rustls refuses (a key of an unsupported type, or one
/// that is not the certificate's).
fn client_cert_error(e: rustls::Error) -> Error {
    TlsError::Config(format!("client certificate: {e}")).into()
}

/// The error of a TLS handshake that did not finish within `after`.
pub(crate) fn handshake_timed_out(after: std::time::Duration) -> Error {
    Error::Timeout {
        awaiting: "the TLS handshake".to_owned(),
        after,
    }
}

/// The error of a failed TLS handshake: rustls's own error when the I/O error carries one
/// (a certificate refused, garbage instead of TLS), else the I/O error.
pub(crate) fn handshake_failed(e: std::io::Error) -> Error {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match rustls_error {
        Some(r) => TlsError::Handshake(r).into(),
        None => TlsError::HandshakeIo(e).into(),
    }
}

/// The rustls error carried by an I/O error from reading or writing an established TLS
/// connection, if it carries one.
pub(crate) fn session_failure(e: &std::io::Error) -> Option<rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
}

/// The verifier behind `dangerous_accept_any_certificate_for_testing_only`: checks the
/// handshake signatures (so the session is at least consistent) but trusts any certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
