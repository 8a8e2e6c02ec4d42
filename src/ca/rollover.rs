//! `estca ca rollover`: a new issuing CA generation, put in place without stopping the
//! daemon.
//!
//! 1. [`CertificateAuthority::rollover`] generates the new issuing key (a key file, encrypted
//!    with the configured passphrase when there is one) in `rollover/issuing-ca.key` of the
//!    CA directory and writes its CSR, `rollover/issuing-ca.csr`, named as `estca init`
//!    names an issuing CA (C, O, CN = `ca.issuing_name`, so the subjects of the certificates
//!    it issues do not change).
//! 2. When the root key is on this host (`root-ca.key`, the root `estca init` creates), the
//!    root certifies the new key at once and step 3 follows. Otherwise the CSR goes to the
//!    offline root, and [`CertificateAuthority::install_rollover`] (`estca ca rollover
//!    --install CERT`) takes the certificate it signed.
//! 3. The install checks the certificate (a CA certificate for exactly that key, signed by
//!    `root-ca.pem`, valid now and longer than the current issuing CA), retires the current
//!    generation into `previous/<n>/` and puts the new one in its place as `issuing-ca.pem`
//!    and `issuing-ca.key`.
//!
//! The running daemon keeps its set of issuing CAs until it is told to reload (SIGHUP,
//! `systemctl reload estca`): then the new generation signs every new certificate and the
//! retired one goes on signing its CRL and OCSP answers ([`super::generations`]). An
//! install interrupted half-way is finished by running it again with the same certificate.
//!
//! When `ca.key` names a key in a PKCS#11 token, the new key is generated in that token
//! (sensitive, not extractable), labelled `<object>-<n>` (`n` the new generation's number,
//! the first key being generation 1), its CSR signed by the token. Each generation then
//! records its key's URI in `issuing-ca.key-uri` beside its certificate (the current one in
//! the CA directory, the retired ones in `previous/<n>/`), and that record wins over the
//! object of `ca.key`, which keeps naming the token, its module and (through
//! `ca.pkcs11_pin_file`/credential) its PIN: `ca.key` is not edited after a rollover.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use der::Decode;
use time::OffsetDateTime;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::chain::{
    certificate_not_after, check_is_issuing_ca, check_key_matches, is_self_signed, parse,
    verify_chain,
};
use super::files::{
    create_dir, io_error, pem, read_certificates, write_new, ISSUING_CERT, ISSUING_KEY,
    ISSUING_KEY_URI, ROOT_CERT, ROOT_KEY,
};
use super::generations::{previous_dirs, PREVIOUS_DIR};
use super::hierarchy::{
    generate, issuing_params, open_token, rcgen_key_pem, token_uri, IssuingKey,
};
use super::issuing_request::certificate_request;
use super::key::CaKey;
use super::passphrase::KeyPassphrase;
use super::pkcs11::{Pkcs11Uri, TokenKey};
use super::{key_files, profile, CaError, CertificateAuthority};
use crate::config::{CaConfig, KeyAlgorithm};
use crate::private_file::PrivateFile;

/// The directory of the CA directory holding a rollover under way: the new key and its CSR.
pub const ROLLOVER_DIR: &str = "rollover";

/// The CSR of the new issuing key, in [`ROLLOVER_DIR`].
pub const ROLLOVER_CSR: &str = "issuing-ca.csr";

/// What `estca ca rollover` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloverReport {
    /// The new generation is in place; the running daemon takes it at its next reload.
    Installed {
        /// The new issuing CA's subject.
        subject: String,
        /// Its notAfter.
        not_after: OffsetDateTime,
        /// Its generation ID (the URLs `/crl/<id>` and `/ca/<id>.crt`).
        generation: String,
        /// Where the generation it replaced now is, unless it was already there.
        retired: Option<PathBuf>,
    },
    /// The root is not on this host: the CSR waits for it.
    CsrWritten {
        /// The CSR, PEM.
        csr: PathBuf,
        /// The new key file.
        key: PathBuf,
    },
}

