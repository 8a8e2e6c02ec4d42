//! Certificates: serials reserved before signing, issuances committed with the decision the
//! registration authority took, application and service certificates, revocation.

use deadpool_postgres::Transaction;
use time::OffsetDateTime;

use super::accounts::{lock_account, write_account};
use super::history::append;
use super::revocation::notify;
use super::rows::{self, HolderColumns, APP, CERTIFICATE};
use super::{begin, commit, db, unique_violation, PostgresStore};
use crate::model::{AccountId, App, AppName, CertificateRecord, HistoryEvent, Revocation, Serial};
use crate::store::rules;
use crate::store::{IssuedCertificate, NewCertificate, StoreError};

/// How [`insert_certificate`] indexes the certificate's key in `certified_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyIndex {
    /// The key must be new: a concurrent transaction that certifies it first makes this one
    /// fail with [`StoreError::Conflict`].
    New,
    /// Recorded unless already there (a renewal with the same key; a restored backup, whose
    /// older certificates of a key may come after its newer ones).
    IfNew,
}

/// Inserts a certificate row as it is (revoked or not), `is_current` as given, and indexes
/// its key as `key_index` says.
pub(super) async fn insert_certificate(
    tx: &Transaction<'_>,
    record: &CertificateRecord,
    is_current: bool,
    key_index: KeyIndex,
) -> Result<(), StoreError> {
    let holder = HolderColumns::of(&record.holder)?;
    let (not_before, not_before_ns) = rows::split(record.not_before);
    let (not_after, not_after_ns) = rows::split(record.not_after);
    let revoked = record.revocation.map(|r| rows::split(r.at));
    let reason = record
        .revocation
        .map(|r| rows::name_of(&r.reason))
        .transpose()?;
    let statement = tx
        .prepare_cached(
            "INSERT INTO certificates (serial, key_fingerprint, holder_kind, account_id, \
             contract, role, issued_num, app_name, tls_names, is_current, subject, not_before, \
             not_before_ns, not_after, not_after_ns, revoked_at, revoked_at_ns, \
             revocation_reason, der) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15, $16, $17, $18, $19)",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &statement,
        &[
            &&record.serial.as_bytes()[..],
            &&record.key.0[..],
            &holder.kind,
            &holder.account_id,
            &holder.contract,
            &holder.role,
            &holder.issued_num,
            &holder.app_name,
            &holder.tls_names,
            &is_current,
            &record.subject,
            &not_before,
            &not_before_ns,
            &not_after,
            &not_after_ns,
            &revoked.map(|(at, _)| at),
            &revoked.map(|(_, ns)| ns),
            &reason,
            &record.der,
        ],
    )
    .await
    .map_err(|e| match unique_violation(&e) {
        // Another transaction used the serial meanwhile: the caller draws a new one.
        Some(_) => StoreError::Conflict,
        None => db(e),
    })?;
    let sql = match key_index {
        KeyIndex::New => {
            "INSERT INTO certified_keys (key_fingerprint, first_serial) VALUES ($1, $2)"
        }
        KeyIndex::IfNew => {
            "INSERT INTO certified_keys (key_fingerprint, first_serial) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING"
        }
    };
    let statement = tx.prepare_cached(sql).await.map_err(db)?;
    tx.execute(
        &statement,
        &[&&record.key.0[..], &&record.serial.as_bytes()[..]],
    )
    .await
    .map_err(|e| match unique_violation(&e) {
        // Another transaction certified the same key meanwhile: the caller reads again and
        // finds the key taken.
        Some(_) => StoreError::Conflict,
        None => db(e),
    })?;
    Ok(())
}

