//! The issuing CA generations: the current issuing CA, which signs every new certificate,
//! and the earlier ones a rollover (`estca ca rollover`, [`super::rollover`]) retired, which
//! stay loaded to sign the CRL and the OCSP answers of the certificates they issued.
//!
//! On disk the current generation is `issuing-ca.pem` and `issuing-ca.key` of the CA
//! directory, as before any rollover; each retired one is a numbered directory
//! `previous/<n>/` holding its own `issuing-ca.pem` and `issuing-ca.key` (higher numbers are
//! newer). A generation whose key is in a PKCS#11 token holds `issuing-ca.key-uri`, the
//! URI of its key in the token `ca.key` names, instead of `issuing-ca.key`. A retired generation is loaded while its CA certificate is valid and dropped
//! (with a log line) once it has expired: no certificate outlives its issuer, so by then
//! every certificate it issued has expired too and needs no revocation status.
//!
//! The daemon holds the set in an [`IssuingCas`], which a reload (SIGHUP) replaces in one
//! step: requests in flight finish with the set they started with, new ones see the new one.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::files::ISSUING_KEY_URI;
use super::{pkcs7, CaError, CertificateAuthority};
use crate::config::CaConfig;

/// The directory of the CA directory holding the retired generations.
pub const PREVIOUS_DIR: &str = "previous";

/// One consistent set of issuing CAs: the current one and the retired ones still valid.
#[derive(Debug)]
pub struct Generations {
    current: Arc<CertificateAuthority>,
    /// Newest first.
    previous: Vec<Arc<CertificateAuthority>>,
    /// The certificates relying parties and EST clients are given, in the documented order:
    /// the current issuing CA, the retired ones newest first, the intermediates above them,
    /// the root.
    certificates: Vec<Vec<u8>>,
    cacerts: Vec<u8>,
}

impl Generations {
    /// A set of one generation, before any rollover.
    pub fn single(ca: CertificateAuthority) -> Self {
        let certificates = std::iter::once(ca.issuing_certificate_der())
            .chain(ca.intermediate_certificates_der().iter().map(Vec::as_slice))
            .chain(ca.root_certificate_der())
            .map(<[u8]>::to_vec)
            .collect();
        // The CA's own cacerts answer holds exactly these.
        let cacerts = ca.cacerts_pkcs7().to_vec();
        Self {
            current: Arc::new(ca),
            previous: Vec::new(),
            certificates,
            cacerts,
        }
    }

    /// A set of `current` and `previous` (newest first).
    pub fn new(
        current: CertificateAuthority,
        previous: Vec<CertificateAuthority>,
    ) -> Result<Self, CaError> {
        if previous.is_empty() {
            return Ok(Self::single(current));
        }
        let current = Arc::new(current);
        let previous: Vec<Arc<CertificateAuthority>> = previous.into_iter().map(Arc::new).collect();
        let mut certificates: Vec<Vec<u8>> = Vec::new();
        let mut add = |der: &[u8]| {
            if !certificates.iter().any(|c| c == der) {
                certificates.push(der.to_vec());
            }
        };
        // The current chain first, in order, so that each certificate of it is certified by
        // the next one up to the root (a PEM chain's order); then the retired generations.
        add(current.issuing_certificate_der());
        for der in current.intermediate_certificates_der() {
            add(der);
        }
        if let Some(root) = current.root_certificate_der() {
            add(root);
        }
        for ca in &previous {
            add(ca.issuing_certificate_der());
        }
        for ca in &previous {
            for der in ca.intermediate_certificates_der() {
                add(der);
            }
        }
        let refs: Vec<&[u8]> = certificates.iter().map(Vec::as_slice).collect();
        let cacerts = pkcs7::certs_only(&refs)?;
        Ok(Self {
            current,
            previous,
            certificates,
            cacerts,
        })
    }

    /// `current` with the retired generations of `config.dir` that are still valid at `now`
    /// (each with the revocation URLs under `public_url`). A retired generation that does not
    /// load is an error naming its directory: its certificates would lose their revocation
    /// status.
    pub fn with_previous(
        current: CertificateAuthority,
        config: &CaConfig,
        common_name_template: &str,
        public_url: &str,
        now: OffsetDateTime,
    ) -> Result<Self, CaError> {
        let mut previous = Vec::new();
        for dir in previous_dirs(&config.dir)?.into_iter().rev() {
            // A retired generation's key is its key file, or the token key its record names
            // (in the token of `ca.key`, with its PIN).
            let key = if dir.join(ISSUING_KEY_URI).exists() {
                if config.key.is_empty() {
                    return Err(CaError::Token {
                        uri: dir.join(ISSUING_KEY_URI).display().to_string(),
                        reason: "this retired issuing CA's key is in a PKCS#11 token but ca.key names none: set ca.key to the token's URI (with its module-path) and its PIN".into(),
                    });
                }
                config.key.clone()
            } else {
                String::new()
            };
            let generation = CaConfig {
                dir: dir.clone(),
                key,
                ..config.clone()
            };
            let ca = CertificateAuthority::load(&generation, common_name_template)?
                .with_public_url(public_url)?;
            if ca.issuing_not_after() <= now {
                tracing::info!(
                    dir = %dir.display(),
                    not_after = %crate::model::rfc3339(ca.issuing_not_after()),
                    "a retired issuing CA has expired, and every certificate it issued with it: it is no longer loaded (its directory may be archived)"
                );
                continue;
            }
            previous.push(ca);
        }
        Self::new(current, previous)
    }

