//! The daemon's life under a service manager: signals, reload, and systemd notifications.
//!
//! - SIGHUP re-reads the configuration file given at start. A configuration that does not
//!   load or validate is refused with its reason in the log, and the old one stays in force.
//!   Otherwise the settings that can change live take effect at once (the TLS certificate
//!   and key, re-read even when the file names did not change, for certificate rotation;
//!   the host names of the self-issued certificate; the log level; the shutdown grace
//!   period; the issuing CA's expiry warning lead time): new connections get the new TLS
//!   configuration, open ones keep theirs. Every other changed key is logged as "changed;
//!   takes effect after restart". Every reload checks the issuing CA's expiry again, and
//!   re-reads the root's ARL and checks its nextUpdate.
//! - Every reload reads the issuing CA generations of the CA directory again: after `estca
//!   ca rollover` the new generation signs every certificate from then on, the retired one
//!   goes on signing its CRL and OCSP answers (their first ones are signed before the switch),
//!   and the TLS server accepts client certificates of every generation. A CA directory that
//!   does not load, or that now holds a CA the database does not belong to
//!   ([`crate::ca::binding`]), refuses the reload, and the generations in force stay.
//! - SIGTERM and SIGINT stop the daemon gracefully (see [`RunningDaemon::stop`]).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;

use crate::ca::binding::BindingError;
use crate::config::{Config, ConfigError};
use crate::logging::{LogHandle, LoggingError};
use crate::ra::Clock;
use crate::server::{RunningDaemon, ServeError};
use crate::tls::TlsError;

/// The keys a reload applies to the running daemon.
pub const LIVE_KEYS: &[&str] = &[
    "server.tls_cert",
    "server.tls_key",
    "server.hostnames",
    "server.shutdown_grace_secs",
    "ca.server_cert_validity_days",
    "ca.expiry_warning_days",
    "log.level",
];

