//! The CA hierarchy on disk: creating a root and an issuing CA (`init`), taking over an
//! existing intermediate (`import`), and loading the issuing CA at start-up (`load`).
//!
//! The files it reads and writes, and how (`root-ca.pem`, `root-ca.key` (absent after an
//! import), `issuing-ca.pem` (the issuing CA, then any intermediates above it),
//! `issuing-ca.key`; key files created with mode 0600 and refused when group or others can
//! access them) are [`super::files`]; the checks of the certificates it loads,
//! [`super::chain`].

use std::fmt;
use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::chain::{
    certificate_not_after, check_ends_at_root, check_is_issuing_ca, check_key_matches,
    is_self_signed, parse, verify_chain,
};
use super::files::{
    check_key_mode, create_dir, io_error, pem, read_certificates, refuse_existing, write_new,
    ISSUING_CERT, ISSUING_CSR, ISSUING_KEY, ISSUING_KEY_URI, ROOT_CERT, ROOT_KEY,
};
use super::key::{CaKey, KeyProtection};
use super::key_files;
use super::passphrase::KeyPassphrase;
use super::pkcs11::{Pkcs11Uri, TokenKey};
use super::{pkcs7, profile, CaError, CertificateAuthority};
use crate::config::{CaConfig, KeyAlgorithm};
use crate::model::Serial;

/// What `init` or `import` wrote, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The CA directory.
    pub dir: PathBuf,
    /// The issuing CA certificate file.
    pub issuing_certificate: PathBuf,
    /// The issuing CA key file.
    pub issuing_key: PathBuf,
    /// The issuing CA's subject.
    pub issuing_subject: String,
    /// The issuing CA's notAfter.
    pub issuing_not_after: OffsetDateTime,
    /// The root certificate file, when one was written.
    pub root_certificate: Option<PathBuf>,
    /// The root key file, when `init` created one (keep it offline once set up).
    pub root_key: Option<PathBuf>,
    /// True when the key files written are encrypted with the configured passphrase.
    pub keys_encrypted: bool,
    /// True when the issuing key was generated in a PKCS#11 token (`issuing_key` is then its
    /// URI, and no key file was written for it).
    pub issuing_key_in_token: bool,
    /// The root's subject, when known.
    pub root_subject: Option<String>,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "CA directory: {}", self.dir.display())?;
        if let (Some(cert), Some(subject)) = (&self.root_certificate, &self.root_subject) {
            writeln!(f, "root CA:      {subject}")?;
            writeln!(f, "  certificate {}", cert.display())?;
        }
        let protection = if self.keys_encrypted {
            "encrypted with the configured passphrase"
        } else {
            "NOT encrypted"
        };
        if let Some(key) = &self.root_key {
            writeln!(
                f,
                "  key         {} (mode 0600, {protection}; keep it offline)",
                key.display()
            )?;
        }
        writeln!(f, "issuing CA:   {}", self.issuing_subject)?;
        writeln!(
            f,
            "  valid until {}",
            crate::model::rfc3339(self.issuing_not_after)
        )?;
        writeln!(f, "  certificate {}", self.issuing_certificate.display())?;
        if self.issuing_key_in_token {
            write!(
                f,
                "  key         {} (generated in the token, not extractable; set ca.key to this URI with its module-path)",
                self.issuing_key.display()
            )
        } else {
            write!(
                f,
                "  key         {} (mode 0600, {protection})",
                self.issuing_key.display()
            )
        }
    }
}

/// An rcgen key as PKCS#8 PEM, encrypted with `passphrase` when given.
pub(super) fn rcgen_key_pem(
    key: &rcgen::KeyPair,
    path: &Path,
    passphrase: Option<&KeyPassphrase>,
) -> Result<Zeroizing<String>, CaError> {
    let der = Zeroizing::new(key.serialize_der());
    CaKey::from_pkcs8_der(&der, path)?.to_pkcs8_pem(passphrase)
}

/// A new issuing CA's key pair (`init`, `rollover`): generated in memory for a key file, or
/// in a token, of which only the public key is seen.
pub(super) enum IssuingKey {
    /// A key pair generated here.
    File(Box<rcgen::KeyPair>),
    /// The public key of a key pair generated in the token.
    Token(rcgen::SubjectPublicKeyInfo),
}

