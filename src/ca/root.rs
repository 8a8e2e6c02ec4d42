//! The offline root: a root CA whose key lives on a machine of its own, never on the daemon's
//! host. `estca root init` creates it in a root directory; there it certifies issuing CAs from
//! their certificate requests (`estca root sign-issuing`), revokes them
//! (`estca root revoke-issuing`) and signs the ARL, the CRL of the CA certificates it issued
//! (RFC 5280 section 5; `estca root sign-arl`), which the daemon publishes at `/root.crl`.
//!
//! Files in the root directory: `root-ca.pem`, `root-ca.key` (PKCS#8, encrypted unless asked
//! otherwise, mode 0600), `root.crl` (the current ARL, DER) and `issued/<serial>.pem` (every
//! issuing CA certificate signed, for the record and for revocation). The names of the
//! certificate and key are those of a CA directory, so a local root (`estca init`) can sign
//! an ARL the same way. The revoked certificates and the CRL number are read from the current
//! ARL: it is the root's whole state besides its key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use der::Decode;
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, CrlNumber, CrlReason,
    KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_parser::prelude::FromDer;

use super::crl::{crl_reason, sign_list, CrlEntry, CrlRequest, CrlScope};
use super::files::{create_dir, pem, refuse_existing, write_new, ROOT_CERT, ROOT_KEY};
use super::hierarchy::{new_root, rcgen_key_pem, whole_seconds_now, NewRoot};
use super::key::{CaKey, KeyProtection};
use super::key_files;
use super::passphrase::KeyPassphrase;
use super::profile::{self, extension, octets};
use super::CaError;
use super::{chain, files};
use crate::config::CaConfig;
use crate::model::{RevocationReason, Serial};

/// The current ARL in a root directory (DER), and the name the daemon serves it under by
/// default in its CA directory.
pub const ARL_FILE: &str = "root.crl";
/// The directory, in a root directory, of every issuing CA certificate the root signed.
pub const ISSUED_DIR: &str = "issued";

/// What `estca root sign-issuing` writes into an issuing CA certificate besides the request's
/// subject and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuingProfile {
    /// The URL of the ARL the daemon publishes (`<revocation.public_url>/root.crl`), for the
    /// CRL distribution point; `None` leaves the extension out.
    pub crl_url: Option<String>,
    /// Validity in years from now (never beyond the root's notAfter).
    pub validity_years: u32,
}

/// An issuing CA certificate the root signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCa {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its serial.
    pub serial: Serial,
    /// Its subject, for the operator.
    pub subject: String,
    /// Its notAfter.
    pub not_after: OffsetDateTime,
    /// Where the root directory keeps a copy (`issued/<serial>.pem`).
    pub recorded: PathBuf,
}

impl IssuedCa {
    /// The certificate as PEM.
    pub fn pem(&self) -> Result<String, CaError> {
        pem(&self.der)
    }
}

/// An ARL the root signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArlReport {
    /// The file written (`root.crl` in the root directory).
    pub path: PathBuf,
    /// Its cRLNumber.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate: sign a fresh ARL and install it on the daemon before then.
    pub next_update: OffsetDateTime,
    /// The revoked issuing CA certificates it lists.
    pub revoked: Vec<CrlEntry>,
}

impl fmt::Display for ArlReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = crate::model::rfc3339;
        writeln!(f, "ARL:          {}", self.path.display())?;
        writeln!(f, "  number      {}", self.number)?;
        writeln!(f, "  this update {}", time(self.this_update))?;
        write!(
            f,
            "  next update {} (sign a fresh one and copy it to the daemon before then)",
            time(self.next_update)
        )?;
        for entry in &self.revoked {
            write!(
                f,
                "\n  revoked     {} at {} ({})",
                entry.serial,
                time(entry.revoked_at),
                entry.reason
            )?;
        }
        Ok(())
    }
}

/// What `estca root init` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootInitReport {
    /// The root certificate file.
    pub certificate: PathBuf,
    /// The root key file.
    pub key: PathBuf,
    /// True when the key file is encrypted.
    pub key_encrypted: bool,
    /// The root's subject.
    pub subject: String,
    /// The root's notAfter.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the root certificate (hex, colon-separated), to compare out of band once
    /// the certificate is on the daemon's host.
    pub fingerprint: String,
    /// The first ARL.
    pub arl: ArlReport,
}

