//! `estca-bench`: the load generator and bulk loader behind the README's "Performance"
//! section.
//!
//! - `estca-bench run`: starts an `estca serve` on ephemeral ports in a scratch directory
//!   (or attaches to a running daemon), prepares IDs, keys and CSRs, then drives one or more
//!   scenarios (`cacerts`, `simpleenroll`, `simplereenroll`, `ocsp`, `delegated`) with N concurrent
//!   connections for T seconds and prints one JSON line per scenario and connection count.
//! - `estca-bench populate N --dir DIR`: writes N IDs, each with a certificate, directly into
//!   the store of a bench directory (offline), for the scale measurements.
//! - `estca-bench plot`: draws throughput and p99 latency against concurrency (SVG) from the
//!   JSON lines of `run`.
//!
//! The tool exits with a one-line reason on any failure; it never panics on input.

mod daemon;
mod http;
mod keys;
mod load;
mod plot;
mod populate;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The daemon's allocator (`src/main.rs`): `populate` runs the store and the registration
/// authority in this process, and should spend what the daemon would, not glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measures estca against the machine's limit.
#[derive(Debug, Parser)]
#[command(name = "estca-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs load scenarios against a daemon and prints one JSON line per measurement.
    Run(Box<load::RunArgs>),
    /// Writes N IDs with certificates directly into a bench directory's store (offline).
    Populate(populate::PopulateArgs),
    /// Draws throughput and p99 latency against connections from `run` output, as SVG.
    Plot(plot::PlotArgs),
}

fn main() -> ExitCode {
    // `populate` writes a database and a CA that `estca serve` then opens: private, as estca
    // makes its own (the daemon refuses database files that others may read).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => load::run(*args),
        Command::Populate(args) => populate::run(args),
        Command::Plot(args) => plot::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("estca-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where `cargo bench --bench issuance` writes the floor: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
fn default_floor_file() -> PathBuf {
    let dir = if let Some(home) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(home)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(target).join("criterion")
    } else {
        PathBuf::from("target/criterion")
    };
    dir.join("issuance-floor.json")
}
