//! The registration authority: who may get what, when.
//!
//! Front ends hand it authenticated-or-not requests; it checks credentials, asks the pure
//! lifecycle rules in [`policy`], has the [`crate::ca`] sign, and commits the outcome to
//! the [`store`](crate::store) with compare-and-swap, retrying on a concurrent change. Every
//! decision, granted or refused, is written to history. It is the only layer that knows both
//! its neighbours, and the only place where authorisation is decided.

mod admin;
mod apps;
pub mod authority;
mod clock;
mod delegated;
mod observer;
mod passwords;
pub mod policy;
mod source_budget;
pub mod throttle;
mod views;
mod workers;

pub use apps::NewApp;
pub use authority::Authority;
pub use clock::{Clock, ManualClock, SystemClock};
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

use crate::ca::{self, CaError, CsrError, EndEntityRequest, IssuingCas};
use crate::config::AuthConfig;
use crate::model::{
    Account, AccountId, Actor, CertificateRecord, ContractCode, EventKind, HistoryEvent, Holder,
    HostName, Outcome, PresentedCertificate, Role, Serial,
};
use crate::source::SourceKey;
use crate::store::{
    AccountChange, AccountEdit, BackupStore, IssuedCertificate, NewCertificate, PasswordAttempt,
    RaStore, Store, StoreError,
};

/// Longest a password check waits for the checks already counted against its ID to end.
const PENDING_CHECKS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How many times a decision is retried when the account changes under it.
const MAX_ATTEMPTS: usize = 32;

/// The Retry-After of the 503 answered while the issuing CA expires too soon to issue: a day.
const ISSUING_CA_RETRY_AFTER_SECS: u64 = 86_400;

/// Retry-After of a 503 while the store's database cannot be reached.
const STORE_RETRY_AFTER_SECS: u64 = 5;

/// serverkeygen requests that may wait for a key-generation thread, per thread; more are
/// answered 503 at once.
const KEY_GENERATION_QUEUE_PER_THREAD: usize = 4;

/// Largest page of history one query returns.
pub const MAX_HISTORY_PAGE: usize = 1000;

/// The category of a refusal, which a front end turns into its protocol's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is malformed or unacceptable (HTTP 400).
    Invalid,
    /// Credentials missing, wrong, or for a locked or unknown ID (HTTP 401).
    Unauthenticated,
    /// Authenticated but not allowed (HTTP 403).
    Forbidden,
    /// No such thing in the caller's scope (HTTP 404).
    NotFound,
    /// The request conflicts with the current state (HTTP 409).
    Conflict,
    /// Too busy now; retry later (HTTP 503).
    Busy,
    /// Too many failed attempts from this source; retry later (HTTP 429).
    TooManyRequests,
    /// estca cannot do this until the operator acts, e.g. the issuing CA expires too soon
    /// to issue (HTTP 503).
    Unavailable,
    /// estca itself failed (HTTP 500).
    Internal,
}

/// Why the registration authority refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum RaError {
    /// Unknown ID, wrong password or locked ID: deliberately indistinguishable.
    #[error("authentication failed: check the ID and password (after repeated failures the ID is locked; ask your administrator)")]
    Unauthenticated,
    /// The client certificate was not issued by this CA.
    #[error("this client certificate was not issued by this CA; present the certificate estca issued to your ID")]
    UnknownCertificate,
    /// The lifecycle refuses.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The CSR is unacceptable.
    #[error("{0}")]
    BadCsr(#[from] CsrError),
    /// The CSR's key was certified before.
    #[error(
        "this public key was already certified (serial {0}); generate a new key pair and a new CSR"
    )]
    KeyReused(Serial),
    /// A value in the request is unacceptable.
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing (in the caller's scope).
    #[error("{0} not found")]
    NotFound(String),
    /// It exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// An ID that exists, in the caller's contract or another (IDs are one login namespace),
    /// or differs from an existing one by letter case only: the answer does not say which.
    #[error(
        "the ID {0} is not available; choose another, or leave out the ID and estca chooses one"
    )]
    IdUnavailable(AccountId),
    /// The caller had too many ID creations refused as not available recently.
    #[error("too many of your ID choices were not available; wait {retry_after_secs} seconds, or leave out the ID and estca chooses one")]
    TooManyRefusedIds {
        /// Seconds until the caller's budget allows another attempt.
        retry_after_secs: u64,
    },
    /// The request conflicts with the current state; the text says which.
    #[error("{0}")]
    Conflict(String),
    /// Password hashing is saturated or failed.
    #[error("{0}")]
    Password(#[from] PasswordError),
    /// The client's address has failed to authenticate too often recently.
    #[error("{0}")]
    Throttled(#[from] throttle::Throttled),
    /// Every key-generation thread is busy and the queue is full (serverkeygen).
    #[error("too many keys are being generated by estca now; retry in a few seconds")]
    KeyGenerationBusy,
    /// Too much concurrent change to one account.
    #[error("the account is changing too fast to decide; retry in a moment")]
    Contended,
    /// The CA could not sign.
    #[error("{0}")]
    Ca(#[from] CaError),
    /// The store failed.
    #[error("{0}")]
    Store(StoreError),
}

impl From<StoreError> for RaError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => RaError::NotFound(what),
            StoreError::AlreadyExists(what) => RaError::AlreadyExists(what),
            StoreError::KeyReused(serial) => RaError::KeyReused(serial),
            StoreError::Conflict => RaError::Contended,
            StoreError::Invalid(why) => RaError::Invalid(why),
            other => RaError::Store(other),
        }
    }
}

