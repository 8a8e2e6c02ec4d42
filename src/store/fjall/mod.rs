//! The [`Store`](super::Store) on fjall, an embedded log-structured merge-tree: the alternative
//! embedded engine of issue 11, measured side by side with sled behind the same interfaces.
//!
//! # Why fjall (and not redb)
//!
//! Both were measured on the same synthetic load with `benches/engine-choice` (a crate of its
//! own: `cd benches/engine-choice && cargo run --release -- ENGINE COUNT DIR [MODE]`): IDs of
//! eleven rows each (a certificate row built around a real 784-byte estca certificate whose
//! serial, key and signature were made random, the account, two history entries and their
//! index entries), one ID per transaction, one sync per 16 IDs, on this 2-core machine under
//! a load average of about 5 from other work (the loads ran beside a `cargo test`):
//!
//! | | fjall 2.11 (LZ4, 4 KiB blocks) | redb 2.6 (file format v3) |
//! |---|---|---|
//! | bytes on disk per ID, 200,000 IDs | 819 | 3,426 |
//! | loading 200,000 IDs | 137 s | 404 s |
//! | reopen after a clean stop, 200,000 IDs | 149 ms | 9 ms |
//! | reopen after a crash (abort) half-way through a load | 241 ms at 50,000 IDs (journal replay, bounded) | 410 ms at 30,000 IDs (102 MB, full repair, grows with the file: ~14 s at 1M IDs); 18 ms with quick-repair |
//!
//! The target the sled backend misses by most is the size (≤ 2,500 bytes per ID at 1,000,000
//! IDs): redb, a B-tree of uncompressed pages that splits leaves in half (history, appended
//! in key order, fills pages by half), is above it before any renewal; fjall packs sorted
//! runs full and compresses them (certificates from one CA share their issuer, extensions
//! and URLs). Its crash recovery replays the journal, bounded by [`MAX_JOURNAL_BYTES`], so
//! start-up does not grow with the database; its memory is the block cache
//! (`store.cache_mib`) plus the memtables ([`WRITE_BUFFER_BYTES`]).
//!
//! # Layout
//!
//! One fjall partition per kind of record; keys are raw bytes, values rows of [`crate::store::rows`]
//! (a format byte, then postcard):
//!
//! | partition | key | value |
//! |---|---|---|
//! | `contracts` | contract code | a contract row |
//! | `accounts` | account ID | an account row |
//! | `accounts_by_contract` | contract code, `0x00`, account ID | empty (paged listing per contract) |
//! | `account_ids_folded` | account ID in lower case | empty (no two IDs differ by case only) |
//! | `certificates` | 16 serial bytes | a certificate row |
//! | `reserved_serials` | 16 serial bytes | when it was reserved, Unix ms big-endian; removed once the certificate is recorded |
//! | `keys` | 32-byte [`KeyFingerprint`](crate::model::KeyFingerprint) | 16 serial bytes |
//! | `apps` | application name | an application row |
//! | `history` | sequence number, u64 big-endian | a history row |
//! | `history_by_account` | account ID, `0x00`, sequence big-endian | empty |
//! | `history_by_contract` | contract code, `0x00`, sequence big-endian | empty |
//! | `revoked` | 16 serial bytes | a revoked-certificate row (the revocation index) |
//! | `budgets` | budget name | a token bucket row |
//! | `meta` | `crl_number`, `history_seq` | u64 big-endian |
//! | `meta` | `ca_key` | the fingerprint of the CA key the database belongs to (see [`crate::store::CaBinding`]) |
//! | `meta` | `schema` | the layout version of this table ([`SCHEMA`]) |
//!
//! # Transactions and durability
//!
//! Every operation is one fjall write transaction. fjall runs them one at a time (single
//! writer), each seeing every commit before it, so a check and the write it guards are atomic
//! (the account's version, a free serial, an unused key), and history numbers, read and
//! written in the appending transaction, follow commit order. A commit appends to the journal
//! in memory; [`durability`] then writes and `fdatasync`s the journal once for every commit
//! made while the previous sync ran (group commit) before any of them returns. Reads see
//! committed state; listings and the export read one snapshot (`read_tx`), so an export is
//! consistent without holding writers back.
//!
//! Only one process may open the directory: it is locked (`flock`) for as long as the store
//! is open.

