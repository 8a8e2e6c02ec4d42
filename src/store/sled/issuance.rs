//! Certificates: serials reserved before signing, issuances committed with the decision the
//! registration authority took, application and service certificates, revocation.

use time::OffsetDateTime;

use super::history::append;
use super::staged::{Staged, StagedTree};
use super::{SledStore, ACCOUNTS, APPS, CERTIFICATES, KEYS, REVOKED, SERIALS};
use crate::model::{AccountId, App, AppName, CertificateRecord, HistoryEvent, Revocation, Serial};
use crate::store::budget::unix_ms;
use crate::store::rows::{self, Stored};
use crate::store::{rules, IssuedCertificate, NewCertificate, StoreError};

impl SledStore {
    pub(super) fn reserve_serial_now(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let reserved = self
            .serials
            .compare_and_swap(
                serial.as_bytes(),
                None as Option<&[u8]>,
                Some(&unix_ms(at).to_be_bytes()[..]),
            )
            .map_err(|e| super::storage(super::SERIALS, e))?;
        reserved.map_err(|_| StoreError::Conflict)
    }

    /// Stages one issuance inside a staged write (see [`super::batched`], which commits
    /// issuances in batches): the registration authority's decision checked on the account
    /// as stored ([`rules::issue`]), the new certificate recorded, the one it supersedes
    /// revoked, the account updated and the history entry appended.
    pub(super) fn stage_issuance(
        &self,
        staged: &Staged,
        issuance: &NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        let NewCertificate {
            record,
            supersedes,
            event,
            ..
        } = issuance;
        let holder_id = rules::issuance_holder(issuance)?;
        let account_key = holder_id.as_str().as_bytes();
        let record_value = record.encode()?;
        let accounts = staged.tree(&self.accounts, ACCOUNTS);
        let certificates = staged.tree(&self.certificates, CERTIFICATES);
        let account = rules::issue(accounts.read_row(account_key)?, issuance)?;
        // The superseded certificate, read once: whether the new one renews its key, and
        // then its revocation.
        let previous = supersedes
            .map(|old| certificates.read_row::<CertificateRecord>(old.as_bytes()))
            .transpose()?;
        let renews_key = previous
            .as_ref()
            .and_then(Option::as_ref)
            .is_some_and(|old| old.key == record.key);
        self.record_new(staged, record, &record_value, renews_key)?;
        if let (Some(old), Some(stored)) = (supersedes, previous) {
            revoke_certificate(
                &certificates,
                &staged.tree(&self.revoked, REVOKED),
                holder_id,
                old,
                stored,
                rules::supersession(record),
            )?;
        }
        accounts.put(account_key, &account.encode()?);
        append(&self.staged_history(staged), &self.history_seq, event)?;
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
        let app_value = app.encode()?;
        let record_value = record.encode()?;
        self.staged(|staged| {
            let apps = staged.tree(&self.apps, APPS);
            rules::new_app(app, apps.read(name_key)?.is_some())?;
            self.record_new(staged, record, &record_value, false)?;
            apps.put(name_key, &app_value);
            append(&self.staged_history(staged), &self.history_seq, event)?;
            Ok(())
        })?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    pub(super) fn record_service_certificate_now(
        &self,
        record: &CertificateRecord,
    ) -> Result<IssuedCertificate, StoreError> {
        rules::service_certificate(record)?;
        let record_value = record.encode()?;
        self.staged(|staged| self.record_new(staged, record, &record_value, false))?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    pub(super) fn revoke_app_now(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: &HistoryEvent,
    ) -> Result<(App, bool), StoreError> {
        let name_key = name.as_str().as_bytes();
        self.staged(|staged| {
            let apps = staged.tree(&self.apps, APPS);
            let certificates = staged.tree(&self.certificates, CERTIFICATES);
            let app = rules::revoke_app(apps.read_row(name_key)?, name)?;
            let stored = certificates.read_row::<CertificateRecord>(app.certificate.as_bytes())?;
            let certificate = rules::revoke_app_certificate(stored, revocation);
            if let Some(record) = &certificate {
                put_certificate(&certificates, &staged.tree(&self.revoked, REVOKED), record)?;
            }
            let revoked_now = certificate.is_some();
            apps.put(name_key, &app.encode()?);
            append(&self.staged_history(staged), &self.history_seq, event)?;
            Ok((app, revoked_now))
        })
    }

    /// Records a new certificate inside a staged write: its serial must have been reserved
    /// and be unused ([`StoreError::Conflict`]), its key never certified
    /// ([`StoreError::KeyReused`]) unless `renews_key` (see [`rules::new_certificate`]). The
    /// key index keeps the first certificate of each key.
    fn record_new(
        &self,
        staged: &Staged,
        record: &CertificateRecord,
        value: &[u8],
        renews_key: bool,
    ) -> Result<(), StoreError> {
        let certificates = staged.tree(&self.certificates, CERTIFICATES);
        let keys = staged.tree(&self.keys, KEYS);
        let serial_key = record.serial.as_bytes();
        let certified_by = keys
            .read(&record.key.0)?
            .map(|bytes| rows::serial(KEYS, &record.key.0, &bytes))
            .transpose()?;
        rules::new_certificate(
            staged
                .tree(&self.serials, SERIALS)
                .read(serial_key)?
                .is_some(),
            certificates.read(serial_key)?.is_some(),
            certified_by,
            renews_key,
        )?;
        certificates.put(serial_key, value);
        if certified_by.is_none() {
            keys.put(&record.key.0, serial_key);
        }
        Ok(())
    }
}

/// Revokes a certificate of `account` inside an atomic write, given its serial and what the
/// write read under it (`stored`): it must exist, belong to the account
/// ([`StoreError::NotFound`] otherwise) and be unrevoked ([`StoreError::Conflict`]).
pub(super) fn revoke_certificate(
    certificates: &StagedTree<'_>,
    revoked: &StagedTree<'_>,
    account: &AccountId,
    serial: &Serial,
    stored: Option<CertificateRecord>,
    revocation: Revocation,
) -> Result<(), StoreError> {
    let record = rules::revoke_account_certificate(stored, account, serial, revocation)?;
    put_certificate(certificates, revoked, &record)
}

/// Writes a certificate record that is stored already, with its revocation index entry.
fn put_certificate(
    certificates: &StagedTree<'_>,
    revoked: &StagedTree<'_>,
    record: &CertificateRecord,
) -> Result<(), StoreError> {
    let key = record.serial.as_bytes();
    certificates.put(key, &record.encode()?);
    if let Some(entry) = rules::revocation_entry(record) {
        revoked.put(key, &entry.encode()?);
    }
    Ok(())
}
