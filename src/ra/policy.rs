//! The lifecycle rules of an ID's certificate (DESIGN.md section 3), as pure functions of the
//! account, its current certificate and the time. No I/O: the registration authority reads
//! state, asks these functions, and commits what they decide.

use time::OffsetDateTime;

use crate::model::{
    rfc3339, Account, CertificateChoice, CertificateRecord, Revocation, RevocationReason, Serial,
};

/// How an enrollment authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollVia {
    /// simpleenroll: ID and password (already verified).
    Password,
    /// Delegated issuance: an application (or the operator) whose scope covers the ID stands
    /// for its password. The same rules as [`EnrollVia::Password`], by design: a delegate
    /// gets nothing the ID could not get itself.
    Delegated,
    /// simplereenroll: a client certificate of this account, with this serial.
    Certificate(Serial),
}

/// A permitted issuance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issuance {
    /// CERTISSUEDNUM of the new certificate.
    pub issued_num: u32,
    /// The certificate the issuance will supersede (revoke), if it is still active.
    pub supersedes: Option<Serial>,
    /// The administrator's choice once the certificate is issued: a pending reissue is used
    /// up, and the next enrollment needs a new choice.
    pub choice: CertificateChoice,
}

/// Why the lifecycle refuses something; each message tells the person what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The ID is locked after too many wrong passwords.
    #[error(
        "this ID is locked after too many wrong passwords; ask your administrator to unlock it"
    )]
    Locked,
    /// The ID has an active certificate and no reissue was chosen.
    #[error(
        "this ID already has an active certificate (serial {serial}, valid until {not_after}); \
         ask your administrator to choose reissue (再発行する) before enrolling again"
    )]
    ActiveCertificate {
        /// The active certificate's serial.
        serial: Serial,
        /// Its notAfter, RFC 3339.
        not_after: String,
    },
    /// The administrator revoked the ID's certificate (失効する).
    #[error(
        "this ID's certificate was revoked by its administrator; enrollment is refused until \
         the administrator chooses reissue (再発行する)"
    )]
    RevokedByAdministrator,
    /// The client certificate is not the ID's current certificate.
    #[error(
        "this client certificate is not the ID's current certificate; use the newest \
         certificate, or enroll with ID and password after a reissue"
    )]
    NotCurrentCertificate,
    /// The client certificate expired.
    #[error(
        "this client certificate has expired; enroll again with ID and password (simpleenroll)"
    )]
    CertificateExpired,
    /// The client certificate was revoked.
    #[error("this client certificate was revoked; ask your administrator to choose reissue")]
    CertificateRevoked,
    /// 継続利用する on a revoked certificate: nothing can be continued.
    #[error(
        "the certificate of this ID was revoked and cannot be continued; choose reissue to let \
         the ID enroll again"
    )]
    NothingToContinue,
    /// 失効する when the ID is already revoked.
    #[error("the certificate of this ID is already revoked")]
    AlreadyRevoked,
    /// The certificate's notAfter would exceed a limit the policy cannot move.
    #[error("{0}")]
    Other(String),
    /// The ID was removed: nothing about it changes any more (its record stays for audit).
    #[error(
        "the ID {id} was removed on {at}; a removed ID cannot be changed, enrolled or \
         created again (its certificates and history stay for audit): create a new ID"
    )]
    Removed {
        /// The ID.
        id: crate::model::AccountId,
        /// When it was removed, RFC 3339.
        at: String,
    },
}

/// Refuses anything about a removed ID ([`Refusal::Removed`]).
pub fn not_removed(account: &Account) -> Result<(), Refusal> {
    match account.removed_at {
        Some(at) => Err(Refusal::Removed {
            id: account.id.clone(),
            at: rfc3339(at),
        }),
        None => Ok(()),
    }
}

/// The RFC 5280 reason of the revocation of a removed ID's certificate: the ID ceases to
/// exist, so the certificate "is no longer needed for the purpose for which it was issued"
/// (`cessationOfOperation`, RFC 5280 section 5.3.1). Not `affiliationChanged`, which says the
/// subject's name or other information changed: the holder may well still be with the
/// company, but this ID is gone; and not `keyCompromise`, which nothing indicates.
pub const REMOVAL_REASON: RevocationReason = RevocationReason::CessationOfOperation;

