//! [`StoreReads`] on fjall: single records by key, listings by pages from one snapshot.

use std::ops::Bound;

use async_trait::async_trait;
use fjall::TxPartitionHandle;

use super::{
    storage, FjallStore, ACCOUNTS, ACCOUNTS_BY_CONTRACT, APPS, CERTIFICATES, CONTRACTS, KEYS,
};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, ContractCode, HistoryEntry,
    KeyFingerprint, Serial,
};
use crate::store::listing::{index_page, index_page_range, table_page, table_page_start, Listing};
use crate::store::rows::{self, Stored};
use crate::store::{HistoryQuery, Page, PageRequest, StoreError, StoreReads};

/// Turns a row read from a partition at a key into the domain value.
pub(super) type Convert<T> = fn(&str, &[u8], &[u8]) -> Result<T, StoreError>;

impl FjallStore {
    /// Reads and converts one value of the latest committed state.
    pub(super) fn get<T>(
        &self,
        part: &TxPartitionHandle,
        name: &str,
        key: &[u8],
        into: Convert<T>,
    ) -> Result<Option<T>, StoreError> {
        part.get(key)
            .map_err(|e| storage(name, e))?
            .map(|bytes| into(name, key, &bytes))
            .transpose()
    }

    /// A page of a partition in key order, from one snapshot; the cursor holds the last key
    /// returned.
    pub(super) fn page<T: Stored>(
        &self,
        part: &TxPartitionHandle,
        name: &str,
        listing: Listing,
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let snapshot = self.keyspace.read_tx();
        let rows = snapshot
            .range(part, (table_page_start(page, listing)?, Bound::Unbounded))
            .map(|row| row.map_err(|e| storage(name, e)));
        table_page(rows, listing, page.limit)
    }

    /// A page of one contract's accounts, through `accounts_by_contract`, from one snapshot;
    /// the cursor holds the last account ID returned.
    fn contract_accounts(
        &self,
        code: &ContractCode,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let prefix = code.as_str().as_bytes();
        let listing = Listing::ContractAccounts;
        let snapshot = self.keyspace.read_tx();
        let entries = snapshot
            .range(
                &self.parts.accounts_by_contract,
                index_page_range(prefix, page, listing)?,
            )
            .map(|entry| {
                entry
                    .map(|(key, _)| key)
                    .map_err(|e| storage(ACCOUNTS_BY_CONTRACT, e))
            });
        index_page(entries, prefix, listing, page.limit, |id| {
            snapshot
                .get(&self.parts.accounts, id)
                .map_err(|e| storage(ACCOUNTS, e))?
                .map(|bytes| Account::decode(id, &bytes))
                .transpose()
        })
    }
}

/// A row decoded as the model type its partition stores (a [`Convert`]).
pub(super) fn decoded<T: Stored>(_: &str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    T::decode(key, bytes)
}

#[async_trait]
impl StoreReads for FjallStore {
    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError> {
        self.get(
            &self.parts.contracts,
            CONTRACTS,
            code.as_str().as_bytes(),
            decoded,
        )
    }

    async fn contracts(&self, page: PageRequest) -> Result<Page<Contract>, StoreError> {
        self.page(&self.parts.contracts, CONTRACTS, Listing::Contracts, &page)
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.get(
            &self.parts.accounts,
            ACCOUNTS,
            id.as_str().as_bytes(),
            decoded,
        )
    }

    async fn accounts(
        &self,
        contract: Option<&ContractCode>,
        page: PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        match contract {
            Some(code) => self.contract_accounts(code, &page),
            None => self.page(&self.parts.accounts, ACCOUNTS, Listing::Accounts, &page),
        }
    }

    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        self.get(
            &self.parts.certificates,
            CERTIFICATES,
            serial.as_bytes(),
            decoded,
        )
    }

    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError> {
        self.get(&self.parts.keys, KEYS, &key.0, rows::serial)
    }

    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        self.get(&self.parts.apps, APPS, name.as_str().as_bytes(), decoded)
    }

    async fn apps(&self, page: PageRequest) -> Result<Page<App>, StoreError> {
        self.page(&self.parts.apps, APPS, Listing::Apps, &page)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Page<HistoryEntry>, StoreError> {
        self.history_page(query)
    }
}
