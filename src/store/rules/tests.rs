//! The rules on their own, without a store: each precondition refuses what it must and each
//! effect changes exactly what it says. (The conformance suite checks that every backend
//! applies them.)

use crate::model::{CertificateChoice, Revocation, RevocationReason};
use crate::store::conformance::fixtures::{account, at, id, issuance, record, serial};
use crate::store::{AccountChange, AccountEdit, PasswordAttempt, StoreError};

use super::*;

fn change(expected_version: u64, edits: Vec<AccountEdit>) -> AccountChange {
    AccountChange {
        id: id("nozawa1"),
        expected_version,
        edits,
        revoke: None,
        events: Vec::new(),
    }
}

#[test]
fn a_new_account_starts_at_version_0_in_an_existing_contract_under_a_free_id() {
    let given = account("nozawa1", "5110");
    assert_eq!(new_account(&given, true, false).unwrap().version, 0);
    assert!(matches!(
        new_account(&given, false, false),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        new_account(&given, true, true),
        Err(StoreError::AlreadyExists(_))
    ));
}

#[test]
fn password_attempts_are_counted_only_below_the_limit_and_unlocked() {
    assert_eq!(count_password_attempt(None, 3), PasswordAttempt::UnknownId);
    let two = crate::model::Account {
        failed_attempts: 2,
        ..account("nozawa1", "5110")
    };
    let PasswordAttempt::Counted(counted) = count_password_attempt(Some(two.clone()), 3) else {
        panic!("below the limit, counted");
    };
    assert_eq!(counted.failed_attempts, 3);
    assert_eq!(counted.version, two.version, "counting is not a decision");
    assert_eq!(
        count_password_attempt(Some(two.clone()), 2),
        PasswordAttempt::OverLimit(two.clone())
    );
    let locked = crate::model::Account {
        locked: true,
        ..two.clone()
    };
    assert_eq!(
        count_password_attempt(Some(locked.clone()), 9),
        PasswordAttempt::OverLimit(locked.clone())
    );
    assert_eq!(clear_password_attempts(locked.clone()), (locked, false));
    let (cleared, changed) = clear_password_attempts(two);
    assert!(changed);
    assert_eq!(cleared.failed_attempts, 0);
}

#[test]
fn a_change_applies_in_order_on_the_expected_version_only() {
    let stored = crate::model::Account {
        failed_attempts: 3,
        ..account("nozawa1", "5110")
    };
    let v = stored.version;
    assert!(matches!(
        apply_change(Some(stored.clone()), &change(v + 1, vec![])),
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        apply_change(None, &change(v, vec![])),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        apply_change(
            Some(stored.clone()),
            &change(v, vec![AccountEdit::LockAtFailures(4)])
        ),
        Err(StoreError::Conflict)
    ));
    let edits = vec![
        AccountEdit::LockAtFailures(3),
        AccountEdit::Rename("Nozawa".into()),
        AccountEdit::Choose(CertificateChoice::Reissue),
    ];
    let locked = apply_change(Some(stored.clone()), &change(v, edits)).unwrap();
    assert!(locked.locked);
    assert_eq!(locked.name, "Nozawa");
    assert_eq!(locked.choice, CertificateChoice::Reissue);
    assert_eq!(locked.version, v + 1);
    let unlocked = apply_change(Some(locked), &change(v + 1, vec![AccountEdit::Unlock])).unwrap();
    assert!(!unlocked.locked);
    assert_eq!(unlocked.failed_attempts, 0);
    let at_max = crate::model::Account {
        version: u64::MAX,
        ..stored
    };
    assert!(matches!(
        apply_change(Some(at_max), &change(u64::MAX, vec![])),
        Err(StoreError::Backend(_))
    ));
}

#[test]
fn an_issuance_needs_the_version_the_next_number_and_the_current_certificate() {
    let stored = crate::model::Account {
        current_certificate: Some(serial(1)),
        issued_count: 1,
        ..account("nozawa1", "5110")
    };
    let v = stored.version;
    let ok = issuance(v, record(2, "nozawa1", 2, 2, 10), Some(serial(1)));
    let issued = issue(Some(stored.clone()), &ok).unwrap();
    assert_eq!(issued.current_certificate, Some(serial(2)));
    assert_eq!(issued.issued_count, 2);
    assert_eq!(issued.version, v + 1);
    assert_eq!(issued.choice, ok.choice);
    for refused in [
        issuance(v + 1, record(2, "nozawa1", 2, 2, 10), Some(serial(1))),
        issuance(v, record(2, "nozawa1", 3, 2, 10), Some(serial(1))),
        issuance(v, record(2, "nozawa1", 1, 2, 10), Some(serial(1))),
        issuance(v, record(2, "nozawa1", 2, 2, 10), Some(serial(9))),
    ] {
        assert!(matches!(
            issue(Some(stored.clone()), &refused),
            Err(StoreError::Conflict)
        ));
    }
    assert!(matches!(issue(None, &ok), Err(StoreError::NotFound(_))));
    let mut revoked = ok.clone();
    revoked.record.revocation = Some(supersession(&ok.record));
    assert!(matches!(
        issuance_holder(&revoked),
        Err(StoreError::Backend(_))
    ));
    assert_eq!(issuance_holder(&ok).unwrap(), &id("nozawa1"));
}

#[test]
fn a_new_certificate_needs_a_reserved_unused_serial_and_a_new_key() {
    assert!(new_certificate(true, false, None, false).is_ok());
    assert!(matches!(
        new_certificate(false, false, None, false),
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        new_certificate(true, true, None, false),
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        new_certificate(true, false, Some(serial(4)), false),
        Err(StoreError::KeyReused(s)) if s == serial(4)
    ));
    // The certificate it supersedes has the same key: a renewal with the same key.
    assert!(new_certificate(true, false, Some(serial(4)), true).is_ok());
    assert!(matches!(
        new_certificate(true, true, Some(serial(4)), true),
        Err(StoreError::Conflict)
    ));
}

#[test]
fn only_an_unrevoked_certificate_of_the_account_is_revoked_with_its_index_entry() {
    let revocation = Revocation {
        at: at(50),
        reason: RevocationReason::KeyCompromise,
    };
    let stored = record(1, "nozawa1", 1, 1, 0);
    assert_eq!(revocation_entry(&stored), None);
    let revoked =
        revoke_account_certificate(Some(stored.clone()), &id("nozawa1"), &serial(1), revocation)
            .unwrap();
    assert_eq!(revoked.revocation, Some(revocation));
    let entry = revocation_entry(&revoked).unwrap();
    assert_eq!(
        (entry.serial, entry.not_after),
        (serial(1), stored.not_after)
    );
    assert!(matches!(
        revoke_account_certificate(
            Some(revoked.clone()),
            &id("nozawa1"),
            &serial(1),
            revocation
        ),
        Err(StoreError::Conflict)
    ));
    for (stored, account) in [(Some(stored), "kiyo"), (None, "nozawa1")] {
        assert!(matches!(
            revoke_account_certificate(stored, &id(account), &serial(1), revocation),
            Err(StoreError::NotFound(_))
        ));
    }
    assert_eq!(revoke_app_certificate(Some(revoked), revocation), None);
}
