//! Opening the store of a configuration: the backend `store.backend` names, in its directory
//! under `store.path`, refusing a data directory that holds the other backend's database.

use std::path::Path;
use std::sync::Arc;

use super::{FjallStore, SledStore, Store, StoreError, SyncMode, SyncObserver};
use crate::config::{StoreBackend, StoreConfig};

/// Opens the configured backend; `syncs`, if given, is told how long each sync to disk takes.
///
/// A data directory whose other backend's database directory exists and is not empty is
/// refused: switching `store.backend` would otherwise start an empty store beside the real
/// one. Data moves between backends through a backup and a restore.
pub fn open(
    config: &StoreConfig,
    syncs: Option<SyncObserver>,
) -> Result<Arc<dyn Store>, StoreError> {
    open_with(config, syncs, SyncMode::EveryWrite)
}

/// As [`open`], with writes made durable as `mode` says ([`SyncMode::Deferred`] for bulk
/// loads only).
pub fn open_with(
    config: &StoreConfig,
    syncs: Option<SyncObserver>,
    mode: SyncMode,
) -> Result<Arc<dyn Store>, StoreError> {
    let other = match config.backend {
        StoreBackend::Sled => StoreBackend::Fjall,
        StoreBackend::Fjall => StoreBackend::Sled,
    };
    refuse_other(&config.path, config.backend, other)?;
    let path = config.path.join(config.backend.directory());
    Ok(match config.backend {
        StoreBackend::Sled => {
            let store = SledStore::open_with(&path, mode)?;
            if let Some(observer) = syncs {
                store.observe_syncs(observer);
            }
            Arc::new(store)
        }
        StoreBackend::Fjall => {
            let store =
                FjallStore::open_with(&path, u64::from(config.cache_mib) * 1024 * 1024, mode)?;
            if let Some(observer) = syncs {
                store.observe_syncs(observer);
            }
            Arc::new(store)
        }
    })
}

/// Fails if `data_dir` holds a database of `other`.
fn refuse_other(
    data_dir: &Path,
    configured: StoreBackend,
    other: StoreBackend,
) -> Result<(), StoreError> {
    let dir = data_dir.join(other.directory());
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
            name(other),
            name(configured)
        )));
    }
    Ok(())
}

fn name(backend: StoreBackend) -> &'static str {
    match backend {
        StoreBackend::Sled => "sled",
        StoreBackend::Fjall => "fjall",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, backend: StoreBackend) -> StoreConfig {
        StoreConfig {
            path: dir.to_owned(),
            backend,
            cache_mib: 8,
        }
    }

    fn contract() -> crate::model::Contract {
        crate::model::Contract {
            code: "5110".parse().unwrap(),
            name: "Customer".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
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
                let store = open(&config(dir.path(), backend), None).unwrap();
                store.create_contract(contract(), event()).await.unwrap();
                assert!(store.contract(&contract().code).await.unwrap().is_some());
            }
            assert!(dir.path().join(backend.directory()).is_dir());
            let refused = open(&config(dir.path(), other), None)
                .err()
                .map(|e| e.to_string());
            let message = refused.unwrap_or_default();
            assert!(message.contains("store.backend"), "{backend:?}: {message}");
            assert!(message.contains("estca backup"), "{backend:?}: {message}");
            assert!(!dir.path().join(other.directory()).exists());
        }
    }
}
