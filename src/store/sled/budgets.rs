//! Budgets: limits kept in the store as token buckets, so that they hold across daemons.

use time::OffsetDateTime;

use super::rows::{Stored, TokenBucket};
use super::{from_tx, tx, tx_get, SledStore};
use crate::store::{Budget, BudgetSpend, StoreError};

impl SledStore {
    pub(super) fn take_from_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<BudgetSpend, StoreError> {
        self.budgets
            .transaction(|budgets| {
                let mut bucket = tx_get::<TokenBucket>(budgets, key.as_bytes())?
                    .unwrap_or_else(|| TokenBucket::full(budget, now));
                let spend = bucket.take(budget, now);
                budgets.insert(key.as_bytes(), tx(bucket.encode())?)?;
                Ok(spend)
            })
            .map_err(from_tx)
    }

    pub(super) fn refund_to_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.budgets
            .transaction(|budgets| {
                if let Some(mut bucket) = tx_get::<TokenBucket>(budgets, key.as_bytes())? {
                    bucket.refund(budget, now);
                    budgets.insert(key.as_bytes(), tx(bucket.encode())?)?;
                }
                Ok(())
            })
            .map_err(from_tx)
    }
}

impl TokenBucket {
    fn full(budget: Budget, now: OffsetDateTime) -> Self {
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

    fn take(&mut self, budget: Budget, now: OffsetDateTime) -> BudgetSpend {
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

    fn refund(&mut self, budget: Budget, now: OffsetDateTime) {
        self.refill(budget, now);
        self.tokens = (self.tokens + 1.0).min(f64::from(budget.capacity));
    }
}

/// An instant as Unix milliseconds.
pub(super) fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000).clamp(i64::MIN.into(), i64::MAX.into()) as i64
}
