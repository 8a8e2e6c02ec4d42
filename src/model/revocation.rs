//! Revocation: when and why (RFC 5280 CRLReason) a certificate was revoked.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::InvalidValue;

/// RFC 5280 CRLReason, named as the RFC names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_reasons_use_rfc_names() {
        assert_eq!(
            "keycompromise".parse::<RevocationReason>(),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(RevocationReason::PrivilegeWithdrawn.code(), 9);
        assert!("certificateHold".parse::<RevocationReason>().is_err());
        for reason in RevocationReason::ALL {
            assert_eq!(reason.to_string().parse::<RevocationReason>(), Ok(reason));
        }
    }
}
