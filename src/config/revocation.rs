//! Publishing revocation status (CRL, OCSP) to relying parties (`[revocation]`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{check_budget, ConfigError};

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
    /// Checks the listener, the public URL, the validity periods and the connection budget.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if !self.public_url.is_empty() {
            self.public_url
                .parse::<crate::model::PublicUrl>()
                .map_err(|e| ConfigError::invalid("revocation.public_url", e.0))?;
        }
        if !(1..=24 * 31).contains(&self.crl_next_update_hours) {
            return Err(ConfigError::invalid(
                "revocation.crl_next_update_hours",
                "must be between 1 and 744 hours (31 days)",
            ));
        }
        if !(1..=7 * 24 * 60).contains(&self.ocsp_next_update_minutes) {
            return Err(ConfigError::invalid(
                "revocation.ocsp_next_update_minutes",
                "must be between 1 and 10080 minutes (7 days)",
            ));
        }
        if !(2..=24 * 90).contains(&self.ocsp_signer_validity_hours)
            || u64::from(self.ocsp_signer_validity_hours) * 60
                < 2 * u64::from(self.ocsp_next_update_minutes)
        {
            return Err(ConfigError::invalid(
                "revocation.ocsp_signer_validity_hours",
                "must be between 2 and 2160 hours (90 days) and at least twice ocsp_next_update_minutes",
            ));
        }
        if self.http_max_age_secs > 86_400 {
            return Err(ConfigError::invalid(
                "revocation.http_max_age_secs",
                "must be at most 86400 seconds",
            ));
        }
        check_budget(
            ("revocation.max_connections", self.max_connections),
            Some((
                "revocation.max_connections_per_source",
                self.max_connections_per_source,
            )),
        )?;
        Ok(())
    }

    /// The plain-HTTP listener's address, or `None` when disabled.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match self.listen.trim() {
            "" | "off" => Ok(None),
            text => text.parse().map(Some).map_err(|_| {
                ConfigError::invalid(
                    "revocation.listen",
                    format!(
                        "'{text}' is not an address and port such as \"0.0.0.0:8080\" (or \"off\")"
                    ),
                )
            }),
        }
    }
}
