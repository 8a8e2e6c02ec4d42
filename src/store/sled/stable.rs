//! What sled writes in a database directory, and how to make it reach stable storage.
//!
//! sled 0.34 writes (see its `config.rs`, `pagecache/iobuf.rs`, `snapshot.rs`, `blob_io.rs`):
//!
//! - `db`: the log, with `pwrite` then `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on
//!   Linux. That call neither writes the file's metadata (its size, the extents of new blocks)
//!   nor flushes the disk's write cache, and its man page promises nothing after a crash: a
//!   log that survives a process kill may not survive a power cut.
//! - `conf`: the storage parameters, written once when the database is created, never synced.
//! - `snap.<lsn>`: snapshots of the page table, written as `snap.<lsn>.generating`, synced,
//!   renamed; older ones removed. The directory is never synced.
//! - `blobs/<lsn>`: values too large for a log segment (over a quarter of its 512 KiB; no row
//!   of estca comes near), created, written and never synced.
//!
//! So after sled's own flush, [`StableFiles::sync`] syncs new blob files and the `blobs`
//! directory, the database directory when its entries changed (a new snapshot name), and
//! last the log with `fdatasync` (its data and the metadata needed to read it back), through
//! handles of its own: a sync acts on the file, whichever descriptor asks. At open,
//! [`StableFiles::open`] syncs `conf`, the log, both directories and the directory holding
//! the database (which sled may just have created). What remains is sled's: a blob it wrote
//! is synced after the log record pointing to it reached the page cache, not before.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The log file sled writes in the database directory.
const LOG: &str = "db";
/// sled's storage parameters.
const CONF: &str = "conf";
/// sled's directory of large values.
const BLOBS: &str = "blobs";

/// Handles on what sled wrote, and the names already synced.
pub(super) struct StableFiles {
    dir: PathBuf,
    log: File,
    /// The entries of the database directory and of `blobs` at the last sync.
    synced: Mutex<Entries>,
}

/// The names in the database directory and in its `blobs` directory.
#[derive(Default, PartialEq, Eq)]
struct Entries {
    dir: BTreeSet<OsString>,
    blobs: BTreeSet<OsString>,
}

impl StableFiles {
    /// Syncs what sled created at open (files, directories, the database's own entry in its
    /// parent), and keeps a handle on the log for later syncs.
    pub(super) fn open(dir: &Path) -> io::Result<Self> {
        let log = File::open(dir.join(LOG))?;
        let conf = dir.join(CONF);
        if conf.exists() {
            File::open(&conf)?.sync_all()?;
        }
        log.sync_all()?;
        let entries = Entries::read(dir)?;
        for blob in &entries.blobs {
            File::open(dir.join(BLOBS).join(blob))?.sync_all()?;
        }
        sync_dir(&dir.join(BLOBS))?;
        sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            log,
            synced: Mutex::new(entries),
        })
    }

    /// Makes what sled has written so far reach stable storage (call after sled's flush).
    pub(super) fn sync(&self) -> io::Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        let now = Entries::read(&self.dir)?;
        if now.blobs != synced.blobs {
            for blob in now.blobs.difference(&synced.blobs) {
                match File::open(self.dir.join(BLOBS).join(blob)) {
                    Ok(file) => file.sync_all()?,
                    // Collected by sled meanwhile: nothing to keep.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            sync_dir(&self.dir.join(BLOBS))?;
        }
        if now.dir != synced.dir {
            sync_dir(&self.dir)?;
        }
        self.log.sync_data()?;
        *synced = now;
        Ok(())
    }
}

impl Entries {
    fn read(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            dir: names(dir)?,
            blobs: names(&dir.join(BLOBS))?,
        })
    }
}

/// The names in a directory (none if it does not exist).
fn names(dir: &Path) -> io::Result<BTreeSet<OsString>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

/// Makes a directory's entries durable (a new, renamed or removed name).
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir) {
        Ok(handle) => handle.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
