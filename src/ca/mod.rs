//! The certificate authority: the CA hierarchy on disk, the end-entity profile, CSR checks and
//! the CMS answers of EST. It builds and signs; every policy decision (who may enroll, serial
//! uniqueness, key reuse) belongs to the registration authority that calls it.

use std::path::PathBuf;

use der::Decode;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use x509_cert::name::Name;

use crate::model::{CertificateRecord, Holder, HostName, KeyFingerprint, Serial};
use crate::store::ReservedSerial;

pub mod backup_signature;
pub mod binding;
mod chain;
pub mod crl;
pub mod csr;
mod expiry;
mod files;
pub mod generations;
mod hierarchy;
mod issuing_request;
mod key;
mod key_files;
pub mod keygen;
pub mod lint;
pub mod ocsp;
pub mod passphrase;
pub mod pkcs11;
pub mod pkcs7;
mod profile;
mod public_key;
pub mod rollover;
pub mod root;
pub mod service;

pub use backup_signature::{
    verify_backup_signature, BackupSignatureError, BackupTrust, SignerStanding,
};
pub use csr::{server_keygen_request, validate_csr, CsrError, CsrKey, KeyKind};
pub use expiry::CaExpiry;
pub use generations::{Generations, IssuingCas};
pub use hierarchy::InitReport;
pub use issuing_request::IssuingRequestReport;
pub use key::KeyProtection;
pub use key_files::{KeyFileChange, KeyFileReport};
pub use keygen::GeneratedKey;
pub use passphrase::KeyPassphrase;
pub use profile::{certificate_hosts, RevocationUrls};
pub use service::Unrecorded;

use key::CaKey;
use profile::IssuerContext;

