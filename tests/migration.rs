//! A store written by the last release (JSON rows) is migrated to binary rows once, at the
//! first start of this estca, and reads back as it was written (issue 11, item 5).
//!
//! The fixture `tests/data/json-store.tar.gz` holds the data and CA directories of an estca
//! that ran `tests/data/make-json-store.sh`: two contracts (5110, and 7001 with a Japanese
//! name), a master ID `otemat9` enrolled once; `nozawa1` enrolled, given 再発行する and
//! enrolled again (its first certificate superseded); `nozawa2` enrolled then revoked
//! (keyCompromise); `Kiyo.0012` with two wrong passwords; an application `netbanking` for
//! contract 7001; and nozawa1's current key and chain, to renew with after the migration.
//! That certificate is valid until 2027-11-29T21:40:41Z: once it has expired, the renewal is
//! refused as expired and nozawa1 enrolls with its password instead (the lifecycle's row for
//! an expired certificate), which checks the migrated account just as well.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use estca::store::StoreReads;
use serde_json::Value;

/// The fixture's certificates, as the script issued them.
const OTEMAT9: &str = "23f9a55a2e16b2d9457b3ad96b354252";
const NOZAWA1_FIRST: &str = "3e97547976886d28bab50260bc018dd6";
const NOZAWA1_SECOND: &str = "09f2fd4e2d1e7d902a6e8d2914e0015e";
const NOZAWA2: &str = "62934c0ba20ffe9d5f74ac64c7cca383";
const NETBANKING: &str = "7cf5a1480c7b4ad5a63da84211f35074";
const TLS_SERVER: &str = "13acfe1dfb3a6d000b11360bd072a1ba";
const OCSP_SIGNER: &str = "010916b2052ff58ebabc9bac201f6b45";

/// What the daemon logs when it migrates.
const MIGRATED: &str = "migrated the store from JSON rows to binary rows";

/// A test directory holding the fixture's `data/` and `certs/` where the configuration the
/// harness writes expects them, with the store's migration logged.
fn fixture() -> TestDir {
    let dir = TestDir::new(Options {
        env: vec![(
            "ESTCA_LOG__LEVEL".into(),
            "warn,estca::server=info,estca::store=info".into(),
        )],
        ..Options::default()
    });
    let archive = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/json-store.tar.gz");
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -xzf {archive} failed");
    for sub in ["data", "data/db", "certs"] {
        std::fs::set_permissions(dir.path().join(sub), std::fs::Permissions::from_mode(0o700))
            .unwrap();
    }
    dir
}

fn account(d: &TestDaemon, id: &str) -> Value {
    d.cli_json(&["account", "show", id])
}

