//! The public keys estca certifies, and the one encoding of each that the CA fingerprints and
//! writes into certificates.
//!
//! One key can be spelled several ways in a SubjectPublicKeyInfo: an RSA key with or without
//! the NULL parameters of its AlgorithmIdentifier, an EC point compressed or not. The store
//! recognises a key it certified before by the SHA-256 of its SubjectPublicKeyInfo, so if the
//! CA fingerprinted the bytes a CSR carried, a second spelling of a certified key would be
//! certified again. Here the key is decoded into its typed form (`pkcs1::RsaPublicKey`,
//! `p256`/`p384` points, Ed25519's 32 bytes) and encoded again the one way the RFCs prescribe;
//! the fingerprint and the certificate both use those bytes, never the CSR's.
//!
//! - RSA (RFC 3279 2.3.1): AlgorithmIdentifier rsaEncryption with parameters NULL. A CSR that
//!   omits the NULL names the same key and is accepted; its certificate carries the NULL.
//!   Other parameters are refused, and so is an RSAPublicKey that is not DER (an integer with
//!   a leading zero, a negative modulus or exponent, trailing bytes).
//! - EC (RFC 5480): id-ecPublicKey with the namedCurve P-256 or P-384, and an uncompressed
//!   point on that curve. Curves given implicitly or by explicit parameters are refused, and
//!   so are compressed points: RFC 5480 makes the uncompressed form the one every
//!   implementation must read, and the CSR signature check (ring) reads only that form.
//! - Ed25519 (RFC 8410 3): id-Ed25519 with the parameters absent and a 32-byte key.
//! - In every case the subjectPublicKey BIT STRING has no unused bits.

use const_oid::db::{rfc5912, rfc8410};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitStringRef, Null};
use der::{Decode, Encode};
use p256::pkcs8::EncodePublicKey;
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};

use super::csr::{oid_name, CsrError, KeyKind};

/// secp256k1 (SEC 2), named in refusals.
const SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");

/// What estca accepts, for refusals.
const ACCEPTED: &str = "use ECDSA P-256 or P-384, RSA 2048 to 4096 bits, or Ed25519";

/// An accepted public key: its kind and its canonical DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CanonicalKey {
    /// What kind of key it is.
    pub kind: KeyKind,
    /// The SubjectPublicKeyInfo as the RFCs prescribe it (see the module documentation).
    pub spki_der: Vec<u8>,
}

fn refuse(reason: impl Into<String>) -> CsrError {
    CsrError::UnsupportedKey(reason.into())
}

/// Decides whether `spki` is a key estca certifies and returns its canonical encoding.
pub(crate) fn canonical(spki: &SubjectPublicKeyInfoOwned) -> Result<CanonicalKey, CsrError> {
    let key = spki.subject_public_key.as_bytes().ok_or_else(|| {
        refuse(
            "its subjectPublicKey BIT STRING has unused bits, so it is not a key; make a new key",
        )
    })?;
    let parameters = spki.algorithm.parameters.as_ref();
    match spki.algorithm.oid {
        oid if oid == rfc5912::RSA_ENCRYPTION => rsa(parameters, key),
        oid if oid == rfc5912::ID_EC_PUBLIC_KEY => ec(parameters, key),
        oid if oid == rfc8410::ID_ED_25519 => ed25519(parameters, key),
        oid => Err(refuse(format!(
            "{} keys are not accepted: {ACCEPTED}",
            oid_name(&oid)
        ))),
    }
}

/// Bit length of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> u32 {
    let bytes = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    let extra = 8 - bytes[0].leading_zeros();
    let full = u32::try_from(bytes.len() - 1).unwrap_or(u32::MAX / 16);
    full.saturating_mul(8).saturating_add(extra)
}

fn encode(spki: SubjectPublicKeyInfoRef<'_>) -> Result<Vec<u8>, CsrError> {
    spki.to_der().map_err(|e| {
        refuse(format!(
            "its public key cannot be encoded ({e}); make a new key"
        ))
    })
}

