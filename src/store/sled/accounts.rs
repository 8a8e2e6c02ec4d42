//! Contracts, accounts and their edits, and the failed-login count.

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::history::{append, HistoryTx};
use super::issuance::revoke_certificate;
use super::rows::Stored;
use super::{abort, from_tx, index_key, tx, tx_get, SledStore};
use crate::model::{Account, AccountId, Contract, HistoryEvent};
use crate::store::{AccountChange, AccountEdit, PasswordAttempt, StoreError};

impl SledStore {
    pub(super) fn create_contract_now(
        &self,
        contract: &Contract,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = contract.code.as_str().as_bytes();
        let value = contract.encode()?;
        let [history, by_account, by_contract, meta] = self.history_trees();
        (&self.contracts, history, by_account, by_contract, meta)
            .transaction(|(contracts, history, by_account, by_contract, meta)| {
                if contracts.get(key)?.is_some() {
                    return abort(StoreError::AlreadyExists(format!(
                        "contract {}",
                        contract.code
                    )));
                }
                contracts.insert(key, value.as_slice())?;
                append(
                    &HistoryTx {
                        history,
                        by_account,
                        by_contract,
                        meta,
                    },
                    event,
                )?;
                Ok(())
            })
            .map_err(from_tx)
    }

    pub(super) fn create_account_now(
        &self,
        account: &Account,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let account = Account {
            version: 0,
            ..account.clone()
        };
        let key = account.id.as_str().as_bytes();
        let folded = account.id.case_folded();
        let contract_key = account.contract.as_str().as_bytes();
        let by_contract_key = index_key(contract_key, key);
        let value = account.encode()?;
        let [history, by_account, by_contract, meta] = self.history_trees();
        (
            &self.contracts,
            &self.accounts,
            &self.account_ids_folded,
            &self.accounts_by_contract,
            history,
            by_account,
            by_contract,
            meta,
        )
            .transaction(
                |(
                    contracts,
                    accounts,
                    folded_ids,
                    accounts_by_contract,
                    history,
                    by_account,
                    by_contract,
                    meta,
                )| {
                    if contracts.get(contract_key)?.is_none() {
                        return abort(StoreError::NotFound(format!(
                            "contract {}",
                            account.contract
                        )));
                    }
                    if accounts.get(key)?.is_some() || folded_ids.get(folded.as_bytes())?.is_some()
                    {
                        return abort(StoreError::AlreadyExists(format!("account {}", account.id)));
                    }
                    accounts.insert(key, value.as_slice())?;
                    folded_ids.insert(folded.as_bytes(), key)?;
                    accounts_by_contract.insert(by_contract_key.as_slice(), &[])?;
                    append(
                        &HistoryTx {
                            history,
                            by_account,
                            by_contract,
                            meta,
                        },
                        event,
                    )?;
                    Ok(())
                },
            )
            .map_err(from_tx)
    }

    pub(super) fn count_password_attempt_now(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<(PasswordAttempt, bool), StoreError> {
        let key = id.as_str().as_bytes();
        self.accounts
            .transaction(|accounts| {
                let Some(stored) = tx_get::<Account>(accounts, key)? else {
                    return Ok((PasswordAttempt::UnknownId, false));
                };
                if stored.locked || stored.failed_attempts >= limit {
                    return Ok((PasswordAttempt::OverLimit(stored), false));
                }
                let counted = Account {
                    failed_attempts: stored.failed_attempts + 1,
                    ..stored
                };
                accounts.insert(key, tx(counted.encode())?)?;
                Ok((PasswordAttempt::Counted(counted), true))
            })
            .map_err(from_tx)
    }

    pub(super) fn clear_password_attempts_now(
        &self,
        id: &AccountId,
    ) -> Result<(Account, bool), StoreError> {
        let key = id.as_str().as_bytes();
        self.accounts
            .transaction(|accounts| {
                let stored = tx_get::<Account>(accounts, key)?.ok_or_else(|| {
                    ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                        "account {id}"
                    )))
                })?;
                if stored.locked || stored.failed_attempts == 0 {
                    return Ok((stored, false));
                }
                let cleared = Account {
                    failed_attempts: 0,
                    ..stored
                };
                accounts.insert(key, tx(cleared.encode())?)?;
                Ok((cleared, true))
            })
            .map_err(from_tx)
    }

    /// Applies an account change; returns the account as stored and whether a certificate
    /// was revoked.
    pub(super) fn update_account_now(&self, change: &AccountChange) -> Result<Account, StoreError> {
        let AccountChange {
            id,
            expected_version,
            edits,
            revoke,
            events,
        } = change;
        let new_version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("account version overflow".into()))?;
        let key = id.as_str().as_bytes();
        let [history, by_account, by_contract, meta] = self.history_trees();
        (
            &self.accounts,
            &self.certificates,
            &self.revoked,
            history,
            by_account,
            by_contract,
            meta,
        )
            .transaction(
                |(accounts, certificates, revoked, history, by_account, by_contract, meta)| {
                    let mut account = tx_get::<Account>(accounts, key)?.ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                            "account {id}"
                        )))
                    })?;
                    if account.version != *expected_version {
                        return abort(StoreError::Conflict);
                    }
                    for edit in edits {
                        match edit {
                            AccountEdit::Rename(name) => account.name = name.clone(),
                            AccountEdit::SetPasswordHash(hash) => {
                                account.password_hash = hash.clone()
                            }
                            AccountEdit::Choose(choice) => account.choice = *choice,
                            AccountEdit::LockAtFailures(at_least) => {
                                if account.failed_attempts < *at_least {
                                    return abort(StoreError::Conflict);
                                }
                                account.locked = true;
                            }
                            AccountEdit::Unlock => {
                                account.locked = false;
                                account.failed_attempts = 0;
                            }
                        }
                    }
                    account.version = new_version;
                    if let Some((serial, revocation)) = revoke {
                        revoke_certificate(certificates, revoked, id, serial, *revocation)?;
                    }
                    accounts.insert(key, tx(account.encode())?)?;
                    let t = HistoryTx {
                        history,
                        by_account,
                        by_contract,
                        meta,
                    };
                    for event in events {
                        append(&t, event)?;
                    }
                    Ok(account)
                },
            )
            .map_err(from_tx)
    }
}
