//! Contract and account rows (keys: the contract code, the account ID).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{
    from_row, from_row_of_version, parse, serial, to_row, to_row_of_version, Instant, Stored,
    REMOVED_ACCOUNT_ROW_VERSION, ROW_VERSION,
};
use crate::model::{Account, CertificateChoice, Contract, Role};
use crate::store::tables::{ACCOUNTS, CONTRACTS};
use crate::store::StoreError;

/// The layout of contract rows since `server_keygen` was added: [`ContractRow`]. Rows of
/// layout [`ROW_VERSION`] (written before) are [`ContractRowBefore`] and read as the option
/// off; they are rewritten in the new layout when the contract is next changed.
pub(super) const CONTRACT_ROW_VERSION: u8 = 2;

#[derive(Serialize, Deserialize)]
struct ContractRow<'a> {
    name: Cow<'a, str>,
    created_at: Instant,
    server_keygen: bool,
}

/// A contract row as written before `server_keygen` existed.
#[derive(Deserialize)]
struct ContractRowBefore<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    created_at: Instant,
}

impl Stored for Contract {
    const TABLE: &'static str = CONTRACTS;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        to_row_of_version(
            CONTRACTS,
            CONTRACT_ROW_VERSION,
            &ContractRow {
                name: Cow::Borrowed(&self.name),
                created_at: Instant::of(self.created_at),
                server_keygen: self.server_keygen,
            },
        )
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let row: ContractRow<'_> = if value.first() == Some(&ROW_VERSION) {
            let before: ContractRowBefore<'_> = from_row(CONTRACTS, key, value)?;
            ContractRow {
                name: before.name,
                created_at: before.created_at,
                server_keygen: false,
            }
        } else {
            from_row_of_version(CONTRACTS, CONTRACT_ROW_VERSION, key, value)?
        };
        Ok(Contract {
            code: parse(CONTRACTS, key, key)?,
            name: row.name.into_owned(),
            created_at: row.created_at.to_model(CONTRACTS, key)?,
            server_keygen: row.server_keygen,
        })
    }
}

/// [`Role`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(super) enum RoleRow {
    Master,
    User,
}

impl RoleRow {
    pub(super) fn of(role: Role) -> Self {
        match role {
            Role::Master => Self::Master,
            Role::User => Self::User,
        }
    }

    pub(super) fn to_model(self) -> Role {
        match self {
            Self::Master => Role::Master,
            Self::User => Role::User,
        }
    }
}

/// [`CertificateChoice`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum ChoiceRow {
    Continue,
    Reissue,
    Revoked,
}

#[derive(Serialize, Deserialize)]
struct AccountRow<'a> {
    contract: Cow<'a, str>,
    role: RoleRow,
    name: Cow<'a, str>,
    password_hash: Cow<'a, str>,
    failed_attempts: u32,
    locked: bool,
    choice: ChoiceRow,
    current_certificate: Option<[u8; 16]>,
    issued_count: u32,
    version: u64,
    created_at: Instant,
}

/// The row of a removed ID ([`REMOVED_ACCOUNT_ROW_VERSION`]): the row of any other ID, then
/// when it was removed.
#[derive(Serialize, Deserialize)]
struct RemovedAccountRow<'a> {
    #[serde(borrow)]
    account: AccountRow<'a>,
    removed_at: Instant,
}

impl Stored for Account {
    const TABLE: &'static str = ACCOUNTS;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let row = AccountRow {
            contract: Cow::Borrowed(self.contract.as_str()),
            role: RoleRow::of(self.role),
            name: Cow::Borrowed(&self.name),
            password_hash: Cow::Borrowed(&self.password_hash),
            failed_attempts: self.failed_attempts,
            locked: self.locked,
            choice: match self.choice {
                CertificateChoice::Continue => ChoiceRow::Continue,
                CertificateChoice::Reissue => ChoiceRow::Reissue,
                CertificateChoice::Revoked => ChoiceRow::Revoked,
            },
            current_certificate: self.current_certificate.map(|s| *s.as_bytes()),
            issued_count: self.issued_count,
            version: self.version,
            created_at: Instant::of(self.created_at),
        };
        match self.removed_at {
            None => to_row(ACCOUNTS, &row),
            Some(at) => to_row_of_version(
                ACCOUNTS,
                REMOVED_ACCOUNT_ROW_VERSION,
                &RemovedAccountRow {
                    account: row,
                    removed_at: Instant::of(at),
                },
            ),
        }
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let (row, removed_at) = match value.first() {
            Some(&REMOVED_ACCOUNT_ROW_VERSION) => {
                let removed: RemovedAccountRow<'_> =
                    from_row_of_version(ACCOUNTS, REMOVED_ACCOUNT_ROW_VERSION, key, value)?;
                (
                    removed.account,
                    Some(removed.removed_at.to_model(ACCOUNTS, key)?),
                )
            }
            _ => (from_row::<AccountRow<'_>>(ACCOUNTS, key, value)?, None),
        };
        Ok(Account {
            id: parse(ACCOUNTS, key, key)?,
            contract: parse(ACCOUNTS, key, row.contract.as_bytes())?,
            role: row.role.to_model(),
            name: row.name.into_owned(),
            password_hash: row.password_hash.into_owned(),
            failed_attempts: row.failed_attempts,
            locked: row.locked,
            choice: match row.choice {
                ChoiceRow::Continue => CertificateChoice::Continue,
                ChoiceRow::Reissue => CertificateChoice::Reissue,
                ChoiceRow::Revoked => CertificateChoice::Revoked,
            },
            current_certificate: row
                .current_certificate
                .map(|s| serial(ACCOUNTS, key, &s))
                .transpose()?,
            issued_count: row.issued_count,
            version: row.version,
            created_at: row.created_at.to_model(ACCOUNTS, key)?,
            removed_at,
        })
    }
}
