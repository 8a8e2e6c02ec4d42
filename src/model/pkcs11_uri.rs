//! The PKCS#11 URI (RFC 7512) that names the issuing CA's key in a token (`ca.key`, `estca
//! init --pkcs11`): read once here, below both the configuration that checks it and the CA
//! that opens the token, so that both refuse the same URIs with the same reasons.

use std::fmt;
use std::path::{Path, PathBuf};

use super::InvalidValue;

/// A PKCS#11 URI (RFC 7512) naming a token, a key object in it, and the module to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The token's label (`token=`).
    pub token: String,
    /// The key's label (`object=`), shared by the private and the public key object.
    pub object: String,
    /// The PKCS#11 module (`module-path=` in the query).
    pub module: PathBuf,
}

/// The attribute that would carry the PIN itself, in the path or the query (RFC 7512
/// section 2.3; ABNF literals match in any case).
const PIN_VALUE: &str = "pin-value";

/// Whether the attribute `name=value` (or `name`) is the PIN.
fn is_pin(attribute: &str) -> bool {
    let name = attribute
        .split_once('=')
        .map_or(attribute, |(name, _)| name);
    name.trim_start_matches("pkcs11:")
        .eq_ignore_ascii_case(PIN_VALUE)
}

/// `text` as a refusal may show it: the part before the query (which could hold a PIN), with
/// the value of a PIN in the path left out.
fn shown(text: &str) -> String {
    let path = text.split('?').next().unwrap_or_default();
    path.split(';')
        .map(|attribute| match attribute.split_once('=') {
            Some((name, _)) if is_pin(attribute) => format!("{name}=…"),
            _ => attribute.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

impl Pkcs11Uri {
    /// Parses `pkcs11:token=…;object=…?module-path=…` (attribute values percent-encoded); a
    /// URI without `module-path` takes `default_module` when given. Refuses a URI that
    /// carries the PIN itself (`pin-value`, in the path or the query): it would show in the
    /// configuration and in process listings. No refusal shows the PIN.
    pub fn parse(text: &str, default_module: Option<&Path>) -> Result<Self, InvalidValue> {
        let shown = shown(text);
        let bad = |reason: &str| {
            InvalidValue(format!(
                "'{shown}' is not a usable PKCS#11 URI: {reason} (expected pkcs11:token=LABEL;object=LABEL?module-path=/path/to/module.so)"
            ))
        };
        let holds_pin = || {
            bad("it holds the PIN (pin-value); put the PIN in the file ca.pkcs11_pin_file names, or in the systemd credential ca.pkcs11_pin_credential names, instead")
        };
        let rest = text
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("it does not start with pkcs11:"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let decode = |v: &str| -> Result<String, InvalidValue> {
            percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| bad("an attribute is not UTF-8 once percent-decoded"))
        };
        let (mut token, mut object, mut module) = (None, None, None);
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            if is_pin(attr) {
                return Err(holds_pin());
            }
            match attr.split_once('=') {
                Some(("token", v)) => token = Some(decode(v)?),
                Some(("object", v)) => object = Some(decode(v)?),
                Some(("type", "private" | "public")) => {}
                Some((name, _)) if !name.is_empty() => {}
                _ => return Err(bad("an attribute has no name=value form")),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            if is_pin(attr) {
                return Err(holds_pin());
            }
            if let Some(("module-path", v)) = attr.split_once('=') {
                module = Some(PathBuf::from(decode(v)?));
            }
        }
        Ok(Self {
            token: token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| bad("it names no token"))?,
            object: object
                .filter(|o| !o.is_empty())
                .ok_or_else(|| bad("it names no object"))?,
            module: module
                .or_else(|| default_module.map(Path::to_path_buf))
                .ok_or_else(|| bad("it names no module-path"))?,
        })
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkcs11:token={};object={}", self.token, self.object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_names_token_object_and_module_and_never_a_pin() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=estca%20CA;object=issuing;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so",
            None,
        )
        .unwrap();
        assert_eq!(uri.token, "estca CA");
        assert_eq!(uri.object, "issuing");
        assert_eq!(uri.module, PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
        for (text, expected) in [
            (
                "token=a;object=b?module-path=/m.so",
                "does not start with pkcs11:",
            ),
            ("pkcs11:object=b?module-path=/m.so", "names no token"),
            ("pkcs11:token=a?module-path=/m.so", "names no object"),
            ("pkcs11:token=a;object=b", "names no module-path"),
            (
                "pkcs11:token=a;object=b?module-path=/m.so&pin-value=1234",
                "holds the PIN",
            ),
            (
                "pkcs11:token=a;object=b;pin-value=1234?module-path=/m.so",
                "holds the PIN",
            ),
            ("pkcs11:pin-value=1234;token=a;object=b", "holds the PIN"),
            ("pkcs11:token=a;object=b;PIN-Value=1234", "holds the PIN"),
            (
                "token=a;object=b;pin-value=1234",
                "does not start with pkcs11:",
            ),
        ] {
            let message = Pkcs11Uri::parse(text, None).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(!message.contains("1234"), "{message}");
        }
        let message = Pkcs11Uri::parse("pkcs11:token=a;object=b;pin-value=1234", None)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("'pkcs11:token=a;object=b;pin-value=…' is not a usable"),
            "{message}"
        );
    }

    #[test]
    fn a_uri_without_module_takes_the_default() {
        let uri = Pkcs11Uri::parse("pkcs11:token=t;object=o", Some(Path::new("/m.so"))).unwrap();
        assert_eq!(uri.module, PathBuf::from("/m.so"));
        assert_eq!(uri.to_string(), "pkcs11:token=t;object=o");
    }
}
