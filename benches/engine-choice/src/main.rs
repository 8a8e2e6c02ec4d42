//! `cargo run --release -- ENGINE COUNT DIR [MODE]`: loads COUNT synthetic estca IDs into a
//! new ENGINE (`redb` or `fjall`) database in DIR and prints one JSON line of figures, the
//! measurement behind the choice of fjall as estca's second engine (`src/store/fjall/mod.rs`).
//!
//! Each ID is what an enrollment leaves, as eleven rows: a certificate row around a real
//! 784-byte estca certificate (`estca-certificate.der`) whose serial, public key and
//! signature are made random, its subject text, the key index, the account (with an
//! Argon2id hash of random salt), the folded-ID and per-contract indexes, two history
//! entries and their per-account and per-contract index entries. One transaction per ID,
//! one sync per 16 IDs (group commit); redb's transactions are `Durability::None` followed
//! by an empty `Durability::Immediate` one, fjall's are synced with `persist(SyncData)`.
//!
//! MODE: `open` only opens DIR and reports how long that took (run it after a load, or after
//! a `crash` load, to time recovery); `crash` aborts the process after half of COUNT;
//! `quick` (redb) commits with quick-repair; `quick-crash` both.

use std::path::Path;
use std::time::Instant;

use rand::{Rng, RngCore};

const CERTIFICATE: &[u8] = include_bytes!("../estca-certificate.der");

/// IDs per sync.
const GROUP: u64 = 16;

const TABLES: [&str; 8] = [
    "certificates",
    "keys",
    "accounts",
    "folded",
    "by_contract",
    "history",
    "history_by_account",
    "history_by_contract",
];

