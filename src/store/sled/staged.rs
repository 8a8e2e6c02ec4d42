//! Staged writes: every write of the sled store that touches more than one record is made
//! atomic by an intent record, not by a sled transaction. Issuances are staged several to
//! one write ([`SledStore::staged_each`], see [`super::batched`]).
//!
//! # Why not sled transactions
//!
//! sled 0.34 makes a transaction (and a batch) recoverable as a whole by pinning its log
//! (`PageCache::pin_log`): it writes out the current IO buffer before the transaction and
//! again after it, whatever is in them. Each buffer written is handed to sled's IO threads
//! (`threadpool::spawn`), whose queue wakes every idle one of them (`Queue::send`,
//! `notify_all`), and ends in `pwrite` plus `sync_file_range(WAIT_BEFORE | WRITE |
//! WAIT_AFTER)`. On the delegated path (`estca-bench run -s delegated`, one transaction per
//! certificate) that was 2.1 `pwrite` and `sync_file_range` per certificate and sled's IO
//! threads using a fifth of the daemon's CPU; staged writes need 0.1 per certificate (one
//! per group-commit sync), and took the daemon's CPU per certificate from 0.77–0.82 ms to
//! 0.56–0.59 ms (README, "Where the time goes").
//!
//! # How a staged write is atomic
//!
//! - **Isolation.** It runs holding the store's writer lock exclusively
//!   ([`SledStore::writing`]); every staged write and every restore holds it, and sled lets
//!   one process open the database. The other writes are single-key compare-and-swaps (a
//!   serial's reservation, forgetting a refilled budget) that no staged write depends on
//!   between its reads and its writes.
//! - **Atomicity.** Its reads go to the trees (through what it staged so far); its writes
//!   are staged, then recorded as one intent (`meta/pending`, a single-key insert, which sled
//!   writes whole or not at all), applied one by one, and the intent removed. sled recovers a
//!   prefix of its log after a crash (its `pagecache/iterator.rs` replays up to the end of the
//!   last contiguous message), in the order the writes were made: either the intent is
//!   lost and so is every write after it, or it is there beside a part of its writes, and
//!   opening the store applies it again ([`SledStore::finish_staged`]) before anything reads.
//!   Every staged write sets a record to its final value, so applying one twice is applying it
//!   once.
//! - **Durability** is the group commit's, as for every write.
//!
//! Readers outside the writer lock may see a staged write half applied for the microseconds
//! it takes; nothing decides on such a read without checking again under the lock (the
//! registration authority's decisions are checked by the write itself, on the account's
//! version), and an export holds the lock.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use sled::{IVec, Tree};

use super::{corrupt, storage, SledStore, HISTORY, HISTORY_BY_ACCOUNT, HISTORY_BY_CONTRACT, META};
use crate::store::rows::Stored;
use crate::store::StoreError;

/// `meta` key of the intent of a staged write being applied.
const META_PENDING: &[u8] = b"pending";

/// The format of the intent record (a byte before its postcard encoding).
const INTENT_FORMAT: u8 = 1;

/// One write of a staged write, as recorded in the intent.
#[derive(Debug, Serialize, Deserialize)]
struct StagedWrite {
    /// The tree's name.
    tree: String,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// The writes of one staged write, in the order they were made.
#[derive(Debug, Default)]
pub(super) struct Staged {
    writes: RefCell<Vec<StagedWrite>>,
}

/// A tree as a staged write sees it.
pub(super) struct StagedTree<'a> {
    staged: &'a Staged,
    tree: &'a Tree,
    name: &'static str,
}

impl Staged {
    /// How many writes are staged so far, to [`Staged::roll_back`] to.
    fn mark(&self) -> usize {
        self.writes.borrow().len()
    }

    /// Forgets the writes staged after `mark`: what one refused part of a batch staged.
    fn roll_back(&self, mark: usize) {
        self.writes.borrow_mut().truncate(mark);
    }

    /// `tree` (named `name`) as this staged write sees it.
    pub(super) fn tree<'a>(&'a self, tree: &'a Tree, name: &'static str) -> StagedTree<'a> {
        StagedTree {
            staged: self,
            tree,
            name,
        }
    }
}

