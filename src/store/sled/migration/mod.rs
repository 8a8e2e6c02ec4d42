//! The format of the rows, and the migration of an older database at open.
//!
//! `meta/format` says how the rows of a database are written: absent or [`JSON_ROWS`] in a
//! database written before binary rows (estca up to the storage rebuild), [`BINARY_ROWS`]
//! from then on. At open:
//!
//! - a database marked with a newer format than [`FORMAT`] is refused (an older estca must
//!   not misread rows it does not know);
//! - a database of JSON rows is converted in place, tree by tree, row by row, then synced,
//!   then marked [`BINARY_ROWS`] and synced again. Each row is replaced atomically and says
//!   by its first byte which form it is in (JSON starts with `{`, a binary row with its
//!   version byte), so a migration interrupted by a crash leaves rows of both forms under the
//!   old marker, and the next open converts the rest: it is resumed, and no reader ever runs
//!   on a half-converted database because the marker is set last;
//! - a new, empty database is marked [`BINARY_ROWS`].

use super::rows::legacy::{to_binary, JSON_TREES};
use super::{storage, SledStore, META};
use crate::store::rows::{is_binary_row, u64_be, JSON_ROW};
use crate::store::StoreError;

/// `meta` key of the format marker.
const META_FORMAT: &[u8] = b"format";

/// Rows as JSON (the model's serde derives), before the storage rebuild.
const JSON_ROWS: u64 = 1;
/// Rows as a version byte and postcard ([`crate::store::rows`]).
const BINARY_ROWS: u64 = 2;
/// The newest format this build reads and the one it writes.
pub(super) const FORMAT: u64 = BINARY_ROWS;

/// `meta` keys of the markers of estca before the storage rebuild, replaced by `indexes`.
const OBSOLETE_MARKERS: [&[u8]; 2] = [b"revoked_index", b"folded_ids_index"];

impl SledStore {
    /// The format the database is marked with: absent means written before the marker.
    pub(super) fn format(&self) -> Result<u64, StoreError> {
        match self.meta.get(META_FORMAT).map_err(|e| storage(META, e))? {
            Some(bytes) => u64_be(META, META_FORMAT, &bytes),
            None => Ok(JSON_ROWS),
        }
    }

    /// Brings the database to [`FORMAT`], or refuses one that is newer.
    pub(super) fn migrate(&self) -> Result<(), StoreError> {
        let format = self.format()?;
        if format > FORMAT {
            return Err(StoreError::Backend(format!(
                "the database at {} is in format {format}, written by a newer estca; this one reads formats up to {FORMAT}: run the newer estca, or restore a backup with this one",
                self.path.display()
            )));
        }
        if format == FORMAT {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut converted = 0u64;
        for name in JSON_TREES {
            let tree = self.db.open_tree(name).map_err(|e| storage(name, e))?;
            for item in tree.iter() {
                let (key, value) = item.map_err(|e| storage(name, e))?;
                match value.first() {
                    Some(&JSON_ROW) => {
                        let row = to_binary(name, &key, &value)?;
                        tree.insert(&key, row).map_err(|e| storage(name, e))?;
                        converted += 1;
                    }
                    // Converted by an earlier, interrupted migration.
                    Some(&first) if is_binary_row(first) => {}
                    _ => {
                        return Err(super::corrupt(
                            name,
                            &key,
                            "neither a JSON row nor a binary one",
                        ))
                    }
                }
            }
        }
        for marker in OBSOLETE_MARKERS {
            self.meta.remove(marker).map_err(|e| storage(META, e))?;
        }
        self.sync_blocking()?;
        self.meta
            .insert(META_FORMAT, &FORMAT.to_be_bytes())
            .map_err(|e| storage(META, e))?;
        self.sync_blocking()?;
        if converted > 0 {
            tracing::info!(
                path = %self.path.display(),
                rows = converted,
                seconds = started.elapsed().as_secs_f64(),
                "migrated the store from JSON rows to binary rows (format {FORMAT})"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
