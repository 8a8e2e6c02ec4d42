//! How the command line prints answers: aligned text for people, or the API's JSON.

use std::fmt::Display;
use std::io::Write;

use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use crate::api::HistoryPage;
use crate::model::rfc3339;
use crate::model::{Actor, Outcome};
use crate::ra::{AccountView, AppView, CertificateView, ContractView};

use super::failure::Failure;

/// Why a command's result could not be printed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Standard output is closed or failing, e.g. a pipe into `head` that has exited.
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
    /// The result could not be turned into JSON.
    #[error("cannot print JSON: {0}")]
    Json(#[source] serde_json::Error),
}

impl From<OutputError> for Failure {
    fn from(e: OutputError) -> Self {
        Failure::from(e.to_string())
    }
}

impl From<OutputError> for String {
    fn from(e: OutputError) -> Self {
        e.to_string()
    }
}

/// Writes `bytes` to standard output: every result of every command goes out here, so that a
/// failed write (a closed pipe, as in `estca cert show SERIAL | head -1`) is reported as a
/// failure, where `print!` would panic.
pub fn write(bytes: &[u8]) -> Result<(), OutputError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(OutputError::Stdout)
}

/// Writes `text` and a line ending to standard output (see [`write`]).
pub fn line(text: impl Display) -> Result<(), OutputError> {
    write(format!("{text}\n").as_bytes())
}

/// Prints `value` as pretty JSON.
fn print_json<T: Serialize>(value: &T) -> Result<(), OutputError> {
    line(serde_json::to_string_pretty(value).map_err(OutputError::Json)?)
}

/// Prints rows as columns separated by two spaces, the first row being the header.
fn table(rows: &[Vec<String>]) -> Result<(), OutputError> {
    write(aligned(rows).as_bytes())
}

/// Prints `(key, value)` lines, the values starting in column `width + 1`.
fn fields(rows: &[(&str, String)], width: usize) -> Result<(), OutputError> {
    let text: String = rows
        .iter()
        .map(|(key, value)| format!("{key:<width$} {value}\n"))
        .collect();
    write(text.as_bytes())
}

/// Rows as lines of columns separated by two spaces, each column as wide as its widest cell
/// on a terminal: `大手町` takes six columns, not three, so Japanese names keep the rows aligned.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.width())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.width())))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// `contract add`.
pub fn contract_created(contract: &ContractView, json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(contract);
    }
    line(format_args!(
        "contract {} created ({})",
        contract.code, contract.name
    ))
}

/// `contract show` and `contract edit`.
pub fn contract(contract: &ContractView, json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(contract);
    }
    table(&[
        vec!["code".into(), contract.code.to_string()],
        vec!["name".into(), contract.name.clone()],
        vec!["created".into(), rfc3339(contract.created_at)],
        vec!["server keygen".into(), server_keygen(contract).into()],
    ])
}

/// The `server_keygen` option as `contract show` and `list` print it.
fn server_keygen(contract: &ContractView) -> &'static str {
    if contract.server_keygen {
        "allowed"
    } else {
        "off"
    }
}

/// `contract list`.
pub fn contracts(contracts: &[ContractView], json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(&contracts);
    }
    let mut rows = vec![vec![
        "CODE".into(),
        "NAME".into(),
        "CREATED".into(),
        "SERVER KEYGEN".into(),
    ]];
    rows.extend(contracts.iter().map(|c| {
        vec![
            c.code.to_string(),
            c.name.clone(),
            rfc3339(c.created_at),
            server_keygen(c).into(),
        ]
    }));
    table(&rows)
}

fn state(view: &AccountView) -> String {
    let mut parts = vec![];
    if view.removed_at.is_some() {
        parts.push("removed".to_owned());
    }
    if view.locked {
        parts.push("locked".to_owned());
    }
    parts.push(match view.certificate_choice {
        crate::model::CertificateChoice::Continue => "continue".to_owned(),
        crate::model::CertificateChoice::Reissue => "reissue pending".to_owned(),
        crate::model::CertificateChoice::Revoked => "revoked".to_owned(),
    });
    parts.join(", ")
}

/// `account show` and the answer of every account action.
pub fn account(view: &AccountView, json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(view);
    }
    let mut rows = vec![
        ("id", view.id.to_string()),
        ("contract", view.contract.to_string()),
        ("role", view.role.to_string()),
        ("name", view.name.clone()),
        ("state", state(view)),
        ("locked", view.locked.to_string()),
        ("failed attempts", view.failed_attempts.to_string()),
        ("certificates issued", view.issued_count.to_string()),
    ];
    if let Some(at) = view.removed_at {
        rows.push(("removed at", rfc3339(at)));
    }
    match &view.certificate {
        Some(c) => {
            rows.push(("certificate serial", c.serial.to_string()));
            rows.push(("certificate status", c.status.to_string()));
            if let Some(n) = c.issued_num {
                rows.push(("CERTISSUEDNUM", n.to_string()));
            }
            rows.push(("not before", rfc3339(c.not_before)));
            rows.push(("not after", rfc3339(c.not_after)));
            if let Some(r) = &c.revocation {
                rows.push(("revoked at", rfc3339(r.at)));
                rows.push(("revocation reason", r.reason.to_string()));
            }
        }
        None => rows.push(("certificate", "none issued".to_owned())),
    }
    fields(&rows, 20)
}

