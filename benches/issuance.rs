//! Issuance microbenchmarks (`cargo bench --bench issuance`): the irreducible parts of one
//! enrollment, measured one by one with criterion.
//!
//! - the CSR check (parse, key classification, signature) for ECDSA P-256 and RSA-2048;
//! - building and signing one end-entity certificate with the issuing CA (P-256);
//! - the PKCS#7 certs-only encoding of the answer;
//! - one issuance in the sled store (the default backend), in memory (`store_commit`:
//!   `commit_issuance` on a store opened with `SyncMode::Deferred`, the CPU part) and durable
//!   (`store_commit_flush`: `commit_issuance` returning once `fdatasync` of the log is done,
//!   one sync per issuance: nothing to share it with here); the same on the fjall backend
//!   (`store_commit_fjall`, `store_commit_flush_fjall`: its journal synced), with the
//!   default `store.cache_mib`;
//! - one Argon2id verification at the default parameters (`config/defaults.toml`);
//! - a client's side of an enrollment as `estca-bench populate` plays it: a fresh P-256 key
//!   and a CSR for it (`p256_key_and_csr`);
//! - the server's side of one full TLS 1.3 handshake with a client certificate, in memory
//!   (`tls13_mutual_handshake_server`, see [`handshake`]): what a renewal's new connection
//!   costs before its request is read.
//!
//! At the end it sums them into the CPU cost floor of one enrollment and writes it to
//! `<criterion dir>/issuance-floor.json` (the criterion dir is `$CRITERION_HOME`, else
//! `$CARGO_TARGET_DIR/criterion`, else `target/criterion`), where `estca-bench` reads it:
//!
//! - `floor_reenroll_ns` = CSR P-256 + sign + PKCS#7 + store commit in memory (CPU; the
//!   sync is I/O, shared by concurrent issuances through group commit);
//! - `durable_one_at_a_time_reenroll_ns` = the same with the durable commit;
//! - `floor_enroll_ns` = `floor_reenroll_ns` + one Argon2id verification;
//! - `floor_reenroll_fjall_ns`: `floor_reenroll_ns` with fjall's commit in place of sled's
//!   (when the fjall benchmarks ran);
//! - `floor_renewal_connection_ns` (and `_fjall_ns`) = `floor_reenroll_ns` + the server's
//!   handshake: a renewal as `estca-bench run -s simplereenroll` drives it, less the TCP
//!   connection, the HTTP exchange and the reserved serial;
//! - `floor_populate_ns` (and `_fjall_ns`) = a key and CSR + CSR P-256 + sign + store commit:
//!   one ID of `estca-bench populate`, less the account's creation and the reserved serial;
//!   `populate_bound_ids_per_s` (and `_fjall`) is what the machine's cores could load at
//!   that cost if nothing else ran.

mod common;
#[path = "issuance/handshake.rs"]
mod handshake;

use std::cell::Cell;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use criterion::Criterion;
use time::{Duration, OffsetDateTime};

use estca::ca::{validate_csr, CertificateAuthority, EndEntityRequest};
use estca::model::{CertificateRecord, EventKind, Holder, KeyFingerprint, Role, Serial};
use estca::store::{FjallStore, NewCertificate, RaStore, ReservedSerial, SledStore, SyncMode};

/// The daemon's allocator (see `src/main.rs`), so that the parts cost here what they cost in
/// `estca serve`: sled and the DER encoders allocate on every call, and the system allocator
/// alone made the store commit about a fifth slower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The benchmarks whose means make up the floor, as criterion names them in group `issuance`.
const PARTS: &[&str] = &[
    "csr_p256",
    "csr_rsa2048",
    "sign_certificate",
    "pkcs7_certs_only",
    "store_commit",
    "store_commit_flush",
    "argon2id_verify",
    "p256_key_and_csr",
    "tls13_mutual_handshake_server",
];

/// Benchmarks reported beside the floor when they ran: the other backend's commits.
const OTHER_BACKEND: &[&str] = &["store_commit_fjall", "store_commit_flush_fjall"];

/// The store backend a commit benchmark runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sled,
    Fjall,
}

fn ca(dir: &std::path::Path) -> CertificateAuthority {
    let config = common::ca_config(dir);
    CertificateAuthority::init(&config, None).expect("init the CA");
    CertificateAuthority::load(&config, "{id} {contract}").expect("load the CA")
}

fn p256_csr() -> Vec<u8> {
    p256_key_and_csr().1
}

/// A fresh P-256 key (PKCS#8 DER) and a CSR for it naming `CN=bench`: what a client makes
/// before it enrolls, and `estca-bench populate` for every ID.
fn p256_key_and_csr() -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bench");
    let csr = params.serialize_request(&key).expect("CSR").der().to_vec();
    (key.serialize_der(), csr)
}

