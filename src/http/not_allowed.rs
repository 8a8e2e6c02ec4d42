//! A sentence for `405 Method Not Allowed` answers, which the router gives with an `Allow`
//! header and an empty body: a person (or a client that logs only the body) reads which
//! methods the path accepts. Under `/api/` the sentence comes in the API's JSON error body.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{plain, ErrorBody};

/// Middleware: a 405 answer keeps its `Allow` header and gains a body naming those methods.
pub async fn explain_method_not_allowed(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let Some(allow) = response.headers().get(header::ALLOW).cloned() else {
        return response;
    };
    let detail = format!(
        "this path does not accept {method}; it accepts {}",
        allow.to_str().unwrap_or("other methods")
    );
    let mut explained = if api {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            Json(ErrorBody {
                error: "method_not_allowed".to_owned(),
                detail,
            }),
        )
            .into_response()
    } else {
        plain(StatusCode::METHOD_NOT_ALLOWED, &detail)
    };
    explained.headers_mut().insert(header::ALLOW, allow);
    explained
}
