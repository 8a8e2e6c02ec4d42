//! How a registration-authority error is answered over HTTP, and the JSON body of an error
//! on the `/api/v1` paths (the management API and the operator's CRL view).

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::ra::{ErrorKind, RaError};

/// The HTTP status and message of a registration-authority error, for every HTTP front end.
/// Failures inside estca are logged here and answered with a generic sentence, so that no
/// internal detail (paths, database errors) reaches a client.
pub fn http_error(error: &RaError) -> (StatusCode, String) {
    let status = match error.kind() {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Busy | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => {
            tracing::error!(error = %error, "request failed inside estca");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "estca could not complete the request; the operator has been told in the log"
                    .to_owned(),
            );
        }
    };
    (status, error.to_string())
}

/// The JSON body of every error under `/api/v1`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema, utoipa::ToResponse)]
#[response(
    description = "A refusal: `error` is a short stable code, `detail` one sentence a person can act on",
    example = json!({"error": "not_found", "detail": "no such ID in your scope"})
)]
pub struct ErrorBody {
    /// A short, stable code: `bad_request`, `forbidden`, `not_found`, `conflict`, ...
    pub error: String,
    /// One sentence a person can act on.
    pub detail: String,
}
