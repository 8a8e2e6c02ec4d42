//! The conformance suite: what every backend of the storage authority must do, written once
//! against the interfaces of [`crate::store`] and run for each backend.
//!
//! A backend joins by implementing [`Backend`] (where a fresh store lives and how to open it)
//! and adding one line at the end of this file: `suite!(name: Type);`. Each test of the suite
//! then runs as `store::conformance::<name>::<test>` (`cargo test --lib store::conformance`).
//!
//! The tests are split by concern: [`accounts`] (contracts, accounts, edits, the failed-login
//! count), [`issuance`] (reservations, commits, supersession), [`certificates`] (applications
//! and estca's own services), [`history`], [`paging`] (every listing and its cursors),
//! [`revocation`] (the index, the feed, CRL numbers), [`backup`] (export and import, reopening)
//! [`removal`] (removed IDs), [`budgets`] and [`ca_binding`] (which CA a database belongs to).

mod accounts;
mod backup;
mod budgets;
mod ca_binding;
mod certificates;
pub(in crate::store) mod fixtures;
mod history;
mod issuance;
mod paging;
mod removal;
mod revocation;

use std::sync::Arc;

use async_trait::async_trait;

use super::Store;

/// A backend under test: where a store is kept, and how to open it there.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// Where a store is kept (a temporary directory, a test database); removed when dropped.
    type Place: Send + Sync;

    /// A new, empty place.
    async fn place() -> Self::Place;

    /// Opens the store kept at `place` (no other handle on it is open).
    async fn open(place: &Self::Place) -> Arc<dyn Store>;

    /// Whether the backend can be tested here (a backend that needs a server the machine
    /// lacks says so on standard error, and its tests pass without running).
    fn available() -> bool {
        true
    }
}

/// Runs every test of the suite for one backend, in a module of the given name.
macro_rules! suite {
    ($name:ident: $backend:ty) => {
        mod $name {
            tests_for!($backend;
                accounts::contracts_and_accounts_are_created_once,
                accounts::the_server_keygen_option_is_kept_with_the_contract,
                accounts::ids_differing_by_case_only_are_refused,
                accounts::update_account_is_compare_and_swap,
                accounts::account_edits_apply_to_the_stored_record,
                accounts::the_failed_login_count_is_not_the_version,
                accounts::password_attempts_are_counted_up_to_the_limit_under_concurrency,
                accounts::clearing_password_attempts_spares_a_locked_id,
                issuance::a_serial_is_reserved_once_and_committed_only_when_reserved,
                issuance::issuance_supersedes_what_the_registration_authority_decided,
                issuance::supersedes_must_name_the_current_unrevoked_certificate,
                issuance::issuance_refusals_change_nothing,
                issuance::a_renewal_may_certify_the_key_it_supersedes,
                issuance::concurrent_issuances_on_one_version_let_exactly_one_through,
                issuance::update_account_revokes_in_the_same_step,
                certificates::applications_are_created_once_and_revoked_for_good,
                certificates::an_application_is_recorded_only_with_its_own_unrevoked_certificate,
                certificates::service_certificates_are_reserved_recorded_backed_up_and_unique,
                history::history_is_newest_first_and_filters_combine,
                history::history_follows_commit_order_under_concurrency,
                history::history_pages_neither_skip_nor_repeat_while_entries_are_appended,
                paging::every_listing_pages_exactly,
                paging::pages_neither_skip_nor_repeat_while_rows_are_added,
                paging::a_cursor_from_another_listing_is_refused,
                revocation::the_revocation_index_follows_revokes_and_supersedes_and_the_feed_says_so,
                revocation::crl_numbers_strictly_increase_under_concurrency_and_across_reopens,
                revocation::a_crl_number_is_at_least_its_floor_even_after_a_restore_puts_it_back,
                backup::export_import_round_trips_every_record,
                backup::commits_survive_a_reopen,
                budgets::budgets_hold_under_concurrency_refill_and_take_refunds,
                budgets::refilled_budgets_under_a_prefix_are_forgotten_and_no_others,
                budgets::a_budget_taken_from_while_it_is_forgotten_is_never_an_error,
                removal::a_removed_id_stays_on_record_and_changes_no_more,
                ca_binding::the_first_ca_binding_wins_under_concurrency_and_across_reopens,
            );
        }
    };
}

/// One `#[tokio::test]` per test function, for `$backend`.
macro_rules! tests_for {
    ($backend:ty; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                if <$backend as $crate::store::conformance::Backend>::available() {
                    $crate::store::conformance::$module::$test::<$backend>().await
                }
            }
        )*
    };
}

/// sled, in a temporary directory.
#[async_trait]
impl Backend for super::SledStore {
    type Place = tempfile::TempDir;

    async fn place() -> Self::Place {
        tempfile::tempdir().expect("a temporary directory")
    }

    async fn open(place: &Self::Place) -> Arc<dyn Store> {
        Arc::new(super::SledStore::open(&place.path().join("db")).expect("open the sled store"))
    }
}

suite!(sled: crate::store::SledStore);

/// fjall, in a temporary directory.
#[async_trait]
impl Backend for super::FjallStore {
    type Place = tempfile::TempDir;

    async fn place() -> Self::Place {
        tempfile::tempdir().expect("a temporary directory")
    }

    async fn open(place: &Self::Place) -> Arc<dyn Store> {
        Arc::new(
            super::FjallStore::open(&place.path().join("fjall"), 16 * 1024 * 1024)
                .expect("open the fjall store"),
        )
    }
}

suite!(fjall: crate::store::FjallStore);

/// PostgreSQL: a database of its own on the test server ([`super::postgres::harness`]).
#[async_trait]
impl Backend for super::PostgresStore {
    type Place = super::postgres::TestDatabase;

    async fn place() -> Self::Place {
        super::postgres::TestDatabase::new()
    }

    async fn open(place: &Self::Place) -> Arc<dyn Store> {
        Arc::new(place.open().await)
    }

    fn available() -> bool {
        super::postgres::harness::TestPostgres::shared().is_some()
    }
}

suite!(postgres: crate::store::PostgresStore);
