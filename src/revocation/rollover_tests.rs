//! An issuing CA rollover end to end, in-process with a manual clock: issue under CA 1, reach
//! the point where a one-year certificate no longer fits (refused), roll over, issue under
//! CA 2, revoke the CA-1 certificate, and have openssl verify each generation's CRL and OCSP
//! answers and the `cacerts` contents.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::RevocationServices;
use crate::ca::rollover::RolloverReport;
use crate::ca::{CertificateAuthority, Generations, IssuingCas};
use crate::config::{CaConfig, Config};
use crate::model::{AccountId, RevocationReason, Role};
use crate::ra::CertificateAction;
use crate::ra::{Caller, Clock, InitialPassword, ManualClock, NewAccount, RegistrationAuthority};
use crate::store::{SledStore, Store};

const PUBLIC_URL: &str = "http://ca.test";
const TEMPLATE: &str = "{id}";

fn ca_config(dir: &Path, issuing_years: u32) -> CaConfig {
    CaConfig {
        issuing_validity_years: issuing_years,
        ..crate::ca::tests::test_ca_config(dir)
    }
}

fn load(config: &CaConfig, now: OffsetDateTime) -> Generations {
    let current = CertificateAuthority::load(config, TEMPLATE)
        .unwrap()
        .with_public_url(PUBLIC_URL)
        .unwrap();
    Generations::with_previous(current, config, TEMPLATE, PUBLIC_URL, now).unwrap()
}

fn csr() -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec()
}

fn pem_file(dir: &Path, name: &str, ders: &[&[u8]]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, crate::ca::pkcs7::pem_certificates(ders)).unwrap();
    path
}

/// Runs openssl; returns (success, stdout and stderr).
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

/// A CA directory with a two-year issuing CA, a sled store, its revocation services and a
/// registration authority with contract 5110, at a manual clock that starts now.
struct Setup {
    tmp: tempfile::TempDir,
    ca_dir: PathBuf,
    config: CaConfig,
    clock: Arc<ManualClock>,
    cas: Arc<IssuingCas>,
    services: RevocationServices,
    ra: RegistrationAuthority,
    operator: Caller,
}

async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let config = ca_config(&ca_dir, 2);
    CertificateAuthority::init(&config, None).unwrap();
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let cas = Arc::new(IssuingCas::new(load(&config, start)));
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&tmp.path().join("db")).unwrap());
    let defaults = Config::load_from(None, Vec::<(String, String)>::new()).unwrap();
    let services = RevocationServices::new(
        store.clone(),
        cas.clone(),
        clock.clone(),
        &defaults.revocation,
    )
    .await
    .unwrap();
    let mut auth = defaults.auth.clone();
    auth.argon2_memory_kib = 1024;
    auth.argon2_iterations = 1;
    let ra = RegistrationAuthority::new(store, cas.clone(), clock.clone(), &auth).unwrap();
    let operator = Caller::operator(None);
    ra.create_contract(&operator, "5110".parse().unwrap(), "C".into(), false)
        .await
        .unwrap();
    Setup {
        tmp,
        ca_dir,
        config,
        clock,
        cas,
        services,
        ra,
        operator,
    }
}

