//! Backups signed by the CA: the daemon signs each backup with the issuing CA's key
//! ([`CertificateAuthority::sign_backup`]); `estca restore` checks the signature
//! ([`verify_backup_signature`]) and that the signer is this CA ([`BackupTrust`]) before it
//! restores anything. A backup whose password hash was swapped and checksum recomputed no
//! longer verifies; one signed by another CA is not trusted.
//!
//! The signer is trusted when its certificate is the configured issuing CA's
//! (`issuing-ca.pem`), or when it is a CA certificate issued by a CA configured above it (an
//! intermediate in `issuing-ca.pem`, or `root-ca.pem`): that is the issuing CA before a
//! rollover, whose backups must still restore.

use std::path::Path;

use ring::signature::{UnparsedPublicKey, VerificationAlgorithm};

use super::chain::{check_is_ca, parse};
use super::files::read_ca_chain;
use super::{CaError, CertificateAuthority};
use crate::config::{CaConfig, KeyAlgorithm};
use crate::store::backup::{BackupSignature, SignatureAlgorithm};

/// Why a backup's signature was not accepted. Nothing was restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupSignatureError {
    /// The signer certificate in the trailer is not a certificate.
    #[error("the backup's signer certificate is not a valid X.509 certificate; the file was altered or damaged")]
    BadSigner,
    /// The signature does not verify with the signer's key.
    #[error("the backup's signature does not verify with the key of '{signer}': the file was altered after the CA signed it (or damaged); do not restore it, find an intact copy")]
    BadSignature {
        /// The signer's subject.
        signer: String,
    },
    /// The signer is not this CA.
    #[error("the backup was signed by {signer}, which is neither this CA's issuing CA {issuing} nor a CA issued by one configured above it ({anchors}): it is another CA's backup, or forged; restore only backups taken by this CA, with its CA directory (ca.dir) in place")]
    Untrusted {
        /// The signer's subject and certificate fingerprint.
        signer: String,
        /// The configured issuing CA's subject and certificate fingerprint.
        issuing: String,
        /// The subjects of the configured CAs above it.
        anchors: String,
    },
    /// The configured CA's certificates could not be read.
    #[error("{0}; the backup is checked against the CA in ca.dir, so put the CA files back (they are not in the backup) before restoring")]
    Ca(#[from] CaError),
}

impl CertificateAuthority {
    /// Signs `message` (a backup's [`crate::store::backup::signed_message`]) with the issuing
    /// CA's key; the signature carries the issuing CA's certificate.
    pub fn sign_backup(&self, message: &[u8]) -> Result<BackupSignature, CaError> {
        let algorithm = match self.key.algorithm() {
            KeyAlgorithm::P256 => SignatureAlgorithm::EcdsaWithSha256,
            KeyAlgorithm::P384 => SignatureAlgorithm::EcdsaWithSha384,
        };
        Ok(BackupSignature {
            algorithm,
            signer: self.issuing_der.clone(),
            value: self.key.sign_der(message)?,
        })
    }
}

/// Checks that `signature` is over `message` by the key of the certificate it carries;
/// returns that certificate's subject. Whether that certificate is trusted is
/// [`BackupTrust::vouch`]'s question.
pub fn verify_backup_signature(
    signature: &BackupSignature,
    message: &[u8],
) -> Result<String, BackupSignatureError> {
    let signer = parse(&signature.signer, Path::new("the backup"))
        .map_err(|_| BackupSignatureError::BadSigner)?;
    let algorithm: &dyn VerificationAlgorithm = match signature.algorithm {
        SignatureAlgorithm::EcdsaWithSha256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
        SignatureAlgorithm::EcdsaWithSha384 => &ring::signature::ECDSA_P384_SHA384_ASN1,
    };
    let subject = signer.subject().to_string();
    UnparsedPublicKey::new(algorithm, &*signer.public_key().subject_public_key.data)
        .verify(message, &signature.value)
        .map_err(|_| BackupSignatureError::BadSignature {
            signer: subject.clone(),
        })?;
    Ok(subject)
}

