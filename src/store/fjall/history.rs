//! History (利用履歴): appended inside the transaction of the change it records, numbered
//! in commit order, read newest first by pages.

use fjall::WriteTransaction;

use super::{index_key, storage, tx_get, FjallStore, HISTORY, META};
use crate::model::{HistoryEntry, HistoryEvent};
use crate::store::listing::{HistoryIndex, HistoryRead};
use crate::store::rows::{self, encode_event};
use crate::store::{HistoryQuery, Page, StoreError};

/// `meta` key of the last history sequence number.
pub(super) const META_HISTORY_SEQ: &[u8] = b"history_seq";

impl FjallStore {
    /// Appends one history entry and its index entries inside a transaction; returns its
    /// number. The number is the last one plus one, read and written in the transaction
    /// (transactions run one at a time), so that it follows commit order.
    pub(super) fn append(
        &self,
        tx: &mut WriteTransaction<'_>,
        event: &HistoryEvent,
    ) -> Result<u64, StoreError> {
        let last = tx_get(tx, &self.parts.meta, META, META_HISTORY_SEQ)?
            .map(|bytes| rows::u64_be(META, META_HISTORY_SEQ, &bytes))
            .transpose()?
            .unwrap_or(0);
        let seq = last
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("history numbers are exhausted".into()))?;
        self.put_history(tx, seq, event)?;
        tx.insert(&self.parts.meta, META_HISTORY_SEQ, seq.to_be_bytes());
        Ok(seq)
    }

    /// Appends one history entry on its own, in a transaction of its own.
    pub(super) fn append_history_now(&self, event: &HistoryEvent) -> Result<(), StoreError> {
        self.transact(|tx| self.append(tx, event).map(|_| ((), true)))
            .map(|(out, _)| out)
    }

    /// Writes entry `seq` and its index entries (appending and importing).
    pub(super) fn put_history(
        &self,
        tx: &mut WriteTransaction<'_>,
        seq: u64,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let seq_key = seq.to_be_bytes();
        tx.insert(&self.parts.history, seq_key, encode_event(event)?);
        if let Some(id) = &event.account {
            tx.insert(
                &self.parts.history_by_account,
                index_key(id.as_str().as_bytes(), &seq_key),
                [],
            );
        }
        if let Some(code) = &event.contract {
            tx.insert(
                &self.parts.history_by_contract,
                index_key(code.as_str().as_bytes(), &seq_key),
                [],
            );
        }
        Ok(())
    }

    /// A page of history, newest first, read from one snapshot (see [`HistoryRead`]).
    pub(super) fn history_page(
        &self,
        query: &HistoryQuery,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let read = HistoryRead::of(query)?;
        let snapshot = self.keyspace.read_tx();
        let Some(index) = read.index else {
            let rows = snapshot
                .range(&self.parts.history, read.range.clone())
                .rev();
            return read.page(rows.map(|row| row.map_err(|e| storage(HISTORY, e))));
        };
        let part = match index {
            HistoryIndex::ByAccount => &self.parts.history_by_account,
            HistoryIndex::ByContract => &self.parts.history_by_contract,
        };
        let rows = snapshot.range(part, read.range.clone()).rev().map(|entry| {
            let (key, _) = entry.map_err(|e| storage(index.table(), e))?;
            let seq = HistoryRead::history_key(index, &key)?;
            let value = snapshot
                .get(&self.parts.history, seq)
                .map_err(|e| storage(HISTORY, e))?
                .ok_or_else(|| HistoryRead::missing(index, &key))?;
            Ok((seq.to_vec(), value))
        });
        read.page(rows)
    }
}
