//! Where the database lives and which engine keeps it (`[store]`, `[store.postgres]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check_credential_name, ConfigError};

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

impl StoreConfig {
    /// Checks the cache size and the PostgreSQL settings.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(4..=65_536).contains(&self.cache_mib) {
            return Err(ConfigError::invalid(
                "store.cache_mib",
                "must be 4 to 65536 MiB",
            ));
        }
        self.postgres.validate(self.backend)
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

impl PostgresConfig {
    /// Checks the URL (parsable, no password in it; required for the postgres backend), the
    /// pool size and the timeout.
    fn validate(&self, backend: StoreBackend) -> Result<(), ConfigError> {
        if self.url.is_empty() {
            if backend == StoreBackend::Postgres {
                return Err(ConfigError::invalid(
                    "store.postgres.url",
                    "is required with store.backend = \"postgres\" (postgres://USER@HOST:PORT/DATABASE)",
                ));
            }
        } else {
            let parsed = self.url.parse::<tokio_postgres::Config>().map_err(|e| {
                ConfigError::invalid(
                    "store.postgres.url",
                    format!("is not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE): {e}"),
                )
            })?;
            if parsed.get_password().is_some() {
                return Err(ConfigError::invalid(
                    "store.postgres.url",
                    "must not hold a password (it would show in logs and process listings): put it in the file store.postgres.password_file names, or in the systemd credential store.postgres.password_credential names",
                ));
            }
            if parsed.get_hosts().is_empty() {
                return Err(ConfigError::invalid("store.postgres.url", "names no host"));
            }
            if parsed.get_ssl_mode() == tokio_postgres::config::SslMode::Require
                && self.ca_file.is_none()
            {
                return Err(ConfigError::invalid(
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
            return Err(ConfigError::invalid(
                "store.postgres.pool_size",
                "must be 1 to 1000",
            ));
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            return Err(ConfigError::invalid(
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
