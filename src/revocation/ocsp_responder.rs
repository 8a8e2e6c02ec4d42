//! The OCSP responder (RFC 6960): parses a DER OCSPRequest, looks each CertID up, and answers
//! with a BasicOCSPResponse signed by a delegated signing certificate.
//!
//! - One responder answers for one issuing CA generation ([`super::ocsp_responders`] picks
//!   it by the request's CertID). A CertID is answered `good` or `revoked` (with time, and
//!   reason unless it is `unspecified`) only when its hash algorithm is SHA-1, SHA-256,
//!   SHA-384 or SHA-512 ([`CertIdHash::ALL`]), its issuer name and key hashes are this
//!   generation's, and the store holds the serial as a certificate this generation issued;
//!   anything else is `unknown`.
//! - Each delegated signing certificate is recorded in the store (and flushed) before it
//!   signs anything, so the responder answers `good` for its own signer like for any
//!   certificate the CA signed.
//! - The responderID is byKey; `certs` carries the delegated certificate; each
//!   SingleResponse has thisUpdate and nextUpdate; a nonce in the request is echoed (RFC
//!   8954: 1 to 32 octets, longer ones are refused as malformed).
//! - Malformed requests get an OCSPResponse with status `malformedRequest`, failures of estca
//!   itself `internalError`; nothing a client sends makes the responder panic.
//! - Answers for known serials are cached per CertID (hash algorithm and its parameters,
//!   serial; see [`CacheKey`]), so that every SingleResponse carries exactly the CertID its
//!   client sent (RFC 6960 4.2.2.3; clients compare it structurally): a single-request,
//!   nonce-free query is answered with the cached signed bytes; other queries reuse the
//!   cached status and sign anew. The cache is emptied when the store's revocation feed
//!   moves (so a revocation shows at once), when the signer is rotated, and entries are used
//!   for half of the response validity at most. Unknown serials are never cached (a serial
//!   may be issued later).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use const_oid::db::rfc6960;
use der::asn1::{Any, Null, OctetString};
use der::{Decode, Encode};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
use x509_cert::ext::Extension;
use x509_ocsp::{
    CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, ResponseData, RevokedInfo,
    SingleResponse, Version,
};

use super::issuer_index::IssuerIndex;
use super::RevocationError;
use crate::ca::crl::crl_reason;
use crate::ca::ocsp::{CertIdHash, IssuerHashes, OcspSigner};
use crate::ca::CertificateAuthority;
use crate::model::{RevocationReason, Serial};
use crate::ra::Clock;
use crate::store::{RevocationStore, ServiceCertificates};

/// Most CertIDs answered in one request.
pub const MAX_REQUESTS_PER_QUERY: usize = 16;

/// Most entries kept in the response cache; when full it is emptied and refilled.
const MAX_CACHED: usize = 100_000;

/// Longest nonce echoed (RFC 8954 section 2.1).
const MAX_NONCE: usize = 32;

/// An OCSP answer: the DER OCSPResponse, and how long HTTP caches may keep it.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// The OCSPResponse, DER.
    pub der: Arc<[u8]>,
    /// The response status (successful, malformedRequest, internalError).
    pub status: x509_ocsp::OcspResponseStatus,
    /// For a successful answer that any client may reuse (no nonce): its thisUpdate and
    /// nextUpdate, for `Last-Modified` and `Cache-Control` headers.
    pub cacheable: Option<(OffsetDateTime, OffsetDateTime)>,
}

impl OcspAnswer {
    fn status_only(response: OcspResponse) -> Self {
        let status = response.response_status;
        let der: Arc<[u8]> = match response.to_der() {
            Ok(der) => der.into(),
            // Encoding a bare status cannot fail; answer with nothing rather than panic.
            Err(_) => Arc::from(Vec::new()),
        };
        Self {
            der,
            status,
            cacheable: None,
        }
    }

    /// `malformedRequest`.
    pub fn malformed() -> Self {
        Self::status_only(OcspResponse::malformed_request())
    }

