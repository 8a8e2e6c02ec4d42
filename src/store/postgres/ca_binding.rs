//! [`CaBinding`] on PostgreSQL: the one row of `ca_binding`, shared by every daemon.

use async_trait::async_trait;

use super::rows;
use super::PostgresStore;
use crate::model::KeyFingerprint;
use crate::store::{CaBinding, StoreError};

#[async_trait]
impl CaBinding for PostgresStore {
    async fn bound_ca(&self) -> Result<Option<KeyFingerprint>, StoreError> {
        let rows = self.rows("SELECT key_sha256 FROM ca_binding", &[]).await?;
        rows.first()
            .map(|row| rows::key_fingerprint(row, "key_sha256"))
            .transpose()
    }

    async fn bind_ca(&self, key: KeyFingerprint) -> Result<KeyFingerprint, StoreError> {
        // Two statements, each its own committed transaction: the insert of a daemon that
        // loses the race waits for the winner's to commit and does nothing, and the select
        // after it (a new snapshot) then reads the winner's key.
        self.rows(
            "INSERT INTO ca_binding (key_sha256) VALUES ($1) ON CONFLICT (only_row) DO NOTHING",
            &[&key.0.as_slice()],
        )
        .await?;
        self.bound_ca()
            .await?
            .ok_or_else(|| rows::bad("ca_binding is empty right after it was written"))
    }

    async fn rebind_ca(&self, key: KeyFingerprint) -> Result<(), StoreError> {
        self.rows(
            "INSERT INTO ca_binding (key_sha256) VALUES ($1) \
             ON CONFLICT (only_row) DO UPDATE SET key_sha256 = EXCLUDED.key_sha256",
            &[&key.0.as_slice()],
        )
        .await?;
        Ok(())
    }
}
