//! The management API (`/api/v1/...`, JSON): the operator reaches it over the admin Unix
//! socket, and the `estca` command line is its client, so every administrative action has one
//! implementation. Handlers parse and answer; the registration authority decides.

pub mod backup;

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::http::{http_error, ErrorBody, PeerInfo};
use crate::model::{
    AccountId, AppName, AppScope, ContractCode, EventKind, RevocationReason, Role, Serial,
};
use crate::ra::{
    Caller, CertificateAction, ContractView, HistoryEntryView, NewAccount, NewApp, RaError,
    RegistrationAuthority,
};
use crate::store::{Cursor, HistoryQuery, Page, PageRequest};

/// Default page size of history queries.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;

/// The management API routes.
/// The management API's routes; `base64` lays out the base64 answers of delegated issuance
/// as EST's (`est.single_line_base64`).
pub fn router(ra: Arc<RegistrationAuthority>, base64: crate::http::Base64Lines) -> Router {
    Router::new()
        .route(
            "/api/v1/contracts",
            get(list_contracts).post(create_contract),
        )
        .route(
            "/api/v1/contracts/{code}",
            get(show_contract).patch(update_contract),
        )
        .route("/api/v1/accounts", get(list_accounts).post(create_account))
        .route(
            "/api/v1/accounts/{id}",
            get(show_account).patch(update_account),
        )
        .route("/api/v1/accounts/{id}/certificate", post(certificate))
        .route("/api/v1/accounts/{id}/unlock", post(unlock))
        .route("/api/v1/history", get(history))
        .route("/api/v1/certificates/{serial}", get(show_certificate))
        .route("/api/v1/apps", get(list_apps).post(create_app))
        .route("/api/v1/apps/{name}/revoke", post(revoke_app))
        .route("/api/v1/backup", get(backup::backup))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/{*rest}", axum::routing::any(unknown_path))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::Extension(base64))
        .with_state(ra)
}

/// Largest JSON body accepted (a CSR inside `POST /api/v1/apps` is the largest field).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI 3 document of this API, kept in the repository beside this file.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn unknown_path() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such API path; see /api/v1/openapi.json",
    )
}

/// An API error: a status and `{"error": "<one sentence>"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
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

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The authenticated caller of a management request: the operator on the admin socket, or
/// the holder of a current master-ID certificate over TLS.
pub struct ApiCaller(pub Caller);

impl FromRequestParts<Arc<RegistrationAuthority>> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ra: &Arc<RegistrationAuthority>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<PeerInfo>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "connection information missing",
            )
        })?;
        if let Some(uid) = peer.admin_socket_uid() {
            return Ok(ApiCaller(Caller::operator(uid)));
        }
        let Some(certificate) = peer.client_certificate() else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "the management API needs a master ID's client certificate \
                 (e.g. curl --cert master.pem --key master.key)",
            ));
        };
        Ok(ApiCaller(
            ra.administrator(certificate, &peer.source()).await?,
        ))
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
    /// Whether its IDs may use EST `serverkeygen` (default false).
    #[serde(default)]
    pub server_keygen: bool,
}

/// `PATCH /api/v1/contracts/{code}` body: the options to change.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateContract {
    /// Whether its IDs may use EST `serverkeygen`.
    pub server_keygen: bool,
}

async fn show_contract(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(code): Path<String>,
) -> Result<Json<ContractView>, ApiError> {
    let code: ContractCode = parse(&code)?;
    let contract = ra.contract(&caller, &code).await?;
    Ok(Json(ContractView::from(&contract)))
}

async fn update_contract(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(code): Path<String>,
    body: Result<Json<UpdateContract>, JsonRejection>,
) -> Result<Json<ContractView>, ApiError> {
    let code: ContractCode = parse(&code)?;
    let Json(body) = body?;
    let contract = ra
        .set_contract_server_keygen(&caller, &code, body.server_keygen)
        .await?;
    Ok(Json(ContractView::from(&contract)))
}

async fn create_contract(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<CreateContract>, JsonRejection>,
) -> Result<(StatusCode, Json<ContractView>), ApiError> {
    let Json(body) = body?;
    let contract = ra
        .create_contract(&caller, body.code, body.name, body.server_keygen)
        .await?;
    Ok((StatusCode::CREATED, Json(ContractView::from(&contract))))
}

/// `limit` and `cursor` of a listing (`GET /api/v1/contracts`, `/apps`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size (default and largest: [`MAX_LIST_PAGE`]).
    pub limit: Option<usize>,
    /// Where the previous page said the next one starts (its `Link: rel="next"`).
    pub cursor: Option<String>,
}

/// Largest page of a listing, and its default.
pub const MAX_LIST_PAGE: usize = 1000;

