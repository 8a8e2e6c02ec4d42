//! EST `serverkeygen` (RFC 7030 section 4.4): the client sends a CSR as for simpleenroll,
//! with its ID and password; estca generates the key pair, certifies it, and answers
//! `multipart/mixed` (section 4.4.2) with the private key (`application/pkcs8`, unencrypted
//! inside the TLS connection) and the certificate (`application/pkcs7-mime;
//! smime-type=certs-only`), each base64.
//!
//! Everything but the key comes from the registration authority's one enrollment path
//! ([`RegistrationAuthority::enroll_with_server_keygen`]): the same authentication,
//! throttling, lockout, single-active-certificate lifecycle and history as simpleenroll, and
//! a 403 for an ID whose contract does not allow server-side key generation (off by
//! default). The private key is never logged nor stored. Every copy made of it is zeroized
//! when dropped, but one: the response body, moved (not copied) to the HTTP server, which
//! frees it once written to the TLS connection.

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::ca;
use crate::est::{authenticated, basic_credentials, read_csr, EstError, EstState};
use crate::http::multipart::{self, Base64Part};
use crate::http::{with_authenticated_id, PeerInfo};
use crate::ra::RaError;

/// The media type of the private key part (RFC 7030 section 4.4.2, RFC 5958).
const PKCS8: &str = "application/pkcs8";

/// The media type of the certificate part.
const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// `POST /.well-known/est/serverkeygen`.
pub(crate) async fn serverkeygen(
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
    let pkcs7 = ca::pkcs7::certs_only(&[issued.der()]).map_err(RaError::from)?;
    let key_text = state.base64.encode_secret(key.pkcs8_der());
    drop(key);
    let certificate_text = state.base64.encode(&pkcs7);
    let body = multipart::mixed(&[
        Base64Part {
            content_type: PKCS8,
            base64: &key_text,
        },
        Base64Part {
            content_type: CERTS_ONLY,
            base64: &certificate_text,
        },
    ]);
    drop(key_text);
    let mut body = body;
    let mut response = Body::from(std::mem::take(&mut *body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(multipart::CONTENT_TYPE),
    );
    // The private key must not be kept by any cache between estca and the client.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(authenticated(response, &issued))
}
