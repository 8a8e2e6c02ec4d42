//! The issuing CA's private key: ECDSA P-256 or P-384, loaded from PEM, used to sign
//! certificates. The key never appears in `Debug` output or in error messages.

use std::fmt;
use std::path::Path;

use der::asn1::BitString;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use signature::Signer;
use spki::AlgorithmIdentifierOwned;

use super::CaError;

/// An ECDSA signing key of a CA.
pub(crate) enum CaKey {
    /// NIST P-256, signs with ecdsa-with-SHA256.
    P256(p256::ecdsa::SigningKey),
    /// NIST P-384, signs with ecdsa-with-SHA384.
    P384(p384::ecdsa::SigningKey),
}

impl fmt::Debug for CaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key itself.
        f.write_str(match self {
            CaKey::P256(_) => "CaKey::P256(..)",
            CaKey::P384(_) => "CaKey::P384(..)",
        })
    }
}

impl CaKey {
    /// Reads a PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") PEM holding a P-256 or P-384
    /// key. `path` only names the file in errors.
    pub(crate) fn from_pem(pem: &str, path: &Path) -> Result<Self, CaError> {
        let label = pem
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("-----BEGIN "))
            .unwrap_or_default();
        let unsupported = || CaError::BadKey {
            path: path.to_path_buf(),
            reason: "it is not an ECDSA P-256 or P-384 private key in PKCS#8 (\"PRIVATE KEY\") \
                     or SEC1 (\"EC PRIVATE KEY\") PEM form"
                .into(),
        };
        if label.contains("EC PRIVATE KEY") {
            if let Ok(k) = p256::SecretKey::from_sec1_pem(pem) {
                return Ok(CaKey::P256(k.into()));
            }
            if let Ok(k) = p384::SecretKey::from_sec1_pem(pem) {
                return Ok(CaKey::P384(k.into()));
            }
            return Err(unsupported());
        }
        if label.contains("ENCRYPTED PRIVATE KEY") {
            return Err(CaError::BadKey {
                path: path.to_path_buf(),
                reason: "the key is encrypted; decrypt it first (e.g. `openssl pkey -in KEY -out \
                         PLAIN`) and keep the plain key file mode 0600"
                    .into(),
            });
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Ok(CaKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_pem(pem) {
            return Ok(CaKey::P384(k.into()));
        }
        Err(unsupported())
    }

    /// The DER SubjectPublicKeyInfo of the key's public half.
    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>, CaError> {
        let doc = match self {
            CaKey::P256(k) => k.verifying_key().to_public_key_der(),
            CaKey::P384(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(|e| CaError::Internal(format!("encoding the CA public key: {e}")))?;
        Ok(doc.into_vec())
    }

    /// The signature algorithm this key signs with (parameters absent, RFC 5758 3.2).
    pub(crate) fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        let oid = match self {
            CaKey::P256(_) => const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
            CaKey::P384(_) => const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        }
    }

    /// Signs `message` and returns the DER ECDSA-Sig-Value as a BIT STRING.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<BitString, CaError> {
        let sig: Vec<u8> = match self {
            CaKey::P256(k) => {
                let s: p256::ecdsa::DerSignature = k.try_sign(message).map_err(|_| {
                    CaError::Internal("signing with the P-256 CA key failed".into())
                })?;
                s.as_bytes().to_vec()
            }
            CaKey::P384(k) => {
                let s: p384::ecdsa::DerSignature = k.try_sign(message).map_err(|_| {
                    CaError::Internal("signing with the P-384 CA key failed".into())
                })?;
                s.as_bytes().to_vec()
            }
        };
        BitString::from_bytes(&sig)
            .map_err(|e| CaError::Internal(format!("encoding a signature: {e}")))
    }
}
