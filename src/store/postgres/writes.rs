//! [`RaStore`] and [`ServiceCertificates`] on PostgreSQL: each write is one transaction,
//! durable when it returns (PostgreSQL's commit, `synchronous_commit` on; concurrent commits
//! share WAL flushes).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{begin, commit, PostgresStore};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, ContractCode, HistoryEvent,
    Revocation, Serial,
};
use crate::store::{
    AccountChange, Budget, BudgetSpend, IssuedCertificate, NewCertificate, PasswordAttempt,
    RaStore, ReservedSerial, ServiceCertificates, StoreError,
};

#[async_trait]
impl RaStore for PostgresStore {
    async fn create_contract(
        &self,
        contract: Contract,
        event: HistoryEvent,
    ) -> Result<(), StoreError> {
        self.create_contract_now(&contract, &event).await
    }

    async fn set_contract_server_keygen(
        &self,
        code: &ContractCode,
        server_keygen: bool,
        event: HistoryEvent,
    ) -> Result<Contract, StoreError> {
        self.set_contract_server_keygen_now(code, server_keygen, &event)
            .await
    }

    async fn create_account(
        &self,
        account: Account,
        event: HistoryEvent,
    ) -> Result<(), StoreError> {
        self.create_account_now(&account, &event).await
    }

    async fn count_password_attempt(
        &self,
        id: &AccountId,
        limit: u32,
    ) -> Result<PasswordAttempt, StoreError> {
        self.count_password_attempt_now(id, limit).await
    }

    async fn clear_password_attempts(&self, id: &AccountId) -> Result<Account, StoreError> {
        self.clear_password_attempts_now(id).await
    }

    async fn take_from_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<BudgetSpend, StoreError> {
        self.take_from_budget_now(key, budget, now).await
    }

    async fn refund_to_budget(
        &self,
        key: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.refund_to_budget_now(key, budget, now).await
    }

    async fn forget_refilled_budgets(
        &self,
        prefix: &str,
        budget: Budget,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.forget_refilled_budgets_now(prefix, budget, now).await
    }

    async fn update_account(&self, change: AccountChange) -> Result<Account, StoreError> {
        self.update_account_now(&change).await
    }

    async fn reserve_serial(
        &self,
        serial: Serial,
        at: OffsetDateTime,
    ) -> Result<ReservedSerial, StoreError> {
        self.reserve_serial_now(serial, at).await?;
        Ok(ReservedSerial::reserved(serial))
    }

    async fn commit_issuance(
        &self,
        issuance: NewCertificate,
    ) -> Result<IssuedCertificate, StoreError> {
        self.commit_issuance_now(&issuance).await
    }

    async fn create_app(
        &self,
        app: App,
        record: CertificateRecord,
        event: HistoryEvent,
    ) -> Result<IssuedCertificate, StoreError> {
        self.create_app_now(&app, &record, &event).await
    }

    async fn revoke_app(
        &self,
        name: &AppName,
        revocation: Revocation,
        event: HistoryEvent,
    ) -> Result<App, StoreError> {
        self.revoke_app_now(name, revocation, &event).await
    }

    async fn append_history(&self, event: HistoryEvent) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        super::history::append(&tx, &[&event]).await?;
        commit(tx).await
    }
}

#[async_trait]
impl ServiceCertificates for PostgresStore {
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
        self.record_service_certificate_now(&record).await
    }
}
