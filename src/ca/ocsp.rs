//! OCSP (RFC 6960) signing: the delegated OCSP signing certificate that the issuing CA issues
//! to the daemon's own responder key, and the signing of BasicOCSPResponses with it.
//!
//! The delegated certificate (RFC 6960 4.2.2.2) carries extendedKeyUsage id-kp-OCSPSigning,
//! keyUsage digitalSignature and id-pkix-ocsp-nocheck (so clients need not check the
//! responder's own revocation status); its key is a fresh P-256 key that lives in memory
//! only, and its validity is short, so the caller issues a new one well before it expires.
//! Deciding what a response says (good, revoked, unknown) is the responder's business.

use std::fmt;

use const_oid::db::{rfc5280, rfc5912, rfc6960};
use der::asn1::{BitString, Null, OctetString};
use der::{Decode, Encode};
use p256::pkcs8::EncodePublicKey;
use signature::Signer;
use spki::AlgorithmIdentifierOwned;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::RdnSequence;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_ocsp::{BasicOcspResponse, CertId, OcspResponse, ResponderId, ResponseData};

use super::profile::{self, key_identifier};
use super::{CaError, CertificateAuthority, Unrecorded};
use crate::model::{CertificateRecord, Holder, KeyFingerprint};
use crate::store::ReservedSerial;

/// The delegated OCSP signing certificate and its private key (kept in memory only).
pub struct OcspSigner {
    key: p256::ecdsa::SigningKey,
    certificate: Certificate,
    der: Vec<u8>,
    key_hash: Vec<u8>,
    not_after: OffsetDateTime,
}

impl fmt::Debug for OcspSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("OcspSigner")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl OcspSigner {
    /// The delegated signing certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    /// The delegated signing certificate's notAfter: no response may be valid beyond it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The responderID of the responses: byKey, the SHA-1 of the signer's public key bits
    /// (RFC 6960 4.2.1).
    pub fn responder_id(&self) -> Result<ResponderId, CaError> {
        Ok(ResponderId::ByKey(profile::octets(&self.key_hash)?))
    }

    /// Signs `data` (ecdsa-with-SHA256) and wraps it as a successful OCSPResponse carrying
    /// the delegated certificate in `certs`. Returns the DER.
    pub fn sign(&self, data: ResponseData) -> Result<Vec<u8>, CaError> {
        let tbs = data
            .to_der()
            .map_err(|e| CaError::Internal(format!("encoding OCSP response data: {e}")))?;
        let signature: p256::ecdsa::DerSignature = self
            .key
            .try_sign(&tbs)
            .map_err(|_| CaError::Internal("signing an OCSP response failed".into()))?;
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            },
            signature: BitString::from_bytes(signature.as_bytes())
                .map_err(|e| CaError::Internal(format!("encoding a signature: {e}")))?,
            certs: Some(vec![self.certificate.clone()]),
        };
        OcspResponse::successful(basic)
            .and_then(|r| r.to_der())
            .map_err(|e| CaError::Internal(format!("encoding an OCSP response: {e}")))
    }
}

/// The issuing CA as OCSP CertIDs name it: hashes of its subject (DER) and of its public key
/// bits (RFC 6960 4.1.1), with each hash algorithm the responder understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerHashes {
    /// For each algorithm of [`CertIdHash::ALL`], in that order: the name's and the key's hash.
    hashes: Vec<(CertIdHash, Vec<u8>, Vec<u8>)>,
}

/// The CertID hash algorithms the responder understands. RFC 6960 leaves the choice to the
/// client: most send SHA-1 (openssl's default, and RFC 5019's rule), some SHA-256, and
/// `openssl ocsp -sha384` / `-sha512` the longer ones. A CertID in another algorithm is
/// answered "unknown", as one naming another issuer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// id-sha1.
    Sha1,
    /// id-sha256.
    Sha256,
    /// id-sha384.
    Sha384,
    /// id-sha512.
    Sha512,
}

