//! Contracts and accounts: created once, changed by edits with compare-and-swap, and the
//! failed-login count kept apart from the version.

use std::sync::Arc;

use super::fixtures::*;
use super::Backend;
use crate::model::{Account, CertificateChoice, EventKind};
use crate::store::{
    AccountChange, AccountEdit, HistoryQuery, Page, PageRequest, PasswordAttempt, StoreError,
};

/// A contract's `server_keygen`: off as created by default, stored as created otherwise,
/// changed with its history entry, kept across a reopen; an unknown contract is not found
/// and nothing is recorded for it.
pub(super) async fn the_server_keygen_option_is_kept_with_the_contract<B: Backend>() {
    let mut f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    assert!(
        !store
            .contract(&code("5110"))
            .await
            .unwrap()
            .unwrap()
            .server_keygen
    );
    store
        .create_contract(
            crate::model::Contract {
                server_keygen: true,
                ..contract("4000")
            },
            event(EventKind::ContractCreate, None, Some("4000"), 2),
        )
        .await
        .unwrap();
    assert!(
        store
            .contract(&code("4000"))
            .await
            .unwrap()
            .unwrap()
            .server_keygen
    );
    let changed = store
        .set_contract_server_keygen(
            &code("5110"),
            true,
            event(EventKind::ContractUpdate, None, Some("5110"), 3),
        )
        .await
        .unwrap();
    assert_eq!(
        changed,
        crate::model::Contract {
            server_keygen: true,
            ..contract("5110")
        }
    );
    store
        .set_contract_server_keygen(
            &code("4000"),
            false,
            event(EventKind::ContractUpdate, None, Some("4000"), 4),
        )
        .await
        .unwrap();
    let before = all_history(store, HistoryQuery::default()).await.len();
    let missing = store
        .set_contract_server_keygen(
            &code("9999"),
            true,
            event(EventKind::ContractUpdate, None, Some("9999"), 5),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(ref w)) if w == "contract 9999"));
    assert_eq!(
        all_history(store, HistoryQuery::default()).await.len(),
        before
    );
    f.reopen().await;
    let store = f.store();
    assert!(
        store
            .contract(&code("5110"))
            .await
            .unwrap()
            .unwrap()
            .server_keygen
    );
    assert!(
        !store
            .contract(&code("4000"))
            .await
            .unwrap()
            .unwrap()
            .server_keygen
    );
    let kinds: Vec<EventKind> = all_history(&**store, HistoryQuery::default())
        .await
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::ContractUpdate)
            .count(),
        2
    );
}

pub(super) async fn contracts_and_accounts_are_created_once<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();

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
    let codes: Vec<String> = Page::collect_all(10, |p: PageRequest| store.contracts(p))
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
    for (i, c) in [("b-user", "4000"), ("a-user", "5110")] {
        store
            .create_account(
                account(i, c),
                event(EventKind::AccountCreate, None, None, 4),
            )
            .await
            .unwrap();
    }

    let stored = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(
        stored,
        Account {
            version: 0,
            ..account("nozawa1", "5110")
        },
        "created accounts start at version 0, as given otherwise"
    );
    assert_eq!(store.account(&id("nobody")).await.unwrap(), None);
    assert_eq!(
        all_accounts(store, None).await,
        ["a-user", "b-user", "nozawa1"]
    );
    assert_eq!(
        all_accounts(store, Some("5110")).await,
        ["a-user", "nozawa1"]
    );
    assert!(all_accounts(store, Some("9999")).await.is_empty());

    // Refused operations leave no history behind: 2 contracts + 3 accounts.
    assert_eq!(all_history(store, HistoryQuery::default()).await.len(), 5);
}

pub(super) async fn ids_differing_by_case_only_are_refused<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
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
        assert!(store.account(&id(variant)).await.unwrap().is_none());
    }
}

fn rename(expected_version: u64, name: &str, t: i64) -> AccountChange {
    AccountChange {
        id: id("nozawa1"),
        expected_version,
        edits: vec![AccountEdit::Rename(name.into())],
        revoke: None,
        events: vec![event(
            EventKind::AccountUpdate,
            Some("nozawa1"),
            Some("5110"),
            t,
        )],
    }
}

pub(super) async fn update_account_is_compare_and_swap<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    let updated = store
        .update_account(rename(0, "Renamed", 10))
        .await
        .unwrap();
    assert_eq!((updated.version, updated.name.as_str()), (1, "Renamed"));
    assert_eq!(
        store.account(&id("nozawa1")).await.unwrap(),
        Some(updated.clone())
    );

    // A decision taken on version 0 is stale now.
    let stale = store.update_account(rename(0, "Stale", 11)).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(store.account(&id("nozawa1")).await.unwrap(), Some(updated));

    let unknown = store
        .update_account(AccountChange {
            id: id("ghost"),
            ..rename(0, "Ghost", 12)
        })
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound(ref w)) if w == "account ghost"));

    let updates = HistoryQuery {
        kind: Some(EventKind::AccountUpdate),
        ..HistoryQuery::default()
    };
    assert_eq!(
        all_history(store, updates).await.len(),
        1,
        "refusals append nothing"
    );
}

