//! Every row of the README's lifecycle table, through the real binary (and, for expiry, an
//! in-process daemon with a manual clock), plus the certificate profile.

mod common;

use std::sync::Arc;

use common::*;
use x509_parser::prelude::{FromDer, X509Certificate};

const ID: &str = "nozawa1";
const CONTRACT: &str = "5110";

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

fn status_of(dir: &TestDir, serial: &str) -> (String, Option<String>) {
    let view = dir.cert(serial);
    (
        view["status"].as_str().unwrap().to_owned(),
        view["revocation"]["reason"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn never_issued_then_active_refuses_simpleenroll_with_409() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, ID, CONTRACT);
    let c = d.client();

    let first = p256();
    let der = c
        .enroll(ID, PASSWORD, &first.csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der), 1);
    let serial = serial_hex(&der);
    let account = d.dir().account(ID);
    assert_eq!(account["issued_count"], 1);
    assert_eq!(account["certificate"]["serial"], serial.as_str());
    assert_eq!(account["certificate"]["status"], "active");
    let not_after = account["certificate"]["not_after"]
        .as_str()
        .unwrap()
        .to_owned();

    let second = p256();
    let answer = c.enroll(ID, PASSWORD, &second.csr_der).await;
    answer.assert_error(409);
    assert!(
        answer.body.contains(&serial),
        "409 names the serial: {}",
        answer.body
    );
    // notAfter as the API shows it, or at least its date.
    assert!(
        answer.body.contains(&not_after) || answer.body.contains(&not_after[..10]),
        "409 names notAfter {not_after}: {}",
        answer.body
    );
    assert!(answer.body.contains("administrator"), "{}", answer.body);
    // Nothing changed.
    let after = d.dir().account(ID);
    assert_eq!(after["issued_count"], 1);
    assert_eq!(after["certificate"]["serial"], serial.as_str());
    assert_eq!(status_of(d.dir(), &serial).0, "active");
    d.dir().assert_at_most_one_active(ID);
}

#[tokio::test]
async fn active_then_simplereenroll_supersedes() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, ID, CONTRACT);
    let (k1, chain1) = enroll_new(&d, ID).await;
    let serial1 = serial_hex(&leaf_der(&chain1));

    let k2 = p256();
    let der2 = d
        .client_with_cert(&chain1, &k1.key_der)
        .reenroll(&k2.csr_der, false)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der2), 2);
    assert_eq!(parse(&der2).public_key().raw, &k2.spki_der[..]);
    assert_eq!(
        status_of(d.dir(), &serial1),
        ("revoked".into(), Some("superseded".into()))
    );
    let account = d.dir().account(ID);
    assert_eq!(account["issued_count"], 2);
    assert_eq!(account["certificate"]["serial"], serial_hex(&der2).as_str());
    assert_eq!(account["certificate"]["status"], "active");
    let statuses = d.dir().assert_at_most_one_active(ID);
    assert_eq!(statuses.len(), 2);
}

#[tokio::test]
async fn reissue_then_simpleenroll_supersedes() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, ID, CONTRACT);
    let (_, chain1) = enroll_new(&d, ID).await;
    let serial1 = serial_hex(&leaf_der(&chain1));

    let shown = d.cli_json(&["account", "reissue", ID]);
    assert_eq!(shown["certificate_choice"], "reissue");
    // The old certificate keeps working until the new one is issued.
    assert_eq!(status_of(d.dir(), &serial1).0, "active");

    let k2 = p256();
    let der2 = d
        .client()
        .enroll(ID, PASSWORD, &k2.csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der2), 2);
    assert_eq!(
        status_of(d.dir(), &serial1),
        ("revoked".into(), Some("superseded".into()))
    );
    let account = d.dir().account(ID);
    assert_eq!(account["issued_count"], 2);
    assert_eq!(account["certificate_choice"], "continue");
    d.dir().assert_at_most_one_active(ID);

    // The reissue was used up: the next simpleenroll is 409 again.
    d.client()
        .enroll(ID, PASSWORD, &p256().csr_der)
        .await
        .assert_error(409);
}

