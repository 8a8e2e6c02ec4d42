//! The daemon and the command line on the PostgreSQL backend: a real `estca serve` on a
//! database of the test server (`tests/common/postgres.rs`), `estca store migrate` and
//! `estca store copy`, the failure at start when the database cannot be reached, and the
//! database lost and back while the daemon runs under load.
//!
//! Where the PostgreSQL server binaries are missing the tests say so and pass without
//! running, unless `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// A refusal that history cannot record (the database refuses every new `history` row: a
/// trigger, as a full disk or a broken table would) is still the refusal, never the store's
/// error: wrong passwords stay 401 and keep the source's failed-login tokens spent, so the
/// guess after the budget is 429 (were the store's error answered instead, the tokens would
/// be given back and guesses would be free while history fails), and that 429 too stays a
/// 429 (even for the right password). The guesses are still counted on the ID.
#[tokio::test]
async fn refusals_that_history_cannot_record_are_refused_all_the_same() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let secrets = tempfile::tempdir().unwrap();
    let password_file = TestPostgres::password_file(secrets.path());
    let database = server.database();
    let mut env = postgres_env(&server.url(&database), &password_file);
    env.push(("ESTCA_AUTH__MAX_FAILURES_PER_SOURCE".into(), "3".into()));
    let d = TestDaemon::start(Options {
        env,
        ..Options::default()
    });
    with_account(&d, "nozawa1", "5110");
    server.psql_in(
        &database,
        "CREATE FUNCTION refuse_history() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'history refused by the test'; END $$; \
         CREATE TRIGGER refuse_history BEFORE INSERT ON history \
         FOR EACH ROW EXECUTE FUNCTION refuse_history()",
    );
    let client = d.client();
    let csr = p256().csr_der;
    for _ in 0..3 {
        client
            .enroll("nozawa1", "guess-5f3a9c", &csr)
            .await
            .assert_status(401);
    }
    let throttled = client.enroll("nozawa1", PASSWORD, &csr).await;
    throttled.assert_error(429);
    assert!(
        throttled.headers.contains_key("retry-after"),
        "{throttled:?}"
    );
    assert_eq!(
        server
            .psql_in(
                &database,
                "SELECT failed_attempts FROM accounts WHERE id = 'nozawa1'"
            )
            .trim(),
        "3"
    );
    assert_eq!(
        server
            .psql_in(&database, "SELECT count(*) FROM history WHERE refused")
            .trim(),
        "0",
        "the trigger let a refusal through"
    );
    let log = d.wait_for_log("a refusal could not be recorded in history", 0);
    assert!(
        !log.contains("guess-5f3a9c"),
        "a password in the log:\n{log}"
    );
}

#[tokio::test]
async fn a_restart_on_an_existing_schema_logs_no_notice_from_the_database() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let secrets = tempfile::tempdir().unwrap();
    let password_file = TestPostgres::password_file(secrets.path());
    let mut env = postgres_env(&server.url(&server.database()), &password_file);
    // Info, where the driver logs the server's notices.
    env.push(("ESTCA_LOG__LEVEL".into(), "info".into()));
    let first = TestDaemon::start(Options {
        env,
        ..Options::default()
    });
    let dir = first.stop();
    // The schema exists now: the second start creates nothing, and says nothing about it.
    let again = TestDaemon::start_in(dir);
    let log = again.stderr();
    assert!(log.contains("estca ready"), "{log}");
    assert!(!log.contains("NOTICE"), "{log}");
    assert!(!log.contains("already exists"), "{log}");
    again.stop();
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
        let out = estca_command()
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
    // The newest version is the number of migrations (one file each, applied in order).
    let latest = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/postgres/migrations"),
    )
    .unwrap()
    .count();
    let first = migrate();
    assert!(
        first.contains(&format!("from version 0 to {latest}")),
        "{first}"
    );
    let again = migrate();
    assert!(
        again.contains(&format!("is up to date (version {latest})")),
        "{again}"
    );
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
    let mut child = estca_command()
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
    let out = estca_command()
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
    let out = estca_command()
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

