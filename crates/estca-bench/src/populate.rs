//! `estca-bench populate N --dir DIR [--backend fjall]`: IDs with certificates loaded into the
//! store of a bench directory, in the backend its configuration names (`store.backend`, which
//! `--backend` sets for a new directory), offline (the daemon must not be running on it: the
//! store locks it). It reports the IDs per second and the bytes the data directory takes on
//! disk (allocated blocks: fjall preallocates journal files whose length means nothing).
//!
//! It goes through the registration authority as the operator, exactly the path of the
//! daemon: `create_contract`, `create_account`, then `issue_on_behalf` for a fresh P-256 key
//! and CSR (checked like every CSR, signed with a reserved serial, committed with its history
//! entries). All IDs share one Argon2id hash of the bench password at the default parameters
//! (the operator may give a hash instead of a password), so that loading does not cost one
//! hash per ID. IDs are `p<n>`, 1,000 per contract `p<n / 1000>`; a second run continues after
//! the IDs already there. It ends by opening the store once more (`reopen_s`), so that sled
//! writes the snapshot that makes the daemon's next start fast.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use serde_json::json;

use estca::ca::CertificateAuthority;
use estca::config::Config;
use estca::internal::private_dir::{prepare, Holds};
use estca::model::{AccountId, ContractCode, Role};
use estca::ra::{Caller, InitialPassword, NewAccount, RaError, RegistrationAuthority, SystemClock};
use estca::store::{PageRequest, StoreReads};

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
    /// The store backend of a new bench directory (default sled); an existing directory
    /// must already name it.
    #[arg(long, value_enum)]
    backend: Option<daemon::Backend>,
}

/// Runs `estca-bench populate`.
pub fn run(args: PopulateArgs) -> Result<()> {
    let dir = BenchDir::new(Some(&args.dir), args.backend)?;
    let config = Config::load_from(Some(&dir.config()), Vec::<(String, String)>::new())
        .with_context(|| format!("cannot load {}", dir.config().display()))?;
    // The daemon refuses a data or CA directory that others may enter (private_dir).
    prepare(&config.store.path, Holds::Database)?;
    prepare(&config.ca.dir, Holds::CaFiles)?;
    if !CertificateAuthority::exists(&config.ca) {
        CertificateAuthority::init(&config.ca, None)?;
    }
    let ca = Arc::new(estca::ca::IssuingCas::from(
        CertificateAuthority::load(&config.ca, &config.certificate.common_name_template)?
            .with_public_url(&config.revocation.public_url)?,
    ));
    // Syncs deferred to the end: a bulk load either completes or is redone.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let store = handle.block_on(estca::store::open_with(
        &config.store,
        None,
        estca::store::SyncMode::Deferred,
    ))?;
    let start = handle.block_on(count_accounts(&*store))?;
    let ra = {
        let _entered = handle.enter();
        RegistrationAuthority::new(store.clone(), ca, Arc::new(SystemClock), &config.auth)
            .map_err(|e| anyhow!("{e}"))?
    };
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
    let cpu_before = daemon::own_cpu_seconds()?;
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..threads {
            let (ra, hash, handle, done) = (&ra, &hash, &handle, &done);
            workers.push(s.spawn(move || -> Result<()> {
                let mut i = start + t;
                while i < end {
                    handle.block_on(add_one(ra, hash, i))?;
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
    handle.block_on(store.sync_all())?;
    let seconds = began.elapsed().as_secs_f64();
    // CPU per ID depends less than the rate on what else the machine is running.
    let cpu = daemon::own_cpu_seconds()? - cpu_before;
    drop(ra);
    drop(store);
    // sled 0.34 writes the snapshot of its page table only when it opens a database, and
    // every open replays the log written since the last snapshot: without this open, the
    // daemon's first start would replay the whole load (13 s at 1,000,000 IDs). fjall
    // replays at most its journal either way.
    let reopen_began = Instant::now();
    drop(handle.block_on(estca::store::open_with(
        &config.store,
        None,
        estca::store::SyncMode::Deferred,
    ))?);
    let reopen_seconds = reopen_began.elapsed().as_secs_f64();
    let used = daemon::disk_use(&config.store.path);
    let line = json!({
        "populate": args.count,
        "ids_before": start,
        "ids_total": end,
        "seconds": (seconds * 10.0).round() / 10.0,
        "ids_per_s": (args.count as f64 / seconds).round(),
        "cpu_s": (cpu * 10.0).round() / 10.0,
        "reopen_s": (reopen_seconds * 100.0).round() / 100.0,
        "cpu_ms_per_id": (cpu * 1000.0 / args.count.max(1) as f64 * 1000.0).round() / 1000.0,
        "backend": config.store.backend,
        "data_dir_bytes": used.allocated,
        "data_dir_bytes_per_id": (used.allocated as f64 / end.max(1) as f64).round(),
        "data_dir_apparent_bytes": used.apparent,
        "threads": threads,
        "load_avg_after": daemon::load_average(),
    });
    println!("{line}");
    Ok(())
}

/// How many IDs the store holds, counted page by page.
async fn count_accounts(store: &dyn StoreReads) -> Result<u64> {
    let mut count = 0u64;
    let mut page = PageRequest::first(10_000);
    loop {
        let read = store.accounts(None, page.clone()).await?;
        count += read.items.len() as u64;
        match read.next {
            Some(next) => page.after = Some(next),
            None => return Ok(count),
        }
    }
}

/// Adds ID `p<i>` (and its contract when it is the first of it) with one certificate, as the
/// operator.
async fn add_one(ra: &RegistrationAuthority, hash: &str, i: u64) -> Result<()> {
    let operator = Caller::operator(None);
    let code: ContractCode = format!("p{}", i / PER_CONTRACT)
        .parse()
        .map_err(|e| anyhow!("{e}"))?;
    match ra
        .create_contract(&operator, code.clone(), "estca-bench".into(), false)
        .await
    {
        Ok(_) | Err(RaError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let id: AccountId = format!("p{i}").parse().map_err(|e| anyhow!("{e}"))?;
    ra.create_account(
        &operator,
        NewAccount {
            id: Some(id.clone()),
            contract: code,
            role: Role::User,
            name: "estca-bench".into(),
            password: InitialPassword::Hashed(hash.to_owned()),
        },
    )
    .await?;
    let k = crate::keys::one()?;
    let csr = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(&k.csr_base64)?
    };
    ra.issue_on_behalf(&operator, &id, &csr).await?;
    Ok(())
}
