//! The store's behaviours on the fjall backend: the unit tests of the former sled store
//! (`main:src/store/sled_store.rs`), ported to the split interfaces, and what only this
//! backend does (snapshot export beside writers, the layout check). Built from the
//! conformance suite's fixtures.

use std::path::Path;
use std::sync::Arc;

use super::{FjallStore, META_SCHEMA};
use crate::model::{EventKind, KeyFingerprint};
use crate::store::conformance::fixtures::{
    add_account, at, code, contract, event, id, issuance, record, serial,
};
use crate::store::{
    BackupStore, HistoryQuery, PageRequest, RaStore, StoreError, StoreReads, StoreRecord,
};

fn open(path: &Path) -> FjallStore {
    FjallStore::open(path, 8 * 1024 * 1024).unwrap()
}

/// A store with contract 5110 and its account `nozawa1`.
async fn setup() -> (tempfile::TempDir, FjallStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    add_account(&store, "nozawa1").await;
    (dir, store)
}

fn all_history() -> HistoryQuery {
    HistoryQuery {
        page: PageRequest::first(1000),
        ..HistoryQuery::default()
    }
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

/// A partition that holds one write in its memtable (here `contracts`, written when the
/// account was added) pins every journal sealed after it until it is flushed; fjall 2.11
/// never flushes it for that, and halts every write once the journals exceed
/// `MAX_JOURNAL_BYTES`. The store rotates every memtable when the journals pile up, and
/// fjall then deletes them.
#[tokio::test]
async fn journals_pinned_by_a_quiet_partition_are_released() {
    let (_dir, store) = setup().await;
    // A busy partition sealing journals, as a renewal load does when its memtable fills.
    for _ in 0..super::journals::MAX_JOURNALS + 3 {
        store
            .append_history(event(EventKind::Unlock, Some("nozawa1"), Some("5110"), 0))
            .await
            .unwrap();
        store.parts.history.inner().rotate_memtable().unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.keyspace.journal_count() >= super::journals::MAX_JOURNALS {
        assert!(
            std::time::Instant::now() < deadline,
            "{} journals are still kept",
            store.keyspace.journal_count()
        );
        store
            .append_history(event(EventKind::Unlock, Some("nozawa1"), Some("5110"), 0))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
