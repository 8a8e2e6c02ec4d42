//! What administrators see of accounts and certificates: the stored records without secrets,
//! with the status computed at the moment of asking.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{
    Account, AccountId, AppName, CertificateChoice, CertificateRecord, CertificateStatus,
    ContractCode, Holder, Revocation, Role, Serial,
};

/// An account as shown to administrators (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Login ID.
    pub id: AccountId,
    /// Its contract.
    pub contract: ContractCode,
    /// Master or public ID.
    pub role: Role,
    /// Display name.
    pub name: String,
    /// Locked after too many wrong passwords.
    pub locked: bool,
    /// Consecutive wrong passwords.
    pub failed_attempts: u32,
    /// The administrator's last choice: `continue`, `reissue` (pending) or `revoked`.
    pub certificate_choice: CertificateChoice,
    /// How many certificates the ID has been issued.
    pub issued_count: u32,
    /// The latest certificate, whatever its status.
    pub certificate: Option<CertificateSummary>,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl AccountView {
    /// The view of `account`, whose current certificate record is `current`, at `now`.
    pub fn new(
        account: &Account,
        current: Option<&CertificateRecord>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: account.id.clone(),
            contract: account.contract.clone(),
            role: account.role,
            name: account.name.clone(),
            locked: account.locked,
            failed_attempts: account.failed_attempts,
            certificate_choice: account.choice,
            issued_count: account.issued_count,
            certificate: current.map(|c| CertificateSummary::new(c, now)),
            created_at: account.created_at,
        }
    }
}

/// The essentials of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSummary {
    /// Serial, hex.
    pub serial: Serial,
    /// CERTISSUEDNUM (absent for an application's certificate).
    pub issued_num: Option<u32>,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Status at the time of asking.
    pub status: CertificateStatus,
    /// Revocation time and reason, when revoked.
    pub revocation: Option<Revocation>,
}

impl CertificateSummary {
    /// The summary of `record` at `now`.
    pub fn new(record: &CertificateRecord, now: OffsetDateTime) -> Self {
        Self {
            serial: record.serial,
            issued_num: match record.holder {
                Holder::Account { issued_num, .. } => Some(issued_num),
                Holder::App { .. } | Holder::TlsServer { .. } | Holder::OcspSigner => None,
            },
            not_before: record.not_before,
            not_after: record.not_after,
            status: record.status(now),
            revocation: record.revocation,
        }
    }
}

/// A certificate in full, for `estca cert show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateView {
    /// Serial, status, validity, revocation.
    #[serde(flatten)]
    pub summary: CertificateSummary,
    /// The ID it was issued to (absent for an application's certificate).
    pub account: Option<AccountId>,
    /// The ID's contract.
    pub contract: Option<ContractCode>,
    /// The application it was issued to (absent for an ID's certificate).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub app: Option<AppName>,
    /// The estca service it was issued to (absent for an ID's or an application's).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<ServiceView>,
    /// The subject.
    pub subject: String,
    /// The certificate, PEM.
    pub pem: String,
}

impl CertificateView {
    /// The view of `record` at `now`.
    pub fn new(record: &CertificateRecord, now: OffsetDateTime) -> Self {
        Self {
            summary: CertificateSummary::new(record, now),
            account: record.account().cloned(),
            contract: record.contract().cloned(),
            app: match &record.holder {
                Holder::App { name } => Some(name.clone()),
                _ => None,
            },
            service: match &record.holder {
                Holder::TlsServer { names } => Some(ServiceView::TlsServer {
                    names: names.clone(),
                }),
                Holder::OcspSigner => Some(ServiceView::OcspSigner),
                Holder::Account { .. } | Holder::App { .. } => None,
            },
            subject: record.subject.clone(),
            pem: crate::ca::pkcs7::pem_certificates(&[&record.der]),
        }
    }
}

/// Which of estca's own services a certificate belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceView {
    /// The daemon's TLS server certificate, for these names.
    TlsServer {
        /// DNS names and IP addresses.
        names: Vec<String>,
    },
    /// A delegated OCSP signing certificate.
    OcspSigner,
}

impl std::fmt::Display for ServiceView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceView::TlsServer { names } => {
                write!(f, "estca's TLS server ({})", names.join(", "))
            }
            ServiceView::OcspSigner => f.write_str("estca's OCSP responder (signing certificate)"),
        }
    }
}
