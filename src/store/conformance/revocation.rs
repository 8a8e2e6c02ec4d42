//! The revocation index, its change feed, and CRL numbers.

use std::sync::Arc;

use super::fixtures::*;
use super::Backend;
use crate::model::{CertificateChoice, Revocation, RevocationReason};
use crate::store::{AccountChange, AccountEdit, Page, PageRequest, RevokedCertificate, StoreError};

async fn index<B: Backend>(f: &Fixture<B>) -> Vec<RevokedCertificate> {
    let store = f.store();
    Page::collect_all(2, |p: PageRequest| store.revoked_certificates(p))
        .await
        .unwrap()
}

pub(super) async fn the_revocation_index_follows_revokes_and_supersedes_and_the_feed_says_so<
    B: Backend,
>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    let mut feed = store.revocations();
    assert_eq!(*feed.borrow_and_update(), 0);
    assert!(index(&f).await.is_empty());

    // Issuance of a first certificate revokes nothing: no entry, no signal.
    issue(store, 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    assert!(!feed.has_changed().unwrap());
    assert!(index(&f).await.is_empty());

    // A second issuance supersedes the first, in the same step.
    issue(store, 1, record(2, "nozawa1", 2, 2, 200), Some(serial(1)))
        .await
        .unwrap();
    assert!(feed.has_changed().unwrap());
    feed.borrow_and_update();
    let superseded = RevokedCertificate {
        serial: serial(1),
        revocation: Revocation {
            at: at(200),
            reason: RevocationReason::Superseded,
        },
        not_after: at(100 + 365 * DAY),
    };
    assert_eq!(index(&f).await, vec![superseded]);

    // An explicit revoke adds the second, with its reason.
    let revocation = Revocation {
        at: at(300),
        reason: RevocationReason::KeyCompromise,
    };
    let revoke = |version: u64| AccountChange {
        id: id("nozawa1"),
        expected_version: version,
        edits: vec![AccountEdit::Choose(CertificateChoice::Revoked)],
        revoke: Some((serial(2), revocation)),
        events: vec![],
    };
    store.update_account(revoke(2)).await.unwrap();
    assert!(feed.has_changed().unwrap());
    feed.borrow_and_update();
    let revoked = RevokedCertificate {
        serial: serial(2),
        revocation,
        not_after: at(200 + 365 * DAY),
    };
    assert_eq!(index(&f).await, vec![superseded, revoked]);

    // A refused revoke (already revoked) changes nothing and signals nothing.
    let again = store.update_account(revoke(3)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert!(!feed.has_changed().unwrap());
    // An account change without revocation signals nothing either.
    store
        .update_account(AccountChange {
            edits: vec![AccountEdit::Rename("x".into())],
            revoke: None,
            ..revoke(3)
        })
        .await
        .unwrap();
    assert!(!feed.has_changed().unwrap());
    assert_eq!(index(&f).await.len(), 2);
}

pub(super) async fn crl_numbers_strictly_increase_under_concurrency_and_across_reopens<
    B: Backend,
>() {
    let mut f = Fixture::<B>::empty().await;
    let mut seen = Vec::new();
    for _reopen in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let store = Arc::clone(f.store());
            tasks.push(tokio::spawn(async move {
                store.next_crl_number(0).await.unwrap()
            }));
        }
        let mut these = Vec::new();
        for task in tasks {
            these.push(task.await.unwrap());
        }
        these.sort_unstable();
        assert!(
            seen.last().is_none_or(|last| these[0] > *last),
            "{these:?} after {seen:?}"
        );
        seen.extend(these);
        f.reopen().await;
    }
    assert_eq!(seen.len(), 30);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

pub(super) async fn a_crl_number_is_at_least_its_floor_even_after_a_restore_puts_it_back<
    B: Backend,
>() {
    let f = Fixture::<B>::empty().await;
    let store = f.store();
    assert_eq!(store.next_crl_number(0).await.unwrap(), 1);
    assert_eq!(store.next_crl_number(1_000).await.unwrap(), 1_000);
    assert_eq!(
        store.next_crl_number(10).await.unwrap(),
        1_001,
        "a floor below the last number changes nothing"
    );
    // A backup now holds 1,001; the daemon goes on and signs up to 2,000 before the restore.
    let backup = export_all(&**store).await;
    assert_eq!(store.next_crl_number(2_000).await.unwrap(), 2_000);
    let restored = Fixture::<B>::empty().await;
    restored.store().import(backup).await.unwrap();
    assert_eq!(
        restored.store().next_crl_number(2_500).await.unwrap(),
        2_500,
        "the later floor is above what was signed after the backup"
    );
    let (_, number) = restored.store().revoked_for_crl(2_500).await.unwrap();
    assert_eq!(number, 2_501, "a CRL's read draws the same way");
}
