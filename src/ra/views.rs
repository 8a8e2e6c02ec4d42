//! What administrators see, and the JSON of the management API: accounts and application
//! credentials without secrets, certificates with their status computed at the moment of
//! asking, contracts and history entries. The API sends these and the command line reads
//! them; the model's records are converted into them, so the records' own serde (if any) is
//! not the API's format and can change without changing what clients see.
//!
//! They live beside the registration authority because it builds most of them: what an
//! administrator may see of an account (never its password hash) and a certificate's status
//! on the registration authority's clock are its decisions. Contracts and history entries are
//! shown as they are; the API converts them with `From`.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{
    Account, AccountId, Actor, App, AppName, AppScope, CertificateChoice, CertificateRecord,
    CertificateStatus, Contract, ContractCode, EventKind, HistoryEntry, Holder, HostName, Outcome,
    Revocation, RevocationReason, Role, Serial,
};

/// An account as shown to administrators (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    /// Login ID.
    pub id: AccountId,
    /// Its contract.
    pub contract: ContractCode,
    /// Master or public ID.
    pub role: Role,
    /// Display name.
    pub name: String,
    /// Locked after too many wrong passwords.
    pub locked: bool,
    /// Consecutive wrong passwords.
    pub failed_attempts: u32,
    /// The administrator's last choice: `continue`, `reissue` (pending) or `revoked`.
    pub certificate_choice: CertificateChoice,
    /// How many certificates the ID has been issued.
    pub issued_count: u32,
    /// The latest certificate, whatever its status.
    pub certificate: Option<CertificateSummary>,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the ID was removed (`null`: it was not); a removed ID is left out of listings.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub removed_at: Option<OffsetDateTime>,
}

impl AccountView {
    /// The view of `account`, whose current certificate record is `current`, at `now`.
    pub fn new(
        account: &Account,
        current: Option<&CertificateRecord>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: account.id.clone(),
            contract: account.contract.clone(),
            role: account.role,
            name: account.name.clone(),
            locked: account.locked,
            failed_attempts: account.failed_attempts,
            certificate_choice: account.choice,
            issued_count: account.issued_count,
            certificate: current.map(|c| CertificateSummary::new(c, now)),
            created_at: account.created_at,
            removed_at: account.removed_at,
        }
    }
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevocationView {
    /// The revocation time.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The RFC 5280 reason, e.g. `keyCompromise`.
    pub reason: RevocationReason,
}

impl From<Revocation> for RevocationView {
    fn from(revocation: Revocation) -> Self {
        Self {
            at: revocation.at,
            reason: revocation.reason,
        }
    }
}

/// The essentials of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateSummary {
    /// Serial, hex.
    pub serial: Serial,
    /// CERTISSUEDNUM (absent for an application's certificate).
    pub issued_num: Option<u32>,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Status at the time of asking.
    pub status: CertificateStatus,
    /// Revocation time and reason, when revoked.
    pub revocation: Option<RevocationView>,
}

impl CertificateSummary {
    /// The summary of `record` at `now`.
    pub fn new(record: &CertificateRecord, now: OffsetDateTime) -> Self {
        Self {
            serial: record.serial,
            issued_num: match record.holder {
                Holder::Account { issued_num, .. } => Some(issued_num),
                Holder::App { .. } | Holder::TlsServer { .. } | Holder::OcspSigner => None,
            },
            not_before: record.not_before,
            not_after: record.not_after,
            status: record.status(now),
            revocation: record.revocation.map(RevocationView::from),
        }
    }
}

/// A certificate in full, for `estca cert show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateView {
    /// Serial, status, validity, revocation.
    #[serde(flatten)]
    pub summary: CertificateSummary,
    /// The ID it was issued to (absent for an application's certificate).
    pub account: Option<AccountId>,
    /// The ID's contract.
    pub contract: Option<ContractCode>,
    /// The application it was issued to (absent for an ID's certificate).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub app: Option<AppName>,
    /// The estca service it was issued to (absent for an ID's or an application's).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<ServiceView>,
    /// The subject.
    pub subject: String,
    /// The certificate, PEM.
    pub pem: String,
}

impl CertificateView {
    /// The view of `record` at `now`.
    pub fn new(record: &CertificateRecord, now: OffsetDateTime) -> Self {
        Self {
            summary: CertificateSummary::new(record, now),
            account: record.account().cloned(),
            contract: record.contract().cloned(),
            app: match &record.holder {
                Holder::App { name } => Some(name.clone()),
                _ => None,
            },
            service: match &record.holder {
                Holder::TlsServer { names } => Some(ServiceView::TlsServer {
                    names: names.clone(),
                }),
                Holder::OcspSigner => Some(ServiceView::OcspSigner),
                Holder::Account { .. } | Holder::App { .. } => None,
            },
            subject: record.subject.clone(),
            pem: crate::ca::pkcs7::pem_certificates(&[&record.der]),
        }
    }
}

