//! The store's behaviours on the fjall backend: the unit tests of the former sled store
//! (`main:src/store/sled_store.rs`), ported to the split interfaces, and what only this
//! backend does (snapshot export beside writers, the layout check). To become the shared
//! conformance suite's run on fjall once it is merged.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use super::{FjallStore, META_SCHEMA};
use crate::model::{
    Account, AccountId, Actor, App, AppName, CertificateChoice, CertificateRecord, Contract,
    ContractCode, EventKind, HistoryEntry, HistoryEvent, Holder, KeyFingerprint, Outcome,
    Revocation, RevocationReason, Role, Serial,
};
use crate::store::{
    AccountChange, AccountEdit, BackupStore, Budget, BudgetSpend, Cursor, HistoryQuery,
    NewCertificate, Page, PageRequest, PasswordAttempt, RaStore, RevocationStore,
    RevokedCertificate, ServiceCertificates, StoreError, StoreReads, StoreRecord,
};

const DAY: i64 = 86_400;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
}

fn id(s: &str) -> AccountId {
    s.parse().unwrap()
}

fn code(s: &str) -> ContractCode {
    s.parse().unwrap()
}

fn serial(b: u8) -> Serial {
    Serial::from_bytes([b; 16]).unwrap()
}

fn open(path: &Path) -> FjallStore {
    FjallStore::open(path, 8 * 1024 * 1024).unwrap()
}

