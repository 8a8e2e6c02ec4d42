//! sled's JSON rows of the last release: they convert to the same values, and what binary
//! rows save (`sizes`, run with `--nocapture` to see the figures).

use time::OffsetDateTime;

use super::legacy::to_binary;
use crate::model::{
    Account, App, CertificateChoice, CertificateRecord, Contract, EventKind, HistoryEntry, Outcome,
    RevocationReason, Serial,
};
use crate::store::rows::Stored;
use crate::store::tables::{ACCOUNTS, APPS, CERTIFICATES, CONTRACTS, HISTORY, REVOKED};
use crate::store::RevokedCertificate;

/// Rows written by estca before binary rows (from `tests/data/json-store.tar.gz`): tree,
/// key in hex, the JSON value.
const JSON_ROWS: &str = include_str!("json-rows.tsv");

/// The rows of [`JSON_ROWS`]: tree, key, JSON value (also what the migration's tests load).
pub(in crate::store::sled) fn json_rows() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    JSON_ROWS
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            let tree = parts.next().unwrap();
            let key = hex::decode(parts.next().unwrap()).unwrap();
            (tree, key, parts.next().unwrap())
        })
        .collect()
}

/// Decodes the binary row converted from a JSON row as the model type of its tree, and
/// encodes it again.
fn read_back(tree: &str, key: &[u8], binary: &[u8]) -> Vec<u8> {
    match tree {
        CONTRACTS => Contract::decode(key, binary).unwrap().encode(),
        ACCOUNTS => Account::decode(key, binary).unwrap().encode(),
        CERTIFICATES => CertificateRecord::decode(key, binary).unwrap().encode(),
        APPS => App::decode(key, binary).unwrap().encode(),
        HISTORY => HistoryEntry::decode(key, binary).unwrap().encode(),
        REVOKED => RevokedCertificate::decode(key, binary).unwrap().encode(),
        other => panic!("no rows of {other} in the sample"),
    }
    .unwrap()
}

#[test]
fn json_rows_of_the_last_release_convert_to_the_same_values() {
    for (tree, key, json) in json_rows() {
        let binary = to_binary(tree, &key, json.as_bytes()).unwrap();
        assert_eq!(read_back(tree, &key, &binary), binary, "{tree}");
    }
    let rows = json_rows();
    let find = |tree: &str, key: &[u8]| {
        let (_, _, json) = rows
            .iter()
            .find(|(t, k, _)| *t == tree && k == key)
            .unwrap();
        to_binary(tree, key, json.as_bytes()).unwrap()
    };
    let account = Account::decode(b"nozawa1", &find(ACCOUNTS, b"nozawa1")).unwrap();
    assert_eq!(
        (account.issued_count, account.version, account.choice),
        (2, 7, CertificateChoice::Continue)
    );
    assert_eq!(
        account.current_certificate,
        Some("09f2fd4e2d1e7d902a6e8d2914e0015e".parse().unwrap())
    );
    assert_eq!(
        account.created_at,
        OffsetDateTime::parse(
            "2026-11-29T21:40:41.302476423Z",
            &time::format_description::well_known::Rfc3339
        )
        .unwrap()
    );
    let kiyo = Account::decode(b"Kiyo.0012", &find(ACCOUNTS, b"Kiyo.0012")).unwrap();
    assert_eq!((kiyo.failed_attempts, kiyo.locked), (2, false));
    let serial: Serial = "62934c0ba20ffe9d5f74ac64c7cca383".parse().unwrap();
    let revoked =
        CertificateRecord::decode(serial.as_bytes(), &find(CERTIFICATES, serial.as_bytes()))
            .unwrap();
    assert_eq!(
        revoked.revocation.map(|r| r.reason),
        Some(RevocationReason::KeyCompromise)
    );
    assert!(revoked.subject.ends_with("CN=nozawa2 5110"));
    assert_eq!(&revoked.der[..2], &[0x30, 0x82]);
    let contract = Contract::decode(b"7001", &find(CONTRACTS, b"7001")).unwrap();
    assert_eq!(contract.name, "大手町エステート株式会社");
    let seq = 9u64.to_be_bytes();
    let entry = HistoryEntry::decode(&seq, &find(HISTORY, &seq)).unwrap();
    assert_eq!((entry.seq, entry.event.kind), (9, EventKind::Enroll));
    assert!(
        matches!(entry.event.outcome, Outcome::Ok { ref detail } if detail.contains("superseding"))
    );
}

/// Bytes per row, JSON (the last release) against binary, for the rows of the sample: the
/// figures of the README's storage section.
#[test]
fn sizes() {
    let mut table = std::collections::BTreeMap::<String, (usize, usize, usize)>::new();
    for (tree, key, json) in json_rows() {
        let binary = to_binary(tree, &key, json.as_bytes()).unwrap();
        let kind = match tree {
            CERTIFICATES if json.contains(r#""kind":"account""#) => "certificates (an ID's)",
            CERTIFICATES => "certificates (others)",
            other => other,
        };
        let e = table.entry(kind.to_owned()).or_default();
        e.0 += 1;
        e.1 += json.len();
        e.2 += binary.len();
        assert!(
            binary.len() * 10 < json.len() * 7,
            "{tree}: {} binary bytes against {} JSON",
            binary.len(),
            json.len()
        );
    }
    println!("| row | JSON bytes | binary bytes |");
    println!("|---|---|---|");
    for (kind, (n, json, binary)) in table {
        println!("| {kind} | {} | {} |", json / n, binary / n);
    }
}