#[tokio::test]
async fn reissue_then_simplereenroll_supersedes() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, ID, CONTRACT);
    let (k1, chain1) = enroll_new(&d, ID).await;
    let serial1 = serial_hex(&leaf_der(&chain1));
    d.cli_ok(&["account", "reissue", ID], None);

    let k2 = p256();
    let chain2 = d
        .client_with_cert(&chain1, &k1.key_der)
        .reenroll(&k2.csr_der, true)
        .await
        .pem_chain();
    assert_eq!(chain2.len(), 2, "PEM answer: leaf then issuing CA");
    assert_eq!(certissuednum(&chain2[0]), 2);
    assert_eq!(
        status_of(d.dir(), &serial1),
        ("revoked".into(), Some("superseded".into()))
    );
    assert_eq!(d.dir().account(ID)["issued_count"], 2);
    d.dir().assert_at_most_one_active(ID);
}

#[tokio::test]
async fn continue_cancels_a_pending_reissue() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, ID, CONTRACT);
    let (_, chain1) = enroll_new(&d, ID).await;
    let serial1 = serial_hex(&leaf_der(&chain1));
    let before = d.dir().account(ID);

    d.cli_ok(&["account", "reissue", ID], None);
    let shown = d.cli_json(&["account", "continue", ID]);
    assert_eq!(shown["certificate_choice"], "continue");

    d.client()
        .enroll(ID, PASSWORD, &p256().csr_der)
        .await
        .assert_error(409);
    let after = d.dir().account(ID);
    assert_eq!(
        after["certificate"], before["certificate"],
        "certificate unchanged"
    );
    assert_eq!(after["issued_count"], 1);
    assert_eq!(status_of(d.dir(), &serial1), ("active".into(), None));
    d.dir().assert_at_most_one_active(ID);
}

#[tokio::test]
async fn revoke_refuses_both_enrollments_until_reissue() {
    let d = TestDaemon::start(Options::default());
    with_account(&d, ID, CONTRACT);
    let (k1, chain1) = enroll_new(&d, ID).await;
    let serial1 = serial_hex(&leaf_der(&chain1));

    let shown = d.cli_json(&["account", "revoke", ID, "--reason", "keyCompromise"]);
    assert_eq!(shown["certificate_choice"], "revoked");
    assert_eq!(
        status_of(d.dir(), &serial1),
        ("revoked".into(), Some("keyCompromise".into()))
    );
    let revoked_at = d.dir().cert(&serial1)["revocation"]["at"]
        .as_str()
        .unwrap()
        .to_owned();
    let at =
        time::OffsetDateTime::parse(&revoked_at, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(
        (time::OffsetDateTime::now_utc() - at).abs() < time::Duration::minutes(5),
        "revoked now, not later: {revoked_at}"
    );

    let answer = d.client().enroll(ID, PASSWORD, &p256().csr_der).await;
    answer.assert_error(403);
    assert!(answer.body.contains("reissue"), "{}", answer.body);
    d.client_with_cert(&chain1, &k1.key_der)
        .reenroll(&p256().csr_der, false)
        .await
        .assert_error(403);
    assert_eq!(d.dir().account(ID)["issued_count"], 1);
    d.dir().assert_at_most_one_active(ID);

    // Nothing to continue once revoked: the CLI says so and exits non-zero.
    let (status, _, err) = d.cli(&["account", "continue", ID], None);
    assert!(!status.success(), "continue after revoke must fail");
    assert!(err.contains("reissue"), "{err}");
    assert_eq!(d.dir().account(ID)["certificate_choice"], "revoked");

    d.cli_ok(&["account", "reissue", ID], None);
    // The revoked certificate stays refused for renewal even after the reissue.
    d.client_with_cert(&chain1, &k1.key_der)
        .reenroll(&p256().csr_der, false)
        .await
        .assert_error(403);
    let der2 = d
        .client()
        .enroll(ID, PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der2), 2);
    // The old one keeps its own reason.
    assert_eq!(
        status_of(d.dir(), &serial1),
        ("revoked".into(), Some("keyCompromise".into()))
    );
    assert_eq!(d.dir().account(ID)["certificate"]["status"], "active");
    d.dir().assert_at_most_one_active(ID);
}

