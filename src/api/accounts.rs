//! `/api/v1/accounts`: IDs, their passwords, lock and removal.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::caller::ApiCaller;
use super::error::{parse, ApiError, ApiResult};
use super::paging::{page_request, paged};
use crate::http::ErrorBody;
use crate::model::{AccountId, ContractCode, Role};
use crate::ra::{AccountView, InitialPassword, NewAccount, RegistrationAuthority};

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
        (status = 201, description = "Created", body = AccountView),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
        (status = 409, response = ErrorBody),
        (status = 429, response = ErrorBody),
    )
)]
pub(super) async fn create_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
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
                    (Some(clear), None) => InitialPassword::Clear(clear),
                    (None, Some(hash)) => InitialPassword::Hashed(hash),
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
        (status = 200, description = "IDs; a `Link: rel=\"next\"` header when more follow", body = [AccountView]),
        (status = 400, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
pub(super) async fn list_accounts(
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
        (status = 200, description = "The ID", body = AccountView),
        (status = 400, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
pub(super) async fn show_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<AccountView> {
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
        (status = 200, description = "The ID", body = AccountView),
        (status = 400, response = ErrorBody),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
pub(super) async fn update_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<UpdateAccount>, JsonRejection>,
) -> ApiResult<AccountView> {
    let Json(body) = body?;
    Ok(Json(
        ra.update_account(&caller, &parse(&id)?, body.name, body.password)
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{id}/unlock",
    summary = "IDロック解除: clear the lock and the failure count",
    params(("id" = AccountId, Path, description = "The ID", example = "nozawa1")),
    responses(
        (status = 200, description = "The ID", body = AccountView),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
pub(super) async fn unlock(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<AccountView> {
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
        (status = 200, description = "The ID as it now is, with removed_at", body = AccountView),
        (status = 403, response = ErrorBody),
        (status = 404, response = ErrorBody),
        (status = 409, response = ErrorBody),
    )
)]
pub(super) async fn remove_account(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<AccountView> {
    Ok(Json(ra.remove_account(&caller, &parse(&id)?).await?))
}
