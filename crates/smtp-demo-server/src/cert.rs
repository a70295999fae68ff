//! The throwaway certificate the demo server presents: a CA made at start-up and a
//! certificate it issued for `localhost` and `127.0.0.1`. Nothing is read from or written to
//! disk; a client trusts the CA by taking [`DemoCert::ca_der`] or [`DemoCert::ca_pem`].
//!
//! A second throwaway CA, [`client_ca`], issues client certificates
//! ([`ClientCa::issue`]); a server started with
//! [`DemoConfig::client_certificates`](crate::DemoConfig::client_certificates) checks the
//! certificate a client presents against it.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A self-signed CA and a certificate it issued for `localhost` and `127.0.0.1`.
#[derive(Debug)]
pub struct DemoCert {
    /// The CA certificate (DER): make the client trust this.
    pub ca_der: CertificateDer<'static>,
    /// The CA certificate (PEM), for a CA file.
    pub ca_pem: String,
    /// The server's certificate (DER).
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl DemoCert {
    /// The server key (PKCS#8 DER).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// A rustls server configuration presenting this certificate and asking each client for
    /// a certificate of its own: a client may present none, but one it presents must have
    /// been issued by [`client_ca`] (else the handshake fails).
    pub fn server_config_verifying_clients(
        &self,
    ) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(client_ca().ca_der().clone())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.cert_der.clone()], self.key())?;
        Ok(Arc::new(config))
    }

    /// A rustls server configuration presenting this certificate (ring provider).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], self.key())?;
        Ok(Arc::new(config))
    }
}

fn make_cert() -> Result<DemoCert, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "smtp-demo-server throwaway CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;
    Ok(DemoCert {
        ca_der: ca_cert.der().clone(),
        ca_pem: ca_cert.pem(),
        cert_der: leaf_cert.der().clone(),
        key_der: leaf_key.serialize_der(),
    })
}

/// The certificate, made once per process.
///
/// # Panics
/// If rcgen cannot make a certificate (a broken build, not a runtime condition).
pub fn demo_cert() -> &'static DemoCert {
    static CERT: OnceLock<DemoCert> = OnceLock::new();
    CERT.get_or_init(|| make_cert().expect("rcgen makes a certificate"))
}

/// The throwaway CA that issues client certificates, made once per process. Nothing but a
/// certificate it issued passes a server's check of client certificates.
pub struct ClientCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CA's key is not shown.
        f.debug_struct("ClientCa").finish_non_exhaustive()
    }
}

/// A client certificate issued by [`ClientCa::issue`], with its key, in the forms a TLS
/// client reads.
#[derive(Clone)]
pub struct ClientCertificate {
    /// The certificate (DER).
    pub cert_der: CertificateDer<'static>,
    /// The certificate (PEM), for a certificate file.
    pub cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// The private key (PKCS#8 DER).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The private key (PKCS#8 PEM), for a key file.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl ClientCa {
    /// The CA certificate (DER): what a server that checks client certificates trusts.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        self.cert.der()
    }

    /// Issues a client certificate with `name` as its common name, for TLS client
    /// authentication.
    pub fn issue(&self, name: &str) -> Result<ClientCertificate, rcgen::Error> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(ClientCertificate {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn make_client_ca() -> Result<ClientCa, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "smtp-demo-server throwaway client CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = ca.self_signed(&key)?;
    Ok(ClientCa { cert, key })
}

/// The client CA, made once per process.
///
/// # Panics
/// If rcgen cannot make a certificate (a broken build, not a runtime condition).
pub fn client_ca() -> &'static ClientCa {
    static CA: OnceLock<ClientCa> = OnceLock::new();
    CA.get_or_init(|| make_client_ca().expect("rcgen makes a certificate"))
}
