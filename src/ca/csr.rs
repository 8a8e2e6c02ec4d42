//! Certification requests (PKCS#10, RFC 2986): estca takes only the public key from them,
//! after checking that the requester holds its private half (the CSR's own signature).

use std::fmt;

use const_oid::ObjectIdentifier;
use der::Decode;
use spki::SubjectPublicKeyInfoOwned;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::{ChallengePassword, ParsedCriAttribute};
use x509_parser::error::X509Error;
use x509_parser::prelude::FromDer;

use crate::model::KeyFingerprint;

/// The kinds of public key estca certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits (2048 to 4096).
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// ECDSA on NIST P-256 (secp256r1).
    EcdsaP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcdsaP384,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA {bits}-bit"),
            KeyKind::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyKind::EcdsaP384 => f.write_str("ECDSA P-384"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// A public key taken from a CSR whose signature verified: all the CA uses of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrKey {
    spki_der: Vec<u8>,
    kind: KeyKind,
    fingerprint: KeyFingerprint,
}

impl CsrKey {
    /// The DER SubjectPublicKeyInfo in its one canonical encoding (RFC 3279, 5480, 8410;
    /// see `src/ca/public_key.rs`), which the certificate carries: not necessarily the bytes
    /// the CSR carried.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// What kind of key it is.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// SHA-256 of [`CsrKey::spki_der`], by which the store recognises a reused key however
    /// the CSR spelt it.
    pub fn fingerprint(&self) -> KeyFingerprint {
        self.fingerprint
    }
}

