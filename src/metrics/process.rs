//! The standard process metrics of Prometheus (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`, `process_threads`), read from
//! `/proc/self` at each scrape, so dashboards and alerts written for any Prometheus client
//! work on estca unchanged.

use procfs::process::{LimitValue, Process};
use procfs::ProcResult;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Reads this process's figures from `/proc/self` when `/metrics` is scraped. Registered on
/// the unprefixed root registry: the names are Prometheus's, not estca's.
#[derive(Debug, Default)]
pub(super) struct ProcessCollector;

/// One reading of the process's figures.
#[derive(Debug)]
struct Sample {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: usize,
    /// The soft limit on open files; `None` when unlimited.
    max_fds: Option<u64>,
    start_time_seconds: f64,
    threads: i64,
}

impl Sample {
    fn read() -> ProcResult<Self> {
        let process = Process::myself()?;
        let stat = process.stat()?;
        let ticks = procfs::ticks_per_second() as f64;
        let max_fds = match process.limits()?.max_open_files.soft_limit {
            LimitValue::Value(n) => Some(n),
            LimitValue::Unlimited => None,
        };
        Ok(Self {
            cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
            resident_bytes: stat.rss.saturating_mul(procfs::page_size()),
            virtual_bytes: stat.vsize,
            open_fds: process.fd_count()?,
            max_fds,
            start_time_seconds: procfs::boot_time_secs()? as f64 + stat.starttime as f64 / ticks,
            threads: stat.num_threads,
        })
    }
}

/// A byte count or a count as a gauge value (saturating: no process comes near `i64::MAX`).
fn gauge(value: impl TryInto<i64>) -> ConstGauge<i64> {
    ConstGauge::new(value.try_into().unwrap_or(i64::MAX))
}

/// Writes one metric's descriptor then its value.
fn write(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: &impl EncodeMetric,
) -> std::fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let sample = match Sample::read() {
            Ok(sample) => sample,
            Err(e) => {
                // Metrics must never keep a scrape (or the CA) from answering: the other
                // series are still served.
                tracing::warn!(error = %e, "cannot read the process metrics from /proc/self");
                return Ok(());
            }
        };
        let e = &mut encoder;
        write(
            e,
            "process_cpu",
            "Total user and system CPU time spent in seconds",
            Some(&Unit::Seconds),
            &ConstCounter::new(sample.cpu_seconds),
        )?;
        write(
            e,
            "process_resident_memory",
            "Resident memory size in bytes",
            Some(&Unit::Bytes),
            &gauge(sample.resident_bytes),
        )?;
        write(
            e,
            "process_virtual_memory",
            "Virtual memory size in bytes",
            Some(&Unit::Bytes),
            &gauge(sample.virtual_bytes),
        )?;
        write(
            e,
            "process_open_fds",
            "Number of open file descriptors",
            None,
            &gauge(sample.open_fds),
        )?;
        if let Some(max_fds) = sample.max_fds {
            write(
                e,
                "process_max_fds",
                "Maximum number of open file descriptors",
                None,
                &gauge(max_fds),
            )?;
        }
        write(
            e,
            "process_start_time",
            "Start time of the process since the Unix epoch in seconds",
            Some(&Unit::Seconds),
            &ConstGauge::new(sample.start_time_seconds),
        )?;
        write(
            e,
            "process_threads",
            "Number of OS threads in the process",
            None,
            &gauge(sample.threads),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the unlabelled series `name` in an exposition.
    fn value(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    fn render() -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    /// The series carry Prometheus's standard names and types, with plausible values for
    /// this very process.
    #[test]
    fn this_processs_figures_are_exposed_under_the_standard_names() {
        let text = render();
        for line in [
            "# TYPE process_cpu_seconds counter",
            "# UNIT process_cpu_seconds seconds",
            "# TYPE process_resident_memory_bytes gauge",
            "# TYPE process_open_fds gauge",
            "# TYPE process_start_time_seconds gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        let rss = value(&text, "process_resident_memory_bytes");
        let virtual_memory = value(&text, "process_virtual_memory_bytes");
        assert!(rss > 1e6 && virtual_memory >= rss, "{text}");
        let open = value(&text, "process_open_fds");
        assert!(
            open >= 3.0 && value(&text, "process_max_fds") >= open,
            "{text}"
        );
        assert!(value(&text, "process_threads") >= 1.0, "{text}");
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        let start = value(&text, "process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }

    /// CPU time only grows, and grows with work done.
    #[test]
    fn cpu_seconds_increase_with_work() {
        let before = value(&render(), "process_cpu_seconds_total");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = value(&render(), "process_cpu_seconds_total");
        assert!(after > before, "{before} then {after}");
    }
}
