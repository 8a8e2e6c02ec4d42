//! Issuance: serials reserved before signing, commits that apply the registration
//! authority's decision only if its preconditions still hold, revocation by account change.

use std::sync::Arc;

use super::fixtures::*;
use super::Backend;
use crate::model::{
    Account, CertificateChoice, EventKind, KeyFingerprint, Revocation, RevocationReason, Serial,
};
use crate::store::{AccountChange, AccountEdit, HistoryQuery, StoreError};

pub(super) async fn a_serial_is_reserved_once_and_committed_only_when_reserved<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();

    // Not reserved: refused, nothing recorded.
    let unreserved = store
        .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100), None))
        .await;
    assert!(
        matches!(unreserved, Err(StoreError::Conflict)),
        "{unreserved:?}"
    );
    assert_eq!(store.certificate(&serial(1)).await.unwrap(), None);
    assert_eq!(
        store
            .account(&id("nozawa1"))
            .await
            .unwrap()
            .unwrap()
            .version,
        0
    );

    let reserved = store.reserve_serial(serial(1), at(100)).await.unwrap();
    assert_eq!(reserved.serial(), serial(1));
    let twice = store.reserve_serial(serial(1), at(101)).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");
    let twice = store.reserve_service_serial(serial(1), at(101)).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");

    store
        .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100), None))
        .await
        .unwrap();
    // Used: neither reserved again nor committed again.
    let used = store.reserve_serial(serial(1), at(102)).await;
    assert!(matches!(used, Err(StoreError::Conflict)), "{used:?}");
    let again = store
        .commit_issuance(issuance(
            1,
            record(1, "nozawa1", 2, 2, 200),
            Some(serial(1)),
        ))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
}

pub(super) async fn issuance_supersedes_what_the_registration_authority_decided<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();

    let first = issue(store, 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    assert_eq!(first.superseded(), None);
    assert_eq!(first.record(), &record(1, "nozawa1", 1, 1, 100));
    assert_eq!(first.der(), record(1, "nozawa1", 1, 1, 100).der.as_slice());
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(
        (acc.version, acc.issued_count, acc.current_certificate),
        (1, 1, Some(serial(1)))
    );
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

    // The administrator chose reissue; the registration authority's decision sets the choice
    // the issuance leaves (here: continue) and supersedes the current certificate.
    let acc = store
        .update_account(AccountChange {
            id: id("nozawa1"),
            expected_version: 1,
            edits: vec![AccountEdit::Choose(CertificateChoice::Reissue)],
            revoke: None,
            events: vec![],
        })
        .await
        .unwrap();
    assert_eq!(acc.choice, CertificateChoice::Reissue);
    let second = issue(
        store,
        acc.version,
        record(2, "nozawa1", 2, 2, 5000),
        Some(serial(1)),
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
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(
        (
            acc.version,
            acc.issued_count,
            acc.current_certificate,
            acc.choice
        ),
        (3, 2, Some(serial(2)), CertificateChoice::Continue)
    );
    let mut active = 0;
    for s in [serial(1), serial(2)] {
        let r = store.certificate(&s).await.unwrap().unwrap();
        active += usize::from(r.is_active(at(5000)));
    }
    assert_eq!(active, 1, "exactly one active certificate");

    // The registration authority decided to supersede nothing (the current one expired):
    // the store revokes nothing either.
    let third = issue(store, 3, record(3, "nozawa1", 3, 3, 400 * DAY), None)
        .await
        .unwrap();
    assert_eq!(third.superseded(), None);
    assert_eq!(
        store
            .certificate(&serial(2))
            .await
            .unwrap()
            .unwrap()
            .revocation,
        None
    );
}

pub(super) async fn supersedes_must_name_the_current_unrevoked_certificate<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();

    // No current certificate: nothing can be superseded.
    let nothing = issue(store, 0, record(1, "nozawa1", 1, 1, 100), Some(serial(9))).await;
    assert!(matches!(nothing, Err(StoreError::Conflict)), "{nothing:?}");
    store
        .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100), None))
        .await
        .unwrap();
    issue(store, 1, record(2, "nozawa1", 2, 2, 200), Some(serial(1)))
        .await
        .unwrap();

    // Not the current certificate (the one it superseded).
    let not_current = issue(store, 2, record(3, "nozawa1", 3, 3, 300), Some(serial(1))).await;
    assert!(
        matches!(not_current, Err(StoreError::Conflict)),
        "{not_current:?}"
    );

    // The current certificate, but revoked meanwhile.
    let revocation = Revocation {
        at: at(250),
        reason: RevocationReason::KeyCompromise,
    };
    store
        .update_account(AccountChange {
            id: id("nozawa1"),
            expected_version: 2,
            edits: vec![AccountEdit::Choose(CertificateChoice::Revoked)],
            revoke: Some((serial(2), revocation)),
            events: vec![],
        })
        .await
        .unwrap();
    let revoked = store
        .commit_issuance(issuance(
            3,
            record(3, "nozawa1", 3, 3, 300),
            Some(serial(2)),
        ))
        .await;
    assert!(matches!(revoked, Err(StoreError::Conflict)), "{revoked:?}");

    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(
        (acc.version, acc.current_certificate, acc.issued_count),
        (3, Some(serial(2)), 2)
    );
    assert_eq!(store.certificate(&serial(3)).await.unwrap(), None);
    assert_eq!(
        store
            .certificate(&serial(2))
            .await
            .unwrap()
            .unwrap()
            .revocation,
        Some(revocation)
    );
}

