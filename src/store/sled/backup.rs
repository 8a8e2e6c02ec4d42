//! [`BackupStore`] on sled: a consistent export (writers held back while it runs) and an
//! import into an empty store that rebuilds the derived trees.

use async_trait::async_trait;

use super::history::META_HISTORY_SEQ;
use super::indexes::reserved_at;
use super::revocation::META_CRL_NUMBER;
use super::{
    index_key, storage, SledStore, ACCOUNTS, APPS, CERTIFICATES, CONTRACTS, HISTORY,
    HISTORY_BY_ACCOUNT, HISTORY_BY_CONTRACT, KEYS, META, REVOKED, SERIALS,
};
use crate::model::CertificateRecord;
use crate::store::rows::{u64_be, Stored};
use crate::store::{BackupStore, RevokedCertificate, StoreError, StoreRecord};

#[async_trait]
impl BackupStore for SledStore {
    async fn export(
        &self,
        sink: &mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        // Shared: no write runs while an export reads (see `SledStore::writing`).
        let _no_writes = self
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        export_tree(&self.contracts, sink, StoreRecord::Contract)?;
        export_tree(&self.accounts, sink, StoreRecord::Account)?;
        export_tree(&self.certificates, sink, StoreRecord::Certificate)?;
        export_tree(&self.apps, sink, StoreRecord::App)?;
        export_tree(&self.history, sink, StoreRecord::History)?;
        if let Some(number) = self.last_crl_number()? {
            sink(StoreRecord::CrlNumber(number))?;
        }
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let no_records = [&self.contracts, &self.accounts, &self.apps, &self.history]
            .iter()
            .all(|tree| tree.is_empty());
        if !no_records {
            return Ok(false);
        }
        // Service certificates (recorded at every start) do not count; anything else does.
        for item in self.certificates.iter() {
            let (key, value) = item.map_err(|e| storage(CERTIFICATES, e))?;
            let record = CertificateRecord::decode(&key, &value)?;
            if !record.holder.is_service() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn import(&self, records: Vec<StoreRecord>) -> Result<(), StoreError> {
        {
            let _writing = self.writing();
            for record in records {
                self.import_one(record)?;
            }
        }
        self.durability.wrote();
        self.sync().await
    }

    async fn sync_all(&self) -> Result<(), StoreError> {
        SledStore::sync_all(self).await
    }
}

impl SledStore {
    fn import_one(&self, record: StoreRecord) -> Result<(), StoreError> {
        match record {
            StoreRecord::Contract(contract) => {
                self.contracts
                    .insert(contract.code.as_str().as_bytes(), contract.encode()?)
                    .map_err(|e| storage(CONTRACTS, e))?;
            }
            StoreRecord::Account(account) => {
                self.accounts
                    .insert(account.id.as_str().as_bytes(), account.encode()?)
                    .map_err(|e| storage(ACCOUNTS, e))?;
                self.index_account(&account)?;
            }
            StoreRecord::Certificate(record) => {
                let serial = record.serial.as_bytes();
                self.certificates
                    .insert(serial, record.encode()?)
                    .map_err(|e| storage(CERTIFICATES, e))?;
                self.serials
                    .insert(serial, &reserved_at(&record))
                    .map_err(|e| storage(SERIALS, e))?;
                if let Some(revocation) = record.revocation {
                    let entry = RevokedCertificate::of(&record, revocation);
                    self.revoked
                        .insert(serial, entry.encode()?)
                        .map_err(|e| storage(REVOKED, e))?;
                }
                self.keys
                    .insert(record.key.0, serial.as_slice())
                    .map_err(|e| storage(KEYS, e))?;
            }
            StoreRecord::CrlNumber(number) => {
                self.meta
                    .insert(META_CRL_NUMBER, &number.to_be_bytes())
                    .map_err(|e| storage(META, e))?;
            }
            StoreRecord::App(app) => {
                self.apps
                    .insert(app.name.as_str().as_bytes(), app.encode()?)
                    .map_err(|e| storage(APPS, e))?;
            }
            StoreRecord::History(entry) => {
                let seq = entry.seq.to_be_bytes();
                self.history
                    .insert(seq, entry.encode()?)
                    .map_err(|e| storage(HISTORY, e))?;
                if let Some(id) = &entry.event.account {
                    self.history_by_account
                        .insert(index_key(id.as_str().as_bytes(), &seq), &[])
                        .map_err(|e| storage(HISTORY_BY_ACCOUNT, e))?;
                }
                if let Some(code) = &entry.event.contract {
                    self.history_by_contract
                        .insert(index_key(code.as_str().as_bytes(), &seq), &[])
                        .map_err(|e| storage(HISTORY_BY_CONTRACT, e))?;
                }
                // New entries are numbered after every imported one.
                self.meta
                    .fetch_and_update(META_HISTORY_SEQ, |old| {
                        let last = old.and_then(|b| u64_be(META, META_HISTORY_SEQ, b).ok());
                        Some(last.unwrap_or(0).max(entry.seq).to_be_bytes().to_vec())
                    })
                    .map_err(|e| storage(META, e))?;
                self.history_seq
                    .fetch_max(entry.seq, std::sync::atomic::Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// Hands every row of `tree` to `sink`, decoded and wrapped by `record`.
fn export_tree<T: Stored>(
    tree: &sled::Tree,
    sink: &mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send),
    record: fn(T) -> StoreRecord,
) -> Result<(), StoreError> {
    for item in tree.iter() {
        let (key, value) = item.map_err(|e| storage(T::TABLE, e))?;
        sink(record(T::decode(&key, &value)?))?;
    }
    Ok(())
}
