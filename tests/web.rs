//! The browser screens (`/enroll`, `/console`) in a real browser against a real daemon:
//! Debian's chromium, headless, driven by playwright-core (`web/test/screens.mjs`). The
//! PKCS#12 the page builds is opened with `openssl pkcs12` and the typed password and
//! verified against the CA; the console's reissue, revoke, unlock, history, new ID and removal go
//! through the management API with a master's client certificate, and another contract's
//! master sees none of these IDs. Screenshots of every screen in both languages are saved
//! under the test's scratch directory in `target/`, or over the committed ones in docs/screens/
//! (linked from the README) with `ESTCA_UPDATE_SCREENS=1`. Also, without a browser: the
//! pages' security headers, the refusal of cross-site state changes, and of DNS rebinding on the
//! admin socket.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::*;

const FILE_PASSWORD: &str = "file password 1";
const CONTRACT: &str = "5110";
const OTHER_CONTRACT: &str = "5120";

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Where the browser test saves its screenshots: over the committed ones in docs/screens/
/// when `ESTCA_UPDATE_SCREENS=1` (to refresh the README's pictures after changing a screen),
/// else in cargo's scratch directory for integration tests, so that `cargo test` leaves the
/// checkout as it found it (renderings differ from run to run: one CI run changed 8 of the
/// committed PNGs).
fn screenshot_dir() -> PathBuf {
    if std::env::var_os("ESTCA_UPDATE_SCREENS").is_some_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screens")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("screens")
    }
}

/// Why the browser test cannot run here, if it cannot: a missing program or `npm ci`.
fn missing_browser_tools() -> Option<String> {
    if !have("node") {
        return Some("node is not installed (apt-get install nodejs npm)".into());
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is missing (apt-get install chromium)".into());
    }
    if !web_dir().join("node_modules/playwright-core").exists() {
        return Some("web/node_modules is missing (run: cd web && npm ci)".into());
    }
    None
}

/// Writes `id`'s enrolled certificate chain and key (PEM) into `dir`; returns their paths as
/// the JSON playwright-core's `clientCertificates` wants.
async fn master_identity(daemon: &TestDaemon, id: &str, dir: &Path) -> Value {
    let (key, chain_pem) = enroll_new(daemon, id).await;
    let cert = dir.join(format!("{id}.pem"));
    let key_path = dir.join(format!("{id}.key"));
    std::fs::write(&cert, &chain_pem).unwrap();
    let key_pem =
        pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &key.key_der)
            .unwrap();
    std::fs::write(&key_path, key_pem).unwrap();
    serde_json::json!({ "cert": cert, "key": key_path })
}

/// A local TCP port forwarded to the admin socket, as `ssh -L PORT:SOCKET` gives the
/// operator; its address. The forwarder's threads end with the test process.
fn forward_to_admin_socket(socket: PathBuf) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(unix) = std::os::unix::net::UnixStream::connect(&socket) else {
                continue;
            };
            let (mut tcp_in, mut unix_out) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut tcp_in, &mut unix_out);
                let _ = unix_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut unix_in, mut tcp_out) = (unix, tcp);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut unix_in, &mut tcp_out);
                let _ = tcp_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// `openssl ARGS`, which must succeed; its standard output.
fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Opens the page's PKCS#12 with the password typed in the page, checks the key is the
/// certificate's and the certificate chains to the root; returns the leaf's DER.
fn open_pkcs12(daemon: &TestDaemon, p12: &Path) -> Vec<u8> {
    let pass = format!("pass:{FILE_PASSWORD}");
    let p12 = p12.to_str().unwrap();
    let leaf = openssl(&[
        "pkcs12", "-in", p12, "-passin", &pass, "-nokeys", "-clcerts",
    ]);
    let chain = openssl(&[
        "pkcs12", "-in", p12, "-passin", &pass, "-nokeys", "-cacerts",
    ]);
    let key = openssl(&["pkcs12", "-in", p12, "-passin", &pass, "-nocerts", "-noenc"]);
    let dir = daemon.dir().path();
    let (leaf_file, chain_file, key_file) = (
        dir.join("leaf.pem"),
        dir.join("issuers.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&leaf_file, &leaf).unwrap();
    std::fs::write(&chain_file, &chain).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let root = daemon.dir().ca_dir().join("root-ca.pem");
    let verified = openssl(&[
        "verify",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        chain_file.to_str().unwrap(),
        "-purpose",
        "sslclient",
        leaf_file.to_str().unwrap(),
    ]);
    assert!(verified.trim_end().ends_with("OK"), "{verified}");
    let from_cert = openssl(&[
        "x509",
        "-in",
        leaf_file.to_str().unwrap(),
        "-noout",
        "-pubkey",
    ]);
    let from_key = openssl(&["pkey", "-in", key_file.to_str().unwrap(), "-pubout"]);
    assert_eq!(from_cert, from_key, "the PKCS#12 key is the certificate's");
    leaf_der(leaf.as_bytes())
}

/// The subject of `der` as (type, value) pairs, in order.
fn subject(der: &[u8]) -> Vec<(String, String)> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    let registry = x509_parser::objects::oid_registry();
    cert.subject()
        .iter_attributes()
        .map(|a| {
            let name = match a.attr_type().to_id_string().as_str() {
                "2.5.4.6" => "C".to_owned(),
                "2.5.4.10" => "O".to_owned(),
                "2.5.4.11" => "OU".to_owned(),
                "2.5.4.3" => "CN".to_owned(),
                other => registry
                    .get(a.attr_type())
                    .map_or(other.to_owned(), |e| e.sn().to_owned()),
            };
            (name, a.as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn enrollment_and_console_in_chromium() {
    if let Some(why) = missing_browser_tools() {
        skip("enrollment_and_console_in_chromium", &why);
        return;
    }
    let d = TestDaemon::start(Options {
        max_failed_attempts: Some(3),
        ..Options::default()
    });
    d.dir().add_contract(CONTRACT);
    d.dir().add_contract(OTHER_CONTRACT);
    d.dir().add_account("otemat9", CONTRACT, "master");
    d.dir().add_account("nozawa1", CONTRACT, "user");
    d.dir().add_account("kiyo0012", CONTRACT, "user");
    d.dir().add_account("other9", OTHER_CONTRACT, "master");
    // sato0021 leaves the company: removed in the console while its certificate is active.
    d.dir().add_account("sato0021", CONTRACT, "user");
    let (_, sato_chain) = enroll_new(&d, "sato0021").await;
    let sato_serial = serial_hex(&leaf_der(&sato_chain));
    let keys = tempfile::tempdir().unwrap();
    let master = master_identity(&d, "otemat9", keys.path()).await;
    let other_master = master_identity(&d, "other9", keys.path()).await;
    // kiyo0012 forgets the password: locked after three wrong ones.
    let wrong = p256();
    for _ in 0..3 {
        d.client()
            .enroll("kiyo0012", "wrong password", &wrong.csr_der)
            .await;
    }
    assert_eq!(d.dir().account("kiyo0012")["locked"], true);

    let out = tempfile::tempdir().unwrap();
    let shots = screenshot_dir();
    let input = serde_json::json!({
        "base": format!("https://127.0.0.1:{}", d.port),
        "out": out.path(),
        "shots": shots,
        "password": PASSWORD,
        "filePassword": FILE_PASSWORD,
        "chromiumPath": "/usr/bin/chromium",
        "user": "nozawa1",
        "locked": "kiyo0012",
        "newId": "tanaka01",
        "removed": "sato0021",
        "master": master,
        "otherMaster": other_master,
        "operatorBase": format!(
            "http://localhost:{}",
            forward_to_admin_socket(d.dir().path().join("data/admin.sock")).port()
        ),
    });
    let input_file = out.path().join("input.json");
    std::fs::write(&input_file, input.to_string()).unwrap();
    let run = Command::new("node")
        .arg(web_dir().join("test/screens.mjs"))
        .arg(&input_file)
        .current_dir(web_dir())
        .output()
        .unwrap();
    let results: Value = std::fs::read(out.path().join("results.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    assert!(
        run.status.success(),
        "the browser run failed:\n{}\n{}\nresults so far: {results:#}\ndaemon: {}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        d.stderr()
    );

    // The first certificate: the PKCS#12 opens with the typed password, chains to the root,
    // and has the seed's profile.
    let first = open_pkcs12(&d, &out.path().join("first.p12"));
    let names = subject(&first);
    assert_eq!(names[0], ("C".into(), "JP".into()), "{names:?}");
    assert_eq!(names[1].0, "O", "{names:?}");
    assert_eq!(names[2].0, "OU", "{names:?}");
    assert_eq!(names[3], ("OU".into(), "USERTYPE - 2".into()), "{names:?}");
    assert_eq!(
        names[4],
        ("OU".into(), "CERTISSUEDNUM - 1".into()),
        "{names:?}"
    );
    assert_eq!(
        names[5],
        ("CN".into(), format!("nozawa1 {CONTRACT}")),
        "{names:?}"
    );
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(
        results["first"]["serial"].as_str().unwrap(),
        serial_hex(&first),
        "the page shows the certificate's serial"
    );

    // The second enrollment is refused with estca's sentence, in both languages.
    assert_eq!(results["again"]["refused"], true, "{results:#}");
    let en = results["again"]["en"].as_str().unwrap();
    assert!(
        en.contains("already has an active certificate") && en.contains("再発行する"),
        "{en}"
    );
    let ja = results["again"]["ja"].as_str().unwrap();
    assert!(
        ja.contains("再発行する") && ja.contains("有効な電子証明書"),
        "{ja}"
    );

    // 再発行する in the console, then the page enrolls again: CERTISSUEDNUM - 2.
    assert!(results["reissueDone"].as_str().unwrap().contains("nozawa1"));
    let second = open_pkcs12(&d, &out.path().join("second.p12"));
    assert_eq!(certissuednum(&second), 2);

    // 失効する: the page shows the revocation refusal; the daemon recorded it.
    assert_eq!(results["afterRevoke"]["refused"], true, "{results:#}");
    assert!(results["afterRevoke"]["en"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    assert!(results["afterRevoke"]["ja"]
        .as_str()
        .unwrap()
        .contains("失効"));
    assert_eq!(d.dir().cert(&serial_hex(&second))["status"], "revoked");

    // A locked ID and a wrong password are refused with estca's sentences too.
    assert_eq!(results["whileLocked"]["refused"], true, "{results:#}");
    assert!(results["whileLocked"]["en"]
        .as_str()
        .unwrap()
        .contains("locked"));
    assert!(results["whileLocked"]["ja"]
        .as_str()
        .unwrap()
        .contains("ロック"));
    assert_eq!(results["wrongPassword"]["refused"], true, "{results:#}");
    let en = results["wrongPassword"]["en"].as_str().unwrap();
    assert!(en.contains("authentication failed"), "{en}");
    assert!(results["wrongPassword"]["ja"]
        .as_str()
        .unwrap()
        .contains("本人認証に失敗"));

    // IDロック解除, 利用履歴照会, 新規登録.
    assert!(results["unlockDone"].as_str().unwrap().contains("kiyo0012"));
    assert_eq!(d.dir().account("kiyo0012")["locked"], false);
    let kinds: Vec<&str> = results["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for kind in ["enroll", "reissue", "revoke"] {
        assert!(kinds.contains(&kind), "history shows {kind}: {kinds:?}");
    }
    assert!(results["created"].as_str().unwrap().contains("tanaka01"));
    assert_eq!(d.dir().account("tanaka01")["contract"], CONTRACT);

    // The master saw its contract's IDs; the other contract's master sees none of them, and
    // a browser without a certificate sees nothing.
    let sees = |key: &str| -> Vec<String> {
        results[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let mut master_sees = sees("masterSees");
    master_sees.sort();
    assert_eq!(master_sees, ["kiyo0012", "nozawa1", "otemat9", "sato0021"]);
    assert_eq!(sees("otherSees"), ["other9"]);
    let mut operator_sees = sees("operatorSees");
    operator_sees.sort();
    assert_eq!(
        operator_sees,
        ["kiyo0012", "nozawa1", "otemat9", "other9", "tanaka01"],
        "the operator's console shows every contract"
    );
    assert!(sees("anonymousSees").is_empty());
    assert_eq!(results["anonymousNotice"], true);

    // 削除: the confirmation shows the ID, its name and that its certificate is revoked, in
    // both languages; then the list no longer shows the ID, its certificate is revoked as
    // cessationOfOperation, and the ID answers EST as an unknown ID.
    let name = d.dir().account("sato0021")["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let ja = results["removeConfirmJa"].as_str().unwrap();
    let en = results["removeConfirmEn"].as_str().unwrap();
    for (text, revoked) in [(ja, "失効します"), (en, "will be revoked")] {
        for shown in ["sato0021", name.as_str(), sato_serial.as_str(), revoked] {
            assert!(text.contains(shown), "{shown}: {text}");
        }
    }
    assert!(results["removeDone"].as_str().unwrap().contains("削除"));
    assert!(!sees("afterRemove").contains(&"sato0021".to_owned()));
    assert!(d.dir().account("sato0021")["removed_at"].is_string());
    let cert = d.dir().cert(&sato_serial);
    assert_eq!(
        cert["revocation"]["reason"], "cessationOfOperation",
        "{cert}"
    );
    d.client()
        .enroll("sato0021", PASSWORD, &p256().csr_der)
        .await
        .assert_status(401);
    for name in [
        "enroll-1-auth",
        "enroll-3-done",
        "console-1-select",
        "console-5-history",
        "console-8-remove",
    ] {
        for lang in ["ja", "en"] {
            assert!(
                shots.join(format!("{name}-{lang}.png")).exists(),
                "{name}-{lang}"
            );
        }
    }
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_cross_site_changes_are_refused() {
    let d = TestDaemon::start(Options::default());
    let c = d.client();
    for path in [
        "/enroll",
        "/console",
        "/assets/enroll.js",
        "/assets/style.css",
    ] {
        let answer = c
            .send(c.http.get(format!("https://localhost:{}{path}", d.port)))
            .await;
        answer.assert_status(200);
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    let page = c
        .send(c.http.get(format!("https://localhost:{}/enroll", d.port)))
        .await;
    assert!(
        !page.body.contains("<script>") && !page.body.contains(" style="),
        "no inline script or style"
    );

    d.dir().add_contract(CONTRACT);
    d.dir().add_account("otemat9", CONTRACT, "master");
    d.dir().add_account("nozawa1", CONTRACT, "user");
    let (key, chain) = enroll_new(&d, "otemat9").await;
    let master = d.client_with_cert(&chain, &key.key_der);
    let url = format!(
        "https://localhost:{}/api/v1/accounts/nozawa1/certificate",
        d.port
    );
    let body = r#"{"action":"reissue"}"#;
    let post = |origin: Option<&str>, site: Option<&str>| {
        let mut request = master
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        master.send(request)
    };
    // A page of another site cannot make the browser change anything.
    post(Some("https://evil.example"), None)
        .await
        .assert_error(403);
    post(None, Some("cross-site")).await.assert_error(403);
    assert_eq!(d.dir().account("nozawa1")["certificate_choice"], "continue");
    // Nor remove an ID (the console's 削除 is a POST like every other change).
    let remove = master
        .http
        .post(format!(
            "https://localhost:{}/api/v1/accounts/nozawa1/remove",
            d.port
        ))
        .header("sec-fetch-site", "cross-site");
    master.send(remove).await.assert_error(403);
    assert!(d.dir().account("nozawa1")["removed_at"].is_null());
    // The console's own calls, and clients that are not browsers, pass.
    let own = format!("https://localhost:{}", d.port);
    let own: &'static str = Box::leak(own.into_boxed_str());
    post(Some(own), Some("same-origin"))
        .await
        .assert_status(200);
    post(None, None).await.assert_status(200);
}

#[test]
fn the_console_on_the_admin_socket_answers_only_as_localhost() {
    use std::io::{Read, Write};
    let d = TestDaemon::start(Options::default());
    let socket = d.dir().path().join("data/admin.sock");
    let get = |host: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let request = format!(
            "GET /console HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: none\r\nConnection: close\r\n\r\n"
        );
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    };
    assert!(
        get("localhost:8444").contains(" 200 "),
        "through a tunnel to localhost"
    );
    assert!(
        get("evil.example:8444").contains(" 403 "),
        "DNS rebinding refused"
    );
}

/// `request` sent raw on `stream`; the answer's status line and body.
fn raw_exchange(
    mut stream: impl std::io::Read + std::io::Write,
    request: &str,
) -> (String, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The walkthrough's attack: a page at `http://evil.test:PORT/` whose name was pointed at
/// 127.0.0.1, where the operator's tunnel listens, reads the account list with a same-origin
/// `fetch('/api/v1/accounts')`, for which Chromium sends no `Origin` and no `Sec-Fetch-*`
/// over plain http. The admin socket must refuse it by its `Host` alone, and still serve the
/// tunnel as localhost, the `estca` command and the README's curl examples.
#[test]
fn a_rebinding_page_cannot_read_the_admin_socket_without_browser_headers() {
    let d = TestDaemon::start(Options::default());
    // Through the `estca` command, over the socket, as the operator does.
    d.dir().add_contract(CONTRACT);
    d.dir().add_account("nozawa1", CONTRACT, "user");
    let socket = d.dir().path().join("data/admin.sock");
    let tunnel = forward_to_admin_socket(socket.clone());
    let request = |host: &str| {
        format!("GET /api/v1/accounts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    let through_tunnel = |host: &str| {
        let tcp = std::net::TcpStream::connect(tunnel).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        raw_exchange(tcp, &request(host))
    };
    let on_socket = |request: &str| {
        let unix = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        unix.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        raw_exchange(unix, request)
    };

    let port = tunnel.port();
    let (status, body) = through_tunnel(&format!("evil.test:{port}"));
    assert!(
        status.contains(" 403 "),
        "rebinding through the tunnel: {status}"
    );
    assert!(
        body.contains("through localhost") && !body.contains("nozawa1"),
        "{body}"
    );
    let (status, body) = on_socket(&request("evil.test:8444"));
    assert!(
        status.contains(" 403 "),
        "rebinding on the socket: {status}"
    );
    assert!(!body.contains("nozawa1"), "{body}");

    // The operator's browser through the tunnel, the `estca` command's name, the README's
    // `curl --unix-socket data/admin.sock http://estca/...`, a client without `Host`.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = through_tunnel(&host);
        assert!(status.contains(" 200 "), "{host}: {status}");
        assert!(body.contains("nozawa1"), "{host}: {body}");
    }
    for host in ["estca-admin", "estca", "localhost"] {
        let (status, body) = on_socket(&request(host));
        assert!(status.contains(" 200 "), "{host}: {status}");
        assert!(body.contains("nozawa1"), "{host}: {body}");
    }
    let (status, _) = on_socket("GET /api/v1/accounts HTTP/1.0\r\n\r\n");
    assert!(status.contains(" 200 "), "HTTP/1.0 without Host: {status}");
    let listed = d.cli_ok(&["account", "list"], None);
    assert!(listed.contains("nozawa1"), "the estca command: {listed}");
}
