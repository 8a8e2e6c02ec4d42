//! How sled's writes reach stable storage, for the store's group commit
//! ([`crate::store::durability`]): sled's flush (its buffers into the log), then
//! [`StableFiles::sync`] (`fdatasync` of the log and what else sled wrote).

use super::stable::StableFiles;
use crate::store::durability::Disk;

/// The database and the files of it that must reach stable storage.
pub(in crate::store) struct SledDisk {
    /// The database, whose buffers go into the log first.
    pub(super) db: sled::Db,
    /// The files sled wrote.
    pub(super) files: StableFiles,
}

impl Disk for SledDisk {
    fn sync(&self) -> std::io::Result<()> {
        self.db.flush().map_err(std::io::Error::other)?;
        self.files.sync()
    }
}
