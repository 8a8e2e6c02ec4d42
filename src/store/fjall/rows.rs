//! The stored rows: types of their own, encoded as a version byte followed by postcard.
//!
//! The domain types of [`crate::model`] are also the API and backup formats (JSON, with
//! internally tagged enums and RFC 3339 times); the rows here are what the fjall backend
//! writes, so that the file format changes only when this file does. A row leaves out what
//! its key already holds (an account's ID, a certificate's serial, a history entry's number).
//! Enums are encoded by their position in these declarations: new variants go at the end,
//! and nothing is ever reordered. A row whose first byte is not [`ROW_FORMAT`] is refused as
//! corrupt rather than misread.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::corrupt;
use crate::model::{
    Account, AccountId, Actor, App, AppName, AppScope, CertificateChoice, CertificateRecord,
    Contract, ContractCode, EventKind, HistoryEntry, HistoryEvent, Holder, KeyFingerprint, Outcome,
    Revocation, RevocationReason, Role, Serial,
};
use crate::store::{RevokedCertificate, StoreError};

/// The first byte of every row this build writes.
pub(super) const ROW_FORMAT: u8 = 1;

/// Encodes a row: [`ROW_FORMAT`], then postcard.
pub(super) fn encode<T: Serialize>(partition: &str, row: &T) -> Result<Vec<u8>, StoreError> {
    let bytes = vec![ROW_FORMAT];
    postcard::to_extend(row, bytes).map_err(|e| {
        StoreError::Backend(format!(
            "cannot encode a row for partition `{partition}`: {e}"
        ))
    })
}

/// Decodes a row read from `partition` at `key`.
pub(super) fn decode<T: DeserializeOwned>(
    partition: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&ROW_FORMAT, rest)) => {
            postcard::from_bytes(rest).map_err(|e| corrupt(partition, key, &e.to_string()))
        }
        Some((other, _)) => Err(corrupt(
            partition,
            key,
            &format!("row format {other}, this estca reads format {ROW_FORMAT}"),
        )),
        None => Err(corrupt(partition, key, "empty row")),
    }
}

/// Decodes a serial stored as its 16 bytes (a key, or the value of the key index).
pub(super) fn serial(partition: &str, key: &[u8], bytes: &[u8]) -> Result<Serial, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map_err(|_| corrupt(partition, key, "a serial is 16 bytes"))
        .and_then(|b| Serial::from_bytes(b).map_err(|e| corrupt(partition, key, &e.0)))
}

/// Decodes a u64 stored big-endian (counters, history numbers).
pub(super) fn u64_be(partition: &str, key: &[u8], bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(partition, key, "a number is 8 bytes"))
}

/// Text from a key or a row, checked as `T` parses it.
fn parsed<T: std::str::FromStr<Err = crate::model::InvalidValue>>(
    partition: &str,
    key: &[u8],
    text: &[u8],
) -> Result<T, StoreError> {
    let text = std::str::from_utf8(text).map_err(|_| corrupt(partition, key, "not UTF-8"))?;
    text.parse()
        .map_err(|e: crate::model::InvalidValue| corrupt(partition, key, &e.0))
}

/// An instant: Unix seconds and nanoseconds (UTC).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Instant {
    seconds: i64,
    nanos: u32,
}

impl From<OffsetDateTime> for Instant {
    fn from(t: OffsetDateTime) -> Self {
        Self {
            seconds: t.unix_timestamp(),
            nanos: t.nanosecond(),
        }
    }
}

impl Instant {
    fn decode(self, partition: &str, key: &[u8]) -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::from_unix_timestamp(self.seconds)
            .and_then(|t| t.replace_nanosecond(self.nanos))
            .map_err(|e| corrupt(partition, key, &format!("bad instant: {e}")))
    }
}

/// [`Role`] as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum RoleRow {
    Master,
    User,
}

impl From<Role> for RoleRow {
    fn from(role: Role) -> Self {
        match role {
            Role::Master => RoleRow::Master,
            Role::User => RoleRow::User,
        }
    }
}

impl From<RoleRow> for Role {
    fn from(role: RoleRow) -> Self {
        match role {
            RoleRow::Master => Role::Master,
            RoleRow::User => Role::User,
        }
    }
}

/// [`CertificateChoice`] as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum ChoiceRow {
    Continue,
    Reissue,
    Revoked,
}

impl From<CertificateChoice> for ChoiceRow {
    fn from(choice: CertificateChoice) -> Self {
        match choice {
            CertificateChoice::Continue => ChoiceRow::Continue,
            CertificateChoice::Reissue => ChoiceRow::Reissue,
            CertificateChoice::Revoked => ChoiceRow::Revoked,
        }
    }
}

