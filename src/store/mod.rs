//! The storage authority: an interface per consumer, and the backends that implement them.
//!
//! In the spirit of Boulder's storage authority (read-only, read-write and admin services),
//! each consumer holds only what it uses: the front ends and everyone else read through
//! [`StoreReads`]; the registration authority writes through [`RaStore`]; the CA's own services
//! record their certificates through [`ServiceCertificates`]; CRL and OCSP publishing use
//! [`RevocationStore`]; backup and restore use [`BackupStore`]; the start's check of which CA
//! a database belongs to uses [`CaBinding`]. A backend implements them all ([`Store`]);
//! nothing above this module knows which database is underneath.
//!
//! The registration authority reads state, decides, and commits its decision with
//! [`RaStore::update_account`] or [`RaStore::commit_issuance`]. Both are compare-and-swap on
//! the account's `version`, so a decision taken on stale state is refused with
//! [`StoreError::Conflict`] and retried on fresh state: that, not a lock, is what holds the
//! one-active-certificate invariant under any concurrency, on any number of daemons sharing a
//! database. Every write returns only once it is durable.

pub mod backup;
mod budget;
mod ca_binding;
mod copy;
mod durability;
mod fjall;
mod listing;
mod open;
mod postgres;
mod rows;
mod rules;
mod sled;
mod tables;
mod writes;

#[cfg(test)]
mod conformance;

pub use self::ca_binding::CaBinding;
pub use self::copy::{copy, Copied};
pub use self::fjall::FjallStore;
pub use self::open::{located, migrate, open, open_with};
pub use self::postgres::PostgresStore;
pub use self::sled::SledStore;
pub use backup::StoreRecord;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::model::{
    Account, AccountId, App, AppName, CertificateChoice, CertificateRecord, Contract, ContractCode,
    EventKind, HistoryEntry, HistoryEvent, KeyFingerprint, Revocation, Serial,
};

/// When a store's writes reach stable storage, chosen when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Every write returns once durable, concurrent writes sharing syncs: the daemon's mode,
    /// and the only one that keeps the store's promises.
    #[default]
    EveryWrite,
    /// Writes return once applied, and reach stable storage only at
    /// [`BackupStore::sync_all`] (or whenever the engine writes on its own): a crash or power
    /// cut before it loses them. For bulk loading and benchmarks of the in-memory work only,
    /// never for the daemon.
    Deferred,
}

/// Told how long each sync of the store to stable storage took (for metrics), by backends that
/// offer it.
pub type SyncObserver = std::sync::Arc<dyn Fn(std::time::Duration) + Send + Sync>;

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
    /// Something a client sent cannot be used (a cursor that no page of this listing gave).
    #[error("{0}")]
    Invalid(String),
    /// The database failed or holds something unreadable.
    #[error("store: {0}")]
    Backend(String),
    /// The database cannot be reached now (a server backend whose connection is lost):
    /// nothing was committed, or the commit's outcome is unknown; retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// One edit of an account, applied by the store to the account as stored (never a rewrite
/// of the whole record from a copy), so that edits and the failed-login count never undo one
/// another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEdit {
    /// A new display name.
    Rename(String),
    /// A new password hash (PHC string).
    SetPasswordHash(String),
    /// The administrator's choice for the certificate.
    Choose(CertificateChoice),
    /// Locks the ID, provided `failed_attempts` is at least this many when the edit is
    /// applied; otherwise (a right password reset the count meanwhile) the whole change is
    /// refused with [`StoreError::Conflict`] and the registration authority decides again.
    LockAtFailures(u32),
    /// Unlocks the ID and clears its failed-login count (IDロック解除).
    Unlock,
    /// Removes the ID at this instant, for good: the store then refuses every further change
    /// and issuance for it, and counts none of its password attempts; its record, its
    /// certificates and its history stay, and its ID is never free again.
    Remove(OffsetDateTime),
}

/// A change to one account, committed only if the account still has `expected_version`.
#[derive(Debug, Clone)]
pub struct AccountChange {
    /// The account.
    pub id: AccountId,
    /// The version the decision was taken on.
    pub expected_version: u64,
    /// What changes, in order; the store sets the version to `expected_version + 1`.
    pub edits: Vec<AccountEdit>,
    /// A certificate of this account to revoke in the same step; it must be unrevoked.
    pub revoke: Option<(Serial, Revocation)>,
    /// History entries recorded in the same step.
    pub events: Vec<HistoryEvent>,
}

