//! Budget rows (key: the budget's name): a token bucket's state.

use serde::{Deserialize, Serialize};

use super::{from_row, to_row, Stored};
use crate::store::sled::BUDGETS;
use crate::store::StoreError;

/// A [`Budget`](crate::store::Budget)'s state (its arithmetic is in `budgets.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(in crate::store::sled) struct TokenBucket {
    /// Tokens left, fractional while refilling.
    pub(in crate::store::sled) tokens: f64,
    /// When `tokens` was last brought up to date, Unix time in milliseconds.
    pub(in crate::store::sled) updated_ms: i64,
}

impl Stored for TokenBucket {
    const TREE: &'static str = BUDGETS;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        to_row(BUDGETS, self)
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        from_row(BUDGETS, key, value)
    }
}
