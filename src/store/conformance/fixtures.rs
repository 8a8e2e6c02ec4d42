//! What the tests of the suite build their cases from: a store with a contract and an ID,
//! records with placeholder DER (a store never parses it), and history events.

use std::sync::Arc;

use time::OffsetDateTime;

use super::Backend;
use crate::model::{
    Account, AccountId, Actor, CertificateChoice, CertificateRecord, Contract, ContractCode,
    EventKind, HistoryEvent, Holder, KeyFingerprint, Outcome, Role, Serial,
};
use crate::store::{HistoryQuery, NewCertificate, Page, PageRequest, RaStore, Store};

pub(in crate::store) const DAY: i64 = 86_400;

/// A store at a place of its own, which a test can close and open again.
pub(in crate::store) struct Fixture<B: Backend> {
    place: B::Place,
    store: Option<Arc<dyn Store>>,
}

impl<B: Backend> Fixture<B> {
    /// A fresh, empty store.
    pub(super) async fn empty() -> Self {
        let place = B::place().await;
        let store = B::open(&place).await;
        Self {
            place,
            store: Some(store),
        }
    }

    /// A store with contract `5110` and its ID `nozawa1`.
    pub(in crate::store) async fn with_nozawa1() -> Self {
        let f = Self::empty().await;
        add_account(f.store().as_ref(), "nozawa1").await;
        f
    }

    /// The open store.
    pub(super) fn store(&self) -> &Arc<dyn Store> {
        self.store.as_ref().expect("the store is open")
    }

    /// Closes the store (every other handle must be gone) and opens it again.
    pub(super) async fn reopen(&mut self) {
        let store = self.store.take().expect("the store is open");
        assert_eq!(
            Arc::strong_count(&store),
            1,
            "a handle on the store is still held"
        );
        drop(store);
        self.store = Some(B::open(&self.place).await);
    }
}

/// Creates contract `5110` and its ID `account_id` in `store`.
pub(in crate::store) async fn add_account<S: RaStore + ?Sized>(store: &S, account_id: &str) {
    add_accounts(store, &[account_id]).await;
}

/// Creates contract `5110` and its IDs `account_ids` in `store`.
pub(in crate::store) async fn add_accounts<S: RaStore + ?Sized>(
    store: &S,
    account_ids: &[impl AsRef<str>],
) {
    store
        .create_contract(
            contract("5110"),
            event(EventKind::ContractCreate, None, Some("5110"), 0),
        )
        .await
        .unwrap();
    for account_id in account_ids.iter().map(AsRef::as_ref) {
        store
            .create_account(
                account(account_id, "5110"),
                event(EventKind::AccountCreate, Some(account_id), Some("5110"), 1),
            )
            .await
            .unwrap();
    }
}

pub(in crate::store) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
}

pub(in crate::store) fn id(s: &str) -> AccountId {
    s.parse().unwrap()
}

pub(in crate::store) fn code(s: &str) -> ContractCode {
    s.parse().unwrap()
}

pub(in crate::store) fn serial(b: u8) -> Serial {
    Serial::from_bytes([b; 16]).unwrap()
}

pub(in crate::store) fn event(
    kind: EventKind,
    account: Option<&str>,
    contract: Option<&str>,
    t: i64,
) -> HistoryEvent {
    HistoryEvent {
        at: at(t),
        account: account.map(id),
        contract: contract.map(code),
        kind,
        actor: Actor::System,
        source: "test".into(),
        outcome: Outcome::Ok {
            detail: String::new(),
        },
    }
}

pub(in crate::store) fn contract(c: &str) -> Contract {
    Contract {
        code: code(c),
        name: format!("Contract {c}"),
        created_at: at(0),
        server_keygen: false,
    }
}

/// An account as a caller hands it in (its version is ignored: created accounts start at 0).
pub(in crate::store) fn account(i: &str, c: &str) -> Account {
    Account {
        version: 7,
        ..Account::new(
            id(i),
            code(c),
            Role::User,
            format!("User {i}"),
            "$argon2id$fake".into(),
            at(0),
        )
    }
}

/// A certificate of `account` (contract 5110) with fake DER: the store never parses it.
pub(in crate::store) fn record(
    s: u8,
    account: &str,
    issued_num: u32,
    key: u8,
    not_before: i64,
) -> CertificateRecord {
    CertificateRecord {
        serial: serial(s),
        holder: Holder::Account {
            id: id(account),
            contract: code("5110"),
            role: Role::User,
            issued_num,
        },
        subject: format!("CN={account}"),
        not_before: at(not_before),
        not_after: at(not_before + 365 * DAY),
        key: KeyFingerprint([key; 32]),
        revocation: None,
        der: vec![0x30, 0x03, 0x02, 0x01, s],
    }
}

/// The registration authority's decision to issue `record`, superseding `supersedes`.
pub(in crate::store) fn issuance(
    expected_version: u64,
    record: CertificateRecord,
    supersedes: Option<Serial>,
) -> NewCertificate {
    let event = HistoryEvent {
        account: record.account().cloned(),
        ..event(EventKind::Enroll, None, Some("5110"), 100)
    };
    NewCertificate {
        expected_version,
        record,
        supersedes,
        choice: CertificateChoice::Continue,
        event,
    }
}

/// Reserves the serial of `record`, then commits its issuance.
pub(in crate::store) async fn issue(
    store: &dyn Store,
    expected_version: u64,
    record: CertificateRecord,
    supersedes: Option<Serial>,
) -> Result<crate::store::IssuedCertificate, crate::store::StoreError> {
    let not_before = record.not_before;
    store.reserve_serial(record.serial, not_before).await?;
    store
        .commit_issuance(issuance(expected_version, record, supersedes))
        .await
}

/// Every entry of a history query, newest first, read in pages of 1,000.
pub(in crate::store) async fn all_history(
    store: &dyn Store,
    query: HistoryQuery,
) -> Vec<crate::model::HistoryEntry> {
    Page::collect_all(1000, |page| {
        let query = HistoryQuery {
            page,
            ..query.clone()
        };
        async move { store.history(&query).await }
    })
    .await
    .unwrap()
}

/// Every account, all or of one contract.
pub(in crate::store) async fn all_accounts(
    store: &dyn Store,
    contract: Option<&str>,
) -> Vec<String> {
    let contract = contract.map(code);
    Page::collect_all(1000, |page: PageRequest| {
        let contract = contract.clone();
        async move { store.accounts(contract.as_ref(), page).await }
    })
    .await
    .unwrap()
    .into_iter()
    .map(|a| a.id.to_string())
    .collect()
}

/// Every record `store` exports, in export order: what a backup of it holds.
pub(in crate::store) async fn export_all(store: &dyn Store) -> Vec<crate::store::StoreRecord> {
    let mut records = Vec::new();
    store
        .export(&mut |r| {
            records.push(r);
            Ok(())
        })
        .await
        .unwrap();
    records
}
