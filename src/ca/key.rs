//! The issuing CA's private key: ECDSA P-256 or P-384, loaded from PEM, used to sign
//! certificates. The key never appears in `Debug` output or in error messages.

use std::fmt;
use std::path::Path;

use der::asn1::BitString;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use signature::Signer;
use spki::AlgorithmIdentifierOwned;

use zeroize::Zeroizing;

use super::passphrase::KeyPassphrase;
use super::pkcs11::TokenKey;
use super::CaError;
use crate::config::KeyAlgorithm;

/// How a CA key file protects the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProtection {
    /// Plain PEM: anyone who can read the file has the key.
    Plain,
    /// Encrypted PKCS#8: the file is useless without the passphrase.
    Encrypted,
    /// In a PKCS#11 token: there is no key file, and the key cannot be exported.
    Token,
}

/// An ECDSA signing key of a CA. The RustCrypto key serves encoding and the public half;
/// signatures are made by the same key loaded into ring, whose assembly P-256/P-384 code
/// signs several times faster (one signature per issued certificate), when ring accepts it.
pub(crate) enum CaKey {
    /// NIST P-256, signs with ecdsa-with-SHA256.
    P256(p256::ecdsa::SigningKey, Option<RingSigner>),
    /// NIST P-384, signs with ecdsa-with-SHA384.
    P384(p384::ecdsa::SigningKey, Option<RingSigner>),
    /// A P-256 or P-384 key inside a PKCS#11 token, which signs.
    Token(Box<TokenKey>),
}

/// The CA key in ring's form, for signing.
pub(crate) struct RingSigner(ring::signature::EcdsaKeyPair);

impl RingSigner {
    /// Loads the PKCS#8 DER `pkcs8` for `alg`; `None` if ring refuses it (the RustCrypto
    /// signer is used then).
    fn new(alg: &'static ring::signature::EcdsaSigningAlgorithm, pkcs8: &[u8]) -> Option<Self> {
        let rng = ring::rand::SystemRandom::new();
        ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8, &rng)
            .ok()
            .map(Self)
    }

    /// A DER ECDSA-Sig-Value over `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        let rng = ring::rand::SystemRandom::new();
        self.0
            .sign(&rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| CaError::Internal("signing with the CA key failed".into()))
    }
}

fn ring_p256(k: &p256::SecretKey) -> Option<RingSigner> {
    use p256::pkcs8::EncodePrivateKey;
    let der = k.to_pkcs8_der().ok()?;
    RingSigner::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        der.as_bytes(),
    )
}

fn ring_p384(k: &p384::SecretKey) -> Option<RingSigner> {
    use p384::pkcs8::EncodePrivateKey;
    let der = k.to_pkcs8_der().ok()?;
    RingSigner::new(
        &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        der.as_bytes(),
    )
}

