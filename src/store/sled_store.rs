//! The [`Store`] on sled: one tree per kind of record, JSON values, and sled transactions for
//! every operation that touches more than one record.
//!
//! Trees and their keys:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `contracts` | contract code | JSON [`Contract`] |
//! | `accounts` | account ID | JSON [`Account`] |
//! | `certificates` | 16 serial bytes | JSON [`CertificateRecord`] |
//! | `keys` | 32-byte [`KeyFingerprint`] | 16 serial bytes |
//! | `apps` | application name | JSON [`App`] |
//! | `history` | sequence number, u64 big-endian | JSON [`HistoryEntry`] |
//! | `history_by_account` | account ID, `0x00`, sequence big-endian | empty |
//! | `history_by_contract` | contract code, `0x00`, sequence big-endian | empty |
//! | `revoked` | 16 serial bytes | JSON [`RevokedCertificate`] (the revocation index) |
//! | `account_ids_folded` | account ID in lower case | the account ID (no two IDs differ by case only) |
//! | `budgets` | budget name | JSON token bucket of a [`Budget`] |
//! | `meta` | `crl_number` | the last CRL number drawn, u64 big-endian |
//! | `meta` | `revoked_index` | present once the revocation index covers every certificate |
//! | `meta` | `folded_ids_index` | present once `account_ids_folded` covers every account |
//!
//! The `revoked` tree is written in the same transaction that revokes a certificate, and
//! `account_ids_folded` in the one that creates an account, so each always agrees with its
//! source. A database written before an index existed gets it built once, at open.
//!
//! Sequence numbers come from sled's monotonic ID generator, drawn inside the transaction that
//! appends the entry; sled transactions run under a global write lock, so a larger sequence
//! number is always a later commit. IDs and codes never contain `0x00` (they are validated
//! on construction), so the separator makes each index prefix unambiguous.
//!
//! Durability: a transaction is applied in memory and reaches disk on sled's background flush
//! or on [`Store::flush`], which groups concurrent callers into as few `fsync`s as possible.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};
use time::OffsetDateTime;

use super::{
    AccountChange, Budget, BudgetSpend, HistoryQuery, IssuedCertificate, NewCertificate,
    PasswordAttempt, RevokedCertificate, Store, StoreError, StoreRecord,
};
use crate::model::{
    Account, AccountId, App, AppName, CertificateChoice, CertificateRecord, Contract, ContractCode,
    HistoryEntry, HistoryEvent, Holder, KeyFingerprint, Revocation, RevocationReason, Serial,
};

const CONTRACTS: &str = "contracts";
const ACCOUNTS: &str = "accounts";
const CERTIFICATES: &str = "certificates";
const KEYS: &str = "keys";
const APPS: &str = "apps";
const HISTORY: &str = "history";
const HISTORY_BY_ACCOUNT: &str = "history_by_account";
const HISTORY_BY_CONTRACT: &str = "history_by_contract";
const REVOKED: &str = "revoked";
const META: &str = "meta";
const ACCOUNT_IDS_FOLDED: &str = "account_ids_folded";
const BUDGETS: &str = "budgets";
/// `meta` key of the last CRL number drawn.
const META_CRL_NUMBER: &[u8] = b"crl_number";
/// `meta` key present once the `revoked` index covers every certificate.
const META_REVOKED_INDEX: &[u8] = b"revoked_index";
/// Marks a database whose `account_ids_folded` index is complete.
const META_FOLDED_IDS_INDEX: &[u8] = b"folded_ids_index";

