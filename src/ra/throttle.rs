//! A per-source limit on failed authentications: a token bucket per source.
//!
//! A source is an IPv4 address or an IPv6 network ([`SourceKey`], aggregated by
//! `server.ipv6_source_prefix`). A bucket holds `max_failures_per_source` tokens and refills
//! at that many per `failure_window_secs`. Admitting a password check *takes* a token at once
//! ([`FailureThrottle::admit`]), so a burst of guesses sent together from one source is bounded
//! by its tokens, not by the password-check queue; a check that ends well (right password, or
//! never checked because estca was busy) gives its token back ([`AdmittedCheck::refund`]).
//! Only failures therefore cost anything: any number of right passwords from one address (a
//! company behind one NAT) spends nothing, and a check that finds every token held by checks
//! still running waits (at most [`MAX_WAIT`]) for them to end, and goes on when one gives its
//! token back. A source whose tokens are spent by failures is refused at once (HTTP 429 with
//! `Retry-After`), before any Argon2 work: everyone behind it, right passwords included, since
//! nothing tells them apart before a check. History records the first such refusal of a
//! source and then at most one per [`REFUSAL_RECORD_INTERVAL`]
//! ([`FailureThrottle::records_refusal`]); the others are counted, not written, so that a
//! throttled source sending at line rate cannot make each request a durable write.
//!
//! Memory is bounded: at most [`MAX_TRACKED_SOURCES`] sources are tracked; full buckets are
//! forgotten first, then the least recently used.
//!
//! This daemon's memory is the first of two places the limit is kept: the second,
//! `source_budget`, keeps it in the store so that it holds across
//! daemons. Both complement, and do not replace, the per-ID lockout (counted in the store):
//! the lockout protects one ID against guesses from anywhere, these protect every ID against
//! one guessing source.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::source::SourceKey;

/// Most sources whose failures are remembered at once.
pub const MAX_TRACKED_SOURCES: usize = 65_536;

/// Longest a check waits for its source's running checks to end before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// How often a source's throttled refusals go to history: the first, then at most one per
/// this interval (per daemon).
pub const REFUSAL_RECORD_INTERVAL: Duration = Duration::from_secs(60);

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
    /// Admitted checks still running, each holding one token.
    running: u32,
    /// When a refusal of this source last went to history.
    refusal_recorded: Option<Instant>,
}

/// What taking a token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    Taken,
    /// No token now, but running checks hold some: one may come back.
    Wait,
    Refused(Throttled),
}

/// Token buckets of failed authentications, by source.
#[derive(Debug)]
pub struct FailureThrottle {
    capacity: f64,
    per_second: f64,
    max_sources: usize,
    buckets: Mutex<HashMap<SourceKey, Bucket>>,
    /// Woken whenever a running check ends.
    ended: Notify,
}

/// A password check admitted by [`FailureThrottle::admit`], holding one token of its source.
/// Dropped, it keeps the token spent (the check failed, or was abandoned half-way);
/// [`AdmittedCheck::refund`] gives it back.
#[derive(Debug)]
#[must_use = "dropping the admission spends the token; refund it when the check succeeds"]
pub struct AdmittedCheck<'a> {
    throttle: &'a FailureThrottle,
    source: Option<SourceKey>,
    refund: bool,
}

impl AdmittedCheck<'_> {
    /// Gives the token back: the check succeeded, or never ran.
    pub fn refund(mut self) {
        self.refund = true;
    }
}

