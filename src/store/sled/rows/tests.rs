//! Rows: every kind and every variant round-trips; the JSON rows of the last release convert;
//! bad rows are refused with a message; and what binary rows save (`sizes`, run with
//! `--nocapture` to see the figures).

use time::OffsetDateTime;

use super::legacy::to_binary;
use super::{Stored, TokenBucket, ROW_VERSION};
use crate::model::{
    Account, Actor, App, AppScope, CertificateChoice, CertificateRecord, Contract, EventKind,
    HistoryEntry, HistoryEvent, Holder, KeyFingerprint, Outcome, Revocation, RevocationReason,
    Role, Serial,
};
use crate::store::sled::{ACCOUNTS, APPS, CERTIFICATES, CONTRACTS, HISTORY, REVOKED};
use crate::store::{RevokedCertificate, StoreError};

/// Rows written by estca before binary rows (from `tests/data/json-store.tar.gz`): tree,
/// key in hex, the JSON value.
const JSON_ROWS: &str = include_str!("json-rows.tsv");

fn json_rows() -> Vec<(&'static str, Vec<u8>, &'static str)> {
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

fn round_trip<T: Stored + PartialEq + std::fmt::Debug>(key: &[u8], value: &T) -> Vec<u8> {
    let bytes = value.encode().unwrap();
    assert_eq!(bytes[0], ROW_VERSION);
    let back = T::decode(key, &bytes).unwrap();
    assert_eq!(&back, value);
    assert_eq!(back.encode().unwrap(), bytes, "encoding is deterministic");
    bytes
}

fn at(seconds: i64, nanos: u32) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap()
        .replace_nanosecond(nanos)
        .unwrap()
}

fn serial(b: u8) -> Serial {
    Serial::from_bytes([b; 16]).unwrap()
}

#[test]
fn every_kind_and_variant_round_trips() {
    let contract = Contract {
        code: "7001".parse().unwrap(),
        name: "大手町エステート株式会社".into(),
        created_at: at(1_700_000_000, 123_456_789),
    };
    round_trip(b"7001", &contract);

    for (choice, role, current) in [
        (CertificateChoice::Continue, Role::User, None),
        (CertificateChoice::Reissue, Role::Master, Some(serial(3))),
        (CertificateChoice::Revoked, Role::User, Some(serial(0x7f))),
    ] {
        let account = Account {
            failed_attempts: 4,
            locked: true,
            choice,
            current_certificate: current,
            issued_count: 9,
            version: u64::MAX,
            ..Account::new(
                "Kiyo.0012".parse().unwrap(),
                "5110".parse().unwrap(),
                role,
                "User Kiyo".into(),
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                at(-86_400, 1),
            )
        };
        round_trip(b"Kiyo.0012", &account);
    }

    let holders = [
        Holder::Account {
            id: "nozawa1".parse().unwrap(),
            contract: "5110".parse().unwrap(),
            role: Role::Master,
            issued_num: 2,
        },
        Holder::App {
            name: "netbanking".parse().unwrap(),
        },
        Holder::TlsServer {
            names: vec!["localhost".into(), "::1".into()],
        },
        Holder::OcspSigner,
    ];
    for (holder, reason) in holders.into_iter().zip(RevocationReason::ALL) {
        for revocation in [
            None,
            Some(Revocation {
                at: at(1_800_000_000, 5),
                reason,
            }),
        ] {
            let record = CertificateRecord {
                serial: serial(9),
                holder: holder.clone(),
                subject: "C=JP, O=Bank, CN=nozawa1 5110".into(),
                not_before: at(1_700_000_000, 0),
                not_after: at(1_731_536_000, 0),
                key: KeyFingerprint([0xab; 32]),
                revocation,
                der: vec![0x30, 0x82, 0x01, 0x00, 0xff],
            };
            round_trip(serial(9).as_bytes(), &record);
        }
    }
    for reason in RevocationReason::ALL {
        let entry = RevokedCertificate {
            serial: serial(9),
            revocation: Revocation {
                at: at(1_800_000_000, 999_999_999),
                reason,
            },
            not_after: at(1_900_000_000, 0),
        };
        round_trip(serial(9).as_bytes(), &entry);
    }

    for scope in [
        AppScope::All,
        AppScope::Contracts(vec!["5110".parse().unwrap(), "7001".parse().unwrap()]),
    ] {
        let app = App {
            name: "netbanking".parse().unwrap(),
            scope,
            can_create_contracts: true,
            certificate: serial(4),
            revoked: true,
            created_at: at(1_700_000_000, 7),
        };
        round_trip(b"netbanking", &app);
    }

    let kinds = [
        EventKind::Enroll,
        EventKind::Reenroll,
        EventKind::Reissue,
        EventKind::Continue,
        EventKind::Revoke,
        EventKind::Lock,
        EventKind::Unlock,
        EventKind::PasswordChange,
        EventKind::AccountCreate,
        EventKind::AccountUpdate,
        EventKind::ContractCreate,
        EventKind::Query,
        EventKind::AppCreate,
        EventKind::AppRevoke,
    ];
    let actors = [
        Actor::Operator { uid: Some(0) },
        Actor::Operator { uid: None },
        Actor::Account {
            id: "nozawa1".parse().unwrap(),
        },
        Actor::App {
            name: "netbanking".parse().unwrap(),
        },
        Actor::Anonymous,
        Actor::System,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let entry = HistoryEntry {
            seq: 42,
            event: HistoryEvent {
                at: at(1_700_000_000 + i as i64, 17),
                account: (i % 2 == 0).then(|| "nozawa1".parse().unwrap()),
                contract: (i % 3 == 0).then(|| "5110".parse().unwrap()),
                kind,
                actor: actors[i % actors.len()].clone(),
                source: "2001:db8::1".into(),
                outcome: if i % 2 == 0 {
                    Outcome::Ok {
                        detail: "issued".into(),
                    }
                } else {
                    Outcome::Refused {
                        reason: "ロック".into(),
                    }
                },
            },
        };
        round_trip(&42u64.to_be_bytes(), &entry);
    }

    let bucket = TokenBucket {
        tokens: 2.5,
        updated_ms: -3,
    };
    round_trip(b"budget", &bucket);
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

#[test]
fn unreadable_rows_are_refused_with_what_is_wrong() {
    let contract = Contract {
        code: "5110".parse().unwrap(),
        name: "Nozawa".into(),
        created_at: at(0, 0),
    };
    let good = contract.encode().unwrap();
    let message = |bytes: &[u8]| match Contract::decode(b"5110", bytes) {
        Err(StoreError::Backend(m)) => m,
        other => panic!("{other:?}"),
    };
    let mut newer = good.clone();
    newer[0] = 9;
    assert!(message(&newer).contains("unknown row version 9"));
    assert!(message(br#"{"code":"5110"}"#).contains("JSON row"));
    let mut longer = good.clone();
    longer.push(0);
    assert!(message(&longer).contains("1 bytes after the row"));
    assert!(message(&good[..good.len() - 1]).contains("`contracts`"));
    assert!(message(&[]).contains("empty row"));
    let bad_key = match Contract::decode(b"51/10", &good) {
        Err(StoreError::Backend(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(bad_key.contains("'51/10'"), "{bad_key}");
}
