//! The registration authority: who may get what, when.
//!
//! Front ends hand it authenticated-or-not requests; it checks credentials, asks the pure
//! lifecycle rules in [`policy`], has the [`crate::ca`] sign, and commits the outcome to
//! the [`store`](crate::store) with compare-and-swap, retrying on a concurrent change. Every
//! decision, granted or refused, is written to history. It is the only layer that knows both
//! its neighbours, and the only place where authorisation is decided.
//!
//! Where each rule lives: [`policy`] the lifecycle table and lockout, as pure functions;
//! `authentication` the password checks and their counting; `enrollment` an ID's own
//! `simpleenroll`, `serverkeygen` and `simplereenroll`; `delegated` an application's;
//! `issuance` the loop that decides, signs and commits; [`authority`] who may administer
//! what; `admin` and `apps` administration; `error` and `caller` what every path shares.

mod admin;
mod apps;
mod authentication;
pub mod authority;
mod caller;
mod clock;
mod delegated;
mod enrollment;
mod error;
mod issuance;
mod observer;
mod passwords;
pub mod policy;
mod source_budget;
pub mod throttle;
mod views;
mod workers;

pub use apps::NewApp;
pub use authority::Authority;
pub use caller::Caller;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ErrorKind, RaError};
pub use observer::{Observer, Unobserved};
pub use passwords::{PasswordError, Passwords, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
pub use policy::{CertificateAction, EnrollVia, Refusal};
pub use views::{
    AccountView, ActorView, AppScopeView, AppView, CertificateSummary, CertificateView,
    ContractView, HistoryEntryView, OutcomeView, RevocationView, ServiceView,
};
pub use workers::WorkError;

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::ca::IssuingCas;
use crate::config::AuthConfig;
use crate::model::{
    Account, AccountId, CertificateRecord, ContractCode, EventKind, HistoryEvent, Outcome, Role,
};
use crate::store::{BackupStore, IssuedCertificate, RaStore, Store};

use caller::REFUSED_IDS_PREFIX;

/// How many times a decision is retried when the account changes under it.
const MAX_ATTEMPTS: usize = 32;

/// serverkeygen requests that may wait for a key-generation thread, per thread; more are
/// answered 503 at once.
const KEY_GENERATION_QUEUE_PER_THREAD: usize = 4;

/// Largest page of history one query returns.
pub const MAX_HISTORY_PAGE: usize = 1000;

/// The first password of a new account. Its `Debug` shows which kind it is, never the
/// password or the hash.
pub enum InitialPassword {
    /// As typed: checked against the length rules and hashed with Argon2id.
    Clear(Zeroizing<String>),
    /// An Argon2 PHC hash made elsewhere, for the operator's bulk loads (one hash shared by
    /// many IDs costs one hashing): refused from anyone else, and refused unless it parses.
    Hashed(String),
}

impl std::fmt::Debug for InitialPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InitialPassword::Clear(_) => "InitialPassword::Clear(..)",
            InitialPassword::Hashed(_) => "InitialPassword::Hashed(..)",
        })
    }
}

/// A new account as an administrator asks for it.
#[derive(Debug)]
pub struct NewAccount {
    /// Login ID; `None`: estca chooses an unguessable one ([`AccountId::generate`]).
    pub id: Option<AccountId>,
    /// Its contract.
    pub contract: ContractCode,
    /// Master or public ID.
    pub role: Role,
    /// Display name.
    pub name: String,
    /// Initial password.
    pub password: InitialPassword,
}

/// Why serverkeygen is refused to an ID whose contract does not allow it.
pub const SERVER_KEYGEN_OFF: &str = "server-side key generation (serverkeygen) is not allowed \
     for your contract: make a key pair on your own device and enroll with simpleenroll \
     (the CA operator can allow it for the contract: estca contract edit CODE --server-keygen)";

