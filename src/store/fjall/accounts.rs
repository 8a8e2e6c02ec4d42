//! Contracts, accounts and their edits, the failed-login count, and budgets.

use fjall::WriteTransaction;
use time::OffsetDateTime;

use super::{
    index_key, storage, tx_get, FjallStore, ACCOUNTS, ACCOUNT_IDS_FOLDED, BUDGETS, CONTRACTS,
};
use crate::model::{Account, AccountId, Contract, ContractCode, HistoryEvent};
use crate::store::budget::TokenBucket;
use crate::store::rows::Stored;
use crate::store::{rules, AccountChange, Budget, BudgetSpend, PasswordAttempt, StoreError};

impl FjallStore {
    /// The account as the transaction sees it.
    pub(super) fn tx_account(
        &self,
        tx: &WriteTransaction<'_>,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        let key = id.as_str().as_bytes();
        tx_get(tx, &self.parts.accounts, ACCOUNTS, key)?
            .map(|bytes| Account::decode(key, &bytes))
            .transpose()
    }

    /// Writes the account in the transaction.
    pub(super) fn tx_put_account(
        &self,
        tx: &mut WriteTransaction<'_>,
        account: &Account,
    ) -> Result<(), StoreError> {
        let value = Account::encode(account)?;
        tx.insert(&self.parts.accounts, account.id.as_str().as_bytes(), value);
        Ok(())
    }

    pub(super) fn create_contract_now(
        &self,
        contract: &Contract,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = contract.code.as_str().as_bytes();
        let value = Contract::encode(contract)?;
        self.transact(|tx| {
            let taken = tx_get(tx, &self.parts.contracts, CONTRACTS, key)?.is_some();
            rules::new_contract(contract, taken)?;
            tx.insert(&self.parts.contracts, key, value);
            self.append(tx, event)?;
            Ok(((), true))
        })
        .map(|(out, _)| out)
    }

    pub(super) fn set_contract_server_keygen_now(
        &self,
        code: &ContractCode,
        server_keygen: bool,
        event: &HistoryEvent,
    ) -> Result<Contract, StoreError> {
        let key = code.as_str().as_bytes();
        self.transact(|tx| {
            let stored = tx_get(tx, &self.parts.contracts, CONTRACTS, key)?
                .map(|bytes| Contract::decode(key, &bytes))
                .transpose()?;
            let contract = rules::contract_options(stored, code, server_keygen)?;
            tx.insert(&self.parts.contracts, key, contract.encode()?);
            self.append(tx, event)?;
            Ok((contract, true))
        })
        .map(|(out, _)| out)
    }

    pub(super) fn create_account_now(
        &self,
        account: &Account,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = account.id.as_str().as_bytes();
        let folded = account.id.case_folded();
        let contract_key = account.contract.as_str().as_bytes();
        self.transact(|tx| {
            let contract_exists =
                tx_get(tx, &self.parts.contracts, CONTRACTS, contract_key)?.is_some();
            let id_taken = tx_get(tx, &self.parts.accounts, ACCOUNTS, key)?.is_some()
                || tx_get(
                    tx,
                    &self.parts.account_ids_folded,
                    ACCOUNT_IDS_FOLDED,
                    folded.as_bytes(),
                )?
                .is_some();
            let account = rules::new_account(account, contract_exists, id_taken)?;
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
        .map(|(out, _)| out)
    }

    pub(super) fn count_password_attempt_now(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<(PasswordAttempt, bool), StoreError> {
        self.transact(|tx| {
            let attempt = rules::count_password_attempt(self.tx_account(tx, id)?, limit);
            let PasswordAttempt::Counted(counted) = &attempt else {
                return Ok((attempt, false));
            };
            self.tx_put_account(tx, counted)?;
            Ok((attempt, true))
        })
    }

    pub(super) fn clear_password_attempts_now(
        &self,
        id: &AccountId,
    ) -> Result<(Account, bool), StoreError> {
        self.transact(|tx| {
            let stored = rules::existing_account(self.tx_account(tx, id)?, id)?;
            let (cleared, changed) = rules::clear_password_attempts(stored);
            if changed {
                self.tx_put_account(tx, &cleared)?;
            }
            Ok((cleared, changed))
        })
    }

    /// Applies an account change; returns the account as stored.
    pub(super) fn update_account_now(&self, change: &AccountChange) -> Result<Account, StoreError> {
        let AccountChange {
            id, revoke, events, ..
        } = change;
        self.transact(|tx| {
            let account = rules::apply_change(self.tx_account(tx, id)?, change)?;
            if let Some((serial, revocation)) = revoke {
                self.revoke_certificate(tx, id, serial, *revocation)?;
            }
            self.tx_put_account(tx, &account)?;
            for event in events {
                self.append(tx, event)?;
            }
            Ok((account, true))
        })
        .map(|(out, _)| out)
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
            // A refusal changes nothing that the refill would not compute again.
            let taken = spend == BudgetSpend::Taken;
            if taken {
                self.tx_put_bucket(tx, key, bucket)?;
            }
            Ok((spend, taken))
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

    pub(super) fn forget_refilled_budgets_now(
        &self,
        prefix: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.transact(|tx| {
            let mut refilled = Vec::new();
            for entry in tx.prefix(&self.parts.budgets, prefix.as_bytes()) {
                let (key, value) = entry.map_err(|e| storage(BUDGETS, e))?;
                if TokenBucket::decode(&key, &value)?.refilled(budget, now) {
                    refilled.push(key);
                }
            }
            for key in &refilled {
                tx.remove(&self.parts.budgets, key.clone());
            }
            let forgotten = refilled.len() as u64;
            Ok((forgotten, forgotten > 0))
        })
        .map(|(out, _)| out)
    }

    fn tx_bucket(
        &self,
        tx: &WriteTransaction<'_>,
        key: &str,
    ) -> Result<Option<TokenBucket>, StoreError> {
        tx_get(tx, &self.parts.budgets, BUDGETS, key.as_bytes())?
            .map(|bytes| TokenBucket::decode(key.as_bytes(), &bytes))
            .transpose()
    }

    fn tx_put_bucket(
        &self,
        tx: &mut WriteTransaction<'_>,
        key: &str,
        bucket: TokenBucket,
    ) -> Result<(), StoreError> {
        let value = bucket.encode()?;
        tx.insert(&self.parts.budgets, key.as_bytes(), value);
        Ok(())
    }
}
