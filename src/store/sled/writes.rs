//! [`RaStore`] and [`ServiceCertificates`] on sled: each write is applied in one sled
//! transaction (while holding the export lock shared), counted, then made durable before it
//! returns.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::SledStore;
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, HistoryEvent, Revocation, Serial,
};
use crate::store::{
    AccountChange, Budget, BudgetSpend, IssuedCertificate, NewCertificate, PasswordAttempt,
    RaStore, ReservedSerial, ServiceCertificates, StoreError,
};

impl SledStore {
    /// Runs one write under the export lock, then makes it durable when `wrote` says it wrote.
    async fn write<T>(
        &self,
        apply: impl FnOnce() -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let (out, wrote) = {
            let _writing = self.writing();
            apply()?
        };
        if wrote {
            self.durability.wrote();
            self.sync().await?;
        }
        Ok(out)
    }
}

#[async_trait]
impl RaStore for SledStore {
    async fn create_contract(
        &self,
        contract: Contract,
        event: HistoryEvent,
    ) -> Result<(), StoreError> {
        self.write(|| {
            self.create_contract_now(&contract, &event)
                .map(|()| ((), true))
        })
        .await
    }

    async fn create_account(
        &self,
        account: Account,
        event: HistoryEvent,
    ) -> Result<(), StoreError> {
        self.write(|| {
            self.create_account_now(&account, &event)
                .map(|()| ((), true))
        })
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
        self.write(|| {
            self.take_from_budget_now(key, budget, now)
                .map(|s| (s, true))
        })
        .await
    }

    async fn refund_to_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write(|| {
            self.refund_to_budget_now(key, budget, now)
                .map(|()| ((), true))
        })
        .await
    }

    async fn update_account(&self, change: AccountChange) -> Result<Account, StoreError> {
        let account = self
            .write(|| self.update_account_now(&change).map(|a| (a, true)))
            .await?;
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
        // Not synced: a reservation lost in a crash goes with the signature made after it,
        // which never left the process; the issuance that follows is synced.
        let _writing = self.writing();
        self.reserve_serial_now(serial, at)?;
        self.durability.wrote();
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
            .write(|| {
                self.revoke_app_now(name, revocation, &event)
                    .map(|r| (r, true))
            })
            .await?;
        if revoked_now {
            self.revoked_one();
        }
        Ok(app)
    }

    async fn append_history(&self, event: HistoryEvent) -> Result<(), StoreError> {
        self.write(|| self.append_history_now(&event).map(|()| ((), true)))
            .await
    }
}

#[async_trait]
impl ServiceCertificates for SledStore {
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
