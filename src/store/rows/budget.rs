//! Budget rows (key: the budget's name): a token bucket's state, as the store's budget
//! arithmetic keeps it ([`TokenBucket`]).

use super::{from_row, to_row, Stored};
use crate::store::budget::TokenBucket;
use crate::store::tables::BUDGETS;
use crate::store::StoreError;

impl Stored for TokenBucket {
    const TABLE: &'static str = BUDGETS;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        to_row(BUDGETS, self)
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        from_row(BUDGETS, key, value)
    }
}
