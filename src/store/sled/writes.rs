//! [`RaStore`](crate::store::RaStore) and
//! [`ServiceCertificates`](crate::store::ServiceCertificates) on sled, by the shared write
//! path ([`crate::store::writes`]): each write is one [`staged`](super::staged) write, applied while holding
//! the export lock shared.

use super::durability::SledDisk;
use super::SledStore;
use crate::store::durability::GroupCommit;
use crate::store::writes::{durable_writes, Engine};
use crate::store::StoreError;

impl Engine for SledStore {
    type Disk = SledDisk;

    fn group_commit(&self) -> &GroupCommit<SledDisk> {
        &self.durability
    }

    fn revocation_feed(&self) -> &tokio::sync::watch::Sender<u64> {
        &self.revocations
    }

    fn applying<T>(&self, apply: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let _writing = self.writing();
        apply()
    }
}

durable_writes!(SledStore);
