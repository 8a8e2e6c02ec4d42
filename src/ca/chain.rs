//! Checks of the CA certificates read from the CA directory: each can issue certificates,
//! the chain verifies from the issuing CA up to its root, and a key file matches its
//! certificate.

use std::path::Path;

use der::Decode;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::key::CaKey;
use super::{profile, CaError};

/// Parses the certificate `der`, read from `path` (named in the error); trailing bytes are
/// refused.
pub(super) fn parse<'a>(der: &'a [u8], path: &Path) -> Result<X509Certificate<'a>, CaError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(CaError::BadCertificate {
            path: path.to_path_buf(),
            reason: "a certificate is not valid DER X.509".into(),
        }),
    }
}

/// The notAfter of the certificate `der`, read from `path` (named in the error).
pub(super) fn certificate_not_after(der: &[u8], path: &Path) -> Result<OffsetDateTime, CaError> {
    let cert = Certificate::from_der(der).map_err(|e| CaError::BadCertificate {
        path: path.to_path_buf(),
        reason: format!("not a DER certificate ({e})"),
    })?;
    profile::from_x509_time(&cert.tbs_certificate.validity.not_after)
}

/// Refuses a certificate that cannot issue certificates.
pub(super) fn check_is_ca(cert: &X509Certificate<'_>, path: &Path) -> Result<(), CaError> {
    let not_ca = |reason: &str| CaError::NotCa {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        Ok(_) => return Err(not_ca("basicConstraints CA:TRUE is missing")),
        Err(_) => return Err(not_ca("its basicConstraints extension is malformed")),
    }
    match cert.key_usage() {
        Ok(Some(ku)) if ku.value.key_cert_sign() => Ok(()),
        Ok(_) => Err(not_ca("keyUsage keyCertSign is missing")),
        Err(_) => Err(not_ca("its keyUsage extension is malformed")),
    }
}

/// Refuses a certificate that cannot be estca's issuing CA: one that cannot issue
/// certificates ([`check_is_ca`]), or whose keyUsage leaves out cRLSign. The issuing CA's key
/// also signs the CRLs, and RFC 5280 6.3.3 (f) has relying parties refuse a CRL whose
/// issuer's certificate has a keyUsage without cRLSign.
pub(super) fn check_is_issuing_ca(cert: &X509Certificate<'_>, path: &Path) -> Result<(), CaError> {
    check_is_ca(cert, path)?;
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.crl_sign() => Err(CaError::NoCrlSign {
            path: path.to_path_buf(),
            subject: cert.subject().to_string(),
        }),
        _ => Ok(()),
    }
}

/// True when `cert` names itself as issuer and its signature verifies with its own key.
pub(super) fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok()
}

/// Checks that each certificate is signed by the next one (issuing CA first, root last).
pub(super) fn verify_chain(ders: &[&[u8]], path: &Path) -> Result<(), CaError> {
    for pair in ders.windows(2) {
        let child = parse(pair[0], path)?;
        let parent = parse(pair[1], path)?;
        if child.issuer().as_raw() != parent.subject().as_raw()
            || child.verify_signature(Some(parent.public_key())).is_err()
        {
            return Err(CaError::BadCertificate {
                path: path.to_path_buf(),
                reason: format!(
                    "'{}' is not signed by '{}': give the chain in order, issuing CA first and root last",
                    child.subject(),
                    parent.subject()
                ),
            });
        }
    }
    Ok(())
}

/// Refuses a chain (issuing CA first) that does not end at a self-signed root: EST's
/// `cacerts` answer is built from it and "MUST include the current root CA certificate"
/// (RFC 7030 section 4.1.3), without which a client has no anchor to check estca against.
/// `path` is the file named in the error.
pub(super) fn check_ends_at_root(ders: &[&[u8]], path: &Path) -> Result<(), CaError> {
    let Some(last) = ders.last() else {
        return Err(CaError::BadCertificate {
            path: path.to_path_buf(),
            reason: "holds no certificate".into(),
        });
    };
    let last = parse(last, path)?;
    if is_self_signed(&last) {
        return Ok(());
    }
    Err(CaError::BadCertificate {
        path: path.to_path_buf(),
        reason: format!(
            "the chain ends at '{}', which is not a self-signed root, and EST's cacerts must \
             carry the root (RFC 7030 section 4.1.3): add the root CA certificate after it, \
             or as root-ca.pem in the CA directory",
            last.subject()
        ),
    })
}

/// Refuses a key file (`key_path`) whose key is not the one its certificate certifies.
pub(super) fn check_key_matches(
    key: &CaKey,
    cert: &X509Certificate<'_>,
    key_path: &Path,
    cert_path: &Path,
) -> Result<(), CaError> {
    if key.public_key_der()? != cert.public_key().raw {
        return Err(CaError::KeyMismatch {
            key: key_path.to_path_buf(),
            certificate: cert_path.to_path_buf(),
        });
    }
    Ok(())
}