impl StagedTree<'_> {
    /// The record at `key`, as this write sees it (what it staged, else the tree's).
    pub(super) fn read(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        let staged = self
            .staged
            .writes
            .borrow()
            .iter()
            .rev()
            .find(|w| w.tree == self.name && w.key == key)
            .map(|w| IVec::from(w.value.as_slice()));
        match staged {
            Some(value) => Ok(Some(value)),
            None => self.tree.get(key).map_err(|e| storage(self.name, e)),
        }
    }

    /// The record at `key`, decoded, as this write sees it.
    pub(super) fn read_row<T: Stored>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.read(key)?
            .map(|bytes| T::decode(key, &bytes))
            .transpose()
    }

    /// Stages setting the record at `key`.
    pub(super) fn put(&self, key: &[u8], value: &[u8]) {
        self.staged.writes.borrow_mut().push(StagedWrite {
            tree: self.name.to_owned(),
            key: key.to_vec(),
            value: value.to_vec(),
        });
    }
}

impl SledStore {
    /// Runs `stage` on a new staged write, then applies what it staged atomically, holding
    /// the writer lock ([`SledStore::writing`]) throughout.
    pub(super) fn staged<T>(
        &self,
        stage: impl FnOnce(&Staged) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _writing = self.writing();
        let staged = Staged::default();
        let out = stage(&staged)?;
        self.apply_staged(staged)?;
        Ok(out)
    }

    /// Runs `stage` for each of `items` on one staged write, each seeing what those before it
    /// staged, then applies the lot atomically, holding the writer lock throughout: one
    /// intent and one writer-lock turn for the batch. An item that `stage` refuses leaves
    /// nothing staged and gets its error; the others go on. `Err` means that applying failed
    /// and nothing of the batch was written.
    pub(super) fn staged_each<I, T>(
        &self,
        items: &[I],
        stage: impl Fn(&Staged, &I) -> Result<T, StoreError>,
    ) -> Result<Vec<Result<T, StoreError>>, StoreError> {
        let _writing = self.writing();
        let staged = Staged::default();
        let outcomes = items
            .iter()
            .map(|item| {
                let mark = staged.mark();
                stage(&staged, item).inspect_err(|_| staged.roll_back(mark))
            })
            .collect();
        self.apply_staged(staged)?;
        Ok(outcomes)
    }