impl IssuingKey {
    /// The issuing CA certificate of `params` (from [`issuing_params`]) for this key, with
    /// its subject key identifier, signed by `issuer`.
    pub(super) fn certify<S: rcgen::SigningKey>(
        &self,
        mut params: rcgen::CertificateParams,
        issuer: &rcgen::Issuer<'_, S>,
    ) -> Result<rcgen::Certificate, CaError> {
        match self {
            Self::File(key) => {
                params.key_identifier_method =
                    rcgen::KeyIdMethod::PreSpecified(rcgen_key_id(key.as_ref()));
                params.signed_by(key.as_ref(), issuer)
            }
            Self::Token(key) => {
                params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(rcgen_key_id(key));
                params.signed_by(key, issuer)
            }
        }
        .map_err(generate)
    }
}

/// A random serial for a CA certificate, in rcgen's type.
pub(super) fn rcgen_serial() -> rcgen::SerialNumber {
    rcgen::SerialNumber::from_slice(Serial::random().as_bytes())
}

/// C, O, CN with C as PrintableString (RFC 5280 appendix A).
pub(super) fn ca_name(config: &CaConfig, cn: &str) -> Result<rcgen::DistinguishedName, CaError> {
    let country =
        rcgen::string::PrintableString::try_from(config.country.as_str()).map_err(|_| {
            CaError::InvalidName(format!(
                "country '{}' is not a two-letter code: fix ca.country",
                config.country
            ))
        })?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(
        rcgen::DnType::CountryName,
        rcgen::DnValue::PrintableString(country),
    );
    name.push(
        rcgen::DnType::OrganizationName,
        config.organization.as_str(),
    );
    name.push(rcgen::DnType::CommonName, cn);
    Ok(name)
}

/// RFC 5280 4.2.1.2 method (1) for an rcgen public key.
pub(super) fn rcgen_key_id(key: &impl rcgen::PublicKeyData) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, key.der_bytes())
        .as_ref()
        .to_vec()
}

pub(super) fn generate(e: rcgen::Error) -> CaError {
    CaError::Generate(e.to_string())
}

/// rcgen's signature algorithm for a CA key of `algorithm`.
pub(super) fn rcgen_algorithm(algorithm: KeyAlgorithm) -> &'static rcgen::SignatureAlgorithm {
    match algorithm {
        KeyAlgorithm::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    }
}

/// Now, in whole seconds (what certificates and CRLs can say).
pub(super) fn whole_seconds_now() -> Result<OffsetDateTime, CaError> {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|e| CaError::Internal(e.to_string()))
}

/// A new root: its key pair, the parameters it was made from, and its certificate.
pub(super) struct NewRoot {
    pub key: rcgen::KeyPair,
    pub params: rcgen::CertificateParams,
    pub cert: rcgen::Certificate,
}

/// A new self-signed root (RFC 5280: basicConstraints CA critical, keyUsage keyCertSign and
/// cRLSign critical, SKI) named C, O and `config.root_name`, valid from `now` for
/// `root_validity_years`, with a new `config.key_algorithm` key.
pub(super) fn new_root(config: &CaConfig, now: OffsetDateTime) -> Result<NewRoot, CaError> {
    let key =
        rcgen::KeyPair::generate_for(rcgen_algorithm(config.key_algorithm)).map_err(generate)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = ca_name(config, &config.root_name)?;
    params.serial_number = Some(rcgen_serial());
    params.not_before = now;
    params.not_after = profile::add_years(now, config.root_validity_years)?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(rcgen_key_id(&key));
    let cert = params.self_signed(&key).map_err(generate)?;
    Ok(NewRoot { key, params, cert })
}

/// The parameters of an issuing CA certificate (C, O, CN = `ca.issuing_name`; pathLen 0;
/// keyCertSign, cRLSign, digitalSignature; AKI) valid from `now` for
/// `ca.issuing_validity_years` but never beyond `root_not_after`; the caller sets the key
/// identifier of the key it certifies. `init` and `rollover` both use it.
pub(super) fn issuing_params(
    config: &CaConfig,
    now: OffsetDateTime,
    root_not_after: OffsetDateTime,
) -> Result<rcgen::CertificateParams, CaError> {
    let mut issuing = rcgen::CertificateParams::default();
    issuing.distinguished_name = ca_name(config, &config.issuing_name)?;
    issuing.serial_number = Some(rcgen_serial());
    issuing.not_before = now;
    issuing.not_after = profile::add_years(now, config.issuing_validity_years)?.min(root_not_after);
    issuing.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    issuing.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    issuing.use_authority_key_identifier_extension = true;
    Ok(issuing)
}

