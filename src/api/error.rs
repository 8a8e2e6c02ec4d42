//! What the management API answers when it refuses: a status and `{"error": code, "detail":
//! sentence}`, from the registration authority's refusals and axum's rejections alike.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::http::{http_error, ErrorBody};
use crate::ra::RaError;

/// An API error: a status and `{"error": "<one sentence>"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<RaError> for ApiError {
    fn from(e: RaError) -> Self {
        let (status, message) = http_error(&e);
        Self {
            retry_after_secs: e.retry_after_secs(),
            ..Self::new(status, message)
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let status = match e {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = match self.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            StatusCode::SERVICE_UNAVAILABLE => "busy",
            _ => "internal",
        };
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: code.to_owned(),
                detail: self.message,
            }),
        )
            .into_response();
        let retry_after = match (self.retry_after_secs, self.status) {
            (Some(secs), _) => Some(secs),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(5),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

/// A handler's JSON answer, or its refusal.
pub(super) type ApiResult<T> = Result<Json<T>, ApiError>;

/// A path or query parameter as one of the model's types, or a 400 saying why it is not one.
pub(super) fn parse<T: std::str::FromStr<Err = crate::model::InvalidValue>>(
    text: &str,
) -> Result<T, ApiError> {
    text.parse()
        .map_err(|e: crate::model::InvalidValue| ApiError::bad_request(e.0))
}
