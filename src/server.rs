//! Wiring: opens the store, loads (or, on the embedded defaults, creates) the CA, builds the
//! registration authority, and serves the EST front end over TLS and the management API over
//! the admin Unix socket, with bounded connections, timeouts and a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ca::binding::{self, Binding, BindingPlace, CaKeys};
use crate::ca::{CaError, CertificateAuthority, Generations, IssuingCas};
use crate::config::Config;
use crate::http::{plain, AuthenticatedId, Base64Lines, HeaderSpelling, PeerInfo};
use crate::metrics::Metrics;
use crate::private_dir::Holds;
use crate::ra::{Clock, RegistrationAuthority};
use crate::store::{Store, StoreError};

mod admin_socket;
mod budget;
mod first_byte;
mod listeners;
mod overload;
mod plain_http;
mod write_deadline;

use admin_socket::bind_admin_socket;
use budget::ConnectionBudget;
use listeners::{serve_admin, serve_plain_http, serve_tls, Limits};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The CA is missing or unusable.
    #[error("{0}")]
    Ca(#[from] CaError),
    /// The database could not be opened.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The database belongs to another CA, or the CA directory is missing beside it.
    #[error("{0}")]
    Binding(#[from] crate::ca::binding::BindingError),
    /// TLS could not be configured.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The registration authority could not start (password hashing, key generation).
    #[error("{0}")]
    Ra(#[from] crate::ra::RaStartError),
    /// A directory, socket or port could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Something other than a socket is at the admin socket's path. estca removes only a
    /// stale socket there, never a file, directory or symbolic link someone else put there.
    #[error(
        "the admin socket path {path} is taken by {what}: estca replaces only a stale socket \
         there; move it away, or set admin.socket to another path"
    )]
    AdminSocketPathTaken {
        /// The configured `admin.socket`.
        path: PathBuf,
        /// What is there: "a regular file", "a directory", "a symbolic link to …", ….
        what: String,
    },
    /// Some other start-up condition failed.
    #[error("{0}")]
    Other(String),
    /// Revocation status (CRL, OCSP) could not be set up.
    #[error("{0}")]
    Revocation(#[from] crate::revocation::RevocationError),
    /// The data or CA directory is not private to estca's user.
    #[error("{0}")]
    PrivateDir(#[from] crate::private_dir::PrivateDirError),
}

impl ServeError {
    /// Whether starting again unchanged would fail the same way: a database bound to another
    /// CA (or beside an empty CA directory), a data or CA directory others may read, a
    /// stranger's file at the admin socket's path, CA files that are missing, mismatched or
    /// exposed, a key's passphrase or PIN missing or wrong. Those need the operator to change
    /// the configuration or the files; the command exits with the configuration code then
    /// (README "Exit codes"), which the systemd unit does not restart on. Everything else (a
    /// port still taken, an HSM not ready yet, a disk error) may pass, and exits with code 1.
    pub fn needs_the_operator(&self) -> bool {
        use crate::ca::binding::BindingError;
        use crate::private_dir::PrivateDirError;
        match self {
            ServeError::Ca(e) => matches!(
                e,
                CaError::NotInitialized { .. }
                    | CaError::Incomplete { .. }
                    | CaError::AwaitingIssuingCertificate { .. }
                    | CaError::InsecureKeyFile { .. }
                    | CaError::BadKey { .. }
                    | CaError::PassphraseMissing { .. }
                    | CaError::WrongPassphrase { .. }
                    | CaError::PinMissing { .. }
                    | CaError::BadCertificate { .. }
                    | CaError::KeyMismatch { .. }
                    | CaError::NotCa { .. }
                    | CaError::NoCrlSign { .. }
                    | CaError::InvalidName(_)
            ),
            ServeError::Binding(e) => {
                matches!(e, BindingError::OtherCa { .. } | BindingError::NoCa { .. })
            }
            ServeError::PrivateDir(e) => !matches!(e, PrivateDirError::Io { .. }),
            ServeError::AdminSocketPathTaken { .. } => true,
            _ => false,
        }
    }
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// A running daemon: its addresses, and the handle that stops it.
pub struct RunningDaemon {
    /// The HTTPS address actually bound (useful when the configured port is 0).
    pub https_addr: SocketAddr,
    /// The admin socket path.
    pub admin_socket: PathBuf,
    /// The metrics listener's address, when it is enabled and could bind.
    pub metrics_addr: Option<SocketAddr>,
    /// The plain-HTTP revocation listener's address, when enabled.
    pub revocation_http_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) metrics: Metrics,
    /// The issuing CA generations, replaced by a reload that finds a new one.
    pub(crate) cas: Arc<IssuingCas>,
    /// The CRL publishers and OCSP responders, brought in step with a new generation.
    pub(crate) revocation: crate::revocation::RevocationServices,
    pub(crate) root_crl: Arc<crate::revocation::arl::RootCrl>,
    pub(crate) tls: Arc<ArcSwap<rustls::ServerConfig>>,
    pub(crate) grace_secs: Arc<AtomicU64>,
    pub(crate) config: std::sync::Mutex<Config>,
}

impl RunningDaemon {
    /// Where the daemon listens, as `https=ADDR admin_socket=PATH metrics=ADDR|off
    /// revocation_http=ADDR|off`: the systemd status line of a ready daemon, which is also
    /// how a program that started it on ephemeral ports (`estca-bench`) learns them, whatever
    /// the log's level and format.
    pub fn listeners(&self) -> String {
        format!(
            "https={} admin_socket={} metrics={} revocation_http={}",
            self.https_addr,
            self.admin_socket.display(),
            address_or_off(self.metrics_addr),
            address_or_off(self.revocation_http_addr)
        )
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and removes the admin
    /// socket. Every write was durable when it returned; the store is closed when the last
    /// handle to it goes.
    pub async fn stop(self) -> Result<(), StoreError> {
        self.metrics.set_ready(false);
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.admin_socket);
        Ok(())
    }
}

/// An optional listener's address as the ready line and the systemd status line give it:
/// `off` when it is not enabled.
fn address_or_off(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_owned(), |a| a.to_string())
}

/// Loads the CA, creating a development hierarchy first when `may_create` (and
/// `ca.create_if_missing`) and the CA directory holds none of the CA files.
pub fn load_or_create_ca(
    config: &Config,
    may_create: bool,
) -> Result<CertificateAuthority, ServeError> {
    let mut ca_config = config.ca.clone();
    ca_config.create_if_missing &= may_create;
    let (ca, created) =
        CertificateAuthority::load_or_create(&ca_config, &config.certificate.common_name_template)?;
    if created.is_some() {
        tracing::warn!(
            dir = %config.ca.dir.display(),
            root = %config.ca.root_name,
            issuing = %config.ca.issuing_name,
            "created a DEVELOPMENT CA because none existed; for production run 'estca init' with your own names, or import your intermediate"
        );
    }
    if ca.key_protection() == crate::ca::KeyProtection::Plain {
        tracing::warn!(
            key = %config.ca.dir.join("issuing-ca.key").display(),
            development = config.ca.create_if_missing,
            "the issuing CA key file is NOT encrypted: whoever can read it can sign as the CA; put a passphrase in ca.key_passphrase_file or the systemd credential and run 'estca ca encrypt-key' (README: Protecting the CA keys)"
        );
    }
    Ok(ca.with_public_url(&config.revocation.public_url)?)
}

/// The CA generations of the CA directory, once the database is known to belong to that CA
/// ([`crate::ca::binding`]): a database bound to no CA yet is bound to this one; a database
/// bound to another CA is refused, and so is an empty CA directory beside a bound database
/// (no development CA is created then).
async fn bound_generations(config: &Config, store: &dyn Store) -> Result<Generations, ServeError> {
    let database = config.database_location();
    let place = BindingPlace {
        database: &database,
        ca_dir: &config.ca.dir,
    };
    let bound = store.bound_ca().await?;
    // A bound database needs its CA's directory: none is created, not even empty (a
    // `cp -a CA_DIR ca.dir` would then copy into it).
    let may_create = bound.is_none();
    if config.ca.dir.exists() || (config.ca.create_if_missing && may_create) {
        prepare_private_dir(&config.ca.dir, Holds::CaFiles)?;
    }
    let loaded = load_or_create_ca(config, may_create).map_err(|e| match (e, bound) {
        (ServeError::Ca(CaError::NotInitialized { .. }), Some(bound)) => place.no_ca(&bound).into(),
        (other, _) => other,
    })?;
    let generations = load_generations(config, loaded)?;
    let keys = CaKeys::read(&config.ca)?;
    match binding::bind(store, &keys, place).await? {
        Binding::Kept => {}
        Binding::New => tracing::info!(
            database = %database,
            ca_key_sha256 = %keys.anchor(),
            "the database is now bound to this CA: a daemon with another CA directory will be refused on it"
        ),
        Binding::MovedToAnchor { from } => tracing::info!(
            database = %database,
            ca_key_sha256 = %keys.anchor(),
            was = %from,
            "the database's binding moved from the issuing CA's key to the root's, which rollovers keep"
        ),
    }
    Ok(generations)
}

/// The issuing CA generations: `current` and the retired ones of the CA directory still
/// valid (README "Rolling over the issuing CA"), logged when there are any.
pub fn load_generations(
    config: &Config,
    current: CertificateAuthority,
) -> Result<Generations, CaError> {
    let generations = Generations::with_previous(
        current,
        &config.ca,
        &config.certificate.common_name_template,
        &config.revocation.public_url,
        time::OffsetDateTime::now_utc(),
    )?;
    if !generations.previous().is_empty() {
        tracing::info!(
            current = %generations.current().generation_id(),
            previous = %generations
                .previous()
                .iter()
                .map(|ca| ca.generation_id())
                .collect::<Vec<_>>()
                .join(","),
            "issuing CA generations loaded: the current one signs new certificates, the previous ones their CRL and OCSP answers"
        );
    }
    Ok(generations)
}

/// Logs how soon the issuing CA stops issuing, warning `warning_days` before its notAfter
/// (see [`crate::ca::CaExpiry`]); at start and at every reload.
pub(crate) fn check_issuing_ca_expiry(ca: &CertificateAuthority, warning_days: u32) {
    let lead = time::Duration::days(i64::from(warning_days));
    match ca.expiry_at(time::OffsetDateTime::now_utc(), lead) {
        Ok(outlook) => outlook.log(),
        Err(e) => tracing::error!(error = %e, "cannot tell when the issuing CA stops issuing"),
    }
}

/// Starts the daemon on `config`, with `clock` as the registration authority's time.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningDaemon, ServeError> {
    prepare_private_dir(&config.store.path, Holds::Database)?;
    let metrics = Metrics::new();
    let flush_metrics = metrics.clone();
    let store: Arc<dyn Store> = crate::store::open(
        &config.store,
        Some(Arc::new(move |took| flush_metrics.observe_flush(took))),
    )
    .await?;
    let cas = Arc::new(IssuingCas::new(bound_generations(&config, &*store).await?));
    let ca = cas.current();
    check_issuing_ca_expiry(&ca, config.ca.expiry_warning_days);
    metrics.set_issuing_ca_expiry(ca.issuing_not_after(), ca.issuance_ends()?);
    let tls = Arc::new(ArcSwap::new(
        crate::tls::server_config(
            &config.server,
            &cas.get(),
            config.ca.server_cert_validity_days,
            &*store,
        )
        .await?,
    ));
    let revocation = crate::revocation::RevocationServices::new(
        store.clone(),
        cas.clone(),
        clock.clone(),
        &config.revocation,
    )
    .await?;
    let root_crl = Arc::new(crate::revocation::arl::RootCrl::new(
        config.ca.root_crl_path(),
        config.ca.root_crl.is_some(),
        ca.root_certificate_der().map(<[u8]>::to_vec),
        time::Duration::days(i64::from(config.ca.root_crl_warning_days)),
        clock.clone(),
        metrics.clone(),
    ));
    let ra = Arc::new(
        RegistrationAuthority::with_observer(
            store.clone(),
            cas.clone(),
            clock,
            &config.auth,
            Arc::new(metrics.clone()),
        )?
        .with_renewal_requires_new_key(config.est.renewal_requires_new_key),
    );

    let request_timeout = Duration::from_secs(config.server.request_timeout_secs);
    let revocation_routes = crate::revocation::routes::router(&revocation).merge(
        crate::revocation::arl::router(root_crl.clone(), config.revocation.http_max_age_secs),
    );
    let base64_lines = Base64Lines::from_single_line(config.est.single_line_base64);
    let est = crate::est::router(ra.clone(), config.server.max_body_bytes, base64_lines)?;
    let spelling = HeaderSpelling::prepare()
        .await
        .map_err(|e| ServeError::Other(e.to_string()))?;
    let public = with_common_layers(
        est.merge(crate::api::router(ra.clone(), base64_lines))
            .merge(revocation_routes.clone())
            .merge(crate::web::router())
            .fallback(|| async {
                plain(
                    axum::http::StatusCode::NOT_FOUND,
                    "no such path: EST is under /.well-known/est/, the management API under /api/v1/, \
                     the browser pages at /enroll and /console",
                )
            })
            .layer(axum::middleware::from_fn(
                crate::web::same_origin::refuse_cross_site,
            )),
        request_timeout,
        metrics.clone(),
    );
    let admin = with_common_layers(
        // The console here too: the operator's view of all contracts, through an SSH tunnel
        // to this socket (README "The browser screens").
        crate::api::router(ra.clone(), base64_lines)
            .merge(crate::revocation::routes::admin_router(
                revocation.crl.clone(),
            ))
            .merge(crate::web::router())
            .layer(axum::middleware::from_fn(
                crate::web::same_origin::refuse_cross_site,
            )),
        request_timeout,
        metrics.clone(),
    );
    let revocation_listener = match config
        .revocation
        .listen_addr()
        .map_err(|e| ServeError::Other(e.to_string()))?
    {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(io_error(format!(
            "cannot listen on {addr} (revocation.listen; \"off\" disables it)"
        )))?),
        None => None,
    };
    let revocation_http_addr = match &revocation_listener {
        Some(l) => Some(
            l.local_addr()
                .map_err(io_error("cannot read the bound address"))?,
        ),
        None => None,
    };

    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(io_error(format!(
            "cannot listen on {}",
            config.server.listen
        )))?;
    let https_addr = listener
        .local_addr()
        .map_err(io_error("cannot read the bound address"))?;
    let admin_listener = bind_admin_socket(
        &config.admin.socket,
        config
            .admin
            .mode()
            .map_err(|e| ServeError::Other(e.to_string()))?,
    )
    .await?;

    let (stop, stopped) = watch::channel(false);
    let grace_secs = Arc::new(AtomicU64::new(config.server.shutdown_grace_secs));
    // Every listener has a connection budget of its own, so that no listener's flood can
    // starve another: enrollment, revocation status, the operator and monitoring.
    let limits = |listener: &'static str, budget: Arc<ConnectionBudget>| Limits {
        listener,
        budget,
        refusals: overload::refusal_slots(),
        first_byte_timeout: Duration::from_secs(config.server.first_byte_timeout_secs),
        handshake_timeout: Duration::from_secs(config.server.handshake_timeout_secs),
        header_timeout: Duration::from_secs(config.server.header_timeout_secs),
        write_timeout: Duration::from_secs(config.server.write_timeout_secs),
        ipv6_source_prefix: config.server.ipv6_source_prefix,
        grace_secs: grace_secs.clone(),
        spelling: spelling.clone(),
    };
    let mut tasks = vec![
        tokio::spawn(serve_tls(
            listener,
            tls.clone(),
            public,
            limits(
                "https",
                ConnectionBudget::new(
                    config.server.max_connections,
                    config.server.max_connections_per_source,
                ),
            ),
            stopped.clone(),
        )),
        tokio::spawn(serve_admin(
            admin_listener,
            admin,
            limits(
                "admin",
                ConnectionBudget::new(config.admin.max_connections, config.admin.max_connections),
            ),
            stopped.clone(),
        )),
        revocation.crl.clone().spawn(stopped.clone()),
        root_crl.clone().spawn(stopped.clone()),
        ra.clone().spawn_budget_sweeper(stopped.clone()),
    ];
    if let Some(listener) = revocation_listener {
        tasks.push(tokio::spawn(serve_plain_http(
            listener,
            with_common_layers(revocation_routes, request_timeout, metrics.clone()),
            limits(
                "revocation",
                ConnectionBudget::new(
                    config.revocation.max_connections,
                    config.revocation.max_connections_per_source,
                ),
            ),
            stopped.clone(),
        )));
    }
    let metrics_addr = match crate::metrics::bind_listener(&config.metrics, &metrics, &ra).await {
        Some((listener, addr, app)) => {
            // No per-source cap: the few scrapers of a management network are known, and
            // this listener's budget is its own, so a flood here hides only the metrics.
            let max = config.metrics.max_connections;
            tasks.push(tokio::spawn(serve_plain_http(
                listener,
                app,
                limits("metrics", ConnectionBudget::new(max, max)),
                stopped,
            )));
            Some(addr)
        }
        None => None,
    };
    metrics.set_ready(true);
    tracing::info!(
        https = %https_addr,
        admin_socket = %config.admin.socket.display(),
        metrics = %address_or_off(metrics_addr),
        revocation_http = %address_or_off(revocation_http_addr),
        "estca ready"
    );
    Ok(RunningDaemon {
        https_addr,
        admin_socket: config.admin.socket.clone(),
        metrics_addr,
        revocation_http_addr,
        stop,
        tasks,
        store,
        metrics,
        cas,
        revocation,
        root_crl,
        tls,
        grace_secs,
        config: std::sync::Mutex::new(config),
    })
}

