//! The [`Store`](super::Store) on PostgreSQL: one database that several daemons share, the
//! invariants held by the database rather than by any process's memory.
//!
//! # How the invariants hold across daemons
//!
//! Every operation is one transaction at PostgreSQL's default isolation, `READ COMMITTED`,
//! with the rows it decides on locked (`SELECT … FOR UPDATE`) or written with a
//! compare-and-swap (`UPDATE accounts … WHERE version = $n`): a decision taken on a version
//! another daemon has since changed is refused with [`StoreError::Conflict`] and the
//! registration authority decides again on fresh state. Behind the checks, the schema itself
//! refuses what must never be: the serial is the certificates' primary key, the key
//! fingerprint is unique, and a partial unique index allows one current certificate per ID
//! (`migrations/0001_initial.sql`). A serialization failure or a deadlock (which a database
//! speaking PostgreSQL's protocol at a stricter isolation may raise) is a
//! [`StoreError::Conflict`] too.
//!
//! A commit returns once PostgreSQL has made it durable: the store refuses a server whose
//! `fsync` or `synchronous_commit` is off ([`connect`]).
//!
//! History follows commit order ([`history`]); the revocation feed spans daemons through
//! `LISTEN`/`NOTIFY` ([`revocation`]); CRL numbers are drawn under a row lock. The schema is
//! created and upgraded by embedded, numbered migrations ([`migrate`]).

mod accounts;
mod backup;
mod ca_binding;
pub(crate) mod connect;
mod history;
mod issuance;
pub(crate) mod migrate;
mod reads;
mod revocation;
mod rows;
mod writes;

#[cfg(test)]
#[path = "../../../tests/common/postgres.rs"]
pub(crate) mod harness;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool, Transaction};

use super::{StoreError, SyncMode};
use crate::config::PostgresConfig;

/// A [`Store`](super::Store) kept in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    /// Where the database is, for messages (the URL, which holds no password).
    url: String,
    mode: SyncMode,
    /// Bumped after each committed revocation, here or (through `NOTIFY`) on another daemon.
    revocations: Arc<tokio::sync::watch::Sender<u64>>,
    /// Names this handle in its notifications, so that it does not count its own twice.
    instance: String,
    /// The task that listens for other daemons' revocations; stopped with the store.
    listener: tokio::task::AbortHandle,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    /// Connects to the database `config` names, creates or upgrades its schema, and starts
    /// listening for other daemons' revocations. Fails with a message naming the database's
    /// host (never the password) when it cannot be reached, and refuses a schema newer than
    /// this build knows.
    pub async fn open(config: &PostgresConfig, mode: SyncMode) -> Result<Self, StoreError> {
        let target = connect::Target::of(config)?;
        let pool = target.pool(config, mode)?;
        let url = config.url.clone();
        {
            let mut client = connect::first_connection(&pool, &target).await?;
            connect::check_durability(&client, &target, mode).await?;
            migrate::apply(&mut client).await?;
        }
        let revocations = Arc::new(tokio::sync::watch::channel(0).0);
        let instance = revocation::instance_name();
        let listener =
            revocation::listen(target, Arc::clone(&revocations), instance.clone()).await?;
        Ok(Self {
            pool,
            url,
            mode,
            revocations,
            instance,
            listener,
        })
    }

    /// The URL of the database (which holds no password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection from the pool; [`StoreError::Unavailable`] when none can be had.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            let why = match &e {
                deadpool_postgres::PoolError::Backend(e) => describe(e),
                other => other.to_string(),
            };
            StoreError::Unavailable(format!("cannot reach the database {}: {why}", self.url))
        })
    }
}

/// Creates or upgrades the schema of the database `config` names, and nothing else
/// (`estca store migrate`).
pub(crate) async fn migrate_only(config: &PostgresConfig) -> Result<migrate::Migrated, StoreError> {
    let target = connect::Target::of(config)?;
    let pool = target.pool(config, SyncMode::EveryWrite)?;
    let mut client = connect::first_connection(&pool, &target).await?;
    migrate::apply(&mut client).await
}

/// A database of its own on the test server, for one test.
#[cfg(test)]
pub(crate) struct TestDatabase {
    /// The store's configuration: the database's URL and the password file.
    pub(crate) config: PostgresConfig,
    /// Holds the password file.
    _dir: tempfile::TempDir,
}

#[cfg(test)]
impl TestDatabase {
    /// A new, empty database on the shared test server (which must be available).
    pub(crate) fn new() -> Self {
        let server = harness::TestPostgres::shared().expect("a PostgreSQL test server");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = PostgresConfig {
            url: server.url(&server.database()),
            password_file: Some(harness::TestPostgres::password_file(dir.path())),
            pool_size: 8,
            ..PostgresConfig::default()
        };
        Self { config, _dir: dir }
    }

    /// A store handle on the database (each call a new one, as a daemon of its own).
    pub(crate) async fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.config, SyncMode::EveryWrite)
            .await
            .expect("open the PostgreSQL store")
    }
}

/// A database error as a [`StoreError`]: a serialization failure or deadlock is a
/// [`StoreError::Conflict`] (decide again on fresh state); a lost connection or a server
/// shutting down is [`StoreError::Unavailable`] (the transaction was rolled back, or, if the
/// commit itself was cut off, its outcome is unknown); anything else says what failed.
fn db(error: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    match error.code() {
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StoreError::Conflict
        }
        // Class 08: connection exception; class 57: operator intervention (shutdown).
        Some(code) if code.code().starts_with("08") || code.code().starts_with("57") => {
            StoreError::Unavailable(format!("database: {}", describe(&error)))
        }
        None if lost_connection(&error) => {
            StoreError::Unavailable(format!("database: {}", describe(&error)))
        }
        _ => StoreError::Backend(format!("database: {}", describe(&error))),
    }
}

/// Whether `error` is the connection's loss (closed, or an I/O error on its socket).
fn lost_connection(error: &tokio_postgres::Error) -> bool {
    use std::error::Error;
    error.is_closed()
        || error
            .source()
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
}

/// The error and, for a database error, its detail.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(e) => match e.detail() {
            Some(detail) => format!("{} ({detail})", e.message()),
            None => e.message().to_owned(),
        },
        None => {
            // The driver's message, and what caused it (a refused connection, a certificate
            // that does not verify).
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

/// The constraint a unique violation broke, if `error` is one.
fn unique_violation(error: &tokio_postgres::Error) -> Option<&str> {
    let e = error.as_db_error()?;
    (*e.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        .then(|| e.constraint().unwrap_or(""))
}

/// Starts a transaction on `client`.
async fn begin(client: &mut Object) -> Result<Transaction<'_>, StoreError> {
    client.transaction().await.map_err(db)
}

/// Commits `tx`: durable when this returns (in [`SyncMode::EveryWrite`]).
async fn commit(tx: Transaction<'_>) -> Result<(), StoreError> {
    tx.commit().await.map_err(db)
}
