//! Which CA may use a database: the check every start makes before anything is issued (why a
//! database records its CA at all: [`crate::store::CaBinding`]).
//!
//! A database is bound to its CA's anchor key (the fingerprint, SHA-256 of the
//! SubjectPublicKeyInfo): the root's when the CA directory holds `root-ca.pem`, else the
//! issuing CA's. A start may use the database when the key it is bound to is any key of its
//! CA: the root, an intermediate, or the issuing CA of any generation in the directory
//! (`previous/`). A start that finds the database bound to one of its keys other than the
//! anchor (bound before `root-ca.pem` was added) moves the binding to the anchor, which a
//! rollover (`estca ca rollover`, under the same root) never changes. A CA directory holding
//! another CA is refused with both fingerprints; a missing or empty one beside a bound
//! database is refused with the database's, and the development CA that the embedded
//! defaults would create there is not created. An operator who means to change the CA of a
//! database says so with `estca store bind-ca --replace`; a restore binds the database it
//! fills to the restoring CA.

use std::path::Path;

use x509_parser::prelude::{FromDer, X509Certificate};

use super::files::{read_ca_chain, read_certificates, ISSUING_CERT, ROOT_CERT};
use super::generations::previous_dirs;
use super::CaError;
use crate::config::CaConfig;
use crate::model::KeyFingerprint;
use crate::store::{CaBinding, StoreError};

/// The keys of a CA as a database knows them: the anchor a new database is bound to, and
/// every key a bound database may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaKeys {
    anchor: KeyFingerprint,
    all: Vec<KeyFingerprint>,
}

impl CaKeys {
    /// The keys of the CA directory's certificates, without loading any key: those of
    /// `issuing-ca.pem` (the issuing CA and the intermediates above it), `root-ca.pem` if
    /// present, and the issuing CA of each retired generation (`previous/<n>/`), expired ones
    /// included: the same set whether the daemon or a command beside a stopped daemon asks.
    pub fn read(config: &CaConfig) -> Result<Self, CaError> {
        let mut chain = read_ca_chain(&config.dir)?;
        // The root is the last of the chain; the issuing CA, the first.
        let anchor = if config.dir.join(ROOT_CERT).exists() {
            chain.len().saturating_sub(1)
        } else {
            0
        };
        for dir in previous_dirs(&config.dir)? {
            chain.extend(
                read_certificates(&dir.join(ISSUING_CERT))?
                    .into_iter()
                    .take(1),
            );
        }
        let all = chain
            .iter()
            .map(|der| key_of(der))
            .collect::<Result<Vec<_>, _>>()?;
        let anchor = *all.get(anchor).ok_or_else(|| CaError::NotInitialized {
            dir: config.dir.clone(),
        })?;
        Ok(Self { anchor, all })
    }

    /// The key a new database is bound to.
    pub fn anchor(&self) -> KeyFingerprint {
        self.anchor
    }

    /// Whether a database bound to `key` belongs to this CA.
    pub fn contains(&self, key: &KeyFingerprint) -> bool {
        self.all.contains(key)
    }
}

/// The fingerprint of a CA certificate's key.
fn key_of(der: &[u8]) -> Result<KeyFingerprint, CaError> {
    let (_, certificate) = X509Certificate::from_der(der).map_err(|e| {
        CaError::Internal(format!(
            "a certificate of the CA directory cannot be read: {e}"
        ))
    })?;
    Ok(KeyFingerprint::of_spki_der(certificate.public_key().raw))
}

/// How to print a CA directory's anchor key with openssl, for the refusals.
const HOW_TO_PRINT: &str = "openssl x509 -in CA_DIR/root-ca.pem -noout -pubkey | openssl pkey \
     -pubin -outform DER | sha256sum (issuing-ca.pem instead of root-ca.pem in a directory \
     without a root)";

