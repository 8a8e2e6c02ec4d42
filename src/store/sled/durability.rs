//! Group commit: every write returns once it is durable, and concurrent writers share syncs.
//!
//! A write counts itself ([`GroupCommit::wrote`]) once sled has applied it, then waits in
//! [`GroupCommit::sync`]. Whoever holds the lock syncs once (sled's flush, then
//! [`StableFiles::sync`]: `fdatasync` of the log), covering every write counted before it
//! started; writers queued behind it find their write covered and return without syncing
//! again. The sync runs on a blocking thread, so the async threads keep serving meanwhile.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::stable::StableFiles;
use crate::store::{StoreError, SyncMode, SyncObserver};

/// What has been written and what has been made durable.
pub(super) struct GroupCommit {
    path: PathBuf,
    mode: SyncMode,
    files: Arc<StableFiles>,
    /// Writes applied so far (the commit generation).
    written: AtomicU64,
    /// The generation the last completed sync covered; held while syncing.
    synced: tokio::sync::Mutex<u64>,
    /// Syncs actually made.
    syncs: AtomicU64,
    /// Told how long each sync took (metrics).
    observer: std::sync::OnceLock<SyncObserver>,
}

impl GroupCommit {
    pub(super) fn new(path: &Path, mode: SyncMode, files: StableFiles) -> Self {
        Self {
            path: path.to_owned(),
            mode,
            files: Arc::new(files),
            written: AtomicU64::new(0),
            synced: tokio::sync::Mutex::new(0),
            syncs: AtomicU64::new(0),
            observer: std::sync::OnceLock::new(),
        }
    }

    /// The mode the store was opened with.
    pub(super) fn mode(&self) -> SyncMode {
        self.mode
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

    /// How many syncs were made since open.
    #[cfg(test)]
    pub(super) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Returns once every write counted before the call is durable.
    pub(super) async fn sync(&self, db: &sled::Db) -> Result<(), StoreError> {
        let needed = self.written.load(Ordering::SeqCst);
        let mut synced = self.synced.lock().await;
        if *synced >= needed {
            return Ok(());
        }
        let covering = self.written.load(Ordering::SeqCst);
        let (db, files) = (db.clone(), Arc::clone(&self.files));
        let started = std::time::Instant::now();
        let done = tokio::task::spawn_blocking(move || stabilise(&db, &files))
            .await
            .map_err(|e| StoreError::Backend(format!("the sync to disk did not finish: {e}")))?;
        self.finished(done, started)?;
        *synced = covering;
        Ok(())
    }

    /// As [`GroupCommit::sync`], on the calling thread (at open, before any async use).
    pub(super) fn sync_blocking(&self, db: &sled::Db) -> Result<(), StoreError> {
        let covering = self.written.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        self.finished(stabilise(db, &self.files), started)?;
        let mut synced = self.synced.try_lock().map_err(|_| {
            StoreError::Backend("a sync was under way while the store was opening".into())
        })?;
        *synced = covering;
        Ok(())
    }

    /// Counts and times a sync, and turns its failure into a [`StoreError`].
    fn finished(
        &self,
        done: std::io::Result<()>,
        started: std::time::Instant,
    ) -> Result<(), StoreError> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        done.map_err(|e| {
            StoreError::Backend(format!(
                "cannot write the database at {} to disk: {e}",
                self.path.display()
            ))
        })?;
        if let Some(observer) = self.observer.get() {
            observer(started.elapsed());
        }
        Ok(())
    }
}

/// sled's flush (its buffers into the log), then the log and what else sled wrote onto
/// stable storage.
fn stabilise(db: &sled::Db, files: &StableFiles) -> std::io::Result<()> {
    db.flush().map_err(std::io::Error::other)?;
    files.sync()
}