/// Why the registration authority could not start.
#[derive(Debug, thiserror::Error)]
pub enum RaStartError {
    /// The Argon2 parameters are unusable, or its threads could not start.
    #[error("password hashing: {0}")]
    Passwords(#[from] PasswordError),
    /// The threads of server-side key generation could not start.
    #[error("server-side key generation: {0}")]
    KeyGeneration(workers::WorkError),
}

/// The registration authority.
pub struct RegistrationAuthority {
    store: Arc<dyn RaStore>,
    /// For the operator's backups.
    backups: Arc<dyn BackupStore>,
    /// The issuing CA generations; the current one signs.
    ca: Arc<IssuingCas>,
    clock: Arc<dyn Clock>,
    passwords: Passwords,
    max_failed_attempts: u32,
    refused_ids: crate::store::Budget,
    observer: Arc<dyn Observer>,
    failures_by_source: throttle::FailureThrottle,
    /// The same limit in the store, so that it holds across daemons.
    source_budgets: source_budget::SourceBudgets,
    /// `est.renewal_requires_new_key`: refuse a renewal with the key being renewed.
    renewal_requires_new_key: bool,
    /// The threads that generate keys for serverkeygen: one per CPU, so that a burst of
    /// RSA key generations (up to seconds of CPU each) is queued, not run all at once.
    key_generations: workers::Workers,
}

impl RegistrationAuthority {
    /// Wires the registration authority to its neighbours; of `store` it uses the
    /// registration authority's writes ([`RaStore`]) and, for the operator's backups,
    /// [`BackupStore`].
    pub fn new(
        store: Arc<dyn Store>,
        ca: Arc<IssuingCas>,
        clock: Arc<dyn Clock>,
        auth: &AuthConfig,
    ) -> Result<Self, RaStartError> {
        Self::with_observer(store, ca, clock, auth, Arc::new(Unobserved))
    }

    /// As [`RegistrationAuthority::new`], telling `observer` of every issuance, refusal,
    /// lockout and revocation (the daemon's metrics count them).
    pub fn with_observer(
        store: Arc<dyn Store>,
        ca: Arc<IssuingCas>,
        clock: Arc<dyn Clock>,
        auth: &AuthConfig,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, RaStartError> {
        let window = std::time::Duration::from_secs(auth.failure_window_secs);
        // One key-generation thread per CPU estca may use.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            backups: store.clone(),
            source_budgets: source_budget::SourceBudgets::new(
                store.clone(),
                clock.clone(),
                auth.max_failures_per_source,
                window,
            ),
            store,
            ca,
            clock,
            passwords: Passwords::new(auth)?,
            max_failed_attempts: auth.max_failed_attempts,
            refused_ids: crate::store::Budget {
                capacity: auth.max_refused_ids_per_caller,
                window: std::time::Duration::from_secs(auth.refused_ids_window_secs),
            },
            observer,
            failures_by_source: throttle::FailureThrottle::new(
                auth.max_failures_per_source,
                window,
            ),
            renewal_requires_new_key: false,
            key_generations: workers::Workers::new(
                "estca-keygen",
                cpus,
                KEY_GENERATION_QUEUE_PER_THREAD * cpus,
            )
            .map_err(RaStartError::KeyGeneration)?,
        })
    }

    /// This registration authority, refusing (`true`) or allowing (`false`, the default) a
    /// simplereenroll with the key of the certificate being renewed (RFC 7030 section 4.2.2
    /// allows it; `est.renewal_requires_new_key`).
    pub fn with_renewal_requires_new_key(mut self, requires: bool) -> Self {
        self.renewal_requires_new_key = requires;
        self
    }

    /// Tells the observer the outcome of an enrollment.
    fn count_enrollment(
        &self,
        result: Result<IssuedCertificate, RaError>,
    ) -> Result<IssuedCertificate, RaError> {
        self.observe_enrollment(result.as_ref());
        result
    }

