//! Copying every record of one store into another, empty one (`estca store copy`): moving an
//! installation from sled to PostgreSQL, or back. The copy is verified by exporting both
//! stores afterwards and comparing the two exports line for line (their digests, in the
//! backup file's line format).

use std::collections::BTreeSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::backup::BackupWriter;
use super::{Store, StoreError, StoreRecord};
use crate::model::Serial;

/// Records handed to the destination per import (each one transaction, durable).
const BATCH: usize = 1000;

/// Batches in flight between the export and the import.
const IN_FLIGHT: usize = 4;

/// What a copy moved, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Records copied (and found alike in both stores afterwards).
    pub records: u64,
    /// SHA-256 of the records' lines, hex, the same for both stores.
    pub sha256: String,
}

/// The digest of an export, certificates in `skip` left out.
async fn digest(store: &dyn Store, skip: &BTreeSet<Serial>) -> Result<Copied, StoreError> {
    let mut writer = BackupWriter::new();
    let mut hasher = Sha256::new();
    let mut records = 0;
    store
        .export(&mut |record| {
            if let StoreRecord::Certificate(c) = &record {
                if skip.contains(&c.serial) {
                    return Ok(());
                }
            }
            hasher.update(writer.record(&record)?);
            records += 1;
            Ok(())
        })
        .await?;
    Ok(Copied {
        records,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Copies every record of `from` into `to`, which must hold nothing but the certificates of
/// estca's own services (recorded by a daemon's start), then verifies that both now export
/// the same records, and binds `to` to the CA `from` is bound to
/// ([`CaBinding`](super::CaBinding)). Must run inside a multi-threaded Tokio runtime.
pub async fn copy(from: Arc<dyn Store>, to: Arc<dyn Store>) -> Result<Copied, StoreError> {
    if !to.is_empty().await? {
        return Err(StoreError::Invalid(
            "the destination store is not empty: copy only into an empty one".into(),
        ));
    }
    // The destination's own service certificates are not the source's.
    let mut theirs = BTreeSet::new();
    to.export(&mut |record| {
        if let StoreRecord::Certificate(c) = record {
            theirs.insert(c.serial);
        }
        Ok(())
    })
    .await?;

    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<StoreRecord>>(IN_FLIGHT);
    let runtime = tokio::runtime::Handle::current();
    let source = Arc::clone(&from);
    // The export runs on a thread of its own, handing batches over as the import takes them.
    let exporting = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        runtime.block_on(source.export(&mut |record| {
            batch.push(record);
            if batch.len() == BATCH {
                sender
                    .send(std::mem::take(&mut batch))
                    .map_err(|_| StoreError::Backend("the import stopped".into()))?;
            }
            Ok(())
        }))?;
        if !batch.is_empty() {
            sender
                .send(batch)
                .map_err(|_| StoreError::Backend("the import stopped".into()))?;
        }
        Ok::<(), StoreError>(())
    });
    let mut copied = 0u64;
    while let Ok(batch) = tokio::task::block_in_place(|| receiver.recv()) {
        copied += batch.len() as u64;
        to.import(batch).await?;
    }
    exporting
        .await
        .map_err(|e| StoreError::Backend(format!("the export failed: {e}")))??;
    to.sync_all().await?;

    let source = digest(&*from, &BTreeSet::new()).await?;
    let destination = digest(&*to, &theirs).await?;
    if source != destination || source.records != copied {
        return Err(StoreError::Backend(format!(
            "the copy differs from its source: {} records (sha256 {}) copied from {} (sha256 {}); the destination holds a partial copy: empty it before trying again",
            destination.records, destination.sha256, source.records, source.sha256
        )));
    }
    // The records belong to the source's CA: so does their new home.
    if let Some(key) = from.bound_ca().await? {
        to.rebind_ca(key).await?;
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppScope, EventKind, Holder};
    use crate::store::conformance::fixtures::*;
    use crate::store::postgres::{harness::TestPostgres, TestDatabase};
    use crate::store::{FjallStore, SledStore};

    /// A store holding one of everything: contracts, IDs with superseded and current
    /// certificates, an application, a service certificate, history and a CRL number.
    async fn filled(store: &dyn Store) {
        let names = ["nozawa1", "nozawa2"];
        add_accounts(store, &names).await;
        for (n, name) in names.into_iter().enumerate() {
            let base = 10 * n as u8;
            issue(store, 0, record(base + 1, name, 1, base + 1, 100), None)
                .await
                .unwrap();
            issue(
                store,
                1,
                record(base + 2, name, 2, base + 2, 200),
                Some(serial(base + 1)),
            )
            .await
            .unwrap();
        }
        let app_record = crate::model::CertificateRecord {
            holder: Holder::App {
                name: "portal".parse().unwrap(),
            },
            ..record(50, "nozawa1", 1, 50, 300)
        };
        store
            .reserve_serial(app_record.serial, at(300))
            .await
            .unwrap();
        let app = crate::model::App {
            name: "portal".parse().unwrap(),
            scope: AppScope::Contracts(vec![code("5110")]),
            can_create_contracts: false,
            certificate: app_record.serial,
            revoked: false,
            created_at: at(300) + time::Duration::nanoseconds(123_456_789),
        };
        store
            .create_app(
                app,
                app_record,
                event(EventKind::AppCreate, None, None, 300),
            )
            .await
            .unwrap();
        let service = crate::model::CertificateRecord {
            holder: Holder::OcspSigner,
            ..record(60, "nozawa1", 1, 60, 400)
        };
        store
            .reserve_service_serial(service.serial, at(400))
            .await
            .unwrap();
        store.record_service_certificate(service).await.unwrap();
        store.next_crl_number(0).await.unwrap();
        store.next_crl_number(0).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sled_to_postgres_and_back_to_fjall_copies_every_record() {
        if TestPostgres::shared().is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let sled: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
        filled(&*sled).await;
        let ca = crate::model::KeyFingerprint([7; 32]);
        sled.bind_ca(ca).await.unwrap();
        let db = TestDatabase::new();
        let postgres: Arc<dyn Store> = Arc::new(db.open().await);
        // A start on the empty destination bound it to the CA of that daemon.
        postgres
            .bind_ca(crate::model::KeyFingerprint([8; 32]))
            .await
            .unwrap();
        let there = copy(Arc::clone(&sled), Arc::clone(&postgres))
            .await
            .unwrap();
        // 1 contract, 2 accounts, 6 certificates, 1 app, 8 history entries, the CRL number.
        assert_eq!(there.records, 19);
        let fjall: Arc<dyn Store> =
            Arc::new(FjallStore::open(&dir.path().join("fjall"), 8 << 20).unwrap());
        let back = copy(Arc::clone(&postgres), Arc::clone(&fjall))
            .await
            .unwrap();
        assert_eq!(back, there);
        // The copies belong to the source's CA.
        assert_eq!(postgres.bound_ca().await.unwrap(), Some(ca));
        assert_eq!(fjall.bound_ca().await.unwrap(), Some(ca));
        // What was copied behaves as the original: the next history entry comes after the
        // copied ones, the CRL number goes on upwards, the ID renews on its version.
        assert_eq!(postgres.next_crl_number(0).await.unwrap(), 3);
        issue(
            &*postgres,
            2,
            record(3, "nozawa1", 3, 3, 500),
            Some(serial(2)),
        )
        .await
        .unwrap();
        let history = all_history(&*postgres, Default::default()).await;
        assert_eq!(history.len(), 9);
        assert_eq!(history[0].seq, 9);

        // A destination that holds something is refused.
        let refused = copy(Arc::clone(&sled), Arc::clone(&postgres)).await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );
    }
}
