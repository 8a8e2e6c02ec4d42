//! Contracts: the corporate customers whose IDs estca certifies.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ContractCode;

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
    /// Whether the contract's IDs may have estca generate their key pair (EST
    /// `serverkeygen`, RFC 7030 section 4.4). Off by default: the IDs make their keys on their
    /// own PCs and no private key ever leaves them; records written before the option existed
    /// read as off.
    #[serde(default)]
    pub server_keygen: bool,
}