mod accounts;
mod backup;
mod ca_binding;
mod durability;
mod history;
mod issuance;
mod journals;
mod reads;
mod revocation;

mod writes;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use fjall::{PartitionCreateOptions, TxKeyspace, TxPartitionHandle, WriteTransaction};

use super::rows;
use super::{StoreError, SyncMode};

use super::tables::{
    index_key, ACCOUNTS, ACCOUNTS_BY_CONTRACT, ACCOUNT_IDS_FOLDED, APPS, BUDGETS, CERTIFICATES,
    CONTRACTS, HISTORY, HISTORY_BY_ACCOUNT, HISTORY_BY_CONTRACT, KEYS, META, REVOKED,
};
const RESERVED_SERIALS: &str = "reserved_serials";

/// `meta` key of the layout version.
const META_SCHEMA: &[u8] = b"schema";

/// The layout this build reads and writes (the table above).
const SCHEMA: u64 = 1;

/// Memory for memtables, all partitions together: what is written and not yet in a sorted
/// run on disk. Bounds the daemon's memory with the block cache.
pub const WRITE_BUFFER_BYTES: u64 = 32 * 1024 * 1024;

/// The most journal kept before memtables are written out: bounds the replay after a crash
/// (fjall's least is 24 MiB).
pub const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Name of the lock file in the database directory.
const LOCK_FILE: &str = "estca.lock";

/// The partitions, one per kind of record.
struct Partitions {
    contracts: TxPartitionHandle,
    accounts: TxPartitionHandle,
    accounts_by_contract: TxPartitionHandle,
    account_ids_folded: TxPartitionHandle,
    certificates: TxPartitionHandle,
    reserved_serials: TxPartitionHandle,
    keys: TxPartitionHandle,
    apps: TxPartitionHandle,
    history: TxPartitionHandle,
    history_by_account: TxPartitionHandle,
    history_by_contract: TxPartitionHandle,
    revoked: TxPartitionHandle,
    budgets: TxPartitionHandle,
    meta: TxPartitionHandle,
}

impl Partitions {
    /// Every partition.
    fn all(&self) -> [&TxPartitionHandle; 14] {
        [
            &self.contracts,
            &self.accounts,
            &self.accounts_by_contract,
            &self.account_ids_folded,
            &self.certificates,
            &self.reserved_serials,
            &self.keys,
            &self.apps,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
            &self.revoked,
            &self.budgets,
            &self.meta,
        ]
    }
}

/// A [`Store`](super::Store) kept in a fjall database directory.
pub struct FjallStore {
    path: PathBuf,
    keyspace: TxKeyspace,
    parts: Partitions,
    /// Bumped after each committed revocation (see `RevocationStore::revocations`).
    revocations: tokio::sync::watch::Sender<u64>,
    /// Group commit: what has been committed and what has been synced.
    durability: crate::store::durability::GroupCommit<TxKeyspace>,
    /// Rotates every memtable when the journals pile up (see [`journals`]).
    journals: journals::JournalKeeper,
    /// Held (locked) while the store is open.
    _lock: std::fs::File,
}

