//! Operations commands: `check-config`, `backup`, `restore`, `store migrate`, `store copy`,
//! `store bind-ca`.

use std::io::{Seek, Write};
use std::path::Path;

use crate::ca::binding::{self, Binding, BindingError, BindingPlace, CaKeys};
use crate::ca::{
    verify_backup_signature, BackupSignatureError, BackupTrust, CaError, SignerStanding,
};
use crate::config::Config;
use crate::private_dir::Holds;
use crate::private_file::PrivateFile;
use crate::store::backup::{self, BackupSummary};

use super::client::AdminClient;
use super::output;

/// Configuration keys whose values are secret and printed masked by `check-config`. None is
/// secret today (paths name key files, they are not keys); keys that hold a secret (e.g. a
/// future database password) belong here.
pub const SECRET_KEYS: &[&str] = &[];

/// What `check-config` prints instead of a secret.
pub const MASK: &str = "********";

/// Largest backup the CLI accepts from the daemon.
const MAX_BACKUP_BYTES: u64 = 64 * 1024 * 1024 * 1024;

/// Records restored per store call.
const RESTORE_BATCH: usize = 1000;

/// The effective configuration as TOML, secrets masked.
pub fn effective_toml(config: &Config) -> Result<String, String> {
    let value = effective_values(config)?;
    toml::to_string_pretty(&value).map_err(|e| format!("cannot show the configuration: {e}"))
}

/// The effective configuration as a tree of values, secrets masked (for TOML or JSON).
fn effective_values(config: &Config) -> Result<toml::Value, String> {
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
    Ok(value)
}

/// `estca store migrate`: brings the configured store's schema or row format up to date
/// (what the daemon does at start), so that an upgrade can be applied, and checked, before
/// any daemon runs the new version.
pub async fn migrate(config: &Config, json: bool) -> Result<(), String> {
    let done = crate::store::migrate(&config.store)
        .await
        .map_err(|e| e.to_string())?;
    if json {
        output::line(serde_json::json!({ "migrated": done }))?;
    } else {
        output::line(&done)?;
    }
    Ok(())
}

/// `estca store copy --from SPEC --to SPEC`: every record of one store into another, empty
/// one, verified by comparing the two stores' exports.
pub async fn copy(config: &Config, from: &str, to: &str, json: bool) -> Result<(), String> {
    let source = crate::store::located(&config.store, from).map_err(|e| e.to_string())?;
    let destination = crate::store::located(&config.store, to).map_err(|e| e.to_string())?;
    let opened = |what: &'static str| move |e: crate::store::StoreError| format!("{what}: {e}");
    let source_store = crate::store::open(&source, None)
        .await
        .map_err(opened("the source"))?;
    // Syncs deferred to the end of the copy (sync_all): a copy either completes or is redone.
    let destination_store =
        crate::store::open_with(&destination, None, crate::store::SyncMode::Deferred)
            .await
            .map_err(opened("the destination"))?;
    let copied = crate::store::copy(source_store, destination_store)
        .await
        .map_err(|e| e.to_string())?;
    if json {
        output::line(
            serde_json::json!({ "from": from, "to": to, "records": copied.records, "sha256": copied.sha256 }),
        )?;
    } else {
        output::line(format_args!(
            "copied {} records from {from} to {to}; both export the same records (sha256 {})",
            copied.records, copied.sha256
        ))?;
    }
    Ok(())
}

