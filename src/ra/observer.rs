//! What the registration authority reports of what it did, for whoever counts it (the
//! metrics): an interface the registration authority defines, so that it knows nothing of who
//! listens and the listener depends on it, not the other way round.

use super::RaError;
use crate::model::{RevocationReason, Role};

/// Told of every issuance, refused enrollment, lockout and revocation the registration
/// authority commits. Calls are made on the request's task: they must not block.
pub trait Observer: Send + Sync {
    /// A certificate was issued to an ID of `role`.
    fn issued(&self, role: Role);

    /// An enrollment was refused, or failed, with `error`.
    fn refused(&self, error: &RaError);

    /// An ID was locked after too many wrong passwords.
    fn locked_out(&self);

    /// A certificate was revoked for `reason` (`superseded` by a renewal or reissue).
    fn revoked(&self, reason: RevocationReason);
}

/// Tells no one: for a registration authority whose outcomes nobody counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {
    fn issued(&self, _role: Role) {}
    fn refused(&self, _error: &RaError) {}
    fn locked_out(&self) {}
    fn revoked(&self, _reason: RevocationReason) {}
}