/// A signed certificate to record, as the registration authority decided it: committed only
/// if the account still has `expected_version`, the serial was reserved
/// ([`RaStore::reserve_serial`]) and is unused, the key was never certified,
/// `record.holder`'s `issued_num` is the account's `issued_count` plus one (CERTISSUEDNUM has
/// no gaps), and `supersedes` is the account's current certificate, unrevoked.
///
/// In the same atomic step the store records the certificate (unrevoked), revokes
/// `supersedes` as `superseded` at `record.not_before`, makes the record the account's
/// current certificate, sets `issued_count` and `choice`, indexes the key and appends `event`.
/// It decides nothing: what is superseded and what the choice becomes is the registration
/// authority's decision ([`crate::ra::policy`]).
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// The version the decision was taken on.
    pub expected_version: u64,
    /// The certificate and its metadata; `revocation` must be `None`, the holder an account.
    pub record: CertificateRecord,
    /// The account's current certificate, to revoke as superseded; `None` when it has none
    /// that is active.
    pub supersedes: Option<Serial>,
    /// The administrator's choice once the certificate is issued.
    pub choice: CertificateChoice,
    /// The history entry of the issuance.
    pub event: HistoryEvent,
}

/// A certificate that the store has recorded: the only ways to obtain one are the store's
/// recording operations ([`RaStore::commit_issuance`], [`RaStore::create_app`],
/// [`ServiceCertificates::record_service_certificate`]), so a certificate cannot leave
/// estca without its record.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    record: CertificateRecord,
    superseded: Option<Serial>,
}

impl IssuedCertificate {
    /// What a backend returns once it has recorded `record` (and revoked `superseded`).
    pub(in crate::store) fn recorded(
        record: CertificateRecord,
        superseded: Option<Serial>,
    ) -> Self {
        Self { record, superseded }
    }

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

/// A serial the store has reserved ([`RaStore::reserve_serial`],
/// [`ServiceCertificates::reserve_service_serial`]): the CA signs only with one of these, so
/// no certificate can be signed with a serial the store does not know.
#[derive(Debug, PartialEq, Eq)]
pub struct ReservedSerial(Serial);

impl ReservedSerial {
    /// What a backend returns once it has reserved `serial`.
    pub(in crate::store) fn reserved(serial: Serial) -> Self {
        Self(serial)
    }

    /// The serial.
    pub fn serial(&self) -> Serial {
        self.0
    }

    /// A fresh serial taken as reserved, for unit tests of signing that have no store.
    #[cfg(test)]
    pub(crate) fn unreserved_for_tests() -> Self {
        Self(Serial::random())
    }
}

/// The store's answer to [`RaStore::count_password_attempt`].
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

/// The store's answer to [`RaStore::take_from_budget`].
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
    /// Where to continue and how many to read: entries older than the cursor of the
    /// previous page.
    pub page: PageRequest,
}

/// An opaque position in a listing, handed back by one page to fetch the next: what it holds
/// is the backend's business (clients see it as base64url text, [`Cursor::to_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(Vec<u8>);

impl Cursor {
    /// Longest cursor accepted, in bytes (keys are short).
    pub const MAX_LEN: usize = 256;

    /// A cursor holding `bytes` (for backends).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes the backend put in (for backends).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The cursor as text for clients: base64url without padding.
    pub fn to_text(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// Reads a cursor a client sent back.
    pub fn from_text(text: &str) -> Result<Self, crate::model::InvalidValue> {
        use base64::Engine;
        let bad = || crate::model::InvalidValue("not a cursor from a previous page".into());
        if text.len() > Self::MAX_LEN * 2 {
            return Err(bad());
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map(Self)
            .map_err(|_| bad())
    }
}

/// Which part of a listing to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Continue after this position (the `next` of the previous page); `None`: from the start.
    pub after: Option<Cursor>,
    /// At most this many items (0 reads nothing).
    pub limit: usize,
}

impl PageRequest {
    /// The first `limit` items.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this page ends the listing.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Every item of a listing, reading it page after page of `page_size`.
    pub async fn collect_all<F, Fut>(page_size: usize, mut read: F) -> Result<Vec<T>, StoreError>
    where
        F: FnMut(PageRequest) -> Fut,
        Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
    {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = read(PageRequest {
                after,
                limit: page_size,
            })
            .await?;
            all.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }
}

/// What any part of estca may read. Reads see committed state only.
#[async_trait]
pub trait StoreReads: Send + Sync + 'static {
    /// One contract.
    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError>;

    /// Contracts by code.
    async fn contracts(&self, page: PageRequest) -> Result<Page<Contract>, StoreError>;

    /// One account.
    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;

    /// Accounts by ID, all or those of one contract, removed IDs included (what to show of
    /// them is the registration authority's business).
    async fn accounts(
        &self,
        contract: Option<&ContractCode>,
        page: PageRequest,
    ) -> Result<Page<Account>, StoreError>;

    /// One certificate.
    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError>;

    /// The serial of the certificate that certified this key, if any ever did.
    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError>;

    /// One application credential.
    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError>;

    /// Application credentials by name.
    async fn apps(&self, page: PageRequest) -> Result<Page<App>, StoreError>;

