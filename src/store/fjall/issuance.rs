//! Certificates: serials reserved before signing, issuances committed with the decision the
//! registration authority took, application and service certificates, revocation.

use fjall::WriteTransaction;
use time::OffsetDateTime;

use super::rows::{self, AppRow, CertificateRow, RevokedRow};
use super::{tx_get, FjallStore, APPS, CERTIFICATES, KEYS, RESERVED_SERIALS, REVOKED};
use crate::model::{
    AccountId, App, AppName, CertificateRecord, HistoryEvent, Holder, Revocation, RevocationReason,
    Serial,
};
use crate::store::budget::unix_ms;
use crate::store::{IssuedCertificate, NewCertificate, RevokedCertificate, StoreError};

impl FjallStore {
    /// The certificate as the transaction sees it.
    fn tx_certificate(
        &self,
        tx: &WriteTransaction<'_>,
        serial: &Serial,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let key = serial.as_bytes();
        tx_get(tx, &self.parts.certificates, CERTIFICATES, key)?
            .map(|bytes| rows::read(CERTIFICATES, key, &bytes, CertificateRow::into_record))
            .transpose()
    }

    /// Writes a certificate record and, if revoked, its revocation index entry.
    pub(super) fn tx_put_certificate(
        &self,
        tx: &mut WriteTransaction<'_>,
        record: &CertificateRecord,
    ) -> Result<(), StoreError> {
        let key = record.serial.as_bytes();
        let value = rows::encode(CERTIFICATES, &CertificateRow::of(record))?;
        tx.insert(&self.parts.certificates, key, value);
        if let Some(revocation) = record.revocation {
            let entry = RevokedRow::of(&RevokedCertificate::of(record, revocation));
            tx.insert(&self.parts.revoked, key, rows::encode(REVOKED, &entry)?);
        }
        Ok(())
    }

