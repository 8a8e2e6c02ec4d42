//! The host name an application credential also serves TLS for (`estca app add --host`):
//! an EST registration authority such as libest's `estproxy` shows one certificate to estca
//! and to the devices behind it, and a device checks that certificate as a TLS server's.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::InvalidValue;

/// A DNS name (letters, digits and hyphens in dot-separated labels, stored in lower case) or
/// an IP address literal: what a TLS client compares with the subjectAltName. A wildcard is
/// only ever the whole first label of a name (`*.example.test`, RFC 6125 section 6.4.3), and
/// only where the holder may have one ([`HostName::is_wildcard`]): the daemon's own server
/// certificate may, an application names the hosts it runs on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostName(String);

/// RFC 1035 section 2.3.4: at most 253 characters in text form, 63 per label.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

impl HostName {
    /// The name as text (lower case), or the address as it was parsed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address, when the host is given as an IP address literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    /// Whether the first label is the wildcard `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// `hosts` as one line for people: `ra.example.test, 10.0.0.7`.
    pub fn list(hosts: &[HostName]) -> String {
        hosts
            .iter()
            .map(HostName::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl From<IpAddr> for HostName {
    fn from(ip: IpAddr) -> Self {
        Self(ip.to_string())
    }
}

impl FromStr for HostName {
    type Err = InvalidValue;

    /// Accepts an IPv4 or IPv6 address literal, or a DNS name of LDH labels (RFC 1123: a
    /// label may start with a digit, never with or at the end with a hyphen), without a
    /// trailing dot.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::from(ip));
        }
        let invalid = |why: &str| {
            InvalidValue(format!(
                "'{text}' is neither an IP address nor a DNS host name: {why}"
            ))
        };
        if text.is_empty() || text.len() > MAX_NAME {
            return Err(invalid("a name has 1 to 253 characters"));
        }
        // The wildcard, if any, is the whole first label, and a name follows it.
        let name = match text.strip_prefix("*.") {
            Some(rest) if !rest.is_empty() => rest,
            _ => text,
        };
        for label in name.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL {
                return Err(invalid("each dot-separated label has 1 to 63 characters"));
            }
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(invalid(
                    "a label holds only letters, digits and hyphens (a wildcard only as the \
                     whole first label)",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label neither starts nor ends with a hyphen"));
            }
        }
        Ok(Self(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

text_form!(HostName);

/// Its OpenAPI schema: a DNS host name or an IP address literal.
impl utoipa::PartialSchema for HostName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_NAME))
            .description(Some(
                "A host the application serves TLS for: a DNS name (letters, digits and hyphens \
                 in dot-separated labels; an application may not name a wildcard) or an IP \
                 address",
            ))
            .examples(["ra.example.test"])
            .into()
    }
}

impl utoipa::ToSchema for HostName {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_accepted_in_one_form() {
        let host: HostName = "RA.Example.test".parse().unwrap();
        assert_eq!(host.as_str(), "ra.example.test");
        assert_eq!(host.ip(), None);
        let v4: HostName = "127.0.0.1".parse().unwrap();
        assert_eq!(v4.ip(), Some(IpAddr::from([127, 0, 0, 1])));
        let v6: HostName = "::1".parse().unwrap();
        assert_eq!(v6.as_str(), "::1");
        assert!("3com.example".parse::<HostName>().is_ok());
        let wildcard: HostName = "*.Example.test".parse().unwrap();
        assert_eq!(wildcard.as_str(), "*.example.test");
        assert!(wildcard.is_wildcard() && !host.is_wildcard() && !v4.is_wildcard());
        assert_eq!(serde_json::to_string(&host).unwrap(), "\"ra.example.test\"");
    }

    #[test]
    fn what_a_certificate_must_not_name_is_refused_with_the_reason() {
        for (bad, why) in [
            ("", "1 to 253"),
            ("*", "letters, digits"),
            ("*.", "letters, digits"),
            ("ra*.example.test", "whole first label"),
            ("ra.*.example", "whole first label"),
            ("ra_1.example", "letters, digits"),
            ("ra..example", "1 to 63"),
            ("ra.example.", "1 to 63"),
            ("-ra.example", "hyphen"),
            ("ra-.example", "hyphen"),
            ("ra.例え.jp", "letters, digits"),
        ] {
            let e = bad.parse::<HostName>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let long = format!("{}.example", "a".repeat(64));
        assert!(long
            .parse::<HostName>()
            .unwrap_err()
            .to_string()
            .contains("63"));
        let too_long = ["abcdefghij"; 26].join(".");
        assert!(too_long
            .parse::<HostName>()
            .unwrap_err()
            .to_string()
            .contains("253"));
    }
}
