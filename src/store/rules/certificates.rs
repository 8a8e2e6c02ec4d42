//! Rules of certificates: issuances, application and service certificates, revocation and
//! the revocation index.

use super::accounts::{existing_account, next_version};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Holder, Revocation, RevocationReason,
    Serial,
};
use crate::store::{NewCertificate, RevokedCertificate, StoreError};

/// The ID an issuance is for, whose account it changes; refused before anything is read
/// unless the record is unrevoked and an ID's.
pub(in crate::store) fn issuance_holder(
    issuance: &NewCertificate,
) -> Result<&AccountId, StoreError> {
    holder_and_number(&issuance.record).map(|(id, _)| id)
}

/// The record's ID and CERTISSUEDNUM, if it is an unrevoked certificate of an ID.
fn holder_and_number(record: &CertificateRecord) -> Result<(&AccountId, u32), StoreError> {
    if record.revocation.is_some() {
        return Err(StoreError::Backend(format!(
            "refusing to record certificate {} as issued: it is marked revoked",
            record.serial
        )));
    }
    match &record.holder {
        Holder::Account { id, issued_num, .. } => Ok((id, *issued_num)),
        _ => Err(StoreError::Backend(format!(
            "refusing to record certificate {} as an ID's: it is not an ID's",
            record.serial
        ))),
    }
}

/// The account `stored` once `issuance` is committed, provided the decision was taken on its
/// current version, the record's `issued_num` is the account's `issued_count` plus one
/// (CERTISSUEDNUM has no gaps) and `supersedes` is the account's current certificate
/// ([`StoreError::Conflict`] otherwise). In the same transaction the backend records the
/// certificate ([`new_certificate`]), revokes `supersedes` ([`supersession`] with
/// [`revoke_account_certificate`], which requires it unrevoked) and appends the event.
pub(in crate::store) fn issue(
    stored: Option<Account>,
    issuance: &NewCertificate,
) -> Result<Account, StoreError> {
    let record = &issuance.record;
    let (id, issued_num) = holder_and_number(record)?;
    let account = existing_account(stored, id)?;
    // A removed ID is never issued a certificate: a decision taken before the removal finds
    // the account changed, and deciding again refuses.
    if account.is_removed()
        || account.version != issuance.expected_version
        || account.issued_count.checked_add(1) != Some(issued_num)
        || issuance.supersedes.is_some() && account.current_certificate != issuance.supersedes
    {
        return Err(StoreError::Conflict);
    }
    Ok(Account {
        current_certificate: Some(record.serial),
        issued_count: issued_num,
        choice: issuance.choice,
        version: next_version(account.version)?,
        ..account
    })
}

/// How an issuance revokes the certificate it supersedes: as superseded, when the new one
/// becomes valid.
pub(in crate::store) fn supersession(issued: &CertificateRecord) -> Revocation {
    Revocation {
        at: issued.not_before,
        reason: RevocationReason::Superseded,
    }
}

/// Recording a new certificate: its serial must have been reserved and be unused
/// ([`StoreError::Conflict`]), its key never certified before (`certified_by`, the serial that
/// first certified it: [`StoreError::KeyReused`]) — except by the certificate it supersedes
/// (`renews_key`: the superseded certificate has the same key), a renewal with the same key
/// (RFC 7030 section 4.2.2). So a key never passes from one ID to another, nor from an ID's
/// older certificate to its new one; whether such a renewal is allowed at all is the
/// registration authority's decision.
pub(in crate::store) fn new_certificate(
    reserved: bool,
    used: bool,
    certified_by: Option<Serial>,
    renews_key: bool,
) -> Result<(), StoreError> {
    if !reserved || used {
        return Err(StoreError::Conflict);
    }
    match certified_by {
        Some(_) if renews_key => Ok(()),
        Some(first) => Err(StoreError::KeyReused(first)),
        None => Ok(()),
    }
}

/// What a new application credential is refused for before anything is read: `record` must
/// be unrevoked, name the application as its holder, and be `app`'s certificate.
pub(in crate::store) fn app_certificate(
    app: &App,
    record: &CertificateRecord,
) -> Result<(), StoreError> {
    let holder = Holder::App {
        name: app.name.clone(),
    };
    if record.holder != holder || app.certificate != record.serial || record.revocation.is_some() {
        return Err(StoreError::Backend(format!(
            "refusing to record certificate {} for application {}: the record does not match",
            record.serial, app.name
        )));
    }
    Ok(())
}

/// Creating `app`: refused if its name is `taken`.
pub(in crate::store) fn new_app(app: &App, taken: bool) -> Result<(), StoreError> {
    if taken {
        return Err(StoreError::AlreadyExists(format!(
            "application {}",
            app.name
        )));
    }
    Ok(())
}

/// What a service's certificate is refused for: `record` must be unrevoked and a service's.
pub(in crate::store) fn service_certificate(record: &CertificateRecord) -> Result<(), StoreError> {
    if !record.holder.is_service() || record.revocation.is_some() {
        return Err(StoreError::Backend(format!(
            "refusing to record certificate {} as a service's: the record does not match",
            record.serial
        )));
    }
    Ok(())
}

/// Revoking certificate `serial` of `account` (stored as `stored`): it must exist and belong
/// to the account ([`StoreError::NotFound`]) and be unrevoked ([`StoreError::Conflict`]).
/// Returns the record as it is to be stored, with its [`revocation_entry`].
pub(in crate::store) fn revoke_account_certificate(
    stored: Option<CertificateRecord>,
    account: &AccountId,
    serial: &Serial,
    revocation: Revocation,
) -> Result<CertificateRecord, StoreError> {
    let not_found = || StoreError::NotFound(format!("certificate {serial} of account {account}"));
    let record = stored.ok_or_else(not_found)?;
    if record.account() != Some(account) {
        return Err(not_found());
    }
    if record.revocation.is_some() {
        return Err(StoreError::Conflict);
    }
    Ok(CertificateRecord {
        revocation: Some(revocation),
        ..record
    })
}

/// Revoking the application `name` (stored as `stored`), for good: it must exist
/// ([`StoreError::NotFound`]) and be unrevoked ([`StoreError::Conflict`]). Returns the app as
/// it is to be stored; its certificate goes with it ([`revoke_app_certificate`]).
pub(in crate::store) fn revoke_app(stored: Option<App>, name: &AppName) -> Result<App, StoreError> {
    let app = stored.ok_or_else(|| StoreError::NotFound(format!("application {name}")))?;
    if app.revoked {
        return Err(StoreError::Conflict);
    }
    Ok(App {
        revoked: true,
        ..app
    })
}

/// A revoked application's certificate (stored as `stored`), revoked now: the record to
/// store, or `None` when there is nothing to write (no record, or revoked already).
pub(in crate::store) fn revoke_app_certificate(
    stored: Option<CertificateRecord>,
    revocation: Revocation,
) -> Option<CertificateRecord> {
    stored
        .filter(|record| record.revocation.is_none())
        .map(|record| CertificateRecord {
            revocation: Some(revocation),
            ..record
        })
}

/// The revocation index entry that goes with `record` as stored: one for a revoked
/// certificate, none otherwise. Every write of a certificate record writes it in the same
/// transaction.
pub(in crate::store) fn revocation_entry(record: &CertificateRecord) -> Option<RevokedCertificate> {
    record
        .revocation
        .map(|revocation| RevokedCertificate::of(record, revocation))
}
