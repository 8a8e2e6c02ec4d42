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
/// the same records. Must run inside a multi-threaded Tokio runtime.
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
    Ok(source)
}
