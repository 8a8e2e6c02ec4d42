//! The HTTP routes of revocation status, for relying parties (served on the plain-HTTP
//! listener and on the HTTPS port) and for the operator (the admin socket).
//!
//! | path | method | answer |
//! |---|---|---|
//! | `/crl` | GET | the current issuing CA's CRL, DER, `application/pkix-crl` |
//! | `/crl.pem` | GET | the same, PEM |
//! | `/crl/{generation}` | GET | the CRL of one issuing CA generation, DER (`….pem`: PEM); the URL its certificates carry |
//! | `/ocsp` | POST `application/ocsp-request` | `application/ocsp-response` |
//! | `/ocsp/{base64 request}` | GET (RFC 6960 A.1; URL-encoded base64, either alphabet) | as POST |
//! | `/ca.crt` | GET | the current issuing CA certificate, DER, `application/pkix-cert` |
//! | `/ca/{generation}.crt` | GET | one generation's issuing CA certificate, DER (caIssuers of its certificates) |
//! | `/ca.pem` | GET | PEM: the current issuing CA, the retired ones still loaded (newest first), intermediates, root |
//! | `/api/v1/crl` | GET (admin socket) | JSON [`CrlView`](super::CrlView) |
//!
//! CRL answers carry `ETag` (the CRL number), `Last-Modified` (thisUpdate) and
//! `Cache-Control: max-age` up to nextUpdate but at most `http_max_age_secs`, and honour
//! `If-None-Match` with 304. An OCSP request that cannot be parsed gets HTTP 200 with an
//! OCSPResponse of status `malformedRequest`, as RFC 6960 2.3 asks; a body over
//! [`MAX_OCSP_REQUEST_BYTES`] gets 413.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use hyper::body::Bytes;
use time::OffsetDateTime;

use super::{CrlPublisher, CrlPublishers, OcspAnswer, OcspResponders, RevocationServices};
use crate::ca::IssuingCas;
use crate::http::{ErrorBody, PeerInfo, PEM_CHAIN};

/// Largest OCSP request body accepted (a request for one certificate is about 100 bytes).
pub const MAX_OCSP_REQUEST_BYTES: usize = 16 * 1024;

/// `application/pkix-crl` (RFC 2585).
pub const PKIX_CRL: &str = "application/pkix-crl";
/// `application/pkix-cert` (RFC 2585).
pub const PKIX_CERT: &str = "application/pkix-cert";
/// `application/ocsp-response` (RFC 6960 appendix C).
pub const OCSP_RESPONSE: &str = "application/ocsp-response";

/// What the handlers share.
#[derive(Clone)]
pub struct RevocationState {
    crl: Arc<CrlPublishers>,
    ocsp: Arc<OcspResponders>,
    cas: Arc<IssuingCas>,
    max_age: u32,
}

/// The relying parties' routes.
pub fn router(services: &RevocationServices) -> Router {
    let state = RevocationState {
        crl: services.crl.clone(),
        ocsp: services.ocsp.clone(),
        cas: services.cas.clone(),
        max_age: services.http_max_age_secs,
    };
    Router::new()
        .route("/crl", get(crl_der))
        .route("/crl.pem", get(crl_pem))
        .route("/crl/{generation}", get(generation_crl))
        .route("/ca/{file}", get(generation_ca))
        .route("/ocsp", axum::routing::post(ocsp_post).get(ocsp_get))
        .route("/ocsp/", axum::routing::post(ocsp_post).get(ocsp_get))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/ca.crt", get(ca_crt))
        .route("/ca.pem", get(ca_pem_chain))
        .with_state(state)
}

/// The operator's route: `GET /api/v1/crl` (served on the admin socket only): the current
/// issuing CA's CRL.
pub fn admin_router(crl: Arc<CrlPublishers>) -> Router {
    let (router, _) = admin_routes().split_for_parts();
    router.with_state(crl)
}

/// The operator's routes with their OpenAPI description, registered once for both (the
/// management API's document includes them).
pub fn admin_routes() -> utoipa_axum::router::OpenApiRouter<Arc<CrlPublishers>> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(crl_view))
}

