//! A sentence for `405 Method Not Allowed` answers, which the router gives with an `Allow`
//! header and an empty body: a person (or a client that logs only the body) reads which
//! methods the path accepts.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::plain;

/// Middleware: a 405 answer keeps its `Allow` header and gains a body naming those methods.
pub async fn explain_method_not_allowed(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let Some(allow) = response.headers().get(header::ALLOW).cloned() else {
        return response;
    };
    let allowed = allow.to_str().unwrap_or("").to_owned();
    let mut explained = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("this path does not accept {method}; it accepts {allowed}"),
    );
    explained.headers_mut().insert(header::ALLOW, allow);
    explained
}
