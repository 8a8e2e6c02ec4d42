//! Three daemons on three ports sharing one PostgreSQL database (and one CA), under
//! concurrent enrollments, renewals, reissues and revocations spread across them for a few
//! dozen IDs. Afterwards: every ID has at most one active certificate, its CERTISSUEDNUMs are
//! 1..n without gaps, every certificate a client received is recorded byte for byte, serials
//! are unique, and OCSP on every daemon agrees with the store.
//!
//! `cargo test --test several_daemons` runs 1,000 operations (`TEST_OPERATIONS` to change).
//! Where the PostgreSQL server binaries are missing the test says so and passes without
//! running, unless `REQUIRE_ALL_TESTS` is set.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::postgres::TestPostgres;
use common::*;
use estca::model::Holder;
use estca::store::StoreRecord;

const CONTRACT: &str = "5110";
const IDS: usize = 24;
const DAEMONS: usize = 3;

/// A small deterministic generator (xorshift), one per client.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What a daemon's clients need: its HTTPS port and its admin socket.
#[derive(Clone)]
struct Endpoint {
    port: u16,
    socket: std::path::PathBuf,
}

#[derive(Default)]
struct Figures {
    operations: AtomicU64,
    by_status: Mutex<BTreeMap<String, u64>>,
}

impl Figures {
    fn count(&self, what: String) {
        *self.by_status.lock().unwrap().entry(what).or_default() += 1;
    }
}