/// sled's page cache (its default is 1 GiB): bounds the daemon's memory with millions of IDs;
/// what does not fit is read back from the operating system's file cache.
const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// The result of a step inside a sled transaction closure.
type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// A [`Store`] kept in a sled database directory.
///
/// Only one process can hold the directory open at a time (sled locks it).
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    contracts: Tree,
    accounts: Tree,
    certificates: Tree,
    keys: Tree,
    apps: Tree,
    history: Tree,
    history_by_account: Tree,
    history_by_contract: Tree,
    revoked: Tree,
    meta: Tree,
    account_ids_folded: Tree,
    budgets: Tree,
    /// Bumped after each committed revocation (see [`Store::revocations`]).
    revocations: tokio::sync::watch::Sender<u64>,
    /// Number of write operations applied so far (the commit generation).
    commits: AtomicU64,
    /// The commit generation the last completed flush covered; held while flushing, so that
    /// callers arriving meanwhile queue up and share the next flush.
    flushed: tokio::sync::Mutex<u64>,
    /// How many times `flush_async` was actually called (for tests and diagnostics).
    flushes: AtomicU64,
    /// Writes hold it shared, [`Store::export`] exclusively: sled has no multi-tree snapshot
    /// reads, so this is what makes a backup consistent.
    snapshot: std::sync::RwLock<()>,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (creating if needed) the database in the directory `path`.
    ///
    /// Fails with a [`StoreError::Backend`] saying so if another process (for instance the
    /// running daemon) has the database open.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| {
            let in_use = matches!(&e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"));
            if in_use {
                StoreError::Backend(format!(
                    "the database at {} is in use by another process (is the daemon running?)",
                    path.display()
                ))
            } else {
                StoreError::Backend(format!(
                    "cannot open the database at {}: {e}",
                    path.display()
                ))
            }
        })?;
        let tree = |name: &str| {
            db.open_tree(name).map_err(|e| {
                StoreError::Backend(format!(
                    "cannot open tree `{name}` of the database at {}: {e}",
                    path.display()
                ))
            })
        };
        SledStore {
            path: path.to_owned(),
            contracts: tree(CONTRACTS)?,
            accounts: tree(ACCOUNTS)?,
            certificates: tree(CERTIFICATES)?,
            keys: tree(KEYS)?,
            apps: tree(APPS)?,
            history: tree(HISTORY)?,
            history_by_account: tree(HISTORY_BY_ACCOUNT)?,
            history_by_contract: tree(HISTORY_BY_CONTRACT)?,
            revoked: tree(REVOKED)?,
            meta: tree(META)?,
            account_ids_folded: tree(ACCOUNT_IDS_FOLDED)?,
            budgets: tree(BUDGETS)?,
            revocations: tokio::sync::watch::channel(0).0,
            db,
            commits: AtomicU64::new(0),
            flushed: tokio::sync::Mutex::new(0),
            flushes: AtomicU64::new(0),
            snapshot: std::sync::RwLock::new(()),
        }
        .with_revoked_index()?
        .with_folded_id_index()
    }

    /// Builds the `account_ids_folded` index when the database predates it (once). Two IDs
    /// that already differ by case only both stay (the index keeps the first); new ones are
    /// refused from now on.
    fn with_folded_id_index(self) -> Result<Self, StoreError> {
        if self
            .meta
            .contains_key(META_FOLDED_IDS_INDEX)
            .map_err(|e| storage(META, e))?
        {
            return Ok(self);
        }
        for item in self.accounts.iter() {
            let (key, value) = item.map_err(|e| storage(ACCOUNTS, e))?;
            let account: Account = decode(ACCOUNTS, &key, &value)?;
            let folded = account.id.case_folded();
            let previous = self
                .account_ids_folded
                .compare_and_swap(folded.as_bytes(), None as Option<&[u8]>, Some(&key[..]))
                .map_err(|e| storage(ACCOUNT_IDS_FOLDED, e))?;
            if let Err(existing) = previous {
                tracing::warn!(
                    id = %account.id,
                    other = %String::from_utf8_lossy(existing.current.as_deref().unwrap_or_default()),
                    "two IDs differ only by letter case; both stay, no new one like them can be created"
                );
            }
        }
        self.meta
            .insert(META_FOLDED_IDS_INDEX, &[])
            .map_err(|e| storage(META, e))?;
        self.db.flush().map_err(|e| {
            StoreError::Backend(format!(
                "cannot flush the database at {} to disk: {e}",
                self.path.display()
            ))
        })?;
        Ok(self)
    }

    /// Builds the `revoked` index from `certificates` when the database predates it (once:
    /// a `meta` marker records that the index is complete).
    fn with_revoked_index(self) -> Result<Self, StoreError> {
        if self
            .meta
            .contains_key(META_REVOKED_INDEX)
            .map_err(|e| storage(META, e))?
        {
            return Ok(self);
        }
        for item in self.certificates.iter() {
            let (key, value) = item.map_err(|e| storage(CERTIFICATES, e))?;
            let record: CertificateRecord = decode(CERTIFICATES, &key, &value)?;
            if let Some(revocation) = record.revocation {
                let entry = encode(REVOKED, &revoked_entry(&record, revocation))?;
                self.revoked
                    .insert(&key, entry)
                    .map_err(|e| storage(REVOKED, e))?;
            }
        }
        self.meta
            .insert(META_REVOKED_INDEX, &[])
            .map_err(|e| storage(META, e))?;
        self.db.flush().map_err(|e| {
            StoreError::Backend(format!(
                "cannot flush the database at {} to disk: {e}",
                self.path.display()
            ))
        })?;
        Ok(self)
    }

    /// Tells the revocation feed's subscribers that a revocation was committed.
    fn revoked_one(&self) {
        self.revocations.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Held by every write for its duration, so that an export sees all of it or none.
    fn writing(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts one applied write, so that the next [`Store::flush`] knows it has work to do.
    fn committed(&self) {
        self.commits.fetch_add(1, Ordering::SeqCst);
    }

    /// Reads and decodes one value outside a transaction.
    fn get<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        name: &str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(|e| storage(name, e))? {
            Some(bytes) => decode(name, key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes every value of a tree, in key order, keeping those `keep` accepts.
    fn all<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        name: &str,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in tree.iter() {
            let (key, value) = item.map_err(|e| storage(name, e))?;
            let value: T = decode(name, &key, &value)?;
            if keep(&value) {
                out.push(value);
            }
        }
        Ok(out)
    }

    /// Reads history entries by iterating an index (keys end in a big-endian sequence number)
    /// newest first, within `[lower, upper)`.
    fn history_via_index(
        &self,
        index: &Tree,
        index_name: &str,
        lower: Vec<u8>,
        upper: Vec<u8>,
        query: &HistoryQuery,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut out = Vec::new();
        for item in index.range(lower..upper).rev() {
            let (key, _) = item.map_err(|e| storage(index_name, e))?;
            let seq_bytes = key
                .len()
                .checked_sub(8)
                .and_then(|start| key.get(start..))
                .ok_or_else(|| corrupt(index_name, &key, "key too short"))?;
            let entry: HistoryEntry = self
                .get(&self.history, HISTORY, seq_bytes)?
                .ok_or_else(|| corrupt(index_name, &key, "no such history entry"))?;
            if matches(query, &entry) {
                out.push(entry);
                if out.len() >= query.limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for SledStore {
    async fn create_contract(
        &self,
        contract: Contract,
        event: HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = contract.code.as_str().as_bytes();
        let value = encode(CONTRACTS, &contract)?;
        let _writing = self.writing();
        (
            &self.contracts,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(|(contracts, history, by_account, by_contract)| {
                if contracts.get(key)?.is_some() {
                    return abort(StoreError::AlreadyExists(format!(
                        "contract {}",
                        contract.code
                    )));
                }
                contracts.insert(key, value.as_slice())?;
                append(history, by_account, by_contract, &event)?;
                Ok(())
            })
            .map_err(from_tx)?;
        self.committed();
        Ok(())
    }

    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError> {
        self.get(&self.contracts, CONTRACTS, code.as_str().as_bytes())
    }

    async fn contracts(&self) -> Result<Vec<Contract>, StoreError> {
        self.all(&self.contracts, CONTRACTS, |_: &Contract| true)
    }

    async fn create_account(
        &self,
        account: Account,
        event: HistoryEvent,
    ) -> Result<(), StoreError> {
        let account = Account {
            version: 0,
            ..account
        };
        let _writing = self.writing();
        let key = account.id.as_str().as_bytes();
        let folded = account.id.case_folded();
        let contract_key = account.contract.as_str().as_bytes();
        let value = encode(ACCOUNTS, &account)?;
        (
            &self.contracts,
            &self.accounts,
            &self.account_ids_folded,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(
                |(contracts, accounts, folded_ids, history, by_account, by_contract)| {
                    if contracts.get(contract_key)?.is_none() {
                        return abort(StoreError::NotFound(format!(
                            "contract {}",
                            account.contract
                        )));
                    }
                    if accounts.get(key)?.is_some() || folded_ids.get(folded.as_bytes())?.is_some()
                    {
                        return abort(StoreError::AlreadyExists(format!("account {}", account.id)));
                    }
                    accounts.insert(key, value.as_slice())?;
                    folded_ids.insert(folded.as_bytes(), key)?;
                    append(history, by_account, by_contract, &event)?;
                    Ok(())
                },
            )
            .map_err(from_tx)?;
        self.committed();
        Ok(())
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.get(&self.accounts, ACCOUNTS, id.as_str().as_bytes())
    }

    async fn accounts(&self, contract: Option<&ContractCode>) -> Result<Vec<Account>, StoreError> {
        self.all(&self.accounts, ACCOUNTS, |account: &Account| {
            contract.is_none_or(|code| &account.contract == code)
        })
    }

    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        self.get(&self.certificates, CERTIFICATES, serial.as_bytes())
    }

    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError> {
        match self.keys.get(key.0).map_err(|e| storage(KEYS, e))? {
            Some(bytes) => decode_serial(KEYS, &key.0, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn count_password_attempt(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<PasswordAttempt, StoreError> {
        let _writing = self.writing();
        let key = id.as_str().as_bytes();
        let attempt = self
            .accounts
            .transaction(|accounts| {
                let Some(stored): Option<Account> = tx_get(accounts, ACCOUNTS, key)? else {
                    return Ok(PasswordAttempt::UnknownId);
                };
                if stored.locked || stored.failed_attempts >= limit {
                    return Ok(PasswordAttempt::OverLimit(stored));
                }
                let counted = Account {
                    failed_attempts: stored.failed_attempts + 1,
                    version: stored.version.checked_add(1).ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::Backend(
                            "account version overflow".into(),
                        ))
                    })?,
                    ..stored
                };
                let value =
                    encode(ACCOUNTS, &counted).map_err(ConflictableTransactionError::Abort)?;
                accounts.insert(key, value)?;
                Ok(PasswordAttempt::Counted(counted))
            })
            .map_err(from_tx)?;
        if matches!(attempt, PasswordAttempt::Counted(_)) {
            self.committed();
        }
        Ok(attempt)
    }

    async fn take_from_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<BudgetSpend, StoreError> {
        let _writing = self.writing();
        let spend = self
            .budgets
            .transaction(|budgets| {
                let mut bucket = tx_get::<TokenBucket>(budgets, BUDGETS, key.as_bytes())?
                    .unwrap_or_else(|| TokenBucket::full(budget, now));
                let spend = bucket.take(budget, now);
                let value =
                    encode(BUDGETS, &bucket).map_err(ConflictableTransactionError::Abort)?;
                budgets.insert(key.as_bytes(), value)?;
                Ok(spend)
            })
            .map_err(from_tx)?;
        self.committed();
        Ok(spend)
    }

    async fn refund_to_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let _writing = self.writing();
        self.budgets
            .transaction(|budgets| {
                if let Some(mut bucket) = tx_get::<TokenBucket>(budgets, BUDGETS, key.as_bytes())? {
                    bucket.refund(budget, now);
                    let value =
                        encode(BUDGETS, &bucket).map_err(ConflictableTransactionError::Abort)?;
                    budgets.insert(key.as_bytes(), value)?;
                }
                Ok(())
            })
            .map_err(from_tx)?;
        self.committed();
        Ok(())
    }

    async fn update_account(&self, change: AccountChange) -> Result<Account, StoreError> {
        let AccountChange {
            expected_version,
            account,
            revoke,
            events,
        } = change;
        let _writing = self.writing();
        let new_version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("account version overflow".into()))?;
        let account = Account {
            version: new_version,
            ..account
        };
        let key = account.id.as_str().as_bytes();
        let value = encode(ACCOUNTS, &account)?;
        (
            &self.accounts,
            &self.certificates,
            &self.revoked,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(
                |(accounts, certificates, revoked, history, by_account, by_contract)| {
                    let stored: Account = tx_get(accounts, ACCOUNTS, key)?.ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                            "account {}",
                            account.id
                        )))
                    })?;
                    if stored.id != account.id {
                        return abort(corrupt(ACCOUNTS, key, "stored under another ID"));
                    }
                    if stored.version != expected_version {
                        return abort(StoreError::Conflict);
                    }
                    if let Some((serial, revocation)) = &revoke {
                        revoke_certificate(
                            certificates,
                            revoked,
                            &account.id,
                            serial,
                            *revocation,
                        )?;
                    }
                    accounts.insert(key, value.as_slice())?;
                    for event in &events {
                        append(history, by_account, by_contract, event)?;
                    }
                    Ok(())
                },
            )
            .map_err(from_tx)?;
        self.committed();
        if revoke.is_some() {
            self.revoked_one();
        }
        Ok(account)
    }

    async fn commit_issuance(
        &self,
        issuance: NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        let NewCertificate {
            expected_version,
            record,
            event,
        } = issuance;
        let _writing = self.writing();
        if record.revocation.is_some() {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} as issued: it is marked revoked",
                record.serial
            )));
        }
        let Holder::Account {
            id: holder_id,
            issued_num,
            ..
        } = &record.holder
        else {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} as an ID's: it belongs to an application",
                record.serial
            )));
        };
        let issued_num = *issued_num;
        let account_key = holder_id.as_str().as_bytes();
        let serial_key = record.serial.as_bytes();
        let record_value = encode(CERTIFICATES, &record)?;
        let superseded = (
            &self.accounts,
            &self.certificates,
            &self.keys,
            &self.revoked,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(
                |(accounts, certificates, keys, revoked, history, by_account, by_contract)| {
                    let mut account: Account = tx_get(accounts, ACCOUNTS, account_key)?
                        .ok_or_else(|| {
                            ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                                "account {holder_id}"
                            )))
                        })?;
                    if &account.id != holder_id {
                        return abort(corrupt(ACCOUNTS, account_key, "stored under another ID"));
                    }
                    if account.version != expected_version {
                        return abort(StoreError::Conflict);
                    }
                    if certificates.get(serial_key)?.is_some() {
                        return abort(StoreError::Conflict);
                    }
                    if let Some(bytes) = keys.get(record.key.0)? {
                        let first = decode_serial(KEYS, &record.key.0, &bytes)
                            .map_err(ConflictableTransactionError::Abort)?;
                        return abort(StoreError::KeyReused(first));
                    }
                    if account.issued_count.checked_add(1) != Some(issued_num) {
                        return abort(StoreError::Conflict);
                    }

                    let mut superseded = None;
                    if let Some(previous) = account.current_certificate {
                        let mut old: CertificateRecord =
                            tx_get(certificates, CERTIFICATES, previous.as_bytes())?.ok_or_else(
                                || {
                                    ConflictableTransactionError::Abort(corrupt(
                                        CERTIFICATES,
                                        previous.as_bytes(),
                                        &format!(
                                            "the current certificate of account {} is missing",
                                            account.id
                                        ),
                                    ))
                                },
                            )?;
                        if old.revocation.is_none() && old.not_after > record.not_before {
                            let revocation = Revocation {
                                at: record.not_before,
                                reason: RevocationReason::Superseded,
                            };
                            old.revocation = Some(revocation);
                            let old_value = encode(CERTIFICATES, &old)
                                .map_err(ConflictableTransactionError::Abort)?;
                            certificates.insert(previous.as_bytes(), old_value)?;
                            let entry = encode(REVOKED, &revoked_entry(&old, revocation))
                                .map_err(ConflictableTransactionError::Abort)?;
                            revoked.insert(previous.as_bytes(), entry)?;
                            superseded = Some(previous);
                        }
                    }

                    certificates.insert(serial_key, record_value.as_slice())?;
                    keys.insert(&record.key.0, serial_key)?;

                    account.current_certificate = Some(record.serial);
                    account.issued_count = issued_num;
                    account.choice = CertificateChoice::Continue;
                    account.version = expected_version.checked_add(1).ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::Backend(
                            "account version overflow".into(),
                        ))
                    })?;
                    let account_value =
                        encode(ACCOUNTS, &account).map_err(ConflictableTransactionError::Abort)?;
                    accounts.insert(account_key, account_value)?;

                    append(history, by_account, by_contract, &event)?;
                    Ok(superseded)
                },
            )
            .map_err(from_tx)?;
        self.committed();
        if superseded.is_some() {
            self.revoked_one();
        }
        Ok(IssuedCertificate { record, superseded })
    }

    async fn create_app(
        &self,
        app: App,
        record: CertificateRecord,
        event: HistoryEvent,
    ) -> Result<IssuedCertificate, StoreError> {
        if record.holder
            != (Holder::App {
                name: app.name.clone(),
            })
            || app.certificate != record.serial
            || record.revocation.is_some()
        {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} for application {}: the record does not match",
                record.serial, app.name
            )));
        }
        let _writing = self.writing();
        let name_key = app.name.as_str().as_bytes();
        let serial_key = record.serial.as_bytes();
        let app_value = encode(APPS, &app)?;
        let record_value = encode(CERTIFICATES, &record)?;
        (
            &self.apps,
            &self.certificates,
            &self.keys,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(
                |(apps, certificates, keys, history, by_account, by_contract)| {
                    if apps.get(name_key)?.is_some() {
                        return abort(StoreError::AlreadyExists(format!(
                            "application {}",
                            app.name
                        )));
                    }
                    if certificates.get(serial_key)?.is_some() {
                        return abort(StoreError::Conflict);
                    }
                    if let Some(bytes) = keys.get(record.key.0)? {
                        let first = decode_serial(KEYS, &record.key.0, &bytes)
                            .map_err(ConflictableTransactionError::Abort)?;
                        return abort(StoreError::KeyReused(first));
                    }
                    apps.insert(name_key, app_value.as_slice())?;
                    certificates.insert(serial_key, record_value.as_slice())?;
                    keys.insert(&record.key.0, serial_key)?;
                    append(history, by_account, by_contract, &event)?;
                    Ok(())
                },
            )
            .map_err(from_tx)?;
        self.committed();
        Ok(IssuedCertificate {
            record,
            superseded: None,
        })
    }

    async fn record_service_certificate(
        &self,
        record: CertificateRecord,
    ) -> Result<IssuedCertificate, StoreError> {
        if !record.holder.is_service() || record.revocation.is_some() {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} as a service's: the record does not match",
                record.serial
            )));
        }
        let _writing = self.writing();
        let serial_key = record.serial.as_bytes();
        let record_value = encode(CERTIFICATES, &record)?;
        (&self.certificates, &self.keys)
            .transaction(|(certificates, keys)| {
                if certificates.get(serial_key)?.is_some() {
                    return abort(StoreError::Conflict);
                }
                if let Some(bytes) = keys.get(record.key.0)? {
                    let first = decode_serial(KEYS, &record.key.0, &bytes)
                        .map_err(ConflictableTransactionError::Abort)?;
                    return abort(StoreError::KeyReused(first));
                }
                certificates.insert(serial_key, record_value.as_slice())?;
                keys.insert(&record.key.0, serial_key)?;
                Ok(())
            })
            .map_err(from_tx)?;
        self.committed();
        Ok(IssuedCertificate {
            record,
            superseded: None,
        })
    }

    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        self.get(&self.apps, APPS, name.as_str().as_bytes())
    }

    async fn apps(&self) -> Result<Vec<App>, StoreError> {
        self.all(&self.apps, APPS, |_: &App| true)
    }

    async fn revoke_app(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: HistoryEvent,
    ) -> Result<App, StoreError> {
        let _writing = self.writing();
        let name_key = name.as_str().as_bytes();
        let (app, revoked_now) = (
            &self.apps,
            &self.certificates,
            &self.revoked,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(
                |(apps, certificates, revoked, history, by_account, by_contract)| {
                    let mut app: App = tx_get(apps, APPS, name_key)?.ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                            "application {name}"
                        )))
                    })?;
                    if app.revoked {
                        return abort(StoreError::Conflict);
                    }
                    app.revoked = true;
                    let serial_key = app.certificate.as_bytes();
                    let mut revoked_now = false;
                    if let Some(mut record) =
                        tx_get::<CertificateRecord>(certificates, CERTIFICATES, serial_key)?
                    {
                        if record.revocation.is_none() {
                            record.revocation = Some(revocation);
                            let value = encode(CERTIFICATES, &record)
                                .map_err(ConflictableTransactionError::Abort)?;
                            certificates.insert(serial_key, value)?;
                            let entry = encode(REVOKED, &revoked_entry(&record, revocation))
                                .map_err(ConflictableTransactionError::Abort)?;
                            revoked.insert(serial_key, entry)?;
                            revoked_now = true;
                        }
                    }
                    let value = encode(APPS, &app).map_err(ConflictableTransactionError::Abort)?;
                    apps.insert(name_key, value)?;
                    append(history, by_account, by_contract, &event)?;
                    Ok((app, revoked_now))
                },
            )
            .map_err(from_tx)?;
        self.committed();
        if revoked_now {
            self.revoked_one();
        }
        Ok(app)
    }

    async fn append_history(&self, event: HistoryEvent) -> Result<u64, StoreError> {
        let _writing = self.writing();
        let seq = (
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(|(history, by_account, by_contract)| {
                append(history, by_account, by_contract, &event)
            })
            .map_err(from_tx)?;
        self.committed();
        Ok(seq)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let index = match (&query.account, &query.contract) {
            (Some(id), _) => Some((
                &self.history_by_account,
                HISTORY_BY_ACCOUNT,
                id.as_str().as_bytes(),
            )),
            (None, Some(code)) => Some((
                &self.history_by_contract,
                HISTORY_BY_CONTRACT,
                code.as_str().as_bytes(),
            )),
            (None, None) => None,
        };
        if let Some((tree, name, prefix)) = index {
            let mut lower = prefix.to_vec();
            lower.push(0x00);
            let upper = match query.before_seq {
                Some(before) => index_key(prefix, before),
                // Just past every key of this prefix: the separator 0x00 becomes 0x01.
                None => {
                    let mut upper = prefix.to_vec();
                    upper.push(0x01);
                    upper
                }
            };
            return self.history_via_index(tree, name, lower, upper, query);
        }

        let iter = match query.before_seq {
            Some(before) => self.history.range(..before.to_be_bytes()),
            None => self.history.iter(),
        };
        let mut out = Vec::new();
        for item in iter.rev() {
            let (key, value) = item.map_err(|e| storage(HISTORY, e))?;
            let entry: HistoryEntry = decode(HISTORY, &key, &value)?;
            if matches(query, &entry) {
                out.push(entry);
                if out.len() >= query.limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Group commit: `needed` is every commit this caller has seen. Whoever holds the lock
        // flushes once, covering every commit counted before it started; callers queued behind
        // it find their generation covered and return without flushing again.
        let needed = self.commits.load(Ordering::SeqCst);
        let mut flushed = self.flushed.lock().await;
        if *flushed >= needed {
            return Ok(());
        }
        let covering = self.commits.load(Ordering::SeqCst);
        self.flushes.fetch_add(1, Ordering::SeqCst);
        self.db.flush_async().await.map_err(|e| {
            StoreError::Backend(format!(
                "cannot flush the database at {} to disk: {e}",
                self.path.display()
            ))
        })?;
        *flushed = covering;
        Ok(())
    }

    async fn export(
        &self,
        sink: &mut (dyn FnMut(StoreRecord) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        let _exclusive = self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (tree, name) in [
            (&self.contracts, CONTRACTS),
            (&self.accounts, ACCOUNTS),
            (&self.certificates, CERTIFICATES),
            (&self.apps, APPS),
            (&self.history, HISTORY),
        ] {
            for item in tree.iter() {
                let (key, value) = item.map_err(|e| storage(name, e))?;
                let record = match name {
                    CONTRACTS => StoreRecord::Contract(decode(name, &key, &value)?),
                    ACCOUNTS => StoreRecord::Account(decode(name, &key, &value)?),
                    CERTIFICATES => StoreRecord::Certificate(decode(name, &key, &value)?),
                    APPS => StoreRecord::App(decode(name, &key, &value)?),
                    _ => StoreRecord::History(decode(name, &key, &value)?),
                };
                sink(record)?;
            }
        }
        let crl_number = self
            .meta
            .get(META_CRL_NUMBER)
            .map_err(|e| storage(META, e))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes);
        if let Some(number) = crl_number {
            sink(StoreRecord::CrlNumber(number))?;
        }
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let no_records = [
            &self.contracts,
            &self.accounts,
            &self.apps,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        ]
        .iter()
        .all(|tree| tree.is_empty());
        if !no_records {
            return Ok(false);
        }
        // Service certificates (recorded at every start) do not count; anything else does.
        for item in self.certificates.iter() {
            let (key, value) = item.map_err(|e| storage(CERTIFICATES, e))?;
            let record: CertificateRecord = decode(CERTIFICATES, &key, &value)?;
            if !record.holder.is_service() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn import(&self, records: Vec<StoreRecord>) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut max_seq = None;
        for record in records {
            match record {
                StoreRecord::Contract(contract) => {
                    let value = encode(CONTRACTS, &contract)?;
                    self.contracts
                        .insert(contract.code.as_str().as_bytes(), value)
                        .map_err(|e| storage(CONTRACTS, e))?;
                }
                StoreRecord::Account(account) => {
                    let value = encode(ACCOUNTS, &account)?;
                    self.accounts
                        .insert(account.id.as_str().as_bytes(), value)
                        .map_err(|e| storage(ACCOUNTS, e))?;
                    self.account_ids_folded
                        .compare_and_swap(
                            account.id.case_folded().as_bytes(),
                            None as Option<&[u8]>,
                            Some(account.id.as_str().as_bytes()),
                        )
                        .map_err(|e| storage(ACCOUNT_IDS_FOLDED, e))?
                        .ok(); // an older pair differing by case keeps its first entry
                }
                StoreRecord::Certificate(record) => {
                    let value = encode(CERTIFICATES, &record)?;
                    self.certificates
                        .insert(record.serial.as_bytes(), value)
                        .map_err(|e| storage(CERTIFICATES, e))?;
                    if let Some(revocation) = record.revocation {
                        let entry = encode(REVOKED, &revoked_entry(&record, revocation))?;
                        self.revoked
                            .insert(record.serial.as_bytes(), entry)
                            .map_err(|e| storage(REVOKED, e))?;
                    }
                    self.keys
                        .insert(record.key.0, record.serial.as_bytes().as_slice())
                        .map_err(|e| storage(KEYS, e))?;
                }
                StoreRecord::CrlNumber(number) => {
                    self.meta
                        .insert(META_CRL_NUMBER, &number.to_be_bytes())
                        .map_err(|e| storage(META, e))?;
                }
                StoreRecord::App(app) => {
                    let value = encode(APPS, &app)?;
                    self.apps
                        .insert(app.name.as_str().as_bytes(), value)
                        .map_err(|e| storage(APPS, e))?;
                }
                StoreRecord::History(entry) => {
                    let value = encode(HISTORY, &entry)?;
                    let seq = entry.seq;
                    self.history
                        .insert(seq.to_be_bytes(), value)
                        .map_err(|e| storage(HISTORY, e))?;
                    if let Some(id) = &entry.event.account {
                        self.history_by_account
                            .insert(index_key(id.as_str().as_bytes(), seq), &[])
                            .map_err(|e| storage(HISTORY_BY_ACCOUNT, e))?;
                    }
                    if let Some(code) = &entry.event.contract {
                        self.history_by_contract
                            .insert(index_key(code.as_str().as_bytes(), seq), &[])
                            .map_err(|e| storage(HISTORY_BY_CONTRACT, e))?;
                    }
                    max_seq = max_seq.max(Some(seq));
                }
            }
            self.committed();
        }
        // sled numbers history from its ID generator, which cannot be set: draw IDs until it
        // is past every imported sequence number, so that new entries sort after them.
        if let Some(max_seq) = max_seq {
            if max_seq > MAX_IMPORTED_SEQ {
                return Err(StoreError::Backend(format!(
                    "history sequence number {max_seq} is beyond what a restore supports ({MAX_IMPORTED_SEQ})"
                )));
            }
            loop {
                let id = self
                    .db
                    .generate_id()
                    .map_err(|e| StoreError::Backend(format!("cannot draw an ID: {e}")))?;
                if id > max_seq {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError> {
        self.all(&self.revoked, REVOKED, |_: &RevokedCertificate| true)
    }

    async fn next_crl_number(&self) -> Result<u64, StoreError> {
        let mut overflow = false;
        // update_and_fetch is an atomic compare-and-swap loop: concurrent callers each get
        // their own number.
        let stored = self
            .meta
            .update_and_fetch(META_CRL_NUMBER, |old| {
                let last = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                match last.checked_add(1) {
                    Some(next) => Some(next.to_be_bytes().to_vec()),
                    None => {
                        overflow = true;
                        old.map(<[u8]>::to_vec)
                    }
                }
            })
            .map_err(|e| storage(META, e))?;
        if overflow {
            return Err(StoreError::Backend("the CRL number is exhausted".into()));
        }
        let number = stored
            .as_deref()
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt(META, META_CRL_NUMBER, "a CRL number is 8 bytes"))?;
        self.committed();
        self.flush().await?;
        Ok(number)
    }

    fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }
}

/// The revocation index entry of a certificate revoked with `revocation`.
/// A [`Budget`]'s state as the `budgets` tree keeps it.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct TokenBucket {
    tokens: f64,
    /// When `tokens` was last brought up to date, Unix time in milliseconds.
    updated_ms: i64,
}

impl TokenBucket {
    fn full(budget: Budget, now: OffsetDateTime) -> Self {
        Self {
            tokens: f64::from(budget.capacity),
            updated_ms: unix_ms(now),
        }
    }

    fn refill(&mut self, budget: Budget, now: OffsetDateTime) {
        let capacity = f64::from(budget.capacity);
        let per_ms = capacity / (budget.window.as_millis().max(1) as f64);
        let now_ms = unix_ms(now);
        let elapsed = now_ms.saturating_sub(self.updated_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * per_ms).min(capacity);
        self.updated_ms = self.updated_ms.max(now_ms);
    }

    fn take(&mut self, budget: Budget, now: OffsetDateTime) -> BudgetSpend {
        self.refill(budget, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return BudgetSpend::Taken;
        }
        let per_sec = f64::from(budget.capacity) / budget.window.as_secs_f64().max(0.001);
        let wait = if per_sec > 0.0 {
            (1.0 - self.tokens) / per_sec
        } else {
            budget.window.as_secs_f64()
        };
        BudgetSpend::Exhausted {
            retry_after_secs: (wait.ceil() as u64).max(1),
        }
    }

    fn refund(&mut self, budget: Budget, now: OffsetDateTime) {
        self.refill(budget, now);
        self.tokens = (self.tokens + 1.0).min(f64::from(budget.capacity));
    }
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000).clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

fn revoked_entry(record: &CertificateRecord, revocation: Revocation) -> RevokedCertificate {
    RevokedCertificate {
        serial: record.serial,
        revocation,
        not_after: record.not_after,
    }
}

/// The largest history sequence number [`Store::import`] accepts: drawing that many IDs from
/// sled's generator takes seconds; real stores stay far below it.
const MAX_IMPORTED_SEQ: u64 = 1 << 32;

/// Whether a history entry passes every filter of the query.
fn matches(query: &HistoryQuery, entry: &HistoryEntry) -> bool {
    let event = &entry.event;
    query
        .account
        .as_ref()
        .is_none_or(|id| event.account.as_ref() == Some(id))
        && query
            .contract
            .as_ref()
            .is_none_or(|code| event.contract.as_ref() == Some(code))
        && query.kind.is_none_or(|kind| event.kind == kind)
        && query.since.is_none_or(|since| event.at >= since)
        && query.until.is_none_or(|until| event.at < until)
        && query.before_seq.is_none_or(|before| entry.seq < before)
}

/// The key of an index entry: the account ID or contract code, `0x00`, the sequence number.
fn index_key(prefix: &[u8], seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 9);
    key.extend_from_slice(prefix);
    key.push(0x00);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Appends one history entry and its index entries inside a transaction; returns its number.
fn append(
    history: &TransactionalTree,
    by_account: &TransactionalTree,
    by_contract: &TransactionalTree,
    event: &HistoryEvent,
) -> TxResult<u64> {
    let seq = history.generate_id()?;
    let entry = HistoryEntry {
        seq,
        event: event.clone(),
    };
    let value = encode(HISTORY, &entry).map_err(ConflictableTransactionError::Abort)?;
    history.insert(&seq.to_be_bytes(), value)?;
    if let Some(id) = &event.account {
        by_account.insert(index_key(id.as_str().as_bytes(), seq), &[])?;
    }
    if let Some(code) = &event.contract {
        by_contract.insert(index_key(code.as_str().as_bytes(), seq), &[])?;
    }
    Ok(seq)
}

/// Revokes a certificate of `account` inside a transaction: it must exist, belong to the
/// account ([`StoreError::NotFound`] otherwise) and be unrevoked ([`StoreError::Conflict`]).
fn revoke_certificate(
    certificates: &TransactionalTree,
    revoked: &TransactionalTree,
    account: &AccountId,
    serial: &Serial,
    revocation: Revocation,
) -> TxResult<()> {
    let not_found = || {
        ConflictableTransactionError::Abort(StoreError::NotFound(format!(
            "certificate {serial} of account {account}"
        )))
    };
    let mut record: CertificateRecord =
        tx_get(certificates, CERTIFICATES, serial.as_bytes())?.ok_or_else(not_found)?;
    if record.account() != Some(account) {
        return Err(not_found());
    }
    if record.revocation.is_some() {
        return abort(StoreError::Conflict);
    }
    record.revocation = Some(revocation);
    let value = encode(CERTIFICATES, &record).map_err(ConflictableTransactionError::Abort)?;
    certificates.insert(serial.as_bytes(), value)?;
    let entry = encode(REVOKED, &revoked_entry(&record, revocation))
        .map_err(ConflictableTransactionError::Abort)?;
    revoked.insert(serial.as_bytes(), entry)?;
    Ok(())
}

/// Reads and decodes one value inside a transaction.
fn tx_get<T: DeserializeOwned>(
    tree: &TransactionalTree,
    name: &str,
    key: &[u8],
) -> TxResult<Option<T>> {
    match tree.get(key)? {
        Some(bytes) => decode(name, key, &bytes)
            .map(Some)
            .map_err(ConflictableTransactionError::Abort),
        None => Ok(None),
    }
}

/// Ends a transaction with a domain refusal.
fn abort<T>(error: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(error))
}

/// Turns the outcome of a failed transaction into a [`StoreError`].
fn from_tx(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => {
            StoreError::Backend(format!("database transaction failed: {error}"))
        }
    }
}

/// A database failure while reading a tree.
fn storage(tree: &str, error: sled::Error) -> StoreError {
    StoreError::Backend(format!("cannot read tree `{tree}`: {error}"))
}

/// A value or key that cannot be what it should: names the tree and the key.
fn corrupt(tree: &str, key: &[u8], why: &str) -> StoreError {
    StoreError::Backend(format!(
        "corrupt record in tree `{tree}` at key {}: {why}",
        show_key(tree, key)
    ))
}

/// A key as people can read it: text for IDs and codes, a number for sequence numbers, hex
/// otherwise.
fn show_key(tree: &str, key: &[u8]) -> String {
    match tree {
        CONTRACTS | ACCOUNTS => format!("'{}'", String::from_utf8_lossy(key)),
        HISTORY => match <[u8; 8]>::try_from(key) {
            Ok(seq) => u64::from_be_bytes(seq).to_string(),
            Err(_) => hex::encode(key),
        },
        HISTORY_BY_ACCOUNT | HISTORY_BY_CONTRACT if key.len() > 9 => {
            let (prefix, seq) = key.split_at(key.len() - 9);
            format!(
                "'{}' 0x{}",
                String::from_utf8_lossy(prefix),
                hex::encode(seq)
            )
        }
        _ => hex::encode(key),
    }
}

/// Decodes a JSON value read from `tree` at `key`.
fn decode<T: DeserializeOwned>(tree: &str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(tree, key, &e.to_string()))
}

/// Decodes a serial stored as 16 raw bytes.
fn decode_serial(tree: &str, key: &[u8], bytes: &[u8]) -> Result<Serial, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map_err(|_| corrupt(tree, key, "a serial is 16 bytes"))
        .and_then(|b| Serial::from_bytes(b).map_err(|e| corrupt(tree, key, &e.0)))
}

