//! Password hashing and verification with Argon2id, off the async threads and bounded.
//!
//! Each hash takes `argon2_memory_kib` of memory and tens of milliseconds of CPU, so the
//! number computed at once is capped (`max_concurrent_hashes`) and so is the number waiting
//! (`max_queued_hashes`): a flood of password guesses gets 503s instead of exhausting memory.
//! Unknown IDs are checked against a dummy hash made with the same parameters, so an unknown
//! ID costs the same time as a wrong password.
//!
//! Checks run on [`Workers`] of their own, `max_concurrent_hashes` threads, each reusing
//! one Argon2 block. Hashing a new password (an administrator creating an ID or setting its
//! password) runs on one thread apart, with a queue of `max_queued_hashes`: administrators
//! of one contract sending many at once wait for each other, and can never take the places
//! the password checks of enrollments need.

use argon2::password_hash::{self, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::workers::{WorkError, WorkSlot, Workers};
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
    /// A password hash given instead of a password cannot be used.
    #[error("the password hash cannot be used: {0}")]
    BadHash(String),
    /// The stored hash is unreadable or hashing failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// What one Argon2 check costs: memory and passes over it.
#[derive(Debug, Clone, Copy)]
struct Cost {
    memory_kib: u32,
    iterations: u32,
}

impl Cost {
    /// The cost of a check with `params`.
    fn of(params: &Params) -> Self {
        Self {
            memory_kib: params.m_cost(),
            iterations: params.t_cost(),
        }
    }

    /// Whether it costs no more than `limit`, in memory and in passes.
    fn within(self, limit: Cost) -> bool {
        self.memory_kib <= limit.memory_kib && self.iterations <= limit.iterations
    }
}

/// The costliest stored hash checked when the daemon's own parameters are lower: 256 MiB and
/// 16 passes, far above any estca default yet bounded. A hash beyond it (written by hand into
/// a database, or restored from one that had no such bound) is refused with an error instead
/// of allocating its memory: a `m` near 4 TiB would abort the process at the first guess, a
/// huge `t` would hold a hashing thread for ever.
const VERIFY_CEILING: Cost = Cost {
    memory_kib: 256 * 1024,
    iterations: 16,
};

/// Hashes and verifies passwords under a concurrency bound.
#[derive(Debug)]
pub struct Passwords {
    params: Params,
    dummy_hash: String,
    workers: Workers,
    /// The thread that hashes new passwords, apart from the checks.
    new_passwords: Workers,
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
            dummy_hash,
            workers: Workers::new(
                "estca-argon2",
                config.max_concurrent_hashes,
                config.max_queued_hashes,
            )?,
            new_passwords: Workers::new("estca-argon2-new", 1, config.max_queued_hashes)?,
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

    /// Checks that `hash` is an Argon2 PHC string estca can verify passwords against, at no
    /// more memory and iterations per check than this daemon's own (`auth.argon2_*`): every
    /// guess at the ID will cost one check of it, so a hash given by the operator must not
    /// cost more than the bound the hashing threads are sized for.
    pub fn check_hash(&self, hash: &str) -> Result<(), PasswordError> {
        let parsed = PasswordHash::new(hash)
            .map_err(|e| PasswordError::BadHash(format!("not a PHC password hash: {e}")))?;
        Algorithm::try_from(parsed.algorithm)
            .map_err(|e| PasswordError::BadHash(format!("not an Argon2 hash: {e}")))?;
        let params = Params::try_from(&parsed)
            .map_err(|e| PasswordError::BadHash(format!("unusable Argon2 parameters: {e}")))?;
        if !Cost::of(&params).within(Cost::of(&self.params)) {
            return Err(PasswordError::BadHash(format!(
                "its Argon2 cost (m={}, t={}) is above this daemon's (auth.argon2_memory_kib = {}, \
                 auth.argon2_iterations = {}): hash the password with those parameters or lower, \
                 or raise the settings",
                params.m_cost(),
                params.t_cost(),
                self.params.m_cost(),
                self.params.t_cost()
            )));
        }
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(PasswordError::BadHash(
                "a password hash needs its salt and output".into(),
            ));
        }
        Ok(())
    }

    /// Hashes a new password (after [`Passwords::check_new`]) into a PHC string, on the
    /// thread for new passwords ([`PasswordError::Busy`] when its queue is full).
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, PasswordError> {
        Self::check_new(&password)?;
        let params = self.params.clone();
        self.new_passwords
            .admit()?
            .run(move || hash_now(&params, password.as_bytes()))
            .await?
    }

    /// Verifies `password` against `stored` (a PHC string), or against the dummy hash when
    /// `stored` is `None`, in which case the answer is always `false`.
    pub async fn verify(
        &self,
        password: Zeroizing<Vec<u8>>,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.admit()?.verify(password, stored).await
    }

    /// Takes a place among the checks hashing or waiting, or refuses at once
    /// ([`PasswordError::Busy`]) when `max_concurrent_hashes + max_queued_hashes` are taken.
    /// Admission is decided here, before the caller commits anything (such as counting the
    /// attempt against the ID), and the place is held until the slot is used or dropped.
    pub fn admit(&self) -> Result<CheckSlot<'_>, PasswordError> {
        Ok(CheckSlot {
            passwords: self,
            slot: self.workers.admit()?,
        })
    }

    /// The most a stored hash may cost to be checked: the daemon's own parameters, or
    /// [`VERIFY_CEILING`] when the settings were lowered below it after hashes were stored.
    fn verify_ceiling(&self) -> Cost {
        let own = Cost::of(&self.params);
        Cost {
            memory_kib: own.memory_kib.max(VERIFY_CEILING.memory_kib),
            iterations: own.iterations.max(VERIFY_CEILING.iterations),
        }
    }

    /// Password checks waiting for a hashing slot now (for metrics and tests).
    pub fn queue_depth(&self) -> usize {
        self.workers.queue_depth()
    }
}

