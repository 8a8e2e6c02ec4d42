//! A backup taken by the previous release still restores: `tests/data/backup-v2` was written
//! by estca 7bdbd74 (`tests/data/make-backup.sh`), before the backup file had serde types of
//! its own. This build restores it (checking the CA's signature), serves what it holds, and
//! backs the same records up again byte for byte.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Options, TestDaemon, TestDir};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/backup-v2")
}

/// The fixture's CA directory, private as estca requires (git keeps no modes).
fn copy_ca(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(fixture().join("certs")).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// The record lines of a backup file: everything but the header, the trailer and the CRL
/// number (which every start moves on).
fn record_lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| {
            !l.starts_with(r#"{"type":"header""#)
                && !l.starts_with(r#"{"type":"trailer""#)
                && !l.starts_with(r#"{"type":"crl_number""#)
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_backup_of_the_previous_release_restores_and_backs_up_the_same_records() {
    let dir = TestDir::new(Options::default());
    copy_ca(&dir.ca_dir());
    let file = fixture().join("backup.ndjson");
    let printed = dir.cli_ok(&["restore", file.to_str().unwrap()], None);
    assert!(
        printed.contains("2 contracts, 5 accounts, 8 certificates, 2 apps, 26 history"),
        "{printed}"
    );
    assert!(printed.contains("signed by"), "{printed}");

    let daemon = TestDaemon::start_in(dir);
    let nozawa1 = daemon.cli_json(&["account", "show", "nozawa1"]);
    assert_eq!(nozawa1["issued_count"], 2);
    assert_eq!(nozawa1["certificate"]["status"], "active");
    assert_eq!(
        nozawa1["certificate"]["serial"],
        "6119805b645cae9c1e3744d0be7d64ca"
    );
    let superseded = daemon.cli_json(&["cert", "show", "0f3f7fbc6c13a348ad413f7de3b9892b"]);
    assert_eq!(superseded["revocation"]["reason"], "superseded");
    let nozawa2 = daemon.cli_json(&["account", "show", "nozawa2"]);
    assert_eq!(nozawa2["certificate_choice"], "revoked");
    assert_eq!(
        nozawa2["certificate"]["revocation"]["reason"],
        "keyCompromise"
    );
    let locked = daemon.cli_json(&["account", "show", "locked1"]);
    assert_eq!(
        (&locked["locked"], &locked["failed_attempts"]),
        (&true.into(), &2.into())
    );
    let apps = daemon.cli_json(&["app", "list"]);
    assert_eq!(apps[0]["name"], "billing");
    assert_eq!(
        (&apps[0]["scope"], &apps[0]["revoked"]),
        (&"all".into(), &true.into())
    );
    assert_eq!(
        apps[1]["scope"]["contracts"],
        serde_json::json!(["7001", "5110"])
    );
    let contracts = daemon.cli_json(&["contract", "list"]);
    assert_eq!(contracts[1]["name"], "大手町エステート株式会社");
    let history = daemon.cli_json(&["history", "--limit", "1000"]);
    let entries = history["entries"].as_array().unwrap();
    let lock = entries
        .iter()
        .find(|e| e["seq"] == 19)
        .expect("entry 19 of the old history");
    assert_eq!(lock["actor"]["kind"], "system");
    assert_eq!(lock["kind"], "lock");
    assert_eq!(lock["outcome"]["detail"], "locked after 2 wrong passwords");

    let again = daemon.dir().path().join("again.ndjson");
    daemon.cli_ok(&["backup", again.to_str().unwrap()], None);
    let old = record_lines(&std::fs::read_to_string(&file).unwrap());
    let new = record_lines(&std::fs::read_to_string(&again).unwrap());
    let missing: Vec<&String> = old.difference(&new).collect();
    assert!(
        missing.is_empty(),
        "records of the old backup not in the new one, byte for byte: {missing:#?}"
    );
    assert!(
        new.len() > old.len(),
        "the start and the queries added records"
    );
}
