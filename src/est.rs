//! The EST front end (RFC 7030) under `/.well-known/est/`: parses requests, hands them to the
//! registration authority, and encodes its answers. No policy and no storage here.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use base64::Engine;
use http_body_util::BodyExt;
use zeroize::Zeroizing;

use crate::ca;
use crate::http::{
    http_error, plain, with_authenticated_id, with_reason_phrase, Base64Lines, PeerInfo, PEM_CHAIN,
};
use crate::ra::{RaError, RegistrationAuthority};
use crate::store::IssuedCertificate;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How much of an oversized body is read and discarded before answering 413, so that a
/// client that sends its body without waiting (no `Expect: 100-continue`) sees the answer.
const MAX_DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// What the EST handlers share.
#[derive(Clone)]
pub struct EstState {
    ra: Arc<RegistrationAuthority>,
    max_body_bytes: usize,
    base64: Base64Lines,
    csrattrs_base64: Arc<str>,
}

/// The EST routes, ready to be served; base64 answers laid out as `base64` says.
pub fn router(
    ra: Arc<RegistrationAuthority>,
    max_body_bytes: usize,
    base64: Base64Lines,
) -> Result<Router, ca::CaError> {
    let state = EstState {
        csrattrs_base64: base64.encode(&ca::pkcs7::csr_attributes()?).into(),
        ra,
        max_body_bytes,
        base64,
    };
    Ok(Router::new()
        .route("/.well-known/est/cacerts", get(cacerts))
        .route("/.well-known/est/csrattrs", get(csrattrs))
        .route("/.well-known/est/simpleenroll", post(simpleenroll))
        .route("/.well-known/est/simplereenroll", post(simplereenroll))
        .route("/.well-known/est/serverkeygen", post(serverkeygen))
        // The prefix itself as well: axum's `{*rest}` needs at least one character after it.
        .route(EST_PREFIX, any(not_offered))
        .route("/.well-known/est/", any(not_offered))
        .route("/.well-known/est/{*rest}", any(not_offered))
        .with_state(state))
}

/// Where RFC 7030 section 3.2.2 puts EST.
const EST_PREFIX: &str = "/.well-known/est";

/// The EST operations estca serves, named in the 404 answers.
const OFFERED: [&str; 5] = [
    "cacerts",
    "csrattrs",
    "simpleenroll",
    "simplereenroll",
    "serverkeygen",
];

/// 404 for an EST path estca does not serve, saying why: an optional operation it does not
/// offer, a CA label (RFC 7030 section 3.2.2) on a CA that has none, or an unknown name (the
/// prefix alone included). The path is read as sent, percent-encoded, so that what a label
/// echoes back is printable.
async fn not_offered(uri: axum::http::Uri) -> Response {
    let rest = uri.path().strip_prefix(EST_PREFIX).unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let message = match segments.as_slice() {
        ["fullcmc"] => "estca does not offer Full CMC (fullcmc, optional in RFC 7030 section \
                        4.3); enroll with simpleenroll and renew with simplereenroll"
            .to_owned(),
        [label, operation] if OFFERED.contains(operation) => format!(
            "estca has a single CA and no CA labels (RFC 7030 section 3.2.2): use \
             /.well-known/est/{operation} without the label '{label}'"
        ),
        _ => format!(
            "no such EST operation; estca serves {} under /.well-known/est/",
            OFFERED.join(", ")
        ),
    };
    let response = plain(StatusCode::NOT_FOUND, &message);
    with_reason_phrase(response, &message)
}

/// An EST error answer: a status and one sentence of `text/plain`.
#[derive(Debug)]
pub struct EstError {
    status: StatusCode,
    message: String,
    retry_after_secs: Option<u64>,
    /// A 401 challenge to a request without credentials: no body (see `into_response`).
    challenge_only: bool,
}

impl EstError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after_secs: None,
            challenge_only: false,
        }
    }

    /// The 401 that asks a client without credentials for them.
    fn challenge() -> Self {
        Self {
            challenge_only: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "enrollment needs your ID and password (HTTP Basic authentication, e.g. curl --user ID)",
            )
        }
    }
}

impl From<RaError> for EstError {
    fn from(e: RaError) -> Self {
        let (status, message) = http_error(&e);
        Self {
            retry_after_secs: e.retry_after_secs(),
            ..Self::new(status, message)
        }
    }
}

