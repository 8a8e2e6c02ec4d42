//! Budgets: token buckets that hold under concurrency.

use std::sync::Arc;

use super::fixtures::*;
use super::Backend;
use crate::store::{Budget, BudgetSpend};

pub(super) async fn budgets_hold_under_concurrency_refill_and_take_refunds<B: Backend>() {
    let f = Fixture::<B>::empty().await;
    let store = f.store();
    let budget = Budget {
        capacity: 3,
        window: std::time::Duration::from_secs(30),
    };
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.take_from_budget("b", budget, at(0)).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        match t.await.unwrap() {
            BudgetSpend::Taken => taken += 1,
            BudgetSpend::Exhausted { retry_after_secs } => assert_eq!(retry_after_secs, 10),
        }
    }
    assert_eq!(taken, 3);
    store.refund_to_budget("b", budget, at(0)).await.unwrap();
    assert_eq!(
        store.take_from_budget("b", budget, at(0)).await.unwrap(),
        BudgetSpend::Taken
    );
    // One token per 10 s comes back; other budgets are separate; a refund never goes past
    // the capacity.
    assert!(matches!(
        store.take_from_budget("b", budget, at(9)).await.unwrap(),
        BudgetSpend::Exhausted { .. }
    ));
    assert_eq!(
        store.take_from_budget("b", budget, at(10)).await.unwrap(),
        BudgetSpend::Taken
    );
    assert_eq!(
        store.take_from_budget("c", budget, at(10)).await.unwrap(),
        BudgetSpend::Taken
    );
    for _ in 0..5 {
        store.refund_to_budget("c", budget, at(10)).await.unwrap();
    }
    let mut again = 0;
    while store.take_from_budget("c", budget, at(10)).await.unwrap() == BudgetSpend::Taken {
        again += 1;
    }
    assert_eq!(again, 3);
}