fn rsa(parameters: Option<&Any>, key: &[u8]) -> Result<CanonicalKey, CsrError> {
    // RFC 3279 2.3.1: the parameters MUST be NULL. A missing NULL still names an RSA key, and
    // the canonical encoding below restores it; anything else is not an RSA key we know.
    if parameters.is_some_and(|p| p.decode_as::<Null>().is_err()) {
        return Err(refuse(
            "the RSA key's AlgorithmIdentifier has parameters other than NULL (RFC 3279 2.3.1); \
             make the CSR with a plain RSA key (rsaEncryption)",
        ));
    }
    let rsa = pkcs1::RsaPublicKey::from_der(key).map_err(|_| {
        refuse(
            "the RSA public key is not a DER RSAPublicKey (RFC 3279 2.3.1: a positive modulus \
             and exponent without leading zero bytes); make a new key",
        )
    })?;
    let bits = bit_length(rsa.modulus.as_bytes());
    if bits < 2048 {
        return Err(refuse(format!(
            "RSA {bits}-bit keys are too short: use 2048 to 4096 bits"
        )));
    }
    if bits > 4096 {
        return Err(refuse(format!(
            "RSA {bits}-bit keys are too long: use 2048 to 4096 bits"
        )));
    }
    let exponent = rsa.public_exponent.as_bytes();
    let exponent = (exponent.len() <= 8)
        .then(|| exponent.iter().fold(0u64, |e, b| (e << 8) | u64::from(*b)))
        .filter(|e| *e >= 3 && e % 2 == 1);
    if exponent.is_none() {
        return Err(refuse("the RSA public exponent is not valid: use 65537"));
    }
    let rsa_der = rsa
        .to_der()
        .map_err(|e| refuse(format!("the RSA public key cannot be encoded ({e})")))?;
    let spki_der = encode(SubjectPublicKeyInfoRef {
        algorithm: pkcs1::ALGORITHM_ID,
        subject_public_key: BitStringRef::from_bytes(&rsa_der)
            .map_err(|e| refuse(format!("the RSA public key cannot be encoded ({e})")))?,
    })?;
    Ok(CanonicalKey {
        kind: KeyKind::Rsa { bits },
        spki_der,
    })
}

fn ec(parameters: Option<&Any>, point: &[u8]) -> Result<CanonicalKey, CsrError> {
    let curve = parameters
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| {
            refuse(
                "EC keys must name their curve (RFC 5480 namedCurve; implicit or explicit curve \
                 parameters are not accepted): use P-256 or P-384",
            )
        })?;
    let (kind, name) = match curve {
        c if c == rfc5912::SECP_256_R_1 => (KeyKind::EcdsaP256, "P-256"),
        c if c == rfc5912::SECP_384_R_1 => (KeyKind::EcdsaP384, "P-384"),
        c if c == SECP256K1 => {
            return Err(refuse(
                "curve secp256k1 is not accepted: use P-256 or P-384",
            ))
        }
        c => {
            return Err(refuse(format!(
                "curve {} is not accepted: use P-256 or P-384",
                oid_name(&c)
            )))
        }
    };
    match point.first() {
        Some(0x04) => {}
        Some(0x02 | 0x03) => {
            return Err(refuse(format!(
                "the {name} public key is a compressed point; send it uncompressed (RFC 5480 \
                 section 2.2, what OpenSSL and every common library write by default)"
            )))
        }
        _ => {
            return Err(refuse(format!(
                "the {name} public key is not an uncompressed point (RFC 5480 section 2.2); \
                 make a new key"
            )))
        }
    }
    let not_on_curve = || {
        refuse(format!(
            "the {name} public key is not a point on {name}; make a new key"
        ))
    };
    let encoded = match kind {
        KeyKind::EcdsaP384 => p384::PublicKey::from_sec1_bytes(point)
            .map_err(|_| not_on_curve())?
            .to_public_key_der(),
        _ => p256::PublicKey::from_sec1_bytes(point)
            .map_err(|_| not_on_curve())?
            .to_public_key_der(),
    }
    .map_err(|e| refuse(format!("the {name} public key cannot be encoded ({e})")))?;
    Ok(CanonicalKey {
        kind,
        spki_der: encoded.as_bytes().to_vec(),
    })
}

