//! The `estca` command line: `serve` and `init` run locally; every other command is a client
//! of the management API over the admin socket (`backup`, `restore` and `store migrate` open
//! the store themselves).

mod client;
mod crl;
mod failure;
mod keys;
pub mod ops;
mod output;
mod root;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, Parser, Subcommand};
use serde_json::json;

use crate::api::{CertificateActionBody, CreatedApp, HistoryPage};
use crate::ca::CertificateAuthority;
use crate::config::{Config, KeyAlgorithm};
use crate::model::RevocationReason;
use crate::ra::{AccountView, AppView, CertificateView, ContractView, SystemClock};

use client::AdminClient;
pub use failure::{Failure, FailureKind};

/// `estca --version`: the version, the commit it was built from and that commit's date
/// (reproducible, unlike the time of the build), from `build.rs`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ESTCA_COMMIT"),
    ", ",
    env!("ESTCA_COMMIT_DATE"),
    ")"
);

/// The exit codes, shown by `--help` (and in the README, "Exit codes").
pub const EXIT_CODES: &str = "Exit codes: 0 success, 1 other failure, 2 wrong command-line usage, \
3 bad configuration, 4 daemon unreachable, 5 not found, 6 refused by the daemon.
With --json, results are JSON on standard output and a failure is one JSON object on standard \
error: {\"error\": \"not_found\", \"message\": \"...\"}.";

/// estca: a certificate authority daemon for ID-and-password enrollment over EST (RFC 7030).
#[derive(Debug, Parser)]
#[command(name = "estca", version, long_version = LONG_VERSION, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// Configuration file (default: /etc/estca/estca.toml if present, else the embedded defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print results as JSON on standard output, and a failure as a JSON object on standard
    /// error.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (EST over HTTPS, management API on the admin socket).
    Serve {
        /// Log format (default: log.format from the configuration, "text").
        #[arg(long, value_enum, value_name = "FORMAT")]
        log_format: Option<LogFormatArg>,
    },
    /// Print the shell completion script for SHELL, e.g.
    /// `estca completions bash > /etc/bash_completion.d/estca`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page estca(1) (roff), e.g. `estca man | man -l -`.
    Man,
    /// Create the root and issuing CA, or import an existing issuing CA.
    Init(InitArgs),
    /// Validate the configuration without starting anything and print the effective values.
    CheckConfig,
    /// Write a consistent snapshot of the running daemon's store, signed by the CA, to FILE
    /// (mode 0600).
    Backup {
        /// The backup file to write (replaced if it exists; never through a symbolic link);
        /// `-` writes to standard output, e.g. to encrypt it: `estca backup - | age -r …`.
        file: PathBuf,
    },
    /// Load a backup into the empty data directory of the configuration (daemon stopped),
    /// once its CA signature is verified.
    Restore {
        /// The backup file written by `estca backup`; `-` reads standard input.
        file: PathBuf,
        /// Also restore a version 1 backup (written before backups were signed). Nothing
        /// proves who wrote such a file: anyone who could edit it could have put in a password
        /// hash of their choosing and become that ID. Only for a file you took yourself and
        /// kept where no one else could write.
        #[arg(long)]
        allow_unsigned: bool,
    },
    /// The store itself, run locally.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The CA's key files, run locally.
    #[command(subcommand)]
    Ca(keys::CaCommand),
    /// The offline root, run on the machine that holds its key (never the daemon's host).
    #[command(subcommand)]
    Root(root::RootCommand),
    /// Commands sent to the running daemon over the admin socket.
    #[command(flatten)]
    Admin(AdminCommand),
}

/// `estca store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create or upgrade the store's schema (PostgreSQL) or row format (sled, fjall), as the
    /// daemon does at start; refuses a store newer than this estca.
    Migrate,
    /// Copy every record of one store into another, empty one, with every daemon stopped,
    /// then verify that both hold the same records: e.g. from sled to PostgreSQL.
    Copy {
        /// The source: sled:DIR, fjall:DIR (a data directory) or postgres:URL.
        #[arg(long, value_name = "BACKEND:WHERE")]
        from: String,
        /// The destination, empty: sled:DIR, fjall:DIR or postgres:URL (the password as
        /// store.postgres.* of the configuration says).
        #[arg(long, value_name = "BACKEND:WHERE")]
        to: String,
    },
}

