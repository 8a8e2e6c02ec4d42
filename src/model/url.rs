//! The public base URL of estca's revocation services (`revocation.public_url`): checked once
//! here, below both the configuration that reads it and the CA that writes it into
//! certificates.

use std::fmt;
use std::str::FromStr;

use super::InvalidValue;

/// An `http://` or `https://` base URL without query or fragment, in ASCII, without a trailing
/// `/`: what relying parties find under it is `<url>/crl`, `<url>/ocsp` and `<url>/ca.crt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The URL of `path` (which starts with `/`) under this base.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// The base URL as text, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PublicUrl {
    type Err = InvalidValue;

    /// Accepts an `http://` or `https://` URL with a host, in ASCII, without query,
    /// fragment, spaces, quotes, angle brackets, backslashes or control characters; a trailing
    /// `/` is dropped.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let base = text.trim_end_matches('/');
        let valid = (base.starts_with("http://") || base.starts_with("https://"))
            && base.len() > "https://".len()
            && base.is_ascii()
            && !base.contains(['?', '#', ' ', '"', '<', '>', '\\'])
            && !base.chars().any(|c| c.is_ascii_control());
        if !valid {
            return Err(InvalidValue(format!(
                "'{text}' is not an http:// or https:// base URL without query or fragment"
            )));
        }
        Ok(Self(base.to_owned()))
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_http_bases_without_query_or_fragment() {
        let url: PublicUrl = "http://ca.example.com:8080/".parse().unwrap();
        assert_eq!(url.as_str(), "http://ca.example.com:8080");
        assert_eq!(url.join("/crl"), "http://ca.example.com:8080/crl");
        assert!("https://ca.example/estca".parse::<PublicUrl>().is_ok());
        for bad in [
            "ftp://ca.example",
            "ca.example",
            "http://",
            "https://",
            "http://ca.example/?x=1",
            "http://ca.example/#f",
            "http://ca.exämple",
            "http://ca example",
            "http://ca.example/\u{7}",
        ] {
            let err = bad.parse::<PublicUrl>().unwrap_err();
            assert!(err.0.contains("base URL"), "{bad}: {err}");
        }
    }
}
