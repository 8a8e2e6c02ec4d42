//! Prometheus metrics: the counters and histograms estca keeps (the store's syncs timed
//! through the hook it offers), and the plain-HTTP listener serving `/metrics`, `/healthz` and
//! `/readyz`; the standard process metrics come from [`process`].
//!
//! Every label takes its value from a small closed set (an enum, a route template, an HTTP
//! status): never an ID, a serial, or an error message, so the number of series stays bounded
//! whatever clients send.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::{RevocationReason, Role};
use crate::ra::{Observer, RaError, Refusal};

mod process;

/// USERTYPE of an issued certificate, as a label.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Usertype {
    /// USERTYPE 1.
    master,
    /// USERTYPE 2.
    public,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsertypeLabels {
    usertype: Usertype,
}

/// Why an enrollment was refused, as a label: a closed set, never the message.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RefusalReason {
    /// Unknown ID, wrong password or locked ID.
    unauthenticated,
    /// A client certificate this CA does not know.
    unknown_certificate,
    /// The ID already has an active certificate.
    active_certificate,
    /// The ID is locked.
    locked,
    /// The administrator revoked the certificate.
    revoked_by_administrator,
    /// Renewal with a certificate that is not current, expired or revoked.
    certificate_not_usable,
    /// Another lifecycle refusal.
    policy,
    /// The CSR is unacceptable.
    bad_csr,
    /// The CSR's key was certified before.
    key_reused,
    /// Password hashing saturated or the account contended: 503.
    busy,
    /// The issuing CA expires within a year, so no certificate fits: 503.
    issuing_ca_expiring,
    /// The source's failed logins are spent: 429 before any password check.
    throttled,
    /// The store's database cannot be reached (PostgreSQL lost): 503.
    store_unavailable,
    /// Any other refusal (invalid input, forbidden, not found).
    other,
    /// estca failed (500).
    internal,
}

