//! EST serverkeygen (RFC 7030 section 4.4) against the real daemon, with curl as the client:
//! the `multipart/mixed` answer (parsed by `mailparse`) holds a PKCS#8 private key that
//! `openssl` finds to be the certificate's; the per-contract option (off by default) refuses
//! with 403 until the operator allows it; the lifecycle is simpleenroll's (a second request
//! while the certificate is active is 409, a wrong password counts towards the lockout).
//!
//! Needs `curl` and `openssl`: skipped with a notice where they are missing, unless
//! `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;

use common::*;

const PATH: &str = "/.well-known/est/serverkeygen";

/// Whether curl and openssl are here; panics under `REQUIRE_ALL_TESTS` when not.
fn tools() -> bool {
    have_tools(&["curl", "openssl"], "the serverkeygen tests")
}

/// What curl received.
struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `curl` POSTing the base64 of `csr_der` to serverkeygen as `id`/`password`.
fn curl(daemon: &TestDaemon, scratch: &Path, id: &str, password: &str, csr_der: &[u8]) -> Reply {
    let root = scratch.join("root.pem");
    std::fs::write(&root, daemon.dir().root_ca_pem()).unwrap();
    let csr = scratch.join("csr.b64");
    std::fs::write(&csr, B64.encode(csr_der)).unwrap();
    let head = scratch.join("head.txt");
    let body = scratch.join("body.bin");
    let out = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&root)
        .args(["--user", &format!("{id}:{password}")])
        .args(["-H", "Content-Type: application/pkcs10", "--data-binary"])
        .arg(format!("@{}", csr.display()))
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .arg(format!("https://localhost:{}{PATH}", daemon.port))
        .output()
        .expect("curl runs");
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Reply {
        status,
        headers: std::fs::read_to_string(&head).unwrap(),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// The two parts of a 200 answer, each decoded from base64: (PKCS#8 key, certs-only PKCS#7).
fn parts(reply: &Reply) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let content_type = reply.header("content-type").unwrap();
    assert!(
        content_type.starts_with("multipart/mixed; boundary="),
        "{content_type}"
    );
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let message = [
        format!("Content-Type: {content_type}\r\n\r\n").as_bytes(),
        &reply.body,
    ]
    .concat();
    let mail = mailparse::parse_mail(&message).expect("a MIME multipart body");
    assert_eq!(mail.subparts.len(), 2, "{}", reply.text());
    let mut key = None;
    let mut certs = None;
    for part in &mail.subparts {
        let encoding = part
            .headers
            .iter()
            .find(|h| {
                h.get_key()
                    .eq_ignore_ascii_case("content-transfer-encoding")
            })
            .map(|h| h.get_value());
        assert_eq!(encoding.as_deref(), Some("base64"));
        let raw_type = part
            .headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case("content-type"))
            .map(|h| h.get_value())
            .unwrap();
        let decoded = part.get_body_raw().unwrap();
        match raw_type.as_str() {
            "application/pkcs8" => key = Some(decoded),
            "application/pkcs7-mime; smime-type=certs-only" => certs = Some(decoded),
            other => panic!("unexpected part {other}"),
        }
    }
    (key.expect("a key part"), certs.expect("a certificate part"))
}

/// The single certificate of a DER certs-only PKCS#7.
fn certificate(pkcs7_der: &[u8]) -> Vec<u8> {
    let certs = pkcs7_certificates(&B64.encode(pkcs7_der));
    assert_eq!(certs.len(), 1);
    certs.into_iter().next().unwrap()
}

