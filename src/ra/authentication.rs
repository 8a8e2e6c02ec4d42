//! Password checks: counted in the store before they run, so that the lockout holds across
//! concurrent requests and daemons, and all failures answered alike.

use zeroize::Zeroizing;

use crate::model::{Account, AccountId, Actor, EventKind, HistoryEvent, Outcome};
use crate::store::{AccountChange, AccountEdit, PasswordAttempt, StoreError};

use super::policy::{self, Refusal};
use super::{Caller, RaError, RegistrationAuthority, MAX_ATTEMPTS};

/// Longest a password check waits for the checks already counted against its ID to end.
pub(super) const PENDING_CHECKS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl RegistrationAuthority {
    /// Checks a password; all failures look the same outside (401, one Argon2 check each).
    ///
    /// The attempt is counted in the store *before* the password is checked, and only while
    /// fewer than `max_failed_attempts` are counted: so under any concurrency, on any number of
    /// daemons sharing the store, at most that many wrong passwords are ever checked for one
    /// ID between two successes or unlocks. An attempt over the limit, on a locked ID or on an
    /// unknown one is not checked at all; it costs a check against the dummy hash, so that its
    /// answer takes as long as any other.
    pub(super) async fn authenticate(
        &self,
        source: &str,
        id: &str,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<Account, RaError> {
        // A place among the password checks first: a busy daemon refuses before it counts.
        let slot = self.passwords.admit()?;
        let id: Option<AccountId> = id.parse().ok();
        let attempt = match &id {
            Some(id) => self.count_password_attempt(source, id).await?,
            None => PasswordAttempt::UnknownId,
        };
        let account = match attempt {
            PasswordAttempt::Counted(account) => account,
            PasswordAttempt::UnknownId => {
                slot.verify(password, None).await?;
                let claimed = id.map_or_else(
                    || "a malformed ID".to_owned(),
                    |id| format!("unknown ID {id}"),
                );
                let recorded = self
                    .record_refusal(
                        &Caller::enrolling(Actor::Anonymous, source),
                        None,
                        EventKind::Enroll,
                        format!("authentication failed: {claimed}"),
                    )
                    .await;
                return Err(refused_even_unrecorded(recorded, RaError::Unauthenticated));
            }
            PasswordAttempt::OverLimit(account) => {
                slot.verify(password, None).await?;
                // A removed ID: one check against the dummy hash and the same answer as
                // for an unknown ID, recorded under the ID for its audit trail.
                let why = if account.is_removed() {
                    "ID removed".to_owned()
                } else if account.locked {
                    "ID locked".to_owned()
                } else {
                    format!(
                        "{} password checks already counted; password not checked",
                        account.failed_attempts
                    )
                };
                let recorded = self
                    .record_refusal(
                        &Caller::account(&account.id, source),
                        Some(&account),
                        EventKind::Enroll,
                        format!("authentication failed: {why}"),
                    )
                    .await;
                return Err(refused_even_unrecorded(recorded, RaError::Unauthenticated));
            }
        };
        // The count was durable when it returned: a crash cannot give a guess back.
        let caller = Caller::account(&account.id, source);
        if slot
            .verify(password, Some(account.password_hash.clone()))
            .await?
        {
            self.accept_right_password(&caller, account).await
        } else {
            let settled = self.settle_wrong_password(&caller, account).await;
            Err(refused_even_unrecorded(settled, RaError::Unauthenticated))
        }
    }

    /// Counts an attempt for `id` in the store. When the limit is reached only because checks
    /// are still running (on this daemon or another), waits for them to end (at most
    /// [`PENDING_CHECKS_WAIT`], polling the store), since a right password among them resets
    /// the count: many right passwords sent at once are all checked, however many there are,
    /// and wrong ones never more than the limit.
    ///
    /// Counted checks that have not ended by then never will: their requests were cancelled
    /// (the client closed the connection, the request timed out) or their daemon stopped
    /// between counting and settling. Each was a guess that nobody may take back, so the ID is
    /// locked then, as the last of them would have locked it ([`Self::lock_unsettled`]):
    /// otherwise it would stay at the limit unlocked, every later attempt waiting here in vain
    /// and its administrators seeing it as not locked.
    pub(super) async fn count_password_attempt(
        &self,
        source: &str,
        id: &AccountId,
    ) -> Result<PasswordAttempt, RaError> {
        let deadline = tokio::time::Instant::now() + PENDING_CHECKS_WAIT;
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            let attempt = self
                .store
                .count_password_attempt(id, self.max_failed_attempts)
                .await?;
            match attempt {
                PasswordAttempt::OverLimit(account)
                    if policy::locks_after_failed_check(&account, self.max_failed_attempts)
                        && !account.is_removed() =>
                {
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Ok(PasswordAttempt::OverLimit(
                            self.lock_unsettled(source, account).await?,
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                other => return Ok(other),
            }
        }
    }

    /// Locks an ID whose counted password checks never ended (see
    /// [`Self::count_password_attempt`]), recording why; returns the account as it is now
    /// (locked, by this call or by the check that settled meanwhile, or cleared by a right
    /// password that settled meanwhile). `source` is the attempt that found them.
    async fn lock_unsettled(&self, source: &str, counted: Account) -> Result<Account, RaError> {
        let locking = self
            .lock_at_limit(source, counted, None, |account| {
                format!(
                    "locked: {} password checks were counted and never ended (their requests \
                     were cancelled or their daemon stopped), each a guess",
                    account.failed_attempts
                )
            })
            .await?;
        Ok(match locking {
            Locking::Locked(account) => {
                tracing::warn!(
                    id = %account.id,
                    "ID locked: password checks counted against it never ended"
                );
                account
            }
            Locking::NotNeeded(account) => account,
        })
    }

    /// Locks `account` if its counted failures have reached the limit, in one write with the
    /// lock's history entry (`detail`) after `first`, when given; on a concurrent change,
    /// decides again on the account as it is then. An ID unlocked, cleared, already locked
    /// or removed meanwhile needs no lock ([`Locking::NotNeeded`]).
    async fn lock_at_limit(
        &self,
        source: &str,
        counted: Account,
        first: Option<&HistoryEvent>,
        detail: impl Fn(&Account) -> String,
    ) -> Result<Locking, RaError> {
        let mut account = counted;
        for _ in 0..MAX_ATTEMPTS {
            if !policy::locks_after_failed_check(&account, self.max_failed_attempts)
                || account.is_removed()
            {
                return Ok(Locking::NotNeeded(account));
            }
            let lock = self.event(
                &Caller::enrolling(Actor::System, source),
                Some(&account),
                EventKind::Lock,
                Outcome::Ok {
                    detail: detail(&account),
                },
            );
            match self
                .store
                .update_account(AccountChange {
                    id: account.id.clone(),
                    expected_version: account.version,
                    edits: vec![AccountEdit::LockAtFailures(self.max_failed_attempts)],
                    revoke: None,
                    events: first.cloned().into_iter().chain([lock]).collect(),
                })
                .await
            {
                Ok(locked) => {
                    self.observer.locked_out();
                    return Ok(Locking::Locked(locked));
                }
                Err(StoreError::Conflict) => account = self.reload(&account.id).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RaError::Contended)
    }

    /// A right password: clears the failure count, unless the ID was locked meanwhile by
    /// concurrent wrong guesses, in which case the answer is the same as for a wrong one.
    pub(super) async fn accept_right_password(
        &self,
        caller: &Caller,
        account: Account,
    ) -> Result<Account, RaError> {
        let account = self.store.clear_password_attempts(&account.id).await?;
        if account.locked {
            let recorded = self
                .record_refusal(
                    caller,
                    Some(&account),
                    EventKind::Enroll,
                    "authentication failed: ID locked while the password was checked".into(),
                )
                .await;
            return Err(refused_even_unrecorded(recorded, RaError::Unauthenticated));
        }
        Ok(account)
    }

    /// A wrong password: records it (the store counted it already) and locks the ID when the
    /// count has reached the limit.
    pub(super) async fn settle_wrong_password(
        &self,
        caller: &Caller,
        counted: Account,
    ) -> Result<(), RaError> {
        let failed = self.event(
            caller,
            Some(&counted),
            EventKind::Enroll,
            Outcome::Refused {
                reason: format!(
                    "authentication failed: wrong password ({} of {})",
                    counted.failed_attempts, self.max_failed_attempts
                ),
            },
        );
        let locking = self
            .lock_at_limit(&caller.source, counted, Some(&failed), |account| {
                format!("locked after {} wrong passwords", account.failed_attempts)
            })
            .await?;
        match locking {
            Locking::Locked(account) => {
                tracing::warn!(id = %account.id, "ID locked after too many wrong passwords");
            }
            Locking::NotNeeded(_) => self.store.append_history(failed).await?,
        }
        Ok(())
    }
}

/// What [`RegistrationAuthority::lock_at_limit`] did.
enum Locking {
    /// Locked now, by this call: the account as stored.
    Locked(Account),
    /// Not (or no longer) at the limit, already locked, or removed: the account as found.
    NotNeeded(Account),
}

/// The answer to a refusal when recording it in history failed (the store unavailable):
/// the refusal all the same, never the store's error. For a failed authentication (a wrong
/// password, or one not checked: unknown ID, locked, over the limit) this keeps the source's
/// failed-login tokens spent (`authenticate_enrollment` gives them back for errors, which
/// judge no password) and the answer like any other failure; the attempt itself was counted
/// in the store before the check, and a lock that could not be written is taken by a later
/// attempt ([`RegistrationAuthority::count_password_attempt`]). For a throttled source the
/// answer stays 429 with its Retry-After.
pub(super) fn refused_even_unrecorded(recorded: Result<(), RaError>, refusal: RaError) -> RaError {
    if let Err(e) = recorded {
        tracing::error!(
            error = %e,
            refusal = %refusal,
            "a refusal could not be recorded in history; it is refused all the same"
        );
    }
    refusal
}

/// The outcome of an issuance to an ID that just gave its password: "locked" means the ID
/// was locked while the password was checked (by concurrent wrong guesses), and the answer
/// must not tell this guess from a wrong one.
pub(super) fn unauthenticated_if_locked<T>(issued: Result<T, RaError>) -> Result<T, RaError> {
    match issued {
        Err(RaError::Refused(Refusal::Locked)) => Err(RaError::Unauthenticated),
        other => other,
    }
}