impl fmt::Display for RootInitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protection = if self.key_encrypted {
            "encrypted with the passphrase"
        } else {
            "NOT encrypted"
        };
        writeln!(f, "root CA:      {}", self.subject)?;
        writeln!(f, "  valid until {}", crate::model::rfc3339(self.not_after))?;
        writeln!(f, "  certificate {}", self.certificate.display())?;
        writeln!(f, "  SHA-256     {}", self.fingerprint)?;
        writeln!(
            f,
            "  key         {} (mode 0600, {protection}; it never leaves this machine)",
            self.key.display()
        )?;
        write!(f, "{}", self.arl)
    }
}

/// A root CA opened from its root directory, key loaded.
#[derive(Debug)]
pub struct OfflineRoot {
    dir: PathBuf,
    key: CaKey,
    cert_der: Vec<u8>,
    subject: Name,
    key_id: Vec<u8>,
    not_after: OffsetDateTime,
}

/// SHA-256 of `der`, as colon-separated upper-case hex (as `openssl x509 -fingerprint`
/// prints it).
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn bad_arl(path: &Path, reason: impl Into<String>) -> CaError {
    CaError::BadCertificate {
        path: path.to_path_buf(),
        reason: format!("not a usable ARL: {}", reason.into()),
    }
}

/// The estca revocation reason of an RFC 5280 one, when estca has it.
fn reason_of(reason: CrlReason) -> Option<RevocationReason> {
    RevocationReason::ALL
        .into_iter()
        .find(|r| crl_reason(*r) == reason)
}

/// The subject key identifier of a certificate: its extension, else RFC 5280 4.2.1.2
/// method (1).
fn subject_key_id(cert: &Certificate) -> Vec<u8> {
    match cert.tbs_certificate.get::<SubjectKeyIdentifier>() {
        Ok(Some((_, ski))) => ski.0.as_bytes().to_vec(),
        _ => profile::key_identifier(&cert.tbs_certificate.subject_public_key_info),
    }
}

impl OfflineRoot {
    /// Creates a root in `dir` (created if missing, mode 0700): a new key of
    /// `config.key_algorithm` (encrypted with `passphrase` when given), a self-signed
    /// certificate named C, O and `config.root_name`, valid `config.root_validity_years`,
    /// and its first ARL (number 1, empty, valid `arl_validity`). Refuses a directory that
    /// already holds a root or an ARL.
    pub fn init(
        dir: &Path,
        config: &CaConfig,
        passphrase: Option<&KeyPassphrase>,
        arl_validity: time::Duration,
    ) -> Result<RootInitReport, CaError> {
        let cert_path = dir.join(ROOT_CERT);
        let key_path = dir.join(ROOT_KEY);
        refuse_existing(&[&cert_path, &key_path, &dir.join(ARL_FILE)])?;
        create_dir(dir)?;
        let now = whole_seconds_now()?;
        let NewRoot { key, cert, .. } = new_root(config, now)?;
        let key_pem = rcgen_key_pem(&key, &key_path, passphrase)?;
        write_new(&key_path, key_pem.as_bytes(), 0o600)?;
        write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
        let root = Self::open(dir, passphrase)?;
        let arl = root.write_arl(1, now, arl_validity, Vec::new())?;
        Ok(RootInitReport {
            certificate: cert_path,
            key: key_path,
            key_encrypted: passphrase.is_some(),
            subject: chain::parse(&root.cert_der, &dir.join(ROOT_CERT))?
                .subject()
                .to_string(),
            not_after: root.not_after,
            fingerprint: fingerprint(&root.cert_der),
            arl,
        })
    }

    /// Opens the root of `dir`: reads `root-ca.pem` and `root-ca.key` (decrypted with
    /// `passphrase`; refused when group or others can access it) and checks that they belong
    /// together and that the certificate is a self-signed CA.
    pub fn open(dir: &Path, passphrase: Option<&KeyPassphrase>) -> Result<Self, CaError> {
        let cert_path = dir.join(ROOT_CERT);
        let key_path = dir.join(ROOT_KEY);
        if !cert_path.exists() || !key_path.exists() {
            return Err(CaError::NoRoot {
                dir: dir.to_path_buf(),
            });
        }
        let (key, _): (CaKey, KeyProtection) = key_files::read(&key_path, passphrase)?;
        let mut ders = files::read_certificates(&cert_path)?;
        if ders.len() != 1 {
            return Err(CaError::BadCertificate {
                path: cert_path,
                reason: "must hold exactly one certificate, the root".into(),
            });
        }
        let cert_der = ders.remove(0);
        let parsed = chain::parse(&cert_der, &cert_path)?;
        chain::check_key_matches(&key, &parsed, &key_path, &cert_path)?;
        chain::check_is_ca(&parsed, &cert_path)?;
        if parsed.subject().as_raw() != parsed.issuer().as_raw()
            || parsed.verify_signature(None).is_err()
        {
            return Err(CaError::NotCa {
                path: cert_path,
                reason: "it is not a self-signed root".into(),
            });
        }
        let cert = Certificate::from_der(&cert_der).map_err(|e| CaError::BadCertificate {
            path: cert_path.clone(),
            reason: format!("not a DER certificate ({e})"),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key_id: subject_key_id(&cert),
            not_after: profile::from_x509_time(&cert.tbs_certificate.validity.not_after)?,
            subject: cert.tbs_certificate.subject,
            key,
            cert_der,
        })
    }

