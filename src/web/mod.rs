//! The browser screens of the notice: `/enroll` (電子証明書取得: key pair, PKCS#10 and
//! PKCS#12 made in the browser, EST `simpleenroll` called by the page) and `/console`
//! (管理機能: a master's ID maintenance, calling the management API with the client
//! certificate the browser presents). The daemon serves only embedded files here; the pages'
//! work is done by EST and the API, which keep every rule.

pub mod assets;
pub mod headers;
pub mod same_origin;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use assets::{Asset, ASSETS};

/// The routes of the embedded pages and their assets.
pub fn router() -> Router {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { serve(asset) }))
    })
}

fn serve(asset: &'static Asset) -> Response {
    headers::secure(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, asset.content_type)],
            asset.body,
        )
            .into_response(),
    )
}
