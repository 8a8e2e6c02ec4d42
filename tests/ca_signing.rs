//! What the CA signs and how it fails, against the real daemon (issue 10, review items 5, 11,
//! 14 and 15):
//!
//! - a key is certified at most once however its CSR spells it: the review's attack (an RSA
//!   key enrolled once normally, once with the NULL parameters of its AlgorithmIdentifier
//!   stripped and the CSR re-signed) is refused as "already certified", and a stripped key
//!   is certified in its canonical encoding;
//! - every certificate the CA signs is recorded before it is used: the TLS server certificate
//!   presented in the handshake (at start and after a reload) and the OCSP signer in an OCSP
//!   response are found by `estca cert show`, answered `good` by OCSP (checked with
//!   `openssl ocsp`), and carried by backups; from files, nothing is signed or recorded;
//! - an issuing CA within a year of its expiry: the start logs an error, the metrics carry
//!   its notAfter, and simpleenroll gets 503 with a sentence saying why (a CA within the
//!   warning lead time but still able to issue: a warning, and enrollment works);
//! - a missing `issuing-ca.key` is named at start, never "root-ca.pem already exists".

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use der::asn1::{BitString, Null};
use der::{Any, Decode, Encode};
use x509_cert::request::CertReq;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

const CONTRACT: &str = "5110";