/// The commands that talk to the running daemon.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Contracts (corporate customers).
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Accounts (master and public IDs) and the administrator's certificate choices.
    #[command(subcommand)]
    Account(AccountCommand),
    /// History, newest first (利用履歴照会).
    History(HistoryArgs),
    /// Certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// The certificate revocation list the daemon publishes.
    #[command(subcommand)]
    Crl(crl::CrlCommand),
    /// Application credentials (other systems that delegate issuance to estca).
    #[command(subcommand)]
    App(AppCommand),
}

/// `estca app ...`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Grant an application a scope and print its client certificate (PEM, then the issuing CA).
    Add {
        /// The application's name (the CN of its certificate).
        name: String,
        /// The contracts it may manage, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        contracts: Vec<String>,
        /// Every contract, present and future.
        #[arg(long)]
        all: bool,
        /// Also allow it to create contracts and master IDs (requires --all).
        #[arg(long)]
        can_create_contracts: bool,
        /// The application's CSR (PEM or base64 DER); its key stays with the application.
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// A host the application also serves TLS for (DNS name or IP address; repeat, or
        /// separate with commas): an EST registration authority such as libest's estproxy
        /// shows its one certificate to the devices behind it too, so the certificate names
        /// these hosts (subjectAltName) and carries serverAuth.
        #[arg(long = "host", value_name = "HOST", value_delimiter = ',')]
        hosts: Vec<String>,
    },
    /// List application credentials.
    List,
    /// Revoke an application credential and its certificate, for good.
    Revoke {
        /// The application's name.
        name: String,
    },
}

/// `estca init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Key algorithm of the new CA keys (default from the configuration: p256).
    #[arg(long, value_enum)]
    pub algorithm: Option<AlgorithmArg>,
    /// Import this issuing CA certificate (PEM, optionally followed by its chain) instead of creating one.
    #[arg(long, value_name = "FILE", requires = "import_key")]
    pub import_cert: Option<PathBuf>,
    /// The private key (PEM) of the imported issuing CA.
    #[arg(long, value_name = "FILE", requires = "import_cert")]
    pub import_key: Option<PathBuf>,
    /// Generate the issuing CA's key inside this PKCS#11 token instead of a key file
    /// (`pkcs11:token=LABEL;object=LABEL?module-path=MODULE`, RFC 7512), with the PIN of
    /// ca.pkcs11_pin_file or its systemd credential; then set ca.key to it.
    #[arg(long, value_name = "URI", conflicts_with = "import_cert")]
    pub pkcs11: Option<String>,
    /// Leave the root to an offline machine: write only the issuing CA's key (encrypted, or
    /// in the token of --pkcs11) and a certificate request, issuing-ca.csr, for
    /// `estca root sign-issuing`; then install its answer with `estca ca install-issuing`.
    #[arg(long, conflicts_with = "import_cert")]
    pub offline_root: bool,
    /// Write the key files unencrypted even though the configuration is for production
    /// (`ca.create_if_missing = false`), where they are encrypted with the configured
    /// passphrase by default.
    #[arg(long)]
    pub unencrypted: bool,
}

/// Log formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// CA key algorithms.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AlgorithmArg {
    /// ECDSA P-256 with SHA-256.
    P256,
    /// ECDSA P-384 with SHA-384.
    P384,
}

/// `estca contract ...`.
#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Create a contract.
    Add {
        /// Contract code (written after the ID in certificate names).
        #[arg(value_parser = contract_code)]
        code: String,
        /// Customer name.
        #[arg(long)]
        name: String,
        /// Let its IDs have estca generate their key pair (EST serverkeygen); off unless
        /// given. The private key then travels from estca to the device (over TLS).
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        server_keygen: Option<bool>,
    },
    /// Change a contract's options.
    Edit {
        /// Contract code.
        #[arg(value_parser = contract_code)]
        code: String,
        /// Allow (true, or the flag alone) or refuse (false) EST serverkeygen to its IDs.
        #[arg(
            long,
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true",
            required = true
        )]
        server_keygen: Option<bool>,
    },
    /// Show a contract and its options.
    Show {
        /// Contract code.
        #[arg(value_parser = contract_code)]
        code: String,
    },
    /// List contracts.
    List,
}

