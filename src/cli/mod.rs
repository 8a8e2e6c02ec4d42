//! The `estca` command line: `serve` and `init` run locally; every other command is a client
//! of the management API over the admin socket (`backup`, `restore` and `store migrate` open
//! the store themselves).

mod admin;
mod args;
mod client;
mod crl;
mod failure;
mod keys;
pub mod ops;
mod output;
mod root;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use serde_json::json;

use crate::ca::CertificateAuthority;
use crate::config::{Config, KeyAlgorithm};
use crate::ra::SystemClock;

pub use failure::{Failure, FailureKind};

use args::{AlgorithmArg, Cli, Command, InitArgs, LogFormatArg, StoreCommand};

use admin::administer;

/// Runs the command line; the process exits with the returned code.
pub fn main() -> ExitCode {
    // Whatever estca creates (database files, CA keys and certificates, backups) is for the
    // user it runs as only, whatever umask it was started with.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let json = cli.json;
    // Generated into memory, then written: the generators panic on a failed write (a closed
    // pipe), and these two need no configuration.
    let generated = match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "estca", &mut script);
            Some(Ok(script))
        }
        Command::Man => {
            let mut page = Vec::new();
            Some(
                clap_mangen::Man::new(Cli::command())
                    .render(&mut page)
                    .map(|()| page),
            )
        }
        _ => None,
    };
    if let Some(generated) = generated {
        return match generated
            .map_err(output::OutputError::Stdout)
            .and_then(|bytes| output::write(&bytes))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => Failure::from(e).report(json),
        };
    }
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return Failure::new(FailureKind::Configuration, e.to_string()).report(json),
    };
    if let Command::Serve {
        log_format: Some(format),
    } = cli.command
    {
        config.log.format = match format {
            LogFormatArg::Text => crate::config::LogFormat::Text,
            LogFormatArg::Json => crate::config::LogFormat::Json,
        };
    }
    let config_path = cli.config.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return Failure::from(format!("cannot start the async runtime: {e}")).report(json)
        }
    };
    let result: Result<(), Failure> = runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve(config, config_path).await,
            Command::Completions { .. } | Command::Man => Ok(()),
            Command::Init(args) => Ok(init(config, args, json)?),
            Command::CheckConfig => Ok(ops::check_config(&config, config_path.as_deref(), json)?),
            Command::Backup { file } => ops::backup(&config, &file, json).await,
            Command::Restore {
                file,
                allow_unsigned,
            } => Ok(ops::restore(&config, &file, allow_unsigned, json).await?),
            Command::Store(StoreCommand::Migrate) => Ok(ops::migrate(&config, json).await?),
            Command::Store(StoreCommand::Copy { from, to }) => {
                Ok(ops::copy(&config, &from, &to, json).await?)
            }
            Command::Store(StoreCommand::BindCa { replace }) => {
                Ok(ops::bind_ca(&config, replace, json).await?)
            }
            Command::Ca(command) => Ok(keys::run(&config, command, json)?),
            Command::Root(command) => Ok(root::run(config, command, json)?),
            Command::Admin(command) => administer(&config, command, json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(json),
    }
}

async fn serve(config: Config, config_path: Option<PathBuf>) -> Result<(), Failure> {
    let log = crate::logging::init(config.log.format, &config.log.level)
        .map_err(|e| Failure::new(FailureKind::Configuration, e.to_string()))?;
    for variable in crate::config::ConfigurationVariables::split(std::env::vars()).ignored {
        tracing::debug!(%variable, "not configuration (that is ESTCA_<SECTION>__<KEY>); ignored");
    }
    crate::reload::serve_until_signalled(config_path, config, Arc::new(SystemClock), log)
        .await
        .map_err(|e| {
            let kind = if e.needs_the_operator() {
                FailureKind::Configuration
            } else {
                FailureKind::Other
            };
            Failure::new(kind, e.to_string())
        })
}

/// `estca init`: creates the CA directory (0700) and the CA in it. Without a usable
/// passphrase it is refused before the directory is created, and a directory it created is
/// removed again when the CA cannot be created in it and it is still empty.
fn init(mut config: Config, args: InitArgs, json: bool) -> Result<(), String> {
    if let Some(algorithm) = args.algorithm {
        config.ca.key_algorithm = match algorithm {
            AlgorithmArg::P256 => KeyAlgorithm::P256,
            AlgorithmArg::P384 => KeyAlgorithm::P384,
        };
    }
    // With --offline-root and --pkcs11 the key stays in the token and the root is elsewhere:
    // no key file is written here, so there is nothing to encrypt and no passphrase to ask for.
    let passphrase = if args.offline_root && args.pkcs11.is_some() {
        None
    } else {
        keys::passphrase_for_init(&config.ca, args.unencrypted)?
    };
    let prepared = crate::private_dir::prepare(&config.ca.dir, crate::private_dir::Holds::CaFiles)
        .map_err(|e| e.to_string())?;
    if let crate::private_dir::Prepared::Tightened(mode) = prepared {
        eprintln!(
            "estca: tightened {} from mode {mode:04o} to 0700 (it held no CA files yet)",
            config.ca.dir.display()
        );
    }
    let result = init_in_dir(&config, &args, passphrase.as_ref(), json);
    if result.is_err() && prepared == crate::private_dir::Prepared::Created {
        // Removes the directory only if it is still empty; one holding anything stays, and
        // the error says what went wrong.
        let _ = std::fs::remove_dir(&config.ca.dir);
    }
    result
}

/// The part of `estca init` that runs in the prepared CA directory.
fn init_in_dir(
    config: &Config,
    args: &InitArgs,
    passphrase: Option<&crate::ca::KeyPassphrase>,
    json: bool,
) -> Result<(), String> {
    if args.offline_root {
        let token = args
            .pkcs11
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: crate::ca::CaError| e.to_string())?;
        let report = CertificateAuthority::request_issuing(&config.ca, passphrase, token.as_ref())
            .map_err(|e| e.to_string())?;
        if json {
            output::line(json!({
                "issuing_csr": report.csr,
                "issuing_key": report.key,
                "issuing_subject": report.subject,
            }))?;
        } else {
            output::line(&report)?;
        }
        return Ok(());
    }
    let report = match (&args.import_cert, &args.import_key) {
        (Some(cert), Some(key)) => CertificateAuthority::import(&config.ca, cert, key, passphrase),
        _ => match &args.pkcs11 {
            Some(uri) => uri
                .parse()
                .and_then(|uri| CertificateAuthority::init_in_token(&config.ca, passphrase, &uri)),
            None => CertificateAuthority::init(&config.ca, passphrase),
        },
    }
    .map_err(|e| e.to_string())?;
    if json {
        let time = crate::model::rfc3339;
        output::line(json!({
            "ca_dir": report.dir,
            "issuing_certificate": report.issuing_certificate,
            "issuing_key": report.issuing_key,
            "issuing_subject": report.issuing_subject,
            "issuing_not_after": time(report.issuing_not_after),
            "root_certificate": report.root_certificate,
            "root_key": report.root_key,
            "root_subject": report.root_subject,
        }))?;
    } else {
        output::line(&report)?;
    }
    Ok(())
}
