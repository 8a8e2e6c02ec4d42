//! The storage authority: a trait of atomic domain operations, and its sled implementation.
//!
//! Nothing above this module knows which database is underneath: the registration authority
//! reads state, decides, and commits its decision with [`Store::update_account`] or
//! [`Store::commit_issuance`]. Both are compare-and-swap on the account's `version`, so a
//! decision taken on stale state is refused with [`StoreError::Conflict`] and retried on fresh
//! state: that, not a lock, is what holds the one-active-certificate invariant under any
//! concurrency. A commit is durable only after [`Store::flush`].

pub mod backup;
mod sled_store;

pub use backup::StoreRecord;
pub use sled_store::SledStore;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, ContractCode, EventKind,
    HistoryEntry, HistoryEvent, KeyFingerprint, Revocation, Serial,
};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The thing named exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The account changed since it was read (or the serial was taken): read again and retry.
    #[error("the account changed concurrently; retry")]
    Conflict,
    /// The public key was certified before, in the certificate with this serial.
    #[error("this public key was already certified (serial {0}); generate a new key")]
    KeyReused(Serial),
    /// The database failed or holds something unreadable.
    #[error("store: {0}")]
    Backend(String),
}

/// A change to one account, committed only if the account still has `expected_version`.
#[derive(Debug, Clone)]
pub struct AccountChange {
    /// The version the decision was taken on.
    pub expected_version: u64,
    /// The account's new state (its `version` is set by the store to `expected_version + 1`).
    pub account: Account,
    /// A certificate of this account to revoke in the same step; it must be unrevoked.
    pub revoke: Option<(Serial, Revocation)>,
    /// History entries recorded in the same step.
    pub events: Vec<HistoryEvent>,
}

/// A signed certificate to record, committed only if the account still has
/// `expected_version`, the serial is unused and the key was never certified.
///
/// In the same atomic step the store: records the certificate (unrevoked); revokes the
/// account's previous current certificate as `superseded` at `record.not_before` if it is
/// unrevoked and unexpired at that instant; sets the account's current certificate,
/// `issued_count = record.issued_num` (which must be the old count plus one), choice back to
/// `Continue`; indexes the key; appends `event`.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// The version the decision was taken on.
    pub expected_version: u64,
    /// The certificate and its metadata; `revocation` must be `None`.
    pub record: CertificateRecord,
    /// The history entry of the issuance.
    pub event: HistoryEvent,
}

/// A certificate that the store has recorded: the only ways to obtain one are the store's
/// recording operations ([`Store::commit_issuance`], [`Store::create_app`],
/// [`Store::record_service_certificate`]), so a certificate cannot leave estca without its
/// record.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    record: CertificateRecord,
    superseded: Option<Serial>,
}

impl IssuedCertificate {
    /// The record as committed.
    pub fn record(&self) -> &CertificateRecord {
        &self.record
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.record.der
    }

    /// The previous certificate this issuance revoked as superseded, if any.
    pub fn superseded(&self) -> Option<Serial> {
        self.superseded
    }
}

/// The store's answer to [`Store::count_password_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordAttempt {
    /// The attempt is counted (`failed_attempts` was below the limit and the ID unlocked):
    /// the account as stored now, its `failed_attempts` including this attempt. Check the
    /// password.
    Counted(Account),
    /// Nothing was written: the ID is locked, or `limit` attempts are counted already
    /// (failed, or still being checked). Do not check the password.
    OverLimit(Account),
    /// No account has this ID.
    UnknownId,
}

/// A limit kept in the store as a token bucket, so that it holds across daemons sharing the
/// store: `capacity` tokens, refilled at `capacity` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Tokens when full.
    pub capacity: u32,
    /// Time to refill from empty.
    pub window: std::time::Duration,
}

/// The store's answer to [`Store::take_from_budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSpend {
    /// A token was taken.
    Taken,
    /// No token left; the next one comes in this many seconds.
    Exhausted {
        /// Seconds until a token is available.
        retry_after_secs: u64,
    },
}

/// A history query; all filters combine with AND, results are newest first.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only this account's events.
    pub account: Option<AccountId>,
    /// Only this contract's events.
    pub contract: Option<ContractCode>,
    /// Only this kind of event.
    pub kind: Option<EventKind>,
    /// Only events at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Only events before this instant.
    pub until: Option<OffsetDateTime>,
    /// Only events older than this sequence number (the pagination cursor).
    pub before_seq: Option<u64>,
    /// At most this many entries.
    pub limit: usize,
}

