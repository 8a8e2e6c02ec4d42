//! Contracts, accounts and their edits, the failed-login count, and budgets: each one
//! transaction that locks the rows it decides on (`FOR UPDATE`) and writes the account back
//! with a compare-and-swap on its version.

use deadpool_postgres::Transaction;
use time::OffsetDateTime;

use super::history::append;
use super::rows::{self, ACCOUNT};
use super::{begin, commit, db, PostgresStore};
use crate::model::{Account, AccountId, Contract, HistoryEvent};
use crate::store::budget::TokenBucket;
use crate::store::{AccountChange, AccountEdit, Budget, BudgetSpend, PasswordAttempt, StoreError};

/// Reads an account and locks its row until the transaction ends.
pub(super) async fn lock_account(
    tx: &Transaction<'_>,
    id: &AccountId,
) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT} FROM accounts WHERE id = $1 FOR UPDATE");
    let statement = tx.prepare_cached(&sql).await.map_err(db)?;
    tx.query_opt(&statement, &[&id.as_str()])
        .await
        .map_err(db)?
        .as_ref()
        .map(rows::account)
        .transpose()
}

/// Writes what a decision may change of an account (name, password, lock, failed attempts,
/// choice, current certificate, issued count, version) if its version is still
/// `expected_version`; [`StoreError::Conflict`] otherwise.
pub(super) async fn write_account(
    tx: &Transaction<'_>,
    account: &Account,
    expected_version: u64,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "UPDATE accounts SET name = $3, password_hash = $4, failed_attempts = $5, \
             locked = $6, choice = $7, current_certificate = $8, issued_count = $9, \
             version = $10 WHERE id = $1 AND version = $2",
        )
        .await
        .map_err(db)?;
    let updated = tx
        .execute(
            &statement,
            &[
                &account.id.as_str(),
                &rows::to_i64(expected_version)?,
                &account.name,
                &account.password_hash,
                &i64::from(account.failed_attempts),
                &account.locked,
                &rows::name_of(&account.choice)?,
                &account.current_certificate.as_ref().map(|s| &s.as_bytes()[..]),
                &i64::from(account.issued_count),
                &rows::to_i64(account.version)?,
            ],
        )
        .await
        .map_err(db)?;
    if updated == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Sets the failed-login count of a locked account row (not a decision: the version stays).
async fn write_failed_attempts(tx: &Transaction<'_>, account: &Account) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached("UPDATE accounts SET failed_attempts = $2 WHERE id = $1")
        .await
        .map_err(db)?;
    tx.execute(
        &statement,
        &[&account.id.as_str(), &i64::from(account.failed_attempts)],
    )
    .await
    .map_err(db)?;
    Ok(())
}

