//! The daemon's configuration: embedded defaults, then a TOML file, then `ESTCA_*` environment
//! variables (`__` between nesting levels, e.g. `ESTCA_SERVER__LISTEN=127.0.0.1:9443`).
//!
//! Every struct refuses unknown keys, so a typo is reported with its name instead of being
//! silently ignored, and [`Config::validate`] checks what serde cannot (ranges, relations).
//! Only `ESTCA_<SECTION>__<KEY>` variables are configuration: others starting with `ESTCA_`
//! (Kubernetes sets `ESTCA_SERVICE_HOST`, `ESTCA_PORT`, … for a Service named `estca`) are
//! ignored. Every error names where the key was set ([`Origin`]).
//!
//! Each section's settings and their checks are in a file named after it: `server` (with
//! `admin` and `metrics`, the other listeners), `store`, `ca` (with `certificate`), `auth`,
//! `revocation`; `est` and `log` are small enough to stay here. `origin` finds where a key
//! was set, `variants` the values a key of a fixed set accepts.

mod auth;
mod ca;
mod origin;
mod revocation;
mod server;
mod store;
mod variants;

pub use auth::AuthConfig;
pub use ca::{CaConfig, CertificateConfig, KeyAlgorithm};
pub use origin::{ConfigurationVariables, Origin};
pub use revocation::RevocationConfig;
pub use server::{AdminConfig, MetricsConfig, ServerConfig};
pub use store::{PostgresConfig, StoreBackend, StoreConfig};

use std::path::Path;

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

impl ConfigError {
    /// `key`'s value is not acceptable, for `reason`.
    fn invalid(key: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            reason: reason.into(),
        }
    }
}

