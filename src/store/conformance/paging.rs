//! Every listing by pages: exact continuation, nothing skipped or repeated even while rows are
//! added, and cursors that only their own listing accepts.

use std::collections::BTreeSet;
use std::future::Future;

use super::fixtures::*;
use super::Backend;
use crate::model::{
    App, AppScope, CertificateChoice, CertificateRecord, EventKind, Holder, Revocation,
    RevocationReason,
};
use crate::store::{
    AccountChange, AccountEdit, Cursor, HistoryQuery, Page, PageRequest, Store, StoreError,
};

/// A store with contracts C0..C4, 23 accounts spread over them, 6 apps, 9 revoked
/// certificates and their history.
async fn populated<B: Backend>() -> Fixture<B> {
    let f = Fixture::<B>::empty().await;
    let store = &**f.store();
    for c in 0..5 {
        store
            .create_contract(
                contract(&format!("C{c}")),
                event(EventKind::ContractCreate, None, Some(&format!("C{c}")), 0),
            )
            .await
            .unwrap();
    }
    for a in 0..23u8 {
        let c = format!("C{}", a % 3);
        let i = format!("id{a:02}");
        store
            .create_account(
                account(&i, &c),
                event(EventKind::AccountCreate, Some(&i), Some(&c), 1),
            )
            .await
            .unwrap();
    }
    for n in 0..6u8 {
        let s = 100 + n;
        store.reserve_serial(serial(s), at(2)).await.unwrap();
        let name = format!("app{n}");
        store
            .create_app(
                App {
                    name: name.parse().unwrap(),
                    scope: AppScope::All,
                    can_create_contracts: false,
                    certificate: serial(s),
                    revoked: false,
                    created_at: at(2),
                },
                CertificateRecord {
                    holder: Holder::App {
                        name: name.parse().unwrap(),
                    },
                    ..record(s, "id00", 1, s, 2)
                },
                event(EventKind::AppCreate, None, None, 2),
            )
            .await
            .unwrap();
    }
    for a in 0..9u8 {
        let i = format!("id{a:02}");
        issue(
            store,
            0,
            CertificateRecord {
                holder: Holder::Account {
                    id: id(&i),
                    contract: code(&format!("C{}", a % 3)),
                    role: crate::model::Role::User,
                    issued_num: 1,
                },
                ..record(a + 1, &i, 1, a + 1, 3)
            },
            None,
        )
        .await
        .unwrap();
        store
            .update_account(AccountChange {
                id: id(&i),
                expected_version: 1,
                edits: vec![AccountEdit::Choose(CertificateChoice::Revoked)],
                revoke: Some((
                    serial(a + 1),
                    Revocation {
                        at: at(4),
                        reason: RevocationReason::KeyCompromise,
                    },
                )),
                events: vec![event(EventKind::Revoke, Some(&i), None, 4)],
            })
            .await
            .unwrap();
    }
    f
}

/// Reads a listing in pages of `size`, checking that each page holds at most `size` items
/// and only the last has no cursor; returns the keys read.
async fn paged<T, F, Fut>(size: usize, key: fn(&T) -> String, mut read: F) -> Vec<String>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = read(PageRequest { after, limit: size }).await.unwrap();
        assert!(page.items.len() <= size);
        keys.extend(page.items.iter().map(key));
        match page.next {
            Some(next) => {
                assert_eq!(page.items.len(), size, "only the last page is short");
                after = Some(next);
            }
            None => return keys,
        }
    }
}

/// Reads a listing in pages of every size from 1 to beyond its length: always the same keys,
/// in increasing order, each once.
async fn pages_exactly<T, F, Fut>(what: &str, key: fn(&T) -> String, mut read: F) -> usize
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let all = paged(10_000, key, &mut read).await;
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "{what}: increasing, no repeat: {all:?}"
    );
    for size in 1..=all.len() + 1 {
        assert_eq!(
            paged(size, key, &mut read).await,
            all,
            "{what}, pages of {size}"
        );
    }
    let none = read(PageRequest::first(0)).await.unwrap();
    assert!(
        none.items.is_empty() && none.next.is_none(),
        "{what}: limit 0"
    );
    all.len()
}

pub(super) async fn every_listing_pages_exactly<B: Backend>() {
    let f = populated::<B>().await;
    let store: &dyn Store = &**f.store();
    assert_eq!(
        pages_exactly(
            "contracts",
            |c: &crate::model::Contract| c.code.to_string(),
            |p| { store.contracts(p) }
        )
        .await,
        5
    );
    assert_eq!(
        pages_exactly(
            "accounts",
            |a: &crate::model::Account| a.id.to_string(),
            |p| { store.accounts(None, p) }
        )
        .await,
        23
    );
    let c1 = code("C1");
    assert_eq!(
        pages_exactly(
            "accounts of C1",
            |a: &crate::model::Account| a.id.to_string(),
            |p| { store.accounts(Some(&c1), p) }
        )
        .await,
        8
    );
    let c4 = code("C4");
    assert_eq!(
        pages_exactly(
            "accounts of C4",
            |a: &crate::model::Account| a.id.to_string(),
            |p| { store.accounts(Some(&c4), p) }
        )
        .await,
        0
    );
    assert_eq!(
        pages_exactly("apps", |a: &App| a.name.to_string(), |p| store.apps(p)).await,
        6
    );
    assert_eq!(
        pages_exactly(
            "revoked",
            |r: &crate::store::RevokedCertificate| r.serial.to_string(),
            |p| store.revoked_certificates(p)
        )
        .await,
        9
    );
}

