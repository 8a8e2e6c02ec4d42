//! Certificate revocation lists (RFC 5280 section 5): a v2 CRL signed by the issuing CA, with
//! the authority key identifier, a CRL number, thisUpdate/nextUpdate and one entry per
//! revoked certificate (revocation date, and a reasonCode unless the reason is unspecified,
//! as RFC 5280 5.3.1 asks).
//!
//! The CA only builds and signs: which certificates are listed, the number and the times are
//! decided by the caller (the CRL publisher).

use der::asn1::Uint;
use der::Encode;
use time::OffsetDateTime;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::IssuingDistributionPoint;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Version;

use super::key::CaKey;
use super::profile::{extension, octets, to_x509_time};
use super::{CaError, CertificateAuthority};
use crate::model::{RevocationReason, Serial};

/// One revoked certificate, as a CRL lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlEntry {
    /// The revoked certificate's serial.
    pub serial: Serial,
    /// When it was revoked (whole seconds are written).
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What a CRL says: its number, its validity and its entries.
#[derive(Debug, Clone, Copy)]
pub struct CrlRequest<'a> {
    /// The CRL number (RFC 5280 5.2.3); the caller keeps it strictly increasing.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate: when relying parties should fetch a newer CRL at the latest.
    pub next_update: OffsetDateTime,
    /// The revoked certificates to list (in any order; the CRL lists them by serial).
    pub entries: &'a [CrlEntry],
}

/// The RFC 5280 CRLReason of an estca revocation reason.
pub fn crl_reason(reason: RevocationReason) -> CrlReason {
    match reason {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
    }
}

fn encoding(what: &str, e: der::Error) -> CaError {
    CaError::Internal(format!("encoding {what}: {e}"))
}

impl CertificateAuthority {
    /// Builds and signs a v2 CRL with the issuing CA's key: issuer = the issuing CA's subject
    /// (byte for byte), extensions authorityKeyIdentifier and cRLNumber, entries sorted by
    /// serial, each with a reasonCode extension unless the reason is `unspecified`.
    /// Returns the DER.
    pub fn sign_crl(&self, request: &CrlRequest<'_>) -> Result<Vec<u8>, CaError> {
        sign_list(
            &self.key,
            &self.issuing_subject,
            &self.issuing_key_id,
            request,
            CrlScope::All,
        )
    }
}

/// Which certificates a CRL covers (RFC 5280 5.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CrlScope {
    /// Every certificate of the issuer: no issuingDistributionPoint extension.
    All,
    /// CA certificates only (an ARL): a critical issuingDistributionPoint with
    /// onlyContainsCACerts TRUE, as RFC 5280 5.2.5 requires of such a CRL.
    CaCertificatesOnly,
}

