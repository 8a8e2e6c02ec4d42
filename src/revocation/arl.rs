//! Publishing the offline root's ARL (the CRL of issuing CA certificates, RFC 5280 section 5)
//! at `/root.crl`. The root signs it offline (`estca root sign-arl`) and the operator copies
//! it to `ca.root_crl` (default `root.crl` in the CA directory); the daemon serves it as it
//! is, DER, `application/pkix-crl`.
//!
//! The file is read when it changes (its inode, modification time or size, looked at on every
//! request and hourly) and on reload. A file that is not a CRL signed by `root-ca.pem` is
//! refused with an error in the log, and the previous ARL stays served. How soon the ARL
//! goes stale is logged at start, on reload and hourly: a warning from
//! `ca.root_crl_warning_days` before its nextUpdate, an error once it has passed (it is still
//! served: relying parties decide); the gauge `estca_root_crl_next_update_timestamp_seconds`
//! lets alerting fire too.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::body::Bytes;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::routes::{header_value, http_date, max_age, PKIX_CRL};
use crate::metrics::Metrics;
use crate::ra::Clock;

/// How often the ARL file is looked at and its staleness logged, besides requests and reloads.
const CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Why an ARL file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ArlError {
    /// The file cannot be read.
    #[error("cannot read the root CRL {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an ARL of this daemon's root.
    #[error("the root CRL {} is not served: {reason}; copy the root.crl that `estca root sign-arl` wrote", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A loaded ARL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arl {
    /// The ARL, DER, as served.
    pub der: Bytes,
    /// Its cRLNumber, when present and at most 64 bits.
    pub number: Option<u64>,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
}

/// How soon an ARL goes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArlOutlook {
    /// More than the warning lead before nextUpdate.
    Fresh,
    /// Within the warning lead: sign and install a fresh one.
    Soon {
        /// Whole hours left.
        hours_left: i64,
    },
    /// nextUpdate has passed.
    Stale,
}

impl ArlOutlook {
    /// The outlook at `now` of an ARL valid until `next_update`, warning `lead` before.
    pub fn at(now: OffsetDateTime, next_update: OffsetDateTime, lead: time::Duration) -> Self {
        let left = next_update - now;
        if left <= time::Duration::ZERO {
            Self::Stale
        } else if left <= lead {
            Self::Soon {
                hours_left: left.whole_hours(),
            }
        } else {
            Self::Fresh
        }
    }
}

/// Reads `path` as an ARL (DER, or PEM "X509 CRL") issued and signed by `root` (DER).
pub fn read_arl(path: &Path, root: Option<&[u8]>) -> Result<Arl, ArlError> {
    let invalid = |reason: &str| ArlError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let bytes = std::fs::read(path).map_err(|source| ArlError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        match pem_rfc7468::decode_vec(&bytes) {
            Ok(("X509 CRL", der)) => der,
            _ => return Err(invalid("it is PEM but not one X509 CRL")),
        }
    } else {
        bytes
    };
    let crl = match CertificateRevocationList::from_der(&der) {
        Ok(([], crl)) => crl,
        _ => return Err(invalid("it is not a DER CRL")),
    };
    let root_der = root.ok_or_else(|| {
        invalid("the CA directory holds no root-ca.pem to check its signature against")
    })?;
    let root = match X509Certificate::from_der(root_der) {
        Ok((_, cert)) => cert,
        Err(_) => return Err(invalid("root-ca.pem cannot be read")),
    };
    if crl.issuer().as_raw() != root.subject().as_raw() {
        return Err(invalid(&format!(
            "it was issued by '{}', not by the root '{}'",
            crl.issuer(),
            root.subject()
        )));
    }
    if crl.verify_signature(root.public_key()).is_err() {
        return Err(invalid("its signature does not verify with root-ca.pem"));
    }
    let next_update = crl
        .next_update()
        .ok_or_else(|| invalid("it has no nextUpdate"))?
        .to_datetime();
    let number = crl.crl_number().and_then(|n| u64::try_from(n).ok());
    let this_update = crl.last_update().to_datetime();
    Ok(Arl {
        der: Bytes::from(der.clone()),
        number,
        this_update,
        next_update,
    })
}

/// What identifies a version of the file: inode, modification time and size (a file
/// replaced by renaming has a new inode even within the file system's timestamp tick).
type Seen = Option<(u64, SystemTime, u64)>;

/// The ARL the daemon serves, re-read when its file changes.
pub struct RootCrl {
    path: PathBuf,
    /// True when `ca.root_crl` names the file, so its absence is an error; the default
    /// `root.crl` in the CA directory may well be absent (a local root).
    configured: bool,
    root: Option<Vec<u8>>,
    lead: time::Duration,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    state: Mutex<(Seen, Option<Arc<Arl>>)>,
}

