//! Cisco libest's `estclient` and `estproxy`, built unmodified from the upstream archive in
//! `../shared/third-party/` (no package registry carries it) into a cache under `target/`,
//! once per archive: later runs find them built. The build is libest's full one (client,
//! server and proxy; not `--enable-client-only`), so that one build gives both programs.
//!
//! libest still calls `FIPS_mode()` and `FIPS_mode_set()`, which OpenSSL 3 removed; the build
//! gives the compiler a header that maps them (`CPPFLAGS=-include`), as the archive's README
//! says, and changes nothing in libest's sources.
//!
//! Where the archive or the build tools are missing, [`estclient`] and [`estproxy`] return
//! `None` after a notice on standard error, unless `REQUIRE_ALL_TESTS` is set (as `.ci/run`
//! does): then they panic, so CI never skips these tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The header that maps the FIPS calls OpenSSL 3 removed.
const FIPS_SHIM: &str = "#define FIPS_mode() EVP_default_properties_is_fips_enabled(NULL)\n\
                         #define FIPS_mode_set(x) 0\n";

/// The built `estclient`, or `None` (after a notice) where it cannot be built here.
pub fn estclient() -> Option<&'static Path> {
    static PROGRAM: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| Some(installed()?.join("bin/estclient")))
        .as_deref()
}

/// The built `estproxy` (an EST registration authority in front of an EST server), or `None`
/// (after a notice) where it cannot be built here.
pub fn estproxy() -> Option<&'static Path> {
    static PROGRAM: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| Some(installed()?.join("bin/estproxy")))
        .as_deref()
}

/// The directory libest is installed in (`bin/estclient`, `bin/estproxy`), or `None` after a
/// notice.
fn installed() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            build()
                .map_err(|why| super::skip("the libest interoperability tests", &why))
                .ok()
        })
        .as_deref()
}

/// The upstream archive: `libest-*.tar.gz` in `../shared/third-party/` beside the repository.
fn archive() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/third-party");
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        format!(
            "{} cannot be read ({e}); it holds libest's archive",
            dir.display()
        )
    })?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libest-") && n.ends_with(".tar.gz"))
        })
        .ok_or_else(|| format!("no libest-*.tar.gz in {}", dir.display()))
}

fn build() -> Result<PathBuf, String> {
    let archive = archive()?;
    let stem = archive
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .ok_or("the archive's name is not UTF-8")?
        .to_owned();
    // "-full": earlier caches held the client-only build, without estproxy.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("interop")
        .join(format!("{stem}-full"));
    let bin = cache.join("bin/estproxy");
    if bin.is_file() {
        return Ok(cache);
    }
    for tool in ["cc", "make", "tar", "pkg-config"] {
        if !super::have(tool) {
            return Err(format!(
                "`{tool}` is not installed (Debian: apt-get install build-essential autoconf automake libtool libssl-dev pkg-config)"
            ));
        }
    }
    if !Path::new("/usr/include/openssl/evp.h").exists() {
        return Err(
            "OpenSSL's headers are not installed (Debian: apt-get install libssl-dev)".into(),
        );
    }
    std::fs::create_dir_all(cache.parent().ok_or("no cache parent")?).map_err(|e| e.to_string())?;
    // Built in a directory of its own, renamed into place when complete: an interrupted
    // build leaves no half-built cache.
    let work = tempfile::Builder::new()
        .prefix("libest-build-")
        .tempdir_in(cache.parent().ok_or("no cache parent")?)
        .map_err(|e| e.to_string())?;
    let shim = work.path().join("fips-shim.h");
    std::fs::write(&shim, FIPS_SHIM).map_err(|e| e.to_string())?;
    super::run_step(
        Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(work.path()),
        "unpacking the archive",
    )?;
    let source = work.path().join("libest");
    let prefix = work.path().join("install");
    super::run_step(
        Command::new("./configure")
            .args(["--disable-safec", "--with-ssl-dir=/usr"])
            .arg(format!("--prefix={}", cache.display()))
            .env("CPPFLAGS", format!("-include {}", shim.display()))
            .current_dir(&source),
        "configure",
    )?;
    super::run_step(
        Command::new("make").args(["-j2"]).current_dir(&source),
        "make",
    )?;
    super::run_step(
        Command::new("make")
            .arg("install")
            .arg(format!("DESTDIR={}", prefix.display()))
            .current_dir(&source),
        "make install",
    )?;
    // Installed under DESTDIR with the final prefix inside it (the library's run path names
    // the prefix), then moved to the prefix.
    let staged = prefix.join(cache.strip_prefix("/").map_err(|e| e.to_string())?);
    match std::fs::rename(&staged, &cache) {
        Ok(()) => {}
        // Another test process built it meanwhile.
        Err(_) if bin.is_file() => {}
        Err(e) => {
            return Err(format!(
                "cannot move the build into {}: {e}",
                cache.display()
            ))
        }
    }
    Ok(cache)
}

/// One run of `estclient` against a daemon on `port`, trusting `trust_anchor` (a PEM file),
/// writing into `out_dir`: what it printed (it exits 0 even when an operation fails).
pub fn run_estclient(
    estclient: &Path,
    port: u16,
    trust_anchor: &Path,
    out_dir: &Path,
    args: &[&str],
) -> Output {
    Command::new(estclient)
        .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-o"])
        .arg(out_dir)
        .args(args)
        .env("EST_OPENSSL_CACERT", trust_anchor)
        .stdin(Stdio::null())
        .output()
        .expect("estclient runs")
}
