//! Which CA a database belongs to.
//!
//! Every certificate, history entry and CRL number in a database was made by one CA. A daemon
//! started with another CA directory (a copy that was never made, so the embedded defaults
//! created a development CA; a path mistyped; the wrong machine's backup) must not add its
//! own certificates beside them: relying parties would see two issuers answer for one set of
//! IDs, and serials, keys and the single-active-certificate rule would mix both. So the first
//! daemon that starts on a database records the fingerprint of its CA's anchor key, and every
//! later start checks its CA against it ([`crate::ca::binding`] decides; this stores).

use async_trait::async_trait;

use super::tables::{corrupt, META};
use super::StoreError;
use crate::model::KeyFingerprint;

/// `meta` key of the bound CA key's fingerprint, on the embedded backends.
pub(in crate::store) const META_CA_KEY: &[u8] = b"ca_key";

/// The fingerprint stored at `meta/ca_key`, or why it is corrupt.
pub(in crate::store) fn stored_ca_key(bytes: &[u8]) -> Result<KeyFingerprint, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(KeyFingerprint)
        .map_err(|_| corrupt(META, META_CA_KEY, "a CA key fingerprint is 32 bytes"))
}

/// The record of the CA a database belongs to: the SHA-256 fingerprint of a CA key
/// ([`KeyFingerprint`]), written once and read at every start.
#[async_trait]
pub trait CaBinding: Send + Sync + 'static {
    /// The key the database is bound to, if any daemon bound it yet.
    async fn bound_ca(&self) -> Result<Option<KeyFingerprint>, StoreError>;

    /// Binds the database to `key` unless it is bound already, atomically (two daemons
    /// starting at once on one database both get the one that won), durably; returns the key
    /// the database is bound to now.
    async fn bind_ca(&self, key: KeyFingerprint) -> Result<KeyFingerprint, StoreError>;

    /// Binds the database to `key` whatever it was bound to, durably: the operator's explicit
    /// decision (`estca store bind-ca --replace`), and a restore into an empty database, whose
    /// records the restoring CA signed.
    async fn rebind_ca(&self, key: KeyFingerprint) -> Result<(), StoreError>;
}
