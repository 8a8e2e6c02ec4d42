//! Issuing CA rollover on the real daemon, without downtime (README "Rolling over the
//! issuing CA"):
//!
//! - `estca ca rollover` with the development root on the host certifies a new issuing CA at
//!   once; the running daemon goes on with the old one until SIGHUP, then issues under the
//!   new one. Enrollments running all along are all answered 200. A certificate of the old
//!   generation still renews (TLS client authentication trusts both), `cacerts` holds both
//!   issuing CAs and the root, and each generation's CRL is served at the URL its
//!   certificates carry, verifies with openssl and lists the name's revoked certificates.
//! - With the root offline, `estca ca rollover` writes a CSR; the certificate openssl signs
//!   for it with the root key is installed with `--install`, and the daemon started on the
//!   directory loads three generations.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    authority_key_id, pem_subject_key_id, subject_key_id, EstClient, Options, TestDaemon, PASSWORD,
};

async fn plain_get(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    (
        response.status().as_u16(),
        response.bytes().await.unwrap().to_vec(),
    )
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollover_with_the_local_root_takes_effect_at_sighup_without_a_failed_enrollment() {
    // Plain-HTTP requests to the revocation listener use reqwest's default client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let daemon = TestDaemon::start(Options::default());
    let dir = daemon.dir();
    dir.add_contract("5110");
    let ids: Vec<String> = (0..40).map(|i| format!("steady{i}")).collect();
    for id in ids
        .iter()
        .chain(["before", "during", "after"].map(String::from).iter())
    {
        dir.add_account(id, "5110", "user");
    }
    let root = dir.root_ca_pem();
    let ca1 = pem_subject_key_id(&dir.ca_dir().join("issuing-ca.pem"));

    // Enrollment before.
    let before_key = common::p256();
    let client = EstClient::new(daemon.port, &root, None);
    let before = client
        .enroll_pem("before", PASSWORD, &before_key.csr_der)
        .await;
    before.assert_status(200);
    let before_chain = before.pem_chain();
    assert_eq!(authority_key_id(&before_chain[0]), ca1);

    // Enrollments all along, one ID after another, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let steady = {
        let stop = stop.clone();
        let client = EstClient::new(daemon.port, &root, None);
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for id in &ids {
                if stop.load(Ordering::SeqCst) && statuses.len() >= 4 {
                    break;
                }
                let answer = client.enroll(id, PASSWORD, &common::p256().csr_der).await;
                let issuer =
                    (answer.status == 200).then(|| authority_key_id(&answer.pkcs7_certificate()));
                statuses.push((answer.status, issuer));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            statuses
        })
    };

    // The rollover: the new generation is in place on disk; the daemon keeps the old one.
    let out = dir.cli_ok(&["ca", "rollover"], None);
    assert!(out.contains("new issuing CA"), "{out}");
    assert!(out.contains("previous issuing CA retired to"), "{out}");
    let ca2 = pem_subject_key_id(&dir.ca_dir().join("issuing-ca.pem"));
    assert_ne!(ca1, ca2);
    assert!(dir.ca_dir().join("previous/1/issuing-ca.pem").exists());
    let during = client
        .enroll_pem("during", PASSWORD, &common::p256().csr_der)
        .await;
    during.assert_status(200);
    assert_eq!(
        authority_key_id(&during.pem_chain()[0]),
        ca1,
        "until the reload, the old issuing CA signs"
    );
    dir.cli_ok(&["account", "revoke", "during"], None);

    // SIGHUP: the new generation is in force once /ca.crt serves it.
    let revocation = daemon.ready_addr("revocation_http").to_string();
    daemon.reload();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, der) = plain_get(&format!("http://{revocation}/ca.crt")).await;
        assert_eq!(status, 200);
        if subject_key_id(&der).as_deref() == Some(ca2.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new issuing CA after SIGHUP:\n{}",
            daemon.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // After: new certificates come from generation 2 (a fresh connection gets the new TLS
    // server certificate, which the root still verifies).
    let client = EstClient::new(daemon.port, &root, None);
    let after = client
        .enroll_pem("after", PASSWORD, &common::p256().csr_der)
        .await;
    after.assert_status(200);
    assert_eq!(authority_key_id(&after.pem_chain()[0]), ca2);

    // A generation-1 certificate renews, and the renewal is generation 2's.
    let mut chain_pem = Vec::new();
    for der in &before_chain {
        chain_pem.extend(
            pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der)
                .unwrap()
                .into_bytes(),
        );
    }
    let renewing = daemon.client_with_cert(&chain_pem, &before_key.key_der);
    let renewed = renewing.reenroll(&before_key.csr_der, true).await;
    renewed.assert_status(200);
    assert_eq!(authority_key_id(&renewed.pem_chain()[0]), ca2);

    stop.store(true, Ordering::SeqCst);
    let statuses = steady.await.unwrap();
    assert!(
        statuses.iter().all(|(status, _)| *status == 200),
        "every enrollment during the rollover succeeds: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|(_, issuer)| issuer.as_deref() == Some(ca2.as_str())),
        "some steady enrollments ran after the reload: {statuses:?}"
    );

    // cacerts: both issuing CAs and the root; in PEM, the current one first.
    let cacerts = client.get("cacerts").await;
    cacerts.assert_status(200);
    let certs = common::pkcs7_certificates(&cacerts.body);
    assert_eq!(certs.len(), 3);
    let (status, chain) = plain_get(&format!("http://{revocation}/ca.pem")).await;
    assert_eq!(status, 200);
    let chain = String::from_utf8(chain).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 3);
    // The current chain comes first and in order (the new issuing CA, then the root that
    // certifies it), the retired issuing CA last.
    let blocks: Vec<Vec<u8>> = chain
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN"))
        .map(|b| pem_rfc7468::decode_vec(b.trim().as_bytes()).unwrap().1)
        .collect();
    let root_der = pem_rfc7468::decode_vec(dir.root_ca_pem().trim_ascii())
        .unwrap()
        .1;
    assert_eq!(
        blocks[1], root_der,
        "the root follows the current issuing CA"
    );
    let trust = dir.path().join("trust.pem");
    std::fs::write(&trust, &chain).unwrap();
    // openssl builds the path of a certificate of either generation from that bundle (the
    // two issuing CAs share a name; the authority key identifier picks the right one).
    for (name, der) in [
        ("before.pem", &before_chain[0]),
        ("after.pem", &after.pem_chain()[0]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der).unwrap(),
        )
        .unwrap();
        let (ok, text) = openssl(&[
            "verify",
            "-CAfile",
            trust.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert!(ok, "{name}: {text}");
    }

    // Each generation's CRL at its URL, signed by that generation and verified with openssl.
    // Both list the certificate revoked ("during"'s, issued by CA 1): the generations share
    // one name, and a CRL covers every certificate its issuer's name issued (RFC 5280 5.2.5).
    let mut crls = Vec::new();
    for (key_id, name) in [(&ca1, "gen1.crl"), (&ca2, "gen2.crl")] {
        let (status, der) = plain_get(&format!("http://{revocation}/crl/{}", &key_id[..16])).await;
        assert_eq!(status, 200, "/crl/{}", &key_id[..16]);
        let path = dir.path().join(name);
        std::fs::write(&path, der).unwrap();
        // Its issuer from the caIssuers URL of the generation (`openssl crl` looks the issuer
        // up by name alone, and both generations have the same name).
        let (status, issuer) =
            plain_get(&format!("http://{revocation}/ca/{}.crt", &key_id[..16])).await;
        assert_eq!(status, 200);
        let issuer_pem = dir.path().join(format!("{name}.issuer.pem"));
        std::fs::write(
            &issuer_pem,
            pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, &issuer)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(pem_subject_key_id(&issuer_pem), *key_id);
        let (ok, text) = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            path.to_str().unwrap(),
            "-CAfile",
            issuer_pem.to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        assert!(ok && text.contains("verify OK"), "{text}");
        crls.push(text);
    }
    let during_serial = x509_parser::parse_x509_certificate(&during.pem_chain()[0])
        .unwrap()
        .1
        .raw_serial_as_string()
        .replace(':', "")
        .to_uppercase();
    for crl in &crls {
        assert!(crl.contains(&during_serial), "{crl}");
    }
    assert_eq!(
        plain_get(&format!("http://{revocation}/crl/0000000000000000"))
            .await
            .0,
        404
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_root_offline_the_csr_is_signed_elsewhere_and_installed() {
    // A development CA, then its root key taken off the host.
    let daemon = TestDaemon::start(Options::default());
    let dir = daemon.stop();
    let ca_dir = dir.ca_dir();
    let offline = dir.path().join("offline-root.key");
    std::fs::rename(ca_dir.join("root-ca.key"), &offline).unwrap();

    let out = dir.cli_ok(&["ca", "rollover"], None);
    assert!(out.contains("estca ca rollover --install CERT"), "{out}");
    let csr = ca_dir.join("rollover/issuing-ca.csr");
    assert!(csr.exists());
    // A second start while one is under way is refused.
    let (status, _, err) = dir.cli(&["ca", "rollover"], None);
    assert!(!status.success());
    assert!(err.contains("already under way"), "{err}");

    // The offline root signs the CSR (here openssl with the root key file).
    let ext = dir.path().join("issuing.ext");
    std::fs::write(
        &ext,
        "basicConstraints = critical, CA:TRUE, pathlen:0\n\
         keyUsage = critical, keyCertSign, cRLSign, digitalSignature\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    let signed = dir.path().join("issuing-ca-2.pem");
    let (ok, text) = openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        ca_dir.join("root-ca.pem").to_str().unwrap(),
        "-CAkey",
        offline.to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "4000",
        "-sha256",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        signed.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");

    // A certificate for another key is refused, and changes nothing.
    let stranger = dir.path().join("stranger.pem");
    let (ok, text) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "/dev/null",
        "-subj",
        "/CN=stranger",
        "-days",
        "30",
        "-out",
        stranger.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let (status, _, err) = dir.cli(
        &["ca", "rollover", "--install", stranger.to_str().unwrap()],
        None,
    );
    assert!(!status.success(), "{err}");
    assert!(csr.exists());

    let out = dir.cli_ok(
        &["ca", "rollover", "--install", signed.to_str().unwrap()],
        None,
    );
    assert!(out.contains("new issuing CA"), "{out}");
    assert!(!ca_dir.join("rollover").exists());
    assert_eq!(
        pem_subject_key_id(&ca_dir.join("issuing-ca.pem")),
        pem_subject_key_id(&signed)
    );
    // Installing it again is a no-op.
    dir.cli_ok(
        &["ca", "rollover", "--install", signed.to_str().unwrap()],
        None,
    );
    assert!(!ca_dir.join("previous/2").exists());

    // The daemon starts on it and issues under the new generation.
    let daemon = TestDaemon::start_in(dir);
    let dir = daemon.dir();
    dir.add_contract("5110");
    dir.add_account("u1", "5110", "user");
    let client = EstClient::new(daemon.port, &dir.root_ca_pem(), None);
    let issued = client
        .enroll_pem("u1", PASSWORD, &common::p256().csr_der)
        .await;
    issued.assert_status(200);
    assert_eq!(
        authority_key_id(&issued.pem_chain()[0]),
        pem_subject_key_id(&signed)
    );
    let certs = common::pkcs7_certificates(&client.get("cacerts").await.body);
    assert_eq!(certs.len(), 3, "two issuing CA generations and the root");
}
