//! Delegated issuance against the real daemon: an application credential has certificates
//! issued for the IDs of its scope, over EST (`simpleenroll` with its client certificate, the
//! ID in the CSR's CN) and over the management API (a PKCS#10 body), under the same lifecycle,
//! lockout and history as the ID's own enrollment.

mod common;

use reqwest::Method;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};

use common::*;

/// A P-256 key and a CSR whose subject is `CN=<cn>`.
fn csr_for(cn: &str) -> KeyAndCsr {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    KeyAndCsr {
        key_der: key.serialize_der(),
        spki_der: rcgen::PublicKeyData::subject_public_key_info(&key),
        csr_der: params.serialize_request(&key).unwrap().der().to_vec(),
    }
}

/// A fresh P-256 key, and its CSR written (PEM) to `<name>.csr` in the daemon's directory.
fn key_and_csr_file(d: &TestDaemon, name: &str) -> (KeyAndCsr, std::path::PathBuf) {
    let key = p256();
    let csr = d.dir().path().join(format!("{name}.csr"));
    std::fs::write(
        &csr,
        pem_rfc7468::encode_string(
            "CERTIFICATE REQUEST",
            pem_rfc7468::LineEnding::LF,
            &key.csr_der,
        )
        .unwrap(),
    )
    .unwrap();
    (key, csr)
}

/// Registers application `name` for `scope` (CLI arguments) and returns its key and PEM chain.
fn add_app(d: &TestDaemon, name: &str, scope: &[&str]) -> (KeyAndCsr, String) {
    let (key, csr) = key_and_csr_file(d, name);
    let mut args = vec!["app", "add", name];
    args.extend_from_slice(scope);
    args.extend_from_slice(&["--csr", csr.to_str().unwrap()]);
    let chain = d.cli_ok(&args, None);
    (key, chain)
}

/// A client of the daemon with this identity: EST and the management API.
fn client_of(d: &TestDaemon, chain: &str, key: &KeyAndCsr) -> EstClient {
    EstClient::new(
        d.port,
        &d.dir().root_ca_pem(),
        Some((chain.as_bytes(), &key.key_der)),
    )
}

/// simpleenroll without HTTP Basic credentials (the client certificate authenticates).
async fn enroll_as_app(client: &EstClient, csr_der: &[u8]) -> Answer {
    client
        .enroll_raw(
            None,
            Some("application/pkcs10"),
            base64_encode(csr_der).into_bytes(),
            false,
        )
        .await
}