    /// `internalError`.
    pub fn internal_error() -> Self {
        Self::status_only(OcspResponse::internal_error())
    }
}

/// What a cached entry holds.
#[derive(Clone)]
struct Cached {
    single: SingleResponse,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    /// The signed single-request, nonce-free response, once one was made.
    der: Option<Arc<[u8]>>,
}

/// The cache and the state it is valid for.
#[derive(Default)]
struct Cache {
    /// The revocation feed's value the entries were made under.
    generation: u64,
    entries: HashMap<CacheKey, Cached>,
}

/// The hashAlgorithm parameters of a CertID the cache holds. For the SHA family they are
/// either NULL (openssl) or absent (RFC 5754 section 2; Bouncy Castle, Go), and a client
/// compares the CertID of the answer with its own structurally, so the two are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HashParameters {
    /// No parameters.
    Absent,
    /// An explicit NULL.
    Null,
}

/// What a cached answer is filed under. Why this and not the CertID's bytes: a key is only
/// made for a CertID whose algorithm, issuer name hash and issuer key hash match the issuing
/// CA ([`IssuerHashes::matches`], which fixes the OID and both hashes) and whose serial has
/// estca's 16-byte shape, so (algorithm, parameters, serial) determine the whole CertID,
/// byte for byte; the cached SingleResponse and signed bytes therefore carry the very CertID
/// of any request that finds them. The key stays small, hashable and allocation-free, and
/// the cache stays effective (at most two entries per serial and algorithm). A CertID with
/// any other parameters is answered, just not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey {
    hash: CertIdHash,
    parameters: HashParameters,
    serial: Serial,
}

/// The current signer and when it is to be replaced.
struct CurrentSigner {
    signer: Arc<OcspSigner>,
    rotate_at: OffsetDateTime,
}

/// Answers OCSP requests.
pub struct OcspResponder {
    store: Arc<dyn RevocationStore>,
    /// Where new signers' certificates are recorded.
    services: Arc<dyn ServiceCertificates>,
    ca: Arc<CertificateAuthority>,
    issuers: Arc<IssuerIndex>,
    clock: Arc<dyn Clock>,
    issuer: IssuerHashes,
    /// nextUpdate minus thisUpdate of each response.
    validity: Duration,
    signer_validity: Duration,
    signer: RwLock<CurrentSigner>,
    /// Held while a new signer is issued and recorded, so that only one is.
    rotating: tokio::sync::Mutex<()>,
    cache: Mutex<Cache>,
    feed: watch::Receiver<u64>,
}

