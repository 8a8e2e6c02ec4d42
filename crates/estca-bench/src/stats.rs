//! Counting answers and latencies of one measurement.

use std::collections::BTreeMap;
use std::time::Duration;

/// What one client (or all of them, merged) saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of each successful request, microseconds.
    pub latencies_us: Vec<u32>,
    /// Failed requests by HTTP status (`"409"`) or `"transport"`.
    pub errors: BTreeMap<String, u64>,
    /// The client ran out of prepared IDs or keys before the end of the window.
    pub exhausted: bool,
}

impl Tally {
    /// Records a success that took `latency`.
    pub fn ok(&mut self, latency: Duration) {
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    /// Records a failure of kind `kind`.
    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    /// Adds another client's tally.
    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.exhausted |= other.exhausted;
    }

    /// Successful requests.
    pub fn ok_count(&self) -> usize {
        self.latencies_us.len()
    }

    /// p50, p90, p99 and max latency in milliseconds (sorts in place).
    pub fn percentiles_ms(&mut self) -> [f64; 4] {
        let v = &mut self.latencies_us;
        if v.is_empty() {
            return [0.0; 4];
        }
        v.sort_unstable();
        let at = |q: f64| {
            let i = ((v.len() as f64) * q).ceil() as usize;
            f64::from(v[i.clamp(1, v.len()) - 1]) / 1000.0
        };
        [
            at(0.50),
            at(0.90),
            at(0.99),
            f64::from(v[v.len() - 1]) / 1000.0,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut t = Tally::default();
        for ms in 1..=100u64 {
            t.ok(Duration::from_millis(ms));
        }
        assert_eq!(t.percentiles_ms(), [50.0, 90.0, 99.0, 100.0]);
        let mut other = Tally::default();
        other.error("409");
        other.error("409");
        t.merge(other);
        assert_eq!(t.errors["409"], 2);
        assert_eq!(Tally::default().percentiles_ms(), [0.0; 4]);
    }
}
