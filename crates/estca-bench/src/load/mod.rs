//! `estca-bench run`: the scenarios, their preparation, and the JSON line of each
//! measurement.
mod clients;
mod setup;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hyper::body::Bytes;
use rustls::{ClientConfig, RootCertStore};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::daemon::{self, BenchDir, Daemon, Endpoints};
use crate::http::{self, Connection};
use crate::keys;
use crate::stats::Tally;

use clients::{
    cacerts_client, check_ocsp_good, delegated_client, ocsp_client, ocsp_request,
    simpleenroll_client, simplereenroll_client, EnrollWork, KeyPool,
};
use setup::{create_accounts, create_app, enroll_accounts, Password};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The contract every bench ID belongs to.
const CONTRACT: &str = "bench";

/// How many setup requests (account creation, first enrollment) run at once.
const SETUP_PARALLELISM: usize = 8;

/// A load scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `GET /.well-known/est/cacerts`.
    Cacerts,
    /// `POST simpleenroll` with HTTP Basic, one fresh ID per request.
    Simpleenroll,
    /// `POST simplereenroll`: each client renews its own certificate, a new key each time.
    Simplereenroll,
    /// `POST /ocsp` on the revocation listener, for issued serials.
    Ocsp,
    /// `POST simpleenroll` as an application (an EST registration authority): keep-alive
    /// connections presenting the application's client certificate, each request for a fresh
    /// ID named by its CSR's CN, as an RA provisioning new devices does.
    Delegated,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Cacerts => "cacerts",
            Scenario::Simpleenroll => "simpleenroll",
            Scenario::Simplereenroll => "simplereenroll",
            Scenario::Ocsp => "ocsp",
            Scenario::Delegated => "delegated",
        }
    }
}

/// Arguments of `estca-bench run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenarios to run, in order (comma-separated).
    #[arg(
        long,
        short = 's',
        value_enum,
        value_delimiter = ',',
        default_value = "cacerts,simpleenroll,simplereenroll,ocsp,delegated"
    )]
    scenario: Vec<Scenario>,
    /// Concurrent connections (clients); a comma-separated list runs each in turn.
    #[arg(long, short = 'c', value_delimiter = ',', default_value = "32")]
    connections: Vec<usize>,
    /// Length of each timed window, in seconds.
    #[arg(long, short = 't', default_value_t = 10.0)]
    duration: f64,
    /// A new TCP and TLS connection for every request (TLS sessions are resumed when the
    /// server allows). simplereenroll always connects anew: the client certificate changes
    /// with every renewal.
    #[arg(long)]
    no_keepalive: bool,
    /// The bench directory (configuration, CA, data) to start the daemon on: reuse one made
    /// by `populate` to measure at scale. Default: a scratch directory, removed afterwards.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The store backend of a new (or scratch) bench directory: sled (default) or fjall; an
    /// existing directory must already name it.
    #[arg(long, value_enum, conflicts_with = "https")]
    backend: Option<daemon::Backend>,
    /// After the scenarios, one more simplereenroll window (the first connection count)
    /// during which the daemon is killed with SIGKILL half-way through; then it is started
    /// again on the same directory, and the line says how long that start took (a crash
    /// under load: the store recovers whatever the kill left).
    #[arg(long, conflicts_with = "https")]
    kill: bool,
    /// The estca binary to start. Default: `estca` next to this program.
    #[arg(long)]
    estca: Option<PathBuf>,
    /// The floor written by `cargo bench --bench issuance`. Default:
    /// `$CARGO_TARGET_DIR/criterion/issuance-floor.json` (or `target/criterion/...`).
    #[arg(long)]
    floor: Option<PathBuf>,
    /// Keys and CSRs prepared per simplereenroll measurement. Default: 4,000 per second of
    /// window plus one per connection.
    #[arg(long)]
    keys: Option<usize>,
    /// IDs prepared per simpleenroll measurement. Default: 1.5 x the Argon2 bound x the
    /// window (100/s without a floor file), plus one per connection. For delegated: 8,000
    /// per second of window plus one per connection (estca issued up to 7,089 a second on
    /// this path on the 2-core machine; a window that runs out of IDs ends early).
    #[arg(long)]
    ids: Option<usize>,
    /// A label copied into every JSON line (e.g. `ids=100000`).
    #[arg(long)]
    label: Option<String>,
    /// Also append the JSON lines to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads of this load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Attach to a running daemon at this HTTPS address instead of starting one (needs
    /// --admin-socket and --ca-dir; --pid for its CPU time; --revocation-http for ocsp).
    /// Several daemons sharing one database and one CA: their addresses, comma-separated;
    /// connections (and each renewal's new connection) go to them in turn.
    #[arg(long, value_delimiter = ',', requires_all = ["admin_socket", "ca_dir"])]
    https: Vec<SocketAddr>,
    /// The running daemon's admin socket (with --https).
    #[arg(long)]
    admin_socket: Option<PathBuf>,
    /// The running daemon's CA directory, holding root-ca.pem and issuing-ca.pem (with --https).
    #[arg(long)]
    ca_dir: Option<PathBuf>,
    /// The running daemon's revocation listener (with --https).
    #[arg(long)]
    revocation_http: Option<SocketAddr>,
    /// The running daemons' process IDs, comma-separated (with --https): the server CPU is
    /// the sum of theirs.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    /// A database server's process ID (PostgreSQL's postmaster): its CPU time and its
    /// children's is reported as the database's, beside the daemons'.
    #[arg(long)]
    database_pid: Option<u32>,
}