#[tokio::test]
async fn locked_id_gets_401_and_its_certificate_403() {
    let d = TestDaemon::start(Options {
        max_failed_attempts: Some(3),
        ..Options::default()
    });
    with_account(&d, ID, CONTRACT);
    let (k1, chain1) = enroll_new(&d, ID).await;
    d.cli_ok(&["account", "reissue", ID], None);
    let c = d.client();
    for i in 1..=3 {
        c.enroll(ID, "wrong password", &p256().csr_der)
            .await
            .assert_error(401);
        let account = d.dir().account(ID);
        assert_eq!(account["failed_attempts"], i);
        assert_eq!(account["locked"], i == 3, "locked after exactly 3 failures");
    }
    // The right password no longer helps, even with a reissue pending.
    c.enroll(ID, PASSWORD, &p256().csr_der)
        .await
        .assert_error(401);
    d.client_with_cert(&chain1, &k1.key_der)
        .reenroll(&p256().csr_der, false)
        .await
        .assert_error(403);
    assert_eq!(d.dir().account(ID)["issued_count"], 1);

    let shown = d.cli_json(&["account", "unlock", ID]);
    assert_eq!(shown["locked"], false);
    assert_eq!(shown["failed_attempts"], 0);
    let der2 = c
        .enroll(ID, PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der2), 2);
    d.dir().assert_at_most_one_active(ID);
}

#[tokio::test]
async fn a_right_password_resets_the_failure_count() {
    let d = TestDaemon::start(Options {
        max_failed_attempts: Some(2),
        ..Options::default()
    });
    with_account(&d, ID, CONTRACT);
    let c = d.client();
    c.enroll(ID, "wrong password", &p256().csr_der)
        .await
        .assert_error(401);
    assert_eq!(d.dir().account(ID)["failed_attempts"], 1);
    c.enroll(ID, PASSWORD, &p256().csr_der)
        .await
        .assert_status(200);
    assert_eq!(d.dir().account(ID)["failed_attempts"], 0);
    c.enroll(ID, "wrong password", &p256().csr_der)
        .await
        .assert_error(401);
    assert_eq!(d.dir().account(ID)["locked"], false);
}

/// The expiry row needs time to pass: an in-process daemon with a [`ManualClock`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_simpleenroll_issues_simplereenroll_403() {
    use estca::ra::ManualClock;

    let dir = TestDir::new(Options::default());
    let config = estca::config::Config::load_from(Some(&dir.config), Vec::new()).unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let daemon = estca::server::start(config, clock.clone()).await.unwrap();
    let port = daemon.https_addr.port();
    let client = EstClient::new(port, &dir.root_ca_pem(), None);

    let dir = Arc::new(dir);
    {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            dir.add_contract(CONTRACT);
            dir.add_account(ID, CONTRACT, "user");
        })
        .await
        .unwrap();
    }
    let k1 = p256();
    let chain1: String = client
        .enroll_pem(ID, PASSWORD, &k1.csr_der)
        .await
        .pem_chain()
        .iter()
        .map(|c| cert_pem(c))
        .collect();
    let serial1 = serial_hex(&leaf_der(chain1.as_bytes()));

    clock.advance(time::Duration::days(366));

    let d2 = dir.clone();
    let s1 = serial1.clone();
    let view = tokio::task::spawn_blocking(move || d2.cert(&s1))
        .await
        .unwrap();
    assert_eq!(view["status"], "expired");
    assert!(view["revocation"].is_null());

    let reenroll = EstClient::new(
        port,
        &dir.root_ca_pem(),
        Some((chain1.as_bytes(), &k1.key_der)),
    )
    .reenroll(&p256().csr_der, false)
    .await;
    reenroll.assert_error(403);
    assert!(reenroll.body.contains("expired"), "{}", reenroll.body);

    let k2 = p256();
    let der2 = client
        .enroll(ID, PASSWORD, &k2.csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der2), 2);
    // The new certificate's validity starts at the RA's (moved) time.
    let nb = parse(&der2).validity().not_before.timestamp();
    let moved = (time::OffsetDateTime::now_utc() + time::Duration::days(366)).unix_timestamp();
    assert!((nb - moved).abs() < 600, "notBefore follows the RA clock");

    let d3 = dir.clone();
    let (statuses, account) =
        tokio::task::spawn_blocking(move || (d3.assert_at_most_one_active(ID), d3.account(ID)))
            .await
            .unwrap();
    assert_eq!(statuses.get(&serial1).map(String::as_str), Some("expired"));
    assert_eq!(
        statuses.get(&serial_hex(&der2)).map(String::as_str),
        Some("active")
    );
    assert_eq!(account["issued_count"], 2);
    daemon.stop().await.unwrap();
}