impl fmt::Display for RolloverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RolloverReport::Installed {
                subject,
                not_after,
                generation,
                retired,
            } => {
                writeln!(f, "new issuing CA: {subject}")?;
                writeln!(f, "  valid until {}", crate::model::rfc3339(*not_after))?;
                writeln!(f, "  generation  {generation}")?;
                if let Some(dir) = retired {
                    writeln!(f, "previous issuing CA retired to {}", dir.display())?;
                }
                write!(
                    f,
                    "reload the daemon (SIGHUP, e.g. `systemctl reload estca`) for the new issuing CA to sign new certificates"
                )
            }
            RolloverReport::CsrWritten { csr, key } => {
                writeln!(f, "new issuing key: {}", key.display())?;
                writeln!(f, "its CSR:         {}", csr.display())?;
                write!(
                    f,
                    "the root key is not on this host: have the offline root certify the CSR, then run `estca ca rollover --install CERT`"
                )
            }
        }
    }
}

/// The current time in whole seconds.
fn now() -> Result<OffsetDateTime, CaError> {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|e| CaError::Internal(e.to_string()))
}

/// An rcgen key pair of a CA key (decrypted in memory only).
fn rcgen_key(key: &CaKey, path: &Path) -> Result<rcgen::KeyPair, CaError> {
    let pem = key.to_pkcs8_pem(None)?;
    rcgen::KeyPair::from_pem(&pem).map_err(|e| CaError::BadKey {
        path: path.to_path_buf(),
        reason: format!("cannot be used to sign ({e})"),
    })
}

/// Replaces `path` with `contents` in one step (mode 0600).
fn replace(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    let failed = |e: crate::private_file::PrivateFileError| CaError::Generate(e.to_string());
    let mut file = PrivateFile::create(path).map_err(failed)?;
    file.write_all(contents).map_err(io_error(path))?;
    file.commit().map_err(failed)
}

impl CertificateAuthority {
    /// Starts a rollover: a new issuing key and its CSR in `rollover/` of the CA directory.
    /// The key is a key file (encrypted with `passphrase` when given), or, when `ca.key`
    /// names a PKCS#11 token, a key pair generated in that token (sensitive, not
    /// extractable) labelled `<object of ca.key>-<generation number>` and recorded in
    /// `rollover/issuing-ca.key-uri`. When `root-ca.key` is in the CA directory, the root
    /// (its key file decrypted with `passphrase`) certifies the key and the new generation
    /// is installed at once; otherwise the report names the CSR for the offline root.
    /// Refuses when a rollover is already under way.
    pub fn rollover(
        config: &CaConfig,
        passphrase: Option<&KeyPassphrase>,
    ) -> Result<RolloverReport, CaError> {
        // The current generation must load: a rollover starts from a working CA.
        CertificateAuthority::load(config, "{id}")?;
        let pending = config.dir.join(ROLLOVER_DIR);
        if pending.exists() {
            return Err(CaError::RolloverPending { dir: pending });
        }
        let csr_path = pending.join(ROLLOVER_CSR);
        let (key, key_shown) = if config.key.is_empty() {
            let alg = match config.key_algorithm {
                KeyAlgorithm::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
                KeyAlgorithm::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            };
            let key = rcgen::KeyPair::generate_for(alg).map_err(generate)?;
            let key_path = pending.join(ISSUING_KEY);
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = super::hierarchy::ca_name(config, &config.issuing_name)?;
            let csr = params
                .serialize_request(&key)
                .and_then(|csr| csr.pem())
                .map_err(generate)?;
            create_dir(&pending)?;
            write_new(
                &key_path,
                rcgen_key_pem(&key, &key_path, passphrase)?.as_bytes(),
                0o600,
            )?;
            write_new(&csr_path, csr.as_bytes(), 0o644)?;
            (IssuingKey::File(Box::new(key)), key_path)
        } else {
            let uri = next_token_uri(config)?;
            let pin =
                KeyPassphrase::pin_from_config(config)?.ok_or_else(|| CaError::PinMissing {
                    uri: uri.to_string(),
                })?;
            let token = TokenKey::generate(&uri, &pin, config.key_algorithm)?;
            let spki =
                rcgen::SubjectPublicKeyInfo::from_der(token.public_key_der()).map_err(generate)?;
            let subject =
                profile::ca_subject(&config.country, &config.organization, &config.issuing_name)?;
            let csr = certificate_request(&CaKey::Token(Box::new(token)), subject)?;
            create_dir(&pending)?;
            write_new(
                &pending.join(ISSUING_KEY_URI),
                uri.record().as_bytes(),
                0o644,
            )?;
            write_new(&csr_path, csr.as_bytes(), 0o644)?;
            (IssuingKey::Token(spki), PathBuf::from(uri.to_string()))
        };

        let root_key_path = config.dir.join(ROOT_KEY);
        if !root_key_path.exists() {
            return Ok(RolloverReport::CsrWritten {
                csr: csr_path,
                key: key_shown,
            });
        }
        let root_cert_path = config.dir.join(ROOT_CERT);
        let root_der = read_certificates(&root_cert_path)?
            .into_iter()
            .next()
            .ok_or_else(|| CaError::BadCertificate {
                path: root_cert_path.clone(),
                reason: "holds no certificate".into(),
            })?;
        let root_not_after = certificate_not_after(&root_der, &root_cert_path)?;
        let (root_key, _) = key_files::read(&root_key_path, passphrase)?;
        let root_key = rcgen_key(&root_key, &root_key_path)?;
        let issuer = rcgen::Issuer::from_ca_cert_der(
            &rustls_pki_types::CertificateDer::from(root_der.as_slice()),
            root_key,
        )
        .map_err(generate)?;
        let certificate = key.certify(issuing_params(config, now()?, root_not_after)?, &issuer)?;
        let cert_path = pending.join(ISSUING_CERT);
        write_new(&cert_path, certificate.pem().as_bytes(), 0o644)?;
        Self::install_rollover(config, &cert_path, passphrase)
    }