impl OcspResponder {
    /// Issues the first delegated signer of `ca` and records it. `issuers` tells the
    /// certificates `ca` issued from those of other generations. `validity` is each
    /// response's nextUpdate minus thisUpdate; `signer_validity` the delegated certificate's
    /// lifetime (it is replaced when half of it has passed).
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        store: Arc<dyn RevocationStore>,
        services: Arc<dyn ServiceCertificates>,
        ca: Arc<CertificateAuthority>,
        issuers: Arc<IssuerIndex>,
        clock: Arc<dyn Clock>,
        validity: Duration,
        signer_validity: Duration,
    ) -> Result<Self, RevocationError> {
        let issuer = ca.ocsp_issuer_hashes()?;
        let signer = issue_signer(&ca, &*services, &*clock, signer_validity).await?;
        Ok(Self {
            feed: store.revocations(),
            store,
            services,
            ca,
            issuers,
            clock,
            issuer,
            validity,
            signer_validity,
            signer: RwLock::new(signer),
            rotating: tokio::sync::Mutex::new(()),
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The issuing CA generation this responder answers for.
    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    /// True when `cert_id` names this responder's issuing CA (by its name and key hashes).
    pub fn answers_for(&self, cert_id: &CertId) -> bool {
        self.issuer.matches(cert_id).is_some()
    }

    /// The delegated signer now in use, DER (for tests and diagnostics).
    pub fn signer_certificate_der(&self) -> Vec<u8> {
        self.current_signer().certificate_der().to_vec()
    }

    /// Empties the response cache (the next answer for each serial is looked up and signed
    /// anew). Revocations and signer rotation do this by themselves; this is for
    /// measurements and diagnostics.
    pub fn clear_cache(&self) {
        self.lock_cache().entries.clear();
    }

    /// How many statuses are cached now.
    pub fn cached_entries(&self) -> usize {
        self.lock_cache().entries.len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn current_signer(&self) -> Arc<OcspSigner> {
        match self.signer.read() {
            Ok(guard) => guard.signer.clone(),
            Err(poisoned) => poisoned.into_inner().signer.clone(),
        }
    }

    /// The current signer, unless it is due for replacement at `now`.
    fn signer_before_rotation(&self, now: OffsetDateTime) -> Option<Arc<OcspSigner>> {
        let guard = self
            .signer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (now < guard.rotate_at).then(|| guard.signer.clone())
    }

    /// The signer to use at `now`, issuing and recording a new one (and emptying the cache,
    /// whose signed responses name the old one) when the current one is due.
    async fn signer_at(&self, now: OffsetDateTime) -> Result<Arc<OcspSigner>, RevocationError> {
        if let Some(signer) = self.signer_before_rotation(now) {
            return Ok(signer);
        }
        let _rotating = self.rotating.lock().await;
        // Another request may have rotated it while this one waited.
        if let Some(signer) = self.signer_before_rotation(now) {
            return Ok(signer);
        }
        let next = issue_signer(
            &self.ca,
            &*self.services,
            &*self.clock,
            self.signer_validity,
        )
        .await?;
        let signer = next.signer.clone();
        tracing::info!(
            not_after = %crate::model::rfc3339(signer.not_after()),
            "issued a new OCSP signing certificate"
        );
        *self
            .signer
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = next;
        self.lock_cache().entries.clear();
        Ok(signer)
    }

    /// Answers a DER OCSPRequest. Never fails: problems become `malformedRequest` or
    /// `internalError` answers.
    pub async fn respond(&self, request_der: &[u8]) -> OcspAnswer {
        let request = match OcspRequest::from_der(request_der) {
            Ok(r) => r,
            Err(_) => return OcspAnswer::malformed(),
        };
        let requests = &request.tbs_request.request_list;
        if requests.is_empty() || requests.len() > MAX_REQUESTS_PER_QUERY {
            return OcspAnswer::malformed();
        }
        let nonce = match nonce_of(&request) {
            Ok(n) => n,
            Err(()) => return OcspAnswer::malformed(),
        };
        match self.answer(&request, nonce).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!(error = %e, "cannot answer an OCSP request");
                OcspAnswer::internal_error()
            }
        }
    }

    async fn answer(
        &self,
        request: &OcspRequest,
        nonce: Option<Extension>,
    ) -> Result<OcspAnswer, RevocationError> {
        let now = self
            .clock
            .now()
            .replace_nanosecond(0)
            .map_err(|e| RevocationError::Task(format!("truncating the time: {e}")))?;
        let signer = self.signer_at(now).await?;
        let requests = &request.tbs_request.request_list;

        // The common case: one CertID, no nonce, answered before: the cached bytes.
        if let ([only], None) = (requests.as_slice(), &nonce) {
            if let Some(key) = self.cache_key(&only.req_cert) {
                if let Some(cached) = self.cached(&key, now) {
                    if let Some(der) = cached.der {
                        return Ok(OcspAnswer {
                            der,
                            status: x509_ocsp::OcspResponseStatus::Successful,
                            cacheable: Some((cached.this_update, cached.next_update)),
                        });
                    }
                }
            }
        }

        let mut singles = Vec::with_capacity(requests.len());
        let mut validity = None;
        for one in requests {
            let (cached, key, generation) = self.status(&one.req_cert, now, &signer).await?;
            validity = Some((cached.this_update, cached.next_update));
            singles.push((cached, key, generation));
        }
        let data = ResponseData {
            version: Version::V1,
            responder_id: signer.responder_id()?,
            produced_at: ocsp_time(now)?,
            responses: singles.iter().map(|(c, _, _)| c.single.clone()).collect(),
            response_extensions: nonce.clone().map(|n| vec![n]),
        };
        let der: Arc<[u8]> = signer.sign(data)?.into();

        let reusable = nonce.is_none() && singles.len() == 1;
        if reusable {
            if let Some((cached, Some(key), generation)) = singles.pop() {
                self.remember(
                    key,
                    generation,
                    Cached {
                        der: Some(der.clone()),
                        ..cached
                    },
                );
            }
        }
        Ok(OcspAnswer {
            der,
            status: x509_ocsp::OcspResponseStatus::Successful,
            cacheable: validity.filter(|_| reusable),
        })
    }

    /// The cache key of a CertID naming the issuing CA and an estca-shaped serial, with
    /// NULL or absent hash parameters.
    fn cache_key(&self, cert_id: &CertId) -> Option<CacheKey> {
        Self::key_for(cert_id, self.named_serial(cert_id)?)
    }

    /// The cache key of a CertID whose hash algorithm and serial are `named` (see
    /// [`Self::named_serial`]), when its hash parameters are NULL or absent.
    fn key_for(cert_id: &CertId, (hash, serial): (CertIdHash, Serial)) -> Option<CacheKey> {
        let parameters = match &cert_id.hash_algorithm.parameters {
            None => HashParameters::Absent,
            Some(p) if *p == Any::from(Null) => HashParameters::Null,
            Some(_) => return None,
        };
        Some(CacheKey {
            hash,
            parameters,
            serial,
        })
    }

    /// The hash algorithm and serial of a CertID naming the issuing CA and an estca-shaped
    /// serial: one the store may know.
    fn named_serial(&self, cert_id: &CertId) -> Option<(CertIdHash, Serial)> {
        Some((self.issuer.matches(cert_id)?, serial_of(cert_id)?))
    }

    /// A cached entry still fresh at `now` and made under the current revocation feed.
    fn cached(&self, key: &CacheKey, now: OffsetDateTime) -> Option<Cached> {
        let generation = *self.feed.borrow();
        let mut cache = self.lock_cache();
        if cache.generation != generation {
            cache.entries.clear();
            cache.generation = generation;
            return None;
        }
        let cached = cache.entries.get(key)?;
        (now < cached.this_update + self.validity / 2).then(|| cached.clone())
    }

    /// Keeps `cached` unless a revocation happened since `generation` was read.
    fn remember(&self, key: CacheKey, generation: u64, cached: Cached) {
        let mut cache = self.lock_cache();
        let current = *self.feed.borrow();
        if cache.generation != current {
            cache.entries.clear();
            cache.generation = current;
        }
        if generation != current {
            return;
        }
        if cache.entries.len() >= MAX_CACHED {
            cache.entries.clear();
        }
        cache.entries.insert(key, cached);
    }

    /// The status of one CertID: from the cache, or from the store (and then cached unless
    /// unknown). Also returns the cache key and the feed value read before the lookup.
    async fn status(
        &self,
        cert_id: &CertId,
        now: OffsetDateTime,
        signer: &OcspSigner,
    ) -> Result<(Cached, Option<CacheKey>, u64), RevocationError> {
        let named = self.named_serial(cert_id);
        let key = named.and_then(|named| Self::key_for(cert_id, named));
        let generation = *self.feed.borrow();
        if let Some(key) = &key {
            if let Some(cached) = self.cached(key, now) {
                return Ok((cached, Some(*key), generation));
            }
        }
        let record = match named {
            Some((_, serial)) => self
                .store
                .certificate(&serial)
                .await?
                .filter(|record| self.issuers.issued(&self.ca, record)),
            None => None,
        };
        let status = match &record {
            None => CertStatus::unknown(),
            Some(r) => match r.revocation {
                None => CertStatus::good(),
                Some(revocation) => CertStatus::Revoked(RevokedInfo {
                    revocation_time: ocsp_time(revocation.at)?,
                    revocation_reason: ocsp_reason(revocation.reason),
                }),
            },
        };
        let next_update = (now + self.validity).min(signer.not_after());
        let cached = Cached {
            single: SingleResponse {
                cert_id: cert_id.clone(),
                cert_status: status,
                this_update: ocsp_time(now)?,
                next_update: Some(ocsp_time(next_update)?),
                single_extensions: None,
            },
            this_update: now,
            next_update,
            der: None,
        };
        let key = key.filter(|_| record.is_some());
        if let Some(key) = key {
            self.remember(key, generation, cached.clone());
        }
        Ok((cached, key, generation))
    }
}

/// The revocationReason of a RevokedInfo: absent for `unspecified`, as RFC 5280 5.3.1 asks
/// of CRL entries ("SHOULD be absent instead of using the unspecified (0) reasonCode") and
/// as the CRL does, so that the two sources of revocation status say the same.
fn ocsp_reason(reason: RevocationReason) -> Option<x509_cert::ext::pkix::CrlReason> {
    match reason {
        RevocationReason::Unspecified => None,
        reason => Some(crl_reason(reason)),
    }
}

/// Issues a delegated signer and records its certificate before it signs anything.
async fn issue_signer(
    ca: &CertificateAuthority,
    store: &dyn ServiceCertificates,
    clock: &dyn Clock,
    validity: Duration,
) -> Result<CurrentSigner, RevocationError> {
    let now = clock.now();
    let serial = crate::ca::service::reserve_serial(store, now).await?;
    let signer = ca
        .issue_ocsp_signer(&serial, now, validity)?
        .record_in(store)
        .await?;
    // Replace it when half its life has passed, so that responses (valid for less than
    // half of it, as the configuration checks) never outlive it.
    let rotate_at = now + (signer.not_after() - now) / 2;
    Ok(CurrentSigner {
        signer: Arc::new(signer),
        rotate_at,
    })
}

/// The estca serial a CertID names, if it has that shape (16 bytes, positive).
fn serial_of(cert_id: &CertId) -> Option<Serial> {
    let bytes: [u8; 16] = cert_id.serial_number.as_bytes().try_into().ok()?;
    Serial::from_bytes(bytes).ok()
}

/// The request's nonce extension, to echo; `Err` for a nonce RFC 8954 refuses (empty or
/// longer than 32 octets) or more than one nonce.
fn nonce_of(request: &OcspRequest) -> Result<Option<Extension>, ()> {
    let Some(extensions) = &request.tbs_request.request_extensions else {
        return Ok(None);
    };
    let mut nonces = extensions
        .iter()
        .filter(|e| e.extn_id == rfc6960::ID_PKIX_OCSP_NONCE);
    let Some(nonce) = nonces.next() else {
        return Ok(None);
    };
    if nonces.next().is_some() {
        return Err(());
    }
    // RFC 8954: the extension's value is an OCTET STRING holding the nonce. Some older
    // clients put the nonce bytes there directly; both are echoed as sent.
    let value = nonce.extn_value.as_bytes();
    let length = match OctetString::from_der(value) {
        Ok(inner) => inner.as_bytes().len(),
        Err(_) => value.len(),
    };
    if !(1..=MAX_NONCE).contains(&length) {
        return Err(());
    }
    Ok(Some(Extension {
        extn_id: rfc6960::ID_PKIX_OCSP_NONCE,
        critical: false,
        extn_value: nonce.extn_value.clone(),
    }))
}

fn ocsp_time(t: OffsetDateTime) -> Result<OcspGeneralizedTime, RevocationError> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| RevocationError::Task(format!("{t} is before 1970")))?;
    der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(|e| RevocationError::Task(format!("{t} cannot be encoded: {e}")))
}