/// The microbenchmarked floor.
#[derive(Debug, Clone, Copy)]
struct Floor {
    reenroll_s: f64,
    enroll_s: f64,
    argon2_s: f64,
}

fn read_floor(path: &Path) -> Option<Floor> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    Some(Floor {
        reenroll_s: v["floor_reenroll_ns"].as_f64()? / 1e9,
        enroll_s: v["floor_enroll_ns"].as_f64()? / 1e9,
        argon2_s: v["parts"]["argon2id_verify_ns"].as_f64()? / 1e9,
    })
}

/// Everything the clients share.
struct Target {
    endpoints: Endpoints,
    roots: Arc<RootCertStore>,
    /// Every daemon's HTTPS address (the first is `endpoints.https`).
    https: Vec<SocketAddr>,
    /// Which of `https` the next new connection goes to.
    next_https: AtomicUsize,
    /// The daemons' process IDs, for their CPU time.
    pids: Vec<u32>,
    /// Session cache shared by every connection without a client certificate.
    anonymous: Arc<ClientConfig>,
    issuing_der: Vec<u8>,
    password: String,
    /// An Argon2id hash of [`Target::password`] at the cheapest parameters, for the IDs that
    /// never use their password (the delegated scenario's): creating them costs no hashing.
    password_hash: String,
    run_id: String,
}

impl Target {
    /// The daemon a new connection goes to: each in turn.
    fn next_https(&self) -> SocketAddr {
        let i = self.next_https.fetch_add(1, Ordering::Relaxed);
        self.https[i % self.https.len().max(1)]
    }
}