impl CertIdHash {
    /// Every algorithm the responder understands.
    pub const ALL: [CertIdHash; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    fn oid(self) -> der::asn1::ObjectIdentifier {
        match self {
            Self::Sha1 => rfc5912::ID_SHA_1,
            Self::Sha256 => rfc5912::ID_SHA_256,
            Self::Sha384 => rfc5912::ID_SHA_384,
            Self::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(algorithm, bytes).as_ref().to_vec()
    }
}

impl IssuerHashes {
    /// The hashes of the CA certificate `issuer_der` (DER).
    pub fn of_issuer(issuer_der: &[u8]) -> Result<Self, CaError> {
        let cert = Certificate::from_der(issuer_der)
            .map_err(|e| CaError::Internal(format!("re-reading the issuing CA: {e}")))?;
        let name = cert
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| CaError::Internal(format!("encoding the issuing CA name: {e}")))?;
        let key = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        Ok(IssuerHashes {
            hashes: CertIdHash::ALL
                .iter()
                .map(|&hash| (hash, hash.digest(&name), hash.digest(key)))
                .collect(),
        })
    }

    /// The CertID naming `serial` under this issuer with `hash`: what an OCSP client sends
    /// (the load generator, benchmarks and tests build their requests with it).
    pub fn cert_id(&self, hash: CertIdHash, serial: SerialNumber) -> Result<CertId, CaError> {
        let (_, name, key) = self
            .hashes
            .iter()
            .find(|(h, _, _)| *h == hash)
            .ok_or_else(|| CaError::Internal(format!("no {hash:?} hashes of the issuer")))?;
        Ok(CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: hash.oid(),
                parameters: Some(Null.into()),
            },
            issuer_name_hash: profile::octets(name)?,
            issuer_key_hash: profile::octets(key)?,
            serial_number: serial,
        })
    }

    /// Which hash algorithm `cert_id` uses, when it is one the responder supports and its
    /// issuer name and key hashes are the issuing CA's; `None` otherwise (the answer for such
    /// a CertID is "unknown").
    pub fn matches(&self, cert_id: &CertId) -> Option<CertIdHash> {
        let (hash, name, key) = self
            .hashes
            .iter()
            .find(|(hash, _, _)| hash.oid() == cert_id.hash_algorithm.oid)?;
        (cert_id.issuer_name_hash.as_bytes() == name.as_slice()
            && cert_id.issuer_key_hash.as_bytes() == key.as_slice())
        .then_some(*hash)
    }
}

impl CertificateAuthority {
    /// The issuing CA's CertID hashes.
    pub fn ocsp_issuer_hashes(&self) -> Result<IssuerHashes, CaError> {
        IssuerHashes::of_issuer(&self.issuing_der)
    }

    /// Issues a delegated OCSP signing certificate for a fresh P-256 key: subject C, O, OU
    /// (issuing CA name), CN `OCSP Responder`; EKU id-kp-OCSPSigning, keyUsage
    /// digitalSignature (critical), basicConstraints CA:FALSE, id-pkix-ocsp-nocheck, SKI,
    /// AKI; valid from five minutes before `now` for `validity`, never beyond the issuing CA.
    /// The signer is handed out once its certificate is recorded
    /// ([`Unrecorded::record_in`]), so that the responder answers for it like for any other.
    pub fn issue_ocsp_signer(
        &self,
        serial: &ReservedSerial,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<Unrecorded<OcspSigner>, CaError> {
        let now = now
            .replace_nanosecond(0)
            .map_err(|e| CaError::Internal(e.to_string()))?;
        if now >= self.issuing_not_after {
            return Err(CaError::CaExpiresTooSoon {
                certificate_not_after: now,
                ca_not_after: self.issuing_not_after,
            });
        }
        let not_before = now - Duration::minutes(5);
        let not_after = (now + validity).min(self.issuing_not_after);

        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let spki_der = key
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| CaError::Internal(format!("encoding the OCSP signer key: {e}")))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes())
            .map_err(|e| CaError::Internal(format!("reading the OCSP signer key: {e}")))?;
        let key_hash = key_identifier(&spki);

