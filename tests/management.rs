//! The management API over real mTLS: who may see and do what (masters, public IDs, apps,
//! the operator), the help-desk rule for master IDs, and the bank notice's whole flow with a
//! master administering its staff through the API.

mod common;

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use common::*;

/// A management-API client authenticated by a client certificate (or none).
struct Api {
    client: EstClient,
    base: String,
}

impl Api {
    fn new(port: u16, root_pem: &[u8], identity: Option<(&[u8], &[u8])>) -> Self {
        let client = EstClient::new(port, root_pem, identity);
        let base = client.base.replace("/.well-known/est", "/api/v1");
        Self { client, base }
    }

    fn of(daemon: &TestDaemon, chain_pem: &[u8], key_der: &[u8]) -> Self {
        Self::new(
            daemon.port,
            &daemon.dir().root_ca_pem(),
            Some((chain_pem, key_der)),
        )
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .http
            .request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = self.client.send(request).await;
        assert!(
            answer.content_type().starts_with("application/json"),
            "the API answers JSON: {answer:?}"
        );
        let value: Value = serde_json::from_str(&answer.body).unwrap();
        if answer.status >= 400 {
            assert!(
                value["error"].is_string() && value["detail"].is_string(),
                "{value}"
            );
        }
        (answer.status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Contracts A and B, each with a master (`ma`, `mb`) and a public ID (`ua`, `ub`); both
/// masters and `ub` enrolled.
async fn two_contracts() -> (TestDaemon, (KeyAndCsr, Vec<u8>), (KeyAndCsr, Vec<u8>)) {
    let d = TestDaemon::start(Options::default());
    for (contract, master, user) in [("A", "ma", "ua"), ("B", "mb", "ub")] {
        d.dir().add_contract(contract);
        d.dir().add_account(master, contract, "master");
        d.dir().add_account(user, contract, "user");
    }
    let ma = enroll_new(&d, "ma").await;
    let _mb = enroll_new(&d, "mb").await;
    let ub = enroll_new(&d, "ub").await;
    (d, ma, ub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_sees_and_manages_its_own_contract_only() {
    let (d, (ma_key, ma_chain), (_, ub_chain)) = two_contracts().await;
    let master = Api::of(&d, &ma_chain, &ma_key.key_der);

    let (status, list) = master.get("/accounts").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), ["ma", "ua"]);
    let (status, contracts) = master.get("/contracts").await;
    assert_eq!(status, 200);
    assert_eq!(contracts.as_array().unwrap().len(), 1);
    // Its contract and its options; another's is not found; the options are the operator's.
    let (status, contract) = master.get("/contracts/A").await;
    assert_eq!((status, &contract["server_keygen"]), (200, &json!(false)));
    let (status, _) = master.get("/contracts/B").await;
    assert_eq!(status, 404);
    let (status, body) = master
        .call(
            Method::PATCH,
            "/contracts/A",
            Some(json!({"server_keygen": true})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = master
        .call(
            Method::PATCH,
            "/contracts/B",
            Some(json!({"server_keygen": true})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        d.dir().cli_json(&["contract", "show", "A"])["server_keygen"],
        false
    );
    assert_eq!(contracts[0]["code"], "A");

    // Contract B's IDs, contract and certificates do not exist for this master.
    let ub_serial = serial_hex(&leaf_der(&ub_chain));
    for path in [
        "/accounts/ub".to_owned(),
        "/accounts?contract=B".to_owned(),
        format!("/certificates/{ub_serial}"),
        "/history?contract=B".to_owned(),
        "/history?account=ub".to_owned(),
        "/history?account=nosuchid".to_owned(),
    ] {
        let (status, body) = master.get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    for action in ["reissue", "continue", "revoke"] {
        let (status, _) = master
            .post("/accounts/ub/certificate", json!({ "action": action }))
            .await;
        assert_eq!(status, 404, "{action} on another contract's ID");
    }
    let (status, _) = master.post("/accounts/ub/unlock", json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = master
        .post(
            "/accounts",
            json!({"id": "intruder", "contract": "B", "role": "user", "name": "X", "password": "long enough 1"}),
        )
        .await;
    assert_eq!(status, 404);

    // Its own public IDs it manages; masters and contracts it may not create.
    let (status, view) = master
        .post("/accounts/ua/certificate", json!({"action": "reissue"}))
        .await;
    assert_eq!(
        (status, view["certificate_choice"].as_str()),
        (200, Some("reissue"))
    );
    let (status, _) = master
        .post(
            "/accounts",
            json!({"id": "ua2", "contract": "A", "role": "user", "name": "Staff", "password": "long enough 1"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = master
        .post(
            "/accounts",
            json!({"id": "ma2", "contract": "A", "role": "master", "name": "X", "password": "long enough 1"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = master
        .post("/contracts", json!({"code": "C", "name": "New"}))
        .await;
    assert_eq!(status, 403);

    // History in scope only, with the master as actor of its calls.
    let (status, page) = master.get("/history?limit=1000").await;
    assert_eq!(status, 200);
    let entries = page["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e["contract"] == "A"),
        "only contract A's history: {entries:?}"
    );
    assert!(entries.iter().any(|e| e["kind"] == "reissue"
        && e["account"] == "ua"
        && e["actor"]["id"] == "ma"
        && e["source"] == "127.0.0.1"));
    // The probes of contract B are in the operator's history, attributed to the master.
    let all = d.dir().cli_json(&["history", "--limit", "1000"]);
    assert!(all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["actor"]["id"] == "ma"
            && e["outcome"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("out of scope"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_current_master_certificates_open_the_api() {
    let (d, (ma_key, ma_chain), (ub_key, ub_chain)) = two_contracts().await;

    // No certificate, or a public ID's certificate: 403.
    let anonymous = Api::new(d.port, &d.dir().root_ca_pem(), None);
    assert_eq!(anonymous.get("/accounts").await.0, 403);
    let public = Api::of(&d, &ub_chain, &ub_key.key_der);
    let (status, body) = public.get("/accounts").await;
    assert_eq!(status, 403, "{body}");

    // A superseded master certificate: refused; the new one works.
    d.cli_ok(&["account", "reissue", "ma"], None);
    let (new_key, new_chain) = enroll_new(&d, "ma").await;
    let old = Api::of(&d, &ma_chain, &ma_key.key_der);
    let (status, body) = old.get("/accounts").await;
    assert_eq!(status, 403);
    assert!(
        body["detail"].as_str().unwrap().contains("superseded"),
        "{body}"
    );
    let current = Api::of(&d, &new_chain, &new_key.key_der);
    assert_eq!(current.get("/accounts").await.0, 200);

    // A revoked master certificate: refused at once.
    d.cli_ok(
        &["account", "revoke", "ma", "--reason", "keyCompromise"],
        None,
    );
    let (status, body) = current.get("/accounts").await;
    assert_eq!(status, 403);
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    // The operator, over the admin socket, sees everything.
    let all = d.cli_json(&["account", "list"]);
    assert_eq!(ids(&all), ["ma", "mb", "ua", "ub"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_master_certificate_is_refused() {
    use estca::ra::ManualClock;

    let dir = TestDir::new(Options::default());
    let config = estca::config::Config::load_from(Some(&dir.config), Vec::new()).unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let daemon = estca::server::start(config, clock.clone()).await.unwrap();
    let port = daemon.https_addr.port();
    let dir = Arc::new(dir);
    let d = dir.clone();
    tokio::task::spawn_blocking(move || {
        d.add_contract("A");
        d.add_account("ma", "A", "master");
    })
    .await
    .unwrap();
    let key = p256();
    let chain: String = EstClient::new(port, &dir.root_ca_pem(), None)
        .enroll_pem("ma", PASSWORD, &key.csr_der)
        .await
        .pem_chain()
        .iter()
        .map(|c| cert_pem(c))
        .collect();
    let master = Api::new(
        port,
        &dir.root_ca_pem(),
        Some((chain.as_bytes(), &key.key_der)),
    );
    assert_eq!(master.get("/accounts").await.0, 200);

    clock.advance(time::Duration::days(366));
    let (status, body) = master.get("/accounts").await;
    assert_eq!(status, 403);
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_help_desk_alone_reissues_or_revokes_a_master() {
    let (d, (ma_key, ma_chain), _) = two_contracts().await;
    let master = Api::of(&d, &ma_chain, &ma_key.key_der);
    for action in ["reissue", "revoke"] {
        let (status, body) = master
            .post("/accounts/ma/certificate", json!({ "action": action }))
            .await;
        assert_eq!(status, 403, "{action}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("help desk"),
            "{body}"
        );
    }
    assert_eq!(d.dir().account("ma")["certificate_choice"], "continue");

    // The operator reissues over the socket; the master re-enrolls with ID and password.
    d.cli_ok(&["account", "reissue", "ma"], None);
    let first = serial_hex(&leaf_der(&ma_chain));
    let (_, new_chain) = enroll_new(&d, "ma").await;
    assert_eq!(certissuednum(&leaf_der(&new_chain)), 2);
    let old = d.dir().cert(&first);
    assert_eq!(old["status"], "revoked");
    assert_eq!(old["revocation"]["reason"], "superseded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_manages_its_granted_contracts_like_a_master() {
    let (d, _, _) = two_contracts().await;
    let key = p256();
    let csr = d.dir().path().join("app.csr");
    std::fs::write(&csr, cert_request_pem(&key.csr_der)).unwrap();
    let chain = d.cli_ok(
        &[
            "app",
            "add",
            "bankapp",
            "--contracts",
            "A",
            "--csr",
            csr.to_str().unwrap(),
        ],
        None,
    );
    let leaf = parse(&leaf_der(chain.as_bytes())).subject().to_string();
    assert!(
        leaf.contains("OU=APP") && leaf.contains("CN=bankapp"),
        "{leaf}"
    );
    assert!(!leaf.contains("USERTYPE"), "{leaf}");

    let app = Api::of(&d, chain.as_bytes(), &key.key_der);
    let (status, list) = app.get("/accounts").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), ["ma", "ua"]);
    assert_eq!(app.get("/accounts/ub").await.0, 404);
    let (status, _) = app
        .post(
            "/accounts/ua/certificate",
            json!({"action": "revoke", "reason": "affiliationChanged"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post("/accounts/ma/certificate", json!({"action": "reissue"}))
        .await;
    assert_eq!(status, 403);
    assert!(body["detail"].as_str().unwrap().contains("help desk"));
    assert_eq!(
        app.post("/contracts", json!({"code": "C", "name": "C"}))
            .await
            .0,
        403
    );
    let (status, page) = app.get("/history").await;
    assert_eq!(status, 200);
    assert!(page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["actor"]["name"] == "bankapp" && e["kind"] == "revoke"));
    // The app's certificate cannot enroll or renew as a person.
    let renew = EstClient::new(
        d.port,
        &d.dir().root_ca_pem(),
        Some((chain.as_bytes(), &key.key_der)),
    )
    .reenroll(&p256().csr_der, false)
    .await;
    renew.assert_error(403);

    d.cli_ok(&["app", "revoke", "bankapp"], None);
    assert_eq!(app.get("/accounts").await.0, 403);

    // An app granted contract creation (with every contract) creates contracts and masters.
    let key2 = p256();
    std::fs::write(&csr, cert_request_pem(&key2.csr_der)).unwrap();
    let (status, _, stderr) = d.cli(
        &[
            "app",
            "add",
            "maker",
            "--contracts",
            "A",
            "--can-create-contracts",
            "--csr",
            csr.to_str().unwrap(),
        ],
        None,
    );
    assert!(!status.success());
    assert!(stderr.contains("--all"), "{stderr}");
    let chain2 = d.cli_ok(
        &[
            "app",
            "add",
            "maker",
            "--all",
            "--can-create-contracts",
            "--csr",
            csr.to_str().unwrap(),
        ],
        None,
    );
    let maker = Api::of(&d, chain2.as_bytes(), &key2.key_der);
    assert_eq!(
        maker
            .post("/contracts", json!({"code": "C", "name": "New"}))
            .await
            .0,
        201
    );
    let (status, _) = maker
        .post(
            "/accounts",
            json!({"id": "mc", "contract": "C", "role": "master", "name": "Boss C", "password": "long enough 1"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        maker
            .get("/accounts?contract=B")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// The notice end to end: the help desk sets up the contract and master; the master logs in
/// with its certificate and administers its staff's ID through the whole cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notice_end_to_end_through_the_api() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("7001");
    d.dir().add_account("otemat9", "7001", "master");
    let (master_key, master_chain) = enroll_new(&d, "otemat9").await;
    let master = Api::of(&d, &master_chain, &master_key.key_der);

    let (status, created) = master
        .post(
            "/accounts",
            json!({"id": "kiyo0012", "contract": "7001", "role": "user", "name": "Kiyo", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{created}");

    let users = d.client();
    let first = users
        .enroll("kiyo0012", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&first), 1);
    // A new PC before the administrator acts: refused.
    let new_pc = p256();
    users
        .enroll("kiyo0012", PASSWORD, &new_pc.csr_der)
        .await
        .assert_error(409);

    let (status, _) = master
        .post(
            "/accounts/kiyo0012/certificate",
            json!({"action": "reissue"}),
        )
        .await;
    assert_eq!(status, 200);
    let second = users
        .enroll("kiyo0012", PASSWORD, &new_pc.csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(certissuednum(&second), 2);
    let (status, old) = master
        .get(&format!("/certificates/{}", serial_hex(&first)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(old["status"], "revoked");
    assert_eq!(old["revocation"]["reason"], "superseded");
    assert!(old["pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));

    let (status, _) = master
        .post(
            "/accounts/kiyo0012/certificate",
            json!({"action": "revoke", "reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, 200);
    users
        .enroll("kiyo0012", PASSWORD, &p256().csr_der)
        .await
        .assert_error(403);

    let (status, page) = master.get("/history?account=kiyo0012&limit=100").await;
    assert_eq!(status, 200);
    let steps: Vec<(String, String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|e| e["kind"] != "query")
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"]["id"].as_str().unwrap_or("").to_owned(),
                e["outcome"]["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("account_create", "otemat9", "ok"),
        ("enroll", "kiyo0012", "ok"),
        ("enroll", "kiyo0012", "refused"),
        ("reissue", "otemat9", "ok"),
        ("enroll", "kiyo0012", "ok"),
        ("revoke", "otemat9", "ok"),
        ("enroll", "kiyo0012", "refused"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(steps, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_json_and_bodies_are_bounded() {
    let (d, (ma_key, ma_chain), _) = two_contracts().await;
    let master = Api::of(&d, &ma_chain, &ma_key.key_der);
    let (status, body) = master
        .post("/accounts/ua/certificate", json!({"action": "destroy"}))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    let (status, _) = master
        .post(
            "/accounts/ua/certificate",
            json!({"action": "reissue", "extra": 1}),
        )
        .await;
    assert_eq!(status, 400, "unknown fields are refused");
    let (status, _) = master
        .post(
            "/accounts",
            json!({"id": "x", "contract": "A", "role": "user", "name": "n", "password": "p".repeat(100 * 1024)}),
        )
        .await;
    assert_eq!(status, 413);
    let (status, _) = master.get("/nothing-here").await;
    assert_eq!(status, 404);
    // A cursor the API never gave is refused by name, on a listing and on history alike.
    for path in ["/accounts?cursor=forged", "/history?cursor=forged"] {
        let (status, body) = master.get(path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{path}"
        );
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("cursor: ")),
            "{path}: {body}"
        );
    }
    let (status, doc) = master.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/accounts/{id}/certificate"]["post"].is_object());
}

fn cert_request_pem(der: &[u8]) -> String {
    pem_rfc7468::encode_string("CERTIFICATE REQUEST", pem_rfc7468::LineEnding::LF, der).unwrap()
}

fn parse(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

/// Issue 10 finding 13: a master's password reset is the help desk's unlock. A public ID
/// locked by wrong passwords gets a new password from its master and enrolls at once; history
/// says both what was set and that the ID was unlocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_unlocks_the_id() {
    let (d, (ma_key, ma_chain), _) = two_contracts().await;
    let master = Api::of(&d, &ma_chain, &ma_key.key_der);
    let c = d.client();
    for _ in 0..5 {
        c.enroll("ua", "forgotten password", &p256().csr_der)
            .await
            .assert_error(401);
    }
    assert_eq!(d.dir().account("ua")["locked"], true);

    let (status, view) = master
        .call(
            Method::PATCH,
            "/accounts/ua",
            Some(json!({ "password": "a brand new password" })),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["locked"], false, "{view}");
    assert_eq!(view["failed_attempts"], 0, "{view}");
    c.enroll("ua", "a brand new password", &p256().csr_der)
        .await
        .assert_status(200);

    let history = d.dir().history("ua");
    let details: Vec<&str> = history
        .iter()
        .filter(|e| e["actor"]["id"] == "ma")
        .filter_map(|e| e["outcome"]["detail"].as_str())
        .collect();
    assert!(details.contains(&"password set"), "{details:?}");
    assert!(
        details.contains(&"unlocked by the password reset"),
        "{details:?}"
    );

    // The operator's `estca account passwd` does the same for a master it resets.
    for _ in 0..5 {
        c.enroll("ma", "forgotten password", &p256().csr_der)
            .await
            .assert_error(401);
    }
    assert_eq!(d.dir().account("ma")["locked"], true);
    d.cli_ok(
        &["account", "passwd", "ma", "--password-stdin"],
        Some("another new password\n"),
    );
    let ma = d.dir().account("ma");
    assert_eq!(
        (ma["locked"].clone(), ma["failed_attempts"].clone()),
        (json!(false), json!(0))
    );
}

/// Issue 10 finding 8: names that would hide or disguise text in history or on the operator's
/// terminal (U+202E right-to-left override, U+2028 line separator, U+200B zero-width space)
/// are refused wherever a name is set: contracts and IDs, through the CLI and the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_invisible_or_direction_changing_characters_are_refused() {
    let (d, (ma_key, ma_chain), _) = two_contracts().await;
    let master = Api::of(&d, &ma_chain, &ma_key.key_der);
    for (name, code) in [
        ("Kiyo\u{202E}cod.exe", "U+202E"),
        ("Kiyo\u{2028}forged line", "U+2028"),
        ("Ki\u{200B}yo", "U+200B"),
    ] {
        let (status, body) = master
            .post(
                "/accounts",
                json!({"id": "kiyo1", "contract": "A", "role": "user", "name": name,
                       "password": "first password 1"}),
            )
            .await;
        assert_eq!(status, 400, "{name:?}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(code), "{body}");
        let (status, body) = master
            .call(Method::PATCH, "/accounts/ua", Some(json!({ "name": name })))
            .await;
        assert_eq!(status, 400, "{name:?}: {body}");
        let (status, _, err) = d.cli(&["contract", "add", "C9", "--name", name], None);
        assert!(!status.success() && err.contains(code), "{name:?}: {err}");
    }
    assert_eq!(d.dir().account("ua")["name"], "Name of ua");
    let (status, _) = master.get("/accounts/kiyo1").await;
    assert_eq!(status, 404, "nothing was created");
    // Japanese names are names.
    let (status, body) = master
        .call(
            Method::PATCH,
            "/accounts/ua",
            Some(json!({ "name": "大手町 花子" })),
        )
        .await;
    assert_eq!((status, body["name"].as_str()), (200, Some("大手町 花子")));
}

/// Issue 10 finding 3: IDs are one login namespace, so a master cannot be told whether an ID
/// is free; it must not be told *where* it is taken. Taken here and taken elsewhere read the
/// same; IDs differing by case only are taken; refusals are recorded and budgeted per caller
/// (even for a burst sent at once); and the server can choose an unguessable ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probing_for_other_customers_ids_is_useless_and_visible() {
    let d = TestDaemon::start(Options {
        env: vec![("ESTCA_AUTH__MAX_REFUSED_IDS_PER_CALLER".into(), "4".into())],
        ..Options::default()
    });
    for (contract, master, user) in [("A", "ma", "ua"), ("B", "mb", "ub")] {
        d.dir().add_contract(contract);
        d.dir().add_account(master, contract, "master");
        d.dir().add_account(user, contract, "user");
    }
    let (ma_key, ma_chain) = enroll_new(&d, "ma").await;
    let master = Arc::new(Api::of(&d, &ma_chain, &ma_key.key_der));
    let create = |id: &str| json!({"id": id, "contract": "A", "role": "user", "name": "New", "password": "first password 1"});

    // Taken in my contract, taken in another, and a case variant of each: one answer.
    let mut details = Vec::new();
    for id in ["ua", "ub", "UA", "uB"] {
        let (status, body) = master.post("/accounts", create(id)).await;
        assert_eq!(status, 409, "{id}: {body}");
        details.push(body["detail"].as_str().unwrap().replace(id, "ID"));
    }
    assert!(
        details.iter().all(|d| d == &details[0]),
        "the answers differ: {details:?}"
    );
    assert!(details[0].contains("not available"), "{}", details[0]);
    assert!(!details[0].contains("exist"), "{}", details[0]);

    // The budget (4) is spent: any creation now answers 429, a free ID's too, so that the
    // answer says nothing about the ID.
    let (status, body) = master.post("/accounts", create("free1")).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("wait"), "{body}");
    let (status, _) = master.get("/accounts/free1").await;
    assert_eq!(status, 404, "nothing was created");

    // Recorded in the contract's history, under the master, never under the other
    // contract's ID.
    let (_, history) = master.get("/history?contract=A&limit=100").await;
    let refusals: Vec<&Value> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "account_create" && e["outcome"]["result"] == "refused")
        .collect();
    assert_eq!(
        refusals.len(),
        5,
        "4 unavailable + 1 over budget: {refusals:#?}"
    );
    assert!(refusals
        .iter()
        .all(|e| e["actor"]["id"] == "ma" && e["account"].is_null()));
    let b_history = d.cli_json(&["history", "ub", "--limit", "100"]);
    assert!(
        !b_history.to_string().contains("\"ma\""),
        "contract B's history must not show A's probes: {b_history}"
    );

    // The operator is not limited, and case variants are refused to it too.
    let (status, _, err) = d.cli(
        &[
            "account",
            "add",
            "UB",
            "--contract",
            "A",
            "--role",
            "user",
            "--name",
            "X",
            "--password-stdin",
        ],
        Some("first password 1\n"),
    );
    assert!(!status.success() && err.contains("not available"), "{err}");

    // A burst of probes sent at once from a fresh caller (an application) learns at most
    // its budget.
    let app_key = p256();
    let csr_path = d.dir().path().join("app.csr");
    std::fs::write(&csr_path, cert_request_pem(&app_key.csr_der)).unwrap();
    let app_pem = d.cli_ok(
        &[
            "app",
            "add",
            "prober",
            "--contracts",
            "A",
            "--csr",
            csr_path.to_str().unwrap(),
        ],
        None,
    );
    let app = Arc::new(Api::of(&d, app_pem.as_bytes(), &app_key.key_der));
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let app = app.clone();
            let id = if i % 2 == 0 { "ua" } else { "ub" };
            tokio::spawn(async move { app.post("/accounts", create(id)).await.0 })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for t in burst {
        *statuses.entry(t.await.unwrap()).or_default() += 1;
    }
    eprintln!("20 probes at once with a budget of 4: {statuses:?}");
    assert_eq!(statuses.get(&409).copied(), Some(4), "{statuses:?}");
    assert_eq!(statuses.get(&429).copied(), Some(16), "{statuses:?}");

    // Letting estca choose: an unguessable ID that works at once.
    let out = d.cli_ok(
        &[
            "--json",
            "account",
            "add",
            "--contract",
            "B",
            "--role",
            "user",
            "--name",
            "Chosen",
            "--password-stdin",
        ],
        Some("first password 1\n"),
    );
    let created: Value = serde_json::from_str(&out).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 19, "{id}");
    assert!(id
        .chars()
        .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_lowercase()));
    d.client()
        .enroll(&id, "first password 1", &p256().csr_der)
        .await
        .assert_status(200);
}

/// Issue 16's removal over the API: a master removes a public ID of its contract (its
/// certificate revoked as cessationOfOperation, the ID gone from the listing, EST answering
/// exactly as for an unknown ID, the ID never created again), but neither itself, another
/// master, nor another contract's ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_removes_a_public_id_for_good_and_est_answers_as_for_an_unknown_id() {
    let (d, (ma_key, ma_chain), _) = two_contracts().await;
    d.dir().add_account("ma2", "A", "master");
    let (_, ua_chain) = enroll_new(&d, "ua").await;
    let ua_serial = serial_hex(&leaf_der(&ua_chain));
    let master = Api::of(&d, &ma_chain, &ma_key.key_der);

    for (target, status) in [("ma", 403), ("ma2", 403), ("ub", 404), ("mb", 404)] {
        let (got, body) = master
            .post(&format!("/accounts/{target}/remove"), json!({}))
            .await;
        assert_eq!(got, status, "{target}: {body}");
    }
    let (status, body) = master.post("/accounts/ma/remove", json!({})).await;
    assert_eq!(status, 403);
    assert!(
        body["detail"].as_str().unwrap().contains("help desk"),
        "{body}"
    );

    let (status, removed) = master.post("/accounts/ua/remove", json!({})).await;
    assert_eq!(status, 200, "{removed}");
    assert!(removed["removed_at"].is_string(), "{removed}");
    assert_eq!(removed["certificate"]["serial"], ua_serial.as_str());
    assert_eq!(removed["certificate"]["status"], "revoked");
    assert_eq!(
        removed["certificate"]["revocation"]["reason"],
        "cessationOfOperation"
    );
    let (status, cert) = master.get(&format!("/certificates/{ua_serial}")).await;
    assert_eq!((status, &cert["status"]), (200, &json!("revoked")));

    // Gone from the listing, still readable by its ID, with the removal in its history.
    let (_, list) = master.get("/accounts").await;
    assert_eq!(ids(&list), ["ma", "ma2"]);
    let (status, shown) = master.get("/accounts/ua").await;
    assert_eq!(
        (status, &shown["removed_at"]),
        (200, &removed["removed_at"])
    );
    let (_, history) = master.get("/history?account=ua&kind=account_remove").await;
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{history}");
    assert_eq!(entries[0]["actor"]["id"], "ma");

    // Removing again, or any other change: 409.
    let (status, body) = master.post("/accounts/ua/remove", json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = master.post("/accounts/ua/unlock", json!({})).await;
    assert_eq!(status, 409);

    // EST: the right password answers exactly as an unknown ID does.
    let est = d.client();
    let removed_id = est.enroll("ua", PASSWORD, &p256().csr_der).await;
    let unknown = est.enroll("nobody", PASSWORD, &p256().csr_der).await;
    assert_eq!(removed_id.status, 401, "{removed_id:?}");
    assert_eq!(
        (removed_id.status, &removed_id.body),
        (unknown.status, &unknown.body)
    );

    // The ID is never created again: the master is told why.
    let (status, body) = master
        .post(
            "/accounts",
            json!({ "id": "ua", "contract": "A", "role": "user", "name": "New", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("was removed"),
        "{body}"
    );
}
