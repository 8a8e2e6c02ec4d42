//! Contracts, accounts and their edits, and the failed-login count.

use super::history::append;
use super::issuance::revoke_certificate;
use super::{index_key, SledStore, ACCOUNTS, ACCOUNTS_BY_CONTRACT, ACCOUNT_IDS_FOLDED};
use super::{CERTIFICATES, CONTRACTS, REVOKED};
use crate::model::{Account, AccountId, Contract, ContractCode, HistoryEvent};
use crate::store::rows::Stored;
use crate::store::{rules, AccountChange, PasswordAttempt, StoreError};

impl SledStore {
    pub(super) fn create_contract_now(
        &self,
        contract: &Contract,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = contract.code.as_str().as_bytes();
        self.staged(|staged| {
            let contracts = staged.tree(&self.contracts, CONTRACTS);
            rules::new_contract(contract, contracts.read(key)?.is_some())?;
            contracts.put(key, &contract.encode()?);
            append(&self.staged_history(staged), &self.history_seq, event)?;
            Ok(())
        })
    }

    pub(super) fn set_contract_server_keygen_now(
        &self,
        code: &ContractCode,
        server_keygen: bool,
        event: &HistoryEvent,
    ) -> Result<Contract, StoreError> {
        let key = code.as_str().as_bytes();
        self.staged(|staged| {
            let contracts = staged.tree(&self.contracts, CONTRACTS);
            let contract = rules::contract_options(contracts.read_row(key)?, code, server_keygen)?;
            contracts.put(key, &contract.encode()?);
            append(&self.staged_history(staged), &self.history_seq, event)?;
            Ok(contract)
        })
    }

    pub(super) fn create_account_now(
        &self,
        account: &Account,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = account.id.as_str().as_bytes();
        let folded = account.id.case_folded();
        let contract_key = account.contract.as_str().as_bytes();
        self.staged(|staged| {
            let accounts = staged.tree(&self.accounts, ACCOUNTS);
            let folded_ids = staged.tree(&self.account_ids_folded, ACCOUNT_IDS_FOLDED);
            let account = rules::new_account(
                account,
                staged
                    .tree(&self.contracts, CONTRACTS)
                    .read(contract_key)?
                    .is_some(),
                accounts.read(key)?.is_some() || folded_ids.read(folded.as_bytes())?.is_some(),
            )?;
            accounts.put(key, &account.encode()?);
            folded_ids.put(folded.as_bytes(), key);
            staged
                .tree(&self.accounts_by_contract, ACCOUNTS_BY_CONTRACT)
                .put(&index_key(contract_key, key), &[]);
            append(&self.staged_history(staged), &self.history_seq, event)?;
            Ok(())
        })
    }

    pub(super) fn count_password_attempt_now(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<(PasswordAttempt, bool), StoreError> {
        let key = id.as_str().as_bytes();
        self.staged(|staged| {
            let accounts = staged.tree(&self.accounts, ACCOUNTS);
            let attempt = rules::count_password_attempt(accounts.read_row(key)?, limit);
            let PasswordAttempt::Counted(counted) = &attempt else {
                return Ok((attempt, false));
            };
            accounts.put(key, &counted.encode()?);
            Ok((attempt, true))
        })
    }

    pub(super) fn clear_password_attempts_now(
        &self,
        id: &AccountId,
    ) -> Result<(Account, bool), StoreError> {
        let key = id.as_str().as_bytes();
        self.staged(|staged| {
            let accounts = staged.tree(&self.accounts, ACCOUNTS);
            let stored = rules::existing_account(accounts.read_row(key)?, id)?;
            let (cleared, changed) = rules::clear_password_attempts(stored);
            if changed {
                accounts.put(key, &cleared.encode()?);
            }
            Ok((cleared, changed))
        })
    }

    /// Applies an account change; returns the account as stored and whether a certificate
    /// was revoked.
    pub(super) fn update_account_now(&self, change: &AccountChange) -> Result<Account, StoreError> {
        let AccountChange {
            id, revoke, events, ..
        } = change;
        let key = id.as_str().as_bytes();
        self.staged(|staged| {
            let accounts = staged.tree(&self.accounts, ACCOUNTS);
            let account = rules::apply_change(accounts.read_row(key)?, change)?;
            if let Some((serial, revocation)) = revoke {
                let certificates = staged.tree(&self.certificates, CERTIFICATES);
                let stored = certificates.read_row(serial.as_bytes())?;
                revoke_certificate(
                    &certificates,
                    &staged.tree(&self.revoked, REVOKED),
                    id,
                    serial,
                    stored,
                    *revocation,
                )?;
            }
            accounts.put(key, &account.encode()?);
            let history = self.staged_history(staged);
            for event in events {
                append(&history, &self.history_seq, event)?;
            }
            Ok(account)
        })
    }
}
