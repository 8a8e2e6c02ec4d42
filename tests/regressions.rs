//! Regression tests for daemon bugs the integration suite found, each reproducing the
//! original failure: they fail on the code before the fix.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// `estca serve` used to log `estca ready` before installing its SIGTERM handler: `cli::serve`
/// builds the `shutdown` future (which calls `tokio::signal::unix::signal`) but polls it only
/// after `server::start` returned and logged the ready line. A SIGTERM sent as soon as the
/// daemon said it was ready (what a supervisor may do) killed it with the default action:
/// exit by signal 15, no graceful stop, stale admin socket left behind.
#[test]
fn sigterm_right_after_ready_stops_gracefully() {
    for attempt in 0..30 {
        let dir = TestDir::new(Options::default());
        let mut child = estca_command()
            .arg("serve")
            .arg("--config")
            .arg(&dir.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let ready = lines.any(|l| l.map(|l| l.contains("estca ready")).unwrap_or(false));
        assert!(ready, "no ready line");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = wait_timeout(&mut child, Duration::from_secs(20)).expect("exit");
        assert!(
            status.success(),
            "attempt {attempt}: SIGTERM just after the ready line ended estca with {status}"
        );
    }
}

/// A body over `server.max_body_bytes` sent with its Content-Length (no `Expect:
/// 100-continue`) should get the documented 413. The daemon used to answer from the headers and
/// close the connection without draining the body, so a client still writing it (reqwest,
/// or curl with `-H 'Expect:'`) often gets a broken pipe or a reset instead of the 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_always_gets_a_413() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, "nozawa1", "5110");
    let c = d.client();
    let mut lost = vec![];
    for i in 0..50 {
        let request = c
            .http
            .post(format!("{}/simpleenroll", c.base))
            .basic_auth("nozawa1", Some(PASSWORD))
            .header("content-type", "application/pkcs10")
            .body(vec![b'A'; 1024 * 1024]);
        match request.send().await {
            Ok(r) => assert_eq!(r.status(), 413, "attempt {i}"),
            Err(e) => lost.push(format!("attempt {i}: {e:?}")),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of 50 answers lost:\n{}",
        lost.len(),
        lost.join("\n")
    );
}