fn rdns(cert: &X509Certificate<'_>) -> Vec<(String, String)> {
    cert.subject()
        .iter_rdn()
        .map(|rdn| {
            let attrs: Vec<_> = rdn.iter().collect();
            assert_eq!(attrs.len(), 1, "one attribute per RDN");
            let name = match attrs[0].attr_type().to_id_string().as_str() {
                "2.5.4.6" => "C",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.3" => "CN",
                other => panic!("unexpected attribute {other}"),
            };
            (name.to_owned(), attrs[0].as_str().unwrap().to_owned())
        })
        .collect()
}

fn check_profile(der: &[u8], spki: &[u8], rsa: bool) {
    let cert = parse(der);
    let serial = cert.raw_serial();
    assert_eq!(serial.len(), 16, "16-byte serial");
    assert!(
        (1..=0x7f).contains(&serial[0]),
        "positive, first byte 1..=0x7f"
    );
    let nb =
        time::OffsetDateTime::from_unix_timestamp(cert.validity().not_before.timestamp()).unwrap();
    let na =
        time::OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).unwrap();
    let date = nb.date();
    let next = time::Date::from_calendar_date(date.year() + 1, date.month(), date.day())
        .unwrap_or_else(|_| {
            time::Date::from_calendar_date(date.year() + 1, time::Month::February, 28).unwrap()
        });
    assert_eq!(na, nb.replace_date(next), "one calendar year");

    let bc = cert.basic_constraints().unwrap().expect("basicConstraints");
    assert!(bc.critical);
    assert!(!bc.value.ca);
    let ku = cert.key_usage().unwrap().expect("keyUsage");
    assert!(ku.critical);
    let expected = if rsa { 1 | 4 } else { 1 };
    assert_eq!(ku.value.flags, expected, "keyUsage {}", ku.value);
    let eku = cert
        .extended_key_usage()
        .unwrap()
        .expect("extendedKeyUsage");
    let e = eku.value;
    assert!(e.client_auth);
    assert!(
        !e.any
            && !e.server_auth
            && !e.code_signing
            && !e.email_protection
            && !e.time_stamping
            && !e.ocsp_signing
            && e.other.is_empty(),
        "clientAuth only: {e:?}"
    );
    assert_eq!(cert.public_key().raw, spki, "the CSR's public key");
}