fn event(kind: EventKind, account: Option<&str>, contract: Option<&str>, t: i64) -> HistoryEvent {
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

fn contract(c: &str) -> Contract {
    Contract {
        code: code(c),
        name: format!("Contract {c}"),
        created_at: at(0),
    }
}

fn account(i: &str, c: &str) -> Account {
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

/// A record with fake DER: the store never parses it.
fn record(s: u8, account: &str, issued_num: u32, key: u8, not_before: i64) -> CertificateRecord {
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

/// An issuance decided as the registration authority decides it on a first certificate (or
/// on one it supersedes).
fn issuance(
    expected_version: u64,
    record: CertificateRecord,
    supersedes: Option<Serial>,
) -> NewCertificate {
    let account = record.account().map(|a| a.to_string()).unwrap_or_default();
    NewCertificate {
        expected_version,
        record,
        supersedes,
        choice: CertificateChoice::Continue,
        event: event(EventKind::Enroll, Some(&account), Some("5110"), 100),
    }
}

/// Reserves the record's serial, then commits the issuance.
async fn issue(
    store: &FjallStore,
    issuance: NewCertificate,
) -> Result<crate::store::IssuedCertificate, StoreError> {
    match store
        .reserve_serial(issuance.record.serial, issuance.record.not_before)
        .await
    {
        Ok(_) | Err(StoreError::Conflict) => {}
        Err(e) => return Err(e),
    }
    store.commit_issuance(issuance).await
}

/// A store with contract 5110 and its account `nozawa1`.
async fn setup() -> (tempfile::TempDir, FjallStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    store
        .create_contract(
            contract("5110"),
            event(EventKind::ContractCreate, None, Some("5110"), 0),
        )
        .await
        .unwrap();
    store
        .create_account(
            account("nozawa1", "5110"),
            event(EventKind::AccountCreate, Some("nozawa1"), Some("5110"), 1),
        )
        .await
        .unwrap();
    (dir, store)
}

fn all_history() -> HistoryQuery {
    HistoryQuery {
        page: PageRequest::first(1000),
        ..HistoryQuery::default()
    }
}

async fn history(store: &FjallStore, query: &HistoryQuery) -> Vec<HistoryEntry> {
    store.history(query).await.unwrap().items
}

fn change(id_: &str, expected_version: u64, edits: Vec<AccountEdit>) -> AccountChange {
    AccountChange {
        id: id(id_),
        expected_version,
        edits,
        revoke: None,
        events: vec![],
    }
}

#[tokio::test]
async fn contracts_and_accounts_are_created_once_and_listed_by_pages() {
    let (_dir, store) = setup().await;

    let dup = store
        .create_contract(
            contract("5110"),
            event(EventKind::ContractCreate, None, None, 2),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(ref w)) if w == "contract 5110"));
    store
        .create_contract(
            contract("4000"),
            event(EventKind::ContractCreate, None, None, 2),
        )
        .await
        .unwrap();
    assert_eq!(
        store.contract(&code("5110")).await.unwrap(),
        Some(contract("5110"))
    );
    assert_eq!(store.contract(&code("9999")).await.unwrap(), None);
    let codes: Vec<String> = Page::collect_all(1, |p| store.contracts(p))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code.to_string())
        .collect();
    assert_eq!(codes, ["4000", "5110"]);

    let missing = store
        .create_account(
            account("x", "9999"),
            event(EventKind::AccountCreate, None, None, 3),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(ref w)) if w == "contract 9999"));
    let dup = store
        .create_account(
            account("nozawa1", "5110"),
            event(EventKind::AccountCreate, None, None, 3),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(ref w)) if w == "account nozawa1"));
    for (i, c) in [("b-user", "4000"), ("a-user", "5110"), ("c-user", "5110")] {
        store
            .create_account(
                account(i, c),
                event(EventKind::AccountCreate, None, None, 4),
            )
            .await
            .unwrap();
    }

    let stored = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(stored.version, 0, "created accounts start at version 0");
    assert_eq!(
        stored,
        Account {
            version: 0,
            ..account("nozawa1", "5110")
        }
    );
    assert_eq!(store.account(&id("nobody")).await.unwrap(), None);

    let ids = |accounts: Vec<Account>| -> Vec<String> {
        accounts.into_iter().map(|a| a.id.to_string()).collect()
    };
    // Every page size gives the same listing, each page at most its size.
    let c5110 = code("5110");
    for size in [1, 2, 3, 100] {
        assert_eq!(
            ids(Page::collect_all(size, |p| store.accounts(None, p))
                .await
                .unwrap()),
            ["a-user", "b-user", "c-user", "nozawa1"]
        );
        assert_eq!(
            ids(Page::collect_all(size, |p| store.accounts(Some(&c5110), p))
                .await
                .unwrap()),
            ["a-user", "c-user", "nozawa1"]
        );
    }
    let first = store
        .accounts(Some(&code("5110")), PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(ids(first.items), ["a-user", "c-user"]);
    let rest = store
        .accounts(
            Some(&code("5110")),
            PageRequest {
                after: first.next,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!((ids(rest.items), rest.next), (vec!["nozawa1".into()], None));
    assert!(store
        .accounts(Some(&code("9999")), PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        store.accounts(None, PageRequest::first(0)).await.unwrap(),
        Page {
            items: vec![],
            next: None
        }
    );

    // Refused operations leave no history behind: 2 contracts + 4 accounts.
    assert_eq!(history(&store, &all_history()).await.len(), 6);
}

#[tokio::test]
async fn update_account_is_compare_and_swap_of_edits() {
    let (_dir, store) = setup().await;
    let updated = store
        .update_account(AccountChange {
            events: vec![event(
                EventKind::AccountUpdate,
                Some("nozawa1"),
                Some("5110"),
                10,
            )],
            ..change(
                "nozawa1",
                0,
                vec![
                    AccountEdit::Rename("Renamed".into()),
                    AccountEdit::SetPasswordHash("$argon2id$new".into()),
                    AccountEdit::Choose(CertificateChoice::Reissue),
                ],
            )
        })
        .await
        .unwrap();
    assert_eq!(updated.version, 1);
    assert_eq!(updated.name, "Renamed");
    assert_eq!(updated.password_hash, "$argon2id$new");
    assert_eq!(updated.choice, CertificateChoice::Reissue);
    assert_eq!(
        store.account(&id("nozawa1")).await.unwrap(),
        Some(updated.clone())
    );

    // A decision taken on version 0 is stale now.
    let stale = store
        .update_account(AccountChange {
            events: vec![event(
                EventKind::AccountUpdate,
                Some("nozawa1"),
                Some("5110"),
                11,
            )],
            ..change("nozawa1", 0, vec![AccountEdit::Rename("Stale".into())])
        })
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)));
    assert_eq!(store.account(&id("nozawa1")).await.unwrap(), Some(updated));

    let unknown = store.update_account(change("ghost", 0, vec![])).await;
    assert!(matches!(unknown, Err(StoreError::NotFound(ref w)) if w == "account ghost"));

    let q = HistoryQuery {
        kind: Some(EventKind::AccountUpdate),
        ..all_history()
    };
    assert_eq!(
        history(&store, &q).await.len(),
        1,
        "refusals append nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_attempts_are_counted_up_to_the_limit_outside_the_version() {
    let (_dir, store) = setup().await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .count_password_attempt(&id("nozawa1"), 5)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut counted = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            PasswordAttempt::Counted(a) => counted.push(a.failed_attempts),
            PasswordAttempt::OverLimit(a) => assert_eq!(a.failed_attempts, 5),
            PasswordAttempt::UnknownId => panic!("the account exists"),
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, vec![1, 2, 3, 4, 5], "each count drawn once");
    let stored = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(
        (stored.failed_attempts, stored.version),
        (5, 0),
        "counting is not a change of the version"
    );

    // Locking needs the count it was decided on; a lower count refuses it.
    let early = store
        .update_account(change("nozawa1", 0, vec![AccountEdit::LockAtFailures(6)]))
        .await;
    assert!(matches!(early, Err(StoreError::Conflict)), "{early:?}");
    let locked = store
        .update_account(change("nozawa1", 0, vec![AccountEdit::LockAtFailures(5)]))
        .await
        .unwrap();
    assert!(locked.locked);
    // A locked ID counts nothing and a right password clears nothing.
    assert!(matches!(
        store.count_password_attempt(&id("nozawa1"), 5).await.unwrap(),
        PasswordAttempt::OverLimit(a) if a.locked
    ));
    let still = store.clear_password_attempts(&id("nozawa1")).await.unwrap();
    assert_eq!((still.locked, still.failed_attempts), (true, 5));
    let unlocked = store
        .update_account(change("nozawa1", 1, vec![AccountEdit::Unlock]))
        .await
        .unwrap();
    assert_eq!((unlocked.locked, unlocked.failed_attempts), (false, 0));

    store
        .count_password_attempt(&id("nozawa1"), 5)
        .await
        .unwrap();
    let cleared = store.clear_password_attempts(&id("nozawa1")).await.unwrap();
    assert_eq!((cleared.failed_attempts, cleared.version), (0, 2));
    assert_eq!(
        store.count_password_attempt(&id("ghost"), 5).await.unwrap(),
        PasswordAttempt::UnknownId
    );
    assert!(matches!(
        store.clear_password_attempts(&id("ghost")).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budgets_hold_under_concurrency_refill_and_take_refunds() {
    let (_dir, store) = setup().await;
    let store = Arc::new(store);
    let budget = Budget {
        capacity: 3,
        window: std::time::Duration::from_secs(30),
    };
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_from_budget("b", budget, at(0)).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        match t.await.unwrap() {
            BudgetSpend::Taken => taken += 1,
            BudgetSpend::Exhausted { retry_after_secs } => assert_eq!(retry_after_secs, 10),
        }
    }
    assert_eq!(taken, 3);
    store.refund_to_budget("b", budget, at(0)).await.unwrap();
    assert_eq!(
        store.take_from_budget("b", budget, at(0)).await.unwrap(),
        BudgetSpend::Taken
    );
    // One token per 10 s comes back; other budgets are separate.
    assert!(matches!(
        store.take_from_budget("b", budget, at(9)).await.unwrap(),
        BudgetSpend::Exhausted { .. }
    ));
    assert_eq!(
        store.take_from_budget("b", budget, at(10)).await.unwrap(),
        BudgetSpend::Taken
    );
    assert_eq!(
        store.take_from_budget("c", budget, at(10)).await.unwrap(),
        BudgetSpend::Taken
    );
    // A refund to a budget never used creates nothing.
    store.refund_to_budget("d", budget, at(10)).await.unwrap();
    assert!(store.parts.budgets.get("d").unwrap().is_none());
}

#[tokio::test]
async fn ids_differing_by_case_only_are_refused() {
    let (_dir, store) = setup().await;
    for variant in ["NOZAWA1", "Nozawa1", "nozawA1"] {
        let refused = store
            .create_account(
                account(variant, "5110"),
                event(EventKind::AccountCreate, None, None, 2),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::AlreadyExists(_))),
            "{variant}: {refused:?}"
        );
    }
    assert!(store.account(&id("NOZAWA1")).await.unwrap().is_none());
}

