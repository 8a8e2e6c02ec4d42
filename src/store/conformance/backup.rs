//! Export, import into an empty store, and what a reopened store reads back.

use super::fixtures::*;
use super::Backend;
use crate::model::{
    App, AppScope, CertificateRecord, EventKind, Holder, KeyFingerprint, Revocation,
    RevocationReason,
};
use crate::store::{HistoryQuery, StoreRecord};

pub(super) async fn export_import_round_trips_every_record<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    // A contract with server_keygen, as the option travels with it.
    store
        .set_contract_server_keygen(
            &code("5110"),
            true,
            event(EventKind::ContractUpdate, None, Some("5110"), 5),
        )
        .await
        .unwrap();
    issue(store, 0, record(1, "nozawa1", 1, 1, 10), None)
        .await
        .unwrap();
    issue(store, 1, record(2, "nozawa1", 2, 2, 20), Some(serial(1)))
        .await
        .unwrap();
    store.reserve_serial(serial(3), at(25)).await.unwrap();
    store
        .create_app(
            App {
                name: "bankapp".parse().unwrap(),
                scope: AppScope::All,
                can_create_contracts: true,
                certificate: serial(3),
                revoked: false,
                created_at: at(25),
            },
            CertificateRecord {
                holder: Holder::App {
                    name: "bankapp".parse().unwrap(),
                },
                ..record(3, "nozawa1", 1, 3, 25)
            },
            event(EventKind::AppCreate, None, None, 25),
        )
        .await
        .unwrap();
    store
        .revoke_app(
            &"bankapp".parse().unwrap(),
            Revocation {
                at: at(26),
                reason: RevocationReason::CessationOfOperation,
            },
            event(EventKind::AppRevoke, None, None, 26),
        )
        .await
        .unwrap();
    store
        .append_history(event(EventKind::Lock, Some("nozawa1"), Some("5110"), 30))
        .await
        .unwrap();
    let crl = store.next_crl_number(0).await.unwrap();

    let exported = export_all(store).await;
    let kinds: Vec<&str> = exported.iter().map(StoreRecord::kind).collect();
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(
        (
            count("contracts"),
            count("accounts"),
            count("certificates"),
            count("apps"),
            count("history")
        ),
        (1, 1, 3, 1, 8)
    );
    assert!(exported.contains(&StoreRecord::CrlNumber(crl)));
    let history: Vec<u64> = exported
        .iter()
        .filter_map(|r| match r {
            StoreRecord::History(e) => Some(e.seq),
            _ => None,
        })
        .collect();
    assert!(history.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let copy = Fixture::<B>::empty().await;
    let copy_store = &**copy.store();
    assert!(copy_store.is_empty().await.unwrap());
    let (first, second) = exported.split_at(3);
    copy_store.import(first.to_vec()).await.unwrap();
    copy_store.import(second.to_vec()).await.unwrap();
    assert!(!copy_store.is_empty().await.unwrap());
    let mut again = Vec::new();
    copy_store
        .export(&mut |r| {
            again.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(exported, again);

    // Derived data is rebuilt: the key index, the revocation index, history by account,
    // accounts by contract, the CRL numbering and history numbering carry on.
    assert_eq!(
        copy_store
            .key_certified_by(&KeyFingerprint([2; 32]))
            .await
            .unwrap(),
        Some(serial(2))
    );
    let revoked = crate::store::Page::collect_all(10, |p| copy_store.revoked_certificates(p))
        .await
        .unwrap();
    assert_eq!(
        revoked.iter().map(|r| r.serial).collect::<Vec<_>>(),
        [serial(1), serial(3)]
    );
    let q = HistoryQuery {
        account: Some(id("nozawa1")),
        ..HistoryQuery::default()
    };
    let theirs = all_history(copy_store, q.clone()).await;
    assert_eq!(theirs, all_history(store, q).await);
    assert_eq!(all_accounts(copy_store, Some("5110")).await, ["nozawa1"]);
    let contract = copy_store.contract(&code("5110")).await.unwrap().unwrap();
    assert!(
        contract.server_keygen,
        "the option travels with its contract"
    );
    assert!(copy_store.next_crl_number(0).await.unwrap() > crl);
    let newest = theirs[0].seq;
    copy_store
        .append_history(event(EventKind::Unlock, Some("nozawa1"), Some("5110"), 40))
        .await
        .unwrap();
    let after = all_history(copy_store, HistoryQuery::default()).await;
    assert!(after[0].seq > newest, "{} > {newest}", after[0].seq);
    // Imported serials count as used.
    let used = copy_store.reserve_serial(serial(2), at(50)).await;
    assert!(used.is_err(), "{used:?}");
}

pub(super) async fn commits_survive_a_reopen<B: Backend>() {
    let mut f = Fixture::<B>::with_nozawa1().await;
    issue(&**f.store(), 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    f.store()
        .append_history(event(EventKind::Lock, Some("nozawa1"), None, 2))
        .await
        .unwrap();
    let before = all_history(&**f.store(), HistoryQuery::default()).await;
    f.reopen().await;
    let store = &**f.store();
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
    let history = all_history(store, HistoryQuery::default()).await;
    assert_eq!(history, before);
    assert_eq!(history.len(), 4);
    // Sequence numbers keep growing after a reopen.
    store
        .append_history(event(EventKind::Unlock, None, None, 3))
        .await
        .unwrap();
    let after = all_history(store, HistoryQuery::default()).await;
    assert!(after[0].seq > history[0].seq);
}
