//! [`StoreReads`] on PostgreSQL: single rows by key, listings by pages in key order (one
//! statement each, so one snapshot), their cursors holding the last key returned.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::rows::{self, ACCOUNT, APP, CERTIFICATE, CONTRACT};
use super::{db, PostgresStore};
use crate::model::{
    Account, AccountId, App, AppName, CertificateRecord, Contract, ContractCode, HistoryEntry,
    KeyFingerprint, Serial,
};
use crate::store::listing::{cursor_position, Listing, PageBuilder};
use crate::store::{HistoryQuery, Page, PageRequest, StoreError, StoreReads};

/// Converts a row into a domain value.
pub(super) type Convert<T> = fn(&Row) -> Result<T, StoreError>;

/// The key a page's cursor continues after, read from a row.
pub(super) type KeyOf = fn(&Row) -> Result<Vec<u8>, StoreError>;

/// Rows to ask for a page of `limit` items: one more, to learn whether another page follows.
pub(super) fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

impl PostgresStore {
    /// The rows of one statement, prepared once per connection.
    pub(super) async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.query(&statement, params).await.map_err(db)
    }

    /// One row of one statement, converted, or `None`.
    async fn one<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        into: Convert<T>,
    ) -> Result<Option<T>, StoreError> {
        self.rows(sql, params).await?.first().map(into).transpose()
    }

    /// A page from rows read in the listing's order (at most one past the page).
    pub(super) fn page_of<T>(
        rows: &[Row],
        limit: usize,
        listing: Listing,
        scope: &[u8],
        key: KeyOf,
        into: Convert<T>,
    ) -> Result<Page<T>, StoreError> {
        let mut page = PageBuilder::new(limit);
        for row in rows {
            if page.is_full() {
                page.more_exists();
                break;
            }
            page.offer(&key(row)?, into(row)?);
        }
        page.finish(listing, scope)
    }

    /// A page of a table keyed by one text column: `table`'s rows after the cursor, in key
    /// order.
    async fn text_keyed_page<T>(
        &self,
        table: &str,
        columns: &str,
        key_column: &str,
        listing: Listing,
        page: &PageRequest,
        into: Convert<T>,
    ) -> Result<Page<T>, StoreError> {
        let after = match &page.after {
            Some(cursor) => Some(text_key(cursor_position(cursor, listing, &[])?)?),
            None => None,
        };
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE ($1::text IS NULL OR {key_column} > $1) \
             ORDER BY {key_column} LIMIT $2"
        );
        let rows = self.rows(&sql, &[&after, &fetch_limit(page.limit)]).await?;
        Self::page_of(&rows, page.limit, listing, &[], key_of(key_column), into)
    }
}

/// The text key of a cursor.
fn text_key(bytes: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| StoreError::Invalid("not a cursor from a previous page".into()))
}

/// Reads the text column `name` as a cursor key.
fn key_of(name: &str) -> KeyOf {
    match name {
        "code" => |row| Ok(rows::get::<&str>(row, "code")?.as_bytes().to_vec()),
        "id" => |row| Ok(rows::get::<&str>(row, "id")?.as_bytes().to_vec()),
        _ => |row| Ok(rows::get::<&str>(row, "name")?.as_bytes().to_vec()),
    }
}

#[async_trait]
impl StoreReads for PostgresStore {
    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError> {
        let sql = format!("SELECT {CONTRACT} FROM contracts WHERE code = $1");
        self.one(&sql, &[&code.as_str()], rows::contract).await
    }

    async fn contracts(&self, page: PageRequest) -> Result<Page<Contract>, StoreError> {
        self.text_keyed_page(
            "contracts",
            CONTRACT,
            "code",
            Listing::Contracts,
            &page,
            rows::contract,
        )
        .await
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT} FROM accounts WHERE id = $1");
        self.one(&sql, &[&id.as_str()], rows::account).await
    }

    async fn accounts(
        &self,
        contract: Option<&ContractCode>,
        page: PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        let Some(code) = contract else {
            return self
                .text_keyed_page(
                    "accounts",
                    ACCOUNT,
                    "id",
                    Listing::Accounts,
                    &page,
                    rows::account,
                )
                .await;
        };
        let scope = code.as_str().as_bytes();
        let listing = Listing::ContractAccounts;
        let after = match &page.after {
            Some(cursor) => Some(text_key(cursor_position(cursor, listing, scope)?)?),
            None => None,
        };
        let sql = format!(
            "SELECT {ACCOUNT} FROM accounts WHERE contract = $1 AND ($2::text IS NULL OR id > $2) \
             ORDER BY id LIMIT $3"
        );
        let rows = self
            .rows(&sql, &[&code.as_str(), &after, &fetch_limit(page.limit)])
            .await?;
        Self::page_of(
            &rows,
            page.limit,
            listing,
            scope,
            key_of("id"),
            rows::account,
        )
    }

    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        let sql = format!("SELECT {CERTIFICATE} FROM certificates WHERE serial = $1");
        self.one(&sql, &[&&serial.as_bytes()[..]], rows::certificate)
            .await
    }

    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError> {
        self.one(
            "SELECT first_serial FROM certified_keys WHERE key_fingerprint = $1",
            &[&&key.0[..]],
            |row| rows::serial(row, "first_serial"),
        )
        .await
    }

    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP} FROM apps WHERE name = $1");
        self.one(&sql, &[&name.as_str()], rows::app).await
    }

    async fn apps(&self, page: PageRequest) -> Result<Page<App>, StoreError> {
        self.text_keyed_page("apps", APP, "name", Listing::Apps, &page, rows::app)
            .await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Page<HistoryEntry>, StoreError> {
        self.history_page(query).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let answered = tokio::time::timeout(PING_TIMEOUT, async {
            self.client()
                .await?
                .simple_query("SELECT 1")
                .await
                .map_err(db)
        })
        .await;
        match answered {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the database {} did not answer within {PING_TIMEOUT:?}",
                self.url()
            ))),
        }
    }
}

/// How long `/readyz` waits for the database.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