/// The page a listing's `limit` and `cursor` ask for.
fn page_request(limit: Option<usize>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(MAX_LIST_PAGE);
    if !(1..=MAX_LIST_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIST_PAGE}"
        )));
    }
    let after = cursor
        .map(Cursor::from_text)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("cursor: {}", e.0)))?;
    Ok(PageRequest { after, limit })
}

/// A page of a listing as a JSON array, with the next page's address in a `Link` header
/// (RFC 8288, `rel="next"`) when there is one. `query` holds the listing's own parameters,
/// already URL-safe.
fn paged<T: Serialize>(
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

async fn list_contracts(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let limit = page.limit;
    let contracts = ra.contracts(&caller, page).await?;
    let contracts = Page {
        items: contracts.items.iter().map(ContractView::from).collect(),
        next: contracts.next,
    };
    Ok(paged("/api/v1/contracts", &[], limit, contracts))
}

/// `POST /api/v1/accounts` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Login ID; left out, estca chooses an unguessable one (returned in the answer).
    pub id: Option<AccountId>,
    /// Contract code.
    pub contract: ContractCode,
    /// `master` or `user`.
    pub role: Role,
    /// Display name.
    pub name: String,
    /// Initial password.
    pub password: Option<Zeroizing<String>>,
    /// Instead of `password`, the operator only: an Argon2 PHC hash made elsewhere, for bulk
    /// loads (one hash shared by many IDs costs one hashing).
    pub password_hash: Option<String>,
}

async fn create_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<crate::ra::AccountView>), ApiError> {
    let Json(body) = body?;
    let view = ra
        .create_account(
            &caller,
            NewAccount {
                id: body.id,
                contract: body.contract,
                role: body.role,
                name: body.name,
                password: match (body.password, body.password_hash) {
                    (Some(clear), None) => crate::ra::InitialPassword::Clear(clear),
                    (None, Some(hash)) => crate::ra::InitialPassword::Hashed(hash),
                    _ => {
                        return Err(ApiError::bad_request(
                            "give the initial \"password\" (or, the operator only, its \"password_hash\")",
                        ))
                    }
                },
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
    /// Page size (default and largest: [`MAX_LIST_PAGE`]).
    pub limit: Option<usize>,
    /// Where the previous page said the next one starts (its `Link: rel="next"`).
    pub cursor: Option<String>,
}

async fn list_accounts(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    query: Result<Query<AccountsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let contract: Option<ContractCode> = query.contract.as_deref().map(parse).transpose()?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let limit = page.limit;
    let accounts = ra.accounts(&caller, contract.clone(), page).await?;
    let code = contract.map(|c| c.as_str().to_owned());
    let params: Vec<(&str, &str)> = code.iter().map(|c| ("contract", c.as_str())).collect();
    Ok(paged("/api/v1/accounts", &params, limit, accounts))
}

async fn show_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<crate::ra::AccountView> {
    Ok(Json(ra.account(&caller, &parse(&id)?).await?))
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
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<UpdateAccount>, JsonRejection>,
) -> ApiResult<crate::ra::AccountView> {
    let Json(body) = body?;
    Ok(Json(
        ra.update_account(&caller, &parse(&id)?, body.name, body.password)
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

/// `POST /api/v1/accounts/{id}/certificate`: a PKCS#10 body (`Content-Type:
/// application/pkcs10`) has a certificate issued for the ID (delegated issuance); any other
/// body is the JSON choice of [`CertificateActionBody`].
async fn certificate(
    State(ra): State<Arc<RegistrationAuthority>>,
    axum::Extension(base64): axum::Extension<crate::http::Base64Lines>,
    caller: ApiCaller,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    if is_pkcs10(request.headers()) {
        let headers = request.headers().clone();
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the CSR is larger than {MAX_BODY_BYTES} bytes"),
                )
            })?;
        return issue_certificate(&ra, base64, &caller.0, &id, &headers, &body).await;
    }
    let body = Json::<CertificateActionBody>::from_request(request, &ra).await;
    Ok(certificate_action(&ra, caller, &id, body)
        .await?
        .into_response())
}

/// Whether the request's media type is `application/pkcs10`.
fn is_pkcs10(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/pkcs10"))
}

/// Delegated issuance: the CSR (DER, base64 or PEM) has a certificate issued for the ID under
/// its lifecycle; the answer is EST's (base64 PKCS#7 certs-only, or the PEM chain by
/// `Accept`), with status 201.
async fn issue_certificate(
    ra: &RegistrationAuthority,
    base64: crate::http::Base64Lines,
    caller: &Caller,
    id: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let csr_der =
        crate::ca::csr::decode_body(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let issued = ra.issue_on_behalf(caller, &parse(id)?, &csr_der).await?;
    let mut response = crate::est::enrollment_response(ra, base64, headers, &issued)?;
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

async fn certificate_action(
    ra: &RegistrationAuthority,
    ApiCaller(caller): ApiCaller,
    id: &str,
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
        ra.certificate_action(&caller, &parse(id)?, action).await?,
    ))
}

async fn unlock(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<crate::ra::AccountView> {
    Ok(Json(ra.unlock(&caller, &parse(&id)?).await?))
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
    pub cursor: Option<String>,
}

/// A page of history.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Entries, newest first.
    pub entries: Vec<HistoryEntryView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page. Opaque.
    pub next_cursor: Option<String>,
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
    ApiCaller(caller): ApiCaller,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult<HistoryPage> {
    let Query(p) = params?;
    let after = p
        .cursor
        .as_deref()
        .map(Cursor::from_text)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("cursor: {}", e.0)))?;
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

async fn show_certificate(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(serial): Path<String>,
) -> ApiResult<crate::ra::CertificateView> {
    let serial: Serial = parse(&serial)?;
    Ok(Json(ra.certificate(&caller, &serial).await?))
}

/// `POST /api/v1/apps` body (operator only).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// The application's name (CN of its certificate).
    pub name: AppName,
    /// The contracts it may manage; absent or null with `all`.
    #[serde(default)]
    pub contracts: Option<Vec<ContractCode>>,
    /// Grant every contract, present and future.
    #[serde(default)]
    pub all: bool,
    /// Allow it to create contracts and master IDs (requires `all`).
    #[serde(default)]
    pub can_create_contracts: bool,
    /// The application's CSR: base64 DER or PEM.
    pub csr: String,
}

/// The answer to `POST /api/v1/apps`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedApp {
    /// The credential.
    pub app: crate::ra::AppView,
    /// Its certificate then the issuing CA, PEM.
    pub certificate_pem: String,
}

