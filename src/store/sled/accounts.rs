//! Contracts, accounts and their edits, the failed-login count, and budgets.

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;
use time::OffsetDateTime;

use super::history::{append, HistoryTx};
use super::issuance::revoke_certificate;
use super::rows::{decode, encode};
use super::{abort, from_tx, index_key, tx, tx_read, SledStore, ACCOUNTS, BUDGETS, CONTRACTS};
use crate::model::{Account, AccountId, Contract, HistoryEvent};
use crate::store::{AccountChange, AccountEdit, Budget, BudgetSpend, PasswordAttempt, StoreError};

impl SledStore {
    pub(super) fn create_contract_now(
        &self,
        contract: &Contract,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = contract.code.as_str().as_bytes();
        let value = encode(CONTRACTS, contract)?;
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
        let value = encode(ACCOUNTS, &account)?;
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
                let Some(stored) = tx_read(accounts, ACCOUNTS, key, decode::<Account>)? else {
                    return Ok((PasswordAttempt::UnknownId, false));
                };
                if stored.locked || stored.failed_attempts >= limit {
                    return Ok((PasswordAttempt::OverLimit(stored), false));
                }
                let counted = Account {
                    failed_attempts: stored.failed_attempts + 1,
                    ..stored
                };
                accounts.insert(key, tx(encode(ACCOUNTS, &counted))?)?;
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
                let stored =
                    tx_read(accounts, ACCOUNTS, key, decode::<Account>)?.ok_or_else(|| {
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
                accounts.insert(key, tx(encode(ACCOUNTS, &cleared))?)?;
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
                    let mut account = tx_read(accounts, ACCOUNTS, key, decode::<Account>)?
                        .ok_or_else(|| {
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
                    accounts.insert(key, tx(encode(ACCOUNTS, &account))?)?;
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

    pub(super) fn take_from_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<BudgetSpend, StoreError> {
        self.budgets
            .transaction(|budgets| {
                let mut bucket = tx_read(budgets, BUDGETS, key.as_bytes(), decode::<TokenBucket>)?
                    .unwrap_or_else(|| TokenBucket::full(budget, now));
                let spend = bucket.take(budget, now);
                budgets.insert(key.as_bytes(), tx(encode(BUDGETS, &bucket))?)?;
                Ok(spend)
            })
            .map_err(from_tx)
    }

    pub(super) fn refund_to_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.budgets
            .transaction(|budgets| {
                if let Some(mut bucket) =
                    tx_read(budgets, BUDGETS, key.as_bytes(), decode::<TokenBucket>)?
                {
                    bucket.refund(budget, now);
                    budgets.insert(key.as_bytes(), tx(encode(BUDGETS, &bucket))?)?;
                }
                Ok(())
            })
            .map_err(from_tx)
    }
}

/// A [`Budget`]'s state as the `budgets` tree keeps it.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct TokenBucket {
    tokens: f64,
    /// When `tokens` was last brought up to date, Unix time in milliseconds.
    updated_ms: i64,
}

impl TokenBucket {
    fn full(budget: Budget, now: OffsetDateTime) -> Self {
        Self {
            tokens: f64::from(budget.capacity),
            updated_ms: unix_ms(now),
        }
    }

    fn refill(&mut self, budget: Budget, now: OffsetDateTime) {
        let capacity = f64::from(budget.capacity);
        let per_ms = capacity / (budget.window.as_millis().max(1) as f64);
        let now_ms = unix_ms(now);
        let elapsed = now_ms.saturating_sub(self.updated_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * per_ms).min(capacity);
        self.updated_ms = self.updated_ms.max(now_ms);
    }

    fn take(&mut self, budget: Budget, now: OffsetDateTime) -> BudgetSpend {
        self.refill(budget, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return BudgetSpend::Taken;
        }
        let per_sec = f64::from(budget.capacity) / budget.window.as_secs_f64().max(0.001);
        let wait = if per_sec > 0.0 {
            (1.0 - self.tokens) / per_sec
        } else {
            budget.window.as_secs_f64()
        };
        BudgetSpend::Exhausted {
            retry_after_secs: (wait.ceil() as u64).max(1),
        }
    }

    fn refund(&mut self, budget: Budget, now: OffsetDateTime) {
        self.refill(budget, now);
        self.tokens = (self.tokens + 1.0).min(f64::from(budget.capacity));
    }
}

/// An instant as Unix milliseconds.
pub(super) fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000).clamp(i64::MIN.into(), i64::MAX.into()) as i64
}
