//! Cisco libest's `estproxy`, unmodified (built from its upstream archive by
//! `tests/common/libest.rs`), as an EST registration authority in front of the real daemon:
//! its TLS identity is an application credential issued by estca (`estca app add --host`), a
//! device enrolls through it for an ID of the application's scope (the CSR's CN), and estca
//! issues for that ID as if it had enrolled, with history naming the application.
//!
//! libest's proxy has one TLS identity for both of its sides, so it shows the application
//! certificate to devices too. `--host 127.0.0.1` makes that certificate a TLS server's as
//! well (serverAuth, and the address in subjectAltName), so the devices check the proxy as TLS
//! asks: libest's own `estclient` (purpose sslserver and the host) and curl, both trusting
//! only estca's CA certificates.
//!
//! Skipped with a notice where the archive or a C compiler is missing, unless
//! `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::libest::{estclient, estproxy, run_estclient};
use common::*;

/// A running `estproxy`, stopped (by its process id) when dropped.
struct Proxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Proxy {
    /// Starts `estproxy` towards the daemon on `upstream`, with `cert` and `key` as its TLS
    /// identity and `trusted` (PEM) as the CA certificates it trusts.
    fn start(estproxy: &Path, upstream: u16, cert: &Path, key: &Path, trusted: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = cert.with_extension("proxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(estproxy)
            .args(["-s", "127.0.0.1", "-p", &upstream.to_string()])
            .args(["-l", &port.to_string(), "-c"])
            .arg(cert)
            .arg("-k")
            .arg(key)
            .env("EST_TRUSTED_CERTS", trusted)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("estproxy starts");
        let mut proxy = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = proxy.child.try_wait().unwrap() {
                panic!("estproxy exited ({status}):\n{}", proxy.log());
            }
            assert!(
                Instant::now() < deadline,
                "estproxy does not listen:\n{}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        proxy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An openssl-made P-256 key (`NAME.key`) and a CSR with subject `CN=<cn>` (`NAME.csr`, PEM).
fn key_and_csr(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let out = Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-keyout"])
        .arg(&key)
        .args(["-subj", &format!("/CN={cn}"), "-out"])
        .arg(&csr)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, csr)
}

/// A device's simpleenroll through the proxy with curl, trusting `trusted` only (HTTP Basic
/// with the credentials libest's example proxy accepts): the status and the body.
fn device_enroll(proxy: &Proxy, trusted: &Path, csr: &Path) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--user", "estuser:estpwd", "--cacert"])
        .arg(trusted)
        .args(["-H", "Content-Type: application/pkcs10", "--data-binary"])
        .arg(format!("@{}", csr.display()))
        .args(["-w", "\n%{http_code}"])
        .arg(format!(
            "https://127.0.0.1:{}/.well-known/est/simpleenroll",
            proxy.port
        ))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = status.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl: {text}{}\nestproxy:\n{}",
            String::from_utf8_lossy(&out.stderr),
            proxy.log()
        )
    });
    (status, body.to_owned())
}

#[test]
fn libest_estproxy_enrolls_an_id_with_an_application_certificate_issued_by_estca() {
    let Some(estproxy) = estproxy() else { return };
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("A");
    d.dir().add_account("dev1", "A", "user");
    d.dir().add_contract("B");
    d.dir().add_account("dev2", "B", "user");
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();

    // The proxy's credential: an application of contract A.
    let (app_key, app_csr) = key_and_csr(dir, "app", "raproxy");
    let chain = d.cli_ok(
        &[
            "app",
            "add",
            "raproxy",
            "--contracts",
            "A",
            "--host",
            "127.0.0.1",
            "--csr",
            app_csr.to_str().unwrap(),
        ],
        None,
    );
    let app_cert = dir.join("app.pem");
    std::fs::write(&app_cert, &chain).unwrap();
    // Its certificate serves TLS for the proxy's address, and says so in the listing.
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName,extendedKeyUsage",
            "-in",
        ])
        .arg(&app_cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("IP Address:127.0.0.1")
            && text.contains("TLS Web Server Authentication")
            && text.contains("TLS Web Client Authentication"),
        "{text}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["--json", "app", "list"], None)).unwrap();
    assert_eq!(
        listed[0]["hosts"],
        serde_json::json!(["127.0.0.1"]),
        "{listed}"
    );
    // The proxy trusts estca's root; the devices trust estca's CA certificates (cacerts).
    let root = dir.join("root-ca.pem");
    std::fs::write(&root, d.dir().root_ca_pem()).unwrap();
    let trusted = dir.join("cacerts.pem");
    std::fs::write(
        &trusted,
        [
            std::fs::read(d.dir().ca_dir().join("issuing-ca.pem")).unwrap(),
            d.dir().root_ca_pem(),
        ]
        .concat(),
    )
    .unwrap();
    let proxy = Proxy::start(estproxy, d.port, &app_cert, &app_key, &root);

    // A device running libest's estclient enrolls dev1 through the proxy, checking the
    // proxy's certificate as a TLS server's: estca issues dev1's certificate.
    let estclient = estclient().expect("built with estproxy");
    let (device_key, _) = key_and_csr(dir, "dev1", "dev1");
    let out_dir = dir.join("dev1-out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = run_estclient(
        estclient,
        proxy.port,
        &trusted,
        &out_dir,
        &[
            "-e",
            "-u",
            "estuser",
            "-h",
            "estpwd",
            "-x",
            device_key.to_str().unwrap(),
            "--common-name",
            "dev1",
        ],
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let body = std::fs::read_to_string(out_dir.join("cert-0-0.pkcs7")).unwrap_or_else(|e| {
        panic!(
            "no certificate ({e}); estclient:\n{printed}\nestproxy:\n{}",
            proxy.log()
        )
    });
    let issued = pkcs7_certificates(&body);
    assert_eq!(issued.len(), 1, "{body}");
    assert_eq!(certissuednum(&issued[0]), 1);
    assert_eq!(d.dir().issued_serials("dev1"), vec![serial_hex(&issued[0])]);

    // History names the application as the actor.
    let history = d.dir().history("dev1");
    assert!(
        history.iter().any(|e| e["kind"] == "enroll"
            && e["actor"]["name"] == "raproxy"
            && e["outcome"]["result"] == "ok"),
        "{history:#?}"
    );

    // Refusals come back through the proxy, as libest maps them: dev1 again while its
    // certificate is active (estca's 409, a status libest's proxy does not pass on: 502), and
    // dev2, outside the application's scope (estca's 404, passed on). Nothing more is issued.
    let (status, body) = device_enroll(&proxy, &trusted, &key_and_csr(dir, "again", "dev1").1);
    assert_eq!(status, 502, "{body}");
    let (status, body) = device_enroll(&proxy, &trusted, &key_and_csr(dir, "dev2", "dev2").1);
    assert_eq!(status, 404, "{body}");
    assert_eq!(d.dir().issued_serials("dev1").len(), 1);
    assert!(d.dir().issued_serials("dev2").is_empty());
}
