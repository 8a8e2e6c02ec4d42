//! Password hashing and verification with Argon2id, off the async threads and bounded.
//!
//! Each hash takes `argon2_memory_kib` of memory and tens of milliseconds of CPU, so the
//! number computed at once is capped (`max_concurrent_hashes`) and so is the number waiting
//! (`max_queued_hashes`): a flood of password guesses gets 503s instead of exhausting memory.
//! Unknown IDs are checked against a dummy hash made with the same parameters, so an unknown
//! ID costs the same time as a wrong password.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::config::AuthConfig;

/// Shortest password accepted when one is set.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (in bytes), when set and when checked.
pub const MAX_PASSWORD_LEN: usize = 256;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too many password checks are waiting; the client should retry later.
    #[error("too many password checks in progress; retry in a few seconds")]
    Busy,
    /// The password does not meet the length rules.
    #[error("a password is {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} bytes long")]
    BadLength,
    /// The stored hash is unreadable or hashing failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes and verifies passwords under a concurrency bound.
#[derive(Debug)]
pub struct Passwords {
    params: Params,
    slots: Arc<Semaphore>,
    concurrent: usize,
    admitted: AtomicUsize,
    capacity: usize,
    dummy_hash: String,
}

impl Passwords {
    /// Builds the hasher from the configuration, computing the dummy hash once.
    pub fn new(config: &AuthConfig) -> Result<Self, PasswordError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let dummy_hash = hash_now(&params, b"estca dummy password for unknown IDs")?;
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(config.max_concurrent_hashes)),
            concurrent: config.max_concurrent_hashes,
            admitted: AtomicUsize::new(0),
            capacity: config.max_concurrent_hashes + config.max_queued_hashes,
            dummy_hash,
        })
    }

    /// Checks the length rules for a new password.
    pub fn check_new(password: &str) -> Result<(), PasswordError> {
        if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&password.len()) {
            Ok(())
        } else {
            Err(PasswordError::BadLength)
        }
    }

    /// Hashes a new password (after [`Passwords::check_new`]) into a PHC string.
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, PasswordError> {
        Self::check_new(&password)?;
        let params = self.params.clone();
        self.run(move || hash_now(&params, password.as_bytes()))
            .await?
    }

    /// Verifies `password` against `stored` (a PHC string), or against the dummy hash when
    /// `stored` is `None`, in which case the answer is always `false`.
    pub async fn verify(
        &self,
        password: Zeroizing<Vec<u8>>,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let too_long = password.len() > MAX_PASSWORD_LEN;
        let matches = self
            .run(move || {
                // Over-long passwords are checked as an empty one: same cost, never a match.
                let candidate: &[u8] = if too_long { b"" } else { &password };
                let parsed =
                    PasswordHash::new(&hash).map_err(|e| PasswordError::Hashing(e.to_string()))?;
                Ok::<bool, PasswordError>(
                    Argon2::default()
                        .verify_password(candidate, &parsed)
                        .is_ok(),
                )
            })
            .await??;
        Ok(known && !too_long && matches)
    }

    /// Password checks waiting for a hashing slot now (for metrics and tests).
    pub fn queue_depth(&self) -> usize {
        self.admitted
            .load(Ordering::Relaxed)
            .saturating_sub(self.concurrent)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        // Admission: at most `capacity` checks hashing or waiting; the rest are refused now.
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        let _admission = Admission(&self.admitted);
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))
    }
}

/// Releases an admission when the check ends, however it ends (even if its future is dropped).
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn hash_now(params: &Params, password: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(concurrent: usize, queued: usize) -> AuthConfig {
        AuthConfig {
            max_failed_attempts: 5,
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_hashes: concurrent,
            max_queued_hashes: queued,
        }
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let p = Passwords::new(&config(2, 8)).unwrap();
        let hash = p
            .hash(Zeroizing::new("correct horse".into()))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let ok = p
            .verify(
                Zeroizing::new(b"correct horse".to_vec()),
                Some(hash.clone()),
            )
            .await
            .unwrap();
        assert!(ok);
        let wrong = p
            .verify(Zeroizing::new(b"wrong horse".to_vec()), Some(hash))
            .await
            .unwrap();
        assert!(!wrong);
        let unknown = p
            .verify(
                Zeroizing::new(b"estca dummy password for unknown IDs".to_vec()),
                None,
            )
            .await
            .unwrap();
        assert!(!unknown, "the dummy hash must never authenticate");
    }

    #[tokio::test]
    async fn short_passwords_are_refused() {
        let p = Passwords::new(&config(1, 1)).unwrap();
        assert!(matches!(
            p.hash(Zeroizing::new("short".into())).await,
            Err(PasswordError::BadLength)
        ));
    }

    #[tokio::test]
    async fn a_flood_beyond_the_queue_is_refused_busy() {
        let p = Arc::new(Passwords::new(&config(1, 2)).unwrap());
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                p.verify(Zeroizing::new(b"guess".to_vec()), None).await
            }));
        }
        let mut busy = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), Err(PasswordError::Busy)) {
                busy += 1;
            }
        }
        assert!(busy > 0, "some of 40 simultaneous checks must be refused");
        assert_eq!(p.queue_depth(), 0);
    }
}