/// Checks a listener's connection budget (at least 1) and, when it has one, its per-source
/// cap (1 to the budget). Each is given as (its key, its value).
fn check_budget(
    (budget_key, budget): (&'static str, usize),
    per_source: Option<(&'static str, usize)>,
) -> Result<(), ConfigError> {
    if budget == 0 {
        return Err(ConfigError::invalid(budget_key, "must be at least 1"));
    }
    match per_source {
        Some((key, per_source)) if !(1..=budget).contains(&per_source) => {
            Err(ConfigError::invalid(
                key,
                format!("must be between 1 and {budget_key} ({budget})"),
            ))
        }
        _ => Ok(()),
    }
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

/// Checks that `name`, the value of `key`, can name a systemd credential: a plain file name
/// under `$CREDENTIALS_DIRECTORY`, not empty, hidden or a path.
fn check_credential_name(key: &'static str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(ConfigError::invalid(
            key,
            "must be a credential name (a file name under $CREDENTIALS_DIRECTORY)",
        ));
    }
    Ok(())
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

impl LogConfig {
    /// Checks that the level is a `tracing` filter.
    fn validate(&self) -> Result<(), ConfigError> {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            return Err(ConfigError::invalid(
                "log.level",
                format!("'{}' is not a tracing filter such as \"info\"", self.level),
            ));
        }
        Ok(())
    }
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
        let built = builder.build()?;
        let config: Config = serde_path_to_error::deserialize(built.clone()).map_err(|e| {
            let key = e.path().to_string();
            // A key of a fixed set of values: the refusal lists them (the `config` crate's
            // own message names the Rust type and no alternative).
            let reason = match variants::accepted::<Config>(&key) {
                Some(accepted) => {
                    variants::refusal(built.get::<String>(&key).ok().as_deref(), accepted)
                }
                None => deserialize_reason(e.into_inner()),
            };
            ConfigError::Key {
                origin: sources.origin_of(&key),
                reason,
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

    /// Checks the values serde accepted but estca cannot work with, section by section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.admin.validate()?;
        self.metrics.validate()?;
        self.ca.validate()?;
        self.certificate.validate()?;
        self.auth.validate()?;
        self.revocation.validate()?;
        self.store.validate()?;
        self.log.validate()
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
    use std::path::PathBuf;

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
        assert_eq!(c.server.write_timeout_secs, 30);
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
            (
                "ESTCA_SERVER__WRITE_TIMEOUT_SECS",
                "0",
                "server.write_timeout_secs",
            ),
        ] {
            let err = Config::load_from(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    /// Loads `text` as the configuration file `estca.toml`; the error, with the file's path
    /// written as FILE.
    fn file_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("estca.toml");
        std::fs::write(&file, text).unwrap();
        Config::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string()
            .replace(&file.display().to_string(), "FILE")
    }

    #[test]
    fn server_hostnames_are_checked_as_the_server_certificate_would_be() {
        assert_eq!(
            file_error("[server]\nhostnames = [\"ca.example\", \"bad_name\"]\n"),
            "configuration: server.hostnames (FILE line 2): 'bad_name' is neither an IP address \
             nor a DNS host name: a label holds only letters, digits and hyphens (a wildcard \
             only as the whole first label)"
        );
        let err = file_error("[server]\nhostnames = [\"a.*.example\"]\n");
        assert!(
            err.starts_with("configuration: server.hostnames (FILE line 2): 'a.*.example'"),
            "{err}"
        );
        let err = Config::load_from(None, env(&[("ESTCA_SERVER__HOSTNAMES", "ca.example,x y")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "configuration: server.hostnames (environment variable ESTCA_SERVER__HOSTNAMES): 'x y'"
            ),
            "{err}"
        );
        // The daemon's own certificate may name a wildcard, and addresses.
        let c = Config::load_from(
            None,
            env(&[("ESTCA_SERVER__HOSTNAMES", "*.ca.example,ca.example,::1")]),
        )
        .unwrap();
        assert_eq!(c.server.hostnames, ["*.ca.example", "ca.example", "::1"]);
    }

    #[test]
    fn a_key_uri_holding_the_pin_is_refused_without_showing_it() {
        for uri in [
            "pkcs11:token=a;object=b?pin-value=1234&module-path=/m.so",
            "pkcs11:token=a;object=b;pin-value=1234?module-path=/m.so",
            "pkcs11:token=a;object=b;pin-value=1234",
        ] {
            let err = file_error(&format!("[ca]\nkey = \"{uri}\"\n"));
            assert!(
                err.starts_with("configuration: ca.key (FILE line 2): ")
                    && err.contains("holds the PIN")
                    && err.contains("ca.pkcs11_pin_file")
                    && err.contains("ca.pkcs11_pin_credential"),
                "{uri}: {err}"
            );
            assert!(!err.contains("1234"), "{err}");
        }
        // What the CA could not open either is refused before anything starts.
        let err = file_error("[ca]\nkey = \"pkcs11:token=a;object=b\"\n");
        assert!(err.contains("names no module-path"), "{err}");
        let c = Config::load_from(
            None,
            env(&[(
                "ESTCA_CA__KEY",
                "pkcs11:token=estca;object=issuing-ca?module-path=/usr/lib/softhsm/libsofthsm2.so",
            )]),
        )
        .unwrap();
        assert!(c.ca.key.starts_with("pkcs11:token=estca"));
    }

    #[test]
    fn a_value_outside_a_fixed_set_is_refused_with_the_set() {
        assert_eq!(
            file_error("[store]\nbackend = \"rocks\"\n"),
            "configuration: store.backend (FILE line 2): 'rocks' is not one of sled, fjall, postgres"
        );
        assert_eq!(
            file_error("# estca\n[ca]\nkey_algorithm = \"rsa\"\n"),
            "configuration: ca.key_algorithm (FILE line 3): 'rsa' is not one of p256, p384"
        );
        assert_eq!(
            file_error("[ca]\nkey_algorithm = 256\n"),
            "configuration: ca.key_algorithm (FILE line 2): '256' is not one of p256, p384"
        );
        assert_eq!(
            file_error("[log]\nformat = [\"json\"]\n"),
            "configuration: log.format (FILE line 2): must be one of text, json"
        );
        assert_eq!(
            Config::load_from(None, env(&[("ESTCA_LOG__FORMAT", "xml")]))
                .unwrap_err()
                .to_string(),
            "configuration: log.format (environment variable ESTCA_LOG__FORMAT): 'xml' is not \
             one of text, json"
        );
    }

    #[test]
    fn a_common_name_template_refusal_names_the_rule_it_breaks() {
        let load = |template: &str| {
            Config::load_from(
                None,
                env(&[("ESTCA_CERTIFICATE__COMMON_NAME_TEMPLATE", template)]),
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        let prefix = "configuration: certificate.common_name_template (environment variable \
                      ESTCA_CERTIFICATE__COMMON_NAME_TEMPLATE): ";
        assert_eq!(
            load("{id}{id}"),
            format!("{prefix}{{id}} appears 2 times; it must appear exactly once")
        );
        assert_eq!(
            load("{id} {contract}{contract}"),
            format!("{prefix}{{contract}} appears 2 times; it may appear at most once")
        );
        assert_eq!(
            load("ID"),
            format!("{prefix}must contain {{id}} so that the certificate names its ID")
        );
        let long = load(&format!("{{id}} {}", "x".repeat(40)));
        assert!(
            long.starts_with(&format!("{prefix}must stay within 64 characters")),
            "{long}"
        );
        assert_eq!(load("{id} ({contract})"), "");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load_from(Some(Path::new("/nonexistent/estca.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/estca.toml"), "{err}");
    }
}
