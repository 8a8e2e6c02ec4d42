//! The management API (`/api/v1/...`, JSON): the operator reaches it over the admin Unix
//! socket, and the `estca` command line is its client, so every administrative action has one
//! implementation. Handlers parse and answer; the registration authority decides.

pub mod backup;

use std::sync::{Arc, LazyLock};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::openapi::security::SecurityScheme;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use crate::http::{http_error, ErrorBody, PeerInfo};
use crate::model::{
    AccountId, AppName, AppScope, ContractCode, EventKind, HostName, RevocationReason, Role, Serial,
};
use crate::ra::{
    Caller, CertificateAction, ContractView, HistoryEntryView, NewAccount, NewApp, RaError,
    RegistrationAuthority,
};
use crate::store::{Cursor, HistoryQuery, Page, PageRequest};

/// Default page size of history queries.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;

/// The management API's routes; `base64` lays out the base64 answers of delegated issuance
/// as EST's (`est.single_line_base64`).
pub fn router(ra: Arc<RegistrationAuthority>, base64: crate::http::Base64Lines) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .route("/api/{*rest}", axum::routing::any(unknown_path))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::Extension(base64))
        .with_state(ra)
}

/// Every documented route, each registered once through utoipa-axum's `routes!`, which adds
/// the handler to the router and its `#[utoipa::path]` description to the document: the two
/// cannot disagree. A new route is a handler with `#[utoipa::path(...)]` and one more
/// `.routes(routes!(handler))` here (handlers sharing a path go in the same `routes!`).
fn routes() -> OpenApiRouter<Arc<RegistrationAuthority>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_contracts, create_contract))
        .routes(routes!(show_contract, update_contract))
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(show_account, update_account))
        .routes(routes!(certificate))
        .routes(routes!(unlock))
        .routes(routes!(remove_account))
        .routes(routes!(history))
        .routes(routes!(show_certificate))
        .routes(routes!(list_apps, create_app))
        .routes(routes!(revoke_app))
        .routes(routes!(backup::backup))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of the management API, generated from the routes' annotations and
/// the request and response types: this module's routes and the operator's CRL view that
/// the admin socket adds ([`crate::revocation::routes::admin_routes`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = routes().into_openapi();
    document.merge(crate::revocation::routes::admin_routes().into_openapi());
    document
}

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(openapi);

/// What no single route says: the title and description, the server, the security scheme
/// and the error response every route shares.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "estca management API",
        version = "1",
        description = "Manage contracts, IDs and their certificates (the bank notice's 管理機能). \
            Reached over the daemon's HTTPS port with a client certificate — a master ID's (its \
            own contract's public IDs) or an application credential's (its granted contracts) — \
            or, unrestricted and without a certificate, by the operator over the admin Unix \
            socket. IDs outside the caller's scope answer 404. Errors are \
            `{\"error\": code, \"detail\": sentence}`. This document is generated from the \
            handlers and their request and response types."
    ),
    servers((url = "https://localhost:8443", description = "The daemon's HTTPS port (server.listen)")),
    components(responses(ErrorBody)),
    modifiers(&ClientCertificate),
    security(("client_certificate" = []))
)]
struct ApiDoc;

/// Adds the `client_certificate` security scheme (mutual TLS) that every route requires.
struct ClientCertificate;

impl utoipa::Modify for ClientCertificate {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client_certificate",
            SecurityScheme::MutualTls {
                description: Some(
                    "A TLS client certificate estca issued and that is current: a master ID's \
                     (enrolled with its ID and password) or an application credential's \
                     (POST /api/v1/apps). The operator on the admin Unix socket needs none: \
                     the socket's permissions are the authentication."
                        .to_owned(),
                ),
                deprecated: None,
                extensions: None,
            },
        );
    }
}

