//! The management API (`/api/v1/...`, JSON): the operator reaches it over the admin Unix
//! socket, and the `estca` command line is its client, so every administrative action has one
//! implementation. Handlers parse and answer; the registration authority decides.

pub mod backup;

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::model::{AccountId, Actor, ContractCode, EventKind, RevocationReason, Role, Serial};
use crate::ra::{Caller, CertificateAction, ErrorKind, NewAccount, RaError, RegistrationAuthority};
use crate::server::PeerInfo;
use crate::store::HistoryQuery;

/// Default page size of history queries.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;

/// The management API routes.
pub fn router(ra: Arc<RegistrationAuthority>) -> Router {
    Router::new()
        .route("/api/v1/contracts", get(list_contracts).post(create_contract))
        .route("/api/v1/accounts", get(list_accounts).post(create_account))
        .route("/api/v1/accounts/{id}", get(show_account).patch(update_account))
        .route("/api/v1/accounts/{id}/certificate", post(certificate_action))
        .route("/api/v1/accounts/{id}/unlock", post(unlock))
        .route("/api/v1/history", get(history))
        .route("/api/v1/certificates/{serial}", get(show_certificate))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API path; see /api/v1/accounts, /api/v1/contracts, /api/v1/history, /api/v1/certificates/{serial}") })
        .with_state(ra)
}

/// An API error: a status and `{"error": "<one sentence>"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

/// The JSON body of every API error.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One sentence a person can act on.
    pub error: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<RaError> for ApiError {
    fn from(e: RaError) -> Self {
        let status = match e.kind() {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => {
                tracing::error!(error = %e, "management request failed inside estca");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self::new(status, e.to_string())
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
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The caller of a request: the operator when it came over the admin socket.
fn caller(peer: &PeerInfo) -> Result<Caller, ApiError> {
    match peer.admin_socket_uid() {
        Some(uid) => Ok(Caller {
            actor: Actor::Operator { uid },
            source: peer.source(),
        }),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the management API is served on the admin socket only",
        )),
    }
}

fn parse<T: std::str::FromStr<Err = crate::model::InvalidValue>>(
    text: &str,
) -> Result<T, ApiError> {
    text.parse()
        .map_err(|e: crate::model::InvalidValue| ApiError::bad_request(e.0))
}

/// `POST /api/v1/contracts` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateContract {
    /// Contract code.
    pub code: ContractCode,
    /// Customer name.
    pub name: String,
}

async fn create_contract(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    body: Result<Json<CreateContract>, JsonRejection>,
) -> Result<(StatusCode, Json<crate::model::Contract>), ApiError> {
    let Json(body) = body?;
    let contract = ra
        .create_contract(&caller(&peer)?, body.code, body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(contract)))
}

async fn list_contracts(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
) -> ApiResult<Vec<crate::model::Contract>> {
    Ok(Json(ra.contracts(&caller(&peer)?).await?))
}

/// `POST /api/v1/accounts` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Login ID.
    pub id: AccountId,
    /// Contract code.
    pub contract: ContractCode,
    /// `master` or `user`.
    pub role: Role,
    /// Display name.
    pub name: String,
    /// Initial password.
    pub password: Zeroizing<String>,
}

