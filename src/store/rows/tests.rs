//! Rows: every kind and every variant round-trips, keeps the bytes it had before sled and
//! fjall shared their rows, and bad rows are refused with a message.

use time::OffsetDateTime;

use super::Stored;
use crate::model::{
    Account, Actor, App, AppScope, CertificateChoice, CertificateRecord, Contract, EventKind,
    HistoryEntry, HistoryEvent, Holder, KeyFingerprint, Outcome, Revocation, RevocationReason,
    Role, Serial,
};
use crate::store::budget::TokenBucket;
use crate::store::{RevokedCertificate, StoreError};

fn round_trip<T: Stored + PartialEq + std::fmt::Debug>(key: &[u8], value: &T) -> Vec<u8> {
    let bytes = value.encode().unwrap();
    assert!(super::is_binary_row(bytes[0]));
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
        server_keygen: false,
    };
    round_trip(b"7001", &contract);
    round_trip(
        b"7001",
        &Contract {
            server_keygen: true,
            ..contract.clone()
        },
    );

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

#[test]
fn unreadable_rows_are_refused_with_what_is_wrong() {
    let contract = Contract {
        code: "5110".parse().unwrap(),
        name: "Nozawa".into(),
        created_at: at(0, 0),
        server_keygen: true,
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

/// The bytes of one row of each kind (and each holder form) as sled wrote them in `store11`,
/// before its rows and fjall's became one set: a database written then still opens as it is,
/// and any change to a row's layout shows here (it needs a new [`ROW_VERSION`] and a
/// migration, not an edit of these bytes).
#[test]
fn rows_keep_the_bytes_written_before_they_were_shared() {
    let contract = Contract {
        code: "7001".parse().unwrap(),
        name: "大手町".into(),
        created_at: at(1_700_000_000, 123_456_789),
        server_keygen: false,
    };
    let account = Account {
        failed_attempts: 4,
        locked: true,
        choice: CertificateChoice::Reissue,
        current_certificate: Some(serial(3)),
        issued_count: 9,
        version: 300,
        ..Account::new(
            "Kiyo.0012".parse().unwrap(),
            "5110".parse().unwrap(),
            Role::Master,
            "User Kiyo".into(),
            "$argon2id$x".into(),
            at(-86_400, 1),
        )
    };
    let record = CertificateRecord {
        serial: serial(9),
        holder: Holder::Account {
            id: "nozawa1".parse().unwrap(),
            contract: "5110".parse().unwrap(),
            role: Role::User,
            issued_num: 2,
        },
        subject: "CN=nozawa1".into(),
        not_before: at(1_700_000_000, 0),
        not_after: at(1_731_536_000, 0),
        key: KeyFingerprint([0xab; 32]),
        revocation: Some(Revocation {
            at: at(1_800_000_000, 5),
            reason: RevocationReason::PrivilegeWithdrawn,
        }),
        der: vec![0x30, 0x82, 0x01, 0x00, 0xff],
    };
    let tls = CertificateRecord {
        holder: Holder::TlsServer {
            names: vec!["localhost".into(), "::1".into()],
        },
        revocation: None,
        ..record.clone()
    };
    let app = App {
        name: "netbanking".parse().unwrap(),
        scope: AppScope::Contracts(vec!["5110".parse().unwrap(), "7001".parse().unwrap()]),
        can_create_contracts: true,
        certificate: serial(4),
        revoked: true,
        created_at: at(1_700_000_000, 7),
    };
    let entry = HistoryEntry {
        seq: 42,
        event: HistoryEvent {
            at: at(1_700_000_000, 17),
            account: Some("nozawa1".parse().unwrap()),
            contract: None,
            kind: EventKind::AppRevoke,
            actor: Actor::App {
                name: "netbanking".parse().unwrap(),
            },
            source: "2001:db8::1".into(),
            outcome: Outcome::Refused {
                reason: "ロック".into(),
            },
        },
    };
    let revoked = RevokedCertificate::of(&record, record.revocation.unwrap());
    let bucket = TokenBucket {
        tokens: 2.5,
        updated_ms: -3,
    };
    let rows: [(&str, Vec<u8>); 8] = [
        ("contract", contract.encode().unwrap()),
        ("account", account.encode().unwrap()),
        ("record", record.encode().unwrap()),
        ("tls", tls.encode().unwrap()),
        ("app", app.encode().unwrap()),
        ("entry", entry.encode().unwrap()),
        ("revoked", revoked.encode().unwrap()),
        ("bucket", bucket.encode().unwrap()),
    ];
    let golden = [
        // Layout 2 of contract rows: layout 1 (below) and `server_keygen`.
        "0209e5a4a7e6898be794ba80c49fd50c959aef3a00",
        "010435313130000955736572204b69796f0b246172676f6e3269642478040101010303030303030303030303030303030309ac02ffc50a01",
        "0100076e6f7a61776131043531313001020a434e3d6e6f7a6177613180c49fd50c008092a9f30c00abababababababababababababababababababababababababababababababab0180c8ceb40d05060530820100ff",
        "010202096c6f63616c686f7374033a3a310a434e3d6e6f7a6177613180c49fd50c008092a9f30c00abababababababababababababababababababababababababababababababab000530820100ff",
        "0101020435313130043730303101040404040404040404040404040404040180c49fd50c07",
        "0180c49fd50c1101076e6f7a61776131000d020a6e657462616e6b696e670b323030313a6462383a3a310109e383ade38383e382af",
        "0180c8ceb40d05068092a9f30c00",
        "01000000000000044005",
    ];
    for ((name, row), golden) in rows.iter().zip(golden) {
        assert_eq!(hex::encode(row), golden, "the {name} row changed its bytes");
    }
}

/// A removed ID's row is written in its own version (the version 1 row, then the removal
/// time), round-trips, and an ID never removed keeps writing (and reading) version 1.
#[test]
fn a_removed_id_has_a_row_of_its_own_version_and_others_keep_version_1() {
    let live = Account::new(
        "Kiyo.0012".parse().unwrap(),
        "5110".parse().unwrap(),
        Role::User,
        "User Kiyo".into(),
        "$argon2id$x".into(),
        at(-86_400, 1),
    );
    let removed = Account {
        removed_at: Some(at(1_800_000_000, 999_999_999)),
        ..live.clone()
    };
    let live_row = live.encode().unwrap();
    assert_eq!(live_row[0], super::ROW_VERSION);
    let removed_row = removed.encode().unwrap();
    assert_eq!(removed_row[0], super::REMOVED_ACCOUNT_ROW_VERSION);
    assert_eq!(
        Account::decode(b"Kiyo.0012", &removed_row).unwrap(),
        removed
    );
    // The version 2 row is the version 1 row followed by the removal instant.
    assert_eq!(removed_row[1..live_row.len()], live_row[1..]);
    assert_eq!(Account::decode(b"Kiyo.0012", &live_row).unwrap(), live);
    let mut truncated = removed_row.clone();
    truncated.truncate(live_row.len());
    assert!(Account::decode(b"Kiyo.0012", &truncated).is_err());
}

/// A contract row written before `server_keygen` existed (layout 1, the bytes above before
/// layout 2) still reads, as the option off; a row of layout 1 with anything after it is
/// refused.
#[test]
fn contract_rows_written_before_server_keygen_read_as_off() {
    let before = hex::decode("0109e5a4a7e6898be794ba80c49fd50c959aef3a").unwrap();
    let contract = Contract::decode(b"7001", &before).unwrap();
    assert_eq!(contract.name, "大手町");
    assert_eq!(contract.created_at, at(1_700_000_000, 123_456_789));
    assert!(!contract.server_keygen);
    let mut longer = before.clone();
    longer.push(1);
    assert!(Contract::decode(b"7001", &longer).is_err());
}
