//! `GET /api/v1/backup`: a consistent snapshot of the store in the backup format
//! ([`crate::store::backup`]), streamed to the operator over the admin socket.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use time::OffsetDateTime;

use super::ErrorBody;
use crate::server::PeerInfo;
use crate::store::backup::BackupWriter;
use crate::store::{Store, StoreError};

/// The media type of a backup.
pub const MEDIA_TYPE: &str = "application/x-ndjson";

/// The backup route. Only the operator (the admin socket) may use it: the file holds
/// password hashes.
pub fn router(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/api/v1/backup", get(backup))
        .with_state(store)
}

fn error(status: StatusCode, message: &str) -> Response {
    let code = if status == StatusCode::FORBIDDEN {
        "forbidden"
    } else {
        "internal"
    };
    (
        status,
        Json(ErrorBody {
            error: code.to_owned(),
            detail: message.to_owned(),
        }),
    )
        .into_response()
}

async fn backup(
    State(store): State<Arc<dyn Store>>,
    peer: Option<Extension<PeerInfo>>,
) -> Response {
    let Some(Extension(peer)) = peer else {
        return error(StatusCode::FORBIDDEN, "backups are for the operator only");
    };
    if peer.admin_socket_uid().is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "backups are available on the admin socket only",
        );
    }
    // The export holds writers back while it runs, so the sink only encodes into memory;
    // the client then reads the snapshot at its own pace.
    let mut writer = BackupWriter::new();
    let mut out = match writer.header(OffsetDateTime::now_utc()) {
        Ok(h) => h,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let exported = {
        let writer = &mut writer;
        let out = &mut out;
        let mut sink = move |record| -> Result<(), StoreError> {
            out.extend_from_slice(&writer.record(&record)?);
            Ok(())
        };
        store.export(&mut sink).await
    };
    if let Err(e) = exported {
        tracing::error!(error = %e, "backup failed");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the backup failed: {e}"),
        );
    }
    match writer.trailer() {
        Ok((line, summary)) => {
            tracing::info!(source = %peer.source(), %summary, "backup taken");
            out.extend_from_slice(&line);
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
    ([(header::CONTENT_TYPE, MEDIA_TYPE)], Body::from(out)).into_response()
}
