//! Group commit: every write returns once it is durable, and concurrent writers share syncs.
//!
//! A write, once the engine has applied it, counts itself ([`GroupCommit::wrote`]), then
//! waits in [`GroupCommit::sync`]. When no sync is under way, the writer starts one
//! ([`Disk::sync`], the only part that differs between engines) covering every write counted
//! before it started; writers arriving meanwhile wait for it to finish, and all of them are
//! woken at once when it does: those it covered return, the others start the next sync. The
//! sync runs on a blocking thread, so the async threads keep serving meanwhile.
//!
//! Waking every waiter at once matters under load: with writers queued on a lock instead,
//! each covered writer woke the next only once it had run, so the last of sixteen waited for
//! fifteen turns of a busy scheduler after its write was already durable.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

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
    /// Writes applied so far (the commit generation).
    written: AtomicU64,
    /// The disk, and the syncs under way and done.
    syncing: Arc<Syncing<D>>,
    /// Syncs actually made.
    syncs: AtomicU64,
    /// Told how long each sync took (metrics).
    observer: std::sync::OnceLock<SyncObserver>,
}

/// What the blocking thread of a sync needs: it, not the writer that started the sync,
/// says when the sync is over, so a writer that stops waiting (its request dropped) cannot
/// leave the others waiting for a sync nobody will report.
struct Syncing<D: Disk> {
    disk: D,
    /// Whether a sync is under way.
    under_way: AtomicBool,
    /// What the syncs have done so far; every waiter watches it.
    done: watch::Sender<Synced>,
}

/// What the syncs have done so far.
#[derive(Debug, Clone, Copy, Default)]
struct Synced {
    /// The generation the completed syncs cover.
    covered: u64,
    /// Syncs over, failed ones too (so that waiters wake after each and look again).
    over: u64,
}

/// Ends a sync when dropped, on the sync's blocking thread: no sync under way any more,
/// `covered` recorded when it succeeded, and every waiter woken. Dropped on a panic too.
struct EndOfSync<D: Disk> {
    syncing: Arc<Syncing<D>>,
    covered: Option<u64>,
}

impl<D: Disk> Drop for EndOfSync<D> {
    fn drop(&mut self) {
        // Cleared before the waiters wake, so that one of them can start the next sync.
        self.syncing.under_way.store(false, Ordering::SeqCst);
        let covered = self.covered;
        self.syncing.done.send_modify(|synced| {
            if let Some(covered) = covered {
                synced.covered = synced.covered.max(covered);
            }
            synced.over += 1;
        });
    }
}

impl<D: Disk> Syncing<D> {
    /// Syncs, `under_way` being set, covering the writes up to `covering`; then ends the
    /// sync ([`EndOfSync`]).
    fn sync_covering(self: Arc<Self>, covering: u64) -> std::io::Result<()> {
        let mut end = EndOfSync {
            syncing: self,
            covered: None,
        };
        let done = end.syncing.disk.sync();
        if done.is_ok() {
            end.covered = Some(covering);
        }
        done
    }
}

impl<D: Disk> GroupCommit<D> {
    /// Group commit for the database at `path` (for messages), synced through `disk`.
    pub(in crate::store) fn new(path: &Path, mode: SyncMode, disk: D) -> Self {
        Self {
            path: path.to_owned(),
            mode,
            written: AtomicU64::new(0),
            syncing: Arc::new(Syncing {
                disk,
                under_way: AtomicBool::new(false),
                done: watch::Sender::new(Synced::default()),
            }),
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
        let mut watching = self.syncing.done.subscribe();
        loop {
            // Marked seen before looking at `under_way`: a sync that ends after this line
            // wakes `changed` below, so no end is missed.
            if watching.borrow_and_update().covered >= needed {
                return Ok(());
            }
            let starts = self
                .syncing
                .under_way
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if starts {
                return self.run_sync().await;
            }
            // Another writer's sync is under way: wait for its end, then look again.
            watching.changed().await.map_err(|_| {
                StoreError::Backend("the store closed while a write was being synced".into())
            })?;
        }
    }

    /// Runs one sync, `under_way` being set by the caller; covers every write counted so far.
    async fn run_sync(&self) -> Result<(), StoreError> {
        let covering = self.written.load(Ordering::SeqCst);
        let syncing = Arc::clone(&self.syncing);
        let started = std::time::Instant::now();
        let done = tokio::task::spawn_blocking(move || syncing.sync_covering(covering))
            .await
            .map_err(|e| StoreError::Backend(format!("the sync to disk did not finish: {e}")))?;
        self.finished(done, started)
    }

    /// As [`GroupCommit::sync_all`], on the calling thread (at open, before any async use).
    pub(in crate::store) fn sync_blocking(&self) -> Result<(), StoreError> {
        if self
            .syncing
            .under_way
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(StoreError::Backend(
                "a sync was under way while the store was opening".into(),
            ));
        }
        let covering = self.written.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        let done = Arc::clone(&self.syncing).sync_covering(covering);
        self.finished(done, started)
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

    /// A writer whose request is dropped while its sync runs leaves nobody waiting: the
    /// sync's own thread says when it is over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_dropped_during_its_sync_leaves_no_one_waiting() {
        let (commit, disk) = group_commit(SyncMode::EveryWrite);
        commit.wrote();
        let first = {
            let commit = Arc::clone(&commit);
            tokio::spawn(async move { commit.sync().await })
        };
        // Dropped while its sync (5 ms on this disk) is under way.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        commit.wrote();
        tokio::time::timeout(std::time::Duration::from_secs(5), commit.sync())
            .await
            .expect("the next writer is not left waiting")
            .unwrap();
        assert!(
            disk.syncs.load(Ordering::SeqCst) >= 2,
            "the second write got a sync of its own"
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
