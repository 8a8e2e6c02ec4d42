//! A per-source limit on failed authentications: a token bucket per source.
//!
//! A source is an IPv4 address or an IPv6 network ([`SourceKey`], aggregated by
//! `server.ipv6_source_prefix`). A bucket holds `max_failures_per_source` tokens and refills
//! at that many per `failure_window_secs`. Admitting a password check *takes* a token at once
//! ([`FailureThrottle::admit`]), so a burst of guesses sent together from one source is bounded
//! by its tokens, not by the password-check queue; a check that ends well (right password, or
//! never checked because estca was busy) gives its token back ([`AdmittedCheck::refund`]).
//! Only failures therefore cost anything, and any number of right passwords from one address
//! (a company behind one NAT) is never throttled. A source without a token is refused at once
//! (HTTP 429 with `Retry-After`), before any Argon2 work.
//!
//! Memory is bounded: at most [`MAX_TRACKED_SOURCES`] sources are tracked; full buckets are
//! forgotten first, then the least recently used.
//!
//! This complements, and does not replace, the per-ID lockout (counted in the store, so it
//! holds across daemons): the lockout protects one ID against guesses from anywhere, this
//! protects every ID against one guessing source.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::source::SourceKey;

/// Most sources whose failures are remembered at once.
pub const MAX_TRACKED_SOURCES: usize = 65_536;

/// The source has used up its failed authentications for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many failed logins from your address; wait {retry_after_secs} seconds before trying again"
)]
pub struct Throttled {
    /// Seconds until the next attempt will be admitted.
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets of failed authentications, by source.
#[derive(Debug)]
pub struct FailureThrottle {
    capacity: f64,
    per_second: f64,
    max_sources: usize,
    buckets: Mutex<HashMap<SourceKey, Bucket>>,
}

/// A password check admitted by [`FailureThrottle::admit`], holding one token of its source.
/// Dropped, it keeps the token spent (the check failed, or was abandoned half-way);
/// [`AdmittedCheck::refund`] gives it back.
#[derive(Debug)]
#[must_use = "dropping the admission spends the token; refund it when the check succeeds"]
pub struct AdmittedCheck<'a> {
    throttle: &'a FailureThrottle,
    source: Option<SourceKey>,
}

impl AdmittedCheck<'_> {
    /// Gives the token back: the check succeeded, or never ran.
    pub fn refund(self) {
        if let Some(source) = self.source {
            self.throttle.refund_at(source, Instant::now());
        }
    }
}