    /// History, newest first, in commit order: a page never skips nor repeats an entry,
    /// whatever is appended meanwhile.
    async fn history(&self, query: &HistoryQuery) -> Result<Page<HistoryEntry>, StoreError>;

    /// Whether the database answers now ([`StoreError::Unavailable`] if not), for `/readyz`:
    /// an embedded database always does.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The registration authority's writes: atomic domain operations that check their
/// preconditions (the account's version, unique serial and key) and decide nothing. Each
/// returns only once what it wrote is durable (synced to stable storage); concurrent writes
/// share syncs.
#[async_trait]
pub trait RaStore: StoreReads {
    /// Creates a contract; [`StoreError::AlreadyExists`] if the code is taken.
    async fn create_contract(
        &self,
        contract: Contract,
        event: HistoryEvent,
    ) -> Result<(), StoreError>;

    /// Sets whether the contract's IDs may use server-side key generation
    /// ([`Contract::server_keygen`]) and records `event`, atomically; returns the contract
    /// as it is now. [`StoreError::NotFound`] if there is no such contract.
    async fn set_contract_server_keygen(
        &self,
        code: &ContractCode,
        server_keygen: bool,
        event: HistoryEvent,
    ) -> Result<Contract, StoreError>;

    /// Creates an account (version 0); its contract must exist ([`StoreError::NotFound`]) and
    /// its ID be free ([`StoreError::AlreadyExists`]), also of any ID that differs from it
    /// only by letter case ([`AccountId::case_folded`]); a removed ID is never free again.
    async fn create_account(&self, account: Account, event: HistoryEvent)
        -> Result<(), StoreError>;