/// Why the CA could not do what was asked. Messages name files and say what to do; they
/// never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file or directory could not be read or written.
    #[error("cannot access {}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The CA directory holds no issuing CA.
    #[error("no CA in {}: it needs issuing-ca.pem and issuing-ca.key; run `estca init` to create a hierarchy or import an existing intermediate", .dir.display())]
    NotInitialized {
        /// The configured CA directory.
        dir: PathBuf,
    },
    /// The CA directory holds some CA files but not both of the issuing CA's: a file was lost
    /// or moved. Nothing is created over it.
    #[error("the CA in {} is incomplete: {} (present: {}); restore the missing file from your backup of the CA directory. estca does not create a new CA over part of an old one: to start afresh, move the directory away", .dir.display(), missing_files(.missing), .present.join(", "))]
    Incomplete {
        /// The configured CA directory.
        dir: PathBuf,
        /// The files of the issuing CA that are missing, e.g. `issuing-ca.key`.
        missing: Vec<&'static str>,
        /// The CA files that are there.
        present: Vec<&'static str>,
    },
    /// `estca init --offline-root` wrote the issuing CA's key and request, and the
    /// certificate the offline root signs for it is not installed yet.
    #[error("the issuing CA is waiting for its certificate: take {} to the offline root, run `estca root sign-issuing` there, and install the certificate with `estca ca install-issuing` (README: Protecting the CA keys, offline root)", .csr.display())]
    AwaitingIssuingCertificate {
        /// The certificate request file.
        csr: PathBuf,
    },
    /// A root directory holds no root.
    #[error("no root CA in {}: it needs root-ca.pem and root-ca.key; run `estca root init --dir {}` to create one", .dir.display(), .dir.display())]
    NoRoot {
        /// The root directory.
        dir: PathBuf,
    },
    /// A certificate request cannot be certified.
    #[error("the certificate request {}: {reason}", .path.display())]
    BadRequest {
        /// The request file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The root did not sign the issuing CA certificate named.
    #[error("this root signed no issuing CA certificate with serial {serial} (its certificates are in {}); check the serial with `openssl x509 -noout -serial -in issuing-ca.pem`", .dir.display())]
    UnknownIssuingCa {
        /// The serial given.
        serial: crate::model::Serial,
        /// Where the root keeps the certificates it signed.
        dir: PathBuf,
    },
    /// The issuing CA certificate is already listed in the ARL.
    #[error("the issuing CA certificate {serial} is already revoked; `estca root sign-arl` refreshes the ARL")]
    AlreadyRevoked {
        /// Its serial.
        serial: crate::model::Serial,
    },
    /// `init` or `import` would overwrite an existing CA file.
    #[error("{} already exists: a CA is already set up there; move the files away or choose another ca.dir", .path.display())]
    AlreadyExists {
        /// The file that exists.
        path: PathBuf,
    },
    /// A key file is accessible to group or others.
    #[error("{} has mode {mode:04o}, so users other than the daemon's can read or change the CA key; run `chmod 600 {}` (and check who may have copied it)", .path.display(), .path.display())]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file holds no usable key.
    #[error("{}: {reason}", .path.display())]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// A key file is encrypted and no passphrase is configured.
    #[error("{} is encrypted and no passphrase is configured: put the passphrase in the file ca.key_passphrase_file names, or in the systemd credential ca.key_passphrase_credential names ($CREDENTIALS_DIRECTORY/<name>, from LoadCredential=)", .path.display())]
    PassphraseMissing {
        /// The key file.
        path: PathBuf,
    },
    /// The configured passphrase does not decrypt a key file.
    #[error("cannot decrypt {} with the passphrase in {}: the passphrase is wrong or the key file is damaged; check the passphrase file, or restore the key file from your backup", .path.display(), .passphrase.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
        /// Where the passphrase came from.
        passphrase: PathBuf,
    },
    /// The passphrase or PIN file or credential is unusable.
    #[error("the CA key passphrase or PIN file {}: {reason}", .path.display())]
    Passphrase {
        /// The passphrase file.
        path: PathBuf,
        /// What is wrong (never the passphrase).
        reason: String,
    },
    /// `estca init` would write unencrypted keys for a production CA.
    #[error("estca init encrypts the CA keys and found no passphrase: write one into the file ca.key_passphrase_file names (mode 0600), or provide the systemd credential ca.key_passphrase_credential names; or give --unencrypted to write plain key files deliberately")]
    NoPassphraseForInit,
    /// The PKCS#11 token or its key is unusable.
    #[error("the CA key in the PKCS#11 token {uri}: {reason}")]
    Token {
        /// The key's URI (without its query).
        uri: String,
        /// What went wrong (never the PIN).
        reason: String,
    },
    /// A CA key in a PKCS#11 token needs a PIN and none is configured.
    #[error("the CA key is in the PKCS#11 token {uri} and no PIN is configured: put the PIN in the file ca.pkcs11_pin_file names, or in the systemd credential ca.pkcs11_pin_credential names ($CREDENTIALS_DIRECTORY/<name>)")]
    PinMissing {
        /// The key's URI (without its query).
        uri: String,
    },
    /// A certificate file holds no usable certificate.
    #[error("{}: {reason}", .path.display())]
    BadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The private key does not match the certificate's public key.
    #[error("the key in {} does not belong to the certificate in {}: give the matching key and certificate", .key.display(), .certificate.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        certificate: PathBuf,
    },
    /// The certificate cannot issue certificates.
    #[error("{} is not a CA certificate ({reason}): give an intermediate CA certificate with basicConstraints CA:TRUE and keyUsage keyCertSign", .path.display())]
    NotCa {
        /// The certificate file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// An issuing CA certificate whose keyUsage leaves out cRLSign: estca signs its CRLs with
    /// the issuing CA's key, and relying parties refuse such CRLs (RFC 5280 6.3.3 (f)).
    #[error("{} holds the CA certificate '{subject}', whose keyUsage lacks cRLSign; estca signs the CRLs with this CA's key and clients would refuse them (RFC 5280 section 6.3.3): have the root certify this key again with keyUsage keyCertSign and cRLSign, and give that certificate", .path.display())]
    NoCrlSign {
        /// The certificate file.
        path: PathBuf,
        /// The certificate's subject.
        subject: String,
    },
    /// The certificate would outlive the issuing CA: issuance has stopped until a new
    /// issuing CA is in place (HTTP 503 to clients).
    #[error("estca cannot issue certificates now: one issued now would expire at {}, after the issuing CA itself ({}); the CA operator must roll over to a new issuing CA (`estca ca rollover`, then reload the daemon) before enrollment works again", crate::model::rfc3339(*.certificate_not_after), crate::model::rfc3339(*.ca_not_after))]
    CaExpiresTooSoon {
        /// The notAfter the certificate would have.
        certificate_not_after: OffsetDateTime,
        /// The issuing CA's notAfter.
        ca_not_after: OffsetDateTime,
    },
    /// `estca ca rollover` found a rollover already under way.
    #[error("a rollover is already under way: the new key and its CSR are in {}; install the certificate the root signed for it with `estca ca rollover --install CERT`, or move the directory away to start afresh", .dir.display())]
    RolloverPending {
        /// The `rollover` directory.
        dir: PathBuf,
    },
    /// A configured name or host name cannot be put into a certificate.
    #[error("{0}")]
    InvalidName(String),
    /// Creating keys or CA certificates failed.
    #[error("creating the CA failed: {0}")]
    Generate(String),
    /// An encoding or signing step failed that should not (a bug, or a corrupted CA file).
    #[error("internal CA error: {0}")]
    Internal(String),
    /// A certificate signed for one of estca's own services could not be recorded, so it is
    /// not used.
    #[error("certificate {serial}, signed for estca's own use, could not be recorded, so it is not used: {source}")]
    Record {
        /// Its serial.
        serial: Serial,
        /// Why the store refused or failed.
        #[source]
        source: crate::store::StoreError,
    },
    /// The pre-issuance check found the certificate about to be signed outside the profile,
    /// so it was not signed: a bug in estca's policy or profile, never the client's doing.
    #[error("refused to sign certificate {serial}: it breaks the certificate profile ({violation}); nothing was issued; report this as a bug in estca")]
    PreIssuanceCheck {
        /// The serial the certificate would have had.
        serial: Serial,
        /// What is wrong.
        violation: String,
    },
}