/// Why a CSR was refused. Each message is one sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// The bytes are not a DER PKCS#10 request.
    #[error("the request is not a DER-encoded PKCS#10 certification request ({0}); send a CSR made by e.g. `openssl req -new`")]
    NotDer(String),
    /// Bytes follow the request.
    #[error(
        "the request has extra bytes after the PKCS#10 certification request; send exactly one CSR"
    )]
    TrailingData,
    /// The signature does not verify with the CSR's own key.
    #[error("the CSR's signature does not verify with its own public key; make a new CSR with the private key that matches it")]
    BadSignature,
    /// The public key is of a kind or size estca does not certify.
    #[error("the CSR's key is not accepted: {0}")]
    UnsupportedKey(String),
    /// The text form (base64 or PEM) of the request could not be decoded.
    #[error("{0}")]
    Encoding(&'static str),
    /// The CSR carries more attributes or requested extensions than any real client sends.
    #[error("the CSR carries {attributes} attributes and {extensions} requested extensions; estca ignores them all and accepts at most {MAX_CSR_ATTRIBUTES} and {MAX_CSR_EXTENSIONS}: send a plain CSR")]
    TooLarge {
        /// Attributes in the request.
        attributes: usize,
        /// Extensions requested.
        extensions: usize,
    },
    /// A CSR forwarded by an application names no ID: its subject has no common name.
    #[error("the CSR's subject has no common name (CN): an application names the ID it enrolls as the CSR subject's CN, e.g. openssl req -subj /CN=ID")]
    NoCommonName,
    /// A CSR forwarded by an application names several IDs.
    #[error("the CSR's subject has {0} common names (CN): name exactly one ID")]
    SeveralCommonNames(usize),
    /// A serverkeygen CSR asks for the generated key to be encrypted to a key of its own
    /// (RFC 7030 section 4.4.1.1 and 4.4.1.2), which estca does not offer.
    #[error("the CSR asks for the server-generated key to be encrypted ({0} attribute, RFC 7030 section 4.4.1); estca returns the key unencrypted inside the TLS connection only: send the CSR without that attribute")]
    KeyEncryptionRequested(&'static str),
    /// The CSR's version is not v1 (0), the only one RFC 2986 defines.
    #[error("the CSR's version is {0}, but PKCS#10 (RFC 2986) defines only version 0 (v1): make the CSR with a standard tool such as openssl req")]
    Version(u32),
    /// The CSR carries a challengePassword, which RFC 7030 section 3.5 reserves for the TLS
    /// channel binding (tls-unique) that estca cannot check.
    #[error("the CSR carries a challengePassword, which EST (RFC 7030 section 3.5) reserves for binding the request to its TLS session (tls-unique); estca cannot check that binding, so it refuses the request rather than ignore it: make the CSR without a challenge password (with openssl req, leave it empty)")]
    ChannelBinding,
    /// The CSR is signed with an algorithm estca cannot check.
    #[error("the CSR is signed with {0}, which estca cannot verify; sign it with SHA-256 (ECDSA or RSA PKCS#1 v1.5) or Ed25519")]
    UnsupportedSignatureAlgorithm(String),
}

/// Most attributes a CSR may carry (real ones carry zero to three).
pub const MAX_CSR_ATTRIBUTES: usize = 16;
/// Most extensions a CSR may request (real ones request a handful); they are ignored anyway.
pub const MAX_CSR_EXTENSIONS: usize = 64;

/// Decodes the text forms a CSR arrives in: base64 DER, with or without line breaks and
/// spaces (RFC 7030 section 4.2.1), or a PEM `CERTIFICATE REQUEST` block.
pub fn decode_text(text: &[u8]) -> Result<Vec<u8>, CsrError> {
    use base64::Engine;
    let trimmed = text.trim_ascii();
    if trimmed.starts_with(b"-----BEGIN") {
        let (label, der) = pem_rfc7468::decode_vec(trimmed).map_err(|_| {
            CsrError::Encoding(if trimmed.contains(&b'\n') {
                "the request looks like PEM but is not a valid PEM block"
            } else {
                // What `curl --data @file.pem` sends: curl strips the line breaks.
                "the request looks like PEM but has no line breaks: send the file unchanged \
                 (with curl, --data-binary @FILE, not --data)"
            })
        })?;
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(CsrError::Encoding(
                "the PEM block is not a CERTIFICATE REQUEST",
            ));
        }
        return Ok(der);
    }
    let compact: Vec<u8> = trimmed
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(CsrError::Encoding(
            "the request is empty; send a base64-encoded PKCS#10 CSR",
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| {
            CsrError::Encoding(
                "the request is not valid base64; send a base64-encoded DER PKCS#10 CSR",
            )
        })
}

/// The one common name of a CSR's subject, as text: the ID an application (an EST
/// registration authority forwarding a device's request) asks a certificate for. Only this
/// is read from the subject; the CA still builds the certificate's subject itself.
pub fn subject_common_name(der: &[u8]) -> Result<String, CsrError> {
    let (_, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| CsrError::NotDer(e.to_string()))?;
    let names: Vec<_> = csr
        .certification_request_info
        .subject
        .iter_common_name()
        .collect();
    match names.as_slice() {
        [] => Err(CsrError::NoCommonName),
        [one] => one
            .as_str()
            .map(str::to_owned)
            .map_err(|_| CsrError::Encoding("the CSR subject's common name is not a text string")),
        several => Err(CsrError::SeveralCommonNames(several.len())),
    }
}

/// Decodes a CSR body in any form estca accepts: DER as it is, or the text forms of
/// [`decode_text`]. A DER CSR of any real size starts with a SEQUENCE whose long-form length
/// byte is 0x81 or higher, so a body that is not all ASCII is DER and text never is.
pub fn decode_body(body: &[u8]) -> Result<Vec<u8>, CsrError> {
    if body.is_ascii() {
        decode_text(body)
    } else {
        Ok(body.to_vec())
    }
}

/// A readable name for an OID: its database name when known, else the dotted form.
pub(super) fn oid_name(oid: &ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map(str::to_owned)
        .unwrap_or_else(|| oid.to_string())
}

/// id-aa-decryptKeyID (RFC 7030 section 4.4.1.1): encrypt the generated key with a shared
/// symmetric key.
const DECRYPT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.37");

/// id-aa-asymmDecryptKeyID (RFC 7030 section 4.4.1.2): encrypt the generated key to the
/// client's key.
const ASYMM_DECRYPT_KEY_ID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.54");

/// pkcs-9 challengePassword (RFC 2985), which EST uses to carry tls-unique.
const CHALLENGE_PASSWORD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");

/// Refuses a CSR whose challengePassword is not empty ([`CsrError::ChannelBinding`]).
///
/// RFC 7030 section 3.5: a client links its identity to the request by putting the
/// tls-unique value of its TLS session in the challengePassword, and "any value submitted is
/// verified by the server as tls-unique information"; an empty one means no binding. rustls
/// exposes no tls-unique (and TLS 1.3 defines none), so estca can verify no value: it refuses
/// them, which is what a failed verification would do, rather than accept a binding it did
/// not check. Applied to requests an ID makes for itself; an EST registration authority
/// checked its own client's binding (RFC 7030 section 3.5, as libest's proxy does) and
/// forwards the CSR unchanged, so the registration authority does not ask this of them.
pub fn refuse_channel_binding(der: &[u8]) -> Result<(), CsrError> {
    let csr = parse_bounded(der)?;
    let bound = csr
        .certification_request_info
        .attributes()
        .iter()
        .filter(|a| ObjectIdentifier::from_bytes(a.oid.as_bytes()).ok() == Some(CHALLENGE_PASSWORD))
        .any(|a| match a.parsed_attribute() {
            ParsedCriAttribute::ChallengePassword(ChallengePassword(value)) => !value.is_empty(),
            // A value of a string type x509-parser does not read: not provably empty.
            _ => true,
        });
    if bound {
        Err(CsrError::ChannelBinding)
    } else {
        Ok(())
    }
}

/// Reads a CSR sent to EST `serverkeygen` (RFC 7030 section 4.4.1): as any CSR, one DER
/// PKCS#10 request within the attribute limits, but its public key and signature are ignored
/// ("the server MUST ignore the public key values and signature in the CSR": the client may
/// have no key, or a dummy one). Returns the kind of its key when it is one estca would
/// certify (the client asks for a key like it), else `None`. A request for an encrypted key
/// (DecryptKeyIdentifier or AsymmetricDecryptKeyIdentifier) is refused.
pub fn server_keygen_request(der: &[u8]) -> Result<Option<KeyKind>, CsrError> {
    let csr = parse_bounded(der)?;
    for attribute in csr.certification_request_info.attributes() {
        let oid = ObjectIdentifier::from_bytes(attribute.oid.as_bytes()).ok();
        if oid == Some(DECRYPT_KEY_ID) {
            return Err(CsrError::KeyEncryptionRequested("DecryptKeyIdentifier"));
        }
        if oid == Some(ASYMM_DECRYPT_KEY_ID) {
            return Err(CsrError::KeyEncryptionRequested(
                "AsymmetricDecryptKeyIdentifier",
            ));
        }
    }
    let parsed = &csr.certification_request_info.subject_pki;
    Ok(SubjectPublicKeyInfoOwned::from_der(parsed.raw)
        .ok()
        .and_then(|spki| super::public_key::canonical(&spki).ok())
        .map(|key| key.kind))
}

/// The key estca generated for a client, as the CA certifies it: canonical encoding and
/// fingerprint, like a key taken from a CSR.
pub(super) fn generated_key(spki_der: &[u8]) -> Result<CsrKey, CsrError> {
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| CsrError::NotDer(format!("its public key is not valid DER: {e}")))?;
    let key = super::public_key::canonical(&spki)?;
    Ok(CsrKey {
        fingerprint: KeyFingerprint::of_spki_der(&key.spki_der),
        spki_der: key.spki_der,
        kind: key.kind,
    })
}