/// `estca store bind-ca [--replace]`: binds the configured database to the CA of `ca.dir`
/// as every start of the daemon does ([`binding::bind`]), or with `replace` whatever CA it
/// belonged to (the operator's decision to move a database to another CA, with every daemon
/// on it stopped). Reads the CA's certificates only, never its keys.
pub async fn bind_ca(config: &Config, replace: bool, json: bool) -> Result<(), String> {
    let keys = CaKeys::read(&config.ca).map_err(|e| e.to_string())?;
    let store = crate::store::open(&config.store, None)
        .await
        .map_err(|e| e.to_string())?;
    let database = config.database_location();
    let place = BindingPlace {
        database: &database,
        ca_dir: &config.ca.dir,
    };
    let anchor = keys.anchor();
    let before = store.bound_ca().await.map_err(|e| e.to_string())?;
    let (outcome, replaced) = match binding::bind(&*store, &keys, place).await {
        Ok(Binding::Kept) => ("kept", None),
        Ok(Binding::New) => ("bound", None),
        Ok(Binding::MovedToAnchor { from }) => ("moved_to_anchor", Some(from)),
        Err(BindingError::OtherCa { .. }) if replace => {
            store.rebind_ca(anchor).await.map_err(|e| e.to_string())?;
            ("replaced", before)
        }
        Err(e) => return Err(e.to_string()),
    };
    if json {
        output::line(serde_json::json!({
            "database": database,
            "ca_dir": config.ca.dir,
            "ca_key_sha256": anchor.to_string(),
            "was": before.as_ref().map(|key| key.to_string()),
            "outcome": outcome,
        }))?;
    } else {
        let done = if outcome == "kept" {
            "was already bound"
        } else {
            "is now bound"
        };
        let was = replaced
            .map(|key| format!("; it was bound to the CA key with SHA-256 {key}"))
            .unwrap_or_default();
        output::line(format_args!(
            "the database at {database} {done} to the CA in {} (CA key SHA-256 {}){was}",
            config.ca.dir.display(),
            anchor,
        ))?;
    }
    Ok(())
}

/// `estca check-config`: the configuration loaded and validated; prints the effective values
/// (with `json`, one object: `source`, `valid` and `config`).
pub fn check_config(config: &Config, source: Option<&Path>, json: bool) -> Result<(), String> {
    let shown = match source {
        Some(p) => p.display().to_string(),
        None if Path::new(crate::config::SYSTEM_CONFIG_PATH).exists() => {
            crate::config::SYSTEM_CONFIG_PATH.to_owned()
        }
        None => "the embedded defaults".to_owned(),
    };
    if json {
        let values = effective_values(config)?;
        output::line(serde_json::json!({ "source": shown, "valid": true, "config": values }))?;
        return Ok(());
    }
    let text = effective_toml(config)?;
    output::write(
        format!("# estca check-config: {shown} is valid; effective values (with defaults and ESTCA_* variables):\n{text}")
            .as_bytes(),
    )?;
    Ok(())
}

/// The FILE argument that means standard input or output (`estca backup - | age -r …`).
const STANDARD_STREAM: &str = "-";