/// Checks that `dir` holds both files of the issuing CA. When neither exists and no root file
/// either, the CA is not set up ([`CaError::NotInitialized`]); when some CA files exist but
/// not both issuing ones, the error names exactly which are missing, so that a lost key is
/// never reported as something else.
fn check_issuing_files(config: &CaConfig) -> Result<(), CaError> {
    let dir = &config.dir;
    let state = |names: &[&'static str]| -> (Vec<&'static str>, Vec<&'static str>) {
        names.iter().partition(|name| dir.join(name).exists())
    };
    let (_, missing) = state(issuing_files(config));
    if missing.is_empty() {
        return Ok(());
    }
    if dir.join(ISSUING_CSR).exists() {
        return Err(CaError::AwaitingIssuingCertificate {
            csr: dir.join(ISSUING_CSR),
        });
    }
    let (present, _) = state(&[ROOT_CERT, ROOT_KEY, ISSUING_CERT, ISSUING_KEY]);
    if present.is_empty() {
        return Err(CaError::NotInitialized {
            dir: dir.to_path_buf(),
        });
    }
    Err(CaError::Incomplete {
        dir: dir.to_path_buf(),
        missing,
        present,
    })
}

/// The issuing CA's files: its certificate, and its key file unless the key is in a token.
fn issuing_files(config: &CaConfig) -> &'static [&'static str] {
    if config.key.is_empty() {
        &[ISSUING_CERT, ISSUING_KEY]
    } else {
        &[ISSUING_CERT]
    }
}

/// The URI of the token key of the generation in `config.dir`: the one its key record
/// ([`ISSUING_KEY_URI`]) names when there is one, else `config.key` (the first key). The
/// record must name the token `ca.key` names: the PIN is that token's.
pub(super) fn token_uri(config: &CaConfig) -> Result<Pkcs11Uri, CaError> {
    let configured: Pkcs11Uri = config.key.parse()?;
    let record_path = config.dir.join(ISSUING_KEY_URI);
    let text = match std::fs::read_to_string(&record_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(configured),
        Err(source) => {
            return Err(CaError::Io {
                path: record_path,
                source,
            })
        }
    };
    let recorded = Pkcs11Uri::from_record(&text, &configured.module)?;
    if recorded.token != configured.token {
        return Err(CaError::Token {
            uri: recorded.to_string(),
            reason: format!(
                "{} names a key in the token '{}' but ca.key names the token '{}': a rollover keeps the issuing keys in the token of ca.key, so set ca.key back to it",
                record_path.display(),
                recorded.token,
                configured.token
            ),
        });
    }
    Ok(recorded)
}

/// Opens the issuing CA's key in the PKCS#11 token ([`token_uri`]), with the configured
/// PIN.
pub(super) fn open_token(config: &CaConfig) -> Result<TokenKey, CaError> {
    let uri = token_uri(config)?;
    let pin = KeyPassphrase::pin_from_config(config)?.ok_or_else(|| CaError::PinMissing {
        uri: uri.to_string(),
    })?;
    TokenKey::open(&uri, &pin)
}

impl CertificateAuthority {
    /// True when the CA directory holds `issuing-ca.pem` and, unless `ca.key` names a key in
    /// a token, `issuing-ca.key`.
    pub fn exists(config: &CaConfig) -> bool {
        issuing_files(config)
            .iter()
            .all(|name| config.dir.join(name).exists())
    }

