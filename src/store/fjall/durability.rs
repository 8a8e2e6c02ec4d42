//! Group commit: every write returns once it is durable, and concurrent writers share syncs.
//!
//! A write commits its transaction (appended to fjall's journal in memory), counts itself
//! ([`GroupCommit::wrote`]), then waits in [`GroupCommit::sync`]. Whoever holds the lock
//! writes the journal out and `fdatasync`s it once, covering every commit counted before it
//! started; writers queued behind it find their commit covered and return without syncing
//! again. The journal file is allocated ahead and fjall `fsync`s it (and its directory) when it
//! starts a new one, so `fdatasync` is enough to read every acknowledged commit back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{PersistMode, TxKeyspace};

use crate::store::{StoreError, SyncMode, SyncObserver};

/// What has been committed and what has been made durable.
pub(super) struct GroupCommit {
    path: PathBuf,
    mode: SyncMode,
    keyspace: TxKeyspace,
    /// Commits made so far (the commit generation).
    written: AtomicU64,
    /// The generation the last completed sync covered; held while syncing.
    synced: tokio::sync::Mutex<u64>,
    /// Syncs actually made (for tests and diagnostics).
    syncs: AtomicU64,
    /// Told how long each sync took (metrics).
    observer: std::sync::OnceLock<SyncObserver>,
}

impl GroupCommit {
    pub(super) fn new(path: &Path, mode: SyncMode, keyspace: TxKeyspace) -> Self {
        Self {
            path: path.to_owned(),
            mode,
            keyspace,
            written: AtomicU64::new(0),
            synced: tokio::sync::Mutex::new(0),
            syncs: AtomicU64::new(0),
            observer: std::sync::OnceLock::new(),
        }
    }

    /// Has `observer` told the duration of every sync from now on (once; later calls are
    /// ignored).
    pub(super) fn observe(&self, observer: SyncObserver) {
        let _ = self.observer.set(observer);
    }

    /// Counts one commit, so that the next sync knows it has work to do.
    pub(super) fn wrote(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// Syncs made so far.
    #[cfg(test)]
    pub(super) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Returns once every commit counted before the call is durable; in
    /// [`SyncMode::Deferred`] at once (see [`GroupCommit::sync_all`]).
    pub(super) async fn sync(&self) -> Result<(), StoreError> {
        match self.mode {
            SyncMode::EveryWrite => self.sync_all().await,
            SyncMode::Deferred => Ok(()),
        }
    }

    /// Returns once every commit counted before the call is durable, whatever the mode.
    pub(super) async fn sync_all(&self) -> Result<(), StoreError> {
        let needed = self.written.load(Ordering::SeqCst);
        let mut synced = self.synced.lock().await;
        if *synced >= needed {
            return Ok(());
        }
        let covering = self.written.load(Ordering::SeqCst);
        self.syncs.fetch_add(1, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let keyspace = self.keyspace.clone();
        // The sync blocks for as long as the disk takes: off the async workers.
        let outcome = tokio::task::spawn_blocking(move || keyspace.persist(PersistMode::SyncData))
            .await
            .map_err(|e| format!("the sync task failed: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()));
        outcome.map_err(|e| {
            StoreError::Backend(format!(
                "cannot write the database at {} to disk: {e}",
                self.path.display()
            ))
        })?;
        if let Some(observer) = self.observer.get() {
            observer(started.elapsed());
        }
        *synced = covering;
        Ok(())
    }
}
