//! The CRL publisher: keeps the current signed CRL and replaces it when it goes stale.
//!
//! A CRL is stale when the store's revocation feed has moved since it was built (a
//! certificate was revoked or superseded) or when half of its thisUpdate..nextUpdate
//! interval has passed. The background task ([`CrlPublisher::spawn`]) re-signs on
//! either; [`CrlPublisher::current`] also checks before answering, so a CRL fetched right
//! after a revocation lists it even if the task has not run yet. Certificates past their
//! notAfter are left out (RFC 5280 3.3 lets a CRL drop them). Every CRL gets a new number
//! from the store, which keeps numbers strictly increasing across restarts.
//!
//! Re-signing reads the whole revocation index and signs every entry: about 0.3 s for
//! 100,000 entries on a small machine, and every renewal supersedes a certificate. So a CRL
//! that took long to sign ([`ResignThrottle`]) is re-signed for a revocation only after
//! several times that long has passed since it was signed, whoever asks: neither steady
//! renewals nor clients fetching the CRL in a loop can keep the publisher busy for more
//! than a tenth of a core. Such a CRL can lag a revocation by that long (OCSP never lags);
//! a CRL that is due is re-signed at once.
//!
//! One publisher serves one issuing CA generation, whose key signs its CRL;
//! [`super::crl_publishers`] keeps one per generation. The CRL lists the revoked certificates
//! of every generation under the same name, not only that key's ([`IssuerIndex`] says why).

use std::sync::{Arc, RwLock};

use hyper::body::Bytes;
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
// Tokio's clock (the system's monotonic clock unless a test pauses it), so that a test can
// let the throttle's seconds pass without waiting for them.
use tokio::time::Instant;

use super::issuer_index::IssuerIndex;
use super::{CrlEntryView, CrlView, RevocationError};
use crate::ca::crl::{CrlEntry, CrlRequest};
use crate::ca::CertificateAuthority;
use crate::ra::Clock;
use crate::store::RevocationStore;

/// How long the background task gathers further revocations before re-signing.
const COALESCE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long the background task waits after a failed attempt before trying again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// A signed CRL and what it says.
#[derive(Debug)]
pub struct PublishedCrl {
    /// The CRL number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// The listed certificates.
    pub entries: Vec<CrlEntry>,
    /// The CRL, DER.
    pub der: Bytes,
    /// The CRL, PEM (`X509 CRL`).
    pub pem: Bytes,
    /// The revocation feed's value when the CRL was built.
    generation: u64,
    /// When it was built, and how long reading the index and signing took (what grows with
    /// the number of entries): how soon a revocation may have it re-signed.
    built: Instant,
    took: std::time::Duration,
}

impl PublishedCrl {
    /// When it should be replaced: halfway between thisUpdate and nextUpdate.
    pub fn refresh_at(&self) -> OffsetDateTime {
        self.this_update + (self.next_update - self.this_update) / 2
    }

    /// Logs that `ca` signed this CRL, with how long reading the index and signing took:
    /// what the re-signing throttle goes by, so an operator can tell from the log how long a
    /// revocation may wait for the next CRL (OCSP answers at once).
    fn log_signed(&self, ca: &CertificateAuthority) {
        tracing::info!(
            generation = %ca.generation_id(),
            number = self.number,
            entries = self.entries.len(),
            took_ms = u64::try_from(self.took.as_millis()).unwrap_or(u64::MAX),
            next_update = %crate::model::rfc3339(self.next_update),
            "CRL signed"
        );
    }

    /// The operator's view.
    pub fn view(&self) -> CrlView {
        let mut entries: Vec<CrlEntryView> = self
            .entries
            .iter()
            .map(|e| CrlEntryView {
                serial: e.serial,
                revoked_at: e.revoked_at,
                reason: e.reason,
            })
            .collect();
        entries.sort_by_key(|e| e.serial);
        CrlView {
            number: self.number,
            this_update: self.this_update,
            next_update: self.next_update,
            entries,
        }
    }
}

/// How soon after a CRL was signed a revocation may have it re-signed, from how long the
/// signing took: so that the re-signings of a large CRL take at most a share of a core.
#[derive(Clone, Copy, Debug)]
pub struct ResignThrottle {
    /// A CRL signed faster than this is re-signed for every revocation at once.
    pub unthrottled_under: std::time::Duration,
    /// Otherwise it is re-signed no sooner than this many times its signing time after it
    /// was signed: 9 keeps re-signing to at most a tenth of the time.
    pub factor: u32,
}

impl Default for ResignThrottle {
    /// 100 ms (a CRL of some 30,000 entries on the 2-core development VM), 9 times: with
    /// the background task's one re-signing per second at most, a tenth of a core either way.
    fn default() -> Self {
        Self {
            unthrottled_under: std::time::Duration::from_millis(100),
            factor: 9,
        }
    }
}

