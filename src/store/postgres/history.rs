//! History (利用履歴) in commit order across daemons, read newest first by pages.
//!
//! # Why numbers follow commit order
//!
//! A `bigserial` is drawn when a row is inserted, not when its transaction commits: under
//! concurrency, number 8 may commit after number 9, and a reader who saw 9 (and paged past
//! it, or keeps "after 9" as where to continue) would never see 8. So the number is drawn
//! from a counter row (`counters`, `history_seq`) with `UPDATE … RETURNING`, in the
//! statement that inserts the entry, the last of every appending transaction: the row lock it takes is held until the
//! transaction commits, so the next appender (on any daemon) waits for that commit and draws
//! the next number. Numbers are therefore assigned in commit order, and no reader can ever
//! see a number before every smaller one is committed. The cost is that appending
//! transactions commit one after another; each holds the lock only from its last statement to
//! its commit.
//!
//! (The alternative, listing only rows whose transaction is older than the oldest one still
//! running, keeps concurrency but makes every reader's view lag behind the slowest writer and
//! needs `xid8` bookkeeping in every query; the counter is simpler to prove.)

use tokio_postgres::types::ToSql;

use super::reads::fetch_limit;
use super::rows::{self, HISTORY};
use super::{db, PostgresStore};
use crate::model::{HistoryEntry, HistoryEvent};
use crate::store::listing::{history_position, Listing};
use crate::store::{HistoryQuery, Page, StoreError};

/// Draws the next history number (the lock that orders appends; see the module's doc) and
/// inserts the entry under it, in one statement: the lock is then held for that statement
/// and the commit only.
const APPEND: &str = "WITH next AS (UPDATE counters SET value = value + 1 \
     WHERE name = 'history_seq' RETURNING value) \
     INSERT INTO history (seq, at, at_ns, account_id, contract, kind, actor_kind, actor_uid, \
     actor_name, source, refused, outcome_text) \
     SELECT next.value, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM next";

/// Inserts one history entry numbered `$1` (importing).
const INSERT: &str = "INSERT INTO history (seq, at, at_ns, account_id, contract, kind, \
     actor_kind, actor_uid, actor_name, source, refused, outcome_text) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Appends `events` inside `tx`, numbered in commit order. Call it as the transaction's last
/// step (it takes the lock that orders appends, held until the commit).
pub(super) async fn append(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[&HistoryEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let append = tx.prepare_cached(APPEND).await.map_err(db)?;
    for event in events {
        let columns = Columns::of(event)?;
        let mut params = columns.params();
        params.remove(0);
        tx.execute(&append, &params).await.map_err(db)?;
    }
    Ok(())
}

/// Writes entry `seq` as it was (importing a backup).
pub(super) async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    seq: i64,
    event: &HistoryEvent,
) -> Result<(), StoreError> {
    let mut columns = Columns::of(event)?;
    columns.seq = seq;
    let insert = tx.prepare_cached(INSERT).await.map_err(db)?;
    tx.execute(&insert, &columns.params()).await.map_err(db)?;
    Ok(())
}

/// The columns of a history row.
struct Columns<'e> {
    seq: i64,
    at: time::OffsetDateTime,
    at_ns: i16,
    account: Option<&'e str>,
    contract: Option<&'e str>,
    kind: String,
    actor_kind: &'static str,
    actor_uid: Option<i64>,
    actor_name: Option<String>,
    source: &'e str,
    refused: bool,
    text: &'e str,
}

impl<'e> Columns<'e> {
    fn of(event: &'e HistoryEvent) -> Result<Self, StoreError> {
        let (at, at_ns) = rows::split(event.at);
        let (actor_kind, actor_uid, actor_name) = rows::actor_columns(&event.actor);
        let (refused, text) = rows::outcome_columns(&event.outcome);
        Ok(Self {
            seq: 0,
            at,
            at_ns,
            account: event.account.as_ref().map(|a| a.as_str()),
            contract: event.contract.as_ref().map(|c| c.as_str()),
            kind: rows::name_of(&event.kind)?,
            actor_kind,
            actor_uid,
            actor_name,
            source: &event.source,
            refused,
            text,
        })
    }

    /// The parameters in column order, `seq` first.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.seq,
            &self.at,
            &self.at_ns,
            &self.account,
            &self.contract,
            &self.kind,
            &self.actor_kind,
            &self.actor_uid,
            &self.actor_name,
            &self.source,
            &self.refused,
            &self.text,
        ]
    }
}

impl PostgresStore {
    /// A page of history, newest first: one statement whose filters are those the query
    /// sets, continuing below the cursor's number.
    pub(super) async fn history_page(
        &self,
        query: &HistoryQuery,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let (scope, before) = history_position(query)?;
        let before = before.map(rows::to_i64).transpose()?;
        let account = query.account.as_ref().map(|a| a.as_str().to_owned());
        let contract = query.contract.as_ref().map(|c| c.as_str().to_owned());
        let kind = query.kind.map(|k| rows::name_of(&k)).transpose()?;
        let since = query.since.map(rows::split);
        let until = query.until.map(rows::split);
        let limit = fetch_limit(query.page.limit);

        let mut filter = Filter::default();
        if let Some(before) = &before {
            filter.and("seq < ?", &[before]);
        }
        if let Some(account) = &account {
            filter.and("account_id = ?", &[account]);
        }
        if let Some(contract) = &contract {
            filter.and("contract = ?", &[contract]);
        }
        if let Some(kind) = &kind {
            filter.and("kind = ?", &[kind]);
        }
        if let Some((at, ns)) = &since {
            filter.and("(at, at_ns) >= (?, ?)", &[at, ns]);
        }
        if let Some((at, ns)) = &until {
            filter.and("(at, at_ns) < (?, ?)", &[at, ns]);
        }
        let (condition, mut params) = filter.finish();
        let sql = format!(
            "SELECT {HISTORY} FROM history {condition} ORDER BY seq DESC LIMIT ${}",
            params.len() + 1
        );
        params.push(&limit);
        let rows = self.rows(&sql, &params).await?;
        Self::page_of(
            &rows,
            query.page.limit,
            Listing::History,
            &scope,
            |row| Ok(rows::u64_of(row, "seq")?.to_be_bytes().to_vec()),
            rows::history,
        )
    }
}

/// The `WHERE` clause of a query built from the filters it sets, with its parameters.
#[derive(Default)]
struct Filter<'a> {
    conditions: Vec<String>,
    params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Filter<'a> {
    /// Adds `condition`, whose `?`s stand for `values` in order.
    fn and(&mut self, condition: &str, values: &[&'a (dyn ToSql + Sync)]) {
        let mut numbered = String::new();
        let mut next = self.params.len();
        for c in condition.chars() {
            if c == '?' {
                next += 1;
                numbered.push_str(&format!("${next}"));
            } else {
                numbered.push(c);
            }
        }
        self.conditions.push(numbered);
        self.params.extend_from_slice(values);
    }

    /// The clause (empty without conditions) and the parameters.
    fn finish(self) -> (String, Vec<&'a (dyn ToSql + Sync)>) {
        let clause = if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        };
        (clause, self.params)
    }
}