/// Largest JSON body accepted (a CSR inside `POST /api/v1/apps` is the largest field).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    summary = "This document (OpenAPI 3.1), generated from the handlers and their types",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
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
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContract {
    /// Whether its IDs may use EST `serverkeygen`.
    pub server_keygen: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/contracts/{code}",
    summary = "One contract, with its options",
    params(("code" = ContractCode, Path, description = "The contract code", example = "5110")),
    responses(
        (status = 200, description = "The contract", body = ContractView),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
async fn show_contract(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(code): Path<String>,
) -> Result<Json<ContractView>, ApiError> {
    let code: ContractCode = parse(&code)?;
    let contract = ra.contract(&caller, &code).await?;
    Ok(Json(ContractView::from(&contract)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/contracts/{code}",
    summary = "Change a contract's options (operator, or an application granted can_create_contracts)",
    params(("code" = ContractCode, Path, description = "The contract code", example = "5110")),
    request_body(content = UpdateContract, example = json!({"server_keygen": true})),
    responses(
        (status = 200, description = "The contract as it now is", body = ContractView),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/contracts",
    summary = "Create a contract (operator, or an application granted can_create_contracts)",
    request_body(
        content = CreateContract,
        example = json!({"code": "5110", "name": "大手町エステート株式会社"})
    ),
    responses(
        (status = 201, description = "Created", body = ContractView),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 409, response = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/contracts",
    summary = "Contracts in scope",
    params(PageQuery),
    responses(
        (status = 200, description = "Contracts; a `Link: rel=\"next\"` header when more follow", body = [ContractView]),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
    )
)]
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
#[derive(Deserialize, ToSchema)]
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
    #[schema(value_type = Option<String>, min_length = 8)]
    pub password: Option<Zeroizing<String>>,
    /// Instead of `password`, the operator only: an Argon2 PHC hash made elsewhere, for bulk
    /// loads (one hash shared by many IDs costs one hashing).
    pub password_hash: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts",
    summary = "Create an ID",
    description = "Masters: public IDs of their contract; role master needs the operator or an \
        application granted can_create_contracts. Without id, estca chooses an unguessable one. \
        An ID that exists in any contract, or differs from one by letter case only, answers 409 \
        'not available' (the same whichever contract holds it); such refusals are recorded and \
        limited per caller (auth.max_refused_ids_per_caller), beyond which creations answer 429 \
        with Retry-After.",
    request_body(
        content = CreateAccount,
        example = json!({
            "id": "nozawa1",
            "contract": "5110",
            "role": "user",
            "name": "野沢 一郎",
            "password": "correct horse battery"
        })
    ),
    responses(
        (status = 201, description = "Created", body = crate::ra::AccountView),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
        (status = 409, response = ErrorBody),
        (status = 429, response = ErrorBody),
    )
)]
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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountsQuery {
    /// Only this contract's accounts.
    pub contract: Option<String>,
    /// Page size, 1 to 1000; the default is the largest (`MAX_LIST_PAGE`).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Where the previous page said the next one starts (its `Link: rel="next"`).
    pub cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    summary = "IDs in scope",
    params(AccountsQuery),
    responses(
        (status = 200, description = "IDs; a `Link: rel=\"next\"` header when more follow", body = [crate::ra::AccountView]),
        (status = 400, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{id}",
    summary = "One ID: state, lock, failures, current certificate",
    params(("id" = AccountId, Path, description = "The ID", example = "nozawa1")),
    responses(
        (status = 200, description = "The ID", body = crate::ra::AccountView),
        (status = 400, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
async fn show_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<crate::ra::AccountView> {
    Ok(Json(ra.account(&caller, &parse(&id)?).await?))
}

/// `PATCH /api/v1/accounts/{id}` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// New display name.
    pub name: Option<String>,
    /// New password.
    #[schema(value_type = Option<String>, min_length = 8)]
    pub password: Option<Zeroizing<String>>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{id}",
    summary = "Rename an ID and/or reset its password",
    description = "Setting a password also unlocks the ID and clears its failure count (the \
        help desk's reset).",
    params(("id" = AccountId, Path, description = "The ID", example = "nozawa1")),
    request_body(
        content = UpdateAccount,
        example = json!({"name": "野沢 一郎 (経理部)", "password": "another good passphrase"})
    ),
    responses(
        (status = 200, description = "The ID", body = crate::ra::AccountView),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
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
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateActionBody {
    /// `continue` (継続利用する), `reissue` (再発行する) or `revoke` (失効する).
    #[schema(pattern = "^(continue|reissue|revoke)$")]
    pub action: String,
    /// For `revoke`: an RFC 5280 reason name (default `unspecified`).
    #[schema(value_type = Option<RevocationReason>)]
    pub reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/certificate",
    summary = "Choose what happens to an ID's certificate, or issue one for it",
    description = "With a JSON body: 継続利用する (continue) / 再発行する (reissue) / 失効する \
        (revoke); a master ID's reissue or revoke is the help desk's alone (403). With a PKCS#10 \
        body (Content-Type: application/pkcs10; DER, base64 or PEM): delegated issuance, a \
        certificate for the ID under its lifecycle (refused with 409 while it has an active \
        certificate and no reissue was chosen, 403 while locked or revoked); applications (for \
        the public IDs of their scope) and the operator only, never a master. Only the CSR's \
        public key is used (its signature is checked); the certificate's subject is estca's.",
    params(("id" = AccountId, Path, description = "The ID", example = "nozawa1")),
    request_body(content(
        (CertificateActionBody = "application/json", example = json!({"action": "reissue"})),
        (String = "application/pkcs10"),
    )),
    responses(
        (status = 200, description = "The ID (JSON choice)", body = crate::ra::AccountView),
        (status = 201, description = "Issued (PKCS#10 body): as EST's simpleenroll answers, \
            base64 of a certs-only PKCS#7 holding the certificate, or with Accept: \
            application/pem-certificate-chain the certificate then the issuing CA in PEM",
            content(
                (String = "application/pkcs7-mime; smime-type=certs-only"),
                (String = "application/pem-certificate-chain"),
            )
        ),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
        (status = 409, response = ErrorBody),
        (status = 413, response = ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/unlock",
    summary = "IDロック解除: clear the lock and the failure count",
    params(("id" = AccountId, Path, description = "The ID", example = "nozawa1")),
    responses(
        (status = 200, description = "The ID", body = crate::ra::AccountView),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
async fn unlock(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<crate::ra::AccountView> {
    Ok(Json(ra.unlock(&caller, &parse(&id)?).await?))
}

/// `POST /api/v1/accounts/{id}/remove`: removes the ID (its active certificate revoked, as
/// `cessationOfOperation`) and answers the ID as it now is. A POST on an action, as unlock and
/// an application's revoke are, rather than `DELETE`: the ID is not deleted (it stays
/// readable with `GET`, with its certificates and history, for audit) and the call is not
/// idempotent (removing it again is refused with 409).
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/remove",
    summary = "削除: remove the ID (its active certificate revoked as cessationOfOperation; kept for audit, never reused)",
    params(("id" = AccountId, Path, description = "The ID", example = "nozawa1")),
    responses(
        (status = 200, description = "The ID as it now is, with removed_at", body = crate::ra::AccountView),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
        (status = 409, response = ErrorBody),
    )
)]
async fn remove_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<crate::ra::AccountView> {
    Ok(Json(ra.remove_account(&caller, &parse(&id)?).await?))
}

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

#[utoipa::path(
    get,
    path = "/api/v1/certificates/{serial}",
    summary = "One certificate in scope: PEM, status, revocation time and reason",
    params(("serial" = Serial, Path, description = "Its serial", example = "441e22181c34f93d0f0e6bca0f6dcf52")),
    responses(
        (status = 200, description = "The certificate", body = crate::ra::CertificateView),
        (status = 400, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
async fn show_certificate(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(serial): Path<String>,
) -> ApiResult<crate::ra::CertificateView> {
    let serial: Serial = parse(&serial)?;
    Ok(Json(ra.certificate(&caller, &serial).await?))
}

/// `POST /api/v1/apps` body (operator only).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
    /// The hosts it also serves TLS for (an EST registration authority in front of devices):
    /// its certificate names them in subjectAltName and carries serverAuth.
    #[serde(default)]
    pub hosts: Vec<HostName>,
}

/// The example CSR of `POST /api/v1/apps` in the document: base64 DER of a P-256 request
/// (CN netbanking-login) whose private key was thrown away, so the example can be sent as it
/// is but the certificate it yields is of no use to anyone.
const EXAMPLE_APP_CSR: &str = "MIHVMH0CAQAwGzEZMBcGA1UEAwwQbmV0YmFua2luZy1sb2dpbjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMoEv8Xw+5Gx/NvLWfnzpKS6XPmogZFmBfhIEXQgVO5eZLPbgQMK41/me1GlPrwE1+QkQVDTpIeeP7vXoxWfRxWgADAKBggqhkjOPQQDAgNIADBFAiBax81cwY6R8ZMwbAz82eBgsKVhqSraCr2CC7J1jec/WwIhAP8/NuY9bj2U4DBLYaTyU+lOtxUg3ClHxe9RgMBpvwz2";

/// The answer to `POST /api/v1/apps`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApp {
    /// The credential.
    pub app: crate::ra::AppView,
    /// Its certificate then the issuing CA, PEM.
    pub certificate_pem: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/apps",
    summary = "Grant an application a scope and issue its client certificate (operator only)",
    request_body(content = CreateApp, example = json!({
        "name": "netbanking-login",
        "all": true,
        "can_create_contracts": true,
        "csr": EXAMPLE_APP_CSR
    })),
    responses(
        (status = 201, description = "Created", body = CreatedApp),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 409, response = ErrorBody),
    )
)]
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
                hosts: body.hosts,
            },
        )
        .await?;
    let certificate_pem =
        crate::ca::pkcs7::pem_certificates(&[issued.der(), &ra.issuing_certificate_der()]);
    Ok((
        StatusCode::CREATED,
        Json(CreatedApp {
            app,
            certificate_pem,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/apps",
    summary = "Application credentials (operator only)",
    params(PageQuery),
    responses(
        (status = 200, description = "Applications; a `Link: rel=\"next\"` header when more follow", body = [crate::ra::AppView]),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/apps/{name}/revoke",
    summary = "Revoke an application credential and its certificate, for good (operator only)",
    params(("name" = AppName, Path, description = "The application's name", example = "netbanking-login")),
    responses(
        (status = 200, description = "The application", body = crate::ra::AppView),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
        (status = 409, response = ErrorBody),
    )
)]
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

    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(super::openapi()).unwrap()
    }

    /// (method, path, operation) of every operation in the document.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                found.push((method.clone(), path.clone(), operation.clone()));
            }
        }
        found
    }

    /// Every route is described, including the admin socket's CRL view, and nothing else
    /// (the catch-all `/api/{*rest}` that answers 404 is not a route of the API).
    #[test]
    fn the_document_lists_the_registered_routes() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let listed: BTreeSet<String> = operations(&doc)
            .into_iter()
            .map(|(method, path, _)| format!("{method} {path}"))
            .collect();
        assert_eq!(
            listed,
            BTreeSet::from(
                [
                    "get /api/v1/accounts",
                    "post /api/v1/accounts",
                    "get /api/v1/accounts/{id}",
                    "patch /api/v1/accounts/{id}",
                    "post /api/v1/accounts/{id}/certificate",
                    "post /api/v1/accounts/{id}/unlock",
                    "post /api/v1/accounts/{id}/remove",
                    "get /api/v1/apps",
                    "post /api/v1/apps",
                    "post /api/v1/apps/{name}/revoke",
                    "get /api/v1/backup",
                    "get /api/v1/certificates/{serial}",
                    "get /api/v1/contracts",
                    "post /api/v1/contracts",
                    "get /api/v1/contracts/{code}",
                    "patch /api/v1/contracts/{code}",
                    "get /api/v1/crl",
                    "get /api/v1/history",
                    "get /api/v1/openapi.json",
                ]
                .map(String::from)
            )
        );
    }

    /// Every `$ref` points at something the document defines.
    #[test]
    fn every_reference_resolves() {
        fn visit(doc: &Value, node: &Value) {
            match node {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.strip_prefix('#').unwrap();
                        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {target}");
                    }
                    map.values().for_each(|v| visit(doc, v));
                }
                Value::Array(items) => items.iter().for_each(|v| visit(doc, v)),
                _ => {}
            }
        }
        let doc = document();
        visit(&doc, &doc);
    }

    /// Every operation but the document itself needs the client certificate (or the admin
    /// socket), and describes its refusals with the shared error object; every JSON request
    /// body has an example, and every path parameter one.
    #[test]
    fn operations_carry_security_errors_and_examples() {
        let doc = document();
        assert_eq!(
            doc["components"]["securitySchemes"]["client_certificate"]["type"],
            "mutualTLS"
        );
        assert_eq!(
            doc["security"][0]["client_certificate"],
            Value::Array(vec![])
        );
        let error =
            &doc["components"]["responses"]["ErrorBody"]["content"]["application/json"]["schema"];
        let error = match error["$ref"].as_str() {
            Some(target) => doc.pointer(target.trim_start_matches('#')).unwrap(),
            None => error,
        };
        assert_eq!(
            error["required"],
            serde_json::json!(["error", "detail"]),
            "{}",
            doc["components"]
        );
        for (method, path, operation) in operations(&doc) {
            let name = format!("{method} {path}");
            if path == "/api/v1/openapi.json" {
                assert_eq!(operation["security"], serde_json::json!([{}]), "{name}");
                continue;
            }
            let refusals: Vec<&Value> = operation["responses"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(status, _)| status.starts_with('4'))
                .map(|(_, response)| response)
                .collect();
            assert!(!refusals.is_empty(), "{name} lists no refusal");
            for refusal in refusals {
                assert_eq!(
                    refusal["$ref"], "#/components/responses/ErrorBody",
                    "{name}"
                );
            }
            if let Some(body) = operation["requestBody"]["content"].get("application/json") {
                assert!(body["example"].is_object(), "{name} has no example body");
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    assert!(parameter["example"].is_string(), "{name}: {parameter}");
                }
            }
        }
    }

    /// The schemas are the types': the request bodies refuse unknown fields as the handlers
    /// do, and the ID types carry the rule their parser applies.
    #[test]
    fn schemas_follow_the_types() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for body in [
            "CreateContract",
            "CreateAccount",
            "UpdateAccount",
            "CreateApp",
        ] {
            assert_eq!(schemas[body]["additionalProperties"], false, "{body}");
        }
        assert_eq!(
            schemas["CreateContract"]["required"],
            serde_json::json!(["code", "name"])
        );
        let id = &schemas["AccountId"];
        assert_eq!(id["pattern"], "^[A-Za-z0-9._@-]{1,32}$", "{id}");
        assert_eq!(id["maxLength"], 32);
        let pattern = &schemas["ContractCode"]["pattern"];
        assert_eq!(pattern, "^[A-Za-z0-9_-]{1,16}$");
        assert_eq!(
            schemas["Role"]["enum"],
            serde_json::json!(["master", "user"])
        );
    }
}
