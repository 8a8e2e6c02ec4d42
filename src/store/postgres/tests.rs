//! What the conformance suite cannot express: several store handles on one database, as
//! several daemons behind a load balancer, and the database's own guarantees and failures.
//! Each test skips (passes without running) where no PostgreSQL test server can be had.

use std::sync::Arc;
use std::time::Duration;

use super::harness::TestPostgres;
use super::{PostgresStore, TestDatabase};
use crate::config::PostgresConfig;
use crate::model::{CertificateChoice, EventKind, Revocation, RevocationReason};
use crate::store::conformance::fixtures::*;
use crate::store::{
    AccountChange, AccountEdit, PasswordAttempt, RaStore, RevocationStore, StoreError, StoreReads,
    SyncMode,
};

/// A new database with contract 5110 and ID nozawa1, and two handles on it ("daemons").
async fn two_daemons() -> Option<(TestDatabase, PostgresStore, PostgresStore)> {
    TestPostgres::shared()?;
    let db = TestDatabase::new();
    let a = db.open().await;
    let b = db.open().await;
    a.create_contract(
        contract("5110"),
        event(EventKind::ContractCreate, None, Some("5110"), 0),
    )
    .await
    .unwrap();
    b.create_account(
        account("nozawa1", "5110"),
        event(EventKind::AccountCreate, Some("nozawa1"), Some("5110"), 1),
    )
    .await
    .unwrap();
    Some((db, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_issuances_on_two_daemons_let_exactly_one_through() {
    let Some((_db, a, b)) = two_daemons().await else {
        return;
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    for round in 0..5u8 {
        let version = a.account(&id("nozawa1")).await.unwrap().unwrap().version;
        let current = a
            .account(&id("nozawa1"))
            .await
            .unwrap()
            .unwrap()
            .current_certificate;
        let mut tasks = Vec::new();
        for (n, store) in [&a, &b, &a, &b].into_iter().enumerate() {
            let store = Arc::clone(store);
            let s = 10 * round + n as u8 + 1;
            tasks.push(tokio::spawn(async move {
                issue(
                    &*store,
                    version,
                    record(s, "nozawa1", u32::from(round) + 1, s, 100),
                    current,
                )
                .await
            }));
        }
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
    let account = b.account(&id("nozawa1")).await.unwrap().unwrap();
    assert_eq!((account.issued_count, account.version), (5, 5));
    // Exactly one certificate of the ID is current, and it is the account's.
    let client = a.client().await.unwrap();
    let current: Vec<Vec<u8>> = client
        .query(
            "SELECT serial FROM certificates WHERE account_id = 'nozawa1' AND is_current",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        current,
        vec![account.current_certificate.unwrap().as_bytes().to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_logins_are_counted_across_daemons_up_to_the_limit() {
    let Some((_db, a, b)) = two_daemons().await else {
        return;
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for n in 0..24 {
        let store = Arc::clone(if n % 2 == 0 { &a } else { &b });
        tasks.push(tokio::spawn(async move {
            store
                .count_password_attempt(&id("nozawa1"), 5)
                .await
                .unwrap()
        }));
    }
    let mut counted = 0;
    for task in tasks {
        if let PasswordAttempt::Counted(_) = task.await.unwrap() {
            counted += 1;
        }
    }
    assert_eq!(counted, 5);
    // The lock decided on one daemon holds on the other.
    let stored = a.account(&id("nozawa1")).await.unwrap().unwrap();
    a.update_account(AccountChange {
        id: id("nozawa1"),
        expected_version: stored.version,
        edits: vec![AccountEdit::LockAtFailures(5)],
        revoke: None,
        events: vec![],
    })
    .await
    .unwrap();
    assert!(matches!(
        b.count_password_attempt(&id("nozawa1"), 5).await.unwrap(),
        PasswordAttempt::OverLimit(account) if account.locked
    ));
    assert!(
        b.clear_password_attempts(&id("nozawa1"))
            .await
            .unwrap()
            .locked
    );
}

/// Waits up to five seconds for `feed` to change.
async fn changes(feed: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    tokio::time::timeout(Duration::from_secs(5), feed.changed())
        .await
        .is_ok_and(|r| r.is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_on_one_daemon_reaches_the_feed_of_the_other_also_after_a_reconnect() {
    let Some((_db, a, b)) = two_daemons().await else {
        return;
    };
    let mut feed_b = b.revocations();
    issue(&a, 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    issue(&a, 1, record(2, "nozawa1", 2, 2, 200), Some(serial(1)))
        .await
        .unwrap();
    assert!(changes(&mut feed_b).await, "the supersession reached b");
    feed_b.borrow_and_update();

    // b's listening connection is cut (a failover, a restart of the database): it listens
    // again and has its subscribers re-read, then hears a's revocations again.
    let client = a.client().await.unwrap();
    let cut = client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cut, 2, "the listeners of a and b");
    assert!(changes(&mut feed_b).await, "b re-reads after reconnecting");
    feed_b.borrow_and_update();
    a.update_account(AccountChange {
        id: id("nozawa1"),
        expected_version: 2,
        edits: vec![AccountEdit::Choose(CertificateChoice::Revoked)],
        revoke: Some((
            serial(2),
            Revocation {
                at: at(300),
                reason: RevocationReason::KeyCompromise,
            },
        )),
        events: vec![],
    })
    .await
    .unwrap();
    assert!(changes(&mut feed_b).await, "the revoke reached b");
    let revoked = b.certificate(&serial(2)).await.unwrap().unwrap();
    assert_eq!(
        revoked.revocation.map(|r| r.reason),
        Some(RevocationReason::KeyCompromise)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crl_numbers_strictly_increase_across_daemons() {
    let Some((_db, a, b)) = two_daemons().await else {
        return;
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for n in 0..20 {
        let store = Arc::clone(if n % 2 == 0 { &a } else { &b });
        tasks.push(tokio::spawn(async move {
            let first = store.next_crl_number(0).await.unwrap();
            let second = store.next_crl_number(0).await.unwrap();
            assert!(second > first, "{first} then {second}");
            [first, second]
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>());
}

/// A CRL's read waits for the number another daemon is drawing: with the counter's row held
/// (as a daemon building a CRL holds it), `revoked_for_crl` does not read; a revocation
/// committed meanwhile is in what it reads once the row is let go, and its number comes
/// after the other daemon's. Reading first and drawing after (without the lock) would have
/// read before the revocation and drawn the higher number all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crl_read_waits_for_the_number_another_daemon_is_drawing() {
    let Some((_db, a, b)) = two_daemons().await else {
        return;
    };
    issue(&a, 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    let mut other_daemon = a.client().await.unwrap();
    let drawing = other_daemon.transaction().await.unwrap();
    let held = drawing
        .query_one(
            "SELECT value FROM counters WHERE name = 'crl_number' FOR UPDATE",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>("value");
    let reading = tokio::spawn(async move { b.revoked_for_crl(0).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reading.is_finished(), "the read waits for the row");
    a.update_account(AccountChange {
        id: id("nozawa1"),
        expected_version: 1,
        edits: vec![AccountEdit::Choose(CertificateChoice::Revoked)],
        revoke: Some((
            serial(1),
            Revocation {
                at: at(200),
                reason: RevocationReason::KeyCompromise,
            },
        )),
        events: vec![],
    })
    .await
    .unwrap();
    drawing
        .execute(
            "UPDATE counters SET value = value + 1 WHERE name = 'crl_number'",
            &[],
        )
        .await
        .unwrap();
    drawing.commit().await.unwrap();
    let (revoked, number) = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        revoked.iter().map(|r| r.serial).collect::<Vec<_>>(),
        [serial(1)]
    );
    assert_eq!(number, u64::try_from(held).unwrap() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_a_second_current_certificate_for_an_id() {
    let Some((_db, a, _b)) = two_daemons().await else {
        return;
    };
    issue(&a, 0, record(1, "nozawa1", 1, 1, 100), None)
        .await
        .unwrap();
    issue(&a, 1, record(2, "nozawa1", 2, 2, 200), Some(serial(1)))
        .await
        .unwrap();
    // A bug (or a hand-made UPDATE) that made the old one current again is refused by the
    // partial unique index.
    let client = a.client().await.unwrap();
    let refused = client
        .execute(
            "UPDATE certificates SET is_current = true WHERE serial = $1",
            &[&&serial(1).as_bytes()[..]],
        )
        .await
        .unwrap_err();
    assert_eq!(
        super::unique_violation(&refused),
        Some("one_current_certificate_per_account")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_build_is_refused() {
    if TestPostgres::shared().is_none() {
        return;
    }
    let db = TestDatabase::new();
    let store = db.open().await;
    let client = store.client().await.unwrap();
    client
        .execute("INSERT INTO estca_schema (version) VALUES (99)", &[])
        .await
        .unwrap();
    drop(client);
    drop(store);
    let refused = PostgresStore::open(&db.config, SyncMode::EveryWrite)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(refused.contains("version 99, newer"), "{refused}");
    // Migrating again changes nothing and is not refused.
    let db = TestDatabase::new();
    let first = super::migrate_only(&db.config).await.unwrap();
    let again = super::migrate_only(&db.config).await.unwrap();
    assert_eq!((first.from, first.to), (0, super::migrate::SCHEMA_VERSION));
    assert_eq!(
        (again.from, again.to),
        (
            super::migrate::SCHEMA_VERSION,
            super::migrate::SCHEMA_VERSION
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_would_lose_commits_is_refused() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let db = TestDatabase::new();
    let name = db.config.url.rsplit('/').next().unwrap().to_owned();
    server.psql(&format!(
        "ALTER DATABASE {name} SET synchronous_commit = off"
    ));
    let refused = PostgresStore::open(&db.config, SyncMode::EveryWrite)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(refused.contains("synchronous_commit = off"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_off_is_refused_with_a_fix_that_postgresql_accepts() {
    // A server of this test's own (fsync is server-wide), fsync from its configuration files.
    let Some(server) = TestPostgres::or_skip(TestPostgres::start_with_fsync_from_config()) else {
        return;
    };
    let name = server.database();
    let dir = tempfile::tempdir().unwrap();
    let config = PostgresConfig {
        url: server.url(&name),
        password_file: Some(TestPostgres::password_file(dir.path())),
        ..PostgresConfig::default()
    };
    server.psql("ALTER SYSTEM SET fsync = off");
    server.reload("fsync", "off");
    for mode in [SyncMode::EveryWrite, SyncMode::Deferred] {
        let refused = PostgresStore::open(&config, mode)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("has fsync = off"), "{refused}");
        assert!(refused.contains("ALTER SYSTEM SET fsync = on"), "{refused}");
        assert!(refused.contains("pg_reload_conf()"), "{refused}");
        // What the message said before: PostgreSQL refuses it for fsync.
        assert!(!refused.contains("ALTER ROLE"), "{refused}");
    }
    for refused_by_postgresql in [
        format!("ALTER DATABASE {name} SET fsync = on"),
        format!("ALTER ROLE {} SET fsync = on", super::harness::PG_USER),
    ] {
        let error = server.try_psql(&refused_by_postgresql).unwrap_err();
        assert!(error.contains("cannot be changed now"), "{error}");
    }
    // The fix the message gives, followed to the letter, is accepted and the store opens.
    server.psql("ALTER SYSTEM SET fsync = on");
    server.reload("fsync", "on");
    PostgresStore::open(&config, SyncMode::EveryWrite)
        .await
        .expect("fsync on again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_an_existing_schema_leaves_the_sessions_notices_as_they_were() {
    if TestPostgres::shared().is_none() {
        return;
    }
    let db = TestDatabase::new();
    drop(db.open().await);
    // A second start: the schema exists; the migration's notices are off for its transaction
    // only (the daemon's log shows no NOTICE: `tests/postgres.rs`).
    let store = db.open().await;
    let client = store.client().await.unwrap();
    let level: String = client
        .query_one("SHOW client_min_messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(level, "notice");
}

#[tokio::test]
async fn an_unreachable_database_is_named_by_its_host_and_never_by_its_password() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("pw");
    std::fs::write(&password_file, "s3cret-pass\n").unwrap();
    let config = PostgresConfig {
        url: format!("postgres://estca@127.0.0.1:{port}/estca"),
        password_file: Some(password_file),
        connect_timeout_secs: 2,
        ..PostgresConfig::default()
    };
    let started = std::time::Instant::now();
    let refused = PostgresStore::open(&config, SyncMode::EveryWrite)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains(&format!(
            "cannot reach the PostgreSQL database postgres://estca@127.0.0.1:{port}/estca"
        )),
        "{refused}"
    );
    assert!(!refused.contains("s3cret"), "{refused}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_test_server_is_stopped_and_its_directory_removed_when_its_pipe_closes() {
    // What happens when a test process ends, however it ends: its end of the pipe closes.
    let Some(server) = TestPostgres::or_skip(TestPostgres::start()) else {
        return;
    };
    let dir = server.directory().to_owned();
    assert!(dir.join("data").is_dir());
    server.close_pipe();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while dir.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} remains",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_ca_file_connections_are_tls_and_the_server_is_verified() {
    let Some(server) = TestPostgres::or_skip(TestPostgres::start_tls()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = PostgresConfig {
        url: server.url(&server.database()),
        password_file: Some(TestPostgres::password_file(dir.path())),
        ca_file: Some(server.directory().join("ca.pem")),
        ..PostgresConfig::default()
    };
    let store = PostgresStore::open(&config, SyncMode::EveryWrite)
        .await
        .unwrap();
    let client = store.client().await.unwrap();
    let encrypted = client
        .query_one(
            "SELECT count(*) FILTER (WHERE ssl), count(*) FROM pg_stat_ssl \
             JOIN pg_stat_activity USING (pid) WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    let (tls, all): (i64, i64) = (encrypted.get(0), encrypted.get(1));
    assert!(all >= 2, "the pool's and the listener's connections");
    assert_eq!(tls, all, "every connection is TLS");
    drop(client);
    drop(store);

    // A CA that did not issue the server's certificate: refused, saying why.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_pem = dir.path().join("other-ca.pem");
    std::fs::write(&other_pem, other.self_signed(&other_key).unwrap().pem()).unwrap();
    let refused = PostgresStore::open(
        &PostgresConfig {
            ca_file: Some(other_pem),
            ..config.clone()
        },
        SyncMode::EveryWrite,
    )
    .await
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        refused.contains("cannot reach the PostgreSQL database"),
        "{refused}"
    );
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
}
