//! The CA directory's files: their names, new files written private and never over an
//! existing one, key files refused when group or others can reach them, and certificates read
//! from PEM.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use der::Encode;
use x509_cert::Certificate;

use super::CaError;

/// The root CA's certificate (PEM).
pub(super) const ROOT_CERT: &str = "root-ca.pem";
/// The root CA's key (PKCS#8 PEM); absent after an import, or with an offline root.
pub(super) const ROOT_KEY: &str = "root-ca.key";
/// The issuing CA's certificate, then any intermediates above it (PEM).
pub(super) const ISSUING_CERT: &str = "issuing-ca.pem";
/// The issuing CA's key (PKCS#8 PEM, encrypted when a passphrase is configured).
pub(super) const ISSUING_KEY: &str = "issuing-ca.key";
/// The key record of a generation whose key is in a PKCS#11 token: the URI of that key
/// (token and object). Written by `estca ca rollover`; when present it names the
/// generation's key, `ca.key` giving the module and the PIN settings the token's.
pub(super) const ISSUING_KEY_URI: &str = "issuing-ca.key-uri";
/// The issuing CA's certificate request, while an offline root has not certified it yet.
pub(super) const ISSUING_CSR: &str = "issuing-ca.csr";

/// Turns an I/O failure on `path` into the CA error that names it.
pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a new file with `mode`; refuses to replace an existing one.
pub(super) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                CaError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                CaError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    file.write_all(contents).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// Creates the directory `dir` (and its parents) private to estca's user.
pub(super) fn create_dir(dir: &Path) -> Result<(), CaError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))
}

/// Refuses to go on when any of `paths` exists: nothing is ever written over CA files.
pub(super) fn refuse_existing(paths: &[&Path]) -> Result<(), CaError> {
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(CaError::AlreadyExists {
            path: p.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// Refuses a key file that group or others may read or write.
pub(super) fn check_key_mode(path: &Path) -> Result<(), CaError> {
    let mode = std::fs::metadata(path)
        .map_err(io_error(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(CaError::InsecureKeyFile {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// The CA directory's certificates without any key: `issuing-ca.pem` (the issuing CA, then
/// any intermediates above it), then `root-ca.pem` when present. What needs the CA's
/// certificates only (a restore's trust in a backup's signer, a database's binding) reads.
pub(super) fn read_ca_chain(dir: &Path) -> Result<Vec<Vec<u8>>, CaError> {
    let issuing = dir.join(ISSUING_CERT);
    if !issuing.exists() {
        return Err(CaError::NotInitialized {
            dir: dir.to_path_buf(),
        });
    }
    let mut chain = read_certificates(&issuing)?;
    let root = dir.join(ROOT_CERT);
    if root.exists() {
        chain.extend(read_certificates(&root)?);
    }
    Ok(chain)
}

/// Reads every certificate of a PEM file, as DER.
pub(super) fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>, CaError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let bad = |reason: String| CaError::BadCertificate {
        path: path.to_path_buf(),
        reason,
    };
    let certs = Certificate::load_pem_chain(&bytes)
        .map_err(|e| bad(format!("not a PEM certificate chain ({e})")))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map_err(|e| bad(format!("cannot re-encode a certificate ({e})")))
        })
        .collect()
}

/// A certificate's DER as a PEM block.
pub(super) fn pem(der: &[u8]) -> Result<String, CaError> {
    pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der)
        .map_err(|e| CaError::Internal(format!("PEM-encoding a certificate: {e}")))
}
