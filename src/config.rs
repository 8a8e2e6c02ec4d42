//! The daemon's configuration: embedded defaults, then a TOML file, then `ESTCA_*` environment
//! variables (`__` between nesting levels, e.g. `ESTCA_SERVER__LISTEN=127.0.0.1:9443`).
//!
//! Every struct refuses unknown keys, so a typo is reported with its name instead of being
//! silently ignored, and [`Config::validate`] checks what serde cannot (ranges, relations).
//! Only `ESTCA_<SECTION>__<KEY>` variables are configuration: others starting with `ESTCA_`
//! (Kubernetes sets `ESTCA_SERVICE_HOST`, `ESTCA_PORT`, … for a Service named `estca`) are
//! ignored. Every error names where the key was set ([`Origin`]).

mod origin;

pub use origin::{ConfigurationVariables, Origin};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The defaults compiled into the binary (`config/defaults.toml`).
pub const DEFAULTS_TOML: &str = include_str!("../config/defaults.toml");

/// Where production configuration is read from when `--config` is not given.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/estca/estca.toml";

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or parsed into the expected shape.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A key of the file or environment is unknown, has the wrong type, or its value is not
    /// acceptable; `origin` says where it was set.
    #[error("configuration: {key} ({origin}): {reason}")]
    Key {
        /// The dotted key, e.g. `server.listen`.
        key: String,
        /// The file line or environment variable that set it.
        origin: Origin,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A value parsed but is not acceptable.
    #[error("configuration: {key}: {reason}")]
    Invalid {
        /// The dotted key, e.g. `auth.max_failed_attempts`.
        key: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTPS listener (EST and, later, the management API).
    pub server: ServerConfig,
    /// Where the database lives.
    pub store: StoreConfig,
    /// The operator's admin socket.
    pub admin: AdminConfig,
    /// The CA hierarchy.
    pub ca: CaConfig,
    /// The end-entity certificate profile.
    pub certificate: CertificateConfig,
    /// Passwords and lockout.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// The Prometheus metrics and health listener.
    pub metrics: MetricsConfig,
    /// Publishing revocation status (CRL, OCSP) to relying parties.
    pub revocation: RevocationConfig,
    /// What EST answers look like, and what renewal asks of the key.
    pub est: EstConfig,
}

/// What EST answers look like, and what renewal asks of the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstConfig {
    /// Base64 answers on one line instead of RFC 2045's lines of 76 characters (RFC 7030
    /// asks for the latter; the `est-ca` crate's client reads only the former).
    pub single_line_base64: bool,
    /// Refuse a `simplereenroll` whose CSR carries the key of the certificate being renewed
    /// (RFC 7030 section 4.2.2 allows renewal with the same key; libest always does it).
    pub renewal_requires_new_key: bool,
}

/// Publishing revocation status (CRL, OCSP) to relying parties.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationConfig {
    /// Base URL relying parties reach the revocation routes at (`/crl`, `/ocsp`, `/ca.crt`);
    /// written into every issued certificate. Empty: certificates carry no CRL distribution
    /// point and no AIA.
    pub public_url: String,
    /// Plain-HTTP listener for `/crl`, `/crl.pem`, `/ocsp`, `/ca.crt`, `/ca.pem`; `""` or
    /// `"off"` disables it (the routes stay on the HTTPS port).
    pub listen: String,
    /// Hours between a CRL's thisUpdate and nextUpdate.
    pub crl_next_update_hours: u32,
    /// Minutes between an OCSP response's thisUpdate and nextUpdate.
    pub ocsp_next_update_minutes: u32,
    /// Validity of the delegated OCSP signing certificate, in hours; a new one is issued
    /// when half of it has passed.
    pub ocsp_signer_validity_hours: u32,
    /// Longest `Cache-Control: max-age` of CRL and OCSP GET answers, in seconds, so that
    /// HTTP caches pass a revocation on within that time.
    pub http_max_age_secs: u32,
    /// Connections the plain-HTTP revocation listener serves at once: a budget of its own,
    /// so that a flood of it cannot block enrollment, nor one of HTTPS block `/crl`.
    pub max_connections: usize,
    /// Of those, connections one source may hold (see `server.ipv6_source_prefix`); further
    /// ones from it are closed at once. 1 to `max_connections`.
    pub max_connections_per_source: usize,
}

impl RevocationConfig {
    /// The plain-HTTP listener's address, or `None` when disabled.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match self.listen.trim() {
            "" | "off" => Ok(None),
            text => text.parse().map(Some).map_err(|_| ConfigError::Invalid {
                key: "revocation.listen",
                reason: format!(
                    "'{text}' is not an address and port such as \"0.0.0.0:8080\" (or \"off\")"
                ),
            }),
        }
    }
}

