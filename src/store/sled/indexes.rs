//! The derived trees, built once at open for a database written before they existed.
//!
//! Every write keeps them in step with their source in the same atomic write; this only fills
//! them for data that predates them. `meta/indexes` records the version of the derived trees
//! the database has; a database below [`INDEXES_VERSION`] has them all rebuilt (inserts are
//! idempotent, so a rebuild interrupted by a crash is simply done again).

use super::history::META_HISTORY_SEQ;
use super::{
    index_key, storage, SledStore, ACCOUNTS, ACCOUNTS_BY_CONTRACT, ACCOUNT_IDS_FOLDED,
    CERTIFICATES, HISTORY, META, REVOKED, SERIALS,
};
use crate::model::{Account, CertificateRecord};
use crate::store::rows::{u64_be, Stored};
use crate::store::{RevokedCertificate, StoreError};

/// `meta` key of the derived trees' version.
pub(super) const META_INDEXES: &[u8] = b"indexes";

/// The version of the derived trees this build maintains.
const INDEXES_VERSION: u64 = 1;

impl SledStore {
    /// Builds the derived trees if the database predates them.
    pub(super) fn build_indexes(&self) -> Result<(), StoreError> {
        let version = match self.meta.get(META_INDEXES).map_err(|e| storage(META, e))? {
            Some(bytes) => u64_be(META, META_INDEXES, &bytes)?,
            None => 0,
        };
        if version >= INDEXES_VERSION {
            return Ok(());
        }
        for item in self.certificates.iter() {
            let (key, value) = item.map_err(|e| storage(CERTIFICATES, e))?;
            let record = CertificateRecord::decode(&key, &value)?;
            self.serials
                .insert(&key, &reserved_at(&record))
                .map_err(|e| storage(SERIALS, e))?;
            if let Some(revocation) = record.revocation {
                let entry = RevokedCertificate::of(&record, revocation).encode()?;
                self.revoked
                    .insert(&key, entry)
                    .map_err(|e| storage(REVOKED, e))?;
            }
        }
        for item in self.accounts.iter() {
            let (key, value) = item.map_err(|e| storage(ACCOUNTS, e))?;
            let account = Account::decode(&key, &value)?;
            self.index_account(&account)?;
        }
        let last_seq = match self.history.last().map_err(|e| storage(HISTORY, e))? {
            Some((key, _)) => u64_be(HISTORY, &key, &key)?,
            None => 0,
        };
        let counted = match self
            .meta
            .get(META_HISTORY_SEQ)
            .map_err(|e| storage(META, e))?
        {
            Some(bytes) => u64_be(META, META_HISTORY_SEQ, &bytes)?,
            None => 0,
        };
        self.meta
            .insert(META_HISTORY_SEQ, &last_seq.max(counted).to_be_bytes())
            .map_err(|e| storage(META, e))?;
        self.meta
            .insert(META_INDEXES, &INDEXES_VERSION.to_be_bytes())
            .map_err(|e| storage(META, e))?;
        self.sync_blocking()
    }

    /// Adds an account to the derived trees (outside a staged write: open and restore). Two
    /// IDs that already differ by case only both stay (the folded index keeps the first).
    pub(super) fn index_account(&self, account: &Account) -> Result<(), StoreError> {
        let id = account.id.as_str().as_bytes();
        let folded = self
            .account_ids_folded
            .compare_and_swap(
                account.id.case_folded().as_bytes(),
                None as Option<&[u8]>,
                Some(id),
            )
            .map_err(|e| storage(ACCOUNT_IDS_FOLDED, e))?;
        if let Err(existing) = folded {
            let other = existing.current.as_deref().unwrap_or_default();
            if other != id {
                tracing::warn!(
                    id = %account.id,
                    other = %String::from_utf8_lossy(other),
                    "two IDs differ only by letter case; both stay, no new one like them can be created"
                );
            }
        }
        self.accounts_by_contract
            .insert(index_key(account.contract.as_str().as_bytes(), id), &[])
            .map_err(|e| storage(ACCOUNTS_BY_CONTRACT, e))?;
        Ok(())
    }
}

/// The `serials` value of a recorded certificate whose reservation was never written: its
/// notBefore, Unix milliseconds.
pub(super) fn reserved_at(record: &CertificateRecord) -> [u8; 8] {
    crate::store::budget::unix_ms(record.not_before).to_be_bytes()
}
