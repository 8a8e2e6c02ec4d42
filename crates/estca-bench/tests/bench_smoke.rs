//! Smoke run of `estca-bench` (a few seconds, debug build): every scenario against a daemon it
//! starts on ephemeral ports, a small `populate`, a run on the populated directory, and a
//! plot. It proves the tool works; it measures nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// `estca-bench` without the `ESTCA_*` variables of the environment the tests run in: the
/// bench hands its environment to the daemon it starts (so that `ESTCA_LOG__LEVEL=warn
/// estca-bench run` measures a quiet daemon), and a developer's shell may set some.
fn bench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_estca-bench"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("ESTCA_")) {
            command.env_remove(name);
        }
    }
    command
}

/// The `estca` binary the bench starts. It belongs to another package of the workspace, so
/// Cargo does not build it for this crate's tests (`CARGO_BIN_EXE_estca` exists only in
/// estca's own): it is built here with the cargo running the tests, in the profile of the
/// bench binary (next to it, where `estca-bench` looks by default), once per test process.
/// When `cargo test` at the root has already built it, this is a freshness check: the
/// variables Cargo sets for this test process only (this package's name, version and
/// directories) are taken out of the build's environment, since build scripts such as ring's
/// watch them and would otherwise rebuild half the dependencies for this build and again for
/// the next one run from a shell.
fn estca() -> &'static Path {
    static ESTCA: OnceLock<PathBuf> = OnceLock::new();
    ESTCA.get_or_init(|| {
        let bench_dir = Path::new(env!("CARGO_BIN_EXE_estca-bench"))
            .parent()
            .unwrap();
        let profile = match bench_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let mut cargo = Command::new(env!("CARGO"));
        for (name, _) in std::env::vars_os() {
            let set_for_this_test = name.to_str().is_some_and(|n| {
                n.starts_with("CARGO_PKG_")
                    || [
                        "CARGO_MANIFEST_DIR",
                        "CARGO_MANIFEST_PATH",
                        "CARGO_MANIFEST_LINKS",
                        "CARGO_CRATE_NAME",
                        "CARGO_BIN_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "OUT_DIR",
                    ]
                    .contains(&n)
            });
            if set_for_this_test {
                cargo.env_remove(name);
            }
        }
        let out = cargo
            .args([
                "build",
                "--locked",
                "--message-format=json-render-diagnostics",
            ])
            .args(["--package", "estca", "--bin", "estca", "--profile", profile])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "cargo build --bin estca failed");
        lines(&out.stdout)
            .iter()
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "estca")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo build named no estca executable"))
    })
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn every_scenario_runs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("run.jsonl");
    let out = bench()
        .args([
            "run",
            "--scenario",
            "cacerts,simpleenroll,simplereenroll,ocsp,delegated",
            "--connections",
            "1,2",
            "--duration",
            "0.5",
            "--ids",
            "4",
            "--keys",
            "200",
            "--floor",
        ])
        .arg(dir.path().join("no-floor.json"))
        .arg("--estca")
        .arg(estca())
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "estca-bench run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out.stdout);
    assert_eq!(
        lines.len(),
        10,
        "one line per scenario and connection count"
    );
    for line in &lines {
        assert!(
            line["ok"].as_u64().unwrap() > 0,
            "no successful request: {line}"
        );
        assert!(line["errors"].as_object().unwrap().is_empty(), "{line}");
        assert!(line["server_cpu_s"].as_f64().is_some(), "{line}");
        assert!(line["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["daemon"]["startup_ms"].as_f64().is_some(), "{line}");
    }
    assert_eq!(lines[4]["scenario"], "simplereenroll");
    assert_eq!(lines[4]["keepalive"], false);
    // The application's keep-alive path, each request a fresh ID its CSR names.
    assert_eq!(lines[8]["scenario"], "delegated");
    assert_eq!(lines[8]["keepalive"], true);

    let svg = dir.path().join("plot.svg");
    let plot = bench()
        .args(["plot", "--input"])
        .arg(&out_file)
        .arg("--output")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        plot.status.success(),
        "{}",
        String::from_utf8_lossy(&plot.stderr)
    );
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

#[test]
fn populate_then_run_on_the_populated_directory() {
    let dir = tempfile::tempdir().unwrap();
    let bench_dir = dir.path().join("b");
    for _ in 0..2 {
        let out = bench()
            .args(["populate", "25", "--dir"])
            .arg(&bench_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "populate failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = bench()
        .args(["populate", "5", "--dir"])
        .arg(&bench_dir)
        .output()
        .unwrap();
    let line = &lines(&out.stdout)[0];
    assert_eq!(line["ids_before"], 50);
    assert_eq!(line["ids_total"], 55);
    assert!(line["data_dir_bytes"].as_u64().unwrap() > 0);

    // A quiet, JSON log: the bench learns the daemon's ports from its readiness
    // notification, not from its log.
    let out = bench()
        .env("ESTCA_LOG__LEVEL", "warn")
        .env("ESTCA_LOG__FORMAT", "json")
        .args([
            "run",
            "--scenario",
            "simplereenroll",
            "--connections",
            "2",
            "--duration",
            "0.5",
            "--keys",
            "100",
            "--dir",
        ])
        .arg(&bench_dir)
        .arg("--estca")
        .arg(estca())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run on a populated directory failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = &lines(&out.stdout)[0];
    assert!(line["ok"].as_u64().unwrap() > 0, "{line}");
}

#[test]
fn fjall_directory_populated_then_killed_under_load_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let bench_dir = dir.path().join("f");
    let out = bench()
        .args(["populate", "20", "--backend", "fjall", "--dir"])
        .arg(&bench_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "populate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = &lines(&out.stdout)[0];
    assert_eq!(line["backend"], "fjall");
    assert!(line["cpu_ms_per_id"].as_f64().unwrap() > 0.0, "{line}");
    assert!(bench_dir.join("data/fjall").is_dir());
    assert!(!bench_dir.join("data/db").exists());
    let allocated = line["data_dir_bytes"].as_u64().unwrap();
    assert!(allocated > 0, "{line}");
    assert_eq!(
        line["data_dir_bytes_per_id"].as_f64().unwrap(),
        (allocated as f64 / 20.0).round()
    );

    // The directory is fjall's: asking for sled there is refused.
    let refused = bench()
        .args(["populate", "1", "--backend", "sled", "--dir"])
        .arg(&bench_dir)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("store.backend"));

    // A quiet, JSON log: the bench learns the daemon's ports from its readiness
    // notification, not from its log.
    let out = bench()
        .env("ESTCA_LOG__LEVEL", "warn")
        .env("ESTCA_LOG__FORMAT", "json")
        .args([
            "run",
            "--scenario",
            "simplereenroll",
            "--connections",
            "2",
            "--duration",
            "1",
            "--keys",
            "400",
            "--kill",
            "--dir",
        ])
        .arg(&bench_dir)
        .arg("--estca")
        .arg(estca())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run --kill failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out.stdout);
    assert_eq!(lines.len(), 2, "the scenario, then the kill step");
    let killed = &lines[1];
    assert_eq!(killed["step"], "sigkill");
    let at = killed["sigkill_after_s"].as_f64().unwrap();
    assert!((0.4..1.0).contains(&at), "{killed}");
    assert!(
        killed["ok"].as_u64().unwrap() > 0,
        "renewals before the kill: {killed}"
    );
    assert!(
        killed["errors"]["transport"].as_u64().unwrap() > 0,
        "requests after the kill fail: {killed}"
    );
    assert!(killed["daemon"]["startup_ms"].as_f64().unwrap() > 0.0);
    assert!(
        bench_dir.join("daemon.log.1").is_file(),
        "the killed daemon's log is kept"
    );
}
