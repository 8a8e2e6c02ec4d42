//! [`RevocationStore`] on PostgreSQL: the revocation index by pages, CRL numbers drawn under
//! a row lock (for a CRL, held from before reading what it lists), and a change feed that
//! spans daemons.
//!
//! Every revoking transaction also sends `NOTIFY estca_revocations` (delivered only if it
//! commits), its payload naming the store handle that sent it. Each handle keeps one
//! connection of its own listening: a notification from another handle bumps the feed, so
//! the OCSP and CRL publishers of every daemon re-read within moments of a revocation
//! anywhere. When that connection is lost, the listener reconnects (retrying every second),
//! listens again and then bumps the feed once: whatever was revoked while it was not
//! listening is read again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio::sync::watch;

use super::connect::Target;
use super::reads::fetch_limit;
use super::rows::{self, REVOKED};
use super::{begin, commit, db, PostgresStore};
use crate::store::listing::{cursor_position, Listing};
use crate::store::{Page, PageRequest, RevocationStore, RevokedCertificate, StoreError};

/// The notification channel of revocations.
const CHANNEL: &str = "estca_revocations";

/// Draws the next CRL number, one more than the last or the floor `$1` if that is higher
/// (the store's rule `crl_number_after`), under the counter's row lock until the transaction
/// ends.
const DRAW_CRL_NUMBER: &str = "UPDATE counters SET value = GREATEST(value + 1, $1) \
     WHERE name = 'crl_number' RETURNING value";

/// The number [`DRAW_CRL_NUMBER`] returned.
fn drawn_crl_number(row: Option<&tokio_postgres::Row>) -> Result<u64, StoreError> {
    rows::u64_of(
        row.ok_or_else(|| rows::bad("no crl_number counter"))?,
        "value",
    )
}

/// How long the listener waits before connecting again.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// A name for one store handle, unique enough among the daemons sharing a database.
pub(super) fn instance_name() -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 12];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Tells every listening daemon, once `tx` commits, that a revocation was committed.
pub(super) async fn notify(tx: &Transaction<'_>, instance: &str) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached("SELECT pg_notify($1, $2)")
        .await
        .map_err(db)?;
    tx.execute(&statement, &[&CHANNEL, &instance])
        .await
        .map_err(db)?;
    Ok(())
}

/// Listens for other handles' revocations, bumping `feed` for each; returns once the first
/// `LISTEN` is in place (so that nothing committed after the store opened is missed), with
/// the handle that stops the listener.
pub(super) async fn listen(
    target: Target,
    feed: Arc<watch::Sender<u64>>,
    instance: String,
) -> Result<tokio::task::AbortHandle, StoreError> {
    let (client, mut messages) = target.listening_connection().await?;
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(db)?;
    let task = tokio::spawn(async move {
        let mut client = client;
        loop {
            while let Some(from) = messages.recv().await {
                if from != instance {
                    feed.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            // The connection is gone: listen again, then have everyone re-read.
            drop(client);
            loop {
                tokio::time::sleep(RECONNECT_DELAY).await;
                let Ok((again, forwarded)) = target.listening_connection().await else {
                    continue;
                };
                messages = forwarded;
                if again
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    client = again;
                    break;
                }
            }
            tracing::info!(database = target.shown(), "listening for revocations again");
            feed.send_modify(|n| *n = n.wrapping_add(1));
        }
    });
    Ok(task.abort_handle())
}

impl PostgresStore {
    /// Tells this handle's subscribers that a revocation was committed here.
    pub(super) fn revoked_one(&self) {
        self.revocations.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[async_trait]
impl RevocationStore for PostgresStore {
    async fn revoked_certificates(
        &self,
        page: PageRequest,
    ) -> Result<Page<RevokedCertificate>, StoreError> {
        let after = match &page.after {
            Some(cursor) => Some(cursor_position(cursor, Listing::Revoked, &[])?.to_vec()),
            None => None,
        };
        let sql = format!(
            "SELECT {REVOKED} FROM certificates WHERE revoked_at IS NOT NULL \
             AND ($1::bytea IS NULL OR serial > $1) ORDER BY serial LIMIT $2"
        );
        let rows = self.rows(&sql, &[&after, &fetch_limit(page.limit)]).await?;
        Self::page_of(
            &rows,
            page.limit,
            Listing::Revoked,
            &[],
            |row| Ok(rows::get::<&[u8]>(row, "serial")?.to_vec()),
            rows::revoked,
        )
    }

    async fn next_crl_number(&self, floor: u64) -> Result<u64, StoreError> {
        // One statement, committed (durably) before it returns: the row lock makes concurrent
        // callers on every daemon take turns, each drawing the number after the last.
        let floor = rows::to_i64(floor)?;
        drawn_crl_number(self.rows(DRAW_CRL_NUMBER, &[&floor]).await?.first())
    }

    /// One transaction: the counter's row lock first, then the read, then the draw. A
    /// daemon building a CRL at the same moment waits at the lock until this one committed
    /// its number, and its own read (each statement sees what was committed before it
    /// began) then lists every revocation this one's did.
    async fn revoked_for_crl(
        &self,
        floor: u64,
    ) -> Result<(Vec<RevokedCertificate>, u64), StoreError> {
        let floor = rows::to_i64(floor)?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        tx.execute(
            "SELECT value FROM counters WHERE name = 'crl_number' FOR UPDATE",
            &[],
        )
        .await
        .map_err(db)?;
        let revoked = tx
            .query(
                &format!(
                    "SELECT {REVOKED} FROM certificates WHERE revoked_at IS NOT NULL \
                     ORDER BY serial"
                ),
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(rows::revoked)
            .collect::<Result<Vec<_>, _>>()?;
        let number = drawn_crl_number(
            tx.query_opt(DRAW_CRL_NUMBER, &[&floor])
                .await
                .map_err(db)?
                .as_ref(),
        )?;
        commit(tx).await?;
        Ok((revoked, number))
    }

    fn revocations(&self) -> watch::Receiver<u64> {
        self.revocations.subscribe()
    }
}