impl fmt::Debug for CaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key itself.
        f.write_str(match self {
            CaKey::P256(..) => "CaKey::P256(..)",
            CaKey::P384(..) => "CaKey::P384(..)",
            CaKey::Token(..) => "CaKey::Token(..)",
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
                return Ok(CaKey::P256((&k).into(), ring_p256(&k)));
            }
            if let Ok(k) = p384::SecretKey::from_sec1_pem(pem) {
                return Ok(CaKey::P384((&k).into(), ring_p384(&k)));
            }
            return Err(unsupported());
        }
        if label.contains("ENCRYPTED PRIVATE KEY") {
            return Err(CaError::PassphraseMissing {
                path: path.to_path_buf(),
            });
        }
        let (_, doc) = pkcs8::SecretDocument::from_pem(pem).map_err(|_| unsupported())?;
        Self::from_pkcs8_der(doc.as_bytes(), path)
    }

    /// Reads a PKCS#8 DER P-256 or P-384 key. `path` only names the file in errors.
    pub(super) fn from_pkcs8_der(der: &[u8], path: &Path) -> Result<Self, CaError> {
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(CaKey::P256((&k).into(), ring_p256(&k)));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(CaKey::P384((&k).into(), ring_p384(&k)));
        }
        Err(CaError::BadKey {
            path: path.to_path_buf(),
            reason: "it is not an ECDSA P-256 or P-384 private key".into(),
        })
    }

    /// Reads a key file's PEM as [`CaKey::from_pem`] does and also an encrypted PKCS#8 one
    /// ("ENCRYPTED PRIVATE KEY": PBES2 with scrypt or PBKDF2, as `estca` and `openssl pkcs8
    /// -topk8 -v2 aes-256-cbc` write), decrypted with `passphrase`. Returns the key and how
    /// the file protects it.
    pub(crate) fn from_pem_file(
        pem: &str,
        path: &Path,
        passphrase: Option<&KeyPassphrase>,
    ) -> Result<(Self, KeyProtection), CaError> {
        let Ok((label, doc)) = pkcs8::SecretDocument::from_pem(pem) else {
            return Self::from_pem(pem, path).map(|k| (k, KeyProtection::Plain));
        };
        if label != "ENCRYPTED PRIVATE KEY" {
            return Self::from_pem(pem, path).map(|k| (k, KeyProtection::Plain));
        }
        let passphrase = passphrase.ok_or_else(|| CaError::PassphraseMissing {
            path: path.to_path_buf(),
        })?;
        let encrypted =
            pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|_| {
                CaError::BadKey {
                    path: path.to_path_buf(),
                    reason: "it is labelled ENCRYPTED PRIVATE KEY but is not an encrypted                              PKCS#8 structure"
                        .into(),
                }
            })?;
        let wrong = || CaError::WrongPassphrase {
            path: path.to_path_buf(),
            passphrase: passphrase.source().to_path_buf(),
        };
        let plain = encrypted
            .decrypt(passphrase.as_bytes())
            .map_err(|_| wrong())?;
        // A wrong passphrase that happens to leave valid padding yields garbage.
        let key = Self::from_pkcs8_der(plain.as_bytes(), path).map_err(|_| wrong())?;
        Ok((key, KeyProtection::Encrypted))
    }

    /// The key as PKCS#8 PEM: encrypted with `passphrase` when given, else plain. The
    /// encryption is PBES2 (RFC 8018) with scrypt (log2 N 14, r 8, p 1: 16 MiB, the most
    /// OpenSSL accepts by default, as `openssl pkcs8 -topk8 -scrypt` writes) and AES-256-CBC,
    /// with a random salt and IV.
    pub(crate) fn to_pkcs8_pem(
        &self,
        passphrase: Option<&KeyPassphrase>,
    ) -> Result<Zeroizing<String>, CaError> {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        use rand_core::RngCore;
        let failed = |_| CaError::Internal("encoding the CA key as PKCS#8 failed".into());
        let plain = match self {
            CaKey::P256(k, _) => k.to_pkcs8_der(),
            CaKey::P384(k, _) => k.to_pkcs8_der(),
            CaKey::Token(_) => {
                return Err(CaError::Internal(
                    "the key is in a PKCS#11 token and cannot be exported".into(),
                ))
            }
        }
        .map_err(failed)?;
        let Some(passphrase) = passphrase else {
            return plain
                .to_pem("PRIVATE KEY", LineEnding::LF)
                .map_err(|_| CaError::Internal("encoding the CA key as PKCS#8 PEM failed".into()));
        };
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut salt);
        rand_core::OsRng.fill_bytes(&mut iv);
        let encrypting = |what: &str| CaError::Internal(format!("encrypting the CA key: {what}"));
        let scrypt = pkcs8::pkcs5::scrypt::Params::new(14, 8, 1, 32)
            .map_err(|_| encrypting("scrypt parameters"))?;
        let params = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
            .map_err(|_| encrypting("PBES2 parameters"))?;
        let info = pkcs8::PrivateKeyInfo::try_from(plain.as_bytes())
            .map_err(|_| encrypting("PKCS#8 structure"))?;
        info.encrypt_with_params(params, passphrase.as_bytes())
            .map_err(|_| encrypting("PBES2"))?
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(|_| encrypting("PEM"))
    }

    /// The key's curve.
    pub(crate) fn algorithm(&self) -> KeyAlgorithm {
        match self {
            CaKey::P256(..) => KeyAlgorithm::P256,
            CaKey::P384(..) => KeyAlgorithm::P384,
            CaKey::Token(t) => t.algorithm(),
        }
    }

    /// The DER SubjectPublicKeyInfo of the key's public half.
    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>, CaError> {
        let doc = match self {
            CaKey::P256(k, _) => k.verifying_key().to_public_key_der(),
            CaKey::P384(k, _) => k.verifying_key().to_public_key_der(),
            CaKey::Token(t) => return Ok(t.public_key_der().to_vec()),
        }
        .map_err(|e| CaError::Internal(format!("encoding the CA public key: {e}")))?;
        Ok(doc.into_vec())
    }

    /// The signature algorithm this key signs with (parameters absent, RFC 5758 3.2).
    pub(crate) fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        let oid = match self.algorithm() {
            KeyAlgorithm::P256 => const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
            KeyAlgorithm::P384 => const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        }
    }

    /// Signs `message` and returns the DER ECDSA-Sig-Value as a BIT STRING.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<BitString, CaError> {
        let sig = self.sign_der(message)?;
        BitString::from_bytes(&sig)
            .map_err(|e| CaError::Internal(format!("encoding a signature: {e}")))
    }

    /// Signs `message` (hashed with SHA-256 for P-256, SHA-384 for P-384) and returns the DER
    /// ECDSA-Sig-Value.
    pub(crate) fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        Ok(match self {
            CaKey::Token(t) => t.sign_der(message)?,
            CaKey::P256(_, Some(ring)) | CaKey::P384(_, Some(ring)) => ring.sign(message)?,
            CaKey::P256(k, None) => {
                let s: p256::ecdsa::DerSignature = k.try_sign(message).map_err(|_| {
                    CaError::Internal("signing with the P-256 CA key failed".into())
                })?;
                s.as_bytes().to_vec()
            }
            CaKey::P384(k, None) => {
                let s: p384::ecdsa::DerSignature = k.try_sign(message).map_err(|_| {
                    CaError::Internal("signing with the P-384 CA key failed".into())
                })?;
                s.as_bytes().to_vec()
            }
        })
    }
}
