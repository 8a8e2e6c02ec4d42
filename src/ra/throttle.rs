//! A per-source-address limit on failed authentications: a token bucket per address.
//!
//! A password check is admitted while its source's bucket holds a token, and only a failed
//! check spends one, so any number of right passwords from one address (a company behind one
//! NAT) is never throttled. A bucket holds `max_failures_per_source` tokens and refills at
//! that many per `failure_window_secs`. An address whose bucket is empty is refused at once
//! (HTTP 429 with `Retry-After`), before any Argon2 work. Guesses admitted together may
//! overdraw the bucket (at most by the password-check queue, which bounds them); the debt is
//! paid in waiting time, down to minus one full bucket. Memory is bounded: at most [`MAX_TRACKED_SOURCES`] addresses are tracked;
//! full buckets are forgotten first, then the least recently used.
//!
//! This complements, and does not replace, the per-ID lockout: the lockout protects one ID
//! against guesses from anywhere, this protects every ID against one guessing address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses whose failures are remembered at once.
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

/// Token buckets of failed authentications, by source address.
#[derive(Debug)]
pub struct FailureThrottle {
    capacity: f64,
    per_second: f64,
    max_sources: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
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

    /// Admits a password check from `source`, or says how long to wait.
    pub fn admit(&self, source: &str) -> Result<(), Throttled> {
        self.admit_at(source, Instant::now())
    }

    /// Spends one token of `source` for a password check that failed.
    pub fn failed(&self, source: &str) {
        self.failed_at(source, Instant::now())
    }

    fn admit_at(&self, source: &str, now: Instant) -> Result<(), Throttled> {
        if self.capacity == 0.0 {
            return Ok(());
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(bucket) = buckets.get_mut(source) else {
            return Ok(());
        };
        self.refill(bucket, now);
        if bucket.tokens < 1.0 {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            return Err(Throttled {
                retry_after_secs: (wait.ceil() as u64).max(1),
            });
        }
        Ok(())
    }

    fn failed_at(&self, source: &str, now: Instant) {
        if self.capacity == 0.0 {
            return;
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !buckets.contains_key(source) && buckets.len() >= self.max_sources {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(source.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        self.refill(bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(-self.capacity);
    }

    /// Addresses tracked now (for tests and metrics).
    pub fn tracked_sources(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.updated = now;
    }

    /// Makes room: forgets buckets that have refilled (they equal a fresh one), then, if the
    /// map is still full, the least recently updated quarter.
    fn evict(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
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

    #[test]
    fn a_source_gets_its_failures_then_waits() {
        let t = FailureThrottle::new(3, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..3 {
            t.admit_at("192.0.2.1", now).unwrap();
            t.failed_at("192.0.2.1", now);
        }
        let refused = t.admit_at("192.0.2.1", now).unwrap_err();
        assert_eq!(refused.retry_after_secs, 20, "one token per 20 s");
        assert!(refused.to_string().contains("20 seconds"));
        // Another address is not affected.
        t.admit_at("192.0.2.2", now).unwrap();
        // The bucket refills with time.
        t.admit_at("192.0.2.1", now + Duration::from_secs(20))
            .unwrap();
    }

    #[test]
    fn only_failures_count_and_a_burst_is_paid_for_later() {
        let t = FailureThrottle::new(2, Duration::from_secs(60));
        // Admissions alone (right passwords) never throttle.
        for _ in 0..100 {
            t.admit("192.0.2.1").unwrap();
        }
        // A burst of 5 admitted together, all failing, overdraws the bucket of 2 (down to -2,
        // one bucket of debt at most).
        let now = Instant::now();
        for _ in 0..5 {
            t.admit_at("192.0.2.1", now).unwrap();
        }
        for _ in 0..5 {
            t.failed_at("192.0.2.1", now);
        }
        let refused = t.admit_at("192.0.2.1", now).unwrap_err();
        assert_eq!(
            refused.retry_after_secs, 90,
            "3 tokens short at one per 30 s (the debt stops at minus one bucket)"
        );
    }

    #[test]
    fn zero_disables_the_limit() {
        let t = FailureThrottle::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            t.admit("192.0.2.1").unwrap();
            t.failed("192.0.2.1");
        }
        assert_eq!(t.tracked_sources(), 0);
    }

    #[test]
    fn memory_is_bounded_by_eviction() {
        let t = FailureThrottle::with_capacity(2, Duration::from_secs(60), 100);
        let now = Instant::now();
        for i in 0..10_000u32 {
            t.failed_at(
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                now,
            );
            assert!(t.tracked_sources() <= 100);
        }
        // A source that just failed is still remembered after a wave of others.
        t.failed_at("192.0.2.9", now);
        t.failed_at("192.0.2.9", now);
        for i in 0..50u32 {
            t.failed_at(&format!("198.51.100.{i}"), now + Duration::from_millis(1));
        }
        assert!(t
            .admit_at("192.0.2.9", now + Duration::from_millis(2))
            .is_err());
    }
}
