//! The store's domain rules: the preconditions and effects of every write, as pure functions
//! over the model types.
//!
//! A backend reads what a rule needs inside its transaction, calls the rule, and writes what
//! the rule returns (or aborts with the error it returns); it decides nothing itself. So every
//! backend (sled, fjall, and any later one) enforces the same rules with the same errors,
//! and the conformance suite (`src/store/conformance/`, compiled with the tests) checks them
//! once through each.

mod accounts;
mod certificates;
mod crl_number;

pub(in crate::store) use accounts::{
    apply_change, clear_password_attempts, contract_options, count_password_attempt,
    existing_account, new_account, new_contract,
};
pub(in crate::store) use certificates::{
    app_certificate, issuance_holder, issue, new_app, new_certificate, revocation_entry,
    revoke_account_certificate, revoke_app, revoke_app_certificate, service_certificate,
    supersession,
};
pub(in crate::store) use crl_number::crl_number_after;

#[cfg(test)]
mod tests;
