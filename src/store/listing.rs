//! What every backend's paged listings share: cursors bound to the listing that gave them,
//! pages that know whether another follows, and history's filters.
//!
//! A cursor is the postcard encoding of a [`Position`]: the listing, the scope within it
//! (the contract of a per-contract account listing, a digest of a history query's filters)
//! and the key of the last item returned. A cursor handed to another listing, or to the same
//! listing with another scope, is refused with [`StoreError::Invalid`]; a forged position
//! within the right listing only moves where the page starts, which the caller could ask for
//! anyway. A page ends the listing (`next` is `None`) exactly when no item follows it: the
//! backends read one item past a full page to know.

use serde::{Deserialize, Serialize};

use std::ops::Bound;

use super::rows::Stored;
use super::{Cursor, HistoryQuery, Page, PageRequest, StoreError};
use crate::model::HistoryEntry;

/// The listings that hand out cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::store) enum Listing {
    Contracts,
    Accounts,
    ContractAccounts,
    Apps,
    History,
    Revoked,
}

#[derive(Serialize, Deserialize)]
struct Position<'a> {
    listing: Listing,
    scope: &'a [u8],
    after: &'a [u8],
}

/// The cursor after `key` in `listing` (within `scope`).
pub(in crate::store) fn cursor_after(
    listing: Listing,
    scope: &[u8],
    key: &[u8],
) -> Result<Cursor, StoreError> {
    postcard::to_allocvec(&Position {
        listing,
        scope,
        after: key,
    })
    .map(Cursor::new)
    .map_err(|e| StoreError::Backend(format!("cannot encode a cursor: {e}")))
}

/// The key a cursor of `listing` (within `scope`) continues after; refuses any other cursor.
pub(in crate::store) fn cursor_position<'c>(
    cursor: &'c Cursor,
    listing: Listing,
    scope: &[u8],
) -> Result<&'c [u8], StoreError> {
    match postcard::from_bytes::<Position<'c>>(cursor.as_bytes()) {
        Ok(p) if p.listing == listing && p.scope == scope => Ok(p.after),
        _ => Err(StoreError::Invalid(
            "the cursor is not one this listing gave (use the next cursor of its previous page)"
                .into(),
        )),
    }
}

/// Where a page of a whole table in key order starts: after the key in the cursor of the
/// previous page, or at the first key.
pub(in crate::store) fn table_page_start(
    page: &PageRequest,
    listing: Listing,
) -> Result<Bound<Vec<u8>>, StoreError> {
    Ok(match &page.after {
        Some(after) => Bound::Excluded(cursor_position(after, listing, &[])?.to_vec()),
        None => Bound::Unbounded,
    })
}

/// A page of a whole table in key order, from `rows`: the engine's rows (key, value) from
/// [`table_page_start`] on, read no further than needed. The cursor holds the last key
/// returned.
pub(in crate::store) fn table_page<T: Stored, K: AsRef<[u8]>, V: AsRef<[u8]>>(
    rows: impl Iterator<Item = Result<(K, V), StoreError>>,
    listing: Listing,
    limit: usize,
) -> Result<Page<T>, StoreError> {
    let mut builder = PageBuilder::new(limit);
    for row in rows {
        let (key, value) = row?;
        if builder.is_full() {
            builder.more_exists();
            break;
        }
        builder.offer(key.as_ref(), T::decode(key.as_ref(), value.as_ref())?);
    }
    builder.finish(listing, &[])
}

/// A range of keys, as the engines' range reads take it.
pub(in crate::store) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The keys of an index under `prefix` (an [`index_key`](super::tables::index_key) prefix)
/// that a page reads: after the cursor of the previous page, or from the first.
pub(in crate::store) fn index_page_range(
    prefix: &[u8],
    page: &PageRequest,
    listing: Listing,
) -> Result<KeyRange, StoreError> {
    let (start, end) = super::tables::prefix_range(prefix);
    let lower = match &page.after {
        Some(after) => Bound::Excluded(super::tables::index_key(
            prefix,
            cursor_position(after, listing, prefix)?,
        )),
        None => Bound::Included(start),
    };
    Ok((lower, Bound::Excluded(end)))
}