/// The HTTPS listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Names (DNS names or IP addresses) the self-issued server certificate is valid for.
    pub hostnames: Vec<String>,
    /// PEM certificate chain for the TLS server; when absent the CA issues one at start-up.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key matching `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout_secs: u64,
    /// Time a request may take end to end.
    pub request_timeout_secs: u64,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Connections the HTTPS listener serves at once; further ones get a quick 503.
    pub max_connections: usize,
    /// Of those, connections one source may hold (an IPv4 address, an IPv6 network of
    /// `ipv6_source_prefix` bits); further ones from it are closed at once. 1 to
    /// `max_connections`.
    pub max_connections_per_source: usize,
    /// Seconds a new connection may stay silent (no TLS byte on HTTPS, no request byte on
    /// the plain-HTTP listeners) before it is closed; much shorter than the handshake and
    /// header timeouts, so that idle connections cannot hold the budgets.
    pub first_byte_timeout_secs: u64,
    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// IPv6 clients are counted per network of this prefix length by the per-source limits
    /// (an IPv6 host can pick a new address from its /64 for every request); 1 to 128.
    pub ipv6_source_prefix: u8,
}

/// Where the database lives, and which engine keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The data directory; the database is `<path>/db` (sled) or `<path>/fjall` (fjall).
    pub path: PathBuf,
    /// The engine.
    pub backend: StoreBackend,
    /// MiB of block cache of the fjall backend (sled's cache is fixed at 128 MiB): what the
    /// store keeps in memory beside its 32 MiB of write buffers; the rest is read from the
    /// operating system's file cache.
    pub cache_mib: u32,
    /// The PostgreSQL database of `backend = "postgres"`.
    pub postgres: PostgresConfig,
}

/// The engine of the store. Data moves from one to another with `estca backup` and
/// `estca restore`, never by switching this setting on a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// sled, in `<path>/db` (the default).
    Sled,
    /// fjall, a log-structured merge-tree with compressed blocks, in `<path>/fjall`.
    Fjall,
    /// A PostgreSQL database (`store.postgres`), which several daemons may share.
    Postgres,
}

impl StoreBackend {
    /// The directory of this engine's database under the data directory (PostgreSQL keeps
    /// nothing there: `None`).
    pub fn directory(self) -> Option<&'static str> {
        match self {
            StoreBackend::Sled => Some("db"),
            StoreBackend::Fjall => Some("fjall"),
            StoreBackend::Postgres => None,
        }
    }

    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            StoreBackend::Sled => "sled",
            StoreBackend::Fjall => "fjall",
            StoreBackend::Postgres => "postgres",
        }
    }
}

/// How to reach the PostgreSQL database of `store.backend = "postgres"`. The password is
/// never part of the URL (which appears in logs and errors): it is read from a file or a
/// systemd credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://USER@HOST:PORT/DATABASE` (libpq URL syntax; a Unix socket directory as
    /// the host, percent-encoded), without a password.
    pub url: String,
    /// PEM file of the CA certificates that issue the database server's certificate: every
    /// connection is then TLS, the server's certificate verified against them and its name
    /// against the URL's host. Unset: plain connections (a Unix socket or a trusted network).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A file holding the password (its first line); unset: the systemd credential.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The name of the systemd credential holding the password
    /// (`$CREDENTIALS_DIRECTORY/<name>`, from `LoadCredential=`), read when `password_file`
    /// is unset; neither present: no password (peer or certificate authentication).
    pub password_credential: String,
    /// Connections the daemon keeps open at most.
    pub pool_size: usize,
    /// Seconds to wait for a connection to the database before giving up.
    pub connect_timeout_secs: u64,
}

/// Checks that `name`, the value of `key`, can name a systemd credential: a plain file name
/// under `$CREDENTIALS_DIRECTORY`, not empty, hidden or a path.
fn check_credential_name(key: &'static str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be a credential name (a file name under $CREDENTIALS_DIRECTORY)"
                .to_owned(),
        });
    }
    Ok(())
}

