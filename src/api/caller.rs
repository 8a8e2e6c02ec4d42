//! Who is calling the management API: the operator on the admin socket, or the holder of a
//! current master-ID or application certificate over TLS.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::error::ApiError;
use crate::http::PeerInfo;
use crate::ra::{Caller, RegistrationAuthority};

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
