//! The operator's HTTP client for the admin Unix socket.

use std::path::Path;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use super::failure::{Failure, FailureKind};
use crate::http::ErrorBody;

/// Largest answer the CLI reads.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Talks to the daemon's management API over its admin socket.
pub struct AdminClient<'a> {
    socket: &'a Path,
}

impl<'a> AdminClient<'a> {
    /// A client of the daemon listening on `socket`.
    pub fn new(socket: &'a Path) -> Self {
        Self { socket }
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `GET path` of a paged listing (a JSON array per page): every page, following each
    /// answer's `Link: <…>; rel="next"` (RFC 8288) until the last.
    pub async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, Failure> {
        let mut all = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(path) = next.take() {
            let (status, headers, bytes) = self
                .send(Method::GET, &path, None::<&()>, MAX_RESPONSE_BYTES)
                .await?;
            if !status.is_success() {
                return Err(error_message(status, &bytes));
            }
            let page: Vec<T> = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the daemon's answer could not be read: {e}"))?;
            all.extend(page);
            next = headers
                .get_all(hyper::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
        }
        Ok(all)
    }

    /// `GET path`, its answer (at most `limit` bytes) written to `out` as it arrives, for
    /// answers too large to hold in memory (backups). Returns the bytes written.
    pub async fn get_into(
        &self,
        path: &str,
        limit: u64,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, Failure> {
        let response = self.request(Method::GET, path, None::<&()>).await?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| format!("admin socket: cannot read the answer: {e}"))?
                .to_bytes();
            return Err(error_message(status, &bytes));
        }
        let mut written = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("admin socket: the answer broke off: {e}"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            written += data.len() as u64;
            if written > limit {
                return Err(
                    format!("the daemon's answer is larger than {limit} bytes; refused").into(),
                );
            }
            out.write_all(&data)
                .map_err(|e| format!("cannot write the answer: {e}"))?;
        }
        Ok(written)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Failure> {
        let (status, _, bytes) = self.send(method, path, body, MAX_RESPONSE_BYTES).await?;
        if status.is_success() {
            Ok(serde_json::from_slice(&bytes)
                .map_err(|e| format!("the daemon's answer could not be read: {e}"))?)
        } else {
            Err(error_message(status, &bytes))
        }
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        limit: usize,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), Failure> {
        let response = self.request(method, path, body).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = http_body_util::Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("admin socket: cannot read the answer: {e}"))?
            .to_bytes();
        Ok((status, headers, bytes))
    }

    /// Sends one request over a new connection to the admin socket; the answer's body is
    /// read by the caller.
    async fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Failure> {
        let stream = UnixStream::connect(self.socket).await.map_err(|e| {
            Failure::new(FailureKind::Unreachable, format!(
                "cannot reach the daemon at {} (is 'estca serve' running with the same configuration?): {e}",
                self.socket.display()
            ))
        })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("admin socket: {e}"))?;
        tokio::spawn(connection);
        let payload = match body {
            Some(b) => {
                serde_json::to_vec(b).map_err(|e| format!("cannot encode the request: {e}"))?
            }
            None => Vec::new(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "estca-admin");
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        Ok(sender
            .send_request(request)
            .await
            .map_err(|e| format!("admin socket: {e}"))?)
    }
}

/// The target of a `Link` header value `<target>; rel="next"` (as the API writes it: one link
/// per header, the target a path and query of its own).
fn next_link(value: &str) -> Option<String> {
    let (target, params) = value.trim().strip_prefix('<')?.split_once('>')?;
    params
        .split(';')
        .any(|p| p.trim() == "rel=\"next\"")
        .then(|| target.to_owned())
}

/// The failure of a non-success answer: 404 is "not found", another 4xx "refused".
fn error_message(status: StatusCode, body: &[u8]) -> Failure {
    let kind = match status {
        StatusCode::NOT_FOUND => FailureKind::NotFound,
        s if s.is_client_error() => FailureKind::Refused,
        _ => FailureKind::Other,
    };
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.detail,
        Err(_) => format!(
            "the daemon answered {status}: {}",
            String::from_utf8_lossy(body).trim()
        ),
    };
    Failure::new(kind, message)
}