/// "x is missing" or "x and y are missing".
fn missing_files(names: &[&str]) -> String {
    match names {
        [one] => format!("{one} is missing"),
        many => format!("{} are missing", many.join(" and ")),
    }
}

/// What the CA needs to issue one end-entity certificate; the registration authority has
/// already decided that it may be issued.
#[derive(Debug, Clone)]
pub struct EndEntityRequest<'a> {
    /// The serial, reserved in the store.
    pub serial: &'a ReservedSerial,
    /// Whom the certificate names: an ID (with its contract, USERTYPE and CERTISSUEDNUM,
    /// this certificate included) or an application.
    pub holder: &'a Holder,
    /// Start of validity (truncated to whole seconds); the end is one calendar year later.
    pub not_before: OffsetDateTime,
    /// The validated public key from the CSR.
    pub key: &'a CsrKey,
    /// The hosts an application's certificate also serves TLS for: each goes into the
    /// subjectAltName, and the certificate gets serverAuth besides clientAuth and cmcRA.
    /// Empty for everyone else (an ID's certificate never names a host).
    pub hosts: &'a [HostName],
}

/// An issued certificate and what the store records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCertificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The subject for display, in certificate order, e.g.
    /// `C=JP, O=…, OU=…, OU=USERTYPE - 2, OU=CERTISSUEDNUM - 1, CN=nozawa1 5110`.
    pub subject: String,
    /// notBefore as written.
    pub not_before: OffsetDateTime,
    /// notAfter as written.
    pub not_after: OffsetDateTime,
}

/// The daemon's own TLS server certificate chain and private key, once recorded.
#[derive(Debug)]
pub struct TlsServerCredentials {
    /// The server certificate, the issuing CA, and any intermediates above it.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key (a fresh ECDSA P-256 key, in memory only).
    pub key: PrivateKeyDer<'static>,
}