/// The account's fields that the fixture's script set (its version is checked offline).
fn state(a: &Value) -> (String, String, bool, u64, String, Value, u64) {
    (
        a["contract"].as_str().unwrap_or_default().to_owned(),
        a["role"].as_str().unwrap_or_default().to_owned(),
        a["locked"].as_bool().unwrap(),
        a["failed_attempts"].as_u64().unwrap(),
        a["certificate_choice"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        a["certificate"]["serial"].clone(),
        a["issued_count"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_json_store_of_the_last_release_is_migrated_once_and_reads_back() {
    let daemon = TestDaemon::start_in(fixture());
    assert!(
        daemon.stderr().contains(MIGRATED),
        "the first start migrates; stderr:\n{}",
        daemon.stderr()
    );

    // Contracts.
    let contracts = daemon.cli_json(&["contract", "list"]);
    let contracts: Vec<(String, String)> = contracts
        .as_array()
        .or_else(|| contracts["contracts"].as_array())
        .expect("a list of contracts")
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        contracts,
        [
            ("5110".into(), "Nozawa Trading Co.".into()),
            ("7001".into(), "大手町エステート株式会社".into())
        ]
    );

    // Accounts: what the script did to each, with the versions it left.
    let s = |x: &str| x.to_owned();
    let serial = |x: &str| Value::String(x.to_owned());
    assert_eq!(
        state(&account(&daemon, "otemat9")),
        (
            s("7001"),
            s("master"),
            false,
            0,
            s("continue"),
            serial(OTEMAT9),
            1
        )
    );
    assert_eq!(
        state(&account(&daemon, "nozawa1")),
        (
            s("5110"),
            s("user"),
            false,
            0,
            s("continue"),
            serial(NOZAWA1_SECOND),
            2
        )
    );
    assert_eq!(
        state(&account(&daemon, "nozawa2")),
        (
            s("5110"),
            s("user"),
            false,
            0,
            s("revoked"),
            serial(NOZAWA2),
            1
        )
    );
    assert_eq!(
        state(&account(&daemon, "Kiyo.0012")),
        (
            s("5110"),
            s("user"),
            false,
            2,
            s("continue"),
            Value::Null,
            0
        )
    );
    assert_eq!(account(&daemon, "nozawa1")["name"], "User nozawa1");

    // Certificates and their revocations.
    let cert = |serial: &str| daemon.cli_json(&["cert", "show", serial]);
    let first = cert(NOZAWA1_FIRST);
    assert_eq!(first["status"], "revoked", "{first}");
    assert_eq!(first["revocation"]["reason"], "superseded", "{first}");
    let revoked = cert(NOZAWA2);
    assert_eq!(
        revoked["revocation"]["reason"], "keyCompromise",
        "{revoked}"
    );
    assert_eq!(
        revoked["revocation"]["at"], "2026-11-29T21:40:41.688231445Z",
        "{revoked}"
    );
    // Unrevoked (active, or expired once the fixture is old: the OCSP signer's week ends on
    // 2026-12-06).
    for serial in [OTEMAT9, NOZAWA1_SECOND, NETBANKING, TLS_SERVER, OCSP_SIGNER] {
        let c = cert(serial);
        assert_eq!(c["revocation"], Value::Null, "{serial}: {c}");
        assert!(
            c["status"] == "active" || c["status"] == "expired",
            "{serial}: {c}"
        );
        assert!(
            c["pem"]
                .as_str()
                .unwrap_or_default()
                .contains("BEGIN CERTIFICATE"),
            "{c}"
        );
    }
    assert_eq!(
        cert(NOZAWA1_SECOND)["subject"],
        "C=JP, O=estca Development, OU=estca Development Issuing CA - DEVELOPMENT, \
         OU=USERTYPE - 2, OU=CERTISSUEDNUM - 2, CN=nozawa1 5110"
    );

    // The application.
    let apps = daemon.cli_json(&["app", "list"]);
    let apps = apps
        .as_array()
        .or_else(|| apps["apps"].as_array())
        .expect("a list of apps")
        .clone();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["name"], "netbanking");
    assert_eq!(apps[0]["certificate"]["serial"], NETBANKING);
    assert_eq!(apps[0]["revoked"], false);

    // History: the script's 15 entries, in their order, numbered as they were.
    let history = daemon.cli_json(&["history", "--limit", "1000"]);
    let entries = history["entries"].as_array().unwrap();
    let listed: Vec<(u64, String)> = entries
        .iter()
        .filter(|e| e["kind"] != "query")
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = [
        "app_create",
        "enroll",
        "enroll",
        "revoke",
        "enroll",
        "enroll",
        "reissue",
        "enroll",
        "enroll",
        "account_create",
        "account_create",
        "account_create",
        "account_create",
        "contract_create",
        "contract_create",
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| (14 - i as u64, (*k).to_owned()))
    .collect();
    assert_eq!(listed, expected);
    let kiyo = daemon.dir().history("Kiyo.0012");
    assert!(
        kiyo.iter()
            .any(|e| e["outcome"]["reason"] == "authentication failed: wrong password (2 of 5)"),
        "{kiyo:?}"
    );

    // nozawa1 renews with the certificate the last release issued, over mutual TLS.
    let fixture_dir = daemon.dir().path().to_owned();
    let chain = std::fs::read(fixture_dir.join("nozawa1-chain.pem")).unwrap();
    let key_pem = std::fs::read_to_string(fixture_dir.join("nozawa1.key")).unwrap();
    let (label, key_der) = pem_rfc7468::decode_vec(key_pem.as_bytes()).unwrap();
    assert_eq!(label, "PRIVATE KEY");
    let next = p256();
    let answer = daemon
        .client_with_cert(&chain, &key_der)
        .reenroll(&next.csr_der, true)
        .await;
    let still_valid = {
        use x509_parser::prelude::FromDer;
        let leaf = leaf_der(&chain);
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&leaf).unwrap();
        parsed.validity().not_after.timestamp() > time::OffsetDateTime::now_utc().unix_timestamp()
    };
    let renewed = if still_valid {
        answer.assert_status(200);
        let renewed = answer.pem_chain()[0].clone();
        assert_eq!(cert(NOZAWA1_SECOND)["revocation"]["reason"], "superseded");
        renewed
    } else {
        answer.assert_error(403);
        assert!(answer.body.contains("expired"), "{}", answer.body);
        let enrolled = daemon
            .client()
            .enroll_pem("nozawa1", PASSWORD, &next.csr_der)
            .await;
        enrolled.assert_status(200);
        enrolled.pem_chain()[0].clone()
    };
    assert_eq!(certissuednum(&renewed), 3);
    let nozawa1 = account(&daemon, "nozawa1");
    assert_eq!(nozawa1["issued_count"], 3);
    assert_eq!(nozawa1["certificate"]["serial"], serial_hex(&renewed));

    // A second start finds the store migrated: nothing is converted again.
    let dir = daemon.stop();
    let again = TestDaemon::start_in(dir);
    assert!(
        !again.stderr().contains(MIGRATED),
        "the second start migrated again; stderr:\n{}",
        again.stderr()
    );
    assert_eq!(account(&again, "nozawa1")["issued_count"], 3);
    assert_eq!(
        state(&account(&again, "Kiyo.0012")).3,
        2,
        "failed attempts kept"
    );
    let dir = again.stop();

    // Versions, read offline: as the last release left them, nozawa1's one step further for
    // its renewal.
    let store = estca::store::SledStore::open(&dir.path().join("data/db")).unwrap();
    for (id, version) in [
        ("otemat9", 3),
        ("nozawa1", 8),
        ("nozawa2", 4),
        ("Kiyo.0012", 2),
    ] {
        let stored = store.account(&id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.version, version, "{id}");
    }
}