/// The metrics listener of a daemon, from its ready line.
fn metrics_addr(daemon: &TestDaemon) -> String {
    daemon
        .stderr()
        .lines()
        .find(|l| l.contains("estca ready"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("metrics="))
                .map(str::to_owned)
        })
        .expect("metrics= in the ready line")
}

/// The status of `GET /readyz` (0 when the listener does not answer).
async fn readyz(metrics: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(metrics).await.ok()?;
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: estca\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.ok()?;
        answer.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// Polls `/readyz` until it answers `status`, for up to 30 seconds; how long it took.
async fn readyz_becomes(metrics: &str, status: u16) -> Duration {
    let started = std::time::Instant::now();
    while readyz(metrics).await != status {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/readyz never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// What a client is told while the daemon's database cannot be reached.
const STORE_UNAVAILABLE: &str =
    "the CA's database is unavailable; retry in a few seconds (the operator has been told in the log)";

/// Asserts that `answer` names nothing of the database: not its URL, host, port or user.
fn assert_no_database_details(answer: &str, url: &str, port: u16) {
    for detail in [
        url,
        "postgres://",
        &format!(":{port}"),
        &format!("{}@", common::postgres::PG_USER),
        "cannot reach",
        "store unavailable",
    ] {
        assert!(!answer.contains(detail), "{detail:?} in {answer}");
    }
}

/// `curl -si` of a simpleenroll on `daemon` with `user` (`ID:PASSWORD`): the raw answer.
fn curl_enroll(daemon: &TestDaemon, user: &str) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root.pem");
    std::fs::write(&root, daemon.dir().root_ca_pem()).unwrap();
    curl_raw(
        daemon,
        &root,
        "/.well-known/est/simpleenroll",
        &[
            "--user",
            user,
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            "AAAA",
        ],
    )
}

/// One GET of `path` over the daemon's admin socket (the operator's management API): the raw
/// answer.
fn admin_get(daemon: &TestDaemon, path: &str) -> String {
    use std::io::{Read, Write};
    let socket = daemon
        .stderr()
        .lines()
        .find(|l| l.contains("estca ready"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("admin_socket="))
                .map(std::path::PathBuf::from)
        })
        .expect("admin_socket= in the ready line");
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: estca\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_database_under_load_answers_503_and_service_resumes_by_itself() {
    // A server of this test's own: it is stopped and started again.
    let server = match TestPostgres::start() {
        Ok(server) => server,
        Err(why) => {
            skip(
                "this PostgreSQL test",
                &format!("no PostgreSQL test server: {why:?}"),
            );
            return;
        }
    };
    let secrets = tempfile::tempdir().unwrap();
    let password_file = TestPostgres::password_file(secrets.path());
    let url = server.url(&server.database());
    let d = TestDaemon::start(Options {
        env: postgres_env(&url, &password_file),
        ..Options::default()
    });
    let ids: Vec<String> = (0..8).map(|i| format!("outage{i}")).collect();
    d.dir().add_contract("5110");
    for id in &ids {
        d.dir().add_account(id, "5110", "user");
    }
    let metrics = metrics_addr(&d);
    assert_eq!(readyz(&metrics).await, 200);

    // Clients enroll (and, once they hold a certificate, are refused with 409) throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let received = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let retry_after = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let unavailable = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let clients: Vec<_> = ids
        .iter()
        .map(|id| {
            let (id, client) = (id.clone(), d.client());
            let (stop, statuses) = (stop.clone(), statuses.clone());
            let (received, retry_after) = (received.clone(), retry_after.clone());
            let unavailable = unavailable.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let answer = client.enroll(&id, PASSWORD, &p256().csr_der).await;
                    *statuses.lock().unwrap().entry(answer.status).or_default() += 1;
                    match answer.status {
                        200 => received
                            .lock()
                            .unwrap()
                            .push((id.clone(), answer.pkcs7_certificate())),
                        503 => {
                            if let Some(v) = answer
                                .headers
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                            {
                                retry_after.lock().unwrap().insert(v.to_owned());
                            }
                            unavailable
                                .lock()
                                .unwrap()
                                .insert(answer.body.trim_end().to_owned());
                        }
                        409 => {}
                        other => panic!("{id}: {other}: {}", answer.body),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The database goes away: /readyz fails, enrollments answer 503 with Retry-After.
    tokio::task::block_in_place(|| server.stop_server());
    let noticed = readyz_becomes(&metrics, 503).await;
    // What any client is told says only that the database is unavailable, never where it
    // is: an unauthenticated EST client (the sentence is also the status line), and the
    // management API.
    let est = tokio::task::block_in_place(|| curl_enroll(&d, "nobody:wrong"));
    assert!(
        est.starts_with(&format!("HTTP/1.1 503 {STORE_UNAVAILABLE}\r\n")),
        "{est}"
    );
    assert!(
        est.to_ascii_lowercase().contains("\r\nretry-after: 5\r\n"),
        "{est}"
    );
    let api = tokio::task::block_in_place(|| admin_get(&d, "/api/v1/contracts"));
    assert!(api.starts_with("HTTP/1.1 503"), "{api}");
    assert!(
        api.to_ascii_lowercase().contains("\r\nretry-after: 5\r\n"),
        "{api}"
    );
    assert!(
        api.contains(&format!("\"detail\":\"{STORE_UNAVAILABLE}\"")),
        "{api}"
    );
    for answer in [&est, &api] {
        assert_no_database_details(answer, &url, server.port());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // It comes back: service resumes without anyone touching the daemon.
    tokio::task::block_in_place(|| server.start_server());
    let resumed = readyz_becomes(&metrics, 200).await;
    // Every ID still without a certificate gets one now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let statuses = statuses.lock().unwrap().clone();
    eprintln!(
        "outage: /readyz failed {noticed:?} after the stop and recovered {resumed:?} after the start; answers {statuses:?}, Retry-After {:?}",
        retry_after.lock().unwrap()
    );
    assert!(statuses.get(&503).is_some_and(|n| *n > 0), "{statuses:?}");
    assert_eq!(
        *retry_after.lock().unwrap(),
        BTreeSet::from(["5".to_owned()])
    );
    assert_eq!(
        *unavailable.lock().unwrap(),
        BTreeSet::from([STORE_UNAVAILABLE.to_owned()])
    );
    // The operator's log says where the database is and why it failed (never the password).
    let log = d.stderr();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("the store's database is unavailable")
            && l.contains(&format!("cannot reach the database {url}"))),
        "{log}"
    );
    assert!(!log.contains(common::postgres::PG_PASSWORD), "{log}");
    assert_eq!(readyz(&metrics).await, 200);

    // Nothing half-committed: each ID has at most one active certificate, and every
    // certificate a client received is recorded as its current one.
    let received = received.lock().unwrap().clone();
    for id in &ids {
        let active = d.dir().assert_at_most_one_active(id);
        let theirs: Vec<_> = received.iter().filter(|(i, _)| i == id).collect();
        assert!(theirs.len() <= 1, "{id} received {}", theirs.len());
        if let Some((_, der)) = theirs.first() {
            assert_eq!(
                d.dir().account(id)["certificate"]["serial"],
                serial_hex(der).as_str()
            );
            assert_eq!(active.len(), 1);
        }
    }
    // After the outage, enrollment is served again for every ID that had none (409 only if
    // a commit whose answer the outage cut off did land).
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !received.iter().any(|(i, _)| i == *id))
        .collect();
    for id in missing {
        let status = d
            .client()
            .enroll(id, PASSWORD, &p256().csr_der)
            .await
            .status;
        assert!(matches!(status, 200 | 409), "{id}: {status}");
    }
    // And a new ID, created and enrolled after the outage.
    d.dir().add_account("afterwards", "5110", "user");
    d.client()
        .enroll("afterwards", PASSWORD, &p256().csr_der)
        .await
        .assert_status(200);
    d.stop();
    drop(server);
}
