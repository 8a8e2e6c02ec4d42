//! [`BackupStore`] on PostgreSQL: an export read from one snapshot (a `REPEATABLE READ`
//! transaction, writers go on meanwhile) through cursors, and an import into an empty store,
//! one transaction per batch.

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::accounts::insert_account;
use super::issuance::{insert_app, insert_certificate, KeyIndex};
use super::reads::Convert;
use super::rows::{self, ACCOUNT, APP, CERTIFICATE, CONTRACT, HISTORY};
use super::{begin, commit, db, PostgresStore};
use crate::store::{BackupStore, StoreError, StoreRecord, SyncMode};

/// Rows fetched from an export cursor at a time.
const FETCH: usize = 1000;

type Sink<'s> = &'s mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send);

/// Hands every row of `sql` to `sink`, converted, reading through a cursor in `tx`.
async fn export_rows<T>(
    tx: &Transaction<'_>,
    sql: &str,
    into: Convert<T>,
    wrap: fn(T) -> StoreRecord,
    sink: Sink<'_>,
) -> Result<(), StoreError> {
    tx.batch_execute(&format!("DECLARE export NO SCROLL CURSOR FOR {sql}"))
        .await
        .map_err(db)?;
    loop {
        let rows: Vec<Row> = tx
            .query(&format!("FETCH {FETCH} FROM export"), &[])
            .await
            .map_err(db)?;
        for row in &rows {
            sink(wrap(into(row)?))?;
        }
        if rows.len() < FETCH {
            break;
        }
    }
    tx.batch_execute("CLOSE export").await.map_err(db)
}

/// Writes one exported record as it was.
async fn import_one(tx: &Transaction<'_>, record: StoreRecord) -> Result<(), StoreError> {
    match record {
        StoreRecord::Contract(c) => {
            let (created_at, created_at_ns) = rows::split(c.created_at);
            tx.execute(
                "INSERT INTO contracts (code, name, created_at, created_at_ns, server_keygen) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &c.code.as_str(),
                    &c.name,
                    &created_at,
                    &created_at_ns,
                    &c.server_keygen,
                ],
            )
            .await
            .map_err(db)?;
        }
        StoreRecord::Account(a) => {
            if insert_account(tx, &a, a.version).await? == 0 {
                return Err(StoreError::AlreadyExists(format!("account {}", a.id)));
            }
            // Two IDs that differ by case only (from an older estca) both stay; no new one
            // like them can be created.
            tx.execute(
                "INSERT INTO account_ids_folded (folded) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&a.id.case_folded()],
            )
            .await
            .map_err(db)?;
        }
        StoreRecord::Certificate(record) => {
            let is_current = match record.account() {
                Some(id) => tx
                    .query_opt(
                        "SELECT 1 FROM accounts WHERE id = $1 AND current_certificate = $2",
                        &[&id.as_str(), &&record.serial.as_bytes()[..]],
                    )
                    .await
                    .map_err(db)?
                    .is_some(),
                None => false,
            };
            insert_certificate(tx, &record, is_current, KeyIndex::IfNew).await?;
        }
        StoreRecord::App(app) => {
            if insert_app(tx, &app).await? == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "application {}",
                    app.name
                )));
            }
        }
        StoreRecord::History(entry) => {
            let seq = rows::to_i64(entry.seq)?;
            super::history::insert(tx, seq, &entry.event).await?;
            // New entries are numbered after every imported one.
            tx.execute(
                "UPDATE counters SET value = greatest(value, $1) WHERE name = 'history_seq'",
                &[&seq],
            )
            .await
            .map_err(db)?;
        }
        StoreRecord::CrlNumber(number) => {
            tx.execute(
                "UPDATE counters SET value = $1 WHERE name = 'crl_number'",
                &[&rows::to_i64(number)?],
            )
            .await
            .map_err(db)?;
        }
    }
    Ok(())
}

#[async_trait]
impl BackupStore for PostgresStore {
    async fn export(&self, sink: Sink<'_>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        export_rows(
            &tx,
            &format!("SELECT {CONTRACT} FROM contracts ORDER BY code"),
            rows::contract,
            StoreRecord::Contract,
            sink,
        )
        .await?;
        export_rows(
            &tx,
            &format!("SELECT {ACCOUNT} FROM accounts ORDER BY id"),
            rows::account,
            StoreRecord::Account,
            sink,
        )
        .await?;
        export_rows(
            &tx,
            &format!("SELECT {CERTIFICATE} FROM certificates ORDER BY serial"),
            rows::certificate,
            StoreRecord::Certificate,
            sink,
        )
        .await?;
        export_rows(
            &tx,
            &format!("SELECT {APP} FROM apps ORDER BY name"),
            rows::app,
            StoreRecord::App,
            sink,
        )
        .await?;
        export_rows(
            &tx,
            &format!("SELECT {HISTORY} FROM history ORDER BY seq"),
            rows::history,
            StoreRecord::History,
            sink,
        )
        .await?;
        let crl_number = tx
            .query_one("SELECT value FROM counters WHERE name = 'crl_number'", &[])
            .await
            .map_err(db)?;
        let crl_number = rows::u64_of(&crl_number, "value")?;
        if crl_number > 0 {
            sink(StoreRecord::CrlNumber(crl_number))?;
        }
        tx.commit().await.map_err(db)
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        // Service certificates (recorded at every start) do not count; anything else does.
        let rows = self
            .rows(
                "SELECT NOT EXISTS (SELECT 1 FROM contracts) AND NOT EXISTS (SELECT 1 FROM accounts) \
                 AND NOT EXISTS (SELECT 1 FROM apps) AND NOT EXISTS (SELECT 1 FROM history) \
                 AND NOT EXISTS (SELECT 1 FROM certificates \
                     WHERE holder_kind NOT IN ('tls_server', 'ocsp_signer')) AS empty",
                &[],
            )
            .await?;
        let row = rows.first().ok_or_else(|| rows::bad("no answer"))?;
        rows::get(row, "empty")
    }

    async fn import(&self, records: Vec<StoreRecord>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        for record in records {
            import_one(&tx, record).await?;
        }
        commit(tx).await
    }

    async fn sync_all(&self) -> Result<(), StoreError> {
        if self.mode == SyncMode::EveryWrite {
            return Ok(());
        }
        // A transaction that commits synchronously flushes the write-ahead log up to its
        // commit record, and with it every commit made before it.
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        tx.batch_execute("SET LOCAL synchronous_commit = on; SELECT pg_current_xact_id()")
            .await
            .map_err(db)?;
        commit(tx).await
    }
}