/// A store of `backend` with contract `5110` and account `bench`, issued nothing yet, in the
/// directory `name` of `dir`.
fn store(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    name: &str,
    backend: Backend,
    mode: SyncMode,
) -> Box<dyn RaStore> {
    let path = dir.join(name);
    let store: Box<dyn RaStore> = match backend {
        Backend::Sled => Box::new(SledStore::open_with(&path, mode).expect("open the store")),
        Backend::Fjall => {
            let cache = u64::from(common::default_config().store.cache_mib) * 1024 * 1024;
            Box::new(FjallStore::open_with(&path, cache, mode).expect("open the store"))
        }
    };
    let now = OffsetDateTime::now_utc();
    rt.block_on(async {
        common::create_bench_account(store.as_ref(), now).await;
    });
    store
}

/// The `n`th issuance (0-based) to account `bench` with the serial `serial` (reserved):
/// superseding the one before, like a renewal; a real certificate's size.
fn issuance(n: u64, serial: Serial, previous: Option<Serial>, der: &[u8]) -> NewCertificate {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&n.to_be_bytes());
    let not_before = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("time");
    NewCertificate {
        expected_version: n,
        supersedes: previous,
        choice: estca::model::CertificateChoice::Continue,
        record: CertificateRecord {
            serial,
            holder: Holder::Account {
                id: "bench".parse().expect("id"),
                contract: "5110".parse().expect("code"),
                role: Role::User,
                issued_num: u32::try_from(n + 1).expect("count"),
            },
            subject: "C=JP, O=Bench, OU=Bench Issuing, OU=USERTYPE - 2, OU=CERTISSUEDNUM - 1, CN=bench 5110".into(),
            not_before,
            not_after: not_before + Duration::days(365),
            key: KeyFingerprint(key),
            revocation: None,
            der: der.to_vec(),
        },
        event: common::event(EventKind::Reenroll),
    }
}

/// Times `iters` issuances on one shared store, each durable when it returns.
fn time_issuances(
    rt: &tokio::runtime::Runtime,
    store: &dyn RaStore,
    next: &Cell<(u64, Option<Serial>)>,
    der: &[u8],
    iters: u64,
) -> StdDuration {
    // Serials are reserved and records built outside the timed part: the RA does that work
    // in any case.
    let (first, mut previous) = next.get();
    let mut batch = Vec::new();
    for i in 0..iters {
        let reserved: ReservedSerial = rt
            .block_on(store.reserve_serial(Serial::random(), OffsetDateTime::now_utc()))
            .expect("reserve");
        batch.push(issuance(first + i, reserved.serial(), previous, der));
        previous = Some(reserved.serial());
    }
    next.set((first + iters, previous));
    rt.block_on(async {
        let start = Instant::now();
        for one in batch {
            store.commit_issuance(one).await.expect("issue");
        }
        start.elapsed()
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let ca = ca(dir.path());
    let sign_store = SledStore::open(&dir.path().join("serials")).expect("open a store");

    let p256 = p256_csr();
    let rsa = include_bytes!("data/rsa2048.csr.der");
    let key = validate_csr(&p256).expect("P-256 CSR");
    validate_csr(rsa).expect("RSA-2048 CSR");
    let holder = Holder::Account {
        id: "nozawa1".parse().expect("id"),
        contract: "5110".parse().expect("code"),
        role: Role::User,
        issued_num: 1,
    };
    let now = OffsetDateTime::now_utc();
    let reserved = rt
        .block_on(sign_store.reserve_serial(Serial::random(), now))
        .expect("reserve");
    let request = EndEntityRequest {
        serial: &reserved,
        holder: &holder,
        not_before: now,
        key: &key,
        hosts: &[],
    };
    let signed = ca.sign_end_entity(&request).expect("sign");

    let mut group = c.benchmark_group("issuance");
    group.bench_function("csr_p256", |b| {
        b.iter(|| validate_csr(black_box(&p256)).expect("valid"))
    });
    group.bench_function("csr_rsa2048", |b| {
        b.iter(|| validate_csr(black_box(rsa)).expect("valid"))
    });
    group.bench_function("sign_certificate", |b| {
        // A serial reserved per signature, outside the timed part.
        b.iter_batched(
            || {
                rt.block_on(sign_store.reserve_serial(Serial::random(), now))
                    .expect("reserve")
            },
            |serial| {
                ca.sign_end_entity(black_box(&EndEntityRequest {
                    serial: &serial,
                    ..request.clone()
                }))
                .expect("sign")
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("p256_key_and_csr", |b| b.iter(p256_key_and_csr));
    let endpoints = handshake::Endpoints::new();
    group.bench_function("tls13_mutual_handshake_server", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| endpoints.server_handshake_time()).sum())
    });
    group.bench_function("pkcs7_certs_only", |b| {
        b.iter(|| estca::ca::pkcs7::certs_only(&[black_box(&signed.der)]).expect("encode"))
    });

    // In memory: the store's own work, syncs deferred (as a bulk load does); sled (the
    // default, whose names the floor uses), then fjall.
    for (name, backend) in [
        ("store_commit", Backend::Sled),
        ("store_commit_fjall", Backend::Fjall),
    ] {
        let memory = store(&rt, dir.path(), name, backend, SyncMode::Deferred);
        let next = Cell::new((0u64, None));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| time_issuances(&rt, &*memory, &next, &signed.der, iters))
        });
    }

    // Durable: each commit returns once the log is synced to disk, as in the daemon.
    group.sample_size(20);
    group.measurement_time(StdDuration::from_secs(10));
    for (name, backend) in [
        ("store_commit_flush", Backend::Sled),
        ("store_commit_flush_fjall", Backend::Fjall),
    ] {
        let durable = store(&rt, dir.path(), name, backend, SyncMode::EveryWrite);
        let next = Cell::new((0u64, None));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| time_issuances(&rt, &*durable, &next, &signed.der, iters))
        });
    }

    // Argon2id at the default parameters, exactly as the daemon verifies.
    let defaults = common::default_config();
    let params = argon2::Params::new(
        defaults.auth.argon2_memory_kib,
        defaults.auth.argon2_iterations,
        defaults.auth.argon2_parallelism,
        None,
    )
    .expect("Argon2 parameters");
    let hash = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut rand_core::OsRng);
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"correct horse battery", &salt)
            .expect("hash")
            .to_string()
    };
    group.bench_function("argon2id_verify", |b| {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        b.iter(|| {
            let parsed = PasswordHash::new(&hash).expect("PHC");
            argon2::Argon2::default()
                .verify_password(black_box(b"correct horse battery"), &parsed)
                .is_ok()
        })
    });
    group.finish();
}

