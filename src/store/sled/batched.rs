//! Issuances committed in batches: every issuance waiting when the group commit's lock comes
//! free is applied in one staged write, just before the one sync that makes them durable.
//!
//! # Why
//!
//! Each staged write costs sled two inserts besides its own (its intent and the intent's
//! removal, see [`super::staged`]), and a turn of the writer lock. Issuances arrive together
//! (an application provisioning devices over 32 connections) and wait for a sync anyway; a
//! batch pays those costs once for all of them (the README's "Where the time goes" has the
//! profile that showed those costs and the measured effect on the delegated path).
//!
//! # How
//!
//! An issuance is queued with a slot for its outcome, then its writer takes the group
//! commit's lock ([`GroupCommit::apply_then_sync`]). Whoever holds the lock applies every
//! queued issuance ([`SledStore::staged_each`]: each checked on what those before it in the
//! batch wrote, one refused without failing the others), fills their slots with their
//! outcomes and the generation that covers them, and syncs. A writer whose issuance an
//! earlier holder applied finds its slot filled and returns once that generation is durable,
//! usually at once. Nothing is applied outside the lock, and nothing awaits between taking
//! the queue and filling the slots, so a writer whose request is abandoned (its future
//! dropped) cannot strand the others: a filled slot stays filled, and the next holder syncs
//! what an abandoned sync left undone.
//!
//! [`GroupCommit::apply_then_sync`]: crate::store::durability::GroupCommit::apply_then_sync

use std::sync::{Arc, Mutex, PoisonError};

use super::SledStore;
use crate::store::{IssuedCertificate, NewCertificate, StoreError};

/// The outcome of a queued issuance: the issued certificate and the generation a sync must
/// cover for it to be durable, or why it was refused.
type Outcome = Result<(IssuedCertificate, u64), StoreError>;

/// Where a queued issuance's outcome is left by whoever applies it.
type Slot = Arc<Mutex<Option<Outcome>>>;

/// Issuances waiting for the next holder of the group commit's lock.
#[derive(Default)]
pub(super) struct IssuanceQueue {
    waiting: Mutex<Vec<(NewCertificate, Slot)>>,
}

impl SledStore {
    /// Commits an issuance and returns once it is durable: queued, then applied in a batch
    /// by whichever writer next holds the group commit's lock (see the module's
    /// documentation).
    pub(in crate::store) async fn commit_issuance_durably(
        &self,
        issuance: NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        let slot = Slot::default();
        self.issuances
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((issuance, Arc::clone(&slot)));
        let mut outcome = None;
        self.durability
            .apply_then_sync(|| {
                outcome = take(&slot);
                if outcome.is_none() {
                    self.apply_waiting_issuances();
                    outcome = take(&slot);
                }
                match &outcome {
                    Some(Ok((_, generation))) => *generation,
                    _ => 0,
                }
            })
            .await?;
        match outcome {
            Some(Ok((issued, _))) => Ok(issued),
            Some(Err(refused)) => Err(refused),
            None => Err(StoreError::Backend(
                "an issuance was queued but never applied".into(),
            )),
        }
    }

    /// Applies every queued issuance in one staged write and fills their slots; called with
    /// the group commit's lock held.
    fn apply_waiting_issuances(&self) {
        let batch = std::mem::take(
            &mut *self
                .issuances
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let (issuances, slots): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.staged_each(&issuances, |staged, issuance| {
            self.stage_issuance(staged, issuance)
        }) {
            Ok(outcomes) => {
                let generation = self.durability.wrote();
                for (slot, outcome) in slots.iter().zip(outcomes) {
                    fill(slot, outcome.map(|issued| (issued, generation)));
                }
            }
            Err(failed) => {
                let failed = match failed {
                    StoreError::Backend(why) => why,
                    other => other.to_string(),
                };
                for slot in &slots {
                    fill(
                        slot,
                        Err(StoreError::Backend(format!(
                            "the batch of issuances this one was in could not be written: \
                             {failed}"
                        ))),
                    );
                }
            }
        }
    }
}

/// Takes a slot's outcome, if it was filled.
fn take(slot: &Slot) -> Option<Outcome> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn fill(slot: &Slot, outcome: Outcome) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::EventKind;
    use crate::model::KeyFingerprint;
    use crate::store::conformance::fixtures::{
        add_accounts, all_history, at, id, issuance, record, serial,
    };
    use crate::store::{HistoryQuery, RaStore, StoreReads};