impl ResignThrottle {
    /// The earliest time a revocation may have `crl` re-signed (None: not in the lifetime of
    /// the process).
    fn resign_after(&self, crl: &PublishedCrl) -> Option<Instant> {
        if crl.took < self.unthrottled_under {
            return Some(crl.built);
        }
        crl.built.checked_add(crl.took.saturating_mul(self.factor))
    }
}

/// Orders the CRLs that one daemon's publishers sign (one per generation, all sharing the
/// store's CRL numbers): held from reading the revocation index to drawing the number, so
/// that a CRL with a higher number lists at least every revocation one with a lower number
/// lists. The generations of one name publish CRLs of one scope (see [`IssuerIndex`]), and a
/// higher number tells relying parties which CRL supersedes the other (RFC 5280 5.2.3).
/// Signing, the slow part, is outside it.
#[derive(Debug, Default)]
pub struct CrlNumbering(tokio::sync::Mutex<()>);

/// Keeps the current CRL.
pub struct CrlPublisher {
    store: Arc<dyn RevocationStore>,
    ca: Arc<CertificateAuthority>,
    issuers: Arc<IssuerIndex>,
    numbering: Arc<CrlNumbering>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    throttle: ResignThrottle,
    feed: watch::Receiver<u64>,
    current: RwLock<Arc<PublishedCrl>>,
    /// Held while signing, so that concurrent callers who find the CRL stale sign it once.
    signing: tokio::sync::Mutex<()>,
}

impl CrlPublisher {
    /// Signs the first CRL of `ca`, listing the revoked certificates `issuers` puts in its
    /// scope, numbered in order with the other publishers sharing `numbering`; `interval`
    /// is nextUpdate minus thisUpdate, `throttle` how soon a revocation may have a large CRL
    /// re-signed.
    pub async fn new(
        store: Arc<dyn RevocationStore>,
        ca: Arc<CertificateAuthority>,
        issuers: Arc<IssuerIndex>,
        numbering: Arc<CrlNumbering>,
        clock: Arc<dyn Clock>,
        interval: Duration,
        throttle: ResignThrottle,
    ) -> Result<Arc<Self>, RevocationError> {
        let feed = store.revocations();
        let first = build(&*store, &ca, &issuers, &numbering, &*clock, interval, &feed).await?;
        first.log_signed(&ca);
        Ok(Arc::new(Self {
            store,
            ca,
            issuers,
            numbering,
            clock,
            interval,
            throttle,
            feed,
            current: RwLock::new(Arc::new(first)),
            signing: tokio::sync::Mutex::new(()),
        }))
    }

    /// The CRL as last published, stale or not.
    pub fn last(&self) -> Arc<PublishedCrl> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether `crl` is to be re-signed now: it is due, or a revocation happened since it
    /// was built and the throttle lets it be re-signed.
    fn needs_signing(&self, crl: &PublishedCrl) -> bool {
        self.clock.now() >= crl.refresh_at()
            || (crl.generation != *self.feed.borrow()
                && self
                    .throttle
                    .resign_after(crl)
                    .is_some_and(|after| Instant::now() >= after))
    }

    /// The current CRL, re-signed first if a revocation happened since it was built (unless
    /// the throttle puts that off) or it is due. If re-signing fails, the last CRL is
    /// returned (it is still valid until its nextUpdate) and the failure logged.
    pub async fn current(&self) -> Arc<PublishedCrl> {
        let last = self.last();
        if !self.needs_signing(&last) {
            return last;
        }
        match self.refresh().await {
            Ok(crl) => crl,
            Err(e) => {
                tracing::error!(error = %e, "cannot re-sign the CRL; serving the previous one");
                self.last()
            }
        }
    }

    /// Re-signs the CRL if it needs it (checked again under the signing lock, so that a
    /// burst of callers signs once) and returns the current one.
    pub async fn refresh(&self) -> Result<Arc<PublishedCrl>, RevocationError> {
        let _signing = self.signing.lock().await;
        let last = self.last();
        if !self.needs_signing(&last) {
            return Ok(last);
        }
        self.sign_now_locked().await
    }

    /// The issuing CA generation whose CRL this is.
    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    /// Signs a new CRL now, stale or not.
    pub async fn sign_now(&self) -> Result<Arc<PublishedCrl>, RevocationError> {
        let _signing = self.signing.lock().await;
        self.sign_now_locked().await
    }

    async fn sign_now_locked(&self) -> Result<Arc<PublishedCrl>, RevocationError> {
        let crl = Arc::new(
            build(
                &*self.store,
                &self.ca,
                &self.issuers,
                &self.numbering,
                &*self.clock,
                self.interval,
                &self.feed,
            )
            .await?,
        );
        match self.current.write() {
            Ok(mut guard) => *guard = crl.clone(),
            Err(poisoned) => *poisoned.into_inner() = crl.clone(),
        }
        crl.log_signed(&self.ca);
        Ok(crl)
    }

