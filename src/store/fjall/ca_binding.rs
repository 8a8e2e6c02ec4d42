//! [`CaBinding`] on fjall: the fingerprint in `meta/ca_key`.

use async_trait::async_trait;

use super::{storage, tx_get, FjallStore, META};
use crate::model::KeyFingerprint;
use crate::store::ca_binding::{stored_ca_key, META_CA_KEY};
use crate::store::writes::durably;
use crate::store::{CaBinding, StoreError};

#[async_trait]
impl CaBinding for FjallStore {
    async fn bound_ca(&self) -> Result<Option<KeyFingerprint>, StoreError> {
        self.keyspace
            .read_tx()
            .get(&self.parts.meta, META_CA_KEY)
            .map_err(|e| storage(META, e))?
            .map(|bytes| stored_ca_key(&bytes))
            .transpose()
    }

    async fn bind_ca(&self, key: KeyFingerprint) -> Result<KeyFingerprint, StoreError> {
        // One transaction at a time: of two binds, the second finds the first's key.
        durably(self, || {
            self.transact(
                |tx| match tx_get(tx, &self.parts.meta, META, META_CA_KEY)? {
                    Some(found) => Ok((stored_ca_key(&found)?, false)),
                    None => {
                        tx.insert(&self.parts.meta, META_CA_KEY, key.0);
                        Ok((key, true))
                    }
                },
            )
        })
        .await
    }

    async fn rebind_ca(&self, key: KeyFingerprint) -> Result<(), StoreError> {
        durably(self, || {
            self.transact(|tx| {
                tx.insert(&self.parts.meta, META_CA_KEY, key.0);
                Ok(((), true))
            })
        })
        .await
    }
}