impl PostgresStore {
    pub(super) async fn create_contract_now(
        &self,
        contract: &Contract,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let (created_at, created_at_ns) = rows::split(contract.created_at);
        let inserted = tx
            .execute(
                "INSERT INTO contracts (code, name, created_at, created_at_ns) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &contract.code.as_str(),
                    &contract.name,
                    &created_at,
                    &created_at_ns,
                ],
            )
            .await
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(format!(
                "contract {}",
                contract.code
            )));
        }
        append(&tx, &[event]).await?;
        commit(tx).await
    }

    pub(super) async fn create_account_now(
        &self,
        account: &Account,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let contract_exists = tx
            .query_opt(
                "SELECT 1 FROM contracts WHERE code = $1",
                &[&account.contract.as_str()],
            )
            .await
            .map_err(db)?
            .is_some();
        if !contract_exists {
            return Err(StoreError::NotFound(format!(
                "contract {}",
                account.contract
            )));
        }
        let taken = || StoreError::AlreadyExists(format!("account {}", account.id));
        let folded = tx
            .execute(
                "INSERT INTO account_ids_folded (folded) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&account.id.case_folded()],
            )
            .await
            .map_err(db)?;
        if folded == 0 {
            return Err(taken());
        }
        if insert_account(&tx, account, 0).await? == 0 {
            return Err(taken());
        }
        append(&tx, &[event]).await?;
        commit(tx).await
    }

    pub(super) async fn count_password_attempt_now(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<PasswordAttempt, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let Some(stored) = lock_account(&tx, id).await? else {
            return Ok(PasswordAttempt::UnknownId);
        };
        if stored.locked || stored.failed_attempts >= limit {
            return Ok(PasswordAttempt::OverLimit(stored));
        }
        let counted = Account {
            failed_attempts: stored.failed_attempts + 1,
            ..stored
        };
        write_failed_attempts(&tx, &counted).await?;
        commit(tx).await?;
        Ok(PasswordAttempt::Counted(counted))
    }

    pub(super) async fn clear_password_attempts_now(
        &self,
        id: &AccountId,
    ) -> Result<Account, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let stored = lock_account(&tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {id}")))?;
        if stored.locked || stored.failed_attempts == 0 {
            return Ok(stored);
        }
        let cleared = Account {
            failed_attempts: 0,
            ..stored
        };
        write_failed_attempts(&tx, &cleared).await?;
        commit(tx).await?;
        Ok(cleared)
    }

    /// Applies an account change; returns the account as stored and whether a certificate
    /// was revoked.
    pub(super) async fn update_account_now(
        &self,
        change: &AccountChange,
    ) -> Result<Account, StoreError> {
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
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let mut account = lock_account(&tx, id)
            .await?
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
            self.revoke_certificate(&tx, id, serial, *revocation)
                .await?;
        }
        write_account(&tx, &account, *expected_version).await?;
        append(&tx, &events.iter().collect::<Vec<_>>()).await?;
        commit(tx).await?;
        if revoke.is_some() {
            self.revoked_one();
        }
        Ok(account)
    }

    pub(super) async fn take_from_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<BudgetSpend, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let full = TokenBucket::full(budget, now);
        tx.execute(
            "INSERT INTO budgets (name, tokens, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[&key, &full.tokens, &full.updated_ms],
        )
        .await
        .map_err(db)?;
        let mut bucket = lock_bucket(&tx, key)
            .await?
            .ok_or_else(|| StoreError::Backend(format!("budget {key} vanished")))?;
        let spend = bucket.take(budget, now);
        write_bucket(&tx, key, bucket).await?;
        commit(tx).await?;
        Ok(spend)
    }

    pub(super) async fn refund_to_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        if let Some(mut bucket) = lock_bucket(&tx, key).await? {
            bucket.refund(budget, now);
            write_bucket(&tx, key, bucket).await?;
            commit(tx).await?;
        }
        Ok(())
    }
}

/// Inserts an account row with `version` (created accounts start at 0; restored ones keep
/// theirs); returns 0 when the ID is taken.
pub(super) async fn insert_account(
    tx: &Transaction<'_>,
    account: &Account,
    version: u64,
) -> Result<u64, StoreError> {
    let (created_at, created_at_ns) = rows::split(account.created_at);
    let statement = tx
        .prepare_cached(
            "INSERT INTO accounts (id, contract, role, name, password_hash, failed_attempts, \
             locked, choice, current_certificate, issued_count, version, created_at, \
             created_at_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &statement,
        &[
            &account.id.as_str(),
            &account.contract.as_str(),
            &rows::name_of(&account.role)?,
            &account.name,
            &account.password_hash,
            &i64::from(account.failed_attempts),
            &account.locked,
            &rows::name_of(&account.choice)?,
            &account.current_certificate.as_ref().map(|s| &s.as_bytes()[..]),
            &i64::from(account.issued_count),
            &rows::to_i64(version)?,
            &created_at,
            &created_at_ns,
        ],
    )
    .await
    .map_err(db)
}

async fn lock_bucket(tx: &Transaction<'_>, key: &str) -> Result<Option<TokenBucket>, StoreError> {
    tx.query_opt(
        "SELECT tokens, updated_ms FROM budgets WHERE name = $1 FOR UPDATE",
        &[&key],
    )
    .await
    .map_err(db)?
    .map(|row| {
        Ok(TokenBucket {
            tokens: rows::get(&row, "tokens")?,
            updated_ms: rows::get(&row, "updated_ms")?,
        })
    })
    .transpose()
}

async fn write_bucket(
    tx: &Transaction<'_>,
    key: &str,
    bucket: TokenBucket,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE budgets SET tokens = $2, updated_ms = $3 WHERE name = $1",
        &[&key, &bucket.tokens, &bucket.updated_ms],
    )
    .await
    .map_err(db)?;
    Ok(())
}
