//! What the `estca` command line accepts (clap's derive types), with `--help`'s texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::model::RevocationReason;

use super::{crl, keys, root};

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
    /// Bind the configured database to the CA of ca.dir, as the daemon's first start does
    /// (a daemon whose CA directory holds another CA is refused on a bound database).
    BindCa {
        /// Bind it even if it belongs to another CA: for moving a database to a new CA for
        /// good, with every daemon using it stopped.
        #[arg(long)]
        replace: bool,
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

/// The revocation reasons `--reason` accepts, by their RFC 5280 names: clap refuses any other
/// as a usage error (exit code 2) and lists these.
impl clap::ValueEnum for RevocationReason {
    fn value_variants<'a>() -> &'a [Self] {
        &RevocationReason::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
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
        /// RFC 5280 reason (any case).
        #[arg(long, value_enum, ignore_case = true, default_value_t = RevocationReason::Unspecified)]
        reason: RevocationReason,
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
pub(super) fn account_id(text: &str) -> Result<String, crate::model::InvalidValue> {
    text.parse::<crate::model::AccountId>()
        .map(|_| text.to_owned())
}

/// A contract code given on the command line, checked as [`account_id`] checks IDs.
fn contract_code(text: &str) -> Result<String, crate::model::InvalidValue> {
    text.parse::<crate::model::ContractCode>()
        .map(|_| text.to_owned())
}
