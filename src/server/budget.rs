//! Connection budgets: how many connections one listener serves at once, and how many of
//! those one source may hold.
//!
//! Every listener has a budget of its own, so that a flood on one (say the plain-HTTP
//! revocation port) cannot starve another (HTTPS enrollment, the admin socket, metrics). Within
//! a TCP listener, one source ([`SourceKey`]: an IPv4 address, or an IPv6 network of
//! `server.ipv6_source_prefix` bits) may hold at most `max_connections_per_source` of them, so
//! that one address cannot take the whole budget and lock everyone else out.
//!
//! The accounting is one counter and one map behind one mutex, changed only by
//! [`ConnectionBudget::admit`] and by dropping the [`ConnectionPermit`] it returns: exact
//! under any concurrency, released however the connection ends (served, timed out, failed,
//! panicked), and a source's entry is removed with its last connection, so the map never
//! holds more entries than the listener has connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::source::SourceKey;

/// One listener's connection budget, shared by its accept loop and its connections.
#[derive(Debug)]
pub(crate) struct ConnectionBudget {
    max_connections: usize,
    max_per_source: usize,
    held: Mutex<Held>,
}

/// What is currently held: the total, and the count of every source with a connection.
#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_source: HashMap<SourceKey, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The listener serves `max_connections` connections already.
    ListenerFull,
    /// This source holds `max_connections_per_source` of the listener's connections already.
    SourceFull,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    budget: Arc<ConnectionBudget>,
    source: Option<SourceKey>,
}

impl ConnectionBudget {
    /// A budget of `max_connections` at once, at most `max_per_source` of them from one
    /// source (connections without a source, on the admin socket, count only in the total).
    pub(crate) fn new(max_connections: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            max_connections,
            max_per_source,
            held: Mutex::new(Held::default()),
        })
    }

    /// Admits a connection from `source` when both the source and the listener have room.
    /// The source's cap is checked first, so that a source over its cap is told so even when
    /// the listener is full too.
    pub(crate) fn admit(
        self: &Arc<Self>,
        source: Option<SourceKey>,
    ) -> Result<ConnectionPermit, Refused> {
        let mut held = self.lock();
        if let Some(key) = source {
            if held.by_source.get(&key).copied().unwrap_or(0) >= self.max_per_source {
                return Err(Refused::SourceFull);
            }
        }
        if held.total >= self.max_connections {
            return Err(Refused::ListenerFull);
        }
        held.total += 1;
        if let Some(key) = source {
            *held.by_source.entry(key).or_insert(0) += 1;
        }
        Ok(ConnectionPermit {
            budget: self.clone(),
            source,
        })
    }

    /// Connections held now, sources holding them, and the most one source holds.
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        let held = self.lock();
        let most = held.by_source.values().copied().max().unwrap_or(0);
        (held.total, held.by_source.len(), most)
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // Nothing panics while the lock is held (additions and a map lookup), and the counts
        // stay consistent even if something did, so a poisoned lock is still usable.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut held = self.budget.lock();
        held.total = held.total.saturating_sub(1);
        if let Some(key) = self.source {
            if let Some(count) = held.by_source.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    held.by_source.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str) -> Option<SourceKey> {
        Some(SourceKey::new(ip.parse().unwrap(), 64))
    }

    #[test]
    fn one_source_is_capped_and_others_still_get_in() {
        let budget = ConnectionBudget::new(6, 2);
        let a1 = budget.admit(source("192.0.2.1")).unwrap();
        let _a2 = budget.admit(source("192.0.2.1")).unwrap();
        assert_eq!(
            budget.admit(source("192.0.2.1")).unwrap_err(),
            Refused::SourceFull
        );
        // The same /64 is the same source; another /64 is not.
        let _b1 = budget.admit(source("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            budget.admit(source("2001:db8:1:2::1")).map(drop),
            Ok(()),
            "a second connection of the /64 is within the cap"
        );
        let _b2 = budget.admit(source("2001:db8:1:2::2")).unwrap();
        assert_eq!(
            budget.admit(source("2001:db8:1:2::ffff")).unwrap_err(),
            Refused::SourceFull
        );
        let _c = budget.admit(source("192.0.2.3")).unwrap();
        let _admin = budget.admit(None).unwrap();
        assert_eq!(budget.held(), (6, 3, 2));
        // Full: a new source is refused by the listener, a capped one by its cap.
        assert_eq!(
            budget.admit(source("192.0.2.4")).unwrap_err(),
            Refused::ListenerFull
        );
        assert_eq!(
            budget.admit(source("192.0.2.1")).unwrap_err(),
            Refused::SourceFull
        );
        drop(a1);
        budget.admit(source("192.0.2.4")).unwrap();
    }

    #[test]
    fn accounting_is_exact_under_concurrency_and_forgets_idle_sources() {
        let budget = ConnectionBudget::new(64, 3);
        let admitted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..8u8 {
                let budget = &budget;
                let admitted = &admitted;
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..2000u32 {
                        let ip = format!("192.0.2.{}", (i + u32::from(t)) % 16);
                        if let Ok(p) = budget.admit(source(&ip)) {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            mine.push(p);
                        }
                        if i % 3 == 0 {
                            mine.pop();
                        }
                        let (total, sources, most) = budget.held();
                        assert!(
                            total <= 64 && sources <= 16 && most <= 3,
                            "{total} held, {sources} sources, {most} from one"
                        );
                    }
                });
            }
        });
        assert!(admitted.into_inner() > 1000);
        assert_eq!(budget.held(), (0, 0, 0), "every permit was given back");
    }
}