/// `estca backup FILE`: a consistent snapshot from the running daemon, signed by the CA,
/// verified, then written as a private file ([`crate::private_file`]: mode 0600 from creation,
/// no symlink followed, renamed over FILE in one step) because it holds password hashes.
/// FILE `-` is standard output (to pipe into an encryption tool); the summary then goes to
/// standard error.
pub async fn backup(config: &Config, file: &Path, json: bool) -> Result<(), super::Failure> {
    use std::io::Seek;
    let to_stdout = file == Path::new(STANDARD_STREAM);
    let cannot = |e: std::io::Error| format!("cannot write {}: {e}", file.display());
    // The directory and the name are checked before the daemon is asked for anything. The
    // backup is streamed into the private file (or, for standard output, an unnamed temporary
    // file), checked from there, and only then committed or copied out.
    let mut private = match to_stdout {
        true => None,
        false => Some(PrivateFile::create(file).map_err(|e| e.to_string())?),
    };
    let mut unnamed = match to_stdout {
        true => Some(tempfile::tempfile().map_err(cannot)?),
        false => None,
    };
    let client = AdminClient::new(&config.admin.socket);
    let sink: &mut (dyn Write + Send) = match (&mut private, &mut unnamed) {
        (Some(p), _) => p,
        (None, Some(u)) => u,
        (None, None) => return Err("nowhere to write the backup".into()),
    };
    client
        .get_into("/api/v1/backup", MAX_BACKUP_BYTES, sink)
        .await?;
    let unusable = |e: String| format!("the daemon sent an unusable backup: {e}");
    let summary = match (&mut private, &mut unnamed) {
        (Some(p), _) => backup::read(
            p.written().map_err(cannot)?,
            RESTORE_BATCH,
            true,
            |_| Ok(()),
        ),
        (None, Some(u)) => {
            u.rewind().map_err(cannot)?;
            backup::read(
                std::io::BufReader::new(&*u),
                RESTORE_BATCH,
                true,
                |_| Ok(()),
            )
        }
        (None, None) => return Err("nowhere to read the backup back from".into()),
    }
    .map_err(|e| unusable(e.to_string()))?;
    // Whether the signer is this CA is checked on restore, where the CA directory is read;
    // here the signature must at least hold.
    let signature = summary
        .signature
        .as_ref()
        .ok_or_else(|| unusable("it is not signed (is the daemon older than this CLI?)".into()))?;
    let signer = verify_backup_signature(signature, &summary.signed_message())
        .map_err(|e| unusable(e.to_string()))?;
    match (private, unnamed) {
        (Some(out), _) => {
            out.commit().map_err(|e| e.to_string())?;
            output::line(report(
                &summary,
                file,
                "backup written",
                Some(&signer),
                json,
            ))?;
        }
        (None, Some(mut temp)) => {
            temp.rewind().map_err(cannot)?;
            let mut stdout = std::io::stdout().lock();
            std::io::copy(&mut temp, &mut stdout).map_err(cannot)?;
            stdout.flush().map_err(cannot)?;
            let shown = Path::new("standard output");
            eprintln!(
                "{}",
                report(&summary, shown, "backup written", Some(&signer), json)
            );
        }
        (None, None) => return Err("nowhere to write the backup".into()),
    }
    Ok(())
}

