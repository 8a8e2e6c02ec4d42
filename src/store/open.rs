//! Opening the store of a configuration: the backend `store.backend` names, in its directory
//! under `store.path` (refusing a data directory that holds the other embedded backend's
//! database), or the PostgreSQL database of `store.postgres`.

use std::path::Path;
use std::sync::Arc;

use super::{FjallStore, PostgresStore, SledStore, Store, StoreError, SyncMode, SyncObserver};
use crate::config::{StoreBackend, StoreConfig};

/// Opens the configured backend; `syncs`, if given, is told how long each sync to disk takes
/// (the embedded backends'; PostgreSQL syncs on its own).
///
/// A data directory whose other backend's database directory exists and is not empty is
/// refused: switching `store.backend` would otherwise start an empty store beside the real
/// one. Data moves between backends through a backup and a restore.
pub async fn open(
    config: &StoreConfig,
    syncs: Option<SyncObserver>,
) -> Result<Arc<dyn Store>, StoreError> {
    open_with(config, syncs, SyncMode::EveryWrite).await
}

/// As [`open`], with writes made durable as `mode` says ([`SyncMode::Deferred`] for bulk
/// loads only).
pub async fn open_with(
    config: &StoreConfig,
    syncs: Option<SyncObserver>,
    mode: SyncMode,
) -> Result<Arc<dyn Store>, StoreError> {
    for other in [StoreBackend::Sled, StoreBackend::Fjall] {
        if other != config.backend && config.backend != StoreBackend::Postgres {
            refuse_other(&config.path, config.backend, other)?;
        }
    }
    let path = |backend: StoreBackend| config.path.join(backend.directory().unwrap_or_default());
    Ok(match config.backend {
        StoreBackend::Sled => {
            let store = SledStore::open_with(&path(StoreBackend::Sled), mode)?;
            if let Some(observer) = syncs {
                store.observe_syncs(observer);
            }
            Arc::new(store)
        }
        StoreBackend::Fjall => {
            let store = FjallStore::open_with(
                &path(StoreBackend::Fjall),
                u64::from(config.cache_mib) * 1024 * 1024,
                mode,
            )?;
            if let Some(observer) = syncs {
                store.observe_syncs(observer);
            }
            Arc::new(store)
        }
        StoreBackend::Postgres => Arc::new(PostgresStore::open(&config.postgres, mode).await?),
    })
}

/// Brings the configured store's schema or row format up to date, as opening it does
/// (`estca store migrate`), and says what it found and did.
pub async fn migrate(config: &StoreConfig) -> Result<String, StoreError> {
    match config.backend {
        StoreBackend::Postgres => {
            let migrated = super::postgres::migrate_only(&config.postgres).await?;
            Ok(if migrated.from == migrated.to {
                format!(
                    "the schema of {} is up to date (version {})",
                    config.postgres.url, migrated.to
                )
            } else {
                format!(
                    "migrated the schema of {} from version {} to {}",
                    config.postgres.url, migrated.from, migrated.to
                )
            })
        }
        StoreBackend::Sled | StoreBackend::Fjall => {
            drop(open(config, None).await?);
            Ok(format!(
                "the {} database in {} is up to date",
                config.backend.name(),
                config.path.display()
            ))
        }
    }
}

/// The store configuration `spec` names, `BACKEND:WHERE`: `sled:DIR` or `fjall:DIR` (a data
/// directory, as `store.path`), or `postgres:URL` (as `store.postgres.url`; the password as
/// `store.postgres.*` of `base` says). Everything else comes from `base`.
pub fn located(base: &StoreConfig, spec: &str) -> Result<StoreConfig, StoreError> {
    let invalid = || {
        StoreError::Invalid(format!(
            "'{spec}' names no store: give sled:DIR, fjall:DIR or postgres:URL"
        ))
    };
    let (backend, place) = spec.split_once(':').ok_or_else(invalid)?;
    let mut config = base.clone();
    match backend {
        "sled" | "fjall" if !place.is_empty() => {
            config.backend = if backend == "sled" {
                StoreBackend::Sled
            } else {
                StoreBackend::Fjall
            };
            config.path = place.into();
        }
        "postgres" if !place.is_empty() => {
            config.backend = StoreBackend::Postgres;
            config.postgres.url = place.to_owned();
        }
        _ => return Err(invalid()),
    }
    Ok(config)
}

/// Fails if `data_dir` holds a database of `other`.
fn refuse_other(
    data_dir: &Path,
    configured: StoreBackend,
    other: StoreBackend,
) -> Result<(), StoreError> {
    let Some(other_dir) = other.directory() else {
        return Ok(());
    };
    let dir = data_dir.join(other_dir);
    let holds_something = match std::fs::read_dir(&dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(StoreError::Backend(format!(
                "cannot read {}: {e}",
                dir.display()
            )))
        }
    };
    if holds_something {
        return Err(StoreError::Backend(format!(
            "{} holds a {} database, and store.backend is \"{}\": set store.backend back, or move the data with `estca backup` under the old setting and `estca restore` into an empty data directory under the new one",
            dir.display(),
            other.name(),
            configured.name()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, backend: StoreBackend) -> StoreConfig {
        StoreConfig {
            path: dir.to_owned(),
            backend,
            cache_mib: 8,
            postgres: Default::default(),
        }
    }

    fn contract() -> crate::model::Contract {
        crate::model::Contract {
            code: "5110".parse().unwrap(),
            name: "Customer".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            server_keygen: false,
        }
    }

    fn event() -> crate::model::HistoryEvent {
        crate::model::HistoryEvent {
            at: time::OffsetDateTime::UNIX_EPOCH,
            account: None,
            contract: None,
            kind: crate::model::EventKind::ContractCreate,
            actor: crate::model::Actor::System,
            source: "test".into(),
            outcome: crate::model::Outcome::Ok {
                detail: String::new(),
            },
        }
    }

    #[tokio::test]
    async fn each_backend_opens_its_own_directory_and_refuses_the_others() {
        for (backend, other) in [
            (StoreBackend::Sled, StoreBackend::Fjall),
            (StoreBackend::Fjall, StoreBackend::Sled),
        ] {
            let dir = tempfile::tempdir().unwrap();
            {
                let store = open(&config(dir.path(), backend), None).await.unwrap();
                store.create_contract(contract(), event()).await.unwrap();
                assert!(store.contract(&contract().code).await.unwrap().is_some());
            }
            assert!(dir.path().join(backend.directory().unwrap()).is_dir());
            let refused = open(&config(dir.path(), other), None)
                .await
                .err()
                .map(|e| e.to_string());
            let message = refused.unwrap_or_default();
            assert!(message.contains("store.backend"), "{backend:?}: {message}");
            assert!(message.contains("estca backup"), "{backend:?}: {message}");
            assert!(!dir.path().join(other.directory().unwrap()).exists());
        }
    }
}
