//! Stored rows: the store's own types, converted from and to the model, and their encoding,
//! one set for every backend (sled and fjall write the same bytes for the same record).
//!
//! A value is one version byte ([`ROW_VERSION`]) followed by the row in
//! [postcard](https://postcard.jamesmunns.com/wire-format) (varints, length-prefixed strings
//! and bytes, enum variants by index). Why postcard rather than DER: the rows are the store's
//! private format, read and written on every request, so what matters is that they are small,
//! fast and have a specified, frozen wire format, which postcard 1.x has; DER would mean
//! writing an ASN.1 schema for records nobody outside estca reads. The version byte is what
//! lets a later build change a row's layout (a new version, rows converted or read in both
//! forms), and what tells a binary row from a JSON one (which starts with `{`) while sled's
//! migration from the last release's JSON rows is under way (`crate::store::sled::migration`).
//!
//! The key of a table is not repeated in its rows (an account's ID, a certificate's serial,
//! a history entry's number): it is given back when a row is read. Enums are stored by the
//! index of their variant in the row types below: variants are only ever appended.
//!
//! What is kept although it could be derived: a certificate's subject text, its validity and
//! its key fingerprint are all in its DER. The validity and the fingerprint are what the
//! store's own rules use (the CRL's expiry filter, the key index), so the store must not need
//! an X.509 parser to enforce them; the subject text is the CA's display form (built by the
//! CA, `crate::ca::profile`), and deriving it here would be a second definition of that form
//! plus a certificate parse on every read (each renewal, OCSP lookup and export). It costs
//! about 130 bytes of an ID's certificate row (see `tests::sizes`).

mod account;
mod app;
mod budget;
mod certificate;
mod history;

pub(in crate::store) use history::encode_event;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::Serial;
use crate::store::tables::corrupt;
use crate::store::StoreError;

/// The first byte of every row this build writes.
pub(in crate::store) const ROW_VERSION: u8 = 1;

/// The first byte of the account row of a removed ID: the version 1 row followed by the
/// removal time. Written only for removed IDs, so that the rows of every other ID keep the
/// bytes earlier estca builds read (a rollback of the binary still reads them), while an
/// earlier build meeting a removed ID's row refuses it ("unknown row version") instead of
/// reading it as a live ID that could authenticate again.
pub(in crate::store) const REMOVED_ACCOUNT_ROW_VERSION: u8 = 2;

/// The first byte of a row in the JSON format of estca before binary rows (`{`).
pub(in crate::store) const JSON_ROW: u8 = b'{';

/// Whether a row starting with `first` is in one of the binary layouts this build reads
/// ([`ROW_VERSION`], or a later layout of one table), not JSON nor garbage.
pub(in crate::store) fn is_binary_row(first: u8) -> bool {
    first == ROW_VERSION || first == account::CONTRACT_ROW_VERSION
}

/// A model type as one table stores it.
pub(in crate::store) trait Stored: Sized {
    /// The table holding it (for messages).
    const TABLE: &'static str;

    /// The row's bytes (without the key).
    fn encode(&self) -> Result<Vec<u8>, StoreError>;

    /// The value read at `key`.
    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError>;
}

/// Encodes a row of table `tree`: the version byte, then postcard.
pub(in crate::store) fn to_row<T: Serialize>(tree: &str, row: &T) -> Result<Vec<u8>, StoreError> {
    to_row_of_version(tree, ROW_VERSION, row)
}

/// Encodes a row of table `tree` in layout `version`: the version byte, then postcard.
pub(in crate::store) fn to_row_of_version<T: Serialize>(
    tree: &str,
    version: u8,
    row: &T,
) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(row, vec![version])
        .map_err(|e| StoreError::Backend(format!("cannot encode a row of `{tree}`: {e}")))
}

/// Decodes a row of `tree` read at `key`, checking its version and that nothing follows it.
pub(in crate::store) fn from_row<'de, T: Deserialize<'de>>(
    tree: &str,
    key: &[u8],
    value: &'de [u8],
) -> Result<T, StoreError> {
    from_row_of_version(tree, ROW_VERSION, key, value)
}

/// Decodes a row of `tree` read at `key` that must be in layout `version`, checking that
/// nothing follows it.
pub(in crate::store) fn from_row_of_version<'de, T: Deserialize<'de>>(
    tree: &str,
    version: u8,
    key: &[u8],
    value: &'de [u8],
) -> Result<T, StoreError> {
    match value.split_first() {
        Some((&first, body)) if first == version => match postcard::take_from_bytes::<T>(body) {
            Ok((row, [])) => Ok(row),
            Ok((_, rest)) => Err(corrupt(
                tree,
                key,
                &format!("{} bytes after the row", rest.len()),
            )),
            Err(e) => Err(corrupt(tree, key, &e.to_string())),
        },
        Some((&JSON_ROW, _)) => Err(corrupt(
            tree,
            key,
            "a JSON row (the format before binary rows) where binary rows are expected",
        )),
        Some((version, _)) => Err(corrupt(
            tree,
            key,
            &format!("unknown row version {version} (written by a newer estca?)"),
        )),
        None => Err(corrupt(tree, key, "empty row")),
    }
}

/// An instant: Unix seconds and nanoseconds (estca's instants are UTC; the offset is not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::store) struct Instant(i64, u32);

impl Instant {
    /// The row form of `t`.
    pub(in crate::store) fn of(t: OffsetDateTime) -> Self {
        Self(t.unix_timestamp(), t.nanosecond())
    }

    /// The instant, in UTC.
    pub(in crate::store) fn to_model(
        self,
        tree: &str,
        key: &[u8],
    ) -> Result<OffsetDateTime, StoreError> {
        let nanos = i128::from(self.0) * 1_000_000_000 + i128::from(self.1);
        if self.1 >= 1_000_000_000 {
            return Err(corrupt(tree, key, "nanoseconds out of range"));
        }
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|e| corrupt(tree, key, &format!("time out of range: {e}")))
    }
}

/// Text read from a key or row that must parse as `T` (an ID, a code, a name).
pub(in crate::store) fn parse<T: std::str::FromStr>(
    tree: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt(tree, key, "not UTF-8"))?;
    text.parse()
        .map_err(|e: T::Err| corrupt(tree, key, &e.to_string()))
}

/// A serial stored as 16 raw bytes.
pub(in crate::store) fn serial(tree: &str, key: &[u8], bytes: &[u8]) -> Result<Serial, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map_err(|_| corrupt(tree, key, "a serial is 16 bytes"))
        .and_then(|b| Serial::from_bytes(b).map_err(|e| corrupt(tree, key, &e.0)))
}

/// A u64 stored big-endian.
pub(in crate::store) fn u64_be(tree: &str, key: &[u8], bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(tree, key, "a number is 8 bytes"))
}

#[cfg(test)]
mod tests;
