//! Durable means durable (issue 11, item 1), on the real daemon: for every issuance, the
//! database file is synced (`fdatasync`, which unlike sled's own `sync_file_range` also
//! writes the metadata needed to read the data back and flushes the disk's cache) after the
//! certificate's record was written to it and before the answer leaves the process.
//!
//! The daemon runs under `strace -f`, tracing the log writes (`pwrite64` on the database's
//! `db` file, with their bytes), the syncs and every write to a socket. Each certificate an
//! enrollment returns is found, byte for byte, in the first log write that holds it; the
//! first write to a TCP socket after that is the answer (enrollments are sent one at a time,
//! and nothing else talks TCP meanwhile), and between the two there must be an `fdatasync` of
//! the database file that started after the log write and finished before the answer was
//! written.
//!
//! Where `strace` is missing the test says so and is skipped, unless `REQUIRE_ALL_TESTS` is
//! set (as `.ci/run` does, after installing strace), in which case it fails.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::*;

/// One system call as strace printed it: where it started and ended in the trace (line
/// numbers; a call interrupted by another thread's is printed as `<unfinished ...>` and
/// `<... resumed>`), its name and its text.
#[derive(Debug)]
struct Call {
    start: usize,
    end: usize,
    name: String,
    text: String,
}

/// Reads strace's output: `PID name(args) = result`, or the two halves of an interrupted call.
fn calls(trace: &str) -> Vec<Call> {
    let mut open: std::collections::HashMap<String, (usize, String, String)> =
        std::collections::HashMap::new();
    let mut calls = Vec::new();
    for (n, line) in trace.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let name = resumed.split_whitespace().next().unwrap_or_default();
            if let Some((start, name_started, text)) = open.remove(pid) {
                assert_eq!(name, name_started, "trace line {n}: {line}");
                calls.push(Call {
                    start,
                    end: n,
                    name: name_started,
                    text: text + resumed,
                });
            }
            continue;
        }
        let Some(paren) = rest.find('(') else {
            continue; // signals, exits
        };
        let name = rest[..paren].to_owned();
        if rest.ends_with("<unfinished ...>") {
            open.insert(pid.to_owned(), (n, name, rest.to_owned()));
        } else {
            calls.push(Call {
                start: n,
                end: n,
                name,
                text: rest.to_owned(),
            });
        }
    }
    calls.sort_by_key(|c| c.start);
    calls
}

/// Bytes as strace `-xx` prints them in a string.
fn escaped(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\x{b:02x}")).collect()
}

