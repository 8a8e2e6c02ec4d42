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

pub(super) async fn refilled_budgets_under_a_prefix_are_forgotten_and_no_others<B: Backend>() {
    let f = Fixture::<B>::empty().await;
    let store = f.store();
    // Two tokens, one back every 300 s.
    let budget = Budget {
        capacity: 2,
        window: std::time::Duration::from_secs(600),
    };
    for key in ["src/a", "src/b", "other/a"] {
        store.take_from_budget(key, budget, at(0)).await.unwrap();
    }
    // "src/b" is taken from again at 200 s (1.67 tokens, 0.67 left): at 301 s "src/a" is full
    // again, "src/b" is not (1.003 tokens).
    assert_eq!(
        store
            .take_from_budget("src/b", budget, at(200))
            .await
            .unwrap(),
        BudgetSpend::Taken
    );
    assert_eq!(
        store
            .forget_refilled_budgets("src/", budget, at(10))
            .await
            .unwrap(),
        0,
        "nothing is full again at 10 s"
    );
    assert_eq!(
        store
            .forget_refilled_budgets("src/", budget, at(301))
            .await
            .unwrap(),
        1
    );
    // "src/b" kept its state: one token, then a refusal.
    assert_eq!(
        store
            .take_from_budget("src/b", budget, at(301))
            .await
            .unwrap(),
        BudgetSpend::Taken
    );
    assert!(matches!(
        store
            .take_from_budget("src/b", budget, at(301))
            .await
            .unwrap(),
        BudgetSpend::Exhausted { .. }
    ));
    // A forgotten bucket starts full; the other prefix was not touched until asked for.
    for _ in 0..2 {
        assert_eq!(
            store
                .take_from_budget("src/a", budget, at(301))
                .await
                .unwrap(),
            BudgetSpend::Taken
        );
    }
    assert_eq!(
        store
            .forget_refilled_budgets("other/", budget, at(301))
            .await
            .unwrap(),
        1
    );
}

/// A budget taken from while a sweep forgets it (full again after a refund) is taken from
/// or recreated, never an error: the take and the sweep race on the same row.
pub(super) async fn a_budget_taken_from_while_it_is_forgotten_is_never_an_error<B: Backend>() {
    let f = Fixture::<B>::empty().await;
    let store = f.store();
    let budget = Budget {
        capacity: 4,
        window: std::time::Duration::from_secs(60),
    };
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Sweeps for as long as the takers run.
    let sweeper = {
        let store = Arc::clone(store);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut forgotten = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                forgotten += store
                    .forget_refilled_budgets("race/", budget, at(0))
                    .await
                    .unwrap();
                // The embedded backends answer without awaiting: let the takers in.
                tokio::task::yield_now().await;
            }
            forgotten
        })
    };
    let takers: Vec<_> = (0..4)
        .map(|n| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let key = format!("race/{n}");
                for _ in 0..150 {
                    let spent = store.take_from_budget(&key, budget, at(0)).await;
                    assert_eq!(spent.unwrap(), BudgetSpend::Taken);
                    // Full again: the sweep may forget it before the next take.
                    store.refund_to_budget(&key, budget, at(0)).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in takers {
        t.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        sweeper.await.unwrap() > 0,
        "the sweep forgot some full budgets"
    );
}
