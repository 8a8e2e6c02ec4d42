//! History (利用履歴): appended inside the transaction of the change it records, numbered
//! in commit order, read newest first by pages.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::{from_tx, index_key, storage, tx, SledStore, TxResult, HISTORY, META};
use crate::model::{HistoryEntry, HistoryEvent};
use crate::store::listing::{HistoryIndex, HistoryRead};
use crate::store::rows::encode_event;
use crate::store::rows::u64_be;
use crate::store::{HistoryQuery, Page, StoreError};

/// `meta` key of the last history sequence number.
pub(super) const META_HISTORY_SEQ: &[u8] = b"history_seq";

/// Appends one history entry and its index entries inside a transaction; returns its number.
/// The number is the last one plus one, read and written in the transaction, so that it
/// follows commit order. The trees are those of [`SledStore::history_trees`], as the
/// transaction's closure sees them.
pub(super) fn append(
    [history, by_account, by_contract, meta]: [&TransactionalTree; 4],
    event: &HistoryEvent,
) -> TxResult<u64> {
    let last = match meta.get(META_HISTORY_SEQ)? {
        Some(bytes) => tx(u64_be(META, META_HISTORY_SEQ, &bytes))?,
        None => 0,
    };
    let seq = last.checked_add(1).ok_or_else(|| {
        ConflictableTransactionError::Abort(StoreError::Backend(
            "history sequence numbers are exhausted".into(),
        ))
    })?;
    meta.insert(META_HISTORY_SEQ, &seq.to_be_bytes())?;
    history.insert(&seq.to_be_bytes(), tx(encode_event(event))?)?;
    if let Some(id) = &event.account {
        by_account.insert(index_key(id.as_str().as_bytes(), &seq.to_be_bytes()), &[])?;
    }
    if let Some(code) = &event.contract {
        by_contract.insert(index_key(code.as_str().as_bytes(), &seq.to_be_bytes()), &[])?;
    }
    Ok(seq)
}

impl SledStore {
    /// The four trees a history-appending transaction needs, in the order [`append`] takes.
    pub(super) fn history_trees(&self) -> [&Tree; 4] {
        [
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
            &self.meta,
        ]
    }

    /// Appends one entry on its own.
    pub(super) fn append_history_now(&self, event: &HistoryEvent) -> Result<(), StoreError> {
        let [history, by_account, by_contract, meta] = self.history_trees();
        (history, by_account, by_contract, meta)
            .transaction(|(history, by_account, by_contract, meta)| {
                append([history, by_account, by_contract, meta], event)
            })
            .map_err(from_tx)?;
        Ok(())
    }

    /// A page of history, newest first (see [`HistoryRead`]).
    pub(super) fn history_page(
        &self,
        query: &HistoryQuery,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let read = HistoryRead::of(query)?;
        let Some(index) = read.index else {
            let rows = self.history.range(read.range.clone()).rev();
            return read.page(rows.map(|row| row.map_err(|e| storage(HISTORY, e))));
        };
        let tree = match index {
            HistoryIndex::ByAccount => &self.history_by_account,
            HistoryIndex::ByContract => &self.history_by_contract,
        };
        let rows = tree.range(read.range.clone()).rev().map(|entry| {
            let (key, _) = entry.map_err(|e| storage(index.table(), e))?;
            let seq = HistoryRead::history_key(index, &key)?;
            let value = self
                .history
                .get(seq)
                .map_err(|e| storage(HISTORY, e))?
                .ok_or_else(|| HistoryRead::missing(index, &key))?;
            Ok((seq.to_vec(), value))
        });
        read.page(rows)
    }
}
