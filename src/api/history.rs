//! `/api/v1/history`: the history (利用履歴) in the caller's scope, newest first, by pages.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::caller::ApiCaller;
use super::error::{parse, ApiError, ApiResult};
use super::paging::cursor_after;
use crate::http::ErrorBody;
use crate::model::EventKind;
use crate::ra::{HistoryEntryView, RegistrationAuthority};
use crate::store::{HistoryQuery, PageRequest};

/// Default page size of history queries.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;

/// `GET /api/v1/history` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Only this account.
    pub account: Option<String>,
    /// Only this contract.
    pub contract: Option<String>,
    /// Only this kind of event (`enroll`, `reissue`, ...).
    pub kind: Option<EventKind>,
    /// RFC 3339: only events at or after.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339: only events before.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Page size (default 50, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    /// Entries, newest first.
    pub entries: Vec<HistoryEntryView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page. Opaque.
    pub next_cursor: Option<String>,
}

pub(super) fn parse_time(
    key: &str,
    text: Option<&str>,
) -> Result<Option<OffsetDateTime>, ApiError> {
    text.map(|t| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(|_| {
            ApiError::bad_request(format!(
                "{key} must be an RFC 3339 time such as 2026-01-20T09:00:00Z"
            ))
        })
    })
    .transpose()
}

#[utoipa::path(
    get,
    path = "/api/v1/history",
    summary = "利用履歴照会: history in scope, newest first",
    params(HistoryParams),
    responses(
        (status = 200, description = "A page", body = HistoryPage),
        (status = 400, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
pub(super) async fn history(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult<HistoryPage> {
    let Query(p) = params?;
    let after = cursor_after(p.cursor.as_deref())?;
    let query = HistoryQuery {
        account: p.account.as_deref().map(parse).transpose()?,
        contract: p.contract.as_deref().map(parse).transpose()?,
        kind: p.kind,
        since: parse_time("since", p.since.as_deref())?,
        until: parse_time("until", p.until.as_deref())?,
        page: PageRequest {
            after,
            limit: p.limit.unwrap_or(DEFAULT_HISTORY_LIMIT),
        },
    };
    let page = ra.history(&caller, query).await?;
    Ok(Json(HistoryPage {
        entries: page.items.iter().map(HistoryEntryView::from).collect(),
        next_cursor: page.next.map(|c| c.to_text()),
    }))
}