/// Why a daemon may not use a database.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// The database belongs to a CA whose keys are not this CA's.
    #[error(
        "the database at {database} belongs to another CA: it is bound to the CA key with \
         SHA-256 {bound}, and none of the keys of the CA in {ca_dir} is that one (its anchor \
         key is {ours}). Every daemon sharing a database needs a copy of the same CA \
         directory, whole (a copy without root-ca.pem or previous/ may lack the key): point \
         ca.dir at a copy of that CA's directory, or store.* at this CA's own database. To \
         print a CA directory's anchor key: {HOW_TO_PRINT}. If this CA is to take over the \
         database for good, stop every daemon using it and run 'estca store bind-ca \
         --replace'"
    )]
    OtherCa {
        /// Where the database is (its directory or URL, never a password).
        database: String,
        /// The configured CA directory.
        ca_dir: String,
        /// The key the database is bound to.
        bound: KeyFingerprint,
        /// This CA's anchor key.
        ours: KeyFingerprint,
    },
    /// The CA directory holds no CA while the database belongs to one: estca does not create
    /// a development CA then.
    #[error(
        "the CA directory {ca_dir} holds no CA, and the database at {database} belongs to \
         the CA whose key has SHA-256 {bound}: copy that CA's directory to {ca_dir} (every \
         daemon sharing a database needs a copy of the same CA directory; to print a CA \
         directory's anchor key: {HOW_TO_PRINT}). No development CA was created. To start \
         afresh instead, move the database aside; to keep its records under a new CA, \
         create that CA ('estca init') and run 'estca store bind-ca --replace'"
    )]
    NoCa {
        /// The configured CA directory.
        ca_dir: String,
        /// Where the database is.
        database: String,
        /// The key the database is bound to.
        bound: KeyFingerprint,
    },
    /// The binding could not be read or written.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Where a binding is checked: the database and the CA directory, named in refusals.
#[derive(Debug, Clone, Copy)]
pub struct BindingPlace<'a> {
    /// The database's directory or URL.
    pub database: &'a str,
    /// The configured CA directory.
    pub ca_dir: &'a Path,
}

impl BindingPlace<'_> {
    /// The refusal of a database bound to `bound`, for a CA whose anchor is `ours`.
    pub fn other_ca(&self, bound: &KeyFingerprint, ours: &KeyFingerprint) -> BindingError {
        BindingError::OtherCa {
            database: self.database.to_owned(),
            ca_dir: self.ca_dir.display().to_string(),
            bound: *bound,
            ours: *ours,
        }
    }

    /// The refusal of an empty CA directory for a database bound to `bound`.
    pub fn no_ca(&self, bound: &KeyFingerprint) -> BindingError {
        BindingError::NoCa {
            ca_dir: self.ca_dir.display().to_string(),
            database: self.database.to_owned(),
            bound: *bound,
        }
    }
}

/// What [`bind`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The database was bound to this CA's anchor already.
    Kept,
    /// The database was bound to no CA; it is now bound to this one's anchor.
    New,
    /// The database was bound to another key of this CA (the issuing CA's, before
    /// `root-ca.pem` was added); it is now bound to the anchor.
    MovedToAnchor {
        /// The key it was bound to.
        from: KeyFingerprint,
    },
}

/// Binds the database to the anchor of `keys` if it is bound to none or to another key of the
/// same CA, and refuses it if it is bound to another CA ([`BindingError::OtherCa`]).
pub async fn bind(
    store: &dyn CaBinding,
    keys: &CaKeys,
    place: BindingPlace<'_>,
) -> Result<Binding, BindingError> {
    let anchor = keys.anchor();
    let bound = match store.bound_ca().await? {
        Some(bound) => bound,
        None => {
            // Another daemon may have bound it first, to its own CA.
            let bound = store.bind_ca(anchor).await?;
            if bound == anchor {
                return Ok(Binding::New);
            }
            bound
        }
    };
    if bound == anchor {
        Ok(Binding::Kept)
    } else if keys.contains(&bound) {
        store.rebind_ca(anchor).await?;
        Ok(Binding::MovedToAnchor { from: bound })
    } else {
        Err(place.other_ca(&bound, &anchor))
    }
}

