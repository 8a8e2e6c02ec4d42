//! A per-source-address limit on failed authentications: a token bucket per address.
//!
//! Each password check costs its source one token before it starts, so a burst of guesses
//! cannot slip past the limit while earlier guesses are still hashing; a check that succeeds
//! (or that never ran, e.g. refused as busy) gets its token back. A bucket holds
//! `max_failures_per_source` tokens and refills at that many per `failure_window_secs`. An
//! address whose bucket is empty is refused at once (HTTP 429 with `Retry-After`), before any
//! Argon2 work. Memory is bounded: at most [`MAX_TRACKED_SOURCES`] addresses are tracked;
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

/// A token taken for one password check: give it back with [`FailureThrottle::refund`] when
/// the check did not fail.
#[derive(Debug)]
#[must_use = "a token is refunded or spent explicitly"]
pub struct Token {
    source: Option<String>,
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

    /// Takes a token for one password check from `source`, or says how long to wait.
    pub fn take(&self, source: &str) -> Result<Token, Throttled> {
        self.take_at(source, Instant::now())
    }

    fn take_at(&self, source: &str, now: Instant) -> Result<Token, Throttled> {
        if self.capacity == 0.0 {
            return Ok(Token { source: None });
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
        if bucket.tokens < 1.0 {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            return Err(Throttled {
                retry_after_secs: (wait.ceil() as u64).max(1),
            });
        }
        bucket.tokens -= 1.0;
        Ok(Token {
            source: Some(source.to_owned()),
        })
    }

    /// Gives a token back: the check it paid for succeeded or never ran.
    pub fn refund(&self, token: Token) {
        let Some(source) = token.source else {
            return;
        };
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(bucket) = buckets.get_mut(&source) {
            bucket.tokens = (bucket.tokens + 1.0).min(self.capacity);
        }
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
            let _spent = t.take_at("192.0.2.1", now).unwrap();
        }
        let refused = t.take_at("192.0.2.1", now).unwrap_err();
        assert_eq!(refused.retry_after_secs, 20, "one token per 20 s");
        assert!(refused.to_string().contains("20 seconds"));
        // Another address is not affected.
        let _other = t.take_at("192.0.2.2", now).unwrap();
        // The bucket refills with time.
        let _later = t
            .take_at("192.0.2.1", now + Duration::from_secs(20))
            .unwrap();
    }

    #[test]
    fn successes_give_their_token_back() {
        let t = FailureThrottle::new(1, Duration::from_secs(60));
        for _ in 0..10 {
            let token = t.take("192.0.2.1").unwrap();
            t.refund(token);
        }
        let _spent = t.take("192.0.2.1").unwrap();
        assert!(t.take("192.0.2.1").is_err());
    }

    #[test]
    fn zero_disables_the_limit() {
        let t = FailureThrottle::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            let _ = t.take("192.0.2.1").unwrap();
        }
        assert_eq!(t.tracked_sources(), 0);
    }

    #[test]
    fn memory_is_bounded_by_eviction() {
        let t = FailureThrottle::with_capacity(2, Duration::from_secs(60), 100);
        let now = Instant::now();
        for i in 0..10_000u32 {
            let _ = t.take_at(
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                now,
            );
            assert!(t.tracked_sources() <= 100);
        }
        // A source that just failed is still remembered after a wave of others.
        let _ = t.take_at("192.0.2.9", now);
        let _ = t.take_at("192.0.2.9", now);
        for i in 0..50u32 {
            let _ = t.take_at(&format!("198.51.100.{i}"), now + Duration::from_millis(1));
        }
        assert!(t
            .take_at("192.0.2.9", now + Duration::from_millis(2))
            .is_err());
    }
}
