//! The throwaway certificate the demo server presents: a CA made at start-up and a
//! certificate it issued for `localhost` and `127.0.0.1`. Nothing is read from or written to
//! disk; a client trusts the CA by taking [`DemoCert::ca_der`] or [`DemoCert::ca_pem`].

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