fn ed25519(parameters: Option<&Any>, key: &[u8]) -> Result<CanonicalKey, CsrError> {
    if parameters.is_some() {
        return Err(refuse(
            "the Ed25519 key's AlgorithmIdentifier carries parameters, which RFC 8410 section 3 \
             forbids; make the CSR with a standard Ed25519 key",
        ));
    }
    if key.len() != 32 {
        return Err(refuse(
            "the Ed25519 public key is not 32 bytes; make a new key",
        ));
    }
    let spki_der = encode(SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: rfc8410::ID_ED_25519,
            parameters: None,
        },
        subject_public_key: BitStringRef::from_bytes(key)
            .map_err(|e| refuse(format!("the Ed25519 public key cannot be encoded ({e})")))?,
    })?;
    Ok(CanonicalKey {
        kind: KeyKind::Ed25519,
        spki_der,
    })
}

#[cfg(test)]
mod tests {
    //! One test per non-canonical form. Every SubjectPublicKeyInfo is built with the `der` and
    //! `spki` types from a real key, then altered the way the form describes.

    use der::asn1::BitString;
    use der::Tag;
    use spki::AlgorithmIdentifierOwned;

    use super::*;
    use crate::model::KeyFingerprint;

    /// A real RSA-2048 public key (SubjectPublicKeyInfo DER), made by `openssl genpkey`.
    fn rsa_spki() -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned::from_der(RSA_2048_SPKI).unwrap()
    }

    const RSA_2048_SPKI: &[u8] = include_bytes!("testdata/rsa2048-spki.der");

    fn p256_spki() -> (p256::PublicKey, SubjectPublicKeyInfoOwned) {
        let key = p256::SecretKey::random(&mut rand_core::OsRng).public_key();
        let der = key.to_public_key_der().unwrap();
        (
            key,
            SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).unwrap(),
        )
    }

    fn with_parameters(
        mut spki: SubjectPublicKeyInfoOwned,
        parameters: Option<Any>,
    ) -> SubjectPublicKeyInfoOwned {
        spki.algorithm.parameters = parameters;
        spki
    }

    fn refusal(spki: &SubjectPublicKeyInfoOwned) -> String {
        match canonical(spki) {
            Err(CsrError::UnsupportedKey(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn canonical_keys_are_kept_byte_for_byte() {
        let rsa = canonical(&rsa_spki()).unwrap();
        assert_eq!(rsa.kind, KeyKind::Rsa { bits: 2048 });
        assert_eq!(rsa.spki_der, RSA_2048_SPKI);
        let (_, p256) = p256_spki();
        assert_eq!(canonical(&p256).unwrap().spki_der, p256.to_der().unwrap());
        let ed = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: rfc8410::ID_ED_25519,
                parameters: None,
            },
            subject_public_key: BitString::from_bytes(&[7u8; 32]).unwrap(),
        };
        assert_eq!(canonical(&ed).unwrap().spki_der, ed.to_der().unwrap());
    }

    /// The review's finding: the same RSA key without the NULL parameters. It names the same
    /// key, so it gets the same canonical bytes (with NULL) and the same fingerprint.
    #[test]
    fn an_rsa_key_without_null_parameters_is_the_same_key() {
        let stripped = with_parameters(rsa_spki(), None);
        assert_ne!(stripped.to_der().unwrap(), RSA_2048_SPKI);
        let key = canonical(&stripped).unwrap();
        assert_eq!(key.spki_der, RSA_2048_SPKI);
        assert_eq!(
            KeyFingerprint::of_spki_der(&key.spki_der),
            KeyFingerprint::of_spki_der(RSA_2048_SPKI)
        );
    }

    #[test]
    fn an_rsa_key_with_other_parameters_is_refused() {
        let odd = with_parameters(
            rsa_spki(),
            Some(Any::encode_from(&rfc5912::ID_SHA_256).unwrap()),
        );
        assert!(refusal(&odd).contains("other than NULL"));
    }

    /// The RSAPublicKey of the real key with its modulus re-spelt as `modulus` bytes.
    fn rsa_with_modulus(modulus: &[u8]) -> SubjectPublicKeyInfoOwned {
        let spki = rsa_spki();
        let real = pkcs1::RsaPublicKey::from_der(spki.subject_public_key.raw_bytes()).unwrap();
        let integers = vec![
            Any::new(Tag::Integer, modulus).unwrap(),
            Any::new(Tag::Integer, real.public_exponent.as_bytes()).unwrap(),
        ];
        SubjectPublicKeyInfoOwned {
            subject_public_key: BitString::from_bytes(&integers.to_der().unwrap()).unwrap(),
            ..spki
        }
    }

    #[test]
    fn an_rsa_modulus_with_a_leading_zero_byte_is_refused() {
        let spki = rsa_spki();
        let real = pkcs1::RsaPublicKey::from_der(spki.subject_public_key.raw_bytes()).unwrap();
        // DER writes the modulus (high bit set) as 00 || n: one more zero is not DER.
        let mut padded = vec![0, 0];
        padded.extend_from_slice(real.modulus.as_bytes());
        assert!(refusal(&rsa_with_modulus(&padded)).contains("leading zero"));
    }

    #[test]
    fn a_negative_rsa_modulus_is_refused() {
        let spki = rsa_spki();
        let real = pkcs1::RsaPublicKey::from_der(spki.subject_public_key.raw_bytes()).unwrap();
        // The modulus without its 00 sign byte reads as a negative INTEGER.
        assert!(real.modulus.as_bytes()[0] >= 0x80);
        assert!(refusal(&rsa_with_modulus(real.modulus.as_bytes())).contains("positive"));
    }

    #[test]
    fn an_ec_key_without_a_named_curve_is_refused() {
        let (_, spki) = p256_spki();
        // Absent parameters, implicitCurve (NULL), and specifiedCurve (a SEQUENCE).
        let specified = Any::new(Tag::Sequence, vec![0x02, 0x01, 0x01]).unwrap();
        for parameters in [None, Some(Any::from(Null)), Some(specified)] {
            let reason = refusal(&with_parameters(spki.clone(), parameters));
            assert!(reason.contains("namedCurve"), "{reason}");
        }
    }

    #[test]
    fn a_compressed_ec_point_is_refused_with_what_to_send() {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let (key, spki) = p256_spki();
        let compressed = key.to_encoded_point(true);
        let spki = SubjectPublicKeyInfoOwned {
            subject_public_key: BitString::from_bytes(compressed.as_bytes()).unwrap(),
            ..spki
        };
        let reason = refusal(&spki);
        assert!(
            reason.contains("compressed") && reason.contains("uncompressed"),
            "{reason}"
        );
    }

    #[test]
    fn an_ec_point_off_the_curve_or_of_the_other_curve_is_refused() {
        let (_, spki) = p256_spki();
        let mut bytes = spki.subject_public_key.raw_bytes().to_vec();
        bytes[64] ^= 1;
        let off = SubjectPublicKeyInfoOwned {
            subject_public_key: BitString::from_bytes(&bytes).unwrap(),
            ..spki.clone()
        };
        assert!(refusal(&off).contains("not a point"));
        let p384 = with_parameters(
            spki,
            Some(Any::encode_from(&rfc5912::SECP_384_R_1).unwrap()),
        );
        assert!(refusal(&p384).contains("not a point on P-384"));
    }

    #[test]
    fn an_ed25519_key_with_parameters_is_refused() {
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: rfc8410::ID_ED_25519,
                parameters: Some(Any::from(Null)),
            },
            subject_public_key: BitString::from_bytes(&[7u8; 32]).unwrap(),
        };
        assert!(refusal(&spki).contains("RFC 8410"));
    }

    #[test]
    fn a_bit_string_with_unused_bits_is_refused() {
        let (_, spki) = p256_spki();
        let bits = spki.subject_public_key.raw_bytes();
        let spki = SubjectPublicKeyInfoOwned {
            subject_public_key: BitString::new(1, bits).unwrap(),
            ..spki
        };
        assert!(refusal(&spki).contains("unused bits"));
    }
}
