//! Group commit: every write returns once it is durable, and concurrent writers share syncs.
//!
//! A write, once the engine has applied it, counts itself ([`GroupCommit::wrote`]), then
//! waits in [`GroupCommit::sync`]. Whoever holds the lock syncs once ([`Disk::sync`], the
//! only part that differs between engines), covering every write counted before it started;
//! writers queued behind it find their write covered and return without syncing again. The
//! sync runs on a blocking thread, so the async threads keep serving meanwhile.
//!
//! A backend may also leave writes waiting for the lock's next holder, who applies them all
//! at once before syncing ([`GroupCommit::apply_then_sync`]; sled's issuances, see
//! `crate::store::sled::batched`).

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

    /// Counts one applied write, so that the next sync knows it has work to do; returns the
    /// generation that a sync must cover for the write to be durable.
    pub(in crate::store) fn wrote(&self) -> u64 {
        self.written.fetch_add(1, Ordering::SeqCst) + 1
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
        self.sync_locked(&mut synced, needed).await
    }

    /// Holding the sync lock, runs `apply`, which applies what writers left waiting for it
    /// (see `crate::store::sled::batched`) and returns the generation the caller's own write
    /// needs covered; then, in [`SyncMode::EveryWrite`], makes that generation durable. One
    /// holder applying many waiting writes at once, just before the sync that covers them,
    /// is what lets them share one staged write as well as one sync.
    pub(in crate::store) async fn apply_then_sync(
        &self,
        apply: impl FnOnce() -> u64,
    ) -> Result<(), StoreError> {
        let mut synced = self.synced.lock().await;
        let needed = apply();
        match self.mode {
            SyncMode::EveryWrite => self.sync_locked(&mut synced, needed).await,
            SyncMode::Deferred => Ok(()),
        }
    }

    /// Makes generation `needed` durable, holding the sync lock (`synced`): at once if a
    /// sync covered it already, else by one sync covering every write counted so far.
    async fn sync_locked(&self, synced: &mut u64, needed: u64) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// A disk that counts its syncs, takes a while over each, and fails when told to.
    #[derive(Default)]
    struct FakeDisk {
        syncs: AtomicU64,
        failing: AtomicBool,
    }

    impl Disk for Arc<FakeDisk> {
        fn sync(&self) -> std::io::Result<()> {
            std::thread::sleep(std::time::Duration::from_millis(5));
            self.syncs.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("the disk is gone"));
            }
            Ok(())
        }
    }

    fn group_commit(mode: SyncMode) -> (Arc<GroupCommit<Arc<FakeDisk>>>, Arc<FakeDisk>) {
        let disk = Arc::new(FakeDisk::default());
        let commit = GroupCommit::new(Path::new("/db"), mode, Arc::clone(&disk));
        (Arc::new(commit), disk)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_syncs_and_nothing_written_syncs_nothing() {
        let (commit, disk) = group_commit(SyncMode::EveryWrite);
        commit.sync().await.unwrap();
        assert_eq!(disk.syncs.load(Ordering::SeqCst), 0, "nothing to sync");
        let writers: Vec<_> = (0..20)
            .map(|_| {
                let commit = Arc::clone(&commit);
                tokio::spawn(async move {
                    commit.wrote();
                    commit.sync().await
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        let syncs = disk.syncs.load(Ordering::SeqCst);
        assert!((1..20).contains(&syncs), "{syncs} syncs for 20 writers");
        assert_eq!(commit.syncs(), syncs);
        commit.sync().await.unwrap();
        assert_eq!(disk.syncs.load(Ordering::SeqCst), syncs, "all covered");
    }

    #[tokio::test]
    async fn apply_then_sync_makes_durable_what_its_caller_needs_and_no_more() {
        let (commit, disk) = group_commit(SyncMode::EveryWrite);
        let applied = commit
            .apply_then_sync(|| commit.wrote())
            .await
            .map(|()| commit.written.load(Ordering::SeqCst))
            .unwrap();
        assert_eq!(disk.syncs.load(Ordering::SeqCst), 1);
        // A writer whose write that sync covered returns without another, although other
        // writes (a serial's reservation) were counted since.
        commit.wrote();
        commit.apply_then_sync(|| applied).await.unwrap();
        commit.apply_then_sync(|| 0).await.unwrap();
        assert_eq!(disk.syncs.load(Ordering::SeqCst), 1);
        commit.apply_then_sync(|| applied + 1).await.unwrap();
        assert_eq!(disk.syncs.load(Ordering::SeqCst), 2);

        let (deferred, disk) = group_commit(SyncMode::Deferred);
        let mut ran = false;
        deferred
            .apply_then_sync(|| {
                ran = true;
                deferred.wrote()
            })
            .await
            .unwrap();
        assert!(ran);
        assert_eq!(
            disk.syncs.load(Ordering::SeqCst),
            0,
            "deferred: applied only"
        );
    }

    #[tokio::test]
    async fn deferred_writes_wait_for_sync_all_and_failures_name_the_database() {
        let (commit, disk) = group_commit(SyncMode::Deferred);
        let observed = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&observed);
        commit.observe(Arc::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        commit.wrote();
        commit.sync().await.unwrap();
        assert_eq!(disk.syncs.load(Ordering::SeqCst), 0);
        commit.sync_all().await.unwrap();
        assert_eq!(disk.syncs.load(Ordering::SeqCst), 1);
        assert_eq!(observed.load(Ordering::SeqCst), 1);

        disk.failing.store(true, Ordering::SeqCst);
        commit.wrote();
        let failed = commit.sync_all().await.unwrap_err().to_string();
        assert!(
            failed.contains("/db") && failed.contains("the disk is gone"),
            "{failed}"
        );
        assert_eq!(
            observed.load(Ordering::SeqCst),
            1,
            "a failed sync is not timed"
        );
        // The write is still not durable: the next sync tries again.
        disk.failing.store(false, Ordering::SeqCst);
        commit.sync_all().await.unwrap();
        assert_eq!(disk.syncs.load(Ordering::SeqCst), 3);
    }
}