/// `estca account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an ID; the password is read from standard input (--password-stdin).
    Add {
        /// Login ID; left out, estca chooses an unguessable one and prints it.
        #[arg(value_parser = account_id)]
        id: Option<String>,
        /// Its contract's code.
        #[arg(long, value_parser = contract_code)]
        contract: String,
        /// master (管理者) or user (利用者).
        #[arg(long, value_parser = ["master", "user"])]
        role: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Read the password from standard input: one line from a pipe, or typed twice at a
        /// prompt without echo when it is a terminal (required: passwords never go on the
        /// command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an ID's password, read from standard input (--password-stdin); this also unlocks
    /// the ID and clears its failure count (the help desk's reset).
    Passwd {
        /// Login ID.
        #[arg(value_parser = account_id)]
        id: String,
        /// Read the password from standard input: one line from a pipe, or typed twice at a
        /// prompt without echo when it is a terminal (required).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List IDs.
    List {
        /// Only this contract's IDs.
        #[arg(long, value_parser = contract_code)]
        contract: Option<String>,
    },
    /// Show an ID: state, lock, failures, current certificate.
    Show {
        /// Login ID.
        #[arg(value_parser = account_id)]
        id: String,
    },
    /// 再発行する: allow the next enrollment, which supersedes the current certificate.
    Reissue {
        /// Login ID.
        #[arg(value_parser = account_id)]
        id: String,
    },
    /// 継続利用する: cancel a pending reissue.
    Continue {
        /// Login ID.
        #[arg(value_parser = account_id)]
        id: String,
    },
    /// 失効する: revoke the current certificate now; enrollment is refused until reissue.
    Revoke {
        /// Login ID.
        #[arg(value_parser = account_id)]
        id: String,
        /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// IDロック解除: unlock an ID locked by wrong passwords.
    Unlock {
        /// Login ID.
        #[arg(value_parser = account_id)]
        id: String,
    },
    /// Remove an ID for good: its active certificate is revoked (cessationOfOperation), it
    /// can never log in or be created again, and its certificates and history stay. Asks for
    /// confirmation on a terminal.
    Remove {
        /// Login ID.
        #[arg(value_parser = account_id)]
        id: String,
        /// Do not ask for confirmation (required when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// `estca history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this ID.
    #[arg(value_parser = account_id)]
    pub id: Option<String>,
    /// At most this many entries per page.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Start at this page: the `next_cursor` a previous answer printed.
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Every page, following `next_cursor` to the oldest entry.
    #[arg(long)]
    pub all: bool,
}

/// `estca cert ...`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Show a certificate by serial (hex).
    Show {
        /// Serial, hex (colons allowed).
        serial: String,
    },
}

/// An ID given on the command line, checked as the daemon checks it, so that a wrong one is
/// refused with the rule it breaks before anything is sent.
fn account_id(text: &str) -> Result<String, crate::model::InvalidValue> {
    text.parse::<crate::model::AccountId>()
        .map(|_| text.to_owned())
}

/// A contract code given on the command line, checked as [`account_id`] checks IDs.
fn contract_code(text: &str) -> Result<String, crate::model::InvalidValue> {
    text.parse::<crate::model::ContractCode>()
        .map(|_| text.to_owned())
}

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
        use std::io::Write;
        return match generated.and_then(|bytes| std::io::stdout().write_all(&bytes)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => Failure::from(format!("cannot write to standard output: {e}")).report(json),
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
            Command::Serve { .. } => Ok(serve(config, config_path).await?),
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

async fn serve(config: Config, config_path: Option<PathBuf>) -> Result<(), String> {
    let log =
        crate::logging::init(config.log.format, &config.log.level).map_err(|e| e.to_string())?;
    for variable in crate::config::ConfigurationVariables::split(std::env::vars()).ignored {
        tracing::debug!(%variable, "not configuration (that is ESTCA_<SECTION>__<KEY>); ignored");
    }
    crate::reload::serve_until_signalled(config_path, config, Arc::new(SystemClock), log)
        .await
        .map_err(|e| e.to_string())
}

fn init(mut config: Config, args: InitArgs, json: bool) -> Result<(), String> {
    if let Some(algorithm) = args.algorithm {
        config.ca.key_algorithm = match algorithm {
            AlgorithmArg::P256 => KeyAlgorithm::P256,
            AlgorithmArg::P384 => KeyAlgorithm::P384,
        };
    }
    if let crate::private_dir::Prepared::Tightened(mode) =
        crate::private_dir::prepare(&config.ca.dir, crate::private_dir::Holds::CaFiles)
            .map_err(|e| e.to_string())?
    {
        eprintln!(
            "estca: tightened {} from mode {mode:04o} to 0700 (it held no CA files yet)",
            config.ca.dir.display()
        );
    }
    if args.offline_root {
        // With --pkcs11 the key stays in the token and the root is elsewhere: no key file is
        // written here, so there is nothing to encrypt and no passphrase to ask for.
        let passphrase = if args.pkcs11.is_some() {
            None
        } else {
            keys::passphrase_for_init(&config.ca, args.unencrypted)?
        };
        let token = args
            .pkcs11
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: crate::ca::CaError| e.to_string())?;
        let report =
            CertificateAuthority::request_issuing(&config.ca, passphrase.as_ref(), token.as_ref())
                .map_err(|e| e.to_string())?;
        if json {
            println!(
                "{}",
                json!({
                    "issuing_csr": report.csr,
                    "issuing_key": report.key,
                    "issuing_subject": report.subject,
                })
            );
        } else {
            println!("{report}");
        }
        return Ok(());
    }
    let passphrase = keys::passphrase_for_init(&config.ca, args.unencrypted)?;
    let report = match (&args.import_cert, &args.import_key) {
        (Some(cert), Some(key)) => {
            CertificateAuthority::import(&config.ca, cert, key, passphrase.as_ref())
        }
        _ => match &args.pkcs11 {
            Some(uri) => uri.parse().and_then(|uri| {
                CertificateAuthority::init_in_token(&config.ca, passphrase.as_ref(), &uri)
            }),
            None => CertificateAuthority::init(&config.ca, passphrase.as_ref()),
        },
    }
    .map_err(|e| e.to_string())?;
    if json {
        let time = |t| crate::ra::policy::rfc3339(t);
        println!(
            "{}",
            json!({
                "ca_dir": report.dir,
                "issuing_certificate": report.issuing_certificate,
                "issuing_key": report.issuing_key,
                "issuing_subject": report.issuing_subject,
                "issuing_not_after": time(report.issuing_not_after),
                "root_certificate": report.root_certificate,
                "root_key": report.root_key,
                "root_subject": report.root_subject,
            })
        );
    } else {
        println!("{report}");
    }
    Ok(())
}

/// The password of `--password-stdin`: typed twice at a prompt without echo when standard input
/// is a terminal, else one line of standard input (without its line ending).
fn password_from_stdin(flag: bool) -> Result<zeroize::Zeroizing<String>, String> {
    if !flag {
        return Err("give --password-stdin and write the password on standard input (passwords never go on the command line)".into());
    }
    let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let prompt = |text: &str| {
            rpassword::prompt_password(text)
                .map(zeroize::Zeroizing::new)
                .map_err(|e| format!("cannot read the password from the terminal: {e}"))
        };
        let first = prompt("Password: ")?;
        if *prompt("Password again: ")? != *first {
            return Err("the two passwords differ; nothing was changed".into());
        }
        first
    } else {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    if password.is_empty() {
        return Err("no password on standard input".into());
    }
    Ok(password)
}

/// Asks on the terminal whether to remove the ID `view` shows (its ID and name, and what
/// removal does), unless standard input is not a terminal, where `--yes` is required.
fn confirm_removal(view: &AccountView) -> Result<(), String> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(format!(
            "removing an ID cannot be undone: confirm on a terminal, or give --yes (estca account remove {} --yes)",
            view.id
        ));
    }
    let certificate = match &view.certificate {
        Some(c) if c.status == crate::model::CertificateStatus::Active => format!(
            "its certificate {} will be revoked (cessationOfOperation)",
            c.serial
        ),
        _ => "it has no certificate to revoke".to_owned(),
    };
    eprint!(
        "Remove the {} ID {} ({}) of contract {}? {certificate}; the ID can never log in or be \
         created again (its certificates and history stay). Type yes to remove it: ",
        view.role, view.id, view.name, view.contract
    );
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| format!("cannot read the answer from the terminal: {e}"))?;
    if answer.trim() != "yes" {
        return Err(format!("not removed: {} is unchanged", view.id));
    }
    Ok(())
}