#[tokio::test]
async fn update_account_revokes_in_the_same_step() {
    let (_dir, store) = setup().await;
    store
        .create_account(
            account("other", "5110"),
            event(EventKind::AccountCreate, None, None, 2),
        )
        .await
        .unwrap();
    issue(&store, issuance(0, record(1, "nozawa1", 1, 1, 100), None))
        .await
        .unwrap();
    issue(&store, issuance(0, record(2, "other", 1, 2, 100), None))
        .await
        .unwrap();

    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    let revocation = Revocation {
        at: at(200),
        reason: RevocationReason::KeyCompromise,
    };
    let revoke = |version: u64, serial: Serial| AccountChange {
        revoke: Some((serial, revocation)),
        events: vec![event(EventKind::Revoke, Some("nozawa1"), Some("5110"), 200)],
        ..change(
            "nozawa1",
            version,
            vec![AccountEdit::Choose(CertificateChoice::Revoked)],
        )
    };

    // Not this account's certificate, or no such certificate: nothing changes.
    let foreign = store.update_account(revoke(acc.version, serial(2))).await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound(_))),
        "{foreign:?}"
    );
    let missing = store.update_account(revoke(acc.version, serial(9))).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    assert_eq!(
        store.account(&id("nozawa1")).await.unwrap(),
        Some(acc.clone())
    );
    let other = store.certificate(&serial(2)).await.unwrap().unwrap();
    assert_eq!(other.revocation, None);

    let updated = store
        .update_account(revoke(acc.version, serial(1)))
        .await
        .unwrap();
    assert_eq!(updated.version, acc.version + 1);
    assert_eq!(updated.choice, CertificateChoice::Revoked);
    let cert = store.certificate(&serial(1)).await.unwrap().unwrap();
    assert_eq!(cert.revocation, Some(revocation));

    // Revoking again is refused, even on a fresh version.
    let again = store
        .update_account(revoke(updated.version, serial(1)))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)));
    let revokes = HistoryQuery {
        kind: Some(EventKind::Revoke),
        ..all_history()
    };
    assert_eq!(history(&store, &revokes).await.len(), 1);
}

