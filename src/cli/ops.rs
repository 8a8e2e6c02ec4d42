//! Operations commands: `check-config`, `backup`, `restore`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::Config;
use crate::private_file::PrivateFile;
use crate::store::backup::{self, BackupSummary};
use crate::store::{SledStore, Store};

use super::client::AdminClient;

/// Configuration keys whose values are secret and printed masked by `check-config`. None is
/// secret today (paths name key files, they are not keys); keys that hold a secret (e.g. a
/// future database password) belong here.
pub const SECRET_KEYS: &[&str] = &[];

/// What `check-config` prints instead of a secret.
pub const MASK: &str = "********";

/// Largest backup the CLI accepts from the daemon.
const MAX_BACKUP_BYTES: usize = 8 * 1024 * 1024 * 1024;

/// Records restored per store call.
const RESTORE_BATCH: usize = 1000;

/// The effective configuration as TOML, secrets masked.
pub fn effective_toml(config: &Config) -> Result<String, String> {
    let mut value = toml::Value::try_from(config)
        .map_err(|e| format!("cannot show the configuration as TOML: {e}"))?;
    for key in SECRET_KEYS {
        let mut parts = key.split('.');
        let (Some(section), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let Some(slot) = value
            .get_mut(section)
            .and_then(|s| s.as_table_mut())
            .and_then(|t| t.get_mut(name))
        {
            *slot = toml::Value::String(MASK.to_owned());
        }
    }
    toml::to_string_pretty(&value).map_err(|e| format!("cannot show the configuration: {e}"))
}

/// `estca check-config`: the configuration loaded and validated; prints the effective values.
pub fn check_config(config: &Config, source: Option<&Path>) -> Result<(), String> {
    let text = effective_toml(config)?;
    let shown = match source {
        Some(p) => p.display().to_string(),
        None if Path::new(crate::config::SYSTEM_CONFIG_PATH).exists() => {
            crate::config::SYSTEM_CONFIG_PATH.to_owned()
        }
        None => "the embedded defaults".to_owned(),
    };
    println!("# estca check-config: {shown} is valid; effective values (with defaults and ESTCA_* variables):");
    print!("{text}");
    Ok(())
}

/// `estca backup FILE`: a consistent snapshot from the running daemon, verified, then written
/// as a private file ([`crate::private_file`]: mode 0600 from creation, no symlink followed,
/// renamed over FILE in one step) because it holds password hashes.
pub async fn backup(config: &Config, file: &Path, json: bool) -> Result<(), String> {
    // The directory and the name are checked before the daemon is asked for anything.
    let mut out = PrivateFile::create(file).map_err(|e| e.to_string())?;
    let client = AdminClient::new(&config.admin.socket);
    let bytes = client.get_bytes("/api/v1/backup", MAX_BACKUP_BYTES).await?;
    let summary = backup::read(&bytes[..], RESTORE_BATCH, true, |_| Ok(()))
        .map_err(|e| format!("the daemon sent an unusable backup: {e}"))?;
    out.write_all(&bytes)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    out.commit().map_err(|e| e.to_string())?;
    report(&summary, file, "backup written", json);
    Ok(())
}

/// `estca restore FILE`: verifies FILE, then loads it into the empty data directory of the
/// configuration. Refused while the daemon runs (the database is locked) or when the
/// database holds anything.
pub async fn restore(config: &Config, file: &Path, json: bool) -> Result<(), String> {
    let open = || {
        std::fs::File::open(file)
            .map(std::io::BufReader::new)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
    };
    let summary = backup::read(open()?, RESTORE_BATCH, true, |_| Ok(()))
        .map_err(|e| format!("{}: {e}; nothing was restored", file.display()))?;

    if !config.store.path.exists() {
        std::fs::create_dir_all(&config.store.path)
            .and_then(|()| {
                std::fs::set_permissions(&config.store.path, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| format!("cannot create {}: {e}", config.store.path.display()))?;
    }
    let store = SledStore::open(&config.database_path()).map_err(|e| e.to_string())?;
    if !store.is_empty().await.map_err(|e| e.to_string())? {
        return Err(format!(
            "the database at {} is not empty: restore only into an empty data directory (move the old one aside first)",
            config.database_path().display()
        ));
    }
    let runtime = tokio::runtime::Handle::current();
    let imported = tokio::task::block_in_place(|| {
        backup::read(open()?, RESTORE_BATCH, false, |batch| {
            runtime.block_on(store.import(batch))?;
            Ok(())
        })
        .map_err(|e| {
            format!(
                "{}: {e}; the database at {} is partly restored: delete it and retry",
                file.display(),
                config.database_path().display()
            )
        })
    })?;
    store.flush().await.map_err(|e| e.to_string())?;
    debug_assert_eq!(imported, summary);
    report(&imported, &config.database_path(), "restored into", json);
    Ok(())
}

fn report(summary: &BackupSummary, path: &Path, what: &str, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "path": path, "counts": summary.counts, "sha256": summary.sha256 })
        );
    } else {
        println!("{what} {}: {summary}", path.display());
    }
}
