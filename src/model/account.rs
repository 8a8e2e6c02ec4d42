//! Accounts (IDs): their role, the administrator's choice for their certificate, and what
//! the lifecycle needs to decide about them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, ContractCode, InvalidValue, Serial};

/// The USERTYPE of an account, as it appears in the certificate subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 管理者 / マスターID: manages the public IDs of its contract (USERTYPE - 1).
    Master,
    /// 利用者 / パブリックID: enrolls for its own certificate (USERTYPE - 2).
    User,
}

impl Role {
    /// The number written after `USERTYPE - ` in the subject.
    pub fn usertype(self) -> u8 {
        match self {
            Role::Master => 1,
            Role::User => 2,
        }
    }
}

impl FromStr for Role {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "master" => Ok(Role::Master),
            "user" => Ok(Role::User),
            _ => Err(InvalidValue("a role is 'master' or 'user'".into())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Master => "master",
            Role::User => "user",
        })
    }
}

/// The administrator's last choice for an account's certificate (the seed's 編集 screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateChoice {
    /// 継続利用する (or nothing chosen yet): an active certificate blocks a new enrollment.
    #[default]
    Continue,
    /// 再発行する: the next enrollment is allowed and supersedes the current certificate.
    Reissue,
    /// 失効する: the certificate was revoked; enrollment is refused until reissue is chosen.
    Revoked,
}

/// An account (ID) and everything the lifecycle needs to decide about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Login ID.
    pub id: AccountId,
    /// The contract the ID belongs to.
    pub contract: ContractCode,
    /// Master or public ID.
    pub role: Role,
    /// Display name, for people (利用者名).
    pub name: String,
    /// Argon2id hash of the password, as a PHC string. Never leaves the daemon.
    pub password_hash: String,
    /// Consecutive wrong passwords since the last success or unlock.
    pub failed_attempts: u32,
    /// Locked after too many wrong passwords (IDロック); only an unlock clears it.
    pub locked: bool,
    /// The administrator's last choice for the certificate.
    pub choice: CertificateChoice,
    /// The most recently issued certificate, whatever its status now.
    pub current_certificate: Option<Serial>,
    /// How many certificates this ID has been issued (CERTISSUEDNUM of the latest).
    pub issued_count: u32,
    /// Bumped by the store on every change; the basis of optimistic concurrency.
    pub version: u64,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the ID was removed (a lifecycle step of the registration authority), if it was:
    /// a removed ID never authenticates again and is never reused, and its record stays for
    /// the audit trail of its certificates and history (who removed it is in the history).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub removed_at: Option<OffsetDateTime>,
}

impl Account {
    /// A new account as it is created: unlocked, no failures, no certificate, nothing chosen,
    /// version 0.
    pub fn new(
        id: AccountId,
        contract: ContractCode,
        role: Role,
        name: String,
        password_hash: String,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            contract,
            role,
            name,
            password_hash,
            failed_attempts: 0,
            locked: false,
            choice: CertificateChoice::Continue,
            current_certificate: None,
            issued_count: 0,
            version: 0,
            created_at,
            removed_at: None,
        }
    }

    /// Whether the ID was removed.
    pub fn is_removed(&self) -> bool {
        self.removed_at.is_some()
    }
}