/// Parses a DER PKCS#10 CSR, refusing trailing bytes and more attributes or requested
/// extensions than [`MAX_CSR_ATTRIBUTES`] and [`MAX_CSR_EXTENSIONS`].
fn parse_bounded(der: &[u8]) -> Result<X509CertificationRequest<'_>, CsrError> {
    let (rest, csr) = X509CertificationRequest::from_der(der).map_err(|e| {
        CsrError::NotDer(match e {
            x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e.to_string(),
            x509_parser::nom::Err::Incomplete(_) => "it is cut short".into(),
        })
    })?;
    if !rest.is_empty() {
        return Err(CsrError::TrailingData);
    }
    let version = csr.certification_request_info.version.0;
    if version != 0 {
        return Err(CsrError::Version(version));
    }
    let attributes = csr.certification_request_info.attributes().len();
    let extensions = csr.requested_extensions().map_or(0, Iterator::count);
    if attributes > MAX_CSR_ATTRIBUTES || extensions > MAX_CSR_EXTENSIONS {
        return Err(CsrError::TooLarge {
            attributes,
            extensions,
        });
    }
    Ok(csr)
}

/// Parses a DER PKCS#10 CSR (RFC 2986), refuses trailing bytes, decides whether its key is
/// one estca certifies and re-encodes it canonically, verifies the CSR's signature with its
/// own key (proof of possession), and returns only the key: subject, attributes and requested
/// extensions are ignored.
pub fn validate_csr(der: &[u8]) -> Result<CsrKey, CsrError> {
    let csr = parse_bounded(der)?;
    let parsed = &csr.certification_request_info.subject_pki;
    let spki = SubjectPublicKeyInfoOwned::from_der(parsed.raw)
        .map_err(|e| CsrError::NotDer(format!("its public key is not valid DER: {e}")))?;
    let key = super::public_key::canonical(&spki)?;
    csr.verify_signature().map_err(|e| match e {
        X509Error::SignatureUnsupportedAlgorithm => {
            // From the DER bytes: const-oid's dotted-string parser overflows on huge arcs
            // (found by fuzzing), its DER decoder checks them.
            let name = ObjectIdentifier::from_bytes(csr.signature_algorithm.algorithm.as_bytes())
                .map(|o| oid_name(&o))
                .unwrap_or_else(|_| csr.signature_algorithm.algorithm.to_id_string());
            CsrError::UnsupportedSignatureAlgorithm(name)
        }
        _ => CsrError::BadSignature,
    })?;
    Ok(CsrKey {
        fingerprint: KeyFingerprint::of_spki_der(&key.spki_der),
        spki_der: key.spki_der,
        kind: key.kind,
    })
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// Found by `cargo fuzz run csr`: a CSR whose signature algorithm OID has an arc too large
    /// for 32 bits made const-oid's string parser overflow (a panic with overflow checks).
    #[test]
    fn a_huge_oid_arc_in_the_signature_algorithm_is_an_error() {
        let der = include_bytes!("../../fuzz/corpus/csr/regression-oid-overflow");
        assert!(validate_csr(der).is_err());
    }
}