    /// Tells the observer the outcome of an enrollment, which the caller keeps.
    fn observe_enrollment(&self, result: Result<&IssuedCertificate, &RaError>) {
        match result {
            Ok(issued) => {
                if let crate::model::Holder::Account { role, .. } = issued.record().holder {
                    self.observer.issued(role);
                }
                if issued.superseded().is_some() {
                    self.observer
                        .revoked(crate::model::RevocationReason::Superseded);
                }
            }
            Err(e) => self.observer.refused(e),
        }
    }

    /// The `cacerts` answer (DER PKCS#7 certs-only of the issuing CA generations, the
    /// intermediates and the root).
    pub fn ca_certificates_pkcs7(&self) -> Vec<u8> {
        self.ca.get().cacerts_pkcs7().to_vec()
    }

    /// The current issuing CA certificate, DER: follows the leaf in PEM chain answers (the
    /// leaf was just signed by it).
    pub fn issuing_certificate_der(&self) -> Vec<u8> {
        self.ca.current().issuing_certificate_der().to_vec()
    }

    /// The CA certificates, DER, in the order of the PEM `cacerts` answer
    /// ([`crate::ca::Generations::certificates_der`]): the current chain up to the root, then
    /// the retired issuing CAs still loaded.
    pub fn ca_chain_der(&self) -> Vec<Vec<u8>> {
        self.ca
            .get()
            .certificates_der()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Whether the store's database answers now (for `/readyz`).
    pub async fn store_answers(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// Forgets the limits kept in the store that are full again (the failed logins of each
    /// source address, the refused IDs of each caller), so that they cannot grow without
    /// bound; returns how many. The daemon runs it every few minutes
    /// ([`RegistrationAuthority::spawn_budget_sweeper`]).
    pub async fn forget_refilled_budgets(&self) -> Result<u64, RaError> {
        let sources = self.source_budgets.forget_refilled().await?;
        let refused_ids = self
            .store
            .forget_refilled_budgets(REFUSED_IDS_PREFIX, self.refused_ids, self.clock.now())
            .await?;
        Ok(sources + refused_ids)
    }

    /// Runs [`RegistrationAuthority::forget_refilled_budgets`] every few minutes until
    /// `stopped` turns true.
    pub fn spawn_budget_sweeper(
        self: Arc<Self>,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(source_budget::SWEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
                match self.forget_refilled_budgets().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(forgotten = n, "forgot limits that are full again"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not forget limits that are full again")
                    }
                }
            }
        })
    }

    /// Password checks waiting for a hashing slot.
    pub fn password_queue_depth(&self) -> usize {
        self.passwords.queue_depth()
    }

    async fn current_certificate(
        &self,
        account: &Account,
    ) -> Result<Option<CertificateRecord>, RaError> {
        match &account.current_certificate {
            Some(serial) => Ok(self.store.certificate(serial).await?),
            None => Ok(None),
        }
    }

    async fn reload(&self, id: &AccountId) -> Result<Account, RaError> {
        self.store
            .account(id)
            .await?
            .ok_or_else(|| RaError::NotFound(format!("account {id}")))
    }

    fn event(
        &self,
        caller: &Caller,
        account: Option<&Account>,
        kind: EventKind,
        outcome: Outcome,
    ) -> HistoryEvent {
        HistoryEvent {
            at: self.clock.now(),
            account: account.map(|a| a.id.clone()),
            contract: account.map(|a| a.contract.clone()),
            kind,
            actor: caller.actor.clone(),
            source: caller.source.clone(),
            outcome,
        }
    }

    async fn record_refusal(
        &self,
        caller: &Caller,
        account: Option<&Account>,
        kind: EventKind,
        reason: String,
    ) -> Result<(), RaError> {
        tracing::info!(
            actor = %caller.actor,
            id = account.map(|a| tracing::field::display(a.id.as_str())),
            event = %kind,
            %reason,
            "refused"
        );
        self.store
            .append_history(self.event(caller, account, kind, Outcome::Refused { reason }))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