/// The certificate with its serial, public key and signature made random.
fn certificate(rng: &mut impl RngCore) -> Vec<u8> {
    let mut der = CERTIFICATE.to_vec();
    let len = der.len();
    rng.fill_bytes(&mut der[15..31]);
    rng.fill_bytes(&mut der[len - 70..len]);
    if let Some(at) = der.windows(3).position(|w| w == [0x03, 0x42, 0x00]) {
        rng.fill_bytes(&mut der[at + 4..at + 68]);
    }
    der
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn index_key(prefix: &str, rest: &[u8]) -> Vec<u8> {
    let mut key = prefix.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(rest);
    key
}

/// The rows of ID `i`: (table, key, value).
fn rows(rng: &mut impl RngCore, i: u64) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let id = format!("p{i}");
    let contract = format!("p{}", i / 1000);
    let serial: [u8; 16] = rng.gen();
    let key: [u8; 32] = rng.gen();
    let mut certificate_row = vec![1u8];
    certificate_row.extend(
        format!(
            "C=JP,O=estca Development,OU=estca Development Issuing CA - DEVELOPMENT,\
             OU=USERTYPE - 2,OU=CERTISSUEDNUM - 1,CN={id} {contract}"
        )
        .as_bytes(),
    );
    certificate_row.extend([0u8; 30]);
    certificate_row.extend(key);
    certificate_row.extend(certificate(rng));
    let mut account = vec![1u8];
    account.extend(contract.as_bytes());
    account.extend(b"estca-bench");
    account.extend(b"$argon2id$v=19$m=19456,t=2,p=1$");
    let mut salt_and_hash = [0u8; 70];
    rng.fill_bytes(&mut salt_and_hash);
    account.extend(salt_and_hash);
    account.extend(serial);
    account.extend([0u8; 12]);
    let mut created = vec![1u8; 30];
    created.extend(b"estca-bench populate created");
    let mut issued = vec![1u8; 30];
    issued.extend(
        format!(
            "estca-bench populate issued {} (CERTISSUEDNUM 1)",
            hex(&serial)
        )
        .as_bytes(),
    );
    let first = (2 * i + 1).to_be_bytes();
    let second = (2 * i + 2).to_be_bytes();
    vec![
        ("certificates", serial.to_vec(), certificate_row),
        ("keys", key.to_vec(), serial.to_vec()),
        ("accounts", id.as_bytes().to_vec(), account),
        ("folded", id.as_bytes().to_vec(), Vec::new()),
        ("by_contract", index_key(&contract, id.as_bytes()), Vec::new()),
        ("history", first.to_vec(), created),
        ("history", second.to_vec(), issued),
        ("history_by_account", index_key(&id, &first), Vec::new()),
        ("history_by_account", index_key(&id, &second), Vec::new()),
        ("history_by_contract", index_key(&contract, &first), Vec::new()),
        ("history_by_contract", index_key(&contract, &second), Vec::new()),
    ]
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Loads (or opens) a redb database; returns the seconds it took.
fn redb(count: u64, dir: &Path, mode: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut builder = redb::Builder::new();
    builder
        .set_cache_size(64 << 20)
        .create_with_file_format_v3(true);
    let db = builder.create(dir.join("db.redb"))?;
    if mode == "open" {
        return Ok(started.elapsed().as_secs_f64());
    }
    let mut rng = rand::thread_rng();
    for group in 0..count / GROUP {
        for i in group * GROUP..(group + 1) * GROUP {
            let mut tx = db.begin_write()?;
            tx.set_durability(redb::Durability::None);
            for (table, key, value) in rows(&mut rng, i) {
                let definition: redb::TableDefinition<&[u8], &[u8]> =
                    redb::TableDefinition::new(table);
                tx.open_table(definition)?
                    .insert(key.as_slice(), value.as_slice())?;
            }
            tx.commit()?;
        }
        let mut tx = db.begin_write()?;
        tx.set_quick_repair(mode.contains("quick"));
        tx.commit()?;
        if mode.contains("crash") && (group + 1) * GROUP >= count / 2 {
            std::process::abort();
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Loads (or opens) a fjall database; returns the seconds it took.
fn fjall(count: u64, dir: &Path, mode: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let keyspace = fjall::Config::new(dir)
        .manual_journal_persist(true)
        .cache_size(64 << 20)
        .max_write_buffer_size(32 << 20)
        .max_journaling_size(64 << 20)
        .open_transactional()?;
    let mut partitions = Vec::new();
    for table in TABLES {
        partitions.push((
            table,
            keyspace.open_partition(table, fjall::PartitionCreateOptions::default())?,
        ));
    }
    if mode == "open" {
        return Ok(started.elapsed().as_secs_f64());
    }
    let mut rng = rand::thread_rng();
    for group in 0..count / GROUP {
        for i in group * GROUP..(group + 1) * GROUP {
            let mut tx = keyspace.write_tx();
            for (table, key, value) in rows(&mut rng, i) {
                if let Some((_, partition)) = partitions.iter().find(|(t, _)| *t == table) {
                    tx.insert(partition, key, value);
                }
            }
            tx.commit()?;
        }
        keyspace.persist(fjall::PersistMode::SyncData)?;
        if mode.contains("crash") && (group + 1) * GROUP >= count / 2 {
            std::process::abort();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // Lets the flushes and compactions of the load finish before the size is taken, as they
    // would in a daemon.
    std::thread::sleep(std::time::Duration::from_secs(20));
    Ok(seconds)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: estca-engine-choice redb|fjall COUNT DIR [open|crash|quick|quick-crash]";
    let (Some(engine), Some(count), Some(dir)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err(usage.into());
    };
    let count: u64 = count.parse()?;
    let dir = Path::new(dir);
    let mode = args.get(4).map(String::as_str).unwrap_or("");
    std::fs::create_dir_all(dir)?;
    let seconds = match engine.as_str() {
        "redb" => redb(count, dir, mode)?,
        "fjall" => fjall(count, dir, mode)?,
        _ => return Err(usage.into()),
    };
    let bytes = dir_size(dir);
    println!(
        "{{\"engine\":\"{engine}\",\"mode\":\"{mode}\",\"ids\":{count},\"seconds\":{seconds:.3},\"bytes\":{bytes},\"bytes_per_id\":{}}}",
        bytes.checked_div(count).unwrap_or(0)
    );
    Ok(())
}
