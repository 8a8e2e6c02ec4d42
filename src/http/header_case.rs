//! Header names on the wire in their canonical spelling (`Content-Type`, `WWW-Authenticate`).
//!
//! Header names are case-insensitive (RFC 9110 section 5.1), and hyper writes them in lower
//! case. Cisco's libest — inside many routers and devices — compares `Content-Type`,
//! `Content-Length` and `WWW-Authenticate` byte for byte, so it cannot use lower-case
//! answers. hyper's `title_case_headers` fixes `Content-Type` but writes `Www-Authenticate`.
//! The other remedy hyper has is its header-case extension: a response that carries hyper's
//! `HeaderCaseMap` in its extensions is written with the spellings in that map (the feature
//! behind `preserve_header_case`, made for proxies). hyper does not let that type be built
//! directly; it builds one only when it parses a message with `preserve_header_case` on. So
//! at start estca has hyper's own HTTP/1 client parse, over an in-memory pipe, a response
//! head that lists the canonical spellings ([`CANONICAL_NAMES`]), and keeps the extensions
//! hyper produced; every answer then carries a copy ([`HeaderSpelling::apply`]). hyper still
//! writes every byte of every answer. Names outside the list are written in
//! title case by the server's `title_case_headers` option.

use axum::response::Response;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The names estca writes whose canonical spelling is not their title case, and the common
/// ones libest matches exactly; the rest are written in title case.
const CANONICAL_NAMES: &[&str] = &[
    "WWW-Authenticate",
    "Content-Type",
    "Content-Length",
    "Content-Transfer-Encoding",
    "Retry-After",
    "Allow",
    "ETag",
];

/// Why the canonical spellings could not be prepared (hyper refused the response head).
#[derive(Debug, thiserror::Error)]
#[error("cannot prepare the canonical header-name spellings: {0}")]
pub struct HeaderSpellingError(String);

/// The extensions that make hyper write [`CANONICAL_NAMES`] in their canonical spelling.
#[derive(Clone)]
pub struct HeaderSpelling(http::Extensions);

impl HeaderSpelling {
    /// Has hyper parse the canonical spellings once (in memory, no network).
    pub async fn prepare() -> Result<Self, HeaderSpellingError> {
        let fail = |e: &dyn std::fmt::Display| HeaderSpellingError(e.to_string());
        let (ours, theirs) = tokio::io::duplex(16 * 1024);
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .preserve_header_case(true)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(ours))
            .await
            .map_err(|e| fail(&e))?;
        let driver = tokio::spawn(connection);
        let peer = tokio::spawn(answer_with_spellings(theirs));
        let request = http::Request::builder()
            .uri("/")
            .header(http::header::HOST, "localhost")
            .body(Empty::new())
            .map_err(|e| fail(&e))?;
        let response = sender.send_request(request).await.map_err(|e| fail(&e))?;
        drop(sender);
        let _ = driver.await;
        let _ = peer.await;
        let (parts, _) = response.into_parts();
        Ok(Self(parts.extensions))
    }

    /// Marks `response` to be written with the canonical spellings.
    pub fn apply(&self, mut response: Response) -> Response {
        response.extensions_mut().extend(self.0.clone());
        response
    }
}

/// The other end of the pipe: reads the request head, answers with one header per canonical
/// name (value `0`, valid for each of them; hyper keeps only the names' spelling). This head
/// is a list of names for hyper's parser, never sent to anyone.
async fn answer_with_spellings(mut io: tokio::io::DuplexStream) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let mut head = b"HTTP/1.1 204 No Content\r\n".to_vec();
    for name in CANONICAL_NAMES {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": 0\r\n");
    }
    head.extend_from_slice(b"\r\n");
    io.write_all(&head).await?;
    io.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one request with hyper's server (title case on, as estca's listeners) and
    /// returns the raw response head.
    async fn raw_answer(spelling: Option<HeaderSpelling>) -> String {
        let (client, server) = tokio::io::duplex(16 * 1024);
        let service = hyper::service::service_fn(move |_req| {
            let spelling = spelling.clone();
            async move {
                let response = Response::builder()
                    .status(401)
                    .header(http::header::WWW_AUTHENTICATE, "Basic realm=\"estca\"")
                    .header(http::header::CONTENT_TYPE, "text/plain")
                    .header(http::header::ETAG, "\"3\"")
                    .header("x-other-name", "1")
                    .body(axum::body::Body::empty())
                    .unwrap();
                let response = match &spelling {
                    Some(s) => s.apply(response),
                    None => response,
                };
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let served = tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(TokioIo::new(server), service),
        );
        let mut client = client;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        let _ = served.await;
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn answers_carry_the_canonical_spellings() {
        let spelling = HeaderSpelling::prepare().await.unwrap();
        let head = raw_answer(Some(spelling)).await;
        assert!(head.contains("\r\nWWW-Authenticate: Basic"), "{head}");
        assert!(head.contains("\r\nContent-Type: text/plain"), "{head}");
        assert!(head.contains("\r\nContent-Length: 0"), "{head}");
        assert!(head.contains("\r\nETag: \"3\""), "{head}");
        assert!(head.contains("\r\nX-Other-Name: 1"), "{head}");
        // Without the extension, title case alone misses libest's spelling: the reason for
        // this module.
        let head = raw_answer(None).await;
        assert!(head.contains("\r\nWww-Authenticate: Basic"), "{head}");
    }
}