impl From<ChoiceRow> for CertificateChoice {
    fn from(choice: ChoiceRow) -> Self {
        match choice {
            ChoiceRow::Continue => CertificateChoice::Continue,
            ChoiceRow::Reissue => CertificateChoice::Reissue,
            ChoiceRow::Revoked => CertificateChoice::Revoked,
        }
    }
}

/// A contract; the key is its code.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ContractRow {
    name: String,
    created_at: Instant,
}

impl ContractRow {
    pub(super) fn of(contract: &Contract) -> Self {
        Self {
            name: contract.name.clone(),
            created_at: contract.created_at.into(),
        }
    }

    pub(super) fn into_contract(self, partition: &str, key: &[u8]) -> Result<Contract, StoreError> {
        Ok(Contract {
            code: parsed(partition, key, key)?,
            name: self.name,
            created_at: self.created_at.decode(partition, key)?,
        })
    }
}

/// An account; the key is its ID.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AccountRow {
    contract: String,
    role: RoleRow,
    name: String,
    password_hash: String,
    failed_attempts: u32,
    locked: bool,
    choice: ChoiceRow,
    current_certificate: Option<[u8; 16]>,
    issued_count: u32,
    version: u64,
    created_at: Instant,
}

impl AccountRow {
    pub(super) fn of(account: &Account) -> Self {
        Self {
            contract: account.contract.as_str().to_owned(),
            role: account.role.into(),
            name: account.name.clone(),
            password_hash: account.password_hash.clone(),
            failed_attempts: account.failed_attempts,
            locked: account.locked,
            choice: account.choice.into(),
            current_certificate: account.current_certificate.map(|s| *s.as_bytes()),
            issued_count: account.issued_count,
            version: account.version,
            created_at: account.created_at.into(),
        }
    }

    pub(super) fn into_account(self, partition: &str, key: &[u8]) -> Result<Account, StoreError> {
        let id: AccountId = parsed(partition, key, key)?;
        Ok(Account {
            id,
            contract: parsed(partition, key, self.contract.as_bytes())?,
            role: self.role.into(),
            name: self.name,
            password_hash: self.password_hash,
            failed_attempts: self.failed_attempts,
            locked: self.locked,
            choice: self.choice.into(),
            current_certificate: self
                .current_certificate
                .map(|s| serial(partition, key, &s))
                .transpose()?,
            issued_count: self.issued_count,
            version: self.version,
            created_at: self.created_at.decode(partition, key)?,
        })
    }
}

/// [`RevocationReason`] as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum ReasonRow {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

impl From<RevocationReason> for ReasonRow {
    fn from(reason: RevocationReason) -> Self {
        match reason {
            RevocationReason::Unspecified => ReasonRow::Unspecified,
            RevocationReason::KeyCompromise => ReasonRow::KeyCompromise,
            RevocationReason::CaCompromise => ReasonRow::CaCompromise,
            RevocationReason::AffiliationChanged => ReasonRow::AffiliationChanged,
            RevocationReason::Superseded => ReasonRow::Superseded,
            RevocationReason::CessationOfOperation => ReasonRow::CessationOfOperation,
            RevocationReason::PrivilegeWithdrawn => ReasonRow::PrivilegeWithdrawn,
        }
    }
}

impl From<ReasonRow> for RevocationReason {
    fn from(reason: ReasonRow) -> Self {
        match reason {
            ReasonRow::Unspecified => RevocationReason::Unspecified,
            ReasonRow::KeyCompromise => RevocationReason::KeyCompromise,
            ReasonRow::CaCompromise => RevocationReason::CaCompromise,
            ReasonRow::AffiliationChanged => RevocationReason::AffiliationChanged,
            ReasonRow::Superseded => RevocationReason::Superseded,
            ReasonRow::CessationOfOperation => RevocationReason::CessationOfOperation,
            ReasonRow::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
        }
    }
}

/// [`Revocation`] as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct RevocationRow {
    at: Instant,
    reason: ReasonRow,
}

impl From<Revocation> for RevocationRow {
    fn from(r: Revocation) -> Self {
        Self {
            at: r.at.into(),
            reason: r.reason.into(),
        }
    }
}

impl RevocationRow {
    fn decode(self, partition: &str, key: &[u8]) -> Result<Revocation, StoreError> {
        Ok(Revocation {
            at: self.at.decode(partition, key)?,
            reason: self.reason.into(),
        })
    }
}

