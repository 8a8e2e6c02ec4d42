//! The values that name things: IDs, contract codes, application names (one definition,
//! [`name_type!`]), certificate serials and key fingerprints. Each validates itself on
//! construction, so no layer has to check it again.

use std::fmt;
use std::str::FromStr;

use super::InvalidValue;

name_type! {
    /// The login ID of an account (the seed's お客様ID), e.g. `nozawa1`: 1 to 32 characters
    /// from `A-Z a-z 0-9 . _ @ -`, so that it can stand in a certificate's common name, a URL
    /// path and a log line without escaping.
    pub struct AccountId {
        what: "an ID",
        max_len: 32,
        punctuation: ['.', '_', '@', '-'],
    }
}

impl AccountId {
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

name_type! {
    /// The short code of a contract (one corporate customer), e.g. `5110`: 1 to 16 characters
    /// from `A-Z a-z 0-9 _ -`.
    pub struct ContractCode {
        what: "a contract code",
        max_len: 16,
        punctuation: ['_', '-'],
    }
}

name_type! {
    /// The name of an application credential, e.g. `netbanking-login`: 1 to 64 characters
    /// from `A-Z a-z 0-9 . _ -`.
    pub struct AppName {
        what: "an application name",
        max_len: 64,
        punctuation: ['.', '_', '-'],
    }
}

/// A certificate serial number as estca issues it: 16 bytes, first byte 0x01..=0x7f, so the
/// DER INTEGER is positive, exactly 16 bytes long and never has a leading zero byte. Its text
/// is 32 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

impl fmt::Display for Serial {
    /// Lower-case hex without separators, as the seed shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

text_form!(Serial);

/// Its OpenAPI schema: 32 hex digits, `:` separators allowed on input.
impl utoipa::PartialSchema for Serial {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9a-fA-F:]+$"))
            .description(Some(
                "A certificate serial: 32 hexadecimal digits (16 bytes), lower case in answers",
            ))
            .examples(["441e22181c34f93d0f0e6bca0f6dcf52"])
            .into()
    }
}

impl utoipa::ToSchema for Serial {}

/// SHA-256 of a DER SubjectPublicKeyInfo: how the store recognises a key it has seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeyFingerprint(pub [u8; 32]);

impl KeyFingerprint {
    /// Fingerprints the DER encoding of a SubjectPublicKeyInfo.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(spki_der).into())
    }
}

impl fmt::Display for KeyFingerprint {
    /// Lower-case hex, as `sha256sum` prints the SHA-256 of the key's DER
    /// SubjectPublicKeyInfo (the form the refusals and `estca store bind-ca` print).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_codes_validate() {
        assert!("nozawa1".parse::<AccountId>().is_ok());
        assert!("Kiyo.0012@x-y_z".parse::<AccountId>().is_ok());
        assert!("a b".parse::<AccountId>().is_err());
        assert!("".parse::<AccountId>().is_err());
        assert!("x".repeat(32).parse::<AccountId>().is_ok());
        assert!("x".repeat(33).parse::<AccountId>().is_err());
        assert!("5110".parse::<ContractCode>().is_ok());
        assert!("51/10".parse::<ContractCode>().is_err());
        assert!("51.10".parse::<ContractCode>().is_err());
        assert!("x".repeat(17).parse::<ContractCode>().is_err());
        assert!("netbanking-login.v2".parse::<AppName>().is_ok());
        assert!("net@banking".parse::<AppName>().is_err());
        assert!("x".repeat(65).parse::<AppName>().is_err());
    }

    #[test]
    fn refusals_say_what_each_type_allows() {
        let refusal = |e: InvalidValue| e.0;
        assert_eq!(
            refusal("a b".parse::<AccountId>().unwrap_err()),
            "an ID is 1 to 32 characters from A-Z, a-z, 0-9, '.', '_', '@' and '-'"
        );
        assert_eq!(
            refusal("51/10".parse::<ContractCode>().unwrap_err()),
            "a contract code is 1 to 16 characters from A-Z, a-z, 0-9, '_' and '-'"
        );
        assert_eq!(
            refusal("".parse::<AppName>().unwrap_err()),
            "an application name is 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'"
        );
    }

    #[test]
    fn every_text_form_converts_the_same_way_both_ways() {
        let id: AccountId = "nozawa1".parse().unwrap();
        assert_eq!(id.to_string(), "nozawa1");
        assert_eq!(String::from(id.clone()), "nozawa1");
        assert_eq!(AccountId::try_from("nozawa1".to_owned()), Ok(id.clone()));
        assert!(AccountId::try_from("no way".to_owned()).is_err());
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"nozawa1\"");
        assert_eq!(
            serde_json::from_str::<AccountId>("\"nozawa1\"").unwrap(),
            id
        );
        let err = serde_json::from_str::<AccountId>("\"no way\"").unwrap_err();
        assert!(err.to_string().starts_with("an ID is 1 to 32"), "{err}");
        assert!(serde_json::from_str::<ContractCode>("5110").is_err());

        let serial: Serial = "441E2218:1c34f93d0f0e6bca0f6dcf52".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&serial).unwrap(),
            "\"441e22181c34f93d0f0e6bca0f6dcf52\""
        );
        assert_eq!(
            serde_json::from_str::<Serial>("\"441e22181c34f93d0f0e6bca0f6dcf52\"").unwrap(),
            serial
        );
        assert_eq!(
            Serial::try_from(String::from(serial)).unwrap(),
            serial,
            "String and back"
        );
        assert!(serde_json::from_str::<Serial>("\"80\"").is_err());
    }

    #[test]
    fn generated_ids_are_valid_ids() {
        for _ in 0..100 {
            let id = AccountId::generate();
            assert_eq!(id.as_str().parse::<AccountId>(), Ok(id.clone()));
            assert_eq!(id.as_str().len(), 19);
        }
        assert_eq!(
            "UA1".parse::<AccountId>().unwrap().case_folded(),
            "ua1".parse::<AccountId>().unwrap().case_folded()
        );
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
}
