//! What only sled's rows need beyond the shared rows ([`crate::store::rows`], which sled
//! writes): the JSON rows of the last release ([`legacy`]), read once by the migration.

pub(super) mod legacy;

#[cfg(test)]
pub(super) mod tests;