    /// Runs the publisher until `stopped` changes: re-signs within a second after revocations
    /// the store reports, and when the CRL is due.
    pub fn spawn(
        self: Arc<Self>,
        mut stopped: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let mut feed = self.feed.clone();
        tokio::spawn(async move {
            let mut wait = self.until_due();
            loop {
                tokio::select! {
                    changed = feed.changed() => {
                        if changed.is_err() {
                            break; // the store is gone
                        }
                        // Every renewal supersedes a certificate: coalesce a burst of
                        // revocations into one re-signing per COALESCE instead of reading
                        // the whole index and signing after each, or later if the throttle
                        // says so. A CRL fetched meanwhile is re-signed on demand
                        // (`current`) within the same throttle.
                        tokio::select! {
                            _ = tokio::time::sleep(self.coalesce()) => {}
                            _ = stopped.changed() => break,
                        }
                    }
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => break,
                }
                wait = match self.refresh().await {
                    // Put off by the throttle: try again when it allows.
                    Ok(crl) if crl.generation != *self.feed.borrow() => self.coalesce(),
                    Ok(_) => self.until_due(),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot re-sign the CRL; retrying in 30 seconds");
                        RETRY_AFTER
                    }
                };
            }
        })
    }

    /// How long to wait after a revocation before re-signing: COALESCE, or until the
    /// throttle lets the current CRL be re-signed (never past the time it is due).
    fn coalesce(&self) -> std::time::Duration {
        let after = self
            .throttle
            .resign_after(&self.last())
            .map(|after| after.saturating_duration_since(Instant::now()))
            .unwrap_or(std::time::Duration::MAX);
        after.min(self.until_due()).max(COALESCE)
    }

    /// Time until the current CRL is due to be replaced (at least one second).
    fn until_due(&self) -> std::time::Duration {
        let due = self.last().refresh_at() - self.clock.now();
        std::time::Duration::try_from(due)
            .unwrap_or_default()
            .max(std::time::Duration::from_secs(1))
    }
}

/// The lowest number a CRL signed `now` may carry: `now` in milliseconds since 1970 (its
/// thisUpdate is `now` in whole seconds). A number is drawn above the last one and at least
/// this, so a CRL signed after a restore from a backup, which puts the counter back to the
/// backup's, still has a higher number than every CRL signed before (RFC 5280 5.2.3), as
/// long as the clock has not gone back. (Numbers stay below 2^63 until the year
/// 292,278,994; RFC 5280 allows 20 octets.)
fn number_floor(now: OffsetDateTime) -> u64 {
    u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Reads the revocation index and signs a CRL of the unexpired revoked certificates issued
/// under `ca`'s name.
async fn build(
    store: &dyn RevocationStore,
    ca: &Arc<CertificateAuthority>,
    issuers: &IssuerIndex,
    numbering: &CrlNumbering,
    clock: &dyn Clock,
    interval: Duration,
    feed: &watch::Receiver<u64>,
) -> Result<PublishedCrl, RevocationError> {
    let turn = numbering.0.lock().await;
    // The feed's value is read before the index: a revocation committed after this read
    // moves the feed past `generation`, so the CRL will be found stale and rebuilt.
    let generation = *feed.borrow();
    let built = Instant::now();
    let mut took = std::time::Duration::ZERO;
    let now = clock.now();
    let this_update = now
        .replace_nanosecond(0)
        .map_err(|e| RevocationError::Task(format!("truncating the time: {e}")))?;
    let next_update = this_update + interval;
    // The revocations, then the number drawn after them (in turn with the other publishers).
    let (revoked, number) = store.revoked_for_crl(number_floor(now)).await?;
    drop(turn);
    let unexpired = revoked
        .into_iter()
        .filter(|r| r.not_after > this_update)
        .collect();
    let entries: Vec<CrlEntry> = issuers
        .in_crl_scope(ca, unexpired)
        .await?
        .into_iter()
        .map(|r| CrlEntry {
            serial: r.serial,
            // The CRL holds whole seconds; so does what the operator is shown.
            revoked_at: r
                .revocation
                .at
                .replace_nanosecond(0)
                .unwrap_or(r.revocation.at),
            reason: r.revocation.reason,
        })
        .collect();
    took += built.elapsed();
    let signing = Instant::now();
    // Signing a large CRL takes a while: keep it off the async worker threads.
    let signer = ca.clone();
    let (der, entries) = tokio::task::spawn_blocking(move || {
        let der = signer.sign_crl(&CrlRequest {
            number,
            this_update,
            next_update,
            entries: &entries,
        });
        (der, entries)
    })
    .await
    .map_err(|e| RevocationError::Task(e.to_string()))?;
    let der = der?;
    took += signing.elapsed();
    let pem = pem_rfc7468::encode_string("X509 CRL", pem_rfc7468::LineEnding::LF, &der)
        .map_err(|e| RevocationError::Task(format!("PEM-encoding the CRL: {e}")))?;
    Ok(PublishedCrl {
        number,
        this_update,
        next_update,
        entries,
        der: Bytes::from(der),
        pem: Bytes::from(pem),
        generation,
        built,
        took,
    })
}
