//! Removed IDs: the removal is one atomic change (the edit, the revocation, the history), the
//! record stays (listed, exported, reopened) while the ID is never free again, and the store
//! refuses every later change, issuance and password count for it.

use super::fixtures::*;
use super::Backend;
use crate::model::{CertificateChoice, EventKind, Revocation, RevocationReason};
use crate::store::{
    AccountChange, AccountEdit, HistoryQuery, PasswordAttempt, StoreError, StoreRecord,
};

pub(super) async fn a_removed_id_stays_on_record_and_changes_no_more<B: Backend>() {
    let mut f = Fixture::<B>::with_nozawa1().await;
    issue(&**f.store(), 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    let store = f.store().clone();
    let before = store.account(&id("nozawa1")).await.unwrap().unwrap();
    let revocation = Revocation {
        at: at(200),
        reason: RevocationReason::CessationOfOperation,
    };
    let removed = store
        .update_account(AccountChange {
            id: id("nozawa1"),
            expected_version: before.version,
            edits: vec![AccountEdit::Remove(at(200))],
            revoke: Some((serial(1), revocation)),
            events: vec![event(
                EventKind::AccountRemove,
                Some("nozawa1"),
                Some("5110"),
                200,
            )],
        })
        .await
        .unwrap();
    assert_eq!(removed.removed_at, Some(at(200)));
    assert_eq!(removed.version, before.version + 1);
    assert_eq!(
        store
            .certificate(&serial(1))
            .await
            .unwrap()
            .unwrap()
            .revocation,
        Some(revocation)
    );
    let revoked = crate::store::Page::collect_all(10, |p| store.revoked_certificates(p))
        .await
        .unwrap();
    assert_eq!(
        revoked.iter().map(|r| r.revocation).collect::<Vec<_>>(),
        [revocation]
    );
    let history = all_history(
        &*store,
        HistoryQuery {
            account: Some(id("nozawa1")),
            kind: Some(EventKind::AccountRemove),
            ..HistoryQuery::default()
        },
    )
    .await;
    assert_eq!(history.len(), 1);

    // The ID is never free again, in any letter case.
    for again in ["nozawa1", "NOZAWA1"] {
        let refused = store
            .create_account(
                account(again, "5110"),
                event(EventKind::AccountCreate, None, None, 300),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::AlreadyExists(_))),
            "{again}: {refused:?}"
        );
    }
    // Its password is never counted, so never checked.
    match store.count_password_attempt(&id("nozawa1"), 5).await {
        Ok(PasswordAttempt::OverLimit(a)) => assert_eq!(a.failed_attempts, 0),
        other => panic!("{other:?}"),
    }
    // No change and no issuance is accepted, even on its current version.
    for edits in [
        vec![AccountEdit::Rename("x".into())],
        vec![AccountEdit::Choose(CertificateChoice::Reissue)],
        vec![AccountEdit::Unlock],
        vec![AccountEdit::Remove(at(400))],
    ] {
        let refused = store
            .update_account(AccountChange {
                id: id("nozawa1"),
                expected_version: removed.version,
                edits,
                revoke: None,
                events: Vec::new(),
            })
            .await;
        assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    }
    let refused = issue(
        &*store,
        removed.version,
        record(2, "nozawa1", 2, 2, 400),
        None,
    )
    .await;
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    assert_eq!(
        store.account(&id("nozawa1")).await.unwrap().as_ref(),
        Some(&removed)
    );
    // Still listed by the store (what to show is the registration authority's choice).
    assert_eq!(all_accounts(&*store, Some("5110")).await, ["nozawa1"]);

    // Exported and imported as it is, and read back after a reopen.
    let exported = export_all(&*store).await;
    assert!(exported.contains(&StoreRecord::Account(removed.clone())));
    let copy = Fixture::<B>::empty().await;
    copy.store().import(exported).await.unwrap();
    assert_eq!(
        copy.store().account(&id("nozawa1")).await.unwrap(),
        Some(removed.clone())
    );
    drop(store);
    f.reopen().await;
    assert_eq!(
        f.store().account(&id("nozawa1")).await.unwrap(),
        Some(removed)
    );
}