/// Runs `estca-bench run`.
pub fn run(args: RunArgs) -> Result<()> {
    if args.duration <= 0.0 || !args.duration.is_finite() {
        bail!("--duration must be a positive number of seconds");
    }
    if args.connections.contains(&0) {
        bail!("--connections must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let floor_path = args.floor.clone().unwrap_or_else(crate::default_floor_file);
    let floor = read_floor(&floor_path);
    if floor.is_none() {
        eprintln!(
            "estca-bench: no floor in {} (run `cargo bench --bench issuance` first); ratios are left out",
            floor_path.display()
        );
    }

    // The daemon: attach, or start one on a bench directory.
    let (dir, mut daemon, endpoints, ca_dir, estca) = match args.https.first().copied() {
        Some(https) => {
            let admin_socket = args
                .admin_socket
                .clone()
                .ok_or_else(|| anyhow!("--https needs --admin-socket"))?;
            let ca_dir = args
                .ca_dir
                .clone()
                .ok_or_else(|| anyhow!("--https needs --ca-dir"))?;
            let endpoints = Endpoints {
                https,
                admin_socket,
                revocation_http: args.revocation_http,
                pid: args.pid.first().copied(),
            };
            (None, None, endpoints, ca_dir, None)
        }
        None => {
            let dir = BenchDir::new(args.dir.as_deref(), args.backend)?;
            let estca = match &args.estca {
                Some(p) => p.clone(),
                None => std::env::current_exe()?
                    .parent()
                    .ok_or_else(|| anyhow!("cannot locate the estca binary; pass --estca"))?
                    .join("estca"),
            };
            let daemon = Daemon::start(&estca, &dir, START_TIMEOUT)?;
            let endpoints = daemon.endpoints.clone();
            let ca_dir = dir.ca_dir();
            (Some(dir), Some(daemon), endpoints, ca_dir, Some(estca))
        }
    };
    let daemon_info = |daemon: &Option<Daemon>, label: &str| -> Value {
        let Some(d) = daemon else { return json!(null) };
        let mem = daemon::memory_kib(d.pid());
        json!({
            "startup_ms": round(d.startup.as_secs_f64() * 1000.0, 1),
            "rss_kib": mem.map(|m| m.0),
            "peak_rss_kib": mem.map(|m| m.1),
            "when": label,
        })
    };
    let at_ready = daemon_info(&daemon, "ready");
    eprintln!("estca-bench: daemon {at_ready}");

    let roots = http::roots(&ca_dir.join("root-ca.pem"))?;
    let issuing_pem = std::fs::read(ca_dir.join("issuing-ca.pem"))
        .with_context(|| format!("cannot read {}/issuing-ca.pem", ca_dir.display()))?;
    let issuing_der = pem_rfc7468::decode_vec(&issuing_pem)
        .map_err(|e| anyhow!("issuing-ca.pem: {e}"))?
        .1;
    let run_id = format!(
        "{:06x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64 & 0xff_ffff)
            .unwrap_or(0)
    );
    let target = Arc::new(Target {
        https: if args.https.is_empty() {
            vec![endpoints.https]
        } else {
            args.https.clone()
        },
        next_https: AtomicUsize::new(0),
        pids: if args.https.is_empty() {
            endpoints.pid.into_iter().collect()
        } else {
            args.pid.clone()
        },
        anonymous: http::client_config(roots.clone(), None)?,
        endpoints,
        roots,
        issuing_der,
        password: "correct horse battery".to_owned(),
        password_hash: cheap_hash("correct horse battery")?,
        run_id,
    });

    runtime.block_on(async {
        let mut admin = Connection::unix(&target.endpoints.admin_socket).await?;
        http::admin_post(
            &mut admin,
            "/api/v1/contracts",
            &json!({"code": CONTRACT, "name": "estca-bench"}),
        )
        .await?;
        for &scenario in &args.scenario {
            for &connections in &args.connections {
                let mut line = measure(&target, &args, scenario, connections, None, floor).await?;
                line["daemon"] = daemon_info(&daemon, "after");
                if let Some(dir) = &dir {
                    line["data_dir_bytes"] = json!(daemon::disk_use(&dir.data_dir()).allocated);
                }
                emit(&args, line)?;
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;

    if args.kill {
        let (Some(dir), Some(estca), Some(running)) = (&dir, &estca, daemon.take()) else {
            bail!("--kill needs a daemon this tool starts");
        };
        let connections = args.connections.first().copied().unwrap_or(32);
        let kill = KillAt {
            pid: running.pid(),
            after: Duration::from_secs_f64(args.duration / 2.0),
        };
        let mut line = runtime.block_on(measure(
            &target,
            &args,
            Scenario::Simplereenroll,
            connections,
            Some(kill),
            floor,
        ))?;
        running.reap()?;
        let restarted = Daemon::start(estca, dir, START_TIMEOUT)?;
        line["step"] = json!("sigkill");
        line["daemon"] = daemon_info(&Some(restarted), "restarted after SIGKILL");
        line["data_dir_bytes"] = json!(daemon::disk_use(&dir.data_dir()).allocated);
        emit(&args, line)?;
    }
    drop(daemon);
    Ok(())
}

/// An Argon2id PHC hash of `password` at the smallest parameters Argon2 allows.
fn cheap_hash(password: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(argon2::Params::MIN_M_COST, 1, 1, None)
        .map_err(|e| anyhow!("Argon2 parameters: {e}"))?;
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Ok(
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow!("hashing: {e}"))?
            .to_string(),
    )
}

/// How long a daemon may take to start (a store of millions of IDs included).
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// Prints a measurement's JSON line (with the label, if any), and appends it to `--out`.
fn emit(args: &RunArgs, mut line: Value) -> Result<()> {
    if let Some(label) = &args.label {
        line["label"] = json!(label);
    }
    let text = line.to_string();
    println!("{text}");
    if let Some(out) = &args.out {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .with_context(|| format!("cannot open {}", out.display()))?;
        writeln!(f, "{text}")?;
    }
    Ok(())
}

/// SIGKILL for the daemon `pid`, `after` the start of a window.
#[derive(Debug, Clone, Copy)]
struct KillAt {
    pid: u32,
    after: Duration,
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

/// Prepares and runs one scenario at one concurrency (killing the daemon during the window
/// when `kill` says so); returns its JSON line.
async fn measure(
    target: &Arc<Target>,
    args: &RunArgs,
    scenario: Scenario,
    connections: usize,
    kill: Option<KillAt>,
    floor: Option<Floor>,
) -> Result<Value> {
    let duration = Duration::from_secs_f64(args.duration);
    let keepalive = !args.no_keepalive;
    let cores = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1);
    eprintln!(
        "estca-bench: preparing {} with {connections} connections",
        scenario.name()
    );
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut tasks = Vec::with_capacity(connections);
    match scenario {
        Scenario::Cacerts => {
            for _ in 0..connections {
                tasks.push(tokio::spawn(cacerts_client(
                    target.clone(),
                    barrier.clone(),
                    duration,
                    keepalive,
                )));
            }
        }
        Scenario::Simpleenroll => {
            let bound = floor.map(|f| cores as f64 / f.argon2_s).unwrap_or(100.0);
            let n = args
                .ids
                .unwrap_or((bound * 1.5 * args.duration) as usize + connections);
            let ids: Vec<String> = (0..n)
                .map(|i| format!("b{}e{connections}-{i}", target.run_id))
                .collect();
            eprintln!("estca-bench: creating {n} IDs and keys");
            create_accounts(target, &ids, Password::Clear).await?;
            let pool = tokio::task::spawn_blocking(move || keys::pool(n)).await??;
            let work = Arc::new(EnrollWork {
                ids,
                keys: pool,
                next: AtomicUsize::new(0),
            });
            for _ in 0..connections {
                tasks.push(tokio::spawn(simpleenroll_client(
                    target.clone(),
                    barrier.clone(),
                    duration,
                    keepalive,
                    work.clone(),
                )));
            }
        }
        Scenario::Simplereenroll => {
            // IDs of their own for the window with the kill (`k`): the earlier window's
            // IDs hold active certificates.
            let kind = if kill.is_some() { 'k' } else { 'r' };
            let ids: Vec<String> = (0..connections)
                .map(|i| format!("b{}{kind}{connections}-{i}", target.run_id))
                .collect();
            let n = args
                .keys
                .unwrap_or((4000.0 * args.duration) as usize + connections);
            eprintln!("estca-bench: creating and enrolling {connections} IDs; {n} keys");
            create_accounts(target, &ids, Password::Clear).await?;
            let enrolled = enroll_accounts(target, &ids).await?;
            let pool = tokio::task::spawn_blocking(move || keys::pool(n)).await??;
            let pool = Arc::new(KeyPool {
                keys: pool,
                next: AtomicUsize::new(0),
            });
            for (cert, key) in enrolled {
                tasks.push(tokio::spawn(simplereenroll_client(
                    target.clone(),
                    barrier.clone(),
                    duration,
                    pool.clone(),
                    cert,
                    key,
                )));
            }
        }
        Scenario::Ocsp => {
            let addr = target.endpoints.revocation_http.ok_or_else(|| {
                anyhow!(
                    "the daemon has no revocation listener (revocation.listen); cannot run ocsp"
                )
            })?;
            let ids: Vec<String> = (0..16)
                .map(|i| format!("b{}o{connections}-{i}", target.run_id))
                .collect();
            create_accounts(target, &ids, Password::Clear).await?;
            let enrolled = enroll_accounts(target, &ids).await?;
            let requests = enrolled
                .iter()
                .map(|(cert, _)| ocsp_request(&target.issuing_der, cert).map(Bytes::from))
                .collect::<Result<Vec<_>>>()?;
            if let Some(first) = requests.first() {
                check_ocsp_good(addr, first.clone()).await?;
            }
            let requests = Arc::new(requests);
            for i in 0..connections {
                tasks.push(tokio::spawn(ocsp_client(
                    addr,
                    barrier.clone(),
                    duration,
                    keepalive,
                    requests.clone(),
                    i,
                )));
            }
        }
        Scenario::Delegated => {
            let n = args
                .ids
                .unwrap_or((8000.0 * args.duration) as usize + connections);
            let ids: Vec<String> = (0..n)
                .map(|i| format!("b{}d{connections}-{i}", target.run_id))
                .collect();
            eprintln!("estca-bench: creating an application, {n} IDs and their keys");
            let app = create_app(target, &format!("bench{}d{connections}", target.run_id)).await?;
            create_accounts(target, &ids, Password::Hashed).await?;
            let pool = tokio::task::spawn_blocking(move || keys::for_ids(&ids)).await??;
            let pool = Arc::new(KeyPool {
                keys: pool,
                next: AtomicUsize::new(0),
            });
            for _ in 0..connections {
                tasks.push(tokio::spawn(delegated_client(
                    target.clone(),
                    barrier.clone(),
                    duration,
                    keepalive,
                    app.clone(),
                    pool.clone(),
                )));
            }
        }
    }

    // The window: every client is connected and waiting at the barrier.
    let load_before = daemon::load_average();
    let daemons_cpu = || -> Result<Option<f64>> {
        if target.pids.is_empty() {
            return Ok(None);
        }
        let mut sum = 0.0;
        for &pid in &target.pids {
            sum += daemon::cpu_seconds(pid)?;
        }
        Ok(Some(sum))
    };
    let database_cpu = || {
        args.database_pid
            .map(daemon::cpu_seconds_with_children)
            .transpose()
    };
    let cpu_before = daemons_cpu()?;
    let database_before = database_cpu()?;
    let own_before = daemon::own_cpu_seconds()?;
    // Announced, so that a profiler (`perf record -p`) can be started on the window alone.
    eprintln!(
        "estca-bench: window of {}s with {connections} connections begins",
        duration.as_secs_f64()
    );
    barrier.wait().await;
    let start = Instant::now();
    let killer = kill.map(|k| {
        tokio::spawn(async move {
            tokio::time::sleep(k.after).await;
            daemon::sigkill(k.pid).map(|()| start.elapsed())
        })
    });
    let mut tally = Tally::default();
    for t in tasks {
        tally.merge(t.await?);
    }
    let killed_at = match killer {
        Some(k) => Some(k.await??),
        None => None,
    };
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_after = daemons_cpu()?;
    let database_after = database_cpu()?;
    let own_after = daemon::own_cpu_seconds()?;
    let load_after = daemon::load_average();

    let ok = tally.ok_count();
    let [p50, p90, p99, max] = tally.percentiles_ms();
    let throughput = ok as f64 / elapsed;
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let per_request = server_cpu.filter(|_| ok > 0).map(|c| c / ok as f64);
    let database = match (database_before, database_after) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let floor_s = match scenario {
        Scenario::Simplereenroll => floor.map(|f| f.reenroll_s),
        Scenario::Simpleenroll => floor.map(|f| f.enroll_s),
        _ => None,
    };
    let mut line = json!({
        "scenario": scenario.name(),
        "connections": connections,
        "keepalive": keepalive && scenario != Scenario::Simplereenroll,
        "window_s": round(elapsed, 3),
        "ok": ok,
        "errors": tally.errors,
        "prepared_work_ran_out": tally.exhausted,
        "throughput_per_s": round(throughput, 1),
        "latency_ms": {"p50": p50, "p90": p90, "p99": p99, "max": max},
        "server_cpu_s": server_cpu.map(|c| round(c, 3)),
        "server_cpu_ms_per_request": per_request.map(|c| round(c * 1000.0, 4)),
        "daemons": target.https.len(),
        "database_cpu_s": database.map(|c| round(c, 3)),
        "database_cpu_ms_per_request": database
            .filter(|_| ok > 0)
            .map(|c| round(c / ok as f64 * 1000.0, 4)),
        "floor_ms": floor_s.map(|f| round(f * 1000.0, 4)),
        "ratio_to_floor": match (per_request, floor_s) {
            (Some(c), Some(f)) if f > 0.0 => Some(round(c / f, 2)),
            _ => None,
        },
        "client_cpu_s": round(own_after - own_before, 3),
        "cores": cores,
        "load_avg_before": load_before,
        "load_avg_after": load_after,
    });
    if let Some(at) = killed_at {
        // The CPU figures then cover only the part of the window before the kill.
        line["sigkill_after_s"] = json!(round(at.as_secs_f64(), 3));
    }
    if scenario == Scenario::Simpleenroll {
        if let Some(f) = floor {
            let bound = cores as f64 / f.argon2_s;
            line["argon2_bound_per_s"] = json!(round(bound, 1));
            line["fraction_of_argon2_bound"] = json!(round(throughput / bound, 3));
        }
    }
    Ok(line)
}