/// Records a new certificate inside a transaction: its serial must have been reserved and
/// be unused ([`StoreError::Conflict`]), its key never certified ([`StoreError::KeyReused`])
/// unless it renews the key of the certificate it supersedes, `supersedes` (see
/// [`rules::new_certificate`]). The reservation is spent.
async fn record_new(
    tx: &Transaction<'_>,
    record: &CertificateRecord,
    is_current: bool,
    supersedes: Option<&Serial>,
) -> Result<(), StoreError> {
    let serial = &record.serial.as_bytes()[..];
    // Spending the reservation locks it: a concurrent use of the same serial waits, then
    // finds it spent.
    let spend = tx
        .prepare_cached("DELETE FROM reserved_serials WHERE serial = $1")
        .await
        .map_err(db)?;
    let reserved = tx.execute(&spend, &[&serial]).await.map_err(db)? == 1;
    let used = tx
        .prepare_cached("SELECT 1 FROM certificates WHERE serial = $1")
        .await
        .map_err(db)?;
    let used = tx.query_opt(&used, &[&serial]).await.map_err(db)?.is_some();
    let key = tx
        .prepare_cached("SELECT first_serial FROM certified_keys WHERE key_fingerprint = $1")
        .await
        .map_err(db)?;
    let certified_by = tx
        .query_opt(&key, &[&&record.key.0[..]])
        .await
        .map_err(db)?
        .map(|row| rows::serial(&row, "first_serial"))
        .transpose()?;
    let renews_key = match supersedes {
        Some(old) => {
            let same = tx
                .prepare_cached(
                    "SELECT 1 FROM certificates WHERE serial = $1 AND key_fingerprint = $2",
                )
                .await
                .map_err(db)?;
            tx.query_opt(&same, &[&&old.as_bytes()[..], &&record.key.0[..]])
                .await
                .map_err(db)?
                .is_some()
        }
        None => false,
    };
    rules::new_certificate(reserved, used, certified_by, renews_key)?;
    let key_index = if certified_by.is_some() {
        KeyIndex::IfNew
    } else {
        KeyIndex::New
    };
    insert_certificate(tx, record, is_current, key_index).await
}

/// Reads a certificate and locks its row until the transaction ends.
async fn lock_certificate(
    tx: &Transaction<'_>,
    serial: &Serial,
) -> Result<Option<CertificateRecord>, StoreError> {
    let sql = format!("SELECT {CERTIFICATE} FROM certificates WHERE serial = $1 FOR UPDATE");
    let statement = tx.prepare_cached(&sql).await.map_err(db)?;
    tx.query_opt(&statement, &[&&serial.as_bytes()[..]])
        .await
        .map_err(db)?
        .as_ref()
        .map(rows::certificate)
        .transpose()
}