/// Creates user IDs in contract 5110.
async fn add_ids(ra: &RegistrationAuthority, operator: &Caller, ids: &[&str]) {
    for id in ids {
        ra.create_account(
            operator,
            NewAccount {
                id: Some(id.parse().unwrap()),
                contract: "5110".parse().unwrap(),
                role: Role::User,
                name: "U".into(),
                password: InitialPassword::Clear(Zeroizing::new("correct horse battery".into())),
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn after_a_rollover_both_generations_answer_for_their_certificates_and_openssl_agrees() {
    let Setup {
        tmp,
        ca_dir,
        config,
        clock,
        cas,
        services,
        ra,
        operator,
    } = setup().await;
    add_ids(&ra, &operator, &["u1", "u2", "u3"]).await;
    let u1: AccountId = "u1".parse().unwrap();
    let u2: AccountId = "u2".parse().unwrap();
    let ca1 = cas.current();

    // Eleven months on, generation 1 (two years) issues; its certificate points at its own
    // CRL and certificate.
    clock.advance(Duration::days(11 * 31));
    let a = ra.issue_on_behalf(&operator, &u1, &csr()).await.unwrap();
    let a_text = openssl_text(tmp.path(), "a.pem", a.der());
    let id1 = ca1.generation_id();
    assert!(
        a_text.contains(&format!("URI:{PUBLIC_URL}/crl/{id1}")),
        "{a_text}"
    );
    assert!(
        a_text.contains(&format!("CA Issuers - URI:{PUBLIC_URL}/ca/{id1}.crt")),
        "{a_text}"
    );
    assert!(
        a_text.contains(&format!("OCSP - URI:{PUBLIC_URL}/ocsp")),
        "{a_text}"
    );

    // A CA-1 certificate revoked before the rollover.
    let u3: AccountId = "u3".parse().unwrap();
    let c = ra.issue_on_behalf(&operator, &u3, &csr()).await.unwrap();
    ra.certificate_action(
        &operator,
        &u3,
        CertificateAction::Revoke(RevocationReason::Unspecified),
    )
    .await
    .unwrap();

    // Two months later, CA 1 has less than a year left: refused, saying what to do.
    clock.advance(Duration::days(2 * 31));
    let refused = ra
        .issue_on_behalf(&operator, &u2, &csr())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("estca ca rollover"),
        "{refused}"
    );

    // Roll over (the root key is in the CA directory, so it certifies the new key at once);
    // the daemon's reload does what follows: load, sync the publishers, put in force.
    let report = CertificateAuthority::rollover(&ca_config(&ca_dir, 3), None).unwrap();
    assert!(
        matches!(
            report,
            RolloverReport::Installed {
                retired: Some(_),
                ..
            }
        ),
        "{report}"
    );
    let generations = load(&config, clock.now());
    assert_eq!(generations.previous().len(), 1);
    services.sync(&generations).await.unwrap();
    let id2 = generations.current().generation_id();
    assert_eq!(
        services
            .crl
            .by_id(&id2)
            .unwrap()
            .last()
            .entries
            .iter()
            .map(|e| e.serial)
            .collect::<Vec<_>>(),
        vec![c.record().serial],
        "the new generation's first CRL, signed before it is in force, lists the certificate \
         revoked under the same name by CA 1"
    );
    cas.replace(generations);
    let ca2 = cas.current();
    assert_eq!(ca2.generation_id(), id2);
    assert_ne!(id1, id2);

    // Generation 2 issues, at the clock's time.
    let b = ra.issue_on_behalf(&operator, &u2, &csr()).await.unwrap();
    let b_text = openssl_text(tmp.path(), "b.pem", b.der());
    assert!(
        b_text.contains(&format!("URI:{PUBLIC_URL}/crl/{id2}")),
        "{b_text}"
    );
    assert!(b.record().not_before >= clock.now() - Duration::seconds(1));

    // Revoke the CA-1 certificate.
    ra.certificate_action(
        &operator,
        &u1,
        CertificateAction::Revoke(RevocationReason::KeyCompromise),
    )
    .await
    .unwrap();

    // Each generation's CRL, each signed by its own key: both list A and C, the revoked
    // certificates of the name both generations share (RFC 5280's scope of a CRL without an
    // issuingDistributionPoint).
    let crl1 = services.crl.by_id(&id1).unwrap().current().await;
    let crl2 = services.crl.by_id(&id2).unwrap().current().await;
    let mut expected = vec![a.record().serial, c.record().serial];
    expected.sort();
    for crl in [&crl1, &crl2] {
        assert_eq!(
            crl.entries.iter().map(|e| e.serial).collect::<Vec<_>>(),
            expected
        );
    }
    assert_eq!(
        services.crl.current().unwrap().current().await.number,
        services.crl.by_id(&id2).unwrap().last().number,
        "/crl is the current generation's"
    );
    let crls = tmp.path().join("crls.pem");
    std::fs::write(&crls, [crl1.pem.as_ref(), crl2.pem.as_ref()].concat()).unwrap();

    // openssl: every certificate chains, CRLs of both issuers (same name, told apart by
    // their authority key identifiers) in one file, at the clock's time.
    let root = ca1.root_certificate_der().unwrap();
    let trust = pem_file(
        tmp.path(),
        "trust.pem",
        &[
            root,
            ca1.issuing_certificate_der(),
            ca2.issuing_certificate_der(),
        ],
    );
    let at = clock.now().unix_timestamp().to_string();
    // `extra` options go before the files.
    let verify = |cert: &str, crls: &Path, extra: &[&str]| {
        let mut args = vec!["verify", "-attime", &at, "-crl_check"];
        args.extend_from_slice(extra);
        let cert = tmp.path().join(cert);
        args.extend([
            "-CAfile",
            trust.to_str().unwrap(),
            "-CRLfile",
            crls.to_str().unwrap(),
            cert.to_str().unwrap(),
        ]);
        openssl(&args)
    };
    let (ok, text) = verify("a.pem", &crls, &[]);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify("b.pem", &crls, &[]);
    assert!(ok, "{text}");
    // A relying party that takes a CRL another key of the issuer signed (RFC 5280 6.3.3 (f);
    // openssl's -extended_crl, which looks for that key's certificate among -untrusted),
    // given only CA 2's CRL: A is revoked there too, not good.
    let crl2_file = tmp.path().join("crl2.pem");
    std::fs::write(&crl2_file, crl2.pem.as_ref()).unwrap();
    let ca1_pem = pem_file(tmp.path(), "ca1.pem", &[ca1.issuing_certificate_der()]);
    let ca2_pem = pem_file(tmp.path(), "ca2.pem", &[ca2.issuing_certificate_der()]);
    let (ok, text) = verify(
        "a.pem",
        &crl2_file,
        &["-extended_crl", "-untrusted", ca2_pem.to_str().unwrap()],
    );
    assert!(!ok && text.contains("certificate revoked"), "{text}");

    // OCSP through the one responder URL: each request goes to its issuer's responder.
    let ocsp = |issuer: PathBuf, cert: &'static str| {
        ocsp_check(&services, tmp.path(), &trust, &at, issuer, cert)
    };
    let (ok, text) = ocsp(ca1_pem.clone(), "a.pem").await;
    assert!(ok && text.contains("Response verify OK"), "{text}");
    assert!(text.contains("a.pem: revoked"), "{text}");
    let (ok, text) = ocsp(ca2_pem.clone(), "b.pem").await;
    assert!(ok && text.contains("Response verify OK"), "{text}");
    assert!(text.contains("b.pem: good"), "{text}");
    // A CertID naming CA 2 with CA 1's serial: CA 2 did not issue it.
    let (_, text) = ocsp(ca2_pem, "a.pem").await;
    assert!(text.contains("a.pem: unknown"), "{text}");

    // cacerts holds both issuing CAs and the root; the PEM order is the current chain (CA 2,
    // then the root that certifies it), then the previous issuing CA.
    assert_eq!(
        ra.ca_chain_der(),
        vec![
            ca2.issuing_certificate_der().to_vec(),
            root.to_vec(),
            ca1.issuing_certificate_der().to_vec()
        ]
    );
    let p7 = tmp.path().join("cacerts.p7");
    std::fs::write(&p7, ra.ca_certificates_pkcs7()).unwrap();
    let (ok, text) = openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-print_certs",
        "-noout",
        "-in",
        p7.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(text.matches("subject=").count(), 3, "{text}");
}

/// Writes `der` as PEM to `dir/name` and returns openssl's text of it.
fn openssl_text(dir: &Path, name: &str, der: &[u8]) -> String {
    let path = pem_file(dir, name, &[der]);
    let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", path.to_str().unwrap()]);
    assert!(ok, "{text}");
    text
}

/// Has openssl ask for the status of `dir/cert` issued by `issuer`, answers it with the
/// daemon's responders, and has openssl check the answer at `at`.
async fn ocsp_check(
    services: &RevocationServices,
    dir: &Path,
    trust: &Path,
    at: &str,
    issuer: PathBuf,
    cert: &str,
) -> (bool, String) {
    let cert_path = dir.join(cert);
    let request = dir.join(format!("{cert}.req"));
    let (ok, text) = openssl(&[
        "ocsp",
        "-no_nonce",
        "-issuer",
        issuer.to_str().unwrap(),
        "-cert",
        cert_path.to_str().unwrap(),
        "-reqout",
        request.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let answer = services
        .ocsp
        .respond(&std::fs::read(&request).unwrap())
        .await;
    let response = dir.join(format!("{cert}.resp"));
    std::fs::write(&response, &*answer.der).unwrap();
    openssl(&[
        "ocsp",
        "-respin",
        response.to_str().unwrap(),
        "-issuer",
        issuer.to_str().unwrap(),
        "-cert",
        cert_path.to_str().unwrap(),
        "-CAfile",
        trust.to_str().unwrap(),
        "-attime",
        at,
        "-validity_period",
        "100000000",
    ])
}

/// A rollover that renames the issuing CA (`ca.issuing_name` changed before it) makes a new
/// CRL issuer: each generation's CRL then lists its own name's revoked certificates only.
#[tokio::test]
async fn a_renamed_generation_lists_only_its_own_names_revocations() {
    let Setup {
        tmp: _tmp,
        config,
        clock,
        cas,
        services,
        ra,
        operator,
        ..
    } = setup().await;
    add_ids(&ra, &operator, &["r1", "r2"]).await;
    let mut revoked = Vec::new();
    for (id, rolled_over) in [("r1", false), ("r2", true)] {
        if rolled_over {
            let renamed = CaConfig {
                issuing_name: "Test Issuing Renamed".into(),
                ..config.clone()
            };
            CertificateAuthority::rollover(&renamed, None).unwrap();
            let generations = load(&renamed, clock.now());
            assert_eq!(generations.previous().len(), 1);
            assert!(!generations
                .current()
                .same_issuer_name(&generations.previous()[0]));
            services.sync(&generations).await.unwrap();
            cas.replace(generations);
        }
        let account: AccountId = id.parse().unwrap();
        let issued = ra
            .issue_on_behalf(&operator, &account, &csr())
            .await
            .unwrap();
        ra.certificate_action(
            &operator,
            &account,
            CertificateAction::Revoke(RevocationReason::KeyCompromise),
        )
        .await
        .unwrap();
        revoked.push((cas.current().generation_id(), issued.record().serial));
    }
    for (generation, serial) in &revoked {
        let crl = services.crl.by_id(generation).unwrap().current().await;
        assert_eq!(
            crl.entries.iter().map(|e| e.serial).collect::<Vec<_>>(),
            vec![*serial],
            "generation {generation}"
        );
    }
}
