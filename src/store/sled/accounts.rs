//! Contracts, accounts and their edits, and the failed-login count.

use sled::Transactional;

use super::history::append;
use super::issuance::revoke_certificate;
use super::{from_tx, index_key, tx, tx_get, SledStore};
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
        let value = contract.encode()?;
        let [history, by_account, by_contract] = self.history_trees();
        (&self.contracts, history, by_account, by_contract)
            .transaction(|(contracts, history, by_account, by_contract)| {
                tx(rules::new_contract(contract, contracts.get(key)?.is_some()))?;
                contracts.insert(key, value.as_slice())?;
                append([history, by_account, by_contract], &self.history_seq, event)?;
                Ok(())
            })
            .map_err(from_tx)
    }

    pub(super) fn set_contract_server_keygen_now(
        &self,
        code: &ContractCode,
        server_keygen: bool,
        event: &HistoryEvent,
    ) -> Result<Contract, StoreError> {
        let key = code.as_str().as_bytes();
        let [history, by_account, by_contract] = self.history_trees();
        (&self.contracts, history, by_account, by_contract)
            .transaction(|(contracts, history, by_account, by_contract)| {
                let contract = tx(rules::contract_options(
                    tx_get(contracts, key)?,
                    code,
                    server_keygen,
                ))?;
                contracts.insert(key, tx(contract.encode())?)?;
                append([history, by_account, by_contract], &self.history_seq, event)?;
                Ok(contract)
            })
            .map_err(from_tx)
    }

    pub(super) fn create_account_now(
        &self,
        account: &Account,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = account.id.as_str().as_bytes();
        let folded = account.id.case_folded();
        let contract_key = account.contract.as_str().as_bytes();
        let by_contract_key = index_key(contract_key, key);
        let [history, by_account, by_contract] = self.history_trees();
        (
            &self.contracts,
            &self.accounts,
            &self.account_ids_folded,
            &self.accounts_by_contract,
            history,
            by_account,
            by_contract,
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
                )| {
                    let account = tx(rules::new_account(
                        account,
                        contracts.get(contract_key)?.is_some(),
                        accounts.get(key)?.is_some()
                            || folded_ids.get(folded.as_bytes())?.is_some(),
                    ))?;
                    accounts.insert(key, tx(account.encode())?)?;
                    folded_ids.insert(folded.as_bytes(), key)?;
                    accounts_by_contract.insert(by_contract_key.as_slice(), &[])?;
                    append([history, by_account, by_contract], &self.history_seq, event)?;
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
                let attempt = rules::count_password_attempt(tx_get(accounts, key)?, limit);
                let PasswordAttempt::Counted(counted) = &attempt else {
                    return Ok((attempt, false));
                };
                accounts.insert(key, tx(counted.encode())?)?;
                Ok((attempt, true))
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
                let stored = tx(rules::existing_account(tx_get(accounts, key)?, id))?;
                let (cleared, changed) = rules::clear_password_attempts(stored);
                if changed {
                    accounts.insert(key, tx(cleared.encode())?)?;
                }
                Ok((cleared, changed))
            })
            .map_err(from_tx)
    }

    /// Applies an account change; returns the account as stored and whether a certificate
    /// was revoked.
    pub(super) fn update_account_now(&self, change: &AccountChange) -> Result<Account, StoreError> {
        let AccountChange {
            id, revoke, events, ..
        } = change;
        let key = id.as_str().as_bytes();
        let [history, by_account, by_contract] = self.history_trees();
        (
            &self.accounts,
            &self.certificates,
            &self.revoked,
            history,
            by_account,
            by_contract,
        )
            .transaction(
                |(accounts, certificates, revoked, history, by_account, by_contract)| {
                    let account = tx(rules::apply_change(tx_get(accounts, key)?, change))?;
                    if let Some((serial, revocation)) = revoke {
                        revoke_certificate(certificates, revoked, id, serial, *revocation)?;
                    }
                    accounts.insert(key, tx(account.encode())?)?;
                    for event in events {
                        append([history, by_account, by_contract], &self.history_seq, event)?;
                    }
                    Ok(account)
                },
            )
            .map_err(from_tx)
    }
}
