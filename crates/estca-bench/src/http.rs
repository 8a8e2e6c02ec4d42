//! HTTP/1.1 client connections over TLS (EST), plain TCP (OCSP) and the admin socket, on
//! hyper's low-level connection API: one connection, requests one after another.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// A request body.
pub type Body = Full<Bytes>;

/// One open HTTP/1.1 connection.
pub struct Connection {
    send: SendRequest<Body>,
}

/// The roots a client trusts: the bench CA's root.
pub fn roots(root_pem: &Path) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root_pem)
        .with_context(|| format!("cannot read {}", root_pem.display()))?
    {
        let cert = cert.with_context(|| format!("bad PEM in {}", root_pem.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("unusable root in {}", root_pem.display()))?;
    }
    Ok(Arc::new(roots))
}

/// A TLS client configuration trusting `roots`, presenting `client` (certificate DER and
/// PKCS#8 key DER) when given. Session resumption is rustls's default (in-memory cache).
pub fn client_config(
    roots: Arc<RootCertStore>,
    client: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder.with_client_auth_cert(
            vec![CertificateDer::from(cert.to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
        )?,
    };
    Ok(Arc::new(config))
}

impl Connection {
    /// A TLS connection to the EST listener (server name `localhost`).
    pub async fn tls(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost")?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr} failed"))?;
        Self::over(tls).await
    }

    /// A plain TCP connection (the revocation listener).
    pub async fn plain(addr: SocketAddr) -> Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        Self::over(tcp).await
    }

    /// A connection to the admin socket.
    pub async fn unix(path: &Path) -> Result<Self> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .with_context(|| format!("cannot connect to the admin socket {}", path.display()))?;
        Self::over(stream).await
    }

    async fn over<IO>(io: IO) -> Result<Self>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { send })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(&mut self, request: Request<Body>) -> Result<(StatusCode, Bytes)> {
        self.send.ready().await?;
        let response = self.send.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// A request with `Host: localhost`, optional content type and body.
pub fn request(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Request<Body>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    Ok(builder.body(Full::new(body))?)
}

/// A JSON POST over the admin socket; `201` and `409` (exists already) count as success.
/// Returns the answer's body.
pub async fn admin_post(
    admin: &mut Connection,
    path: &str,
    json: &serde_json::Value,
) -> Result<Bytes> {
    let body = Bytes::from(serde_json::to_vec(json)?);
    let (status, answer) = admin
        .send(request("POST", path, Some("application/json"), body)?)
        .await?;
    if status == StatusCode::CREATED || status == StatusCode::CONFLICT {
        return Ok(answer);
    }
    Err(anyhow!(
        "POST {path} over the admin socket: {status}: {}",
        String::from_utf8_lossy(&answer).trim()
    ))
}
