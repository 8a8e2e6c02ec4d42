//! Reaching the database: the URL of `store.postgres.url` with the password from a file or a
//! systemd credential, a pool of connections, and the durability settings the store needs.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::PostgresConfig;
use crate::secret_file::{self, SecretFileError};
use crate::store::{StoreError, SyncMode};

/// Where the store connects: the parsed URL with the password added, how to name the
/// database in messages (the URL's hosts and database, never the password), and the TLS
/// configuration when `store.postgres.ca_file` is set.
#[derive(Clone)]
pub(crate) struct Target {
    config: tokio_postgres::Config,
    shown: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// The target of `config`: its URL (which must hold no password) and the password from
    /// `password_file`, else from the systemd credential `password_credential`, else none.
    pub(crate) fn of(config: &PostgresConfig) -> Result<Self, StoreError> {
        let mut parsed: tokio_postgres::Config = config.url.parse().map_err(|e| {
            StoreError::Backend(format!(
                "store.postgres.url is not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE): {e}"
            ))
        })?;
        if parsed.get_password().is_some() {
            return Err(StoreError::Backend(
                "store.postgres.url must not hold a password: use store.postgres.password_file or a systemd credential".into(),
            ));
        }
        let shown = show(&parsed);
        if let Some(password) = password(config)? {
            parsed.password(password);
        }
        parsed.connect_timeout(Duration::from_secs(config.connect_timeout_secs));
        if parsed.get_application_name().is_none() {
            parsed.application_name("estca");
        }
        let tls = match &config.ca_file {
            Some(file) => {
                // Never a silent fall back to a plain connection.
                parsed.ssl_mode(SslMode::Require);
                Some(Arc::new(tls_config(file)?))
            }
            None => None,
        };
        Ok(Self {
            config: parsed,
            shown,
            tls,
        })
    }

    /// A pool of at most `config.pool_size` connections (none opened yet). In
    /// [`SyncMode::Deferred`] its sessions commit without waiting for the disk
    /// (`synchronous_commit = off`), for bulk loads only.
    pub(crate) fn pool(&self, config: &PostgresConfig, mode: SyncMode) -> Result<Pool, StoreError> {
        let mut pg = self.config.clone();
        if mode == SyncMode::Deferred {
            let options = match pg.get_options() {
                Some(given) => format!("{given} -c synchronous_commit=off"),
                None => "-c synchronous_commit=off".to_owned(),
            };
            pg.options(options);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &self.tls {
            Some(tls) => Manager::from_config(
                pg,
                MakeRustlsConnect::new(rustls::ClientConfig::clone(tls)),
                manager_config,
            ),
            None => Manager::from_config(pg, NoTls, manager_config),
        };
        let timeout = Some(Duration::from_secs(config.connect_timeout_secs));
        Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot set up the connection pool: {e}")))
    }

    /// A connection of its own, outside any pool (the revocation listener's): the client, and
    /// the payloads of the notifications it receives (the channel closes when the connection
    /// ends).
    pub(crate) async fn listening_connection(
        &self,
    ) -> Result<(tokio_postgres::Client, UnboundedReceiver<String>), StoreError> {
        match &self.tls {
            Some(tls) => {
                let (client, connection) = self
                    .config
                    .connect(MakeRustlsConnect::new(rustls::ClientConfig::clone(tls)))
                    .await
                    .map_err(|e| self.unreachable(&super::describe(&e)))?;
                Ok((client, forward(connection)))
            }
            None => {
                let (client, connection) = self
                    .config
                    .connect(NoTls)
                    .await
                    .map_err(|e| self.unreachable(&super::describe(&e)))?;
                Ok((client, forward(connection)))
            }
        }
    }

    /// The error of a database that cannot be reached: names it by host and database.
    pub(crate) fn unreachable(&self, error: &dyn fmt::Display) -> StoreError {
        StoreError::Backend(format!(
            "cannot reach the PostgreSQL database {}: {error}",
            self.shown
        ))
    }

    /// How messages name the database.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }
}

/// The first connection of a store: a clear error naming the database when it cannot be had.
pub(crate) async fn first_connection(pool: &Pool, target: &Target) -> Result<Object, StoreError> {
    pool.get().await.map_err(|e| {
        // deadpool wraps the driver's error; its source says why (refused, timed out, auth).
        let why = match &e {
            deadpool_postgres::PoolError::Backend(e) => super::describe(e),
            other => other.to_string(),
        };
        target.unreachable(&why)
    })
}

/// Refuses a server that would acknowledge commits before they are durable: `fsync` off, or
/// `synchronous_commit` off for this session (as the server, database or role configures it)
/// when every write must be durable on return ([`SyncMode::EveryWrite`]; a bulk load turns it
/// off itself and syncs at the end).
pub(crate) async fn check_durability(
    client: &Object,
    target: &Target,
    mode: SyncMode,
) -> Result<(), StoreError> {
    let settings: &[&str] = match mode {
        SyncMode::EveryWrite => &["fsync", "synchronous_commit"],
        SyncMode::Deferred => &["fsync"],
    };
    for setting in settings {
        let row = client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .map_err(super::db)?;
        let value: String = row.get(0);
        if value == "off" {
            return Err(StoreError::Backend(format!(
                "the PostgreSQL database {} has {setting} = off: a commit could be lost in a crash after estca answered; {}",
                target.shown,
                how_to_turn_on(setting)
            )));
        }
    }
    Ok(())
}

/// What the operator does to turn `setting` on, in a way PostgreSQL accepts. `fsync` is
/// server-wide (its context is `sighup`): `ALTER ROLE/DATABASE … SET fsync` is refused ("cannot
/// be changed now"); it is set in the server's configuration, which a reload then applies.
/// `synchronous_commit` may also be set per database or role.
fn how_to_turn_on(setting: &str) -> String {
    match setting {
        "fsync" => "set fsync = on in postgresql.conf (or, as a superuser, ALTER SYSTEM SET fsync = on), then reload the server's configuration (SELECT pg_reload_conf(), or pg_ctl reload); a -c fsync=off on the server's command line overrides both: remove it and restart the server".to_owned(),
        _ => format!("set {setting} = on (postgresql.conf, or ALTER ROLE/DATABASE … SET {setting} = on)"),
    }
}

/// The notifications' payloads.
type UnboundedReceiver<T> = tokio::sync::mpsc::UnboundedReceiver<T>;

/// Drives `connection` in a task of its own, forwarding the payloads of its notifications;
/// the channel closes when the connection ends.
fn forward<S, T>(mut connection: tokio_postgres::Connection<S, T>) -> UnboundedReceiver<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "lost the connection listening for revocations");
                    return;
                }
                None => return,
            }
        }
    });
    rx
}

