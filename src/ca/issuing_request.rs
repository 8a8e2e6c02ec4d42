//! The daemon host's side of an offline root: `estca init --offline-root` writes the issuing
//! CA's key (a key file, or inside a PKCS#11 token) and a PKCS#10 request for it,
//! `issuing-ca.csr`; the offline root certifies it (`estca root sign-issuing`); `estca ca
//! install-issuing` checks the certificate it signed and puts it in place, with the root
//! certificate. The daemon's host holds `root-ca.pem` but never `root-ca.key`.

use std::fmt;
use std::path::{Path, PathBuf};

use der::asn1::SetOfVec;
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::request::{CertReq, CertReqInfo, Version};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::chain::{check_is_ca, check_is_issuing_ca, check_key_matches, parse, verify_chain};
use super::files::{
    create_dir, pem, read_certificates, refuse_existing, write_new, ISSUING_CERT, ISSUING_CSR,
    ISSUING_KEY, ROOT_CERT, ROOT_KEY,
};
use super::hierarchy::{open_token, InitReport};
use super::key::{CaKey, KeyProtection};
use super::key_files;
use super::passphrase::KeyPassphrase;
use super::pkcs11::{Pkcs11Uri, TokenKey};
use super::{profile, CaError, CertificateAuthority};
use crate::config::CaConfig;

/// What `estca init --offline-root` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuingRequestReport {
    /// The certificate request to take to the offline root.
    pub csr: PathBuf,
    /// The issuing CA's key file, or its PKCS#11 URI.
    pub key: PathBuf,
    /// True when the key was generated in a PKCS#11 token.
    pub key_in_token: bool,
    /// True when the key file is encrypted.
    pub key_encrypted: bool,
    /// The subject requested.
    pub subject: String,
}

impl fmt::Display for IssuingRequestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "issuing CA:   {}", self.subject)?;
        if self.key_in_token {
            writeln!(
                f,
                "  key         {} (generated in the token, not extractable)",
                self.key.display()
            )?;
        } else {
            let protection = if self.key_encrypted {
                "encrypted with the configured passphrase"
            } else {
                "NOT encrypted"
            };
            writeln!(
                f,
                "  key         {} (mode 0600, {protection})",
                self.key.display()
            )?;
        }
        writeln!(f, "  request     {}", self.csr.display())?;
        write!(
            f,
            "next: take the request to the offline root, run `estca root sign-issuing` there, \
             and install its certificate here with `estca ca install-issuing CERT --root ROOT`"
        )
    }
}

/// A PKCS#10 request (RFC 2986) for `key`, named `subject`, signed by `key`; PEM.
pub(super) fn certificate_request(
    key: &CaKey,
    subject: x509_cert::name::Name,
) -> Result<String, CaError> {
    let internal = |what: &str, e: der::Error| CaError::Internal(format!("{what}: {e}"));
    let public_key = SubjectPublicKeyInfoOwned::from_der(&key.public_key_der()?)
        .map_err(|e| internal("reading the issuing CA's public key", e))?;
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key,
        attributes: SetOfVec::new(),
    };
    let info_der = info
        .to_der()
        .map_err(|e| internal("encoding the certificate request", e))?;
    let signature = key.sign(&info_der)?;
    let der = CertReq {
        info,
        algorithm: key.signature_algorithm(),
        signature,
    }
    .to_der()
    .map_err(|e| internal("encoding the certificate request", e))?;
    pem_rfc7468::encode_string("CERTIFICATE REQUEST", pem_rfc7468::LineEnding::LF, &der)
        .map_err(|e| CaError::Internal(format!("PEM-encoding the certificate request: {e}")))
}

impl CertificateAuthority {
    /// Creates the issuing CA's key for an offline root to certify: a new
    /// `config.key_algorithm` key in `issuing-ca.key` (encrypted with `passphrase` when
    /// given), or inside the PKCS#11 token `token` names; and `issuing-ca.csr`, a PKCS#10
    /// request for it named C, O and `config.issuing_name`. Refuses a CA directory that
    /// already holds CA files; never writes a root key.
    pub fn request_issuing(
        config: &CaConfig,
        passphrase: Option<&KeyPassphrase>,
        token: Option<&Pkcs11Uri>,
    ) -> Result<IssuingRequestReport, CaError> {
        let dir = &config.dir;
        let key_path = dir.join(ISSUING_KEY);
        let csr_path = dir.join(ISSUING_CSR);
        refuse_existing(&[
            &dir.join(ROOT_KEY),
            &dir.join(ISSUING_CERT),
            &key_path,
            &csr_path,
        ])?;
        create_dir(dir)?;
        let subject =
            profile::ca_subject(&config.country, &config.organization, &config.issuing_name)?;
        let subject_text = subject.to_string();
        let key = match token {
            None => {
                let pair = rcgen::KeyPair::generate_for(super::hierarchy::rcgen_algorithm(
                    config.key_algorithm,
                ))
                .map_err(super::hierarchy::generate)?;
                let der = zeroize::Zeroizing::new(pair.serialize_der());
                CaKey::from_pkcs8_der(&der, &key_path)?
            }
            Some(uri) => {
                let pin =
                    KeyPassphrase::pin_from_config(config)?.ok_or_else(|| CaError::PinMissing {
                        uri: uri.to_string(),
                    })?;
                CaKey::Token(Box::new(TokenKey::generate(
                    uri,
                    &pin,
                    config.key_algorithm,
                )?))
            }
        };
        let csr = certificate_request(&key, subject)?;
        if token.is_none() {
            write_new(&key_path, key.to_pkcs8_pem(passphrase)?.as_bytes(), 0o600)?;
        }
        write_new(&csr_path, csr.as_bytes(), 0o644)?;
        Ok(IssuingRequestReport {
            csr: csr_path,
            key: match token {
                None => key_path,
                Some(uri) => PathBuf::from(uri.to_string()),
            },
            key_in_token: token.is_some(),
            key_encrypted: token.is_none() && passphrase.is_some(),
            subject: subject_text,
        })
    }