/// The value of `name=` in the daemon's ready line (which the harness's log reader may
/// append a moment after the daemon answered its first request).
fn ready_field(daemon: &TestDaemon, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Some(line) = daemon.stderr().lines().find(|l| l.contains("estca ready")) {
            break line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no ready line in:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    line.split(&format!("{name}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
        .to_owned()
}

/// `GET /metrics` on the daemon's metrics listener.
async fn metrics(daemon: &TestDaemon) -> String {
    let addr = ready_field(daemon, "metrics");
    daemon
        .client()
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample whose line starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .filter(|rest| rest.starts_with(' '))
            .and_then(|rest| rest.trim().parse().ok())
    })
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run a tool");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ----- item 5: a key is certified once, whatever its spelling --------------------------------

/// `csr_der` with the NULL parameters of its RSA key's AlgorithmIdentifier removed, re-signed
/// (sha256WithRSAEncryption) with the PKCS#8 RSA key `key_der`: the review's malformed CSR,
/// built with the `x509-cert` types and signed by ring.
fn without_rsa_null_parameters(csr_der: &[u8], key_der: &[u8]) -> Vec<u8> {
    let mut csr = CertReq::from_der(csr_der).unwrap();
    assert_eq!(
        csr.info.public_key.algorithm.parameters,
        Some(Any::from(Null)),
        "openssl writes the NULL"
    );
    csr.info.public_key.algorithm.parameters = None;
    let tbs = csr.info.to_der().unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(key_der).unwrap();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        &tbs,
        &mut signature,
    )
    .unwrap();
    CertReq {
        info: csr.info,
        algorithm: AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(Any::from(Null)),
        },
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

fn certified_spki(certificate_der: &[u8]) -> Vec<u8> {
    Certificate::from_der(certificate_der)
        .unwrap()
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap()
}

#[tokio::test]
async fn an_rsa_key_without_its_null_parameters_is_not_certified_twice() {
    let daemon = TestDaemon::start(Options::default());
    daemon.dir().add_contract(CONTRACT);
    for id in ["alice", "bob", "carol"] {
        daemon.dir().add_account(id, CONTRACT, "user");
    }
    let client = daemon.client();

    let rsa = openssl_key_and_csr("rsa:2048");
    let first = client
        .enroll("alice", PASSWORD, &rsa.csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certified_spki(&first), rsa.spki_der);

    // The same key, its AlgorithmIdentifier without NULL, the CSR re-signed: refused.
    let stripped = without_rsa_null_parameters(&rsa.csr_der, &rsa.key_der);
    assert_ne!(
        CertReq::from_der(&stripped)
            .unwrap()
            .info
            .public_key
            .to_der()
            .unwrap(),
        rsa.spki_der
    );
    let second = client.enroll("bob", PASSWORD, &stripped).await;
    second.assert_error(400);
    assert!(
        second.body.contains("already certified") && second.body.contains(&serial_hex(&first)),
        "{second:?}"
    );
    assert_eq!(daemon.dir().account("bob")["issued_count"], 0);
    eprintln!(
        "item 5: the stripped CSR of alice's RSA key for bob: {} {}",
        second.status,
        second.body.trim()
    );

    // A new key sent that way is certified once, in its canonical encoding (with the NULL),
    // so the certificate conforms to RFC 3279 and estca's own TLS layer accepts it.
    let fresh = openssl_key_and_csr("rsa:2048");
    let issued = client
        .enroll_pem(
            "carol",
            PASSWORD,
            &without_rsa_null_parameters(&fresh.csr_der, &fresh.key_der),
        )
        .await
        .pem_chain();
    assert_eq!(certified_spki(&issued[0]), fresh.spki_der);
    let chain: String = issued.iter().map(|c| cert_pem(c)).collect();
    let renewal = daemon
        .client_with_cert(chain.as_bytes(), &fresh.key_der)
        .reenroll(&p256().csr_der, false)
        .await;
    renewal.pkcs7_certificate();
    eprintln!(
        "item 5: a new RSA key sent without NULL: certified once with the NULL restored; \
         renewing over mTLS with that certificate: {}",
        renewal.status
    );
}

// ----- item 11: every certificate the CA signs is recorded -----------------------------------

/// The leaf certificate the daemon presents in a TLS handshake, DER (by `openssl s_client`).
fn presented_server_certificate(port: u16) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate from s_client: {text}"));
    let end = text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    let (_, der) = pem_rfc7468::decode_vec(text[start..end].as_bytes()).unwrap();
    der
}

/// Asks the daemon's OCSP responder (POST /ocsp over HTTPS) about `certificate_der` with a
/// request made by `openssl ocsp`; returns what `openssl ocsp` makes of the answer (checked
/// against the CA chain) and the answer's DER.
async fn ocsp_check(daemon: &TestDaemon, certificate_der: &[u8], name: &str) -> (String, Vec<u8>) {
    let dir = daemon.dir().path();
    let ca = daemon.dir().ca_dir();
    let leaf = dir.join(format!("{name}.pem"));
    std::fs::write(&leaf, cert_pem(certificate_der)).unwrap();
    let chain = dir.join("ca-chain.pem");
    let mut chain_pem = std::fs::read(ca.join("issuing-ca.pem")).unwrap();
    chain_pem.extend(std::fs::read(ca.join("root-ca.pem")).unwrap());
    std::fs::write(&chain, chain_pem).unwrap();
    let request = dir.join(format!("{name}.ocspreq"));
    run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(ca.join("issuing-ca.pem"))
        .arg("-cert")
        .arg(&leaf)
        .arg("-reqout")
        .arg(&request));
    let client = daemon.client();
    let response = client
        .http
        .post(format!("https://127.0.0.1:{}/ocsp", daemon.port))
        .header("content-type", "application/ocsp-request")
        .body(std::fs::read(&request).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let der = response.bytes().await.unwrap().to_vec();
    let answer = dir.join(format!("{name}.ocspresp"));
    std::fs::write(&answer, &der).unwrap();
    let out = Command::new("openssl")
        .args(["ocsp", "-respin"])
        .arg(&answer)
        .arg("-issuer")
        .arg(ca.join("issuing-ca.pem"))
        .arg("-cert")
        .arg(&leaf)
        .arg("-CAfile")
        .arg(&chain)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, der)
}

/// The delegated signer certificate carried in an OCSP response, DER.
fn ocsp_signer_of(response_der: &[u8]) -> Vec<u8> {
    let response = x509_ocsp::OcspResponse::from_der(response_der).unwrap();
    let bytes = response.response_bytes.expect("a successful response");
    let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    basic.certs.expect("the signer certificate")[0]
        .to_der()
        .unwrap()
}