impl RaError {
    /// Seconds the client should wait before retrying, for 429 and 503 answers.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            RaError::Throttled(t) => Some(t.retry_after_secs),
            RaError::TooManyRefusedIds { retry_after_secs } => Some(*retry_after_secs),
            // The operator has to put a new issuing CA in place: not a matter of seconds.
            RaError::Ca(CaError::CaExpiresTooSoon { .. }) => Some(ISSUING_CA_RETRY_AFTER_SECS),
            // The database is back within seconds (a restart, a failover) or the operator is
            // told by /readyz.
            RaError::Store(StoreError::Unavailable(_)) => Some(STORE_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RaError::Unauthenticated => ErrorKind::Unauthenticated,
            RaError::UnknownCertificate | RaError::Forbidden(_) => ErrorKind::Forbidden,
            RaError::Refused(Refusal::ActiveCertificate { .. })
            | RaError::Refused(Refusal::NothingToContinue)
            | RaError::Refused(Refusal::AlreadyRevoked)
            | RaError::Refused(Refusal::Removed { .. })
            | RaError::AlreadyExists(_)
            | RaError::IdUnavailable(_)
            | RaError::Conflict(_) => ErrorKind::Conflict,
            RaError::Refused(_) => ErrorKind::Forbidden,
            RaError::BadCsr(_) | RaError::KeyReused(_) | RaError::Invalid(_) => ErrorKind::Invalid,
            RaError::Password(PasswordError::BadLength | PasswordError::BadHash(_)) => {
                ErrorKind::Invalid
            }
            RaError::Password(PasswordError::Busy)
            | RaError::KeyGenerationBusy
            | RaError::Contended => ErrorKind::Busy,
            RaError::NotFound(_) => ErrorKind::NotFound,
            RaError::Throttled(_) | RaError::TooManyRefusedIds { .. } => ErrorKind::TooManyRequests,
            RaError::Ca(CaError::CaExpiresTooSoon { .. })
            | RaError::Store(StoreError::Unavailable(_)) => ErrorKind::Unavailable,
            RaError::Password(PasswordError::Hashing(_)) | RaError::Ca(_) | RaError::Store(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// Who is asking, from where, and what they may administer: recorded in history with every
/// decision.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated actor.
    pub actor: Actor,
    /// The peer's address, or `admin-socket`.
    pub source: String,
    /// What the caller may administer.
    pub authority: Authority,
}

impl Caller {
    /// The operator on the admin socket (with the peer's Unix user ID when known).
    pub fn operator(uid: Option<u32>) -> Self {
        Self {
            actor: Actor::Operator { uid },
            source: "admin-socket".to_owned(),
            authority: Authority::Operator,
        }
    }

    /// The name of the caller's budget of IDs refused as not available; `None` for the
    /// operator, who sees every ID anyway and is not limited.
    fn refused_ids_budget(&self) -> Option<String> {
        match (&self.authority, &self.actor) {
            (Authority::Operator, _) => None,
            (_, actor) => Some(format!("{REFUSED_IDS_PREFIX}{actor}")),
        }
    }

    /// An ID acting for itself (enrollment, renewal): no administration.
    fn account(id: &AccountId, source: &str) -> Self {
        Self::enrolling(Actor::Account { id: id.clone() }, source)
    }

    /// An enrolling ID or an anonymous client: no administration.
    fn enrolling(actor: Actor, source: &str) -> Self {
        Self {
            actor,
            source: source.to_owned(),
            authority: Authority::Nothing,
        }
    }
}

/// The first password of a new account.
#[derive(Debug)]
pub enum InitialPassword {
    /// As typed: checked against the length rules and hashed with Argon2id.
    Clear(Zeroizing<String>),
    /// An Argon2 PHC hash made elsewhere, for the operator's bulk loads (one hash shared by
    /// many IDs costs one hashing): refused from anyone else, and refused unless it parses.
    Hashed(String),
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

/// Where the key being certified came from, for history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOrigin {
    /// The client's CSR.
    Csr,
    /// Generated by estca (serverkeygen).
    Generated,
}

/// Why serverkeygen is refused to an ID whose contract does not allow it.
pub const SERVER_KEYGEN_OFF: &str = "server-side key generation (serverkeygen) is not allowed \
     for your contract: make a key pair on your own device and enroll with simpleenroll \
     (the CA operator can allow it for the contract: estca contract edit CODE --server-keygen)";

/// The name prefix of the refused-ID budgets in the store, one per caller.
const REFUSED_IDS_PREFIX: &str = "refused-ids/";

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

    /// The CA certificates, DER, in the order of the PEM `cacerts` answer: the current
    /// issuing CA, the retired ones still loaded (newest first), intermediates, the root.
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

    /// simpleenroll: authenticates `id`/`password`, validates the CSR, applies the
    /// lifecycle and issues. `id` is taken as the client sent it; `source` is the peer's
    /// address for history and `source_key` what the per-source throttle counts it as
    /// (`None`: not limited).
    pub async fn enroll_with_password(
        &self,
        source: &str,
        source_key: Option<SourceKey>,
        id: &str,
        password: Zeroizing<Vec<u8>>,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let result = match self
            .authenticate_enrollment(source, source_key, id, password)
            .await
        {
            Ok((caller, account)) => unauthenticated_if_locked(
                self.issue(
                    &caller,
                    &account,
                    EventKind::Enroll,
                    csr_der,
                    EnrollVia::Password,
                )
                .await,
            ),
            Err(e) => Err(e),
        };
        self.count_enrollment(result)
    }

    /// serverkeygen (RFC 7030 section 4.4): as [`RegistrationAuthority::enroll_with_password`]
    /// (the same authentication, throttling, lockout, lifecycle and history), for an ID whose
    /// contract allows it ([`crate::model::Contract::server_keygen`]; else 403), with a key
    /// pair estca generates instead of the CSR's key
    /// (`issue_server_generated_key`). The private key is returned
    /// to be sent to the client once; it is not stored.
    pub async fn enroll_with_server_keygen(
        &self,
        source: &str,
        source_key: Option<SourceKey>,
        id: &str,
        password: Zeroizing<Vec<u8>>,
        csr_der: &[u8],
    ) -> Result<(IssuedCertificate, ca::GeneratedKey), RaError> {
        let result = match self
            .authenticate_enrollment(source, source_key, id, password)
            .await
        {
            Ok((caller, account)) => unauthenticated_if_locked(
                self.issue_server_generated_key(&caller, &account, csr_der)
                    .await,
            ),
            Err(e) => Err(e),
        };
        self.observe_enrollment(result.as_ref().map(|(issued, _)| issued));
        result
    }

    /// The authentication of simpleenroll and serverkeygen: the source's failed-login
    /// limits, then the ID's password ([`RegistrationAuthority::authenticate`]); returns the
    /// ID acting for itself and its account.
    async fn authenticate_enrollment(
        &self,
        source: &str,
        source_key: Option<SourceKey>,
        id: &str,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<(Caller, Account), RaError> {
        // The source's limit, in this daemon's memory and then in the store (see
        // `source_budget`): a token of each is taken before the password is looked at.
        let deadline = tokio::time::Instant::now() + throttle::MAX_WAIT;
        let throttled = match self.failures_by_source.admit(source_key).await {
            Ok(admitted) => match self.source_budgets.take(source_key, deadline).await {
                Ok(spent) => Ok((admitted, spent)),
                Err(not_spent) => {
                    // Not checked: this daemon's token goes back.
                    admitted.refund();
                    match not_spent {
                        source_budget::NotSpent::Throttled(throttled) => Err(throttled),
                        source_budget::NotSpent::Store(e) => return Err(e.into()),
                    }
                }
            },
            Err(throttled) => Err(throttled),
        };
        let (admitted, spent) = match throttled {
            Ok(tokens) => tokens,
            Err(throttled) => {
                self.record_refusal(
                    &Caller::enrolling(Actor::Anonymous, source),
                    None,
                    EventKind::Enroll,
                    format!("authentication refused: {throttled}"),
                )
                .await?;
                return Err(throttled.into());
            }
        };
        let account = match self.authenticate(source, id, password).await {
            Ok(account) => {
                admitted.refund();
                self.source_budgets.refund(spent).await;
                account
            }
            // A failed authentication keeps the source's tokens spent.
            Err(RaError::Unauthenticated) => {
                drop(admitted);
                drop(spent);
                return Err(RaError::Unauthenticated);
            }
            // Busy or broken: no password was judged, so the source pays nothing.
            Err(other) => {
                admitted.refund();
                self.source_budgets.refund(spent).await;
                return Err(other);
            }
        };
        Ok((Caller::account(&account.id, source), account))
    }

    /// simplereenroll: identifies the account by the client certificate it presented over
    /// TLS (which must be a certificate this CA recorded, byte for byte), validates the CSR,
    /// applies the lifecycle and issues.
    pub async fn reenroll_with_certificate(
        &self,
        source: &str,
        client_certificate: &PresentedCertificate,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let result = self
            .reenroll_with_certificate_uncounted(source, client_certificate, csr_der)
            .await;
        self.count_enrollment(result)
    }

    async fn reenroll_with_certificate_uncounted(
        &self,
        source: &str,
        client_certificate: &PresentedCertificate,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let presented = self.recorded_certificate(client_certificate).await?;
        let Some(id) = presented.account() else {
            return Err(RaError::Forbidden(
                "an application certificate cannot enroll; applications manage IDs through the management API".into(),
            ));
        };
        let account = self
            .store
            .account(id)
            .await?
            .ok_or(RaError::UnknownCertificate)?;
        let caller = Caller::account(&account.id, source);
        if account.is_removed() {
            // The same answer as for an ID that never existed.
            self.record_refusal(
                &caller,
                Some(&account),
                EventKind::Reenroll,
                "client certificate of a removed ID".to_owned(),
            )
            .await?;
            return Err(RaError::UnknownCertificate);
        }
        self.issue(
            &caller,
            &account,
            EventKind::Reenroll,
            csr_der,
            EnrollVia::Certificate(presented.serial),
        )
        .await
    }

    /// The store's record of a certificate a client presented, if this CA issued it.
    async fn recorded_certificate(
        &self,
        presented: &PresentedCertificate,
    ) -> Result<CertificateRecord, RaError> {
        let serial = presented.serial().ok_or(RaError::UnknownCertificate)?;
        match self.store.certificate(&serial).await? {
            Some(record) if record.der == presented.der() => Ok(record),
            _ => Err(RaError::UnknownCertificate),
        }
    }

    /// Checks a password; all failures look the same outside (401, one Argon2 check each).
    ///
    /// The attempt is counted in the store *before* the password is checked, and only while
    /// fewer than `max_failed_attempts` are counted: so under any concurrency, on any number of
    /// daemons sharing the store, at most that many wrong passwords are ever checked for one
    /// ID between two successes or unlocks. An attempt over the limit, on a locked ID or on an
    /// unknown one is not checked at all; it costs a check against the dummy hash, so that its
    /// answer takes as long as any other.
    async fn authenticate(
        &self,
        source: &str,
        id: &str,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<Account, RaError> {
        // A place among the password checks first: a busy daemon refuses before it counts.
        let slot = self.passwords.admit()?;
        let id: Option<AccountId> = id.parse().ok();
        let attempt = match &id {
            Some(id) => self.count_password_attempt(id).await?,
            None => PasswordAttempt::UnknownId,
        };
        let account = match attempt {
            PasswordAttempt::Counted(account) => account,
            PasswordAttempt::UnknownId => {
                slot.verify(password, None).await?;
                let claimed = id.map_or_else(
                    || "a malformed ID".to_owned(),
                    |id| format!("unknown ID {id}"),
                );
                self.record_refusal(
                    &Caller::enrolling(Actor::Anonymous, source),
                    None,
                    EventKind::Enroll,
                    format!("authentication failed: {claimed}"),
                )
                .await?;
                return Err(RaError::Unauthenticated);
            }
            PasswordAttempt::OverLimit(account) => {
                slot.verify(password, None).await?;
                // A removed ID: one check against the dummy hash and the same answer as
                // for an unknown ID, recorded under the ID for its audit trail.
                let why = if account.is_removed() {
                    "ID removed".to_owned()
                } else if account.locked {
                    "ID locked".to_owned()
                } else {
                    format!(
                        "{} password checks already counted; password not checked",
                        account.failed_attempts
                    )
                };
                self.record_refusal(
                    &Caller::account(&account.id, source),
                    Some(&account),
                    EventKind::Enroll,
                    format!("authentication failed: {why}"),
                )
                .await?;
                return Err(RaError::Unauthenticated);
            }
        };
        // The count was durable when it returned: a crash cannot give a guess back.
        let caller = Caller::account(&account.id, source);
        if slot
            .verify(password, Some(account.password_hash.clone()))
            .await?
        {
            self.accept_right_password(&caller, account).await
        } else {
            self.settle_wrong_password(&caller, account).await?;
            Err(RaError::Unauthenticated)
        }
    }

    /// Counts an attempt for `id` in the store. When the limit is reached only because checks
    /// are still running (on this daemon or another), waits for them to end (at most
    /// [`PENDING_CHECKS_WAIT`], polling the store), since a right password among them resets
    /// the count: many right passwords sent at once are all checked, however many there are,
    /// and wrong ones never more than the limit.
    async fn count_password_attempt(&self, id: &AccountId) -> Result<PasswordAttempt, RaError> {
        let deadline = tokio::time::Instant::now() + PENDING_CHECKS_WAIT;
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            let attempt = self
                .store
                .count_password_attempt(id, self.max_failed_attempts)
                .await?;
            match attempt {
                PasswordAttempt::OverLimit(ref account)
                    if !account.locked
                        && !account.is_removed()
                        && tokio::time::Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                other => return Ok(other),
            }
        }
    }

    /// A right password: clears the failure count, unless the ID was locked meanwhile by
    /// concurrent wrong guesses, in which case the answer is the same as for a wrong one.
    async fn accept_right_password(
        &self,
        caller: &Caller,
        account: Account,
    ) -> Result<Account, RaError> {
        let account = self.store.clear_password_attempts(&account.id).await?;
        if account.locked {
            self.record_refusal(
                caller,
                Some(&account),
                EventKind::Enroll,
                "authentication failed: ID locked while the password was checked".into(),
            )
            .await?;
            return Err(RaError::Unauthenticated);
        }
        Ok(account)
    }

    /// A wrong password: records it (the store counted it already) and locks the ID when the
    /// count has reached the limit.
    async fn settle_wrong_password(
        &self,
        caller: &Caller,
        counted: Account,
    ) -> Result<(), RaError> {
        let failed = self.event(
            caller,
            Some(&counted),
            EventKind::Enroll,
            Outcome::Refused {
                reason: format!(
                    "authentication failed: wrong password ({} of {})",
                    counted.failed_attempts, self.max_failed_attempts
                ),
            },
        );
        let mut account = counted;
        for _ in 0..MAX_ATTEMPTS {
            if !policy::locks_after_failed_check(&account, self.max_failed_attempts) {
                self.store.append_history(failed).await?;
                return Ok(());
            }
            let lock = self.event(
                &Caller::enrolling(Actor::System, &caller.source),
                Some(&account),
                EventKind::Lock,
                Outcome::Ok {
                    detail: format!("locked after {} wrong passwords", account.failed_attempts),
                },
            );
            match self
                .store
                .update_account(AccountChange {
                    id: account.id.clone(),
                    expected_version: account.version,
                    edits: vec![AccountEdit::LockAtFailures(self.max_failed_attempts)],
                    revoke: None,
                    events: vec![failed.clone(), lock],
                })
                .await
            {
                Ok(_) => {
                    tracing::warn!(id = %account.id, "ID locked after too many wrong passwords");
                    self.observer.locked_out();
                    return Ok(());
                }
                Err(StoreError::Conflict) => account = self.reload(&account.id).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RaError::Contended)
    }

    /// Validates the CSR (its key and proof of possession) and issues for its key
    /// ([`RegistrationAuthority::issue_key`]).
    async fn issue(
        &self,
        caller: &Caller,
        account: &Account,
        kind: EventKind,
        csr_der: &[u8],
        via: EnrollVia,
    ) -> Result<IssuedCertificate, RaError> {
        let key = match ca::validate_csr(csr_der) {
            Ok(key) => key,
            Err(e) => {
                self.record_refusal(caller, Some(account), kind, e.to_string())
                    .await?;
                return Err(e.into());
            }
        };
        self.issue_key(caller, account, kind, &key, via, KeyOrigin::Csr)
            .await
    }

    /// serverkeygen for an authenticated ID: refused (403) unless its contract allows
    /// server-side key generation; the CSR is read as RFC 7030 section 4.4.1 says
    /// ([`ca::server_keygen_request`]: its key and signature ignored). The lifecycle is asked
    /// before a key is generated, so that a refused request (an active certificate, a
    /// revoked ID) costs no key generation, and again, on fresh state, when the certificate
    /// is committed ([`RegistrationAuthority::issue_key`]). The key is of the kind of the
    /// CSR's key when estca certifies that kind, else ECDSA P-256.
    async fn issue_server_generated_key(
        &self,
        caller: &Caller,
        account: &Account,
        csr_der: &[u8],
    ) -> Result<(IssuedCertificate, ca::GeneratedKey), RaError> {
        let kind = EventKind::Enroll;
        let allowed = self
            .store
            .contract(&account.contract)
            .await?
            .is_some_and(|c| c.server_keygen);
        if !allowed {
            let err = RaError::Forbidden(SERVER_KEYGEN_OFF.to_owned());
            self.record_refusal(caller, Some(account), kind, err.to_string())
                .await?;
            return Err(err);
        }
        let requested = match ca::server_keygen_request(csr_der) {
            Ok(requested) => requested,
            Err(e) => {
                self.record_refusal(caller, Some(account), kind, e.to_string())
                    .await?;
                return Err(e.into());
            }
        };
        let current = self.current_certificate(account).await?;
        if let Err(refusal) = policy::enrollment(
            account,
            current.as_ref(),
            EnrollVia::Password,
            self.clock.now(),
        ) {
            self.record_refusal(caller, Some(account), kind, refusal.to_string())
                .await?;
            return Err(refusal.into());
        }
        let key_kind = requested.unwrap_or(ca::KeyKind::EcdsaP256);
        let generation = match self.key_generations.admit() {
            Ok(slot) => slot,
            Err(_) => {
                let err = RaError::KeyGenerationBusy;
                self.record_refusal(caller, Some(account), kind, err.to_string())
                    .await?;
                return Err(err);
            }
        };
        let key = generation
            .run(move || ca::keygen::generate(key_kind))
            .await
            .map_err(|e| match e {
                workers::WorkError::Busy => RaError::KeyGenerationBusy,
                workers::WorkError::Failed(why) => {
                    CaError::Internal(format!("the key generation failed: {why}")).into()
                }
            })??;
        let issued = self
            .issue_key(
                caller,
                account,
                kind,
                key.public_key(),
                EnrollVia::Password,
                KeyOrigin::Generated,
            )
            .await?;
        Ok((issued, key))
    }

    /// The issuance loop: decide on fresh state, sign, commit with compare-and-swap, flush.
    async fn issue_key(
        &self,
        caller: &Caller,
        account: &Account,
        kind: EventKind,
        key: &ca::CsrKey,
        via: EnrollVia,
        origin: KeyOrigin,
    ) -> Result<IssuedCertificate, RaError> {
        let mut account = account.clone();
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now();
            let current = self.current_certificate(&account).await?;
            let decision = match policy::enrollment(&account, current.as_ref(), via, now) {
                Ok(d) => d,
                Err(refusal) => {
                    self.record_refusal(caller, Some(&account), kind, refusal.to_string())
                        .await?;
                    return Err(refusal.into());
                }
            };
            // A renewal with the key of the certificate that authenticated it (RFC 7030
            // section 4.2.2): the store allows that key again for the certificate that
            // supersedes it, and only for that one.
            let renews_key = match via {
                EnrollVia::Certificate(presented) => {
                    !self.renewal_requires_new_key
                        && current
                            .as_ref()
                            .is_some_and(|c| c.serial == presented && c.key == key.fingerprint())
                }
                EnrollVia::Password | EnrollVia::Delegated => false,
            };
            let certified_by = if renews_key {
                None
            } else {
                self.store.key_certified_by(&key.fingerprint()).await?
            };
            if let Some(serial) = certified_by {
                let err = RaError::KeyReused(serial);
                self.record_refusal(caller, Some(&account), kind, err.to_string())
                    .await?;
                return Err(err);
            }
            let holder = Holder::Account {
                id: account.id.clone(),
                contract: account.contract.clone(),
                role: account.role,
                issued_num: decision.issued_num,
            };
            let record = match self.sign(holder, &[], key, now).await {
                Ok(record) => record,
                Err(e) => {
                    if e.kind() == ErrorKind::Unavailable {
                        self.record_refusal(caller, Some(&account), kind, e.to_string())
                            .await?;
                    }
                    return Err(e);
                }
            };
            let serial = record.serial;
            let mut detail = match decision.supersedes {
                Some(old) => format!(
                    "issued {serial} (CERTISSUEDNUM {}), superseding {old}",
                    decision.issued_num
                ),
                None => format!("issued {serial} (CERTISSUEDNUM {})", decision.issued_num),
            };
            if origin == KeyOrigin::Generated {
                detail.push_str(&format!(
                    ", for a {} key generated by estca (serverkeygen)",
                    key.kind()
                ));
            }
            let event = self.event(caller, Some(&account), kind, Outcome::Ok { detail });
            match self
                .store
                .commit_issuance(NewCertificate {
                    expected_version: account.version,
                    record,
                    supersedes: decision.supersedes,
                    choice: decision.choice,
                    event,
                })
                .await
            {
                Ok(issued) => {
                    // Left out of the line when nothing was superseded.
                    let superseded = issued.superseded().map(|s| s.to_string());
                    tracing::info!(
                        id = %account.id,
                        serial = %issued.record().serial,
                        issued_num = decision.issued_num,
                        superseded = superseded.as_deref(),
                        "certificate issued"
                    );
                    return Ok(issued);
                }
                Err(StoreError::Conflict) => account = self.reload(&account.id).await?,
                Err(StoreError::KeyReused(serial)) => {
                    let err = RaError::KeyReused(serial);
                    self.record_refusal(caller, Some(&account), kind, err.to_string())
                        .await?;
                    return Err(err);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RaError::Contended)
    }

    /// Has the CA sign a certificate for `holder` (naming `hosts`, for an application that
    /// serves TLS) and `key` with a serial the store reserved first, starting `now`, and
    /// returns it as the (unrevoked) record the store is asked to commit.
    async fn sign(
        &self,
        holder: Holder,
        hosts: &[HostName],
        key: &ca::CsrKey,
        now: time::OffsetDateTime,
    ) -> Result<CertificateRecord, RaError> {
        let serial = self.reserve_serial(now).await?;
        let signed = self.ca.current().sign_end_entity(&EndEntityRequest {
            serial: &serial,
            holder: &holder,
            not_before: now,
            key,
            hosts,
        })?;
        Ok(CertificateRecord {
            serial: serial.serial(),
            holder,
            subject: signed.subject,
            not_before: signed.not_before,
            not_after: signed.not_after,
            key: key.fingerprint(),
            revocation: None,
            der: signed.der,
        })
    }

    /// Draws a fresh serial and reserves it in the store (again in the unlikely case that it
    /// was taken).
    async fn reserve_serial(
        &self,
        now: time::OffsetDateTime,
    ) -> Result<crate::store::ReservedSerial, RaError> {
        for _ in 0..MAX_ATTEMPTS {
            match self.store.reserve_serial(Serial::random(), now).await {
                Ok(reserved) => return Ok(reserved),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RaError::Contended)
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

/// The outcome of an issuance to an ID that just gave its password: "locked" means the ID
/// was locked while the password was checked (by concurrent wrong guesses), and the answer
/// must not tell this guess from a wrong one.
fn unauthenticated_if_locked<T>(issued: Result<T, RaError>) -> Result<T, RaError> {
    match issued {
        Err(RaError::Refused(Refusal::Locked)) => Err(RaError::Unauthenticated),
        other => other,
    }
}

#[cfg(test)]
mod tests;