/// [`Holder`] as stored.
#[derive(Debug, Serialize, Deserialize)]
enum HolderRow {
    Account {
        id: String,
        contract: String,
        role: RoleRow,
        issued_num: u32,
    },
    App {
        name: String,
    },
    TlsServer {
        names: Vec<String>,
    },
    OcspSigner,
}

impl HolderRow {
    fn of(holder: &Holder) -> Self {
        match holder {
            Holder::Account {
                id,
                contract,
                role,
                issued_num,
            } => HolderRow::Account {
                id: id.as_str().to_owned(),
                contract: contract.as_str().to_owned(),
                role: (*role).into(),
                issued_num: *issued_num,
            },
            Holder::App { name } => HolderRow::App {
                name: name.as_str().to_owned(),
            },
            Holder::TlsServer { names } => HolderRow::TlsServer {
                names: names.clone(),
            },
            Holder::OcspSigner => HolderRow::OcspSigner,
        }
    }

    fn decode(self, partition: &str, key: &[u8]) -> Result<Holder, StoreError> {
        Ok(match self {
            HolderRow::Account {
                id,
                contract,
                role,
                issued_num,
            } => Holder::Account {
                id: parsed(partition, key, id.as_bytes())?,
                contract: parsed(partition, key, contract.as_bytes())?,
                role: role.into(),
                issued_num,
            },
            HolderRow::App { name } => Holder::App {
                name: parsed(partition, key, name.as_bytes())?,
            },
            HolderRow::TlsServer { names } => Holder::TlsServer { names },
            HolderRow::OcspSigner => Holder::OcspSigner,
        })
    }
}

/// A certificate; the key is its serial.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct CertificateRow {
    holder: HolderRow,
    subject: String,
    not_before: Instant,
    not_after: Instant,
    key: [u8; 32],
    revocation: Option<RevocationRow>,
    der: Vec<u8>,
}

impl CertificateRow {
    pub(super) fn of(record: &CertificateRecord) -> Self {
        Self {
            holder: HolderRow::of(&record.holder),
            subject: record.subject.clone(),
            not_before: record.not_before.into(),
            not_after: record.not_after.into(),
            key: record.key.0,
            revocation: record.revocation.map(Into::into),
            der: record.der.clone(),
        }
    }

    pub(super) fn into_record(
        self,
        partition: &str,
        key: &[u8],
    ) -> Result<CertificateRecord, StoreError> {
        Ok(CertificateRecord {
            serial: serial(partition, key, key)?,
            holder: self.holder.decode(partition, key)?,
            subject: self.subject,
            not_before: self.not_before.decode(partition, key)?,
            not_after: self.not_after.decode(partition, key)?,
            key: KeyFingerprint(self.key),
            revocation: self
                .revocation
                .map(|r| r.decode(partition, key))
                .transpose()?,
            der: self.der,
        })
    }
}

/// An entry of the revocation index; the key is the serial.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RevokedRow {
    revocation: RevocationRow,
    not_after: Instant,
}

impl RevokedRow {
    pub(super) fn of(entry: &RevokedCertificate) -> Self {
        Self {
            revocation: entry.revocation.into(),
            not_after: entry.not_after.into(),
        }
    }

    pub(super) fn into_entry(
        self,
        partition: &str,
        key: &[u8],
    ) -> Result<RevokedCertificate, StoreError> {
        Ok(RevokedCertificate {
            serial: serial(partition, key, key)?,
            revocation: self.revocation.decode(partition, key)?,
            not_after: self.not_after.decode(partition, key)?,
        })
    }
}

/// [`AppScope`] as stored.
#[derive(Debug, Serialize, Deserialize)]
enum ScopeRow {
    All,
    Contracts(Vec<String>),
}

/// An application credential; the key is its name.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AppRow {
    scope: ScopeRow,
    can_create_contracts: bool,
    certificate: [u8; 16],
    revoked: bool,
    created_at: Instant,
}

impl AppRow {
    pub(super) fn of(app: &App) -> Self {
        Self {
            scope: match &app.scope {
                AppScope::All => ScopeRow::All,
                AppScope::Contracts(codes) => {
                    ScopeRow::Contracts(codes.iter().map(|c| c.as_str().to_owned()).collect())
                }
            },
            can_create_contracts: app.can_create_contracts,
            certificate: *app.certificate.as_bytes(),
            revoked: app.revoked,
            created_at: app.created_at.into(),
        }
    }

