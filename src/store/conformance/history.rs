//! History: filters, newest first, numbered in commit order, paged without gaps.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::fixtures::*;
use super::Backend;
use crate::model::{EventKind, HistoryEntry};
use crate::store::{HistoryQuery, PageRequest};

pub(super) async fn history_is_newest_first_and_filters_combine<B: Backend>() {
    let f = Fixture::<B>::empty().await;
    let store = &**f.store();
    // (kind, account, contract, time); time deliberately not monotonic in order of append.
    let events = [
        (EventKind::ContractCreate, None, Some("A"), 10),
        (EventKind::AccountCreate, Some("alice"), Some("A"), 20),
        (EventKind::Enroll, Some("alice"), Some("A"), 30),
        (EventKind::AccountCreate, Some("bob"), Some("B"), 40),
        (EventKind::Enroll, Some("bob"), Some("B"), 50),
        (EventKind::Lock, Some("alice"), Some("A"), 60),
        (EventKind::Enroll, Some("alice"), Some("A"), 70),
        (EventKind::Enroll, None, None, 80),
        (EventKind::Enroll, Some("alice"), Some("A"), 5),
    ];
    for (kind, acc, con, t) in events {
        store
            .append_history(event(kind, acc, con, t))
            .await
            .unwrap();
    }
    let everything = all_history(store, HistoryQuery::default()).await;
    assert!(
        everything.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
    let times = |entries: Vec<HistoryEntry>| -> Vec<i64> {
        entries
            .into_iter()
            .map(|e| e.event.at.unix_timestamp() - 1_700_000_000)
            .collect()
    };
    let q = |query: HistoryQuery| async move { times(all_history(store, query).await) };
    let alice = || HistoryQuery {
        account: Some(id("alice")),
        ..HistoryQuery::default()
    };

    assert_eq!(times(everything), [5, 80, 70, 60, 50, 40, 30, 20, 10]);
    let page = |limit: usize, query: HistoryQuery| async move {
        let query = HistoryQuery {
            page: PageRequest::first(limit),
            ..query
        };
        times(store.history(&query).await.unwrap().items)
    };
    assert_eq!(page(0, HistoryQuery::default()).await, Vec::<i64>::new());
    assert_eq!(page(3, HistoryQuery::default()).await, [5, 80, 70]);
    assert_eq!(q(alice()).await, [5, 70, 60, 30, 20]);
    assert_eq!(
        q(HistoryQuery {
            account: Some(id("ali")),
            ..HistoryQuery::default()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        q(HistoryQuery {
            contract: Some(code("B")),
            ..HistoryQuery::default()
        })
        .await,
        [50, 40]
    );
    assert_eq!(
        q(HistoryQuery {
            contract: Some(code("A")),
            ..HistoryQuery::default()
        })
        .await,
        [5, 70, 60, 30, 20, 10]
    );
    assert_eq!(
        q(HistoryQuery {
            contract: Some(code("B")),
            ..alice()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        q(HistoryQuery {
            kind: Some(EventKind::Enroll),
            ..HistoryQuery::default()
        })
        .await,
        [5, 80, 70, 50, 30]
    );
    assert_eq!(
        page(
            2,
            HistoryQuery {
                kind: Some(EventKind::Enroll),
                ..alice()
            }
        )
        .await,
        [5, 70]
    );
    assert_eq!(
        q(HistoryQuery {
            since: Some(at(30)),
            until: Some(at(70)),
            ..HistoryQuery::default()
        })
        .await,
        [60, 50, 40, 30]
    );
    assert_eq!(
        q(HistoryQuery {
            since: Some(at(30)),
            until: Some(at(70)),
            ..alice()
        })
        .await,
        [60, 30]
    );

    // Paging with the cursor: every page continues exactly after the last entry seen.
    for base in [
        HistoryQuery::default(),
        alice(),
        HistoryQuery {
            contract: Some(code("A")),
            ..HistoryQuery::default()
        },
        HistoryQuery {
            kind: Some(EventKind::Enroll),
            ..HistoryQuery::default()
        },
    ] {
        let everything = all_history(store, base.clone()).await;
        for size in 1..=everything.len() + 1 {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .history(&HistoryQuery {
                        page: PageRequest { after, limit: size },
                        ..base.clone()
                    })
                    .await
                    .unwrap();
                assert!(page.items.len() <= size);
                assert!(!page.items.is_empty() || paged.is_empty(), "no empty page");
                paged.extend(page.items);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(paged, everything, "pages of {size}");
        }
    }
}

pub(super) async fn history_follows_commit_order_under_concurrency<B: Backend>() {
    const TASKS: u64 = 8;
    const EACH: u64 = 15;
    let f = Fixture::<B>::with_nozawa1().await;
    let store = f.store();
    // Each append notes how many appends had returned when it started (`started`) and its
    // rank among the returns (`rank`): one that returned before another started must have
    // the smaller number.
    let returned = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(store);
        let returned = Arc::clone(&returned);
        tasks.push(tokio::spawn(async move {
            let mut notes = Vec::new();
            for n in 0..EACH {
                let started = returned.load(Ordering::SeqCst);
                let mut e = event(EventKind::Query, Some("nozawa1"), Some("5110"), 0);
                e.source = format!("{task}/{n}");
                if n % 3 == 0 {
                    // Commits of other kinds number their history in the same order.
                    store
                        .count_password_attempt(&id("nozawa1"), 1000)
                        .await
                        .unwrap();
                }
                store.append_history(e).await.unwrap();
                let rank = returned.fetch_add(1, Ordering::SeqCst);
                notes.push((format!("{task}/{n}"), started, rank));
            }
            notes
        }));
    }
    let mut notes = Vec::new();
    for t in tasks {
        notes.extend(t.await.unwrap());
    }
    let entries = all_history(
        &**store,
        HistoryQuery {
            kind: Some(EventKind::Query),
            ..HistoryQuery::default()
        },
    )
    .await;
    assert_eq!(entries.len() as u64, TASKS * EACH);
    let seq_of = |source: &str| {
        entries
            .iter()
            .find(|e| e.event.source == source)
            .map(|e| e.seq)
            .unwrap()
    };
    let seqs: BTreeSet<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs.len(), entries.len(), "numbers are unique");
    let mut checked = 0;
    for (later, started, _) in &notes {
        for (earlier, _, rank) in &notes {
            if rank < started {
                assert!(
                    seq_of(earlier) < seq_of(later),
                    "{earlier} returned before {later} started, yet is numbered after it"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}

pub(super) async fn history_pages_neither_skip_nor_repeat_while_entries_are_appended<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = f.store();
    for n in 0..40 {
        store
            .append_history(event(EventKind::Query, Some("nozawa1"), None, n))
            .await
            .unwrap();
    }
    let before = all_history(&**store, HistoryQuery::default()).await;
    let writer = {
        let store = Arc::clone(store);
        tokio::spawn(async move {
            for n in 0..60 {
                store
                    .append_history(event(EventKind::Lock, Some("nozawa1"), None, 1000 + n))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    // Pages read while entries are appended: the first page may see some of them (they are
    // newer), then every page continues exactly where the previous one ended.
    let mut paged: Vec<HistoryEntry> = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .history(&HistoryQuery {
                page: PageRequest { after, limit: 7 },
                ..HistoryQuery::default()
            })
            .await
            .unwrap();
        paged.extend(page.items);
        tokio::task::yield_now().await;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    writer.await.unwrap();
    assert!(
        paged.windows(2).all(|w| w[0].seq > w[1].seq),
        "strictly newest first: nothing repeated"
    );
    let seen: BTreeSet<u64> = paged.iter().map(|e| e.seq).collect();
    assert!(
        before.iter().all(|e| seen.contains(&e.seq)),
        "nothing that existed before was skipped"
    );
    let after_all = all_history(&**store, HistoryQuery::default()).await;
    let top = paged.first().map(|e| e.seq).unwrap();
    let expected: Vec<&HistoryEntry> = after_all.iter().filter(|e| e.seq <= top).collect();
    let got: Vec<&HistoryEntry> = paged.iter().collect();
    assert_eq!(
        got, expected,
        "no gap below the newest entry the first page saw"
    );
}