/// The configured CA's certificates (no key): whom a backup's signer must be.
#[derive(Debug, Clone)]
pub struct BackupTrust {
    issuing: Vec<u8>,
    /// The CAs above the issuing CA: intermediates from `issuing-ca.pem`, then the root.
    above: Vec<Vec<u8>>,
}

/// How a trusted signer relates to the configured CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerStanding {
    /// The configured issuing CA itself.
    IssuingCa,
    /// Another CA certificate issued by a CA above the issuing CA (the issuing CA before a
    /// rollover); carries the issuer's subject.
    IssuedBy(String),
}

impl BackupTrust {
    /// Reads `issuing-ca.pem` (and its chain) and, if present, `root-ca.pem` from `config.dir`.
    pub fn load(config: &CaConfig) -> Result<Self, CaError> {
        let mut certificates = read_ca_chain(&config.dir)?;
        let issuing = certificates.remove(0);
        Ok(Self {
            issuing,
            above: certificates,
        })
    }

    /// Whether a backup signed by `signer` (DER) may be restored here, and why.
    pub fn vouch(&self, signer: &[u8]) -> Result<SignerStanding, BackupSignatureError> {
        if signer == self.issuing.as_slice() {
            return Ok(SignerStanding::IssuingCa);
        }
        let here = Path::new("the backup");
        let cert = parse(signer, here).map_err(|_| BackupSignatureError::BadSigner)?;
        let mut anchors = Vec::new();
        for der in &self.above {
            let anchor = parse(der, here)?;
            if cert.issuer().as_raw() == anchor.subject().as_raw()
                && cert.verify_signature(Some(anchor.public_key())).is_ok()
                && check_is_ca(&cert, here).is_ok()
            {
                return Ok(SignerStanding::IssuedBy(anchor.subject().to_string()));
            }
            anchors.push(format!("'{}'", anchor.subject()));
        }
        Err(BackupSignatureError::Untrusted {
            signer: named(&cert, signer),
            issuing: named(&parse(&self.issuing, here)?, &self.issuing),
            anchors: if anchors.is_empty() {
                "none configured".into()
            } else {
                anchors.join(", ")
            },
        })
    }
}

