//! Which CA a database belongs to ([`crate::store::CaBinding`]).

use std::sync::Arc;

use super::fixtures::*;
use super::Backend;
use crate::model::KeyFingerprint;

/// Of daemons binding one database at once, one wins and every one is told its key; the
/// binding survives a reopen, a later bind never replaces it, a rebind does, and the binding
/// is no record (the database stays empty for a restore).
pub(super) async fn the_first_ca_binding_wins_under_concurrency_and_across_reopens<B: Backend>() {
    let mut f = Fixture::<B>::empty().await;
    assert_eq!(f.store().bound_ca().await.unwrap(), None);
    let keys: Vec<KeyFingerprint> = (1..=8u8).map(|n| KeyFingerprint([n; 32])).collect();
    let tasks: Vec<_> = keys
        .iter()
        .map(|key| {
            let store = Arc::clone(f.store());
            let key = *key;
            tokio::spawn(async move { store.bind_ca(key).await.unwrap() })
        })
        .collect();
    let mut told = Vec::new();
    for task in tasks {
        told.push(task.await.unwrap());
    }
    let winner = told[0];
    assert!(keys.contains(&winner), "{winner:?}");
    assert!(told.iter().all(|key| *key == winner), "{told:?}");
    assert_eq!(f.store().bound_ca().await.unwrap(), Some(winner));
    assert!(
        f.store().is_empty().await.unwrap(),
        "a binding is not a record"
    );

    f.reopen().await;
    assert_eq!(f.store().bound_ca().await.unwrap(), Some(winner));
    let other = KeyFingerprint([9; 32]);
    assert_eq!(
        f.store().bind_ca(other).await.unwrap(),
        winner,
        "a bind never replaces a binding"
    );
    f.store().rebind_ca(other).await.unwrap();
    f.reopen().await;
    assert_eq!(f.store().bound_ca().await.unwrap(), Some(other));
}
