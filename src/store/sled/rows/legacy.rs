//! The JSON rows of estca before binary rows, frozen as they were written, read only by the
//! migration ([`crate::store::sled::migration`]). They are their own types, not the model's
//! serde derives, so that the model's serialisation can change without losing the ability to
//! read an old database.

use base64::Engine;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::model::{
    Account, Actor, App, AppScope, CertificateChoice, CertificateRecord, Contract, EventKind,
    HistoryEntry, HistoryEvent, Holder, KeyFingerprint, Outcome, Revocation, RevocationReason,
    Role,
};
use crate::store::budget::TokenBucket;
use crate::store::rows::{parse, serial, u64_be, Stored};
use crate::store::tables::{
    corrupt, ACCOUNTS, APPS, BUDGETS, CERTIFICATES, CONTRACTS, HISTORY, REVOKED,
};
use crate::store::{RevokedCertificate, StoreError};

/// The trees whose values were JSON rows.
pub(in crate::store::sled) const JSON_TREES: [&str; 7] = [
    CONTRACTS,
    ACCOUNTS,
    CERTIFICATES,
    APPS,
    HISTORY,
    REVOKED,
    BUDGETS,
];

/// The binary row of a JSON row read from `tree` at `key`.
pub(in crate::store::sled) fn to_binary(
    tree: &str,
    key: &[u8],
    json: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let bad = |e: serde_json::Error| corrupt(tree, key, &format!("unreadable JSON row: {e}"));
    match tree {
        CONTRACTS => {
            let row: ContractJson = serde_json::from_slice(json).map_err(bad)?;
            Contract {
                code: parse(tree, key, key)?,
                name: row.name,
                created_at: row.created_at,
                // The option did not exist when rows were JSON.
                server_keygen: false,
            }
            .encode()
        }
        ACCOUNTS => {
            let row: AccountJson = serde_json::from_slice(json).map_err(bad)?;
            row.into_model(key)?.encode()
        }
        CERTIFICATES => {
            let row: CertificateJson = serde_json::from_slice(json).map_err(bad)?;
            row.into_model(key)?.encode()
        }
        APPS => {
            let row: AppJson = serde_json::from_slice(json).map_err(bad)?;
            row.into_model(key)?.encode()
        }
        HISTORY => {
            let row: HistoryJson = serde_json::from_slice(json).map_err(bad)?;
            row.into_model(key)?.encode()
        }
        REVOKED => {
            let row: RevokedJson = serde_json::from_slice(json).map_err(bad)?;
            RevokedCertificate {
                serial: serial(tree, key, key)?,
                revocation: row.revocation.into_model(),
                not_after: row.not_after,
            }
            .encode()
        }
        BUDGETS => {
            let row: BucketJson = serde_json::from_slice(json).map_err(bad)?;
            TokenBucket {
                tokens: row.tokens,
                updated_ms: row.updated_ms,
            }
            .encode()
        }
        _ => Err(corrupt(tree, key, "this tree never held JSON rows")),
    }
}

/// A serial written as 32 hex digits.
fn hex_serial(tree: &str, key: &[u8], text: &str) -> Result<crate::model::Serial, StoreError> {
    parse(tree, key, text.as_bytes())
}

