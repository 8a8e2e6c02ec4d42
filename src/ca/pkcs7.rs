//! The CMS structures of EST answers: the certs-only SignedData of `/cacerts` and
//! `/simpleenroll` (RFC 7030 4.1.3, 4.2.3) and the CSR attributes of `/csrattrs` (4.5.2).

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use const_oid::db::{rfc5911, rfc5912, rfc8410};
use const_oid::ObjectIdentifier;
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

use super::CaError;

/// `AttrOrOID ::= CHOICE (oid OBJECT IDENTIFIER, attribute Attribute)` (RFC 7030 4.5.2).
#[derive(Clone, Debug, Eq, PartialEq, der::Choice)]
pub enum AttrOrOid {
    /// An OID alone, e.g. a key algorithm the CA accepts.
    Oid(ObjectIdentifier),
    /// An attribute with values, e.g. id-ecPublicKey with the accepted curves.
    Attribute(Attribute),
}

fn encoding(what: &str, e: der::Error) -> CaError {
    CaError::Internal(format!("encoding {what}: {e}"))
}

/// DER ContentInfo (id-signedData) holding a "certs-only" SignedData: version 1, no digest
/// algorithms, id-data without content, the given certificates, no CRLs, no signers.
pub fn certs_only(certs: &[&[u8]]) -> Result<Vec<u8>, CaError> {
    let mut choices = Vec::with_capacity(certs.len());
    for der in certs {
        let cert = Certificate::from_der(der)
            .map_err(|e| CaError::Internal(format!("a certificate for PKCS#7 is not DER: {e}")))?;
        choices.push(CertificateChoices::Certificate(cert));
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(choices).map_err(|e| encoding("the certificate set", e))?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let content_info = ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(|e| encoding("SignedData", e))?,
    };
    content_info
        .to_der()
        .map_err(|e| encoding("ContentInfo", e))
}

/// DER CsrAttrs (RFC 7030 4.5.2) naming the key types estca accepts: rsaEncryption,
/// id-ecPublicKey with secp256r1 and secp384r1, and id-Ed25519.
pub fn csr_attributes() -> Result<Vec<u8>, CaError> {
    let curves = vec![
        Any::encode_from(&rfc5912::SECP_256_R_1).map_err(|e| encoding("a curve", e))?,
        Any::encode_from(&rfc5912::SECP_384_R_1).map_err(|e| encoding("a curve", e))?,
    ];
    let attrs = vec![
        AttrOrOid::Oid(rfc5912::RSA_ENCRYPTION),
        AttrOrOid::Attribute(Attribute {
            oid: rfc5912::ID_EC_PUBLIC_KEY,
            values: SetOfVec::try_from(curves).map_err(|e| encoding("the curves", e))?,
        }),
        AttrOrOid::Oid(rfc8410::ID_ED_25519),
    ];
    attrs.to_der().map_err(|e| encoding("CsrAttrs", e))
}

/// Certificates as concatenated PEM `CERTIFICATE` blocks, in the order given (leaf first for
/// a chain, as `application/pem-certificate-chain` requires).
pub fn pem_certificates(ders: &[&[u8]]) -> String {
    ders.iter()
        .filter_map(|der| {
            pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der).ok()
        })
        .collect()
}
