//! The listeners' accept loops: each connection admitted against its listener's budget and
//! per-source cap, given its first-byte, handshake, header and write deadlines, served by
//! hyper with the peer's identity attached, and given the grace period at a stop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use axum::extract::Request;
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::http::{HeaderSpelling, PeerInfo};
use crate::model::PresentedCertificate;
use crate::source::SourceKey;

use super::budget::{ConnectionBudget, Refused};
use super::write_deadline::{is_write_stall, WriteDeadline};
use super::{first_byte, overload, plain_http};

/// What one listener enforces on its connections.
#[derive(Clone)]
pub(super) struct Limits {
    /// The listener's name in log lines.
    pub(super) listener: &'static str,
    /// The listener's own connection budget, with its per-source cap.
    pub(super) budget: Arc<ConnectionBudget>,
    /// Over-limit connections being answered 503 (see `overload`).
    pub(super) refusals: Arc<Semaphore>,
    /// `server.first_byte_timeout_secs`: how long a new connection may stay silent.
    pub(super) first_byte_timeout: Duration,
    /// `server.handshake_timeout_secs`: how long the TLS handshake may take.
    pub(super) handshake_timeout: Duration,
    /// `server.header_timeout_secs`: how long a request's headers (or a keep-alive idle
    /// connection) may take.
    pub(super) header_timeout: Duration,
    /// `server.write_timeout_secs`: how long writing an answer may make no progress (see
    /// `write_deadline`).
    pub(super) write_timeout: Duration,
    /// `server.ipv6_source_prefix`: how IPv6 peers are grouped into sources.
    pub(super) ipv6_source_prefix: u8,
    /// `server.shutdown_grace_secs`, changed by a reload.
    pub(super) grace_secs: Arc<AtomicU64>,
    /// The canonical spelling of header names in every answer (see `crate::http`).
    pub(super) spelling: HeaderSpelling,
}

impl Limits {
    /// What the per-source cap counts a peer at `addr` as.
    fn source(&self, addr: SocketAddr) -> SourceKey {
        SourceKey::new(addr.ip(), self.ipv6_source_prefix)
    }

    /// One warning per refused connection, naming the listener, the source and the limit.
    fn log_refusal(&self, addr: SocketAddr, why: Refused, action: &str) {
        let source = self.source(addr);
        match why {
            Refused::ListenerFull => tracing::warn!(
                listener = self.listener,
                %addr,
                %source,
                "connection limit reached; {action}"
            ),
            Refused::SourceFull => tracing::warn!(
                listener = self.listener,
                %addr,
                %source,
                "this source holds its whole share of connections; {action}"
            ),
        }
    }
}

/// Accepts connections on `listener` until a stop is asked, hands each to `open` with a
/// watcher for the graceful stop, then gives open connections the grace period to finish.
async fn accept_until_stopped<L: Listener>(
    mut listener: L,
    mut stopped: watch::Receiver<bool>,
    grace_secs: &AtomicU64,
    mut open: impl FnMut(L::Io, L::Addr, hyper_util::server::graceful::Watcher),
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (io, addr) = tokio::select! {
            pair = Listener::accept(&mut listener) => pair,
            _ = stopped.changed() => break,
        };
        open(io, addr, graceful.watcher());
    }
    wait_for_connections(graceful, grace_secs).await;
}

pub(super) async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    stopped: watch::Receiver<bool>,
) {
    let grace_secs = limits.grace_secs.clone();
    accept_until_stopped(listener, stopped, &grace_secs, |tcp, addr, watcher| {
        // Read per connection: a reload swaps the configuration for new connections only.
        let acceptor = TlsAcceptor::from(tls.load_full());
        let permit = match limits.budget.admit(Some(limits.source(addr))) {
            Ok(permit) => permit,
            Err(Refused::ListenerFull) => {
                limits.log_refusal(addr, Refused::ListenerFull, "answering 503");
                overload::refuse(tcp, addr, acceptor, &limits.refusals);
                return;
            }
            // Closed at once, not answered 503 like a full listener: the source already holds
            // its whole share, so this is a flood or a runaway client rather than a person
            // waiting, and a TLS answer would cost a handshake and one of the shared refusal
            // slots that such a source could otherwise keep busy. A client behind a NAT that
            // has room sees nothing of this.
            Err(Refused::SourceFull) => {
                limits.log_refusal(addr, Refused::SourceFull, "closing");
                return;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _permit = permit; // given back however this connection ends
            if !first_byte::tcp(&tcp, limits.first_byte_timeout).await {
                tracing::debug!(%addr, "no TLS bytes within the first-byte deadline; closed");
                return;
            }
            if plain_http::is_not_tls(&tcp).await {
                tracing::debug!(%addr, "not TLS; answered with the HTTPS hint");
                plain_http::answer_with_hint(tcp, limits.header_timeout).await;
                return;
            }
            // Beneath TLS, so that the deadline counts the bytes the peer really takes.
            let tcp = WriteDeadline::new(tcp, limits.write_timeout, limits.listener, Some(addr));
            let tls =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%addr, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%addr, "TLS handshake timed out");
                        return;
                    }
                };
            let client_certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| Arc::new(PresentedCertificate::new(cert.as_ref())));
            let peer = PeerInfo::tcp(addr, None, limits.ipv6_source_prefix)
                .with_client_certificate(client_certificate);
            serve_connection(TokioIo::new(tls), app, peer, &limits, watcher).await;
        });
    })
    .await;
}

