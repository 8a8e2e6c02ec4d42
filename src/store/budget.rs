//! The arithmetic of a [`Budget`]: a token bucket that every backend keeps as a row and
//! updates inside a transaction, so that the limit holds across daemons.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Budget, BudgetSpend};

/// A budget's state: tokens left (fractional while refilling), and when they were counted.
/// Backends store it as it is (serde), in a row of their own.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(in crate::store) struct TokenBucket {
    /// Tokens left.
    pub(in crate::store) tokens: f64,
    /// When `tokens` was last brought up to date, Unix time in milliseconds.
    pub(in crate::store) updated_ms: i64,
}

impl TokenBucket {
    /// A bucket used for the first time: full.
    pub(in crate::store) fn full(budget: Budget, now: OffsetDateTime) -> Self {
        Self {
            tokens: f64::from(budget.capacity),
            updated_ms: unix_ms(now),
        }
    }

    fn refill(&mut self, budget: Budget, now: OffsetDateTime) {
        let capacity = f64::from(budget.capacity);
        let per_ms = capacity / (budget.window.as_millis().max(1) as f64);
        let now_ms = unix_ms(now);
        let elapsed = now_ms.saturating_sub(self.updated_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * per_ms).min(capacity);
        self.updated_ms = self.updated_ms.max(now_ms);
    }

    /// Takes a token if there is one, or says how long until there is.
    pub(in crate::store) fn take(&mut self, budget: Budget, now: OffsetDateTime) -> BudgetSpend {
        self.refill(budget, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return BudgetSpend::Taken;
        }
        let per_sec = f64::from(budget.capacity) / budget.window.as_secs_f64().max(0.001);
        let wait = if per_sec > 0.0 {
            (1.0 - self.tokens) / per_sec
        } else {
            budget.window.as_secs_f64()
        };
        BudgetSpend::Exhausted {
            retry_after_secs: (wait.ceil() as u64).max(1),
        }
    }

    /// Whether the bucket is full again at `now`: such a bucket is the same as none, so the
    /// store may forget it ([`RaStore::forget_refilled_budgets`](super::RaStore::forget_refilled_budgets)).
    pub(in crate::store) fn refilled(mut self, budget: Budget, now: OffsetDateTime) -> bool {
        self.refill(budget, now);
        self.tokens >= f64::from(budget.capacity)
    }

    /// Gives a token back, never beyond the capacity.
    pub(in crate::store) fn refund(&mut self, budget: Budget, now: OffsetDateTime) {
        self.refill(budget, now);
        self.tokens = (self.tokens + 1.0).min(f64::from(budget.capacity));
    }
}

/// An instant as Unix milliseconds (clamped to what an `i64` holds).
pub(in crate::store) fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000).clamp(i64::MIN.into(), i64::MAX.into()) as i64
}
