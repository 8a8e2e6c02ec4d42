//! Who is asking the registration authority, from where, and what they may administer.

use crate::model::{AccountId, Actor};

use super::authority::Authority;

/// The name prefix of the refused-ID budgets in the store, one per caller.
pub(super) const REFUSED_IDS_PREFIX: &str = "refused-ids/";

/// Who is asking, from where, and what they may administer: recorded in history with every
/// decision.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated actor.
    pub actor: Actor,
    /// The peer's address, or `admin-socket`.
    pub source: String,
    /// What the caller may administer.
    pub authority: Authority,
}

impl Caller {
    /// The operator on the admin socket (with the peer's Unix user ID when known).
    pub fn operator(uid: Option<u32>) -> Self {
        Self {
            actor: Actor::Operator { uid },
            source: "admin-socket".to_owned(),
            authority: Authority::Operator,
        }
    }

    /// The name of the caller's budget of IDs refused as not available; `None` for the
    /// operator, who sees every ID anyway and is not limited.
    pub(super) fn refused_ids_budget(&self) -> Option<String> {
        match (&self.authority, &self.actor) {
            (Authority::Operator, _) => None,
            (_, actor) => Some(format!("{REFUSED_IDS_PREFIX}{actor}")),
        }
    }

    /// An ID acting for itself (enrollment, renewal): no administration.
    pub(super) fn account(id: &AccountId, source: &str) -> Self {
        Self::enrolling(Actor::Account { id: id.clone() }, source)
    }

    /// An enrolling ID or an anonymous client: no administration.
    pub(super) fn enrolling(actor: Actor, source: &str) -> Self {
        Self {
            actor,
            source: source.to_owned(),
            authority: Authority::Nothing,
        }
    }
}