pub(super) async fn account_edits_apply_to_the_stored_record<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    store
        .count_password_attempt(&id("nozawa1"), 5)
        .await
        .unwrap();
    let changed = store
        .update_account(AccountChange {
            id: id("nozawa1"),
            expected_version: 0,
            edits: vec![
                AccountEdit::Rename("First".into()),
                AccountEdit::SetPasswordHash("$argon2id$new".into()),
                AccountEdit::Choose(CertificateChoice::Reissue),
                AccountEdit::Rename("Second".into()),
            ],
            revoke: None,
            events: vec![
                event(EventKind::AccountUpdate, Some("nozawa1"), Some("5110"), 5),
                event(EventKind::PasswordChange, Some("nozawa1"), Some("5110"), 6),
            ],
        })
        .await
        .unwrap();
    assert_eq!(
        changed,
        Account {
            name: "Second".into(),
            password_hash: "$argon2id$new".into(),
            choice: CertificateChoice::Reissue,
            failed_attempts: 1,
            version: 1,
            ..account("nozawa1", "5110")
        },
        "edits apply in order, one version step for the change, the count untouched"
    );
    let kinds: Vec<EventKind> = all_history(store, HistoryQuery::default())
        .await
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(
        &kinds[..2],
        [EventKind::PasswordChange, EventKind::AccountUpdate],
        "the change's events, in order"
    );

    // Lock at 1 failure (there is 1), then unlock: the count is cleared with it.
    let locked = store
        .update_account(AccountChange {
            edits: vec![AccountEdit::LockAtFailures(1)],
            events: vec![],
            ..rename(1, "", 7)
        })
        .await
        .unwrap();
    assert!(locked.locked);
    assert_eq!((locked.failed_attempts, locked.version), (1, 2));
    let unlocked = store
        .update_account(AccountChange {
            edits: vec![AccountEdit::Unlock],
            events: vec![],
            ..rename(2, "", 8)
        })
        .await
        .unwrap();
    assert_eq!(
        (unlocked.locked, unlocked.failed_attempts, unlocked.version),
        (false, 0, 3)
    );
}

pub(super) async fn the_failed_login_count_is_not_the_version<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = f.store();

    // Counting never changes the version, so a rename decided meanwhile goes through.
    let before = store.account(&id("nozawa1")).await.unwrap().unwrap();
    let counting: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.count_password_attempt(&id("nozawa1"), 100).await })
        })
        .collect();
    let renamed = store
        .update_account(rename(before.version, "Renamed meanwhile", 3))
        .await
        .unwrap();
    for task in counting {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            PasswordAttempt::Counted(_)
        ));
    }
    let after = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(
        (after.failed_attempts, after.version, after.name.as_str()),
        (20, renamed.version, "Renamed meanwhile")
    );
    assert_eq!(renamed.version, before.version + 1);

    // A lock decided on 20 failures is refused once a right password cleared the count.
    store.clear_password_attempts(&id("nozawa1")).await.unwrap();
    let lock = store
        .update_account(AccountChange {
            edits: vec![AccountEdit::LockAtFailures(20)],
            events: vec![event(EventKind::Lock, Some("nozawa1"), Some("5110"), 9)],
            ..rename(after.version, "", 9)
        })
        .await;
    assert!(matches!(lock, Err(StoreError::Conflict)), "{lock:?}");
    let stored = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(
        (stored.locked, stored.failed_attempts, stored.version),
        (false, 0, after.version)
    );
    let locks = HistoryQuery {
        kind: Some(EventKind::Lock),
        ..HistoryQuery::default()
    };
    assert!(all_history(&**store, locks).await.is_empty());
}

pub(super) async fn password_attempts_are_counted_up_to_the_limit_under_concurrency<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = f.store();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = Arc::clone(store);
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
    assert_eq!((stored.failed_attempts, stored.version), (5, 0));

    // A locked ID counts nothing; an unknown one is said so.
    store
        .update_account(AccountChange {
            edits: vec![AccountEdit::LockAtFailures(5)],
            events: vec![],
            ..rename(0, "", 1)
        })
        .await
        .unwrap();
    assert!(matches!(
        store.count_password_attempt(&id("nozawa1"), 50).await.unwrap(),
        PasswordAttempt::OverLimit(a) if a.locked && a.failed_attempts == 5
    ));
    assert_eq!(
        store.count_password_attempt(&id("ghost"), 5).await.unwrap(),
        PasswordAttempt::UnknownId
    );
}

pub(super) async fn clearing_password_attempts_spares_a_locked_id<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    for _ in 0..3 {
        store
            .count_password_attempt(&id("nozawa1"), 5)
            .await
            .unwrap();
    }
    let cleared = store.clear_password_attempts(&id("nozawa1")).await.unwrap();
    assert_eq!((cleared.failed_attempts, cleared.version), (0, 0));
    assert_eq!(store.account(&id("nozawa1")).await.unwrap(), Some(cleared));

    // Nothing to clear: the account as stored.
    let again = store.clear_password_attempts(&id("nozawa1")).await.unwrap();
    assert_eq!(again.failed_attempts, 0);

    // Locked: the count stays (only an unlock clears it).
    for _ in 0..2 {
        store
            .count_password_attempt(&id("nozawa1"), 5)
            .await
            .unwrap();
    }
    store
        .update_account(AccountChange {
            edits: vec![AccountEdit::LockAtFailures(2)],
            events: vec![],
            ..rename(0, "", 1)
        })
        .await
        .unwrap();
    let locked = store.clear_password_attempts(&id("nozawa1")).await.unwrap();
    assert_eq!((locked.locked, locked.failed_attempts), (true, 2));

    let ghost = store.clear_password_attempts(&id("ghost")).await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
}
