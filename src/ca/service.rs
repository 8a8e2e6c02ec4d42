//! Certificates the CA signs for estca's own services (the TLS server, the OCSP responder),
//! held back until the store has recorded them.
//!
//! Every certificate the CA signs is recorded before it is used (DESIGN.md section 5), so that
//! `estca cert show` and the OCSP responder know it. The CA hands a service's certificate and
//! private key out only as an [`Unrecorded`] value, and the one way to take them out of it is
//! [`Unrecorded::record_in`], which records the certificate in the store and waits until the
//! record is durable. The certificate and its key exist only in the daemon's memory until
//! then: a crash in between loses both, and nothing outside ever saw them.

use crate::model::{CertificateRecord, Serial};
use crate::store::{ReservedSerial, ServiceCertificates, StoreError};

use super::CaError;

/// A certificate the CA signed for one of estca's services, with what the service needs to
/// use it (`T`: its private key, or a signer holding it), not usable until recorded.
#[must_use = "a service certificate is used only after Unrecorded::record_in"]
pub struct Unrecorded<T> {
    record: CertificateRecord,
    service: T,
}

impl<T> std::fmt::Debug for Unrecorded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the service part: it holds a private key.
        f.debug_struct("Unrecorded")
            .field("serial", &self.record.serial)
            .field("holder", &self.record.holder)
            .finish_non_exhaustive()
    }
}

impl<T> Unrecorded<T> {
    /// Wraps a freshly signed certificate's record and what the service needs to use it.
    pub(crate) fn new(record: CertificateRecord, service: T) -> Self {
        Self { record, service }
    }

    /// The record the store is to keep (serial, holder, validity, key fingerprint, DER).
    pub fn record(&self) -> &CertificateRecord {
        &self.record
    }

    /// Records the certificate with
    /// [`ServiceCertificates::record_service_certificate`] (durably), then hands over what the
    /// service needs. On error nothing is handed over, so the certificate is never used.
    pub async fn record_in(self, store: &dyn ServiceCertificates) -> Result<T, CaError> {
        let serial = self.record.serial;
        store
            .record_service_certificate(self.record)
            .await
            .map_err(|source| CaError::Record { serial, source })?;
        Ok(self.service)
    }
}

/// Reserves a fresh serial for a service certificate (drawing again in the unlikely case that
/// the serial was taken).
pub async fn reserve_serial(
    store: &dyn ServiceCertificates,
    now: time::OffsetDateTime,
) -> Result<ReservedSerial, CaError> {
    let mut last = None;
    for _ in 0..8 {
        let serial = Serial::random();
        match store.reserve_service_serial(serial, now).await {
            Ok(reserved) => return Ok(reserved),
            Err(StoreError::Conflict) => last = Some(serial),
            Err(source) => return Err(CaError::Record { serial, source }),
        }
    }
    Err(CaError::Internal(format!(
        "eight fresh serials in a row were taken (last {}); the serial source is broken",
        last.map_or_else(String::new, |s| s.to_string())
    )))
}