#[utoipa::path(
    get,
    path = "/api/v1/crl",
    summary = "The CRL the current issuing CA publishes: number, thisUpdate, nextUpdate and entries",
    description = "Operator only, on the admin socket; relying parties fetch /crl itself.",
    responses(
        (status = 200, description = "The CRL", body = super::CrlView),
        (status = 403, response = ErrorBody),
    )
)]
async fn crl_view(
    State(crl): State<Arc<CrlPublishers>>,
    peer: Option<Extension<PeerInfo>>,
) -> Response {
    let operator = peer.is_some_and(|Extension(p)| p.admin_socket_uid().is_some());
    if !operator {
        return (
            StatusCode::FORBIDDEN,
            Json(ErrorBody {
                error: "forbidden".into(),
                detail: "the CRL view is served to the operator on the admin socket only".into(),
            }),
        )
            .into_response();
    }
    match crl.current() {
        Ok(publisher) => Json(publisher.current().await.view()).into_response(),
        Err(e) => unavailable(&e.to_string()),
    }
}

/// 503 with `detail`.
fn unavailable(detail: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(ErrorBody {
            error: "unavailable".into(),
            detail: detail.into(),
        }),
    )
        .into_response()
}

/// 404 for a generation that is not loaded.
fn no_generation(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("no issuing CA generation {what} is loaded here; /crl and /ca.crt serve the current one\n"),
    )
        .into_response()
}

/// An HTTP-date (RFC 9110 5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: OffsetDateTime) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::from(t))
}

/// Seconds from now until `until`, at least 0 and at most `cap`.
pub(super) fn max_age(until: OffsetDateTime, cap: u32) -> i64 {
    (until - OffsetDateTime::now_utc())
        .whole_seconds()
        .clamp(0, i64::from(cap))
}

pub(super) fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// True when `If-None-Match` names `etag` (or is `*`); weak tags compare by their value.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

async fn crl_answer(
    publisher: &CrlPublisher,
    max_age_cap: u32,
    headers: &HeaderMap,
    pem: bool,
) -> Response {
    let crl = publisher.current().await;
    let etag = format!("\"{}{}\"", crl.number, if pem { "-pem" } else { "" });
    let cache = format!(
        "public, max-age={}, no-transform",
        max_age(crl.next_update, max_age_cap)
    );
    let mut response = if matches_etag(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (body, media) = if pem {
            (crl.pem.clone(), "application/x-pem-file")
        } else {
            (crl.der.clone(), PKIX_CRL)
        };
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, header_value(&etag));
    h.insert(
        header::LAST_MODIFIED,
        header_value(&http_date(crl.this_update)),
    );
    h.insert(header::EXPIRES, header_value(&http_date(crl.next_update)));
    h.insert(header::CACHE_CONTROL, header_value(&cache));
    response
}

async fn current_crl(state: &RevocationState, headers: &HeaderMap, pem: bool) -> Response {
    match state.crl.current() {
        Ok(publisher) => crl_answer(&publisher, state.max_age, headers, pem).await,
        Err(e) => unavailable(&e.to_string()),
    }
}

async fn crl_der(State(state): State<RevocationState>, headers: HeaderMap) -> Response {
    current_crl(&state, &headers, false).await
}

async fn crl_pem(State(state): State<RevocationState>, headers: HeaderMap) -> Response {
    current_crl(&state, &headers, true).await
}

/// `/crl/<generation>` (DER) or `/crl/<generation>.pem`.
async fn generation_crl(
    State(state): State<RevocationState>,
    Path(generation): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (id, pem) = match generation.strip_suffix(".pem") {
        Some(id) => (id, true),
        None => (generation.as_str(), false),
    };
    match state.crl.by_id(id) {
        Some(publisher) => crl_answer(&publisher, state.max_age, &headers, pem).await,
        None => no_generation(id),
    }
}

fn certificate_answer(der: &[u8]) -> Response {
    (
        [(header::CONTENT_TYPE, PKIX_CERT)],
        Body::from(Bytes::from(der.to_vec())),
    )
        .into_response()
}