/// What removing an ID changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalEffect {
    /// The ID's active certificate to revoke in the same step ([`REMOVAL_REASON`], now).
    pub revoke: Option<(Serial, Revocation)>,
    /// What was done, for history and for the caller.
    pub detail: String,
}

/// Decides removing an ID: refused if it was removed already; its active certificate, if it
/// has one, is revoked now with [`REMOVAL_REASON`] (an expired or already revoked one stays
/// as it is: revoking it again would change the reason and time relying parties saw).
pub fn removal(
    account: &Account,
    current: Option<&CertificateRecord>,
    now: OffsetDateTime,
) -> Result<RemovalEffect, Refusal> {
    not_removed(account)?;
    let effect = match current.filter(|c| c.is_active(now)) {
        Some(c) => RemovalEffect {
            revoke: Some((
                c.serial,
                Revocation {
                    at: now,
                    reason: REMOVAL_REASON,
                },
            )),
            detail: format!(
                "{} ID removed; certificate {} revoked ({REMOVAL_REASON})",
                account.role, c.serial
            ),
        },
        None => RemovalEffect {
            revoke: None,
            detail: format!("{} ID removed; no active certificate", account.role),
        },
    };
    Ok(effect)
}

/// Decides an enrollment (one row of the lifecycle table).
///
/// `current` is the record of `account.current_certificate`, if it has one.
pub fn enrollment(
    account: &Account,
    current: Option<&CertificateRecord>,
    via: EnrollVia,
    now: OffsetDateTime,
) -> Result<Issuance, Refusal> {
    not_removed(account)?;
    if account.locked {
        return Err(Refusal::Locked);
    }
    if account.choice == CertificateChoice::Revoked {
        return Err(Refusal::RevokedByAdministrator);
    }
    let active = current.filter(|c| c.is_active(now));
    let issuance = Issuance {
        issued_num: account.issued_count.saturating_add(1),
        supersedes: active.map(|c| c.serial),
        choice: CertificateChoice::Continue,
    };
    match via {
        EnrollVia::Password | EnrollVia::Delegated => match (account.choice, active) {
            (CertificateChoice::Reissue, _) | (_, None) => Ok(issuance),
            (_, Some(c)) => Err(Refusal::ActiveCertificate {
                serial: c.serial,
                not_after: rfc3339(c.not_after),
            }),
        },
        EnrollVia::Certificate(presented) => {
            let current = current
                .filter(|c| c.serial == presented)
                .ok_or(Refusal::NotCurrentCertificate)?;
            if current.revocation.is_some() {
                Err(Refusal::CertificateRevoked)
            } else if now >= current.not_after {
                Err(Refusal::CertificateExpired)
            } else {
                Ok(issuance)
            }
        }
    }
}

/// The administrator's three choices (the seed's 編集 screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateAction {
    /// 継続利用する: cancel a pending reissue.
    Continue,
    /// 再発行する: allow the next enrollment, which supersedes the current certificate.
    Reissue,
    /// 失効する: revoke the current certificate now and block enrollment until reissue.
    Revoke(RevocationReason),
}

/// What a [`CertificateAction`] changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionEffect {
    /// The administrator's choice from now on.
    pub choice: CertificateChoice,
    /// The certificate to revoke in the same step.
    pub revoke: Option<(Serial, Revocation)>,
    /// What was done, for history and for the caller.
    pub detail: String,
}

