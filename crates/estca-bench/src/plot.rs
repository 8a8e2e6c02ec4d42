//! `estca-bench plot`: throughput and p99 latency against connections, as an SVG drawn from
//! the JSON lines of `estca-bench run` (log2 connection axis, linear value axes).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Arguments of `estca-bench plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// JSON lines written by `estca-bench run --out FILE`.
    #[arg(long)]
    input: PathBuf,
    /// The SVG to write.
    #[arg(long)]
    output: PathBuf,
    /// The scenario to draw.
    #[arg(long, default_value = "simplereenroll")]
    scenario: String,
    /// A subtitle (e.g. the machine and its load average).
    #[arg(long, default_value = "")]
    note: String,
}

/// One measured point.
#[derive(Debug, Clone, Copy)]
struct Point {
    connections: f64,
    throughput: f64,
    p99_ms: f64,
}

/// Runs `estca-bench plot`.
pub fn run(args: PlotArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let mut points = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).context("a line is not JSON")?;
        if v["scenario"] != args.scenario.as_str() {
            continue;
        }
        if let (Some(c), Some(t), Some(p)) = (
            v["connections"].as_f64(),
            v["throughput_per_s"].as_f64(),
            v["latency_ms"]["p99"].as_f64(),
        ) {
            points.push(Point {
                connections: c,
                throughput: t,
                p99_ms: p,
            });
        }
    }
    if points.is_empty() {
        bail!("no {} lines in {}", args.scenario, args.input.display());
    }
    points.sort_by(|a, b| a.connections.total_cmp(&b.connections));
    let title = format!("estca {}: throughput and p99 latency", args.scenario);
    let svg = svg(&title, &args.note, &points);
    std::fs::write(&args.output, svg)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("estca-bench: wrote {}", args.output.display());
    Ok(())
}

const W: f64 = 960.0;
const H: f64 = 420.0;
const PANEL_W: f64 = 380.0;
const PANEL_H: f64 = 280.0;
const TOP: f64 = 80.0;

/// A "nice" axis maximum at or above `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let e = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * e >= v {
            return m * e;
        }
    }
    10.0 * e
}

fn svg(title: &str, note: &str, points: &[Point]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="48" text-anchor="middle" fill="#555">{}</text>"##,
        W / 2.0,
        escape(note)
    );
    panel(
        &mut s,
        70.0,
        "throughput (requests/s)",
        "#1f77b4",
        points,
        false,
        |p| p.throughput,
    );
    panel(
        &mut s,
        70.0 + PANEL_W + 90.0,
        "p99 latency (ms, log scale)",
        "#d62728",
        points,
        true,
        |p| p.p99_ms,
    );
    s.push_str("</svg>\n");
    s
}

fn panel(
    s: &mut String,
    left: f64,
    label: &str,
    color: &str,
    points: &[Point],
    log: bool,
    value: impl Fn(&Point) -> f64,
) {
    let max_c = points
        .iter()
        .map(|p| p.connections)
        .fold(1.0, f64::max)
        .max(2.0);
    let log_max = max_c.log2().ceil().max(1.0);
    let top = points.iter().map(&value).fold(0.0, f64::max);
    // Linear from 0 to a round maximum, or log10 between powers of ten around the values.
    let (y_min, y_max) = if log {
        let low = points
            .iter()
            .map(&value)
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let low = if low.is_finite() { low } else { 1.0 };
        let lo = low.log10().floor();
        let hi = top.max(low).log10().ceil().max(lo + 1.0);
        (lo, hi)
    } else {
        (0.0, nice_max(top))
    };
    let x = |c: f64| left + c.max(1.0).log2() / log_max * PANEL_W;
    let y = |v: f64| {
        let t = if log {
            (v.max(f64::MIN_POSITIVE).log10() - y_min) / (y_max - y_min)
        } else {
            v / y_max
        };
        TOP + PANEL_H - t.clamp(0.0, 1.0) * PANEL_H
    };
    let bottom = TOP + PANEL_H;
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{TOP}\" width=\"{PANEL_W}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#999\"/>"
    );
    // Value grid and labels.
    let ticks: Vec<f64> = if log {
        let (lo, hi) = (y_min as i32, y_max as i32);
        (lo..=hi).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5).map(|i| y_max * f64::from(i) / 5.0).collect()
    };
    for v in ticks {
        let yy = y(v);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + PANEL_W,
            left - 6.0,
            yy + 4.0,
            fmt_value(v)
        );
    }
    // Connection ticks: powers of two.
    let mut c = 1.0;
    while c <= 2f64.powf(log_max) {
        let xx = x(c);
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.1}\" y1=\"{bottom}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#999\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{c}</text>",
            bottom + 5.0,
            bottom + 18.0
        );
        c *= 2.0;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">concurrent connections</text>",
        left + PANEL_W / 2.0,
        bottom + 38.0
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\" fill=\"{color}\">{}</text>",
        left + PANEL_W / 2.0,
        TOP - 10.0,
        escape(label)
    );
    let path: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.connections), y(value(p))))
        .collect();
    let _ = writeln!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
        path.join(" ")
    );
    for p in points {
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"><title>{} connections: {}</title></circle>",
            x(p.connections),
            y(value(p)),
            p.connections,
            fmt_value(value(p))
        );
    }
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svg_is_drawn() {
        let points = [
            Point {
                connections: 1.0,
                throughput: 100.0,
                p99_ms: 2.0,
            },
            Point {
                connections: 256.0,
                throughput: 1500.0,
                p99_ms: 300.0,
            },
        ];
        let svg = svg("t <x>", "n", &points);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("t &lt;x&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(nice_max(1234.0), 2000.0);
        assert_eq!(nice_max(0.0), 1.0);
    }
}
