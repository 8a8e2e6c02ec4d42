//! [`RaStore`] and [`ServiceCertificates`] on fjall: each write is one fjall transaction,
//! committed only if it succeeds and changed something, then made durable before it returns.

use async_trait::async_trait;
use fjall::WriteTransaction;
use time::OffsetDateTime;

use super::{storage, FjallStore};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, HistoryEvent, Revocation, Serial,
};
use crate::store::{
    AccountChange, Budget, BudgetSpend, IssuedCertificate, NewCertificate, PasswordAttempt,
    RaStore, ReservedSerial, ServiceCertificates, StoreError,
};

impl FjallStore {
    /// Runs `apply` in one write transaction. The transaction is committed (and counted for
    /// the next sync) when `apply` succeeds and says it wrote; otherwise nothing it did is
    /// kept. Returns what `apply` returned.
    pub(super) fn transact<T>(
        &self,
        apply: impl FnOnce(&mut WriteTransaction<'_>) -> Result<(T, bool), StoreError>,
    ) -> Result<(T, bool), StoreError> {
        let mut tx = self.keyspace.write_tx();
        match apply(&mut tx) {
            Ok((out, true)) => {
                tx.commit()
                    .map_err(|e| storage("(transaction commit)", e))?;
                self.durability.wrote();
                Ok((out, true))
            }
            Ok((out, false)) => {
                tx.rollback();
                Ok((out, false))
            }
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }

    /// Runs one write, then makes it durable when it wrote.
    async fn write<T>(
        &self,
        apply: impl FnOnce() -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let (out, wrote) = apply()?;
        if wrote {
            self.sync().await?;
        }
        Ok(out)
    }
}

#[async_trait]
impl RaStore for FjallStore {
    async fn create_contract(
        &self,
        contract: Contract,
        event: HistoryEvent,
    ) -> Result<(), StoreError> {
        self.write(|| self.create_contract_now(&contract, &event))
            .await
    }

    async fn create_account(
        &self,
        account: Account,
        event: HistoryEvent,
    ) -> Result<(), StoreError> {
        self.write(|| self.create_account_now(&account, &event))
            .await
    }

    async fn count_password_attempt(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<PasswordAttempt, StoreError> {
        self.write(|| self.count_password_attempt_now(id, limit))
            .await
    }

    async fn clear_password_attempts(&self, id: &AccountId) -> Result<Account, StoreError> {
        self.write(|| self.clear_password_attempts_now(id)).await
    }

    async fn take_from_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<BudgetSpend, StoreError> {
        self.write(|| self.take_from_budget_now(key, budget, now))
            .await
    }

    async fn refund_to_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write(|| self.refund_to_budget_now(key, budget, now))
            .await
    }

    async fn update_account(&self, change: AccountChange) -> Result<Account, StoreError> {
        let account = self.write(|| self.update_account_now(&change)).await?;
        if change.revoke.is_some() {
            self.revoked_one();
        }
        Ok(account)
    }

    async fn reserve_serial(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<ReservedSerial, StoreError> {
        // Committed, not synced: a reservation lost in a crash goes with the signature made
        // after it, which never left the process; the issuance that follows is synced, and
        // with it every commit before it.
        self.reserve_serial_now(serial, at)?;
        Ok(ReservedSerial::reserved(serial))
    }

    async fn commit_issuance(
        &self,
        issuance: NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        self.write(|| self.commit_issuance_now(&issuance).map(|i| (i, true)))
            .await
    }

    async fn create_app(
        &self,
        app: App,
        record: CertificateRecord,
        event: HistoryEvent,
    ) -> Result<IssuedCertificate, StoreError> {
        self.write(|| {
            self.create_app_now(&app, &record, &event)
                .map(|i| (i, true))
        })
        .await
    }

    async fn revoke_app(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: HistoryEvent,
    ) -> Result<App, StoreError> {
        let (app, revoked_now) = self
            .write(|| self.revoke_app_now(name, revocation, &event))
            .await?;
        if revoked_now {
            self.revoked_one();
        }
        Ok(app)
    }

    async fn append_history(&self, event: HistoryEvent) -> Result<(), StoreError> {
        self.write(|| self.transact(|tx| self.append(tx, &event).map(|_| ((), true))))
            .await
    }
}

#[async_trait]
impl ServiceCertificates for FjallStore {
    async fn reserve_service_serial(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<ReservedSerial, StoreError> {
        RaStore::reserve_serial(self, serial, at).await
    }

    async fn record_service_certificate(
        &self,
        record: CertificateRecord,
    ) -> Result<IssuedCertificate, StoreError> {
        self.write(|| {
            self.record_service_certificate_now(&record)
                .map(|i| (i, true))
        })
        .await
    }
}