impl Drop for AdmittedCheck<'_> {
    fn drop(&mut self) {
        if let Some(source) = self.source {
            self.throttle.end_at(source, self.refund, Instant::now());
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
            ended: Notify::new(),
        }
    }

    /// Admits a password check from `source`, taking one of its tokens, or says how long to
    /// wait. When every token is held by checks still running, waits (at most [`MAX_WAIT`])
    /// for one of them to give its token back. `None` (the operator's admin socket) is never
    /// limited.
    pub async fn admit(&self, source: Option<SourceKey>) -> Result<AdmittedCheck<'_>, Throttled> {
        let source = match source {
            Some(source) if self.capacity > 0.0 => source,
            _ => {
                return Ok(AdmittedCheck {
                    throttle: self,
                    source: None,
                    refund: false,
                })
            }
        };
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            // Registered before looking, so that a check ending in between still wakes us.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            match self.take_at(source, Instant::now()) {
                Take::Taken => {
                    return Ok(AdmittedCheck {
                        throttle: self,
                        source: Some(source),
                        refund: false,
                    })
                }
                Take::Refused(throttled) => return Err(throttled),
                Take::Wait => {
                    if tokio::time::timeout_at(deadline, ended).await.is_err() {
                        return Err(self.shortfall(source, Instant::now()));
                    }
                }
            }
        }
    }

    fn take_at(&self, source: SourceKey, now: Instant) -> Take {
        let mut buckets = self.lock();
        if !buckets.contains_key(&source) && buckets.len() >= self.max_sources {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(source).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
            running: 0,
            refusal_recorded: None,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.running += 1;
            Take::Taken
        } else if bucket.running > 0 {
            Take::Wait
        } else {
            Take::Refused(self.throttled(bucket))
        }
    }

    /// How long `source` must wait for a token, as a refusal.
    fn shortfall(&self, source: SourceKey, now: Instant) -> Throttled {
        let mut buckets = self.lock();
        match buckets.get_mut(&source) {
            Some(bucket) => {
                self.refill(bucket, now);
                self.throttled(bucket)
            }
            None => Throttled {
                retry_after_secs: 1,
            },
        }
    }

    fn throttled(&self, bucket: &Bucket) -> Throttled {
        let wait = (1.0 - bucket.tokens).max(0.0) / self.per_second;
        Throttled {
            retry_after_secs: (wait.ceil() as u64).max(1),
        }
    }

    /// A running check of `source` ended; its token comes back when `refund`.
    fn end_at(&self, source: SourceKey, refund: bool, now: Instant) {
        {
            let mut buckets = self.lock();
            if let Some(bucket) = buckets.get_mut(&source) {
                self.refill(bucket, now);
                bucket.running = bucket.running.saturating_sub(1);
                if refund {
                    bucket.tokens = (bucket.tokens + 1.0).min(self.capacity);
                }
            }
        }
        self.ended.notify_waiters();
    }

    /// Whether a refusal of `source` (just throttled) goes to history: the first of it, then
    /// at most one per [`REFUSAL_RECORD_INTERVAL`]. `None` (never throttled) always does, as
    /// does a source no longer tracked.
    pub fn records_refusal(&self, source: Option<SourceKey>) -> bool {
        source.is_none_or(|source| self.records_refusal_at(source, Instant::now()))
    }

    fn records_refusal_at(&self, source: SourceKey, now: Instant) -> bool {
        let mut buckets = self.lock();
        let Some(bucket) = buckets.get_mut(&source) else {
            return true;
        };
        let due = bucket
            .refusal_recorded
            .is_none_or(|at| now.saturating_duration_since(at) >= REFUSAL_RECORD_INTERVAL);
        if due {
            bucket.refusal_recorded = Some(now);
        }
        due
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

    /// Makes room: forgets buckets that have refilled and have no check running (they equal
    /// a fresh one), then, if the map is still full, the least recently updated quarter.
    fn evict(&self, buckets: &mut HashMap<SourceKey, Bucket>, now: Instant) {
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.running > 0 || b.tokens + elapsed * self.per_second < self.capacity
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

    /// Takes a token as a check that fails at once.
    fn fail_at(t: &FailureThrottle, source: &str, now: Instant) -> Result<(), Throttled> {
        match t.take_at(src(source), now) {
            Take::Taken => {
                t.end_at(src(source), false, now);
                Ok(())
            }
            Take::Refused(throttled) => Err(throttled),
            Take::Wait => panic!("no check is running"),
        }
    }

    #[test]
    fn a_source_gets_its_failures_then_waits() {
        let t = FailureThrottle::new(3, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..3 {
            fail_at(&t, "192.0.2.1", now).unwrap();
        }
        let refused = fail_at(&t, "192.0.2.1", now).unwrap_err();
        assert_eq!(refused.retry_after_secs, 20, "one token per 20 s");
        assert!(refused.to_string().contains("20 seconds"));
        // Another address is not affected.
        fail_at(&t, "192.0.2.2", now).unwrap();
        // The bucket refills with time.
        fail_at(&t, "192.0.2.1", now + Duration::from_secs(20)).unwrap();
    }

    /// A throttled source's refusals go to history once, then once a minute.
    #[test]
    fn a_throttled_sources_refusals_are_recorded_once_a_minute() {
        let t = FailureThrottle::new(1, Duration::from_secs(3600));
        let now = Instant::now();
        fail_at(&t, "192.0.2.1", now).unwrap();
        fail_at(&t, "192.0.2.1", now).unwrap_err();
        let source = src("192.0.2.1");
        assert!(t.records_refusal_at(source, now));
        for seconds in [0, 1, 59] {
            assert!(!t.records_refusal_at(source, now + Duration::from_secs(seconds)));
        }
        assert!(t.records_refusal_at(source, now + Duration::from_secs(60)));
        assert!(!t.records_refusal_at(source, now + Duration::from_secs(61)));
        // Each source on its own; the admin socket always.
        fail_at(&t, "192.0.2.2", now).unwrap();
        assert!(t.records_refusal_at(src("192.0.2.2"), now));
        assert!(t.records_refusal(None));
    }

    #[tokio::test]
    async fn a_burst_is_bounded_by_the_tokens_and_successes_cost_nothing() {
        let t = FailureThrottle::new(5, Duration::from_secs(3600));
        // Right passwords (refunded) never throttle.
        for _ in 0..100 {
            t.admit(Some(src("192.0.2.1"))).await.unwrap().refund();
        }
        // Five checks running hold every token: a sixth waits, and goes on when one of them
        // succeeds.
        let mut running = Vec::new();
        for _ in 0..5 {
            running.push(t.admit(Some(src("192.0.2.1"))).await.unwrap());
        }
        assert_eq!(t.take_at(src("192.0.2.1"), Instant::now()), Take::Wait);
        let waiting = t.admit(Some(src("192.0.2.1")));
        tokio::pin!(waiting);
        assert!(
            futures_poll_once(waiting.as_mut()).await.is_none(),
            "the sixth check waits"
        );
        running.pop().unwrap().refund();
        let sixth = waiting.await.unwrap();
        // All fail: the source is refused at once, waiters included.
        drop(sixth);
        drop(running);
        assert!(t.admit(Some(src("192.0.2.1"))).await.is_err());
    }

    /// Polls a future once: `Some` if it completed.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(20), f)
            .await
            .ok()
    }

    #[test]
    fn ipv6_hosts_of_one_network_share_a_bucket() {
        let t = FailureThrottle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        fail_at(&t, "2001:db8:1:2::1", now).unwrap();
        fail_at(&t, "2001:db8:1:2::2", now).unwrap();
        assert!(fail_at(&t, "2001:db8:1:2:abcd::3", now).is_err());
        fail_at(&t, "2001:db8:1:3::1", now).unwrap();
    }

    #[tokio::test]
    async fn zero_disables_the_limit_and_the_admin_socket_is_never_limited() {
        let t = FailureThrottle::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            drop(t.admit(Some(src("192.0.2.1"))).await.unwrap());
        }
        assert_eq!(t.tracked_sources(), 0);
        let t = FailureThrottle::new(1, Duration::from_secs(60));
        for _ in 0..10 {
            drop(t.admit(None).await.unwrap());
        }
        assert_eq!(t.tracked_sources(), 0);
    }

    #[test]
    fn memory_is_bounded_by_eviction() {
        let t = FailureThrottle::with_capacity(2, Duration::from_secs(60), 100);
        let now = Instant::now();
        for i in 0..10_000u32 {
            fail_at(
                &t,
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                now,
            )
            .unwrap();
            assert!(t.tracked_sources() <= 100);
        }
        // A source that just failed is still remembered after a wave of others.
        fail_at(&t, "192.0.2.9", now).unwrap();
        fail_at(&t, "192.0.2.9", now).unwrap();
        for i in 0..50u32 {
            fail_at(
                &t,
                &format!("198.51.100.{i}"),
                now + Duration::from_millis(1),
            )
            .unwrap();
        }
        assert!(fail_at(&t, "192.0.2.9", now + Duration::from_millis(2)).is_err());
    }
}