#[cfg(test)]
mod subject_tests {
    use super::*;

    fn csr_with(cns: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        for cn in cns {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *cn);
        }
        params.serialize_request(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_id_is_the_one_common_name_of_the_subject() {
        assert_eq!(subject_common_name(&csr_with(&["u1"])).unwrap(), "u1");
        assert_eq!(
            subject_common_name(&csr_with(&[])),
            Err(CsrError::NoCommonName)
        );
        assert_eq!(
            subject_common_name(b"not a csr").map_err(|e| matches!(e, CsrError::NotDer(_))),
            Err(true)
        );
    }

    #[test]
    fn bodies_are_der_or_text() {
        use base64::Engine;
        let der = csr_with(&["u1"]);
        assert_eq!(decode_body(&der).unwrap(), der);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(decode_body(b64.as_bytes()).unwrap(), der);
        let pem =
            pem_rfc7468::encode_string("CERTIFICATE REQUEST", pem_rfc7468::LineEnding::LF, &der)
                .unwrap();
        assert_eq!(decode_body(pem.as_bytes()).unwrap(), der);
    }
}

#[cfg(test)]
mod server_keygen_tests {
    use super::*;

    fn csr(alg: &'static rcgen::SignatureAlgorithm, attrs: Vec<rcgen::Attribute>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "device");
        params
            .serialize_request_with_attributes(&key, attrs)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn the_kind_of_the_csr_key_is_what_is_asked_for() {
        assert_eq!(
            server_keygen_request(&csr(&rcgen::PKCS_ECDSA_P256_SHA256, vec![])),
            Ok(Some(KeyKind::EcdsaP256))
        );
        assert_eq!(
            server_keygen_request(&csr(&rcgen::PKCS_ECDSA_P384_SHA384, vec![])),
            Ok(Some(KeyKind::EcdsaP384))
        );
        assert_eq!(
            server_keygen_request(&csr(&rcgen::PKCS_ED25519, vec![])),
            Ok(Some(KeyKind::Ed25519))
        );
    }

    /// RFC 7030 section 4.4.1: the server MUST ignore the CSR's public key values and
    /// signature, so a CSR whose signature does not verify is read all the same.
    #[test]
    fn the_signature_is_ignored() {
        let mut der = csr(&rcgen::PKCS_ECDSA_P256_SHA256, vec![]);
        let last = der.len() - 1;
        der[last] ^= 0x5a;
        assert_eq!(validate_csr(&der), Err(CsrError::BadSignature));
        assert_eq!(server_keygen_request(&der), Ok(Some(KeyKind::EcdsaP256)));
    }

    #[test]
    fn key_encryption_attributes_are_refused_and_malformed_csrs_too() {
        // SET { OCTET STRING 01 02 03 04 }: a key identifier.
        let values = vec![0x31, 0x06, 0x04, 0x04, 1, 2, 3, 4];
        for (oid, name) in [
            (
                &[1, 2, 840, 113549, 1, 9, 16, 2, 37][..],
                "DecryptKeyIdentifier",
            ),
            (
                &[1, 2, 840, 113549, 1, 9, 16, 2, 54][..],
                "AsymmetricDecryptKeyIdentifier",
            ),
        ] {
            let der = csr(
                &rcgen::PKCS_ECDSA_P256_SHA256,
                vec![rcgen::Attribute {
                    oid,
                    values: values.clone(),
                }],
            );
            let err = server_keygen_request(&der).unwrap_err();
            assert_eq!(err, CsrError::KeyEncryptionRequested(name));
            assert!(err.to_string().contains("without that attribute"), "{err}");
        }
        let mut longer = csr(&rcgen::PKCS_ECDSA_P256_SHA256, vec![]);
        longer.push(0);
        assert_eq!(server_keygen_request(&longer), Err(CsrError::TrailingData));
        assert!(matches!(
            server_keygen_request(b"not a CSR"),
            Err(CsrError::NotDer(_))
        ));
    }
}
