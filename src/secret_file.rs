//! Secrets kept in files (the CA keys' passphrase, the PKCS#11 PIN, the database password):
//! the file the configuration names, else the systemd credential of that name
//! (`$CREDENTIALS_DIRECTORY/<name>`, from `LoadCredential=`), never the configuration or the
//! command line. The secret is the file's first line.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The environment variable systemd sets to the directory of a service's credentials.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Where a secret is: `file` when configured, else the systemd credential `credential` when
/// it is present; `None` when neither.
pub fn locate(file: Option<&Path>, credential: &str) -> Option<PathBuf> {
    match file {
        Some(path) => Some(path.to_path_buf()),
        None => std::env::var_os(CREDENTIALS_DIRECTORY)
            .map(|dir| Path::new(&dir).join(credential))
            .filter(|path| path.exists()),
    }
}

/// Why a secret file gave no secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Unreadable(#[from] std::io::Error),
    /// Its first line is empty.
    #[error("its first line is empty")]
    Empty,
}

/// The first line of `path`, wiped from memory when dropped.
pub fn first_line(path: &Path) -> Result<Zeroizing<String>, SecretFileError> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    match text.lines().next() {
        Some(first) if !first.is_empty() => Ok(Zeroizing::new(first.to_owned())),
        _ => Err(SecretFileError::Empty),
    }
}
