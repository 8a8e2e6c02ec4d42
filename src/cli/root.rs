//! `estca root ...`: the offline root's commands, run on the machine that holds the root key
//! (README "Protecting the CA keys", offline root). They read a root directory (`--dir`) and
//! never talk to a daemon.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::{output, AlgorithmArg};
use crate::ca::root::{ArlReport, IssuingProfile, OfflineRoot};
use crate::ca::KeyPassphrase;
use crate::config::{Config, KeyAlgorithm};
use crate::model::{PublicUrl, RevocationReason, Serial};

/// The default validity of an ARL: a month, refreshed with `estca root sign-arl`.
const DEFAULT_ARL_DAYS: u32 = 30;

/// The root directory and how to unlock its key.
#[derive(Debug, Args)]
pub struct RootDir {
    /// The root directory: root-ca.pem, root-ca.key, root.crl and issued/.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The file holding the root key's passphrase (first line, mode 0600); default:
    /// ca.key_passphrase_file of the configuration, else its systemd credential.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// `estca root ...`.
#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Create the root CA (key, self-signed certificate named by ca.country,
    /// ca.organization and ca.root_name) and its first ARL in a new root directory.
    Init {
        /// Where, and the passphrase.
        #[command(flatten)]
        root: RootDir,
        /// Key algorithm (default from the configuration: p256).
        #[arg(long, value_enum)]
        algorithm: Option<AlgorithmArg>,
        /// Write the root key NOT encrypted (it is encrypted with the passphrase otherwise).
        #[arg(long)]
        unencrypted: bool,
        /// Days until the ARL's nextUpdate.
        #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_ARL_DAYS, value_parser = clap::value_parser!(u32).range(1..=3660))]
        arl_days: u32,
    },
    /// Certify an issuing CA from its certificate request (`estca init --offline-root`
    /// wrote it): for the first issuing CA and every later one.
    SignIssuing {
        /// The request, PEM or DER (issuing-ca.csr).
        csr: PathBuf,
        /// Where, and the passphrase.
        #[command(flatten)]
        root: RootDir,
        /// The certificate file to write (PEM), to install with `estca ca install-issuing`.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The URL where the daemon publishes the ARL, for the CRL distribution point
        /// (default: revocation.public_url of the configuration followed by /root.crl).
        #[arg(long, value_name = "URL")]
        crl_url: Option<String>,
        /// Validity in years (default: ca.issuing_validity_years), never beyond the root.
        #[arg(long, value_name = "YEARS", value_parser = clap::value_parser!(u32).range(1..=100))]
        validity_years: Option<u32>,
    },
    /// Revoke an issuing CA certificate this root signed, and sign a fresh ARL listing it.
    RevokeIssuing {
        /// Its serial, hex (as `openssl x509 -noout -serial` prints it).
        serial: String,
        /// Where, and the passphrase.
        #[command(flatten)]
        root: RootDir,
        /// RFC 5280 reason (any case).
        #[arg(long, value_enum, ignore_case = true, default_value_t = RevocationReason::Unspecified)]
        reason: RevocationReason,
        /// Days until the ARL's nextUpdate.
        #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_ARL_DAYS, value_parser = clap::value_parser!(u32).range(1..=3660))]
        arl_days: u32,
    },
    /// Sign a fresh ARL (same revocations, next number), before the current one's
    /// nextUpdate; copy root.crl to the daemon's ca.root_crl afterwards.
    SignArl {
        /// Where, and the passphrase.
        #[command(flatten)]
        root: RootDir,
        /// Days until the ARL's nextUpdate.
        #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_ARL_DAYS, value_parser = clap::value_parser!(u32).range(1..=3660))]
        arl_days: u32,
    },
}

/// The root key's passphrase: `--passphrase-file`, else the configured one.
fn passphrase(config: &Config, root: &RootDir) -> Result<Option<KeyPassphrase>, String> {
    match &root.passphrase_file {
        Some(file) => KeyPassphrase::read(file).map(Some),
        None => KeyPassphrase::from_config(&config.ca),
    }
    .map_err(|e| e.to_string())
}

fn days(n: u32) -> time::Duration {
    time::Duration::days(i64::from(n))
}

fn now() -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|e| e.to_string())
}

fn arl_json(arl: &ArlReport) -> serde_json::Value {
    let time = crate::model::rfc3339;
    json!({
        "path": arl.path,
        "number": arl.number,
        "this_update": time(arl.this_update),
        "next_update": time(arl.next_update),
        "revoked": arl.revoked.iter().map(|e| json!({
            "serial": e.serial,
            "revoked_at": time(e.revoked_at),
            "reason": e.reason,
        })).collect::<Vec<_>>(),
    })
}

/// Prints the ARL written, as text or JSON.
fn print_arl(arl: &ArlReport, json: bool) -> Result<(), output::OutputError> {
    if json {
        output::line(arl_json(arl))
    } else {
        output::line(arl)
    }
}