#[tokio::test]
async fn issuance_supersedes_what_the_registration_authority_says() {
    let (_dir, store) = setup().await;

    let first = issue(&store, issuance(0, record(1, "nozawa1", 1, 1, 100), None))
        .await
        .unwrap();
    assert_eq!(first.superseded(), None);
    assert_eq!(first.record(), &record(1, "nozawa1", 1, 1, 100));
    assert_eq!(first.der(), record(1, "nozawa1", 1, 1, 100).der.as_slice());
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(acc.version, 1);
    assert_eq!(acc.issued_count, 1);
    assert_eq!(acc.current_certificate, Some(serial(1)));
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([1; 32]))
            .await
            .unwrap(),
        Some(serial(1))
    );
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([2; 32]))
            .await
            .unwrap(),
        None
    );

    // The administrator chose reissue; the issuance sets the choice the RA decided.
    let acc = store
        .update_account(change(
            "nozawa1",
            1,
            vec![AccountEdit::Choose(CertificateChoice::Reissue)],
        ))
        .await
        .unwrap();
    // Superseding anything but the current certificate is refused.
    let wrong = issue(
        &store,
        issuance(
            acc.version,
            record(2, "nozawa1", 2, 2, 5000),
            Some(serial(9)),
        ),
    )
    .await;
    assert!(matches!(wrong, Err(StoreError::Conflict)), "{wrong:?}");
    let second = issue(
        &store,
        issuance(
            acc.version,
            record(2, "nozawa1", 2, 2, 5000),
            Some(serial(1)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(second.superseded(), Some(serial(1)));
    let old = store.certificate(&serial(1)).await.unwrap().unwrap();
    assert_eq!(
        old.revocation,
        Some(Revocation {
            at: at(5000),
            reason: RevocationReason::Superseded
        })
    );
    let new = store.certificate(&serial(2)).await.unwrap().unwrap();
    assert_eq!(new.revocation, None);
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(acc.version, 3);
    assert_eq!(acc.issued_count, 2);
    assert_eq!(acc.current_certificate, Some(serial(2)));
    assert_eq!(acc.choice, CertificateChoice::Continue);

    // Exactly one active certificate at the new notBefore.
    let mut active = 0;
    for s in [serial(1), serial(2)] {
        let r = store.certificate(&s).await.unwrap().unwrap();
        active += usize::from(r.is_active(at(5000)));
    }
    assert_eq!(active, 1);

    // What the RA did not say to supersede stays as it is (an expired certificate, say).
    let third = issue(
        &store,
        issuance(3, record(3, "nozawa1", 3, 3, 400 * DAY), None),
    )
    .await
    .unwrap();
    assert_eq!(third.superseded(), None);
    let kept = store.certificate(&serial(2)).await.unwrap().unwrap();
    assert_eq!(kept.revocation, None);
    // A superseded certificate that is revoked already is refused as stale.
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    store
        .update_account(AccountChange {
            revoke: Some((
                serial(3),
                Revocation {
                    at: at(400 * DAY),
                    reason: RevocationReason::Unspecified,
                },
            )),
            ..change("nozawa1", acc.version, vec![])
        })
        .await
        .unwrap();
    let stale = issue(
        &store,
        issuance(
            acc.version + 1,
            record(4, "nozawa1", 4, 4, 401 * DAY),
            Some(serial(3)),
        ),
    )
    .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
}

#[tokio::test]
async fn issuance_refusals_change_nothing() {
    let (_dir, store) = setup().await;
    issue(&store, issuance(0, record(1, "nozawa1", 1, 1, 100), None))
        .await
        .unwrap();
    let before = store.account(&id("nozawa1")).await.unwrap().unwrap();
    let history_before = history(&store, &all_history()).await;

    let stale = issue(&store, issuance(0, record(2, "nozawa1", 2, 2, 200), None)).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");

    let dup_serial = issue(&store, issuance(1, record(1, "nozawa1", 2, 2, 200), None)).await;
    assert!(
        matches!(dup_serial, Err(StoreError::Conflict)),
        "{dup_serial:?}"
    );

    let reused = issue(&store, issuance(1, record(2, "nozawa1", 2, 1, 200), None)).await;
    assert!(
        matches!(reused, Err(StoreError::KeyReused(s)) if s == serial(1)),
        "{reused:?}"
    );

    for wrong in [1, 3, 0] {
        let r = issue(
            &store,
            issuance(1, record(2, "nozawa1", wrong, 2, 200), None),
        )
        .await;
        assert!(
            matches!(r, Err(StoreError::Conflict)),
            "issued_num {wrong}: {r:?}"
        );
    }

    // A serial that was never reserved is refused.
    let unreserved = store
        .commit_issuance(issuance(1, record(5, "nozawa1", 2, 5, 200), None))
        .await;
    assert!(
        matches!(unreserved, Err(StoreError::Conflict)),
        "{unreserved:?}"
    );

    let mut revoked = record(2, "nozawa1", 2, 2, 200);
    revoked.revocation = Some(Revocation {
        at: at(200),
        reason: RevocationReason::Unspecified,
    });
    let r = issue(&store, issuance(1, revoked, None)).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");

    let ghost = issue(&store, issuance(0, record(3, "ghost", 1, 3, 200), None)).await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");

    assert_eq!(store.account(&id("nozawa1")).await.unwrap(), Some(before));
    assert_eq!(store.certificate(&serial(2)).await.unwrap(), None);
    let first = store.certificate(&serial(1)).await.unwrap().unwrap();
    assert_eq!(first.revocation, None);
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([2; 32]))
            .await
            .unwrap(),
        None
    );
    assert_eq!(history(&store, &all_history()).await, history_before);
}

#[tokio::test]
async fn serials_are_reserved_once_and_spent_by_their_certificate() {
    let (_dir, store) = setup().await;
    let reserved = store.reserve_serial(serial(1), at(0)).await.unwrap();
    assert_eq!(reserved.serial(), serial(1));
    assert!(matches!(
        store.reserve_serial(serial(1), at(0)).await,
        Err(StoreError::Conflict)
    ));
    store
        .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100), None))
        .await
        .unwrap();
    // Used: neither reservable again nor committable again.
    assert!(matches!(
        store.reserve_serial(serial(1), at(0)).await,
        Err(StoreError::Conflict)
    ));
    assert!(store
        .parts
        .reserved_serials
        .get(serial(1).as_bytes())
        .unwrap()
        .is_none());
    // A reservation never committed stays.
    store.reserve_serial(serial(2), at(0)).await.unwrap();
    assert!(store
        .parts
        .reserved_serials
        .get(serial(2).as_bytes())
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_issuances_on_one_version_let_exactly_one_through() {
    const TASKS: u8 = 50;
    let (_dir, store) = setup().await;
    let store = Arc::new(store);
    let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(TASKS)));
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
            let rec = record(i + 1, "nozawa1", acc.issued_count + 1, i, 100);
            store.reserve_serial(rec.serial, at(100)).await.unwrap();
            barrier.wait().await; // every task decides on the same state
            store
                .commit_issuance(issuance(acc.version, rec, None))
                .await
        }));
    }
    let mut ok = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(issued) => ok.push(issued.record().serial),
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok.len(), 1);
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(acc.version, 1);
    assert_eq!(acc.issued_count, 1);
    assert_eq!(acc.current_certificate, Some(ok[0]));
    let enrolls = HistoryQuery {
        kind: Some(EventKind::Enroll),
        ..all_history()
    };
    assert_eq!(history(&store, &enrolls).await.len(), 1);
}