    /// The history trees as `staged` sees them, in the order
    /// [`append`](super::history::append) takes.
    pub(super) fn staged_history<'a>(&'a self, staged: &'a Staged) -> [StagedTree<'a>; 3] {
        [
            staged.tree(&self.history, HISTORY),
            staged.tree(&self.history_by_account, HISTORY_BY_ACCOUNT),
            staged.tree(&self.history_by_contract, HISTORY_BY_CONTRACT),
        ]
    }

    /// Applies a staged write: its intent, its writes in order, then the intent removed. A
    /// single write needs no intent: sled applies one insert whole or not at all.
    fn apply_staged(&self, staged: Staged) -> Result<(), StoreError> {
        let writes = staged.writes.into_inner();
        if writes.len() <= 1 {
            return self.apply_writes(&writes);
        }
        self.record_intent(&writes)?;
        self.apply_writes(&writes)?;
        self.forget_intent()
    }

    /// Records the intent of `writes` (one single-key insert).
    fn record_intent(&self, writes: &[StagedWrite]) -> Result<(), StoreError> {
        let mut intent = vec![INTENT_FORMAT];
        intent.extend(postcard::to_allocvec(writes).map_err(|e| {
            StoreError::Backend(format!("cannot encode the intent of a write: {e}"))
        })?);
        self.meta
            .insert(META_PENDING, intent)
            .map_err(|e| storage(META, e))?;
        Ok(())
    }

    /// Removes the intent once its writes are applied.
    fn forget_intent(&self) -> Result<(), StoreError> {
        self.meta
            .remove(META_PENDING)
            .map_err(|e| storage(META, e))?;
        Ok(())
    }

    /// At open: applies again the staged write a crash interrupted, if any, and removes its
    /// intent (see the module's documentation).
    pub(super) fn finish_staged(&self) -> Result<bool, StoreError> {
        let Some(intent) = self.meta.get(META_PENDING).map_err(|e| storage(META, e))? else {
            return Ok(false);
        };
        let writes: Vec<StagedWrite> = match intent.split_first() {
            Some((&INTENT_FORMAT, encoded)) => postcard::from_bytes(encoded).map_err(|e| {
                corrupt(
                    META,
                    META_PENDING,
                    &format!("the intent of an interrupted write cannot be read: {e}"),
                )
            })?,
            _ => {
                return Err(corrupt(
                    META,
                    META_PENDING,
                    "the intent of an interrupted write has an unknown format (written by a \
                     newer estca?)",
                ))
            }
        };
        self.apply_writes(&writes)?;
        self.forget_intent()?;
        tracing::warn!(
            writes = writes.len(),
            "finished a write that a crash had interrupted"
        );
        Ok(true)
    }

    fn apply_writes(&self, writes: &[StagedWrite]) -> Result<(), StoreError> {
        for write in writes {
            let tree = self.tree_named(&write.tree)?;
            tree.insert(&write.key, write.value.as_slice())
                .map_err(|e| storage(&write.tree, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_value(store: &SledStore, key: &[u8]) -> Option<Vec<u8>> {
        store.meta.get(key).unwrap().map(|v| v.to_vec())
    }

    #[tokio::test]
    async fn a_staged_write_reads_what_it_staged_and_leaves_no_intent() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let staged = Staged::default();
        let meta = staged.tree(&store.meta, META);
        assert_eq!(meta.read(b"staged-test").unwrap(), None);
        meta.put(b"staged-test", b"one");
        meta.put(b"staged-test", b"two");
        assert_eq!(
            meta.read(b"staged-test").unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(
            meta_value(&store, b"staged-test"),
            None,
            "nothing applied yet"
        );
        store.apply_staged(staged).unwrap();
        assert_eq!(
            meta_value(&store, b"staged-test").as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(meta_value(&store, META_PENDING), None);
    }

    /// One item of a batch that stages writes and then fails leaves none of them; the items
    /// after it see what the ones before it staged.
    #[tokio::test]
    async fn a_failed_item_of_a_batch_leaves_nothing_and_the_rest_apply() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let outcomes = store
            .staged_each(&[1u8, 2, 3], |staged, item| {
                let meta = staged.tree(&store.meta, META);
                let seen = meta.read(b"batch-last")?.map(|v| v.to_vec());
                meta.put(format!("batch-{item}").as_bytes(), &[*item]);
                meta.put(b"batch-last", &[*item]);
                if *item == 2 {
                    return Err(StoreError::Conflict);
                }
                Ok(seen)
            })
            .unwrap();
        assert!(matches!(outcomes[0], Ok(None)), "{outcomes:?}");
        assert!(matches!(outcomes[1], Err(StoreError::Conflict)));
        assert!(
            matches!(&outcomes[2], Ok(Some(last)) if last == &[1]),
            "the third sees the first's write, not the failed second's: {outcomes:?}"
        );
        assert_eq!(meta_value(&store, b"batch-1").as_deref(), Some(&[1u8][..]));
        assert_eq!(meta_value(&store, b"batch-2"), None);
        assert_eq!(meta_value(&store, b"batch-3").as_deref(), Some(&[3u8][..]));
        assert_eq!(
            meta_value(&store, b"batch-last").as_deref(),
            Some(&[3u8][..])
        );
        assert_eq!(meta_value(&store, META_PENDING), None);
    }

    /// A crash after the intent and part of its writes: the next open applies the rest.
    #[tokio::test]
    async fn an_interrupted_staged_write_is_finished_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = SledStore::open(&path).unwrap();
            let staged = Staged::default();
            let meta = staged.tree(&store.meta, META);
            meta.put(b"staged-first", b"1");
            meta.put(b"staged-second", b"2");
            let writes = staged.writes.into_inner();
            store.record_intent(&writes).unwrap();
            store.apply_writes(&writes[..1]).unwrap();
            store.sync_blocking().unwrap();
            // Dropped here without applying the rest nor forgetting the intent.
        }
        let store = SledStore::open(&path).unwrap();
        assert_eq!(
            meta_value(&store, b"staged-first").as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(
            meta_value(&store, b"staged-second").as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(meta_value(&store, META_PENDING), None, "the intent is gone");
        assert!(!store.finish_staged().unwrap(), "nothing left to finish");
    }

    #[tokio::test]
    async fn an_unreadable_intent_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = SledStore::open(&path).unwrap();
            store.meta.insert(META_PENDING, &[9u8, 1, 2][..]).unwrap();
            store.sync_blocking().unwrap();
        }
        let err = SledStore::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("pending") && err.contains("unknown format"),
            "{err}"
        );
    }
}
