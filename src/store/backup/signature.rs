//! The CA's signature of a backup file, as the trailer carries it, and what it is over.

use serde::{Deserialize, Serialize};

/// What the CA signs, before the SHA-256 of the lines above the trailer. It names the purpose,
/// so that the signature cannot be taken for one over anything else the CA key signs
/// (certificates, CRLs and OCSP responses are DER, which starts with 0x30, never with 'e').
pub const SIGNATURE_CONTEXT: &[u8] = b"estca-backup v2 signature over SHA-256\0";

/// The bytes the CA signs for a backup whose lines before the trailer hash to `sha256`.
pub fn signed_message(sha256: &[u8]) -> Vec<u8> {
    let mut message = SIGNATURE_CONTEXT.to_vec();
    message.extend_from_slice(sha256);
    message
}

/// The signature algorithms of backup signatures (those of the CA keys estca uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256, signature DER-encoded (RFC 3279).
    #[serde(rename = "ecdsa-with-SHA256")]
    EcdsaWithSha256,
    /// ECDSA P-384 with SHA-384, signature DER-encoded (RFC 3279).
    #[serde(rename = "ecdsa-with-SHA384")]
    EcdsaWithSha384,
}

/// The CA's signature of a backup, as the trailer carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSignature {
    /// How `value` was made.
    pub algorithm: SignatureAlgorithm,
    /// The signer's certificate, DER (base64 in the file).
    #[serde(with = "base64_bytes")]
    pub signer: Vec<u8>,
    /// The signature over [`signed_message`], DER (base64 in the file).
    #[serde(with = "base64_bytes")]
    pub value: Vec<u8>,
}

/// Bytes as standard base64 in JSON (the signature's certificate and value, a certificate's DER).
pub(super) mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub(in crate::store::backup) fn serialize<S: Serializer>(
        bytes: &[u8],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    pub(in crate::store::backup) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }
}