impl fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FjallStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FjallStore {
    /// Opens (creating if needed) the database in the directory `path`, with a block cache of
    /// `cache_bytes`.
    ///
    /// Fails with a [`StoreError::Backend`] saying so if another process (for instance the
    /// running daemon) has the database open, or if the directory holds something else.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<FjallStore, StoreError> {
        Self::open_with(path, cache_bytes, SyncMode::EveryWrite)
    }

    /// As [`FjallStore::open`], with writes made durable as `mode` says.
    pub fn open_with(
        path: &Path,
        cache_bytes: u64,
        mode: SyncMode,
    ) -> Result<FjallStore, StoreError> {
        let cannot = |e: &dyn fmt::Display| {
            StoreError::Backend(format!(
                "cannot open the database at {}: {e}",
                path.display()
            ))
        };
        std::fs::create_dir_all(path).map_err(|e| cannot(&e))?;
        let lock = lock(path)?;
        let keyspace = fjall::Config::new(path)
            .manual_journal_persist(true)
            .cache_size(cache_bytes)
            .max_write_buffer_size(WRITE_BUFFER_BYTES)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open_transactional()
            .map_err(|e| cannot(&e))?;
        let part = |name: &str| {
            keyspace
                .open_partition(name, PartitionCreateOptions::default())
                .map_err(|e| {
                    StoreError::Backend(format!(
                        "cannot open partition `{name}` of the database at {}: {e}",
                        path.display()
                    ))
                })
        };
        let parts = Partitions {
            contracts: part(CONTRACTS)?,
            accounts: part(ACCOUNTS)?,
            accounts_by_contract: part(ACCOUNTS_BY_CONTRACT)?,
            account_ids_folded: part(ACCOUNT_IDS_FOLDED)?,
            certificates: part(CERTIFICATES)?,
            reserved_serials: part(RESERVED_SERIALS)?,
            keys: part(KEYS)?,
            apps: part(APPS)?,
            history: part(HISTORY)?,
            history_by_account: part(HISTORY_BY_ACCOUNT)?,
            history_by_contract: part(HISTORY_BY_CONTRACT)?,
            revoked: part(REVOKED)?,
            budgets: part(BUDGETS)?,
            meta: part(META)?,
        };
        let store = FjallStore {
            path: path.to_owned(),
            durability: crate::store::durability::GroupCommit::new(path, mode, keyspace.clone()),
            keyspace,
            parts,
            revocations: tokio::sync::watch::channel(0).0,
            journals: journals::JournalKeeper::new(),
            _lock: lock,
        };
        store.check_schema()?;
        store.bound_journals()?;
        Ok(store)
    }

    /// Has `observer` told how long each sync to disk takes (the daemon's metrics).
    pub fn observe_syncs(&self, observer: super::SyncObserver) {
        self.durability.observe(observer);
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the layout version in a new database; refuses a database of another layout.
    fn check_schema(&self) -> Result<(), StoreError> {
        let stored = self
            .parts
            .meta
            .get(META_SCHEMA)
            .map_err(|e| storage(META, e))?
            .map(|bytes| rows::u64_be(META, META_SCHEMA, &bytes))
            .transpose()?;
        match stored {
            Some(SCHEMA) => Ok(()),
            Some(other) => Err(StoreError::Backend(format!(
                "the database at {} has layout {other}; this estca reads layout {SCHEMA} (restore a backup into an empty directory instead)",
                self.path.display()
            ))),
            None => {
                let mut tx = self.keyspace.write_tx();
                tx.insert(&self.parts.meta, META_SCHEMA, SCHEMA.to_be_bytes());
                tx.commit().map_err(|e| storage(META, e))?;
                self.keyspace
                    .persist(fjall::PersistMode::SyncData)
                    .map_err(|e| storage(META, e))
            }
        }
    }

    /// Has the memtables flushed when the journals pile up (see [`journals`]): after every
    /// commit, and at open (journals left by the previous run).
    fn bound_journals(&self) -> Result<bool, StoreError> {
        self.journals.bound(&self.keyspace, &self.parts.all())
    }

    /// Makes every commit made so far durable (see [`durability`]).
    async fn sync(&self) -> Result<(), StoreError> {
        self.durability.sync().await
    }
}

/// Locks the database directory for this process, or says who holds it.
fn lock(path: &Path) -> Result<std::fs::File, StoreError> {
    let file_path = path.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&file_path)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", file_path.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StoreError::Backend(format!(
            "the database at {} is in use by another process (is the daemon running?)",
            path.display()
        ))),
        Err(e) => Err(StoreError::Backend(format!(
            "cannot lock {}: {e}",
            file_path.display()
        ))),
    }
}

/// A database failure while reading or writing a partition.
fn storage(partition: &str, error: fjall::Error) -> StoreError {
    StoreError::Backend(format!("cannot use partition `{partition}`: {error}"))
}

/// Reads one value inside a write transaction (seeing its own writes).
fn tx_get(
    tx: &WriteTransaction<'_>,
    part: &TxPartitionHandle,
    name: &str,
    key: &[u8],
) -> Result<Option<fjall::Slice>, StoreError> {
    tx.get(part, key).map_err(|e| storage(name, e))
}
