//! The passphrase that protects the CA's key files. It comes from the file
//! `ca.key_passphrase_file` names, else from the systemd credential
//! `ca.key_passphrase_credential` (`$CREDENTIALS_DIRECTORY/<name>`), never from the
//! configuration or the command line, and it never appears in `Debug` output, logs or errors.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::CaError;
use crate::config::CaConfig;
use crate::secret_file::SecretFileError;

/// The passphrase of the encrypted CA key files, wiped from memory when dropped.
pub struct KeyPassphrase {
    text: Zeroizing<String>,
    source: PathBuf,
}

impl fmt::Debug for KeyPassphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The file it came from, never the passphrase.
        f.debug_struct("KeyPassphrase")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl KeyPassphrase {
    /// The configured passphrase: the first line of `key_passphrase_file`, else of the
    /// systemd credential; `None` when the file is not configured and the credential is
    /// absent. Refuses an empty passphrase and a file group or others can access.
    pub fn from_config(config: &CaConfig) -> Result<Option<Self>, CaError> {
        Self::from_sources(
            config.key_passphrase_file.as_deref(),
            &config.key_passphrase_credential,
        )
    }

    /// The configured PKCS#11 PIN, from `pkcs11_pin_file` or its systemd credential, as
    /// [`KeyPassphrase::from_config`] reads the passphrase.
    pub fn pin_from_config(config: &CaConfig) -> Result<Option<Self>, CaError> {
        Self::from_sources(
            config.pkcs11_pin_file.as_deref(),
            &config.pkcs11_pin_credential,
        )
    }

    /// The first line of `file`, else of the systemd credential `credential` when present.
    fn from_sources(file: Option<&Path>, credential: &str) -> Result<Option<Self>, CaError> {
        crate::secret_file::locate(file, credential)
            .map(|path| Self::read(&path))
            .transpose()
    }

    /// Reads the first line of `path` as the passphrase.
    pub fn read(path: &Path) -> Result<Self, CaError> {
        let bad = |reason: String| CaError::Passphrase {
            path: path.to_path_buf(),
            reason,
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| bad(format!("cannot read it: {e}")))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "it has mode {:04o}, so users other than estca's can read the passphrase of the CA keys; run `chmod 600 {}`",
                mode & 0o7777,
                path.display()
            )));
        }
        let text = crate::secret_file::first_line(path).map_err(|e| match e {
            SecretFileError::Empty => {
                bad("its first line, the passphrase, is empty: write the passphrase into it".into())
            }
            unreadable => bad(unreadable.to_string()),
        })?;
        Ok(Self {
            text,
            source: path.to_path_buf(),
        })
    }

    /// The passphrase's bytes, for the key derivation.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The file or credential the passphrase was read from, for messages.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn the_first_line_is_the_passphrase_and_debug_never_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "pass", "correct horse\nignored\n", 0o600);
        let pass = KeyPassphrase::read(&path).unwrap();
        assert_eq!(pass.as_bytes(), b"correct horse");
        assert!(!format!("{pass:?}").contains("horse"));
    }

    #[test]
    fn a_readable_or_empty_file_is_refused_without_showing_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let open = write(dir.path(), "open", "correct horse\n", 0o644);
        let message = KeyPassphrase::read(&open).unwrap_err().to_string();
        assert!(
            message.contains("mode 0644") && message.contains("chmod 600"),
            "{message}"
        );
        assert!(!message.contains("horse"), "{message}");
        let empty = write(dir.path(), "empty", "\n", 0o600);
        let message = KeyPassphrase::read(&empty).unwrap_err().to_string();
        assert!(message.contains("empty"), "{message}");
    }
}