#[derive(Deserialize)]
struct ContractJson {
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoleJson {
    Master,
    User,
}

impl RoleJson {
    fn into_model(self) -> Role {
        match self {
            RoleJson::Master => Role::Master,
            RoleJson::User => Role::User,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChoiceJson {
    Continue,
    Reissue,
    Revoked,
}

#[derive(Deserialize)]
struct AccountJson {
    contract: String,
    role: RoleJson,
    name: String,
    password_hash: String,
    failed_attempts: u32,
    locked: bool,
    choice: ChoiceJson,
    current_certificate: Option<String>,
    issued_count: u32,
    version: u64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl AccountJson {
    fn into_model(self, key: &[u8]) -> Result<Account, StoreError> {
        let t = ACCOUNTS;
        Ok(Account {
            id: parse(t, key, key)?,
            contract: parse(t, key, self.contract.as_bytes())?,
            role: self.role.into_model(),
            name: self.name,
            password_hash: self.password_hash,
            failed_attempts: self.failed_attempts,
            locked: self.locked,
            choice: match self.choice {
                ChoiceJson::Continue => CertificateChoice::Continue,
                ChoiceJson::Reissue => CertificateChoice::Reissue,
                ChoiceJson::Revoked => CertificateChoice::Revoked,
            },
            current_certificate: self
                .current_certificate
                .map(|s| hex_serial(t, key, &s))
                .transpose()?,
            issued_count: self.issued_count,
            version: self.version,
            created_at: self.created_at,
            // The JSON rows predate removal: no ID was removed then.
            removed_at: None,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum ReasonJson {
    Unspecified,
    KeyCompromise,
    #[serde(rename = "cACompromise")]
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

#[derive(Deserialize)]
struct RevocationJson {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    reason: ReasonJson,
}

impl RevocationJson {
    fn into_model(self) -> Revocation {
        Revocation {
            at: self.at,
            reason: match self.reason {
                ReasonJson::Unspecified => RevocationReason::Unspecified,
                ReasonJson::KeyCompromise => RevocationReason::KeyCompromise,
                ReasonJson::CaCompromise => RevocationReason::CaCompromise,
                ReasonJson::AffiliationChanged => RevocationReason::AffiliationChanged,
                ReasonJson::Superseded => RevocationReason::Superseded,
                ReasonJson::CessationOfOperation => RevocationReason::CessationOfOperation,
                ReasonJson::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum HolderJson {
    Account {
        id: String,
        contract: String,
        role: RoleJson,
        issued_num: u32,
    },
    App {
        name: String,
    },
    #[serde(rename = "tls_server")]
    TlsServer {
        names: Vec<String>,
    },
    #[serde(rename = "ocsp_signer")]
    OcspSigner,
}

#[derive(Deserialize)]
struct CertificateJson {
    holder: HolderJson,
    subject: String,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    /// The key fingerprint as a JSON array of 32 numbers.
    key: [u8; 32],
    revocation: Option<RevocationJson>,
    /// Standard base64.
    der: String,
}

impl CertificateJson {
    fn into_model(self, key: &[u8]) -> Result<CertificateRecord, StoreError> {
        let t = CERTIFICATES;
        let holder = match self.holder {
            HolderJson::Account {
                id,
                contract,
                role,
                issued_num,
            } => Holder::Account {
                id: parse(t, key, id.as_bytes())?,
                contract: parse(t, key, contract.as_bytes())?,
                role: role.into_model(),
                issued_num,
            },
            HolderJson::App { name } => Holder::App {
                name: parse(t, key, name.as_bytes())?,
            },
            HolderJson::TlsServer { names } => Holder::TlsServer { names },
            HolderJson::OcspSigner => Holder::OcspSigner,
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(&self.der)
            .map_err(|e| corrupt(t, key, &format!("the DER is not base64: {e}")))?;
        Ok(CertificateRecord {
            serial: serial(t, key, key)?,
            holder,
            subject: self.subject,
            not_before: self.not_before,
            not_after: self.not_after,
            key: KeyFingerprint(self.key),
            revocation: self.revocation.map(RevocationJson::into_model),
            der,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ScopeJson {
    All,
    Contracts(Vec<String>),
}

#[derive(Deserialize)]
struct AppJson {
    scope: ScopeJson,
    can_create_contracts: bool,
    certificate: String,
    revoked: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl AppJson {
    fn into_model(self, key: &[u8]) -> Result<App, StoreError> {
        let t = APPS;
        Ok(App {
            name: parse(t, key, key)?,
            scope: match self.scope {
                ScopeJson::All => AppScope::All,
                ScopeJson::Contracts(codes) => AppScope::Contracts(
                    codes
                        .iter()
                        .map(|c| parse(t, key, c.as_bytes()))
                        .collect::<Result<_, _>>()?,
                ),
            },
            can_create_contracts: self.can_create_contracts,
            certificate: hex_serial(t, key, &self.certificate)?,
            revoked: self.revoked,
            created_at: self.created_at,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindJson {
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

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum ActorJson {
    Operator { uid: Option<u32> },
    Account { id: String },
    App { name: String },
    Anonymous,
    System,
}

#[derive(Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
enum OutcomeJson {
    Ok { detail: String },
    Refused { reason: String },
}

/// A history entry: its number and the event's fields side by side.
#[derive(Deserialize)]
struct HistoryJson {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    account: Option<String>,
    contract: Option<String>,
    kind: KindJson,
    actor: ActorJson,
    source: String,
    outcome: OutcomeJson,
}

impl HistoryJson {
    fn into_model(self, key: &[u8]) -> Result<HistoryEntry, StoreError> {
        let t = HISTORY;
        Ok(HistoryEntry {
            seq: u64_be(t, key, key)?,
            event: HistoryEvent {
                at: self.at,
                account: self
                    .account
                    .map(|a| parse(t, key, a.as_bytes()))
                    .transpose()?,
                contract: self
                    .contract
                    .map(|c| parse(t, key, c.as_bytes()))
                    .transpose()?,
                kind: match self.kind {
                    KindJson::Enroll => EventKind::Enroll,
                    KindJson::Reenroll => EventKind::Reenroll,
                    KindJson::Reissue => EventKind::Reissue,
                    KindJson::Continue => EventKind::Continue,
                    KindJson::Revoke => EventKind::Revoke,
                    KindJson::Lock => EventKind::Lock,
                    KindJson::Unlock => EventKind::Unlock,
                    KindJson::PasswordChange => EventKind::PasswordChange,
                    KindJson::AccountCreate => EventKind::AccountCreate,
                    KindJson::AccountUpdate => EventKind::AccountUpdate,
                    KindJson::ContractCreate => EventKind::ContractCreate,
                    KindJson::Query => EventKind::Query,
                    KindJson::AppCreate => EventKind::AppCreate,
                    KindJson::AppRevoke => EventKind::AppRevoke,
                },
                actor: match self.actor {
                    ActorJson::Operator { uid } => Actor::Operator { uid },
                    ActorJson::Account { id } => Actor::Account {
                        id: parse(t, key, id.as_bytes())?,
                    },
                    ActorJson::App { name } => Actor::App {
                        name: parse(t, key, name.as_bytes())?,
                    },
                    ActorJson::Anonymous => Actor::Anonymous,
                    ActorJson::System => Actor::System,
                },
                source: self.source,
                outcome: match self.outcome {
                    OutcomeJson::Ok { detail } => Outcome::Ok { detail },
                    OutcomeJson::Refused { reason } => Outcome::Refused { reason },
                },
            },
        })
    }
}

#[derive(Deserialize)]
struct RevokedJson {
    revocation: RevocationJson,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
}

#[derive(Deserialize)]
struct BucketJson {
    tokens: f64,
    updated_ms: i64,
}
