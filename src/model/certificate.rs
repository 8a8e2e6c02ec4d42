//! The certificates estca issued: the record, whom it was issued to, and its status at an
//! instant.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, AppName, ContractCode, KeyFingerprint, Revocation, Role, Serial};

/// A certificate estca issued, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// The serial number.
    pub serial: Serial,
    /// Whom it was issued to.
    pub holder: Holder,
    /// The subject as text (RFC 4514 order of the certificate, for display).
    pub subject: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Fingerprint of the certified public key.
    pub key: KeyFingerprint,
    /// `None` while unrevoked.
    pub revocation: Option<Revocation>,
    /// The certificate, DER.
    #[serde(with = "der_base64")]
    pub der: Vec<u8>,
}

/// Whom a certificate was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Holder {
    /// An ID (master or public), as it was at issuance.
    Account {
        /// The ID.
        id: AccountId,
        /// Its contract.
        contract: ContractCode,
        /// Its role (the USERTYPE in the subject).
        role: Role,
        /// CERTISSUEDNUM written in the subject.
        issued_num: u32,
    },
    /// An application credential.
    App {
        /// The application's name.
        name: AppName,
    },
    /// estca's own TLS server certificate, issued by the CA at each start and reload (unless
    /// the server certificate comes from files).
    #[serde(rename = "tls_server")]
    TlsServer {
        /// The names it is valid for (`server.hostnames`: DNS names and IP addresses).
        names: Vec<String>,
    },
    /// A delegated OCSP signing certificate of estca's responder (RFC 6960 4.2.2.2).
    #[serde(rename = "ocsp_signer")]
    OcspSigner,
}

impl Holder {
    /// Whether the certificate belongs to one of estca's own services (TLS server, OCSP
    /// responder) rather than to an ID or an application: such a certificate never
    /// authenticates a client.
    pub fn is_service(&self) -> bool {
        matches!(self, Holder::TlsServer { .. } | Holder::OcspSigner)
    }
}

impl CertificateRecord {
    /// The ID the certificate was issued to, unless it belongs to an application.
    pub fn account(&self) -> Option<&AccountId> {
        match &self.holder {
            Holder::Account { id, .. } => Some(id),
            Holder::App { .. } | Holder::TlsServer { .. } | Holder::OcspSigner => None,
        }
    }

    /// The contract of the ID the certificate was issued to.
    pub fn contract(&self) -> Option<&ContractCode> {
        match &self.holder {
            Holder::Account { contract, .. } => Some(contract),
            Holder::App { .. } | Holder::TlsServer { .. } | Holder::OcspSigner => None,
        }
    }

    /// Unrevoked and within its validity at `now`: the state the one-per-ID invariant counts.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revocation.is_none() && self.not_before <= now && now < self.not_after
    }

    /// The status at `now`, for display.
    pub fn status(&self, now: OffsetDateTime) -> CertificateStatus {
        match self.revocation {
            Some(_) => CertificateStatus::Revoked,
            None if now >= self.not_after => CertificateStatus::Expired,
            None => CertificateStatus::Active,
        }
    }
}

/// A certificate's status at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CertificateStatus {
    /// Unrevoked and unexpired.
    Active,
    /// Past its notAfter, never revoked.
    Expired,
    /// Revoked (see the record's revocation).
    Revoked,
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertificateStatus::Active => "active",
            CertificateStatus::Expired => "expired",
            CertificateStatus::Revoked => "revoked",
        })
    }
}

/// Base64 (standard alphabet) for DER inside JSON.
mod der_base64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(der: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(der))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