    /// Loads the CA that a daemon serves: as [`CertificateAuthority::load`] does, and refusing
    /// a chain that stops short of its root, which EST's cacerts must carry (RFC 7030 section
    /// 4.1.3; a retired generation, loaded with `load`, needs none). First, when
    /// `config.create_if_missing` is set and the directory holds none of the CA files, creates
    /// a development hierarchy with [`CertificateAuthority::init`] and returns its report too.
    /// A directory holding some CA files but not the issuing CA's two is never written to:
    /// the error names the missing files ([`CaError::Incomplete`]).
    pub fn load_or_create(
        config: &CaConfig,
        common_name_template: &str,
    ) -> Result<(Self, Option<InitReport>), CaError> {
        let created = match check_issuing_files(config) {
            Err(CaError::NotInitialized { .. }) if config.create_if_missing => Some(Self::init(
                config,
                KeyPassphrase::from_config(config)?.as_ref(),
            )?),
            Err(e) => return Err(e),
            Ok(()) => None,
        };
        let ca = Self::load(config, common_name_template)?;
        let mut chain = vec![ca.issuing_der.as_slice()];
        chain.extend(ca.chain_der.iter().map(Vec::as_slice));
        chain.extend(ca.root_der.as_deref());
        check_ends_at_root(&chain, &config.dir.join(ISSUING_CERT))?;
        Ok((ca, created))
    }

    /// Creates a root and an issuing CA in `config.dir` (created if missing), refusing if any
    /// of their files exists. Keys use `config.key_algorithm`; names are C, O and CN from the
    /// configuration. The root is valid `root_validity_years`; the issuing CA (pathLen 0)
    /// `issuing_validity_years` but never beyond the root. Both key files are encrypted with
    /// `passphrase` when given, else plain.
    pub fn init(
        config: &CaConfig,
        passphrase: Option<&KeyPassphrase>,
    ) -> Result<InitReport, CaError> {
        Self::create(config, passphrase, None)
    }

    /// Creates a root as [`CertificateAuthority::init`] does (its key file encrypted with
    /// `passphrase` when given) and an issuing CA whose key pair is generated inside the
    /// PKCS#11 token `uri` names (sensitive, not extractable), logging in with the PIN of
    /// `ca.pkcs11_pin_file` or its credential. No issuing key file is written: set `ca.key`
    /// to `uri` for the daemon to use the token.
    pub fn init_in_token(
        config: &CaConfig,
        passphrase: Option<&KeyPassphrase>,
        uri: &Pkcs11Uri,
    ) -> Result<InitReport, CaError> {
        Self::create(config, passphrase, Some(uri))
    }

    fn create(
        config: &CaConfig,
        passphrase: Option<&KeyPassphrase>,
        token: Option<&Pkcs11Uri>,
    ) -> Result<InitReport, CaError> {
        let dir = &config.dir;
        let root_cert_path = dir.join(ROOT_CERT);
        let root_key_path = dir.join(ROOT_KEY);
        let issuing_cert_path = dir.join(ISSUING_CERT);
        let issuing_key_path = dir.join(ISSUING_KEY);
        refuse_existing(&[
            &root_cert_path,
            &root_key_path,
            &issuing_cert_path,
            &issuing_key_path,
        ])?;
        create_dir(dir)?;

        let alg = rcgen_algorithm(config.key_algorithm);
        let now = whole_seconds_now()?;
        let NewRoot {
            key: root_key,
            params: root,
            cert: root_cert,
        } = new_root(config, now)?;

        let issuing_key = match token {
            None => IssuingKey::File(Box::new(
                rcgen::KeyPair::generate_for(alg).map_err(generate)?,
            )),
            Some(uri) => {
                let pin =
                    KeyPassphrase::pin_from_config(config)?.ok_or_else(|| CaError::PinMissing {
                        uri: uri.to_string(),
                    })?;
                let key = TokenKey::generate(uri, &pin, config.key_algorithm)?;
                IssuingKey::Token(
                    rcgen::SubjectPublicKeyInfo::from_der(key.public_key_der())
                        .map_err(generate)?,
                )
            }
        };
        let issuer = rcgen::Issuer::from_params(&root, &root_key);
        let issuing = issuing_params(config, now, root.not_after)?;
        let issuing_not_after = issuing.not_after;
        let issuing_cert = issuing_key.certify(issuing, &issuer)?;

        // Keys first: `exists` looks for the issuing certificate, written last.
        let root_key_pem = rcgen_key_pem(&root_key, &root_key_path, passphrase)?;
        write_new(&root_key_path, root_key_pem.as_bytes(), 0o600)?;
        write_new(&root_cert_path, root_cert.pem().as_bytes(), 0o644)?;
        if let IssuingKey::File(key) = &issuing_key {
            let issuing_key_pem = rcgen_key_pem(key, &issuing_key_path, passphrase)?;
            write_new(&issuing_key_path, issuing_key_pem.as_bytes(), 0o600)?;
        }
        write_new(&issuing_cert_path, issuing_cert.pem().as_bytes(), 0o644)?;

        let root_parsed = parse(root_cert.der(), &root_cert_path)?;
        let issuing_parsed = parse(issuing_cert.der(), &issuing_cert_path)?;
        Ok(InitReport {
            dir: dir.clone(),
            issuing_certificate: issuing_cert_path,
            issuing_key: match token {
                None => issuing_key_path,
                Some(uri) => PathBuf::from(uri.to_string()),
            },
            issuing_subject: issuing_parsed.subject().to_string(),
            issuing_not_after,
            root_certificate: Some(root_cert_path),
            root_key: Some(root_key_path),
            keys_encrypted: passphrase.is_some(),
            issuing_key_in_token: token.is_some(),
            root_subject: Some(root_parsed.subject().to_string()),
        })
    }