impl PostgresConfig {
    /// Checks the URL (parsable, no password in it; required for the postgres backend), the
    /// pool size and the timeout.
    fn validate(&self, backend: StoreBackend) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        if self.url.is_empty() {
            if backend == StoreBackend::Postgres {
                return Err(invalid(
                    "store.postgres.url",
                    "is required with store.backend = \"postgres\" (postgres://USER@HOST:PORT/DATABASE)",
                ));
            }
        } else {
            let parsed =
                self.url
                    .parse::<tokio_postgres::Config>()
                    .map_err(|e| ConfigError::Invalid {
                        key: "store.postgres.url",
                        reason: format!(
                            "is not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE): {e}"
                        ),
                    })?;
            if parsed.get_password().is_some() {
                return Err(invalid(
                    "store.postgres.url",
                    "must not hold a password (it would show in logs and process listings): put it in the file store.postgres.password_file names, or in the systemd credential store.postgres.password_credential names",
                ));
            }
            if parsed.get_hosts().is_empty() {
                return Err(invalid("store.postgres.url", "names no host"));
            }
            if parsed.get_ssl_mode() == tokio_postgres::config::SslMode::Require
                && self.ca_file.is_none()
            {
                return Err(invalid(
                    "store.postgres.url",
                    "asks for TLS (sslmode=require): set store.postgres.ca_file to the CA certificates that issue the database server's certificate",
                ));
            }
        }
        check_credential_name(
            "store.postgres.password_credential",
            &self.password_credential,
        )?;
        if !(1..=1000).contains(&self.pool_size) {
            return Err(invalid("store.postgres.pool_size", "must be 1 to 1000"));
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            return Err(invalid(
                "store.postgres.connect_timeout_secs",
                "must be 1 to 300 seconds",
            ));
        }
        Ok(())
    }
}

impl Default for PostgresConfig {
    /// The embedded defaults' values.
    fn default() -> Self {
        Self {
            url: String::new(),
            password_file: None,
            ca_file: None,
            password_credential: "postgres-password".into(),
            pool_size: 16,
            connect_timeout_secs: 10,
        }
    }
}

/// The operator's admin socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Path of the Unix socket.
    pub socket: PathBuf,
    /// Its permission bits, octal text such as `"0600"` or `"0660"`.
    pub socket_mode: String,
    /// Connections the admin socket serves at once, so that a local process cannot exhaust
    /// the daemon's file descriptors through it.
    pub max_connections: usize,
}

impl AdminConfig {
    /// The socket's permission bits.
    pub fn mode(&self) -> Result<u32, ConfigError> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777 && m & 0o007 == 0)
            .ok_or_else(|| ConfigError::Invalid {
                key: "admin.socket_mode",
                reason: format!(
                    "'{}' is not an octal mode without permissions for others (e.g. \"0600\" or \"0660\")",
                    self.socket_mode
                ),
            })
    }
}

/// The key algorithm of CA keys that `estca init` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// ECDSA with NIST P-256 and SHA-256.
    P256,
    /// ECDSA with NIST P-384 and SHA-384.
    P384,
}

/// The CA hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// Directory holding `root-ca.pem`, `root-ca.key`, `issuing-ca.pem`, `issuing-ca.key`.
    pub dir: PathBuf,
    /// Create a development hierarchy at start-up when none exists.
    pub create_if_missing: bool,
    /// Key algorithm for `estca init`.
    pub key_algorithm: KeyAlgorithm,
    /// C of the CA names and of issued certificates.
    pub country: String,
    /// O of the CA names and of issued certificates.
    pub organization: String,
    /// CN of the root CA.
    pub root_name: String,
    /// CN of the issuing CA, and the first OU of issued certificates.
    pub issuing_name: String,
    /// Validity of a root created by `estca init`.
    pub root_validity_years: u32,
    /// Validity of an issuing CA created by `estca init`.
    pub issuing_validity_years: u32,
    /// Validity of the TLS server certificate the CA issues itself at start-up.
    pub server_cert_validity_days: u32,
    /// Days before the issuing CA's notAfter from which the daemon warns (at start and
    /// reload). Enrollment stops one year before that notAfter, so this must exceed a year.
    pub expiry_warning_days: u32,
    /// A file holding the passphrase of the encrypted CA key files (its first line); unset:
    /// the systemd credential `key_passphrase_credential`. Never the passphrase itself, so
    /// that it shows in no configuration dump, process listing or log.
    #[serde(default)]
    pub key_passphrase_file: Option<PathBuf>,
    /// The name of the systemd credential holding that passphrase
    /// (`$CREDENTIALS_DIRECTORY/<name>`, from `LoadCredential=` or `LoadCredentialEncrypted=`),
    /// read when `key_passphrase_file` is unset; neither present: the key files must be
    /// unencrypted.
    pub key_passphrase_credential: String,
    /// Where the issuing CA's key is: empty for the file `issuing-ca.key`, or an RFC 7512
    /// PKCS#11 URI (`pkcs11:token=LABEL;object=LABEL?module-path=/path/to/module.so`) for a
    /// key in an HSM, which then signs everything the issuing CA signs.
    pub key: String,
    /// A file holding the PKCS#11 user PIN (its first line); unset: the systemd credential
    /// `pkcs11_pin_credential`.
    #[serde(default)]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// The name of the systemd credential holding the PKCS#11 PIN, read when
    /// `pkcs11_pin_file` is unset.
    pub pkcs11_pin_credential: String,
    /// The offline root's ARL (`estca root sign-arl` writes it as `root.crl`), served at
    /// `/root.crl` and re-read when it changes; unset: `root.crl` in `dir`, if present.
    #[serde(default)]
    pub root_crl: Option<PathBuf>,
    /// Days before the ARL's nextUpdate from which the daemon warns (at start, on reload and
    /// hourly); once it has passed, it logs an error.
    pub root_crl_warning_days: u32,
}