/// Runs the daemon until `shutdown` completes, then stops it gracefully.
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let daemon = start(config, clock).await?;
    shutdown.await;
    tracing::info!("stopping: finishing in-flight requests");
    daemon.stop().await?;
    tracing::info!("stopped");
    Ok(())
}

fn with_common_layers(router: Router, timeout: Duration, metrics: Metrics) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(metrics, log_request))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| async move {
                match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(response) => response,
                    Err(_) => plain(
                        axum::http::StatusCode::REQUEST_TIMEOUT,
                        "the request took too long and was abandoned; retry",
                    ),
                }
            },
        ))
}

/// One log line per request: method, path, status, latency, peer, and the authenticated ID
/// when a handler named one; and the latency histogram by route template. Never bodies,
/// headers (Authorization) or query strings.
async fn log_request(
    axum::extract::State(metrics): axum::extract::State<Metrics>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let endpoint = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let source = req
        .extensions()
        .get::<PeerInfo>()
        .map(PeerInfo::source)
        .unwrap_or_default();
    let response = next.run(req).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    // The field is left out when no ID was authenticated.
    let id = response
        .extensions()
        .get::<AuthenticatedId>()
        .map(|id| tracing::field::display(id.0.clone()));
    tracing::info!(
        %method,
        %path,
        status,
        latency_ms = tenths(latency.as_secs_f64() * 1000.0),
        %source,
        id,
        "request"
    );
    metrics.observe_request(&endpoint, method.as_str(), status, latency);
    response
}

/// `value` rounded to one decimal, so that it prints as `41.2`, not `41.200000000000003`.
fn tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Makes the data or the CA directory (`holds` says which) private to estca's user, or
/// refuses it (see `crate::private_dir`). A directory tightened because it held nothing yet is
/// logged.
fn prepare_private_dir(
    path: &std::path::Path,
    holds: crate::private_dir::Holds,
) -> Result<(), crate::private_dir::PrivateDirError> {
    use crate::private_dir::{prepare, Prepared};
    if let Prepared::Tightened(mode) = prepare(path, holds)? {
        tracing::warn!(
            dir = %path.display(),
            was = %format!("{mode:04o}"),
            "tightened to 0700: group or others could enter it, and it held nothing yet"
        );
    }
    Ok(())
}