fn assert_good(what: &str, openssl_output: &str, name: &str) {
    assert!(
        openssl_output.contains("Response verify OK")
            && openssl_output.contains(&format!("{name}.pem: good")),
        "{what}: {openssl_output}"
    );
}

/// `estca cert show SERIAL --json` for a service certificate: its record matches the
/// certificate byte for byte and names the service.
fn assert_recorded(dir: &TestDir, certificate_der: &[u8], kind: &str) -> serde_json::Value {
    let view = dir.cert(&serial_hex(certificate_der));
    assert_eq!(view["status"], "active", "{view}");
    assert_eq!(view["service"]["kind"], kind, "{view}");
    assert_eq!(view["pem"], cert_pem(certificate_der), "{view}");
    let text = dir.cli_ok(&["cert", "show", &serial_hex(certificate_der)], None);
    assert!(
        text.contains("holder") && text.contains("estca's"),
        "{text}"
    );
    view
}

#[tokio::test]
async fn the_tls_server_and_ocsp_signer_certificates_are_recorded_before_use() {
    let daemon = TestDaemon::start(Options {
        env: vec![("ESTCA_LOG__LEVEL".into(), "info".into())],
        ..Options::default()
    });
    let dir = daemon.dir();

    // The server certificate of the handshake: in the store, good for OCSP.
    let server = presented_server_certificate(daemon.port);
    let view = assert_recorded(dir, &server, "tls_server");
    assert_eq!(
        view["service"]["names"],
        serde_json::json!(["localhost", "127.0.0.1", "::1"])
    );
    let (checked, response) = ocsp_check(&daemon, &server, "server").await;
    assert_good("the TLS server certificate", &checked, "server");

    // The OCSP signer of that response: in the store, good for OCSP too.
    let signer = ocsp_signer_of(&response);
    assert_recorded(dir, &signer, "ocsp_signer");
    let (checked, _) = ocsp_check(&daemon, &signer, "signer").await;
    assert_good("the OCSP signing certificate", &checked, "signer");

    // A reload with other host names issues a new server certificate, recorded as well.
    let config = std::fs::read_to_string(&dir.config).unwrap();
    std::fs::write(
        &dir.config,
        config.replacen(
            "listen = \"127.0.0.1:0\"\n",
            "listen = \"127.0.0.1:0\"\nhostnames = [\"localhost\", \"127.0.0.1\", \"reloaded.test\"]\n",
            1,
        ),
    )
    .unwrap();
    let logged = daemon.stderr().len();
    daemon.reload();
    daemon.wait_for_log("configuration reloaded", logged);
    let reloaded = presented_server_certificate(daemon.port);
    assert_ne!(serial_hex(&reloaded), serial_hex(&server));
    let view = assert_recorded(dir, &reloaded, "tls_server");
    assert_eq!(
        view["service"]["names"],
        serde_json::json!(["localhost", "127.0.0.1", "reloaded.test"])
    );
    let (checked, _) = ocsp_check(&daemon, &reloaded, "reloaded").await;
    assert_good("the reloaded TLS server certificate", &checked, "reloaded");

    // Backups carry them; the CRL lists none of them (none is revoked).
    let backup = dir.path().join("estca.backup");
    dir.cli_ok(&["backup", backup.to_str().unwrap()], None);
    let text = std::fs::read_to_string(&backup).unwrap();
    for der in [&server, &signer, &reloaded] {
        let serial = serial_hex(der);
        assert!(
            text.lines()
                .any(|l| l.contains("\"type\":\"certificate\"") && l.contains(&serial)),
            "{serial} is not in the backup"
        );
    }
    let crl = dir.cli_json(&["crl", "show"]);
    assert_eq!(crl["entries"], serde_json::json!([]), "{crl}");
    let records = text
        .lines()
        .filter(|l| l.contains("\"type\":\"certificate\""))
        .count();
    eprintln!(
        "item 11: recorded and good by openssl ocsp: TLS server {} (start), {} (reload), \
         OCSP signer {}; backup holds {records} certificate records; CRL entries: 0",
        serial_hex(&server),
        serial_hex(&reloaded),
        serial_hex(&signer)
    );
}