/// The TLS configuration of connections to the database: the server's certificate must chain
/// to a CA of `ca_file` (PEM) and name the host connected to.
fn tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, StoreError> {
    use rustls_pki_types::pem::PemObject;
    let cannot = |e: &dyn fmt::Display| {
        StoreError::Backend(format!(
            "cannot read the database's CA certificates from {} (store.postgres.ca_file): {e}",
            ca_file.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in
        rustls_pki_types::CertificateDer::pem_file_iter(ca_file).map_err(|e| cannot(&e))?
    {
        roots
            .add(certificate.map_err(|e| cannot(&e))?)
            .map_err(|e| cannot(&e))?;
    }
    if roots.is_empty() {
        return Err(cannot(&"it holds no certificate"));
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| cannot(&e))
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}

/// `user@host:port/database` of a parsed URL (no password).
fn show(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let database = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{database}", hosts.join(","))
}

/// The password of `config`: the first line of `password_file`, else of the systemd
/// credential; `None` when neither is configured or present.
fn password(config: &PostgresConfig) -> Result<Option<String>, StoreError> {
    let Some(file) =
        secret_file::locate(config.password_file.as_deref(), &config.password_credential)
    else {
        return Ok(None);
    };
    match secret_file::first_line(&file) {
        Ok(first) => Ok(Some(first.as_str().to_owned())),
        Err(SecretFileError::Empty) => Err(StoreError::Backend(format!(
            "the database password file {} is empty",
            file.display()
        ))),
        Err(SecretFileError::Unreadable(e)) => Err(StoreError::Backend(format!(
            "cannot read the database password from {}: {e}",
            file.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            ..PostgresConfig::default()
        }
    }

    #[test]
    fn messages_name_the_host_and_never_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-pass\nignored\n").unwrap();
        let target = Target::of(&PostgresConfig {
            password_file: Some(file),
            ..config("postgres://estca@db.example.net:5433/estca")
        })
        .unwrap();
        assert_eq!(target.config.get_password(), Some(&b"s3cret-pass"[..]));
        let message = target.unreachable(&"connection refused").to_string();
        assert!(message.contains("db.example.net:5433"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(!format!("{target:?}").contains("s3cret"));
    }

    #[test]
    fn a_unix_socket_directory_is_a_percent_encoded_host() {
        let target = Target::of(&config("postgres://estca@%2Frun%2Fpostgresql/estca")).unwrap();
        assert_eq!(
            target.config.get_hosts(),
            &[tokio_postgres::config::Host::Unix("/run/postgresql".into())]
        );
        assert_eq!(
            target.shown(),
            "postgres://estca@/run/postgresql:5432/estca"
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused() {
        let refused = Target::of(&config("postgres://estca:s3cret@db.example.net/estca"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("password_file"), "{refused}");
        assert!(!refused.contains("s3cret"), "{refused}");
    }

    #[test]
    fn the_password_comes_from_the_systemd_credential_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pg-pass"), "from-systemd\n").unwrap();
        let with = PostgresConfig {
            password_credential: "pg-pass".into(),
            ..config("postgres://estca@db.example.net/estca")
        };
        // The variable is read here only, by this test alone.
        std::env::set_var(secret_file::CREDENTIALS_DIRECTORY, dir.path());
        let found = password(&with);
        let missing = password(&PostgresConfig {
            password_credential: "other".into(),
            ..with.clone()
        });
        std::env::remove_var(secret_file::CREDENTIALS_DIRECTORY);
        assert_eq!(found.unwrap().as_deref(), Some("from-systemd"));
        assert_eq!(missing.unwrap(), None);
    }
}