/// The storage authority's interface.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a contract; [`StoreError::AlreadyExists`] if the code is taken.
    async fn create_contract(
        &self,
        contract: Contract,
        event: HistoryEvent,
    ) -> Result<(), StoreError>;

    /// One contract.
    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError>;

    /// Every contract, by code.
    async fn contracts(&self) -> Result<Vec<Contract>, StoreError>;

    /// Creates an account (version 0); its contract must exist ([`StoreError::NotFound`]) and
    /// its ID be free ([`StoreError::AlreadyExists`]), also of any ID that differs from it
    /// only by letter case ([`AccountId::case_folded`]).
    async fn create_account(&self, account: Account, event: HistoryEvent)
        -> Result<(), StoreError>;

    /// One account.
    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;

    /// Every account, or those of one contract, by ID.
    async fn accounts(&self, contract: Option<&ContractCode>) -> Result<Vec<Account>, StoreError>;

    /// One certificate.
    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError>;

    /// The serial of the certificate that certified this key, if any ever did.
    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError>;

    /// Counts a password attempt against `id` before the password is checked, atomically:
    /// `failed_attempts` goes up by one (and the version with it) only if the ID is unlocked
    /// and fewer than `limit` attempts are counted. An attempt is counted as failed until the
    /// registration authority, having checked the password, resets the count (right password)
    /// or locks the ID (wrong password at the limit) with [`Store::update_account`]. This is
    /// what bounds the guesses checked for one ID under any concurrency, whichever daemon
    /// checks them.
    async fn count_password_attempt(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<PasswordAttempt, StoreError>;

    /// Takes one token from the budget named `key` (created full on first use), atomically:
    /// under any concurrency, on any number of daemons, no more than `budget.capacity` tokens
    /// are taken per `budget.window`.
    async fn take_from_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<BudgetSpend, StoreError>;

    /// Gives back a token taken from the budget named `key` (never beyond its capacity).
    async fn refund_to_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Applies an [`AccountChange`] atomically; returns the account as stored.
    async fn update_account(&self, change: AccountChange) -> Result<Account, StoreError>;

    /// Records a [`NewCertificate`] atomically; the only constructor of [`IssuedCertificate`].
    async fn commit_issuance(
        &self,
        issuance: NewCertificate,
    ) -> Result<IssuedCertificate, StoreError>;

    /// Records a new application credential and its certificate in one step: the name must
    /// be free ([`StoreError::AlreadyExists`]), the serial unused ([`StoreError::Conflict`])
    /// and the key never certified ([`StoreError::KeyReused`]); `record.holder` must name
    /// the app and `app.certificate` the record's serial.
    async fn create_app(
        &self,
        app: App,
        record: CertificateRecord,
        event: HistoryEvent,
    ) -> Result<IssuedCertificate, StoreError>;

    /// Records a certificate the CA signed for one of estca's own services (its TLS server
    /// certificate, an OCSP signing certificate), which the service must not use before this
    /// returns and [`Store::flush`] has made it durable: `record.holder` must be a service
    /// ([`Holder::is_service`](crate::model::Holder::is_service)) and `record` unrevoked, the
    /// serial unused ([`StoreError::Conflict`]) and the key never certified
    /// ([`StoreError::KeyReused`]). No history entry: no ID or person is concerned.
    async fn record_service_certificate(
        &self,
        record: CertificateRecord,
    ) -> Result<IssuedCertificate, StoreError>;

    /// One application credential.
    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError>;

    /// Every application credential, by name.
    async fn apps(&self) -> Result<Vec<App>, StoreError>;

    /// Revokes an application credential for good, and its certificate (if unrevoked), in
    /// one step; [`StoreError::Conflict`] if it was revoked already.
    async fn revoke_app(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: HistoryEvent,
    ) -> Result<App, StoreError>;

    /// Appends one history entry on its own (for events that change nothing else).
    async fn append_history(&self, event: HistoryEvent) -> Result<u64, StoreError>;

    /// Reads history, newest first.
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Makes every commit so far durable on disk. Concurrent callers may share one flush.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Hands every domain record to `sink`: contracts, accounts, certificates, application
    /// credentials, then history
    /// (oldest first), as one consistent snapshot (no commit lands halfway through). Derived
    /// data (indexes) is not exported. `sink` must not block for long: a backend may hold
    /// writers back while it runs (a database with snapshot reads need not).
    async fn export(
        &self,
        sink: &mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError>;

    /// Whether the store holds no record at all (restores go into empty stores only). The
    /// certificates of estca's own services, which every start records, do not count: a
    /// daemon started once on a new machine must still accept the backup it is to restore.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Writes records of an [`export`](Store::export) into an empty store as they were
    /// (versions, sequence numbers, revocations), rebuilding derived data; may be called
    /// several times with consecutive batches. New history entries appended afterwards get
    /// larger sequence numbers than any imported one. Durable after [`Store::flush`].
    async fn import(&self, records: Vec<StoreRecord>) -> Result<(), StoreError>;
    /// Every revoked certificate, by serial, from an index that the revoking operations
    /// ([`Store::update_account`] with `revoke`, [`Store::commit_issuance`] superseding)
    /// maintain in the same atomic step: what a CRL lists, without scanning all certificates.
    async fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError>;

    /// Draws the next CRL number: strictly greater than every number drawn before, across
    /// restarts (it is durable on disk before it is returned), and never handed out twice
    /// even to concurrent callers.
    async fn next_crl_number(&self) -> Result<u64, StoreError>;

    /// A change feed of revocations: the value is bumped after each committed revocation
    /// (an explicit revoke or a superseding issuance), so a publisher of revocation status
    /// can wait with `changed()` or compare the value it last saw, without the registration
    /// authority knowing about it. The value starts at 0 when the store is opened.
    fn revocations(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// A revoked certificate as the revocation index holds it: what a CRL entry needs, and the
/// end of validity so that expired certificates can be left out of the CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevokedCertificate {
    /// The serial number.
    pub serial: Serial,
    /// When and why it was revoked.
    pub revocation: Revocation,
    /// The certificate's notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}
