//! The rule of CRL numbers: each one drawn is above the last, and at least the floor its
//! caller gives.

use crate::store::StoreError;

/// The CRL number to draw after `last` (0 before the first): one more, or `floor` if that
/// is higher. RFC 5280 5.2.3 wants a number that only grows for a CRL issuer; the floor
/// keeps it growing when the counter itself is put back, as a restore from a backup does:
/// the numbers drawn since that backup was taken are below a floor that grows with time.
pub(in crate::store) fn crl_number_after(last: u64, floor: u64) -> Result<u64, StoreError> {
    last.checked_add(1)
        .map(|next| next.max(floor))
        .ok_or_else(|| StoreError::Backend("the CRL number is exhausted".into()))
}