    /// The root certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Certifies the issuing CA of the PKCS#10 request `csr_der` (read from `csr_path`, named
    /// in errors) once its signature verifies: the request's subject and key, a random
    /// serial, basicConstraints CA pathLen 0 and keyUsage keyCertSign, cRLSign and
    /// digitalSignature (both critical), SKI, AKI (the root's key), the CRL distribution
    /// point of `profile`, valid from `now` for `profile.validity_years` but never beyond the
    /// root. Records a copy in `issued/<serial>.pem`.
    pub fn sign_issuing(
        &self,
        csr_der: &[u8],
        csr_path: &Path,
        issuing: &IssuingProfile,
        now: OffsetDateTime,
    ) -> Result<IssuedCa, CaError> {
        let bad = |reason: &str| CaError::BadRequest {
            path: csr_path.to_path_buf(),
            reason: reason.into(),
        };
        let csr =
            match x509_parser::certification_request::X509CertificationRequest::from_der(csr_der) {
                Ok(([], csr)) => csr,
                _ => return Err(bad("it is not a DER PKCS#10 certificate request")),
            };
        if csr.verify_signature().is_err() {
            return Err(bad(
                "its signature does not verify, so it was not made with the key it names; make a new request with `estca init --offline-root`",
            ));
        }
        let info = &csr.certification_request_info;
        let subject =
            Name::from_der(info.subject.as_raw()).map_err(|_| bad("its subject is not DER"))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(info.subject_pki.raw)
            .map_err(|_| bad("its public key is not DER"))?;
        if info.subject.iter_common_name().next().is_none() {
            return Err(bad("its subject has no common name"));
        }
        if now >= self.not_after {
            return Err(CaError::BadCertificate {
                path: self.dir.join(ROOT_CERT),
                reason: "the root has expired".into(),
            });
        }
        let not_after = profile::add_years(now, issuing.validity_years)?.min(self.not_after);
        let serial = Serial::random();
        let mut extensions = vec![
            extension(
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: Some(0),
                },
                true,
            )?,
            extension(
                &KeyUsage(
                    KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature,
                ),
                true,
            )?,
            extension(
                &SubjectKeyIdentifier(octets(&profile::key_identifier(&spki))?),
                false,
            )?,
            extension(
                &AuthorityKeyIdentifier {
                    key_identifier: Some(octets(&self.key_id)?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
                false,
            )?,
        ];
        if let Some(url) = &issuing.crl_url {
            let uri = der::asn1::Ia5String::new(url).map_err(|e| {
                CaError::InvalidName(format!(
                    "the ARL URL '{url}' cannot be put into a certificate: {e}"
                ))
            })?;
            extensions.push(extension(
                &CrlDistributionPoints(vec![DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![
                        GeneralName::UniformResourceIdentifier(uri),
                    ])),
                    reasons: None,
                    crl_issuer: None,
                }]),
                false,
            )?);
        }
        let tbs = profile::tbs_certificate(
            serial.as_bytes(),
            &self.subject,
            &self.key,
            subject,
            spki,
            now,
            not_after,
            extensions,
        )?;
        let der = profile::sign_tbs(&self.key, tbs)?;
        let issued_dir = self.dir.join(ISSUED_DIR);
        create_dir(&issued_dir)?;
        let recorded = issued_dir.join(format!("{serial}.pem"));
        write_new(&recorded, pem(&der)?.as_bytes(), 0o644)?;
        Ok(IssuedCa {
            subject: info.subject.to_string(),
            der,
            serial,
            not_after,
            recorded,
        })
    }

    /// Revokes the issuing CA certificate `serial` (one this root signed, recorded in
    /// `issued/`) and signs a fresh ARL listing it, valid `arl_validity` from `now`.
    pub fn revoke_issuing(
        &self,
        serial: Serial,
        reason: RevocationReason,
        now: OffsetDateTime,
        arl_validity: time::Duration,
    ) -> Result<ArlReport, CaError> {
        if !self
            .dir
            .join(ISSUED_DIR)
            .join(format!("{serial}.pem"))
            .exists()
        {
            return Err(CaError::UnknownIssuingCa {
                serial,
                dir: self.dir.join(ISSUED_DIR),
            });
        }
        let (number, mut revoked) = self.current_arl()?;
        if revoked.iter().any(|e| e.serial == serial) {
            return Err(CaError::AlreadyRevoked { serial });
        }
        revoked.push(CrlEntry {
            serial,
            revoked_at: now,
            reason,
        });
        self.write_arl(number + 1, now, arl_validity, revoked)
    }

    /// Signs a fresh ARL with the same entries as the current one and the next number, valid
    /// `arl_validity` from `now`.
    pub fn sign_arl(
        &self,
        now: OffsetDateTime,
        arl_validity: time::Duration,
    ) -> Result<ArlReport, CaError> {
        let (number, revoked) = self.current_arl()?;
        self.write_arl(number + 1, now, arl_validity, revoked)
    }

    /// The number and entries of the current ARL, which must be this root's.
    fn current_arl(&self) -> Result<(u64, Vec<CrlEntry>), CaError> {
        let path = self.dir.join(ARL_FILE);
        let der = std::fs::read(&path).map_err(|source| CaError::Io {
            path: path.clone(),
            source,
        })?;
        let crl = CertificateList::from_der(&der).map_err(|e| bad_arl(&path, e.to_string()))?;
        let tbs = &crl.tbs_cert_list;
        if tbs.issuer != self.subject {
            return Err(bad_arl(&path, "it was not issued by this root"));
        }
        let number = tbs
            .crl_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_NUMBER)
            .and_then(|e| CrlNumber::from_der(e.extn_value.as_bytes()).ok())
            .and_then(|n| {
                let bytes = n.0.as_bytes();
                (bytes.len() <= 8).then(|| {
                    let mut buf = [0u8; 8];
                    buf[8 - bytes.len()..].copy_from_slice(bytes);
                    u64::from_be_bytes(buf)
                })
            })
            .ok_or_else(|| bad_arl(&path, "it has no CRL number estca can read"))?;
        let mut revoked = Vec::new();
        for entry in tbs.revoked_certificates.iter().flatten() {
            let serial = <[u8; 16]>::try_from(entry.serial_number.as_bytes())
                .ok()
                .and_then(|b| Serial::from_bytes(b).ok())
                .ok_or_else(|| bad_arl(&path, "it lists a serial estca did not issue"))?;
            let reason = match entry
                .crl_entry_extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_REASONS)
            {
                None => RevocationReason::Unspecified,
                Some(e) => CrlReason::from_der(e.extn_value.as_bytes())
                    .ok()
                    .and_then(reason_of)
                    .ok_or_else(|| bad_arl(&path, "it has a reason estca does not know"))?,
            };
            revoked.push(CrlEntry {
                serial,
                revoked_at: profile::from_x509_time(&entry.revocation_date)?,
                reason,
            });
        }
        Ok((number, revoked))
    }

    /// Signs an ARL and replaces `root.crl` with it in one step.
    fn write_arl(
        &self,
        number: u64,
        now: OffsetDateTime,
        validity: time::Duration,
        revoked: Vec<CrlEntry>,
    ) -> Result<ArlReport, CaError> {
        let next_update = now + validity;
        let der = sign_list(
            &self.key,
            &self.subject,
            &self.key_id,
            &CrlRequest {
                number,
                this_update: now,
                next_update,
                entries: &revoked,
            },
            CrlScope::CaCertificatesOnly,
        )?;
        let path = self.dir.join(ARL_FILE);
        let failed = |e: crate::private_file::PrivateFileError| CaError::Generate(e.to_string());
        let mut file = crate::private_file::PrivateFile::create(&path).map_err(failed)?;
        file.write_all(&der).map_err(|source| CaError::Io {
            path: path.clone(),
            source,
        })?;
        file.commit().map_err(failed)?;
        Ok(ArlReport {
            path,
            number,
            this_update: now,
            next_update,
            revoked,
        })
    }
}

#[cfg(test)]
mod tests;
