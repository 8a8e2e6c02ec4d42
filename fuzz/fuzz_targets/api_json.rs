//! The management API's JSON: every body type of `/api/v1` deserialised and validated by the
//! real handlers (the operator's router, so each body reaches its handler), in-process over a
//! development CA and a temporary sled store. Input: one byte choosing the endpoint, then the
//! JSON body (for GET endpoints, the query string).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

const ENDPOINTS: [(&str, &str); 9] = [
    ("POST", "/api/v1/contracts"),
    ("POST", "/api/v1/accounts"),
    ("PATCH", "/api/v1/accounts/fuzz1"),
    ("POST", "/api/v1/accounts/fuzz1/certificate"),
    ("POST", "/api/v1/accounts/fuzz1/unlock"),
    ("POST", "/api/v1/apps"),
    ("GET", "/api/v1/history?"),
    ("GET", "/api/v1/accounts?"),
    ("GET", "/api/v1/certificates/"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let fixture = common::fixture();
    let router = estca::internal::api::router(
        fixture.ra.clone(),
        estca::internal::http::Base64Lines::Wrapped,
    );
    let (method, path) = ENDPOINTS[usize::from(selector) % ENDPOINTS.len()];
    let (uri, body) = if method == "GET" {
        // The input becomes the query string or path segment, as far as it is a valid URI.
        let Ok(text) = std::str::from_utf8(body) else {
            return;
        };
        (format!("{path}{text}"), Vec::new())
    } else {
        (path.to_owned(), body.to_vec())
    };
    let Ok(request) = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .extension(estca::internal::http::PeerInfo::admin_socket(Some(0)))
        .body(axum::body::Body::from(body))
    else {
        return;
    };
    common::drive(router, request);
});
