//! No secret in any log line: a full run at debug level (passwords set, changed, used right
//! and wrong, a renewal with a client key) and the daemon's whole log is searched for every
//! password and every piece of key material involved.

mod common;

use std::io::{Read, Write};

use base64::Engine;
use common::*;

fn admin_post(socket: &std::path::Path, path: &str, body: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: estca\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// The base64 body lines of a PEM file, each long enough to be unmistakable.
fn pem_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_key_material_reaches_the_log() {
    let d = TestDaemon::start(Options {
        env: vec![("ESTCA_LOG__LEVEL".into(), "debug".into())],
        max_failed_attempts: Some(3),
        ..Options::default()
    });
    with_account(&d, "secret1", "5110");
    let socket = d.dir().path().join("data").join("admin.sock");
    let api_password = "api-set secret password 7";
    let answer = admin_post(
        &socket,
        "/api/v1/accounts",
        &format!(
            r#"{{"id":"secret2","contract":"5110","role":"user","name":"S","password":"{api_password}"}}"#
        ),
    );
    assert!(
        answer.starts_with("HTTP/1.1 201") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    let changed = "changed secret password 9";
    d.cli_ok(
        &["account", "passwd", "secret2", "--password-stdin"],
        Some(&format!("{changed}\n")),
    );
    let wrong = "wrong-secret-guess-42";
    let c = d.client();
    c.enroll("secret1", wrong, &p256().csr_der)
        .await
        .assert_error(401);
    c.enroll("secret2", api_password, &p256().csr_der)
        .await
        .assert_error(401);
    let (key, chain) = enroll_new(&d, "secret1").await;
    c.enroll("secret2", changed, &p256().csr_der)
        .await
        .assert_status(200);
    let renewal = p256();
    d.client_with_cert(&chain, &key.key_der)
        .reenroll(&renewal.csr_der, true)
        .await
        .assert_status(200);

    // Let the last lines reach the harness.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = d.stderr();
    assert!(
        log.contains("DEBUG") || log.contains("debug"),
        "the run logged at debug level"
    );
    assert!(log.contains("request"), "requests were logged");

    let mut secrets: Vec<(String, String)> = vec![
        ("the account password".into(), PASSWORD.into()),
        ("the API-set password".into(), api_password.into()),
        ("the changed password".into(), changed.into()),
        ("the wrong password".into(), wrong.into()),
        (
            "the Basic credentials".into(),
            B64.encode(format!("secret1:{PASSWORD}")),
        ),
        ("the client key".into(), B64.encode(&key.key_der)),
        ("the renewal key".into(), B64.encode(&renewal.key_der)),
    ];
    for file in ["issuing-ca.key", "root-ca.key"] {
        let pem = std::fs::read_to_string(d.dir().ca_dir().join(file)).unwrap();
        for line in pem_lines(&pem) {
            secrets.push((format!("a line of {file}"), line));
        }
    }
    for (what, secret) in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{what} appears in the log:\n{log}"
        );
        // Nor any long piece of it.
        if secret.len() >= 32 {
            for piece in secret.as_bytes().chunks(24) {
                let piece = std::str::from_utf8(piece).unwrap();
                if piece.len() == 24 {
                    assert!(!log.contains(piece), "part of {what} appears in the log");
                }
            }
        }
    }
    assert!(
        !log.contains("$argon2id$"),
        "a password hash appears in the log"
    );
    eprintln!(
        "searched {} log lines ({} bytes, debug level) for {} secrets: none found",
        log.lines().count(),
        log.len(),
        secrets.len()
    );
    d.stop();
}
