//! Contracts, accounts and their edits, the failed-login count, and budgets.

use fjall::WriteTransaction;
use time::OffsetDateTime;

use super::rows::{self, AccountRow, ContractRow};
use super::{index_key, tx_get, FjallStore, ACCOUNTS, ACCOUNT_IDS_FOLDED, BUDGETS, CONTRACTS};
use crate::model::{Account, AccountId, Contract, HistoryEvent};
use crate::store::budget::TokenBucket;
use crate::store::{AccountChange, AccountEdit, Budget, BudgetSpend, PasswordAttempt, StoreError};

impl FjallStore {
    /// The account as the transaction sees it.
    pub(super) fn tx_account(
        &self,
        tx: &WriteTransaction<'_>,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        let key = id.as_str().as_bytes();
        tx_get(tx, &self.parts.accounts, ACCOUNTS, key)?
            .map(|bytes| rows::read(ACCOUNTS, key, &bytes, AccountRow::into_account))
            .transpose()
    }

    /// Writes the account in the transaction.
    pub(super) fn tx_put_account(
        &self,
        tx: &mut WriteTransaction<'_>,
        account: &Account,
    ) -> Result<(), StoreError> {
        let value = rows::encode(ACCOUNTS, &AccountRow::of(account))?;
        tx.insert(&self.parts.accounts, account.id.as_str().as_bytes(), value);
        Ok(())
    }

    pub(super) fn create_contract_now(
        &self,
        contract: &Contract,
        event: &HistoryEvent,
    ) -> Result<((), bool), StoreError> {
        let key = contract.code.as_str().as_bytes();
        let value = rows::encode(CONTRACTS, &ContractRow::of(contract))?;
        self.transact(|tx| {
            if tx_get(tx, &self.parts.contracts, CONTRACTS, key)?.is_some() {
                return Err(StoreError::AlreadyExists(format!(
                    "contract {}",
                    contract.code
                )));
            }
            tx.insert(&self.parts.contracts, key, value);
            self.append(tx, event)?;
            Ok(((), true))
        })
    }

    pub(super) fn create_account_now(
        &self,
        account: &Account,
        event: &HistoryEvent,
    ) -> Result<((), bool), StoreError> {
        let account = Account {
            version: 0,
            ..account.clone()
        };
        let key = account.id.as_str().as_bytes();
        let folded = account.id.case_folded();
        let contract_key = account.contract.as_str().as_bytes();
        self.transact(|tx| {
            if tx_get(tx, &self.parts.contracts, CONTRACTS, contract_key)?.is_none() {
                return Err(StoreError::NotFound(format!(
                    "contract {}",
                    account.contract
                )));
            }
            if tx_get(tx, &self.parts.accounts, ACCOUNTS, key)?.is_some()
                || tx_get(
                    tx,
                    &self.parts.account_ids_folded,
                    ACCOUNT_IDS_FOLDED,
                    folded.as_bytes(),
                )?
                .is_some()
            {
                return Err(StoreError::AlreadyExists(format!("account {}", account.id)));
            }
            self.tx_put_account(tx, &account)?;
            tx.insert(&self.parts.account_ids_folded, folded.as_bytes(), []);
            tx.insert(
                &self.parts.accounts_by_contract,
                index_key(contract_key, key),
                [],
            );
            self.append(tx, event)?;
            Ok(((), true))
        })
    }

    pub(super) fn count_password_attempt_now(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<(PasswordAttempt, bool), StoreError> {
        self.transact(|tx| {
            let Some(stored) = self.tx_account(tx, id)? else {
                return Ok((PasswordAttempt::UnknownId, false));
            };
            if stored.locked || stored.failed_attempts >= limit {
                return Ok((PasswordAttempt::OverLimit(stored), false));
            }
            let counted = Account {
                failed_attempts: stored.failed_attempts + 1,
                ..stored
            };
            self.tx_put_account(tx, &counted)?;
            Ok((PasswordAttempt::Counted(counted), true))
        })
    }

    pub(super) fn clear_password_attempts_now(
        &self,
        id: &AccountId,
    ) -> Result<(Account, bool), StoreError> {
        self.transact(|tx| {
            let stored = self
                .tx_account(tx, id)?
                .ok_or_else(|| StoreError::NotFound(format!("account {id}")))?;
            if stored.locked || stored.failed_attempts == 0 {
                return Ok((stored, false));
            }
            let cleared = Account {
                failed_attempts: 0,
                ..stored
            };
            self.tx_put_account(tx, &cleared)?;
            Ok((cleared, true))
        })
    }

    /// Applies an account change; returns the account as stored.
    pub(super) fn update_account_now(
        &self,
        change: &AccountChange,
    ) -> Result<(Account, bool), StoreError> {
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
        self.transact(|tx| {
            let mut account = self
                .tx_account(tx, id)?
                .ok_or_else(|| StoreError::NotFound(format!("account {id}")))?;
            if account.version != *expected_version {
                return Err(StoreError::Conflict);
            }
            for edit in edits {
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
                }
            }
            account.version = new_version;
            if let Some((serial, revocation)) = revoke {
                self.revoke_certificate(tx, id, serial, *revocation)?;
            }
            self.tx_put_account(tx, &account)?;
            for event in events {
                self.append(tx, event)?;
            }
            Ok((account, true))
        })
    }

    pub(super) fn take_from_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(BudgetSpend, bool), StoreError> {
        self.transact(|tx| {
            let mut bucket = self
                .tx_bucket(tx, key)?
                .unwrap_or_else(|| TokenBucket::full(budget, now));
            let spend = bucket.take(budget, now);
            self.tx_put_bucket(tx, key, bucket)?;
            Ok((spend, true))
        })
    }

    pub(super) fn refund_to_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<((), bool), StoreError> {
        self.transact(|tx| match self.tx_bucket(tx, key)? {
            Some(mut bucket) => {
                bucket.refund(budget, now);
                self.tx_put_bucket(tx, key, bucket)?;
                Ok(((), true))
            }
            None => Ok(((), false)),
        })
    }

    fn tx_bucket(
        &self,
        tx: &WriteTransaction<'_>,
        key: &str,
    ) -> Result<Option<TokenBucket>, StoreError> {
        tx_get(tx, &self.parts.budgets, BUDGETS, key.as_bytes())?
            .map(|bytes| rows::decode::<TokenBucket>(BUDGETS, key.as_bytes(), &bytes))
            .transpose()
    }

    fn tx_put_bucket(
        &self,
        tx: &mut WriteTransaction<'_>,
        key: &str,
        bucket: TokenBucket,
    ) -> Result<(), StoreError> {
        let value = rows::encode(BUDGETS, &bucket)?;
        tx.insert(&self.parts.budgets, key.as_bytes(), value);
        Ok(())
    }
}
