//! The record lines of a backup file: serde types of the file's own, converted from and to
//! the model's records, so that the file keeps its format (version 2, byte for byte) whatever
//! becomes of the model or of a backend's rows.
//!
//! ```text
//! {"type":"contract","record":{"code":…,"name":…,"created_at":…}}
//! {"type":"account","record":{"id":…,"contract":…,"role":…,"name":…,"password_hash":…,
//!     "failed_attempts":…,"locked":…,"choice":…,"current_certificate":…,"issued_count":…,
//!     "version":…,"created_at":…[,"removed_at":…]}}
//! {"type":"certificate","record":{"serial":…,"holder":{"kind":…,…},"subject":…,
//!     "not_before":…,"not_after":…,"key":[32 numbers],"revocation":{"at":…,"reason":…}|null,
//!     "der":"<base64>"}}
//! {"type":"app","record":{"name":…,"scope":"all"|{"contracts":[…]},"can_create_contracts":…,
//!     "certificate":…,"revoked":…,"created_at":…}}
//! {"type":"history","record":{"seq":…,"at":…,"account":…,"contract":…,"kind":…,
//!     "actor":{"kind":…,…},"source":…,"outcome":{"result":…,…}}}
//! {"type":"crl_number","record":7}
//! ```
//!
//! Times are RFC 3339; IDs, codes, names and serials are their text; the enumerations
//! (role, choice, event kind, revocation reason) their names.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreRecord;
use crate::model::{
    Account, AccountId, Actor, App, AppName, AppScope, CertificateChoice, CertificateRecord,
    Contract, ContractCode, EventKind, HistoryEntry, HistoryEvent, Holder, KeyFingerprint, Outcome,
    Revocation, RevocationReason, Role, Serial,
};

