//! Budgets: limits kept in the store as token buckets, so that they hold across daemons.

use time::OffsetDateTime;

use super::{storage, SledStore, BUDGETS};
use crate::store::budget::TokenBucket;
use crate::store::rows::Stored;
use crate::store::{Budget, BudgetSpend, StoreError};

impl SledStore {
    pub(super) fn take_from_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(BudgetSpend, bool), StoreError> {
        self.staged(|staged| {
            let budgets = staged.tree(&self.budgets, BUDGETS);
            let mut bucket = budgets
                .read_row::<TokenBucket>(key.as_bytes())?
                .unwrap_or_else(|| TokenBucket::full(budget, now));
            let spend = bucket.take(budget, now);
            // A refusal changes nothing that the refill would not compute again.
            let taken = spend == BudgetSpend::Taken;
            if taken {
                budgets.put(key.as_bytes(), &bucket.encode()?);
            }
            Ok((spend, taken))
        })
    }

    pub(super) fn refund_to_budget_now(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<((), bool), StoreError> {
        self.staged(|staged| {
            let budgets = staged.tree(&self.budgets, BUDGETS);
            let Some(mut bucket) = budgets.read_row::<TokenBucket>(key.as_bytes())? else {
                return Ok(((), false));
            };
            bucket.refund(budget, now);
            budgets.put(key.as_bytes(), &bucket.encode()?);
            Ok(((), true))
        })
    }

    pub(super) fn forget_refilled_budgets_now(
        &self,
        prefix: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut forgotten = 0;
        for entry in self.budgets.scan_prefix(prefix.as_bytes()) {
            let (key, value) = entry.map_err(|e| storage(BUDGETS, e))?;
            if !TokenBucket::decode(&key, &value)?.refilled(budget, now) {
                continue;
            }
            // Only if nobody took from it meanwhile: a bucket written since is kept.
            let swapped = self
                .budgets
                .compare_and_swap(&key, Some(&value), None::<&[u8]>)
                .map_err(|e| storage(BUDGETS, e))?;
            if swapped.is_ok() {
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }
}
