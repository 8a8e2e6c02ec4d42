//! The OCSP responders of every loaded issuing CA generation behind one URL (`/ocsp`): a
//! request goes to the responder of the issuer its first CertID names (by issuerNameHash and
//! issuerKeyHash), which answers with its own delegated signing certificate, certified by
//! that issuer as RFC 6960 4.2.2.2 asks. CertIDs of other issuers in the same request are
//! answered `unknown`; a request naming no loaded issuer goes to the current generation's
//! responder, which answers `unknown` too.

use std::sync::Arc;

use der::Decode;
use time::Duration;
use x509_ocsp::OcspRequest;

use super::issuer_index::IssuerIndex;
use super::ocsp_responder::{OcspAnswer, OcspResponder};
use super::per_generation::{OfGeneration, PerGeneration};
use super::RevocationError;
use crate::ca::{CertificateAuthority, Generations};
use crate::ra::Clock;
use crate::store::{RevocationStore, ServiceCertificates};

impl OfGeneration for OcspResponder {
    fn ca(&self) -> &Arc<CertificateAuthority> {
        OcspResponder::ca(self)
    }
}

/// The OCSP responders, one per generation.
pub struct OcspResponders {
    store: Arc<dyn RevocationStore>,
    services: Arc<dyn ServiceCertificates>,
    issuers: Arc<IssuerIndex>,
    clock: Arc<dyn Clock>,
    validity: Duration,
    signer_validity: Duration,
    responders: PerGeneration<OcspResponder>,
}

impl OcspResponders {
    /// Issues and records the first delegated signer of every generation `issuers` knows;
    /// `validity` and `signer_validity` as [`OcspResponder::new`] takes them.
    pub async fn new(
        store: Arc<dyn RevocationStore>,
        services: Arc<dyn ServiceCertificates>,
        issuers: Arc<IssuerIndex>,
        clock: Arc<dyn Clock>,
        validity: Duration,
        signer_validity: Duration,
    ) -> Result<Self, RevocationError> {
        let set = Self {
            store,
            services,
            issuers,
            clock,
            validity,
            signer_validity,
            responders: PerGeneration::new(Vec::new()),
        };
        set.sync(&set.issuers.cas().get()).await?;
        Ok(set)
    }

    /// Makes the responders those of `generations`, issuing a signer for each new one.
    pub async fn sync(&self, generations: &Generations) -> Result<(), RevocationError> {
        self.responders
            .sync(generations, |ca| async move {
                OcspResponder::new(
                    self.store.clone(),
                    self.services.clone(),
                    ca,
                    self.issuers.clone(),
                    self.clock.clone(),
                    self.validity,
                    self.signer_validity,
                )
                .await
                .map(Arc::new)
            })
            .await
            .map(|_| ())
    }

    /// The responder of the current generation.
    pub fn current(&self) -> Option<Arc<OcspResponder>> {
        self.responders.for_ca(&self.issuers.cas().current())
    }

    /// Answers a DER OCSPRequest with the responder of the issuer it names. Never fails:
    /// problems become `malformedRequest` or `internalError` answers.
    pub async fn respond(&self, request_der: &[u8]) -> OcspAnswer {
        let all = self.responders.all();
        let chosen = match all.as_slice() {
            [only] => Some(only.clone()),
            _ => {
                let Ok(request) = OcspRequest::from_der(request_der) else {
                    return OcspAnswer::malformed();
                };
                request
                    .tbs_request
                    .request_list
                    .first()
                    .and_then(|first| all.iter().find(|r| r.answers_for(&first.req_cert)))
                    .cloned()
                    .or_else(|| self.current())
            }
        };
        match chosen {
            Some(responder) => responder.respond(request_der).await,
            None => {
                tracing::error!("no OCSP responder for the current issuing CA");
                OcspAnswer::internal_error()
            }
        }
    }
}
