//! [`StoreReads`] on sled: single records by key, listings by pages.

use std::ops::Bound;

use async_trait::async_trait;
use sled::Tree;

use super::{storage, SledStore, ACCOUNTS_BY_CONTRACT, KEYS};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, ContractCode, HistoryEntry,
    KeyFingerprint, Serial,
};
use crate::store::listing::{index_page, index_page_range, table_page, table_page_start, Listing};
use crate::store::rows::{self, Stored};
use crate::store::{HistoryQuery, Page, PageRequest, StoreError, StoreReads};

impl SledStore {
    /// A page of a tree in key order; the cursor holds the last key returned.
    pub(super) fn page<T: Stored>(
        &self,
        tree: &Tree,
        listing: Listing,
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let rows = tree
            .range::<Vec<u8>, _>((table_page_start(page, listing)?, Bound::Unbounded))
            .map(|row| row.map_err(|e| storage(T::TABLE, e)));
        table_page(rows, listing, page.limit)
    }

    /// A page of one contract's accounts, through `accounts_by_contract`; the cursor holds
    /// the last account ID returned.
    fn contract_accounts(
        &self,
        code: &ContractCode,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let prefix = code.as_str().as_bytes();
        let listing = Listing::ContractAccounts;
        let entries = self
            .accounts_by_contract
            .range::<Vec<u8>, _>(index_page_range(prefix, page, listing)?)
            .map(|entry| {
                entry
                    .map(|(key, _)| key)
                    .map_err(|e| storage(ACCOUNTS_BY_CONTRACT, e))
            });
        index_page(entries, prefix, listing, page.limit, |id| {
            self.get::<Account>(&self.accounts, id)
        })
    }
}

#[async_trait]
impl StoreReads for SledStore {
    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError> {
        self.get(&self.contracts, code.as_str().as_bytes())
    }

    async fn contracts(&self, page: PageRequest) -> Result<Page<Contract>, StoreError> {
        self.page(&self.contracts, Listing::Contracts, &page)
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.get(&self.accounts, id.as_str().as_bytes())
    }

    async fn accounts(
        &self,
        contract: Option<&ContractCode>,
        page: PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        match contract {
            Some(code) => self.contract_accounts(code, &page),
            None => self.page(&self.accounts, Listing::Accounts, &page),
        }
    }

    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        self.get(&self.certificates, serial.as_bytes())
    }

    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError> {
        match self.keys.get(key.0).map_err(|e| storage(KEYS, e))? {
            Some(bytes) => rows::serial(KEYS, &key.0, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        self.get(&self.apps, name.as_str().as_bytes())
    }

    async fn apps(&self, page: PageRequest) -> Result<Page<App>, StoreError> {
        self.page(&self.apps, Listing::Apps, &page)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Page<HistoryEntry>, StoreError> {
        self.history_page(query)
    }
}
