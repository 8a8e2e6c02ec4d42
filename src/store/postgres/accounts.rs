//! Contracts, accounts and their edits, the failed-login count, and budgets: each one
//! transaction that locks the rows it decides on (`FOR UPDATE`) and writes the account back
//! with a compare-and-swap on its version.

use deadpool_postgres::Transaction;
use time::OffsetDateTime;

use super::history::append;
use super::rows::{self, ACCOUNT};
use super::{begin, commit, db, PostgresStore};
use crate::model::{Account, AccountId, Contract, ContractCode, HistoryEvent};
use crate::store::budget::TokenBucket;
use crate::store::rules;
use crate::store::{AccountChange, Budget, BudgetSpend, PasswordAttempt, StoreError};

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
             version = $10, removed_at = $11, removed_at_ns = $12 WHERE id = $1 AND version = $2",
        )
        .await
        .map_err(db)?;
    let removed = account.removed_at.map(rows::split);
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
                &account
                    .current_certificate
                    .as_ref()
                    .map(|s| &s.as_bytes()[..]),
                &i64::from(account.issued_count),
                &rows::to_i64(account.version)?,
                &removed.map(|(at, _)| at),
                &removed.map(|(_, ns)| ns),
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
                "INSERT INTO contracts (code, name, created_at, created_at_ns, server_keygen) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &contract.code.as_str(),
                    &contract.name,
                    &created_at,
                    &created_at_ns,
                    &contract.server_keygen,
                ],
            )
            .await
            .map_err(db)?;
        rules::new_contract(contract, inserted == 0)?;
        append(&tx, &[event]).await?;
        commit(tx).await
    }

    pub(super) async fn set_contract_server_keygen_now(
        &self,
        code: &ContractCode,
        server_keygen: bool,
        event: &HistoryEvent,
    ) -> Result<Contract, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let updated = tx
            .query_opt(
                &format!(
                    "UPDATE contracts SET server_keygen = $2 WHERE code = $1 RETURNING {}",
                    rows::CONTRACT
                ),
                &[&code.as_str(), &server_keygen],
            )
            .await
            .map_err(db)?
            .map(|row| rows::contract(&row))
            .transpose()?;
        let contract = rules::contract_options(updated, code, server_keygen)?;
        append(&tx, &[event]).await?;
        commit(tx).await?;
        Ok(contract)
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
        let folded_taken = contract_exists
            && tx
                .execute(
                    "INSERT INTO account_ids_folded (folded) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&account.id.case_folded()],
                )
                .await
                .map_err(db)?
                == 0;
        let account = rules::new_account(account, contract_exists, folded_taken)?;
        let inserted = insert_account(&tx, &account, account.version).await?;
        rules::new_account(&account, true, inserted == 0)?;
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
        let attempt = rules::count_password_attempt(lock_account(&tx, id).await?, limit);
        if let PasswordAttempt::Counted(counted) = &attempt {
            write_failed_attempts(&tx, counted).await?;
            commit(tx).await?;
        }
        Ok(attempt)
    }

    pub(super) async fn clear_password_attempts_now(
        &self,
        id: &AccountId,
    ) -> Result<Account, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let stored = rules::existing_account(lock_account(&tx, id).await?, id)?;
        let (account, changed) = rules::clear_password_attempts(stored);
        if changed {
            write_failed_attempts(&tx, &account).await?;
            commit(tx).await?;
        }
        Ok(account)
    }

    /// Applies an account change; returns the account as stored.
    pub(super) async fn update_account_now(
        &self,
        change: &AccountChange,
    ) -> Result<Account, StoreError> {
        let AccountChange {
            id,
            expected_version,
            revoke,
            events,
            ..
        } = change;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let account = rules::apply_change(lock_account(&tx, id).await?, change)?;
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
        // Inserted full, or the row there locked, in one statement: `ON CONFLICT DO UPDATE`
        // locks the existing row, and if a sweep of refilled budgets
        // (`forget_refilled_budgets_now`) deletes it meanwhile, inserts again. An insert that
        // does nothing and a separate `SELECT … FOR UPDATE` could find the row deleted
        // between the two, and answered an error.
        let row = tx
            .query_one(
                "INSERT INTO budgets (name, tokens, updated_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET tokens = budgets.tokens \
                 RETURNING tokens, updated_ms",
                &[&key, &full.tokens, &full.updated_ms],
            )
            .await
            .map_err(db)?;
        let mut bucket = TokenBucket {
            tokens: rows::get(&row, "tokens")?,
            updated_ms: rows::get(&row, "updated_ms")?,
        };
        let spend = bucket.take(budget, now);
        // A refusal changes nothing that the refill would not compute again.
        if spend == BudgetSpend::Taken {
            write_bucket(&tx, key, bucket).await?;
        }
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

    pub(super) async fn forget_refilled_budgets_now(
        &self,
        prefix: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // Rows another daemon is taking from right now are skipped, not waited for: they are
        // not full, or will be looked at by the next sweep.
        let rows = tx
            .query(
                "SELECT name, tokens, updated_ms FROM budgets WHERE starts_with(name, $1) \
                 FOR UPDATE SKIP LOCKED",
                &[&prefix],
            )
            .await
            .map_err(db)?;
        let mut refilled = Vec::new();
        for row in &rows {
            let bucket = TokenBucket {
                tokens: rows::get(row, "tokens")?,
                updated_ms: rows::get(row, "updated_ms")?,
            };
            if bucket.refilled(budget, now) {
                refilled.push(rows::get::<String>(row, "name")?);
            }
        }
        let forgotten = tx
            .execute("DELETE FROM budgets WHERE name = ANY($1)", &[&refilled])
            .await
            .map_err(db)?;
        commit(tx).await?;
        Ok(forgotten)
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
             created_at_ns, removed_at, removed_at_ns) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db)?;
    let removed = account.removed_at.map(rows::split);
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
            &account
                .current_certificate
                .as_ref()
                .map(|s| &s.as_bytes()[..]),
            &i64::from(account.issued_count),
            &rows::to_i64(version)?,
            &created_at,
            &created_at_ns,
            &removed.map(|(at, _)| at),
            &removed.map(|(_, ns)| ns),
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