    pub(super) fn reserve_serial_now(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<((), bool), StoreError> {
        let key = serial.as_bytes();
        self.transact(|tx| {
            if tx_get(tx, &self.parts.reserved_serials, RESERVED_SERIALS, key)?.is_some()
                || tx_get(tx, &self.parts.certificates, CERTIFICATES, key)?.is_some()
            {
                return Err(StoreError::Conflict);
            }
            tx.insert(&self.parts.reserved_serials, key, unix_ms(at).to_be_bytes());
            Ok(((), true))
        })
    }

    pub(super) fn commit_issuance_now(
        &self,
        issuance: &NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        let NewCertificate {
            expected_version,
            record,
            supersedes,
            choice,
            event,
        } = issuance;
        if record.revocation.is_some() {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} as issued: it is marked revoked",
                record.serial
            )));
        }
        let Holder::Account {
            id: holder_id,
            issued_num,
            ..
        } = &record.holder
        else {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} as an ID's: it is not an ID's",
                record.serial
            )));
        };
        let new_version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("account version overflow".into()))?;
        self.transact(|tx| {
            let mut account = self
                .tx_account(tx, holder_id)?
                .ok_or_else(|| StoreError::NotFound(format!("account {holder_id}")))?;
            if account.version != *expected_version
                || account.issued_count.checked_add(1) != Some(*issued_num)
                || supersedes.is_some() && account.current_certificate != *supersedes
            {
                return Err(StoreError::Conflict);
            }
            self.record_new(tx, record)?;
            if let Some(old) = supersedes {
                self.revoke_certificate(
                    tx,
                    holder_id,
                    old,
                    Revocation {
                        at: record.not_before,
                        reason: RevocationReason::Superseded,
                    },
                )?;
            }
            account.current_certificate = Some(record.serial);
            account.issued_count = *issued_num;
            account.choice = *choice;
            account.version = new_version;
            self.tx_put_account(tx, &account)?;
            self.append(tx, event)?;
            Ok(((), true))
        })?;
        if supersedes.is_some() {
            self.revoked_one();
        }
        Ok(IssuedCertificate::recorded(record.clone(), *supersedes))
    }

    pub(super) fn create_app_now(
        &self,
        app: &App,
        record: &CertificateRecord,
        event: &HistoryEvent,
    ) -> Result<IssuedCertificate, StoreError> {
        if record.holder
            != (Holder::App {
                name: app.name.clone(),
            })
            || app.certificate != record.serial
            || record.revocation.is_some()
        {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} for application {}: the record does not match",
                record.serial, app.name
            )));
        }
        let name_key = app.name.as_str().as_bytes();
        let app_value = rows::encode(APPS, &AppRow::of(app))?;
        self.transact(|tx| {
            if tx_get(tx, &self.parts.apps, APPS, name_key)?.is_some() {
                return Err(StoreError::AlreadyExists(format!(
                    "application {}",
                    app.name
                )));
            }
            self.record_new(tx, record)?;
            tx.insert(&self.parts.apps, name_key, app_value);
            self.append(tx, event)?;
            Ok(((), true))
        })?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    pub(super) fn record_service_certificate_now(
        &self,
        record: &CertificateRecord,
    ) -> Result<IssuedCertificate, StoreError> {
        if !record.holder.is_service() || record.revocation.is_some() {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} as a service's: the record does not match",
                record.serial
            )));
        }
        self.transact(|tx| self.record_new(tx, record).map(|()| ((), true)))?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    /// Revokes an application for good; returns it and whether its certificate was revoked
    /// now (and that the transaction wrote).
    pub(super) fn revoke_app_now(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: &HistoryEvent,
    ) -> Result<((App, bool), bool), StoreError> {
        let name_key = name.as_str().as_bytes();
        self.transact(|tx| {
            let mut app = tx_get(tx, &self.parts.apps, APPS, name_key)?
                .map(|bytes| rows::read(APPS, name_key, &bytes, AppRow::into_app))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("application {name}")))?;
            if app.revoked {
                return Err(StoreError::Conflict);
            }
            app.revoked = true;
            let mut revoked_now = false;
            if let Some(mut record) = self.tx_certificate(tx, &app.certificate)? {
                if record.revocation.is_none() {
                    record.revocation = Some(revocation);
                    self.tx_put_certificate(tx, &record)?;
                    revoked_now = true;
                }
            }
            tx.insert(
                &self.parts.apps,
                name_key,
                rows::encode(APPS, &AppRow::of(&app))?,
            );
            self.append(tx, event)?;
            Ok(((app, revoked_now), true))
        })
    }

    /// Records a new certificate inside a transaction: its serial must have been reserved
    /// and be unused ([`StoreError::Conflict`]), its key never certified
    /// ([`StoreError::KeyReused`]). The reservation is spent.
    fn record_new(
        &self,
        tx: &mut WriteTransaction<'_>,
        record: &CertificateRecord,
    ) -> Result<(), StoreError> {
        let serial_key = record.serial.as_bytes();
        if tx_get(
            tx,
            &self.parts.reserved_serials,
            RESERVED_SERIALS,
            serial_key,
        )?
        .is_none()
            || tx_get(tx, &self.parts.certificates, CERTIFICATES, serial_key)?.is_some()
        {
            return Err(StoreError::Conflict);
        }
        if let Some(bytes) = tx_get(tx, &self.parts.keys, KEYS, &record.key.0)? {
            return Err(StoreError::KeyReused(rows::serial(
                KEYS,
                &record.key.0,
                &bytes,
            )?));
        }
        self.tx_put_certificate(tx, record)?;
        tx.insert(&self.parts.keys, record.key.0, *serial_key);
        tx.remove(&self.parts.reserved_serials, *serial_key);
        Ok(())
    }

    /// Revokes a certificate of `account` inside a transaction: it must exist, belong to the
    /// account ([`StoreError::NotFound`] otherwise) and be unrevoked ([`StoreError::Conflict`]).
    pub(super) fn revoke_certificate(
        &self,
        tx: &mut WriteTransaction<'_>,
        account: &AccountId,
        serial: &Serial,
        revocation: Revocation,
    ) -> Result<(), StoreError> {
        let not_found =
            || StoreError::NotFound(format!("certificate {serial} of account {account}"));
        let mut record = self.tx_certificate(tx, serial)?.ok_or_else(not_found)?;
        if record.account() != Some(account) {
            return Err(not_found());
        }
        if record.revocation.is_some() {
            return Err(StoreError::Conflict);
        }
        record.revocation = Some(revocation);
        self.tx_put_certificate(tx, &record)
    }
}
