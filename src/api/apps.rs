//! `/api/v1/apps`: application credentials, the other systems that delegate issuance to
//! estca (operator only).

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::ApiCaller;
use super::error::{parse, ApiError, ApiResult};
use super::paging::{page_request, paged, PageQuery};
use crate::http::ErrorBody;
use crate::model::{AppName, AppScope, ContractCode, HostName};
use crate::ra::{AppView, NewApp, RegistrationAuthority};

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
    pub app: AppView,
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
pub(super) async fn create_app(
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
        (status = 200, description = "Applications; a `Link: rel=\"next\"` header when more follow", body = [AppView]),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
    )
)]
pub(super) async fn list_apps(
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
        (status = 200, description = "The application", body = AppView),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
        (status = 409, response = ErrorBody),
    )
)]
pub(super) async fn revoke_app(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult<AppView> {
    let name: AppName = parse(&name)?;
    Ok(Json(ra.revoke_app(&caller, &name).await?))
}
