//! Certificates: serials reserved before signing, issuances committed with the decision the
//! registration authority took, application and service certificates, revocation.

use sled::Transactional;
use time::OffsetDateTime;

use super::history::append;
use super::staged::{self, Staged, TreeAccess};
use super::{
    from_tx, tx, tx_get, SledStore, TxResult, ACCOUNTS, CERTIFICATES, HISTORY, HISTORY_BY_ACCOUNT,
    HISTORY_BY_CONTRACT, KEYS, REVOKED, SERIALS,
};
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

    pub(super) fn commit_issuance_now(
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
        let account_key = holder_id.as_str().as_bytes();
        let record_value = record.encode()?;
        // A staged write, not a sled transaction: see `staged` for why and how it is atomic.
        let staged = Staged::default();
        let accounts = staged.tree(&self.accounts, ACCOUNTS);
        let certificates = staged.tree(&self.certificates, CERTIFICATES);
        let serials = staged.tree(&self.serials, SERIALS);
        let keys = staged.tree(&self.keys, KEYS);
        let revoked = staged.tree(&self.revoked, REVOKED);
        let history = [
            staged.tree(&self.history, HISTORY),
            staged.tree(&self.history_by_account, HISTORY_BY_ACCOUNT),
            staged.tree(&self.history_by_contract, HISTORY_BY_CONTRACT),
        ];
        let stage = || -> TxResult<()> {
            let account = tx(rules::issue(tx_get(&accounts, account_key)?, issuance))?;
            let renews_key = match supersedes {
                Some(old) => tx_get::<CertificateRecord>(&certificates, old.as_bytes())?
                    .is_some_and(|old| old.key == record.key),
                None => false,
            };
            record_new(
                &certificates,
                &serials,
                &keys,
                record,
                &record_value,
                renews_key,
            )?;
            if let Some(old) = supersedes {
                let superseded = rules::supersession(record);
                revoke_certificate(&certificates, &revoked, holder_id, old, superseded)?;
            }
            accounts.put(account_key, &tx(account.encode())?)?;
            let [h, a, c] = &history;
            append([h, a, c], &self.history_seq, event)?;
            Ok(())
        };
        stage().map_err(staged::failed)?;
        self.apply_staged(staged)?;
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
        let [history, by_account, by_contract] = self.history_trees();
        (
            &self.apps,
            &self.certificates,
            &self.serials,
            &self.keys,
            history,
            by_account,
            by_contract,
        )
            .transaction(
                |(apps, certificates, serials, keys, history, by_account, by_contract)| {
                    tx(rules::new_app(app, apps.get(name_key)?.is_some()))?;
                    record_new(certificates, serials, keys, record, &record_value, false)?;
                    apps.insert(name_key, app_value.as_slice())?;
                    append([history, by_account, by_contract], &self.history_seq, event)?;
                    Ok(())
                },
            )
            .map_err(from_tx)?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    pub(super) fn record_service_certificate_now(
        &self,
        record: &CertificateRecord,
    ) -> Result<IssuedCertificate, StoreError> {
        rules::service_certificate(record)?;
        let record_value = record.encode()?;
        (&self.certificates, &self.serials, &self.keys)
            .transaction(|(certificates, serials, keys)| {
                record_new(certificates, serials, keys, record, &record_value, false)
            })
            .map_err(from_tx)?;
        Ok(IssuedCertificate::recorded(record.clone(), None))
    }

    pub(super) fn revoke_app_now(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: &HistoryEvent,
    ) -> Result<(App, bool), StoreError> {
        let name_key = name.as_str().as_bytes();
        let [history, by_account, by_contract] = self.history_trees();
        (
            &self.apps,
            &self.certificates,
            &self.revoked,
            history,
            by_account,
            by_contract,
        )
            .transaction(
                |(apps, certificates, revoked, history, by_account, by_contract)| {
                    let app = tx(rules::revoke_app(tx_get(apps, name_key)?, name))?;
                    let serial_key = app.certificate.as_bytes();
                    let stored = tx_get::<CertificateRecord>(certificates, serial_key)?;
                    let certificate = rules::revoke_app_certificate(stored, revocation);
                    if let Some(record) = &certificate {
                        put_certificate(certificates, revoked, record)?;
                    }
                    let revoked_now = certificate.is_some();
                    apps.insert(name_key, tx(app.encode())?)?;
                    append([history, by_account, by_contract], &self.history_seq, event)?;
                    Ok((app, revoked_now))
                },
            )
            .map_err(from_tx)
    }
}

/// Records a new certificate inside a transaction: its serial must have been reserved and be
/// unused ([`StoreError::Conflict`]), its key never certified ([`StoreError::KeyReused`])
/// unless `renews_key` (see [`rules::new_certificate`]). The key index keeps the first
/// certificate of each key.
fn record_new(
    certificates: &impl TreeAccess,
    serials: &impl TreeAccess,
    keys: &impl TreeAccess,
    record: &CertificateRecord,
    value: &[u8],
    renews_key: bool,
) -> TxResult<()> {
    let serial_key = record.serial.as_bytes();
    let certified_by = keys
        .read(&record.key.0)?
        .map(|bytes| tx(rows::serial(KEYS, &record.key.0, &bytes)))
        .transpose()?;
    tx(rules::new_certificate(
        serials.read(serial_key)?.is_some(),
        certificates.read(serial_key)?.is_some(),
        certified_by,
        renews_key,
    ))?;
    certificates.put(serial_key, value)?;
    if certified_by.is_none() {
        keys.put(&record.key.0, serial_key)?;
    }
    Ok(())
}

/// Revokes a certificate of `account` inside a transaction: it must exist, belong to the
/// account ([`StoreError::NotFound`] otherwise) and be unrevoked ([`StoreError::Conflict`]).
pub(super) fn revoke_certificate(
    certificates: &impl TreeAccess,
    revoked: &impl TreeAccess,
    account: &AccountId,
    serial: &Serial,
    revocation: Revocation,
) -> TxResult<()> {
    let stored = tx_get::<CertificateRecord>(certificates, serial.as_bytes())?;
    let record = tx(rules::revoke_account_certificate(
        stored, account, serial, revocation,
    ))?;
    put_certificate(certificates, revoked, &record)
}

/// Writes a certificate record that is stored already, with its revocation index entry.
fn put_certificate(
    certificates: &impl TreeAccess,
    revoked: &impl TreeAccess,
    record: &CertificateRecord,
) -> TxResult<()> {
    let key = record.serial.as_bytes();
    certificates.put(key, &tx(record.encode())?)?;
    if let Some(entry) = rules::revocation_entry(record) {
        revoked.put(key, &tx(entry.encode())?)?;
    }
    Ok(())
}
