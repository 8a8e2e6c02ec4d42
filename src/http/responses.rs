//! The small answers and markers every HTTP front end uses.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The media type of a PEM chain answer (RFC 8555 section 9.1), offered for curl users.
pub const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// A `text/plain` answer of one sentence (and a newline).
pub fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// The authenticated ID a handler served, put in the response's extensions for the request
/// log line.
#[derive(Debug, Clone)]
pub struct AuthenticatedId(pub String);

/// Marks `response` as served to the authenticated `id` (for the request log).
pub fn with_authenticated_id(mut response: Response, id: &str) -> Response {
    response
        .extensions_mut()
        .insert(AuthenticatedId(id.to_owned()));
    response
}

/// `response` with `sentence` as its HTTP/1.1 reason phrase, in place of the standard one
/// ("Conflict"). Clients that show only the status line see why: libest, for one, prints
/// the status line of every status it does not know (403, 409, 429, …) and nothing else.
/// A sentence that cannot be a reason phrase (a control character) leaves the standard one.
pub fn with_reason_phrase(mut response: Response, sentence: &str) -> Response {
    if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(sentence.trim().as_bytes()) {
        response.extensions_mut().insert(reason);
    }
    response
}