    /// Three issuances in one batch: the second reuses the key the first certifies (seen
    /// through the batch's staged writes) and is refused alone; the others are committed,
    /// with one generation, and are there after a reopen.
    #[tokio::test]
    async fn a_refused_issuance_leaves_the_rest_of_its_batch_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = SledStore::open(&path).unwrap();
            let mut slots = Vec::new();
            add_accounts(&store, &["batch1", "batch2", "batch3"]).await;
            for (n, name, key) in [(1, "batch1", 7), (2, "batch2", 7), (3, "batch3", 9)] {
                store.reserve_serial(serial(n), at(100)).await.unwrap();
                let slot = Slot::default();
                store.issuances.waiting.lock().unwrap().push((
                    issuance(0, record(n, name, 1, key, 100), None),
                    Arc::clone(&slot),
                ));
                slots.push(slot);
            }
            store.apply_waiting_issuances();
            let outcomes: Vec<_> = slots.iter().map(|slot| take(slot).unwrap()).collect();
            let generation = match (&outcomes[0], &outcomes[1], &outcomes[2]) {
                (Ok((first, g1)), Err(StoreError::KeyReused(by)), Ok((third, g3))) => {
                    assert_eq!(*by, serial(1));
                    assert_eq!(first.record().serial, serial(1));
                    assert_eq!(third.record().serial, serial(3));
                    assert_eq!(g1, g3, "one staged write, one generation");
                    *g1
                }
                other => panic!("unexpected outcomes {other:?}"),
            };
            assert!(store.issuances.waiting.lock().unwrap().is_empty());
            // What a writer whose issuance was applied for it does: sync that generation.
            store
                .durability
                .apply_then_sync(|| generation)
                .await
                .unwrap();
        }
        let store = SledStore::open(&path).unwrap();
        for (name, expected) in [
            ("batch1", Some(serial(1))),
            ("batch2", None),
            ("batch3", Some(serial(3))),
        ] {
            let account = store.account(&id(name)).await.unwrap().unwrap();
            assert_eq!(account.current_certificate, expected, "{name}");
        }
        assert_eq!(store.certificate(&serial(2)).await.unwrap(), None);
        assert_eq!(
            store
                .key_certified_by(&KeyFingerprint([7; 32]))
                .await
                .unwrap(),
            Some(serial(1))
        );
        let enrolls = all_history(&store, HistoryQuery::default())
            .await
            .into_iter()
            .filter(|entry| entry.event.kind == EventKind::Enroll)
            .count();
        assert_eq!(enrolls, 2);
    }

    /// Many writers at once, on distinct IDs, through the store's own path: every issuance is
    /// committed once, each answer names its own certificate, and nothing is left queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_issuances_are_each_committed_once() {
        const TASKS: u8 = 40;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
        let names: Vec<String> = (1..=TASKS).map(|n| format!("many{n}")).collect();
        add_accounts(&*store, &names).await;
        let baseline = store.durability.syncs();
        let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(TASKS)));
        let tasks: Vec<_> = (1..=TASKS)
            .map(|n| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    store.reserve_serial(serial(n), at(100)).await.unwrap();
                    barrier.wait().await;
                    let name = format!("many{n}");
                    store
                        .commit_issuance(issuance(0, record(n, &name, 1, n, 100), None))
                        .await
                        .map(|issued| (n, issued.record().serial))
                })
            })
            .collect();
        for task in tasks {
            let (n, issued) = task.await.unwrap().unwrap();
            assert_eq!(issued, serial(n));
        }
        for n in 1..=TASKS {
            let account = store
                .account(&id(&format!("many{n}")))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(account.current_certificate, Some(serial(n)));
        }
        assert!(store.issuances.waiting.lock().unwrap().is_empty());
        let syncs = store.durability.syncs() - baseline;
        assert!(
            syncs < u64::from(TASKS),
            "{syncs} syncs for {TASKS} issuances"
        );
    }
}
