//! What each client does during a timed window, one function per scenario, and the one
//! request-and-answer exchange they share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use base64::Engine;
use hyper::body::Bytes;
use hyper::StatusCode;
use tokio::sync::Barrier;

use crate::http::{self, Connection};
use crate::keys::{self, KeyAndCsr};
use crate::stats::Tally;

use super::setup::AppIdentity;
use super::{Target, B64};

pub(super) fn enroll_request(
    id: &str,
    password: &str,
    csr: Bytes,
) -> Result<hyper::Request<http::Body>> {
    let mut r = http::request(
        "POST",
        "/.well-known/est/simpleenroll",
        Some("application/pkcs10"),
        csr,
    )?;
    let credentials = B64.encode(format!("{id}:{password}"));
    r.headers_mut()
        .insert("authorization", format!("Basic {credentials}").parse()?);
    Ok(r)
}

/// Sends `request` on `conn` (opening it when absent); records the outcome; keeps the
/// connection open after a success when `keep`.
pub(super) async fn exchange(
    tally: &mut Tally,
    conn: &mut Option<Connection>,
    open: impl std::future::Future<Output = Result<Connection>>,
    request: hyper::Request<http::Body>,
    keep: bool,
) -> Option<Bytes> {
    let started = Instant::now();
    let result = async {
        let mut c = match conn.take() {
            Some(c) => c,
            None => open.await?,
        };
        let answer = c.send(request).await?;
        Ok::<_, anyhow::Error>((c, answer))
    }
    .await;
    match result {
        Ok((c, (status, body))) => {
            if keep {
                *conn = Some(c);
            }
            if status == StatusCode::OK {
                tally.ok(started.elapsed());
                Some(body)
            } else {
                tally.error(status.as_u16().to_string());
                None
            }
        }
        Err(_) => {
            tally.error("transport");
            None
        }
    }
}

pub(super) async fn cacerts_client(
    target: Arc<Target>,
    barrier: Arc<Barrier>,
    duration: Duration,
    keepalive: bool,
) -> Tally {
    let mut tally = Tally::default();
    let open = || Connection::tls(target.next_https(), target.anonymous.clone());
    let mut conn = if keepalive { open().await.ok() } else { None };
    barrier.wait().await;
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let Ok(request) = http::request("GET", "/.well-known/est/cacerts", None, Bytes::new())
        else {
            break;
        };
        exchange(&mut tally, &mut conn, open(), request, keepalive).await;
    }
    tally
}

/// IDs and keys for simpleenroll, each used once.
pub(super) struct EnrollWork {
    pub(super) ids: Vec<String>,
    pub(super) keys: Vec<KeyAndCsr>,
    pub(super) next: AtomicUsize,
}

pub(super) async fn simpleenroll_client(
    target: Arc<Target>,
    barrier: Arc<Barrier>,
    duration: Duration,
    keepalive: bool,
    work: Arc<EnrollWork>,
) -> Tally {
    let mut tally = Tally::default();
    let open = || Connection::tls(target.next_https(), target.anonymous.clone());
    let mut conn = if keepalive { open().await.ok() } else { None };
    barrier.wait().await;
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let i = work.next.fetch_add(1, Ordering::Relaxed);
        let (Some(id), Some(key)) = (work.ids.get(i), work.keys.get(i)) else {
            tally.exhausted = true;
            break;
        };
        let Ok(request) = enroll_request(id, &target.password, key.csr_base64.clone()) else {
            break;
        };
        exchange(&mut tally, &mut conn, open(), request, keepalive).await;
    }
    tally
}

/// The delegated scenario's client: one keep-alive connection with the application's
/// certificate; each request enrolls the next fresh ID (its CSR names it).
pub(super) async fn delegated_client(
    target: Arc<Target>,
    barrier: Arc<Barrier>,
    duration: Duration,
    keepalive: bool,
    app: AppIdentity,
    pool: Arc<KeyPool>,
) -> Tally {
    let mut tally = Tally::default();
    let open = || Connection::tls(target.next_https(), app.clone());
    let mut conn = if keepalive { open().await.ok() } else { None };
    barrier.wait().await;
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let i = pool.next.fetch_add(1, Ordering::Relaxed);
        let Some(key) = pool.keys.get(i) else {
            tally.exhausted = true;
            break;
        };
        let Ok(request) = http::request(
            "POST",
            "/.well-known/est/simpleenroll",
            Some("application/pkcs10"),
            key.csr_base64.clone(),
        ) else {
            break;
        };
        exchange(&mut tally, &mut conn, open(), request, keepalive).await;
    }
    tally
}

