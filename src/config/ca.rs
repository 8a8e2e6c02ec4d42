//! The CA hierarchy (`[ca]`) and the end-entity certificate profile (`[certificate]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check_credential_name, ConfigError};

/// The key algorithm of CA keys that `estca init` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// ECDSA with NIST P-256 and SHA-256.
    P256,
    /// ECDSA with NIST P-384 and SHA-384.
    P384,
}

/// The CA hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// Directory holding `root-ca.pem`, `root-ca.key`, `issuing-ca.pem`, `issuing-ca.key`.
    pub dir: PathBuf,
    /// Create a development hierarchy at start-up when none exists.
    pub create_if_missing: bool,
    /// Key algorithm for `estca init`.
    pub key_algorithm: KeyAlgorithm,
    /// C of the CA names and of issued certificates.
    pub country: String,
    /// O of the CA names and of issued certificates.
    pub organization: String,
    /// CN of the root CA.
    pub root_name: String,
    /// CN of the issuing CA, and the first OU of issued certificates.
    pub issuing_name: String,
    /// Validity of a root created by `estca init`.
    pub root_validity_years: u32,
    /// Validity of an issuing CA created by `estca init`.
    pub issuing_validity_years: u32,
    /// Validity of the TLS server certificate the CA issues itself at start-up.
    pub server_cert_validity_days: u32,
    /// Days before the issuing CA's notAfter from which the daemon warns (at start and
    /// reload). Enrollment stops one year before that notAfter, so this must exceed a year.
    pub expiry_warning_days: u32,
    /// A file holding the passphrase of the encrypted CA key files (its first line); unset:
    /// the systemd credential `key_passphrase_credential`. Never the passphrase itself, so
    /// that it shows in no configuration dump, process listing or log.
    #[serde(default)]
    pub key_passphrase_file: Option<PathBuf>,
    /// The name of the systemd credential holding that passphrase
    /// (`$CREDENTIALS_DIRECTORY/<name>`, from `LoadCredential=` or `LoadCredentialEncrypted=`),
    /// read when `key_passphrase_file` is unset; neither present: the key files must be
    /// unencrypted.
    pub key_passphrase_credential: String,
    /// Where the issuing CA's key is: empty for the file `issuing-ca.key`, or an RFC 7512
    /// PKCS#11 URI (`pkcs11:token=LABEL;object=LABEL?module-path=/path/to/module.so`) for a
    /// key in an HSM, which then signs everything the issuing CA signs.
    pub key: String,
    /// A file holding the PKCS#11 user PIN (its first line); unset: the systemd credential
    /// `pkcs11_pin_credential`.
    #[serde(default)]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// The name of the systemd credential holding the PKCS#11 PIN, read when
    /// `pkcs11_pin_file` is unset.
    pub pkcs11_pin_credential: String,
    /// The offline root's ARL (`estca root sign-arl` writes it as `root.crl`), served at
    /// `/root.crl` and re-read when it changes; unset: `root.crl` in `dir`, if present.
    #[serde(default)]
    pub root_crl: Option<PathBuf>,
    /// Days before the ARL's nextUpdate from which the daemon warns (at start, on reload and
    /// hourly); once it has passed, it logs an error.
    pub root_crl_warning_days: u32,
}

impl CaConfig {
    /// Checks the names, validities, warning lead times and where the keys and their secrets are.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.country.len() != 2 || !self.country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::invalid(
                "ca.country",
                "must be a two-letter ISO 3166 code in capitals, e.g. \"JP\"",
            ));
        }
        for (key, v) in [
            ("ca.organization", &self.organization),
            ("ca.root_name", &self.root_name),
            ("ca.issuing_name", &self.issuing_name),
        ] {
            crate::model::human_text(v, 64, "the name")
                .map_err(|e| ConfigError::invalid(key, e.0))?;
        }
        if self.root_validity_years == 0 || self.issuing_validity_years == 0 {
            return Err(ConfigError::invalid(
                "ca.root_validity_years",
                "CA validity must be at least one year",
            ));
        }
        if !(1..=397).contains(&self.server_cert_validity_days) {
            return Err(ConfigError::invalid(
                "ca.server_cert_validity_days",
                "must be between 1 and 397 days",
            ));
        }
        if !(367..=3660).contains(&self.expiry_warning_days) {
            return Err(ConfigError::invalid(
                "ca.expiry_warning_days",
                "must be between 367 and 3660 days: enrollment stops up to 366 days before the \
                 issuing CA expires (a one-year certificate no longer fits), so a shorter lead \
                 time would warn only after it stopped",
            ));
        }
        if !(1..=365).contains(&self.root_crl_warning_days) {
            return Err(ConfigError::invalid(
                "ca.root_crl_warning_days",
                "must be between 1 and 365 days before the ARL's nextUpdate",
            ));
        }
        if self
            .root_crl
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::invalid(
                "ca.root_crl",
                "must name the ARL file, or be left out for root.crl in ca.dir",
            ));
        }
        check_credential_name("ca.pkcs11_pin_credential", &self.pkcs11_pin_credential)?;
        if !self.key.is_empty() {
            if !self.key.starts_with("pkcs11:") {
                return Err(ConfigError::invalid(
                    "ca.key",
                    "must be empty (the key file issuing-ca.key) or a PKCS#11 URI starting with pkcs11:",
                ));
            }
            // The URI the CA will open, refused here as there (a PIN in it among others),
            // before anything starts; the refusal never shows the PIN.
            crate::model::Pkcs11Uri::parse(&self.key, None)
                .map_err(|e| ConfigError::invalid("ca.key", e.0))?;
        }
        check_credential_name(
            "ca.key_passphrase_credential",
            &self.key_passphrase_credential,
        )?;
        Ok(())
    }

    /// The ARL file the daemon serves: `root_crl`, else `root.crl` in `dir`.
    pub fn root_crl_path(&self) -> PathBuf {
        self.root_crl
            .clone()
            .unwrap_or_else(|| self.dir.join("root.crl"))
    }
}

/// The end-entity certificate profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// CN template; `{id}` and `{contract}` are replaced.
    pub common_name_template: String,
}

impl CertificateConfig {
    /// Checks that the CN template names the ID once, the contract code at most once, and
    /// always fits in 64 characters; the refusal names the rule the template breaks.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        const KEY: &str = "certificate.common_name_template";
        let template = &self.common_name_template;
        match template.matches("{id}").count() {
            0 => {
                return Err(ConfigError::invalid(
                    KEY,
                    "must contain {id} so that the certificate names its ID",
                ))
            }
            1 => {}
            n => {
                return Err(ConfigError::invalid(
                    KEY,
                    format!("{{id}} appears {n} times; it must appear exactly once"),
                ))
            }
        }
        let contracts = template.matches("{contract}").count();
        if contracts > 1 {
            return Err(ConfigError::invalid(
                KEY,
                format!("{{contract}} appears {contracts} times; it may appear at most once"),
            ));
        }
        let longest_cn = template.chars().count() - "{id}".len()
            + crate::model::AccountId::MAX_LEN
            + if contracts == 1 {
                crate::model::ContractCode::MAX_LEN - "{contract}".len()
            } else {
                0
            };
        if longest_cn > 64 {
            return Err(ConfigError::invalid(
                KEY,
                format!(
                    "must stay within 64 characters with the longest ID ({}) and code ({}); this one can reach {longest_cn}",
                    crate::model::AccountId::MAX_LEN,
                    crate::model::ContractCode::MAX_LEN
                ),
            ));
        }
        Ok(())
    }
}
