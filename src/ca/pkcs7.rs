//! The CMS structures of EST answers: the certs-only SignedData of `/cacerts` and
//! `/simpleenroll` (RFC 7030 4.1.3, 4.2.3) and the CSR attributes of `/csrattrs` (4.5.2).

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignerInfos};
use const_oid::db::{rfc5911, rfc5912, rfc8410};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, SetOfVec};
use der::{Any, Decode, Encode, Tag, Tagged};
use x509_cert::attr::Attribute;

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

/// `SignedData` (RFC 5652 5.1) as EST's certs-only answers have it: the fields of
/// [`cms::signed_data::SignedData`], with the certificates carried as the DER they were
/// issued as rather than decoded and encoded again for every answer.
#[derive(der::Sequence)]
struct CertsOnlySignedData<'a> {
    version: CmsVersion,
    digest_algorithms: DigestAlgorithmIdentifiers,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<SetOfVec<AnyRef<'a>>>,
    signer_infos: SignerInfos,
}

/// DER ContentInfo (id-signedData) holding a "certs-only" SignedData: version 1, no digest
/// algorithms, id-data without content, the given certificates, no CRLs, no signers.
pub fn certs_only(certs: &[&[u8]]) -> Result<Vec<u8>, CaError> {
    let mut set = Vec::with_capacity(certs.len());
    for der in certs {
        // Certificates estca signed or loaded: each is one DER SEQUENCE with nothing after
        // it, checked here so that no other bytes can end up inside an answer.
        let cert = AnyRef::from_der(der)
            .ok()
            .filter(|any| any.tag() == Tag::Sequence)
            .ok_or_else(|| CaError::Internal("a certificate for PKCS#7 is not DER".into()))?;
        set.push(cert);
    }
    let signed = CertsOnlySignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: Some(
            SetOfVec::try_from(set).map_err(|e| encoding("the certificate set", e))?,
        ),
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