async fn create_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<crate::ra::AccountView>), ApiError> {
    let Json(body) = body?;
    let view = ra
        .create_account(
            &caller(&peer)?,
            NewAccount {
                id: body.id,
                contract: body.contract,
                role: body.role,
                name: body.name,
                password: body.password,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/accounts` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsQuery {
    /// Only this contract's accounts.
    pub contract: Option<String>,
}

async fn list_accounts(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    query: Result<Query<AccountsQuery>, QueryRejection>,
) -> ApiResult<Vec<crate::ra::AccountView>> {
    let Query(query) = query?;
    let contract: Option<ContractCode> = query.contract.as_deref().map(parse).transpose()?;
    Ok(Json(ra.accounts(&caller(&peer)?, contract.as_ref()).await?))
}

async fn show_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    Path(id): Path<String>,
) -> ApiResult<crate::ra::AccountView> {
    Ok(Json(ra.account(&caller(&peer)?, &parse(&id)?).await?))
}

/// `PATCH /api/v1/accounts/{id}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// New display name.
    pub name: Option<String>,
    /// New password.
    pub password: Option<Zeroizing<String>>,
}

async fn update_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    Path(id): Path<String>,
    body: Result<Json<UpdateAccount>, JsonRejection>,
) -> ApiResult<crate::ra::AccountView> {
    let Json(body) = body?;
    Ok(Json(
        ra.update_account(&caller(&peer)?, &parse(&id)?, body.name, body.password)
            .await?,
    ))
}

/// `POST /api/v1/accounts/{id}/certificate` body: the seed's three choices.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateActionBody {
    /// `continue` (継続利用する), `reissue` (再発行する) or `revoke` (失効する).
    pub action: String,
    /// For `revoke`: an RFC 5280 reason name (default `unspecified`).
    pub reason: Option<String>,
}

async fn certificate_action(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    Path(id): Path<String>,
    body: Result<Json<CertificateActionBody>, JsonRejection>,
) -> ApiResult<crate::ra::AccountView> {
    let Json(body) = body?;
    let action = match (body.action.as_str(), body.reason.as_deref()) {
        ("continue", None) => CertificateAction::Continue,
        ("reissue", None) => CertificateAction::Reissue,
        ("revoke", reason) => CertificateAction::Revoke(
            reason
                .map(parse::<RevocationReason>)
                .transpose()?
                .unwrap_or(RevocationReason::Unspecified),
        ),
        ("continue" | "reissue", Some(_)) => {
            return Err(ApiError::bad_request(
                "a reason is given only with \"revoke\"",
            ))
        }
        (other, _) => {
            return Err(ApiError::bad_request(format!(
                "unknown action '{other}': use \"continue\", \"reissue\" or \"revoke\""
            )))
        }
    };
    Ok(Json(
        ra.certificate_action(&caller(&peer)?, &parse(&id)?, action)
            .await?,
    ))
}

async fn unlock(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    Path(id): Path<String>,
) -> ApiResult<crate::ra::AccountView> {
    Ok(Json(ra.unlock(&caller(&peer)?, &parse(&id)?).await?))
}

/// `GET /api/v1/history` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Only this account.
    pub account: Option<String>,
    /// Only this contract.
    pub contract: Option<String>,
    /// Only this kind of event (`enroll`, `reissue`, ...).
    pub kind: Option<EventKind>,
    /// RFC 3339: only events at or after.
    pub since: Option<String>,
    /// RFC 3339: only events before.
    pub until: Option<String>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<u64>,
}

/// A page of history.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Entries, newest first.
    pub entries: Vec<crate::model::HistoryEntry>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<u64>,
}

fn parse_time(key: &str, text: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    text.map(|t| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(|_| {
            ApiError::bad_request(format!(
                "{key} must be an RFC 3339 time such as 2026-01-20T09:00:00Z"
            ))
        })
    })
    .transpose()
}

async fn history(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult<HistoryPage> {
    let Query(p) = params?;
    let limit = p.limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
    let query = HistoryQuery {
        account: p.account.as_deref().map(parse).transpose()?,
        contract: p.contract.as_deref().map(parse).transpose()?,
        kind: p.kind,
        since: parse_time("since", p.since.as_deref())?,
        until: parse_time("until", p.until.as_deref())?,
        before_seq: p.cursor,
        limit,
    };
    let entries = ra.history(&caller(&peer)?, query).await?;
    let next_cursor = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(HistoryPage {
        entries,
        next_cursor,
    }))
}

async fn show_certificate(
    State(ra): State<Arc<RegistrationAuthority>>,
    Extension(peer): Extension<PeerInfo>,
    Path(serial): Path<String>,
) -> ApiResult<crate::ra::CertificateView> {
    let serial: Serial = parse(&serial)?;
    Ok(Json(ra.certificate(&caller(&peer)?, &serial).await?))
}
