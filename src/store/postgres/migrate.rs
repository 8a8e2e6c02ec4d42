//! The schema: numbered migrations embedded in the binary, applied in order at start (and by
//! `estca store migrate`), each recorded in the table `estca_schema`. A database whose schema
//! is newer than this build knows is refused: an older daemon must not write rows whose
//! meaning it does not know.

use deadpool_postgres::Object;

use crate::store::StoreError;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_same_key_renewal.sql"),
    include_str!("migrations/0003_contract_server_keygen.sql"),
    include_str!("migrations/0004_removed_ids.sql"),
    include_str!("migrations/0005_ca_binding.sql"),
];

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Serializes migrating daemons: the key of a transaction-scoped advisory lock.
const MIGRATION_LOCK: i64 = 0x6573_7463_615f_6d67; // "estca_mg"

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version found (0: an empty database).
    pub from: i32,
    /// The schema version now.
    pub to: i32,
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction (several daemons starting at
/// once take turns), or refuses a schema newer than that.
pub(crate) async fn apply(client: &mut Object) -> Result<Migrated, StoreError> {
    let tx = client.transaction().await.map_err(super::db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(super::db)?;
    // `CREATE TABLE IF NOT EXISTS` on an existing table (every start but the first) sends a
    // NOTICE ("relation \"estca_schema\" already exists, skipping"), which the driver logs at
    // info on every start: noise, nothing to act on. Notices are turned off for this
    // transaction only (`SET LOCAL` ends with it, so the pooled connection is unchanged);
    // warnings and errors still come through.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await
        .map_err(super::db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS estca_schema (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(super::db)?;
    let from: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM estca_schema", &[])
        .await
        .map_err(super::db)?
        .get(0);
    if from > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "the database's schema is version {from}, newer than this estca knows (version {SCHEMA_VERSION}): a newer estca upgraded it; run that version (or newer), never an older one, on this database"
        )));
    }
    for (version, sql) in (1..).zip(MIGRATIONS.iter()).skip(from as usize) {
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Backend(format!(
                "cannot apply schema migration {version}: {}",
                super::describe(&e)
            ))
        })?;
        tx.execute(
            "INSERT INTO estca_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(super::db)?;
    }
    tx.commit().await.map_err(super::db)?;
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION,
    })
}
