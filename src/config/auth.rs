//! Passwords and lockout (`[auth]`).

use serde::{Deserialize, Serialize};

use super::ConfigError;

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

impl AuthConfig {
    /// Checks the lockout, the Argon2id parameters and the throttles' windows.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_failed_attempts == 0 {
            return Err(ConfigError::invalid(
                "auth.max_failed_attempts",
                "must be at least 1",
            ));
        }
        if argon2::Params::new(
            self.argon2_memory_kib,
            self.argon2_iterations,
            self.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return Err(ConfigError::invalid(
                "auth.argon2_memory_kib",
                "Argon2 parameters out of range (memory at least 8 KiB per lane, iterations at least 1, 1 to 255 lanes)",
            ));
        }
        if !(1..=86_400).contains(&self.failure_window_secs) {
            return Err(ConfigError::invalid(
                "auth.failure_window_secs",
                "must be between 1 and 86400 seconds",
            ));
        }
        if self.max_refused_ids_per_caller == 0 {
            return Err(ConfigError::invalid(
                "auth.max_refused_ids_per_caller",
                "must be at least 1 (an administrator mistyping an ID must be told once)",
            ));
        }
        if !(1..=7 * 86_400).contains(&self.refused_ids_window_secs) {
            return Err(ConfigError::invalid(
                "auth.refused_ids_window_secs",
                "must be between 1 and 604800 seconds (7 days)",
            ));
        }
        if self.max_concurrent_hashes == 0 {
            return Err(ConfigError::invalid(
                "auth.max_concurrent_hashes",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