fn base64_encode(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn api_url(client: &EstClient, path: &str) -> String {
    format!(
        "{}{path}",
        client.base.replace("/.well-known/est", "/api/v1")
    )
}

async fn api_json(client: &EstClient, method: Method, path: &str, body: Value) -> (u16, Value) {
    let answer = client
        .send(
            client
                .http
                .request(method, api_url(client, path))
                .json(&body),
        )
        .await;
    (answer.status, serde_json::from_str(&answer.body).unwrap())
}

/// `POST /api/v1/accounts/{id}/certificate` with a PKCS#10 body.
async fn api_issue(client: &EstClient, id: &str, body: Vec<u8>, accept_pem: bool) -> Answer {
    let mut request = client
        .http
        .post(api_url(client, &format!("/accounts/{id}/certificate")))
        .header("content-type", "application/pkcs10");
    if accept_pem {
        request = request.header("accept", "application/pem-certificate-chain");
    }
    client.send(request.body(body)).await
}

fn single(certificates: Vec<Vec<u8>>) -> Vec<u8> {
    assert_eq!(
        certificates.len(),
        1,
        "the answer holds only the new certificate"
    );
    certificates.into_iter().next().unwrap()
}

fn subject_of(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    cert.subject().to_string()
}

fn history_of(d: &TestDaemon, id: &str) -> Vec<Value> {
    d.dir().history(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_enrolls_the_ids_of_its_scope_over_est_as_if_they_had() {
    let d = TestDaemon::start(Options::default());
    for (contract, master, user) in [("A", "ma", "ua"), ("B", "mb", "ub")] {
        d.dir().add_contract(contract);
        d.dir().add_account(master, contract, "master");
        d.dir().add_account(user, contract, "user");
    }
    let (app_key, app_chain) = add_app(&d, "bankapp", &["--contracts", "A"]);

    // The application's certificate tells an EST client it is a registration authority.
    {
        use x509_parser::prelude::FromDer;
        let der = leaf_der(app_chain.as_bytes());
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth);
        let cmc_ra = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 3, 28]).unwrap();
        assert!(eku.other.contains(&cmc_ra), "no id-kp-cmcRA: {eku:?}");
    }

    let app = client_of(&d, &app_chain, &app_key);
    let first = enroll_as_app(&app, &csr_for("ua").csr_der).await;
    first.assert_status(200);
    let cert = first.pkcs7_certificate();
    assert_eq!(certissuednum(&cert), 1);
    let subject = subject_of(&cert);
    assert!(
        subject.contains("CN=ua A") && subject.contains("USERTYPE - 2"),
        "{subject}"
    );

    // One active certificate: a second enrollment is refused until reissue is chosen, exactly
    // as for the ID itself.
    let again = enroll_as_app(&app, &csr_for("ua").csr_der).await;
    again.assert_error(409);
    assert!(again.body.contains("reissue"), "{}", again.body);

    // Out of scope is answered exactly like an ID that does not exist.
    let out_of_scope = enroll_as_app(&app, &csr_for("ub").csr_der).await;
    let unknown = enroll_as_app(&app, &csr_for("nobody").csr_der).await;
    out_of_scope.assert_error(404);
    unknown.assert_error(404);
    assert_eq!(
        out_of_scope.body.replace("ub", "ID"),
        unknown.body.replace("nobody", "ID")
    );
    assert!(d.dir().issued_serials("ub").is_empty());
    // A master's certificate administers its contract: never issued by an application.
    enroll_as_app(&app, &csr_for("ma").csr_der)
        .await
        .assert_error(403);
    // A CSR that names no ID.
    let nameless = enroll_as_app(&app, &p256().csr_der).await;
    nameless.assert_error(404);
    let mut no_cn = csr_for("x");
    no_cn.csr_der = {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.serialize_request(&key).unwrap().der().to_vec()
    };
    let answer = enroll_as_app(&app, &no_cn.csr_der).await;
    answer.assert_error(400);
    assert!(answer.body.contains("CN"), "{}", answer.body);

    // A locked ID is refused; the application unlocks it and chooses reissue, as a master.
    let user = d.client();
    for _ in 0..5 {
        user.enroll("ua", "wrong password!", &p256().csr_der)
            .await
            .assert_error(401);
    }
    assert_eq!(d.dir().account("ua")["locked"], true);
    let (status, _) = api_json(
        &app,
        Method::POST,
        "/accounts/ua/certificate",
        json!({"action": "reissue"}),
    )
    .await;
    assert_eq!(status, 200);
    let locked = enroll_as_app(&app, &csr_for("ua").csr_der).await;
    locked.assert_error(403);
    assert!(locked.body.contains("locked"), "{}", locked.body);
    let (status, _) = api_json(&app, Method::POST, "/accounts/ua/unlock", json!({})).await;
    assert_eq!(status, 200);
    let second = enroll_as_app(&app, &csr_for("ua").csr_der).await;
    second.assert_status(200);
    let second = second.pkcs7_certificate();
    assert_eq!(certissuednum(&second), 2);
    d.dir().assert_at_most_one_active("ua");
    let old = d.dir().cert(&serial_hex(&cert));
    assert_eq!(old["revocation"]["reason"], "superseded");

    // History names the application as the actor of each issuance and refusal.
    let history = history_of(&d, "ua");
    let by_app: Vec<&Value> = history
        .iter()
        .filter(|e| e["kind"] == "enroll" && e["actor"]["name"] == "bankapp")
        .collect();
    let issued = by_app
        .iter()
        .filter(|e| e["outcome"]["result"] == "ok")
        .count();
    let refused = by_app.len() - issued;
    assert_eq!(issued, 2, "{history:#?}");
    assert_eq!(refused, 2, "active and locked: {history:#?}");

    // Without credentials, simpleenroll still asks for a password when the connection
    // presents no certificate or an ID's own: only an application's enrolls others.
    let (ub_key, ub_chain) = enroll_new(&d, "ub").await;
    let ub_client = EstClient::new(
        d.port,
        &d.dir().root_ca_pem(),
        Some((&ub_chain, &ub_key.key_der)),
    );
    for client in [d.client(), ub_client] {
        // The bare challenge (no body) that a request without credentials gets.
        let asked = enroll_as_app(&client, &csr_for("ua").csr_der).await;
        asked.assert_status(401);
        assert!(asked.headers.contains_key("www-authenticate"), "{asked:?}");
        assert!(asked.body.is_empty(), "{asked:?}");
    }
    assert_eq!(d.dir().issued_serials("ua").len(), 2);

    // A revoked application enrolls nobody.
    d.cli_ok(&["app", "revoke", "bankapp"], None);
    enroll_as_app(&client_of(&d, &app_chain, &app_key), &csr_for("ua").csr_der)
        .await
        .assert_error(403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_issues_for_an_id_from_a_pkcs10_body() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("A");
    d.dir().add_account("ma", "A", "master");
    d.dir().add_account("ua", "A", "user");
    let (app_key, app_chain) = add_app(&d, "bankapp", &["--contracts", "A"]);
    let app = client_of(&d, &app_chain, &app_key);

    // Base64 (EST's form): EST's answer, a PKCS#7 certs-only with the certificate, 201.
    let k = p256();
    let answer = api_issue(&app, "ua", base64_encode(&k.csr_der).into_bytes(), false).await;
    answer.assert_status(201);
    assert!(
        answer.content_type().starts_with("application/pkcs7-mime"),
        "{answer:?}"
    );
    let first = single(pkcs7_certificates(&answer.body));
    assert_eq!(certissuednum(&first), 1);
    // The CSR's subject does not matter here: the path names the ID.
    assert!(subject_of(&first).contains("CN=ua A"));

    // The lifecycle decides: active, so refused until reissue.
    let refused = api_issue(&app, "ua", p256().csr_der, false).await;
    refused.assert_status(409);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("reissue"),
        "{body}"
    );
    let (status, _) = api_json(
        &app,
        Method::POST,
        "/accounts/ua/certificate",
        json!({"action": "reissue"}),
    )
    .await;
    assert_eq!(status, 200);
    // DER body, PEM chain by Accept.
    let answer = api_issue(&app, "ua", p256().csr_der, true).await;
    answer.assert_status(201);
    assert_eq!(answer.content_type(), "application/pem-certificate-chain");
    let chain: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(answer.body.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(chain.len(), 2, "leaf then issuing CA");
    assert_eq!(certissuednum(&chain[0]), 2);
    d.dir().assert_at_most_one_active("ua");

    // A master may not issue for its public IDs (they enroll with their own password), and
    // nobody issues for a master but the operator.
    let (ma_key, ma_chain) = enroll_new(&d, "ma").await;
    let master = EstClient::new(
        d.port,
        &d.dir().root_ca_pem(),
        Some((&ma_chain, &ma_key.key_der)),
    );
    api_json(
        &master,
        Method::POST,
        "/accounts/ua/certificate",
        json!({"action": "reissue"}),
    )
    .await;
    let answer = api_issue(&master, "ua", p256().csr_der, false).await;
    answer.assert_status(403);
    let answer = api_issue(&app, "ma", p256().csr_der, false).await;
    answer.assert_status(403);
    // An unknown ID and an unreadable CSR.
    api_issue(&app, "nobody", p256().csr_der, false)
        .await
        .assert_status(404);
    api_issue(&app, "ua", b"%%%".to_vec(), false)
        .await
        .assert_status(400);

    let history = d.dir().history("ua");
    assert!(
        history
            .iter()
            .filter(|e| e["kind"] == "enroll" && e["actor"]["name"] == "bankapp")
            .count()
            >= 3,
        "{history:#?}"
    );
}

/// The README's commands for an application with curl and openssl: the key and CSR made by
/// openssl (PEM, `CN=ID`), posted by curl presenting the application's certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_enrolls_an_id_as_an_application() {
    if !have_tools(&["curl", "openssl"], "the curl delegated-issuance test") {
        return;
    }
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("7001");
    d.dir().add_account("kiyo0012", "7001", "user");
    let (app_key, app_chain) = add_app(&d, "netbanking", &["--contracts", "7001"]);
    let dir = d.dir().path();
    std::fs::write(dir.join("app.pem"), &app_chain).unwrap();
    std::fs::write(
        dir.join("app.key"),
        pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &app_key.key_der)
            .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("root-ca.pem"), d.dir().root_ca_pem()).unwrap();
    let script = format!(
        "set -euo pipefail\n\
         openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout kiyo.key \\\n  \
         -subj \"/CN=kiyo0012\" -out kiyo.csr 2>/dev/null\n\
         curl --fail-with-body -sS --cacert root-ca.pem --cert app.pem --key app.key \\\n  \
         -H 'Content-Type: application/pkcs10' -H 'Accept: application/pem-certificate-chain' \\\n  \
         --data-binary @kiyo.csr -o kiyo.pem \\\n  \
         https://localhost:{}/.well-known/est/simpleenroll\n\
         openssl x509 -in kiyo.pem -noout -subject\n",
        d.port
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("CERTISSUEDNUM - 1, CN = kiyo0012 7001"),
        "{stdout}"
    );
    let history = d.dir().history("kiyo0012");
    assert!(history
        .iter()
        .any(|e| e["kind"] == "enroll" && e["actor"]["name"] == "netbanking"));
}

