//! The registration authority's writes ([`RaStore`]) and the service certificates
//! ([`ServiceCertificates`]) on any engine: each write is applied by the backend in one atomic
//! step (its `*_now` methods, which call [`crate::store::rules`]), then counted, made durable
//! before it returns (group commit, [`crate::store::durability`]), and, if it revoked a
//! certificate, announced on the revocation feed. Serial reservations are applied and counted
//! but not synced.
//!
//! A backend implements [`Engine`] and the `*_now` methods below, then states
//! `durable_writes!(ItsStore);` once.
//!
//! [`RaStore`]: crate::store::RaStore
//! [`ServiceCertificates`]: crate::store::ServiceCertificates

use crate::store::durability::{Disk, GroupCommit};
use crate::store::StoreError;

/// What the shared write path needs of a backend besides its `*_now` methods.
pub(in crate::store) trait Engine: Send + Sync + 'static {
    /// How the engine's writes reach stable storage.
    type Disk: Disk;

    /// The store's group commit.
    fn group_commit(&self) -> &GroupCommit<Self::Disk>;

    /// The revocation feed ([`RevocationStore::revocations`](crate::store::RevocationStore::revocations)).
    fn revocation_feed(&self) -> &tokio::sync::watch::Sender<u64>;
}

/// Runs one write: `apply` returns what it produced and whether it wrote anything, which is
/// then counted and made durable before this returns.
pub(in crate::store) async fn durably<E: Engine, T>(
    engine: &E,
    apply: impl FnOnce() -> Result<(T, bool), StoreError>,
) -> Result<T, StoreError> {
    let (out, wrote) = apply()?;
    if wrote {
        engine.group_commit().wrote();
        engine.group_commit().sync().await?;
    }
    Ok(out)
}

/// Runs one write that always writes, as [`durably`].
pub(in crate::store) async fn always_durably<E: Engine, T>(
    engine: &E,
    apply: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    durably(engine, || apply().map(|out| (out, true))).await
}

/// Reserves a serial: applied and counted, not synced. A reservation lost in a crash goes
/// with the signature made after it, which never left the process; the issuance that
/// follows is synced, and with it every write before it.
pub(in crate::store) fn reserve<E: Engine>(
    engine: &E,
    apply: impl FnOnce() -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    apply()?;
    engine.group_commit().wrote();
    Ok(())
}

/// Tells the revocation feed's subscribers that a revocation was committed (and is durable).
pub(in crate::store) fn revoked_one<E: Engine>(engine: &E) {
    engine
        .revocation_feed()
        .send_modify(|n| *n = n.wrapping_add(1));
}