/// `account list`.
pub fn accounts(views: &[AccountView], json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(&views);
    }
    let mut rows = vec![vec![
        "ID".into(),
        "CONTRACT".into(),
        "ROLE".into(),
        "NAME".into(),
        "STATE".into(),
        "SERIAL".into(),
        "STATUS".into(),
        "NOT AFTER".into(),
    ]];
    rows.extend(views.iter().map(|v| {
        let (serial, status, not_after) = match &v.certificate {
            Some(c) => (
                c.serial.to_string(),
                c.status.to_string(),
                rfc3339(c.not_after),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        vec![
            v.id.to_string(),
            v.contract.to_string(),
            v.role.to_string(),
            v.name.clone(),
            state(v),
            serial,
            status,
            not_after,
        ]
    }));
    table(&rows)
}

/// `history`.
pub fn history(page: &HistoryPage, json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(page);
    }
    let mut rows = vec![vec![
        "TIME".into(),
        "ID".into(),
        "EVENT".into(),
        "ACTOR".into(),
        "SOURCE".into(),
        "OUTCOME".into(),
    ]];
    rows.extend(page.entries.iter().map(|e| {
        vec![
            rfc3339(e.at),
            e.account.as_ref().map_or("-".into(), |a| a.to_string()),
            e.kind.to_string(),
            Actor::from(e.actor.clone()).to_string(),
            e.source.clone(),
            Outcome::from(e.outcome.clone()).to_string(),
        ]
    }));
    table(&rows)?;
    if let Some(cursor) = &page.next_cursor {
        eprintln!("estca: older entries: add --cursor {cursor} for the next page, or --all");
    }
    Ok(())
}

/// `cert show`.
pub fn certificate(view: &CertificateView, json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(view);
    }
    let s = &view.summary;
    let mut rows = vec![
        ("serial", s.serial.to_string()),
        (
            "holder",
            match (&view.account, &view.contract, &view.app, &view.service) {
                (Some(id), Some(code), _, _) => format!("{id} (contract {code})"),
                (_, _, Some(app), _) => format!("application {app}"),
                (_, _, _, Some(service)) => service.to_string(),
                _ => "-".to_owned(),
            },
        ),
        ("subject", view.subject.clone()),
        (
            "CERTISSUEDNUM",
            s.issued_num
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        ),
        ("not before", rfc3339(s.not_before)),
        ("not after", rfc3339(s.not_after)),
        ("status", s.status.to_string()),
    ];
    if let Some(r) = &s.revocation {
        rows.push(("revoked at", rfc3339(r.at)));
        rows.push(("revocation reason", r.reason.to_string()));
    }
    fields(&rows, 18)
}

/// `app add`: the certificate chain for the application, or JSON.
pub fn app_created(created: &crate::api::CreatedApp, json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(created);
    }
    write(created.certificate_pem.as_bytes())
}

/// `app list` and `app revoke`.
pub fn apps(apps: &[AppView], json: bool) -> Result<(), OutputError> {
    if json {
        return print_json(&apps);
    }
    let mut rows = vec![vec![
        "NAME".into(),
        "SCOPE".into(),
        "CREATES CONTRACTS".into(),
        "STATE".into(),
        "SERIAL".into(),
        "NOT AFTER".into(),
        "SERVES TLS FOR".into(),
    ]];
    rows.extend(apps.iter().map(|a| {
        let (serial, not_after) = match &a.certificate {
            Some(c) => (c.serial.to_string(), rfc3339(c.not_after)),
            None => ("-".into(), "-".into()),
        };
        vec![
            a.name.to_string(),
            a.scope.to_string(),
            if a.can_create_contracts { "yes" } else { "no" }.into(),
            if a.revoked { "revoked" } else { "active" }.into(),
            serial,
            not_after,
            if a.hosts.is_empty() {
                "-".into()
            } else {
                crate::model::HostName::list(&a.hosts)
            },
        ]
    }));
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The terminal column where each cell of `line` starts.
    fn starts(line: &str) -> Vec<usize> {
        let mut starts = vec![0];
        let mut column = 0;
        let mut spaces = 0;
        for ch in line.chars() {
            if ch == ' ' {
                spaces += 1;
            } else {
                if spaces >= 2 {
                    starts.push(column);
                }
                spaces = 0;
            }
            column += ch.to_string().width();
        }
        starts
    }

    #[test]
    fn japanese_names_keep_the_columns_aligned() {
        let rows: Vec<Vec<String>> = [
            ["CODE", "NAME", "CREATED"],
            ["7001", "大手町エステート株式会社", "2026-11-30T03:00:00Z"],
            ["5110", "Nozawa Trading", "2026-11-30T03:00:00Z"],
            ["9", "ｶﾅ商事", "2026-11-30T03:00:00Z"],
        ]
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
        let text = aligned(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        for line in &lines {
            assert_eq!(starts(line), vec![0, 6, 32], "{text}");
        }
        // 大手町エステート株式会社 is 12 characters but 24 columns wide.
        assert_eq!(
            lines[1],
            "7001  大手町エステート株式会社  2026-11-30T03:00:00Z"
        );
        assert_eq!(
            lines[2],
            "5110  Nozawa Trading            2026-11-30T03:00:00Z"
        );
    }
}
