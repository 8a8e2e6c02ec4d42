//! `estca ca encrypt-key` and `estca ca decrypt-key`: rewriting the CA key files of the CA
//! directory (`root-ca.key` when present, `issuing-ca.key`, and `previous/<n>/issuing-ca.key`
//! of the generations a rollover retired) encrypted with the configured passphrase, or plain.
//!
//! Every key file is read and decrypted before any is written, so a wrong passphrase or a
//! damaged file changes nothing. Each file is replaced in one step (a private temporary file
//! renamed over it, [`crate::private_file`]): after a crash it is the old file or the new one.
//! The running daemon keeps the key it loaded; the change matters at its next start.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::files::{check_key_mode, ISSUING_KEY, ROOT_KEY};
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

/// Reads every key file of the CA directory (root first), checking modes: both, or only the
/// root's when the issuing key is in a token, or only the issuing key's when the root is
/// offline.
fn load_all(config: &CaConfig, passphrase: &KeyPassphrase) -> Result<Vec<Loaded>, CaError> {
    let mut paths: Vec<PathBuf> = [ROOT_KEY, ISSUING_KEY]
        .iter()
        .map(|name| config.dir.join(name))
        .collect();
    // The retired issuing CA generations still sign their CRL and OCSP answers.
    paths.extend(
        super::generations::previous_dirs(&config.dir)?
            .into_iter()
            .map(|dir| dir.join(ISSUING_KEY)),
    );
    let paths: Vec<PathBuf> = paths.into_iter().filter(|path| path.exists()).collect();
    if paths.is_empty() {
        return Err(CaError::NotInitialized {
            dir: config.dir.clone(),
        });
    }
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
        let (pem, change) = if want == KeyProtection::Encrypted {
            (
                file.key.to_pkcs8_pem(Some(passphrase))?,
                KeyFileChange::Encrypted,
            )
        } else {
            (file.key.to_pkcs8_pem(None)?, KeyFileChange::Decrypted)
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    use super::*;
    use crate::ca::tests::config;
    use crate::config::KeyAlgorithm;

    const SECRET: &str = "correct horse battery staple";

    /// A CA configuration in `dir` whose passphrase file holds `passphrase`.
    fn with_passphrase(dir: &Path, passphrase: &str) -> CaConfig {
        let file = dir.join(format!("passphrase-{}", passphrase.len()));
        std::fs::write(&file, format!("{passphrase}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        CaConfig {
            key_passphrase_file: Some(file),
            ..config(&dir.join("ca"), KeyAlgorithm::P256, 10)
        }
    }

    fn passphrase(config: &CaConfig) -> KeyPassphrase {
        KeyPassphrase::from_config(config).unwrap().unwrap()
    }

    fn label(path: &Path) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().next().unwrap().to_owned()
    }

    #[test]
    fn init_with_a_passphrase_encrypts_both_keys_and_load_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = with_passphrase(dir.path(), SECRET);
        let report = CertificateAuthority::init(&cfg, Some(&passphrase(&cfg))).unwrap();
        assert!(report.keys_encrypted);
        assert!(report
            .to_string()
            .contains("encrypted with the configured passphrase"));
        for name in [ROOT_KEY, ISSUING_KEY] {
            assert_eq!(
                label(&cfg.dir.join(name)),
                "-----BEGIN ENCRYPTED PRIVATE KEY-----"
            );
        }
        let ca = CertificateAuthority::load(&cfg, "{id}").unwrap();
        assert_eq!(ca.key_protection(), KeyProtection::Encrypted);

        let without = CaConfig {
            key_passphrase_file: None,
            ..cfg.clone()
        };
        let err = CertificateAuthority::load(&without, "{id}").unwrap_err();
        assert!(matches!(err, CaError::PassphraseMissing { .. }), "{err}");
        assert!(err.to_string().contains("ca.key_passphrase_file"), "{err}");

        let wrong = CaConfig {
            dir: cfg.dir.clone(),
            ..with_passphrase(dir.path(), "not the passphrase at all")
        };
        let err = CertificateAuthority::load(&wrong, "{id}").unwrap_err();
        assert!(matches!(err, CaError::WrongPassphrase { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("issuing-ca.key"), "{message}");
        assert!(!message.contains("not the passphrase"), "{message}");
    }

    #[test]
    fn decrypt_then_encrypt_round_trips_and_leaves_finished_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = with_passphrase(dir.path(), SECRET);
        CertificateAuthority::init(&cfg, Some(&passphrase(&cfg))).unwrap();
        let before = CertificateAuthority::load(&cfg, "{id}").unwrap();

        let report = CertificateAuthority::decrypt_key_files(&cfg, &passphrase(&cfg)).unwrap();
        assert_eq!(
            report.files,
            vec![
                (cfg.dir.join(ROOT_KEY), KeyFileChange::Decrypted),
                (cfg.dir.join(ISSUING_KEY), KeyFileChange::Decrypted),
            ]
        );
        for name in [ROOT_KEY, ISSUING_KEY] {
            let path = cfg.dir.join(name);
            assert_eq!(label(&path), "-----BEGIN PRIVATE KEY-----");
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let plain = CertificateAuthority::load(&cfg, "{id}").unwrap();
        assert_eq!(plain.key_protection(), KeyProtection::Plain);
        assert_eq!(
            plain.key.public_key_der().unwrap(),
            before.key.public_key_der().unwrap()
        );

        let report = CertificateAuthority::encrypt_key_files(&cfg, &passphrase(&cfg)).unwrap();
        assert!(report
            .files
            .iter()
            .all(|(_, c)| *c == KeyFileChange::Encrypted));
        let report = CertificateAuthority::encrypt_key_files(&cfg, &passphrase(&cfg)).unwrap();
        assert!(report
            .files
            .iter()
            .all(|(_, c)| *c == KeyFileChange::Unchanged));
        let again = CertificateAuthority::load(&cfg, "{id}").unwrap();
        assert_eq!(again.key_protection(), KeyProtection::Encrypted);
        assert_eq!(
            again.key.public_key_der().unwrap(),
            before.key.public_key_der().unwrap()
        );
        // No temporary file left behind.
        let mut names: Vec<String> = std::fs::read_dir(&cfg.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "issuing-ca.key",
                "issuing-ca.pem",
                "root-ca.key",
                "root-ca.pem"
            ]
        );
    }

    #[test]
    fn a_wrong_passphrase_changes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = with_passphrase(dir.path(), SECRET);
        CertificateAuthority::init(&cfg, Some(&passphrase(&cfg))).unwrap();
        let before = std::fs::read(cfg.dir.join(ISSUING_KEY)).unwrap();
        let wrong = with_passphrase(dir.path(), "a different passphrase");
        let err = CertificateAuthority::decrypt_key_files(&cfg, &passphrase(&wrong)).unwrap_err();
        assert!(matches!(err, CaError::WrongPassphrase { .. }), "{err}");
        assert_eq!(std::fs::read(cfg.dir.join(ISSUING_KEY)).unwrap(), before);
    }

    /// openssl reads estca's encrypted key with the passphrase, and estca reads a key openssl
    /// encrypted (PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC).
    #[test]
    fn openssl_and_estca_read_each_others_encrypted_keys() {
        if Command::new("openssl").arg("version").output().is_err() {
            assert!(
                std::env::var_os("REQUIRE_ALL_TESTS").is_none(),
                "REQUIRE_ALL_TESTS is set and openssl is missing"
            );
            eprintln!("NOTICE: openssl is missing; the encrypted key interop test is SKIPPED");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = with_passphrase(dir.path(), SECRET);
        CertificateAuthority::init(&cfg, Some(&passphrase(&cfg))).unwrap();
        let pass_arg = format!(
            "file:{}",
            cfg.key_passphrase_file.as_ref().unwrap().display()
        );
        let out = Command::new("openssl")
            .args(["pkey", "-pubout", "-passin", &pass_arg, "-in"])
            .arg(cfg.dir.join(ISSUING_KEY))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ca = CertificateAuthority::load(&cfg, "{id}").unwrap();
        let ours = pem_rfc7468::encode_string(
            "PUBLIC KEY",
            pem_rfc7468::LineEnding::LF,
            &ca.key.public_key_der().unwrap(),
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), ours);

        // Re-encrypt the plain root key with openssl's PBKDF2 scheme and load it as issuing key.
        let foreign = dir.path().join("openssl.key");
        // openssl reads -passin and -passout from one file as two lines: give a copy.
        let out_pass = dir.path().join("passout");
        std::fs::copy(cfg.key_passphrase_file.as_ref().unwrap(), &out_pass).unwrap();
        let out_arg = format!("file:{}", out_pass.display());
        let out = Command::new("openssl")
            .args([
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-passin",
                &pass_arg,
            ])
            .args(["-passout", &out_arg, "-in"])
            .arg(cfg.dir.join(ISSUING_KEY))
            .arg("-out")
            .arg(&foreign)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&foreign).unwrap();
        let (key, protection) =
            CaKey::from_pem_file(&text, &foreign, Some(&passphrase(&cfg))).unwrap();
        assert_eq!(protection, KeyProtection::Encrypted);
        assert_eq!(
            key.public_key_der().unwrap(),
            ca.key.public_key_der().unwrap()
        );
    }
}