/// Which of estca's own services a certificate belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceView {
    /// The daemon's TLS server certificate, for these names.
    TlsServer {
        /// DNS names and IP addresses.
        names: Vec<String>,
    },
    /// A delegated OCSP signing certificate.
    OcspSigner,
}

impl fmt::Display for ServiceView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceView::TlsServer { names } => {
                write!(f, "estca's TLS server ({})", names.join(", "))
            }
            ServiceView::OcspSigner => f.write_str("estca's OCSP responder (signing certificate)"),
        }
    }
}

/// The contracts an application may manage: `"all"` or `{"contracts": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppScopeView {
    /// Every contract, present and future.
    All,
    /// These contracts only.
    Contracts(Vec<ContractCode>),
}

impl From<&AppScope> for AppScopeView {
    fn from(scope: &AppScope) -> Self {
        match scope {
            AppScope::All => Self::All,
            AppScope::Contracts(codes) => Self::Contracts(codes.clone()),
        }
    }
}

impl fmt::Display for AppScopeView {
    /// `all contracts`, or the codes separated by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppScopeView::All => f.write_str("all contracts"),
            AppScopeView::Contracts(codes) => {
                let codes: Vec<&str> = codes.iter().map(ContractCode::as_str).collect();
                f.write_str(&codes.join(","))
            }
        }
    }
}

/// An application credential as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppView {
    /// Its name.
    pub name: AppName,
    /// The contracts it may manage.
    pub scope: AppScopeView,
    /// Whether it may create contracts and master IDs.
    pub can_create_contracts: bool,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Its certificate.
    pub certificate: Option<CertificateSummary>,
    /// The hosts its certificate also serves TLS for (subjectAltName); empty for a client
    /// only.
    #[serde(default)]
    pub hosts: Vec<HostName>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl AppView {
    /// The view of `app`, whose certificate record is `certificate`, at `now`.
    pub fn new(app: &App, certificate: Option<&CertificateRecord>, now: OffsetDateTime) -> Self {
        Self {
            name: app.name.clone(),
            scope: AppScopeView::from(&app.scope),
            can_create_contracts: app.can_create_contracts,
            revoked: app.revoked,
            certificate: certificate.map(|c| CertificateSummary::new(c, now)),
            hosts: certificate
                .map(|c| crate::ca::certificate_hosts(&c.der))
                .unwrap_or_default(),
            created_at: app.created_at,
        }
    }
}

/// A contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContractView {
    /// Its code.
    pub code: ContractCode,
    /// The customer's name.
    pub name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Whether its IDs may have estca generate their key pair (EST `serverkeygen`).
    #[serde(default)]
    pub server_keygen: bool,
}

impl From<&Contract> for ContractView {
    fn from(contract: &Contract) -> Self {
        Self {
            code: contract.code.clone(),
            name: contract.name.clone(),
            created_at: contract.created_at,
            server_keygen: contract.server_keygen,
        }
    }
}

/// Who did something: `{"kind": "operator", "uid": 0}`, `{"kind": "account", "id": …}`,
/// `{"kind": "app", "name": …}`, `{"kind": "anonymous"}` or `{"kind": "system"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ActorView {
    /// The CA operator over the admin socket.
    Operator {
        /// Unix user ID of the peer process, when the socket reported it.
        uid: Option<u32>,
    },
    /// An ID.
    Account {
        /// The ID.
        id: AccountId,
    },
    /// An application credential.
    App {
        /// Its name.
        name: AppName,
    },
    /// Someone who claimed an ID that does not exist or did not authenticate.
    Anonymous,
    /// estca itself.
    System,
}

impl From<&Actor> for ActorView {
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

impl From<ActorView> for Actor {
    fn from(view: ActorView) -> Self {
        match view {
            ActorView::Operator { uid } => Self::Operator { uid },
            ActorView::Account { id } => Self::Account { id },
            ActorView::App { name } => Self::App { name },
            ActorView::Anonymous => Self::Anonymous,
            ActorView::System => Self::System,
        }
    }
}

/// How an event ended: `{"result": "ok", "detail": …}` or `{"result": "refused", "reason": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum OutcomeView {
    /// Done.
    Ok {
        /// What was done.
        detail: String,
    },
    /// Refused.
    Refused {
        /// Why.
        reason: String,
    },
}