/// A certificate for a message: its subject and the start of its SHA-256 fingerprint (two
/// development CAs have the same names).
fn named(cert: &x509_parser::prelude::X509Certificate<'_>, der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    format!(
        "'{}' (certificate SHA-256 {}…)",
        cert.subject(),
        hex::encode(&digest.as_ref()[..8])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyAlgorithm;
    use crate::store::backup::signed_message;

    fn config(dir: &Path, alg: KeyAlgorithm, name: &str) -> CaConfig {
        CaConfig {
            dir: dir.to_path_buf(),
            create_if_missing: false,
            key_algorithm: alg,
            country: "JP".into(),
            organization: "estca test".into(),
            root_name: format!("{name} Root"),
            issuing_name: format!("{name} Issuing"),
            root_validity_years: 2,
            issuing_validity_years: 1,
            server_cert_validity_days: 30,
            expiry_warning_days: 400,
            key_passphrase_file: None,
            key_passphrase_credential: "ca-key-passphrase".into(),
            key: String::new(),
            pkcs11_pin_file: None,
            pkcs11_pin_credential: "pkcs11-pin".into(),
            root_crl: None,
            root_crl_warning_days: 7,
        }
    }

    fn new_ca(dir: &Path, alg: KeyAlgorithm, name: &str) -> CertificateAuthority {
        CertificateAuthority::init(&config(dir, alg, name), None).unwrap();
        CertificateAuthority::load(&config(dir, alg, name), "{id}").unwrap()
    }

    #[test]
    fn a_signature_verifies_only_over_what_was_signed() {
        for alg in [KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let dir = tempfile::tempdir().unwrap();
            let ca = new_ca(dir.path(), alg, "A");
            let message = signed_message(&[7; 32]);
            let signature = ca.sign_backup(&message).unwrap();
            let subject = verify_backup_signature(&signature, &message).unwrap();
            assert!(subject.contains("A Issuing"), "{subject}");
            let trust = BackupTrust::load(&config(dir.path(), alg, "A")).unwrap();
            assert_eq!(
                trust.vouch(&signature.signer).unwrap(),
                SignerStanding::IssuingCa
            );

            let other = signed_message(&[8; 32]);
            let err = verify_backup_signature(&signature, &other).unwrap_err();
            assert!(
                matches!(err, BackupSignatureError::BadSignature { .. }),
                "{err}"
            );
            let mut flipped = signature.clone();
            let last = flipped.value.len() - 1;
            flipped.value[last] ^= 1;
            assert!(verify_backup_signature(&flipped, &message).is_err());
            let mut relabelled = signature.clone();
            relabelled.algorithm = match alg {
                KeyAlgorithm::P256 => SignatureAlgorithm::EcdsaWithSha384,
                KeyAlgorithm::P384 => SignatureAlgorithm::EcdsaWithSha256,
            };
            assert!(verify_backup_signature(&relabelled, &message).is_err());
            let mut garbage = signature.clone();
            garbage.signer = b"not a certificate".to_vec();
            assert!(matches!(
                verify_backup_signature(&garbage, &message).unwrap_err(),
                BackupSignatureError::BadSigner
            ));
        }
    }

    #[test]
    fn another_cas_signature_is_not_trusted() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ca_a = new_ca(a.path(), KeyAlgorithm::P256, "A");
        new_ca(b.path(), KeyAlgorithm::P256, "B");
        let message = signed_message(&[1; 32]);
        let signature = ca_a.sign_backup(&message).unwrap();
        verify_backup_signature(&signature, &message).unwrap();
        let trust_b = BackupTrust::load(&config(b.path(), KeyAlgorithm::P256, "B")).unwrap();
        let err = trust_b.vouch(&signature.signer).unwrap_err();
        assert!(
            matches!(err, BackupSignatureError::Untrusted { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("A Issuing") && text.contains("B Root"),
            "{text}"
        );

        let empty = tempfile::tempdir().unwrap();
        let err = BackupTrust::load(&config(empty.path(), KeyAlgorithm::P256, "C")).unwrap_err();
        assert!(matches!(err, CaError::NotInitialized { .. }), "{err}");
    }

    /// After a rollover (a new issuing CA from the same root), backups of the old issuing CA
    /// still restore; an end-entity certificate of the root's would not sign for it.
    #[test]
    fn the_issuing_ca_before_a_rollover_is_trusted_through_the_root() {
        let old = tempfile::tempdir().unwrap();
        let old_ca = new_ca(old.path(), KeyAlgorithm::P256, "A");
        let message = signed_message(&[2; 32]);
        let signature = old_ca.sign_backup(&message).unwrap();

        let root_pem = std::fs::read_to_string(old.path().join("root-ca.pem")).unwrap();
        let root_key = rcgen::KeyPair::from_pem(
            &std::fs::read_to_string(old.path().join("root-ca.key")).unwrap(),
        )
        .unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&root_pem, &root_key).unwrap();
        let new_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "A Issuing 2");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params.use_authority_key_identifier_extension = true;
        let new_cert = params.signed_by(&new_key, &issuer).unwrap();
        let files = tempfile::tempdir().unwrap();
        let chain = files.path().join("chain.pem");
        std::fs::write(&chain, new_cert.pem() + &root_pem).unwrap();
        let key = files.path().join("key.pem");
        std::fs::write(&key, new_key.serialize_pem()).unwrap();
        let rolled = tempfile::tempdir().unwrap();
        let rolled_config = config(&rolled.path().join("ca"), KeyAlgorithm::P256, "A");
        CertificateAuthority::import(&rolled_config, &chain, &key, None).unwrap();

        let trust = BackupTrust::load(&rolled_config).unwrap();
        match trust.vouch(&signature.signer).unwrap() {
            SignerStanding::IssuedBy(root) => assert!(root.contains("A Root"), "{root}"),
            other => panic!("{other:?}"),
        }

        // A certificate the root issued that is no CA does not vouch.
        let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["leaf.example".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let err = trust.vouch(leaf.der()).unwrap_err();
        assert!(
            matches!(err, BackupSignatureError::Untrusted { .. }),
            "{err}"
        );
    }
}
