//! How fjall's commits reach stable storage, for the store's group commit
//! ([`crate::store::durability`]).
//!
//! A write commits its transaction (appended to fjall's journal in memory); the sync writes
//! the journal out and `fdatasync`s it once for every commit counted before it. The journal
//! file is allocated ahead and fjall `fsync`s it (and its directory) when it starts a new one,
//! so `fdatasync` is enough to read every acknowledged commit back.

use fjall::{PersistMode, TxKeyspace};

use crate::store::durability::Disk;

impl Disk for TxKeyspace {
    fn sync(&self) -> std::io::Result<()> {
        self.persist(PersistMode::SyncData)
            .map_err(std::io::Error::other)
    }
}