/// What a path segment given on the command line keeps as it is: letters, digits and
/// `-_.@`; everything else is percent-encoded (RFC 3986 section 2.1).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'@');

/// Percent-encodes a path segment given on the command line.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

async fn administer(config: &Config, command: AdminCommand, json: bool) -> Result<(), Failure> {
    let client = AdminClient::new(&config.admin.socket);
    let print_account = |view: &AccountView| output::account(view, json);
    match command {
        AdminCommand::Contract(ContractCommand::Add {
            code,
            name,
            server_keygen,
        }) => {
            let contract: ContractView = client
                .post(
                    "/api/v1/contracts",
                    &json!({
                        "code": code, "name": name,
                        "server_keygen": server_keygen.unwrap_or(false),
                    }),
                )
                .await?;
            output::contract_created(&contract, json);
        }
        AdminCommand::Contract(ContractCommand::Edit {
            code,
            server_keygen,
        }) => {
            let contract: ContractView = client
                .patch(
                    &format!("/api/v1/contracts/{}", segment(&code)),
                    &json!({ "server_keygen": server_keygen.unwrap_or(true) }),
                )
                .await?;
            output::contract(&contract, json);
        }
        AdminCommand::Contract(ContractCommand::Show { code }) => {
            let contract: ContractView = client
                .get(&format!("/api/v1/contracts/{}", segment(&code)))
                .await?;
            output::contract(&contract, json);
        }
        AdminCommand::Contract(ContractCommand::List) => {
            let contracts: Vec<ContractView> = client.get_all("/api/v1/contracts").await?;
            output::contracts(&contracts, json);
        }
        AdminCommand::Account(AccountCommand::Add {
            id,
            contract,
            role,
            name,
            password_stdin,
        }) => {
            let password = password_from_stdin(password_stdin)?;
            let mut body = json!({
                "contract": contract, "role": role, "name": name,
                "password": password.as_str(),
            });
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            let view: AccountView = client.post("/api/v1/accounts", &body).await?;
            print_account(&view);
        }
        AdminCommand::Account(AccountCommand::Passwd { id, password_stdin }) => {
            let password = password_from_stdin(password_stdin)?;
            let view: AccountView = client
                .patch(
                    &format!("/api/v1/accounts/{}", segment(&id)),
                    &json!({ "password": password.as_str() }),
                )
                .await?;
            print_account(&view);
        }
        AdminCommand::Account(AccountCommand::List { contract }) => {
            let path = match contract {
                Some(c) => format!("/api/v1/accounts?contract={}", segment(&c)),
                None => "/api/v1/accounts".to_owned(),
            };
            let views: Vec<AccountView> = client.get_all(&path).await?;
            output::accounts(&views, json);
        }
        AdminCommand::Account(AccountCommand::Show { id }) => {
            let view: AccountView = client
                .get(&format!("/api/v1/accounts/{}", segment(&id)))
                .await?;
            print_account(&view);
        }
        AdminCommand::Account(AccountCommand::Reissue { id }) => {
            certificate_action(&client, &id, "reissue", None, json).await?
        }
        AdminCommand::Account(AccountCommand::Continue { id }) => {
            certificate_action(&client, &id, "continue", None, json).await?
        }
        AdminCommand::Account(AccountCommand::Revoke { id, reason }) => {
            let reason: RevocationReason = reason
                .parse()
                .map_err(|e: crate::model::InvalidValue| e.0)?;
            certificate_action(&client, &id, "revoke", Some(reason.name().to_owned()), json).await?
        }
        AdminCommand::Account(AccountCommand::Unlock { id }) => {
            let view: AccountView = client
                .post(
                    &format!("/api/v1/accounts/{}/unlock", segment(&id)),
                    &json!({}),
                )
                .await?;
            print_account(&view);
        }
        AdminCommand::Account(AccountCommand::Remove { id, yes }) => {
            let path = format!("/api/v1/accounts/{}", segment(&id));
            if !yes {
                let view: AccountView = client.get(&path).await?;
                confirm_removal(&view)?;
            }
            let view: AccountView = client.post(&format!("{path}/remove"), &json!({})).await?;
            print_account(&view);
        }
        AdminCommand::History(HistoryArgs {
            id,
            limit,
            cursor,
            all,
        }) => {
            let mut query = format!("/api/v1/history?limit={limit}");
            if let Some(id) = id {
                query.push_str(&format!("&account={}", segment(&id)));
            }
            let mut page = HistoryPage {
                entries: Vec::new(),
                next_cursor: cursor,
            };
            loop {
                let path = match &page.next_cursor {
                    Some(cursor) => format!("{query}&cursor={}", segment(cursor)),
                    None => query.clone(),
                };
                let next: HistoryPage = client.get(&path).await?;
                page.entries.extend(next.entries);
                page.next_cursor = next.next_cursor;
                if !all || page.next_cursor.is_none() {
                    break;
                }
            }
            output::history(&page, json);
        }
        AdminCommand::App(AppCommand::Add {
            name,
            contracts,
            all,
            can_create_contracts,
            csr,
            hosts,
        }) => {
            let csr = std::fs::read_to_string(&csr)
                .map_err(|e| format!("cannot read the CSR {}: {e}", csr.display()))?;
            let body = json!({
                "name": name,
                "contracts": if all { None } else { Some(contracts) },
                "all": all,
                "can_create_contracts": can_create_contracts,
                "csr": csr,
                "hosts": hosts,
            });
            let created: CreatedApp = client.post("/api/v1/apps", &body).await?;
            output::app_created(&created, json);
        }
        AdminCommand::App(AppCommand::List) => {
            let apps: Vec<AppView> = client.get_all("/api/v1/apps").await?;
            output::apps(&apps, json);
        }
        AdminCommand::App(AppCommand::Revoke { name }) => {
            let app: AppView = client
                .post(
                    &format!("/api/v1/apps/{}/revoke", segment(&name)),
                    &json!({}),
                )
                .await?;
            output::apps(&[app], json);
        }
        AdminCommand::Cert(CertCommand::Show { serial }) => {
            let view: CertificateView = client
                .get(&format!("/api/v1/certificates/{}", segment(&serial)))
                .await?;
            output::certificate(&view, json);
        }
        AdminCommand::Crl(command) => crl::run(&client, command, json).await?,
    }
    Ok(())
}

async fn certificate_action(
    client: &AdminClient<'_>,
    id: &str,
    action: &str,
    reason: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let view: AccountView = client
        .post(
            &format!("/api/v1/accounts/{}/certificate", segment(id)),
            &CertificateActionBody {
                action: action.to_owned(),
                reason,
            },
        )
        .await?;
    output::account(&view, json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn path_segments_are_percent_encoded_but_for_unreserved_characters() {
        assert_eq!(segment("nozawa1"), "nozawa1");
        assert_eq!(segment("a.b-c_d@e"), "a.b-c_d@e");
        assert_eq!(segment("../x y/?#"), "..%2Fx%20y%2F%3F%23");
        assert_eq!(segment("大手"), "%E5%A4%A7%E6%89%8B");
    }
}
