//! The tables every backend keeps (sled's trees, fjall's partitions), by name, and the keys
//! of their indexes: what a stored row is called in a message, whichever engine holds it.

/// Contracts by code.
pub(in crate::store) const CONTRACTS: &str = "contracts";
/// Accounts by ID.
pub(in crate::store) const ACCOUNTS: &str = "accounts";
/// Accounts by contract: [`index_key`] of contract code and ID.
pub(in crate::store) const ACCOUNTS_BY_CONTRACT: &str = "accounts_by_contract";
/// Account IDs in lower case (no two IDs differ by case only).
pub(in crate::store) const ACCOUNT_IDS_FOLDED: &str = "account_ids_folded";
/// Certificates by serial.
pub(in crate::store) const CERTIFICATES: &str = "certificates";
/// The serial of the certificate that certified a key, by key fingerprint.
pub(in crate::store) const KEYS: &str = "keys";
/// Application credentials by name.
pub(in crate::store) const APPS: &str = "apps";
/// History entries by sequence number (u64 big-endian).
pub(in crate::store) const HISTORY: &str = "history";
/// History by account: [`index_key`] of ID and sequence number.
pub(in crate::store) const HISTORY_BY_ACCOUNT: &str = "history_by_account";
/// History by contract: [`index_key`] of contract code and sequence number.
pub(in crate::store) const HISTORY_BY_CONTRACT: &str = "history_by_contract";
/// The revocation index, by serial.
pub(in crate::store) const REVOKED: &str = "revoked";
/// Budgets (token buckets) by name.
pub(in crate::store) const BUDGETS: &str = "budgets";
/// Counters and markers by name.
pub(in crate::store) const META: &str = "meta";

/// The key of an index entry: a prefix (an account ID or contract code, which never contain
/// `0x00`), `0x00`, then `rest`.
pub(in crate::store) fn index_key(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 1 + rest.len());
    key.extend_from_slice(prefix);
    key.push(0x00);
    key.extend_from_slice(rest);
    key
}

/// The range of keys of an index under `prefix`: from `prefix 0x00` to just before
/// `prefix 0x01`.
pub(in crate::store) fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut lower = prefix.to_vec();
    lower.push(0x00);
    let mut upper = prefix.to_vec();
    upper.push(0x01);
    (lower, upper)
}

/// A value or key that cannot be what it should: names the table and the key.
pub(in crate::store) fn corrupt(table: &str, key: &[u8], why: &str) -> crate::store::StoreError {
    crate::store::StoreError::Backend(format!(
        "corrupt record in `{table}` at key {}: {why}",
        show_key(table, key)
    ))
}

/// A key as people can read it: text for IDs, codes and names, a number for sequence
/// numbers, hex otherwise.
fn show_key(table: &str, key: &[u8]) -> String {
    match table {
        CONTRACTS | ACCOUNTS | APPS | BUDGETS | META => {
            format!("'{}'", String::from_utf8_lossy(key))
        }
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