async fn create_app(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<CreateApp>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedApp>), ApiError> {
    let Json(body) = body?;
    let scope = match (body.all, body.contracts) {
        (true, None) => AppScope::All,
        (false, Some(codes)) => AppScope::Contracts(codes),
        _ => {
            return Err(ApiError::bad_request(
                "give either \"all\": true or a list of \"contracts\"",
            ))
        }
    };
    let csr_der = crate::ca::csr::decode_text(body.csr.as_bytes())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (app, issued) = ra
        .create_app(
            &caller,
            NewApp {
                name: body.name,
                scope,
                can_create_contracts: body.can_create_contracts,
                csr_der: &csr_der,
            },
        )
        .await?;
    let certificate_pem =
        crate::ca::pkcs7::pem_certificates(&[issued.der(), ra.issuing_certificate_der()]);
    Ok((
        StatusCode::CREATED,
        Json(CreatedApp {
            app,
            certificate_pem,
        }),
    ))
}

async fn list_apps(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let limit = page.limit;
    let apps = ra.apps(&caller, page).await?;
    Ok(paged("/api/v1/apps", &[], limit, apps))
}

async fn revoke_app(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult<crate::ra::AppView> {
    let name: AppName = parse(&name)?;
    Ok(Json(ra.revoke_app(&caller, &name).await?))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// (method, path) pairs routed under `/api/v1`: this file's `router` and the CRL view
    /// that the revocation module adds to the admin socket, read from their sources.
    fn routed() -> BTreeSet<(String, String)> {
        let mut pairs = routes_in(include_str!("mod.rs"), "pub fn router");
        pairs.extend(routes_in(
            include_str!("../revocation/routes.rs"),
            "pub fn admin_router",
        ));
        pairs
    }

    fn routes_in(source: &str, function: &str) -> BTreeSet<(String, String)> {
        let router = &source[source.find(function).unwrap()..];
        let router = &router[..router.find("\n}\n").unwrap()];
        let mut pairs = BTreeSet::new();
        for call in router.split(".route(").skip(1) {
            let call = call.trim_start().trim_start_matches('"');
            let (path, rest) = call.split_once('"').unwrap();
            if path.contains('*') {
                continue;
            }
            let end = rest.find(")\n").map_or(rest.len(), |i| i + 1);
            let expression = &rest[..end];
            for method in ["get", "post", "patch", "put", "delete"] {
                let plain = format!(" {method}(");
                let chained = format!(".{method}(");
                if expression.contains(&plain) || expression.contains(&chained) {
                    pairs.insert((method.to_owned(), path.to_owned()));
                }
            }
        }
        pairs
    }

    /// (method, path) pairs the OpenAPI document describes.
    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
        let mut pairs = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if method != "parameters" {
                    pairs.insert((method.clone(), path.clone()));
                }
            }
        }
        pairs
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes_that_exist() {
        let routed = routed();
        assert!(routed.len() >= 12, "parsed too few routes: {routed:?}");
        assert_eq!(routed, documented());
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let text = super::OPENAPI;
        for reference in text.split("\"$ref\": \"#/").skip(1) {
            let pointer = reference.split('"').next().unwrap();
            assert!(
                doc.pointer(&format!("/{pointer}")).is_some(),
                "unresolved $ref #/{pointer}"
            );
        }
    }
}
