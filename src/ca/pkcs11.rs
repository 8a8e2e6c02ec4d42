//! The issuing CA's key in a PKCS#11 token (an HSM, or SoftHSM2 for trials): named by an
//! RFC 7512 URI, `pkcs11:token=LABEL;object=LABEL?module-path=/path/to/module.so`, the PIN
//! from a file or a systemd credential. `estca init --pkcs11 URI` generates the ECDSA key
//! pair inside the token (private key sensitive and not extractable); the daemon then signs
//! certificates, CRLs and OCSP answers (through the delegated OCSP signer's certificate)
//! with it, and the key never leaves the token.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use der::asn1::OctetString;
use der::{Decode, Encode};
use p256::pkcs8::EncodePublicKey;

use super::passphrase::KeyPassphrase;
use super::CaError;
use crate::config::KeyAlgorithm;

pub use crate::model::Pkcs11Uri;

impl std::str::FromStr for Pkcs11Uri {
    type Err = CaError;

    /// Parses `pkcs11:token=…;object=…?module-path=…` as [`Pkcs11Uri::parse`] does, which
    /// refuses a URI that carries the PIN itself (`pin-value`).
    fn from_str(text: &str) -> Result<Self, CaError> {
        Self::parse(text, None).map_err(|e| CaError::InvalidName(e.0))
    }
}

/// The key record of a CA generation: the URI of its key without the module.
impl Pkcs11Uri {
    /// Reads a key record (`issuing-ca.key-uri` of a CA generation, written by
    /// [`Pkcs11Uri::record`]): the URI of the generation's key, the module given by `module`
    /// (the one `ca.key` names) unless the record names one.
    pub fn from_record(text: &str, module: &Path) -> Result<Self, CaError> {
        Self::parse(text.trim(), Some(module)).map_err(|e| CaError::InvalidName(e.0))
    }

    /// The URI as a key record stores it: token and object, percent-encoded, without the
    /// module (which `ca.key` names, so that moving the module does not orphan the record).
    pub fn record(&self) -> String {
        let encode = |v: &str| percent_encoding::utf8_percent_encode(v, RECORD_ESCAPED).to_string();
        format!(
            "pkcs11:token={};object={}\n",
            encode(&self.token),
            encode(&self.object)
        )
    }

    /// The same token and module, naming the key object `object`.
    pub fn with_object(&self, object: &str) -> Self {
        Self {
            object: object.to_owned(),
            ..self.clone()
        }
    }
}

/// The characters a key record percent-encodes in an attribute value: everything but the
/// RFC 7512 `pk11-pchar` unreserved letters, digits and `-._~`.
const RECORD_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An ECDSA private key inside a token, with an open, logged-in session to sign with.
pub(crate) struct TokenKey {
    uri: Pkcs11Uri,
    algorithm: KeyAlgorithm,
    key: ObjectHandle,
    spki_der: Vec<u8>,
    session: Mutex<Session>,
    // Dropped last: the module stays loaded while the session lives.
    _context: Pkcs11,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("uri", &self.uri.to_string())
            .finish_non_exhaustive()
    }
}

/// The DER OID of a curve, as CKA_EC_PARAMS holds it.
fn ec_params(algorithm: KeyAlgorithm) -> Result<Vec<u8>, CaError> {
    let oid = match algorithm {
        KeyAlgorithm::P256 => const_oid::db::rfc5912::SECP_256_R_1,
        KeyAlgorithm::P384 => const_oid::db::rfc5912::SECP_384_R_1,
    };
    oid.to_der()
        .map_err(|e| CaError::Internal(format!("encoding a curve OID: {e}")))
}

/// The process's one context of the module `uri` names, loaded and initialised at first use.
/// One per module, never finalised before the process ends: `C_Finalize` (run when a
/// context is dropped) would close the sessions of every other key of that module, such as
/// the current and retired issuing CAs' keys, or the set a reload is about to replace.
fn shared_context(uri: &Pkcs11Uri) -> Result<Pkcs11, CaError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(Mutex::default)
        .lock()
        .map_err(|_| CaError::Internal("the PKCS#11 context lock is poisoned".into()))?;
    if let Some(context) = contexts.get(&uri.module) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(&uri.module).map_err(|e| {
        TokenKey::token_error(
            uri,
            &format!("cannot load the PKCS#11 module {}", uri.module.display()),
            e,
        )
    })?;
    match context.initialize(CInitializeArgs::OsThreads) {
        // Initialised by another library of this process.
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => {
            return Err(TokenKey::token_error(
                uri,
                "cannot initialise the PKCS#11 module",
                e,
            ))
        }
    }
    contexts.insert(uri.module.clone(), context.clone());
    Ok(context)
}

