//! Budget rows (key: the budget's name): a token bucket's state, as the store's budget
//! arithmetic keeps it ([`TokenBucket`]).

use super::{from_row, to_row, Stored};
pub(in crate::store::sled) use crate::store::budget::TokenBucket;
use crate::store::sled::BUDGETS;
use crate::store::StoreError;

impl Stored for TokenBucket {
    const TREE: &'static str = BUDGETS;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        to_row(BUDGETS, self)
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        from_row(BUDGETS, key, value)
    }
}