/// `openssl ARGS` on files in `dir`; its standard output.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts with openssl that the DER PKCS#8 key is the private half of the DER certificate's
/// public key; returns openssl's description of the key (its algorithm and size).
fn assert_key_matches(dir: &Path, key_der: &[u8], cert_der: &[u8]) -> String {
    std::fs::write(dir.join("key.der"), key_der).unwrap();
    std::fs::write(dir.join("cert.der"), cert_der).unwrap();
    let from_key = openssl(
        dir,
        &["pkey", "-inform", "DER", "-in", "key.der", "-pubout"],
    );
    let from_cert = openssl(
        dir,
        &[
            "x509", "-inform", "DER", "-in", "cert.der", "-noout", "-pubkey",
        ],
    );
    assert_eq!(from_key, from_cert, "the key is not the certificate's");
    // A PKCS#8 PrivateKeyInfo, unencrypted.
    openssl(
        dir,
        &[
            "pkcs8", "-inform", "DER", "-in", "key.der", "-nocrypt", "-topk8", "-outform", "PEM",
        ],
    );
    openssl(
        dir,
        &[
            "pkey", "-inform", "DER", "-in", "key.der", "-noout", "-text",
        ],
    )
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[test]
fn serverkeygen_returns_a_generated_key_and_its_certificate_once_the_contract_allows_it() {
    if !tools() {
        return;
    }
    let daemon = TestDaemon::start(Options::default());
    let dir = daemon.dir();
    dir.add_contract("5110");
    dir.add_account("keygen1", "5110", "user");
    let (_keep, scratch) = scratch();

    // Off by default: 403 with what to do, and the option shows as off.
    let shown = dir.cli_json(&["contract", "show", "5110"]);
    assert_eq!(shown["server_keygen"], false, "{shown}");
    let k = p256();
    let refused = curl(&daemon, &scratch, "keygen1", PASSWORD, &k.csr_der);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("not allowed for your contract")
            && refused.text().contains("simpleenroll"),
        "{}",
        refused.text()
    );
    let history = dir.history("keygen1");
    assert!(
        history.iter().any(|e| e["outcome"]["result"] == "refused"
            && e["outcome"]["reason"]
                .as_str()
                .unwrap_or("")
                .contains("serverkeygen")),
        "{history:?}"
    );

    // The operator allows it.
    let edited = dir.cli_json(&["contract", "edit", "5110", "--server-keygen"]);
    assert_eq!(edited["server_keygen"], true, "{edited}");
    let listed = dir.cli_ok(&["contract", "list"], None);
    assert!(
        listed.contains("SERVER KEYGEN") && listed.contains("allowed"),
        "{listed}"
    );

    // A P-256 CSR: a P-256 key, not the CSR's, in a certificate for the ID.
    let reply = curl(&daemon, &scratch, "keygen1", PASSWORD, &k.csr_der);
    let (key, pkcs7) = parts(&reply);
    let cert = certificate(&pkcs7);
    let described = assert_key_matches(&scratch, &key, &cert);
    assert!(
        described.contains("P-256") || described.contains("prime256v1"),
        "{described}"
    );
    assert_eq!(certissuednum(&cert), 1);
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    assert_ne!(
        parsed.tbs_certificate.subject_pki.raw,
        k.spki_der.as_slice(),
        "the CSR's key is ignored"
    );
    assert!(
        parsed.subject().to_string().contains("keygen1"),
        "{}",
        parsed.subject()
    );
    let account = dir.account("keygen1");
    assert_eq!(
        account["certificate"]["serial"],
        serial_hex(&cert),
        "{account}"
    );
    let history = dir.history("keygen1");
    assert!(
        history.iter().any(|e| e["outcome"]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("generated by estca")),
        "{history:?}"
    );
    // Nothing of the private key reaches the log.
    let key_text = B64.encode(&key);
    assert!(!daemon.stderr().contains(&key_text[..40]));

    // Enrolling again while that certificate is active: 409, as simpleenroll.
    let again = curl(&daemon, &scratch, "keygen1", PASSWORD, &p256().csr_der);
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(
        again.text().contains("active certificate"),
        "{}",
        again.text()
    );

    // After a reissue, an RSA CSR gets an RSA key of its size.
    dir.cli_ok(&["account", "reissue", "keygen1"], None);
    let rsa = openssl_key_and_csr("rsa:2048");
    let (key, pkcs7) = parts(&curl(&daemon, &scratch, "keygen1", PASSWORD, &rsa.csr_der));
    let cert = certificate(&pkcs7);
    let described = assert_key_matches(&scratch, &key, &cert);
    assert!(described.contains("2048 bit"), "{described}");
    assert_eq!(certissuednum(&cert), 2);
    dir.assert_at_most_one_active("keygen1");

    // Turned off again: refused again.
    dir.cli_ok(&["account", "reissue", "keygen1"], None);
    let edited = dir.cli_json(&["contract", "edit", "5110", "--server-keygen=false"]);
    assert_eq!(edited["server_keygen"], false, "{edited}");
    let refused = curl(&daemon, &scratch, "keygen1", PASSWORD, &p256().csr_der);
    assert_eq!(refused.status, 403, "{}", refused.text());
}

#[test]
fn serverkeygen_authenticates_like_simpleenroll() {
    if !tools() {
        return;
    }
    let daemon = TestDaemon::start(Options::default());
    let dir = daemon.dir();
    dir.cli_ok(
        &[
            "contract",
            "add",
            "7001",
            "--name",
            "Keygen customer",
            "--server-keygen=true",
        ],
        None,
    );
    dir.add_account("keygen2", "7001", "user");
    let (_keep, scratch) = scratch();

    // A wrong password: 401, counted like any other.
    let wrong = curl(
        &daemon,
        &scratch,
        "keygen2",
        "wrong password!",
        &p256().csr_der,
    );
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert_eq!(dir.account("keygen2")["failed_attempts"], 1);

    // A CSR whose signature does not verify: its key and signature are ignored (RFC 7030
    // section 4.4.1), so the request succeeds and clears the failure count.
    let mut csr = p256().csr_der;
    let last = csr.len() - 1;
    csr[last] ^= 0x5a;
    let (key, pkcs7) = parts(&curl(&daemon, &scratch, "keygen2", PASSWORD, &csr));
    assert_key_matches(&scratch, &key, &certificate(&pkcs7));
    assert_eq!(dir.account("keygen2")["failed_attempts"], 0);

    // simpleenroll sees the same single active certificate.
    let answer = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(daemon.client().enroll("keygen2", PASSWORD, &p256().csr_der));
    answer.assert_error(409);

    // Not a CSR: 400.
    let bad = curl(&daemon, &scratch, "keygen2", PASSWORD, b"not a CSR");
    assert_eq!(bad.status, 400, "{}", bad.text());
}
