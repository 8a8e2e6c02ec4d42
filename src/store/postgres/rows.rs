//! Rows of the schema (`migrations/`) and the model's types: the columns each query selects,
//! and the conversions both ways. Enumerations are stored by their serde names (the names
//! the API and backups use), instants as `timestamptz` plus the nanoseconds below the
//! microsecond.

use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::model::{
    Account, Actor, App, AppScope, CertificateRecord, Contract, HistoryEntry, HistoryEvent, Holder,
    KeyFingerprint, Outcome, Revocation, Serial,
};
use crate::store::{RevokedCertificate, StoreError};

/// An instant as stored: the `timestamptz` (whole microseconds) and the nanoseconds beyond.
pub(super) fn split(t: OffsetDateTime) -> (OffsetDateTime, i16) {
    let nanos = t.nanosecond();
    let micros = t.replace_nanosecond(nanos - nanos % 1000).unwrap_or(t);
    (micros, (nanos % 1000) as i16)
}

/// The instant of a stored `timestamptz` and its nanoseconds beyond the microsecond.
fn join(t: OffsetDateTime, ns: i16) -> Result<OffsetDateTime, StoreError> {
    let nanos = t.nanosecond() + u32::try_from(ns).map_err(|_| bad("a negative _ns column"))?;
    t.replace_nanosecond(nanos)
        .map_err(|_| bad("an _ns column beyond 999"))
}

/// A stored row that cannot be what it should.
pub(super) fn bad(why: &str) -> StoreError {
    StoreError::Backend(format!("corrupt row in the database: {why}"))
}

/// Column `name` of `row`.
pub(super) fn get<'r, T: tokio_postgres::types::FromSql<'r>>(
    row: &'r Row,
    name: &str,
) -> Result<T, StoreError> {
    row.try_get(name)
        .map_err(|e| bad(&format!("column {name}: {e}")))
}

/// The instant in columns `name` and `name_ns`.
fn instant(row: &Row, name: &str) -> Result<OffsetDateTime, StoreError> {
    join(get(row, name)?, get(row, &format!("{name}_ns"))?)
}

/// A value of the model read from its text form (IDs, codes, names).
fn parsed<T: std::str::FromStr>(row: &Row, name: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let text: &str = get(row, name)?;
    text.parse()
        .map_err(|e| bad(&format!("column {name}: {e}")))
}

/// The serde name of a unit variant (`"continue"`, `"keyCompromise"`, ...).
pub(super) fn name_of<T: Serialize>(value: &T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        _ => Err(StoreError::Backend(
            "cannot name a value for the database".into(),
        )),
    }
}

/// A unit variant from its serde name.
fn from_name<T: DeserializeOwned>(row: &Row, column: &str) -> Result<T, StoreError> {
    let name: String = get(row, column)?;
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|e| bad(&format!("column {column}: {e}")))
}

/// A u32 kept in a `bigint`.
pub(super) fn u32_of(row: &Row, name: &str) -> Result<u32, StoreError> {
    u32::try_from(get::<i64>(row, name)?).map_err(|_| bad(&format!("column {name} out of range")))
}

/// A u64 kept in a `bigint` (never negative).
pub(super) fn u64_of(row: &Row, name: &str) -> Result<u64, StoreError> {
    u64::try_from(get::<i64>(row, name)?).map_err(|_| bad(&format!("column {name} out of range")))
}

/// A u64 for a `bigint` column.
pub(super) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("{n} does not fit the database")))
}

fn serial_in(bytes: &[u8]) -> Result<Serial, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .ok()
        .and_then(|b| Serial::from_bytes(b).ok())
        .ok_or_else(|| bad("a serial that is not 16 bytes"))
}

/// The key fingerprint (SHA-256, 32 bytes) in column `name`.
pub(super) fn key_fingerprint(row: &Row, name: &str) -> Result<KeyFingerprint, StoreError> {
    let bytes: &[u8] = get(row, name)?;
    <[u8; 32]>::try_from(bytes)
        .map(KeyFingerprint)
        .map_err(|_| bad("a key fingerprint not of 32 bytes"))
}

/// The serial in column `name`.
pub(super) fn serial(row: &Row, name: &str) -> Result<Serial, StoreError> {
    serial_in(get(row, name)?)
}

/// The columns [`contract`] reads.
pub(super) const CONTRACT: &str = "code, name, created_at, created_at_ns, server_keygen";

/// A contract row.
pub(super) fn contract(row: &Row) -> Result<Contract, StoreError> {
    Ok(Contract {
        code: parsed(row, "code")?,
        name: get(row, "name")?,
        created_at: instant(row, "created_at")?,
        server_keygen: get(row, "server_keygen")?,
    })
}

/// The columns [`account`] reads.
pub(super) const ACCOUNT: &str = "id, contract, role, name, password_hash, failed_attempts, \
     locked, choice, current_certificate, issued_count, version, created_at, created_at_ns, \
     removed_at, removed_at_ns";