/// A place among the password checks admitted by [`Passwords::admit`].
pub struct CheckSlot<'a> {
    passwords: &'a Passwords,
    slot: WorkSlot<'a>,
}

impl CheckSlot<'_> {
    /// As [`Passwords::verify`], in this place.
    pub async fn verify(
        self,
        password: Zeroizing<Vec<u8>>,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.passwords.dummy_hash.clone());
        let too_long = password.len() > MAX_PASSWORD_LEN;
        let ceiling = self.passwords.verify_ceiling();
        let matches = self
            .run(move || {
                // Over-long passwords are checked as an empty one: same cost, never a match.
                let candidate: &[u8] = if too_long { b"" } else { &password };
                verify_now(candidate, &hash, ceiling)
            })
            .await??;
        Ok(known && !too_long && matches)
    }

    /// Waits for a hashing thread and runs `work` on it.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        Ok(self.slot.run(work).await?)
    }
}

impl std::fmt::Debug for CheckSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckSlot").finish_non_exhaustive()
    }
}

impl From<WorkError> for PasswordError {
    fn from(e: WorkError) -> Self {
        match e {
            WorkError::Busy => PasswordError::Busy,
            WorkError::Failed(why) => PasswordError::Hashing(why),
        }
    }
}

thread_local! {
    /// The Argon2 memory of this hashing thread, reused by every check it runs.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks `candidate` against the PHC string `stored` in this thread's reused Argon2 memory
/// (wiped after each use), comparing in constant time; a hash costlier than `ceiling` is an
/// error, not checked.
fn verify_now(candidate: &[u8], stored: &str, ceiling: Cost) -> Result<bool, PasswordError> {
    let bad = |e: password_hash::Error| PasswordError::Hashing(e.to_string());
    let parsed = PasswordHash::new(stored).map_err(bad)?;
    let algorithm =
        Algorithm::try_from(parsed.algorithm).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| PasswordError::Hashing(e.to_string()))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    if !Cost::of(&params).within(ceiling) {
        return Err(PasswordError::Hashing(format!(
            "a stored password hash costs m={} KiB, t={}, above the {} KiB and {} iterations \
             estca checks; set a new password for the ID",
            params.m_cost(),
            params.t_cost(),
            ceiling.memory_kib,
            ceiling.iterations
        )));
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(PasswordError::Hashing(
            "a stored password hash lacks its salt or output".into(),
        ));
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(bad)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() != params.block_count() {
            *blocks = vec![argon2::Block::new(); params.block_count()];
        }
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        let result =
            argon2.hash_password_into_with_memory(candidate, salt, &mut out, &mut blocks[..]);
        // Wipe what the password left in the reused memory.
        blocks.iter_mut().for_each(|b| *b = argon2::Block::new());
        result.map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let computed = password_hash::Output::new(&out).map_err(bad)?;
        Ok(computed == expected)
    })
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
    use std::sync::Arc;

    fn config(concurrent: usize, queued: usize) -> AuthConfig {
        AuthConfig {
            max_failed_attempts: 5,
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_hashes: concurrent,
            max_queued_hashes: queued,
            max_failures_per_source: 0,
            failure_window_secs: 60,
            max_refused_ids_per_caller: 10,
            refused_ids_window_secs: 3600,
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

    /// A hash given by the operator may cost no more than the daemon's own; one stored
    /// beyond the ceiling (a huge memory cost would abort the process when allocated) is an
    /// error at the check, not an allocation.
    #[tokio::test]
    async fn hashes_costlier_than_the_daemons_are_refused() {
        let p = Passwords::new(&config(1, 4)).unwrap();
        let own = p
            .hash(Zeroizing::new("correct horse".into()))
            .await
            .unwrap();
        p.check_hash(&own).unwrap();
        let salt_and_output = own.rsplitn(3, '$').take(2).collect::<Vec<_>>();
        let with = |params: &str| {
            format!(
                "$argon2id$v=19${params}${}${}",
                salt_and_output[1], salt_and_output[0]
            )
        };
        for costly in ["m=2048,t=1,p=1", "m=1024,t=2,p=1"] {
            let err = p.check_hash(&with(costly)).unwrap_err().to_string();
            assert!(err.contains("auth.argon2_memory_kib = 1024"), "{err}");
        }
        let huge = with("m=4294967295,t=1,p=1");
        let err = p
            .verify(Zeroizing::new(b"correct horse".to_vec()), Some(huge))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("above the 262144 KiB"), "{err}");
        let endless = with("m=1024,t=4294967295,p=1");
        assert!(p
            .verify(Zeroizing::new(b"correct horse".to_vec()), Some(endless))
            .await
            .is_err());
    }

    /// New passwords are hashed apart: with every place among the checks taken, an
    /// administrator's new password is still hashed.
    #[tokio::test]
    async fn new_passwords_never_take_the_checks_places() {
        let p = Passwords::new(&config(1, 0)).unwrap();
        let held = p.admit().unwrap();
        assert!(matches!(p.admit(), Err(PasswordError::Busy)));
        let hash = p
            .hash(Zeroizing::new("correct horse".into()))
            .await
            .unwrap();
        drop(held);
        assert!(p
            .verify(Zeroizing::new(b"correct horse".to_vec()), Some(hash))
            .await
            .unwrap());
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