pub(super) async fn pages_neither_skip_nor_repeat_while_rows_are_added<B: Backend>() {
    let f = populated::<B>().await;
    let store = &**f.store();
    for (n, listing) in ["accounts", "accounts of C0", "contracts"]
        .into_iter()
        .enumerate()
    {
        let read = |after: Option<Cursor>| async move {
            let page = PageRequest { after, limit: 4 };
            match listing {
                "accounts" => keys(store.accounts(None, page).await),
                "accounts of C0" => keys(store.accounts(Some(&code("C0")), page).await),
                _ => {
                    let page = store.contracts(page).await.unwrap();
                    (
                        page.items.iter().map(|c| c.code.to_string()).collect(),
                        page.next,
                    )
                }
            }
        };
        let before: BTreeSet<String> = paged_keys(read).await.into_iter().collect();
        let mut seen: Vec<String> = Vec::new();
        let mut after = None;
        let mut added = 0u32;
        loop {
            let (items, next) = read(after).await;
            seen.extend(items);
            // Rows added between pages, sorting before and after the cursor.
            for name in [format!("A{n}x{added}"), format!("z{n}x{added}")] {
                added += 1;
                if listing == "contracts" {
                    store
                        .create_contract(
                            contract(&name),
                            event(EventKind::ContractCreate, None, None, 5),
                        )
                        .await
                        .unwrap();
                } else {
                    store
                        .create_account(
                            account(&name, "C0"),
                            event(EventKind::AccountCreate, None, None, 5),
                        )
                        .await
                        .unwrap();
                }
            }
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "{listing}: in order, nothing repeated: {seen:?}"
        );
        assert!(
            seen.iter().any(|k| k.starts_with('z')),
            "{listing}: rows added after the cursor are listed"
        );
        let seen: BTreeSet<String> = seen.into_iter().collect();
        assert!(before.is_subset(&seen), "{listing}: nothing skipped");
    }
}

/// Every key of a listing read with `read`, page after page.
async fn paged_keys<F, Fut>(read: F) -> Vec<String>
where
    F: Fn(Option<Cursor>) -> Fut,
    Fut: Future<Output = (Vec<String>, Option<Cursor>)>,
{
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let (items, next) = read(after).await;
        all.extend(items);
        match next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

fn keys(page: Result<Page<crate::model::Account>, StoreError>) -> (Vec<String>, Option<Cursor>) {
    let page = page.unwrap();
    (
        page.items.iter().map(|a| a.id.to_string()).collect(),
        page.next,
    )
}

pub(super) async fn a_cursor_from_another_listing_is_refused<B: Backend>() {
    let f = populated::<B>().await;
    let store = &**f.store();
    let first = |p: Result<Page<_>, StoreError>| -> Cursor { p.unwrap().next.unwrap() };
    let history = |query: HistoryQuery| async move { store.history(&query).await };
    let alice_history = HistoryQuery {
        account: Some(id("id01")),
        page: PageRequest::first(1),
        ..HistoryQuery::default()
    };
    let cursors = [
        (
            "contracts",
            first(store.contracts(PageRequest::first(1)).await.map(erase)),
        ),
        (
            "accounts",
            first(store.accounts(None, PageRequest::first(1)).await.map(erase)),
        ),
        (
            "accounts of C0",
            first(
                store
                    .accounts(Some(&code("C0")), PageRequest::first(1))
                    .await
                    .map(erase),
            ),
        ),
        (
            "apps",
            first(store.apps(PageRequest::first(1)).await.map(erase)),
        ),
        (
            "revoked",
            first(
                store
                    .revoked_certificates(PageRequest::first(1))
                    .await
                    .map(erase),
            ),
        ),
        (
            "history of id01",
            first(history(alice_history.clone()).await.map(erase)),
        ),
        (
            "history",
            first(
                history(HistoryQuery {
                    page: PageRequest::first(1),
                    ..HistoryQuery::default()
                })
                .await
                .map(erase),
            ),
        ),
        ("not a cursor", Cursor::new(b"\xff\xfe garbage".to_vec())),
        ("empty", Cursor::new(Vec::new())),
    ];
    let page = |c: &Cursor| PageRequest {
        after: Some(c.clone()),
        limit: 3,
    };
    for (from, cursor) in &cursors {
        let attempts: [(&str, Result<(), StoreError>); 8] = [
            ("contracts", store.contracts(page(cursor)).await.map(|_| ())),
            (
                "accounts",
                store.accounts(None, page(cursor)).await.map(|_| ()),
            ),
            (
                "accounts of C0",
                store
                    .accounts(Some(&code("C0")), page(cursor))
                    .await
                    .map(|_| ()),
            ),
            (
                "accounts of C1",
                store
                    .accounts(Some(&code("C1")), page(cursor))
                    .await
                    .map(|_| ()),
            ),
            ("apps", store.apps(page(cursor)).await.map(|_| ())),
            (
                "revoked",
                store.revoked_certificates(page(cursor)).await.map(|_| ()),
            ),
            (
                "history of id01",
                history(HistoryQuery {
                    page: page(cursor),
                    ..alice_history.clone()
                })
                .await
                .map(|_| ()),
            ),
            (
                "history of id01, enrollments",
                history(HistoryQuery {
                    page: page(cursor),
                    kind: Some(EventKind::Enroll),
                    ..alice_history.clone()
                })
                .await
                .map(|_| ()),
            ),
        ];
        for (to, result) in attempts {
            if *from == to {
                assert!(result.is_ok(), "{from} → {to}: {result:?}");
            } else {
                assert!(
                    matches!(result, Err(StoreError::Invalid(_))),
                    "a cursor of {from} given to {to}: {result:?}"
                );
            }
        }
    }
}

/// A page with its items dropped (only its cursor matters here).
fn erase<T>(page: Page<T>) -> Page<()> {
    Page {
        items: Vec::new(),
        next: page.next,
    }
}