    /// Installs the issuing CA certificate `cert_file` (PEM; the root may follow it) that the
    /// offline root `root_file` (PEM, its self-signed certificate) signed for the request of
    /// [`CertificateAuthority::request_issuing`]. Checks that it belongs to the issuing key
    /// (the key file, decrypted with the configured passphrase, or the token of `ca.key`), is
    /// a CA, is signed by the root and has not expired; then writes `issuing-ca.pem` and
    /// `root-ca.pem` (or checks that the one there is the same) and removes the request.
    pub fn install_issuing(
        config: &CaConfig,
        cert_file: &Path,
        root_file: &Path,
    ) -> Result<InitReport, CaError> {
        let dir = &config.dir;
        let cert_path = dir.join(ISSUING_CERT);
        let root_path = dir.join(ROOT_CERT);
        let key_path = dir.join(ISSUING_KEY);
        refuse_existing(&[&cert_path])?;
        let (key, protection, key_shown) = if config.key.is_empty() {
            let passphrase = KeyPassphrase::from_config(config)?;
            let (key, protection) = key_files::read(&key_path, passphrase.as_ref())?;
            (key, protection, key_path.clone())
        } else {
            (
                CaKey::Token(Box::new(open_token(config)?)),
                KeyProtection::Token,
                PathBuf::from(config.key.split('?').next().unwrap_or_default()),
            )
        };
        let issuing_der = read_certificates(cert_file)?.remove(0);
        let mut roots = read_certificates(root_file)?;
        if roots.len() != 1 {
            return Err(CaError::BadCertificate {
                path: root_file.to_path_buf(),
                reason: "must hold exactly one certificate, the root".into(),
            });
        }
        let root_der = roots.remove(0);
        let root = parse(&root_der, root_file)?;
        if root.subject().as_raw() != root.issuer().as_raw() || root.verify_signature(None).is_err()
        {
            return Err(CaError::NotCa {
                path: root_file.to_path_buf(),
                reason: "it is not a self-signed root".into(),
            });
        }
        check_is_ca(&root, root_file)?;
        if root_path.exists() {
            let present = read_certificates(&root_path)?;
            if present != [root_der.clone()] {
                return Err(CaError::BadCertificate {
                    path: root_path,
                    reason: format!(
                        "holds another root than {}: the issuing CA must chain to the root already installed",
                        root_file.display()
                    ),
                });
            }
        }
        let issuing = parse(&issuing_der, cert_file)?;
        check_key_matches(&key, &issuing, &key_shown, cert_file)?;
        check_is_issuing_ca(&issuing, cert_file)?;
        verify_chain(&[&issuing_der, &root_der], cert_file)?;
        let not_after = super::chain::certificate_not_after(&issuing_der, cert_file)?;
        if not_after <= OffsetDateTime::now_utc() {
            return Err(CaError::BadCertificate {
                path: cert_file.to_path_buf(),
                reason: format!(
                    "it expired at {}; have the root sign a new one",
                    crate::model::rfc3339(not_after)
                ),
            });
        }
        if !root_path.exists() {
            write_new(&root_path, pem(&root_der)?.as_bytes(), 0o644)?;
        }
        write_new(&cert_path, pem(&issuing_der)?.as_bytes(), 0o644)?;
        let csr_path = dir.join(ISSUING_CSR);
        if csr_path.exists() {
            std::fs::remove_file(&csr_path).map_err(|source| CaError::Io {
                path: csr_path,
                source,
            })?;
        }
        Ok(InitReport {
            dir: dir.clone(),
            issuing_certificate: cert_path,
            issuing_key: key_shown,
            issuing_subject: issuing.subject().to_string(),
            issuing_not_after: not_after,
            root_certificate: Some(root_path),
            root_key: None,
            keys_encrypted: protection == KeyProtection::Encrypted,
            issuing_key_in_token: !config.key.is_empty(),
            root_subject: Some(root.subject().to_string()),
        })
    }
}