pub(super) async fn issuance_refusals_change_nothing<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    issue(store, 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    store.reserve_serial(serial(2), at(200)).await.unwrap();
    let before = store.account(&id("nozawa1")).await.unwrap().unwrap();
    let history_before = all_history(store, HistoryQuery::default()).await;
    let one = Some(serial(1));

    let stale = store
        .commit_issuance(issuance(0, record(2, "nozawa1", 2, 2, 200), one))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    let dup_serial = store
        .commit_issuance(issuance(1, record(1, "nozawa1", 2, 2, 200), one))
        .await;
    assert!(
        matches!(dup_serial, Err(StoreError::Conflict)),
        "{dup_serial:?}"
    );
    // Key 1 again, but not renewing the certificate of key 1 (nothing is superseded).
    let reused = store
        .commit_issuance(issuance(1, record(2, "nozawa1", 2, 1, 200), None))
        .await;
    assert!(
        matches!(reused, Err(StoreError::KeyReused(s)) if s == serial(1)),
        "{reused:?}"
    );
    for wrong in [1, 3, 0] {
        let r = store
            .commit_issuance(issuance(1, record(2, "nozawa1", wrong, 2, 200), one))
            .await;
        assert!(
            matches!(r, Err(StoreError::Conflict)),
            "issued_num {wrong}: {r:?}"
        );
    }
    let mut revoked = record(2, "nozawa1", 2, 2, 200);
    revoked.revocation = Some(Revocation {
        at: at(200),
        reason: RevocationReason::Unspecified,
    });
    let r = store.commit_issuance(issuance(1, revoked, one)).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    let ghost = issue(store, 0, record(3, "ghost", 1, 3, 200), None).await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");

    assert_eq!(store.account(&id("nozawa1")).await.unwrap(), Some(before));
    assert_eq!(store.certificate(&serial(2)).await.unwrap(), None);
    assert_eq!(
        store
            .certificate(&serial(1))
            .await
            .unwrap()
            .unwrap()
            .revocation,
        None
    );
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([2; 32]))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        all_history(store, HistoryQuery::default()).await,
        history_before
    );
}

pub(super) async fn concurrent_issuances_on_one_version_let_exactly_one_through<B: Backend>() {
    const TASKS: u8 = 50;
    let f = Fixture::<B>::with_nozawa1().await;
    let store = f.store();
    let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(TASKS)));
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let store = Arc::clone(store);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let acc: Account = store.account(&id("nozawa1")).await.unwrap().unwrap();
            store.reserve_serial(serial(i + 1), at(100)).await.unwrap();
            barrier.wait().await; // every task decides on the same state
            let rec = record(i + 1, "nozawa1", acc.issued_count + 1, i, 100);
            store
                .commit_issuance(issuance(acc.version, rec, None))
                .await
        }));
    }
    let mut ok: Vec<Serial> = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(issued) => ok.push(issued.record().serial),
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok.len(), 1);
    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(
        (acc.version, acc.issued_count, acc.current_certificate),
        (1, 1, Some(ok[0]))
    );
    let enrolls = HistoryQuery {
        kind: Some(EventKind::Enroll),
        ..HistoryQuery::default()
    };
    assert_eq!(all_history(&**store, enrolls).await.len(), 1);
}