/// The ARL URL for the CRL distribution point: `--crl-url`, else under
/// `revocation.public_url`; `None` when neither is set.
fn crl_url(config: &Config, given: Option<String>) -> Result<Option<String>, String> {
    if let Some(url) = given {
        let base: PublicUrl = url.parse().map_err(|e| format!("--crl-url '{url}': {e}"))?;
        return Ok(Some(base.join("")));
    }
    if config.revocation.public_url.is_empty() {
        return Ok(None);
    }
    let base: PublicUrl = config
        .revocation
        .public_url
        .parse()
        .map_err(|e| format!("revocation.public_url: {e}"))?;
    Ok(Some(base.join("/root.crl")))
}

/// A certificate request file, PEM or DER, as DER.
fn read_request(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.starts_with(b"-----BEGIN") {
        let (label, der) = pem_rfc7468::decode_vec(&bytes)
            .map_err(|e| format!("{}: not a PEM certificate request ({e})", path.display()))?;
        if label != "CERTIFICATE REQUEST" {
            return Err(format!(
                "{}: holds a {label}, not a CERTIFICATE REQUEST",
                path.display()
            ));
        }
        Ok(der)
    } else {
        Ok(bytes)
    }
}

/// Runs `estca root ...`.
pub fn run(mut config: Config, command: RootCommand, json: bool) -> Result<(), String> {
    match command {
        RootCommand::Init {
            root,
            algorithm,
            unencrypted,
            arl_days,
        } => {
            if let Some(algorithm) = algorithm {
                config.ca.key_algorithm = match algorithm {
                    AlgorithmArg::P256 => KeyAlgorithm::P256,
                    AlgorithmArg::P384 => KeyAlgorithm::P384,
                };
            }
            let passphrase = if unencrypted {
                eprintln!("estca: --unencrypted: the root key file is written NOT encrypted");
                None
            } else {
                Some(passphrase(&config, &root)?.ok_or_else(|| {
                    "estca root init encrypts the root key and found no passphrase: give \
                     --passphrase-file FILE (mode 0600), or set ca.key_passphrase_file or the \
                     systemd credential; or give --unencrypted to write a plain key file \
                     deliberately"
                        .to_owned()
                })?)
            };
            let report =
                OfflineRoot::init(&root.dir, &config.ca, passphrase.as_ref(), days(arl_days))
                    .map_err(|e| e.to_string())?;
            if json {
                output::line(json!({
                    "certificate": report.certificate,
                    "key": report.key,
                    "key_encrypted": report.key_encrypted,
                    "subject": report.subject,
                    "not_after": crate::model::rfc3339(report.not_after),
                    "sha256_fingerprint": report.fingerprint,
                    "arl": arl_json(&report.arl),
                }))?;
            } else {
                output::line(&report)?;
            }
        }
        RootCommand::SignIssuing {
            csr,
            root,
            out,
            crl_url: given_url,
            validity_years,
        } => {
            let profile = IssuingProfile {
                crl_url: crl_url(&config, given_url)?,
                validity_years: validity_years.unwrap_or(config.ca.issuing_validity_years),
            };
            let request = read_request(&csr)?;
            let passphrase = passphrase(&config, &root)?;
            let offline =
                OfflineRoot::open(&root.dir, passphrase.as_ref()).map_err(|e| e.to_string())?;
            let issued = offline
                .sign_issuing(&request, &csr, &profile, now()?)
                .map_err(|e| e.to_string())?;
            let pem = issued.pem().map_err(|e| e.to_string())?;
            write_certificate(&out, &pem)?;
            let time = crate::model::rfc3339(issued.not_after);
            if json {
                output::line(json!({
                    "certificate": out,
                    "serial": issued.serial,
                    "subject": issued.subject,
                    "not_after": time,
                    "crl_distribution_point": profile.crl_url,
                    "recorded": issued.recorded,
                }))?;
            } else {
                output::line(format_args!(
                    "issuing CA:   {}\n  serial      {}\n  valid until {time}\n  ARL URL     {}\n  certificate {}\n  recorded    {}",
                    issued.subject,
                    issued.serial,
                    profile.crl_url.as_deref().unwrap_or("(none)"),
                    out.display(),
                    issued.recorded.display()
                ))?;
            }
        }
        RootCommand::RevokeIssuing {
            serial,
            root,
            reason,
            arl_days,
        } => {
            let serial: Serial = serial.parse().map_err(|e| format!("{e}"))?;
            let passphrase = passphrase(&config, &root)?;
            let offline =
                OfflineRoot::open(&root.dir, passphrase.as_ref()).map_err(|e| e.to_string())?;
            let arl = offline
                .revoke_issuing(serial, reason, now()?, days(arl_days))
                .map_err(|e| e.to_string())?;
            print_arl(&arl, json)?;
        }
        RootCommand::SignArl { root, arl_days } => {
            let passphrase = passphrase(&config, &root)?;
            let offline =
                OfflineRoot::open(&root.dir, passphrase.as_ref()).map_err(|e| e.to_string())?;
            let arl = offline
                .sign_arl(now()?, days(arl_days))
                .map_err(|e| e.to_string())?;
            print_arl(&arl, json)?;
        }
    }
    Ok(())
}

/// Writes the new certificate to `out`, refusing to replace a file.
fn write_certificate(out: &Path, pem: &str) -> Result<(), String> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    file.write_all(pem.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", out.display()))
}
