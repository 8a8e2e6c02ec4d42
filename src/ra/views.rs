//! What administrators see of accounts and certificates: the stored records without secrets,
//! with the status computed at the moment of asking.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{
    Account, AccountId, CertificateChoice, CertificateRecord, CertificateStatus, ContractCode,
    Revocation, Role, Serial,
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
    /// CERTISSUEDNUM.
    pub issued_num: u32,
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
            issued_num: record.issued_num,
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
    /// The account it was issued to.
    pub account: AccountId,
    /// The account's contract.
    pub contract: ContractCode,
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
            account: record.account.clone(),
            contract: record.contract.clone(),
            subject: record.subject.clone(),
            pem: pem_rfc7468::encode_string(
                "CERTIFICATE",
                pem_rfc7468::LineEnding::LF,
                &record.der,
            )
            .unwrap_or_default(),
        }
    }
}
