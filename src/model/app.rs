//! Application credentials: other systems that delegate issuance to estca.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AppName, ContractCode, Serial};

/// The contracts an application may manage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppScope {
    /// Every contract, present and future.
    All,
    /// These contracts only.
    Contracts(Vec<ContractCode>),
}

impl AppScope {
    /// Whether the contract is in scope.
    pub fn includes(&self, code: &ContractCode) -> bool {
        match self {
            AppScope::All => true,
            AppScope::Contracts(codes) => codes.contains(code),
        }
    }
}

/// An application credential: another system that delegates issuance to estca, with the
/// powers of a master ID over the contracts it was granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Its name (the CN of its certificate).
    pub name: AppName,
    /// The contracts it may manage.
    pub scope: AppScope,
    /// Whether it may create contracts and master IDs.
    pub can_create_contracts: bool,
    /// Its certificate; revoking the app revokes it.
    pub certificate: Serial,
    /// Whether the credential was revoked (for good).
    pub revoked: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}
