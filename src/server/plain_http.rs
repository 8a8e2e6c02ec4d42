//! Plain HTTP sent to the HTTPS port: answered with a plain-text hint instead of a TLS alert,
//! which curl would otherwise show as "Received HTTP/0.9 when not allowed".

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The first byte of every TLS connection: a handshake record (RFC 8446 section 5.1).
const TLS_HANDSHAKE: u8 = 0x16;

/// What a plain-HTTP request to the HTTPS port is told.
const HINT: &str = "This port speaks HTTPS only: use https:// (EST is under \
                    https://HOST:PORT/.well-known/est/).\n";

/// Whether `tcp`'s first byte (already arrived) cannot begin a TLS connection.
pub(crate) async fn is_not_tls(tcp: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(tcp.peek(&mut byte).await, Ok(1) if byte[0] != TLS_HANDSHAKE)
}

/// Answers one plain-HTTP request on `tcp` with 400 and [`HINT`], then closes; bounded by
/// `deadline` in all.
pub(crate) async fn answer_with_hint(tcp: TcpStream, deadline: Duration) {
    let service = hyper::service::service_fn(|_request| async {
        let mut response = Response::new(Full::new(Bytes::from_static(HINT.as_bytes())));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        Ok::<_, Infallible>(response)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(tcp), service);
    let _ = tokio::time::timeout(deadline, connection).await;
}