/// Builds and signs a v2 CRL of `issuer` (its subject, and its key identifier `key_id` for
/// the authorityKeyIdentifier) with `key`: cRLNumber, entries sorted by serial with a
/// reasonCode unless `unspecified`, and the issuingDistributionPoint `scope` asks for.
pub(super) fn sign_list(
    key: &CaKey,
    issuer: &Name,
    key_id: &[u8],
    request: &CrlRequest<'_>,
    scope: CrlScope,
) -> Result<Vec<u8>, CaError> {
    if request.next_update <= request.this_update {
        return Err(CaError::Internal(
            "a CRL's nextUpdate must be after its thisUpdate".into(),
        ));
    }
    let mut entries: Vec<&CrlEntry> = request.entries.iter().collect();
    entries.sort_unstable_by_key(|e| e.serial);
    let mut revoked = Vec::with_capacity(entries.len());
    for entry in entries {
        let crl_entry_extensions = match entry.reason {
            RevocationReason::Unspecified => None,
            reason => Some(vec![extension(&crl_reason(reason), false)?]),
        };
        revoked.push(RevokedCert {
            serial_number: SerialNumber::new(entry.serial.as_bytes())
                .map_err(|e| encoding("a CRL entry's serial", e))?,
            revocation_date: to_x509_time(entry.revoked_at)?,
            crl_entry_extensions,
        });
    }
    let number =
        Uint::new(&request.number.to_be_bytes()).map_err(|e| encoding("the CRL number", e))?;
    let mut crl_extensions = vec![
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(octets(key_id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?,
        extension(&CrlNumber(number), false)?,
    ];
    if scope == CrlScope::CaCertificatesOnly {
        let mut idp = extension(
            &IssuingDistributionPoint {
                distribution_point: None,
                only_contains_user_certs: false,
                only_contains_ca_certs: true,
                only_some_reasons: None,
                indirect_crl: false,
                only_contains_attribute_certs: false,
            },
            true,
        )?;
        // x509-cert 0.2 gives this type the OID of subjectInfoAccess; RFC 5280 5.2.5 says
        // id-ce-issuingDistributionPoint.
        idp.extn_id = const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT;
        crl_extensions.push(idp);
    }
    let tbs = TbsCertList {
        version: Version::V2,
        signature: key.signature_algorithm(),
        issuer: issuer.clone(),
        this_update: to_x509_time(request.this_update)?,
        next_update: Some(to_x509_time(request.next_update)?),
        // RFC 5280 5.1.2.6: absent, not empty, when nothing is revoked.
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(crl_extensions),
    };
    let tbs_der = tbs.to_der().map_err(|e| encoding("a CRL", e))?;
    let signature = key.sign(&tbs_der)?;
    CertificateList {
        signature_algorithm: tbs.signature.clone(),
        tbs_cert_list: tbs,
        signature,
    }
    .to_der()
    .map_err(|e| encoding("a CRL", e))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use der::Decode;
    use time::macros::datetime;

    use super::*;
    use crate::config::KeyAlgorithm;

    /// A CA whose organisation's name holds a comma, which names must not escape.
    fn ca(dir: &std::path::Path) -> CertificateAuthority {
        crate::ca::tests::test_ca_with(dir, "Test, Inc.", KeyAlgorithm::P256)
    }

    fn serial(b: u8) -> Serial {
        Serial::from_bytes([b; 16]).unwrap()
    }

    #[test]
    fn a_crl_lists_entries_with_reasons_and_verifies_with_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let entries = [
            CrlEntry {
                serial: serial(0x22),
                revoked_at: datetime!(2026-01-02 03:04:05 UTC),
                reason: RevocationReason::KeyCompromise,
            },
            CrlEntry {
                serial: serial(0x11),
                revoked_at: datetime!(2026-01-01 00:00:00 UTC),
                reason: RevocationReason::Unspecified,
            },
            CrlEntry {
                serial: serial(0x33),
                revoked_at: datetime!(2026-01-03 00:00:00 UTC),
                reason: RevocationReason::Superseded,
            },
        ];
        let der = ca
            .sign_crl(&CrlRequest {
                number: 258,
                this_update: datetime!(2026-01-04 00:00:00 UTC),
                next_update: datetime!(2026-01-05 00:00:00 UTC),
                entries: &entries,
            })
            .unwrap();

        let crl = CertificateList::from_der(&der).unwrap();
        let tbs = &crl.tbs_cert_list;
        assert_eq!(tbs.version, Version::V2);
        assert_eq!(tbs.issuer, ca.issuing_subject);
        let listed = tbs.revoked_certificates.as_ref().unwrap();
        let serials: Vec<&[u8]> = listed.iter().map(|r| r.serial_number.as_bytes()).collect();
        assert_eq!(
            serials,
            [serial(0x11), serial(0x22), serial(0x33)].map(|s| s.as_bytes().to_vec())
        );
        assert!(
            listed[0].crl_entry_extensions.is_none(),
            "unspecified is left out"
        );

        let crl_path = dir.path().join("crl.der");
        std::fs::write(&crl_path, &der).unwrap();
        let out = Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-verify", "-in"])
            .arg(&crl_path)
            .arg("-CAfile")
            .arg(dir.path().join("issuing-ca.pem"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("verify OK"), "{text}");
        assert!(text.contains("Version 2"), "{text}");
        assert!(
            text.contains("X509v3 CRL Number: \n                258"),
            "{text}"
        );
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Superseded"), "{text}");
        assert!(
            text.contains("Next Update: Jan  5 00:00:00 2026 GMT"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_crl_has_no_entry_list_and_bad_times_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let t = datetime!(2026-01-04 00:00:00 UTC);
        let der = ca
            .sign_crl(&CrlRequest {
                number: 1,
                this_update: t,
                next_update: t + time::Duration::hours(24),
                entries: &[],
            })
            .unwrap();
        let crl = CertificateList::from_der(&der).unwrap();
        assert!(crl.tbs_cert_list.revoked_certificates.is_none());
        assert!(ca
            .sign_crl(&CrlRequest {
                number: 2,
                this_update: t,
                next_update: t,
                entries: &[],
            })
            .is_err());
    }
}
