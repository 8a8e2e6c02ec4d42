//! Crash consistency: the real daemon is SIGKILLed at random moments while clients enroll,
//! renew and get reissued for many IDs; after every kill the store on disk is opened directly
//! and checked before the daemon is started again on it.
//!
//! Checked after each kill: every certificate a client received (HTTP 200) is in the store,
//! byte for byte, with the right status (the ID's current one unrevoked, earlier ones revoked
//! as superseded); no serial appears twice; no ID has two unrevoked unexpired certificates;
//! each ID's CERTISSUEDNUM count equals the certificates recorded for it (numbered 1..n); and
//! history has an issuance entry for every certificate.
//!
//! `cargo test --test crash` makes 20 kills; `TEST_CRASH_KILLS=200 cargo test --release
//! --test crash -- --nocapture` is the long run.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use estca::model::{Outcome, Serial};
use estca::store::{HistoryQuery, Page, PageRequest};

const CONTRACT: &str = "5110";
const IDS: usize = 12;

/// A small deterministic generator, seeded per run (the seed is printed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Figures {
    answered: AtomicU64,
    issued: AtomicU64,
    failed: AtomicU64,
}

/// Certificates clients hold now, by ID: (PEM chain, PKCS#8 key).
type Holding = Arc<Mutex<HashMap<String, (Vec<u8>, Vec<u8>)>>>;
/// Every certificate a client received: (ID, DER).
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// One client per ID: enrolls with its password, renews with its certificate, and asks the
/// operator for a reissue, at random, until told to stop.
#[allow(clippy::too_many_arguments)]
async fn client_loop(
    id: String,
    port: u16,
    root: Vec<u8>,
    socket: PathBuf,
    seed: u64,
    holding: Holding,
    received: Received,
    figures: Arc<Figures>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng(seed | 1);
    let password_client = EstClient::new(port, &root, None);
    while !stop.load(Ordering::Relaxed) {
        let held = holding.lock().unwrap().get(&id).cloned();
        let key = p256();
        let op = rng.below(4);
        let answer = match (&held, op) {
            (Some((chain, k)), 0 | 1) => {
                let c = EstClient::new(port, &root, Some((chain, k)));
                c.http
                    .post(format!("{}/simplereenroll", c.base))
                    .header("content-type", "application/pkcs10")
                    .header("accept", "application/pem-certificate-chain")
                    .body(B64.encode(&key.csr_der))
                    .send()
                    .await
            }
            (Some(_), 2) => {
                let socket = socket.clone();
                let path = format!("/api/v1/accounts/{id}/certificate");
                let _ = tokio::task::spawn_blocking(move || {
                    admin_post(
                        &socket,
                        &path,
                        r#"{"action":"reissue"}"#,
                        Duration::from_secs(10),
                    )
                })
                .await;
                continue;
            }
            _ => {
                password_client
                    .http
                    .post(format!("{}/simpleenroll", password_client.base))
                    .basic_auth(&id, Some(PASSWORD))
                    .header("content-type", "application/pkcs10")
                    .header("accept", "application/pem-certificate-chain")
                    .body(B64.encode(&key.csr_der))
                    .send()
                    .await
            }
        };
        let Ok(response) = answer else {
            figures.failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let status = response.status().as_u16();
        let Ok(body) = response.text().await else {
            figures.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        figures.answered.fetch_add(1, Ordering::Relaxed);
        if status == 200 {
            let leaf = leaf_der(body.as_bytes());
            received.lock().unwrap().push((id.clone(), leaf));
            holding
                .lock()
                .unwrap()
                .insert(id.clone(), (body.into_bytes(), key.key_der));
            figures.issued.fetch_add(1, Ordering::Relaxed);
        } else {
            assert!(
                matches!(status, 403 | 409 | 503),
                "{id}: unexpected {status}: {body}"
            );
        }
    }
}

/// Opens the store the killed daemon left and lists every violation of the invariants.
async fn check_store(data: &Path, received: &[(String, Vec<u8>)]) -> (usize, Vec<String>) {
    let store = estca::store::open(&store_config(data), None)
        .await
        .expect("open the store after the kill");
    let now = time::OffsetDateTime::now_utc();
    let mut violations = vec![];
    let mut all_serials = BTreeSet::new();
    let mut certificates = 0;
    let accounts = Page::collect_all(1000, |page| store.accounts(None, page))
        .await
        .unwrap();
    let mut current = HashMap::new();
    for account in &accounts {
        current.insert(account.id.to_string(), account.current_certificate);
        let history = store
            .history(&HistoryQuery {
                account: Some(account.id.clone()),
                page: PageRequest::first(1_000_000),
                ..HistoryQuery::default()
            })
            .await
            .unwrap()
            .items;
        let issued: Vec<Serial> = history
            .iter()
            .filter_map(|e| match &e.event.outcome {
                Outcome::Ok { detail } => detail.strip_prefix("issued ")?.split_whitespace().next(),
                Outcome::Refused { .. } => None,
            })
            .map(|s| s.parse().unwrap())
            .collect();
        if issued.len() as u32 != account.issued_count {
            violations.push(format!(
                "{}: CERTISSUEDNUM count {} but {} issuances in history",
                account.id,
                account.issued_count,
                issued.len()
            ));
        }
        let mut numbers = vec![];
        let mut active = vec![];
        for serial in &issued {
            if !all_serials.insert(*serial) {
                violations.push(format!("serial {serial} appears twice"));
            }
            let Some(record) = store.certificate(serial).await.unwrap() else {
                violations.push(format!(
                    "{}: history names {serial}, the store has no record",
                    account.id
                ));
                continue;
            };
            certificates += 1;
            if record.account() != Some(&account.id) {
                violations.push(format!("{serial} is recorded for another holder"));
            }
            if let estca::model::Holder::Account { issued_num, .. } = record.holder {
                numbers.push(issued_num);
            }
            if record.revocation.is_none() && record.not_after > now {
                active.push(*serial);
            }
        }
        numbers.sort_unstable();
        if numbers != (1..=account.issued_count).collect::<Vec<_>>() {
            violations.push(format!(
                "{}: CERTISSUEDNUM values {numbers:?}, expected 1..={}",
                account.id, account.issued_count
            ));
        }
        if active.len() > 1 {
            violations.push(format!(
                "{}: {} active certificates {active:?}",
                account.id,
                active.len()
            ));
        }
        if let Some(serial) = active.first() {
            if account.current_certificate != Some(*serial) {
                violations.push(format!(
                    "{}: active {serial} is not the current certificate",
                    account.id
                ));
            }
        }
    }
    let mut received_serials = BTreeSet::new();
    for (id, der) in received {
        let serial: Serial = serial_hex(der).parse().unwrap();
        if !received_serials.insert(serial) {
            violations.push(format!("two clients received serial {serial}"));
        }
        if !all_serials.contains(&serial) {
            violations.push(format!(
                "{id}: received {serial}, which history does not record"
            ));
        }
        match store.certificate(&serial).await.unwrap() {
            None => violations.push(format!("{id}: received {serial}, which the store lost")),
            Some(record) => {
                if record.der != *der {
                    violations.push(format!(
                        "{id}: {serial} differs from what the client received"
                    ));
                }
                let is_current = current.get(id).copied().flatten() == Some(serial);
                let right = if is_current {
                    record.revocation.is_none()
                } else {
                    record
                        .revocation
                        .is_some_and(|r| r.reason == estca::model::RevocationReason::Superseded)
                };
                if !right {
                    violations.push(format!(
                        "{id}: {serial} (current: {is_current}) has revocation {:?}",
                        record.revocation
                    ));
                }
            }
        }
    }
    drop(store);
    (certificates, violations)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_loses_nothing() {
    let kills: usize = std::env::var("TEST_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = std::env::var("TEST_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash harness: {kills} kills, seed {seed} (TEST_CRASH_SEED to replay)");
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    // This test opens the killed daemon's store itself: what sled writes then must be as
    // private as what the daemon writes (it refuses database files others may read).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let daemon = TestDaemon::start(Options::default());
    daemon.dir().add_contract(CONTRACT);
    let ids: Vec<String> = (0..IDS).map(|i| format!("crash{i:02}")).collect();
    for id in &ids {
        daemon.dir().add_account(id, CONTRACT, "user");
    }
    let data = daemon.dir().path().join("data");
    let socket = daemon.dir().path().join("data").join("admin.sock");
    let root = daemon.dir().root_ca_pem();
    let holding = Arc::new(Mutex::new(HashMap::new()));
    let received = Arc::new(Mutex::new(Vec::new()));
    let figures = Arc::new(Figures::default());
    let mut all_violations = vec![];
    let mut daemon = Some(daemon);
    let mut certificates = 0;
    for kill in 0..kills {
        let d = daemon.take().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = ids
            .iter()
            .map(|id| {
                tokio::spawn(client_loop(
                    id.clone(),
                    d.port,
                    root.clone(),
                    socket.clone(),
                    rng.next(),
                    holding.clone(),
                    received.clone(),
                    figures.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + rng.below(900))).await;
        let dir = d.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.unwrap();
        }
        let snapshot = received.lock().unwrap().clone();
        let (n, violations) = check_store(&data, &snapshot).await;
        certificates = n;
        for v in &violations {
            eprintln!("kill {}: VIOLATION {v}", kill + 1);
        }
        all_violations.extend(violations);
        daemon = Some(TestDaemon::start_in(dir));
    }
    eprintln!(
        "crash harness: {} kills in {:.1?}; {} enrollment requests answered ({} certificates received by clients, {} requests cut off by a kill); {} certificates in the store; violations = {}",
        kills,
        started.elapsed(),
        figures.answered.load(Ordering::Relaxed),
        figures.issued.load(Ordering::Relaxed),
        figures.failed.load(Ordering::Relaxed),
        certificates,
        all_violations.len()
    );
    assert!(all_violations.is_empty(), "{all_violations:#?}");
    assert!(
        figures.issued.load(Ordering::Relaxed) >= kills as u64,
        "too few issuances to prove anything"
    );
}
