//! The migration of a JSON database: converted once at open, resumed after an interruption,
//! refused when newer than the build.

use super::{BINARY_ROWS, META_FORMAT};
use crate::model::{AccountId, CertificateChoice, RevocationReason, Serial};
use crate::store::rows::is_binary_row;
use crate::store::sled::rows::legacy::to_binary;
use crate::store::sled::rows::tests::json_rows;
use crate::store::sled::SledStore;
use crate::store::{HistoryQuery, PageRequest, StoreError, StoreReads};

/// A database as estca wrote it before binary rows (no marker, no derived trees but the old
/// markers), with `binary` of its rows already converted, as an interrupted migration leaves
/// it.
fn json_database(path: &std::path::Path, binary: usize) {
    let db = sled::open(path).unwrap();
    for (i, (tree, key, json)) in json_rows().into_iter().enumerate() {
        let value = if i < binary {
            to_binary(tree, &key, json.as_bytes()).unwrap()
        } else {
            json.as_bytes().to_vec()
        };
        db.open_tree(tree).unwrap().insert(key, value).unwrap();
    }
    let meta = db.open_tree("meta").unwrap();
    meta.insert("crl_number", &1u64.to_be_bytes()).unwrap();
    meta.insert("revoked_index", b"").unwrap();
    db.flush().unwrap();
}

async fn reads_back_as_before(store: &SledStore) {
    let nozawa1 = store
        .account(&"nozawa1".parse::<AccountId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((nozawa1.issued_count, nozawa1.version), (2, 7));
    let nozawa2 = store
        .account(&"nozawa2".parse::<AccountId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nozawa2.choice, CertificateChoice::Revoked);
    let serial: Serial = "62934c0ba20ffe9d5f74ac64c7cca383".parse().unwrap();
    let cert = store.certificate(&serial).await.unwrap().unwrap();
    assert_eq!(
        cert.revocation.map(|r| r.reason),
        Some(RevocationReason::KeyCompromise)
    );
    let history = store
        .history(&HistoryQuery {
            page: PageRequest::first(100),
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        history.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [14, 13, 9, 0]
    );
    let contract = store.contract(&"7001".parse().unwrap()).await.unwrap();
    assert_eq!(contract.unwrap().name, "大手町エステート株式会社");
}

fn all_rows_binary(store: &SledStore) -> usize {
    let mut rows = 0;
    for tree in super::JSON_TREES {
        for item in store.db.open_tree(tree).unwrap().iter() {
            let (_, value) = item.unwrap();
            assert!(is_binary_row(value[0]), "a row of {tree} still in JSON");
            rows += 1;
        }
    }
    rows
}

#[tokio::test]
async fn a_json_database_is_migrated_once_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    json_database(&path, 0);
    {
        let store = SledStore::open(&path).unwrap();
        reads_back_as_before(&store).await;
        assert_eq!(all_rows_binary(&store), json_rows().len());
        assert_eq!(store.format().unwrap(), BINARY_ROWS);
        assert_eq!(store.meta.get("revoked_index").unwrap(), None);
        // A JSON row written now would not be converted by a later open: the database is
        // marked as migrated.
        store
            .contracts
            .insert("9999", br#"{"code":"9999"}"#.as_slice())
            .unwrap();
        store.sync_all().await.unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    reads_back_as_before(&store).await;
    match store.contract(&"9999".parse().unwrap()).await {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("JSON row"), "{msg}"),
        other => panic!("the second open converted again: {other:?}"),
    }
}

#[tokio::test]
async fn an_interrupted_migration_is_finished_at_the_next_open() {
    for converted in [1, 7, json_rows().len()] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        json_database(&path, converted);
        let store = SledStore::open(&path).unwrap();
        assert_eq!(all_rows_binary(&store), json_rows().len());
        reads_back_as_before(&store).await;
    }
}

#[tokio::test]
async fn a_database_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(META_FORMAT, &(BINARY_ROWS + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match SledStore::open(&path) {
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains("written by a newer estca"), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("format 3"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}
