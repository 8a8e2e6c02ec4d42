//! Paged listings: the `limit` and `cursor` a listing takes, and the `Link: rel="next"` header
//! its answer carries.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::error::ApiError;
use crate::store::{Cursor, Page, PageRequest};

/// `limit` and `cursor` of a listing (`GET /api/v1/contracts`, `/apps`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1 to 1000; the default is the largest (`MAX_LIST_PAGE`).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Where the previous page said the next one starts (its `Link: rel="next"`).
    pub cursor: Option<String>,
}

/// Largest page of a listing, and its default.
pub const MAX_LIST_PAGE: usize = 1000;

/// The page a listing's `limit` and `cursor` ask for.
pub(super) fn page_request(
    limit: Option<usize>,
    cursor: Option<&str>,
) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(MAX_LIST_PAGE);
    if !(1..=MAX_LIST_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIST_PAGE}"
        )));
    }
    Ok(PageRequest {
        after: cursor_after(cursor)?,
        limit,
    })
}

/// Where the page a `cursor` parameter names starts (`None`: the first page), or a 400 for
/// a cursor that is not one this API gave.
pub(super) fn cursor_after(cursor: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    cursor
        .map(Cursor::from_text)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("cursor: {}", e.0)))
}

/// A page of a listing as a JSON array, with the next page's address in a `Link` header
/// (RFC 8288, `rel="next"`) when there is one. `query` holds the listing's own parameters,
/// already URL-safe.
pub(super) fn paged<T: Serialize>(
    path: &str,
    query: &[(&str, &str)],
    limit: usize,
    page: Page<T>,
) -> Response {
    let mut response = Json(page.items).into_response();
    if let Some(next) = page.next {
        let mut link = format!("<{path}?");
        for (key, value) in query {
            link += &format!("{key}={value}&");
        }
        link += &format!("limit={limit}&cursor={}>; rel=\"next\"", next.to_text());
        if let Ok(value) = axum::http::HeaderValue::from_str(&link) {
            response
                .headers_mut()
                .insert(axum::http::header::LINK, value);
        }
    }
    response
}