impl From<&Outcome> for OutcomeView {
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Ok { detail } => Self::Ok {
                detail: detail.clone(),
            },
            Outcome::Refused { reason } => Self::Refused {
                reason: reason.clone(),
            },
        }
    }
}

impl From<OutcomeView> for Outcome {
    fn from(view: OutcomeView) -> Self {
        match view {
            OutcomeView::Ok { detail } => Self::Ok { detail },
            OutcomeView::Refused { reason } => Self::Refused { reason },
        }
    }
}

/// One entry of the history (利用履歴照会).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntryView {
    /// Position in the history; larger is newer.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The ID concerned, when it exists.
    pub account: Option<AccountId>,
    /// The contract concerned, when known.
    pub contract: Option<ContractCode>,
    /// What happened.
    pub kind: EventKind,
    /// Who did it.
    pub actor: ActorView,
    /// Where the request came from (IP address, or `admin-socket`).
    pub source: String,
    /// How it ended.
    pub outcome: OutcomeView,
}

impl From<&HistoryEntry> for HistoryEntryView {
    fn from(entry: &HistoryEntry) -> Self {
        let event = &entry.event;
        Self {
            seq: entry.seq,
            at: event.at,
            account: event.account.clone(),
            contract: event.contract.clone(),
            kind: event.kind,
            actor: ActorView::from(&event.actor),
            source: event.source.clone(),
            outcome: OutcomeView::from(&event.outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The JSON of every view, spelled out: what API clients (and the command line of an older
    //! release) read must not change by accident.

    use super::*;
    use crate::model::{HistoryEvent, KeyFingerprint};

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap()
    }

    /// `value` as JSON is `expected`, and `expected` reads back as `value`.
    fn round_trip<T>(value: &T, expected: &str)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + fmt::Debug,
    {
        assert_eq!(json(value), expected);
        assert_eq!(&serde_json::from_str::<T>(expected).unwrap(), value);
    }

    fn record(holder: Holder, revocation: Option<Revocation>) -> CertificateRecord {
        CertificateRecord {
            serial: "441e22181c34f93d0f0e6bca0f6dcf52".parse().unwrap(),
            holder,
            subject: "CN=nozawa1 5110".into(),
            not_before: at("2026-01-20T09:00:00Z"),
            not_after: at("2027-01-20T09:00:00Z"),
            key: KeyFingerprint([7; 32]),
            revocation,
            der: vec![0x30, 0x00],
        }
    }

    #[test]
    fn accounts_and_certificates() {
        let mut account = Account::new(
            "nozawa1".parse().unwrap(),
            "5110".parse().unwrap(),
            Role::User,
            "野沢".into(),
            "$argon2id$secret".into(),
            at("2026-01-19T08:00:00.5Z"),
        );
        account.choice = CertificateChoice::Revoked;
        account.issued_count = 1;
        account.failed_attempts = 2;
        let revoked = record(
            Holder::Account {
                id: account.id.clone(),
                contract: account.contract.clone(),
                role: Role::User,
                issued_num: 1,
            },
            Some(Revocation {
                at: at("2026-02-01T00:00:00Z"),
                reason: RevocationReason::KeyCompromise,
            }),
        );
        let view = AccountView::new(&account, Some(&revoked), at("2026-03-01T00:00:00Z"));
        round_trip(
            &view,
            r#"{"id":"nozawa1","contract":"5110","role":"user","name":"野沢","locked":false,"failed_attempts":2,"certificate_choice":"revoked","issued_count":1,"certificate":{"serial":"441e22181c34f93d0f0e6bca0f6dcf52","issued_num":1,"not_before":"2026-01-20T09:00:00Z","not_after":"2027-01-20T09:00:00Z","status":"revoked","revocation":{"at":"2026-02-01T00:00:00Z","reason":"keyCompromise"}},"created_at":"2026-01-19T08:00:00.5Z","removed_at":null}"#,
        );
        assert!(!json(&view).contains("argon2"), "never the password hash");

        let tls = record(
            Holder::TlsServer {
                names: vec!["localhost".into(), "::1".into()],
            },
            None,
        );
        round_trip(
            &CertificateView::new(&tls, at("2028-01-01T00:00:00Z")),
            r#"{"serial":"441e22181c34f93d0f0e6bca0f6dcf52","issued_num":null,"not_before":"2026-01-20T09:00:00Z","not_after":"2027-01-20T09:00:00Z","status":"expired","revocation":null,"account":null,"contract":null,"service":{"kind":"tls_server","names":["localhost","::1"]},"subject":"CN=nozawa1 5110","pem":"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"}"#,
        );
        let app = record(
            Holder::App {
                name: "netbanking".parse().unwrap(),
            },
            None,
        );
        let view = CertificateView::new(&app, at("2026-03-01T00:00:00Z"));
        assert!(
            json(&view).contains(r#""status":"active","revocation":null,"account":null,"contract":null,"app":"netbanking","subject""#),
            "{}",
            json(&view)
        );
        let ocsp = CertificateView::new(
            &record(Holder::OcspSigner, None),
            at("2026-03-01T00:00:00Z"),
        );
        assert!(json(&ocsp).contains(r#""service":{"kind":"ocsp_signer"}"#));
    }

    #[test]
    fn apps_and_their_scopes() {
        let mut app = App {
            name: "netbanking".parse().unwrap(),
            scope: AppScope::Contracts(vec!["7001".parse().unwrap(), "5110".parse().unwrap()]),
            can_create_contracts: false,
            certificate: "441e22181c34f93d0f0e6bca0f6dcf52".parse().unwrap(),
            revoked: false,
            created_at: at("2026-01-19T08:00:00Z"),
        };
        let view = AppView::new(&app, None, at("2026-03-01T00:00:00Z"));
        round_trip(
            &view,
            r#"{"name":"netbanking","scope":{"contracts":["7001","5110"]},"can_create_contracts":false,"revoked":false,"certificate":null,"hosts":[],"created_at":"2026-01-19T08:00:00Z"}"#,
        );
        assert_eq!(view.scope.to_string(), "7001,5110");
        app.scope = AppScope::All;
        let view = AppView::new(&app, None, at("2026-03-01T00:00:00Z"));
        assert!(json(&view).contains(r#""scope":"all","#));
        assert_eq!(view.scope.to_string(), "all contracts");
    }

    #[test]
    fn contracts() {
        let contract = Contract {
            code: "7001".parse().unwrap(),
            name: "大手町エステート株式会社".into(),
            created_at: at("2026-11-29T22:12:37.0625045Z"),
            server_keygen: false,
        };
        round_trip(
            &ContractView::from(&contract),
            r#"{"code":"7001","name":"大手町エステート株式会社","created_at":"2026-11-29T22:12:37.0625045Z","server_keygen":false}"#,
        );
    }

    #[test]
    fn history_entries_of_every_actor_and_outcome() {
        let entry = |actor: Actor, outcome: Outcome| HistoryEntry {
            seq: 14,
            event: HistoryEvent {
                at: at("2026-11-29T22:12:37.457768433Z"),
                account: Some("Kiyo.0012".parse().unwrap()),
                contract: None,
                kind: EventKind::PasswordChange,
                actor,
                source: "127.0.0.1".into(),
                outcome,
            },
        };
        let ok = || Outcome::Ok {
            detail: "password set".into(),
        };
        for (actor, expected) in [
            (
                Actor::Operator { uid: Some(0) },
                r#"{"kind":"operator","uid":0}"#,
            ),
            (
                Actor::Operator { uid: None },
                r#"{"kind":"operator","uid":null}"#,
            ),
            (
                Actor::Account {
                    id: "Kiyo.0012".parse().unwrap(),
                },
                r#"{"kind":"account","id":"Kiyo.0012"}"#,
            ),
            (
                Actor::App {
                    name: "netbanking".parse().unwrap(),
                },
                r#"{"kind":"app","name":"netbanking"}"#,
            ),
            (Actor::Anonymous, r#"{"kind":"anonymous"}"#),
            (Actor::System, r#"{"kind":"system"}"#),
        ] {
            let view = HistoryEntryView::from(&entry(actor.clone(), ok()));
            round_trip(
                &view,
                &format!(
                    r#"{{"seq":14,"at":"2026-11-29T22:12:37.457768433Z","account":"Kiyo.0012","contract":null,"kind":"password_change","actor":{expected},"source":"127.0.0.1","outcome":{{"result":"ok","detail":"password set"}}}}"#
                ),
            );
            assert_eq!(Actor::from(view.actor), actor);
        }
        let refused = Outcome::Refused {
            reason: "authentication failed".into(),
        };
        let view = HistoryEntryView::from(&entry(Actor::Anonymous, refused.clone()));
        assert!(json(&view)
            .ends_with(r#""outcome":{"result":"refused","reason":"authentication failed"}}"#));
        assert_eq!(Outcome::from(view.outcome), refused);
    }
}
