//! History rows (key: the entry's sequence number, u64 big-endian).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{from_row, parse, to_row, u64_be, Instant, Stored};
use crate::model::{Actor, EventKind, HistoryEntry, HistoryEvent, Outcome};
use crate::store::tables::HISTORY;
use crate::store::StoreError;

/// [`EventKind`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
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
    AccountRemove,
    ContractUpdate,
}

impl KindRow {
    fn of(kind: EventKind) -> Self {
        match kind {
            EventKind::Enroll => Self::Enroll,
            EventKind::Reenroll => Self::Reenroll,
            EventKind::Reissue => Self::Reissue,
            EventKind::Continue => Self::Continue,
            EventKind::Revoke => Self::Revoke,
            EventKind::Lock => Self::Lock,
            EventKind::Unlock => Self::Unlock,
            EventKind::PasswordChange => Self::PasswordChange,
            EventKind::AccountCreate => Self::AccountCreate,
            EventKind::AccountUpdate => Self::AccountUpdate,
            EventKind::ContractCreate => Self::ContractCreate,
            EventKind::Query => Self::Query,
            EventKind::AppCreate => Self::AppCreate,
            EventKind::AppRevoke => Self::AppRevoke,
            EventKind::AccountRemove => Self::AccountRemove,
            EventKind::ContractUpdate => Self::ContractUpdate,
        }
    }

    fn to_model(self) -> EventKind {
        match self {
            Self::Enroll => EventKind::Enroll,
            Self::Reenroll => EventKind::Reenroll,
            Self::Reissue => EventKind::Reissue,
            Self::Continue => EventKind::Continue,
            Self::Revoke => EventKind::Revoke,
            Self::Lock => EventKind::Lock,
            Self::Unlock => EventKind::Unlock,
            Self::PasswordChange => EventKind::PasswordChange,
            Self::AccountCreate => EventKind::AccountCreate,
            Self::AccountUpdate => EventKind::AccountUpdate,
            Self::ContractCreate => EventKind::ContractCreate,
            Self::Query => EventKind::Query,
            Self::AppCreate => EventKind::AppCreate,
            Self::AppRevoke => EventKind::AppRevoke,
            Self::AccountRemove => EventKind::AccountRemove,
            Self::ContractUpdate => EventKind::ContractUpdate,
        }
    }
}

/// [`Actor`] as stored.
#[derive(Serialize, Deserialize)]
enum ActorRow<'a> {
    Operator { uid: Option<u32> },
    Account { id: Cow<'a, str> },
    App { name: Cow<'a, str> },
    Anonymous,
    System,
}

/// [`Outcome`] as stored.
#[derive(Serialize, Deserialize)]
enum OutcomeRow<'a> {
    Ok(Cow<'a, str>),
    Refused(Cow<'a, str>),
}

#[derive(Serialize, Deserialize)]
struct HistoryRow<'a> {
    at: Instant,
    account: Option<Cow<'a, str>>,
    contract: Option<Cow<'a, str>>,
    kind: KindRow,
    actor: ActorRow<'a>,
    source: Cow<'a, str>,
    outcome: OutcomeRow<'a>,
}

/// The row of `event` (its number is the key).
pub(in crate::store) fn encode_event(event: &HistoryEvent) -> Result<Vec<u8>, StoreError> {
    to_row(
        HISTORY,
        &HistoryRow {
            at: Instant::of(event.at),
            account: event.account.as_ref().map(|a| Cow::Borrowed(a.as_str())),
            contract: event.contract.as_ref().map(|c| Cow::Borrowed(c.as_str())),
            kind: KindRow::of(event.kind),
            actor: match &event.actor {
                Actor::Operator { uid } => ActorRow::Operator { uid: *uid },
                Actor::Account { id } => ActorRow::Account {
                    id: Cow::Borrowed(id.as_str()),
                },
                Actor::App { name } => ActorRow::App {
                    name: Cow::Borrowed(name.as_str()),
                },
                Actor::Anonymous => ActorRow::Anonymous,
                Actor::System => ActorRow::System,
            },
            source: Cow::Borrowed(&event.source),
            outcome: match &event.outcome {
                Outcome::Ok { detail } => OutcomeRow::Ok(Cow::Borrowed(detail)),
                Outcome::Refused { reason } => OutcomeRow::Refused(Cow::Borrowed(reason)),
            },
        },
    )
}

impl Stored for HistoryEntry {
    const TABLE: &'static str = HISTORY;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        encode_event(&self.event)
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let t = HISTORY;
        let row: HistoryRow<'_> = from_row(t, key, value)?;
        Ok(HistoryEntry {
            seq: u64_be(t, key, key)?,
            event: HistoryEvent {
                at: row.at.to_model(t, key)?,
                account: row
                    .account
                    .map(|a| parse(t, key, a.as_bytes()))
                    .transpose()?,
                contract: row
                    .contract
                    .map(|c| parse(t, key, c.as_bytes()))
                    .transpose()?,
                kind: row.kind.to_model(),
                actor: match row.actor {
                    ActorRow::Operator { uid } => Actor::Operator { uid },
                    ActorRow::Account { id } => Actor::Account {
                        id: parse(t, key, id.as_bytes())?,
                    },
                    ActorRow::App { name } => Actor::App {
                        name: parse(t, key, name.as_bytes())?,
                    },
                    ActorRow::Anonymous => Actor::Anonymous,
                    ActorRow::System => Actor::System,
                },
                source: row.source.into_owned(),
                outcome: match row.outcome {
                    OutcomeRow::Ok(detail) => Outcome::Ok {
                        detail: detail.into_owned(),
                    },
                    OutcomeRow::Refused(reason) => Outcome::Refused {
                        reason: reason.into_owned(),
                    },
                },
            },
        })
    }
}