    /// Installs the certificate in `cert_pem` (optionally followed by intermediates and the
    /// root) for the key `rollover` generated: checks that it certifies that key, is a CA,
    /// chains to `root-ca.pem` (or to the root given after it), is valid now and outlives the
    /// current issuing CA; then moves the current generation to `previous/<n>/` and puts the
    /// new one in its place. Running it again after an interruption finishes the install.
    pub fn install_rollover(
        config: &CaConfig,
        cert_pem: &Path,
        passphrase: Option<&KeyPassphrase>,
    ) -> Result<RolloverReport, CaError> {
        let dir = &config.dir;
        let pending = dir.join(ROLLOVER_DIR);
        let current_cert_path = dir.join(ISSUING_CERT);
        // A key file, or the record of a key in the token.
        let key_name = if config.key.is_empty() {
            ISSUING_KEY
        } else {
            ISSUING_KEY_URI
        };
        let current_key_path = dir.join(key_name);
        let pending_key_path = pending.join(key_name);

        let mut ders = read_certificates(cert_pem)?;
        let root_path = dir.join(ROOT_CERT);
        if root_path.exists() {
            let root = read_certificates(&root_path)?;
            if !ders.iter().any(|d| root.contains(d)) {
                ders.extend(root);
            }
        }
        let refs: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
        let new = parse(refs[0], cert_pem)?;
        check_is_issuing_ca(&new, cert_pem)?;
        verify_chain(&refs, cert_pem)?;
        let not_after = certificate_not_after(refs[0], cert_pem)?;
        let now = now()?;
        if not_after <= now {
            return Err(CaError::BadCertificate {
                path: cert_pem.to_path_buf(),
                reason: format!(
                    "it expired at {}; have the root certify the CSR again",
                    crate::model::rfc3339(not_after)
                ),
            });
        }

        let current_ders = read_certificates(&current_cert_path)?;
        if current_ders.first() == ders.first() {
            // Installed already (this is a second run): nothing left to do.
            return Ok(installed(&new, not_after, refs[0], None));
        }
        // The key: in rollover/, or already moved into place by an interrupted run.
        let key_path = if pending_key_path.exists() {
            pending_key_path.clone()
        } else {
            current_key_path.clone()
        };
        let key = if config.key.is_empty() {
            key_files::read(&key_path, passphrase)?.0
        } else {
            // The record beside the certificate names the key (hierarchy::token_uri).
            let holder = CaConfig {
                dir: key_path.parent().unwrap_or(dir).to_path_buf(),
                ..config.clone()
            };
            CaKey::Token(Box::new(open_token(&holder)?))
        };
        check_key_matches(&key, &new, &key_path, cert_pem)?;
        let current_der = current_ders
            .first()
            .ok_or_else(|| CaError::BadCertificate {
                path: current_cert_path.clone(),
                reason: "holds no certificate".into(),
            })?;
        let current_not_after = certificate_not_after(current_der, &current_cert_path)?;
        // The same notAfter is a rekey (after a suspected compromise, say, or two rollovers
        // within a second): allowed. An earlier one would shorten what the CA can issue.
        if not_after < current_not_after {
            return Err(CaError::BadCertificate {
                path: cert_pem.to_path_buf(),
                reason: format!(
                    "it expires at {}, before the current issuing CA ({}): a rollover needs a certificate that lasts at least as long",
                    crate::model::rfc3339(not_after),
                    crate::model::rfc3339(current_not_after)
                ),
            });
        }

        let retired = retire_current(config, current_der, key_path == current_key_path)?;
        if key_path != current_key_path {
            std::fs::rename(&key_path, &current_key_path).map_err(io_error(&key_path))?;
        }
        // The new issuing CA and the intermediates above it; the root has its own file.
        let mut chain = String::new();
        for (i, der) in refs.iter().enumerate() {
            if i > 0 && is_self_signed(&parse(der, cert_pem)?) {
                break;
            }
            chain.push_str(&pem(der)?);
        }
        replace(&current_cert_path, chain.as_bytes())?;
        std::fs::set_permissions(
            &current_cert_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .map_err(io_error(&current_cert_path))?;
        if pending.exists() {
            std::fs::remove_dir_all(&pending).map_err(io_error(&pending))?;
        }
        Ok(installed(&new, not_after, refs[0], retired))
    }
}

/// The report of an installed generation.
fn installed(
    cert: &x509_parser::prelude::X509Certificate<'_>,
    not_after: OffsetDateTime,
    der: &[u8],
    retired: Option<PathBuf>,
) -> RolloverReport {
    let key_id = Certificate::from_der(der)
        .map(|c| profile::key_identifier(&c.tbs_certificate.subject_public_key_info))
        .unwrap_or_default();
    let key_id = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
        .unwrap_or(key_id);
    RolloverReport::Installed {
        subject: cert.subject().to_string(),
        not_after,
        generation: hex::encode(&key_id[..key_id.len().min(8)]),
        retired,
    }
}

/// The URI of the next generation's key in the token of `ca.key`: the object label of
/// `ca.key` followed by `-<n>`, `n` the number of the new generation (the first key, the one
/// `ca.key` names, is generation 1).
fn next_token_uri(config: &CaConfig) -> Result<Pkcs11Uri, CaError> {
    let configured: Pkcs11Uri = config.key.parse()?;
    let generation = previous_dirs(&config.dir)?.len() + 2;
    Ok(configured.with_object(&format!("{}-{generation}", configured.object)))
}

/// Copies the current generation (`certificate`, and `issuing-ca.key` or the record of its
/// key in the token) into a new `previous/<n>/`, unless a retired generation already holds
/// that certificate (an interrupted install). `key_moved` says the current key file or
/// record already holds the new key, which only happens after the copy was made.
fn retire_current(
    config: &CaConfig,
    certificate: &[u8],
    key_moved: bool,
) -> Result<Option<PathBuf>, CaError> {
    let dir = &config.dir;
    let existing = previous_dirs(dir)?;
    for previous in &existing {
        let ders = read_certificates(&previous.join(ISSUING_CERT))?;
        if ders.first().map(Vec::as_slice) == Some(certificate) {
            return Ok(None);
        }
    }
    if key_moved {
        let key_name = if config.key.is_empty() {
            ISSUING_KEY
        } else {
            ISSUING_KEY_URI
        };
        return Err(CaError::BadCertificate {
            path: dir.join(key_name),
            reason: "holds the new key but the current issuing CA was not retired: restore the CA directory from its backup".into(),
        });
    }
    let next = existing
        .last()
        .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok())
        .map_or(1, |n| n + 1);
    let root = dir.join(PREVIOUS_DIR);
    create_dir(&root)?;
    let staging = root.join(format!(".{next}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    }
    create_dir(&staging)?;
    let copy = |name: &str, mode: u32| -> Result<(), CaError> {
        let from = dir.join(name);
        let bytes = Zeroizing::new(std::fs::read(&from).map_err(io_error(&from))?);
        write_new(&staging.join(name), &bytes, mode)
    };
    if config.key.is_empty() {
        copy(ISSUING_KEY, 0o600)?;
    } else {
        // The key stays in the token: the retired generation records its URI.
        let record = token_uri(config)?.record();
        write_new(&staging.join(ISSUING_KEY_URI), record.as_bytes(), 0o644)?;
    }
    copy(ISSUING_CERT, 0o644)?;
    let target = root.join(next.to_string());
    std::fs::rename(&staging, &target).map_err(io_error(&target))?;
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::generations::Generations;
    use crate::ca::tests::config;

    fn rolled_config(dir: &Path, issuing_years: u32) -> CaConfig {
        CaConfig {
            issuing_validity_years: issuing_years,
            ..config(dir, KeyAlgorithm::P256, 10)
        }
    }

    fn issuing_der(dir: &Path) -> Vec<u8> {
        read_certificates(&dir.join(ISSUING_CERT))
            .unwrap()
            .remove(0)
    }

    /// Signs the pending CSR with the root key at `root_key` (a plain PEM file), as an
    /// offline root would.
    fn sign_offline(dir: &Path, root_key: &Path) -> PathBuf {
        let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(root_key).unwrap()).unwrap();
        let root = read_certificates(&dir.join(ROOT_CERT)).unwrap().remove(0);
        let issuer = rcgen::Issuer::from_ca_cert_der(
            &rustls_pki_types::CertificateDer::from(root.as_slice()),
            key,
        )
        .unwrap();
        let csr = std::fs::read_to_string(dir.join(ROLLOVER_DIR).join(ROLLOVER_CSR)).unwrap();
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(&csr).unwrap();
        csr.params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        csr.params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        csr.params.use_authority_key_identifier_extension = true;
        csr.params.not_after = profile::add_years(OffsetDateTime::now_utc(), 12).unwrap();
        let cert = csr.signed_by(&issuer).unwrap();
        let path = dir.join("signed-offline.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        path
    }

    #[test]
    fn an_interrupted_install_finishes_when_run_again_and_a_second_run_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let config = rolled_config(&dir, 10);
        CertificateAuthority::init(&config, None).unwrap();
        let first = issuing_der(&dir);
        let offline = tmp.path().join("root.key");
        std::fs::rename(dir.join(ROOT_KEY), &offline).unwrap();

        let report = CertificateAuthority::rollover(&config, None).unwrap();
        assert!(
            matches!(report, RolloverReport::CsrWritten { .. }),
            "{report}"
        );
        assert!(matches!(
            CertificateAuthority::rollover(&config, None),
            Err(CaError::RolloverPending { .. })
        ));
        let signed = sign_offline(&dir, &offline);
        CertificateAuthority::install_rollover(&config, &signed, None).unwrap();
        let second = issuing_der(&dir);
        assert_ne!(first, second);

        // As if the install had stopped after moving the key: the old certificate is back.
        std::fs::write(dir.join(ISSUING_CERT), pem(&first).unwrap()).unwrap();
        assert!(CertificateAuthority::load(&config, "{id}").is_err());
        let report = CertificateAuthority::install_rollover(&config, &signed, None).unwrap();
        assert!(
            matches!(report, RolloverReport::Installed { retired: None, .. }),
            "{report}"
        );
        assert_eq!(issuing_der(&dir), second);
        CertificateAuthority::load(&config, "{id}").unwrap();
        assert_eq!(previous_dirs(&dir).unwrap().len(), 1);
        assert_eq!(
            read_certificates(&dir.join("previous/1").join(ISSUING_CERT)).unwrap()[0],
            first
        );
        // Installed already: nothing changes.
        CertificateAuthority::install_rollover(&config, &signed, None).unwrap();
        assert_eq!(previous_dirs(&dir).unwrap().len(), 1);
    }

    #[test]
    fn a_certificate_that_does_not_outlive_the_current_one_is_refused_and_nothing_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        CertificateAuthority::init(&rolled_config(&dir, 10), None).unwrap();
        let before = issuing_der(&dir);
        let err = CertificateAuthority::rollover(&rolled_config(&dir, 1), None).unwrap_err();
        assert!(
            err.to_string().contains("before the current issuing CA"),
            "{err}"
        );
        assert_eq!(issuing_der(&dir), before);
        assert!(previous_dirs(&dir).unwrap().is_empty());
        assert!(dir.join(ROLLOVER_DIR).join(ISSUING_KEY).exists());
    }

    #[test]
    fn a_retired_generation_is_loaded_until_its_certificate_expires() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let config = rolled_config(&dir, 2);
        CertificateAuthority::init(&config, None).unwrap();
        CertificateAuthority::rollover(&rolled_config(&dir, 3), None).unwrap();
        let load = |now| {
            let current = CertificateAuthority::load(&config, "{id}").unwrap();
            Generations::with_previous(current, &config, "{id}", "", now).unwrap()
        };
        let now = OffsetDateTime::now_utc();
        let generations = load(now);
        assert_eq!(generations.previous().len(), 1);
        assert_ne!(
            generations.current().key_id(),
            generations.previous()[0].key_id()
        );
        assert_eq!(generations.certificates_der().len(), 3);
        let later = generations.previous()[0].issuing_not_after() + time::Duration::seconds(1);
        assert!(load(later).previous().is_empty());
    }
}
