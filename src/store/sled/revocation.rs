//! [`RevocationStore`] on sled: the revocation index by pages, CRL numbers, the change feed.

use async_trait::async_trait;

use super::{storage, SledStore, META};
use crate::store::listing::Listing;
use crate::store::rows::u64_be;
use crate::store::rules;
use crate::store::{Page, PageRequest, RevocationStore, RevokedCertificate, StoreError};

/// `meta` key of the last CRL number drawn.
pub(super) const META_CRL_NUMBER: &[u8] = b"crl_number";

impl SledStore {
    /// The last CRL number drawn, if any.
    pub(super) fn last_crl_number(&self) -> Result<Option<u64>, StoreError> {
        match self
            .meta
            .get(META_CRL_NUMBER)
            .map_err(|e| storage(META, e))?
        {
            Some(bytes) => u64_be(META, META_CRL_NUMBER, &bytes).map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl RevocationStore for SledStore {
    async fn revoked_certificates(
        &self,
        page: PageRequest,
    ) -> Result<Page<RevokedCertificate>, StoreError> {
        self.page(&self.revoked, Listing::Revoked, &page)
    }

    async fn next_crl_number(&self, floor: u64) -> Result<u64, StoreError> {
        let mut exhausted = None;
        // update_and_fetch is an atomic compare-and-swap loop: concurrent callers each get
        // their own number.
        let stored = self
            .meta
            .update_and_fetch(META_CRL_NUMBER, |old| {
                let last = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                match rules::crl_number_after(last, floor) {
                    Ok(next) => Some(next.to_be_bytes().to_vec()),
                    Err(e) => {
                        exhausted = Some(e);
                        old.map(<[u8]>::to_vec)
                    }
                }
            })
            .map_err(|e| storage(META, e))?;
        if let Some(e) = exhausted {
            return Err(e);
        }
        let number = match stored {
            Some(bytes) => u64_be(META, META_CRL_NUMBER, &bytes)?,
            None => return Err(StoreError::Backend("no CRL number was stored".into())),
        };
        self.durability.wrote();
        self.sync().await?;
        Ok(number)
    }

    fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }
}
