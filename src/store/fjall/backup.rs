//! [`BackupStore`] on fjall: an export read from one snapshot (writers go on meanwhile), and
//! an import into an empty store, one transaction per batch, that rebuilds the indexes.

use async_trait::async_trait;
use fjall::{TxPartitionHandle, WriteTransaction};

use super::history::META_HISTORY_SEQ;
use super::reads::{decoded, Convert};
use super::revocation::META_CRL_NUMBER;
use super::{
    index_key, storage, tx_get, FjallStore, ACCOUNTS, APPS, CERTIFICATES, CONTRACTS, HISTORY, META,
};
use crate::model::{Account, App, CertificateRecord, Contract};
use crate::store::rows::{self, Stored};
use crate::store::{BackupStore, StoreError, StoreRecord};

impl FjallStore {
    /// Hands every row of `part` in the snapshot to `sink`, converted.
    fn export_part<T>(
        snapshot: &fjall::ReadTransaction,
        part: &TxPartitionHandle,
        name: &str,
        into: Convert<T>,
        wrap: fn(T) -> StoreRecord,
        sink: &mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        for item in snapshot.iter(part) {
            let (key, value) = item.map_err(|e| storage(name, e))?;
            sink(wrap(into(name, &key, &value)?))?;
        }
        Ok(())
    }

    /// Writes one exported record as it was, with its index entries.
    fn import_one(
        &self,
        tx: &mut WriteTransaction<'_>,
        record: StoreRecord,
    ) -> Result<(), StoreError> {
        match record {
            StoreRecord::Contract(c) => {
                let value = Contract::encode(&c)?;
                tx.insert(&self.parts.contracts, c.code.as_str().as_bytes(), value);
            }
            StoreRecord::Account(a) => {
                let id = a.id.as_str().as_bytes();
                tx.insert(&self.parts.accounts, id, Account::encode(&a)?);
                // Two IDs that differ by case only (from an older estca) both stay; no new
                // one like them can be created.
                tx.insert(
                    &self.parts.account_ids_folded,
                    a.id.case_folded().as_bytes(),
                    [],
                );
                tx.insert(
                    &self.parts.accounts_by_contract,
                    index_key(a.contract.as_str().as_bytes(), id),
                    [],
                );
            }
            StoreRecord::Certificate(record) => {
                self.tx_put_certificate(tx, &record)?;
                tx.insert(&self.parts.keys, record.key.0, *record.serial.as_bytes());
            }
            StoreRecord::App(a) => {
                tx.insert(
                    &self.parts.apps,
                    a.name.as_str().as_bytes(),
                    App::encode(&a)?,
                );
            }
            StoreRecord::History(entry) => {
                self.put_history(tx, entry.seq, &entry.event)?;
                // New entries are numbered after every imported one.
                let last = tx_get(tx, &self.parts.meta, META, META_HISTORY_SEQ)?
                    .map(|bytes| rows::u64_be(META, META_HISTORY_SEQ, &bytes))
                    .transpose()?
                    .unwrap_or(0);
                tx.insert(
                    &self.parts.meta,
                    META_HISTORY_SEQ,
                    last.max(entry.seq).to_be_bytes(),
                );
            }
            StoreRecord::CrlNumber(number) => {
                tx.insert(&self.parts.meta, META_CRL_NUMBER, number.to_be_bytes());
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BackupStore for FjallStore {
    async fn export(
        &self,
        sink: &mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        let snapshot = self.keyspace.read_tx();
        let p = &self.parts;
        Self::export_part(
            &snapshot,
            &p.contracts,
            CONTRACTS,
            decoded,
            StoreRecord::Contract,
            sink,
        )?;
        Self::export_part(
            &snapshot,
            &p.accounts,
            ACCOUNTS,
            decoded,
            StoreRecord::Account,
            sink,
        )?;
        Self::export_part(
            &snapshot,
            &p.certificates,
            CERTIFICATES,
            decoded,
            StoreRecord::Certificate,
            sink,
        )?;
        Self::export_part(&snapshot, &p.apps, APPS, decoded, StoreRecord::App, sink)?;
        Self::export_part(
            &snapshot,
            &p.history,
            HISTORY,
            decoded,
            StoreRecord::History,
            sink,
        )?;
        let crl_number = snapshot
            .get(&p.meta, META_CRL_NUMBER)
            .map_err(|e| storage(META, e))?
            .map(|bytes| rows::u64_be(META, META_CRL_NUMBER, &bytes))
            .transpose()?;
        if let Some(number) = crl_number {
            sink(StoreRecord::CrlNumber(number))?;
        }
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let snapshot = self.keyspace.read_tx();
        let p = &self.parts;
        for (part, name) in [
            (&p.contracts, CONTRACTS),
            (&p.accounts, ACCOUNTS),
            (&p.apps, APPS),
            (&p.history, HISTORY),
        ] {
            if !snapshot.is_empty(part).map_err(|e| storage(name, e))? {
                return Ok(false);
            }
        }
        // Service certificates (recorded at every start) do not count; anything else does.
        for item in snapshot.iter(&p.certificates) {
            let (key, value) = item.map_err(|e| storage(CERTIFICATES, e))?;
            if !CertificateRecord::decode(&key, &value)?.holder.is_service() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn import(&self, records: Vec<StoreRecord>) -> Result<(), StoreError> {
        self.transact(|tx| {
            for record in records {
                self.import_one(tx, record)?;
            }
            Ok(((), true))
        })?;
        self.durability.wrote();
        self.sync().await
    }

    async fn sync_all(&self) -> Result<(), StoreError> {
        self.durability.sync_all().await
    }
}