    /// The issuing CA that signs new certificates.
    pub fn current(&self) -> &Arc<CertificateAuthority> {
        &self.current
    }

    /// Every loaded generation, the current one first, then the retired ones newest first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<CertificateAuthority>> {
        std::iter::once(&self.current).chain(self.previous.iter())
    }

    /// The retired generations still loaded, newest first.
    pub fn previous(&self) -> &[Arc<CertificateAuthority>] {
        &self.previous
    }

    /// The generation whose [`CertificateAuthority::generation_id`] is `id`.
    pub fn by_id(&self, id: &str) -> Option<&Arc<CertificateAuthority>> {
        self.all().find(|ca| ca.generation_id() == id)
    }

    /// The generation that issued the certificate `der`: the one whose key identifier its
    /// authority key identifier names. With one generation loaded, that one without parsing:
    /// every certificate that has not expired is its (see the module documentation).
    pub fn issuer_of(&self, der: &[u8]) -> Option<&Arc<CertificateAuthority>> {
        if self.previous.is_empty() {
            return Some(&self.current);
        }
        let key_id = authority_key_id(der)?;
        self.all().find(|ca| ca.key_id() == key_id.as_slice())
    }

    /// The CA certificates, DER, in the order of `/ca.pem` and the PEM form of `cacerts`:
    /// the current chain in order (issuing CA, its intermediates, the root: each certified by
    /// the next), then the retired issuing CAs newest first and their intermediates.
    pub fn certificates_der(&self) -> Vec<&[u8]> {
        self.certificates.iter().map(Vec::as_slice).collect()
    }

    /// The `cacerts` answer: DER of a CMS certs-only SignedData holding
    /// [`Generations::certificates_der`] (a SET OF, so in DER order; RFC 7030 4.1.3).
    pub fn cacerts_pkcs7(&self) -> &[u8] {
        &self.cacerts
    }

    /// True when both sets hold the same issuing CAs in the same roles.
    pub fn same_as(&self, other: &Generations) -> bool {
        let ders = |g: &Generations| -> Vec<Vec<u8>> {
            g.all()
                .map(|ca| ca.issuing_certificate_der().to_vec())
                .collect()
        };
        ders(self) == ders(other)
    }
}

/// The authority key identifier's keyIdentifier of a DER certificate.
fn authority_key_id(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
}

/// The numbered directories of `ca_dir/previous`, oldest (lowest number) first.
pub(super) fn previous_dirs(ca_dir: &Path) -> Result<Vec<std::path::PathBuf>, CaError> {
    let root = ca_dir.join(PREVIOUS_DIR);
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CaError::Io { path: root, source }),
    };
    let mut numbered = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CaError::Io {
            path: root.clone(),
            source,
        })?;
        let number = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok());
        if let Some(number) = number {
            if entry.path().is_dir() {
                numbered.push((number, entry.path()));
            }
        }
    }
    numbered.sort();
    Ok(numbered.into_iter().map(|(_, path)| path).collect())
}

/// The daemon's issuing CAs, replaced as a whole when a reload finds a new generation.
#[derive(Debug)]
pub struct IssuingCas(ArcSwap<Generations>);

impl IssuingCas {
    /// Holds `generations`.
    pub fn new(generations: Generations) -> Self {
        Self(ArcSwap::from_pointee(generations))
    }

    /// The set now in force; it stays consistent for as long as the caller holds it.
    pub fn get(&self) -> Arc<Generations> {
        self.0.load_full()
    }

    /// The issuing CA that signs new certificates now.
    pub fn current(&self) -> Arc<CertificateAuthority> {
        self.0.load().current.clone()
    }

    /// Puts `generations` in force for every request from now on.
    pub fn replace(&self, generations: Generations) {
        self.0.store(Arc::new(generations));
    }
}

impl From<CertificateAuthority> for IssuingCas {
    /// The one generation `ca`.
    fn from(ca: CertificateAuthority) -> Self {
        Self::new(Generations::single(ca))
    }
}