/// `estca restore FILE`: copies FILE into a private temporary file in the data directory,
/// verifies the copy (lines, counts, checksum, the CA's signature and that the signer is this
/// CA), then loads that same copy into the empty data directory. Refused while the daemon runs
/// (the database is locked), when the database holds anything, and, unless `allow_unsigned`,
/// for a version 1 (unsigned) backup. FILE `-` is standard input (`age -d … | estca restore -`).
pub async fn restore(
    config: &Config,
    file: &Path,
    allow_unsigned: bool,
    json: bool,
) -> Result<(), String> {
    let refused = |e: String| format!("{}: {e}; nothing was restored", file.display());
    crate::private_dir::prepare(&config.store.path, Holds::Database).map_err(|e| e.to_string())?;
    if config.ca.dir.exists() {
        crate::private_dir::prepare(&config.ca.dir, Holds::CaFiles).map_err(|e| e.to_string())?;
    }
    // Both passes read this copy, which no one else can change between the check and the
    // import (the file itself could be, by whoever may write it).
    let mut copy = tempfile::tempfile_in(&config.store.path).map_err(|e| {
        format!(
            "cannot make a private copy in {}: {e}",
            config.store.path.display()
        )
    })?;
    let mut source: Box<dyn std::io::Read> = if file == Path::new(STANDARD_STREAM) {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?,
        )
    };
    std::io::copy(&mut source, &mut copy)
        .map_err(|e| format!("cannot copy {}: {e}", file.display()))?;
    let rewound = || -> Result<std::io::BufReader<&std::fs::File>, String> {
        (&copy)
            .seek(std::io::SeekFrom::Start(0))
            .map_err(|e| format!("cannot read the copy of {}: {e}", file.display()))?;
        Ok(std::io::BufReader::new(&copy))
    };
    let summary = backup::read(rewound()?, RESTORE_BATCH, true, |_| Ok(()))
        .map_err(|e| refused(e.to_string()))?;
    let signer = match &summary.signature {
        Some(signature) => {
            let subject = verify_backup_signature(signature, &summary.signed_message())
                .map_err(|e| refused(e.to_string()))?;
            let trust = BackupTrust::load(&config.ca)
                .map_err(|e| refused(BackupSignatureError::from(e).to_string()))?;
            match trust
                .vouch(&signature.signer)
                .map_err(|e| refused(e.to_string()))?
            {
                SignerStanding::IssuingCa => subject,
                SignerStanding::IssuedBy(parent) => format!("{subject} (issued by {parent})"),
            }
        }
        None if allow_unsigned => {
            eprintln!(
                "estca: WARNING: {} is an unsigned version 1 backup: nothing proves who wrote it; restoring it because --allow-unsigned was given",
                file.display()
            );
            "nobody (unsigned version 1 backup)".to_owned()
        }
        None => {
            return Err(refused(
                "it is an unsigned version 1 backup (written before estca signed backups), so nothing proves who wrote it: anyone who could edit it could have put in a password hash of their choosing. Take a new backup, or, if you took this one yourself and no one else could write it since, give --allow-unsigned".into(),
            ))
        }
    };

    let store = crate::store::open(&config.store, None)
        .await
        .map_err(|e| e.to_string())?;
    if !store.is_empty().await.map_err(|e| e.to_string())? {
        return Err(format!(
            "the database at {} is not empty: restore only into an empty data directory (move the old one aside first)",
            config.database_location()
        ));
    }
    let runtime = tokio::runtime::Handle::current();
    let imported = tokio::task::block_in_place(|| {
        backup::read(rewound()?, RESTORE_BATCH, false, |batch| {
            runtime.block_on(store.import(batch))?;
            Ok(())
        })
        .map_err(|e| {
            format!(
                "{}: {e}; the database at {} is partly restored: delete it and retry",
                file.display(),
                config.database_location()
            )
        })
    })?;
    debug_assert_eq!(imported, summary);
    // The database now holds what the configured CA signed: it belongs to that CA, whatever
    // an earlier start on the empty database bound it to. Without a CA (an unsigned backup
    // restored before `estca init`), the first start binds it.
    let not_bound = |e: String| {
        format!(
            "{}: restored, but the database at {} could not be bound to the CA in {}: {e}; run 'estca store bind-ca --replace'",
            file.display(),
            config.database_location(),
            config.ca.dir.display()
        )
    };
    match CaKeys::read(&config.ca) {
        Ok(keys) => store
            .rebind_ca(keys.anchor())
            .await
            .map_err(|e| not_bound(e.to_string()))?,
        Err(CaError::NotInitialized { .. }) => {}
        Err(e) => return Err(not_bound(e.to_string())),
    }
    output::line(report(
        &imported,
        Path::new(&config.database_location()),
        "restored into",
        Some(&signer),
        json,
    ))?;
    if !json {
        eprintln!(
            "estca: the database is as it was when this backup was taken ({}): certificates issued or revoked since are not in it, and those revoked since are good again in the CRL and OCSP until revoked again (README, \"Backup and restore\")",
            crate::model::rfc3339(imported.taken_at)
        );
    }
    Ok(())
}

/// The line that tells what a backup or restore did.
fn report(
    summary: &BackupSummary,
    path: &Path,
    what: &str,
    signer: Option<&str>,
    json: bool,
) -> String {
    if json {
        serde_json::json!({
            "path": path, "counts": summary.counts, "sha256": summary.sha256, "signed_by": signer,
            "taken_at": crate::model::rfc3339(summary.taken_at),
        })
        .to_string()
    } else {
        let signed = signer
            .map(|s| format!(", signed by {s}"))
            .unwrap_or_default();
        format!("{what} {}: {summary}{signed}", path.display())
    }
}
