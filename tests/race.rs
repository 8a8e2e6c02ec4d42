//! Concurrency: one active certificate per ID however requests and administrator choices
//! interleave.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::*;

const CONTRACT: &str = "5110";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_enrollments_for_one_id_issue_exactly_one() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, "nozawa1", CONTRACT);
    let c = d.client();
    let csrs: Vec<Vec<u8>> = (0..50).map(|_| p256().csr_der).collect();
    let tasks: Vec<_> = csrs
        .into_iter()
        .map(|csr| {
            let c = c.clone();
            tokio::spawn(async move { c.enroll("nozawa1", PASSWORD, &csr).await })
        })
        .collect();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut issued = vec![];
    for t in tasks {
        let a = t.await.unwrap();
        *by_status.entry(a.status).or_default() += 1;
        if a.status == 200 {
            issued.push(a.pkcs7_certificate());
        } else {
            a.assert_error(409);
        }
    }
    assert_eq!(
        by_status,
        BTreeMap::from([(200, 1), (409, 49)]),
        "exactly one issuance"
    );
    let account = d.dir().account("nozawa1");
    assert_eq!(account["issued_count"], 1);
    assert_eq!(
        account["certificate"]["serial"],
        serial_hex(&issued[0]).as_str()
    );
    assert_eq!(certissuednum(&issued[0]), 1);
    let statuses = d.dir().assert_at_most_one_active("nozawa1");
    assert_eq!(statuses.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_ids_enroll_at_once() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract(CONTRACT);
    let ids: Vec<String> = (0..50).map(|i| format!("user{i:02}")).collect();
    for id in &ids {
        d.dir().add_account(id, CONTRACT, "user");
    }
    let c = d.client();
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let c = c.clone();
            let id = id.clone();
            let csr = p256().csr_der;
            tokio::spawn(async move { (id.clone(), c.enroll(&id, PASSWORD, &csr).await) })
        })
        .collect();
    let mut serials = BTreeSet::new();
    let mut by_id = HashMap::new();
    for t in tasks {
        let (id, a) = t.await.unwrap();
        let der = a.pkcs7_certificate();
        assert_eq!(certissuednum(&der), 1);
        assert!(serials.insert(serial_hex(&der)), "duplicate serial");
        by_id.insert(id, serial_hex(&der));
    }
    assert_eq!(serials.len(), 50);
    // The store agrees: every account has its own certificate, active.
    let accounts = d.cli_json(&["account", "list"]);
    let accounts = accounts.as_array().unwrap();
    assert_eq!(accounts.len(), 50);
    for a in accounts {
        let id = a["id"].as_str().unwrap();
        assert_eq!(a["issued_count"], 1, "{id}");
        assert_eq!(a["certificate"]["serial"], by_id[id].as_str(), "{id}");
        assert_eq!(a["certificate"]["status"], "active", "{id}");
    }
}

/// Checks the invariant with a cache: a revoked certificate stays revoked, so only the others
/// are asked about again.
struct Invariant {
    revoked: BTreeSet<String>,
}

impl Invariant {
    fn check(&mut self, dir: &TestDir, id: &str, round: usize) -> Option<String> {
        let mut active = vec![];
        for serial in dir.issued_serials(id) {
            if self.revoked.contains(&serial) {
                continue;
            }
            match dir.cert(&serial)["status"].as_str().unwrap() {
                "revoked" => {
                    self.revoked.insert(serial);
                }
                "active" => active.push(serial),
                other => panic!("round {round}: unexpected status {other} of {serial}"),
            }
        }
        assert!(
            active.len() <= 1,
            "round {round}: {id} has {} active certificates: {active:?}",
            active.len()
        );
        let account = dir.account(id);
        if let Some(serial) = active.first() {
            assert_eq!(
                account["certificate"]["serial"],
                serial.as_str(),
                "round {round}: the active certificate is the account's current one"
            );
        }
        active.into_iter().next()
    }
}

/// Runs a CLI command on a blocking thread (the answer does not matter: a choice may be
/// refused when it meets another, e.g. revoking what is already revoked).
fn cli_in_background(
    config: &std::path::Path,
    args: &'static [&'static str],
) -> tokio::task::JoinHandle<bool> {
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || {
        estca_command()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_choices_and_enrollments_keep_one_active_certificate() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, "nozawa1", CONTRACT);
    let (k, chain) = enroll_new(&d, "nozawa1").await;
    let config = d.dir().config.clone();
    let root = d.dir().root_ca_pem();
    let mut held: HashMap<String, (Vec<u8>, Vec<u8>)> = HashMap::new(); // serial -> (chain, key)
    let mut current = serial_hex(&leaf_der(&chain));
    held.insert(current.clone(), (chain, k.key_der));
    let mut invariant = Invariant {
        revoked: BTreeSet::new(),
    };
    let mut issued = 1u64;
    let mut outcomes: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let password_client = d.client();
    for round in 0..20 {
        let (cur_chain, cur_key) = held[&current].clone();
        let cert_client = EstClient::new(d.port, &root, Some((&cur_chain, &cur_key)));
        let k_enroll = p256();
        let k_renew = p256();
        let revoke = (round % 3 == 1).then(|| {
            cli_in_background(
                &config,
                &["account", "revoke", "nozawa1", "--reason", "keyCompromise"],
            )
        });
        let reissue = cli_in_background(&config, &["account", "reissue", "nozawa1"]);
        let enroll = {
            let c = password_client.clone();
            let csr = k_enroll.csr_der.clone();
            tokio::spawn(async move { c.enroll_pem("nozawa1", PASSWORD, &csr).await })
        };
        let renew = {
            let csr = k_renew.csr_der.clone();
            tokio::spawn(async move { cert_client.reenroll(&csr, true).await })
        };
        reissue.await.unwrap();
        if let Some(r) = revoke {
            r.await.unwrap();
        }
        let enroll = enroll.await.unwrap();
        let renew = renew.await.unwrap();
        for (what, answer, key) in [
            ("simpleenroll", &enroll, &k_enroll),
            ("simplereenroll", &renew, &k_renew),
        ] {
            *outcomes.entry((what, answer.status)).or_default() += 1;
            match answer.status {
                200 => {
                    let chain = answer.pem_chain();
                    let pem: String = chain.iter().map(|c| cert_pem(c)).collect();
                    held.insert(
                        serial_hex(&chain[0]),
                        (pem.into_bytes(), key.key_der.clone()),
                    );
                    issued += 1;
                }
                403 | 409 => {
                    answer.assert_error(answer.status);
                }
                other => panic!("round {round}: {what} answered {other}: {answer:?}"),
            }
        }
        // Nothing runs now, so the checks may block this thread.
        let active = invariant.check(d.dir(), "nozawa1", round);
        // Renew from the active certificate next round, or else the account's latest one.
        current = match active {
            Some(serial) => serial,
            None => d.dir().account("nozawa1")["certificate"]["serial"]
                .as_str()
                .unwrap()
                .to_owned(),
        };
        assert!(
            held.contains_key(&current),
            "round {round}: the account's certificate {current} was never answered"
        );
    }
    let account = d.dir().account("nozawa1");
    assert_eq!(
        account["issued_count"].as_u64().unwrap(),
        issued,
        "every 200 is one issuance and vice versa ({outcomes:?})"
    );
    // The race must actually have happened: some rounds issued, some refused.
    assert!(
        issued > 5,
        "too few issuances to prove anything: {outcomes:?}"
    );
    eprintln!("outcomes over 20 rounds: {outcomes:?}");
}
