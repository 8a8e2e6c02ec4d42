//! [`RaStore`](crate::store::RaStore) and
//! [`ServiceCertificates`](crate::store::ServiceCertificates) on sled, by the shared write
//! path ([`crate::store::writes`]): each write of more than one record is a
//! [`staged`](super::staged) write.

use super::durability::SledDisk;
use super::SledStore;
use crate::store::durability::GroupCommit;
use crate::store::writes::{durable_writes, Engine};

impl Engine for SledStore {
    type Disk = SledDisk;

    fn group_commit(&self) -> &GroupCommit<SledDisk> {
        &self.durability
    }

    fn revocation_feed(&self) -> &tokio::sync::watch::Sender<u64> {
        &self.revocations
    }
}

durable_writes!(SledStore);
