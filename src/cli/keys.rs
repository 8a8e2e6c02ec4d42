//! `estca ca encrypt-key` and `estca ca decrypt-key`, run locally on the CA directory, and
//! the choice of passphrase for `estca init`.

use clap::Subcommand;
use serde_json::json;

use crate::ca::{CertificateAuthority, KeyFileReport, KeyPassphrase};
use crate::config::{CaConfig, Config};

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
}

/// Runs `estca ca ...`.
pub fn run(config: &Config, command: CaCommand, json: bool) -> Result<(), String> {
    let passphrase = KeyPassphrase::from_config(&config.ca)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            "no passphrase is configured: write it into the file ca.key_passphrase_file names \
             (mode 0600), or provide the systemd credential ca.key_passphrase_credential names \
             ($CREDENTIALS_DIRECTORY/<name>)"
                .to_owned()
        })?;
    let report: KeyFileReport = match command {
        CaCommand::EncryptKey => CertificateAuthority::encrypt_key_files(&config.ca, &passphrase),
        CaCommand::DecryptKey => CertificateAuthority::decrypt_key_files(&config.ca, &passphrase),
    }
    .map_err(|e| e.to_string())?;
    if json {
        println!("{}", json!({ "files": report.files }));
    } else {
        println!("{report}");
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
