//! `estca-bench populate N --dir DIR`: IDs with certificates written straight into the store
//! of a bench directory, offline (the daemon must not be running on it: the store locks it), in the backend its
//! configuration names (`store.backend`).
//!
//! Every ID gets a real certificate: a fresh P-256 key, a CSR checked like the daemon checks
//! it, a certificate signed by the directory's CA with the estca profile, committed with
//! `commit_issuance` (history entries included), exactly what an enrollment leaves behind.
//! All IDs share one Argon2id hash of the bench password at the default parameters (its salt
//! included), so that populating does not cost one hash per ID. IDs are `p<n>`, 1,000 per
//! contract `p<n / 1000>`; a second run continues after the IDs already there.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use time::OffsetDateTime;

use estca::ca::{validate_csr, CertificateAuthority, EndEntityRequest};
use estca::config::Config;
use estca::model::{
    Account, Actor, CertificateRecord, Contract, ContractCode, EventKind, HistoryEvent, Holder,
    Outcome, Role, Serial,
};
use estca::store::{NewCertificate, Page, Store, StoreError};

use crate::daemon::{self, BenchDir};

/// IDs per contract.
const PER_CONTRACT: u64 = 1000;

/// Arguments of `estca-bench populate`.
#[derive(Debug, clap::Args)]
pub struct PopulateArgs {
    /// How many IDs to add.
    count: u64,
    /// The bench directory (created with its configuration and CA when missing).
    #[arg(long)]
    dir: PathBuf,
    /// Writer threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs `estca-bench populate`.
pub fn run(args: PopulateArgs) -> Result<()> {
    let dir = BenchDir::new(Some(&args.dir))?;
    let config = Config::load_from(Some(&dir.config()), Vec::<(String, String)>::new())
        .with_context(|| format!("cannot load {}", dir.config().display()))?;
    // The daemon refuses a data or CA directory that others may enter (estca::private_dir).
    estca::private_dir::prepare(&config.store.path, estca::private_dir::Holds::Database)?;
    estca::private_dir::prepare(&config.ca.dir, estca::private_dir::Holds::CaFiles)?;
    if !CertificateAuthority::exists(&config.ca) {
        CertificateAuthority::init(&config.ca)?;
    }
    let ca = Arc::new(
        CertificateAuthority::load(&config.ca, &config.certificate.common_name_template)?
            .with_public_url(&config.revocation.public_url)?,
    );
    let store = estca::store::open(&config.store, None)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();

    let start = handle
        .block_on(Page::collect_all(10_000, |page| store.accounts(None, page)))?
        .len() as u64;
    let hash = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(
            config.auth.argon2_memory_kib,
            config.auth.argon2_iterations,
            config.auth.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow!("Argon2 parameters: {e}"))?;
        let salt = SaltString::generate(&mut rand_core::OsRng);
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"correct horse battery", &salt)
            .map_err(|e| anyhow!("hashing: {e}"))?
            .to_string()
    };

    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(|p| p.get()))
        .unwrap_or(2)
        .max(1) as u64;
    let end = start + args.count;
    let done = AtomicU64::new(0);
    let began = Instant::now();
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..threads {
            let (store, ca, hash, handle, done) = (&store, &ca, &hash, &handle, &done);
            workers.push(s.spawn(move || -> Result<()> {
                let mut i = start + t;
                while i < end {
                    handle.block_on(add_one(&**store, ca, hash, i))?;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % 10_000 == 0 {
                        eprintln!(
                            "estca-bench: {n} of {} IDs ({:.0}/s)",
                            args.count,
                            n as f64 / began.elapsed().as_secs_f64()
                        );
                    }
                    i += threads;
                }
                Ok(())
            }));
        }
        for w in workers {
            w.join()
                .map_err(|_| anyhow!("a populate thread panicked"))??;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    let seconds = began.elapsed().as_secs_f64();
    drop(store);
    let line = json!({
        "populate": args.count,
        "ids_before": start,
        "ids_total": end,
        "seconds": (seconds * 10.0).round() / 10.0,
        "ids_per_s": (args.count as f64 / seconds).round(),
        "data_dir_bytes": daemon::dir_size(&config.store.path),
        "threads": threads,
        "load_avg_after": daemon::load_average(),
    });
    println!("{line}");
    Ok(())
}

fn event(kind: EventKind, account: Option<&Account>, detail: String) -> HistoryEvent {
    HistoryEvent {
        at: OffsetDateTime::now_utc(),
        account: account.map(|a| a.id.clone()),
        contract: account.map(|a| a.contract.clone()),
        kind,
        actor: Actor::Operator { uid: None },
        source: "estca-bench populate".into(),
        outcome: Outcome::Ok { detail },
    }
}

/// Adds ID `p<i>` (and its contract when it is the first of it) with one certificate.
async fn add_one(store: &dyn Store, ca: &CertificateAuthority, hash: &str, i: u64) -> Result<()> {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|e| anyhow!("{e}"))?;
    let code: ContractCode = format!("p{}", i / PER_CONTRACT)
        .parse()
        .map_err(|e| anyhow!("{e}"))?;
    match store
        .create_contract(
            Contract {
                code: code.clone(),
                name: "estca-bench".into(),
                created_at: now,
            },
            event(EventKind::ContractCreate, None, format!("created {code}")),
        )
        .await
    {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let account = Account::new(
        format!("p{i}").parse().map_err(|e| anyhow!("{e}"))?,
        code,
        Role::User,
        "estca-bench".into(),
        hash.to_owned(),
        now,
    );
    store
        .create_account(
            account.clone(),
            event(EventKind::AccountCreate, Some(&account), "created".into()),
        )
        .await?;

    let k = crate::keys::one()?;
    let csr = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(&k.csr_base64)?
    };
    let key = validate_csr(&csr)?;
    let serial = store.reserve_serial(Serial::random(), now).await?;
    let holder = Holder::Account {
        id: account.id.clone(),
        contract: account.contract.clone(),
        role: account.role,
        issued_num: 1,
    };
    let signed = ca.sign_end_entity(&EndEntityRequest {
        serial: &serial,
        holder: &holder,
        not_before: now,
        key: &key,
    })?;
    store
        .commit_issuance(NewCertificate {
            expected_version: 0,
            event: event(
                EventKind::Enroll,
                Some(&account),
                format!("issued {} (CERTISSUEDNUM 1)", serial.serial()),
            ),
            supersedes: None,
            choice: estca::model::CertificateChoice::Continue,
            record: CertificateRecord {
                serial: serial.serial(),
                holder,
                subject: signed.subject,
                not_before: signed.not_before,
                not_after: signed.not_after,
                key: key.fingerprint(),
                revocation: None,
                der: signed.der,
            },
        })
        .await?;
    Ok(())
}