/// `app add --host`: the hosts an application serves TLS for are checked before anything is
/// issued (no wildcard, no duplicate, at most 16), and a client-only application names none.
#[test]
fn an_applications_hosts_are_checked_before_its_certificate_is_issued() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("5110");
    // `app add raproxy` for contract 5110 with `hosts`, which must be refused saying `says`.
    let refused = |hosts: &[String], says: &str| {
        let (_, csr) = key_and_csr_file(&d, "refused");
        let mut args = vec!["app", "add", "raproxy", "--contracts", "5110"];
        for host in hosts {
            args.extend_from_slice(&["--host", host]);
        }
        args.extend_from_slice(&["--csr", csr.to_str().unwrap()]);
        let (status, out, err) = d.cli(&args, None);
        assert!(!status.success(), "{hosts:?} accepted: {out}");
        assert!(err.contains(says), "{hosts:?}: {err}");
    };
    let hosts = |names: &[&str]| names.iter().map(|h| h.to_string()).collect::<Vec<_>>();
    refused(&hosts(&["*.example.test"]), "no wildcards");
    refused(
        &hosts(&["ra.example.test", "RA.example.test"]),
        "given twice",
    );
    refused(&hosts(&["ra_1.example"]), "letters, digits and hyphens");
    let too_many: Vec<String> = (0..17).map(|i| format!("h{i}.example.test")).collect();
    refused(&too_many, "at most 16 hosts");
    let apps = d.cli_json(&["app", "list"]);
    assert_eq!(apps, serde_json::json!([]), "nothing was granted");

    // A valid pair: named in the certificate and in the listing.
    let (_, chain) = add_app(
        &d,
        "raproxy",
        &["--contracts", "5110", "--host", "ra.example.test,10.0.0.7"],
    );
    let leaf = leaf_der(chain.as_bytes());
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        format!("{:?}", san.value.general_names),
        r#"[DNSName("ra.example.test"), IPAddress([10, 0, 0, 7])]"#
    );
    let apps = d.cli_json(&["app", "list"]);
    assert_eq!(
        apps[0]["hosts"],
        serde_json::json!(["ra.example.test", "10.0.0.7"])
    );
    let (_, chain) = add_app(&d, "client-only", &["--contracts", "5110"]);
    let leaf = leaf_der(chain.as_bytes());
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    assert!(cert.subject_alternative_name().unwrap().is_none());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
}
