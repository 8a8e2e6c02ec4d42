//! [`CaBinding`] on sled: the fingerprint in `meta/ca_key`.

use async_trait::async_trait;

use super::{storage, SledStore, META};
use crate::model::KeyFingerprint;
use crate::store::ca_binding::{stored_ca_key, META_CA_KEY};
use crate::store::writes::{always_durably, durably};
use crate::store::{CaBinding, StoreError};

#[async_trait]
impl CaBinding for SledStore {
    async fn bound_ca(&self) -> Result<Option<KeyFingerprint>, StoreError> {
        self.meta
            .get(META_CA_KEY)
            .map_err(|e| storage(META, e))?
            .map(|bytes| stored_ca_key(&bytes))
            .transpose()
    }

    async fn bind_ca(&self, key: KeyFingerprint) -> Result<KeyFingerprint, StoreError> {
        durably(self, || {
            let swapped = self
                .meta
                .compare_and_swap(META_CA_KEY, None as Option<&[u8]>, Some(&key.0[..]))
                .map_err(|e| storage(META, e))?;
            match swapped {
                Ok(()) => Ok((key, true)),
                Err(found) => Ok((
                    stored_ca_key(found.current.as_deref().unwrap_or_default())?,
                    false,
                )),
            }
        })
        .await
    }

    async fn rebind_ca(&self, key: KeyFingerprint) -> Result<(), StoreError> {
        always_durably(self, || {
            self.meta
                .insert(META_CA_KEY, &key.0[..])
                .map(drop)
                .map_err(|e| storage(META, e))
        })
        .await
    }
}