/// Writes the revocation of `record` (revoked, as a rule returned it).
async fn write_revocation(
    tx: &Transaction<'_>,
    record: &CertificateRecord,
) -> Result<(), StoreError> {
    let revocation = record.revocation.ok_or_else(|| {
        StoreError::Backend(format!("certificate {} is not revoked", record.serial))
    })?;
    let (at, at_ns) = rows::split(revocation.at);
    let statement = tx
        .prepare_cached(
            "UPDATE certificates SET revoked_at = $2, revoked_at_ns = $3, \
             revocation_reason = $4 WHERE serial = $1",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &statement,
        &[
            &&record.serial.as_bytes()[..],
            &at,
            &at_ns,
            &rows::name_of(&revocation.reason)?,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

impl PostgresStore {
    pub(super) async fn reserve_serial_now(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (at, at_ns) = rows::split(at);
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO reserved_serials (serial, reserved_at, reserved_at_ns) \
                 SELECT $1, $2, $3 WHERE NOT EXISTS \
                 (SELECT 1 FROM certificates WHERE serial = $1) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(db)?;
        let reserved = client
            .execute(&statement, &[&&serial.as_bytes()[..], &at, &at_ns])
            .await
            .map_err(db)?;
        if reserved == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    pub(super) async fn commit_issuance_now(
        &self,
        issuance: &NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        let NewCertificate {
            expected_version,
            record,
            supersedes,
            event,
            ..
        } = issuance;
        let holder = rules::issuance_holder(issuance)?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let account = rules::issue(lock_account(&tx, holder).await?, issuance)?;
        if let Some(old) = supersedes {
            self.revoke_certificate(&tx, holder, old, rules::supersession(record))
                .await?;
        }
        let no_longer_current = tx
            .prepare_cached(
                "UPDATE certificates SET is_current = false WHERE account_id = $1 AND is_current",
            )
            .await
            .map_err(db)?;
        tx.execute(&no_longer_current, &[&holder.as_str()])
            .await
            .map_err(db)?;
        record_new(&tx, record, true, supersedes.as_ref()).await?;
        write_account(&tx, &account, *expected_version).await?;
        append(&tx, &[event]).await?;
        commit(tx).await?;
        if supersedes.is_some() {
            self.revoked_one();
        }
        Ok(IssuedCertificate::recorded(record.clone(), *supersedes))
    }

    pub(super) async fn create_app_now(
        &self,
        app: &App,
        record: &CertificateRecord,
        event: &HistoryEvent,
    ) -> Result<IssuedCertificate, StoreError> {
        rules::app_certificate(app, record)?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let taken = tx
            .query_opt("SELECT 1 FROM apps WHERE name = $1", &[&app.name.as_str()])
            .await
            .map_err(db)?
            .is_some();
        rules::new_app(app, taken)?;
        record_new(&tx, record, false, None).await?;
        let inserted = insert_app(&tx, app).await?;
        rules::new_app(app, inserted == 0)?;
        append(&tx, &[event]).await?;
        commit(tx).await?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    pub(super) async fn record_service_certificate_now(
        &self,
        record: &CertificateRecord,
    ) -> Result<IssuedCertificate, StoreError> {
        rules::service_certificate(record)?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        record_new(&tx, record, false, None).await?;
        commit(tx).await?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    /// Revokes an application for good; returns it.
    pub(super) async fn revoke_app_now(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: &HistoryEvent,
    ) -> Result<App, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let sql = format!("SELECT {APP} FROM apps WHERE name = $1 FOR UPDATE");
        let stored = tx
            .query_opt(&sql, &[&name.as_str()])
            .await
            .map_err(db)?
            .as_ref()
            .map(rows::app)
            .transpose()?;
        let app = rules::revoke_app(stored, name)?;
        let certificate = lock_certificate(&tx, &app.certificate).await?;
        let revoked_now = match rules::revoke_app_certificate(certificate, revocation) {
            Some(record) => {
                write_revocation(&tx, &record).await?;
                true
            }
            None => false,
        };
        tx.execute(
            "UPDATE apps SET revoked = true WHERE name = $1",
            &[&name.as_str()],
        )
        .await
        .map_err(db)?;
        if revoked_now {
            notify(&tx, &self.instance).await?;
        }
        append(&tx, &[event]).await?;
        commit(tx).await?;
        if revoked_now {
            self.revoked_one();
        }
        Ok(app)
    }

    /// Revokes a certificate of `account` inside a transaction: it must exist, belong to the
    /// account ([`StoreError::NotFound`] otherwise) and be unrevoked ([`StoreError::Conflict`]).
    /// Other daemons are told when the transaction commits.
    pub(super) async fn revoke_certificate(
        &self,
        tx: &Transaction<'_>,
        account: &AccountId,
        serial: &Serial,
        revocation: Revocation,
    ) -> Result<(), StoreError> {
        let stored = lock_certificate(tx, serial).await?;
        let record = rules::revoke_account_certificate(stored, account, serial, revocation)?;
        write_revocation(tx, &record).await?;
        notify(tx, &self.instance).await
    }
}

/// Inserts an application row; returns 0 when the name is taken.
pub(super) async fn insert_app(tx: &Transaction<'_>, app: &App) -> Result<u64, StoreError> {
    let (scope_all, scope_contracts) = rows::scope_columns(&app.scope);
    let (created_at, created_at_ns) = rows::split(app.created_at);
    tx.execute(
        "INSERT INTO apps (name, scope_all, scope_contracts, can_create_contracts, certificate, \
         revoked, created_at, created_at_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT DO NOTHING",
        &[
            &app.name.as_str(),
            &scope_all,
            &scope_contracts,
            &app.can_create_contracts,
            &&app.certificate.as_bytes()[..],
            &app.revoked,
            &created_at,
            &created_at_ns,
        ],
    )
    .await
    .map_err(db)
}
