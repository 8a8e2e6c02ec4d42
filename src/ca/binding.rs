//! Which CA may use a database: the check every start makes before anything is issued (why a
//! database records its CA at all: [`crate::store::CaBinding`]).
//!
//! The first daemon to start on a database records the fingerprint (SHA-256 of the
//! SubjectPublicKeyInfo) of its CA's anchor key: the root's when the CA directory holds
//! `root-ca.pem`, else that of the topmost CA certificate of its chain. A later start may use
//! the database when the recorded key is any key of its CA: the root, an intermediate, or the
//! issuing CA of any generation loaded. So a rollover (`estca ca rollover`, which keeps the
//! root) and a `root-ca.pem` added later keep working, while a CA directory holding another CA,
//! or the development CA that the embedded defaults create in an empty directory, is refused
//! with both fingerprints. An operator who means to change the CA of a database says so with
//! `estca store bind-ca --replace`; a restore binds the database it fills to the restoring CA.

use std::fmt;
use std::path::Path;

use x509_parser::prelude::{FromDer, X509Certificate};

use super::files::read_ca_chain;
use super::generations::Generations;
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
    /// The keys of every certificate of `generations`: the issuing CAs, the intermediates
    /// and the root ([`Generations::certificates_der`], whose last one is the anchor).
    pub fn of(generations: &Generations) -> Result<Self, CaError> {
        Self::of_chain(generations.certificates_der())
    }

    /// The keys of the CA directory's certificates, without loading any key: the issuing CA
    /// and the intermediates of `issuing-ca.pem`, then `root-ca.pem` if present. What the
    /// commands that run beside a stopped daemon bind a database to.
    pub fn read(config: &CaConfig) -> Result<Self, CaError> {
        Self::of_chain(read_ca_chain(&config.dir)?.iter().map(Vec::as_slice))
    }

    /// The keys of CA certificates given issuing CA first, anchor last.
    fn of_chain<'a>(chain: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, CaError> {
        let all = chain
            .into_iter()
            .map(key_of)
            .collect::<Result<Vec<_>, _>>()?;
        let anchor = *all.last().ok_or_else(|| {
            CaError::Internal("the CA has no certificate to bind a database to".into())
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
    let (_, certificate) = X509Certificate::from_der(der)
        .map_err(|e| CaError::Internal(format!("a loaded CA certificate cannot be read: {e}")))?;
    Ok(KeyFingerprint::of_spki_der(certificate.public_key().raw))
}

/// A key fingerprint as the refusals and `estca store bind-ca` print it: lower-case hex, as
/// `sha256sum` prints the SHA-256 of the key's DER SubjectPublicKeyInfo.
pub struct ShowKey<'a>(pub &'a KeyFingerprint);

impl fmt::Display for ShowKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0 .0))
    }
}

/// How to print the fingerprint of a CA certificate's key with openssl, for the refusals.
fn openssl_fingerprint(ca_dir: &Path) -> String {
    format!(
        "openssl x509 -in {}/root-ca.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum",
        ca_dir.display()
    )
}

/// Why a daemon may not use a database.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// The database belongs to a CA whose keys are not this CA's.
    #[error(
        "the database at {database} belongs to another CA: it is bound to the CA key with \
         SHA-256 {bound}, and none of the keys of the CA in {ca_dir} is that one (its anchor \
         key is {ours}). Every daemon sharing a database needs a copy of the same CA \
         directory: point ca.dir at a copy of that CA's directory, or store.* at this CA's \
         own database. To print a CA directory's anchor key: {how}. If this CA is to take \
         over the database for good, stop every daemon using it and run 'estca store \
         bind-ca --replace'"
    )]
    OtherCa {
        /// Where the database is (its directory or URL, never a password).
        database: String,
        /// The configured CA directory.
        ca_dir: String,
        /// The key the database is bound to, in hex.
        bound: String,
        /// This CA's anchor key, in hex.
        ours: String,
        /// The openssl command that prints a CA directory's anchor key.
        how: String,
    },
    /// The CA directory holds no CA while the database belongs to one: estca does not create
    /// a development CA then.
    #[error(
        "the CA directory {ca_dir} holds no CA, and the database at {database} belongs to \
         the CA whose key has SHA-256 {bound}: copy that CA's directory to {ca_dir} (every \
         daemon sharing a database needs a copy of the same CA directory). No development \
         CA was created. To start afresh instead, move the database aside; to keep its \
         records under a new CA, create that CA ('estca init') and run 'estca store bind-ca \
         --replace'"
    )]
    NoCa {
        /// The configured CA directory.
        ca_dir: String,
        /// Where the database is.
        database: String,
        /// The key the database is bound to, in hex.
        bound: String,
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
            bound: ShowKey(bound).to_string(),
            ours: ShowKey(ours).to_string(),
            how: openssl_fingerprint(self.ca_dir),
        }
    }

    /// The refusal of an empty CA directory for a database bound to `bound`.
    pub fn no_ca(&self, bound: &KeyFingerprint) -> BindingError {
        BindingError::NoCa {
            ca_dir: self.ca_dir.display().to_string(),
            database: self.database.to_owned(),
            bound: ShowKey(bound).to_string(),
        }
    }
}

