//! The lockout and the per-source throttle under parallel guessing (issue 10, finding 1),
//! against the real daemon: however many guesses arrive at once, at most
//! `auth.max_failed_attempts` wrong passwords are checked for one ID, the right password sent
//! among them gets the same 401 as the wrong ones, and a burst from one address is bounded by
//! that address's budget.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const ID: &str = "target1";
const CONTRACT: &str = "5110";

/// History entries of `id` whose refusal says a wrong password was checked.
fn wrong_password_checks(history: &[Value]) -> usize {
    history
        .iter()
        .filter(|e| {
            e["outcome"]["result"] == "refused"
                && e["outcome"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("wrong password"))
        })
        .count()
}

fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 9, 1 + i as u8))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_parallel_guesses_check_at_most_five_and_the_right_one_gets_the_same_401() {
    // Production Argon2 cost and one hashing thread, so that the guesses are really in flight
    // together (each check takes milliseconds, and they queue).
    let d = TestDaemon::start(Options {
        argon2_memory_kib: Some(19456),
        argon2_iterations: Some(2),
        max_concurrent_hashes: Some(1),
        max_queued_hashes: Some(128),
        ..Options::default()
    });
    with_account(&d, ID, CONTRACT);
    let root = d.dir().root_ca_pem();
    let csr = p256().csr_der;

    // 59 wrong guesses released together, each from an address of its own (so the per-source
    // throttle, tested below, is not what stops them).
    let start = Arc::new(tokio::sync::Barrier::new(60));
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut guesses = Vec::new();
    for i in 0..59 {
        let client = EstClient::from_source(d.port, &root, source(i));
        let (start, answered, csr) = (start.clone(), answered.clone(), csr.clone());
        guesses.push(tokio::spawn(async move {
            start.wait().await;
            let a = client
                .enroll(ID, &format!("wrong password {i}"), &csr)
                .await;
            answered.fetch_add(1, Ordering::SeqCst);
            a
        }));
    }
    start.wait().await;
    // The right password joins the burst as soon as the store has counted five attempts,
    // while the wrong guesses are still being answered.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dir = d.dir().config.clone();
        let counted = tokio::task::spawn_blocking(move || {
            let out = estca_command()
                .args(["--config"])
                .arg(dir)
                .args(["--json", "account", "show", ID])
                .output()
                .unwrap();
            serde_json::from_slice::<Value>(&out.stdout).unwrap()["failed_attempts"]
                .as_u64()
                .unwrap()
        })
        .await
        .unwrap();
        if counted >= 5 {
            break;
        }
        assert!(Instant::now() < deadline, "five attempts never counted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let in_flight = 59 - answered.load(Ordering::SeqCst);
    assert!(
        in_flight > 0,
        "the wrong guesses were all answered before the right one was sent; the test proves nothing"
    );
    let right = EstClient::from_source(d.port, &root, source(59))
        .enroll(ID, PASSWORD, &csr)
        .await;
    let mut answers = vec![right];
    for g in guesses {
        answers.push(g.await.unwrap());
    }
    let elapsed = started.elapsed();

    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert!(
        statuses.iter().all(|s| *s == 401),
        "every answer must be 401, the right password's too: {statuses:?}"
    );
    let body = &answers[0].body;
    for a in &answers {
        assert_eq!(
            &a.body, body,
            "the right password's 401 looks like any other"
        );
        assert_eq!(
            a.headers.get("www-authenticate"),
            answers[0].headers.get("www-authenticate")
        );
    }
    let account = d.dir().account(ID);
    assert_eq!(account["locked"], true, "{account}");
    assert_eq!(account["failed_attempts"], 5, "{account}");
    assert_eq!(account["issued_count"], 0, "{account}");
    let history = d.dir().history(ID);
    let checked = wrong_password_checks(&history);
    assert_eq!(checked, 5, "wrong passwords checked: {history:#?}");
    eprintln!(
        "60 parallel guesses (the right one sent with {in_flight} wrong ones still unanswered): \
         60 x 401 in {elapsed:?}; wrong passwords checked: {checked}; locked: {}",
        account["locked"]
    );

    // Locked now: the right password and a wrong one get the same answer.
    let c = d.client();
    let t = Instant::now();
    let right = c.enroll(ID, PASSWORD, &csr).await;
    let right_time = t.elapsed();
    let t = Instant::now();
    let wrong = c.enroll(ID, "wrong password", &csr).await;
    let wrong_time = t.elapsed();
    assert_eq!((right.status, &right.body), (wrong.status, &wrong.body));
    eprintln!("locked ID: right password answered 401 in {right_time:?}, wrong in {wrong_time:?}");
    assert_eq!(wrong_password_checks(&d.dir().history(ID)), 5);

    // Unlock: the right password works again.
    d.cli_ok(&["account", "unlock", ID], None);
    c.enroll(ID, PASSWORD, &csr).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_from_one_address_is_bounded_by_its_budget() {
    let d = TestDaemon::start(Options {
        env: vec![
            ("ESTCA_AUTH__MAX_FAILURES_PER_SOURCE".into(), "10".into()),
            ("ESTCA_AUTH__FAILURE_WINDOW_SECS".into(), "3600".into()),
        ],
        max_concurrent_hashes: Some(1),
        max_queued_hashes: Some(128),
        ..Options::default()
    });
    with_account(&d, ID, CONTRACT);
    let client = EstClient::from_source(d.port, &d.dir().root_ca_pem(), source(0));
    let csr = p256().csr_der;
    let start = Arc::new(tokio::sync::Barrier::new(40));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, start, csr) = (client.clone(), start.clone(), csr.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            client
                .enroll(&format!("nobody{i}"), "wrong password", &csr)
                .await
        }));
    }
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        let a = t.await.unwrap();
        if a.status == 429 {
            a.assert_error(429);
            assert!(a.headers.contains_key("retry-after"));
        }
        *by_status.entry(a.status).or_default() += 1;
    }
    eprintln!("40 guesses at once from one address with a budget of 10: {by_status:?}");
    assert_eq!(
        by_status.get(&401).copied(),
        Some(10),
        "exactly the budget is checked: {by_status:?}"
    );
    assert_eq!(by_status.get(&429).copied(), Some(30), "{by_status:?}");
    // The right password from that address is refused too, before any check, until the
    // budget refills; another address is not affected.
    client.enroll(ID, PASSWORD, &csr).await.assert_error(429);
    EstClient::from_source(d.port, &d.dir().root_ca_pem(), source(1))
        .enroll(ID, PASSWORD, &csr)
        .await
        .assert_status(200);
}
