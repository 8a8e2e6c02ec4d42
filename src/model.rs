//! Domain types shared by every layer: contracts, accounts, certificate records and history
//! entries, and the small value types (IDs, serials, revocation reasons) that validate
//! themselves on construction so that no layer has to re-check them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why a value given by a person or a client was refused; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// A name for people (a contract's or an ID's 利用者名), checked: trimmed, 1 to `max_chars`
/// characters, and none that hides or disguises text where it is shown (history, the
/// operator's terminal, an administrator's screen): control characters (Unicode category Cc),
/// format characters (Cf: bidirectional overrides such as U+202E, zero-width spaces such as
/// U+200B, U+FEFF), and line and paragraph separators (Zl U+2028, Zp U+2029). `what` names
/// the field in the refusal.
pub fn human_text(text: &str, max_chars: usize, what: &str) -> Result<String, InvalidValue> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let text = text.trim();
    let hidden = text.chars().find(|c| {
        matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
    });
    if text.is_empty() || text.chars().count() > max_chars {
        return Err(InvalidValue(format!(
            "{what} is 1 to {max_chars} characters"
        )));
    }
    if let Some(c) = hidden {
        return Err(InvalidValue(format!(
            "{what} contains U+{:04X}, an invisible or layout-changing character (control, format or separator); type the name without it",
            u32::from(c)
        )));
    }
    Ok(text.to_owned())
}