    pub(super) fn into_app(self, partition: &str, key: &[u8]) -> Result<App, StoreError> {
        let name: AppName = parsed(partition, key, key)?;
        Ok(App {
            name,
            scope: match self.scope {
                ScopeRow::All => AppScope::All,
                ScopeRow::Contracts(codes) => AppScope::Contracts(
                    codes
                        .iter()
                        .map(|c| parsed::<ContractCode>(partition, key, c.as_bytes()))
                        .collect::<Result<_, _>>()?,
                ),
            },
            can_create_contracts: self.can_create_contracts,
            certificate: serial(partition, key, &self.certificate)?,
            revoked: self.revoked,
            created_at: self.created_at.decode(partition, key)?,
        })
    }
}

/// [`EventKind`] as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum KindRow {
    Enroll,
    Reenroll,
    Reissue,
    Continue,
    Revoke,
    Lock,
    Unlock,
    PasswordChange,
    AccountCreate,
    AccountUpdate,
    ContractCreate,
    Query,
    AppCreate,
    AppRevoke,
}

impl From<EventKind> for KindRow {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Enroll => KindRow::Enroll,
            EventKind::Reenroll => KindRow::Reenroll,
            EventKind::Reissue => KindRow::Reissue,
            EventKind::Continue => KindRow::Continue,
            EventKind::Revoke => KindRow::Revoke,
            EventKind::Lock => KindRow::Lock,
            EventKind::Unlock => KindRow::Unlock,
            EventKind::PasswordChange => KindRow::PasswordChange,
            EventKind::AccountCreate => KindRow::AccountCreate,
            EventKind::AccountUpdate => KindRow::AccountUpdate,
            EventKind::ContractCreate => KindRow::ContractCreate,
            EventKind::Query => KindRow::Query,
            EventKind::AppCreate => KindRow::AppCreate,
            EventKind::AppRevoke => KindRow::AppRevoke,
        }
    }
}

impl From<KindRow> for EventKind {
    fn from(kind: KindRow) -> Self {
        match kind {
            KindRow::Enroll => EventKind::Enroll,
            KindRow::Reenroll => EventKind::Reenroll,
            KindRow::Reissue => EventKind::Reissue,
            KindRow::Continue => EventKind::Continue,
            KindRow::Revoke => EventKind::Revoke,
            KindRow::Lock => EventKind::Lock,
            KindRow::Unlock => EventKind::Unlock,
            KindRow::PasswordChange => EventKind::PasswordChange,
            KindRow::AccountCreate => EventKind::AccountCreate,
            KindRow::AccountUpdate => EventKind::AccountUpdate,
            KindRow::ContractCreate => EventKind::ContractCreate,
            KindRow::Query => EventKind::Query,
            KindRow::AppCreate => EventKind::AppCreate,
            KindRow::AppRevoke => EventKind::AppRevoke,
        }
    }
}

/// [`Actor`] as stored.
#[derive(Debug, Serialize, Deserialize)]
enum ActorRow {
    Operator { uid: Option<u32> },
    Account { id: String },
    App { name: String },
    Anonymous,
    System,
}

/// [`Outcome`] as stored.
#[derive(Debug, Serialize, Deserialize)]
enum OutcomeRow {
    Ok { detail: String },
    Refused { reason: String },
}

/// A history entry; the key is its number, big-endian.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct HistoryRow {
    at: Instant,
    account: Option<String>,
    contract: Option<String>,
    kind: KindRow,
    actor: ActorRow,
    source: String,
    outcome: OutcomeRow,
}

impl HistoryRow {
    pub(super) fn of(event: &HistoryEvent) -> Self {
        Self {
            at: event.at.into(),
            account: event.account.as_ref().map(|a| a.as_str().to_owned()),
            contract: event.contract.as_ref().map(|c| c.as_str().to_owned()),
            kind: event.kind.into(),
            actor: match &event.actor {
                Actor::Operator { uid } => ActorRow::Operator { uid: *uid },
                Actor::Account { id } => ActorRow::Account {
                    id: id.as_str().to_owned(),
                },
                Actor::App { name } => ActorRow::App {
                    name: name.as_str().to_owned(),
                },
                Actor::Anonymous => ActorRow::Anonymous,
                Actor::System => ActorRow::System,
            },
            source: event.source.clone(),
            outcome: match &event.outcome {
                Outcome::Ok { detail } => OutcomeRow::Ok {
                    detail: detail.clone(),
                },
                Outcome::Refused { reason } => OutcomeRow::Refused {
                    reason: reason.clone(),
                },
            },
        }
    }