#[tokio::test]
async fn issued_certificate_follows_the_profile() {
    let org = "Nozawa Shinkin Bank, Test";
    let issuing = "Nozawa Issuing CA - TEST";
    let d = TestDaemon::start(Options {
        organization: Some(org.into()),
        issuing_name: Some(issuing.into()),
        ..Options::default()
    });
    d.dir().add_contract(CONTRACT);
    d.dir().add_account(ID, CONTRACT, "user");
    d.dir().add_account("boss1", CONTRACT, "master");
    let c = d.client();

    let k = p256();
    let der = c.enroll(ID, PASSWORD, &k.csr_der).await.pkcs7_certificate();
    let expect = |usertype: &str, cn: &str| {
        vec![
            ("C".to_owned(), "JP".to_owned()),
            ("O".into(), org.into()),
            ("OU".into(), issuing.into()),
            ("OU".into(), format!("USERTYPE - {usertype}")),
            ("OU".into(), "CERTISSUEDNUM - 1".into()),
            ("CN".into(), cn.into()),
        ]
    };
    assert_eq!(rdns(&parse(&der)), expect("2", "nozawa1 5110"));
    check_profile(&der, &k.spki_der, false);
    // Issued by the issuing CA on disk.
    let issuing_pem = std::fs::read(d.dir().ca_dir().join("issuing-ca.pem")).unwrap();
    let issuing_der = leaf_der(&issuing_pem);
    let issuer = parse(&issuing_der);
    assert_eq!(parse(&der).issuer(), issuer.subject());
    parse(&der)
        .verify_signature(Some(issuer.public_key()))
        .expect("signed by the issuing CA");

    let km = p256();
    let master = c
        .enroll("boss1", PASSWORD, &km.csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(rdns(&parse(&master)), expect("1", "boss1 5110"));
    check_profile(&master, &km.spki_der, false);
}

#[tokio::test]
async fn key_types_and_key_reuse() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract(CONTRACT);
    for id in ["p256u", "p384u", "ed25519u", "rsa2048u"] {
        d.dir().add_account(id, CONTRACT, "user");
    }
    let c = d.client();

    let k = p256();
    let der = c
        .enroll("p256u", PASSWORD, &k.csr_der)
        .await
        .pkcs7_certificate();
    check_profile(&der, &k.spki_der, false);

    let k384 = key_and_csr(&rcgen::PKCS_ECDSA_P384_SHA384);
    let der = c
        .enroll("p384u", PASSWORD, &k384.csr_der)
        .await
        .pkcs7_certificate();
    check_profile(&der, &k384.spki_der, false);

    let ked = key_and_csr(&rcgen::PKCS_ED25519);
    let der = c
        .enroll("ed25519u", PASSWORD, &ked.csr_der)
        .await
        .pkcs7_certificate();
    check_profile(&der, &ked.spki_der, false);

    let krsa = openssl_key_and_csr("rsa:2048");
    let der = c
        .enroll("rsa2048u", PASSWORD, &krsa.csr_der)
        .await
        .pkcs7_certificate();
    check_profile(&der, &krsa.spki_der, true);

    // A key certified once is refused, for the same ID after a reissue...
    d.cli_ok(&["account", "reissue", "p256u"], None);
    let answer = c.enroll("p256u", PASSWORD, &k.csr_der).await;
    answer.assert_error(400);
    assert!(answer.body.contains("already certified"), "{}", answer.body);
    // ...and for another ID (a new CSR over the same key also counts).
    d.dir().add_account("other", CONTRACT, "user");
    c.enroll("other", PASSWORD, &k384.csr_der)
        .await
        .assert_error(400);
    assert_eq!(d.dir().account("other")["issued_count"], 0);
    // The refusal used up nothing: a fresh key still works on the pending reissue.
    let fresh = p256();
    let der = c
        .enroll("p256u", PASSWORD, &fresh.csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&der), 2);
}

/// An in-process daemon whose registration authority reads `clock`, with one user account.
async fn in_process(
    clock: Arc<estca::ra::ManualClock>,
) -> (Arc<TestDir>, estca::server::RunningDaemon, EstClient) {
    let dir = TestDir::new(Options::default());
    let config = estca::config::Config::load_from(Some(&dir.config), Vec::new()).unwrap();
    let daemon = estca::server::start(config, clock).await.unwrap();
    let client = EstClient::new(daemon.https_addr.port(), &dir.root_ca_pem(), None);
    let dir = Arc::new(dir);
    let d = dir.clone();
    tokio::task::spawn_blocking(move || {
        d.add_contract(CONTRACT);
        d.add_account(ID, CONTRACT, "user");
    })
    .await
    .unwrap();
    (dir, daemon, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_29_february_start_ends_on_28_february() {
    let start = time::macros::datetime!(2028-02-29 09:30:00 UTC);
    let clock = Arc::new(estca::ra::ManualClock::new(start));
    let (_dir, daemon, client) = in_process(clock).await;
    let der = client
        .enroll(ID, PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    let cert = parse(&der);
    assert_eq!(
        cert.validity().not_before.timestamp(),
        start.unix_timestamp()
    );
    assert_eq!(
        cert.validity().not_after.timestamp(),
        time::macros::datetime!(2029-02-28 09:30:00 UTC).unix_timestamp()
    );
    daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_certificate_outlives_the_issuing_ca() {
    // The development issuing CA is valid 10 years; a year-long certificate starting 9.5
    // years from now would end after it.
    let clock = Arc::new(estca::ra::ManualClock::new(
        time::OffsetDateTime::now_utc() + time::Duration::days(365 * 9 + 180),
    ));
    let (dir, daemon, client) = in_process(clock).await;
    let answer = client.enroll(ID, PASSWORD, &p256().csr_der).await;
    assert_ne!(
        answer.status, 200,
        "issued past the CA's expiry: {answer:?}"
    );
    assert!(answer.content_type().starts_with("text/plain"));
    let account = tokio::task::spawn_blocking(move || dir.account(ID))
        .await
        .unwrap();
    assert_eq!(account["issued_count"], 0);
    assert!(account["certificate"].is_null());
    daemon.stop().await.unwrap();
}
