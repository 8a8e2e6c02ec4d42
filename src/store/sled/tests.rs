//! What the conformance suite cannot say of every backend: sled's lock on its directory, the
//! syncs group commit makes, deferred syncs, corrupt rows, and derived trees built for a
//! database that predates them.

use std::sync::Arc;

use time::OffsetDateTime;

use super::SledStore;
use crate::model::{EventKind, HistoryEvent, KeyFingerprint, RevocationReason};
use crate::store::conformance::fixtures;
use crate::store::SyncMode;
use crate::store::{HistoryQuery, PageRequest, RaStore, RevocationStore, StoreError, StoreReads};

/// A history event of `kind`, of no one.
fn event(kind: EventKind) -> HistoryEvent {
    fixtures::event(kind, None, None, 0)
}

#[tokio::test]
async fn a_second_open_of_the_same_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SledStore::open(dir.path()).unwrap();
    match SledStore::open(dir.path()) {
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains("is in use by another process"), "{msg}");
            assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        }
        other => panic!("expected the in-use error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_syncs_and_reads_make_none() {
    const TASKS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    fixtures::add_account(store.as_ref(), "nozawa1").await;
    let baseline = store.durability.syncs();
    store.account(&"nozawa1".parse().unwrap()).await.unwrap();
    store
        .history(&HistoryQuery {
            page: PageRequest::first(10),
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(store.durability.syncs(), baseline, "reads sync nothing");

    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.append_history(event(EventKind::Lock)).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let used = store.durability.syncs() - baseline;
    assert!(
        (1..TASKS as u64).contains(&used),
        "{used} syncs for {TASKS} concurrent writes"
    );

    // A write that writes nothing (an attempt over the limit) syncs nothing.
    let before = store.durability.syncs();
    store
        .count_password_attempt(&"nozawa1".parse().unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(store.durability.syncs(), before);
}

#[tokio::test]
async fn deferred_syncs_wait_for_sync_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open_with(&path, SyncMode::Deferred).unwrap();
        let at_open = store.durability.syncs();
        fixtures::add_account(&store, "nozawa1").await;
        for _ in 0..10 {
            store.append_history(event(EventKind::Lock)).await.unwrap();
        }
        assert_eq!(store.durability.syncs(), at_open, "no sync per write");
        store.sync_all().await.unwrap();
        assert_eq!(store.durability.syncs(), at_open + 1, "one sync for all");
        store.sync_all().await.unwrap();
        assert_eq!(store.durability.syncs(), at_open + 1, "nothing new to sync");
    }
    let store = SledStore::open(&path).unwrap();
    assert!(store
        .account(&"nozawa1".parse().unwrap())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn corrupt_values_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    fixtures::add_account(&store, "nozawa1").await;
    store
        .accounts
        .insert("broken", b"\x01\xff\xff".as_slice())
        .unwrap();
    match store.account(&"broken".parse().unwrap()).await {
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
    store.keys.insert([9u8; 32], b"short".as_slice()).unwrap();
    assert!(matches!(
        store.key_certified_by(&KeyFingerprint([9; 32])).await,
        Err(StoreError::Backend(_))
    ));
    store
        .history
        .insert(u64::MAX.to_be_bytes(), b"[]".as_slice())
        .unwrap();
    match store
        .history(&HistoryQuery {
            page: PageRequest::first(10),
            ..HistoryQuery::default()
        })
        .await
    {
        Err(StoreError::Backend(msg)) => {
            assert!(
                msg.contains("`history`") && msg.contains(&u64::MAX.to_string()),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn derived_trees_are_built_for_a_database_that_predates_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        fixtures::add_account(&store, "Nozawa1").await;
        for _ in 0..3 {
            store.append_history(event(EventKind::Lock)).await.unwrap();
        }
        // Two issuances, the second superseding the first.
        for n in 1..=2u8 {
            store
                .reserve_serial(fixtures::serial(n), OffsetDateTime::UNIX_EPOCH)
                .await
                .unwrap();
            let record = fixtures::record(n, "Nozawa1", u32::from(n), n, 0);
            let supersedes = (n == 2).then(|| fixtures::serial(1));
            store
                .commit_issuance(fixtures::issuance(u64::from(n - 1), record, supersedes))
                .await
                .unwrap();
        }
        // What an older estca left: no derived trees, no marker, no history counter.
        for tree in [
            &store.account_ids_folded,
            &store.accounts_by_contract,
            &store.serials,
            &store.revoked,
        ] {
            tree.clear().unwrap();
        }
        store.meta.remove(super::indexes::META_INDEXES).unwrap();
        store.meta.remove(super::history::META_HISTORY_SEQ).unwrap();
        store.sync_all().await.unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let refused = store
        .create_account(
            fixtures::account("nozawa1", "5110"),
            event(EventKind::AccountCreate),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::AlreadyExists(_))),
        "{refused:?}"
    );
    let listed = store
        .accounts(Some(&"5110".parse().unwrap()), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let newest = store
        .history(&HistoryQuery {
            page: PageRequest::first(1),
            ..HistoryQuery::default()
        })
        .await
        .unwrap()
        .items[0]
        .seq;
    store
        .append_history(event(EventKind::Unlock))
        .await
        .unwrap();
    let after = store
        .history(&HistoryQuery {
            page: PageRequest::first(1),
            ..HistoryQuery::default()
        })
        .await
        .unwrap()
        .items[0]
        .seq;
    assert_eq!(
        after,
        newest + 1,
        "numbering continues after the last entry"
    );
    let revoked = store
        .revoked_certificates(PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(
        revoked
            .iter()
            .map(|r| (r.serial, r.revocation.reason))
            .collect::<Vec<_>>(),
        [(fixtures::serial(1), RevocationReason::Superseded)]
    );
    for n in 1..=2u8 {
        let reserved = store
            .reserve_serial(fixtures::serial(n), OffsetDateTime::UNIX_EPOCH)
            .await;
        assert!(
            matches!(reserved, Err(StoreError::Conflict)),
            "{reserved:?}"
        );
    }
}