/// Decides an administrator's choice for an account's certificate.
pub fn certificate_action(
    account: &Account,
    current: Option<&CertificateRecord>,
    action: CertificateAction,
    now: OffsetDateTime,
) -> Result<ActionEffect, Refusal> {
    let (choice, revoke, detail) = match action {
        CertificateAction::Continue => match account.choice {
            CertificateChoice::Revoked => return Err(Refusal::NothingToContinue),
            CertificateChoice::Reissue => (
                CertificateChoice::Continue,
                None,
                "pending reissue cancelled".to_owned(),
            ),
            CertificateChoice::Continue => (
                CertificateChoice::Continue,
                None,
                "no reissue was pending".to_owned(),
            ),
        },
        CertificateAction::Reissue => (
            CertificateChoice::Reissue,
            None,
            "reissue allowed: the next enrollment supersedes the current certificate".to_owned(),
        ),
        CertificateAction::Revoke(reason) => {
            let active = current.filter(|c| c.is_active(now));
            if account.choice == CertificateChoice::Revoked && active.is_none() {
                return Err(Refusal::AlreadyRevoked);
            }
            let (revoke, detail) = match active {
                Some(c) => (
                    Some((c.serial, Revocation { at: now, reason })),
                    format!("certificate {} revoked ({reason})", c.serial),
                ),
                None => (
                    None,
                    "no active certificate; enrollment blocked until reissue".to_owned(),
                ),
            };
            (CertificateChoice::Revoked, revoke, detail)
        }
    };
    Ok(ActionEffect {
        choice,
        revoke,
        detail,
    })
}