/// The daemon's PID: the child of the strace process.
fn traced_pid(strace: &Child) -> u32 {
    let children = format!("/proc/{0}/task/{0}/children", strace.id());
    for _ in 0..100 {
        if let Some(pid) = std::fs::read_to_string(&children)
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no process under strace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_issuance_is_synced_before_its_answer_leaves() {
    if !have("strace") {
        let why = "strace is not installed (apt-get install strace), and this test traces the \
                   daemon's system calls to prove that each issuance is synced to disk before \
                   its answer is sent";
        skip("every_issuance_is_synced_before_its_answer_leaves", why);
        return;
    }
    let dir = TestDir::new(Options::default());
    let trace = dir.path().join("strace.txt");
    let mut command = Command::new("strace");
    without_estca_variables(&mut command)
        .args(["-f", "-yy", "-xx", "-s", "4194304", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=fdatasync,fsync,sync_file_range,pwrite64,sendto,sendmsg,write,writev",
            "--",
            estca_bin(),
            "serve",
            "--config",
        ])
        .arg(&dir.config)
        .current_dir(dir.path());
    let (mut strace, port, stderr) = spawn_and_wait(command).unwrap_or_else(|f| {
        panic!(
            "estca did not start under strace ({:?}): {}",
            f.status, f.stderr
        )
    });
    let daemon = traced_pid(&strace);

    dir.add_contract("5110");
    let ids = ["dur1", "dur2", "dur3"];
    for id in ids {
        dir.add_account(id, "5110", "user");
    }
    let root = dir.root_ca_pem();
    let mut issued = Vec::new();
    let mut last = None;
    for id in ids {
        let k = p256();
        let answer = EstClient::new(port, &root, None)
            .enroll_pem(id, PASSWORD, &k.csr_der)
            .await;
        answer.assert_status(200);
        let chain = answer.pem_chain();
        issued.push((format!("simpleenroll {id}"), chain[0].clone()));
        let pem: String = chain.iter().map(|c| cert_pem(c)).collect();
        last = Some((k, pem));
    }
    // Renewals over mutual TLS are issuances too, each with the certificate before it.
    let (mut key, mut chain) = last.unwrap();
    for round in 1..=2 {
        let next = p256();
        let answer = EstClient::new(port, &root, Some((chain.as_bytes(), &key.key_der)))
            .reenroll(&next.csr_der, true)
            .await;
        answer.assert_status(200);
        let certs = answer.pem_chain();
        issued.push((format!("simplereenroll {round}"), certs[0].clone()));
        chain = certs.iter().map(|c| cert_pem(c)).collect();
        key = next;
    }

    assert!(Command::new("kill")
        .args(["-TERM", &daemon.to_string()])
        .status()
        .unwrap()
        .success());
    let exit = wait_timeout(&mut strace, Duration::from_secs(30)).expect("strace ends");
    assert!(
        exit.success(),
        "the daemon under strace ended with {exit}: {}",
        stderr.lock().unwrap()
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    check(&text, &dir.path().join("data/db/db"), &issued);
}

/// For each certificate: its first log write, then an `fdatasync` of the log, then the first
/// write to a TCP socket.
fn check(text: &str, log: &Path, issued: &[(String, Vec<u8>)]) {
    let calls = calls(text);
    // strace -xx prints the path of a descriptor escaped like any string.
    let log_name = log.display().to_string();
    let log = format!("<{}>", escaped(log_name.as_bytes()));
    let on_log = |c: &Call| c.text.contains(&log);
    let syncs: Vec<&Call> = calls
        .iter()
        .filter(|c| c.name == "fdatasync" && on_log(c) && c.text.ends_with("= 0"))
        .collect();
    assert!(!syncs.is_empty(), "no fdatasync of {log_name} in the trace");
    let mut report = Vec::new();
    for (what, der) in issued {
        // The signature's last bytes: unique to this certificate.
        let needle = escaped(&der[der.len() - 24..]);
        let write = calls
            .iter()
            .find(|c| c.name == "pwrite64" && on_log(c) && c.text.contains(&needle))
            .unwrap_or_else(|| panic!("{what}: the certificate was never written to {log_name}"));
        let answer = calls
            .iter()
            .find(|c| {
                c.start > write.end
                    && matches!(c.name.as_str(), "sendto" | "sendmsg" | "write" | "writev")
                    && c.text.contains("<TCP")
            })
            .unwrap_or_else(|| panic!("{what}: no answer written after the record"));
        let covering: Vec<&&Call> = syncs
            .iter()
            .filter(|s| s.start > write.end && s.end < answer.start)
            .collect();
        assert!(
            !covering.is_empty(),
            "{what}: no fdatasync of {log_name} between the record's write (trace line {}) and the \
             answer (trace line {}):\n{}",
            write.end + 1,
            answer.start + 1,
            text.lines()
                .skip(write.end)
                .take(answer.start + 1 - write.end)
                .map(|l| l.chars().take(200).collect::<String>())
                .collect::<Vec<_>>()
                .join("\n")
        );
        report.push(format!(
            "{what}: record written (trace line {}), fdatasync (line {}), answer sent (line {})",
            write.end + 1,
            covering[0].end + 1,
            answer.start + 1
        ));
    }
    eprintln!("{}", report.join("\n"));
}