    pub(super) fn into_entry(
        self,
        partition: &str,
        key: &[u8],
    ) -> Result<HistoryEntry, StoreError> {
        let seq = u64_be(partition, key, key)?;
        Ok(HistoryEntry {
            seq,
            event: HistoryEvent {
                at: self.at.decode(partition, key)?,
                account: self
                    .account
                    .map(|a| parsed(partition, key, a.as_bytes()))
                    .transpose()?,
                contract: self
                    .contract
                    .map(|c| parsed(partition, key, c.as_bytes()))
                    .transpose()?,
                kind: self.kind.into(),
                actor: match self.actor {
                    ActorRow::Operator { uid } => Actor::Operator { uid },
                    ActorRow::Account { id } => Actor::Account {
                        id: parsed(partition, key, id.as_bytes())?,
                    },
                    ActorRow::App { name } => Actor::App {
                        name: parsed(partition, key, name.as_bytes())?,
                    },
                    ActorRow::Anonymous => Actor::Anonymous,
                    ActorRow::System => Actor::System,
                },
                source: self.source,
                outcome: match self.outcome {
                    OutcomeRow::Ok { detail } => Outcome::Ok { detail },
                    OutcomeRow::Refused { reason } => Outcome::Refused { reason },
                },
            },
        })
    }
}

/// Decodes a whole row of type `R` and converts it with `into`.
pub(super) fn read<R: DeserializeOwned, T>(
    partition: &str,
    key: &[u8],
    bytes: &[u8],
    into: impl FnOnce(R, &str, &[u8]) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    into(decode::<R>(partition, key, bytes)?, partition, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanos: u32) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap()
            .replace_nanosecond(nanos)
            .unwrap()
    }

    #[test]
    fn rows_round_trip_and_are_compact() {
        let record = CertificateRecord {
            serial: Serial::from_bytes([7; 16]).unwrap(),
            holder: Holder::Account {
                id: "nozawa1".parse().unwrap(),
                contract: "5110".parse().unwrap(),
                role: Role::Master,
                issued_num: 3,
            },
            subject: "CN=nozawa1 5110".into(),
            not_before: at(1_700_000_000, 123_456_789),
            not_after: at(1_731_536_000, 0),
            key: KeyFingerprint([9; 32]),
            revocation: Some(Revocation {
                at: at(1_700_000_100, 0),
                reason: RevocationReason::PrivilegeWithdrawn,
            }),
            der: vec![0x30; 700],
        };
        let bytes = encode("certificates", &CertificateRow::of(&record)).unwrap();
        assert_eq!(bytes[0], ROW_FORMAT);
        // The DER, the key, the subject and a few bytes for everything else: no field names,
        // no base64, no numbers spelled out.
        assert!(bytes.len() < 700 + 32 + 15 + 60, "{} bytes", bytes.len());
        let back = read(
            "certificates",
            record.serial.as_bytes(),
            &bytes,
            CertificateRow::into_record,
        )
        .unwrap();
        assert_eq!(back, record);

        let event = HistoryEvent {
            at: at(1_700_000_000, 5),
            account: Some("nozawa1".parse().unwrap()),
            contract: None,
            kind: EventKind::AppRevoke,
            actor: Actor::Operator { uid: Some(0) },
            source: "admin-socket".into(),
            outcome: Outcome::Refused {
                reason: "no".into(),
            },
        };
        let bytes = encode("history", &HistoryRow::of(&event)).unwrap();
        let entry = read(
            "history",
            &42u64.to_be_bytes(),
            &bytes,
            HistoryRow::into_entry,
        )
        .unwrap();
        assert_eq!(entry, HistoryEntry { seq: 42, event });
    }

    #[test]
    fn rows_of_another_format_or_damaged_are_refused_with_their_place() {
        let row = encode(
            "contracts",
            &ContractRow::of(&Contract {
                code: "5110".parse().unwrap(),
                name: "Customer".into(),
                created_at: at(0, 0),
            }),
        )
        .unwrap();
        let mut newer = row.clone();
        newer[0] = ROW_FORMAT + 1;
        let err = read("contracts", b"5110", &newer, ContractRow::into_contract).unwrap_err();
        assert!(err.to_string().contains("row format 2"), "{err}");
        assert!(err.to_string().contains("'5110'"), "{err}");
        let err = read("contracts", b"5110", &row[..3], ContractRow::into_contract).unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
        // A key that is no valid code is corrupt too, not a panic.
        let err = read("contracts", b"51/10", &row, ContractRow::into_contract).unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
    }
}
