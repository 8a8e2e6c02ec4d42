//! How values are written in the trees: the stored rows and their encoding.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::corrupt;
use crate::model::Serial;
use crate::store::StoreError;

/// Decodes a value read from `tree` at `key`.
pub(super) fn decode<T: DeserializeOwned>(
    tree: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(tree, key, &e.to_string()))
}

/// Encodes a value for `tree`.
pub(super) fn encode<T: Serialize>(tree: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode a value for tree `{tree}`: {e}")))
}

/// Decodes a serial stored as 16 raw bytes.
pub(super) fn decode_serial(tree: &str, key: &[u8], bytes: &[u8]) -> Result<Serial, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map_err(|_| corrupt(tree, key, "a serial is 16 bytes"))
        .and_then(|b| Serial::from_bytes(b).map_err(|e| corrupt(tree, key, &e.0)))
}

/// Decodes a u64 stored big-endian.
pub(super) fn decode_u64(tree: &str, key: &[u8], bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(tree, key, "a number is 8 bytes"))
}
