//! Rules of contracts and accounts: creation, edits, and the failed-login count.

use crate::model::{Account, AccountId, Contract, ContractCode};
use crate::store::{AccountChange, AccountEdit, PasswordAttempt, StoreError};

/// Creating `contract`: refused if its code is `taken`.
pub(in crate::store) fn new_contract(contract: &Contract, taken: bool) -> Result<(), StoreError> {
    if taken {
        return Err(StoreError::AlreadyExists(format!(
            "contract {}",
            contract.code
        )));
    }
    Ok(())
}

/// Setting the options of the contract `stored` (`code`): it must exist. Returns the contract
/// as it is to be stored.
pub(in crate::store) fn contract_options(
    stored: Option<Contract>,
    code: &ContractCode,
    server_keygen: bool,
) -> Result<Contract, StoreError> {
    let contract = stored.ok_or_else(|| StoreError::NotFound(format!("contract {code}")))?;
    Ok(Contract {
        server_keygen,
        ..contract
    })
}

/// Creating `account`: its contract must exist and its ID be free, also of IDs differing only
/// by letter case (`id_taken` covers both). Returns the account as stored: version 0.
pub(in crate::store) fn new_account(
    account: &Account,
    contract_exists: bool,
    id_taken: bool,
) -> Result<Account, StoreError> {
    if !contract_exists {
        return Err(StoreError::NotFound(format!(
            "contract {}",
            account.contract
        )));
    }
    if id_taken {
        return Err(StoreError::AlreadyExists(format!("account {}", account.id)));
    }
    Ok(Account {
        version: 0,
        ..account.clone()
    })
}

/// The account a write acts on, [`StoreError::NotFound`] if there is none.
pub(in crate::store) fn existing_account(
    stored: Option<Account>,
    id: &AccountId,
) -> Result<Account, StoreError> {
    stored.ok_or_else(|| StoreError::NotFound(format!("account {id}")))
}

/// Counting a password attempt against the account `stored` (see
/// [`RaStore::count_password_attempt`](crate::store::RaStore::count_password_attempt)): only
/// [`PasswordAttempt::Counted`] changes the account, and its account is what to write.
pub(in crate::store) fn count_password_attempt(
    stored: Option<Account>,
    limit: u32,
) -> PasswordAttempt {
    let Some(stored) = stored else {
        return PasswordAttempt::UnknownId;
    };
    // A removed ID's password is never checked (nor counted): it cannot authenticate again.
    if stored.locked || stored.is_removed() || stored.failed_attempts >= limit {
        return PasswordAttempt::OverLimit(stored);
    }
    PasswordAttempt::Counted(Account {
        failed_attempts: stored.failed_attempts + 1,
        ..stored
    })
}

/// A right password: the failed-login count cleared unless the ID is locked. Returns the
/// account as it is to be stored, and whether it changed (and must be written).
pub(in crate::store) fn clear_password_attempts(stored: Account) -> (Account, bool) {
    if stored.locked || stored.failed_attempts == 0 {
        return (stored, false);
    }
    (
        Account {
            failed_attempts: 0,
            ..stored
        },
        true,
    )
}

/// Applies `change`'s edits to the account `stored`, provided it still has the expected
/// version ([`StoreError::Conflict`] otherwise, also when a [`AccountEdit::LockAtFailures`]
/// finds fewer failures than it needs). Returns the account as it is to be stored, at the
/// next version. The change's revocation and history are the backend's to write. A removed
/// ID changes no more: any change to it is refused with [`StoreError::Conflict`] (its
/// version moved when it was removed, so the decision was taken on the ID before).
pub(in crate::store) fn apply_change(
    stored: Option<Account>,
    change: &AccountChange,
) -> Result<Account, StoreError> {
    let mut account = existing_account(stored, &change.id)?;
    if account.version != change.expected_version || account.is_removed() {
        return Err(StoreError::Conflict);
    }
    for edit in &change.edits {
        match edit {
            AccountEdit::Rename(name) => account.name = name.clone(),
            AccountEdit::SetPasswordHash(hash) => account.password_hash = hash.clone(),
            AccountEdit::Choose(choice) => account.choice = *choice,
            AccountEdit::LockAtFailures(at_least) => {
                if account.failed_attempts < *at_least {
                    return Err(StoreError::Conflict);
                }
                account.locked = true;
            }
            AccountEdit::Unlock => {
                account.locked = false;
                account.failed_attempts = 0;
            }
            AccountEdit::Remove(at) => account.removed_at = Some(*at),
        }
    }
    account.version = next_version(account.version)?;
    Ok(account)
}

/// The version after `version`.
pub(super) fn next_version(version: u64) -> Result<u64, StoreError> {
    version
        .checked_add(1)
        .ok_or_else(|| StoreError::Backend("account version overflow".into()))
}