/// The loaded issuing CA: its key, its certificate and chain, and the profile settings.
#[derive(Debug)]
pub struct CertificateAuthority {
    key: CaKey,
    issuing_der: Vec<u8>,
    issuing_subject: Name,
    issuing_key_id: Vec<u8>,
    issuing_not_after: OffsetDateTime,
    /// Intermediates between the issuing CA and the root, nearest first.
    chain_der: Vec<Vec<u8>>,
    root_der: Option<Vec<u8>>,
    country: String,
    organization: String,
    issuing_name: String,
    common_name_template: String,
    cacerts: Vec<u8>,
    revocation_urls: Option<RevocationUrls>,
    key_protection: KeyProtection,
}

impl CertificateAuthority {
    /// The issuing CA certificate, DER.
    pub fn issuing_certificate_der(&self) -> &[u8] {
        &self.issuing_der
    }

    /// The issuing CA's subject key identifier: what the authority key identifier of every
    /// certificate and CRL it signs holds, and so what tells its generation from the others.
    pub fn key_id(&self) -> &[u8] {
        &self.issuing_key_id
    }

    /// True when `other` has this issuing CA's subject, attribute for attribute: the same
    /// CRL issuer for relying parties (RFC 5280 6.3.3 matches a CRL to a certificate by the
    /// issuer's name, and lets any key of that CA sign it), as a rollover that keeps
    /// `ca.issuing_name` makes the generations. The comparison is of the encoded names, so
    /// two names RFC 5280 7.1 would match but that are spelled differently count as two.
    pub fn same_issuer_name(&self, other: &CertificateAuthority) -> bool {
        self.issuing_subject == other.issuing_subject
    }

    /// The generation ID in the URLs of this issuing CA's CRL and certificate
    /// (`/crl/<id>`, `/ca/<id>.crt`): the first eight bytes of its key identifier in
    /// lowercase hex. Stable for the life of the CA, and different for each new key.
    pub fn generation_id(&self) -> String {
        hex::encode(&self.issuing_key_id[..self.issuing_key_id.len().min(8)])
    }

    /// The root CA certificate, DER, when the CA directory holds `root-ca.pem`.
    pub fn root_certificate_der(&self) -> Option<&[u8]> {
        self.root_der.as_deref()
    }

    /// How the issuing CA's key file protects the key (the daemon warns at start when it is
    /// plain).
    pub fn key_protection(&self) -> KeyProtection {
        self.key_protection
    }

    /// The issuing CA's notAfter.
    pub fn issuing_not_after(&self) -> OffsetDateTime {
        self.issuing_not_after
    }

    /// The `cacerts` answer: DER of a CMS certs-only SignedData (RFC 5652, RFC 7030 4.1.3)
    /// holding the issuing CA, any intermediates above it, and the root when known.
    pub fn cacerts_pkcs7(&self) -> &[u8] {
        &self.cacerts
    }