#[tokio::test]
async fn history_is_newest_first_in_commit_order_and_filters_combine() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // (kind, account, contract, time); time deliberately not monotonic in seq.
    let events = [
        (EventKind::ContractCreate, None, Some("A"), 10),
        (EventKind::AccountCreate, Some("alice"), Some("A"), 20),
        (EventKind::Enroll, Some("alice"), Some("A"), 30),
        (EventKind::AccountCreate, Some("bob"), Some("B"), 40),
        (EventKind::Enroll, Some("bob"), Some("B"), 50),
        (EventKind::Lock, Some("alice"), Some("A"), 60),
        (EventKind::Enroll, Some("alice"), Some("A"), 70),
        (EventKind::Enroll, None, None, 80),
        (EventKind::Enroll, Some("alice"), Some("A"), 5),
    ];
    for (kind, acc, con, t) in events {
        store
            .append_history(event(kind, acc, con, t))
            .await
            .unwrap();
    }
    let everything = history(&store, &all_history()).await;
    let seqs: Vec<u64> = everything.iter().rev().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=9).collect::<Vec<u64>>(),
        "numbered in commit order"
    );
    let times = |q: HistoryQuery| {
        let store = &store;
        async move {
            history(store, &q)
                .await
                .into_iter()
                .map(|e| e.event.at.unix_timestamp() - 1_700_000_000)
                .collect::<Vec<i64>>()
        }
    };

    assert_eq!(
        times(all_history()).await,
        [5, 80, 70, 60, 50, 40, 30, 20, 10]
    );
    assert_eq!(
        times(HistoryQuery {
            page: PageRequest::first(0),
            ..all_history()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        times(HistoryQuery {
            page: PageRequest::first(3),
            ..all_history()
        })
        .await,
        [5, 80, 70]
    );
    let alice = || HistoryQuery {
        account: Some(id("alice")),
        ..all_history()
    };
    assert_eq!(times(alice()).await, [5, 70, 60, 30, 20]);
    assert_eq!(
        times(HistoryQuery {
            account: Some(id("ali")),
            ..all_history()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        times(HistoryQuery {
            contract: Some(code("B")),
            ..all_history()
        })
        .await,
        [50, 40]
    );
    assert_eq!(
        times(HistoryQuery {
            contract: Some(code("A")),
            ..all_history()
        })
        .await,
        [5, 70, 60, 30, 20, 10]
    );
    assert_eq!(
        times(HistoryQuery {
            contract: Some(code("B")),
            ..alice()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        times(HistoryQuery {
            kind: Some(EventKind::Enroll),
            ..all_history()
        })
        .await,
        [5, 80, 70, 50, 30]
    );
    assert_eq!(
        times(HistoryQuery {
            kind: Some(EventKind::Enroll),
            page: PageRequest::first(2),
            ..alice()
        })
        .await,
        [5, 70]
    );
    assert_eq!(
        times(HistoryQuery {
            since: Some(at(30)),
            until: Some(at(70)),
            ..all_history()
        })
        .await,
        [60, 50, 40, 30]
    );
    assert_eq!(
        times(HistoryQuery {
            since: Some(at(30)),
            until: Some(at(70)),
            ..alice()
        })
        .await,
        [60, 30]
    );

    // Paging with the cursor: each page continues strictly below the last entry seen, and
    // entries appended meanwhile neither repeat nor skip one.
    for base in [
        all_history(),
        alice(),
        HistoryQuery {
            contract: Some(code("A")),
            ..all_history()
        },
    ] {
        let all = history(&store, &base).await;
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .history(&HistoryQuery {
                    page: PageRequest { after, limit: 2 },
                    ..base.clone()
                })
                .await
                .unwrap();
            assert!(page.items.len() <= 2);
            paged.extend(page.items);
            store
                .append_history(event(EventKind::Lock, Some("alice"), Some("A"), 90))
                .await
                .unwrap();
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, all);
    }
    let bad = store
        .history(&HistoryQuery {
            page: PageRequest {
                after: Some(Cursor::new(vec![1, 2, 3])),
                limit: 2,
            },
            ..all_history()
        })
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
}

#[tokio::test]
async fn commits_survive_a_reopen_and_numbering_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .create_contract(
                contract("5110"),
                event(EventKind::ContractCreate, None, Some("5110"), 0),
            )
            .await
            .unwrap();
        store
            .create_account(
                account("nozawa1", "5110"),
                event(EventKind::AccountCreate, Some("nozawa1"), Some("5110"), 1),
            )
            .await
            .unwrap();
        issue(&store, issuance(0, record(1, "nozawa1", 1, 1, 100), None))
            .await
            .unwrap();
        store
            .append_history(event(EventKind::Lock, Some("nozawa1"), None, 2))
            .await
            .unwrap();
        store.next_crl_number().await.unwrap();
        // Dropped without anything more: every write was durable when it returned.
    }
    let store = open(dir.path());
    assert_eq!(
        store.contract(&code("5110")).await.unwrap(),
        Some(contract("5110"))
    );
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!((acc.version, acc.current_certificate), (1, Some(serial(1))));
    assert_eq!(
        store.certificate(&serial(1)).await.unwrap(),
        Some(record(1, "nozawa1", 1, 1, 100))
    );
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([1; 32]))
            .await
            .unwrap(),
        Some(serial(1))
    );
    let entries = history(&store, &all_history()).await;
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0].seq, 4);
    store
        .append_history(event(EventKind::Unlock, None, None, 3))
        .await
        .unwrap();
    assert_eq!(history(&store, &all_history()).await[0].seq, 5);
    assert_eq!(store.next_crl_number().await.unwrap(), 2);
}