impl CaConfig {
    /// The ARL file the daemon serves: `root_crl`, else `root.crl` in `dir`.
    pub fn root_crl_path(&self) -> PathBuf {
        self.root_crl
            .clone()
            .unwrap_or_else(|| self.dir.join("root.crl"))
    }
}

/// The end-entity certificate profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// CN template; `{id}` and `{contract}` are replaced.
    pub common_name_template: String,
}

/// Passwords and lockout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Consecutive wrong passwords that lock an ID.
    pub max_failed_attempts: u32,
    /// Argon2id memory cost in KiB (OWASP minimum: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP minimum with 19 MiB: 2).
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Password hashes computed at once (each takes `argon2_memory_kib`).
    pub max_concurrent_hashes: usize,
    /// Password checks allowed to wait for a hashing slot; beyond that, 503.
    pub max_queued_hashes: usize,
    /// Failed authentications one source address may make per `failure_window_secs` before
    /// it gets 429 with Retry-After (a token bucket); 0 disables the limit.
    pub max_failures_per_source: u32,
    /// The window of `max_failures_per_source`, in seconds.
    pub failure_window_secs: u64,
    /// ID creations a master or application may have refused as "not available" (the ID
    /// exists, in any contract) per `refused_ids_window_secs`, before its creations get 429:
    /// probing for other customers' IDs stays slow and visible. Kept in the store.
    pub max_refused_ids_per_caller: u32,
    /// The window of `max_refused_ids_per_caller`, in seconds.
    pub refused_ids_window_secs: u64,
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `estca=debug,info`.
    pub level: String,
    /// `text` (human-readable) or `json` (one JSON object per line).
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// The Prometheus metrics and health listener (plain HTTP: keep it on loopback or a
/// management network).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics`, `/healthz` and `/readyz`.
    pub enabled: bool,
    /// Address and port of the listener.
    pub listen: SocketAddr,
    /// Connections the metrics listener serves at once (a budget of its own).
    pub max_connections: usize,
}

/// The message of a deserialization error without the key and origin the `config` crate
/// appends (estca names both itself, with the line).
fn deserialize_reason(error: config::ConfigError) -> String {
    match error {
        config::ConfigError::At { error, .. } => deserialize_reason(*error),
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("invalid type: {unexpected}, expected {expected}"),
        other => other.to_string(),
    }
}

