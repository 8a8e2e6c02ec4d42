//! Group commit: every write returns once it is durable, and concurrent writers share syncs.
//!
//! A write counts itself ([`GroupCommit::wrote`]) once sled has applied it, then waits in
//! [`GroupCommit::sync`]. Whoever holds the lock syncs once, covering every write counted
//! before it started; writers queued behind it find their write covered and return without
//! syncing again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{StoreError, SyncObserver};

/// What has been written and what has been made durable.
pub(super) struct GroupCommit {
    path: PathBuf,
    /// Writes applied so far (the commit generation).
    written: AtomicU64,
    /// The generation the last completed sync covered; held while syncing.
    synced: tokio::sync::Mutex<u64>,
    /// Syncs actually made (for tests and diagnostics).
    syncs: AtomicU64,
    /// Told how long each sync took (metrics).
    observer: std::sync::OnceLock<SyncObserver>,
}

impl GroupCommit {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
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

    /// Counts one applied write, so that the next sync knows it has work to do.
    pub(super) fn wrote(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// Returns once every write counted before the call is durable.
    pub(super) async fn sync(&self, db: &sled::Db) -> Result<(), StoreError> {
        let needed = self.written.load(Ordering::SeqCst);
        let mut synced = self.synced.lock().await;
        if *synced >= needed {
            return Ok(());
        }
        let covering = self.written.load(Ordering::SeqCst);
        self.syncs.fetch_add(1, Ordering::SeqCst);
        let started = std::time::Instant::now();
        db.flush_async().await.map_err(|e| {
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