impl RefusalReason {
    /// The label of a registration authority error.
    pub fn of(error: &RaError) -> Self {
        use crate::ra::PasswordError;
        match error {
            RaError::Unauthenticated => Self::unauthenticated,
            RaError::UnknownCertificate => Self::unknown_certificate,
            RaError::Refused(refusal) => match refusal {
                Refusal::ActiveCertificate { .. } => Self::active_certificate,
                Refusal::Locked => Self::locked,
                Refusal::RevokedByAdministrator => Self::revoked_by_administrator,
                Refusal::NotCurrentCertificate
                | Refusal::CertificateExpired
                | Refusal::CertificateRevoked => Self::certificate_not_usable,
                _ => Self::policy,
            },
            RaError::BadCsr(_) => Self::bad_csr,
            RaError::KeyReused(_) => Self::key_reused,
            RaError::Throttled(_) => Self::throttled,
            RaError::Password(PasswordError::Busy) | RaError::Contended => Self::busy,
            RaError::Ca(crate::ca::CaError::CaExpiresTooSoon { .. }) => Self::issuing_ca_expiring,
            RaError::Store(crate::store::StoreError::Unavailable(_)) => Self::store_unavailable,
            RaError::Password(PasswordError::Hashing(_)) | RaError::Ca(_) | RaError::Store(_) => {
                Self::internal
            }
            _ => Self::other,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: RefusalReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevocationLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
    method: String,
    status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Registry,
    issuances: Family<UsertypeLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    auth_failures: Counter,
    lockouts: Counter,
    revocations: Family<RevocationLabels, Counter>,
    requests: HistogramFamily<EndpointLabels>,
    flush: Histogram,
    queue_depth: Gauge,
    issuing_ca_not_after: Gauge,
    enrollment_stops: Gauge,
    root_crl_next_update: Gauge,
    ready: AtomicBool,
}

/// A handle to estca's metrics; cheap to clone, shared by every layer that counts.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn request_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    /// A fresh set of metrics, all at zero.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("estca");
        registry.register(
            "build",
            "The running estca: its version and the commit it was built from (always 1)",
            prometheus_client::metrics::info::Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", env!("ESTCA_COMMIT")),
            ]),
        );
        let issuances = Family::<UsertypeLabels, Counter>::default();
        registry.register(
            "certificates_issued",
            "Certificates issued, by USERTYPE (master = 1, public = 2)",
            issuances.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "enrollments_refused",
            "Enrollments refused or failed, by reason",
            refusals.clone(),
        );
        let auth_failures = Counter::default();
        registry.register(
            "authentication_failures",
            "Password authentications that failed (unknown ID, wrong password, locked ID)",
            auth_failures.clone(),
        );
        let lockouts = Counter::default();
        registry.register(
            "lockouts",
            "IDs locked after too many wrong passwords",
            lockouts.clone(),
        );
        let revocations = Family::<RevocationLabels, Counter>::default();
        registry.register(
            "certificates_revoked",
            "Certificates revoked, by RFC 5280 reason (superseded: by a reissue)",
            revocations.clone(),
        );
        let requests: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(request_histogram);
        registry.register(
            "request_duration_seconds",
            "HTTP request latency, by route template, method and status",
            requests.clone(),
        );
        let flush = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "store_flush_duration_seconds",
            "Time to make store commits durable on disk",
            flush.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "argon2_queue_depth",
            "Password checks waiting for an Argon2 hashing slot",
            queue_depth.clone(),
        );
        let issuing_ca_not_after = Gauge::default();
        registry.register(
            "issuing_ca_not_after_timestamp_seconds",
            "The issuing CA's notAfter, in seconds since the Unix epoch",
            issuing_ca_not_after.clone(),
        );
        let enrollment_stops = Gauge::default();
        registry.register(
            "enrollment_stops_timestamp_seconds",
            "When enrollment stops because a one-year certificate no longer fits before the issuing CA's notAfter (one year before it), in seconds since the Unix epoch",
            enrollment_stops.clone(),
        );
        let root_crl_next_update = Gauge::default();
        registry.register(
            "root_crl_next_update_timestamp_seconds",
            "The nextUpdate of the offline root's ARL served at /root.crl, in seconds since the Unix epoch (0 while none is loaded)",
            root_crl_next_update.clone(),
        );
        root.register_collector(Box::new(process::ProcessCollector));
        Self {
            inner: Arc::new(Inner {
                registry: root,
                issuances,
                refusals,
                auth_failures,
                lockouts,
                revocations,
                requests,
                flush,
                queue_depth,
                issuing_ca_not_after,
                enrollment_stops,
                root_crl_next_update,
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// Records one request's latency; `endpoint` is the route template (never the raw path).
    pub fn observe_request(&self, endpoint: &str, method: &str, status: u16, latency: Duration) {
        self.inner
            .requests
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
                method: method.to_owned(),
                status,
            })
            .observe(latency.as_secs_f64());
    }

    /// Records one store flush.
    pub fn observe_flush(&self, latency: Duration) {
        self.inner.flush.observe(latency.as_secs_f64());
    }

    /// Sets the issuing CA's notAfter and the instant enrollment stops (one year before it),
    /// so that alerting can fire long before either.
    pub fn set_issuing_ca_expiry(
        &self,
        not_after: time::OffsetDateTime,
        enrollment_stops: time::OffsetDateTime,
    ) {
        self.inner
            .issuing_ca_not_after
            .set(not_after.unix_timestamp());
        self.inner
            .enrollment_stops
            .set(enrollment_stops.unix_timestamp());
    }

    /// Sets the nextUpdate of the ARL served at `/root.crl`, so that alerting can fire
    /// before it goes stale.
    pub fn set_root_crl_next_update(&self, next_update: time::OffsetDateTime) {
        self.inner
            .root_crl_next_update
            .set(next_update.unix_timestamp());
    }

    /// Marks the daemon ready (store open, CA loaded, listeners bound) or not (stopping).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the daemon is ready.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// The Prometheus text exposition of every metric, with the queue depth as of now.
    pub fn render(&self, queue_depth: usize) -> String {
        self.inner
            .queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

/// The registration authority's outcomes, counted.
impl Observer for Metrics {
    /// Counts an issued certificate.
    fn issued(&self, role: Role) {
        let usertype = match role {
            Role::Master => Usertype::master,
            Role::User => Usertype::public,
        };
        self.inner
            .issuances
            .get_or_create(&UsertypeLabels { usertype })
            .inc();
    }

    /// Counts a refused or failed enrollment.
    fn refused(&self, error: &RaError) {
        let reason = RefusalReason::of(error);
        self.inner
            .refusals
            .get_or_create(&ReasonLabels { reason })
            .inc();
        if reason == RefusalReason::unauthenticated {
            self.inner.auth_failures.inc();
        }
    }

    /// Counts an ID locked after too many wrong passwords.
    fn locked_out(&self) {
        self.inner.lockouts.inc();
    }

    /// Counts a revoked certificate.
    fn revoked(&self, reason: RevocationReason) {
        self.inner
            .revocations
            .get_or_create(&RevocationLabels {
                reason: reason.name().to_owned(),
            })
            .inc();
    }
}

/// Whether the store's database answers now.
pub type StoreCheck = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync,
>;

/// What the metrics listener needs to answer.
#[derive(Clone)]
struct MetricsState {
    metrics: Metrics,
    queue_depth: Arc<dyn Fn() -> usize + Send + Sync>,
    store_answers: StoreCheck,
}

/// The routes of the metrics listener: `/metrics`, `/healthz` (the process answers) and
/// `/readyz` (store open and its database answering, CA loaded, listeners bound, not
/// stopping).
pub fn router(
    metrics: Metrics,
    queue_depth: Arc<dyn Fn() -> usize + Send + Sync>,
    store_answers: StoreCheck,
) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(MetricsState {
            metrics,
            queue_depth,
            store_answers,
        })
}

async fn scrape(State(state): State<MetricsState>) -> Response {
    let body = state.metrics.render((state.queue_depth)());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn readyz(State(state): State<MetricsState>) -> Response {
    if !state.metrics.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    } else if !(state.store_answers)().await {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database does not answer\n",
        )
            .into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

/// Binds the metrics listener when it is enabled, returning it with its address and routes
/// for the server to serve (with the same timeouts as every listener). A port that cannot be
/// bound is logged as a warning and the daemon runs without metrics: they must never keep
/// the CA from serving.
pub(crate) async fn bind_listener(
    config: &crate::config::MetricsConfig,
    metrics: &Metrics,
    ra: &Arc<crate::ra::RegistrationAuthority>,
) -> Option<(tokio::net::TcpListener, std::net::SocketAddr, axum::Router)> {
    if !config.enabled {
        return None;
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(listen = %config.listen, error = %e, "cannot bind the metrics listener; running without metrics (set metrics.listen or metrics.enabled = false)");
            return None;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the metrics listener's address; running without metrics");
            return None;
        }
    };
    let queue = ra.clone();
    let store = ra.clone();
    let app = router(
        metrics.clone(),
        Arc::new(move || queue.password_queue_depth()),
        Arc::new(move || {
            let ra = store.clone();
            Box::pin(async move { ra.store_answers().await })
        }),
    );
    Some((listener, addr, app))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registration authority reports through its own interface; what it reports ends up
    /// in the series the README documents.
    #[test]
    fn the_registration_authoritys_outcomes_are_counted() {
        let metrics = Metrics::new();
        let observer: &dyn Observer = &metrics;
        observer.issued(Role::User);
        observer.issued(Role::Master);
        observer.issued(Role::User);
        observer.refused(&RaError::Unauthenticated);
        observer.locked_out();
        observer.revoked(RevocationReason::Superseded);
        let text = metrics.render(0);
        for line in [
            "estca_certificates_issued_total{usertype=\"public\"} 2",
            "estca_certificates_issued_total{usertype=\"master\"} 1",
            "estca_enrollments_refused_total{reason=\"unauthenticated\"} 1",
            "estca_authentication_failures_total 1",
            "estca_lockouts_total 1",
            "estca_certificates_revoked_total{reason=\"superseded\"} 1",
            &format!(
                "estca_build_info{{version=\"{}\",commit=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION"),
                env!("ESTCA_COMMIT")
            ),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