    /// Takes over an existing intermediate. `cert_pem` holds the intermediate, optionally
    /// followed by its chain (root last); `key_pem` its P-256 or P-384 key in PKCS#8 or SEC1
    /// PEM. Checks that the key matches, that the certificate is a CA (CA:TRUE, keyCertSign)
    /// whose keyUsage has cRLSign too (its key signs the CRLs),
    /// that the chain is in order and that the intermediate has not expired; then writes
    /// `issuing-ca.pem`, `issuing-ca.key` (0600; encrypted with `passphrase` when given) and
    /// `root-ca.pem`: the chain must end at its self-signed root, which EST's cacerts carries
    /// (RFC 7030 section 4.1.3). The key given may be
    /// encrypted PKCS#8 too, with the same passphrase.
    pub fn import(
        config: &CaConfig,
        cert_pem: &Path,
        key_pem: &Path,
        passphrase: Option<&KeyPassphrase>,
    ) -> Result<InitReport, CaError> {
        let dir = &config.dir;
        let root_cert_path = dir.join(ROOT_CERT);
        let issuing_cert_path = dir.join(ISSUING_CERT);
        let issuing_key_path = dir.join(ISSUING_KEY);

        let ders = read_certificates(cert_pem)?;
        let key = {
            let text = Zeroizing::new(std::fs::read_to_string(key_pem).map_err(io_error(key_pem))?);
            CaKey::from_pem_file(&text, key_pem, passphrase)?.0
        };
        let refs: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
        let issuing = parse(refs[0], cert_pem)?;
        check_key_matches(&key, &issuing, key_pem, cert_pem)?;
        check_is_issuing_ca(&issuing, cert_pem)?;
        verify_chain(&refs, cert_pem)?;
        check_ends_at_root(&refs, cert_pem)?;
        let not_after = certificate_not_after(refs[0], cert_pem)?;
        if not_after <= OffsetDateTime::now_utc() {
            return Err(CaError::BadCertificate {
                path: cert_pem.to_path_buf(),
                reason: format!(
                    "the intermediate expired at {}; import a current one",
                    crate::model::rfc3339(not_after)
                ),
            });
        }
        let (chain, root): (&[&[u8]], Option<&[u8]>) = match refs.split_last() {
            Some((last, rest)) if refs.len() > 1 && is_self_signed(&parse(last, cert_pem)?) => {
                (rest, Some(*last))
            }
            _ => (&refs[..], None),
        };
        if is_self_signed(&issuing) {
            return Err(CaError::NotCa {
                path: cert_pem.to_path_buf(),
                reason: "it is a self-signed root; import an intermediate signed by it".into(),
            });
        }

        let mut to_check: Vec<&Path> = vec![&issuing_cert_path, &issuing_key_path];
        if root.is_some() {
            to_check.push(&root_cert_path);
        }
        refuse_existing(&to_check)?;
        create_dir(dir)?;

        write_new(
            &issuing_key_path,
            key.to_pkcs8_pem(passphrase)?.as_bytes(),
            0o600,
        )?;
        let mut root_subject = None;
        if let Some(root) = root {
            write_new(&root_cert_path, pem(root)?.as_bytes(), 0o644)?;
            root_subject = Some(parse(root, cert_pem)?.subject().to_string());
        }
        let mut chain_pem = String::new();
        for der in chain {
            chain_pem.push_str(&pem(der)?);
        }
        write_new(&issuing_cert_path, chain_pem.as_bytes(), 0o644)?;

        Ok(InitReport {
            dir: dir.clone(),
            issuing_certificate: issuing_cert_path,
            issuing_key: issuing_key_path,
            issuing_subject: issuing.subject().to_string(),
            issuing_not_after: not_after,
            root_certificate: root.map(|_| root_cert_path),
            root_key: None,
            keys_encrypted: passphrase.is_some(),
            issuing_key_in_token: false,
            root_subject,
        })
    }

