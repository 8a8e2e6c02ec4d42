//! Group commit: every write returns once it is durable, and concurrent writers share syncs.
//!
//! A write, once the engine has applied it, counts itself ([`GroupCommit::wrote`]), then
//! waits in [`GroupCommit::sync`]. Whoever holds the lock syncs once ([`Disk::sync`], the
//! only part that differs between engines), covering every write counted before it started;
//! writers queued behind it find their write covered and return without syncing again. The
//! sync runs on a blocking thread, so the async threads keep serving meanwhile.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::store::{StoreError, SyncMode, SyncObserver};

/// How an engine makes what it has applied reach stable storage.
pub(in crate::store) trait Disk: Send + Sync + 'static {
    /// Makes every write applied so far durable (blocking, for as long as the disk takes).
    fn sync(&self) -> std::io::Result<()>;
}

/// What has been written and what has been made durable.
pub(in crate::store) struct GroupCommit<D: Disk> {
    path: PathBuf,
    mode: SyncMode,
    disk: Arc<D>,
    /// Writes applied so far (the commit generation).
    written: AtomicU64,
    /// The generation the last completed sync covered; held while syncing.
    synced: tokio::sync::Mutex<u64>,
    /// Syncs actually made.
    syncs: AtomicU64,
    /// Told how long each sync took (metrics).
    observer: std::sync::OnceLock<SyncObserver>,
}

impl<D: Disk> GroupCommit<D> {
    /// Group commit for the database at `path` (for messages), synced through `disk`.
    pub(in crate::store) fn new(path: &Path, mode: SyncMode, disk: D) -> Self {
        Self {
            path: path.to_owned(),
            mode,
            disk: Arc::new(disk),
            written: AtomicU64::new(0),
            synced: tokio::sync::Mutex::new(0),
            syncs: AtomicU64::new(0),
            observer: std::sync::OnceLock::new(),
        }
    }

    /// Has `observer` told the duration of every sync from now on (once; later calls are
    /// ignored).
    pub(in crate::store) fn observe(&self, observer: SyncObserver) {
        let _ = self.observer.set(observer);
    }

    /// Counts one applied write, so that the next sync knows it has work to do.
    pub(in crate::store) fn wrote(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// How many syncs were made since open.
    #[cfg(test)]
    pub(in crate::store) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Returns once every write counted before the call is durable; in [`SyncMode::Deferred`]
    /// at once (see [`GroupCommit::sync_all`]).
    pub(in crate::store) async fn sync(&self) -> Result<(), StoreError> {
        match self.mode {
            SyncMode::EveryWrite => self.sync_all().await,
            SyncMode::Deferred => Ok(()),
        }
    }

    /// Returns once every write counted before the call is durable, whatever the mode.
    pub(in crate::store) async fn sync_all(&self) -> Result<(), StoreError> {
        let needed = self.written.load(Ordering::SeqCst);
        let mut synced = self.synced.lock().await;
        if *synced >= needed {
            return Ok(());
        }
        let covering = self.written.load(Ordering::SeqCst);
        let disk = Arc::clone(&self.disk);
        let started = std::time::Instant::now();
        let done = tokio::task::spawn_blocking(move || disk.sync())
            .await
            .map_err(|e| StoreError::Backend(format!("the sync to disk did not finish: {e}")))?;
        self.finished(done, started)?;
        *synced = covering;
        Ok(())
    }

    /// As [`GroupCommit::sync_all`], on the calling thread (at open, before any async use).
    pub(in crate::store) fn sync_blocking(&self) -> Result<(), StoreError> {
        let covering = self.written.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        self.finished(self.disk.sync(), started)?;
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
