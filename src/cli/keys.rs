//! `estca ca encrypt-key`, `estca ca decrypt-key` and `estca ca rollover`, run locally on
//! the CA directory, and the choice of passphrase for `estca init` and the rollover's key.

use std::path::Path;

use clap::Subcommand;
use serde_json::json;

use crate::ca::rollover::RolloverReport;
use crate::ca::{CertificateAuthority, KeyFileReport, KeyPassphrase};
use crate::config::{CaConfig, Config};

use super::output;

/// `estca ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Encrypt the CA key files (root-ca.key when present, issuing-ca.key) with the passphrase
    /// of ca.key_passphrase_file or the systemd credential (PKCS#8, scrypt and AES-256-CBC).
    /// Takes effect at the daemon's next start.
    EncryptKey,
    /// Decrypt the CA key files into plain PKCS#8 PEM (mode 0600), e.g. to change the
    /// passphrase (decrypt, put the new passphrase in place, encrypt) or to move the keys
    /// into other software.
    DecryptKey,
    /// Install the issuing CA certificate the offline root signed for issuing-ca.csr
    /// (`estca init --offline-root`), once it is checked against the issuing key and the
    /// root; writes issuing-ca.pem and root-ca.pem.
    InstallIssuing {
        /// The certificate `estca root sign-issuing` wrote (PEM).
        cert: std::path::PathBuf,
        /// The offline root's certificate (root-ca.pem of the root directory); compare its
        /// SHA-256 fingerprint with the one `estca root init` printed.
        #[arg(long, value_name = "FILE")]
        root: std::path::PathBuf,
    },
    /// Roll over to a new issuing CA: generate its key (encrypted with the configured
    /// passphrase; in the token when ca.key names a PKCS#11 key, recorded in
    /// <ca.dir>/issuing-ca.key-uri) and CSR in <ca.dir>/rollover/; when the root key is in the CA directory,
    /// have the root certify it and install it at once. Otherwise give the CSR to the offline
    /// root and run `estca ca rollover --install CERT`. The running daemon switches at its
    /// next reload (SIGHUP); the previous issuing CA keeps signing the CRL and OCSP answers of
    /// the certificates it issued.
    Rollover {
        /// Install CERT, the new issuing CA's certificate the offline root signed for the
        /// CSR (PEM; intermediates and the root may follow it).
        #[arg(long, value_name = "CERT")]
        install: Option<std::path::PathBuf>,
        /// Write the new key file NOT encrypted, even without a passphrase configured in
        /// production.
        #[arg(long)]
        unencrypted: bool,
    },
}

/// Runs `estca ca ...`.
pub fn run(config: &Config, command: CaCommand, json: bool) -> Result<(), String> {
    let report: KeyFileReport = match command {
        CaCommand::InstallIssuing { cert, root } => {
            return install_issuing(config, &cert, &root, json)
        }
        CaCommand::Rollover {
            install,
            unencrypted,
        } => return rollover(config, install.as_deref(), unencrypted, json),
        CaCommand::EncryptKey => {
            CertificateAuthority::encrypt_key_files(&config.ca, &configured_passphrase(config)?)
        }
        CaCommand::DecryptKey => {
            CertificateAuthority::decrypt_key_files(&config.ca, &configured_passphrase(config)?)
        }
    }
    .map_err(|e| e.to_string())?;
    if json {
        output::line(json!({ "files": report.files }))?;
    } else {
        output::line(&report)?;
    }
    Ok(())
}

/// The configured passphrase, which `encrypt-key` and `decrypt-key` need.
fn configured_passphrase(config: &Config) -> Result<KeyPassphrase, String> {
    KeyPassphrase::from_config(&config.ca)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            "no passphrase is configured: write it into the file ca.key_passphrase_file names \
             (mode 0600), or provide the systemd credential ca.key_passphrase_credential names \
             ($CREDENTIALS_DIRECTORY/<name>)"
                .to_owned()
        })
}

/// `estca ca install-issuing CERT --root ROOT`.
fn install_issuing(config: &Config, cert: &Path, root: &Path, json: bool) -> Result<(), String> {
    let report =
        CertificateAuthority::install_issuing(&config.ca, cert, root).map_err(|e| e.to_string())?;
    if json {
        output::line(json!({
            "issuing_certificate": report.issuing_certificate,
            "issuing_subject": report.issuing_subject,
            "issuing_not_after": crate::model::rfc3339(report.issuing_not_after),
            "root_certificate": report.root_certificate,
            "root_subject": report.root_subject,
        }))?;
    } else {
        output::line(&report)?;
    }
    Ok(())
}

/// `estca ca rollover [--install CERT]`.
fn rollover(
    config: &Config,
    install: Option<&std::path::Path>,
    unencrypted: bool,
    json: bool,
) -> Result<(), String> {
    let report = match install {
        Some(cert) => {
            // Installing reads the new key with the configured passphrase, if any.
            let passphrase = KeyPassphrase::from_config(&config.ca).map_err(|e| e.to_string())?;
            CertificateAuthority::install_rollover(&config.ca, cert, passphrase.as_ref())
        }
        None if !config.ca.key.is_empty() => {
            // The new key is generated in the token; a passphrase only opens root-ca.key.
            let passphrase = KeyPassphrase::from_config(&config.ca).map_err(|e| e.to_string())?;
            CertificateAuthority::rollover(&config.ca, passphrase.as_ref())
        }
        None => {
            let passphrase = passphrase_for_init(&config.ca, unencrypted)?;
            CertificateAuthority::rollover(&config.ca, passphrase.as_ref())
        }
    }
    .map_err(|e| e.to_string())?;
    if json {
        let value = match &report {
            RolloverReport::Installed {
                subject,
                not_after,
                generation,
                retired,
            } => json!({
                "installed": true,
                "subject": subject,
                "not_after": crate::model::rfc3339(*not_after),
                "generation": generation,
                "retired": retired,
            }),
            RolloverReport::CsrWritten { csr, key } => json!({
                "installed": false,
                "csr": csr,
                "key": key,
            }),
        };
        output::line(&value)?;
    } else {
        output::line(&report)?;
    }
    Ok(())
}

/// The passphrase `estca init` encrypts the key files with: the configured one unless
/// `unencrypted`. Without one, a production configuration (`ca.create_if_missing = false`)
/// is refused unless `unencrypted` says plain keys are meant; a development one writes plain
/// keys and says so.
pub fn passphrase_for_init(
    config: &CaConfig,
    unencrypted: bool,
) -> Result<Option<KeyPassphrase>, String> {
    if unencrypted {
        eprintln!("estca: --unencrypted: the CA key files are written NOT encrypted");
        return Ok(None);
    }
    match KeyPassphrase::from_config(config).map_err(|e| e.to_string())? {
        Some(passphrase) => Ok(Some(passphrase)),
        None if config.create_if_missing => {
            eprintln!(
                "estca: no CA key passphrase is configured, so this development CA's key files \
                 are NOT encrypted (production configurations refuse this; see README \
                 \"Protecting the CA keys\")"
            );
            Ok(None)
        }
        None => Err(crate::ca::CaError::NoPassphraseForInit.to_string()),
    }
}