/// One record line: `{"type": <kind>, "record": <the record>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "record", rename_all = "snake_case")]
pub(super) enum RecordLine {
    Contract(ContractLine),
    Account(AccountLine),
    Certificate(CertificateLine),
    App(AppLine),
    History(HistoryLine),
    CrlNumber(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct ContractLine {
    code: ContractCode,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Left out when off, so that a backup of contracts without the option is written as
    /// before it existed, and a backup from before reads as off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    server_keygen: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct AccountLine {
    id: AccountId,
    contract: ContractCode,
    role: Role,
    name: String,
    password_hash: String,
    failed_attempts: u32,
    locked: bool,
    choice: CertificateChoice,
    current_certificate: Option<Serial>,
    issued_count: u32,
    version: u64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Only for a removed ID, so that the lines of every other ID keep their bytes; absent
    /// from backups taken before IDs could be removed, which restore as they were.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    removed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct CertificateLine {
    serial: Serial,
    holder: HolderLine,
    subject: String,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    /// SHA-256 of the certified key, as 32 numbers.
    key: [u8; 32],
    revocation: Option<RevocationLine>,
    #[serde(with = "super::signature::base64_bytes")]
    der: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum HolderLine {
    Account {
        id: AccountId,
        contract: ContractCode,
        role: Role,
        issued_num: u32,
    },
    App {
        name: AppName,
    },
    #[serde(rename = "tls_server")]
    TlsServer {
        names: Vec<String>,
    },
    #[serde(rename = "ocsp_signer")]
    OcspSigner,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct RevocationLine {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    reason: RevocationReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct AppLine {
    name: AppName,
    scope: AppScopeLine,
    can_create_contracts: bool,
    certificate: Serial,
    revoked: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AppScopeLine {
    All,
    Contracts(Vec<ContractCode>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct HistoryLine {
    seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    account: Option<AccountId>,
    contract: Option<ContractCode>,
    kind: EventKind,
    actor: ActorLine,
    source: String,
    outcome: OutcomeLine,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum ActorLine {
    Operator { uid: Option<u32> },
    Account { id: AccountId },
    App { name: AppName },
    Anonymous,
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
enum OutcomeLine {
    Ok { detail: String },
    Refused { reason: String },
}

impl From<&StoreRecord> for RecordLine {
    fn from(record: &StoreRecord) -> Self {
        match record {
            StoreRecord::Contract(c) => Self::Contract(ContractLine {
                code: c.code.clone(),
                name: c.name.clone(),
                created_at: c.created_at,
                server_keygen: c.server_keygen,
            }),
            StoreRecord::Account(a) => Self::Account(AccountLine {
                id: a.id.clone(),
                contract: a.contract.clone(),
                role: a.role,
                name: a.name.clone(),
                password_hash: a.password_hash.clone(),
                failed_attempts: a.failed_attempts,
                locked: a.locked,
                choice: a.choice,
                current_certificate: a.current_certificate,
                issued_count: a.issued_count,
                version: a.version,
                created_at: a.created_at,
                removed_at: a.removed_at,
            }),
            StoreRecord::Certificate(c) => Self::Certificate(CertificateLine {
                serial: c.serial,
                holder: HolderLine::from(&c.holder),
                subject: c.subject.clone(),
                not_before: c.not_before,
                not_after: c.not_after,
                key: c.key.0,
                revocation: c.revocation.map(|r| RevocationLine {
                    at: r.at,
                    reason: r.reason,
                }),
                der: c.der.clone(),
            }),
            StoreRecord::App(a) => Self::App(AppLine {
                name: a.name.clone(),
                scope: match &a.scope {
                    AppScope::All => AppScopeLine::All,
                    AppScope::Contracts(codes) => AppScopeLine::Contracts(codes.clone()),
                },
                can_create_contracts: a.can_create_contracts,
                certificate: a.certificate,
                revoked: a.revoked,
                created_at: a.created_at,
            }),
            StoreRecord::History(h) => Self::History(HistoryLine {
                seq: h.seq,
                at: h.event.at,
                account: h.event.account.clone(),
                contract: h.event.contract.clone(),
                kind: h.event.kind,
                actor: ActorLine::from(&h.event.actor),
                source: h.event.source.clone(),
                outcome: match &h.event.outcome {
                    Outcome::Ok { detail } => OutcomeLine::Ok {
                        detail: detail.clone(),
                    },
                    Outcome::Refused { reason } => OutcomeLine::Refused {
                        reason: reason.clone(),
                    },
                },
            }),
            StoreRecord::CrlNumber(n) => Self::CrlNumber(*n),
        }
    }
}

impl From<&Holder> for HolderLine {
    fn from(holder: &Holder) -> Self {
        match holder {
            Holder::Account {
                id,
                contract,
                role,
                issued_num,
            } => Self::Account {
                id: id.clone(),
                contract: contract.clone(),
                role: *role,
                issued_num: *issued_num,
            },
            Holder::App { name } => Self::App { name: name.clone() },
            Holder::TlsServer { names } => Self::TlsServer {
                names: names.clone(),
            },
            Holder::OcspSigner => Self::OcspSigner,
        }
    }
}

impl From<&Actor> for ActorLine {
    fn from(actor: &Actor) -> Self {
        match actor {
            Actor::Operator { uid } => Self::Operator { uid: *uid },
            Actor::Account { id } => Self::Account { id: id.clone() },
            Actor::App { name } => Self::App { name: name.clone() },
            Actor::Anonymous => Self::Anonymous,
            Actor::System => Self::System,
        }
    }
}

impl From<RecordLine> for StoreRecord {
    fn from(line: RecordLine) -> Self {
        match line {
            RecordLine::Contract(c) => Self::Contract(Contract {
                code: c.code,
                name: c.name,
                created_at: c.created_at,
                server_keygen: c.server_keygen,
            }),
            RecordLine::Account(a) => Self::Account(Account {
                id: a.id,
                contract: a.contract,
                role: a.role,
                name: a.name,
                password_hash: a.password_hash,
                failed_attempts: a.failed_attempts,
                locked: a.locked,
                choice: a.choice,
                current_certificate: a.current_certificate,
                issued_count: a.issued_count,
                version: a.version,
                created_at: a.created_at,
                removed_at: a.removed_at,
            }),
            RecordLine::Certificate(c) => Self::Certificate(CertificateRecord {
                serial: c.serial,
                holder: c.holder.into(),
                subject: c.subject,
                not_before: c.not_before,
                not_after: c.not_after,
                key: KeyFingerprint(c.key),
                revocation: c.revocation.map(|r| Revocation {
                    at: r.at,
                    reason: r.reason,
                }),
                der: c.der,
            }),
            RecordLine::App(a) => Self::App(App {
                name: a.name,
                scope: match a.scope {
                    AppScopeLine::All => AppScope::All,
                    AppScopeLine::Contracts(codes) => AppScope::Contracts(codes),
                },
                can_create_contracts: a.can_create_contracts,
                certificate: a.certificate,
                revoked: a.revoked,
                created_at: a.created_at,
            }),
            RecordLine::History(h) => Self::History(HistoryEntry {
                seq: h.seq,
                event: HistoryEvent {
                    at: h.at,
                    account: h.account,
                    contract: h.contract,
                    kind: h.kind,
                    actor: h.actor.into(),
                    source: h.source,
                    outcome: match h.outcome {
                        OutcomeLine::Ok { detail } => Outcome::Ok { detail },
                        OutcomeLine::Refused { reason } => Outcome::Refused { reason },
                    },
                },
            }),
            RecordLine::CrlNumber(n) => Self::CrlNumber(n),
        }
    }
}

impl From<HolderLine> for Holder {
    fn from(line: HolderLine) -> Self {
        match line {
            HolderLine::Account {
                id,
                contract,
                role,
                issued_num,
            } => Self::Account {
                id,
                contract,
                role,
                issued_num,
            },
            HolderLine::App { name } => Self::App { name },
            HolderLine::TlsServer { names } => Self::TlsServer { names },
            HolderLine::OcspSigner => Self::OcspSigner,
        }
    }
}

impl From<ActorLine> for Actor {
    fn from(line: ActorLine) -> Self {
        match line {
            ActorLine::Operator { uid } => Self::Operator { uid },
            ActorLine::Account { id } => Self::Account { id },
            ActorLine::App { name } => Self::App { name },
            ActorLine::Anonymous => Self::Anonymous,
            ActorLine::System => Self::System,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account line names `removed_at` only for a removed ID, so that every other line
    /// keeps the bytes of backups taken before IDs could be removed, which read back as IDs
    /// never removed; a removed ID's line reads back removed.
    #[test]
    fn an_account_line_carries_the_removal_only_of_a_removed_id() {
        let live = Account::new(
            "nozawa1".parse().unwrap(),
            "5110".parse().unwrap(),
            Role::User,
            "Nozawa".into(),
            "$argon2id$x".into(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let removed = Account {
            removed_at: Some(OffsetDateTime::UNIX_EPOCH + time::Duration::days(400)),
            ..live.clone()
        };
        let line = |account: &Account| {
            serde_json::to_string(&RecordLine::from(&StoreRecord::Account(account.clone())))
                .unwrap()
        };
        let back =
            |text: &str| StoreRecord::from(serde_json::from_str::<RecordLine>(text).unwrap());
        let live_line = line(&live);
        assert!(!live_line.contains("removed_at"), "{live_line}");
        assert_eq!(back(&live_line), StoreRecord::Account(live));
        let removed_line = line(&removed);
        assert!(
            removed_line.contains(r#""removed_at":"1971-02-05T00:00:00Z""#),
            "{removed_line}"
        );
        assert_eq!(back(&removed_line), StoreRecord::Account(removed));
    }
}