impl IntoResponse for EstError {
    fn into_response(self) -> Response {
        let mut response = if self.challenge_only {
            // Bouncy Castle's HttpAuth closes a 401 without reading its body and fails on any
            // unread byte ("Stream closed before limit fully read"), never sending the
            // password: the first challenge is empty. curl users see the WWW-Authenticate
            // header (README "EST endpoints").
            (self.status, Body::empty()).into_response()
        } else {
            with_reason_phrase(plain(self.status, &self.message), &self.message)
        };
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"estca\", charset=\"UTF-8\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

async fn cacerts(State(state): State<EstState>, headers: HeaderMap) -> Response {
    if wants_pem(&headers) {
        let chain = state.ra.ca_chain_der();
        let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        return pem_response(ca::pkcs7::pem_certificates(&refs));
    }
    // Read per request: a reload that brings a new issuing CA generation changes it.
    base64_response(
        "application/pkcs7-mime",
        state.base64.encode(&state.ra.ca_certificates_pkcs7()),
    )
}

async fn csrattrs(State(state): State<EstState>) -> Response {
    base64_response("application/csrattrs", state.csrattrs_base64.to_string())
}

async fn simpleenroll(
    State(state): State<EstState>,
    Extension(peer): Extension<PeerInfo>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    if let Some(app) = delegating_application(&state, &peer, &headers).await? {
        let csr = read_csr(&headers, body, state.max_body_bytes).await?;
        let issued = state.ra.issue_for_csr_subject(&app, &csr).await?;
        return Ok(authenticated(
            enrollment_response(&state.ra, state.base64, &headers, &issued)?,
            &issued,
        ));
    }
    let (id, password) = basic_credentials(&headers)?;
    let csr = read_csr(&headers, body, state.max_body_bytes).await?;
    let issued = match state
        .ra
        .enroll_with_password(&peer.source(), peer.source_key(), &id, password, &csr)
        .await
    {
        Ok(issued) => issued,
        // A policy refusal (409, 403) comes after the password was accepted: the request log
        // names the ID it was refused to.
        Err(e @ RaError::Refused(_)) => {
            return Ok(with_authenticated_id(
                EstError::from(e).into_response(),
                &id,
            ))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(authenticated(
        enrollment_response(&state.ra, state.base64, &headers, &issued)?,
        &issued,
    ))
}

async fn simplereenroll(
    State(state): State<EstState>,
    Extension(peer): Extension<PeerInfo>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    let Some(client_cert) = peer.client_certificate() else {
        return Err(EstError::new(
            StatusCode::FORBIDDEN,
            "simplereenroll needs the client certificate estca issued to your ID \
             (e.g. curl --cert cert.pem --key key.pem); without one, use simpleenroll",
        ));
    };
    let csr = read_csr(&headers, body, state.max_body_bytes).await?;
    let issued = state
        .ra
        .reenroll_with_certificate(&peer.source(), client_cert, &csr)
        .await?;
    Ok(authenticated(
        enrollment_response(&state.ra, state.base64, &headers, &issued)?,
        &issued,
    ))
}

/// serverkeygen (RFC 7030 section 4.4): authenticated and decided as simpleenroll with a
/// password, by the registration authority; answered by [`crate::serverkeygen::answer`].
async fn serverkeygen(
    State(state): State<EstState>,
    Extension(peer): Extension<PeerInfo>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    let (id, password) = basic_credentials(&headers)?;
    let csr = read_csr(&headers, body, state.max_body_bytes).await?;
    let (issued, key) = match state
        .ra
        .enroll_with_server_keygen(&peer.source(), peer.source_key(), &id, password, &csr)
        .await
    {
        Ok(issued) => issued,
        // Refused after the password was accepted (the lifecycle's 409 and 403, the
        // contract's 403): the request log names the ID it was refused to.
        Err(e @ (RaError::Refused(_) | RaError::Forbidden(_))) => {
            return Ok(with_authenticated_id(
                EstError::from(e).into_response(),
                &id,
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let response =
        crate::serverkeygen::answer(&issued, key, state.base64).map_err(RaError::from)?;
    Ok(authenticated(response, &issued))
}

/// Names the ID a certificate was issued to for the access log.
fn authenticated(response: Response, issued: &IssuedCertificate) -> Response {
    match issued.record().account() {
        Some(id) => with_authenticated_id(response, id.as_str()),
        None => response,
    }
}

/// The application (an EST registration authority) enrolling an ID, when the request
/// carries no HTTP Basic credentials and its client certificate is an application's.
async fn delegating_application(
    state: &EstState,
    peer: &PeerInfo,
    headers: &HeaderMap,
) -> Result<Option<crate::ra::Caller>, EstError> {
    match peer.client_certificate() {
        Some(certificate) if !headers.contains_key(header::AUTHORIZATION) => Ok(state
            .ra
            .delegating_application(certificate, &peer.source())
            .await?),
        _ => Ok(None),
    }
}

/// The HTTP Basic credentials: the ID as text and the password as bytes.
fn basic_credentials(headers: &HeaderMap) -> Result<(String, Zeroizing<Vec<u8>>), EstError> {
    let unauthorized = |m: &str| EstError::new(StatusCode::UNAUTHORIZED, m);
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or_else(EstError::challenge)?;
    if values.next().is_some() {
        // Which one a proxy, a log or estca would read is anybody's guess: refuse them all.
        return Err(EstError::new(
            StatusCode::BAD_REQUEST,
            "the request has several Authorization headers; send exactly one (HTTP Basic, curl --user ID)",
        ));
    }
    let malformed = || {
        unauthorized("malformed Authorization header: send HTTP Basic credentials (curl --user ID)")
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = Zeroizing::new(B64.decode(encoded.trim()).map_err(|_| malformed())?);
    let colon = decoded
        .iter()
        .position(|b| *b == b':')
        .ok_or_else(malformed)?;
    let id = std::str::from_utf8(&decoded[..colon])
        .map_err(|_| unauthorized("the ID in the Authorization header is not UTF-8"))?
        .to_owned();
    let password = Zeroizing::new(decoded[colon + 1..].to_vec());
    Ok((id, password))
}

/// Checks the media type, reads a bounded body, and decodes base64 (wrapped or not) or PEM.
async fn read_csr(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, EstError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if media_type.as_deref() != Some("application/pkcs10") {
        return Err(EstError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the CSR as base64-encoded DER with Content-Type: application/pkcs10",
        ));
    }
    let too_large = || {
        EstError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes; a CSR is a few kilobytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let expects_continue = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if declared.is_some_and(|n| n > limit as u64)
        && (expects_continue || declared.is_some_and(|n| n > MAX_DRAIN_BYTES as u64))
    {
        // The client waits for our answer before sending, or the body is too large to
        // swallow: answer from the headers.
        return Err(too_large());
    }
    let mut body = body;
    let mut bytes = Vec::new();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            EstError::new(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received = received.saturating_add(data.len());
        if received > MAX_DRAIN_BYTES {
            break;
        }
        if received <= limit {
            bytes.extend_from_slice(&data);
        }
    }
    if received > limit {
        // The rest of an oversized body was read and dropped so that the client, still
        // writing, receives this answer instead of a reset connection.
        return Err(too_large());
    }
    decode_csr_body(&bytes)
}

/// Base64 DER (line breaks and spaces allowed, RFC 7030 section 4.2.1) or a PEM block.
fn decode_csr_body(body: &[u8]) -> Result<Vec<u8>, EstError> {
    ca::csr::decode_text(body).map_err(|e| EstError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

/// The answer to an enrollment: base64 PKCS#7 certs-only holding the certificate (RFC 7030
/// section 4.2.3), or the PEM chain when the client accepts it. The management API answers
/// delegated issuance with it too.
pub(crate) fn enrollment_response(
    ra: &RegistrationAuthority,
    base64: Base64Lines,
    headers: &HeaderMap,
    issued: &IssuedCertificate,
) -> Result<Response, RaError> {
    if wants_pem(headers) {
        return Ok(pem_response(ca::pkcs7::pem_certificates(&[
            issued.der(),
            &ra.issuing_certificate_der(),
        ])));
    }
    let pkcs7 = ca::pkcs7::certs_only(&[issued.der()])?;
    Ok(base64_response(
        "application/pkcs7-mime; smime-type=certs-only",
        base64.encode(&pkcs7),
    ))
}

/// Whether the client prefers the PEM chain (`application/pem-certificate-chain`, RFC 8555;
/// an estca extension) to EST's PKCS#7: its `Accept` names the PEM type itself with a quality
/// above 0 (RFC 9110 section 12.4.2: 0 is "not acceptable") and at least the quality it gives
/// `application/pkcs7-mime` through its most specific matching range. A wildcard alone keeps
/// EST's answer.
fn wants_pem(headers: &HeaderMap) -> bool {
    let ranges: Vec<(mime::Mime, f32)> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| range.trim().parse::<mime::Mime>().ok())
        .map(|range| {
            let q = range
                .get_param("q")
                .and_then(|q| q.as_str().parse::<f32>().ok())
                .unwrap_or(1.0);
            (range, q)
        })
        .collect();
    let quality = |essence: &str| {
        ranges
            .iter()
            .find(|(range, _)| range.essence_str().eq_ignore_ascii_case(essence))
            .map(|(_, q)| *q)
    };
    let Some(pem) = quality(PEM_CHAIN) else {
        return false;
    };
    let pkcs7 = quality("application/pkcs7-mime")
        .or_else(|| quality("application/*"))
        .or_else(|| quality("*/*"))
        .unwrap_or(0.0);
    pem > 0.0 && pem >= pkcs7
}

fn pem_response(pem: String) -> Response {
    ([(header::CONTENT_TYPE, PEM_CHAIN)], pem).into_response()
}

fn base64_response(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                "base64",
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let h = headers(&[(
            "authorization",
            &format!("Basic {}", B64.encode("nozawa1:pa:ss")),
        )]);
        let (id, pw) = basic_credentials(&h).unwrap();
        assert_eq!(id, "nozawa1");
        assert_eq!(pw.as_slice(), b"pa:ss");
    }

    #[test]
    fn malformed_credentials_are_401() {
        for value in [
            "Bearer abc",
            "Basic !!!",
            "Basic",
            &format!("Basic {}", B64.encode("nocolon")),
        ] {
            let err = basic_credentials(&headers(&[("authorization", value)])).unwrap_err();
            assert_eq!(err.status, StatusCode::UNAUTHORIZED, "{value}");
        }
        let err = basic_credentials(&HeaderMap::new()).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        let non_utf8 = format!("Basic {}", B64.encode([0xff, 0xfe, b':', b'x']));
        let err = basic_credentials(&headers(&[("authorization", &non_utf8)])).unwrap_err();
        assert!(err.message.contains("UTF-8"));
    }

    #[test]
    fn csr_bodies_accept_wrapped_and_unwrapped_base64_and_pem() {
        let der = (0u8..=200).collect::<Vec<u8>>();
        let b64 = B64.encode(&der);
        let wrapped: String = b64
            .as_bytes()
            .chunks(64)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(decode_csr_body(b64.as_bytes()).unwrap(), der);
        assert_eq!(decode_csr_body(wrapped.as_bytes()).unwrap(), der);
        let pem =
            pem_rfc7468::encode_string("CERTIFICATE REQUEST", pem_rfc7468::LineEnding::LF, &der)
                .unwrap();
        assert_eq!(decode_csr_body(pem.as_bytes()).unwrap(), der);
        assert_eq!(
            decode_csr_body(b"%%%").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            decode_csr_body(b"  ").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn pem_is_chosen_by_accept() {
        assert!(wants_pem(&headers(&[(
            "accept",
            "text/plain, application/pem-certificate-chain;q=0.9"
        )])));
        assert!(wants_pem(&headers(&[(
            "accept",
            "application/pem-certificate-chain, */*"
        )])));
        assert!(!wants_pem(&headers(&[("accept", "*/*")])));
        assert!(!wants_pem(&headers(&[(
            "accept",
            "application/pem-certificate-chain;q=0"
        )])));
        assert!(!wants_pem(&headers(&[(
            "accept",
            "application/pkcs7-mime, application/pem-certificate-chain;q=0.5"
        )])));
        assert!(!wants_pem(&headers(&[(
            "accept",
            "application/*;q=0.8, application/pem-certificate-chain;q=0.3"
        )])));
    }
}
