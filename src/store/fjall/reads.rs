//! [`StoreReads`] on fjall: single records by key, listings by pages from one snapshot.

use std::ops::Bound;

use async_trait::async_trait;
use fjall::TxPartitionHandle;

use super::rows::{self, AccountRow, AppRow, CertificateRow, ContractRow};
use super::{
    index_key, prefix_range, storage, FjallStore, ACCOUNTS, ACCOUNTS_BY_CONTRACT, APPS,
    CERTIFICATES, CONTRACTS, KEYS,
};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, ContractCode, HistoryEntry,
    KeyFingerprint, Serial,
};
use crate::store::{Cursor, HistoryQuery, Page, PageRequest, StoreError, StoreReads};

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

    /// A page of a partition in key order, the cursor being the last key returned.
    pub(super) fn page<T>(
        &self,
        part: &TxPartitionHandle,
        name: &str,
        page: &PageRequest,
        into: Convert<T>,
    ) -> Result<Page<T>, StoreError> {
        if page.limit == 0 {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let lower = match &page.after {
            Some(after) => Bound::Excluded(after.as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let snapshot = self.keyspace.read_tx();
        let mut items = Vec::new();
        let mut next = None;
        for item in snapshot.range(part, (lower, Bound::Unbounded)) {
            let (key, value) = item.map_err(|e| storage(name, e))?;
            items.push(into(name, &key, &value)?);
            if items.len() >= page.limit {
                next = Some(Cursor::new(key.to_vec()));
                break;
            }
        }
        Ok(Page { items, next })
    }

    /// A page of one contract's accounts, through `accounts_by_contract`, from one snapshot;
    /// the cursor is the last account ID returned.
    fn contract_accounts(
        &self,
        code: &ContractCode,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        if page.limit == 0 {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let prefix = code.as_str().as_bytes();
        let (start, end) = prefix_range(prefix);
        let lower = match &page.after {
            Some(after) => Bound::Excluded(index_key(prefix, after.as_bytes())),
            None => Bound::Included(start),
        };
        let snapshot = self.keyspace.read_tx();
        let mut items = Vec::new();
        let mut next = None;
        for item in snapshot.range(
            &self.parts.accounts_by_contract,
            (lower, Bound::Excluded(end)),
        ) {
            let (key, _) = item.map_err(|e| storage(ACCOUNTS_BY_CONTRACT, e))?;
            let id = key.get(prefix.len() + 1..).unwrap_or_default();
            let row = snapshot
                .get(&self.parts.accounts, id)
                .map_err(|e| storage(ACCOUNTS, e))?;
            // An index entry whose account is gone would be a bug; skip it rather than fail.
            if let Some(bytes) = row {
                items.push(account(ACCOUNTS, id, &bytes)?);
            }
            if items.len() >= page.limit {
                next = Some(Cursor::new(id.to_vec()));
                break;
            }
        }
        Ok(Page { items, next })
    }
}

/// An account row.
pub(super) fn account(name: &str, key: &[u8], bytes: &[u8]) -> Result<Account, StoreError> {
    rows::read(name, key, bytes, AccountRow::into_account)
}

/// A contract row.
pub(super) fn contract(name: &str, key: &[u8], bytes: &[u8]) -> Result<Contract, StoreError> {
    rows::read(name, key, bytes, ContractRow::into_contract)
}

/// A certificate row.
pub(super) fn certificate(
    name: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<CertificateRecord, StoreError> {
    rows::read(name, key, bytes, CertificateRow::into_record)
}

/// An application row.
pub(super) fn app(name: &str, key: &[u8], bytes: &[u8]) -> Result<App, StoreError> {
    rows::read(name, key, bytes, AppRow::into_app)
}

#[async_trait]
impl StoreReads for FjallStore {
    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError> {
        self.get(
            &self.parts.contracts,
            CONTRACTS,
            code.as_str().as_bytes(),
            contract,
        )
    }

    async fn contracts(&self, page: PageRequest) -> Result<Page<Contract>, StoreError> {
        self.page(&self.parts.contracts, CONTRACTS, &page, contract)
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.get(
            &self.parts.accounts,
            ACCOUNTS,
            id.as_str().as_bytes(),
            account,
        )
    }

    async fn accounts(
        &self,
        contract: Option<&ContractCode>,
        page: PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        match contract {
            Some(code) => self.contract_accounts(code, &page),
            None => self.page(&self.parts.accounts, ACCOUNTS, &page, account),
        }
    }

    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        self.get(
            &self.parts.certificates,
            CERTIFICATES,
            serial.as_bytes(),
            certificate,
        )
    }

    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError> {
        self.get(&self.parts.keys, KEYS, &key.0, rows::serial)
    }

    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        self.get(&self.parts.apps, APPS, name.as_str().as_bytes(), app)
    }

    async fn apps(&self, page: PageRequest) -> Result<Page<App>, StoreError> {
        self.page(&self.parts.apps, APPS, &page, app)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Page<HistoryEntry>, StoreError> {
        self.history_page(query)
    }
}