/// Implements [`RaStore`](crate::store::RaStore) and
/// [`ServiceCertificates`](crate::store::ServiceCertificates) for a backend that implements
/// [`Engine`] and these methods, each applying one write atomically (the `bool` says whether
/// it wrote anything):
///
/// `create_contract_now(&Contract, &HistoryEvent) -> ()`,
/// `set_contract_server_keygen_now(&ContractCode, bool, &HistoryEvent) -> Contract`,
/// `create_account_now(&Account, &HistoryEvent) -> ()`,
/// `count_password_attempt_now(&AccountId, u32) -> (PasswordAttempt, bool)`,
/// `clear_password_attempts_now(&AccountId) -> (Account, bool)`,
/// `take_from_budget_now(&str, Budget, OffsetDateTime) -> (BudgetSpend, bool)`,
/// `refund_to_budget_now(&str, Budget, OffsetDateTime) -> ((), bool)`,
/// `forget_refilled_budgets_now(&str, Budget, OffsetDateTime) -> u64`,
/// `update_account_now(&AccountChange) -> Account`,
/// `reserve_serial_now(Serial, OffsetDateTime) -> ()`,
/// `async commit_issuance_durably(NewCertificate) -> IssuedCertificate` (applied, counted and
/// durable, as [`always_durably`] makes a write; sled batches them),
/// `create_app_now(&App, &CertificateRecord, &HistoryEvent) -> IssuedCertificate`,
/// `revoke_app_now(&AppName, Revocation, &HistoryEvent) -> (App, bool)` (whether its
/// certificate was revoked now), `append_history_now(&HistoryEvent) -> ()`,
/// `record_service_certificate_now(&CertificateRecord) -> IssuedCertificate`, all in
/// `Result<_, StoreError>`.
macro_rules! durable_writes {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::RaStore for $store {
            async fn create_contract(
                &self,
                contract: $crate::model::Contract,
                event: $crate::model::HistoryEvent,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::writes::always_durably(self, || {
                    self.create_contract_now(&contract, &event)
                })
                .await
            }

            async fn set_contract_server_keygen(
                &self,
                code: &$crate::model::ContractCode,
                server_keygen: bool,
                event: $crate::model::HistoryEvent,
            ) -> Result<$crate::model::Contract, $crate::store::StoreError> {
                $crate::store::writes::always_durably(self, || {
                    self.set_contract_server_keygen_now(code, server_keygen, &event)
                })
                .await
            }

            async fn create_account(
                &self,
                account: $crate::model::Account,
                event: $crate::model::HistoryEvent,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::writes::always_durably(self, || {
                    self.create_account_now(&account, &event)
                })
                .await
            }

            async fn count_password_attempt(
                &self,
                id: &$crate::model::AccountId,
                limit: u32,
            ) -> Result<$crate::store::PasswordAttempt, $crate::store::StoreError> {
                $crate::store::writes::durably(self, || self.count_password_attempt_now(id, limit))
                    .await
            }

            async fn clear_password_attempts(
                &self,
                id: &$crate::model::AccountId,
            ) -> Result<$crate::model::Account, $crate::store::StoreError> {
                $crate::store::writes::durably(self, || self.clear_password_attempts_now(id)).await
            }

            async fn take_from_budget(
                &self,
                key: &str,
                budget: $crate::store::Budget,
                now: time::OffsetDateTime,
            ) -> Result<$crate::store::BudgetSpend, $crate::store::StoreError> {
                $crate::store::writes::durably(self, || self.take_from_budget_now(key, budget, now))
                    .await
            }

            async fn refund_to_budget(
                &self,
                key: &str,
                budget: $crate::store::Budget,
                now: time::OffsetDateTime,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::writes::durably(self, || self.refund_to_budget_now(key, budget, now))
                    .await
            }

            async fn forget_refilled_budgets(
                &self,
                prefix: &str,
                budget: $crate::store::Budget,
                now: time::OffsetDateTime,
            ) -> Result<u64, $crate::store::StoreError> {
                self.forget_refilled_budgets_now(prefix, budget, now)
            }

            async fn update_account(
                &self,
                change: $crate::store::AccountChange,
            ) -> Result<$crate::model::Account, $crate::store::StoreError> {
                let account = $crate::store::writes::always_durably(self, || {
                    self.update_account_now(&change)
                })
                .await?;
                if change.revoke.is_some() {
                    $crate::store::writes::revoked_one(self);
                }
                Ok(account)
            }

            async fn reserve_serial(
                &self,
                serial: $crate::model::Serial,
                at: time::OffsetDateTime,
            ) -> Result<$crate::store::ReservedSerial, $crate::store::StoreError> {
                $crate::store::writes::reserve(self, || self.reserve_serial_now(serial, at))?;
                Ok($crate::store::ReservedSerial::reserved(serial))
            }

            async fn commit_issuance(
                &self,
                issuance: $crate::store::NewCertificate,
            ) -> Result<$crate::store::IssuedCertificate, $crate::store::StoreError> {
                let issued = self.commit_issuance_durably(issuance).await?;
                if issued.superseded().is_some() {
                    $crate::store::writes::revoked_one(self);
                }
                Ok(issued)
            }

            async fn create_app(
                &self,
                app: $crate::model::App,
                record: $crate::model::CertificateRecord,
                event: $crate::model::HistoryEvent,
            ) -> Result<$crate::store::IssuedCertificate, $crate::store::StoreError> {
                $crate::store::writes::always_durably(self, || {
                    self.create_app_now(&app, &record, &event)
                })
                .await
            }

            async fn revoke_app(
                &self,
                name: &$crate::model::AppName,
                revocation: $crate::model::Revocation,
                event: $crate::model::HistoryEvent,
            ) -> Result<$crate::model::App, $crate::store::StoreError> {
                let (app, revoked_now) = $crate::store::writes::always_durably(self, || {
                    self.revoke_app_now(name, revocation, &event)
                })
                .await?;
                if revoked_now {
                    $crate::store::writes::revoked_one(self);
                }
                Ok(app)
            }

            async fn append_history(
                &self,
                event: $crate::model::HistoryEvent,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::writes::always_durably(self, || self.append_history_now(&event))
                    .await
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ServiceCertificates for $store {
            async fn reserve_service_serial(
                &self,
                serial: $crate::model::Serial,
                at: time::OffsetDateTime,
            ) -> Result<$crate::store::ReservedSerial, $crate::store::StoreError> {
                $crate::store::RaStore::reserve_serial(self, serial, at).await
            }

            async fn record_service_certificate(
                &self,
                record: $crate::model::CertificateRecord,
            ) -> Result<$crate::store::IssuedCertificate, $crate::store::StoreError> {
                $crate::store::writes::always_durably(self, || {
                    self.record_service_certificate_now(&record)
                })
                .await
            }
        }
    };
}

pub(in crate::store) use durable_writes;