        let ctx = self.issuer_context();
        let subject = ocsp_subject(self)?;
        let mut extensions = profile::leaf_extensions(
            &ctx,
            &spki,
            KeyUsage(KeyUsages::DigitalSignature.into()),
            &[rfc5280::ID_KP_OCSP_SIGNING],
        )?;
        extensions.push(Extension {
            extn_id: rfc6960::ID_PKIX_OCSP_NOCHECK,
            critical: false,
            extn_value: OctetString::new(
                Null.to_der()
                    .map_err(|e| CaError::Internal(format!("encoding ocsp-nocheck: {e}")))?,
            )
            .map_err(|e| CaError::Internal(format!("encoding ocsp-nocheck: {e}")))?,
        });
        let serial = serial.serial();
        let tbs = profile::tbs_certificate(
            serial.as_bytes(),
            ctx.name,
            &self.key,
            subject,
            spki,
            not_before,
            not_after,
            extensions,
        )?;
        let der = profile::sign_tbs(&self.key, tbs)?;
        let certificate = Certificate::from_der(&der)
            .map_err(|e| CaError::Internal(format!("re-reading the OCSP signer: {e}")))?;
        let record = CertificateRecord {
            serial,
            holder: Holder::OcspSigner,
            subject: format!(
                "C={}, O={}, OU={}, CN={OCSP_SUBJECT_CN}",
                self.country, self.organization, self.issuing_name
            ),
            not_before,
            not_after,
            key: KeyFingerprint::of_spki_der(spki_der.as_bytes()),
            revocation: None,
            der: der.clone(),
        };
        Ok(Unrecorded::new(
            record,
            OcspSigner {
                key,
                certificate,
                der,
                key_hash,
                not_after,
            },
        ))
    }
}

/// The common name of the delegated OCSP signing certificates.
const OCSP_SUBJECT_CN: &str = "OCSP Responder";

