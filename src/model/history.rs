//! History (利用履歴): who did what, when, from where, and how it ended.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, AppName, ContractCode};

/// Who did something: recorded in history and used for authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Actor {
    /// The CA operator, over the admin socket (with the Unix user ID when known).
    Operator {
        /// Unix user ID of the peer process, when the socket reported it.
        uid: Option<u32>,
    },
    /// An account acting for itself (enrollment) or, later, as an administrator.
    Account {
        /// The account's ID.
        id: AccountId,
    },
    /// An application credential.
    App {
        /// The application's name.
        name: AppName,
    },
    /// Someone who claimed an ID that does not exist or did not authenticate.
    Anonymous,
    /// The daemon itself (e.g. a lock after too many failures).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator { uid: Some(uid) } => write!(f, "operator(uid={uid})"),
            Actor::Operator { uid: None } => f.write_str("operator"),
            Actor::Account { id } => write!(f, "{id}"),
            Actor::App { name } => write!(f, "app:{name}"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::System => f.write_str("estca"),
        }
    }
}

/// What happened, for the history (利用履歴照会).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// simpleenroll (ID and password).
    Enroll,
    /// simplereenroll (client certificate).
    Reenroll,
    /// 再発行する chosen.
    Reissue,
    /// 継続利用する chosen.
    Continue,
    /// 失効する chosen.
    Revoke,
    /// Locked after too many wrong passwords.
    Lock,
    /// Unlocked.
    Unlock,
    /// Password set or changed.
    PasswordChange,
    /// Account created.
    AccountCreate,
    /// Account renamed.
    AccountUpdate,
    /// Contract created.
    ContractCreate,
    /// A read-only management call (list, show, history, certificate).
    Query,
    /// An application credential issued.
    AppCreate,
    /// An application credential revoked.
    AppRevoke,
    /// Account (ID) removed: its certificate revoked, the ID never to authenticate or be
    /// created again.
    AccountRemove,
    /// A contract's options changed (e.g. `server_keygen`).
    ContractUpdate,
}

impl EventKind {
    /// The snake_case name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Enroll => "enroll",
            EventKind::Reenroll => "reenroll",
            EventKind::Reissue => "reissue",
            EventKind::Continue => "continue",
            EventKind::Revoke => "revoke",
            EventKind::Lock => "lock",
            EventKind::Unlock => "unlock",
            EventKind::PasswordChange => "password_change",
            EventKind::AccountCreate => "account_create",
            EventKind::AccountUpdate => "account_update",
            EventKind::ContractCreate => "contract_create",
            EventKind::Query => "query",
            EventKind::AppCreate => "app_create",
            EventKind::AppRevoke => "app_revoke",
            EventKind::AccountRemove => "account_remove",
            EventKind::ContractUpdate => "contract_update",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an event ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    /// Done; `detail` says what (e.g. the serial issued).
    Ok {
        /// What was done, for people.
        detail: String,
    },
    /// Refused; `reason` says why.
    Refused {
        /// Why, for people.
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok { detail } if detail.is_empty() => f.write_str("ok"),
            Outcome::Ok { detail } => write!(f, "ok: {detail}"),
            Outcome::Refused { reason } => write!(f, "refused: {reason}"),
        }
    }
}

/// One line of history, as a caller hands it to the store (which numbers it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The account concerned, when it exists.
    pub account: Option<AccountId>,
    /// The contract concerned, when known.
    pub contract: Option<ContractCode>,
    /// What happened.
    pub kind: EventKind,
    /// Who did it.
    pub actor: Actor,
    /// Where the request came from (IP address, or `admin-socket`).
    pub source: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// A history event as stored: numbered in the order the store appended it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Position in the append-only log; larger is newer.
    pub seq: u64,
    /// The event.
    #[serde(flatten)]
    pub event: HistoryEvent,
}