/// Where criterion writes its results.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target).join("criterion"),
        None => PathBuf::from("target/criterion"),
    }
}

/// The time of benchmark `issuance/<name>` in nanoseconds, from criterion's estimates.
fn mean_ns(dir: &std::path::Path, name: &str) -> Option<f64> {
    let path = dir.join("issuance").join(name).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    // The headline estimate criterion prints: the slope of linear sampling when it has one.
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

/// Sums the parts into the floor and writes `issuance-floor.json` (when every part ran).
fn write_floor() {
    let dir = criterion_dir();
    let mut parts = serde_json::Map::new();
    for name in PARTS {
        match mean_ns(&dir, name) {
            Some(ns) => {
                parts.insert(format!("{name}_ns"), ns.round().into());
            }
            None => {
                eprintln!(
                    "issuance floor: no estimate for {name} (filtered out?); floor not written"
                );
                return;
            }
        }
    }
    let get = |k: &str| parts[&format!("{k}_ns")].as_f64().unwrap_or(0.0);
    let reenroll =
        get("csr_p256") + get("sign_certificate") + get("pkcs7_certs_only") + get("store_commit");
    let enroll = reenroll + get("argon2id_verify");
    let durable = reenroll - get("store_commit") + get("store_commit_flush");
    let mut out = serde_json::Map::new();
    out.insert("floor_reenroll_ns".into(), reenroll.round().into());
    out.insert("floor_enroll_ns".into(), enroll.round().into());
    out.insert(
        "durable_one_at_a_time_reenroll_ns".into(),
        durable.round().into(),
    );
    let renewal = reenroll + get("tls13_mutual_handshake_server");
    out.insert("floor_renewal_connection_ns".into(), renewal.round().into());
    let populate =
        get("p256_key_and_csr") + get("csr_p256") + get("sign_certificate") + get("store_commit");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bound = |floor_ns: f64| (cores as f64 * 1e9 / floor_ns).round();
    out.insert("floor_populate_ns".into(), populate.round().into());
    out.insert("populate_bound_ids_per_s".into(), bound(populate).into());
    if let Some(fjall) = mean_ns(&dir, "store_commit_fjall") {
        let swap = |floor: f64| floor - get("store_commit") + fjall;
        out.insert(
            "floor_reenroll_fjall_ns".into(),
            swap(reenroll).round().into(),
        );
        out.insert(
            "floor_renewal_connection_fjall_ns".into(),
            swap(renewal).round().into(),
        );
        out.insert(
            "floor_populate_fjall_ns".into(),
            swap(populate).round().into(),
        );
        out.insert(
            "populate_bound_fjall_ids_per_s".into(),
            bound(swap(populate)).into(),
        );
    }
    out.insert("cores".into(), cores.into());
    for name in OTHER_BACKEND {
        if let Some(ns) = mean_ns(&dir, name) {
            parts.insert(format!("{name}_ns"), ns.round().into());
        }
    }
    out.insert("parts".into(), parts.into());
    let json = serde_json::Value::Object(out);
    let path = dir.join("issuance-floor.json");
    match std::fs::write(&path, format!("{json}\n")) {
        Ok(()) => eprintln!(
            "issuance floor: simplereenroll {:.1} µs, simpleenroll {:.1} µs, a renewal on a new \
             connection {:.1} µs, one populated ID {:.1} µs of CPU (at most {} IDs/s on {} \
             cores) (written to {})",
            reenroll / 1000.0,
            enroll / 1000.0,
            renewal / 1000.0,
            populate / 1000.0,
            bound(populate),
            cores,
            path.display()
        ),
        Err(e) => eprintln!("issuance floor: cannot write {}: {e}", path.display()),
    }
    println!("{json}");
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    write_floor();
}
