//! [`StoreReads`] on sled: single records by key, listings by pages.

use std::ops::Bound;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sled::Tree;

use super::rows::{decode, decode_serial};
use super::{
    index_key, prefix_range, storage, SledStore, ACCOUNTS, ACCOUNTS_BY_CONTRACT, APPS,
    CERTIFICATES, CONTRACTS, KEYS,
};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, ContractCode, HistoryEntry,
    KeyFingerprint, Serial,
};
use crate::store::{Cursor, HistoryQuery, Page, PageRequest, StoreError, StoreReads};

impl SledStore {
    /// Reads and decodes one value outside a transaction.
    pub(super) fn get<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        name: &str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(|e| storage(name, e))? {
            Some(bytes) => decode(name, key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// A page of a tree in key order, the cursor being the last key returned.
    pub(super) fn page<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        name: &str,
        page: &PageRequest,
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
        let mut items = Vec::new();
        let mut last_key = None;
        for item in tree.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
            let (key, value) = item.map_err(|e| storage(name, e))?;
            items.push(decode(name, &key, &value)?);
            if items.len() >= page.limit {
                last_key = Some(key.to_vec());
                break;
            }
        }
        Ok(Page {
            items,
            next: last_key.map(Cursor::new),
        })
    }

    /// A page of one contract's accounts, through `accounts_by_contract`; the cursor is the
    /// last account ID returned.
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
        let mut items = Vec::new();
        let mut next = None;
        for item in self
            .accounts_by_contract
            .range::<Vec<u8>, _>((lower, Bound::Excluded(end)))
        {
            let (key, _) = item.map_err(|e| storage(ACCOUNTS_BY_CONTRACT, e))?;
            let id = key.get(prefix.len() + 1..).unwrap_or_default();
            // An index entry whose account is gone would be a bug; skip it rather than fail.
            if let Some(account) = self.get::<Account>(&self.accounts, ACCOUNTS, id)? {
                items.push(account);
            }
            if items.len() >= page.limit {
                next = Some(Cursor::new(id.to_vec()));
                break;
            }
        }
        Ok(Page { items, next })
    }
}

#[async_trait]
impl StoreReads for SledStore {
    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError> {
        self.get(&self.contracts, CONTRACTS, code.as_str().as_bytes())
    }

    async fn contracts(&self, page: PageRequest) -> Result<Page<Contract>, StoreError> {
        self.page(&self.contracts, CONTRACTS, &page)
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.get(&self.accounts, ACCOUNTS, id.as_str().as_bytes())
    }

    async fn accounts(
        &self,
        contract: Option<&ContractCode>,
        page: PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        match contract {
            Some(code) => self.contract_accounts(code, &page),
            None => self.page(&self.accounts, ACCOUNTS, &page),
        }
    }

    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        self.get(&self.certificates, CERTIFICATES, serial.as_bytes())
    }

    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError> {
        match self.keys.get(key.0).map_err(|e| storage(KEYS, e))? {
            Some(bytes) => decode_serial(KEYS, &key.0, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        self.get(&self.apps, APPS, name.as_str().as_bytes())
    }

    async fn apps(&self, page: PageRequest) -> Result<Page<App>, StoreError> {
        self.page(&self.apps, APPS, &page)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Page<HistoryEntry>, StoreError> {
        self.history_page(query)
    }
}
