//! DigiCert's pkilint, an X.509 linter independent of estca (RFC 5280 certificates and CRLs,
//! RFC 6960 OCSP responses), installed from PyPI at a pinned version into a virtual
//! environment cached under `target/`, once: later runs find it installed.
//!
//! Where Python's `venv` or PyPI cannot be reached, [`pkilint`] returns `None` after a notice
//! on standard error, unless `REQUIRE_ALL_TESTS` is set (as `.ci/run` does): then it panics,
//! so CI never skips the lint.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The pinned release (its findings' codes are what the tests name).
const VERSION: &str = "0.13.3";

/// The directory holding pkilint's programs (`lint_pkix_cert`, `lint_crl`, …), or `None`
/// (after a notice) where it cannot be installed here.
pub fn pkilint() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        install()
            .map_err(|why| super::skip("the pkilint checks", &why))
            .ok()
    })
    .as_deref()
}

fn install() -> Result<PathBuf, String> {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("interop")
        .join(format!("pkilint-{VERSION}"));
    let bin = cache.join("bin");
    // Written last: a directory without it is an interrupted install, made again. (A
    // virtual environment cannot be moved into place once complete: its scripts name its
    // interpreter by path.)
    let installed = cache.join("estca-installed");
    if installed.is_file() {
        return Ok(bin);
    }
    if cache.exists() {
        std::fs::remove_dir_all(&cache).map_err(|e| e.to_string())?;
    }
    super::run_step(
        Command::new("python3").arg("-m").arg("venv").arg(&cache),
        "python3 -m venv (Debian: apt-get install python3 python3-venv)",
    )?;
    super::run_step(
        Command::new(bin.join("python3"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(format!("pkilint=={VERSION}")),
        "pip install pkilint (from PyPI)",
    )?;
    std::fs::write(&installed, VERSION).map_err(|e| e.to_string())?;
    Ok(bin)
}
