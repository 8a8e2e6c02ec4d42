//! Certificates: serials reserved before signing, issuances committed with the decision the
//! registration authority took, application and service certificates, revocation.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;
use time::OffsetDateTime;

use super::history::{append, HistoryTx};
use super::rows::{self, Stored};
use super::{abort, from_tx, tx, tx_get, SledStore, TxResult, KEYS};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, HistoryEvent, Holder, Revocation,
    RevocationReason, Serial,
};
use crate::store::budget::unix_ms;
use crate::store::{IssuedCertificate, NewCertificate, RevokedCertificate, StoreError};

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
        let account_key = holder_id.as_str().as_bytes();
        let record_value = record.encode()?;
        let [history, by_account, by_contract, meta] = self.history_trees();
        (
            &self.accounts,
            &self.certificates,
            &self.serials,
            &self.keys,
            &self.revoked,
            history,
            by_account,
            by_contract,
            meta,
        )
            .transaction(
                |(
                    accounts,
                    certificates,
                    serials,
                    keys,
                    revoked,
                    history,
                    by_account,
                    by_contract,
                    meta,
                )| {
                    let mut account =
                        tx_get::<Account>(accounts, account_key)?.ok_or_else(|| {
                            ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                                "account {holder_id}"
                            )))
                        })?;
                    if account.version != *expected_version
                        || account.issued_count.checked_add(1) != Some(*issued_num)
                        || account.current_certificate.is_none() && supersedes.is_some()
                        || supersedes.is_some_and(|s| account.current_certificate != Some(s))
                    {
                        return abort(StoreError::Conflict);
                    }
                    record_new(certificates, serials, keys, record, &record_value)?;
                    if let Some(old) = supersedes {
                        revoke_certificate(
                            certificates,
                            revoked,
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
                    accounts.insert(account_key, tx(account.encode())?)?;
                    append(
                        &HistoryTx {
                            history,
                            by_account,
                            by_contract,
                            meta,
                        },
                        event,
                    )?;
                    Ok(())
                },
            )
            .map_err(from_tx)?;
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
        let app_value = app.encode()?;
        let record_value = record.encode()?;
        let [history, by_account, by_contract, meta] = self.history_trees();
        (
            &self.apps,
            &self.certificates,
            &self.serials,
            &self.keys,
            history,
            by_account,
            by_contract,
            meta,
        )
            .transaction(
                |(apps, certificates, serials, keys, history, by_account, by_contract, meta)| {
                    if apps.get(name_key)?.is_some() {
                        return abort(StoreError::AlreadyExists(format!(
                            "application {}",
                            app.name
                        )));
                    }
                    record_new(certificates, serials, keys, record, &record_value)?;
                    apps.insert(name_key, app_value.as_slice())?;
                    append(
                        &HistoryTx {
                            history,
                            by_account,
                            by_contract,
                            meta,
                        },
                        event,
                    )?;
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
        if !record.holder.is_service() || record.revocation.is_some() {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} as a service's: the record does not match",
                record.serial
            )));
        }
        let record_value = record.encode()?;
        (&self.certificates, &self.serials, &self.keys)
            .transaction(|(certificates, serials, keys)| {
                record_new(certificates, serials, keys, record, &record_value)
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
        let [history, by_account, by_contract, meta] = self.history_trees();
        (
            &self.apps,
            &self.certificates,
            &self.revoked,
            history,
            by_account,
            by_contract,
            meta,
        )
            .transaction(
                |(apps, certificates, revoked, history, by_account, by_contract, meta)| {
                    let mut app = tx_get::<App>(apps, name_key)?.ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                            "application {name}"
                        )))
                    })?;
                    if app.revoked {
                        return abort(StoreError::Conflict);
                    }
                    app.revoked = true;
                    let serial_key = app.certificate.as_bytes();
                    let mut revoked_now = false;
                    if let Some(mut record) = tx_get::<CertificateRecord>(certificates, serial_key)?
                    {
                        if record.revocation.is_none() {
                            record.revocation = Some(revocation);
                            certificates.insert(serial_key, tx(record.encode())?)?;
                            let entry = RevokedCertificate::of(&record, revocation);
                            revoked.insert(serial_key, tx(entry.encode())?)?;
                            revoked_now = true;
                        }
                    }
                    apps.insert(name_key, tx(app.encode())?)?;
                    append(
                        &HistoryTx {
                            history,
                            by_account,
                            by_contract,
                            meta,
                        },
                        event,
                    )?;
                    Ok((app, revoked_now))
                },
            )
            .map_err(from_tx)
    }
}

/// Records a new certificate inside a transaction: its serial must have been reserved and be
/// unused ([`StoreError::Conflict`]), its key never certified ([`StoreError::KeyReused`]).
fn record_new(
    certificates: &TransactionalTree,
    serials: &TransactionalTree,
    keys: &TransactionalTree,
    record: &CertificateRecord,
    value: &[u8],
) -> TxResult<()> {
    let serial_key = record.serial.as_bytes();
    if serials.get(serial_key)?.is_none() || certificates.get(serial_key)?.is_some() {
        return abort(StoreError::Conflict);
    }
    if let Some(bytes) = keys.get(record.key.0)? {
        let first = tx(rows::serial(KEYS, &record.key.0, &bytes))?;
        return abort(StoreError::KeyReused(first));
    }
    certificates.insert(serial_key, value)?;
    keys.insert(&record.key.0, serial_key)?;
    Ok(())
}

/// Revokes a certificate of `account` inside a transaction: it must exist, belong to the
/// account ([`StoreError::NotFound`] otherwise) and be unrevoked ([`StoreError::Conflict`]).
pub(super) fn revoke_certificate(
    certificates: &TransactionalTree,
    revoked: &TransactionalTree,
    account: &AccountId,
    serial: &Serial,
    revocation: Revocation,
) -> TxResult<()> {
    let not_found = || {
        ConflictableTransactionError::Abort(StoreError::NotFound(format!(
            "certificate {serial} of account {account}"
        )))
    };
    let mut record =
        tx_get::<CertificateRecord>(certificates, serial.as_bytes())?.ok_or_else(not_found)?;
    if record.account() != Some(account) {
        return Err(not_found());
    }
    if record.revocation.is_some() {
        return abort(StoreError::Conflict);
    }
    record.revocation = Some(revocation);
    certificates.insert(serial.as_bytes(), tx(record.encode())?)?;
    let entry = RevokedCertificate::of(&record, revocation);
    revoked.insert(serial.as_bytes(), tx(entry.encode())?)?;
    Ok(())
}
