//! `GET /api/v1/backup`: a consistent snapshot of the store in the backup format
//! ([`crate::store::backup`]), signed by the issuing CA, for the operator over the admin
//! socket, streamed from the temporary file the registration authority wrote it to.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::caller::ApiCaller;
use super::error::ApiError;
use crate::ra::RegistrationAuthority;

/// The media type of a backup.
pub const MEDIA_TYPE: &str = "application/x-ndjson";

#[utoipa::path(
    get,
    path = "/api/v1/backup",
    summary = "A consistent snapshot of the whole store (operator only, on the admin socket)",
    description = "JSON lines with a trailer holding a checksum and the issuing CA's signature; \
        it holds password hashes, so only the operator gets it. `estca backup FILE` writes it, \
        `estca restore FILE` reads it.",
    responses(
        (status = 200, description = "The backup", content_type = "application/x-ndjson", body = String),
        (status = 403, response = crate::http::ErrorBody),
    )
)]
pub(super) async fn backup(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let snapshot = tokio::fs::File::from_std(ra.backup(&caller).await?);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(snapshot));
    Ok(([(header::CONTENT_TYPE, MEDIA_TYPE)], body).into_response())
}