impl TokenKey {
    fn token_error(uri: &Pkcs11Uri, what: &str, e: impl fmt::Display) -> CaError {
        CaError::Token {
            uri: uri.to_string(),
            reason: format!("{what}: {e}"),
        }
    }

    /// Loads the module, finds the token by label and logs in with `pin`.
    fn login(uri: &Pkcs11Uri, pin: &KeyPassphrase) -> Result<(Pkcs11, Session), CaError> {
        let context = shared_context(uri)?;
        let slots = context
            .get_slots_with_token()
            .map_err(|e| Self::token_error(uri, "cannot list the tokens", e))?;
        let slot = slots
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == uri.token)
            })
            .ok_or_else(|| CaError::Token {
                uri: uri.to_string(),
                reason: format!(
                    "the module has no token labelled '{}'; initialise it first",
                    uri.token
                ),
            })?;
        let session = context
            .open_rw_session(slot)
            .map_err(|e| Self::token_error(uri, "cannot open a session", e))?;
        let text = std::str::from_utf8(pin.as_bytes())
            .map_err(|_| Self::token_error(uri, "the PIN", "is not UTF-8"))?;
        match session.login(UserType::User, Some(&AuthPin::new(text.to_owned()))) {
            // Another key of this token, open in this process, logged the application in.
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => {
                return Err(Self::token_error(
                    uri,
                    &format!(
                        "cannot log in with the PIN from {} (wrong PIN?)",
                        pin.source().display()
                    ),
                    e,
                ))
            }
        }
        Ok((context, session))
    }

    fn find(
        session: &Session,
        uri: &Pkcs11Uri,
        class: ObjectClass,
    ) -> Result<Vec<ObjectHandle>, CaError> {
        session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(uri.object.as_bytes().to_vec()),
            ])
            .map_err(|e| Self::token_error(uri, "cannot search the token", e))
    }

    /// Opens the existing key pair `uri` names.
    pub(crate) fn open(uri: &Pkcs11Uri, pin: &KeyPassphrase) -> Result<Self, CaError> {
        let (context, session) = Self::login(uri, pin)?;
        let missing = |what: &str| CaError::Token {
            uri: uri.to_string(),
            reason: format!(
                "the token holds no {what} labelled '{}' (exactly one is needed)",
                uri.object
            ),
        };
        let [key] = Self::find(&session, uri, ObjectClass::PRIVATE_KEY)?[..] else {
            return Err(missing("private key"));
        };
        let [public] = Self::find(&session, uri, ObjectClass::PUBLIC_KEY)?[..] else {
            return Err(missing("public key"));
        };
        Self::from_handles(context, session, uri, key, public)
    }

    /// Generates a new ECDSA key pair in the token: the private key sensitive, not
    /// extractable, usable only to sign; refuses when the label is taken.
    pub(crate) fn generate(
        uri: &Pkcs11Uri,
        pin: &KeyPassphrase,
        algorithm: KeyAlgorithm,
    ) -> Result<Self, CaError> {
        let (context, session) = Self::login(uri, pin)?;
        if !Self::find(&session, uri, ObjectClass::PRIVATE_KEY)?.is_empty()
            || !Self::find(&session, uri, ObjectClass::PUBLIC_KEY)?.is_empty()
        {
            return Err(CaError::Token {
                uri: uri.to_string(),
                reason: format!(
                    "the token already holds a key labelled '{}'; choose another object label",
                    uri.object
                ),
            });
        }
        let label = Attribute::Label(uri.object.as_bytes().to_vec());
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(ec_params(algorithm)?),
            Attribute::Verify(true),
            label.clone(),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Derive(false),
            label,
        ];
        let (public, key) = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(|e| Self::token_error(uri, "cannot generate the key pair", e))?;
        Self::from_handles(context, session, uri, key, public)
    }

    fn from_handles(
        context: Pkcs11,
        session: Session,
        uri: &Pkcs11Uri,
        key: ObjectHandle,
        public: ObjectHandle,
    ) -> Result<Self, CaError> {
        let attributes = session
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(|e| Self::token_error(uri, "cannot read the public key", e))?;
        let (mut params, mut point) = (None, None);
        for attribute in attributes {
            match attribute {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let unsupported = || CaError::Token {
            uri: uri.to_string(),
            reason: "the key is not an ECDSA P-256 or P-384 key".into(),
        };
        let params = params.ok_or_else(unsupported)?;
        let algorithm = [KeyAlgorithm::P256, KeyAlgorithm::P384]
            .into_iter()
            .find(|a| ec_params(*a).is_ok_and(|p| p == params))
            .ok_or_else(unsupported)?;
        let point = point.ok_or_else(unsupported)?;
        // CKA_EC_POINT is the DER OCTET STRING of the point (PKCS#11 2.40 section 2.3.3);
        // some modules give the bare point.
        let point = OctetString::from_der(&point)
            .map(|o| o.as_bytes().to_vec())
            .unwrap_or(point);
        let spki = match algorithm {
            KeyAlgorithm::P256 => p256::PublicKey::from_sec1_bytes(&point)
                .map_err(|_| unsupported())?
                .to_public_key_der(),
            KeyAlgorithm::P384 => p384::PublicKey::from_sec1_bytes(&point)
                .map_err(|_| unsupported())?
                .to_public_key_der(),
        }
        .map_err(|e| CaError::Internal(format!("encoding the token's public key: {e}")))?;
        Ok(Self {
            uri: uri.clone(),
            algorithm,
            key,
            spki_der: spki.into_vec(),
            session: Mutex::new(session),
            _context: context,
        })
    }

    /// The URI the key was opened or generated under.
    pub(crate) fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// The key's curve.
    pub(crate) fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The DER SubjectPublicKeyInfo of the key.
    pub(crate) fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Hashes `message` (SHA-256 for P-256, SHA-384 for P-384), has the token sign the hash
    /// (CKM_ECDSA) and returns the DER ECDSA-Sig-Value.
    pub(crate) fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        use sha2::Digest;
        let digest = match self.algorithm {
            KeyAlgorithm::P256 => sha2::Sha256::digest(message).to_vec(),
            KeyAlgorithm::P384 => sha2::Sha384::digest(message).to_vec(),
        };
        let raw = {
            let session = self
                .session
                .lock()
                .map_err(|_| CaError::Internal("the token session lock is poisoned".into()))?;
            session
                .sign(&Mechanism::Ecdsa, self.key, &digest)
                .map_err(|e| Self::token_error(&self.uri, "signing failed", e))?
        };
        let bad = |_| Self::token_error(&self.uri, "signing failed", "malformed signature");
        Ok(match self.algorithm {
            KeyAlgorithm::P256 => p256::ecdsa::Signature::from_slice(&raw)
                .map_err(bad)?
                .to_der()
                .as_bytes()
                .to_vec(),
            KeyAlgorithm::P384 => p384::ecdsa::Signature::from_slice(&raw)
                .map_err(bad)?
                .to_der()
                .as_bytes()
                .to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_and_the_ca_refuse_a_uri_with_a_pin_without_showing_it() {
        for text in [
            "pkcs11:token=a;object=b?module-path=/m.so&pin-value=1234",
            "pkcs11:token=a;object=b;pin-value=1234?module-path=/m.so",
        ] {
            let message = text.parse::<Pkcs11Uri>().unwrap_err().to_string();
            assert!(message.contains("holds the PIN"), "{text}: {message}");
            assert!(!message.contains("1234"), "{message}");
            let record = Pkcs11Uri::from_record(text, Path::new("/m.so")).unwrap_err();
            assert!(!record.to_string().contains("1234"), "{record}");
        }
    }

    #[test]
    fn a_key_record_round_trips_without_its_module_and_takes_the_configured_one() {
        let configured: Pkcs11Uri = "pkcs11:token=estca%20CA;object=issuing?module-path=/m.so"
            .parse()
            .unwrap();
        let next = configured.with_object("issuing;2/x");
        let record = next.record();
        assert_eq!(record, "pkcs11:token=estca%20CA;object=issuing%3B2%2Fx\n");
        let read = Pkcs11Uri::from_record(&record, Path::new("/other.so")).unwrap();
        assert_eq!(read.object, "issuing;2/x");
        assert_eq!(read.token, "estca CA");
        assert_eq!(read.module, PathBuf::from("/other.so"));
        // A record that names its module keeps it.
        let read = Pkcs11Uri::from_record(
            "pkcs11:token=t;object=o?module-path=/r.so",
            Path::new("/m.so"),
        )
        .unwrap();
        assert_eq!(read.module, PathBuf::from("/r.so"));
    }
}
