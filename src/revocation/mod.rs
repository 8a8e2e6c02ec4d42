//! Publishing revocation status to relying parties: a CRL (RFC 5280) and an OCSP responder
//! (RFC 6960), served over plain HTTP and on the HTTPS port.
//!
//! - [`crl_publisher`] keeps the current signed CRL; it re-signs it at once when the store
//!   reports a revocation, and on a timer halfway to nextUpdate.
//! - [`ocsp_responder`] answers OCSP requests from a cache of signed responses that a
//!   revocation invalidates, with a delegated signing certificate it rotates itself.
//! - [`arl`] serves the offline root's ARL at `/root.crl`, re-read when its file changes.
//! - [`routes`] are the HTTP routes (`/crl`, `/crl.pem`, `/crl/<generation>`, `/ocsp`,
//!   `/ca.crt`, `/ca/<generation>.crt`, `/ca.pem`) and the operator's `GET /api/v1/crl`.
//! - Every loaded issuing CA generation has its own CRL publisher and OCSP responder
//!   ([`crl_publishers`], [`ocsp_responders`]); [`issuer_index`] tells which generation
//!   issued a certificate. An OCSP responder answers for its own key's certificates; a CRL
//!   lists those of every generation under its name (RFC 5280's CRL scope).
//!
//! This is a front end like EST: it reads the [`store`](crate::store) (the revocation index
//! and its change feed) and has the [`ca`](crate::ca) sign. The registration authority does
//! not know it exists.

pub mod arl;
pub mod crl_publisher;
pub mod crl_publishers;
pub mod issuer_index;
pub mod ocsp_responder;
pub mod ocsp_responders;
pub mod per_generation;
pub mod routes;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ca::{CaError, Generations, IssuingCas};
use crate::config::RevocationConfig;
use crate::model::{RevocationReason, Serial};
use crate::ra::Clock;
use crate::store::{Store, StoreError};

pub use crl_publisher::CrlPublisher;
pub use crl_publishers::CrlPublishers;
pub use issuer_index::IssuerIndex;
pub use ocsp_responder::{OcspAnswer, OcspResponder};
pub use ocsp_responders::OcspResponders;

/// Why revocation status could not be published.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The store could not be read or the CRL number drawn.
    #[error("revocation status: {0}")]
    Store(#[from] StoreError),
    /// Signing a CRL, an OCSP response or the OCSP signer failed.
    #[error("revocation status: {0}")]
    Ca(#[from] CaError),
    /// A signing task did not finish (it panicked or the runtime is stopping).
    #[error("revocation status: a signing task did not finish: {0}")]
    Task(String),
}

/// The current CRL as the operator sees it (`GET /api/v1/crl`, `estca crl show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CrlView {
    /// The CRL number.
    pub number: u64,
    /// thisUpdate.
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// The listed certificates, by serial.
    pub entries: Vec<CrlEntryView>,
}

/// One CRL entry as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CrlEntryView {
    /// The revoked certificate's serial.
    pub serial: Serial,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// The revocation publishers of a running daemon.
pub struct RevocationServices {
    /// The issuing CA generations they publish for.
    pub cas: Arc<IssuingCas>,
    /// The CRL publishers, one per generation.
    pub crl: Arc<CrlPublishers>,
    /// The OCSP responders, one per generation.
    pub ocsp: Arc<OcspResponders>,
    /// The HTTP answers' longest `Cache-Control: max-age`, seconds.
    pub http_max_age_secs: u32,
}

impl RevocationServices {
    /// Builds the publishers of every generation of `cas` and signs their first CRL and
    /// OCSP signer (so that the routes answer from the first request on).
    pub async fn new(
        store: Arc<dyn Store>,
        cas: Arc<IssuingCas>,
        clock: Arc<dyn Clock>,
        config: &RevocationConfig,
    ) -> Result<Self, RevocationError> {
        let issuers = Arc::new(IssuerIndex::new(cas.clone(), store.clone()));
        let crl = CrlPublishers::new(
            store.clone(),
            issuers.clone(),
            clock.clone(),
            time::Duration::hours(i64::from(config.crl_next_update_hours)),
        )
        .await?;
        let ocsp = OcspResponders::new(
            store.clone(),
            store,
            issuers,
            clock,
            time::Duration::minutes(i64::from(config.ocsp_next_update_minutes)),
            time::Duration::hours(i64::from(config.ocsp_signer_validity_hours)),
        )
        .await?;
        Ok(Self {
            cas,
            crl,
            ocsp: Arc::new(ocsp),
            http_max_age_secs: config.http_max_age_secs,
        })
    }

    /// Brings the publishers in step with `generations` (a reload found a new set): signs
    /// the first CRL and OCSP signer of each new generation before the set is put in force,
    /// so that its URLs answer from its first certificate on.
    pub async fn sync(&self, generations: &Generations) -> Result<(), RevocationError> {
        self.crl.sync(generations).await?;
        self.ocsp.sync(generations).await
    }
}

#[cfg(test)]
mod rollover_tests;
#[cfg(test)]
mod tests;