impl FailureThrottle {
    /// `max_failures` per `window`; `max_failures == 0` disables the limit.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_capacity(max_failures, window, MAX_TRACKED_SOURCES)
    }

    fn with_capacity(max_failures: u32, window: Duration, max_sources: usize) -> Self {
        let capacity = f64::from(max_failures);
        Self {
            capacity,
            per_second: capacity / window.as_secs_f64().max(1.0),
            max_sources: max_sources.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a password check from `source`, taking one of its tokens, or says how long to
    /// wait. `None` (the operator's admin socket) is never limited.
    pub fn admit(&self, source: Option<SourceKey>) -> Result<AdmittedCheck<'_>, Throttled> {
        let source = match source {
            Some(source) if self.capacity > 0.0 => source,
            _ => {
                return Ok(AdmittedCheck {
                    throttle: self,
                    source: None,
                })
            }
        };
        self.take_at(source, Instant::now())?;
        Ok(AdmittedCheck {
            throttle: self,
            source: Some(source),
        })
    }

    fn take_at(&self, source: SourceKey, now: Instant) -> Result<(), Throttled> {
        let mut buckets = self.lock();
        if !buckets.contains_key(&source) && buckets.len() >= self.max_sources {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(source).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        self.refill(bucket, now);
        if bucket.tokens < 1.0 {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            return Err(Throttled {
                retry_after_secs: (wait.ceil() as u64).max(1),
            });
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    fn refund_at(&self, source: SourceKey, now: Instant) {
        let mut buckets = self.lock();
        if let Some(bucket) = buckets.get_mut(&source) {
            self.refill(bucket, now);
            bucket.tokens = (bucket.tokens + 1.0).min(self.capacity);
        }
    }

    /// Sources tracked now (for tests and metrics).
    pub fn tracked_sources(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SourceKey, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.updated = now;
    }

    /// Makes room: forgets buckets that have refilled (they equal a fresh one), then, if the
    /// map is still full, the least recently updated quarter.
    fn evict(&self, buckets: &mut HashMap<SourceKey, Bucket>, now: Instant) {
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * self.per_second < self.capacity
        });
        if buckets.len() < self.max_sources {
            return;
        }
        let mut ages: Vec<Instant> = buckets.values().map(|b| b.updated).collect();
        let cut = ages.len() / 4;
        let (_, cutoff, _) = ages.select_nth_unstable(cut);
        let cutoff = *cutoff;
        buckets.retain(|_, b| b.updated > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(ip: &str) -> SourceKey {
        SourceKey::new(ip.parse().unwrap(), 64)
    }

    #[test]
    fn a_source_gets_its_failures_then_waits() {
        let t = FailureThrottle::new(3, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..3 {
            t.take_at(src("192.0.2.1"), now).unwrap();
        }
        let refused = t.take_at(src("192.0.2.1"), now).unwrap_err();
        assert_eq!(refused.retry_after_secs, 20, "one token per 20 s");
        assert!(refused.to_string().contains("20 seconds"));
        // Another address is not affected.
        t.take_at(src("192.0.2.2"), now).unwrap();
        // The bucket refills with time.
        t.take_at(src("192.0.2.1"), now + Duration::from_secs(20))
            .unwrap();
    }

    #[test]
    fn a_burst_is_bounded_by_the_tokens_and_successes_cost_nothing() {
        let t = FailureThrottle::new(5, Duration::from_secs(60));
        // Right passwords (refunded) never throttle.
        for _ in 0..100 {
            t.admit(Some(src("192.0.2.1"))).unwrap().refund();
        }
        // A burst admitted together, none finished yet: exactly five are admitted.
        let admitted: Vec<_> = (0..40)
            .filter_map(|_| t.admit(Some(src("192.0.2.1"))).ok())
            .collect();
        assert_eq!(admitted.len(), 5);
        // They fail (dropped): the source waits for a refill.
        drop(admitted);
        assert!(t.admit(Some(src("192.0.2.1"))).is_err());
    }

    #[test]
    fn ipv6_hosts_of_one_network_share_a_bucket() {
        let t = FailureThrottle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        t.take_at(src("2001:db8:1:2::1"), now).unwrap();
        t.take_at(src("2001:db8:1:2::2"), now).unwrap();
        assert!(t.take_at(src("2001:db8:1:2:abcd::3"), now).is_err());
        t.take_at(src("2001:db8:1:3::1"), now).unwrap();
    }

    #[test]
    fn zero_disables_the_limit_and_the_admin_socket_is_never_limited() {
        let t = FailureThrottle::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            drop(t.admit(Some(src("192.0.2.1"))).unwrap());
        }
        assert_eq!(t.tracked_sources(), 0);
        let t = FailureThrottle::new(1, Duration::from_secs(60));
        for _ in 0..10 {
            drop(t.admit(None).unwrap());
        }
        assert_eq!(t.tracked_sources(), 0);
    }

    #[test]
    fn memory_is_bounded_by_eviction() {
        let t = FailureThrottle::with_capacity(2, Duration::from_secs(60), 100);
        let now = Instant::now();
        for i in 0..10_000u32 {
            t.take_at(
                src(&format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)),
                now,
            )
            .unwrap();
            assert!(t.tracked_sources() <= 100);
        }
        // A source that just failed is still remembered after a wave of others.
        t.take_at(src("192.0.2.9"), now).unwrap();
        t.take_at(src("192.0.2.9"), now).unwrap();
        for i in 0..50u32 {
            t.take_at(
                src(&format!("198.51.100.{i}")),
                now + Duration::from_millis(1),
            )
            .unwrap();
        }
        assert!(t
            .take_at(src("192.0.2.9"), now + Duration::from_millis(2))
            .is_err());
    }
}