/// Every certificate a client received: (ID, DER).
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// One client per ID, each operation on a daemon picked at random: enroll with the password,
/// renew with the certificate it holds, or have the operator order a reissue or revoke it,
/// until `total` operations are done among all clients.
async fn client(
    id: String,
    endpoints: Vec<Endpoint>,
    root: Vec<u8>,
    seed: u64,
    total: u64,
    received: Received,
    figures: Arc<Figures>,
) {
    let mut rng = Rng(seed | 1);
    let mut held: Option<(Vec<u8>, Vec<u8>)> = None;
    while figures.operations.fetch_add(1, Ordering::Relaxed) < total {
        let daemon = &endpoints[rng.below(DAEMONS as u64) as usize];
        let key = p256();
        let op = rng.below(10);
        let request = match (&held, op) {
            (Some(_), 0) | (Some(_), 1) => {
                let action = if op == 0 {
                    r#"{"action":"reissue"}"#
                } else {
                    r#"{"action":"revoke","reason":"keyCompromise"}"#
                };
                let socket = daemon.socket.clone();
                let path = format!("/api/v1/accounts/{id}/certificate");
                let status = tokio::task::spawn_blocking(move || {
                    admin_post(&socket, &path, action, Duration::from_secs(30))
                })
                .await
                .unwrap();
                figures.count(format!(
                    "{} {}",
                    if op == 0 { "reissue" } else { "revoke" },
                    status.map_or("failed".into(), |s| s.to_string())
                ));
                continue;
            }
            (Some((chain, k)), 2..=5) => {
                let c = EstClient::new(daemon.port, &root, Some((chain, k)));
                (
                    "renew",
                    c.http
                        .post(format!("{}/simplereenroll", c.base))
                        .header("content-type", "application/pkcs10")
                        .header("accept", "application/pem-certificate-chain")
                        .body(B64.encode(&key.csr_der))
                        .send()
                        .await,
                )
            }
            _ => {
                let c = EstClient::new(daemon.port, &root, None);
                (
                    "enroll",
                    c.http
                        .post(format!("{}/simpleenroll", c.base))
                        .basic_auth(&id, Some(PASSWORD))
                        .header("content-type", "application/pkcs10")
                        .header("accept", "application/pem-certificate-chain")
                        .body(B64.encode(&key.csr_der))
                        .send()
                        .await,
                )
            }
        };
        let (what, answer) = request;
        let Ok(response) = answer else {
            // A renewal with a certificate revoked meanwhile fails the TLS handshake.
            figures.count(format!("{what} failed"));
            held = None;
            continue;
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        figures.count(format!("{what} {status}"));
        match status {
            200 => {
                received
                    .lock()
                    .unwrap()
                    .push((id.clone(), leaf_der(body.as_bytes())));
                held = Some((body.into_bytes(), key.key_der));
            }
            403 | 409 | 503 => {}
            other => panic!("{id}: {what} answered {other}: {body}"),
        }
    }
}

/// Replaces the CA directory of `dir`'s configuration by `ca_dir` (the daemons share a CA).
fn share_ca(dir: &TestDir, ca_dir: &std::path::Path) {
    let text = std::fs::read_to_string(&dir.config).unwrap();
    let own = serde_json::to_string(dir.ca_dir().to_str().unwrap()).unwrap();
    let shared = serde_json::to_string(ca_dir.to_str().unwrap()).unwrap();
    assert!(text.contains(&own));
    std::fs::write(&dir.config, text.replace(&own, &shared)).unwrap();
}

/// What OCSP on the daemon whose revocation port is `http` says of `serial`: `good`,
/// `revoked` or something else, through `openssl ocsp`.
fn ocsp_status(http: std::net::SocketAddr, ca_dir: &std::path::Path, serial: &str) -> String {
    let out = Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(ca_dir.join("issuing-ca.pem"))
        .args(["-serial", &format!("0x{serial}"), "-url"])
        .arg(format!("http://{http}/ocsp"))
        .arg("-CAfile")
        .arg(ca_dir.join("root-ca.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("0x{serial}: ")))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| format!("no answer: {text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// Daemons sharing one database and one CA.
struct Shared {
    daemons: Vec<TestDaemon>,
    url: String,
    password_file: std::path::PathBuf,
    ca_dir: std::path::PathBuf,
    /// Holds the database password file.
    secrets: tempfile::TempDir,
}

impl Shared {
    /// Starts `n` daemons with `options` on a new database of `server`: the first creates the
    /// CA and the schema, the others share both.
    fn start(server: &TestPostgres, n: usize, options: Options) -> Self {
        let secrets = tempfile::tempdir().unwrap();
        let password_file = TestPostgres::password_file(secrets.path());
        let url = server.url(&server.database());
        let mut env = vec![
            ("ESTCA_STORE__BACKEND".to_owned(), "postgres".to_owned()),
            ("ESTCA_STORE__POSTGRES__URL".to_owned(), url.clone()),
            (
                "ESTCA_STORE__POSTGRES__PASSWORD_FILE".to_owned(),
                password_file.display().to_string(),
            ),
        ];
        env.extend(options.env.iter().cloned());
        let options = Options { env, ..options };
        let first = TestDaemon::start(options.clone());
        let ca_dir = first.dir().ca_dir();
        let mut daemons = vec![first];
        for _ in 1..n {
            let dir = TestDir::new(options.clone());
            share_ca(&dir, &ca_dir);
            daemons.push(TestDaemon::start_in(dir));
        }
        Self {
            daemons,
            url,
            password_file,
            ca_dir,
            secrets,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_database_keep_every_invariant() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let total: u64 = std::env::var("TEST_OPERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let shared = Shared::start(server, DAEMONS, Options::default());
    let Shared {
        daemons,
        url,
        password_file,
        ca_dir,
        secrets: _secrets,
    } = shared;
    daemons[0].dir().add_contract(CONTRACT);
    let ids: Vec<String> = (0..IDS).map(|i| format!("multi{i:02}")).collect();
    for (n, id) in ids.iter().enumerate() {
        // Accounts created through every daemon.
        daemons[n % DAEMONS].dir().add_account(id, CONTRACT, "user");
    }
    let endpoints: Vec<Endpoint> = daemons
        .iter()
        .map(|d| Endpoint {
            port: d.port,
            socket: d.dir().path().join("data/admin.sock"),
        })
        .collect();
    let root = daemons[0].dir().root_ca_pem();

    let started = Instant::now();
    let received: Received = Arc::default();
    let figures = Arc::new(Figures::default());
    let clients: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            tokio::spawn(client(
                id.clone(),
                endpoints.clone(),
                root.clone(),
                0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1),
                total,
                received.clone(),
                figures.clone(),
            ))
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let received = received.lock().unwrap().clone();
    eprintln!(
        "{total} operations on {DAEMONS} daemons in {:.1?}: {:?}; {} certificates received",
        started.elapsed(),
        figures.by_status.lock().unwrap(),
        received.len()
    );
    assert!(received.len() >= IDS, "too few issuances to prove anything");

    // The store, as the daemons left it.
    let config = estca::config::StoreConfig {
        backend: estca::config::StoreBackend::Postgres,
        postgres: estca::config::PostgresConfig {
            url,
            password_file: Some(password_file),
            ..Default::default()
        },
        ..store_config(&daemons[0].dir().path().join("data"))
    };
    let store = estca::store::open(&config, None).await.unwrap();
    let mut records = Vec::new();
    store
        .export(&mut |r| {
            records.push(r);
            Ok(())
        })
        .await
        .unwrap();
    let mut by_serial = BTreeMap::new();
    let mut numbers: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut active: BTreeMap<String, u32> = BTreeMap::new();
    let now = time::OffsetDateTime::now_utc();
    let mut issued_counts = BTreeMap::new();
    for record in &records {
        match record {
            StoreRecord::Certificate(c) => {
                assert!(by_serial.insert(c.serial, c.clone()).is_none());
                if let Holder::Account { id, issued_num, .. } = &c.holder {
                    numbers.entry(id.to_string()).or_default().push(*issued_num);
                    if c.is_active(now) {
                        *active.entry(id.to_string()).or_default() += 1;
                    }
                }
            }
            StoreRecord::Account(a) => {
                issued_counts.insert(a.id.to_string(), a.issued_count);
            }
            _ => {}
        }
    }
    for (id, count) in &active {
        assert!(*count <= 1, "{id} has {count} active certificates");
    }
    for (id, issued) in &issued_counts {
        let mut got = numbers.get(id).cloned().unwrap_or_default();
        got.sort_unstable();
        assert_eq!(
            got,
            (1..=*issued).collect::<Vec<u32>>(),
            "{id}'s CERTISSUEDNUMs"
        );
    }
    let mut seen = BTreeSet::new();
    for (id, der) in &received {
        let serial: estca::model::Serial = serial_hex(der).parse().unwrap();
        assert!(seen.insert(serial), "serial {serial} received twice");
        let record = by_serial
            .get(&serial)
            .unwrap_or_else(|| panic!("{id}: received {serial}, not recorded"));
        assert_eq!(&record.der, der, "{id}: {serial} recorded otherwise");
    }

    // OCSP on every daemon agrees with the store, within seconds of the last revocation:
    // each ID's last two certificates.
    let mut sample: BTreeMap<String, Vec<&estca::model::CertificateRecord>> = BTreeMap::new();
    for c in by_serial.values() {
        if let Holder::Account { id, .. } = &c.holder {
            sample.entry(id.to_string()).or_default().push(c);
        }
    }
    let listeners: Vec<std::net::SocketAddr> = daemons
        .iter()
        .map(|d| d.ready_addr("revocation_http"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    for certificates in sample.values_mut() {
        certificates.sort_by_key(|c| match c.holder {
            Holder::Account { issued_num, .. } => std::cmp::Reverse(issued_num),
            _ => std::cmp::Reverse(0),
        });
        for c in certificates.iter().take(2) {
            let expected = if c.revocation.is_some() {
                "revoked"
            } else {
                "good"
            };
            for http in &listeners {
                loop {
                    let said = ocsp_status(*http, &ca_dir, &c.serial.to_string());
                    if said == expected {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "OCSP at {http} says {said} of {}, the store {expected}",
                        c.serial
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
    drop(store);
    for d in daemons {
        d.stop();
    }
}

/// A source address of the client's own on loopback.
fn source(i: u8) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 9, 1 + i))
}

/// The per-source limit on failed logins holds across daemons: it is kept in the database,
/// not in each daemon's memory. 40 wrong guesses sent at once from one address, half to each
/// of two daemons, with a budget of 6: exactly 6 are checked (401) among both, the rest are
/// refused (429); kept in memory only, each daemon would check 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_fails_at_most_its_budget_across_two_daemons() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let budget = 6;
    let shared = Shared::start(
        server,
        2,
        Options {
            env: vec![
                (
                    "ESTCA_AUTH__MAX_FAILURES_PER_SOURCE".into(),
                    budget.to_string(),
                ),
                ("ESTCA_AUTH__FAILURE_WINDOW_SECS".into(), "3600".into()),
            ],
            max_concurrent_hashes: Some(1),
            max_queued_hashes: Some(128),
            ..Options::default()
        },
    );
    let daemons = &shared.daemons;
    daemons[0].dir().add_contract(CONTRACT);
    daemons[0].dir().add_account("shared1", CONTRACT, "user");
    let root = daemons[0].dir().root_ca_pem();
    let clients: Vec<EstClient> = daemons
        .iter()
        .map(|d| EstClient::from_source(d.port, &root, source(0)))
        .collect();
    let csr = p256().csr_der;
    let start = Arc::new(tokio::sync::Barrier::new(40));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (client, start, csr) = (clients[i % 2].clone(), start.clone(), csr.clone());
            tokio::spawn(async move {
                start.wait().await;
                // Unknown IDs, so that no ID is locked by the guesses.
                client
                    .enroll(&format!("nobody{i}"), "wrong password", &csr)
                    .await
            })
        })
        .collect();
    let mut by_status = BTreeMap::<u16, usize>::new();
    for t in tasks {
        let answer = t.await.unwrap();
        if answer.status == 429 {
            answer.assert_error(429);
            assert!(answer.headers.contains_key("retry-after"));
        }
        *by_status.entry(answer.status).or_default() += 1;
    }
    eprintln!("40 guesses from one address on two daemons, budget {budget}: {by_status:?}");
    assert_eq!(
        by_status.get(&401).copied(),
        Some(budget),
        "exactly the budget is checked among both daemons: {by_status:?}"
    );
    assert_eq!(
        by_status.get(&429).copied(),
        Some(40 - budget),
        "{by_status:?}"
    );
    // The right password from that address is refused on both until the budget refills;
    // another address enrolls.
    for client in &clients {
        client
            .enroll("shared1", PASSWORD, &csr)
            .await
            .assert_error(429);
    }
    EstClient::from_source(daemons[1].port, &root, source(1))
        .enroll("shared1", PASSWORD, &csr)
        .await
        .assert_status(200);
}
