//! History (利用履歴): appended inside the transaction of the change it records, numbered
//! in commit order, read newest first by pages.

use fjall::WriteTransaction;

use super::{
    corrupt, index_key, prefix_range, storage, tx_get, FjallStore, HISTORY, HISTORY_BY_ACCOUNT,
    HISTORY_BY_CONTRACT, META,
};
use crate::model::{HistoryEntry, HistoryEvent};
use crate::store::listing::{history_before, history_matches, history_scope, Listing, PageBuilder};
use crate::store::rows::{self, encode_event, Stored};
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

    /// A page of history, newest first, read from one snapshot.
    pub(super) fn history_page(
        &self,
        query: &HistoryQuery,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let scope = history_scope(query)?;
        let before = history_before(query, &scope)?;
        let index = match (&query.account, &query.contract) {
            (Some(id), _) => Some((
                &self.parts.history_by_account,
                HISTORY_BY_ACCOUNT,
                id.as_str().as_bytes(),
            )),
            (None, Some(code)) => Some((
                &self.parts.history_by_contract,
                HISTORY_BY_CONTRACT,
                code.as_str().as_bytes(),
            )),
            (None, None) => None,
        };
        let snapshot = self.keyspace.read_tx();
        let mut page = PageBuilder::new(query.page.limit);
        let mut keep = |key: &[u8], entry: HistoryEntry| {
            history_matches(query, &entry) && page.offer(key, entry)
        };
        match index {
            Some((part, name, prefix)) => {
                let (lower, mut upper) = prefix_range(prefix);
                if let Some(before) = before {
                    upper = index_key(prefix, &before.to_be_bytes());
                }
                for item in snapshot.range(part, lower..upper).rev() {
                    let (key, _) = item.map_err(|e| storage(name, e))?;
                    let seq_key = key
                        .len()
                        .checked_sub(8)
                        .and_then(|start| key.get(start..))
                        .ok_or_else(|| corrupt(name, &key, "key too short"))?;
                    let value = snapshot
                        .get(&self.parts.history, seq_key)
                        .map_err(|e| storage(HISTORY, e))?
                        .ok_or_else(|| corrupt(name, &key, "no such history entry"))?;
                    if keep(seq_key, HistoryEntry::decode(seq_key, &value)?) {
                        break;
                    }
                }
            }
            None => {
                let upper = before.map_or(std::ops::Bound::Unbounded, |b| {
                    std::ops::Bound::Excluded(b.to_be_bytes())
                });
                for item in snapshot
                    .range(&self.parts.history, (std::ops::Bound::Unbounded, upper))
                    .rev()
                {
                    let (key, value) = item.map_err(|e| storage(HISTORY, e))?;
                    if keep(&key, HistoryEntry::decode(&key, &value)?) {
                        break;
                    }
                }
            }
        }
        page.finish(Listing::History, &scope)
    }
}
