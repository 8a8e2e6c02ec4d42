//! Cursors of the paged listings: which listing a cursor belongs to, and where it stands.
//!
//! A cursor is the postcard encoding of a [`Position`]: the listing, the scope within it
//! (the contract of a per-contract account listing, a digest of a history query's filters)
//! and the key of the last item returned. A cursor handed to another listing, or to the same
//! listing with another scope, is refused with [`StoreError::Invalid`]; a forged position
//! within the right listing only moves where the page starts, which the caller could ask for
//! anyway.

use serde::{Deserialize, Serialize};

use crate::store::{Cursor, StoreError};

/// The listings that hand out cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Listing {
    Contracts,
    Accounts,
    ContractAccounts,
    Apps,
    History,
    Revoked,
}

#[derive(Serialize, Deserialize)]
struct Position<'a> {
    listing: Listing,
    scope: &'a [u8],
    after: &'a [u8],
}

/// The cursor after `key` in `listing` (within `scope`).
pub(super) fn after(listing: Listing, scope: &[u8], key: &[u8]) -> Result<Cursor, StoreError> {
    postcard::to_allocvec(&Position {
        listing,
        scope,
        after: key,
    })
    .map(Cursor::new)
    .map_err(|e| StoreError::Backend(format!("cannot encode a cursor: {e}")))
}

/// The key a cursor of `listing` (within `scope`) continues after; refuses any other cursor.
pub(super) fn position<'c>(
    cursor: &'c Cursor,
    listing: Listing,
    scope: &[u8],
) -> Result<&'c [u8], StoreError> {
    match postcard::from_bytes::<Position<'c>>(cursor.as_bytes()) {
        Ok(p) if p.listing == listing && p.scope == scope => Ok(p.after),
        _ => Err(StoreError::Invalid(
            "the cursor is not one this listing gave (use the next cursor of its previous page)"
                .into(),
        )),
    }
}
