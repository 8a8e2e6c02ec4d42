//! How a registration-authority error is answered over HTTP, and the JSON body of an error
//! on the `/api/v1` paths (the management API and the operator's CRL view).

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::ra::{ErrorKind, RaError};
use crate::store::StoreError;

/// What a client is told while the store's database cannot be reached (with 503 and
/// `Retry-After`): where the database is and why it failed are for the operator's log only.
const STORE_UNAVAILABLE: &str =
    "the CA's database is unavailable; retry in a few seconds (the operator has been told in the log)";

/// The HTTP status and message of a registration-authority error, for every HTTP front end.
/// Failures inside estca, and a store whose database cannot be reached, are logged here
/// (once per failed request) and answered with a generic sentence, so that no internal
/// detail (paths, the database's URL, database errors) reaches a client.
pub fn http_error(error: &RaError) -> (StatusCode, String) {
    if let RaError::Store(StoreError::Unavailable(_)) = error {
        // The backend's message names the database (never its password) and the failure.
        tracing::warn!(error = %error, "the store's database is unavailable; answered 503");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            STORE_UNAVAILABLE.to_owned(),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_database_is_a_503_that_does_not_say_where_the_database_is() {
        let error = RaError::Store(StoreError::Unavailable(
            "cannot reach the database postgres://estca@db.example.net:30432/estca: error connecting to server: Connection refused".into(),
        ));
        let (status, message) = http_error(&error);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(message, STORE_UNAVAILABLE);
        for internal in [
            "postgres://",
            "db.example.net",
            "30432",
            "estca@",
            "refused",
        ] {
            assert!(!message.contains(internal), "{message}");
        }
        assert_eq!(error.retry_after_secs(), Some(5));
    }

    #[test]
    fn a_failing_database_is_a_500_without_its_error() {
        let error = RaError::Store(StoreError::Backend(
            "database: relation \"x\" does not exist".into(),
        ));
        let (status, message) = http_error(&error);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!message.contains("relation"), "{message}");
    }
}
