//! A database belongs to one CA: the first daemon that starts on it binds it to its CA, and a
//! daemon whose CA directory holds another CA (or no CA at all, where the embedded defaults
//! would create a development one) is refused with both keys' fingerprints, on an embedded
//! database and on a PostgreSQL database shared by several daemons. `estca store bind-ca
//! --replace` is the operator's way to move a database to another CA; a restore binds the
//! database it fills to the CA that signed the backup.
//!
//! Where the PostgreSQL server binaries are missing the PostgreSQL test says so and passes
//! without running, unless `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::path::Path;
use std::process::Command;

use common::postgres::TestPostgres;
use common::*;

/// The SHA-256 of the key of `root-ca.pem` in `ca_dir`, by the openssl pipeline the refusals
/// print.
fn anchor_key(ca_dir: &Path) -> String {
    let pipeline = format!(
        "openssl x509 -in {}/root-ca.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum",
        ca_dir.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&pipeline)
        .output()
        .unwrap();
    assert!(out.status.success(), "{pipeline}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.split_whitespace().next().unwrap().to_owned();
    assert_eq!(hex.len(), 64, "{text}");
    hex
}

/// The daemon refuses to start on `dir`; returns the directory and what it said.
fn refused(dir: TestDir) -> (TestDir, String) {
    let (dir, failure) = *TestDaemon::try_start_in(dir)
        .err()
        .expect("a daemon started on a database of another CA");
    // The configuration's exit code, which the systemd unit does not restart on: starting
    // again unchanged would be refused again.
    assert_eq!(
        failure.status.and_then(|s| s.code()),
        Some(3),
        "{}",
        failure.stderr
    );
    (dir, failure.stderr)
}

#[test]
fn a_database_refuses_a_daemon_of_another_ca_until_the_operator_rebinds_it() {
    // The first start creates the development CA and binds the database to its root.
    let daemon = TestDaemon::start(Options::default());
    daemon.cli_ok(&["contract", "add", "5110", "--name", "Bank"], None);
    let dir = daemon.stop();
    let first_ca = dir.path().join("certs-first");
    std::fs::rename(dir.ca_dir(), &first_ca).unwrap();
    let first_key = anchor_key(&first_ca);

    // No CA directory beside a bound database: refused, and no development CA is made.
    let (dir, said) = refused(dir);
    assert!(
        said.contains("holds no CA")
            && said.contains(&first_key)
            && said.contains("No development CA was created"),
        "{said}"
    );
    assert!(
        !dir.ca_dir().exists(),
        "not even an empty CA directory, which `cp -a` would copy into"
    );

    // Another CA: refused with both keys, and the way to print a directory's key.
    dir.cli_ok(&["init", "--unencrypted"], None);
    let second_key = anchor_key(&dir.ca_dir());
    assert_ne!(first_key, second_key);
    let (dir, said) = refused(dir);
    assert!(
        said.contains("belongs to another CA")
            && said.contains(&first_key)
            && said.contains(&second_key)
            && said.contains("openssl x509 -in")
            && said.contains("estca store bind-ca --replace"),
        "{said}"
    );

    // bind-ca without --replace refuses the same way and changes nothing.
    let (status, _, err) = dir.cli(&["store", "bind-ca"], None);
    assert!(
        !status.success() && err.contains("belongs to another CA"),
        "{err}"
    );
    let (dir, _) = refused(dir);

    // With --replace the database moves to the second CA, its records kept.
    let out = dir.cli_json(&["store", "bind-ca", "--replace"]);
    assert_eq!(out["outcome"], "replaced", "{out}");
    assert_eq!(out["ca_key_sha256"], second_key.as_str(), "{out}");
    assert_eq!(out["was"], first_key.as_str(), "{out}");
    let daemon = TestDaemon::start_in(dir);
    let contracts = daemon.cli_json(&["contract", "list"]);
    assert!(contracts.to_string().contains("5110"), "{contracts}");
    let dir = daemon.stop();
    let out = dir.cli_json(&["store", "bind-ca"]);
    assert_eq!(out["outcome"], "kept", "{out}");

    // And now the first CA is the stranger.
    std::fs::rename(dir.ca_dir(), dir.path().join("certs-second")).unwrap();
    std::fs::rename(&first_ca, dir.ca_dir()).unwrap();
    let (_, said) = refused(dir);
    assert!(
        said.contains("belongs to another CA") && said.contains(&second_key),
        "{said}"
    );
}

/// A reload (SIGHUP) that finds another CA in `ca.dir` is refused, and the daemon goes on
/// with the CA it had.
#[tokio::test]
async fn a_reload_that_finds_another_ca_is_refused_and_the_ca_in_force_stays() {
    let daemon = TestDaemon::start(Options::default());
    let client = daemon.client();
    let before = client.get("cacerts").await;
    before.assert_status(200);
    let own_key = anchor_key(&daemon.dir().ca_dir());

    let other = TestDir::new(Options::default());
    other.cli_ok(&["init", "--unencrypted"], None);
    let other_key = anchor_key(&other.ca_dir());
    std::fs::rename(daemon.dir().ca_dir(), daemon.dir().path().join("certs-own")).unwrap();
    std::fs::rename(other.ca_dir(), daemon.dir().ca_dir()).unwrap();
    daemon.reload();
    let said = daemon.wait_for_log("reload refused", 0);
    assert!(
        said.contains("belongs to another CA")
            && said.contains(&own_key)
            && said.contains(&other_key),
        "{said}"
    );
    let after = client.get("cacerts").await;
    after.assert_status(200);
    assert_eq!(
        pkcs7_certificates(&after.body),
        pkcs7_certificates(&before.body),
        "the CA in force changed"
    );
}

#[test]
fn a_restore_binds_the_database_to_the_ca_that_signed_the_backup() {
    let source = TestDaemon::start(Options::default());
    source.cli_ok(&["contract", "add", "5110", "--name", "Bank"], None);
    let backup = source.dir().path().join("backup.ndjson");
    source.cli_ok(&["backup", backup.to_str().unwrap()], None);
    let source = source.stop();

    // A new machine whose empty database was bound to a CA of its own; then the operator
    // puts the real CA directory in place and restores.
    let target = TestDir::new(Options::default());
    target.cli_ok(&["init", "--unencrypted"], None);
    let out = target.cli_json(&["store", "bind-ca"]);
    assert_eq!(out["outcome"], "bound", "{out}");
    assert_ne!(out["ca_key_sha256"], anchor_key(&source.ca_dir()).as_str());
    std::fs::remove_dir_all(target.ca_dir()).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(source.ca_dir())
        .arg(target.ca_dir())
        .status()
        .unwrap();
    assert!(copied.success());
    target.cli_ok(&["restore", backup.to_str().unwrap()], None);
    let out = target.cli_json(&["store", "bind-ca"]);
    assert_eq!(out["outcome"], "kept", "{out}");
    assert_eq!(
        out["ca_key_sha256"],
        anchor_key(&source.ca_dir()).as_str(),
        "{out}"
    );
    let daemon = TestDaemon::start_in(target);
    let contracts = daemon.cli_json(&["contract", "list"]);
    assert!(contracts.to_string().contains("5110"), "{contracts}");
}

#[test]
fn a_daemon_with_another_ca_cannot_join_a_shared_postgres_database() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let secrets = tempfile::tempdir().unwrap();
    let password_file = TestPostgres::password_file(secrets.path());
    let url = server.url(&server.database());
    let options = Options {
        env: vec![
            ("ESTCA_STORE__BACKEND".into(), "postgres".into()),
            ("ESTCA_STORE__POSTGRES__URL".into(), url),
            (
                "ESTCA_STORE__POSTGRES__PASSWORD_FILE".into(),
                password_file.display().to_string(),
            ),
        ],
        ..Options::default()
    };
    let first = TestDaemon::start(options.clone());
    first.cli_ok(&["contract", "add", "5110", "--name", "Bank"], None);

    // A second daemon whose CA directory was never copied: the embedded defaults would make
    // it a development CA of its own; it is refused and creates none.
    let (stranger, said) = refused(TestDir::new(options.clone()));
    assert!(
        said.contains("holds no CA") && said.contains(&anchor_key(&first.dir().ca_dir())),
        "{said}"
    );
    assert!(!stranger.ca_dir().exists());

    // With a CA of its own: refused too.
    stranger.cli_ok(&["init", "--unencrypted"], None);
    let (_, said) = refused(stranger);
    assert!(said.contains("belongs to another CA"), "{said}");

    // With a copy of the first daemon's CA directory: it joins.
    let twin = TestDir::new(options);
    let copied = Command::new("cp")
        .arg("-a")
        .arg(first.dir().ca_dir())
        .arg(twin.ca_dir())
        .status()
        .unwrap();
    assert!(copied.success());
    let twin = TestDaemon::start_in(twin);
    let contracts = twin.cli_json(&["contract", "list"]);
    assert!(contracts.to_string().contains("5110"), "{contracts}");
    // The first daemon went on serving throughout.
    first.cli_ok(&["contract", "add", "5111", "--name", "Other"], None);
}