/// An account row.
pub(super) fn account(row: &Row) -> Result<Account, StoreError> {
    Ok(Account {
        id: parsed(row, "id")?,
        contract: parsed(row, "contract")?,
        role: from_name(row, "role")?,
        name: get(row, "name")?,
        password_hash: get(row, "password_hash")?,
        failed_attempts: u32_of(row, "failed_attempts")?,
        locked: get(row, "locked")?,
        choice: from_name(row, "choice")?,
        current_certificate: get::<Option<&[u8]>>(row, "current_certificate")?
            .map(serial_in)
            .transpose()?,
        issued_count: u32_of(row, "issued_count")?,
        version: u64_of(row, "version")?,
        created_at: instant(row, "created_at")?,
        removed_at: match get::<Option<OffsetDateTime>>(row, "removed_at")? {
            Some(at) => Some(join(at, get(row, "removed_at_ns")?)?),
            None => None,
        },
    })
}

/// The columns [`certificate`] reads.
pub(super) const CERTIFICATE: &str = "serial, key_fingerprint, holder_kind, account_id, \
     contract, role, issued_num, app_name, tls_names, subject, not_before, not_before_ns, \
     not_after, not_after_ns, revoked_at, revoked_at_ns, revocation_reason, der";

/// A certificate row.
pub(super) fn certificate(row: &Row) -> Result<CertificateRecord, StoreError> {
    let kind: &str = get(row, "holder_kind")?;
    let holder = match kind {
        "account" => Holder::Account {
            id: parsed(row, "account_id")?,
            contract: parsed(row, "contract")?,
            role: from_name(row, "role")?,
            issued_num: u32_of(row, "issued_num")?,
        },
        "app" => Holder::App {
            name: parsed(row, "app_name")?,
        },
        "tls_server" => Holder::TlsServer {
            names: get(row, "tls_names")?,
        },
        "ocsp_signer" => Holder::OcspSigner,
        other => return Err(bad(&format!("holder_kind '{other}'"))),
    };
    Ok(CertificateRecord {
        serial: serial(row, "serial")?,
        holder,
        subject: get(row, "subject")?,
        not_before: instant(row, "not_before")?,
        not_after: instant(row, "not_after")?,
        key: key_fingerprint(row, "key_fingerprint")?,
        revocation: revocation(row)?,
        der: get(row, "der")?,
    })
}

/// The revocation in a certificate row, if revoked.
fn revocation(row: &Row) -> Result<Option<Revocation>, StoreError> {
    match get::<Option<OffsetDateTime>>(row, "revoked_at")? {
        None => Ok(None),
        Some(at) => Ok(Some(Revocation {
            at: join(at, get(row, "revoked_at_ns")?)?,
            reason: from_name(row, "revocation_reason")?,
        })),
    }
}

/// The columns [`revoked`] reads.
pub(super) const REVOKED: &str =
    "serial, not_after, not_after_ns, revoked_at, revoked_at_ns, revocation_reason";

/// A revocation-index entry, from a revoked certificate's row.
pub(super) fn revoked(row: &Row) -> Result<RevokedCertificate, StoreError> {
    Ok(RevokedCertificate {
        serial: serial(row, "serial")?,
        revocation: revocation(row)?.ok_or_else(|| bad("a revoked row without revocation"))?,
        not_after: instant(row, "not_after")?,
    })
}

/// The holder's columns of a certificate row, for an `INSERT`: kind, account ID, contract,
/// role, issued number, application name, TLS names.
pub(super) struct HolderColumns {
    pub(super) kind: &'static str,
    pub(super) account_id: Option<String>,
    pub(super) contract: Option<String>,
    pub(super) role: Option<String>,
    pub(super) issued_num: Option<i64>,
    pub(super) app_name: Option<String>,
    pub(super) tls_names: Option<Vec<String>>,
}

impl HolderColumns {
    pub(super) fn of(holder: &Holder) -> Result<Self, StoreError> {
        let none = Self {
            kind: "",
            account_id: None,
            contract: None,
            role: None,
            issued_num: None,
            app_name: None,
            tls_names: None,
        };
        Ok(match holder {
            Holder::Account {
                id,
                contract,
                role,
                issued_num,
            } => Self {
                kind: "account",
                account_id: Some(id.to_string()),
                contract: Some(contract.to_string()),
                role: Some(name_of(role)?),
                issued_num: Some(i64::from(*issued_num)),
                ..none
            },
            Holder::App { name } => Self {
                kind: "app",
                app_name: Some(name.to_string()),
                ..none
            },
            Holder::TlsServer { names } => Self {
                kind: "tls_server",
                tls_names: Some(names.clone()),
                ..none
            },
            Holder::OcspSigner => Self {
                kind: "ocsp_signer",
                ..none
            },
        })
    }
}