#[tokio::test]
async fn a_second_open_of_the_same_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    match FjallStore::open(dir.path(), 8 * 1024 * 1024) {
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains("is in use by another process"), "{msg}");
            assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        }
        other => panic!("expected the in-use error, got {other:?}"),
    }
    drop(first);
    open(dir.path());
}

#[tokio::test]
async fn a_database_of_another_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .parts
            .meta
            .insert(META_SCHEMA, 99u64.to_be_bytes())
            .unwrap();
        store
            .keyspace
            .persist(fjall::PersistMode::SyncData)
            .unwrap();
    }
    let err = FjallStore::open(dir.path(), 8 * 1024 * 1024).unwrap_err();
    assert!(err.to_string().contains("layout 99"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_syncs_and_reads_sync_nothing() {
    const TASKS: usize = 40;
    let (_dir, store) = setup().await;
    let store = Arc::new(store);
    let baseline = store.durability.syncs();
    // Writing nothing syncs nothing: a right password on a clean count, a read.
    store.clear_password_attempts(&id("nozawa1")).await.unwrap();
    store.account(&id("nozawa1")).await.unwrap();
    assert_eq!(store.durability.syncs(), baseline);

    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .append_history(event(EventKind::Lock, None, None, i as i64))
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let used = store.durability.syncs() - baseline;
    assert!(
        (1..TASKS as u64).contains(&used),
        "{used} syncs for {TASKS} writers"
    );
}

#[tokio::test]
async fn applications_are_created_once_and_revoked_for_good() {
    let (_dir, store) = setup().await;
    let name: AppName = "bankapp".parse().unwrap();
    let app_record = |s: u8, key: u8| CertificateRecord {
        holder: Holder::App { name: name.clone() },
        ..record(s, "nozawa1", 1, key, 10)
    };
    let app = App {
        name: name.clone(),
        scope: crate::model::AppScope::Contracts(vec![code("5110")]),
        can_create_contracts: false,
        certificate: serial(40),
        revoked: false,
        created_at: at(10),
    };
    store.reserve_serial(serial(40), at(10)).await.unwrap();
    let issued = store
        .create_app(
            app.clone(),
            app_record(40, 40),
            event(EventKind::AppCreate, None, None, 10),
        )
        .await
        .unwrap();
    assert_eq!(issued.record().account(), None);
    assert_eq!(store.app(&name).await.unwrap(), Some(app.clone()));
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([40; 32]))
            .await
            .unwrap(),
        Some(serial(40))
    );

    // The name is taken; a second app cannot reuse the key either.
    store.reserve_serial(serial(41), at(11)).await.unwrap();
    let again = store
        .create_app(
            App {
                certificate: serial(41),
                ..app.clone()
            },
            app_record(41, 41),
            event(EventKind::AppCreate, None, None, 11),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
    let other = App {
        name: "other".parse().unwrap(),
        certificate: serial(42),
        scope: crate::model::AppScope::All,
        ..app.clone()
    };
    store.reserve_serial(serial(42), at(12)).await.unwrap();
    let reused = store
        .create_app(
            other.clone(),
            CertificateRecord {
                holder: Holder::App {
                    name: other.name.clone(),
                },
                ..record(42, "nozawa1", 1, 40, 10)
            },
            event(EventKind::AppCreate, None, None, 12),
        )
        .await;
    assert!(
        matches!(reused, Err(StoreError::KeyReused(s)) if s == serial(40)),
        "{reused:?}"
    );
    // An application's certificate is never recorded as an ID's.
    store.reserve_serial(serial(43), at(13)).await.unwrap();
    let wrong_holder = store
        .commit_issuance(NewCertificate {
            record: app_record(43, 43),
            ..issuance(0, record(43, "nozawa1", 1, 43, 13), None)
        })
        .await;
    assert!(
        matches!(wrong_holder, Err(StoreError::Backend(_))),
        "{wrong_holder:?}"
    );

    let revocation = Revocation {
        at: at(20),
        reason: RevocationReason::CessationOfOperation,
    };
    let mut feed = store.revocations();
    let revoked = store
        .revoke_app(
            &name,
            revocation,
            event(EventKind::AppRevoke, None, None, 20),
        )
        .await
        .unwrap();
    assert!(revoked.revoked);
    let cert = store.certificate(&serial(40)).await.unwrap().unwrap();
    assert_eq!(cert.revocation, Some(revocation));
    // A revoked application certificate is published like any other.
    let index = store
        .revoked_certificates(PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert!(index
        .iter()
        .any(|r| r.serial == serial(40) && r.revocation == revocation));
    assert!(feed.has_changed().unwrap());
    assert_eq!(*feed.borrow_and_update(), 1);
    let twice = store
        .revoke_app(
            &name,
            revocation,
            event(EventKind::AppRevoke, None, None, 21),
        )
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");
    assert_eq!(
        store.apps(PageRequest::first(10)).await.unwrap().items,
        vec![revoked]
    );
}

#[tokio::test]
async fn corrupt_values_are_reported_not_panicked_on() {
    let (_dir, store) = setup().await;
    store.parts.accounts.insert("broken", b"\x01{not").unwrap();
    match store.account(&id("broken")).await {
        Err(StoreError::Backend(msg)) => {
            assert!(
                msg.contains("`accounts`") && msg.contains("'broken'"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.accounts(None, PageRequest::first(10)).await,
        Err(StoreError::Backend(_))
    ));
    store.parts.keys.insert([9u8; 32], b"short").unwrap();
    assert!(matches!(
        store.key_certified_by(&KeyFingerprint([9; 32])).await,
        Err(StoreError::Backend(_))
    ));
    store
        .parts
        .history
        .insert(u64::MAX.to_be_bytes(), b"\x01")
        .unwrap();
    match store.history(&all_history()).await {
        Err(StoreError::Backend(msg)) => {
            assert!(
                msg.contains("`history`") && msg.contains(&u64::MAX.to_string()),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
}

async fn export_all(store: &FjallStore) -> Vec<StoreRecord> {
    let mut exported = Vec::new();
    store
        .export(&mut |r| {
            exported.push(r);
            Ok(())
        })
        .await
        .unwrap();
    exported
}

/// Export, import into an empty store, export again: identical records, indexes rebuilt,
/// the key index, the history sequence and the CRL number carried on.
#[tokio::test]
async fn export_import_round_trips_accounts_certificates_and_history() {
    let (_dir, store) = setup().await;
    issue(&store, issuance(0, record(1, "nozawa1", 1, 1, 10), None))
        .await
        .unwrap();
    issue(
        &store,
        issuance(1, record(2, "nozawa1", 2, 2, 20), Some(serial(1))),
    )
    .await
    .unwrap();
    store
        .append_history(event(EventKind::Lock, Some("nozawa1"), Some("5110"), 30))
        .await
        .unwrap();
    store.next_crl_number().await.unwrap();
    store.next_crl_number().await.unwrap();

    let exported = export_all(&store).await;
    let kinds: Vec<&str> = exported.iter().map(StoreRecord::kind).collect();
    assert_eq!(
        kinds,
        [
            "contracts",
            "accounts",
            "certificates",
            "certificates",
            "history",
            "history",
            "history",
            "history",
            "history",
            "crl_number"
        ]
    );
    assert!(exported
        .iter()
        .any(|r| matches!(r, StoreRecord::Certificate(c) if c.revocation.is_some())));

    let dir = tempfile::tempdir().unwrap();
    let copy = open(&dir.path().join("db"));
    assert!(copy.is_empty().await.unwrap());
    // In two batches, as a restore reads them.
    let (first, second) = exported.split_at(4);
    copy.import(first.to_vec()).await.unwrap();
    copy.import(second.to_vec()).await.unwrap();
    assert!(!copy.is_empty().await.unwrap());
    assert_eq!(export_all(&copy).await, exported);

    assert_eq!(
        copy.key_certified_by(&KeyFingerprint([2; 32]))
            .await
            .unwrap(),
        Some(serial(2))
    );
    let by_account = HistoryQuery {
        account: Some(id("nozawa1")),
        ..all_history()
    };
    assert_eq!(
        history(&copy, &by_account).await,
        history(&store, &by_account).await
    );
    assert_eq!(
        copy.accounts(Some(&code("5110")), PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        copy.revoked_certificates(PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let refused = copy
        .create_account(
            account("NOZAWA1", "5110"),
            event(EventKind::AccountCreate, None, None, 40),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::AlreadyExists(_))));
    let newest = history(&copy, &all_history()).await[0].seq;
    copy.append_history(event(EventKind::Unlock, Some("nozawa1"), Some("5110"), 40))
        .await
        .unwrap();
    assert_eq!(history(&copy, &all_history()).await[0].seq, newest + 1);
    assert_eq!(copy.next_crl_number().await.unwrap(), 3);
}

/// The export reads one snapshot: a write committed while it runs completes (writers are not
/// held back) and is not in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_a_snapshot_that_does_not_hold_writers_back() {
    let (_dir, store) = setup().await;
    let store = Arc::new(store);
    let runtime = tokio::runtime::Handle::current();
    let mut exported = Vec::new();
    let mut wrote = false;
    let writer = Arc::clone(&store);
    store
        .export(&mut |r| {
            if !wrote {
                wrote = true;
                // A write from another thread, while the export is in its first record.
                let writer = Arc::clone(&writer);
                let runtime = runtime.clone();
                std::thread::spawn(move || {
                    runtime.block_on(writer.create_contract(
                        contract("4000"),
                        event(EventKind::ContractCreate, None, Some("4000"), 5),
                    ))
                })
                .join()
                .unwrap()
                .unwrap();
            }
            exported.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert!(wrote);
    assert_eq!(
        exported
            .iter()
            .filter(|r| matches!(r, StoreRecord::Contract(_)))
            .count(),
        1,
        "the export is of the state when it began"
    );
    assert_eq!(
        exported
            .iter()
            .filter(|r| matches!(r, StoreRecord::History(_)))
            .count(),
        2
    );
    assert!(store.contract(&code("4000")).await.unwrap().is_some());
}

/// The certificates of estca's own services are recorded like any other (serial and key
/// unique, readable by serial, in backups), answer the key index, and do not make a store
/// "non-empty" for a restore.
#[tokio::test]
async fn service_certificates_are_recorded_backed_up_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let service = |s: u8, key: u8, holder: Holder| CertificateRecord {
        holder,
        subject: "CN=localhost".into(),
        ..record(s, "nozawa1", 1, key, 10)
    };
    let tls = service(
        1,
        1,
        Holder::TlsServer {
            names: vec!["localhost".into(), "127.0.0.1".into()],
        },
    );
    let ocsp = service(2, 2, Holder::OcspSigner);
    for s in [1, 2, 9] {
        store
            .reserve_service_serial(serial(s), at(10))
            .await
            .unwrap();
    }
    let issued = store.record_service_certificate(tls.clone()).await.unwrap();
    assert_eq!(issued.record(), &tls);
    store
        .record_service_certificate(ocsp.clone())
        .await
        .unwrap();
    assert_eq!(
        store.certificate(&serial(1)).await.unwrap(),
        Some(tls.clone())
    );
    assert_eq!(
        store.certificate(&serial(2)).await.unwrap(),
        Some(ocsp.clone())
    );
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([2; 32]))
            .await
            .unwrap(),
        Some(serial(2))
    );
    assert!(store.is_empty().await.unwrap(), "service certificates only");

    // Serial and key are unique across every kind of certificate; an ID's or an
    // application's certificate cannot come in this way, nor a revoked one.
    assert!(matches!(
        store
            .record_service_certificate(service(1, 9, Holder::OcspSigner))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .record_service_certificate(service(9, 1, Holder::OcspSigner))
            .await,
        Err(StoreError::KeyReused(s)) if s == serial(1)
    ));
    assert!(matches!(
        store
            .record_service_certificate(record(9, "nozawa1", 1, 9, 10))
            .await,
        Err(StoreError::Backend(_))
    ));
    let revoked = CertificateRecord {
        revocation: Some(Revocation {
            at: at(20),
            reason: RevocationReason::Unspecified,
        }),
        ..service(9, 9, Holder::OcspSigner)
    };
    assert!(matches!(
        store.record_service_certificate(revoked).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.certificate(&serial(9)).await.unwrap(), None);

    // Backups carry them, and a restore rebuilds their key index.
    let exported = export_all(&store).await;
    assert_eq!(
        exported,
        vec![
            StoreRecord::Certificate(tls),
            StoreRecord::Certificate(ocsp)
        ]
    );
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = open(&copy_dir.path().join("db"));
    copy.import(exported).await.unwrap();
    assert_eq!(
        copy.key_certified_by(&KeyFingerprint([1; 32]))
            .await
            .unwrap(),
        Some(serial(1))
    );

    // An ID's certificate makes the store non-empty as before.
    let (_dir, store) = setup().await;
    issue(&store, issuance(0, record(3, "nozawa1", 1, 3, 10), None))
        .await
        .unwrap();
    assert!(!store.is_empty().await.unwrap());
}

/// The whole revocation index, read one entry per page.
async fn revoked_index(store: &FjallStore) -> Vec<RevokedCertificate> {
    Page::collect_all(1, |p| store.revoked_certificates(p))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_revocation_index_follows_revokes_and_supersedes_and_the_feed_says_so() {
    let (_dir, store) = setup().await;
    let mut feed = store.revocations();
    assert_eq!(*feed.borrow_and_update(), 0);
    assert!(revoked_index(&store).await.is_empty());

    // Issuance of a first certificate revokes nothing: no entry, no signal.
    issue(&store, issuance(0, record(1, "nozawa1", 1, 1, 100), None))
        .await
        .unwrap();
    assert!(!feed.has_changed().unwrap());
    assert!(revoked_index(&store).await.is_empty());

    // A second issuance supersedes the first, in the same step.
    issue(
        &store,
        issuance(1, record(2, "nozawa1", 2, 2, 200), Some(serial(1))),
    )
    .await
    .unwrap();
    assert!(feed.has_changed().unwrap());
    assert_eq!(*feed.borrow_and_update(), 1);
    let superseded = RevokedCertificate {
        serial: serial(1),
        revocation: Revocation {
            at: at(200),
            reason: RevocationReason::Superseded,
        },
        not_after: at(100 + 365 * DAY),
    };
    assert_eq!(revoked_index(&store).await, vec![superseded]);

    // An explicit revoke adds the second, with its reason.
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    let revocation = Revocation {
        at: at(300),
        reason: RevocationReason::KeyCompromise,
    };
    store
        .update_account(AccountChange {
            revoke: Some((serial(2), revocation)),
            ..change(
                "nozawa1",
                acc.version,
                vec![AccountEdit::Choose(CertificateChoice::Revoked)],
            )
        })
        .await
        .unwrap();
    assert_eq!(*feed.borrow_and_update(), 2);
    let revoked = RevokedCertificate {
        serial: serial(2),
        revocation,
        not_after: at(200 + 365 * DAY),
    };
    assert_eq!(revoked_index(&store).await, vec![superseded, revoked]);

    // A refused revoke (already revoked) changes nothing and signals nothing.
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    let again = store
        .update_account(AccountChange {
            revoke: Some((serial(2), revocation)),
            ..change("nozawa1", acc.version, vec![])
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert!(!feed.has_changed().unwrap());
    // An account change without revocation signals nothing either.
    store
        .update_account(change("nozawa1", acc.version, vec![]))
        .await
        .unwrap();
    assert!(!feed.has_changed().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crl_numbers_strictly_increase_under_concurrency_and_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for _reopen in 0..3 {
        let store = Arc::new(open(dir.path()));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                store.next_crl_number().await.unwrap()
            }));
        }
        let mut these = Vec::new();
        for task in tasks {
            these.push(task.await.unwrap());
        }
        these.sort_unstable();
        seen.extend(these);
        // Dropped without a graceful stop: the numbers were synced when drawn.
    }
    assert_eq!(seen, (1..=30).collect::<Vec<u64>>());
}
