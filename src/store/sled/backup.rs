//! [`BackupStore`] on sled: a consistent export (writers held back while it runs) and an
//! import into an empty store that rebuilds the derived trees.

use async_trait::async_trait;

use super::history::META_HISTORY_SEQ;
use super::indexes::reserved_at;
use super::revocation::META_CRL_NUMBER;
use super::rows::{decode, decode_u64, encode};
use super::{
    index_key, storage, SledStore, APPS, CERTIFICATES, CONTRACTS, HISTORY, HISTORY_BY_ACCOUNT,
    HISTORY_BY_CONTRACT, KEYS, META, REVOKED, SERIALS,
};
use crate::model::CertificateRecord;
use crate::store::{BackupStore, RevokedCertificate, StoreError, StoreRecord};

#[async_trait]
impl BackupStore for SledStore {
    async fn export(
        &self,
        sink: &mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        let _exclusive = self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for item in self.contracts.iter() {
            let (key, value) = item.map_err(|e| storage(CONTRACTS, e))?;
            sink(StoreRecord::Contract(decode(CONTRACTS, &key, &value)?))?;
        }
        for item in self.accounts.iter() {
            let (key, value) = item.map_err(|e| storage(super::ACCOUNTS, e))?;
            sink(StoreRecord::Account(decode(super::ACCOUNTS, &key, &value)?))?;
        }
        for item in self.certificates.iter() {
            let (key, value) = item.map_err(|e| storage(CERTIFICATES, e))?;
            sink(StoreRecord::Certificate(decode(
                CERTIFICATES,
                &key,
                &value,
            )?))?;
        }
        for item in self.apps.iter() {
            let (key, value) = item.map_err(|e| storage(APPS, e))?;
            sink(StoreRecord::App(decode(APPS, &key, &value)?))?;
        }
        for item in self.history.iter() {
            let (key, value) = item.map_err(|e| storage(HISTORY, e))?;
            sink(StoreRecord::History(decode(HISTORY, &key, &value)?))?;
        }
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
            let record: CertificateRecord = decode(CERTIFICATES, &key, &value)?;
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
}

impl SledStore {
    fn import_one(&self, record: StoreRecord) -> Result<(), StoreError> {
        match record {
            StoreRecord::Contract(contract) => {
                self.contracts
                    .insert(
                        contract.code.as_str().as_bytes(),
                        encode(CONTRACTS, &contract)?,
                    )
                    .map_err(|e| storage(CONTRACTS, e))?;
            }
            StoreRecord::Account(account) => {
                self.accounts
                    .insert(
                        account.id.as_str().as_bytes(),
                        encode(super::ACCOUNTS, &account)?,
                    )
                    .map_err(|e| storage(super::ACCOUNTS, e))?;
                self.index_account(&account)?;
            }
            StoreRecord::Certificate(record) => {
                let serial = record.serial.as_bytes();
                self.certificates
                    .insert(serial, encode(CERTIFICATES, &record)?)
                    .map_err(|e| storage(CERTIFICATES, e))?;
                self.serials
                    .insert(serial, &reserved_at(&record))
                    .map_err(|e| storage(SERIALS, e))?;
                if let Some(revocation) = record.revocation {
                    let entry = RevokedCertificate::of(&record, revocation);
                    self.revoked
                        .insert(serial, encode(REVOKED, &entry)?)
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
                    .insert(app.name.as_str().as_bytes(), encode(APPS, &app)?)
                    .map_err(|e| storage(APPS, e))?;
            }
            StoreRecord::History(entry) => {
                let seq = entry.seq.to_be_bytes();
                self.history
                    .insert(seq, encode(HISTORY, &entry)?)
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
                        let last = old.and_then(|b| decode_u64(META, META_HISTORY_SEQ, b).ok());
                        Some(last.unwrap_or(0).max(entry.seq).to_be_bytes().to_vec())
                    })
                    .map_err(|e| storage(META, e))?;
            }
        }
        Ok(())
    }
}