pub(super) async fn update_account_revokes_in_the_same_step<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    store
        .create_account(
            account("other", "5110"),
            event(EventKind::AccountCreate, None, None, 2),
        )
        .await
        .unwrap();
    issue(store, 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    issue(store, 0, record(2, "other", 1, 2, 100), None)
        .await
        .unwrap();

    let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
    let revocation = Revocation {
        at: at(200),
        reason: RevocationReason::KeyCompromise,
    };
    let change = |serial: Serial, version: u64| AccountChange {
        id: id("nozawa1"),
        expected_version: version,
        edits: vec![AccountEdit::Choose(CertificateChoice::Revoked)],
        revoke: Some((serial, revocation)),
        events: vec![event(EventKind::Revoke, Some("nozawa1"), Some("5110"), 200)],
    };

    // Not this account's certificate, or no such certificate: nothing changes.
    for s in [serial(2), serial(9)] {
        let refused = store.update_account(change(s, acc.version)).await;
        assert!(
            matches!(refused, Err(StoreError::NotFound(_))),
            "{refused:?}"
        );
    }
    assert_eq!(
        store.account(&id("nozawa1")).await.unwrap(),
        Some(acc.clone())
    );
    assert_eq!(
        store
            .certificate(&serial(2))
            .await
            .unwrap()
            .unwrap()
            .revocation,
        None
    );

    let updated = store
        .update_account(change(serial(1), acc.version))
        .await
        .unwrap();
    assert_eq!(
        (updated.version, updated.choice),
        (acc.version + 1, CertificateChoice::Revoked)
    );
    let cert = store.certificate(&serial(1)).await.unwrap().unwrap();
    assert_eq!(cert.revocation, Some(revocation));

    // Revoking again is refused, even on a fresh version.
    let again = store
        .update_account(change(serial(1), updated.version))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    let revokes = HistoryQuery {
        kind: Some(EventKind::Revoke),
        ..HistoryQuery::default()
    };
    assert_eq!(all_history(store, revokes).await.len(), 1);
}

/// A renewal may certify again the key of the certificate it supersedes (RFC 7030 section
/// 4.2.2), renewal after renewal; any other certificate of that key is refused, another ID's
/// or one that supersedes nothing, and the key stays known by its first certificate.
pub(super) async fn a_renewal_may_certify_the_key_it_supersedes<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    store
        .create_account(
            account("nozawa2", "5110"),
            event(EventKind::AccountCreate, Some("nozawa2"), Some("5110"), 1),
        )
        .await
        .unwrap();
    issue(store, 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    issue(store, 1, record(2, "nozawa1", 2, 1, 200), Some(serial(1)))
        .await
        .unwrap();
    issue(store, 2, record(3, "nozawa1", 3, 1, 300), Some(serial(2)))
        .await
        .unwrap();
    let account = store.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!(account.current_certificate, Some(serial(3)));
    assert!(store
        .certificate(&serial(2))
        .await
        .unwrap()
        .unwrap()
        .revocation
        .is_some());
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([1; 32]))
            .await
            .unwrap(),
        Some(serial(1))
    );
    let other = issue(store, 0, record(4, "nozawa2", 1, 1, 300), None).await;
    assert!(
        matches!(other, Err(StoreError::KeyReused(s)) if s == serial(1)),
        "{other:?}"
    );
    // A new key, then back to the old one: the superseded certificate's key differs.
    issue(store, 3, record(5, "nozawa1", 4, 2, 400), Some(serial(3)))
        .await
        .unwrap();
    store.reserve_serial(serial(6), at(500)).await.unwrap();
    let back = store
        .commit_issuance(issuance(
            4,
            record(6, "nozawa1", 5, 1, 500),
            Some(serial(5)),
        ))
        .await;
    assert!(
        matches!(back, Err(StoreError::KeyReused(s)) if s == serial(1)),
        "{back:?}"
    );
}