    fn issuer_context(&self) -> IssuerContext<'_> {
        IssuerContext {
            name: &self.issuing_subject,
            key_id: &self.issuing_key_id,
            not_after: self.issuing_not_after,
            country: &self.country,
            organization: &self.organization,
            issuing_name: &self.issuing_name,
            common_name_template: &self.common_name_template,
            revocation_urls: self.revocation_urls.as_ref(),
        }
    }

    /// Makes issued end-entity certificates carry a CRL distribution point
    /// (`<public_url>/crl/<generation>`) and an authority information access extension (OCSP
    /// `<public_url>/ocsp`, caIssuers `<public_url>/ca/<generation>.crt`), where
    /// `<generation>` is [`CertificateAuthority::generation_id`]. An empty `public_url`
    /// leaves both extensions out.
    pub fn with_public_url(mut self, public_url: &str) -> Result<Self, CaError> {
        self.revocation_urls = if public_url.is_empty() {
            None
        } else {
            let url: crate::model::PublicUrl =
                public_url
                    .parse()
                    .map_err(|e: crate::model::InvalidValue| {
                        CaError::InvalidName(format!("{e}: fix revocation.public_url"))
                    })?;
            Some(RevocationUrls::under(&url, &self.generation_id())?)
        };
        Ok(self)
    }

    /// The revocation URLs issued certificates carry, if any.
    pub fn revocation_urls(&self) -> Option<&RevocationUrls> {
        self.revocation_urls.as_ref()
    }

    /// Intermediates between the issuing CA and the root, nearest first, DER.
    pub fn intermediate_certificates_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// Builds and signs an end-entity certificate with the estca profile: the subject
    /// C, O, OU (issuing CA), OU USERTYPE, OU CERTISSUEDNUM, CN; one year of validity;
    /// basicConstraints, keyUsage, extendedKeyUsage clientAuth, SKI and AKI. Nothing is
    /// taken from the CSR but its key.
    pub fn sign_end_entity(
        &self,
        request: &EndEntityRequest<'_>,
    ) -> Result<SignedCertificate, CaError> {
        let (tbs, subject, not_before, not_after) =
            profile::end_entity_tbs(&self.issuer_context(), &self.key, request)?;
        lint::check_end_entity(
            &tbs,
            &self.issuer_context(),
            request,
            &self.key.signature_algorithm(),
        )
        .map_err(|violation| CaError::PreIssuanceCheck {
            serial: request.serial.serial(),
            violation,
        })?;
        let der = profile::sign_tbs(&self.key, tbs)?;
        Ok(SignedCertificate {
            der,
            subject,
            not_before,
            not_after,
        })
    }

    /// A TLS server certificate for the daemon itself, issued by the issuing CA for a fresh
    /// ECDSA P-256 key: SANs = `hostnames` (IP addresses as iPAddress, others as dNSName),
    /// EKU serverAuth, CN = the first host name (none, and a critical SAN, when it is longer
    /// than RFC 5280's 64-character ub-common-name), valid `validity_days` but never beyond the
    /// issuing CA. The chain (server, issuing CA, any intermediates above it) and the private
    /// key are handed out once the certificate is recorded ([`Unrecorded::record_in`]).
    pub fn issue_tls_server_certificate(
        &self,
        serial: &ReservedSerial,
        hostnames: &[String],
        validity_days: u32,
    ) -> Result<Unrecorded<TlsServerCredentials>, CaError> {
        use rcgen::PublicKeyData;

        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Generate(format!("generating the TLS server key: {e}")))?;
        let spki_der = key_pair.subject_public_key_info();
        let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&spki_der)
            .map_err(|e| CaError::Internal(format!("reading the TLS server public key: {e}")))?;
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .map_err(|e| CaError::Internal(e.to_string()))?;
        if now >= self.issuing_not_after {
            return Err(CaError::CaExpiresTooSoon {
                certificate_not_after: now,
                ca_not_after: self.issuing_not_after,
            });
        }
        // A little slack for clients whose clocks are behind.
        let not_before = now - time::Duration::minutes(5);
        let not_after =
            (now + time::Duration::days(i64::from(validity_days))).min(self.issuing_not_after);
        let serial = serial.serial();
        let tbs = profile::tls_server_tbs(
            &self.issuer_context(),
            &self.key,
            serial.as_bytes(),
            hostnames,
            spki,
            not_before,
            not_after,
        )?;
        let der = profile::sign_tbs(&self.key, tbs)?;
        let mut chain = vec![
            CertificateDer::from(der.clone()),
            CertificateDer::from(self.issuing_der.clone()),
        ];
        chain.extend(self.chain_der.iter().cloned().map(CertificateDer::from));
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let record = CertificateRecord {
            serial,
            holder: Holder::TlsServer {
                names: hostnames.to_vec(),
            },
            subject: profile::tls_server_common_name(hostnames)
                .map_or_else(String::new, |cn| format!("CN={cn}")),
            not_before,
            not_after,
            key: KeyFingerprint::of_spki_der(&spki_der),
            revocation: None,
            der,
        };
        Ok(Unrecorded::new(record, TlsServerCredentials { chain, key }))
    }
}

#[cfg(test)]
pub(crate) mod tests;