/// Encodes a value as JSON for `tree`.
fn encode<T: Serialize>(tree: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode a value for tree `{tree}`: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::OffsetDateTime;

    use super::*;
    use crate::model::{Actor, EventKind, Outcome, Role};

    const DAY: i64 = 86_400;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
    }

    fn id(s: &str) -> AccountId {
        s.parse().unwrap()
    }

    fn code(s: &str) -> ContractCode {
        s.parse().unwrap()
    }

    fn serial(b: u8) -> Serial {
        Serial::from_bytes([b; 16]).unwrap()
    }

    fn event(
        kind: EventKind,
        account: Option<&str>,
        contract: Option<&str>,
        t: i64,
    ) -> HistoryEvent {
        HistoryEvent {
            at: at(t),
            account: account.map(id),
            contract: contract.map(code),
            kind,
            actor: Actor::System,
            source: "test".into(),
            outcome: Outcome::Ok {
                detail: String::new(),
            },
        }
    }

    fn contract(c: &str) -> Contract {
        Contract {
            code: code(c),
            name: format!("Contract {c}"),
            created_at: at(0),
        }
    }

    fn account(i: &str, c: &str) -> Account {
        Account {
            version: 7,
            ..Account::new(
                id(i),
                code(c),
                Role::User,
                format!("User {i}"),
                "$argon2id$fake".into(),
                at(0),
            )
        }
    }

    /// A record with fake DER: the store never parses it.
    fn record(
        s: u8,
        account: &str,
        issued_num: u32,
        key: u8,
        not_before: i64,
    ) -> CertificateRecord {
        CertificateRecord {
            serial: serial(s),
            holder: Holder::Account {
                id: id(account),
                contract: code("5110"),
                role: Role::User,
                issued_num,
            },
            subject: format!("CN={account}"),
            not_before: at(not_before),
            not_after: at(not_before + 365 * DAY),
            key: KeyFingerprint([key; 32]),
            revocation: None,
            der: vec![0x30, 0x03, 0x02, 0x01, s],
        }
    }

    fn issuance(expected_version: u64, record: CertificateRecord) -> NewCertificate {
        let account = record.account().map(|a| a.to_string()).unwrap_or_default();
        NewCertificate {
            expected_version,
            record,
            event: event(EventKind::Enroll, Some(&account), Some("5110"), 100),
        }
    }

    /// A store with contract 5110 and its account `nozawa1`.
    async fn setup() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        store
            .create_contract(
                contract("5110"),
                event(EventKind::ContractCreate, None, Some("5110"), 0),
            )
            .await
            .unwrap();
        store
            .create_account(
                account("nozawa1", "5110"),
                event(EventKind::AccountCreate, Some("nozawa1"), Some("5110"), 1),
            )
            .await
            .unwrap();
        (dir, store)
    }

    fn all_history() -> HistoryQuery {
        HistoryQuery {
            limit: 1000,
            ..HistoryQuery::default()
        }
    }

    #[tokio::test]
    async fn contracts_and_accounts_are_created_once() {
        let (_dir, store) = setup().await;

        let dup = store
            .create_contract(
                contract("5110"),
                event(EventKind::ContractCreate, None, None, 2),
            )
            .await;
        assert!(matches!(dup, Err(StoreError::AlreadyExists(ref w)) if w == "contract 5110"));
        store
            .create_contract(
                contract("4000"),
                event(EventKind::ContractCreate, None, None, 2),
            )
            .await
            .unwrap();
        assert_eq!(
            store.contract(&code("5110")).await.unwrap(),
            Some(contract("5110"))
        );
        assert_eq!(store.contract(&code("9999")).await.unwrap(), None);
        let codes: Vec<String> = store
            .contracts()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.code.to_string())
            .collect();
        assert_eq!(codes, ["4000", "5110"]);

        let missing = store
            .create_account(
                account("x", "9999"),
                event(EventKind::AccountCreate, None, None, 3),
            )
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound(ref w)) if w == "contract 9999"));
        let dup = store
            .create_account(
                account("nozawa1", "5110"),
                event(EventKind::AccountCreate, None, None, 3),
            )
            .await;
        assert!(matches!(dup, Err(StoreError::AlreadyExists(ref w)) if w == "account nozawa1"));

        store
            .create_account(
                account("b-user", "4000"),
                event(EventKind::AccountCreate, None, None, 4),
            )
            .await
            .unwrap();
        store
            .create_account(
                account("a-user", "5110"),
                event(EventKind::AccountCreate, None, None, 4),
            )
            .await
            .unwrap();

        let stored = store.account(&id("nozawa1")).await.unwrap().unwrap();
        assert_eq!(stored.version, 0, "created accounts start at version 0");
        assert_eq!(
            stored,
            Account {
                version: 0,
                ..account("nozawa1", "5110")
            }
        );
        assert_eq!(store.account(&id("nobody")).await.unwrap(), None);

        let ids = |accounts: Vec<Account>| -> Vec<String> {
            accounts.into_iter().map(|a| a.id.to_string()).collect()
        };
        assert_eq!(
            ids(store.accounts(None).await.unwrap()),
            ["a-user", "b-user", "nozawa1"]
        );
        assert_eq!(
            ids(store.accounts(Some(&code("5110"))).await.unwrap()),
            ["a-user", "nozawa1"]
        );
        assert!(store
            .accounts(Some(&code("9999")))
            .await
            .unwrap()
            .is_empty());

        // Refused operations leave no history behind: 2 contracts + 3 accounts.
        assert_eq!(store.history(&all_history()).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn update_account_is_compare_and_swap() {
        let (_dir, store) = setup().await;
        let mut acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
        acc.name = "Renamed".into();
        let updated = store
            .update_account(AccountChange {
                expected_version: 0,
                account: acc.clone(),
                revoke: None,
                events: vec![event(
                    EventKind::AccountUpdate,
                    Some("nozawa1"),
                    Some("5110"),
                    10,
                )],
            })
            .await
            .unwrap();
        assert_eq!(updated.version, 1);
        assert_eq!(updated.name, "Renamed");
        assert_eq!(
            store.account(&id("nozawa1")).await.unwrap(),
            Some(updated.clone())
        );

        // A decision taken on version 0 is stale now.
        acc.name = "Stale".into();
        let stale = store
            .update_account(AccountChange {
                expected_version: 0,
                account: acc.clone(),
                revoke: None,
                events: vec![event(
                    EventKind::AccountUpdate,
                    Some("nozawa1"),
                    Some("5110"),
                    11,
                )],
            })
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict)));
        assert_eq!(store.account(&id("nozawa1")).await.unwrap(), Some(updated));

        let unknown = store
            .update_account(AccountChange {
                expected_version: 0,
                account: account("ghost", "5110"),
                revoke: None,
                events: vec![],
            })
            .await;
        assert!(matches!(unknown, Err(StoreError::NotFound(ref w)) if w == "account ghost"));

        let q = HistoryQuery {
            kind: Some(EventKind::AccountUpdate),
            ..all_history()
        };
        assert_eq!(
            store.history(&q).await.unwrap().len(),
            1,
            "refusals append nothing"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn password_attempts_are_counted_up_to_the_limit_under_concurrency() {
        let (_dir, store) = setup().await;
        let store = std::sync::Arc::new(store);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .count_password_attempt(&id("nozawa1"), 5)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut counted = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                PasswordAttempt::Counted(a) => counted.push(a.failed_attempts),
                PasswordAttempt::OverLimit(a) => assert_eq!(a.failed_attempts, 5),
                PasswordAttempt::UnknownId => panic!("the account exists"),
            }
        }
        counted.sort_unstable();
        assert_eq!(counted, vec![1, 2, 3, 4, 5], "each count drawn once");
        let stored = store.account(&id("nozawa1")).await.unwrap().unwrap();
        assert_eq!((stored.failed_attempts, stored.version), (5, 5));

        // A locked ID counts nothing; an unknown one is said so.
        let mut locked = stored.clone();
        locked.locked = true;
        locked.failed_attempts = 0;
        store
            .update_account(AccountChange {
                expected_version: 5,
                account: locked,
                revoke: None,
                events: vec![],
            })
            .await
            .unwrap();
        assert!(matches!(
            store.count_password_attempt(&id("nozawa1"), 5).await.unwrap(),
            PasswordAttempt::OverLimit(a) if a.locked && a.failed_attempts == 0
        ));
        assert_eq!(
            store.count_password_attempt(&id("ghost"), 5).await.unwrap(),
            PasswordAttempt::UnknownId
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn budgets_hold_under_concurrency_refill_and_take_refunds() {
        let (_dir, store) = setup().await;
        let store = std::sync::Arc::new(store);
        let budget = Budget {
            capacity: 3,
            window: std::time::Duration::from_secs(30),
        };
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.take_from_budget("b", budget, at(0)).await.unwrap() },
                )
            })
            .collect();
        let mut taken = 0;
        for t in tasks {
            match t.await.unwrap() {
                BudgetSpend::Taken => taken += 1,
                BudgetSpend::Exhausted { retry_after_secs } => assert_eq!(retry_after_secs, 10),
            }
        }
        assert_eq!(taken, 3);
        store.refund_to_budget("b", budget, at(0)).await.unwrap();
        assert_eq!(
            store.take_from_budget("b", budget, at(0)).await.unwrap(),
            BudgetSpend::Taken
        );
        // One token per 10 s comes back; other budgets are separate.
        assert!(matches!(
            store.take_from_budget("b", budget, at(9)).await.unwrap(),
            BudgetSpend::Exhausted { .. }
        ));
        assert_eq!(
            store.take_from_budget("b", budget, at(10)).await.unwrap(),
            BudgetSpend::Taken
        );
        assert_eq!(
            store.take_from_budget("c", budget, at(10)).await.unwrap(),
            BudgetSpend::Taken
        );
    }

    #[tokio::test]
    async fn ids_differing_by_case_only_are_refused() {
        let (_dir, store) = setup().await;
        for variant in ["NOZAWA1", "Nozawa1", "nozawA1"] {
            let refused = store
                .create_account(
                    account(variant, "5110"),
                    event(EventKind::AccountCreate, None, None, 2),
                )
                .await;
            assert!(
                matches!(refused, Err(StoreError::AlreadyExists(_))),
                "{variant}: {refused:?}"
            );
        }
        assert!(store.account(&id("NOZAWA1")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn update_account_revokes_in_the_same_step() {
        let (_dir, store) = setup().await;
        store
            .create_account(
                account("other", "5110"),
                event(EventKind::AccountCreate, None, None, 2),
            )
            .await
            .unwrap();
        store
            .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100)))
            .await
            .unwrap();
        store
            .commit_issuance(issuance(0, record(2, "other", 1, 2, 100)))
            .await
            .unwrap();

        let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
        let revocation = Revocation {
            at: at(200),
            reason: RevocationReason::KeyCompromise,
        };
        let change = |serial: Serial| AccountChange {
            expected_version: acc.version,
            account: Account {
                choice: CertificateChoice::Revoked,
                ..acc.clone()
            },
            revoke: Some((serial, revocation)),
            events: vec![event(EventKind::Revoke, Some("nozawa1"), Some("5110"), 200)],
        };

        // Not this account's certificate, or no such certificate: nothing changes.
        let foreign = store.update_account(change(serial(2))).await;
        assert!(
            matches!(foreign, Err(StoreError::NotFound(_))),
            "{foreign:?}"
        );
        let missing = store.update_account(change(serial(9))).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{missing:?}"
        );
        assert_eq!(
            store.account(&id("nozawa1")).await.unwrap(),
            Some(acc.clone())
        );
        assert_eq!(
            store
                .certificate(&serial(2))
                .await
                .unwrap()
                .unwrap()
                .revocation,
            None
        );

        let updated = store.update_account(change(serial(1))).await.unwrap();
        assert_eq!(updated.version, acc.version + 1);
        assert_eq!(updated.choice, CertificateChoice::Revoked);
        let cert = store.certificate(&serial(1)).await.unwrap().unwrap();
        assert_eq!(cert.revocation, Some(revocation));

        // Revoking again is refused, even on a fresh version.
        let again = store
            .update_account(AccountChange {
                expected_version: updated.version,
                ..change(serial(1))
            })
            .await;
        assert!(matches!(again, Err(StoreError::Conflict)));
        let revokes = HistoryQuery {
            kind: Some(EventKind::Revoke),
            ..all_history()
        };
        assert_eq!(store.history(&revokes).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn issuance_supersedes_the_previous_certificate() {
        let (_dir, store) = setup().await;

        let first = store
            .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100)))
            .await
            .unwrap();
        assert_eq!(first.superseded(), None);
        assert_eq!(first.record(), &record(1, "nozawa1", 1, 1, 100));
        assert_eq!(first.der(), record(1, "nozawa1", 1, 1, 100).der.as_slice());
        let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
        assert_eq!(acc.version, 1);
        assert_eq!(acc.issued_count, 1);
        assert_eq!(acc.current_certificate, Some(serial(1)));
        assert_eq!(
            store
                .key_certified_by(&KeyFingerprint([1; 32]))
                .await
                .unwrap(),
            Some(serial(1))
        );
        assert_eq!(
            store
                .key_certified_by(&KeyFingerprint([2; 32]))
                .await
                .unwrap(),
            None
        );

        // The administrator chose reissue; the next issuance resets the choice.
        let acc = store
            .update_account(AccountChange {
                expected_version: 1,
                account: Account {
                    choice: CertificateChoice::Reissue,
                    ..acc
                },
                revoke: None,
                events: vec![],
            })
            .await
            .unwrap();
        let second = store
            .commit_issuance(issuance(acc.version, record(2, "nozawa1", 2, 2, 5000)))
            .await
            .unwrap();
        assert_eq!(second.superseded(), Some(serial(1)));
        let old = store.certificate(&serial(1)).await.unwrap().unwrap();
        assert_eq!(
            old.revocation,
            Some(Revocation {
                at: at(5000),
                reason: RevocationReason::Superseded
            })
        );
        assert_eq!(
            store
                .certificate(&serial(2))
                .await
                .unwrap()
                .unwrap()
                .revocation,
            None
        );
        let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
        assert_eq!(acc.version, 3);
        assert_eq!(acc.issued_count, 2);
        assert_eq!(acc.current_certificate, Some(serial(2)));
        assert_eq!(acc.choice, CertificateChoice::Continue);

        // Exactly one unrevoked, unexpired certificate at the new notBefore.
        let mut active = 0;
        for s in [serial(1), serial(2)] {
            let r = store.certificate(&s).await.unwrap().unwrap();
            active += usize::from(r.is_active(at(5000)));
        }
        assert_eq!(active, 1);
    }

    /// Polls a future that completes without waiting (sled reads are synchronous).
    fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("store read did not complete at once"),
        }
    }

    #[tokio::test]
    async fn an_expired_certificate_is_not_superseded() {
        let (_dir, store) = setup().await;
        store
            .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 0)))
            .await
            .unwrap();
        // The new certificate starts exactly when the old one expires.
        let second = store
            .commit_issuance(issuance(1, record(2, "nozawa1", 2, 2, 365 * DAY)))
            .await
            .unwrap();
        assert_eq!(second.superseded(), None);
        assert_eq!(
            store
                .certificate(&serial(1))
                .await
                .unwrap()
                .unwrap()
                .revocation,
            None
        );
    }

    #[tokio::test]
    async fn issuance_refusals_change_nothing() {
        let (_dir, store) = setup().await;
        store
            .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100)))
            .await
            .unwrap();
        let before = store.account(&id("nozawa1")).await.unwrap().unwrap();
        let history_before = store.history(&all_history()).await.unwrap();

        let stale = store
            .commit_issuance(issuance(0, record(2, "nozawa1", 2, 2, 200)))
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");

        let dup_serial = store
            .commit_issuance(issuance(1, record(1, "nozawa1", 2, 2, 200)))
            .await;
        assert!(
            matches!(dup_serial, Err(StoreError::Conflict)),
            "{dup_serial:?}"
        );

        let reused = store
            .commit_issuance(issuance(1, record(2, "nozawa1", 2, 1, 200)))
            .await;
        assert!(
            matches!(reused, Err(StoreError::KeyReused(s)) if s == serial(1)),
            "{reused:?}"
        );

        for wrong in [1, 3, 0] {
            let r = store
                .commit_issuance(issuance(1, record(2, "nozawa1", wrong, 2, 200)))
                .await;
            assert!(
                matches!(r, Err(StoreError::Conflict)),
                "issued_num {wrong}: {r:?}"
            );
        }

        let mut revoked = record(2, "nozawa1", 2, 2, 200);
        revoked.revocation = Some(Revocation {
            at: at(200),
            reason: RevocationReason::Unspecified,
        });
        let r = store.commit_issuance(issuance(1, revoked)).await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");

        let ghost = store
            .commit_issuance(issuance(0, record(3, "ghost", 1, 3, 200)))
            .await;
        assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");

        assert_eq!(store.account(&id("nozawa1")).await.unwrap(), Some(before));
        assert_eq!(store.certificate(&serial(2)).await.unwrap(), None);
        assert_eq!(
            store
                .certificate(&serial(1))
                .await
                .unwrap()
                .unwrap()
                .revocation,
            None
        );
        assert_eq!(
            store
                .key_certified_by(&KeyFingerprint([2; 32]))
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.history(&all_history()).await.unwrap(), history_before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_issuances_on_one_version_let_exactly_one_through() {
        const TASKS: u8 = 50;
        let (_dir, store) = setup().await;
        let store = Arc::new(store);
        let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(TASKS)));
        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
                barrier.wait().await; // every task decides on the same state
                let rec = record(i + 1, "nozawa1", acc.issued_count + 1, i, 100);
                let result = store.commit_issuance(issuance(acc.version, rec)).await;
                if result.is_ok() {
                    store.flush().await.unwrap();
                }
                result
            }));
        }
        let mut ok = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(issued) => ok.push(issued.record().serial),
                Err(StoreError::Conflict) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(ok.len(), 1);
        let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
        assert_eq!(acc.version, 1);
        assert_eq!(acc.issued_count, 1);
        assert_eq!(acc.current_certificate, Some(ok[0]));
        let enrolls = HistoryQuery {
            kind: Some(EventKind::Enroll),
            ..all_history()
        };
        assert_eq!(store.history(&enrolls).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn history_is_newest_first_and_filters_combine() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        // (kind, account, contract, time); time deliberately not monotonic in seq.
        let events = [
            (EventKind::ContractCreate, None, Some("A"), 10),
            (EventKind::AccountCreate, Some("alice"), Some("A"), 20),
            (EventKind::Enroll, Some("alice"), Some("A"), 30),
            (EventKind::AccountCreate, Some("bob"), Some("B"), 40),
            (EventKind::Enroll, Some("bob"), Some("B"), 50),
            (EventKind::Lock, Some("alice"), Some("A"), 60),
            (EventKind::Enroll, Some("alice"), Some("A"), 70),
            (EventKind::Enroll, None, None, 80),
            (EventKind::Enroll, Some("alice"), Some("A"), 5),
        ];
        let mut seqs = Vec::new();
        for (kind, acc, con, t) in events {
            seqs.push(
                store
                    .append_history(event(kind, acc, con, t))
                    .await
                    .unwrap(),
            );
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let times = |q: HistoryQuery| -> Vec<i64> {
            futures_lite_block(store.history(&q))
                .unwrap()
                .into_iter()
                .map(|e| e.event.at.unix_timestamp() - 1_700_000_000)
                .collect()
        };

        assert_eq!(times(all_history()), [5, 80, 70, 60, 50, 40, 30, 20, 10]);
        assert_eq!(
            times(HistoryQuery {
                limit: 0,
                ..all_history()
            }),
            Vec::<i64>::new()
        );
        assert_eq!(
            times(HistoryQuery {
                limit: 3,
                ..all_history()
            }),
            [5, 80, 70]
        );

        let alice = || HistoryQuery {
            account: Some(id("alice")),
            ..all_history()
        };
        assert_eq!(times(alice()), [5, 70, 60, 30, 20]);
        assert_eq!(
            times(HistoryQuery {
                account: Some(id("ali")),
                ..all_history()
            }),
            Vec::<i64>::new()
        );
        assert_eq!(
            times(HistoryQuery {
                contract: Some(code("B")),
                ..all_history()
            }),
            [50, 40]
        );
        assert_eq!(
            times(HistoryQuery {
                contract: Some(code("A")),
                ..all_history()
            }),
            [5, 70, 60, 30, 20, 10]
        );
        assert_eq!(
            times(HistoryQuery {
                contract: Some(code("B")),
                ..alice()
            }),
            Vec::<i64>::new()
        );
        assert_eq!(
            times(HistoryQuery {
                kind: Some(EventKind::Enroll),
                ..all_history()
            }),
            [5, 80, 70, 50, 30]
        );
        assert_eq!(
            times(HistoryQuery {
                kind: Some(EventKind::Enroll),
                limit: 2,
                ..alice()
            }),
            [5, 70]
        );
        assert_eq!(
            times(HistoryQuery {
                since: Some(at(30)),
                until: Some(at(70)),
                ..all_history()
            }),
            [60, 50, 40, 30]
        );
        assert_eq!(
            times(HistoryQuery {
                since: Some(at(30)),
                until: Some(at(70)),
                ..alice()
            }),
            [60, 30]
        );

        // Paging with the cursor: each page continues strictly below the last seq seen.
        for base in [
            all_history(),
            alice(),
            HistoryQuery {
                contract: Some(code("A")),
                ..all_history()
            },
        ] {
            let everything = store.history(&base).await.unwrap();
            let mut paged = Vec::new();
            let mut cursor = None;
            loop {
                let page = store
                    .history(&HistoryQuery {
                        before_seq: cursor,
                        limit: 2,
                        ..base.clone()
                    })
                    .await
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                assert!(page.len() <= 2);
                cursor = page.last().map(|e| e.seq);
                paged.extend(page);
            }
            assert_eq!(paged, everything);
        }
        assert_eq!(
            times(HistoryQuery {
                before_seq: Some(seqs[0]),
                ..all_history()
            }),
            Vec::<i64>::new()
        );
        assert_eq!(
            times(HistoryQuery {
                before_seq: Some(seqs[3]),
                ..alice()
            }),
            [30, 20]
        );
    }

    #[tokio::test]
    async fn commits_survive_a_reopen_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let last_seq = {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .create_contract(
                    contract("5110"),
                    event(EventKind::ContractCreate, None, Some("5110"), 0),
                )
                .await
                .unwrap();
            store
                .create_account(
                    account("nozawa1", "5110"),
                    event(EventKind::AccountCreate, Some("nozawa1"), Some("5110"), 1),
                )
                .await
                .unwrap();
            store
                .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100)))
                .await
                .unwrap();
            let seq = store
                .append_history(event(EventKind::Lock, Some("nozawa1"), None, 2))
                .await
                .unwrap();
            store.flush().await.unwrap();
            seq
        };
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.contract(&code("5110")).await.unwrap(),
            Some(contract("5110"))
        );
        let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
        assert_eq!((acc.version, acc.current_certificate), (1, Some(serial(1))));
        assert_eq!(
            store.certificate(&serial(1)).await.unwrap(),
            Some(record(1, "nozawa1", 1, 1, 100))
        );
        assert_eq!(
            store
                .key_certified_by(&KeyFingerprint([1; 32]))
                .await
                .unwrap(),
            Some(serial(1))
        );
        let history = store.history(&all_history()).await.unwrap();
        assert_eq!(history.len(), 4);
        assert_eq!(history[0].seq, last_seq);
        // Sequence numbers keep growing after a restart.
        let next = store
            .append_history(event(EventKind::Unlock, None, None, 3))
            .await
            .unwrap();
        assert!(next > last_seq);
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        match SledStore::open(dir.path()) {
            Err(StoreError::Backend(msg)) => {
                assert!(msg.contains("is in use by another process"), "{msg}");
                assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
            }
            other => panic!("expected the in-use error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn concurrent_flushes_share_one() {
        const TASKS: usize = 20;
        let (_dir, store) = setup().await;
        let store = Arc::new(store);
        store.flush().await.unwrap();
        let baseline = store.flushes.load(Ordering::SeqCst);
        // Nothing new to flush: no flush at all.
        store.flush().await.unwrap();
        assert_eq!(store.flushes.load(Ordering::SeqCst), baseline);

        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                store
                    .append_history(event(EventKind::Lock, None, None, i as i64))
                    .await
                    .unwrap();
                store.flush().await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let used = store.flushes.load(Ordering::SeqCst) - baseline;
        assert!(
            (1..TASKS as u64).contains(&used),
            "{used} flushes for {TASKS} callers"
        );
        assert_eq!(
            *store.flushed.lock().await,
            store.commits.load(Ordering::SeqCst)
        );
    }

    #[tokio::test]
    async fn applications_are_created_once_and_revoked_for_good() {
        let (_dir, store) = setup().await;
        let name: AppName = "bankapp".parse().unwrap();
        let app_record = |s: u8, key: u8| CertificateRecord {
            holder: Holder::App { name: name.clone() },
            ..record(s, "nozawa1", 1, key, 10)
        };
        let app = App {
            name: name.clone(),
            scope: crate::model::AppScope::Contracts(vec![code("5110")]),
            can_create_contracts: false,
            certificate: serial(40),
            revoked: false,
            created_at: at(10),
        };
        let issued = store
            .create_app(
                app.clone(),
                app_record(40, 40),
                event(EventKind::AppCreate, None, None, 10),
            )
            .await
            .unwrap();
        assert_eq!(issued.record().account(), None);
        assert_eq!(store.app(&name).await.unwrap(), Some(app.clone()));
        assert_eq!(
            store
                .key_certified_by(&KeyFingerprint([40; 32]))
                .await
                .unwrap(),
            Some(serial(40))
        );

        // The name is taken; a second app cannot reuse the key either.
        let again = store
            .create_app(
                app.clone(),
                app_record(40, 41),
                event(EventKind::AppCreate, None, None, 11),
            )
            .await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists(_))),
            "{again:?}"
        );
        let other = App {
            name: "other".parse().unwrap(),
            certificate: serial(42),
            ..app.clone()
        };
        let reused = store
            .create_app(
                other.clone(),
                CertificateRecord {
                    holder: Holder::App {
                        name: other.name.clone(),
                    },
                    ..record(42, "nozawa1", 1, 40, 10)
                },
                event(EventKind::AppCreate, None, None, 12),
            )
            .await;
        assert!(
            matches!(reused, Err(StoreError::KeyReused(s)) if s == serial(40)),
            "{reused:?}"
        );
        // An application's certificate is never recorded as an ID's.
        let wrong_holder = store
            .commit_issuance(NewCertificate {
                expected_version: 0,
                record: app_record(43, 43),
                event: event(EventKind::Enroll, None, None, 13),
            })
            .await;
        assert!(
            matches!(wrong_holder, Err(StoreError::Backend(_))),
            "{wrong_holder:?}"
        );

        let revocation = Revocation {
            at: at(20),
            reason: RevocationReason::CessationOfOperation,
        };
        let revoked = store
            .revoke_app(
                &name,
                revocation,
                event(EventKind::AppRevoke, None, None, 20),
            )
            .await
            .unwrap();
        assert!(revoked.revoked);
        let cert = store.certificate(&serial(40)).await.unwrap().unwrap();
        assert_eq!(cert.revocation, Some(revocation));
        // A revoked application certificate is published like any other.
        assert!(store
            .revoked_certificates()
            .await
            .unwrap()
            .iter()
            .any(|r| r.serial == serial(40) && r.revocation == revocation));
        assert_eq!(*store.revocations().borrow(), 1);
        let twice = store
            .revoke_app(
                &name,
                revocation,
                event(EventKind::AppRevoke, None, None, 21),
            )
            .await;
        assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");
        assert_eq!(store.apps().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn corrupt_values_are_reported_not_panicked_on() {
        let (_dir, store) = setup().await;
        store
            .accounts
            .insert("broken", b"{not json".as_slice())
            .unwrap();
        match store.account(&id("broken")).await {
            Err(StoreError::Backend(msg)) => {
                assert!(
                    msg.contains("`accounts`") && msg.contains("'broken'"),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.accounts(None).await,
            Err(StoreError::Backend(_))
        ));
        store.keys.insert([9u8; 32], b"short".as_slice()).unwrap();
        assert!(matches!(
            store.key_certified_by(&KeyFingerprint([9; 32])).await,
            Err(StoreError::Backend(_))
        ));
        store
            .history
            .insert(u64::MAX.to_be_bytes(), b"[]".as_slice())
            .unwrap();
        match store.history(&all_history()).await {
            Err(StoreError::Backend(msg)) => {
                assert!(
                    msg.contains("`history`") && msg.contains(&u64::MAX.to_string()),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// Export, import into an empty store, export again: identical records, indexes rebuilt,
    /// the key index and the history sequence carried on.
    #[tokio::test]
    async fn export_import_round_trips_accounts_certificates_and_history() {
        let (_dir, store) = setup().await;
        store
            .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 10)))
            .await
            .unwrap();
        let stored = store.account(&id("nozawa1")).await.unwrap().unwrap();
        store
            .commit_issuance(issuance(stored.version, record(2, "nozawa1", 2, 2, 20)))
            .await
            .unwrap();
        store
            .append_history(event(EventKind::Lock, Some("nozawa1"), Some("5110"), 30))
            .await
            .unwrap();

        let mut exported = Vec::new();
        store
            .export(&mut |r| {
                exported.push(r);
                Ok(())
            })
            .await
            .unwrap();
        let kinds: Vec<&str> = exported.iter().map(StoreRecord::kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "certificates").count(), 2);
        assert!(exported
            .iter()
            .any(|r| matches!(r, StoreRecord::Certificate(c) if c.revocation.is_some())));

        let dir = tempfile::tempdir().unwrap();
        let copy = SledStore::open(&dir.path().join("db")).unwrap();
        assert!(copy.is_empty().await.unwrap());
        copy.import(exported.clone()).await.unwrap();
        copy.flush().await.unwrap();
        assert!(!copy.is_empty().await.unwrap());
        let mut again = Vec::new();
        copy.export(&mut |r| {
            again.push(r);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(exported, again);

        assert_eq!(
            copy.key_certified_by(&KeyFingerprint([2; 32]))
                .await
                .unwrap(),
            Some(serial(2))
        );
        let by_account = copy
            .history(&HistoryQuery {
                account: Some(id("nozawa1")),
                ..all_history()
            })
            .await
            .unwrap();
        assert_eq!(
            by_account,
            store
                .history(&HistoryQuery {
                    account: Some(id("nozawa1")),
                    ..all_history()
                })
                .await
                .unwrap()
        );
        let newest = by_account[0].seq;
        let seq = copy
            .append_history(event(EventKind::Unlock, Some("nozawa1"), Some("5110"), 40))
            .await
            .unwrap();
        assert!(seq > newest, "{seq} > {newest}");
    }

    /// Review item 11: the certificates of estca's own services are recorded like any other
    /// (serial and key unique, readable by serial, in backups), answer the key index, and do
    /// not make a store "non-empty" for a restore.
    #[tokio::test]
    async fn service_certificates_are_recorded_backed_up_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let service = |s: u8, key: u8, holder: Holder| CertificateRecord {
            holder,
            subject: "CN=localhost".into(),
            ..record(s, "nozawa1", 1, key, 10)
        };
        let tls = service(
            1,
            1,
            Holder::TlsServer {
                names: vec!["localhost".into(), "127.0.0.1".into()],
            },
        );
        let ocsp = service(2, 2, Holder::OcspSigner);
        let issued = store.record_service_certificate(tls.clone()).await.unwrap();
        assert_eq!(issued.record(), &tls);
        store
            .record_service_certificate(ocsp.clone())
            .await
            .unwrap();
        assert_eq!(
            store.certificate(&serial(1)).await.unwrap(),
            Some(tls.clone())
        );
        assert_eq!(
            store.certificate(&serial(2)).await.unwrap(),
            Some(ocsp.clone())
        );
        assert_eq!(
            store
                .key_certified_by(&KeyFingerprint([2; 32]))
                .await
                .unwrap(),
            Some(serial(2))
        );
        assert!(store.is_empty().await.unwrap(), "service certificates only");

        // Serial and key are unique across every kind of certificate; an ID's or an
        // application's certificate cannot come in this way, nor a revoked one.
        assert!(matches!(
            store
                .record_service_certificate(service(1, 9, Holder::OcspSigner))
                .await,
            Err(StoreError::Conflict)
        ));
        assert!(matches!(
            store
                .record_service_certificate(service(9, 1, Holder::OcspSigner))
                .await,
            Err(StoreError::KeyReused(s)) if s == serial(1)
        ));
        assert!(matches!(
            store
                .record_service_certificate(record(9, "nozawa1", 1, 9, 10))
                .await,
            Err(StoreError::Backend(_))
        ));
        let revoked = CertificateRecord {
            revocation: Some(Revocation {
                at: at(20),
                reason: RevocationReason::Unspecified,
            }),
            ..service(9, 9, Holder::OcspSigner)
        };
        assert!(matches!(
            store.record_service_certificate(revoked).await,
            Err(StoreError::Backend(_))
        ));
        assert_eq!(store.certificate(&serial(9)).await.unwrap(), None);

        // Backups carry them, and a restore rebuilds their key index.
        let mut exported = Vec::new();
        store
            .export(&mut |r| {
                exported.push(r);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            exported,
            vec![
                StoreRecord::Certificate(tls),
                StoreRecord::Certificate(ocsp)
            ]
        );
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = SledStore::open(&copy_dir.path().join("db")).unwrap();
        copy.import(exported).await.unwrap();
        assert_eq!(
            copy.key_certified_by(&KeyFingerprint([1; 32]))
                .await
                .unwrap(),
            Some(serial(1))
        );

        // An ID's certificate makes the store non-empty as before.
        let (_dir, store) = setup().await;
        store
            .commit_issuance(issuance(0, record(3, "nozawa1", 1, 3, 10)))
            .await
            .unwrap();
        assert!(!store.is_empty().await.unwrap());
    }

    #[tokio::test]
    async fn the_revocation_index_follows_revokes_and_supersedes_and_the_feed_says_so() {
        let (_dir, store) = setup().await;
        let mut feed = store.revocations();
        assert_eq!(*feed.borrow_and_update(), 0);
        assert!(store.revoked_certificates().await.unwrap().is_empty());

        // Issuance of a first certificate revokes nothing: no entry, no signal.
        store
            .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100)))
            .await
            .unwrap();
        assert!(!feed.has_changed().unwrap());
        assert!(store.revoked_certificates().await.unwrap().is_empty());

        // A second issuance supersedes the first, in the same step.
        store
            .commit_issuance(issuance(1, record(2, "nozawa1", 2, 2, 200)))
            .await
            .unwrap();
        assert!(feed.has_changed().unwrap());
        assert_eq!(*feed.borrow_and_update(), 1);
        let superseded = RevokedCertificate {
            serial: serial(1),
            revocation: Revocation {
                at: at(200),
                reason: RevocationReason::Superseded,
            },
            not_after: at(100 + 365 * DAY),
        };
        assert_eq!(
            store.revoked_certificates().await.unwrap(),
            vec![superseded]
        );

        // An explicit revoke adds the second, with its reason.
        let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
        let revocation = Revocation {
            at: at(300),
            reason: RevocationReason::KeyCompromise,
        };
        store
            .update_account(AccountChange {
                expected_version: acc.version,
                account: Account {
                    choice: CertificateChoice::Revoked,
                    ..acc.clone()
                },
                revoke: Some((serial(2), revocation)),
                events: vec![],
            })
            .await
            .unwrap();
        assert_eq!(*feed.borrow_and_update(), 2);
        let revoked = RevokedCertificate {
            serial: serial(2),
            revocation,
            not_after: at(200 + 365 * DAY),
        };
        assert_eq!(
            store.revoked_certificates().await.unwrap(),
            vec![superseded, revoked]
        );

        // A refused revoke (already revoked) changes nothing and signals nothing.
        let acc = store.account(&id("nozawa1")).await.unwrap().unwrap();
        let again = store
            .update_account(AccountChange {
                expected_version: acc.version,
                account: acc.clone(),
                revoke: Some((serial(2), revocation)),
                events: vec![],
            })
            .await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
        assert!(!feed.has_changed().unwrap());
        // An account change without revocation signals nothing either.
        store
            .update_account(AccountChange {
                expected_version: acc.version,
                account: acc.clone(),
                revoke: None,
                events: vec![],
            })
            .await
            .unwrap();
        assert!(!feed.has_changed().unwrap());
    }

    #[tokio::test]
    async fn the_revocation_index_is_built_for_a_database_that_predates_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .create_contract(
                    contract("5110"),
                    event(EventKind::ContractCreate, None, None, 0),
                )
                .await
                .unwrap();
            store
                .create_account(
                    account("nozawa1", "5110"),
                    event(EventKind::AccountCreate, None, None, 1),
                )
                .await
                .unwrap();
            store
                .commit_issuance(issuance(0, record(1, "nozawa1", 1, 1, 100)))
                .await
                .unwrap();
            store
                .commit_issuance(issuance(1, record(2, "nozawa1", 2, 2, 200)))
                .await
                .unwrap();
            // What an older estca left: no index and no marker.
            store.revoked.clear().unwrap();
            store.meta.remove(META_REVOKED_INDEX).unwrap();
            store.flush().await.unwrap();
            store.db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let revoked = store.revoked_certificates().await.unwrap();
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].serial, serial(1));
        assert_eq!(revoked[0].revocation.reason, RevocationReason::Superseded);
    }

    #[tokio::test]
    async fn the_folded_id_index_is_built_for_a_database_that_predates_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .create_contract(
                    contract("5110"),
                    event(EventKind::ContractCreate, None, None, 0),
                )
                .await
                .unwrap();
            store
                .create_account(
                    account("Nozawa1", "5110"),
                    event(EventKind::AccountCreate, None, None, 1),
                )
                .await
                .unwrap();
            // What an older estca left: no index and no marker.
            store.account_ids_folded.clear().unwrap();
            store.meta.remove(META_FOLDED_IDS_INDEX).unwrap();
            store.db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let refused = store
            .create_account(
                account("nozawa1", "5110"),
                event(EventKind::AccountCreate, None, None, 2),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::AlreadyExists(_))),
            "{refused:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn crl_numbers_strictly_increase_under_concurrency_and_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        for _reopen in 0..3 {
            let store = Arc::new(SledStore::open(dir.path()).unwrap());
            let mut tasks = Vec::new();
            for _ in 0..10 {
                let store = Arc::clone(&store);
                tasks.push(tokio::spawn(async move {
                    store.next_crl_number().await.unwrap()
                }));
            }
            let mut these = Vec::new();
            for task in tasks {
                these.push(task.await.unwrap());
            }
            these.sort_unstable();
            seen.extend(these);
            // Dropped without a graceful stop: the numbers were flushed when drawn.
        }
        assert_eq!(seen, (1..=30).collect::<Vec<u64>>());
    }
}
