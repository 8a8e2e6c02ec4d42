//! The listeners: the HTTPS port (`[server]`), the operator's admin socket (`[admin]`) and
//! the metrics and health listener (`[metrics]`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check_budget, ConfigError};

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
    /// Time a client has to send a request's headers, counted from the end of the previous
    /// answer on a keep-alive connection: it is also how long such a connection may stay idle.
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
    /// Seconds a write of an answer may wait with none of its bytes taken by the client
    /// before the connection is closed, on every listener: without it a client that asks for
    /// a large answer and never reads would hold its connection (and its budget's place)
    /// forever. Progress rearms it, so a slow but reading client is not cut.
    pub write_timeout_secs: u64,
    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// IPv6 clients are counted per network of this prefix length by the per-source limits
    /// (an IPv6 host can pick a new address from its /64 for every request); 1 to 128.
    pub ipv6_source_prefix: u8,
}

impl ServerConfig {
    /// Checks the listener's names, TLS files, limits and timeouts.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.hostnames.is_empty() {
            return Err(ConfigError::invalid(
                "server.hostnames",
                "give at least one host name",
            ));
        }
        // What the server certificate will name, refused as the CA would refuse it, before
        // anything is created; the daemon's own certificate may name a wildcard.
        for host in &self.hostnames {
            host.parse::<crate::model::HostName>()
                .map_err(|e| ConfigError::invalid("server.hostnames", e.0))?;
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::invalid(
                "server.tls_cert",
                "set both server.tls_cert and server.tls_key, or neither",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(ConfigError::invalid(
                "server.max_body_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        for (key, v) in [
            ("server.header_timeout_secs", self.header_timeout_secs),
            ("server.request_timeout_secs", self.request_timeout_secs),
            ("server.handshake_timeout_secs", self.handshake_timeout_secs),
            (
                "server.first_byte_timeout_secs",
                self.first_byte_timeout_secs,
            ),
            ("server.write_timeout_secs", self.write_timeout_secs),
        ] {
            if !(1..=3600).contains(&v) {
                return Err(ConfigError::invalid(
                    key,
                    "must be between 1 and 3600 seconds",
                ));
            }
        }
        check_budget(
            ("server.max_connections", self.max_connections),
            Some((
                "server.max_connections_per_source",
                self.max_connections_per_source,
            )),
        )?;
        if !(1..=3600).contains(&self.shutdown_grace_secs) {
            return Err(ConfigError::invalid(
                "server.shutdown_grace_secs",
                "must be between 1 and 3600 seconds",
            ));
        }
        if !(1..=crate::source::MAX_IPV6_PREFIX).contains(&self.ipv6_source_prefix) {
            return Err(ConfigError::invalid(
                "server.ipv6_source_prefix",
                "must be between 1 and 128 bits (64: one source per /64 network)",
            ));
        }
        Ok(())
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
    /// Checks the socket's mode and connection budget.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.mode()?;
        check_budget(("admin.max_connections", self.max_connections), None)
    }

    /// The socket's permission bits.
    pub fn mode(&self) -> Result<u32, ConfigError> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777 && m & 0o007 == 0)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "admin.socket_mode",
                    format!(
                        "'{}' is not an octal mode without permissions for others (e.g. \"0600\" or \"0660\")",
                        self.socket_mode
                    ),
                )
            })
    }
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

impl MetricsConfig {
    /// Checks the listener's connection budget.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_budget(("metrics.max_connections", self.max_connections), None)
    }
}