/// Checks that a database bound to `bound` (if bound) may be used by the CA of `keys`, without
/// binding it: what a reload checks before new CA generations take over.
pub fn check(
    bound: Option<KeyFingerprint>,
    keys: &CaKeys,
    place: BindingPlace<'_>,
) -> Result<(), BindingError> {
    match bound {
        Some(bound) if !keys.contains(&bound) => Err(place.other_ca(&bound, &keys.anchor())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::tests::{test_ca, test_ca_config};
    use crate::ca::CertificateAuthority;
    use crate::store::SledStore;

    fn place(dir: &Path) -> BindingPlace<'_> {
        BindingPlace {
            database: "the test database",
            ca_dir: dir,
        }
    }

    /// A new CA in `dir`, and its keys as read from the directory.
    fn new_ca(dir: &Path) -> (CertificateAuthority, CaKeys) {
        let ca = test_ca(dir);
        (ca, CaKeys::read(&test_ca_config(dir)).unwrap())
    }

    /// A CA is known by every key of its chain, its anchor is the root's, and another CA
    /// shares none of them.
    #[test]
    fn a_ca_is_known_by_its_root_and_every_key_of_its_chain() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let (ca, keys) = new_ca(dirs[0].path());
        let root = key_of(ca.root_certificate_der().unwrap()).unwrap();
        let issuing = key_of(ca.issuing_certificate_der()).unwrap();
        assert_eq!(keys.anchor(), root);
        assert!(keys.contains(&issuing) && keys.contains(&root) && issuing != root);

        let (_, other) = new_ca(dirs[1].path());
        assert!(!other.contains(&root) && !other.contains(&issuing));
    }

    /// The first CA binds an unbound database; the same CA is let in again, another is
    /// refused naming both keys, and a reload's check refuses it the same way.
    #[tokio::test]
    async fn a_database_is_bound_once_and_refuses_another_ca() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let store = SledStore::open(&dirs[0].path().join("db")).unwrap();
        let (_, ours) = new_ca(&dirs[0].path().join("ca"));
        let (_, theirs) = new_ca(dirs[1].path());
        let here = place(dirs[1].path());

        assert_eq!(bind(&store, &ours, here).await.unwrap(), Binding::New);
        assert_eq!(bind(&store, &ours, here).await.unwrap(), Binding::Kept);
        let refused = bind(&store, &theirs, here).await.unwrap_err().to_string();
        for expected in [
            ours.anchor().to_string(),
            theirs.anchor().to_string(),
            "belongs to another CA".into(),
        ] {
            assert!(refused.contains(&expected), "{refused}");
        }
        assert_eq!(store.bound_ca().await.unwrap(), Some(ours.anchor()));

        let bound = store.bound_ca().await.unwrap();
        assert!(check(bound, &ours, here).is_ok());
        assert!(matches!(
            check(bound, &theirs, here),
            Err(BindingError::OtherCa { .. })
        ));
        assert!(check(None, &theirs, here).is_ok(), "an unbound database");
    }

    /// Without `root-ca.pem` a database is bound to the issuing CA's key; once the root is
    /// back, the next bind moves the binding to the root's key, which rollovers keep.
    #[tokio::test]
    async fn a_binding_made_without_the_root_moves_to_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let ca_dir = dir.path().join("ca");
        let (ca, with_root) = new_ca(&ca_dir);
        let root_file = ca_dir.join(ROOT_CERT);
        let root_pem = std::fs::read(&root_file).unwrap();
        std::fs::remove_file(&root_file).unwrap();
        let without_root = CaKeys::read(&test_ca_config(&ca_dir)).unwrap();
        let issuing = key_of(ca.issuing_certificate_der()).unwrap();
        assert_eq!(without_root.anchor(), issuing);
        let here = place(&ca_dir);
        assert_eq!(
            bind(&store, &without_root, here).await.unwrap(),
            Binding::New
        );

        std::fs::write(&root_file, root_pem).unwrap();
        assert_eq!(
            bind(&store, &with_root, here).await.unwrap(),
            Binding::MovedToAnchor { from: issuing }
        );
        assert_eq!(store.bound_ca().await.unwrap(), Some(with_root.anchor()));
        assert_eq!(bind(&store, &with_root, here).await.unwrap(), Binding::Kept);
    }
}