/// Whether a password check that failed locks the ID.
///
/// The store counted the attempt before the password was checked
/// ([`RaStore::count_password_attempt`](crate::store::RaStore::count_password_attempt)), so
/// `failed_attempts` already includes it (and any attempt still being checked). The ID locks
/// once `max_failed_attempts` are counted; a success that clears the count before this
/// failure is decided leaves it unlocked. A lock is lifted by an unlock (or a password reset)
/// only; a right password is never accepted while the ID is locked.
pub fn locks_after_failed_check(account: &Account, max_failed_attempts: u32) -> bool {
    !account.locked && account.failed_attempts >= max_failed_attempts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Holder, KeyFingerprint, Role};
    use time::macros::datetime;
    use time::Duration;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn account(choice: CertificateChoice, current: Option<Serial>, issued: u32) -> Account {
        Account {
            choice,
            current_certificate: current,
            issued_count: issued,
            version: 7,
            ..Account::new(
                "nozawa1".parse().unwrap(),
                "5110".parse().unwrap(),
                Role::User,
                "Nozawa".into(),
                String::new(),
                NOW,
            )
        }
    }

    fn cert(serial: Serial, not_before: OffsetDateTime, revoked: bool) -> CertificateRecord {
        CertificateRecord {
            serial,
            holder: Holder::Account {
                id: "nozawa1".parse().unwrap(),
                contract: "5110".parse().unwrap(),
                role: Role::User,
                issued_num: 1,
            },
            subject: String::new(),
            not_before,
            not_after: not_before + Duration::days(365),
            key: KeyFingerprint([0; 32]),
            revocation: revoked.then_some(Revocation {
                at: not_before,
                reason: RevocationReason::Superseded,
            }),
            der: vec![],
        }
    }

    #[test]
    fn never_issued_enrolls_with_number_one() {
        let a = account(CertificateChoice::Continue, None, 0);
        assert_eq!(
            enrollment(&a, None, EnrollVia::Password, NOW),
            Ok(Issuance {
                issued_num: 1,
                supersedes: None,
                choice: CertificateChoice::Continue,
            })
        );
    }

    #[test]
    fn active_certificate_refuses_password_enrollment_with_its_serial() {
        let s = Serial::random();
        let c = cert(s, NOW - Duration::days(10), false);
        let a = account(CertificateChoice::Continue, Some(s), 1);
        let err = enrollment(&a, Some(&c), EnrollVia::Password, NOW).unwrap_err();
        assert!(matches!(err, Refusal::ActiveCertificate { serial, .. } if serial == s));
        assert!(err.to_string().contains(&s.to_string()));
        assert!(err.to_string().contains("reissue"));
    }

    #[test]
    fn active_certificate_renews_by_certificate_superseding_it() {
        let s = Serial::random();
        let c = cert(s, NOW - Duration::days(10), false);
        let a = account(CertificateChoice::Continue, Some(s), 1);
        assert_eq!(
            enrollment(&a, Some(&c), EnrollVia::Certificate(s), NOW),
            Ok(Issuance {
                issued_num: 2,
                supersedes: Some(s),
                choice: CertificateChoice::Continue,
            })
        );
    }

    #[test]
    fn reissue_allows_both_ways_and_supersedes_the_active_one() {
        let s = Serial::random();
        let c = cert(s, NOW - Duration::days(10), false);
        let a = account(CertificateChoice::Reissue, Some(s), 3);
        let want = Ok(Issuance {
            issued_num: 4,
            supersedes: Some(s),
            choice: CertificateChoice::Continue,
        });
        assert_eq!(enrollment(&a, Some(&c), EnrollVia::Password, NOW), want);
        assert_eq!(
            enrollment(&a, Some(&c), EnrollVia::Certificate(s), NOW),
            want
        );
    }

    #[test]
    fn continue_cancels_a_pending_reissue_only() {
        let s = Serial::random();
        let c = cert(s, NOW - Duration::days(10), false);
        let a = account(CertificateChoice::Reissue, Some(s), 1);
        let effect = certificate_action(&a, Some(&c), CertificateAction::Continue, NOW).unwrap();
        assert_eq!(effect.choice, CertificateChoice::Continue);
        assert_eq!(effect.revoke, None);
        let after = Account {
            choice: effect.choice,
            ..a
        };
        assert!(matches!(
            enrollment(&after, Some(&c), EnrollVia::Password, NOW),
            Err(Refusal::ActiveCertificate { .. })
        ));
    }

    #[test]
    fn removal_revokes_only_an_active_certificate_and_is_final() {
        let s = Serial::random();
        let a = account(CertificateChoice::Reissue, Some(s), 1);
        let active = cert(s, NOW - Duration::days(10), false);
        let effect = removal(&a, Some(&active), NOW).unwrap();
        assert_eq!(
            effect.revoke,
            Some((
                s,
                Revocation {
                    at: NOW,
                    reason: RevocationReason::CessationOfOperation
                }
            ))
        );
        // Revoked or expired already: nothing is revoked again.
        let revoked = cert(s, NOW - Duration::days(10), true);
        let expired = cert(s, NOW - Duration::days(800), false);
        for current in [Some(&revoked), Some(&expired), None] {
            assert_eq!(removal(&a, current, NOW).unwrap().revoke, None);
        }
        // Once removed: refused, also for every enrollment and administrator's choice.
        let removed = Account {
            removed_at: Some(NOW),
            ..a
        };
        let refused = Err(Refusal::Removed {
            id: removed.id.clone(),
            at: rfc3339(NOW),
        });
        assert_eq!(removal(&removed, None, NOW), refused);
        for via in [
            EnrollVia::Password,
            EnrollVia::Delegated,
            EnrollVia::Certificate(s),
        ] {
            assert_eq!(
                enrollment(&removed, Some(&active), via, NOW).map(|_| ()),
                refused.clone().map(|_: RemovalEffect| ())
            );
        }
    }

    #[test]
    fn revoke_revokes_now_and_blocks_until_reissue() {
        let s = Serial::random();
        let c = cert(s, NOW - Duration::days(10), false);
        let a = account(CertificateChoice::Continue, Some(s), 1);
        let effect = certificate_action(
            &a,
            Some(&c),
            CertificateAction::Revoke(RevocationReason::KeyCompromise),
            NOW,
        )
        .unwrap();
        assert_eq!(
            effect.revoke,
            Some((
                s,
                Revocation {
                    at: NOW,
                    reason: RevocationReason::KeyCompromise
                }
            ))
        );
        let revoked = Account {
            choice: effect.choice,
            ..a
        };
        let mut c_revoked = c.clone();
        c_revoked.revocation = effect.revoke.map(|r| r.1);
        for via in [EnrollVia::Password, EnrollVia::Certificate(s)] {
            assert_eq!(
                enrollment(&revoked, Some(&c_revoked), via, NOW),
                Err(Refusal::RevokedByAdministrator)
            );
        }
        assert_eq!(
            certificate_action(&revoked, Some(&c_revoked), CertificateAction::Continue, NOW)
                .unwrap_err(),
            Refusal::NothingToContinue
        );
        assert_eq!(
            certificate_action(
                &revoked,
                Some(&c_revoked),
                CertificateAction::Revoke(RevocationReason::Unspecified),
                NOW
            )
            .unwrap_err(),
            Refusal::AlreadyRevoked
        );
        let reissued = Account {
            choice: certificate_action(&revoked, Some(&c_revoked), CertificateAction::Reissue, NOW)
                .unwrap()
                .choice,
            ..revoked.clone()
        };
        assert_eq!(
            enrollment(&reissued, Some(&c_revoked), EnrollVia::Password, NOW),
            Ok(Issuance {
                issued_num: 2,
                supersedes: None,
                choice: CertificateChoice::Continue,
            })
        );
    }

    #[test]
    fn expired_certificate_allows_password_enrollment_but_not_renewal() {
        let s = Serial::random();
        let c = cert(s, NOW - Duration::days(400), false);
        let a = account(CertificateChoice::Continue, Some(s), 1);
        assert_eq!(
            enrollment(&a, Some(&c), EnrollVia::Password, NOW),
            Ok(Issuance {
                issued_num: 2,
                supersedes: None,
                choice: CertificateChoice::Continue,
            })
        );
        assert_eq!(
            enrollment(&a, Some(&c), EnrollVia::Certificate(s), NOW),
            Err(Refusal::CertificateExpired)
        );
    }

    #[test]
    fn expiry_follows_the_injected_clock_to_the_second() {
        let s = Serial::random();
        let c = cert(s, NOW, false);
        let a = account(CertificateChoice::Continue, Some(s), 1);
        let just_before = c.not_after - Duration::seconds(1);
        assert!(enrollment(&a, Some(&c), EnrollVia::Password, just_before).is_err());
        assert!(enrollment(&a, Some(&c), EnrollVia::Password, c.not_after).is_ok());
    }

    #[test]
    fn locked_refuses_both_ways() {
        let s = Serial::random();
        let c = cert(s, NOW - Duration::days(1), false);
        let mut a = account(CertificateChoice::Reissue, Some(s), 1);
        a.locked = true;
        for via in [EnrollVia::Password, EnrollVia::Certificate(s)] {
            assert_eq!(enrollment(&a, Some(&c), via, NOW), Err(Refusal::Locked));
        }
    }

    #[test]
    fn a_superseded_or_foreign_certificate_cannot_renew() {
        let old = Serial::random();
        let new = Serial::random();
        let c = cert(new, NOW - Duration::days(1), false);
        let a = account(CertificateChoice::Continue, Some(new), 2);
        assert_eq!(
            enrollment(&a, Some(&c), EnrollVia::Certificate(old), NOW),
            Err(Refusal::NotCurrentCertificate)
        );
    }

    #[test]
    fn lockout_after_the_configured_failures() {
        let mut a = account(CertificateChoice::Continue, None, 0);
        // The store counts each attempt before it is checked; a failure locks only at the limit.
        for counted in 1..=4 {
            a.failed_attempts = counted;
            assert!(!locks_after_failed_check(&a, 5), "failure {counted}");
        }
        a.failed_attempts = 5;
        assert!(locks_after_failed_check(&a, 5), "the fifth failure locks");
        a.locked = true;
        assert!(!locks_after_failed_check(&a, 5), "locking is decided once");
    }

    #[test]
    fn delegated_issuance_follows_the_password_rules_in_every_state() {
        let s = Serial::random();
        let active = cert(s, NOW - Duration::days(10), false);
        let expired = cert(s, NOW - Duration::days(400), false);
        let mut locked = account(CertificateChoice::Continue, None, 0);
        locked.locked = true;
        let states = [
            (account(CertificateChoice::Continue, None, 0), None),
            (
                account(CertificateChoice::Continue, Some(s), 1),
                Some(&active),
            ),
            (
                account(CertificateChoice::Reissue, Some(s), 1),
                Some(&active),
            ),
            (
                account(CertificateChoice::Revoked, Some(s), 1),
                Some(&active),
            ),
            (
                account(CertificateChoice::Continue, Some(s), 1),
                Some(&expired),
            ),
            (locked, None),
        ];
        let mut refused = 0;
        for (a, current) in &states {
            let delegated = enrollment(a, *current, EnrollVia::Delegated, NOW);
            assert_eq!(delegated, enrollment(a, *current, EnrollVia::Password, NOW));
            refused += usize::from(delegated.is_err());
        }
        assert_eq!(refused, 3, "active, revoked and locked are refused");
    }
}
