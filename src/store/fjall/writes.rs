//! [`RaStore`](crate::store::RaStore) and
//! [`ServiceCertificates`](crate::store::ServiceCertificates) on fjall, by the shared write
//! path ([`crate::store::writes`]): each write is one fjall transaction, committed only if it
//! succeeds and changed something.

use fjall::{TxKeyspace, WriteTransaction};

use super::{storage, FjallStore};
use crate::store::durability::GroupCommit;
use crate::store::writes::{durable_writes, Engine};
use crate::store::StoreError;

impl FjallStore {
    /// Runs `apply` in one write transaction. The transaction is committed when `apply`
    /// succeeds and says it wrote; otherwise nothing it did is kept. Returns what `apply`
    /// returned; the caller counts the commit for the next sync.
    pub(super) fn transact<T>(
        &self,
        apply: impl FnOnce(&mut WriteTransaction<'_>) -> Result<(T, bool), StoreError>,
    ) -> Result<(T, bool), StoreError> {
        let mut tx = self.keyspace.write_tx();
        match apply(&mut tx) {
            Ok((out, true)) => {
                tx.commit()
                    .map_err(|e| storage("(transaction commit)", e))?;
                // The commit stands whatever happens here; fjall poisons the keyspace on a
                // failed rotation, so the next write reports it.
                if let Err(e) = self.bound_journals() {
                    tracing::error!("{e}");
                }
                Ok((out, true))
            }
            Ok((out, false)) => {
                tx.rollback();
                Ok((out, false))
            }
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }
}

impl Engine for FjallStore {
    type Disk = TxKeyspace;

    fn group_commit(&self) -> &GroupCommit<TxKeyspace> {
        &self.durability
    }

    fn revocation_feed(&self) -> &tokio::sync::watch::Sender<u64> {
        &self.revocations
    }
}

durable_writes!(FjallStore);
