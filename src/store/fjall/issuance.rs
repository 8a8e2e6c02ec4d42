//! Certificates: serials reserved before signing, issuances committed with the decision the
//! registration authority took, application and service certificates, revocation.

use fjall::WriteTransaction;
use time::OffsetDateTime;

use super::{tx_get, FjallStore, APPS, CERTIFICATES, KEYS, RESERVED_SERIALS};
use crate::model::{AccountId, App, AppName, CertificateRecord, HistoryEvent, Revocation, Serial};
use crate::store::budget::unix_ms;
use crate::store::rows::{self, Stored};
use crate::store::{rules, IssuedCertificate, NewCertificate, RevokedCertificate, StoreError};

impl FjallStore {
    /// The certificate as the transaction sees it.
    fn tx_certificate(
        &self,
        tx: &WriteTransaction<'_>,
        serial: &Serial,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let key = serial.as_bytes();
        tx_get(tx, &self.parts.certificates, CERTIFICATES, key)?
            .map(|bytes| CertificateRecord::decode(key, &bytes))
            .transpose()
    }

    /// Writes a certificate record and, if revoked, its revocation index entry.
    pub(super) fn tx_put_certificate(
        &self,
        tx: &mut WriteTransaction<'_>,
        record: &CertificateRecord,
    ) -> Result<(), StoreError> {
        let key = record.serial.as_bytes();
        let value = CertificateRecord::encode(record)?;
        tx.insert(&self.parts.certificates, key, value);
        if let Some(entry) = rules::revocation_entry(record) {
            let value = RevokedCertificate::encode(&entry)?;
            tx.insert(&self.parts.revoked, key, value);
        }
        Ok(())
    }

    pub(super) fn reserve_serial_now(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
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
        .map(|(out, _)| out)
    }

    /// Commits an issuance and returns once it is durable (one transaction each; fjall's
    /// group commit shares the syncs).
    pub(in crate::store) async fn commit_issuance_durably(
        &self,
        issuance: NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        crate::store::writes::always_durably(self, || self.commit_issuance_now(&issuance)).await
    }

    fn commit_issuance_now(
        &self,
        issuance: &NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        let NewCertificate {
            record,
            supersedes,
            event,
            ..
        } = issuance;
        let holder_id = rules::issuance_holder(issuance)?;
        self.transact(|tx| {
            let account = rules::issue(self.tx_account(tx, holder_id)?, issuance)?;
            let renews_key = match supersedes {
                Some(old) => self
                    .tx_certificate(tx, old)?
                    .is_some_and(|old| old.key == record.key),
                None => false,
            };
            self.record_new(tx, record, renews_key)?;
            if let Some(old) = supersedes {
                self.revoke_certificate(tx, holder_id, old, rules::supersession(record))?;
            }
            self.tx_put_account(tx, &account)?;
            self.append(tx, event)?;
            Ok(((), true))
        })?;
        Ok(IssuedCertificate::recorded(record.clone(), *supersedes))
    }

    pub(super) fn create_app_now(
        &self,
        app: &App,
        record: &CertificateRecord,
        event: &HistoryEvent,
    ) -> Result<IssuedCertificate, StoreError> {
        rules::app_certificate(app, record)?;
        let name_key = app.name.as_str().as_bytes();
        let app_value = App::encode(app)?;
        self.transact(|tx| {
            rules::new_app(app, tx_get(tx, &self.parts.apps, APPS, name_key)?.is_some())?;
            self.record_new(tx, record, false)?;
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
        rules::service_certificate(record)?;
        self.transact(|tx| self.record_new(tx, record, false).map(|()| ((), true)))?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    /// Revokes an application for good; returns it and whether its certificate was revoked
    /// now (and that the transaction wrote).
    pub(super) fn revoke_app_now(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: &HistoryEvent,
    ) -> Result<(App, bool), StoreError> {
        let name_key = name.as_str().as_bytes();
        self.transact(|tx| {
            let stored = tx_get(tx, &self.parts.apps, APPS, name_key)?
                .map(|bytes| App::decode(name_key, &bytes))
                .transpose()?;
            let app = rules::revoke_app(stored, name)?;
            let stored = self.tx_certificate(tx, &app.certificate)?;
            let certificate = rules::revoke_app_certificate(stored, revocation);
            if let Some(record) = &certificate {
                self.tx_put_certificate(tx, record)?;
            }
            let revoked_now = certificate.is_some();
            tx.insert(&self.parts.apps, name_key, App::encode(&app)?);
            self.append(tx, event)?;
            Ok(((app, revoked_now), true))
        })
        .map(|(out, _)| out)
    }

    /// Records a new certificate inside a transaction: its serial must have been reserved
    /// and be unused ([`StoreError::Conflict`]), its key never certified
    /// ([`StoreError::KeyReused`]) unless `renews_key` (see [`rules::new_certificate`]). The
    /// reservation is spent; the key index keeps the first certificate of each key.
    fn record_new(
        &self,
        tx: &mut WriteTransaction<'_>,
        record: &CertificateRecord,
        renews_key: bool,
    ) -> Result<(), StoreError> {
        let serial_key = record.serial.as_bytes();
        let reserved = tx_get(
            tx,
            &self.parts.reserved_serials,
            RESERVED_SERIALS,
            serial_key,
        )?
        .is_some();
        let used = tx_get(tx, &self.parts.certificates, CERTIFICATES, serial_key)?.is_some();
        let certified_by = tx_get(tx, &self.parts.keys, KEYS, &record.key.0)?
            .map(|bytes| rows::serial(KEYS, &record.key.0, &bytes))
            .transpose()?;
        rules::new_certificate(reserved, used, certified_by, renews_key)?;
        self.tx_put_certificate(tx, record)?;
        if certified_by.is_none() {
            tx.insert(&self.parts.keys, record.key.0, *serial_key);
        }
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
        let stored = self.tx_certificate(tx, serial)?;
        let record = rules::revoke_account_certificate(stored, account, serial, revocation)?;
        self.tx_put_certificate(tx, &record)
    }
}