pub(super) async fn serve_admin(
    listener: UnixListener,
    app: Router,
    limits: Limits,
    stopped: watch::Receiver<bool>,
) {
    accept_until_stopped(
        listener,
        stopped,
        &limits.grace_secs,
        |stream, _, watcher| {
            // A bound here too: whoever may connect must not exhaust the daemon's file
            // descriptors. Over it, a connection is closed at once.
            let Ok(permit) = limits.budget.admit(None) else {
                tracing::warn!(
                    listener = limits.listener,
                    "connection limit reached; closing a new connection"
                );
                return;
            };
            let uid = stream.peer_cred().ok().map(|c| c.uid());
            let peer = PeerInfo::admin_socket(uid);
            let app = app.clone();
            let limits = limits.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if !first_byte::unix(&stream, limits.first_byte_timeout).await {
                    tracing::debug!("admin connection silent past the first-byte deadline; closed");
                    return;
                }
                let stream =
                    WriteDeadline::new(stream, limits.write_timeout, limits.listener, None);
                serve_connection(TokioIo::new(stream), app, peer, &limits, watcher).await;
            });
        },
    )
    .await;
}

/// Serves `app` over plain HTTP (the revocation routes: CRLs and OCSP responses are signed,
/// and relying parties must not need TLS to check revocation).
pub(super) async fn serve_plain_http(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stopped: watch::Receiver<bool>,
) {
    accept_until_stopped(
        listener,
        stopped,
        &limits.grace_secs,
        |tcp, addr, watcher| {
            // Over the budget or the source's cap, a connection is closed at once: plain HTTP
            // has no handshake to answer through cheaply, and relying parties retry.
            let permit = match limits.budget.admit(Some(limits.source(addr))) {
                Ok(permit) => permit,
                Err(why) => {
                    limits.log_refusal(addr, why, "closing");
                    return;
                }
            };
            let _ = tcp.set_nodelay(true);
            let peer = PeerInfo::tcp(addr, None, limits.ipv6_source_prefix);
            let app = app.clone();
            let limits = limits.clone();
            tokio::spawn(async move {
                let _permit = permit; // given back however this connection ends
                if !first_byte::tcp(&tcp, limits.first_byte_timeout).await {
                    tracing::debug!(%addr, "no request byte within the first-byte deadline; closed");
                    return;
                }
                let tcp =
                    WriteDeadline::new(tcp, limits.write_timeout, limits.listener, Some(addr));
                serve_connection(TokioIo::new(tcp), app, peer, &limits, watcher).await;
            });
        },
    )
    .await;
}

async fn serve_connection<IO>(
    io: TokioIo<IO>,
    app: Router,
    peer: PeerInfo,
    limits: &Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let spelling = limits.spelling.clone();
    // Around the whole router: the router adds `Allow` to a 405 after its routes' layers.
    let app = tower::Layer::layer(
        &axum::middleware::from_fn(crate::http::explain_method_not_allowed),
        app,
    );
    let service = app
        .map_request(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(peer.clone());
            req.map(axum::body::Body::new)
        })
        .map_response(move |response| spelling.apply(response));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // Header names in title case, the few whose canonical spelling differs (as
        // `WWW-Authenticate`) from `spelling`: see `crate::http::HeaderSpelling` for why.
        .title_case_headers(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let builder = builder.http1_only();
    let connection = builder.serve_connection(io, TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(connection).await {
        // A stalled write was logged by `WriteDeadline` already, once.
        if !is_write_stall(&*e) {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

async fn wait_for_connections(graceful: GracefulShutdown, grace_secs: &AtomicU64) {
    let grace = Duration::from_secs(grace_secs.load(Ordering::SeqCst));
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy after the grace period; closing them");
    }
}