/// A page through an index: `entries` are its keys in [`index_page_range`], `item` reads what
/// the rest of an entry's key names (an entry whose item is gone, which would be a bug, is
/// skipped rather than failing the listing). The cursor holds that rest of the last key.
pub(in crate::store) fn index_page<T, K: AsRef<[u8]>>(
    entries: impl Iterator<Item = Result<K, StoreError>>,
    prefix: &[u8],
    listing: Listing,
    limit: usize,
    mut item: impl FnMut(&[u8]) -> Result<Option<T>, StoreError>,
) -> Result<Page<T>, StoreError> {
    let mut builder = PageBuilder::new(limit);
    for entry in entries {
        let key = entry?;
        if builder.is_full() {
            builder.more_exists();
            break;
        }
        let rest = key.as_ref().get(prefix.len() + 1..).unwrap_or_default();
        if let Some(found) = item(rest)? {
            builder.offer(rest, found);
        }
    }
    builder.finish(listing, prefix)
}

/// A page being filled from a listing read in order: it takes items until it is full, and
/// knows there is a next page once one more item is offered.
pub(in crate::store) struct PageBuilder<T> {
    limit: usize,
    items: Vec<T>,
    last_key: Option<Vec<u8>>,
    more: bool,
}

impl<T> PageBuilder<T> {
    /// An empty page of at most `limit` items.
    pub(in crate::store) fn new(limit: usize) -> Self {
        Self {
            limit,
            items: Vec::new(),
            last_key: None,
            more: false,
        }
    }

    /// Whether the page is full (read one more item to learn whether another page follows,
    /// and offer it: [`PageBuilder::offer`] then says to stop).
    pub(in crate::store) fn is_full(&self) -> bool {
        self.items.len() >= self.limit
    }

    /// Offers the next item of the listing, with the key its cursor continues after; true
    /// when reading can stop (the page is full and another item exists).
    pub(in crate::store) fn offer(&mut self, key: &[u8], item: T) -> bool {
        if self.is_full() {
            self.more = true;
            return true;
        }
        self.items.push(item);
        self.last_key = Some(key.to_vec());
        false
    }

    /// Notes that an item exists past a full page without producing it (when producing it
    /// costs a read, as for an index entry).
    pub(in crate::store) fn more_exists(&mut self) {
        self.more = true;
    }

    /// The page, with a cursor of `listing` within `scope` when another page follows.
    pub(in crate::store) fn finish(
        self,
        listing: Listing,
        scope: &[u8],
    ) -> Result<Page<T>, StoreError> {
        let next = match (self.more, &self.last_key) {
            (true, Some(key)) => Some(cursor_after(listing, scope, key)?),
            _ => None,
        };
        Ok(Page {
            items: self.items,
            next,
        })
    }
}

/// The scope of a history cursor: a digest of the query's filters, so that a cursor continues
/// only the query that gave it.
fn history_scope(query: &HistoryQuery) -> Result<[u8; 8], StoreError> {
    use sha2::Digest;
    #[derive(Serialize)]
    struct Filters<'a> {
        account: Option<&'a str>,
        contract: Option<&'a str>,
        kind: Option<&'static str>,
        since: Option<i128>,
        until: Option<i128>,
    }
    let filters = Filters {
        account: query.account.as_ref().map(|a| a.as_str()),
        contract: query.contract.as_ref().map(|c| c.as_str()),
        kind: query.kind.map(|k| k.name()),
        since: query.since.map(|t| t.unix_timestamp_nanos()),
        until: query.until.map(|t| t.unix_timestamp_nanos()),
    };
    let bytes = postcard::to_allocvec(&filters)
        .map_err(|e| StoreError::Backend(format!("cannot encode a history query: {e}")))?;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    Ok(out)
}

/// Where a page of a history query starts: the scope its cursors carry, and the sequence
/// number its cursor continues before, if any (for engines that read history by query, not
/// by key range, as PostgreSQL).
pub(in crate::store) fn history_position(
    query: &HistoryQuery,
) -> Result<([u8; 8], Option<u64>), StoreError> {
    let scope = history_scope(query)?;
    let before = history_before(query, &scope)?;
    Ok((scope, before))
}