    /// Counts a password attempt against `id` before the password is checked, atomically:
    /// `failed_attempts` goes up by one only if the ID is unlocked and fewer than `limit`
    /// attempts are counted. An attempt counts as failed until the registration authority,
    /// having checked the password, clears the count ([`RaStore::clear_password_attempts`])
    /// or locks the ID ([`AccountEdit::LockAtFailures`]). This is what bounds the guesses
    /// checked for one ID under any concurrency, whichever daemon checks them. The count is
    /// not the account's version: counting does not conflict with decisions.
    async fn count_password_attempt(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<PasswordAttempt, StoreError>;

    /// A right password: clears the failed-login count unless the ID is locked; returns the
    /// account as stored (locked or not).
    async fn clear_password_attempts(&self, id: &AccountId) -> Result<Account, StoreError>;

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

    /// Forgets the budgets whose name starts with `prefix` that are full again at `now` (a
    /// full bucket is the same as none), so that budgets kept per source address do not grow
    /// without bound; returns how many were forgotten. Not synced: a forgotten full bucket
    /// that comes back after a crash changes nothing.
    async fn forget_refilled_budgets(
        &self,
        prefix: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Applies an [`AccountChange`] atomically; returns the account as stored.
    async fn update_account(&self, change: AccountChange) -> Result<Account, StoreError>;

    /// Reserves a serial before the CA signs a certificate with it (Boulder's order: the
    /// store knows every serial before the signature exists). [`StoreError::Conflict`] if it
    /// was reserved or used before. A reservation that is never committed stays, marking a
    /// serial that was drawn but never issued.
    async fn reserve_serial(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<ReservedSerial, StoreError>;

    /// Records a [`NewCertificate`] atomically; the only constructor of
    /// [`IssuedCertificate`] for an ID's certificate.
    async fn commit_issuance(
        &self,
        issuance: NewCertificate,
    ) -> Result<IssuedCertificate, StoreError>;

    /// Records a new application credential and its certificate in one step: the name must
    /// be free ([`StoreError::AlreadyExists`]), the serial reserved and unused
    /// ([`StoreError::Conflict`]) and the key never certified ([`StoreError::KeyReused`]);
    /// `record.holder` must name the app and `app.certificate` the record's serial.
    async fn create_app(
        &self,
        app: App,
        record: CertificateRecord,
        event: HistoryEvent,
    ) -> Result<IssuedCertificate, StoreError>;

    /// Revokes an application credential for good, and its certificate (if unrevoked), in
    /// one step; [`StoreError::Conflict`] if it was revoked already.
    async fn revoke_app(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: HistoryEvent,
    ) -> Result<App, StoreError>;

    /// Appends one history entry on its own (for events that change nothing else).
    async fn append_history(&self, event: HistoryEvent) -> Result<(), StoreError>;
}

/// Recording the certificates the CA signs for estca's own services (its TLS server
/// certificate, the OCSP signing certificates).
#[async_trait]
pub trait ServiceCertificates: Send + Sync + 'static {
    /// As [`RaStore::reserve_serial`].
    async fn reserve_service_serial(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<ReservedSerial, StoreError>;

    /// Records a certificate the CA signed for one of estca's services, which the service
    /// must not use before this returns (durably): `record.holder` must be a service
    /// ([`Holder::is_service`](crate::model::Holder::is_service)) and `record` unrevoked,
    /// the serial reserved and unused ([`StoreError::Conflict`]) and the key never certified
    /// ([`StoreError::KeyReused`]). No history entry: no ID or person is concerned.
    async fn record_service_certificate(
        &self,
        record: CertificateRecord,
    ) -> Result<IssuedCertificate, StoreError>;
}

/// Revoked certificates read per page for a CRL ([`RevocationStore::revoked_for_crl`]).
const REVOKED_PAGE: usize = 10_000;

/// What publishing revocation status (CRL, OCSP) needs: certificate lookups, the revocation
/// index, CRL numbers and the change feed.
#[async_trait]
pub trait RevocationStore: StoreReads {
    /// Revoked certificates by serial, from an index that every revoking operation maintains
    /// in the same atomic step: what a CRL lists, without scanning all certificates.
    async fn revoked_certificates(
        &self,
        page: PageRequest,
    ) -> Result<Page<RevokedCertificate>, StoreError>;

    /// Draws the next CRL number: one more than the last number drawn, or `floor` if that is
    /// higher (the store's rule `crl_number_after`). So it is strictly greater than every number
    /// drawn before, across restarts (durable before it is returned), and never handed out
    /// twice even to concurrent callers; and a floor that grows with time (the CRL
    /// publisher's is the CRL's thisUpdate in milliseconds) keeps numbers above those drawn
    /// after a backup once that backup is restored, which puts the counter back.
    async fn next_crl_number(&self, floor: u64) -> Result<u64, StoreError>;

    /// Every revoked certificate, and a CRL number drawn after reading them (as
    /// [`RevocationStore::next_crl_number`] draws it): what a CRL lists, and its number. The
    /// draw follows the read, so that a CRL with a higher number lists every revocation one
    /// with a lower number lists (the higher number supersedes, RFC 5280 5.2.3) as long as
    /// the callers take turns: one process opens an embedded store, and its CRL publishers do
    /// (the revocation module's `CrlNumbering`); PostgreSQL, which several daemons share,
    /// overrides this to hold the counter's row lock from before the read to the draw.
    async fn revoked_for_crl(
        &self,
        floor: u64,
    ) -> Result<(Vec<RevokedCertificate>, u64), StoreError> {
        let revoked =
            Page::collect_all(REVOKED_PAGE, |page| self.revoked_certificates(page)).await?;
        Ok((revoked, self.next_crl_number(floor).await?))
    }

    /// A change feed of revocations: the value is bumped after each committed revocation
    /// (an explicit revoke or a superseding issuance), so a publisher of revocation status
    /// can wait with `changed()` or compare the value it last saw, without the registration
    /// authority knowing about it. The value starts at 0 when the store is opened.
    fn revocations(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// Backup and restore.
#[async_trait]
pub trait BackupStore: Send + Sync + 'static {
    /// Hands every domain record to `sink`: contracts, accounts, certificates, application
    /// credentials, history (oldest first), then the last CRL number, as one consistent
    /// snapshot (no commit lands halfway through). Derived data (indexes) is not exported.
    /// `sink` must not block for long: a backend may hold writers back while it runs.
    async fn export(
        &self,
        sink: &mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError>;

    /// Whether the store holds no record at all (restores go into empty stores only). The
    /// certificates of estca's own services, which every start records, do not count: a
    /// daemon started once on a new machine must still accept the backup it is to restore.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Writes records of an [`export`](BackupStore::export) into an empty store as they were
    /// (versions, history order, revocations), rebuilding derived data; may be called several
    /// times with consecutive batches, each durable when it returns. History appended
    /// afterwards comes after every imported entry.
    async fn import(&self, records: Vec<StoreRecord>) -> Result<(), StoreError>;

    /// Makes every write so far durable: what a store opened in [`SyncMode::Deferred`] needs
    /// at the end of a bulk load (in [`SyncMode::EveryWrite`] everything already is).
    async fn sync_all(&self) -> Result<(), StoreError>;
}

/// A storage backend: every consumer's interface. Consumers hold only the part they use
/// (`Arc<dyn RaStore>`, `Arc<dyn RevocationStore>`, ...), taken from one `Arc<dyn Store>`.
pub trait Store: RaStore + ServiceCertificates + RevocationStore + BackupStore + CaBinding {}

impl<T: RaStore + ServiceCertificates + RevocationStore + BackupStore + CaBinding> Store for T {}

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

impl RevokedCertificate {
    /// The index entry of `record` revoked with `revocation`.
    pub fn of(record: &CertificateRecord, revocation: Revocation) -> Self {
        Self {
            serial: record.serial,
            revocation,
            not_after: record.not_after,
        }
    }
}
