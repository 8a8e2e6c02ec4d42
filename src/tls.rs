//! The TLS server configuration: rustls, TLS 1.2 and 1.3 only, the server certificate from
//! files or issued by the CA, and optional client certificates chained to the issuing CA.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::ca::Generations;
use crate::config::ServerConfig as ServerSettings;
use crate::store::ServiceCertificates;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A configured PEM file could not be read.
    #[error("TLS: cannot read {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The CA could not issue the server certificate.
    #[error("TLS: {0}")]
    Ca(#[from] crate::ca::CaError),
    /// rustls refused the material.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("TLS: client certificate verifier: {0}")]
    Verifier(String),
}

/// The provider every TLS object of estca uses (ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server configuration. Without `server.tls_cert` the current issuing CA issues
/// the server certificate, and it is recorded in `store` (and flushed) before it is used;
/// from files, nothing is signed and nothing is recorded. Client certificates (renewal) are
/// verified against every loaded issuing CA generation, so that certificates issued before a
/// rollover renew.
pub async fn server_config(
    settings: &ServerSettings,
    generations: &Generations,
    server_cert_validity_days: u32,
    store: &dyn ServiceCertificates,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => (read_chain(cert)?, read_key(key)?),
        _ => {
            let serial =
                crate::ca::service::reserve_serial(store, time::OffsetDateTime::now_utc()).await?;
            let issued = generations
                .current()
                .issue_tls_server_certificate(
                    &serial,
                    &settings.hostnames,
                    server_cert_validity_days,
                )?
                .record_in(store)
                .await?;
            tracing::info!(
                names = %settings.hostnames.join(","),
                "issued and recorded the TLS server certificate"
            );
            (issued.chain, issued.key)
        }
    };
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for ca in generations.all() {
        roots
            .add(CertificateDer::from(ca.issuing_certificate_der().to_vec()))
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(Arc::new(RenewalTolerantVerifier { inner }))
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Session resumption: stateless tickets (keys rotate every 6 hours, see
    // `rustls::crypto::ring::Ticketer`), so a client that reconnects skips the certificate
    // signature and verification of a full handshake. A resumed session carries the client
    // certificate of the full handshake it resumes; the registration authority checks that
    // certificate against its record (revocation, expiry) on every request regardless.
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error("no CERTIFICATE block found".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        // The error names the problem (missing section, I/O), never the key's bytes.
        reason: e.to_string(),
    })
}

/// Verifies client certificates against the issuing CA, but lets an *expired* estca
/// certificate complete the handshake (checked as of its last valid second), so that
/// simplereenroll can answer "your certificate has expired; use simpleenroll" in HTTP
/// instead of a bare TLS alert. The handlers never trust the TLS layer's verdict alone:
/// the registration authority matches the presented certificate byte for byte against its
/// record and applies expiry and revocation itself.
struct RenewalTolerantVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl fmt::Debug for RenewalTolerantVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RenewalTolerantVerifier")
    }
}

impl ClientCertVerifier for RenewalTolerantVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let at = match not_after_unix(end_entity) {
            Some(not_after) if now.as_secs() >= not_after && not_after > 0 => {
                UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after - 1))
            }
            _ => now,
        };
        self.inner.verify_client_cert(end_entity, intermediates, at)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn not_after_unix(der: &[u8]) -> Option<u64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    u64::try_from(cert.validity().not_after.timestamp()).ok()
}
