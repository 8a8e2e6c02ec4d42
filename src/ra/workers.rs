//! CPU-heavy work of the registration authority (Argon2 password checks, server-side key
//! generation) on a fixed set of threads of its own, with a bound on the jobs admitted.
//!
//! A request that needs such work first takes a place ([`Workers::admit`]); when the threads
//! are all busy and `queued` more are already waiting, it is refused at once
//! ([`WorkError::Busy`], answered 503) instead of piling up: a flood of password guesses or of
//! RSA key generations costs the daemon at most `threads` cores and a bounded queue, never
//! one thread or one key in memory per request. A place whose request is dropped while it
//! waits is given back without its work ever running.
//!
//! The threads are the pool's own rather than tokio's blocking pool: the allocator keeps a
//! freed Argon2 block (19 MiB by default) per thread arena, so spreading hashes over the
//! blocking pool's many threads let a password flood grow the daemon to hundreds of MiB; a
//! fixed set bounds that to one block per thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::Semaphore;

/// Why work could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// Every thread is busy and the queue is full; retry later.
    #[error("too much of this work is in progress")]
    Busy,
    /// The threads could not be started, are gone, or the work panicked.
    #[error("{0}")]
    Failed(String),
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for one kind of CPU-heavy work, and its admission bound.
#[derive(Debug)]
pub struct Workers {
    /// One permit per thread: a job is handed to the threads only once it holds one, so a
    /// dropped request never leaves work behind in the channel.
    slots: Arc<Semaphore>,
    threads: usize,
    admitted: AtomicUsize,
    capacity: usize,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Workers {
    /// Starts `threads` (at least one) threads named `{name}-{i}`, admitting at most
    /// `threads + queued` jobs at a time. The threads end when the `Workers` is dropped.
    pub fn new(name: &str, threads: usize, queued: usize) -> Result<Self, WorkError> {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || loop {
                    let next = match receiver.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = next else { return };
                    // A panicking job loses its answer (the caller sees an error), not the thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                })
                .map_err(|e| WorkError::Failed(format!("cannot start a {name} thread: {e}")))?;
        }
        Ok(Self {
            slots: Arc::new(Semaphore::new(threads)),
            threads,
            admitted: AtomicUsize::new(0),
            capacity: threads + queued,
            jobs: Mutex::new(sender),
        })
    }

    /// Takes a place among the jobs running or waiting, or refuses at once
    /// ([`WorkError::Busy`]) when `threads + queued` are taken. Admission is decided here,
    /// before the caller commits anything, and the place is held until the slot is used or
    /// dropped.
    pub fn admit(&self) -> Result<WorkSlot<'_>, WorkError> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(WorkError::Busy);
        }
        Ok(WorkSlot {
            workers: self,
            _admission: Admission(&self.admitted),
        })
    }

    /// Jobs admitted and waiting for a thread now (for metrics and tests).
    pub fn queue_depth(&self) -> usize {
        self.admitted
            .load(Ordering::Relaxed)
            .saturating_sub(self.threads)
    }
}

/// A place among the jobs admitted by [`Workers::admit`].
pub struct WorkSlot<'a> {
    workers: &'a Workers,
    _admission: Admission<'a>,
}

impl WorkSlot<'_> {
    /// Waits for a thread and runs `work` on it.
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkError> {
        let permit = self
            .workers
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WorkError::Busy)?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = work();
            drop(permit);
            let _ = answer.send(out);
        });
        let gone = || WorkError::Failed("the worker threads are gone".into());
        self.workers
            .jobs
            .lock()
            .map_err(|_| gone())?
            .send(job)
            .map_err(|_| gone())?;
        answered
            .await
            .map_err(|_| WorkError::Failed("the work failed unexpectedly".into()))
    }
}

impl std::fmt::Debug for WorkSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkSlot").finish_non_exhaustive()
    }
}

/// Releases an admission when the job ends, however it ends (even if its future is dropped).
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// However many jobs are submitted at once, no more than `threads` run at a time, the
    /// jobs beyond `threads + queued` are refused, and every admitted one completes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_threads_jobs_run_at_once_and_the_rest_beyond_the_queue_are_refused() {
        let workers = Arc::new(Workers::new("test-work", 2, 3).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let (workers, running, peak) = (workers.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let slot = workers.admit()?;
                slot.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let (mut done, mut busy) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => done += 1,
                Err(WorkError::Busy) => busy += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            2,
            "two threads, two jobs at once"
        );
        assert!(
            done >= 5,
            "the two running and three queued complete: {done}"
        );
        assert!(busy > 0, "some of 24 simultaneous jobs must be refused");
        assert_eq!(done + busy, 24);
        assert_eq!(workers.queue_depth(), 0);
    }

    /// A request dropped while it waits gives its place back and its work never runs.
    #[tokio::test]
    async fn a_dropped_waiter_runs_nothing_and_frees_its_place() {
        let workers = Workers::new("test-drop", 1, 1).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let first = workers.admit().unwrap().run(move || {
            let _ = released.recv_timeout(Duration::from_secs(5));
        });
        let ran_too = ran.clone();
        let waiter = workers.admit().unwrap().run(move || {
            ran_too.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(workers.admit().unwrap_err(), WorkError::Busy);
        let release_later = async {
            tokio::time::sleep(Duration::from_millis(60)).await;
            release.send(()).unwrap();
        };
        // The first job holds the only thread; the waiter gives up (is dropped) after 20 ms.
        let (first, waited, ()) = tokio::join!(
            first,
            tokio::time::timeout(Duration::from_millis(20), waiter),
            release_later
        );
        first.unwrap();
        assert!(waited.is_err(), "the waiter cannot have had a thread");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        let (_a, _b) = (workers.admit().unwrap(), workers.admit().unwrap());
    }
}
