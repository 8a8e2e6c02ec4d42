//! `estca ca encrypt-key` and `estca ca decrypt-key`: rewriting the CA key files of the CA
//! directory (`root-ca.key` when present, `issuing-ca.key`) encrypted with the configured
//! passphrase, or plain.
//!
//! Every key file is read and decrypted before any is written, so a wrong passphrase or a
//! damaged file changes nothing. Each file is replaced in one step (a private temporary file
//! renamed over it, [`crate::private_file`]): after a crash it is the old file or the new one.
//! The running daemon keeps the key it loaded; the change matters at its next start.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::hierarchy::{check_key_mode, ISSUING_KEY, ROOT_KEY};
use super::key::{CaKey, KeyProtection};
use super::passphrase::KeyPassphrase;
use super::{CaError, CertificateAuthority};
use crate::config::CaConfig;
use crate::private_file::PrivateFile;

/// What happened to one key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFileChange {
    /// It was plain and is now encrypted.
    Encrypted,
    /// It was encrypted and is now plain.
    Decrypted,
    /// It already was as asked and was left alone.
    Unchanged,
}

/// The key files `encrypt-key` or `decrypt-key` looked at, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyFileReport {
    /// Each key file and what happened to it.
    pub files: Vec<(PathBuf, KeyFileChange)>,
}

impl fmt::Display for KeyFileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, change)) in self.files.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let what = match change {
                KeyFileChange::Encrypted => "encrypted",
                KeyFileChange::Decrypted => {
                    "decrypted (now a plain key file: keep it offline or encrypt it again)"
                }
                KeyFileChange::Unchanged => "unchanged (already as asked)",
            };
            write!(f, "{}: {what}", path.display())?;
        }
        Ok(())
    }
}

/// One key file, read and decrypted.
struct Loaded {
    path: PathBuf,
    key: CaKey,
    protection: KeyProtection,
}

/// Reads every key file of the CA directory (root first when present), checking modes.
fn load_all(config: &CaConfig, passphrase: &KeyPassphrase) -> Result<Vec<Loaded>, CaError> {
    let issuing = config.dir.join(ISSUING_KEY);
    if !issuing.exists() {
        return Err(CaError::NotInitialized {
            dir: config.dir.clone(),
        });
    }
    let root = config.dir.join(ROOT_KEY);
    let mut paths = Vec::new();
    if root.exists() {
        paths.push(root);
    }
    paths.push(issuing);
    paths
        .into_iter()
        .map(|path| {
            let (key, protection) = read(&path, Some(passphrase))?;
            Ok(Loaded {
                path,
                key,
                protection,
            })
        })
        .collect()
}

/// Reads one key file (refused when group or others can access it).
pub(super) fn read(
    path: &Path,
    passphrase: Option<&KeyPassphrase>,
) -> Result<(CaKey, KeyProtection), CaError> {
    check_key_mode(path)?;
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        source,
    })?);
    CaKey::from_pem_file(&text, path, passphrase)
}

/// Replaces `path` with `pem` in one step.
fn replace(path: &Path, pem: &str) -> Result<(), CaError> {
    let failed = |e: crate::private_file::PrivateFileError| CaError::Generate(e.to_string());
    let mut file = PrivateFile::create(path).map_err(failed)?;
    file.write_all(pem.as_bytes())
        .map_err(|source| CaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    file.commit().map_err(failed)
}

/// Rewrites the loaded keys that are not yet `want`.
fn rewrite(
    loaded: Vec<Loaded>,
    want: KeyProtection,
    passphrase: &KeyPassphrase,
) -> Result<KeyFileReport, CaError> {
    let mut files = Vec::new();
    for file in loaded {
        if file.protection == want {
            files.push((file.path, KeyFileChange::Unchanged));
            continue;
        }
        let (pem, change) = match want {
            KeyProtection::Encrypted => (
                file.key.to_pkcs8_pem(Some(passphrase))?,
                KeyFileChange::Encrypted,
            ),
            KeyProtection::Plain => (file.key.to_pkcs8_pem(None)?, KeyFileChange::Decrypted),
        };
        replace(&file.path, &pem)?;
        files.push((file.path, change));
    }
    Ok(KeyFileReport { files })
}

impl CertificateAuthority {
    /// Encrypts the plain key files of the CA directory with `passphrase` (PKCS#8, scrypt and
    /// AES-256-CBC); encrypted ones must decrypt with it and are left alone.
    pub fn encrypt_key_files(
        config: &CaConfig,
        passphrase: &KeyPassphrase,
    ) -> Result<KeyFileReport, CaError> {
        rewrite(
            load_all(config, passphrase)?,
            KeyProtection::Encrypted,
            passphrase,
        )
    }

    /// Decrypts the encrypted key files of the CA directory with `passphrase` into plain
    /// PKCS#8 PEM (mode 0600); plain ones are left alone.
    pub fn decrypt_key_files(
        config: &CaConfig,
        passphrase: &KeyPassphrase,
    ) -> Result<KeyFileReport, CaError> {
        rewrite(
            load_all(config, passphrase)?,
            KeyProtection::Plain,
            passphrase,
        )
    }
}