    /// Loads the issuing CA from `config.dir`. Names the file that is missing
    /// ([`CaError::NotInitialized`], [`CaError::Incomplete`]) or unreadable
    /// ([`CaError::Io`]). Refuses key files that group or others can access, a key that does not match the certificate, a certificate that is not a CA and
    /// a chain out of order. `root-ca.pem` is optional here (a retired generation has none). `common_name_template` contains
    /// `{id}` and maybe `{contract}`.
    pub fn load(config: &CaConfig, common_name_template: &str) -> Result<Self, CaError> {
        let dir = &config.dir;
        let cert_path = dir.join(ISSUING_CERT);
        let key_path = dir.join(ISSUING_KEY);
        let root_path = dir.join(ROOT_CERT);
        let root_key_path = dir.join(ROOT_KEY);
        check_issuing_files(config)?;
        if !common_name_template.contains("{id}") {
            return Err(CaError::InvalidName(
                "certificate.common_name_template must contain {id}".into(),
            ));
        }
        if root_key_path.exists() {
            check_key_mode(&root_key_path)?;
        }
        let (key, key_protection, key_path) = if config.key.is_empty() {
            let passphrase = KeyPassphrase::from_config(config)?;
            let (key, protection) = key_files::read(&key_path, passphrase.as_ref())?;
            (key, protection, key_path)
        } else {
            let token = open_token(config)?;
            let shown = PathBuf::from(token.uri().to_string());
            (CaKey::Token(Box::new(token)), KeyProtection::Token, shown)
        };

        let ders = read_certificates(&cert_path)?;
        let root_der = if root_path.exists() {
            let mut roots = read_certificates(&root_path)?;
            if roots.len() != 1 {
                return Err(CaError::BadCertificate {
                    path: root_path,
                    reason: "must hold exactly one certificate, the root".into(),
                });
            }
            roots.pop()
        } else {
            None
        };
        let mut all: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
        if let Some(root) = &root_der {
            all.push(root);
        }
        verify_chain(&all, &cert_path)?;

        let parsed = parse(&ders[0], &cert_path)?;
        check_key_matches(&key, &parsed, &key_path, &cert_path)?;
        check_is_issuing_ca(&parsed, &cert_path)?;
        let cert = Certificate::from_der(&ders[0]).map_err(|e| CaError::BadCertificate {
            path: cert_path.clone(),
            reason: format!("not a DER certificate ({e})"),
        })?;
        let subject = cert.tbs_certificate.subject.clone();
        if subject.to_der().ok().as_deref() != Some(parsed.subject().as_raw()) {
            return Err(CaError::BadCertificate {
                path: cert_path,
                reason: "its subject name is not in canonical DER, so issued certificates \
                         could not name it exactly"
                    .into(),
            });
        }
        let key_id = match parsed
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                    Some(id.0.to_vec())
                }
                _ => None,
            }) {
            Some(id) => id,
            None => profile::key_identifier(&cert.tbs_certificate.subject_public_key_info),
        };
        let not_after = profile::from_x509_time(&cert.tbs_certificate.validity.not_after)?;
        let cacerts = pkcs7::certs_only(&all)?;
        let mut ders = ders;
        let issuing_der = ders.remove(0);
        Ok(CertificateAuthority {
            key,
            issuing_der,
            issuing_subject: subject,
            issuing_key_id: key_id,
            issuing_not_after: not_after,
            chain_der: ders,
            root_der,
            country: config.country.clone(),
            organization: config.organization.clone(),
            issuing_name: config.issuing_name.clone(),
            common_name_template: common_name_template.to_owned(),
            cacerts,
            revocation_urls: None,
            key_protection,
        })
    }
}
