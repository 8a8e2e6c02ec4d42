//! The answer to EST `serverkeygen` (RFC 7030 section 4.4.2): `multipart/mixed` with the
//! private key estca generated (`application/pkcs8`, unencrypted inside the TLS connection)
//! and its certificate (`application/pkcs7-mime; smime-type=certs-only`), each base64.
//!
//! The request goes through the registration authority's one enrollment path
//! ([`crate::ra::RegistrationAuthority::enroll_with_server_keygen`], from the EST front end):
//! the same authentication, throttling, lockout, single-active-certificate lifecycle and
//! history as simpleenroll, and a 403 for an ID whose contract does not allow server-side key
//! generation (off by default). The private key is never logged nor stored. Every copy made of
//! it is zeroized when dropped, but one: the response body, moved (not copied) to the HTTP
//! server, which frees it once written to the TLS connection.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::ca::{self, CaError, GeneratedKey};
use crate::http::multipart::{self, Base64Part};
use crate::http::Base64Lines;
use crate::store::IssuedCertificate;

/// The media type of the private key part (RFC 7030 section 4.4.2, RFC 5958).
const PKCS8: &str = "application/pkcs8";

/// The media type of the certificate part.
const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// The 200 answer: the key part, then the certificate part, laid out as `base64` says; the
/// key is dropped (zeroized) here.
pub(crate) fn answer(
    issued: &IssuedCertificate,
    key: GeneratedKey,
    base64: Base64Lines,
) -> Result<Response, CaError> {
    let pkcs7 = ca::pkcs7::certs_only(&[issued.der()])?;
    let key_text = base64.encode_secret(key.pkcs8_der());
    drop(key);
    let certificate_text = base64.encode(&pkcs7);
    let mut body = multipart::mixed(&[
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
    let mut response = Body::from(std::mem::take(&mut *body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(multipart::CONTENT_TYPE),
    );
    // The private key must not be kept by any cache between estca and the client.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
