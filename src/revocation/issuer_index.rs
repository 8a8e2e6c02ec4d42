//! Which issuing CA generation issued a certificate, for the CRL and the OCSP answers of
//! each generation.
//!
//! The store keeps every certificate's DER, whose authority key identifier names its issuer,
//! so no separate issuer field is needed (and rows written before rollover existed need no
//! migration). The CRL publishers read the revocation index, which holds serials only; the
//! index below reads each revoked certificate's record once and remembers its issuer (it
//! never changes), so that re-signing a CRL costs no lookup for the serials seen before.
//! With every loaded generation under one name nothing is read at all (see
//! [`IssuerIndex::in_crl_scope`]).
//!
//! OCSP answers per key (RFC 6960's CertID names the issuer's key), CRLs per name: a CRL
//! without an issuingDistributionPoint covers every certificate its issuer's name issued
//! (RFC 5280 5.2.5), and a relying party may take a CRL that another key of the same CA
//! signed (RFC 5280 6.3.3 (b), (f)). So each generation's CRL lists the revoked certificates
//! of every generation that shares its name: a CRL that listed only its own key's would tell
//! such a relying party that the other generations' revoked certificates are good.

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

    /// The entries of `revoked` a CRL that `ca` signs must list: those issued under `ca`'s
    /// name, by any loaded generation with that name ([`CertificateAuthority::same_issuer_name`]),
    /// in their order. When every loaded generation has that name (one generation, or
    /// rollovers that kept `ca.issuing_name`), that is all of them, read from nothing; also
    /// while a reload puts `ca` in place (its first CRL is signed before it is in force).
    pub async fn in_crl_scope(
        &self,
        ca: &CertificateAuthority,
        revoked: Vec<RevokedCertificate>,
    ) -> Result<Vec<RevokedCertificate>, StoreError> {
        let generations = self.cas.get();
        let same_name: Vec<&[u8]> = generations
            .all()
            .filter(|g| g.same_issuer_name(ca))
            .map(|g| g.key_id())
            .collect();
        if same_name.len() == generations.all().count() {
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
            if same_name.contains(&issuer.as_slice()) {
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
