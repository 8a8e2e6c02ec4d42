//! Key pairs estca generates for a client that has none (EST `serverkeygen`, RFC 7030
//! section 4.4): of any kind estca certifies, the private key as unencrypted PKCS#8 (RFC 5958)
//! in memory that is zeroized when dropped. It is never written anywhere nor logged: the
//! registration authority certifies its public half and the front end sends the private half
//! to the client once.

use std::fmt;

use const_oid::db::rfc8410;
use der::asn1::BitString;
use der::Encode;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rand_core::OsRng;
use ring::signature::KeyPair;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use super::csr::{generated_key, CsrKey, KeyKind};
use super::CaError;

/// A key pair estca generated: the private key (PKCS#8 DER, zeroized on drop) and the public
/// key as the CA certifies it.
pub struct GeneratedKey {
    pkcs8: Zeroizing<Vec<u8>>,
    public: CsrKey,
}

impl GeneratedKey {
    /// The private key: DER PrivateKeyInfo (OneAsymmetricKey for Ed25519), unencrypted.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key, canonical and fingerprinted like a CSR's.
    pub fn public_key(&self) -> &CsrKey {
        &self.public
    }
}

impl fmt::Debug for GeneratedKey {
    /// Never the private key: only its kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kind", &self.public.kind())
            .finish_non_exhaustive()
    }
}

/// Generates a key pair of `kind` from the operating system's random source. RSA takes a
/// fraction of a second to seconds: call it off the async runtime's threads.
pub fn generate(kind: KeyKind) -> Result<GeneratedKey, CaError> {
    let failed = |e: String| CaError::Internal(format!("generating a {kind} key pair: {e}"));
    let (pkcs8, spki_der): (Zeroizing<Vec<u8>>, Vec<u8>) = match kind {
        KeyKind::EcdsaP256 => {
            let secret = p256::SecretKey::random(&mut OsRng);
            encoded(&secret, &secret.public_key()).map_err(failed)?
        }
        KeyKind::EcdsaP384 => {
            let secret = p384::SecretKey::random(&mut OsRng);
            encoded(&secret, &secret.public_key()).map_err(failed)?
        }
        KeyKind::Rsa { bits } => {
            let secret = rsa::RsaPrivateKey::new(&mut OsRng, bits as usize)
                .map_err(|e| failed(e.to_string()))?;
            encoded(&secret, &secret.to_public_key()).map_err(failed)?
        }
        KeyKind::Ed25519 => {
            let random = ring::rand::SystemRandom::new();
            let document = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
                .map_err(|_| failed("the random source failed".into()))?;
            let pkcs8 = Zeroizing::new(document.as_ref().to_vec());
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8)
                .map_err(|e| failed(e.to_string()))?;
            let spki = SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: rfc8410::ID_ED_25519,
                    parameters: None,
                },
                subject_public_key: BitString::from_bytes(pair.public_key().as_ref())
                    .map_err(|e| failed(e.to_string()))?,
            };
            (pkcs8, spki.to_der().map_err(|e| failed(e.to_string()))?)
        }
    };
    let public = generated_key(&spki_der).map_err(|e| failed(e.to_string()))?;
    Ok(GeneratedKey { pkcs8, public })
}

/// The private key as PKCS#8 DER (zeroized when dropped) and the public key as
/// SubjectPublicKeyInfo DER.
fn encoded(
    secret: &impl EncodePrivateKey,
    public: &impl EncodePublicKey,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), String> {
    let pkcs8 = secret.to_pkcs8_der().map_err(|e| e.to_string())?;
    let spki = public.to_public_key_der().map_err(|e| e.to_string())?;
    Ok((Zeroizing::new(pkcs8.as_bytes().to_vec()), spki.into_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkcs8::PrivateKeyInfo;

    /// Each kind: the PKCS#8 names the kind's algorithm, and its public half is the one
    /// certified (the private key recomputes the public key given).
    #[test]
    fn every_kind_generates_a_matching_pair() {
        for kind in [
            KeyKind::EcdsaP256,
            KeyKind::EcdsaP384,
            KeyKind::Ed25519,
            KeyKind::Rsa { bits: 2048 },
        ] {
            let key = generate(kind).unwrap();
            assert_eq!(key.public_key().kind(), kind);
            let info = PrivateKeyInfo::try_from(key.pkcs8_der()).unwrap();
            let spki_of_private = match kind {
                KeyKind::EcdsaP256 => p256::SecretKey::try_from(info)
                    .unwrap()
                    .public_key()
                    .to_public_key_der()
                    .unwrap()
                    .into_vec(),
                KeyKind::EcdsaP384 => p384::SecretKey::try_from(info)
                    .unwrap()
                    .public_key()
                    .to_public_key_der()
                    .unwrap()
                    .into_vec(),
                KeyKind::Rsa { .. } => {
                    use rsa::pkcs8::DecodePrivateKey;
                    rsa::RsaPrivateKey::from_pkcs8_der(key.pkcs8_der())
                        .unwrap()
                        .to_public_key()
                        .to_public_key_der()
                        .unwrap()
                        .into_vec()
                }
                KeyKind::Ed25519 => {
                    let pair =
                        ring::signature::Ed25519KeyPair::from_pkcs8(key.pkcs8_der()).unwrap();
                    let expected = key.public_key().spki_der();
                    assert!(expected.ends_with(pair.public_key().as_ref()));
                    expected.to_vec()
                }
            };
            assert_eq!(spki_of_private, key.public_key().spki_der(), "{kind}");
            assert!(!format!("{key:?}").contains("pkcs8"));
        }
        // Two keys are never the same.
        let a = generate(KeyKind::EcdsaP256).unwrap();
        let b = generate(KeyKind::EcdsaP256).unwrap();
        assert_ne!(a.public_key().fingerprint(), b.public_key().fingerprint());
    }
}
