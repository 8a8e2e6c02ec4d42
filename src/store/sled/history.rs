//! History (利用履歴): appended inside the transaction of the change it records, numbered
//! in commit order, read newest first by pages.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::cursor::{self, Listing};
use super::rows::history::encode_event;
use super::rows::{u64_be, Instant, Stored};
use super::{
    corrupt, from_tx, index_key, prefix_range, storage, tx, SledStore, TxResult, HISTORY,
    HISTORY_BY_ACCOUNT, HISTORY_BY_CONTRACT, META,
};
use crate::model::{HistoryEntry, HistoryEvent};
use crate::store::{HistoryQuery, Page, StoreError};

/// `meta` key of the last history sequence number.
pub(super) const META_HISTORY_SEQ: &[u8] = b"history_seq";

/// The trees of a transaction that appends history, as its closure sees them.
pub(super) struct HistoryTx<'a> {
    pub(super) history: &'a TransactionalTree,
    pub(super) by_account: &'a TransactionalTree,
    pub(super) by_contract: &'a TransactionalTree,
    pub(super) meta: &'a TransactionalTree,
}

/// Appends one history entry and its index entries inside a transaction; returns its number.
/// The number is the last one plus one, read and written in the transaction, so that it
/// follows commit order.
pub(super) fn append(t: &HistoryTx<'_>, event: &HistoryEvent) -> TxResult<u64> {
    let last = match t.meta.get(META_HISTORY_SEQ)? {
        Some(bytes) => tx(u64_be(META, META_HISTORY_SEQ, &bytes))?,
        None => 0,
    };
    let seq = last.checked_add(1).ok_or_else(|| {
        ConflictableTransactionError::Abort(StoreError::Backend(
            "history sequence numbers are exhausted".into(),
        ))
    })?;
    t.meta.insert(META_HISTORY_SEQ, &seq.to_be_bytes())?;
    t.history
        .insert(&seq.to_be_bytes(), tx(encode_event(event))?)?;
    if let Some(id) = &event.account {
        t.by_account
            .insert(index_key(id.as_str().as_bytes(), &seq.to_be_bytes()), &[])?;
    }
    if let Some(code) = &event.contract {
        t.by_contract
            .insert(index_key(code.as_str().as_bytes(), &seq.to_be_bytes()), &[])?;
    }
    Ok(seq)
}

impl SledStore {
    /// The four trees a history-appending transaction needs, in [`HistoryTx`] order.
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
                append(
                    &HistoryTx {
                        history,
                        by_account,
                        by_contract,
                        meta,
                    },
                    event,
                )
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
        let limit = query.page.limit;
        let scope = filters_digest(query)?;
        let before = match &query.page.after {
            Some(c) => Some(
                <[u8; 8]>::try_from(cursor::position(c, Listing::History, &scope)?)
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Invalid("not a history cursor".into()))?,
            ),
            None => None,
        };
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
        let mut page = Paging::new(limit);
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
                    if matches(query, &entry) && page.full_before(entry) {
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
                    if matches(query, &entry) && page.full_before(entry) {
                        break;
                    }
                }
            }
        }
        page.finish(&scope)
    }
}

/// A page of history being filled: it knows there is a next page once one more matching
/// entry is found beyond `limit`.
struct Paging {
    limit: usize,
    items: Vec<HistoryEntry>,
    more: bool,
}

impl Paging {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            items: Vec::new(),
            more: false,
        }
    }

    /// Takes a matching entry; true once the page is full and another entry was seen.
    fn full_before(&mut self, entry: HistoryEntry) -> bool {
        if self.items.len() >= self.limit {
            self.more = true;
            return true;
        }
        self.items.push(entry);
        false
    }

    fn finish(self, scope: &[u8]) -> Result<Page<HistoryEntry>, StoreError> {
        let next = match (self.more, self.items.last()) {
            (true, Some(last)) => Some(cursor::after(
                Listing::History,
                scope,
                &last.seq.to_be_bytes(),
            )?),
            _ => None,
        };
        Ok(Page {
            items: self.items,
            next,
        })
    }
}

/// A digest of a query's filters: a history cursor continues only the query that gave it.
fn filters_digest(query: &HistoryQuery) -> Result<[u8; 8], StoreError> {
    use sha2::Digest;
    #[derive(serde::Serialize)]
    struct Filters<'a> {
        account: Option<&'a str>,
        contract: Option<&'a str>,
        kind: Option<&'static str>,
        since: Option<Instant>,
        until: Option<Instant>,
    }
    let filters = Filters {
        account: query.account.as_ref().map(|a| a.as_str()),
        contract: query.contract.as_ref().map(|c| c.as_str()),
        kind: query.kind.map(|k| k.name()),
        since: query.since.map(Instant::of),
        until: query.until.map(Instant::of),
    };
    let bytes = postcard::to_allocvec(&filters)
        .map_err(|e| StoreError::Backend(format!("cannot encode a history query: {e}")))?;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    Ok(out)
}

/// Whether a history entry passes the query's filters (the cursor is applied by the range).
fn matches(query: &HistoryQuery, entry: &HistoryEntry) -> bool {
    let event = &entry.event;
    query
        .account
        .as_ref()
        .is_none_or(|id| event.account.as_ref() == Some(id))
        && query
            .contract
            .as_ref()
            .is_none_or(|code| event.contract.as_ref() == Some(code))
        && query.kind.is_none_or(|kind| event.kind == kind)
        && query.since.is_none_or(|since| event.at >= since)
        && query.until.is_none_or(|until| event.at < until)
}
