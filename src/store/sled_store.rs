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
//! | `history` | sequence number, u64 big-endian | JSON [`HistoryEntry`] |
//! | `history_by_account` | account ID, `0x00`, sequence big-endian | empty |
//! | `history_by_contract` | contract code, `0x00`, sequence big-endian | empty |
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

use super::{AccountChange, HistoryQuery, IssuedCertificate, NewCertificate, Store, StoreError};
use crate::model::{
    Account, AccountId, CertificateChoice, CertificateRecord, Contract, ContractCode, HistoryEntry,
    HistoryEvent, KeyFingerprint, Revocation, RevocationReason, Serial,
};

const CONTRACTS: &str = "contracts";
const ACCOUNTS: &str = "accounts";
const CERTIFICATES: &str = "certificates";
const KEYS: &str = "keys";
const HISTORY: &str = "history";
const HISTORY_BY_ACCOUNT: &str = "history_by_account";
const HISTORY_BY_CONTRACT: &str = "history_by_contract";

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
    history: Tree,
    history_by_account: Tree,
    history_by_contract: Tree,
    /// Number of write operations applied so far (the commit generation).
    commits: AtomicU64,
    /// The commit generation the last completed flush covered; held while flushing, so that
    /// callers arriving meanwhile queue up and share the next flush.
    flushed: tokio::sync::Mutex<u64>,
    /// How many times `flush_async` was actually called (for tests and diagnostics).
    flushes: AtomicU64,
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
        let db = sled::Config::new().path(path).open().map_err(|e| {
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
        Ok(SledStore {
            path: path.to_owned(),
            contracts: tree(CONTRACTS)?,
            accounts: tree(ACCOUNTS)?,
            certificates: tree(CERTIFICATES)?,
            keys: tree(KEYS)?,
            history: tree(HISTORY)?,
            history_by_account: tree(HISTORY_BY_ACCOUNT)?,
            history_by_contract: tree(HISTORY_BY_CONTRACT)?,
            db,
            commits: AtomicU64::new(0),
            flushed: tokio::sync::Mutex::new(0),
            flushes: AtomicU64::new(0),
        })
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
        let key = account.id.as_str().as_bytes();
        let contract_key = account.contract.as_str().as_bytes();
        let value = encode(ACCOUNTS, &account)?;
        (
            &self.contracts,
            &self.accounts,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(|(contracts, accounts, history, by_account, by_contract)| {
                if contracts.get(contract_key)?.is_none() {
                    return abort(StoreError::NotFound(format!(
                        "contract {}",
                        account.contract
                    )));
                }
                if accounts.get(key)?.is_some() {
                    return abort(StoreError::AlreadyExists(format!("account {}", account.id)));
                }
                accounts.insert(key, value.as_slice())?;
                append(history, by_account, by_contract, &event)?;
                Ok(())
            })
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

    async fn update_account(&self, change: AccountChange) -> Result<Account, StoreError> {
        let AccountChange {
            expected_version,
            account,
            revoke,
            events,
        } = change;
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
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(
                |(accounts, certificates, history, by_account, by_contract)| {
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
                        revoke_certificate(certificates, &account.id, serial, *revocation)?;
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
        if record.revocation.is_some() {
            return Err(StoreError::Backend(format!(
                "refusing to record certificate {} as issued: it is marked revoked",
                record.serial
            )));
        }
        let account_key = record.account.as_str().as_bytes();
        let serial_key = record.serial.as_bytes();
        let record_value = encode(CERTIFICATES, &record)?;
        let superseded = (
            &self.accounts,
            &self.certificates,
            &self.keys,
            &self.history,
            &self.history_by_account,
            &self.history_by_contract,
        )
            .transaction(
                |(accounts, certificates, keys, history, by_account, by_contract)| {
                    let mut account: Account = tx_get(accounts, ACCOUNTS, account_key)?
                        .ok_or_else(|| {
                            ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                                "account {}",
                                record.account
                            )))
                        })?;
                    if account.id != record.account {
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
                    if account.issued_count.checked_add(1) != Some(record.issued_num) {
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
                            old.revocation = Some(Revocation {
                                at: record.not_before,
                                reason: RevocationReason::Superseded,
                            });
                            let old_value = encode(CERTIFICATES, &old)
                                .map_err(ConflictableTransactionError::Abort)?;
                            certificates.insert(previous.as_bytes(), old_value)?;
                            superseded = Some(previous);
                        }
                    }

                    certificates.insert(serial_key, record_value.as_slice())?;
                    keys.insert(&record.key.0, serial_key)?;

                    account.current_certificate = Some(record.serial);
                    account.issued_count = record.issued_num;
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
        Ok(IssuedCertificate { record, superseded })
    }

    async fn append_history(&self, event: HistoryEvent) -> Result<u64, StoreError> {
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
}

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
    if &record.account != account {
        return Err(not_found());
    }
    if record.revocation.is_some() {
        return abort(StoreError::Conflict);
    }
    record.revocation = Some(revocation);
    let value = encode(CERTIFICATES, &record).map_err(ConflictableTransactionError::Abort)?;
    certificates.insert(serial.as_bytes(), value)?;
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
