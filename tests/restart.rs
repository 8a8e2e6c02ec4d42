//! State survives a stop (SIGTERM) and a crash (SIGKILL): contracts, accounts, certificates,
//! the CERTISSUEDNUM counter, lockout and history.

mod common;

use common::*;
use serde_json::Value;

const CONTRACT: &str = "5110";

/// What an operator can see of the whole state, without fields that depend on the moment.
fn snapshot(dir: &TestDir, ids: &[&str]) -> Value {
    let contracts = dir.cli_json(&["contract", "list"]);
    let accounts = dir.cli_json(&["account", "list"]);
    let mut certs = vec![];
    for id in ids {
        for serial in dir.issued_serials(id) {
            certs.push(dir.cert(&serial));
        }
    }
    // Reads are recorded in history too (every management call is); taking the snapshot adds
    // such entries, so compare everything else.
    let history: Vec<Value> = dir.cli_json(&["history", "--limit", "1000"])["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] != "query")
        .cloned()
        .collect();
    serde_json::json!({
        "contracts": contracts,
        "accounts": accounts,
        "certificates": certs,
        "history": history,
    })
}

#[tokio::test]
async fn state_survives_sigterm_and_start() {
    let d = TestDaemon::start(Options {
        max_failed_attempts: Some(3),
        ..Options::default()
    });
    d.dir().add_contract(CONTRACT);
    d.dir().add_contract("7777");
    for id in ["alice1", "bob1", "carol1"] {
        d.dir().add_account(id, CONTRACT, "user");
    }
    d.dir().add_account("boss1", "7777", "master");
    let c = d.client();

    // alice1: three certificates (CERTISSUEDNUM 3), the first two superseded.
    let (ka, chain_a) = enroll_new(&d, "alice1").await;
    let k2 = p256();
    let chain_a2: String = d
        .client_with_cert(&chain_a, &ka.key_der)
        .reenroll(&k2.csr_der, true)
        .await
        .pem_chain()
        .iter()
        .map(|c| cert_pem(c))
        .collect();
    d.cli_ok(&["account", "reissue", "alice1"], None);
    c.enroll("alice1", PASSWORD, &p256().csr_der)
        .await
        .assert_status(200);
    // bob1: revoked (keyCompromise), and two wrong passwords counted.
    enroll_new(&d, "bob1").await;
    d.cli_ok(
        &["account", "revoke", "bob1", "--reason", "keyCompromise"],
        None,
    );
    for _ in 0..2 {
        c.enroll("bob1", "wrong password", &p256().csr_der)
            .await
            .assert_error(401);
    }
    // carol1: locked.
    for _ in 0..3 {
        c.enroll("carol1", "wrong password", &p256().csr_der)
            .await
            .assert_error(401);
    }
    // boss1: a pending reissue.
    enroll_new(&d, "boss1").await;
    d.cli_ok(&["account", "reissue", "boss1"], None);

    let ids = ["alice1", "bob1", "carol1", "boss1"];
    let before = snapshot(d.dir(), &ids);
    assert_eq!(before["contracts"].as_array().unwrap().len(), 2);
    assert_eq!(before["accounts"].as_array().unwrap().len(), 4);
    assert_eq!(before["certificates"].as_array().unwrap().len(), 5);

    let dir = d.stop();
    let d = TestDaemon::start_in(dir);
    let after = snapshot(d.dir(), &ids);
    assert_eq!(before, after, "state changed across a restart");

    let bob = d.dir().account("bob1");
    assert_eq!(bob["failed_attempts"], 2);
    assert_eq!(bob["certificate_choice"], "revoked");
    assert_eq!(bob["certificate"]["revocation"]["reason"], "keyCompromise");
    let carol = d.dir().account("carol1");
    assert_eq!(carol["locked"], true);

    // The state still acts: the lock holds, the revocation holds, the counters continue.
    let c = d.client();
    c.enroll("carol1", PASSWORD, &p256().csr_der)
        .await
        .assert_error(401);
    // The third wrong password for bob1 locks it: the count survived.
    c.enroll("bob1", "wrong password", &p256().csr_der)
        .await
        .assert_error(401);
    assert_eq!(d.dir().account("bob1")["locked"], true);
    // Unlocked, bob1 is still refused: the revocation holds until a reissue.
    d.cli_ok(&["account", "unlock", "bob1"], None);
    c.enroll("bob1", PASSWORD, &p256().csr_der)
        .await
        .assert_error(403);
    // alice1's old certificate is still not current; the next issuance is CERTISSUEDNUM 4.
    d.client_with_cert(chain_a2.as_bytes(), &k2.key_der)
        .reenroll(&p256().csr_der, false)
        .await
        .assert_error(403);
    d.cli_ok(&["account", "reissue", "alice1"], None);
    let der = c
        .enroll("alice1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der), 4);
    // boss1's pending reissue survived.
    let der = c
        .enroll("boss1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der), 2);
    // An already-certified key is still known.
    d.cli_ok(&["account", "reissue", "alice1"], None);
    let answer = c.enroll("alice1", PASSWORD, &k2.csr_der).await;
    answer.assert_error(400);
    assert!(answer.body.contains("already certified"), "{}", answer.body);
    for id in ids {
        d.dir().assert_at_most_one_active(id);
    }
    // History kept growing from where it was (reads aside, as in `snapshot`).
    let history: Vec<Value> = d.dir().cli_json(&["history", "--limit", "1000"])["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] != "query")
        .cloned()
        .collect();
    let old = before["history"].as_array().unwrap();
    assert!(history.len() > old.len());
    assert_eq!(&history[history.len() - old.len()..], &old[..]);
    let max_old_seq = old
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(history[0]["seq"].as_u64().unwrap() > max_old_seq);
}

#[tokio::test]
async fn issued_certificate_is_durable_before_the_answer() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, "nozawa1", CONTRACT);
    let k = p256();
    let der = d
        .client()
        .enroll("nozawa1", PASSWORD, &k.csr_der)
        .await
        .pkcs7_certificate();
    // Crash right after the 200: no flush on shutdown can help.
    let dir = d.kill9();
    let d = TestDaemon::start_in(dir);
    let serial = serial_hex(&der);
    let view = d.dir().cert(&serial);
    assert_eq!(view["status"], "active");
    assert_eq!(view["account"], "nozawa1");
    let pem = view["pem"].as_str().unwrap();
    assert_eq!(
        leaf_der(pem.as_bytes()),
        der,
        "the stored certificate is the one answered"
    );
    let account = d.dir().account("nozawa1");
    assert_eq!(account["issued_count"], 1);
    assert_eq!(account["certificate"]["serial"], serial.as_str());
    assert!(d.dir().issued_serials("nozawa1").contains(&serial));
    // The key is remembered as certified, and the ID as having an active certificate.
    d.client()
        .enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await
        .assert_error(409);

    // Several crashes in a row, each right after a renewal.
    let mut key = k;
    let mut chain = cert_pem(&der).into_bytes();
    let mut d = d;
    for n in 2..=4 {
        let next = p256();
        let der = d
            .client_with_cert(&chain, &key.key_der)
            .reenroll(&next.csr_der, false)
            .await
            .pkcs7_certificate();
        assert_eq!(certissuednum(&der), n);
        d = TestDaemon::start_in(d.kill9());
        let view = d.dir().cert(&serial_hex(&der));
        assert_eq!(view["status"], "active");
        assert_eq!(d.dir().account("nozawa1")["issued_count"], n);
        d.dir().assert_at_most_one_active("nozawa1");
        key = next;
        chain = cert_pem(&der).into_bytes();
    }
}
