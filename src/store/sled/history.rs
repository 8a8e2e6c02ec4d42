//! History (利用履歴): appended inside the transaction of the change it records, numbered
//! in commit order, read newest first by pages.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::{
    corrupt, from_tx, index_key, prefix_range, storage, tx, SledStore, TxResult, HISTORY,
    HISTORY_BY_ACCOUNT, HISTORY_BY_CONTRACT, META,
};
use crate::model::{HistoryEntry, HistoryEvent};
use crate::store::listing::{history_before, history_matches, history_scope, Listing, PageBuilder};
use crate::store::rows::encode_event;
use crate::store::rows::{u64_be, Stored};
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

    /// A page of history, newest first. The cursor holds the number of the last entry
    /// returned and a digest of the query's filters, so that it continues only the same query.
    pub(super) fn history_page(
        &self,
        query: &HistoryQuery,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let scope = history_scope(query)?;
        let before = history_before(query, &scope)?;
        let index = match (&query.account, &query.contract) {
            (Some(id), _) => Some((
                &self.history_by_account,
                HISTORY_BY_ACCOUNT,
                id.as_str().as_bytes(),
            )),
            (None, Some(code)) => Some((
                &self.history_by_contract,
                HISTORY_BY_CONTRACT,
                code.as_str().as_bytes(),
            )),
            (None, None) => None,
        };
        let mut page = PageBuilder::new(query.page.limit);
        match index {
            Some((tree, name, prefix)) => {
                let (lower, mut upper) = prefix_range(prefix);
                if let Some(before) = before {
                    upper = index_key(prefix, &before.to_be_bytes());
                }
                for item in tree.range(lower..upper).rev() {
                    let (key, _) = item.map_err(|e| storage(name, e))?;
                    let seq_bytes = key
                        .len()
                        .checked_sub(8)
                        .and_then(|start| key.get(start..))
                        .ok_or_else(|| corrupt(name, &key, "key too short"))?;
                    let value = self
                        .history
                        .get(seq_bytes)
                        .map_err(|e| storage(HISTORY, e))?
                        .ok_or_else(|| corrupt(name, &key, "no such history entry"))?;
                    let entry = HistoryEntry::decode(seq_bytes, &value)?;
                    if history_matches(query, &entry) && page.offer(seq_bytes, entry) {
                        break;
                    }
                }
            }
            None => {
                let iter = match before {
                    Some(before) => self.history.range(..before.to_be_bytes()),
                    None => self.history.iter(),
                };
                for item in iter.rev() {
                    let (key, value) = item.map_err(|e| storage(HISTORY, e))?;
                    let entry = HistoryEntry::decode(&key, &value)?;
                    if history_matches(query, &entry) && page.offer(&key, entry) {
                        break;
                    }
                }
            }
        }
        page.finish(Listing::History, &scope)
    }
}
