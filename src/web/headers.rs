//! The security headers of every browser screen: a strict Content-Security-Policy (own
//! scripts and styles only, nothing inline, no framing), clickjacking protection for older
//! browsers, no MIME sniffing, no referrer, and no caching of the pages.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Response;

/// The Content-Security-Policy of the screens. `connect-src 'self'`: the pages talk to EST
/// and the management API of the origin that served them, and nowhere else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// Adds the screens' security headers to `response`.
pub fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