#[tokio::test]
async fn a_server_certificate_from_files_is_neither_signed_nor_recorded() {
    let dir = TestDir::new(Options::default());
    let key = dir.path().join("tls.key");
    let cert = dir.path().join("tls.pem");
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    let config = std::fs::read_to_string(&dir.config).unwrap();
    std::fs::write(
        &dir.config,
        config.replacen(
            "listen = \"127.0.0.1:0\"\n",
            &format!(
                "listen = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n",
                cert.to_str().unwrap(),
                key.to_str().unwrap()
            ),
            1,
        ),
    )
    .unwrap();
    let daemon = TestDaemon::start_in(dir);
    let presented = presented_server_certificate(daemon.port);
    let (_, from_file) = pem_rfc7468::decode_vec(&std::fs::read(&cert).unwrap()).unwrap();
    assert_eq!(presented, from_file);

    let backup = daemon.dir().path().join("estca.backup");
    daemon
        .dir()
        .cli_ok(&["backup", backup.to_str().unwrap()], None);
    let text = std::fs::read_to_string(&backup).unwrap();
    let holders: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"type\":\"certificate\""))
        .map(|l| {
            if l.contains("\"kind\":\"tls_server\"") {
                "tls_server"
            } else if l.contains("\"kind\":\"ocsp_signer\"") {
                "ocsp_signer"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(holders, vec!["ocsp_signer"], "{text}");
}

// ----- item 14: the issuing CA near its expiry -----------------------------------------------

#[tokio::test]
async fn an_issuing_ca_within_a_year_of_expiry_warns_and_enrollment_gets_503() {
    // A CA whose issuing certificate is valid exactly one year: from the next second on, a
    // one-year certificate no longer fits.
    let dir = TestDir::new(Options::default());
    run(estca_command()
        .arg("--config")
        .arg(&dir.config)
        .arg("init")
        .env("ESTCA_CA__ISSUING_VALIDITY_YEARS", "1"));
    std::thread::sleep(Duration::from_millis(1100));
    let daemon = TestDaemon::start_in(dir);
    let log = daemon.stderr();
    assert!(
        log.contains("ERROR") && log.contains("every enrollment is refused (503)"),
        "{log}"
    );

    let text = metrics(&daemon).await;
    let not_after = sample(&text, "estca_issuing_ca_not_after_timestamp_seconds").unwrap();
    let stops = sample(&text, "estca_enrollment_stops_timestamp_seconds").unwrap();
    let year = 365.0 * 86_400.0;
    assert!(
        (not_after - now_unix() - year).abs() < 2.0 * 86_400.0,
        "{not_after}"
    );
    assert!((stops - now_unix()).abs() < 3_600.0, "{stops}");

    with_account(&daemon, "nozawa1", CONTRACT);
    let answer = daemon
        .client()
        .enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await;
    answer.assert_error(503);
    assert!(
        answer.body.contains("cannot issue certificates now")
            && answer.body.contains("after the issuing CA itself")
            && answer.body.contains("new issuing CA")
            && answer.body.contains("estca ca rollover"),
        "{answer:?}"
    );
    assert_eq!(answer.headers["retry-after"], "86400");
    let history = daemon.dir().history("nozawa1");
    assert!(
        history.iter().any(|e| e["outcome"]["result"] == "refused"
            && e["outcome"]["reason"]
                .as_str()
                .unwrap()
                .contains("new issuing CA")),
        "{history:?}"
    );
    let text = metrics(&daemon).await;
    assert_eq!(
        sample(
            &text,
            "estca_enrollments_refused_total{reason=\"issuing_ca_expiring\"}"
        ),
        Some(1.0),
        "{text}"
    );
    eprintln!(
        "item 14: issuing CA notAfter in {:.1} days, enrollment stopped {:.0} s ago; \
         simpleenroll: {} (Retry-After {}) {}",
        (not_after - now_unix()) / 86_400.0,
        now_unix() - stops,
        answer.status,
        answer.headers["retry-after"].to_str().unwrap(),
        answer.body.trim()
    );
}

/// A root (ten years) and an intermediate valid `days` days, as PEM files in `dir`: the chain
/// (intermediate, root) and the intermediate's PKCS#8 key.
fn short_lived_intermediate(dir: &Path, days: i64) -> (PathBuf, PathBuf) {
    let now = time::OffsetDateTime::now_utc();
    let name = |cn: &str| {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "JP");
        dn.push(rcgen::DnType::OrganizationName, "estca Test");
        dn.push(rcgen::DnType::CommonName, cn);
        dn
    };
    let root_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = rcgen::CertificateParams::default();
    root.distinguished_name = name("Test Root");
    root.not_before = now - time::Duration::minutes(1);
    root.not_after = now + time::Duration::days(3650);
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    root.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let root_cert = root.self_signed(&root_key).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut issuing = rcgen::CertificateParams::default();
    issuing.distinguished_name = name("Short-lived Issuing CA");
    issuing.not_before = now - time::Duration::minutes(1);
    issuing.not_after = now + time::Duration::days(days);
    issuing.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    issuing.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = rcgen::Issuer::from_params(&root, &root_key);
    let issuing_cert = issuing.signed_by(&key, &issuer).unwrap();
    let chain = dir.join("intermediate-chain.pem");
    std::fs::write(&chain, issuing_cert.pem() + &root_cert.pem()).unwrap();
    let key_file = dir.join("intermediate.key");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (chain, key_file)
}

#[tokio::test]
async fn an_issuing_ca_within_the_warning_lead_time_warns_and_still_issues() {
    let dir = TestDir::new(Options::default());
    let (chain, key) = short_lived_intermediate(dir.path(), 380);
    dir.cli_ok(
        &[
            "init",
            "--import-cert",
            chain.to_str().unwrap(),
            "--import-key",
            key.to_str().unwrap(),
        ],
        None,
    );
    let daemon = TestDaemon::start_in(dir);
    let log = daemon.stderr();
    assert!(
        log.contains("WARN") && log.contains("the issuing CA expires soon"),
        "{log}"
    );
    assert!(!log.contains("every enrollment is refused"), "{log}");
    let text = metrics(&daemon).await;
    let stops = sample(&text, "estca_enrollment_stops_timestamp_seconds").unwrap();
    assert!(
        (stops - now_unix() - 15.0 * 86_400.0).abs() < 2.0 * 86_400.0,
        "{stops}"
    );

    with_account(&daemon, "nozawa1", CONTRACT);
    daemon
        .client()
        .enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    eprintln!(
        "item 14: a 380-day issuing CA: warned at start, enrollment stops in {:.1} days, \
         simpleenroll: 200",
        (stops - now_unix()) / 86_400.0
    );
}

// ----- item 15: start-up names the missing CA file -------------------------------------------

#[test]
fn a_missing_issuing_key_is_named_at_start() {
    let dir = TestDir::new(Options::default());
    dir.cli_ok(&["init"], None);
    std::fs::remove_file(dir.ca_dir().join("issuing-ca.key")).unwrap();
    let Err(failure) = TestDaemon::try_start_in(dir) else {
        panic!("estca started without its issuing CA key");
    };
    let (dir, failure) = *failure;
    assert!(
        failure.stderr.contains("issuing-ca.key is missing"),
        "{}",
        failure.stderr
    );
    assert!(
        !failure.stderr.contains("already exists"),
        "{}",
        failure.stderr
    );
    assert!(!dir.ca_dir().join("issuing-ca.key").exists());
    eprintln!("item 15: {}", failure.stderr.trim());
}
