//! Which issuing CA generation issued a certificate, for the CRL and the OCSP answers of
//! each generation.
//!
//! The store keeps every certificate's DER, whose authority key identifier names its issuer,
//! so no separate issuer field is needed (and rows written before rollover existed need no
//! migration). The CRL publishers read the revocation index, which holds serials only; the
//! index below reads each revoked certificate's record once and remembers its issuer (it
//! never changes), so that re-signing a CRL costs no lookup for the serials seen before.
//! With one generation loaded nothing is read at all: every certificate that has not
//! expired is that generation's ([`crate::ca::generations`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ca::{CertificateAuthority, IssuingCas};
use crate::model::{CertificateRecord, Serial};
use crate::store::{RevocationStore, RevokedCertificate, StoreError};

/// Most issuers remembered; past that the memory is emptied and refilled.
const MAX_REMEMBERED: usize = 1_000_000;

/// Tells which generation issued a certificate.
pub struct IssuerIndex {
    cas: Arc<IssuingCas>,
    store: Arc<dyn RevocationStore>,
    /// Serial → the issuer's key identifier (empty when no loaded generation issued it).
    known: Mutex<HashMap<Serial, Vec<u8>>>,
}

impl IssuerIndex {
    /// An index over the generations of `cas`, reading records from `store`.
    pub fn new(cas: Arc<IssuingCas>, store: Arc<dyn RevocationStore>) -> Self {
        Self {
            cas,
            store,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The issuing CAs it tells apart.
    pub fn cas(&self) -> &Arc<IssuingCas> {
        &self.cas
    }

    /// True when `ca` issued `record`.
    pub fn issued(&self, ca: &CertificateAuthority, record: &CertificateRecord) -> bool {
        let generations = self.cas.get();
        generations
            .issuer_of(&record.der)
            .is_some_and(|issuer| issuer.key_id() == ca.key_id())
    }

    /// The entries of `revoked` that `ca` issued, in their order; none while `ca` is not yet
    /// in force.
    pub async fn issued_by(
        &self,
        ca: &CertificateAuthority,
        revoked: Vec<RevokedCertificate>,
    ) -> Result<Vec<RevokedCertificate>, StoreError> {
        let generations = self.cas.get();
        if !generations.all().any(|g| g.key_id() == ca.key_id()) {
            // A reload is putting `ca` in place (its first CRL is signed before it is in
            // force): it has issued nothing yet.
            return Ok(Vec::new());
        }
        if generations.previous().is_empty() {
            return Ok(revoked);
        }
        let mut kept = Vec::with_capacity(revoked.len());
        for entry in revoked {
            let known = self.lock().get(&entry.serial).cloned();
            let issuer = match known {
                Some(issuer) => issuer,
                None => {
                    let issuer = self
                        .store
                        .certificate(&entry.serial)
                        .await?
                        .and_then(|record| generations.issuer_of(&record.der).cloned())
                        .map(|ca| ca.key_id().to_vec())
                        .unwrap_or_default();
                    let mut known = self.lock();
                    if known.len() >= MAX_REMEMBERED {
                        known.clear();
                    }
                    known.insert(entry.serial, issuer.clone());
                    issuer
                }
            };
            if issuer == ca.key_id() {
                kept.push(entry);
            }
        }
        Ok(kept)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Serial, Vec<u8>>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