/// The columns [`app`] reads.
pub(super) const APP: &str = "name, scope_all, scope_contracts, can_create_contracts, \
     certificate, revoked, created_at, created_at_ns";

/// An application row.
pub(super) fn app(row: &Row) -> Result<App, StoreError> {
    let scope = if get(row, "scope_all")? {
        AppScope::All
    } else {
        let codes: Vec<String> = get(row, "scope_contracts")?;
        AppScope::Contracts(
            codes
                .iter()
                .map(|c| c.parse())
                .collect::<Result<_, _>>()
                .map_err(|e| bad(&format!("column scope_contracts: {e}")))?,
        )
    };
    Ok(App {
        name: parsed(row, "name")?,
        scope,
        can_create_contracts: get(row, "can_create_contracts")?,
        certificate: serial(row, "certificate")?,
        revoked: get(row, "revoked")?,
        created_at: instant(row, "created_at")?,
    })
}

/// An application's scope as columns: every contract, or the listed ones.
pub(super) fn scope_columns(scope: &AppScope) -> (bool, Vec<String>) {
    match scope {
        AppScope::All => (true, Vec::new()),
        AppScope::Contracts(codes) => (false, codes.iter().map(|c| c.to_string()).collect()),
    }
}

/// The columns [`history`] reads.
pub(super) const HISTORY: &str = "seq, at, at_ns, account_id, contract, kind, actor_kind, \
     actor_uid, actor_name, source, refused, outcome_text";

/// A history row.
pub(super) fn history(row: &Row) -> Result<HistoryEntry, StoreError> {
    let actor_kind: &str = get(row, "actor_kind")?;
    let actor = match actor_kind {
        "operator" => Actor::Operator {
            uid: get::<Option<i64>>(row, "actor_uid")?
                .map(|uid| u32::try_from(uid).map_err(|_| bad("actor_uid out of range")))
                .transpose()?,
        },
        "account" => Actor::Account {
            id: parsed(row, "actor_name")?,
        },
        "app" => Actor::App {
            name: parsed(row, "actor_name")?,
        },
        "anonymous" => Actor::Anonymous,
        "system" => Actor::System,
        other => return Err(bad(&format!("actor_kind '{other}'"))),
    };
    let text: String = get(row, "outcome_text")?;
    let outcome = if get(row, "refused")? {
        Outcome::Refused { reason: text }
    } else {
        Outcome::Ok { detail: text }
    };
    Ok(HistoryEntry {
        seq: u64_of(row, "seq")?,
        event: HistoryEvent {
            at: instant(row, "at")?,
            account: get::<Option<&str>>(row, "account_id")?
                .map(|id| id.parse())
                .transpose()
                .map_err(|e| bad(&format!("column account_id: {e}")))?,
            contract: get::<Option<&str>>(row, "contract")?
                .map(|code| code.parse())
                .transpose()
                .map_err(|e| bad(&format!("column contract: {e}")))?,
            kind: from_name(row, "kind")?,
            actor,
            source: get(row, "source")?,
            outcome,
        },
    })
}

/// The actor of a history event as columns: kind, uid, name.
pub(super) fn actor_columns(actor: &Actor) -> (&'static str, Option<i64>, Option<String>) {
    match actor {
        Actor::Operator { uid } => ("operator", uid.map(i64::from), None),
        Actor::Account { id } => ("account", None, Some(id.to_string())),
        Actor::App { name } => ("app", None, Some(name.to_string())),
        Actor::Anonymous => ("anonymous", None, None),
        Actor::System => ("system", None, None),
    }
}

/// The outcome of a history event as columns: refused, text.
pub(super) fn outcome_columns(outcome: &Outcome) -> (bool, &str) {
    match outcome {
        Outcome::Ok { detail } => (false, detail),
        Outcome::Refused { reason } => (true, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_split_and_join_to_the_nanosecond() {
        for t in [
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap(),
            OffsetDateTime::from_unix_timestamp_nanos(-1_000_000_001).unwrap(),
            time::macros::datetime!(9999-12-31 23:59:59.999_999_999 UTC),
        ] {
            let (micros, ns) = split(t);
            assert_eq!(micros.nanosecond() % 1000, 0);
            assert_eq!(join(micros, ns).unwrap(), t);
        }
    }

    #[test]
    fn enumerations_are_stored_by_their_serde_names() {
        use crate::model::{CertificateChoice, EventKind, RevocationReason};
        assert_eq!(name_of(&CertificateChoice::Reissue).unwrap(), "reissue");
        assert_eq!(
            name_of(&EventKind::PasswordChange).unwrap(),
            "password_change"
        );
        assert_eq!(
            name_of(&RevocationReason::CaCompromise).unwrap(),
            RevocationReason::CaCompromise.name()
        );
    }
}
