//! An ID's certificate: the seed's continue / reissue / revoke choice, delegated issuance
//! from a PKCS#10 body, and one certificate by serial.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::ApiCaller;
use super::error::{parse, ApiError, ApiResult};
use super::MAX_BODY_BYTES;
use crate::http::{Base64Lines, ErrorBody};
use crate::model::{AccountId, RevocationReason, Serial};
use crate::ra::{AccountView, Caller, CertificateAction, CertificateView, RegistrationAuthority};

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
        (status = 200, description = "The ID (JSON choice)", body = AccountView),
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
pub(super) async fn certificate(
    State(ra): State<Arc<RegistrationAuthority>>,
    axum::Extension(base64): axum::Extension<Base64Lines>,
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
pub(super) fn is_pkcs10(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/pkcs10"))
}

/// Delegated issuance: the CSR (DER, base64 or PEM) has a certificate issued for the ID under
/// its lifecycle; the answer is EST's (base64 PKCS#7 certs-only, or the PEM chain by
/// `Accept`), with status 201.
pub(super) async fn issue_certificate(
    ra: &RegistrationAuthority,
    base64: Base64Lines,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let csr_der =
        crate::ca::csr::decode_body(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let issued = ra.issue_on_behalf(caller, &parse(id)?, &csr_der).await?;
    let mut response = crate::est::enrollment_response(ra, base64, headers, &issued)?;
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

pub(super) async fn certificate_action(
    ra: &RegistrationAuthority,
    ApiCaller(caller): ApiCaller,
    id: &str,
    body: Result<Json<CertificateActionBody>, JsonRejection>,
) -> ApiResult<AccountView> {
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
    get,
    path = "/api/v1/certificates/{serial}",
    summary = "One certificate in scope: PEM, status, revocation time and reason",
    params(("serial" = Serial, Path, description = "Its serial", example = "441e22181c34f93d0f0e6bca0f6dcf52")),
    responses(
        (status = 200, description = "The certificate", body = CertificateView),
        (status = 400, response = ErrorBody),
        (status = 404, response = ErrorBody),
    )
)]
pub(super) async fn show_certificate(
    State(ra): State<Arc<RegistrationAuthority>>,
    ApiCaller(caller): ApiCaller,
    Path(serial): Path<String>,
) -> ApiResult<CertificateView> {
    let serial: Serial = parse(&serial)?;
    Ok(Json(ra.certificate(&caller, &serial).await?))
}
