//! Protecting the CA keys (issue 14): encrypted key files with the real daemon and CLI.
//! `estca init` encrypts by default for a production configuration, the daemon decrypts the
//! issuing key with the passphrase from a file or a systemd credential, refuses to start
//! without it or with a wrong one (never showing it), warns about a plain key, and
//! `estca ca encrypt-key` / `decrypt-key` migrate between the two.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const PASSPHRASE: &str = "tr0ub4dor & 3 more words";

/// Runs `estca --config FILE ARGS` with extra environment variables (configuration overrides).
fn estca(dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(estca_bin())
        .arg("--config")
        .arg(&dir.config)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A private file holding `contents`.
fn private_file(path: &Path, contents: &str) -> PathBuf {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

fn first_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

/// A test directory whose daemon runs with `env` (a production CA: never created implicitly).
fn dir_with(env: &[(&str, &str)]) -> TestDir {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("ESTCA_CA__CREATE_IF_MISSING".into(), "false".into()));
    TestDir::new(Options {
        env,
        ..Options::default()
    })
}

#[tokio::test]
async fn a_production_ca_is_encrypted_by_default_and_the_daemon_decrypts_it_with_a_credential() {
    let dir = dir_with(&[]);
    let production = [("ESTCA_CA__CREATE_IF_MISSING", "false")];

    // No passphrase: a production `init` refuses and writes nothing.
    let out = estca(&dir, &["init"], &production);
    assert!(!out.status.success(), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("ca.key_passphrase_file") && message.contains("--unencrypted"),
        "{message}"
    );
    assert!(!dir.ca_dir().join("issuing-ca.key").exists());

    // With a passphrase file: both keys are written encrypted.
    let pass_file = private_file(&dir.path().join("passphrase"), &format!("{PASSPHRASE}\n"));
    let pass_env = [
        ("ESTCA_CA__CREATE_IF_MISSING", "false"),
        ("ESTCA_CA__KEY_PASSPHRASE_FILE", pass_file.to_str().unwrap()),
    ];
    let out = estca(&dir, &["init"], &pass_env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("encrypted with the configured passphrase"),
        "{}",
        text(&out)
    );
    for name in ["root-ca.key", "issuing-ca.key"] {
        assert_eq!(
            first_line(&dir.ca_dir().join(name)),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----"
        );
    }

    // openssl opens the issuing key with the passphrase.
    if have("openssl") {
        let out = Command::new("openssl")
            .args(["pkey", "-noout", "-passin"])
            .arg(format!("file:{}", pass_file.display()))
            .arg("-in")
            .arg(dir.ca_dir().join("issuing-ca.key"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    } else {
        assert!(
            std::env::var_os("REQUIRE_ALL_TESTS").is_none(),
            "REQUIRE_ALL_TESTS is set and openssl is missing"
        );
        eprintln!("NOTICE: openssl is missing; the openssl check of the encrypted key is SKIPPED");
    }

    // Without the passphrase the daemon refuses to start and says where to put it.
    let Err(failure) = TestDaemon::try_start_in(dir) else {
        panic!("estca started without the passphrase of its encrypted key");
    };
    let (mut dir, failure) = *failure;
    assert!(
        failure
            .stderr
            .contains("issuing-ca.key is encrypted and no passphrase is configured")
            && failure.stderr.contains("ca.key_passphrase_credential"),
        "{}",
        failure.stderr
    );

    // A wrong passphrase in the systemd credential: refused, and the passphrase never shown.
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    let credential = private_file(
        &credentials.join("ca-key-passphrase"),
        "zebra-quartz-wrong\n",
    );
    dir.options.env.push((
        "CREDENTIALS_DIRECTORY".into(),
        credentials.to_str().unwrap().into(),
    ));
    let Err(failure) = TestDaemon::try_start_in(dir) else {
        panic!("estca started with a wrong passphrase");
    };
    let (dir, failure) = *failure;
    assert!(
        failure.stderr.contains("cannot decrypt") && failure.stderr.contains("ca-key-passphrase"),
        "{}",
        failure.stderr
    );
    assert!(
        !failure.stderr.contains("zebra-quartz"),
        "{}",
        failure.stderr
    );

    // The right passphrase in the credential: the daemon starts, issues, and does not warn.
    private_file(&credential, &format!("{PASSPHRASE}\n"));
    let daemon = TestDaemon::start_in(dir);
    daemon.dir().add_contract("5110");
    daemon.dir().add_account("nozawa1", "5110", "user");
    daemon
        .client()
        .enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    let log = daemon.stderr();
    assert!(!log.contains("NOT encrypted"), "{log}");
    assert!(!log.contains(PASSPHRASE), "{log}");
    eprintln!("encrypted issuing key: init refused without a passphrase, daemon refused without one and with a wrong one, started with the credential and issued");
}

#[test]
fn encrypt_key_and_decrypt_key_migrate_and_the_daemon_warns_about_a_plain_key() {
    let dir = dir_with(&[]);
    let out = estca(
        &dir,
        &["init", "--unencrypted"],
        &[("ESTCA_CA__CREATE_IF_MISSING", "false")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("NOT encrypted"), "{}", text(&out));
    assert_eq!(
        first_line(&dir.ca_dir().join("issuing-ca.key")),
        "-----BEGIN PRIVATE KEY-----"
    );

    // A plain key: the daemon starts and warns.
    let daemon = TestDaemon::start_in(dir);
    let log = daemon.stderr();
    assert!(
        log.contains("WARN") && log.contains("issuing CA key file is NOT encrypted"),
        "{log}"
    );
    let mut dir = daemon.stop();

    // encrypt-key needs a passphrase, then encrypts both files.
    let out = estca(&dir, &["ca", "encrypt-key"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no passphrase is configured"),
        "{}",
        text(&out)
    );
    let pass_file = private_file(&dir.path().join("passphrase"), &format!("{PASSPHRASE}\n"));
    let pass = [("ESTCA_CA__KEY_PASSPHRASE_FILE", pass_file.to_str().unwrap())];
    let out = estca(&dir, &["ca", "encrypt-key"], &pass);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("root-ca.key: encrypted") && report.contains("issuing-ca.key: encrypted"),
        "{report}"
    );
    for name in ["root-ca.key", "issuing-ca.key"] {
        assert_eq!(
            first_line(&dir.ca_dir().join(name)),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----"
        );
    }
    let again = estca(&dir, &["--json", "ca", "encrypt-key"], &pass);
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        json["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f[1] == "unchanged"),
        "{json}"
    );

    // The daemon starts on the encrypted key without warning.
    dir.options.env.push((
        "ESTCA_CA__KEY_PASSPHRASE_FILE".into(),
        pass_file.to_str().unwrap().into(),
    ));
    let daemon = TestDaemon::start_in(dir);
    assert!(
        !daemon.stderr().contains("NOT encrypted"),
        "{}",
        daemon.stderr()
    );
    let dir = daemon.stop();

    // decrypt-key writes plain PKCS#8 again, mode 0600.
    let out = estca(&dir, &["ca", "decrypt-key"], &pass);
    assert!(out.status.success(), "{}", text(&out));
    let key = dir.ca_dir().join("issuing-ca.key");
    assert_eq!(first_line(&key), "-----BEGIN PRIVATE KEY-----");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn the_development_ca_stays_unencrypted_and_the_log_says_so() {
    let dir = TestDir::new(Options::default());
    let daemon = TestDaemon::start_in(dir);
    let log = daemon.stderr();
    assert!(log.contains("created a DEVELOPMENT CA"), "{log}");
    assert!(
        log.contains("issuing CA key file is NOT encrypted") && log.contains("development=true"),
        "{log}"
    );
    assert_eq!(
        first_line(&daemon.dir().ca_dir().join("issuing-ca.key")),
        "-----BEGIN PRIVATE KEY-----"
    );
}