/// The sequence number a history query continues before (its cursor's), if any.
fn history_before(query: &HistoryQuery, scope: &[u8]) -> Result<Option<u64>, StoreError> {
    match &query.page.after {
        Some(c) => <[u8; 8]>::try_from(cursor_position(c, Listing::History, scope)?)
            .map(|b| Some(u64::from_be_bytes(b)))
            .map_err(|_| StoreError::Invalid("not a history cursor".into())),
        None => Ok(None),
    }
}

/// Whether a history entry passes the query's filters (the cursor is applied by the range).
fn history_matches(query: &HistoryQuery, entry: &HistoryEntry) -> bool {
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

/// The index a history query filtered by account or contract reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum HistoryIndex {
    /// `history_by_account`.
    ByAccount,
    /// `history_by_contract`.
    ByContract,
}

impl HistoryIndex {
    /// The index's table.
    pub(in crate::store) fn table(self) -> &'static str {
        match self {
            Self::ByAccount => super::tables::HISTORY_BY_ACCOUNT,
            Self::ByContract => super::tables::HISTORY_BY_CONTRACT,
        }
    }
}

/// How to read one page of a history query, newest first: which index (none: the history
/// table itself) and which keys of it. The engine reads `range` backwards, turns each index
/// entry into its history row ([`HistoryRead::history_key`]) and hands the rows to
/// [`HistoryRead::page`].
pub(in crate::store) struct HistoryRead<'q> {
    /// The index read, if the query names an account or a contract.
    pub(in crate::store) index: Option<HistoryIndex>,
    /// The keys read (of the index, or of the history table), read newest first.
    pub(in crate::store) range: KeyRange,
    query: &'q HistoryQuery,
    scope: [u8; 8],
}

impl<'q> HistoryRead<'q> {
    /// What a page of `query` reads.
    pub(in crate::store) fn of(query: &'q HistoryQuery) -> Result<Self, StoreError> {
        let (scope, before) = history_position(query)?;
        let indexed = match (&query.account, &query.contract) {
            (Some(id), _) => Some((HistoryIndex::ByAccount, id.as_str().as_bytes())),
            (None, Some(code)) => Some((HistoryIndex::ByContract, code.as_str().as_bytes())),
            (None, None) => None,
        };
        let (index, range) = match indexed {
            Some((index, prefix)) => {
                let (lower, upper) = super::tables::prefix_range(prefix);
                let upper = before.map_or(upper, |b| {
                    super::tables::index_key(prefix, &b.to_be_bytes())
                });
                (
                    Some(index),
                    (Bound::Included(lower), Bound::Excluded(upper)),
                )
            }
            None => {
                let upper = before.map_or(Bound::Unbounded, |b| {
                    Bound::Excluded(b.to_be_bytes().to_vec())
                });
                (None, (Bound::Unbounded, upper))
            }
        };
        Ok(Self {
            index,
            range,
            query,
            scope,
        })
    }

    /// The key of the history row that an entry of the index names (its last 8 bytes).
    pub(in crate::store) fn history_key(
        index: HistoryIndex,
        key: &[u8],
    ) -> Result<&[u8], StoreError> {
        key.len()
            .checked_sub(8)
            .and_then(|start| key.get(start..))
            .ok_or_else(|| super::tables::corrupt(index.table(), key, "key too short"))
    }

    /// The error for an index entry whose history row is missing.
    pub(in crate::store) fn missing(index: HistoryIndex, key: &[u8]) -> StoreError {
        super::tables::corrupt(index.table(), key, "no such history entry")
    }

    /// The page, from the history rows read (key, value), newest first, read no further than
    /// needed: entries that do not pass the query's filters are passed over.
    pub(in crate::store) fn page<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        rows: impl Iterator<Item = Result<(K, V), StoreError>>,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let mut page = PageBuilder::new(self.query.page.limit);
        for row in rows {
            let (key, value) = row?;
            let entry = HistoryEntry::decode(key.as_ref(), value.as_ref())?;
            if history_matches(self.query, &entry) && page.offer(key.as_ref(), entry) {
                break;
            }
        }
        page.finish(Listing::History, &self.scope)
    }
}
