//! The per-source limit on failed logins, kept in the store so that it holds across daemons.
//!
//! [`throttle`](super::throttle) keeps the same limit in each daemon's memory: it answers a
//! source that failed on *this* daemon at once, without touching the store, and lets checks
//! from one address wait for each other. On its own it would let a source fail its whole
//! budget on every daemon that shares the database. So each admitted check also takes a token
//! from a budget in the store (`failed-logins/<source>`, [`RaStore::take_from_budget`]) before
//! any password is looked at, and gives it back when the password was right or never checked:
//! under any concurrency, from any number of daemons, a source gets at most
//! `auth.max_failures_per_source` failed checks per `auth.failure_window_secs`.
//!
//! When every token of a source is taken, the tokens may be held by checks still running on
//! other daemons (right passwords give theirs back). So a check waits for a token, looking
//! again every [`POLL`], until [`throttle::MAX_WAIT`](super::throttle::MAX_WAIT) after it
//! arrived; only then is it refused. A source whose tokens were spent by failures on this
//! daemon never gets this far: the in-memory throttle refuses it first.
//!
//! Budgets of sources that stopped failing fill up again and are forgotten by
//! [`SourceBudgets::forget_refilled`], which the daemon runs every [`SWEEP_EVERY`].

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Budget, BudgetSpend, RaStore, StoreError};

use super::clock::Clock;
use super::throttle::Throttled;
use crate::source::SourceKey;

/// How often a check that found no token looks again.
pub const POLL: Duration = Duration::from_millis(200);

/// How often the daemon forgets the budgets that are full again.
pub const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// The name prefix of these budgets in the store.
const PREFIX: &str = "failed-logins/";

/// The store's share of the per-source limit.
pub(super) struct SourceBudgets {
    store: Arc<dyn RaStore>,
    clock: Arc<dyn Clock>,
    /// `None`: the limit is off (`auth.max_failures_per_source = 0`).
    budget: Option<Budget>,
}

/// A token taken for a check of `source`'s password; [`SourceBudgets::refund`] gives it back.
#[derive(Debug)]
#[must_use = "a token kept is a failure counted; refund it when the password was right"]
pub(super) struct Spent(Option<String>);

/// Why no token was taken.
#[derive(Debug)]
pub(super) enum NotSpent {
    /// The source's failures used up its budget.
    Throttled(Throttled),
    /// The store did not answer.
    Store(StoreError),
}

impl SourceBudgets {
    /// `max_failures` per `window`; 0 turns the limit off.
    pub(super) fn new(
        store: Arc<dyn RaStore>,
        clock: Arc<dyn Clock>,
        max_failures: u32,
        window: Duration,
    ) -> Self {
        let budget = (max_failures > 0).then_some(Budget {
            capacity: max_failures,
            window: window.max(Duration::from_secs(1)),
        });
        Self {
            store,
            clock,
            budget,
        }
    }

    /// Takes a token of `source` for one password check, waiting (until `deadline`) while
    /// other daemons' checks may still give theirs back. `None` (the operator's admin socket)
    /// is never limited.
    pub(super) async fn take(
        &self,
        source: Option<SourceKey>,
        deadline: tokio::time::Instant,
    ) -> Result<Spent, NotSpent> {
        let (Some(budget), Some(source)) = (self.budget, source) else {
            return Ok(Spent(None));
        };
        let key = format!("{PREFIX}{source}");
        loop {
            match self
                .store
                .take_from_budget(&key, budget, self.clock.now())
                .await
                .map_err(NotSpent::Store)?
            {
                BudgetSpend::Taken => return Ok(Spent(Some(key))),
                BudgetSpend::Exhausted { retry_after_secs } => {
                    if tokio::time::Instant::now() + POLL > deadline {
                        return Err(NotSpent::Throttled(Throttled { retry_after_secs }));
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Gives back a token whose check found the right password, or never ran. A store that
    /// fails here costs the source one token, and is logged; the caller's answer stands.
    pub(super) async fn refund(&self, spent: Spent) {
        let (Some(budget), Some(key)) = (self.budget, spent.0) else {
            return;
        };
        if let Err(e) = self
            .store
            .refund_to_budget(&key, budget, self.clock.now())
            .await
        {
            tracing::warn!(error = %e, "could not give back a failed-login token to the store");
        }
    }

    /// Forgets the budgets that are full again; returns how many.
    pub(super) async fn forget_refilled(&self) -> Result<u64, StoreError> {
        match self.budget {
            Some(budget) => {
                self.store
                    .forget_refilled_budgets(PREFIX, budget, self.clock.now())
                    .await
            }
            None => Ok(0),
        }
    }
}
