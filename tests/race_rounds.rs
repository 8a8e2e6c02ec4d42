//! Races on one ID, round after round: in each round simpleenroll, simplereenroll, the
//! administrator's reissue and revoke all run at once from separate clients; after each round
//! the invariant is checked through the operator's view of the store (the admin socket), not
//! the responses: at most one unrevoked unexpired certificate, it is the account's current
//! one, and CERTISSUEDNUM counts every issuance recorded.
//!
//! `cargo test --test race_rounds` runs 200 rounds; `TEST_RACE_ROUNDS=1000 cargo test
//! --release --test race_rounds -- --nocapture` is the full run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const ID: &str = "race1";

/// One request over the admin socket: status and JSON body.
fn admin(socket: &Path, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: estca\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn admin_in_background(
    socket: &Path,
    path: String,
    body: &'static str,
    delay: Duration,
) -> tokio::task::JoinHandle<u16> {
    let socket = socket.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::thread::sleep(delay);
        admin(&socket, "POST", &path, body).0
    })
}

/// The invariant, through the store: returns the active serial, if any.
struct Checker {
    socket: PathBuf,
    seen: BTreeSet<u64>,
    issued: Vec<String>,
    revoked: BTreeSet<String>,
}

impl Checker {
    fn check(&mut self, round: usize) -> Option<String> {
        let (_, page) = admin(
            &self.socket,
            "GET",
            &format!("/api/v1/history?account={ID}&limit=200"),
            "",
        );
        for e in page["entries"].as_array().unwrap() {
            if !self.seen.insert(e["seq"].as_u64().unwrap()) || e["outcome"]["result"] != "ok" {
                continue;
            }
            if let Some(rest) = e["outcome"]["detail"]
                .as_str()
                .and_then(|d| d.strip_prefix("issued "))
            {
                self.issued
                    .push(rest.split_whitespace().next().unwrap().to_owned());
            }
        }
        let mut active = vec![];
        for serial in &self.issued {
            if self.revoked.contains(serial) {
                continue;
            }
            let (status, cert) = admin(
                &self.socket,
                "GET",
                &format!("/api/v1/certificates/{serial}"),
                "",
            );
            assert_eq!(
                status, 200,
                "round {round}: {serial} is in history but not in the store"
            );
            match cert["status"].as_str().unwrap() {
                "revoked" => {
                    self.revoked.insert(serial.clone());
                }
                "active" => active.push(serial.clone()),
                other => panic!("round {round}: {serial} is {other}"),
            }
        }
        assert!(
            active.len() <= 1,
            "round {round}: active certificates {active:?}"
        );
        let (_, account) = admin(&self.socket, "GET", &format!("/api/v1/accounts/{ID}"), "");
        assert_eq!(
            account["issued_count"].as_u64().unwrap() as usize,
            self.issued.len(),
            "round {round}: CERTISSUEDNUM count and recorded issuances differ"
        );
        if let Some(serial) = active.first() {
            assert_eq!(
                account["certificate"]["serial"],
                serial.as_str(),
                "round {round}"
            );
        }
        active.into_iter().next()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rounds_of_enroll_reenroll_reissue_and_revoke_keep_one_active_certificate() {
    let rounds: usize = std::env::var("TEST_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let d = TestDaemon::start(Options::default());
    with_account(&d, ID, "5110");
    let socket = d.dir().path().join("data").join("admin.sock");
    let root = d.dir().root_ca_pem();
    let password_client = d.client();
    let mut checker = Checker {
        socket: socket.clone(),
        seen: BTreeSet::new(),
        issued: vec![],
        revoked: BTreeSet::new(),
    };
    let (k, chain) = enroll_new(&d, ID).await;
    let mut held = (chain, k.key_der);
    let mut outcomes: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let started = Instant::now();
    for round in 0..rounds {
        let cert_client = EstClient::new(d.port, &root, Some((&held.0, &held.1)));
        let (k_enroll, k_renew) = (p256(), p256());
        let reissue = admin_in_background(
            &socket,
            format!("/api/v1/accounts/{ID}/certificate"),
            r#"{"action":"reissue"}"#,
            Duration::from_millis((round as u64 * 13) % 30),
        );
        let revoke = admin_in_background(
            &socket,
            format!("/api/v1/accounts/{ID}/certificate"),
            r#"{"action":"revoke","reason":"keyCompromise"}"#,
            // Spread over the issuances' span, so that it lands before, during or after them.
            Duration::from_millis((round as u64 * 7) % 30),
        );
        let enroll = {
            let c = password_client.clone();
            let csr = k_enroll.csr_der.clone();
            tokio::spawn(async move { c.enroll_pem(ID, PASSWORD, &csr).await })
        };
        let renew = {
            let csr = k_renew.csr_der.clone();
            tokio::spawn(async move { cert_client.reenroll(&csr, true).await })
        };
        *outcomes
            .entry(("reissue", reissue.await.unwrap()))
            .or_default() += 1;
        *outcomes
            .entry(("revoke", revoke.await.unwrap()))
            .or_default() += 1;
        for (what, answer, key) in [
            ("simpleenroll", enroll.await.unwrap(), &k_enroll),
            ("simplereenroll", renew.await.unwrap(), &k_renew),
        ] {
            *outcomes.entry((what, answer.status)).or_default() += 1;
            match answer.status {
                200 => {
                    let pem: String = answer.pem_chain().iter().map(|c| cert_pem(c)).collect();
                    held = (pem.into_bytes(), key.key_der.clone());
                }
                403 | 409 => {
                    answer.assert_error(answer.status);
                }
                other => panic!("round {round}: {what} answered {other}: {answer:?}"),
            }
        }
        checker.check(round);
    }
    eprintln!(
        "{rounds} rounds in {:.1?}: {} certificates issued, invariant held after every round; outcomes {outcomes:?}",
        started.elapsed(),
        checker.issued.len()
    );
    assert!(
        checker.issued.len() > rounds / 10,
        "too few issuances: {outcomes:?}"
    );
}