async fn ca_crt(State(state): State<RevocationState>) -> Response {
    certificate_answer(state.cas.current().issuing_certificate_der())
}

/// `/ca/<generation>.crt`.
async fn generation_ca(State(state): State<RevocationState>, Path(file): Path<String>) -> Response {
    let id = file.strip_suffix(".crt").unwrap_or(&file);
    match state.cas.get().by_id(id) {
        Some(ca) => certificate_answer(ca.issuing_certificate_der()),
        None => no_generation(id),
    }
}

async fn ca_pem_chain(State(state): State<RevocationState>) -> Response {
    let pem = crate::ca::pkcs7::pem_certificates(&state.cas.get().certificates_der());
    ([(header::CONTENT_TYPE, PEM_CHAIN)], Body::from(pem)).into_response()
}

fn ocsp_response(answer: OcspAnswer, max_age_cap: Option<u32>) -> Response {
    let mut response = Response::new(Body::from(Bytes::from(answer.der.to_vec())));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OCSP_RESPONSE),
    );
    match (answer.cacheable, max_age_cap) {
        // RFC 5019 6.2: caching headers on GET answers.
        (Some((this_update, next_update)), Some(cap)) => {
            h.insert(
                header::CACHE_CONTROL,
                header_value(&format!(
                    "public, max-age={}, no-transform, must-revalidate",
                    max_age(next_update, cap)
                )),
            );
            h.insert(header::LAST_MODIFIED, header_value(&http_date(this_update)));
            h.insert(header::EXPIRES, header_value(&http_date(next_update)));
        }
        _ => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    response
}

async fn ocsp_post(State(state): State<RevocationState>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_OCSP_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!(
                    "an OCSP request is at most {MAX_OCSP_REQUEST_BYTES} bytes; send one DER OCSPRequest\n"
                ),
            )
                .into_response()
        }
    };
    ocsp_response(state.ocsp.respond(&bytes).await, None)
}

async fn ocsp_get(State(state): State<RevocationState>, uri: Uri) -> Response {
    let encoded = uri
        .path()
        .strip_prefix("/ocsp")
        .unwrap_or_default()
        .trim_start_matches('/');
    let answer = match decode_get_path(encoded) {
        Some(der) => state.ocsp.respond(&der).await,
        None => OcspAnswer::malformed(),
    };
    ocsp_response(answer, Some(state.max_age))
}

/// The DER request in a GET path: percent-decoded, then base64 in the standard or the URL
/// alphabet, padded or not. `None` when it is neither.
pub fn decode_get_path(encoded: &str) -> Option<Vec<u8>> {
    if encoded.is_empty() || encoded.len() > 2 * MAX_OCSP_REQUEST_BYTES {
        return None;
    }
    let text = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    let text = text.trim_end_matches('=');
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_paths_decode_in_every_base64_form() {
        let der = vec![0x30, 0xfb, 0xff, 0x3e, 0x01];
        for encoded in [
            "MPv/PgE=",
            "MPv%2FPgE%3D",
            "MPv%2fPgE%3d",
            "MPv/PgE",
            "MPv_PgE=",
            "MPv_PgE",
        ] {
            assert_eq!(decode_get_path(encoded), Some(der.clone()), "{encoded}");
        }
        for bad in ["", "%", "%zz", "!!!!", "MPv/P", "%ff%fe"] {
            assert_eq!(decode_get_path(bad), None, "{bad}");
        }
        assert_eq!(decode_get_path(&"A".repeat(100_000)), None);
    }

    #[test]
    fn etags_match_lists_weak_tags_and_stars() {
        let mut headers = HeaderMap::new();
        assert!(!matches_etag(&headers, "\"7\""));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"6\", W/\"7\""),
        );
        assert!(matches_etag(&headers, "\"7\""));
        assert!(!matches_etag(&headers, "\"8\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_etag(&headers, "\"8\""));
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let t = time::macros::datetime!(1994-11-06 08:49:37 UTC);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
