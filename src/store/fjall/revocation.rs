//! [`RevocationStore`] on fjall: the revocation index by pages, CRL numbers, the change feed.

use async_trait::async_trait;

use super::{tx_get, FjallStore, META, REVOKED};
use crate::store::{rows, rules};
use crate::store::{Page, PageRequest, RevocationStore, RevokedCertificate, StoreError};

/// `meta` key of the last CRL number drawn.
pub(super) const META_CRL_NUMBER: &[u8] = b"crl_number";

#[async_trait]
impl RevocationStore for FjallStore {
    async fn revoked_certificates(
        &self,
        page: PageRequest,
    ) -> Result<Page<RevokedCertificate>, StoreError> {
        self.page(
            &self.parts.revoked,
            REVOKED,
            crate::store::listing::Listing::Revoked,
            &page,
        )
    }

    async fn next_crl_number(&self, floor: u64) -> Result<u64, StoreError> {
        // One transaction at a time: concurrent callers each get their own number.
        let (number, _) = self.transact(|tx| {
            let last = tx_get(tx, &self.parts.meta, META, META_CRL_NUMBER)?
                .map(|bytes| rows::u64_be(META, META_CRL_NUMBER, &bytes))
                .transpose()?
                .unwrap_or(0);
            let next = rules::crl_number_after(last, floor)?;
            tx.insert(&self.parts.meta, META_CRL_NUMBER, next.to_be_bytes());
            Ok((next, true))
        })?;
        self.durability.wrote();
        self.sync().await?;
        Ok(number)
    }

    fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }
}
