//! The EST request path, headers and body to response: the real EST router (with a
//! development CA, a temporary sled store and an account `fuzz1`) driven in-process.
//! Input: one byte choosing the endpoint (and whether a client certificate is attached),
//! then `name: value` header lines, a blank line, and the body.
#![no_main]

#[path = "common.rs"]
mod common;

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;

const PATHS: [(&str, &str); 4] = [
    ("POST", "/.well-known/est/simpleenroll"),
    ("POST", "/.well-known/est/simplereenroll"),
    ("GET", "/.well-known/est/cacerts"),
    ("GET", "/.well-known/est/csrattrs"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fixture = common::fixture();
    let router = estca::internal::est::router(
        fixture.ra.clone(),
        fixture.max_body_bytes,
        estca::internal::http::Base64Lines::Wrapped,
    )
    .expect("EST router");
    let (method, path) = PATHS[usize::from(selector) % PATHS.len()];
    let (headers, body) = common::split_request(rest);
    // With bit 2 set, the body's first bytes double as a "client certificate" (garbage or not).
    let client_certificate = (selector & 4 != 0).then(|| body.to_vec());
    let peer = estca::internal::http::PeerInfo::tcp(
        SocketAddr::from(([127, 0, 0, 1], 40000)),
        client_certificate,
        64,
    );
    let mut request = http::Request::builder().method(method).uri(path);
    for (name, value) in &headers {
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        request = request.header(name, value);
    }
    let Ok(request) = request
        .extension(peer)
        .body(axum::body::Body::from(body.to_vec()))
    else {
        return;
    };
    let (status, _) = common::drive(router, request);
    assert!(
        matches!(
            status,
            200 | 400 | 401 | 403 | 405 | 409 | 413 | 415 | 429 | 503
        ),
        "unexpected status {status}"
    );
});
