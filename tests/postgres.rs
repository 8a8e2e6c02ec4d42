//! The daemon and the command line on the PostgreSQL backend: a real `estca serve` on a
//! database of the test server (`tests/common/postgres.rs`), `estca store migrate`, and the
//! failure at start when the database cannot be reached.
//!
//! Where the PostgreSQL server binaries are missing the tests say so and pass without
//! running, unless `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::process::Command;
use std::time::Duration;

use common::postgres::TestPostgres;
use common::*;

/// The environment that puts a daemon (or a command) on database `url`.
fn postgres_env(url: &str, password_file: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("ESTCA_STORE__BACKEND".into(), "postgres".into()),
        ("ESTCA_STORE__POSTGRES__URL".into(), url.into()),
        (
            "ESTCA_STORE__POSTGRES__PASSWORD_FILE".into(),
            password_file.display().to_string(),
        ),
    ]
}

#[tokio::test]
async fn a_daemon_on_postgres_enrolls_and_records_the_certificate_in_the_database() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let secrets = tempfile::tempdir().unwrap();
    let password_file = TestPostgres::password_file(secrets.path());
    let url = server.url(&server.database());
    let d = TestDaemon::start(Options {
        env: postgres_env(&url, &password_file),
        ..Options::default()
    });
    with_account(&d, "nozawa1", "5110");
    let der = d
        .client()
        .enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der), 1);
    d.dir().assert_at_most_one_active("nozawa1");

    // The record is in the database, not in the data directory.
    let config = estca::config::StoreConfig {
        postgres: estca::config::PostgresConfig {
            url,
            password_file: Some(password_file),
            ..Default::default()
        },
        backend: estca::config::StoreBackend::Postgres,
        ..store_config(&d.dir().path().join("data"))
    };
    let store = estca::store::open(&config, None).await.unwrap();
    let account = store
        .account(&"nozawa1".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let serial = account.current_certificate.unwrap();
    assert_eq!(serial_hex(&der), serial.to_string());
    assert_eq!(store.certificate(&serial).await.unwrap().unwrap().der, der);
    assert!(!d.dir().path().join("data/db").exists());
}

#[test]
fn store_migrate_creates_the_schema_once() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let dir = TestDir::new(Options::default());
    let secrets = tempfile::tempdir().unwrap();
    let password_file = TestPostgres::password_file(secrets.path());
    let url = server.url(&server.database());
    let migrate = || {
        let out = Command::new(estca_bin())
            .args(["store", "migrate", "--config"])
            .arg(&dir.config)
            .envs(postgres_env(&url, &password_file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = migrate();
    assert!(first.contains("from version 0 to 1"), "{first}");
    let again = migrate();
    assert!(again.contains("is up to date (version 1)"), "{again}");
}

#[test]
fn serve_exits_non_zero_naming_the_unreachable_database_and_not_its_password() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TestDir::new(Options::default());
    let password_file = dir.path().join("pg-password");
    std::fs::write(&password_file, "s3cret-pass\n").unwrap();
    let url = format!("postgres://estca@127.0.0.1:{port}/estca");
    let mut child = Command::new(estca_bin())
        .args(["serve", "--config"])
        .arg(&dir.config)
        .envs(postgres_env(&url, &password_file))
        .env("ESTCA_STORE__POSTGRES__CONNECT_TIMEOUT_SECS", "2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("serve gave up");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("cannot reach the PostgreSQL database {url}")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

/// Runs `estca store copy` with the configuration of `dir` and `env`; returns its output.
fn store_copy(dir: &TestDir, from: &str, to: &str, env: &[(String, String)]) -> String {
    let out = Command::new(estca_bin())
        .args(["store", "copy", "--from", from, "--to", to, "--config"])
        .arg(&dir.config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "store copy --from {from} --to {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn an_installation_moves_from_sled_to_postgres_and_back() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    // On sled, as installed: an ID with its certificate.
    let d = TestDaemon::start(Options::default());
    with_account(&d, "nozawa1", "5110");
    let der = d
        .client()
        .enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    let mut dir = d.stop();
    let data = dir.path().join("data");

    // Copied into an empty database, verified, and served from there.
    let secrets = tempfile::tempdir().unwrap();
    let password_file = TestPostgres::password_file(secrets.path());
    let url = server.url(&server.database());
    let env = postgres_env(&url, &password_file);
    let copied = store_copy(
        &dir,
        &format!("sled:{}", data.display()),
        &format!("postgres:{url}"),
        &env,
    );
    assert!(copied.contains("both export the same records"), "{copied}");
    dir.options.env = env.clone();
    let d = TestDaemon::start_in(dir);
    let account = d.dir().account("nozawa1");
    assert_eq!(account["certificate"]["serial"], serial_hex(&der).as_str());
    assert_eq!(account["certificate"]["status"], "active");
    d.dir().add_account("nozawa2", "5110", "user");
    d.client()
        .enroll("nozawa2", PASSWORD, &p256().csr_der)
        .await
        .assert_status(200);
    let dir = d.stop();

    // And back, into a new data directory of the other embedded engine.
    let back = tempfile::tempdir().unwrap();
    let copied = store_copy(
        &dir,
        &format!("postgres:{url}"),
        &format!("fjall:{}", back.path().display()),
        &env,
    );
    assert!(copied.contains("both export the same records"), "{copied}");
    // Into a store that is not empty: refused.
    let out = Command::new(estca_bin())
        .args(["store", "copy", "--from"])
        .arg(format!("postgres:{url}"))
        .arg("--to")
        .arg(format!("fjall:{}", back.path().display()))
        .arg("--config")
        .arg(&dir.config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
