//! The [`Store`](super::Store) on sled: one tree per kind of record; every write of more than
//! one record is a [`staged`] write (under the store's writer lock, an intent record, then
//! its writes), not a sled transaction (see [`staged`] for why).
//!
//! Trees and their keys (values are [`rows`]: a version byte and postcard):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `contracts` | contract code | a contract row |
//! | `accounts` | account ID | an account row |
//! | `accounts_by_contract` | contract code, `0x00`, account ID | empty (paged listing per contract) |
//! | `account_ids_folded` | account ID in lower case | the account ID (no two IDs differ by case only) |
//! | `certificates` | 16 serial bytes | a certificate row |
//! | `serials` | 16 serial bytes | when the serial was reserved (Unix ms, i64 big-endian) |
//! | `keys` | 32-byte [`KeyFingerprint`](crate::model::KeyFingerprint) | 16 serial bytes |
//! | `apps` | application name | an application row |
//! | `history` | sequence number, u64 big-endian | a history row |
//! | `history_by_account` | account ID, `0x00`, sequence big-endian | empty |
//! | `history_by_contract` | contract code, `0x00`, sequence big-endian | empty |
//! | `revoked` | 16 serial bytes | a revocation index row (the revocation index) |
//! | `budgets` | budget name | a token bucket row |
//! | `meta` | `format` | the format of the rows, u64 big-endian (see [`migration`]) |
//! | `meta` | `crl_number` | the last CRL number drawn, u64 big-endian |
//! | `meta` | `history_seq` | a history sequence number no entry is below, u64 big-endian (kept by index building and restores; appends count in memory from the last entry) |
//! | `meta` | `ca_key` | the fingerprint of the CA key the database belongs to (see [`crate::store::CaBinding`]) |
//! | `meta` | `indexes` | the version of the derived trees this database has (see [`indexes`]) |
//!
//! Derived trees (`revoked`, `account_ids_folded`, `accounts_by_contract`, `serials`) are
//! written in the same write as their source, and built once at open for a database
//! written before they existed. History sequence numbers are drawn from a counter in memory
//! inside the write that appends the entry, under the store's writer lock, so sequence
//! order is commit order ([`history::append`]); at open the counter starts after
//! the last entry.
//!
//! At open, a database of an older format is migrated ([`migration`]), one newer than this
//! build is refused. Durability: every write returns after [`durability`] has made it reach
//! stable storage ([`stable`]), one sync shared by concurrent writers (group commit), unless
//! the store was opened for bulk loading ([`SyncMode::Deferred`]).

mod accounts;
mod backup;
mod batched;
mod budgets;
mod ca_binding;
pub(in crate::store) mod durability;
mod history;
mod indexes;
mod issuance;
mod migration;
mod reads;
mod revocation;
mod rows;
mod stable;
mod staged;
mod writes;

#[cfg(test)]
mod tests;

use crate::store::SyncMode;

use std::fmt;
use std::path::{Path, PathBuf};

use sled::Tree;

use super::StoreError;

use super::tables::{
    corrupt, index_key, ACCOUNTS, ACCOUNTS_BY_CONTRACT, ACCOUNT_IDS_FOLDED, APPS, BUDGETS,
    CERTIFICATES, CONTRACTS, HISTORY, HISTORY_BY_ACCOUNT, HISTORY_BY_CONTRACT, KEYS, META, REVOKED,
};
const SERIALS: &str = "serials";