impl RootCrl {
    /// Serves `path` (named by `ca.root_crl` when `configured`), checked against the root
    /// certificate `root` (DER), warning `lead` before nextUpdate; reads it at once and logs
    /// its outlook.
    pub fn new(
        path: PathBuf,
        configured: bool,
        root: Option<Vec<u8>>,
        lead: time::Duration,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Self {
        let crl = Self {
            path,
            configured,
            root,
            lead,
            clock,
            metrics,
            state: Mutex::new((None, None)),
        };
        crl.check(true);
        crl
    }

    /// The file's identity now, `None` when it is absent.
    fn identity(&self) -> Result<Seen, ArlError> {
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(Some((
                std::os::unix::fs::MetadataExt::ino(&m),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ArlError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Re-reads the file when it changed (always when `force`); returns true when a new ARL
    /// was loaded. Errors are logged; the previous ARL stays served.
    fn refresh(&self, force: bool) -> bool {
        let identity = match self.identity() {
            Ok(identity) => identity,
            Err(e) => {
                tracing::error!(error = %e, "root CRL");
                return false;
            }
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !force && state.0 == identity {
            return false;
        }
        state.0 = identity;
        if identity.is_none() {
            if self.configured {
                tracing::error!(
                    file = %self.path.display(),
                    "the root CRL named by ca.root_crl is missing, so /root.crl is not served; copy the root.crl `estca root sign-arl` wrote there"
                );
            }
            return false;
        }
        match read_arl(&self.path, self.root.as_deref()) {
            Ok(arl) => {
                tracing::info!(
                    file = %self.path.display(),
                    number = arl.number.unwrap_or_default(),
                    next_update = %crate::model::rfc3339(arl.next_update),
                    "root CRL loaded; served at /root.crl"
                );
                self.metrics.set_root_crl_next_update(arl.next_update);
                state.1 = Some(Arc::new(arl));
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "root CRL refused; the previous one, if any, stays served");
                false
            }
        }
    }

    /// Re-reads the file (when it changed, or always when `force`) and logs how soon the ARL
    /// goes stale: at start, on reload and hourly.
    pub fn check(&self, force: bool) {
        self.refresh(force);
        let Some(arl) = self.current_loaded() else {
            return;
        };
        let next_update = crate::model::rfc3339(arl.next_update);
        match ArlOutlook::at(self.clock.now(), arl.next_update, self.lead) {
            ArlOutlook::Fresh => {}
            ArlOutlook::Soon { hours_left } => tracing::warn!(
                file = %self.path.display(),
                next_update = %next_update,
                hours_left,
                "the root CRL goes stale soon: sign a fresh one on the offline root (`estca root sign-arl`) and copy it here"
            ),
            ArlOutlook::Stale => tracing::error!(
                file = %self.path.display(),
                next_update = %next_update,
                "the root CRL is STALE (its nextUpdate has passed): relying parties that check the chain may refuse every certificate; sign a fresh one on the offline root (`estca root sign-arl`) and copy it here"
            ),
        }
    }

    fn current_loaded(&self) -> Option<Arc<Arl>> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }

    /// The ARL to serve, re-read first if the file changed.
    pub fn current(&self) -> Option<Arc<Arl>> {
        self.refresh(false);
        self.current_loaded()
    }

    /// Checks the file hourly until `stopped` turns true.
    pub fn spawn(
        self: Arc<Self>,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_INTERVAL);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let crl = self.clone();
                        let _ = tokio::task::spawn_blocking(move || crl.check(false)).await;
                    }
                    _ = stopped.changed() => return,
                }
            }
        })
    }
}

/// `GET /root.crl`, for relying parties, with at most `max_age_cap` seconds of caching.
pub fn router(crl: Arc<RootCrl>, max_age_cap: u32) -> Router {
    Router::new()
        .route("/root.crl", get(root_crl))
        .with_state((crl, max_age_cap))
}

async fn root_crl(State((crl, cap)): State<(Arc<RootCrl>, u32)>) -> Response {
    let current = tokio::task::spawn_blocking(move || crl.current())
        .await
        .ok()
        .flatten();
    let Some(arl) = current else {
        return (
            StatusCode::NOT_FOUND,
            "no root CRL is published here: the root's operator signs it with `estca root sign-arl` and copies it to ca.root_crl",
        )
            .into_response();
    };
    let mut response = Response::new(Body::from(arl.der.clone()));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PKIX_CRL));
    h.insert(
        header::LAST_MODIFIED,
        header_value(&http_date(arl.this_update)),
    );
    h.insert(header::EXPIRES, header_value(&http_date(arl.next_update)));
    h.insert(
        header::CACHE_CONTROL,
        header_value(&format!(
            "public, max-age={}, no-transform",
            max_age(arl.next_update, cap)
        )),
    );
    response
}

#[cfg(test)]
mod tests;