impl Config {
    /// Loads the configuration: defaults, then `file` (or the system file when present), then
    /// the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, env)
    }

    /// As [`Config::load`], with the environment given explicitly (for tests and tools).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        use config::{Environment, File, FileFormat};

        let mut builder =
            config::Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
        match file {
            Some(path) => {
                builder =
                    builder.add_source(File::from(path).format(FileFormat::Toml).required(true))
            }
            None if Path::new(SYSTEM_CONFIG_PATH).exists() => {
                builder = builder.add_source(File::new(SYSTEM_CONFIG_PATH, FileFormat::Toml))
            }
            None => {}
        }
        let variables = ConfigurationVariables::split(env).configuration;
        builder = builder.add_source(
            Environment::with_prefix("ESTCA")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.hostnames")
                .source(Some(variables.iter().cloned().collect())),
        );
        let shown_file = file.or_else(|| {
            Some(Path::new(SYSTEM_CONFIG_PATH)).filter(|p| file.is_none() && p.exists())
        });
        let sources = origin::Sources {
            file: shown_file.and_then(|p| Some((p, std::fs::read_to_string(p).ok()?))),
            variables: &variables,
        };
        let config: Config = serde_path_to_error::deserialize(builder.build()?).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Key {
                origin: sources.origin_of(&key),
                reason: deserialize_reason(e.into_inner()),
                key,
            }
        })?;
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { key, reason } => match sources.origin_of(key) {
                // Nothing set it: the message says what to set.
                Origin::Defaults => ConfigError::Invalid { key, reason },
                origin => ConfigError::Key {
                    key: key.to_owned(),
                    origin,
                    reason,
                },
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Checks the values serde accepted but estca cannot work with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                reason: reason.into(),
            }
        }
        let s = &self.server;
        if s.hostnames.is_empty() {
            return Err(invalid("server.hostnames", "give at least one host name"));
        }
        if s.tls_cert.is_some() != s.tls_key.is_some() {
            return Err(invalid(
                "server.tls_cert",
                "set both server.tls_cert and server.tls_key, or neither",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&s.max_body_bytes) {
            return Err(invalid(
                "server.max_body_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        for (key, v) in [
            ("server.header_timeout_secs", s.header_timeout_secs),
            ("server.request_timeout_secs", s.request_timeout_secs),
            ("server.handshake_timeout_secs", s.handshake_timeout_secs),
            ("server.first_byte_timeout_secs", s.first_byte_timeout_secs),
        ] {
            if !(1..=3600).contains(&v) {
                return Err(invalid(key, "must be between 1 and 3600 seconds"));
            }
        }
        for (key, budget) in [
            ("server.max_connections", s.max_connections),
            (
                "revocation.max_connections",
                self.revocation.max_connections,
            ),
            ("metrics.max_connections", self.metrics.max_connections),
            ("admin.max_connections", self.admin.max_connections),
        ] {
            if budget == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for (key, per_source, budget, budget_key) in [
            (
                "server.max_connections_per_source",
                s.max_connections_per_source,
                s.max_connections,
                "server.max_connections",
            ),
            (
                "revocation.max_connections_per_source",
                self.revocation.max_connections_per_source,
                self.revocation.max_connections,
                "revocation.max_connections",
            ),
        ] {
            if !(1..=budget).contains(&per_source) {
                return Err(invalid(
                    key,
                    format!("must be between 1 and {budget_key} ({budget})"),
                ));
            }
        }
        if !(1..=3600).contains(&s.shutdown_grace_secs) {
            return Err(invalid(
                "server.shutdown_grace_secs",
                "must be between 1 and 3600 seconds",
            ));
        }
        if !(1..=crate::source::MAX_IPV6_PREFIX).contains(&s.ipv6_source_prefix) {
            return Err(invalid(
                "server.ipv6_source_prefix",
                "must be between 1 and 128 bits (64: one source per /64 network)",
            ));
        }
        self.admin.mode()?;
        let ca = &self.ca;
        if ca.country.len() != 2 || !ca.country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid(
                "ca.country",
                "must be a two-letter ISO 3166 code in capitals, e.g. \"JP\"",
            ));
        }
        for (key, v) in [
            ("ca.organization", &ca.organization),
            ("ca.root_name", &ca.root_name),
            ("ca.issuing_name", &ca.issuing_name),
        ] {
            crate::model::human_text(v, 64, "the name").map_err(|e| invalid(key, e.0))?;
        }
        if ca.root_validity_years == 0 || ca.issuing_validity_years == 0 {
            return Err(invalid(
                "ca.root_validity_years",
                "CA validity must be at least one year",
            ));
        }
        if !(1..=397).contains(&ca.server_cert_validity_days) {
            return Err(invalid(
                "ca.server_cert_validity_days",
                "must be between 1 and 397 days",
            ));
        }
        if !(367..=3660).contains(&ca.expiry_warning_days) {
            return Err(invalid(
                "ca.expiry_warning_days",
                "must be between 367 and 3660 days: enrollment stops up to 366 days before the \
                 issuing CA expires (a one-year certificate no longer fits), so a shorter lead \
                 time would warn only after it stopped",
            ));
        }
        if !(1..=365).contains(&ca.root_crl_warning_days) {
            return Err(invalid(
                "ca.root_crl_warning_days",
                "must be between 1 and 365 days before the ARL's nextUpdate",
            ));
        }
        if ca
            .root_crl
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(invalid(
                "ca.root_crl",
                "must name the ARL file, or be left out for root.crl in ca.dir",
            ));
        }
        check_credential_name("ca.pkcs11_pin_credential", &ca.pkcs11_pin_credential)?;
        if !ca.key.is_empty() && !ca.key.starts_with("pkcs11:") {
            return Err(invalid(
                "ca.key",
                "must be empty (the key file issuing-ca.key) or a PKCS#11 URI starting with pkcs11:",
            ));
        }
        check_credential_name(
            "ca.key_passphrase_credential",
            &ca.key_passphrase_credential,
        )?;
        let template = &self.certificate.common_name_template;
        if !template.contains("{id}") {
            return Err(invalid(
                "certificate.common_name_template",
                "must contain {id} so that the certificate names its ID",
            ));
        }
        let longest_cn = template.chars().count() - "{id}".len()
            + crate::model::AccountId::MAX_LEN
            + if template.contains("{contract}") {
                crate::model::ContractCode::MAX_LEN - "{contract}".len()
            } else {
                0
            };
        if template.matches("{id}").count() != 1
            || template.matches("{contract}").count() > 1
            || longest_cn > 64
        {
            return Err(invalid(
                "certificate.common_name_template",
                format!(
                    "must hold {{id}} once and {{contract}} at most once, and stay within 64 characters with the longest ID ({}) and code ({}); this one can reach {longest_cn}",
                    crate::model::AccountId::MAX_LEN,
                    crate::model::ContractCode::MAX_LEN
                ),
            ));
        }
        let a = &self.auth;
        if a.max_failed_attempts == 0 {
            return Err(invalid("auth.max_failed_attempts", "must be at least 1"));
        }
        if argon2::Params::new(
            a.argon2_memory_kib,
            a.argon2_iterations,
            a.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return Err(invalid(
                "auth.argon2_memory_kib",
                "Argon2 parameters out of range (memory at least 8 KiB per lane, iterations at least 1, 1 to 255 lanes)",
            ));
        }
        if !(1..=86_400).contains(&a.failure_window_secs) {
            return Err(invalid(
                "auth.failure_window_secs",
                "must be between 1 and 86400 seconds",
            ));
        }
        if a.max_refused_ids_per_caller == 0 {
            return Err(invalid(
                "auth.max_refused_ids_per_caller",
                "must be at least 1 (an administrator mistyping an ID must be told once)",
            ));
        }
        if !(1..=7 * 86_400).contains(&a.refused_ids_window_secs) {
            return Err(invalid(
                "auth.refused_ids_window_secs",
                "must be between 1 and 604800 seconds (7 days)",
            ));
        }
        if a.max_concurrent_hashes == 0 {
            return Err(invalid("auth.max_concurrent_hashes", "must be at least 1"));
        }
        let r = &self.revocation;
        r.listen_addr()?;
        if !r.public_url.is_empty() {
            r.public_url
                .parse::<crate::model::PublicUrl>()
                .map_err(|e| invalid("revocation.public_url", e.0))?;
        }
        if !(1..=24 * 31).contains(&r.crl_next_update_hours) {
            return Err(invalid(
                "revocation.crl_next_update_hours",
                "must be between 1 and 744 hours (31 days)",
            ));
        }
        if !(1..=7 * 24 * 60).contains(&r.ocsp_next_update_minutes) {
            return Err(invalid(
                "revocation.ocsp_next_update_minutes",
                "must be between 1 and 10080 minutes (7 days)",
            ));
        }
        if !(2..=24 * 90).contains(&r.ocsp_signer_validity_hours)
            || u64::from(r.ocsp_signer_validity_hours) * 60
                < 2 * u64::from(r.ocsp_next_update_minutes)
        {
            return Err(invalid(
                "revocation.ocsp_signer_validity_hours",
                "must be between 2 and 2160 hours (90 days) and at least twice ocsp_next_update_minutes",
            ));
        }
        if r.http_max_age_secs > 86_400 {
            return Err(invalid(
                "revocation.http_max_age_secs",
                "must be at most 86400 seconds",
            ));
        }
        if !(4..=65_536).contains(&self.store.cache_mib) {
            return Err(invalid("store.cache_mib", "must be 4 to 65536 MiB"));
        }
        self.store.postgres.validate(self.store.backend)?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!(
                    "'{}' is not a tracing filter such as \"info\"",
                    self.log.level
                ),
            ));
        }
        Ok(())
    }

    /// Where the configured backend's database is, for messages: its directory, or the
    /// PostgreSQL URL (which holds no password).
    pub fn database_location(&self) -> String {
        match self.store.backend.directory() {
            Some(dir) => self.store.path.join(dir).display().to_string(),
            None => self.store.postgres.url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults_load() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(c.admin.socket, PathBuf::from("./data/admin.sock"));
        assert_eq!(c.admin.mode().unwrap(), 0o600);
        assert_eq!(c.auth.max_failed_attempts, 5);
        assert_eq!(c.auth.argon2_memory_kib, 19456);
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let c = Config::load_from(
            None,
            env(&[
                ("ESTCA_SERVER__LISTEN", "127.0.0.1:9443"),
                ("ESTCA_AUTH__MAX_FAILED_ATTEMPTS", "3"),
                ("ESTCA_SERVER__HOSTNAMES", "ca.example,10.0.0.1"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9443");
        assert_eq!(c.auth.max_failed_attempts, 3);
        assert_eq!(c.server.hostnames, vec!["ca.example", "10.0.0.1"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("estca.toml");
        std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap();
        let err = Config::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");

        std::fs::write(&file, "[auth]\nmax_failed_attempts = 0\n").unwrap();
        let err = Config::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.max_failed_attempts"), "{err}");

        let err = Config::load_from(None, env(&[("ESTCA_SERVER__LISTEN", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn other_estca_variables_are_ignored_and_errors_name_their_source() {
        // What Kubernetes injects for a Service named `estca`, and a stray ESTCA_HOME.
        let c = Config::load_from(
            None,
            env(&[
                ("ESTCA_SERVICE_HOST", "10.0.0.1"),
                ("ESTCA_PORT", "tcp://10.0.0.1:8443"),
                ("ESTCA_PORT_8443_TCP_PORT", "8443"),
                ("ESTCA_HOME", "/opt/estca"),
                ("ESTCA_AUTH__MAX_FAILED_ATTEMPTS", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(c.auth.max_failed_attempts, 7);

        let load = |file: Option<&Path>, pairs: &[(&str, &str)]| {
            Config::load_from(file, env(pairs)).unwrap_err().to_string()
        };
        assert_eq!(
            load(None, &[("ESTCA_SERVICE__HOST", "x")]),
            "configuration: service (environment variable ESTCA_SERVICE__HOST): \
             unknown field `service`, expected one of `server`, `store`, `admin`, `ca`, \
             `certificate`, `auth`, `log`, `metrics`, `revocation`, `est`"
        );
        assert_eq!(
            load(None, &[("ESTCA_SERVER__LISTEN", "nowhere")]),
            "configuration: server.listen (environment variable ESTCA_SERVER__LISTEN): \
             invalid socket address syntax"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("estca.toml");
        std::fs::write(
            &file,
            "# estca\n[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n\n[auth]\nmax_failed_attempts = 0\n",
        )
        .unwrap();
        let err = load(Some(&file), &[]);
        assert!(
            err.starts_with(&format!(
                "configuration: server.lisen ({} line 4): unknown field `lisen`",
                file.display()
            )),
            "{err}"
        );
        std::fs::write(&file, "[auth]\nmax_failed_attempts = 0\n").unwrap();
        assert!(load(Some(&file), &[]).starts_with(&format!(
            "configuration: auth.max_failed_attempts ({} line 2): ",
            file.display()
        )));
        // The environment wins over the file, and its error names the variable.
        std::fs::write(&file, "[auth]\nmax_failed_attempts = 3\n").unwrap();
        assert!(load(Some(&file), &[("ESTCA_AUTH__MAX_FAILED_ATTEMPTS", "x")]).starts_with(
            "configuration: auth.max_failed_attempts (environment variable ESTCA_AUTH__MAX_FAILED_ATTEMPTS): invalid type"
        ));
    }

    #[test]
    fn the_production_example_is_complete_and_valid() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/estca.toml");
        let c = Config::load_from(Some(&example), env(&[])).unwrap();
        assert!(!c.ca.create_if_missing);
        assert_eq!(
            c.ca.organization,
            "The Shinkin Banks Information System Center Co.,Ltd."
        );
        // Every key of the embedded defaults appears in the example, so it documents them all.
        let defaults: toml_keys::Keys = toml_keys::keys(DEFAULTS_TOML);
        let example_text = std::fs::read_to_string(&example).unwrap();
        for key in defaults {
            assert!(
                example_text
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{key} ="))),
                "config/estca.toml does not mention {key}"
            );
        }
    }

    #[test]
    fn the_postgres_backend_needs_a_url_without_password_or_tls() {
        let load = |pairs: &[(&str, &str)]| {
            Config::load_from(None, env(pairs))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let backend = ("ESTCA_STORE__BACKEND", "postgres");
        assert!(load(&[backend]).contains("store.postgres.url: is required"));
        let with_password = load(&[
            backend,
            (
                "ESTCA_STORE__POSTGRES__URL",
                "postgres://estca:s3cret@db/estca",
            ),
        ]);
        assert!(
            with_password.contains("must not hold a password"),
            "{with_password}"
        );
        assert!(!with_password.contains("s3cret"), "{with_password}");
        let tls = load(&[
            backend,
            (
                "ESTCA_STORE__POSTGRES__URL",
                "postgres://estca@db/estca?sslmode=require",
            ),
        ]);
        assert!(tls.contains("store.postgres.ca_file"), "{tls}");
        let c = Config::load_from(
            None,
            env(&[
                backend,
                (
                    "ESTCA_STORE__POSTGRES__URL",
                    "postgres://estca@db:5433/estca",
                ),
                ("ESTCA_STORE__POSTGRES__POOL_SIZE", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(c.store.backend, StoreBackend::Postgres);
        assert_eq!(c.store.postgres.pool_size, 4);
        assert_eq!(c.database_location(), "postgres://estca@db:5433/estca");
        // sled stays the default, and needs no URL.
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.store.backend, StoreBackend::Sled);
        assert_eq!(c.store.postgres.password_credential, "postgres-password");
    }

    #[test]
    fn common_names_that_could_exceed_64_characters_are_refused() {
        let err = Config::load_from(
            None,
            env(&[(
                "ESTCA_CERTIFICATE__COMMON_NAME_TEMPLATE",
                "{id} {contract} of a very long organisation name",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("certificate.common_name_template"), "{err}");
    }

    /// The leaf key names of a TOML document, for the completeness check above.
    mod toml_keys {
        pub type Keys = Vec<String>;
        pub fn keys(text: &str) -> Keys {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with('#') && !l.starts_with('[') && l.contains('='))
                .filter_map(|l| l.split('=').next().map(|k| k.trim().to_owned()))
                .collect()
        }
    }

    #[test]
    fn the_root_crl_defaults_to_the_ca_directory_and_its_warning_lead_is_checked() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.ca.root_crl_warning_days, 7);
        assert_eq!(c.ca.root_crl_path(), c.ca.dir.join("root.crl"));
        let c =
            Config::load_from(None, env(&[("ESTCA_CA__ROOT_CRL", "/srv/arl/root.crl")])).unwrap();
        assert_eq!(c.ca.root_crl_path(), PathBuf::from("/srv/arl/root.crl"));
        for (key, value) in [
            ("ESTCA_CA__ROOT_CRL_WARNING_DAYS", "0"),
            ("ESTCA_CA__ROOT_CRL_WARNING_DAYS", "366"),
            ("ESTCA_CA__ROOT_CRL", ""),
        ] {
            let err = Config::load_from(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("ca.root_crl"), "{key}={value}: {err}");
        }
    }

    #[test]
    fn revocation_defaults_and_checks() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.revocation.public_url, "http://127.0.0.1:8080");
        assert_eq!(
            c.revocation.listen_addr().unwrap(),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(c.revocation.crl_next_update_hours, 24);
        assert_eq!(c.ca.expiry_warning_days, 400);
        let err = Config::load_from(None, env(&[("ESTCA_CA__EXPIRY_WARNING_DAYS", "365")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ca.expiry_warning_days"), "{err}");
        for off in ["off", ""] {
            let c = Config::load_from(None, env(&[("ESTCA_REVOCATION__LISTEN", off)])).unwrap();
            assert_eq!(c.revocation.listen_addr().unwrap(), None);
        }
        for (key, value, named) in [
            ("ESTCA_REVOCATION__LISTEN", "localhost", "revocation.listen"),
            (
                "ESTCA_REVOCATION__PUBLIC_URL",
                "ca.example.com",
                "revocation.public_url",
            ),
            (
                "ESTCA_REVOCATION__CRL_NEXT_UPDATE_HOURS",
                "0",
                "revocation.crl_next_update_hours",
            ),
            (
                "ESTCA_REVOCATION__OCSP_SIGNER_VALIDITY_HOURS",
                "1",
                "revocation.ocsp_signer_validity_hours",
            ),
        ] {
            let err = Config::load_from(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn ca_names_refuse_invisible_characters() {
        let err = Config::load_from(None, env(&[("ESTCA_CA__ORGANIZATION", "Bank\u{202E}knaB")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ca.organization") && err.contains("U+202E"),
            "{err}"
        );
    }

    #[test]
    fn connection_budgets_and_per_source_caps_are_checked() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(
            (
                c.server.max_connections,
                c.server.max_connections_per_source
            ),
            (1024, 128)
        );
        assert_eq!(c.server.first_byte_timeout_secs, 5);
        assert_eq!(
            (
                c.revocation.max_connections,
                c.revocation.max_connections_per_source
            ),
            (1024, 128)
        );
        assert_eq!(
            (c.admin.max_connections, c.metrics.max_connections),
            (64, 64)
        );
        for (key, value, named) in [
            (
                "ESTCA_SERVER__MAX_CONNECTIONS",
                "100",
                "server.max_connections_per_source: must be between 1 and server.max_connections (100)",
            ),
            (
                "ESTCA_SERVER__MAX_CONNECTIONS_PER_SOURCE",
                "0",
                "server.max_connections_per_source",
            ),
            (
                "ESTCA_REVOCATION__MAX_CONNECTIONS_PER_SOURCE",
                "2000",
                "revocation.max_connections_per_source",
            ),
            ("ESTCA_ADMIN__MAX_CONNECTIONS", "0", "admin.max_connections"),
            ("ESTCA_METRICS__MAX_CONNECTIONS", "0", "metrics.max_connections"),
            (
                "ESTCA_SERVER__FIRST_BYTE_TIMEOUT_SECS",
                "0",
                "server.first_byte_timeout_secs",
            ),
        ] {
            let err = Config::load_from(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load_from(Some(Path::new("/nonexistent/estca.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/estca.toml"), "{err}");
    }
}
