//! Keeps fjall's journals few, so that fjall never halts writes for "too many journals".
//!
//! fjall 2.11 deletes a sealed journal only once every partition that had unflushed writes
//! when it was sealed has flushed them into a sorted run. A memtable is flushed when it
//! fills, or when fjall's monitor rotates the largest ones to bound the write buffer; a
//! partition written rarely (`meta`, `budgets`, `contracts`) may hold one small write in its
//! memtable for hours, and every journal sealed meanwhile stays on disk. fjall's own remedy
//! (`Monitor::try_reduce_journal_size`) only logs, and once the journals exceed
//! `max_journaling_size` the monitor stops rotating memtables at all ("journal too large"),
//! while every write waits in `check_journal_size` for the journals to shrink: a halt that
//! nothing ends (seen at 1,000,000 IDs, `docs/perf/fjall-1m-write-halt.log`).
//!
//! So after each commit the store counts the journals; from [`MAX_JOURNALS`] on it rotates
//! the memtable of every partition that holds unflushed writes, at most once per
//! [`ROTATION_INTERVAL`]. Their flushes run in fjall's background workers, after which
//! fjall deletes the journals they pinned. Nothing about durability changes: a rotation seals
//! the journal (already synced or about to be, by the group commit) and the flush writes a
//! sorted run that fjall syncs before it drops the journal.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use fjall::{TxKeyspace, TxPartitionHandle};

use crate::store::StoreError;

/// Journals (the active one included) from which the store rotates every memtable. Below
/// what [`super::MAX_JOURNAL_BYTES`] allows (fjall seals a journal when a memtable of up to
/// 16 MiB is flushed), so that fjall's halt is never reached while the flushes run.
pub(super) const MAX_JOURNALS: usize = 3;

/// The least time between two rotations of every memtable: their flushes take a moment,
/// during which the journals are still counted, and commits meanwhile must not rotate again
/// (each rotation seals one more journal and makes small sorted runs).
pub(super) const ROTATION_INTERVAL: Duration = Duration::from_secs(1);

/// Decides when to rotate every memtable, from the journal count.
pub(super) struct JournalKeeper {
    /// When every memtable was last rotated for the journals.
    last_rotation: Mutex<Option<Instant>>,
}

impl JournalKeeper {
    /// A keeper that has rotated nothing yet.
    pub(super) fn new() -> Self {
        Self {
            last_rotation: Mutex::new(None),
        }
    }

    /// Rotates the memtables of `partitions` that hold unflushed writes when the keyspace has
    /// [`MAX_JOURNALS`] journals or more and no rotation was made in the last
    /// [`ROTATION_INTERVAL`]. Returns whether it rotated.
    pub(super) fn bound(
        &self,
        keyspace: &TxKeyspace,
        partitions: &[&TxPartitionHandle],
    ) -> Result<bool, StoreError> {
        if keyspace.journal_count() < MAX_JOURNALS {
            return Ok(false);
        }
        let mut last = self
            .last_rotation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < ROTATION_INTERVAL) {
            return Ok(false);
        }
        *last = Some(Instant::now());
        for partition in partitions {
            partition.inner().rotate_memtable().map_err(|e| {
                StoreError::Backend(format!(
                    "cannot flush partition `{}` to bound the journals: {e}",
                    partition.inner().name
                ))
            })?;
        }
        Ok(true)
    }
}