/// Keys for simplereenroll, each used once.
pub(super) struct KeyPool {
    pub(super) keys: Vec<KeyAndCsr>,
    pub(super) next: AtomicUsize,
}

pub(super) async fn simplereenroll_client(
    target: Arc<Target>,
    barrier: Arc<Barrier>,
    duration: Duration,
    pool: Arc<KeyPool>,
    mut cert: Vec<u8>,
    mut key: Vec<u8>,
) -> Tally {
    let mut tally = Tally::default();
    barrier.wait().await;
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let i = pool.next.fetch_add(1, Ordering::Relaxed);
        let Some(next) = pool.keys.get(i) else {
            tally.exhausted = true;
            break;
        };
        // The client certificate changes with every renewal, so every renewal is a new TLS
        // connection presenting the current certificate.
        let Ok(config) = http::client_config(target.roots.clone(), Some((&cert, &key))) else {
            tally.error("client-config");
            break;
        };
        let Ok(request) = http::request(
            "POST",
            "/.well-known/est/simplereenroll",
            Some("application/pkcs10"),
            next.csr_base64.clone(),
        ) else {
            break;
        };
        let mut conn = None;
        let open = Connection::tls(target.next_https(), config);
        if let Some(body) = exchange(&mut tally, &mut conn, open, request, false).await {
            match keys::certificate_of(&body) {
                Ok(new) => {
                    cert = new;
                    key = next.key_der.clone();
                }
                Err(_) => {
                    tally.error("bad-answer");
                    break;
                }
            }
        }
    }
    tally
}

pub(super) async fn ocsp_client(
    addr: SocketAddr,
    barrier: Arc<Barrier>,
    duration: Duration,
    keepalive: bool,
    requests: Arc<Vec<Bytes>>,
    offset: usize,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn = if keepalive {
        Connection::plain(addr).await.ok()
    } else {
        None
    };
    barrier.wait().await;
    let deadline = Instant::now() + duration;
    let mut n = offset;
    while Instant::now() < deadline {
        let body = requests[n % requests.len()].clone();
        n += 1;
        let Ok(request) = http::request("POST", "/ocsp", Some("application/ocsp-request"), body)
        else {
            break;
        };
        exchange(
            &mut tally,
            &mut conn,
            Connection::plain(addr),
            request,
            keepalive,
        )
        .await;
    }
    tally
}

/// A DER OCSPRequest (SHA-1 CertID, no nonce) for the certificate `cert_der` issued by
/// `issuing_der`.
pub(super) fn ocsp_request(issuing_der: &[u8], cert_der: &[u8]) -> Result<Vec<u8>> {
    use der::{Decode, Encode};
    use estca::ca::ocsp::{CertIdHash, IssuerHashes};
    let cert = x509_cert::Certificate::from_der(cert_der)?;
    let cert_id = IssuerHashes::of_issuer(issuing_der)?
        .cert_id(CertIdHash::Sha1, cert.tbs_certificate.serial_number)?;
    Ok(x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            ..Default::default()
        },
        optional_signature: None,
    }
    .to_der()?)
}

/// Sends `request` (from [`ocsp_request`]) once and fails unless the answer says "good": a
/// CertID the responder does not recognise would be answered "unknown" and the window would
/// time the wrong path.
pub(super) async fn check_ocsp_good(addr: SocketAddr, request: Bytes) -> Result<()> {
    use der::Decode;
    let mut conn = Connection::plain(addr).await?;
    let (status, body) = conn
        .send(http::request(
            "POST",
            "/ocsp",
            Some("application/ocsp-request"),
            request,
        )?)
        .await?;
    anyhow::ensure!(status == StatusCode::OK, "OCSP answered {status}");
    let response = x509_ocsp::OcspResponse::from_der(&body)?;
    let basic = response
        .response_bytes
        .ok_or_else(|| anyhow::anyhow!("OCSP: {:?}", response.response_status))?;
    let basic = x509_ocsp::BasicOcspResponse::from_der(basic.response.as_bytes())?;
    match basic
        .tbs_response_data
        .responses
        .first()
        .map(|r| &r.cert_status)
    {
        Some(x509_ocsp::CertStatus::Good(_)) => Ok(()),
        other => anyhow::bail!("OCSP answered {other:?} for a valid certificate"),
    }
}