/// C, O, OU = the issuing CA's name, CN = `OCSP Responder`.
/// Built from typed parts, like the end-entity subject, so that a comma in the
/// organisation's name needs no escaping.
fn ocsp_subject(ca: &CertificateAuthority) -> Result<x509_cert::name::Name, CaError> {
    let mut rdns = profile::subject_prefix(&ca.issuer_context())?;
    rdns.push(profile::common_name_rdn(OCSP_SUBJECT_CN)?);
    Ok(RdnSequence(rdns))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;
    use crate::config::KeyAlgorithm;

    /// A CA whose organisation's name holds a comma, which names must not escape.
    fn ca(dir: &std::path::Path) -> CertificateAuthority {
        crate::ca::tests::test_ca_with(dir, "Test, Inc.", KeyAlgorithm::P384)
    }

    #[test]
    fn the_delegated_signer_is_an_ocsp_signing_certificate_that_openssl_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let now = OffsetDateTime::now_utc();
        let (signer, record) = super::super::tests::recorded(|serial| {
            ca.issue_ocsp_signer(serial, now, Duration::days(7))
                .unwrap()
        });
        assert_eq!(record.der, signer.certificate_der());
        assert_eq!(record.holder, Holder::OcspSigner);
        assert_eq!(
            record.subject,
            "C=JP, O=Test, Inc., OU=Test Issuing, CN=OCSP Responder"
        );
        let (_, cert) = X509Certificate::from_der(signer.certificate_der()).unwrap();
        assert_eq!(cert.raw_serial(), record.serial.as_bytes());
        assert_eq!(
            record.key,
            KeyFingerprint::of_spki_der(cert.public_key().raw)
        );
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.ocsp_signing && !eku.client_auth && !eku.server_auth);
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical && ku.value.digital_signature() && ku.value.flags == 1);
        let nocheck = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.48.1.5")
            .expect("id-pkix-ocsp-nocheck");
        assert_eq!(nocheck.value, [0x05, 0x00], "NULL");
        assert!(!cert.is_ca());
        let validity = cert.validity();
        assert!(
            (validity.not_after.to_datetime() - now - Duration::days(7)).abs()
                < Duration::seconds(2)
        );
        assert_eq!(signer.not_after(), validity.not_after.to_datetime());
        assert!(cert
            .subject()
            .to_string()
            .ends_with("OU=Test Issuing, CN=OCSP Responder"));

        // openssl: it chains to the root and is good for OCSP signing.
        let pem = pem_rfc7468::encode_string(
            "CERTIFICATE",
            pem_rfc7468::LineEnding::LF,
            signer.certificate_der(),
        )
        .unwrap();
        let path = dir.path().join("ocsp.pem");
        std::fs::write(&path, pem).unwrap();
        let out = Command::new("openssl")
            .args([
                "verify",
                "-x509_strict",
                "-purpose",
                "ocsphelper",
                "-CAfile",
            ])
            .arg(dir.path().join("root-ca.pem"))
            .arg("-untrusted")
            .arg(dir.path().join("issuing-ca.pem"))
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn signer_validity_stops_at_the_issuing_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let late = ca.issuing_not_after() - Duration::days(1);
        let signer = ca
            .issue_ocsp_signer(
                &ReservedSerial::unreserved_for_tests(),
                late,
                Duration::days(7),
            )
            .unwrap();
        assert_eq!(signer.record().not_after, ca.issuing_not_after());
        assert!(ca
            .issue_ocsp_signer(
                &ReservedSerial::unreserved_for_tests(),
                ca.issuing_not_after(),
                Duration::days(7),
            )
            .is_err());
    }

    #[test]
    fn issuer_hashes_match_cert_ids_built_from_the_issuing_ca_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let hashes = ca.ocsp_issuer_hashes().unwrap();
        let issuing = Certificate::from_der(ca.issuing_certificate_der()).unwrap();
        let name = issuing.tbs_certificate.subject.to_der().unwrap();
        let key = issuing
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        let digest = |alg: &'static ring::digest::Algorithm, bytes: &[u8]| {
            ring::digest::digest(alg, bytes).as_ref().to_vec()
        };
        let cert_id = |oid, alg: &'static ring::digest::Algorithm, name: &[u8]| CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid,
                parameters: Some(Null.into()),
            },
            issuer_name_hash: OctetString::new(digest(alg, name)).unwrap(),
            issuer_key_hash: OctetString::new(digest(alg, key)).unwrap(),
            serial_number: x509_cert::serial_number::SerialNumber::new(&[1]).unwrap(),
        };
        let sha1 = &ring::digest::SHA1_FOR_LEGACY_USE_ONLY;
        for (oid, alg, hash) in [
            (rfc5912::ID_SHA_1, sha1, CertIdHash::Sha1),
            (
                rfc5912::ID_SHA_256,
                &ring::digest::SHA256,
                CertIdHash::Sha256,
            ),
            (
                rfc5912::ID_SHA_384,
                &ring::digest::SHA384,
                CertIdHash::Sha384,
            ),
            (
                rfc5912::ID_SHA_512,
                &ring::digest::SHA512,
                CertIdHash::Sha512,
            ),
        ] {
            assert_eq!(hashes.matches(&cert_id(oid, alg, &name)), Some(hash));
            // The CertID a client would send, as the load generator and tests build it.
            assert_eq!(
                hashes
                    .cert_id(
                        hash,
                        x509_cert::serial_number::SerialNumber::new(&[1]).unwrap()
                    )
                    .unwrap(),
                cert_id(oid, alg, &name)
            );
            // Another issuer's name, or the hashes of another algorithm under this OID.
            assert_eq!(hashes.matches(&cert_id(oid, alg, b"other")), None);
            let other = if hash == CertIdHash::Sha1 {
                &ring::digest::SHA256
            } else {
                sha1
            };
            assert_eq!(hashes.matches(&cert_id(oid, other, &name)), None);
        }
        // A hash algorithm estca does not support: no match.
        assert_eq!(
            hashes.matches(&cert_id(rfc5912::ID_SHA_224, &ring::digest::SHA256, &name)),
            None
        );
    }
}
