//! History (利用履歴): appended inside the write of the change it records, numbered
//! in commit order, read newest first by pages.

use std::sync::atomic::{AtomicU64, Ordering};

use sled::Tree;

use super::staged::StagedTree;
use super::{index_key, storage, SledStore, HISTORY, META};
use crate::model::{HistoryEntry, HistoryEvent};
use crate::store::listing::{HistoryIndex, HistoryRead};
use crate::store::rows::encode_event;
use crate::store::rows::u64_be;
use crate::store::{HistoryQuery, Page, StoreError};

/// `meta` key of the last history sequence number.
pub(super) const META_HISTORY_SEQ: &[u8] = b"history_seq";

/// Appends one history entry and its index entries inside an atomic write; returns its number.
///
/// The number is the last one plus one, drawn from `last` (the store's
/// [`SledStore::history_seq`]) inside the write. Every write holds the store's writer lock
/// exclusively ([`SledStore::writing`]), so the numbers follow commit order; a write that
/// fails after drawing leaves a gap, which paging does not mind. Keeping the counter in
/// memory, not in `meta/history_seq`, spares every appending write a read and a write (at
/// open the counter starts after the last entry stored). The trees are those of
/// [`SledStore::staged_history`].
pub(super) fn append(
    [history, by_account, by_contract]: &[StagedTree<'_>; 3],
    last: &AtomicU64,
    event: &HistoryEvent,
) -> Result<u64, StoreError> {
    let seq = last
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_add(1))
        .map_err(|_| StoreError::Backend("history sequence numbers are exhausted".into()))?
        + 1;
    history.put(&seq.to_be_bytes(), &encode_event(event)?);
    if let Some(id) = &event.account {
        by_account.put(&index_key(id.as_str().as_bytes(), &seq.to_be_bytes()), &[]);
    }
    if let Some(code) = &event.contract {
        by_contract.put(
            &index_key(code.as_str().as_bytes(), &seq.to_be_bytes()),
            &[],
        );
    }
    Ok(seq)
}

/// The last history sequence number of a database: the greater of the last entry's and
/// `meta/history_seq` (written by earlier builds, by index building and by restores).
pub(super) fn last_seq(history: &Tree, meta: &Tree) -> Result<u64, StoreError> {
    let stored = match history.last().map_err(|e| storage(HISTORY, e))? {
        Some((key, _)) => u64_be(HISTORY, &key, &key)?,
        None => 0,
    };
    let counted = match meta.get(META_HISTORY_SEQ).map_err(|e| storage(META, e))? {
        Some(bytes) => u64_be(META, META_HISTORY_SEQ, &bytes)?,
        None => 0,
    };
    Ok(stored.max(counted))
}

impl SledStore {
    /// Appends one entry on its own.
    pub(super) fn append_history_now(&self, event: &HistoryEvent) -> Result<(), StoreError> {
        self.staged(|staged| append(&self.staged_history(staged), &self.history_seq, event))?;
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