/// sled's page cache (its default is 1 GiB): bounds the daemon's memory with millions of IDs;
/// what does not fit is read back from the operating system's file cache.
const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// A [`Store`](super::Store) kept in a sled database directory.
///
/// Only one process can hold the directory open at a time (sled locks it).
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    contracts: Tree,
    accounts: Tree,
    accounts_by_contract: Tree,
    account_ids_folded: Tree,
    certificates: Tree,
    serials: Tree,
    keys: Tree,
    apps: Tree,
    history: Tree,
    history_by_account: Tree,
    history_by_contract: Tree,
    revoked: Tree,
    budgets: Tree,
    meta: Tree,
    /// The last history sequence number drawn (see [`history::append`]).
    history_seq: std::sync::atomic::AtomicU64,
    /// Bumped after each committed revocation (see `RevocationStore::revocations`).
    revocations: tokio::sync::watch::Sender<u64>,
    /// Group commit: what has been written and what has been synced.
    durability: crate::store::durability::GroupCommit<durability::SledDisk>,
    /// Issuances waiting to be committed in the next batch (see [`batched`]).
    issuances: batched::IssuanceQueue,
    /// Writes hold it exclusively, `export` shared: sled has no multi-tree snapshot reads,
    /// so this is what makes a backup consistent (see [`SledStore::writing`]).
    snapshot: std::sync::RwLock<()>,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (creating if needed) the database in the directory `path` for the daemon: every
    /// write durable when it returns ([`SyncMode::EveryWrite`]). See [`SledStore::open_with`].
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        Self::open_with(path, SyncMode::EveryWrite)
    }

    /// Opens (creating if needed) the database in the directory `path`: migrates a database
    /// written in an older format (once; an interrupted migration is finished at the next
    /// open), refuses one written by a newer estca, brings the derived trees up to date, and
    /// makes what sled created reach stable storage.
    ///
    /// Fails with a [`StoreError::Backend`] saying so if another process (for instance the
    /// running daemon) has the database open.
    pub fn open_with(path: &Path, mode: SyncMode) -> Result<SledStore, StoreError> {
        let db = open_db(path)?;
        let tree = |name: &str| {
            db.open_tree(name).map_err(|e| {
                StoreError::Backend(format!(
                    "cannot open tree `{name}` of the database at {}: {e}",
                    path.display()
                ))
            })
        };
        let stable = stable::StableFiles::open(path).map_err(|e| {
            StoreError::Backend(format!(
                "cannot make the database at {} reach stable storage: {e}",
                path.display()
            ))
        })?;
        let store = SledStore {
            path: path.to_owned(),
            contracts: tree(CONTRACTS)?,
            accounts: tree(ACCOUNTS)?,
            accounts_by_contract: tree(ACCOUNTS_BY_CONTRACT)?,
            account_ids_folded: tree(ACCOUNT_IDS_FOLDED)?,
            certificates: tree(CERTIFICATES)?,
            serials: tree(SERIALS)?,
            keys: tree(KEYS)?,
            apps: tree(APPS)?,
            history: tree(HISTORY)?,
            history_by_account: tree(HISTORY_BY_ACCOUNT)?,
            history_by_contract: tree(HISTORY_BY_CONTRACT)?,
            revoked: tree(REVOKED)?,
            budgets: tree(BUDGETS)?,
            meta: tree(META)?,
            history_seq: std::sync::atomic::AtomicU64::new(0),
            revocations: tokio::sync::watch::channel(0).0,
            durability: crate::store::durability::GroupCommit::new(
                path,
                mode,
                durability::SledDisk {
                    db: db.clone(),
                    files: stable,
                },
            ),
            issuances: batched::IssuanceQueue::default(),
            db,
            snapshot: std::sync::RwLock::new(()),
        };
        store.finish_staged()?;
        store.migrate()?;
        store.build_indexes()?;
        store.history_seq.store(
            history::last_seq(&store.history, &store.meta)?,
            std::sync::atomic::Ordering::SeqCst,
        );
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

    /// Makes every write applied so far durable, whatever the [`SyncMode`]: what a bulk load
    /// opened with [`SyncMode::Deferred`] calls when it is done (and at checkpoints).
    pub async fn sync_all(&self) -> Result<(), StoreError> {
        self.durability.sync_all().await
    }

    /// Held exclusively by every staged write ([`staged`]) and restore for its duration, so
    /// that they are one at a time, and shared by an export, which so sees all of a write or
    /// none.
    fn writing(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tree called `name` (of a staged write's intent).
    fn tree_named(&self, name: &str) -> Result<&Tree, StoreError> {
        Ok(match name {
            CONTRACTS => &self.contracts,
            ACCOUNTS => &self.accounts,
            ACCOUNTS_BY_CONTRACT => &self.accounts_by_contract,
            ACCOUNT_IDS_FOLDED => &self.account_ids_folded,
            CERTIFICATES => &self.certificates,
            SERIALS => &self.serials,
            KEYS => &self.keys,
            APPS => &self.apps,
            HISTORY => &self.history,
            HISTORY_BY_ACCOUNT => &self.history_by_account,
            HISTORY_BY_CONTRACT => &self.history_by_contract,
            REVOKED => &self.revoked,
            BUDGETS => &self.budgets,
            META => &self.meta,
            other => {
                return Err(StoreError::Backend(format!(
                    "the intent of an interrupted write names no tree of estca's: `{other}`"
                )))
            }
        })
    }

    /// Makes every write applied so far durable, unless the store defers syncs.
    async fn sync(&self) -> Result<(), StoreError> {
        self.durability.sync().await
    }

    /// Makes everything durable now, blocking (at open: migrations and index builds).
    fn sync_blocking(&self) -> Result<(), StoreError> {
        self.durability.wrote();
        self.durability.sync_blocking()
    }

    /// Reads and decodes one value outside a write.
    fn get<T: crate::store::rows::Stored>(
        &self,
        tree: &Tree,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(|e| storage(T::TABLE, e))? {
            Some(bytes) => T::decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// How long an open waits for the lock of a database that this very process has just closed:
/// sled's background threads let go of it a moment after the last handle is dropped.
const LOCK_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens sled's database at `path`, waiting a moment for a lock still held by a handle of
/// this process that is being dropped; another process holding it is said so.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_RELEASE_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                if std::time::Instant::now() >= deadline {
                    return Err(StoreError::Backend(format!(
                        "the database at {} is in use by another process (is the daemon running?)",
                        path.display()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Err(StoreError::Backend(format!(
                    "cannot open the database at {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

/// A database failure while reading or writing a tree.
fn storage(tree: &str, error: sled::Error) -> StoreError {
    StoreError::Backend(format!("cannot use tree `{tree}`: {error}"))
}