/// The login ID of an account (the seed's お客様ID), e.g. `nozawa1`.
///
/// 1 to 32 characters from `A-Z a-z 0-9 . _ @ -`, so that it can stand in a certificate's
/// common name, a URL path and a log line without escaping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Longest ID accepted.
    pub const MAX_LEN: usize = 32;

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An unguessable ID for estca to give when the administrator names none: 80 bits from
    /// the operating system's CSPRNG as 16 characters of Crockford's base32 (lower case, no
    /// `i l o u`), in groups of four, e.g. `k7qm-3x9p-2hvd-8rtc`: easy to read out and type,
    /// and useless to guess.
    pub fn generate() -> Self {
        use rand_core::{OsRng, RngCore};
        const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        let mut id = String::with_capacity(19);
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                id.push('-');
            }
            id.push(char::from(ALPHABET[usize::from(b & 31)]));
        }
        Self(id)
    }

    /// The ID with its letters in lower case: two IDs with the same folded form may not both
    /// exist (`UA1` and `uA1` would be told apart by nobody who reads them).
    pub fn case_folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl FromStr for AccountId {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.chars().all(ok_char) {
            return Err(InvalidValue(format!(
                "an ID is 1 to {} characters from A-Z, a-z, 0-9, '.', '_', '@' and '-'",
                Self::MAX_LEN
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for AccountId {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> Self {
        id.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The short code of a contract (one corporate customer), e.g. `5110`.
///
/// 1 to 16 characters from `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContractCode(String);

impl ContractCode {
    /// Longest code accepted.
    pub const MAX_LEN: usize = 16;

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContractCode {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.chars().all(ok_char) {
            return Err(InvalidValue(format!(
                "a contract code is 1 to {} characters from A-Z, a-z, 0-9, '_' and '-'",
                Self::MAX_LEN
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for ContractCode {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ContractCode> for String {
    fn from(code: ContractCode) -> Self {
        code.0
    }
}

impl fmt::Display for ContractCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A certificate serial number as estca issues it: 16 bytes, first byte 0x01..=0x7f, so the
/// DER INTEGER is positive, exactly 16 bytes long and never has a leading zero byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Serial([u8; 16]);

impl Serial {
    /// Draws a fresh serial from the operating system's CSPRNG.
    pub fn random() -> Self {
        use rand_core::{OsRng, RngCore};
        let mut bytes = [0u8; 16];
        loop {
            OsRng.fill_bytes(&mut bytes);
            bytes[0] &= 0x7f;
            if bytes[0] != 0 {
                return Self(bytes);
            }
        }
    }

    /// Wraps 16 bytes; refuses a first byte outside 0x01..=0x7f.
    pub fn from_bytes(bytes: [u8; 16]) -> Result<Self, InvalidValue> {
        if (0x01..=0x7f).contains(&bytes[0]) {
            Ok(Self(bytes))
        } else {
            Err(InvalidValue(
                "an estca serial is 16 bytes whose first byte is 01 to 7f".into(),
            ))
        }
    }

    /// The big-endian bytes of the serial (also its DER INTEGER content).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl FromStr for Serial {
    type Err = InvalidValue;

    /// Parses 32 hex digits, with or without `:` separators, in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.chars().filter(|c| *c != ':').collect();
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(&digits, &mut bytes).map_err(|_| {
            InvalidValue("a serial is 32 hexadecimal digits (16 bytes), e.g. 441e22181c34f93d0f0e6bca0f6dcf52".into())
        })?;
        Self::from_bytes(bytes)
    }
}

impl TryFrom<String> for Serial {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Serial> for String {
    fn from(serial: Serial) -> Self {
        serial.to_string()
    }
}

impl fmt::Display for Serial {
    /// Lower-case hex without separators, as the seed shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// SHA-256 of a DER SubjectPublicKeyInfo: how the store recognises a key it has seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyFingerprint(pub [u8; 32]);

impl KeyFingerprint {
    /// Fingerprints the DER encoding of a SubjectPublicKeyInfo.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(spki_der).into())
    }
}

/// The name of an application credential, e.g. `netbanking-login`.
///
/// 1 to 64 characters from `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

impl AppName {
    /// Longest name accepted.
    pub const MAX_LEN: usize = 64;

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AppName {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.chars().all(ok_char) {
            return Err(InvalidValue(format!(
                "an application name is 1 to {} characters from A-Z, a-z, 0-9, '.', '_' and '-'",
                Self::MAX_LEN
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for AppName {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<AppName> for String {
    fn from(name: AppName) -> Self {
        name.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The contracts an application may manage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppScope {
    /// Every contract, present and future.
    All,
    /// These contracts only.
    Contracts(Vec<ContractCode>),
}

impl AppScope {
    /// Whether the contract is in scope.
    pub fn includes(&self, code: &ContractCode) -> bool {
        match self {
            AppScope::All => true,
            AppScope::Contracts(codes) => codes.contains(code),
        }
    }
}

/// An application credential: another system that delegates issuance to estca, with the
/// powers of a master ID over the contracts it was granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Its name (the CN of its certificate).
    pub name: AppName,
    /// The contracts it may manage.
    pub scope: AppScope,
    /// Whether it may create contracts and master IDs.
    pub can_create_contracts: bool,
    /// Its certificate; revoking the app revokes it.
    pub certificate: Serial,
    /// Whether the credential was revoked (for good).
    pub revoked: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The USERTYPE of an account, as it appears in the certificate subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 管理者 / マスターID: manages the public IDs of its contract (USERTYPE - 1).
    Master,
    /// 利用者 / パブリックID: enrolls for its own certificate (USERTYPE - 2).
    User,
}

impl Role {
    /// The number written after `USERTYPE - ` in the subject.
    pub fn usertype(self) -> u8 {
        match self {
            Role::Master => 1,
            Role::User => 2,
        }
    }
}

impl FromStr for Role {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "master" => Ok(Role::Master),
            "user" => Ok(Role::User),
            _ => Err(InvalidValue("a role is 'master' or 'user'".into())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Master => "master",
            Role::User => "user",
        })
    }
}

/// A contract: one corporate customer, with one master ID and any number of public IDs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Short code, written after the ID in certificate common names.
    pub code: ContractCode,
    /// The customer's name, for people.
    pub name: String,
    /// When the contract was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The administrator's last choice for an account's certificate (the seed's 編集 screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CertificateChoice {
    /// 継続利用する (or nothing chosen yet): an active certificate blocks a new enrollment.
    #[default]
    Continue,
    /// 再発行する: the next enrollment is allowed and supersedes the current certificate.
    Reissue,
    /// 失効する: the certificate was revoked; enrollment is refused until reissue is chosen.
    Revoked,
}

/// An account (ID) and everything the lifecycle needs to decide about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Login ID.
    pub id: AccountId,
    /// The contract the ID belongs to.
    pub contract: ContractCode,
    /// Master or public ID.
    pub role: Role,
    /// Display name, for people (利用者名).
    pub name: String,
    /// Argon2id hash of the password, as a PHC string. Never leaves the daemon.
    pub password_hash: String,
    /// Consecutive wrong passwords since the last success or unlock.
    pub failed_attempts: u32,
    /// Locked after too many wrong passwords (IDロック); only an unlock clears it.
    pub locked: bool,
    /// The administrator's last choice for the certificate.
    pub choice: CertificateChoice,
    /// The most recently issued certificate, whatever its status now.
    pub current_certificate: Option<Serial>,
    /// How many certificates this ID has been issued (CERTISSUEDNUM of the latest).
    pub issued_count: u32,
    /// Bumped by the store on every change; the basis of optimistic concurrency.
    pub version: u64,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Account {
    /// A new account as it is created: unlocked, no failures, no certificate, nothing chosen,
    /// version 0.
    pub fn new(
        id: AccountId,
        contract: ContractCode,
        role: Role,
        name: String,
        password_hash: String,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            contract,
            role,
            name,
            password_hash,
            failed_attempts: 0,
            locked: false,
            choice: CertificateChoice::Continue,
            current_certificate: None,
            issued_count: 0,
            version: 0,
            created_at,
        }
    }
}

/// RFC 5280 CRLReason, named as the RFC names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    #[serde(rename = "cACompromise")]
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4): what a reissue or a renewal records for the old certificate.
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every reason an operator may choose, in RFC order.
    pub const ALL: [RevocationReason; 7] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// The CRLReason code of RFC 5280 section 5.3.1.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::PrivilegeWithdrawn => 9,
        }
    }
}

impl FromStr for RevocationReason {
    type Err = InvalidValue;

    /// Accepts the RFC 5280 names, ignoring case. `certificateHold` and `removeFromCRL` are
    /// refused: estca revokes for good, it does not suspend.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|r| r.name()).collect();
                InvalidValue(format!(
                    "unknown revocation reason '{s}'; use one of: {}",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The revocation time.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The RFC 5280 reason.
    pub reason: RevocationReason,
}

/// A certificate estca issued, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// The serial number.
    pub serial: Serial,
    /// Whom it was issued to.
    pub holder: Holder,
    /// The subject as text (RFC 4514 order of the certificate, for display).
    pub subject: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Fingerprint of the certified public key.
    pub key: KeyFingerprint,
    /// `None` while unrevoked.
    pub revocation: Option<Revocation>,
    /// The certificate, DER.
    #[serde(with = "der_base64")]
    pub der: Vec<u8>,
}

/// Whom a certificate was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Holder {
    /// An ID (master or public), as it was at issuance.
    Account {
        /// The ID.
        id: AccountId,
        /// Its contract.
        contract: ContractCode,
        /// Its role (the USERTYPE in the subject).
        role: Role,
        /// CERTISSUEDNUM written in the subject.
        issued_num: u32,
    },
    /// An application credential.
    App {
        /// The application's name.
        name: AppName,
    },
    /// estca's own TLS server certificate, issued by the CA at each start and reload (unless
    /// the server certificate comes from files).
    #[serde(rename = "tls_server")]
    TlsServer {
        /// The names it is valid for (`server.hostnames`: DNS names and IP addresses).
        names: Vec<String>,
    },
    /// A delegated OCSP signing certificate of estca's responder (RFC 6960 4.2.2.2).
    #[serde(rename = "ocsp_signer")]
    OcspSigner,
}

impl Holder {
    /// Whether the certificate belongs to one of estca's own services (TLS server, OCSP
    /// responder) rather than to an ID or an application: such a certificate never
    /// authenticates a client.
    pub fn is_service(&self) -> bool {
        matches!(self, Holder::TlsServer { .. } | Holder::OcspSigner)
    }
}

impl CertificateRecord {
    /// The ID the certificate was issued to, unless it belongs to an application.
    pub fn account(&self) -> Option<&AccountId> {
        match &self.holder {
            Holder::Account { id, .. } => Some(id),
            Holder::App { .. } | Holder::TlsServer { .. } | Holder::OcspSigner => None,
        }
    }

    /// The contract of the ID the certificate was issued to.
    pub fn contract(&self) -> Option<&ContractCode> {
        match &self.holder {
            Holder::Account { contract, .. } => Some(contract),
            Holder::App { .. } | Holder::TlsServer { .. } | Holder::OcspSigner => None,
        }
    }

    /// Unrevoked and within its validity at `now`: the state the one-per-ID invariant counts.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revocation.is_none() && self.not_before <= now && now < self.not_after
    }

    /// The status at `now`, for display.
    pub fn status(&self, now: OffsetDateTime) -> CertificateStatus {
        match self.revocation {
            Some(_) => CertificateStatus::Revoked,
            None if now >= self.not_after => CertificateStatus::Expired,
            None => CertificateStatus::Active,
        }
    }
}

/// A certificate's status at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateStatus {
    /// Unrevoked and unexpired.
    Active,
    /// Past its notAfter, never revoked.
    Expired,
    /// Revoked (see the record's revocation).
    Revoked,
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertificateStatus::Active => "active",
            CertificateStatus::Expired => "expired",
            CertificateStatus::Revoked => "revoked",
        })
    }
}

/// Who did something: recorded in history and used for authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Actor {
    /// The CA operator, over the admin socket (with the Unix user ID when known).
    Operator {
        /// Unix user ID of the peer process, when the socket reported it.
        uid: Option<u32>,
    },
    /// An account acting for itself (enrollment) or, later, as an administrator.
    Account {
        /// The account's ID.
        id: AccountId,
    },
    /// An application credential.
    App {
        /// The application's name.
        name: AppName,
    },
    /// Someone who claimed an ID that does not exist or did not authenticate.
    Anonymous,
    /// The daemon itself (e.g. a lock after too many failures).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator { uid: Some(uid) } => write!(f, "operator(uid {uid})"),
            Actor::Operator { uid: None } => f.write_str("operator"),
            Actor::Account { id } => write!(f, "{id}"),
            Actor::App { name } => write!(f, "app:{name}"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::System => f.write_str("estca"),
        }
    }
}

/// What happened, for the history (利用履歴照会).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// simpleenroll (ID and password).
    Enroll,
    /// simplereenroll (client certificate).
    Reenroll,
    /// 再発行する chosen.
    Reissue,
    /// 継続利用する chosen.
    Continue,
    /// 失効する chosen.
    Revoke,
    /// Locked after too many wrong passwords.
    Lock,
    /// Unlocked.
    Unlock,
    /// Password set or changed.
    PasswordChange,
    /// Account created.
    AccountCreate,
    /// Account renamed.
    AccountUpdate,
    /// Contract created.
    ContractCreate,
    /// A read-only management call (list, show, history, certificate).
    Query,
    /// An application credential issued.
    AppCreate,
    /// An application credential revoked.
    AppRevoke,
}

impl EventKind {
    /// The snake_case name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Enroll => "enroll",
            EventKind::Reenroll => "reenroll",
            EventKind::Reissue => "reissue",
            EventKind::Continue => "continue",
            EventKind::Revoke => "revoke",
            EventKind::Lock => "lock",
            EventKind::Unlock => "unlock",
            EventKind::PasswordChange => "password_change",
            EventKind::AccountCreate => "account_create",
            EventKind::AccountUpdate => "account_update",
            EventKind::ContractCreate => "contract_create",
            EventKind::Query => "query",
            EventKind::AppCreate => "app_create",
            EventKind::AppRevoke => "app_revoke",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an event ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    /// Done; `detail` says what (e.g. the serial issued).
    Ok {
        /// What was done, for people.
        detail: String,
    },
    /// Refused; `reason` says why.
    Refused {
        /// Why, for people.
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok { detail } if detail.is_empty() => f.write_str("ok"),
            Outcome::Ok { detail } => write!(f, "ok: {detail}"),
            Outcome::Refused { reason } => write!(f, "refused: {reason}"),
        }
    }
}

/// One line of history, as a caller hands it to the store (which numbers it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The account concerned, when it exists.
    pub account: Option<AccountId>,
    /// The contract concerned, when known.
    pub contract: Option<ContractCode>,
    /// What happened.
    pub kind: EventKind,
    /// Who did it.
    pub actor: Actor,
    /// Where the request came from (IP address, or `admin-socket`).
    pub source: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// A history event as stored: numbered in the order the store appended it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Position in the append-only log; larger is newer.
    pub seq: u64,
    /// The event.
    #[serde(flatten)]
    pub event: HistoryEvent,
}

/// Base64 (standard alphabet) for DER inside JSON.
mod der_base64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(der: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(der))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_refuse_invisible_and_layout_changing_characters() {
        for (bad, code) in [
            ("Evil\u{202E}gnp.exe", "U+202E"),
            ("two\u{2028}lines", "U+2028"),
            ("para\u{2029}graph", "U+2029"),
            ("zero\u{200B}width", "U+200B"),
            ("bom\u{FEFF}", "U+FEFF"),
            ("bell\u{7}", "U+0007"),
            ("new\nline", "U+000A"),
            ("isolate\u{2066}x", "U+2066"),
        ] {
            let err = super::human_text(bad, 128, "a name")
                .unwrap_err()
                .to_string();
            assert!(err.contains(code), "{bad:?}: {err}");
        }
        assert_eq!(
            super::human_text("  大手町エステート株式会社 ", 128, "a name").unwrap(),
            "大手町エステート株式会社"
        );
        assert_eq!(
            super::human_text("O'Brien & Söhne, Ltd.", 128, "a name").unwrap(),
            "O'Brien & Söhne, Ltd."
        );
        assert!(super::human_text("   ", 128, "a name").is_err());
        assert!(super::human_text(&"x".repeat(129), 128, "a name").is_err());
    }

    use super::*;

    #[test]
    fn ids_and_codes_validate() {
        assert!("nozawa1".parse::<AccountId>().is_ok());
        assert!("a b".parse::<AccountId>().is_err());
        assert!("".parse::<AccountId>().is_err());
        assert!("x".repeat(33).parse::<AccountId>().is_err());
        assert!("5110".parse::<ContractCode>().is_ok());
        assert!("51/10".parse::<ContractCode>().is_err());
    }

    #[test]
    fn serials_are_positive_sixteen_bytes_and_round_trip() {
        for _ in 0..1000 {
            let s = Serial::random();
            assert!((1..=0x7f).contains(&s.as_bytes()[0]));
            assert_eq!(s.to_string().parse::<Serial>().unwrap(), s);
        }
        let seed: Serial = "441e22181c34f93d0f0e6bca0f6dcf52".parse().unwrap();
        assert_eq!(seed.to_string(), "441e22181c34f93d0f0e6bca0f6dcf52");
        assert!("80".repeat(16).parse::<Serial>().is_err());
        assert!("00".repeat(16).parse::<Serial>().is_err());
        assert!("44:1e".parse::<Serial>().is_err());
    }

    #[test]
    fn revocation_reasons_use_rfc_names() {
        assert_eq!(
            "keycompromise".parse::<RevocationReason>(),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(RevocationReason::PrivilegeWithdrawn.code(), 9);
        assert!("certificateHold".parse::<RevocationReason>().is_err());
        let json = serde_json::to_string(&RevocationReason::CaCompromise).unwrap();
        assert_eq!(json, "\"cACompromise\"");
    }
}
