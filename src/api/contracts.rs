//! `/api/v1/contracts`: the bank's customers (契約), each holding IDs.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::ApiCaller;
use super::error::{parse, ApiError};
use super::paging::{page_request, paged, PageQuery};
use crate::http::ErrorBody;
use crate::model::ContractCode;
use crate::ra::{ContractView, RegistrationAuthority};
use crate::store::Page;

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
pub(super) async fn show_contract(
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
pub(super) async fn update_contract(
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
pub(super) async fn create_contract(
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
pub(super) async fn list_contracts(
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