/// What [`bind`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The database was bound to this CA already.
    Kept,
    /// The database was bound to no CA; it is now bound to this one's anchor.
    New,
}

/// Binds the database to the CA of `keys` if it is bound to none, and refuses it if it is
/// bound to another CA ([`BindingError::OtherCa`]).
pub async fn bind(
    store: &dyn CaBinding,
    keys: &CaKeys,
    place: BindingPlace<'_>,
) -> Result<Binding, BindingError> {
    let (bound, outcome) = match store.bound_ca().await? {
        Some(bound) => (bound, Binding::Kept),
        None => {
            let bound = store.bind_ca(keys.anchor()).await?;
            // Another daemon may have bound it first, to its own CA.
            let outcome = if bound == keys.anchor() {
                Binding::New
            } else {
                Binding::Kept
            };
            (bound, outcome)
        }
    };
    if keys.contains(&bound) {
        Ok(outcome)
    } else {
        Err(place.other_ca(&bound, &keys.anchor()))
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
    use crate::store::SledStore;

    fn place(dir: &Path) -> BindingPlace<'_> {
        BindingPlace {
            database: "the test database",
            ca_dir: dir,
        }
    }

    /// The keys of a CA read from its directory are those of its loaded generations, the
    /// anchor is the root's, and another CA shares none of them.
    #[test]
    fn a_ca_is_known_by_its_root_and_every_key_of_its_chain() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let loaded = Generations::single(test_ca(dirs[0].path()));
        let keys = CaKeys::of(&loaded).unwrap();
        assert_eq!(keys, CaKeys::read(&test_ca_config(dirs[0].path())).unwrap());
        let root = loaded.current().root_certificate_der().unwrap();
        assert_eq!(keys.anchor(), key_of(root).unwrap());
        let issuing = key_of(loaded.current().issuing_certificate_der()).unwrap();
        assert!(keys.contains(&issuing) && issuing != keys.anchor());

        let other = CaKeys::of(&Generations::single(test_ca(dirs[1].path()))).unwrap();
        assert!(!other.contains(&keys.anchor()) && !other.contains(&issuing));
    }

    /// The first CA binds an unbound database; the same CA is let in again, another is
    /// refused naming both keys, and a reload's check refuses it the same way.
    #[tokio::test]
    async fn a_database_is_bound_once_and_refuses_another_ca() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let store = SledStore::open(&dirs[0].path().join("db")).unwrap();
        let ours = CaKeys::of(&Generations::single(test_ca(&dirs[0].path().join("ca")))).unwrap();
        let theirs = CaKeys::of(&Generations::single(test_ca(dirs[1].path()))).unwrap();
        let here = place(dirs[1].path());

        assert_eq!(bind(&store, &ours, here).await.unwrap(), Binding::New);
        assert_eq!(bind(&store, &ours, here).await.unwrap(), Binding::Kept);
        let refused = bind(&store, &theirs, here).await.unwrap_err().to_string();
        for expected in [
            ShowKey(&ours.anchor()).to_string(),
            ShowKey(&theirs.anchor()).to_string(),
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
}
