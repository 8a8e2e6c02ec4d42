//! The `est-ca` crate's EST client (`est-client`, from `../shared/peers/est-client/` beside
//! the repository: a small command line around `est_ca::est::client`), built with cargo into a
//! cache under `target/`, once per version of its sources: later runs find it built.
//!
//! It is not a dev-dependency: the project must build where `../shared` is absent. Its sources
//! are copied into the cache (the shared folder is read-only and cargo writes a lock file
//! beside the manifest) with the lock file `tests/est_client/Cargo.lock`, and built `--locked`
//! with a target directory of its own under `target/tmp/interop/` (the workspace's own is
//! locked by the `cargo test` that runs this code, so its dependency builds cannot be shared),
//! so that a new release of one of its dependencies cannot change what CI builds. Only the
//! program is kept, under a name of its own version; the build directory is removed.
//!
//! Where its sources are missing or it cannot be built, [`est_client`] returns `None` after a
//! notice on standard error, unless `REQUIRE_ALL_TESTS` is set (as `.ci/run` does): then it
//! panics, so CI never skips these tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use sha2::Digest;

/// The lock file the client is built with (its sources have none).
const LOCK_FILE: &str = "tests/est_client/Cargo.lock";

/// The built `est-client`, or `None` (after a notice) where it cannot be built here.
pub fn est_client() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            build()
                .map_err(|why| super::skip("the est-ca client interoperability tests", &why))
                .ok()
        })
        .as_deref()
}

/// `../shared/peers/est-client/` beside the repository.
fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/est-client")
}

/// The files of the client's package (manifest and `src/`), relative to its directory.
fn package_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = vec![PathBuf::from("Cargo.toml")];
    let src = dir.join("src");
    let entries = std::fs::read_dir(&src).map_err(|e| {
        format!(
            "{} cannot be read ({e}); it holds the est-ca crate's client",
            src.display()
        )
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().is_file() {
            files.push(Path::new("src").join(entry.file_name()));
        }
    }
    files.sort();
    Ok(files)
}

fn build() -> Result<PathBuf, String> {
    let dir = sources();
    if !dir.join("Cargo.toml").is_file() {
        return Err(format!(
            "{} has no Cargo.toml (the est-ca crate's client comes from ../shared/peers beside the repository)",
            dir.display()
        ));
    }
    let lock_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(LOCK_FILE);
    let lock = std::fs::read(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let files = package_files(&dir)?;
    let mut contents = Vec::with_capacity(files.len());
    let mut digest = sha2::Sha256::new();
    for file in &files {
        let bytes =
            std::fs::read(dir.join(file)).map_err(|e| format!("{}: {e}", file.display()))?;
        digest.update(file.as_os_str().as_encoded_bytes());
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(&bytes);
        contents.push(bytes);
    }
    digest.update(&lock);
    let version = hex::encode(&digest.finalize()[..8]);
    let interop = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop");
    let bin = interop
        .join(format!("est-client-{version}"))
        .join("est-client");
    if bin.is_file() {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The package, copied where cargo may write beside it.
    let package = interop.join(format!("est-client-{version}-src"));
    for (file, bytes) in files.iter().zip(&contents) {
        let to = package.join(file);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&to, bytes).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    std::fs::write(package.join("Cargo.lock"), &lock).map_err(|e| e.to_string())?;
    // The copy lives under estca's target/, inside estca's workspace: an empty [workspace]
    // table makes it a workspace of its own, as it is beside its peers in ../shared.
    let manifest = package.join("Cargo.toml");
    let mut own_workspace = std::fs::OpenOptions::new()
        .append(true)
        .open(&manifest)
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    own_workspace
        .write_all(b"\n[workspace]\n")
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    let target = interop.join("est-client-target");
    let output = Command::new(&cargo)
        .args([
            "build",
            "--locked",
            "--bin",
            "est-client",
            "--manifest-path",
        ])
        .arg(package.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        // The project's settings are not the client's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        // Without debug information: a third of the disk and link time, nothing to debug.
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        return Err(format!(
            "cargo build of {} failed ({}); if its Cargo.toml changed, refresh {LOCK_FILE} \
             (cargo generate-lockfile in a copy of it):\n{}",
            dir.display(),
            output.status,
            lines[lines.len().saturating_sub(30)..].join("\n")
        ));
    }
    let built = target.join("debug/est-client");
    std::fs::create_dir_all(bin.parent().ok_or("no cache directory")?)
        .map_err(|e| e.to_string())?;
    // Copied under a name of its own version, so that a later version's build, which
    // overwrites target/debug/est-client, leaves this one as it is.
    let staged = bin.with_extension("partial");
    std::fs::copy(&built, &staged).map_err(|e| format!("{}: {e}", built.display()))?;
    std::fs::rename(&staged, &bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    // The build's 400 MB are not needed once the program is copied out; the copied sources
    // neither.
    let _ = std::fs::remove_dir_all(&target);
    let _ = std::fs::remove_dir_all(&package);
    Ok(bin)
}

/// One run of `est-client ARGS` against a daemon on `port`, trusting `trust_anchor` (a PEM
/// file). The subcommand comes first, then `--url` and `--cacert`, then `args`.
pub fn run_est_client(
    est_client: &Path,
    command: &str,
    port: u16,
    trust_anchor: &Path,
    args: &[&str],
) -> Output {
    Command::new(est_client)
        .arg(command)
        .args(["--url", &format!("https://127.0.0.1:{port}"), "--cacert"])
        .arg(trust_anchor)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("est-client runs")
}
