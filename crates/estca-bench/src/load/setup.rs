//! What a scenario needs before its timed window: IDs created through the admin socket, an
//! application credential, first certificates, made a few at a time.

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use hyper::StatusCode;
use rustls::ClientConfig;
use serde_json::{json, Value};

use crate::http::{self, Connection};
use crate::keys;

use super::clients::enroll_request;
use super::{Target, CONTRACT, SETUP_PARALLELISM};

/// Runs `f` for items `0..n` on up to [`SETUP_PARALLELISM`] tasks, in order of results.
pub(super) async fn in_parallel<T, F, Fut>(n: usize, f: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T>> + Send,
{
    let f = Arc::new(f);
    let mut handles = Vec::new();
    for worker in 0..SETUP_PARALLELISM.min(n.max(1)) {
        let f = f.clone();
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = worker;
            while i < n {
                out.push((i, f(i).await?));
                i += SETUP_PARALLELISM;
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for h in handles {
        all.extend(h.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, v)| v).collect())
}

/// How the bench password of new IDs is given.
#[derive(Debug, Clone, Copy)]
pub(super) enum Password {
    /// As typed: the daemon hashes it (at its configured cost), as for any real ID.
    Clear,
    /// As [`Target::password_hash`] (the operator's bulk-load form): for IDs whose password
    /// is never checked, so that creating thousands costs no hashing.
    Hashed,
}

/// Creates the IDs (role user, the bench password) through the admin socket.
pub(super) async fn create_accounts(
    target: &Arc<Target>,
    ids: &[String],
    password: Password,
) -> Result<()> {
    let ids = Arc::new(ids.to_vec());
    let t = target.clone();
    in_parallel(ids.len(), move |i| {
        let (t, ids) = (t.clone(), ids.clone());
        async move {
            let mut admin = Connection::unix(&t.endpoints.admin_socket).await?;
            let mut account = json!({
                "id": ids[i],
                "contract": CONTRACT,
                "role": "user",
                "name": "estca-bench",
            });
            match password {
                Password::Clear => account["password"] = json!(t.password),
                Password::Hashed => account["password_hash"] = json!(t.password_hash),
            }
            http::admin_post(&mut admin, "/api/v1/accounts", &account).await
        }
    })
    .await?;
    Ok(())
}

/// An application credential's TLS client configuration.
pub(super) type AppIdentity = Arc<ClientConfig>;

/// Creates application `name` for the bench contract through the admin socket; returns the
/// TLS client configuration that presents its certificate.
pub(super) async fn create_app(target: &Arc<Target>, name: &str) -> Result<AppIdentity> {
    let k = tokio::task::spawn_blocking(keys::one).await??;
    let mut admin = Connection::unix(&target.endpoints.admin_socket).await?;
    let answer = http::admin_post(
        &mut admin,
        "/api/v1/apps",
        &json!({
            "name": name,
            "contracts": [CONTRACT],
            "csr": std::str::from_utf8(&k.csr_base64)?,
        }),
    )
    .await?;
    let created: Value = serde_json::from_slice(&answer)?;
    let pem = created["certificate_pem"]
        .as_str()
        .ok_or_else(|| anyhow!("POST /api/v1/apps answered without certificate_pem"))?;
    let leaf = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .ok_or_else(|| anyhow!("the application's certificate_pem holds no certificate"))?
            .map_err(|e| anyhow!("the application's certificate: {e}"))?
    };
    http::client_config(target.roots.clone(), Some((&leaf, &k.key_der)))
}

/// Enrolls each ID once with simpleenroll; returns (certificate DER, key PKCS#8 DER).
pub(super) async fn enroll_accounts(
    target: &Arc<Target>,
    ids: &[String],
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let ids = Arc::new(ids.to_vec());
    let t = target.clone();
    in_parallel(ids.len(), move |i| {
        let (t, ids) = (t.clone(), ids.clone());
        async move {
            let k = tokio::task::spawn_blocking(keys::one).await??;
            let mut conn = Connection::tls(t.next_https(), t.anonymous.clone()).await?;
            let (status, body) = conn
                .send(enroll_request(&ids[i], &t.password, k.csr_base64.clone())?)
                .await?;
            if status != StatusCode::OK {
                bail!(
                    "enrolling {} failed: {status}: {}",
                    ids[i],
                    String::from_utf8_lossy(&body).trim()
                );
            }
            Ok((keys::certificate_of(&body)?, k.key_der))
        }
    })
    .await
}