/// Why a reload was refused (the old configuration stays in force).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration does not load or validate.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The new TLS certificate or key cannot be used.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The new log level cannot be used.
    #[error("{0}")]
    Logging(#[from] LoggingError),
    /// The issuing CA generations of the CA directory do not load.
    #[error("{0}")]
    Ca(#[from] crate::ca::CaError),
    /// The CA directory now holds a CA the database does not belong to.
    #[error("{0}")]
    Binding(#[from] BindingError),
    /// A new generation's first CRL or OCSP signer could not be made.
    #[error("{0}")]
    Revocation(#[from] crate::revocation::RevocationError),
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Changed keys now in force.
    pub applied: Vec<String>,
    /// Changed keys that take effect after a restart only.
    pub needs_restart: Vec<String>,
}

/// Every leaf of a configuration as `section.key` → value.
fn leaves(config: &Config) -> Vec<(String, Value)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => out.push((prefix.to_owned(), other.clone())),
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::to_value(config) {
        walk("", &value, &mut out);
    }
    out
}

/// The dotted keys whose values differ between two configurations, sorted.
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let old = leaves(old);
    let new = leaves(new);
    let mut keys: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.iter().find(|(ok, _)| ok == k).map(|(_, ov)| ov) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(
            old.iter()
                .filter(|(k, _)| !new.iter().any(|(nk, _)| nk == k))
                .map(|(k, _)| k.clone()),
        )
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

impl RunningDaemon {
    /// Applies `new` to the running daemon as far as it can change live; see the module
    /// documentation. On error nothing changed (a TLS server certificate the CA issued for
    /// it may have been recorded, unused).
    pub async fn reload(&self, new: &Config, log: &LogHandle) -> Result<ReloadReport, ReloadError> {
        // Reloads come one at a time from the signal loop; the lock is not held across the
        // await below.
        let current = self
            .config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let changed = changed_keys(&current, new);
        let (applied, needs_restart): (Vec<String>, Vec<String>) = changed
            .into_iter()
            .partition(|k| LIVE_KEYS.contains(&k.as_str()));

        // Everything that can fail comes first, so that a refusal changes nothing.
        let generations = {
            let current_ca = crate::ca::CertificateAuthority::load(
                &current.ca,
                &current.certificate.common_name_template,
            )?
            .with_public_url(&current.revocation.public_url)?;
            let loaded = crate::server::load_generations(&current, current_ca)?;
            (!loaded.same_as(&self.cas.get())).then_some(loaded)
        };
        if generations.is_some() {
            let database = current.database_location();
            crate::ca::binding::check(
                self.store.bound_ca().await.map_err(BindingError::from)?,
                &crate::ca::binding::CaKeys::read(&current.ca)?,
                crate::ca::binding::BindingPlace {
                    database: &database,
                    ca_dir: &current.ca.dir,
                },
            )?;
        }
        let tls_files = new.server.tls_cert.is_some();
        let tls_changed = applied.iter().any(|k| {
            k.starts_with("server.tls_") || k == "server.hostnames" || k.starts_with("ca.server_")
        });
        let tls = if tls_files || tls_changed || generations.is_some() {
            let in_force = self.cas.get();
            Some(
                crate::tls::server_config(
                    &new.server,
                    generations.as_ref().unwrap_or(&in_force),
                    new.ca.server_cert_validity_days,
                    &*self.store,
                )
                .await?,
            )
        } else {
            None
        };
        if let Some(generations) = &generations {
            self.revocation.sync(generations).await?;
        }
        if current.log.level != new.log.level {
            log.set_level(&new.log.level)?;
        }
        if let Some(generations) = generations {
            tracing::info!(
                current = %generations.current().generation_id(),
                subject_not_after = %crate::model::rfc3339(generations.current().issuing_not_after()),
                previous = generations.previous().len(),
                "new issuing CA generation in force: it signs every new certificate from now on"
            );
            self.cas.replace(generations);
            let ca = self.cas.current();
            match ca.issuance_ends() {
                Ok(ends) => self
                    .metrics
                    .set_issuing_ca_expiry(ca.issuing_not_after(), ends),
                Err(e) => {
                    tracing::error!(error = %e, "cannot tell when the issuing CA stops issuing")
                }
            }
        }

        if let Some(tls) = tls {
            self.tls.store(tls);
        }
        self.grace_secs
            .store(new.server.shutdown_grace_secs, Ordering::SeqCst);
        let mut current = self
            .config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current.server.tls_cert = new.server.tls_cert.clone();
        current.server.tls_key = new.server.tls_key.clone();
        current.server.hostnames = new.server.hostnames.clone();
        current.server.shutdown_grace_secs = new.server.shutdown_grace_secs;
        current.ca.server_cert_validity_days = new.ca.server_cert_validity_days;
        current.ca.expiry_warning_days = new.ca.expiry_warning_days;
        current.log.level = new.log.level.clone();
        drop(current);
        crate::server::check_issuing_ca_expiry(&self.cas.current(), new.ca.expiry_warning_days);
        self.root_crl.check(true);
        Ok(ReloadReport {
            applied,
            needs_restart,
        })
    }
}

/// Runs the daemon until SIGTERM or SIGINT: notifies systemd, pings its watchdog, reloads
/// `config_path` (or the default configuration) on SIGHUP, and stops gracefully.
pub async fn serve_until_signalled(
    config_path: Option<PathBuf>,
    config: Config,
    clock: Arc<dyn Clock>,
    log: LogHandle,
) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| ServeError::Io {
            what: format!("cannot listen for {name}"),
            source: e,
        })
    };
    // Installed before start, so that a signal arriving during start-up is not fatal.
    let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut int = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = listen(SignalKind::hangup(), "SIGHUP")?;

    let daemon = crate::server::start(config, clock).await?;
    crate::notify::ready(&format!("ready: {}", daemon.listeners()));
    let watchdog = crate::notify::watchdog_interval().map(|interval| {
        tracing::info!(
            interval_ms = interval.as_millis() as u64,
            "systemd watchdog enabled"
        );
        tokio::spawn(crate::notify::watchdog(interval))
    });
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
            _ = int.recv() => { tracing::info!("SIGINT received"); break; }
            _ = hup.recv() => {
                crate::notify::reloading();
                let status = reload_from(&daemon, config_path.as_deref(), &log).await;
                crate::notify::reloaded(&status);
            }
        }
    }
    crate::notify::stopping();
    tracing::info!("stopping: finishing in-flight requests");
    let stopped = daemon.stop().await;
    if let Some(task) = watchdog {
        task.abort();
    }
    stopped?;
    tracing::info!("stopped");
    Ok(())
}

/// One SIGHUP: loads, validates and applies; returns a status line for systemd.
async fn reload_from(
    daemon: &RunningDaemon,
    path: Option<&std::path::Path>,
    log: &LogHandle,
) -> String {
    let shown = path.map_or_else(
        || "the default configuration".to_owned(),
        |p| p.display().to_string(),
    );
    let result = match Config::load(path) {
        Ok(new) => daemon.reload(&new, log).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(report) => {
            for key in &report.needs_restart {
                tracing::warn!(key = %key, "changed; takes effect after restart");
            }
            tracing::info!(
                config = %shown,
                applied = %report.applied.join(","),
                "configuration reloaded"
            );
            format!("reloaded {shown}")
        }
        Err(e) => {
            tracing::error!(config = %shown, error = %e, "reload refused; the previous configuration stays in force");
            format!("reload refused: {e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_are_named_by_section() {
        let old = Config::load_from(None, Vec::<(String, String)>::new()).unwrap();
        let mut new = old.clone();
        assert!(changed_keys(&old, &new).is_empty());
        new.log.level = "debug".into();
        new.server.listen = "127.0.0.1:1".parse().unwrap();
        new.server.tls_cert = Some("/x".into());
        assert_eq!(
            changed_keys(&old, &new),
            vec!["log.level", "server.listen", "server.tls_cert"]
        );
    }
}
