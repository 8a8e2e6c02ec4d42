//! Running estca like a production daemon (issue 5): systemd notifications, reload, graceful
//! stop, logs, metrics, check-config, backup and restore, and the systemd unit itself.
//!
//! Each test runs the built binary in its own temporary directory with ephemeral ports.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

const PASSWORD: &str = "correct horse battery";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn q(path: &Path) -> String {
    serde_json::to_string(path.to_str().unwrap()).unwrap()
}

/// A test's directory and configuration file.
struct Dir {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Dir {
    /// Configuration: ephemeral ports, paths inside the directory, cheap Argon2, `extra`
    /// appended to the `[server]` section, `more` appended as further sections.
    fn new(server_extra: &str, more: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("estca-ops")
            .tempdir()
            .unwrap();
        let config = dir.path().join("estca.toml");
        let d = Dir { dir, config };
        d.write_config(server_extra, more);
        d
    }

    fn write_config(&self, server_extra: &str, more: &str) {
        let root = self.dir.path();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n{server_extra}\n\
             [store]\npath = {}\n\n[admin]\nsocket = {}\n\n[ca]\ndir = {}\n\n\
             [auth]\nargon2_memory_kib = 1024\nargon2_iterations = 1\nmax_failed_attempts = 3\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n[revocation]\nlisten = \"127.0.0.1:0\"\n\n\
             [log]\nlevel = \"info\"\n{more}",
            q(&root.join("data")),
            q(&root.join("data/admin.sock")),
            q(&root.join("certs")),
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `estca --config CONFIG args...` with `stdin`.
    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        cli_with(&self.config, args, stdin)
    }

    fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "estca {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The ExecStart line of the unit, with this test's configuration file.
    fn unit_args(&self) -> Vec<String> {
        let unit = std::fs::read_to_string(repo().join("systemd/estca.service")).unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("the unit has an ExecStart line");
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/local/bin/estca"));
        words
            .map(|w| {
                if w == "/etc/estca/estca.toml" {
                    self.config.to_str().unwrap().to_owned()
                } else {
                    w.to_owned()
                }
            })
            .collect()
    }
}

fn cli_with(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = common::estca_command()
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A running `estca serve`, its addresses, and everything it logged so far.
struct Daemon {
    child: Child,
    https: SocketAddr,
    metrics: Option<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
}

/// The value of `name` in a ready line, text (`name=V`) or JSON (`"name":"V"`).
fn field(line: &str, name: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim_start_matches(|c| c != '{'))
    {
        return v["fields"][name].as_str().map(str::to_owned);
    }
    let rest = line.split(&format!("{name}=")).nth(1)?;
    Some(rest.split_whitespace().next()?.to_owned())
}

impl Daemon {
    fn start(dir: &Dir, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        let mut command = common::estca_command();
        command
            .args(dir.unit_args())
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    // Logged before the signal, so the log read after it holds the line.
                    let ready = line.contains("estca ready");
                    log.lock().unwrap().push(line.clone());
                    if ready {
                        let _ = tx.send(line);
                    }
                }
            });
        }
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no ready line; log:\n{}", log.lock().unwrap().join("\n"))
            });
        let https = field(&line, "https").unwrap().parse().unwrap();
        let metrics = field(&line, "metrics").and_then(|m| m.parse().ok());
        Daemon {
            child,
            https,
            metrics,
            log,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until a logged line contains `text`; returns it.
    fn wait_for_log(&self, text: &str, after: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self
                .log
                .lock()
                .unwrap()
                .iter()
                .skip(after)
                .find(|l| l.contains(text))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {text:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        let status = self.wait();
        std::thread::sleep(Duration::from_millis(50));
        (status, self.log_text())
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("estca did not exit; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- TLS clients ------------------------------------------------------------------------

/// Accepts any server certificate and remembers the last one presented.
#[derive(Debug, Default)]
struct Capture {
    seen: Mutex<Option<Vec<u8>>>,
}

impl rustls::client::danger::ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = Some(end_entity.to_vec());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_config(capture: Arc<Capture>) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(capture)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

fn https_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(Arc::default()))
        // Below the daemon's keep-alive idle limit (`server.header_timeout_secs`), so that a
        // request never goes out on a connection the daemon is closing (as `tests/common`).
        .pool_idle_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One HTTP/1.1 keep-alive connection over TLS; remembers the server certificate it saw.
struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<hyper::body::Bytes>>,
    certificate: Vec<u8>,
}

impl KeepAlive {
    async fn open(addr: SocketAddr) -> KeepAlive {
        let capture = Arc::new(Capture::default());
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(capture.clone())));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);
        let certificate = capture.seen.lock().unwrap().clone().unwrap();
        KeepAlive {
            sender,
            certificate,
        }
    }

    async fn get(&mut self, path: &str) -> u16 {
        use http_body_util::BodyExt;
        let request = hyper::Request::get(path)
            .header("host", "localhost")
            .body(http_body_util::Empty::new())
            .unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        status
    }
}

// ----- enrollment helpers -------------------------------------------------------------------

fn csr_base64() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec![]).unwrap();
    B64.encode(params.serialize_request(&key).unwrap().der())
}

async fn enroll(
    client: &reqwest::Client,
    addr: SocketAddr,
    id: &str,
    password: &str,
) -> (u16, String) {
    let response = client
        .post(format!("https://{addr}/.well-known/est/simpleenroll"))
        .basic_auth(id, Some(password))
        .header("content-type", "application/pkcs10")
        .header("accept", "application/pem-certificate-chain")
        .body(csr_base64())
        .send()
        .await;
    match response {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// The serial (hex) of the first certificate of a PEM chain.
fn serial_of_pem(pem: &str) -> String {
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    hex::encode(cert.tbs_certificate.raw_serial())
}

use rustls_pki_types::pem::PemObject;

fn add_accounts(dir: &Dir, contract: &str, ids: &[String]) {
    dir.cli_ok(&["contract", "add", contract, "--name", "Ops Test Co."], "");
    for id in ids {
        dir.cli_ok(
            &[
                "account",
                "add",
                id,
                "--contract",
                contract,
                "--role",
                "user",
                "--name",
                id,
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        );
    }
}

async fn http_get(url: &str) -> reqwest::Response {
    https_client().get(url).send().await.unwrap()
}

async fn metrics_text(addr: SocketAddr) -> String {
    http_get(&format!("http://{addr}/metrics"))
        .await
        .text()
        .await
        .unwrap()
}

/// The value of the sample whose line starts with `series` (name and labels exactly).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

// ----- the tests ----------------------------------------------------------------------------

/// Started as the unit starts it, estca sends READY=1 only once the HTTPS port accepts
/// connections, with a status line naming its addresses, WATCHDOG=1 when WATCHDOG_USEC is set,
/// and STOPPING=1 on SIGTERM, then exits 0.
#[test]
fn notifies_systemd_ready_watchdog_and_stopping() {
    let dir = Dir::new("", "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let daemon = Daemon::start(
        &dir,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
        &[],
    );
    let mut buf = [0u8; 4096];
    let recv = |buf: &mut [u8]| -> String {
        let n = socket.recv(buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv(&mut buf);
    assert!(first.lines().any(|l| l == "READY=1"), "{first:?}");
    // Its status line names the addresses bound (port 0 in the configuration).
    let status = format!("STATUS=ready: https={} admin_socket=", daemon.https);
    assert!(first.lines().any(|l| l.starts_with(&status)), "{first:?}");
    // READY=1 arrived: the port must accept connections now.
    std::net::TcpStream::connect(daemon.https).expect("the port accepts after READY=1");

    let mut watchdog = false;
    for _ in 0..10 {
        let message = recv(&mut buf);
        if message.lines().any(|l| l == "WATCHDOG=1") {
            watchdog = true;
            break;
        }
    }
    assert!(watchdog, "no WATCHDOG=1 within 10 messages");

    daemon.signal("TERM");
    let mut stopping = false;
    for _ in 0..20 {
        let message = recv(&mut buf);
        if message.lines().any(|l| l == "STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    let mut daemon = daemon;
    let status = daemon.wait();
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        daemon.log_text()
    );
}

fn self_signed(name: &str) -> (String, String, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// SIGHUP re-reads the TLS files: new connections see the new certificate, an open
/// keep-alive connection keeps working; a broken configuration is refused and the daemon
/// goes on with the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_the_certificate_and_refuses_a_broken_configuration() {
    let dir = Dir::new("", "");
    let cert = dir.path().join("tls.pem");
    let key = dir.path().join("tls.key");
    let (pem_a, key_a, der_a) = self_signed("first");
    std::fs::write(&cert, &pem_a).unwrap();
    std::fs::write(&key, &key_a).unwrap();
    let tls_lines = format!("tls_cert = {}\ntls_key = {}\n", q(&cert), q(&key));
    dir.write_config(&tls_lines, "");
    let daemon = Daemon::start(&dir, &[], &[]);

    let mut open = KeepAlive::open(daemon.https).await;
    assert_eq!(open.certificate, der_a);
    assert_eq!(open.get("/.well-known/est/cacerts").await, 200);

    // Rotate: new files under the same names, then SIGHUP.
    let (pem_b, key_b, der_b) = self_signed("second");
    std::fs::write(&cert, &pem_b).unwrap();
    std::fs::write(&key, &key_b).unwrap();
    let mark = daemon.log_len();
    daemon.signal("HUP");
    daemon.wait_for_log("configuration reloaded", mark);

    let mut fresh = KeepAlive::open(daemon.https).await;
    assert_eq!(
        fresh.certificate, der_b,
        "a new connection sees the new certificate"
    );
    assert_eq!(fresh.get("/.well-known/est/cacerts").await, 200);
    assert_eq!(
        open.get("/.well-known/est/cacerts").await,
        200,
        "the connection opened before the reload keeps working"
    );

    // A broken configuration: refused, logged, and the old one stays.
    std::fs::write(
        &dir.config,
        std::fs::read_to_string(&dir.config).unwrap() + "\n[server2]\nlisten = 1\n",
    )
    .unwrap();
    let mark = daemon.log_len();
    daemon.signal("HUP");
    let refused = daemon.wait_for_log("reload refused", mark);
    assert!(refused.contains("server2"), "{refused}");
    // A configuration that loads but names an unreadable key: refused as well.
    dir.write_config(
        &format!(
            "tls_cert = {}\ntls_key = {}\n",
            q(&cert),
            q(&dir.path().join("missing.key"))
        ),
        "",
    );
    let mark = daemon.log_len();
    daemon.signal("HUP");
    let refused = daemon.wait_for_log("reload refused", mark);
    assert!(refused.contains("missing.key"), "{refused}");

    let mut after = KeepAlive::open(daemon.https).await;
    assert_eq!(
        after.certificate, der_b,
        "the old configuration stays in force"
    );
    assert_eq!(after.get("/.well-known/est/cacerts").await, 200);
    assert_eq!(open.get("/.well-known/est/cacerts").await, 200);

    // A restart-only change is reported as such.
    dir.write_config(&tls_lines, "");
    std::fs::write(
        &dir.config,
        std::fs::read_to_string(&dir.config)
            .unwrap()
            .replace("max_failed_attempts = 3", "max_failed_attempts = 4"),
    )
    .unwrap();
    let mark = daemon.log_len();
    daemon.signal("HUP");
    let line = daemon.wait_for_log("takes effect after restart", mark);
    assert!(line.contains("auth.max_failed_attempts"), "{line}");

    drop(open);
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

/// SIGTERM during a burst of enrollments: every enrollment answered 200 is in the store
/// after a restart, and the daemon exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_burst_loses_no_answered_enrollment() {
    let dir = Dir::new("", "");
    let daemon = Daemon::start(&dir, &[], &[]);
    let ids: Vec<String> = (0..40).map(|i| format!("burst{i}")).collect();
    add_accounts(&dir, "7001", &ids);

    let client = https_client();
    let addr = daemon.https;
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let client = client.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let (status, body) = enroll(&client, addr, &id, PASSWORD).await;
                (id, status, body)
            })
        })
        .collect();
    // Stop once the burst is under way: some enrollments answered, others in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("certificate issued"))
        .count()
        < 5
    {
        assert!(Instant::now() < deadline, "{}", daemon.log_text());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    daemon.signal("TERM");
    let mut answered = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for task in tasks {
        let (id, status, body) = task.await.unwrap();
        *statuses.entry(status).or_default() += 1;
        if status == 200 {
            answered.push((id, serial_of_pem(&body)));
        }
    }
    eprintln!("statuses at SIGTERM (0 = no answer): {statuses:?}");
    assert!(answered.len() >= 5);
    let mut daemon = daemon;
    let status = daemon.wait();
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        daemon.log_text()
    );
    drop(daemon);

    let daemon = Daemon::start(&dir, &[], &[]);
    for (id, serial) in &answered {
        let shown = dir.cli_ok(&["cert", "show", serial, "--json"], "");
        assert!(
            shown.contains(id.as_str()),
            "certificate {serial} of {id}: {shown}"
        );
    }
    eprintln!(
        "{} of {} enrollments were answered 200 before the stop",
        answered.len(),
        ids.len()
    );
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

/// /metrics counts issuances, refusals by reason, authentication failures, lockouts,
/// revocations, request latency by route, store flushes and the Argon2 queue; /healthz and
/// /readyz answer; the request log line carries the ID and never the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_enrollments_and_requests_are_logged_as_json() {
    let dir = Dir::new("", "");
    let daemon = Daemon::start(&dir, &[], &["--log-format", "json"]);
    let metrics = daemon
        .metrics
        .expect("the ready line names the metrics address");
    let ids: Vec<String> = ["alice", "bob"].iter().map(|s| s.to_string()).collect();
    add_accounts(&dir, "7002", &ids);

    let health = http_get(&format!("http://{metrics}/healthz")).await;
    assert_eq!(health.status().as_u16(), 200);
    let ready = http_get(&format!("http://{metrics}/readyz")).await;
    assert_eq!(ready.status().as_u16(), 200);

    let before = metrics_text(metrics).await;
    assert!(before.contains("estca_argon2_queue_depth 0"), "{before}");
    let issued = r#"estca_certificates_issued_total{usertype="public"}"#;
    assert_eq!(sample(&before, issued), 0.0);

    let client = https_client();
    let (status, _) = enroll(&client, daemon.https, "alice", PASSWORD).await;
    assert_eq!(status, 200);
    let (status, _) = enroll(&client, daemon.https, "alice", PASSWORD).await;
    assert_eq!(status, 409);
    for _ in 0..3 {
        let (status, _) = enroll(&client, daemon.https, "bob", "wrong password!").await;
        assert_eq!(status, 401);
    }
    dir.cli_ok(
        &["account", "revoke", "alice", "--reason", "keyCompromise"],
        "",
    );

    let after = metrics_text(metrics).await;
    assert_eq!(sample(&after, issued), 1.0, "{after}");
    assert_eq!(
        sample(
            &after,
            r#"estca_enrollments_refused_total{reason="active_certificate"}"#
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"estca_enrollments_refused_total{reason="unauthenticated"}"#
        ),
        3.0
    );
    assert_eq!(sample(&after, "estca_authentication_failures_total"), 3.0);
    assert_eq!(sample(&after, "estca_lockouts_total"), 1.0, "{after}");
    assert_eq!(
        sample(
            &after,
            r#"estca_certificates_revoked_total{reason="keyCompromise"}"#
        ),
        1.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            r#"estca_request_duration_seconds_count{endpoint="/.well-known/est/simpleenroll",method="POST",status="200"}"#
        ) >= 1.0,
        "{after}"
    );
    assert!(sample(&after, "estca_store_flush_duration_seconds_count") >= 1.0);
    assert!(
        !after.contains("alice") && !after.contains("bob"),
        "no IDs in labels"
    );

    let log = daemon.log_text();
    let request = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["fields"]["message"] == "request"
                && v["fields"]["status"] == 200
                && v["fields"]["path"] == "/.well-known/est/simpleenroll"
        })
        .unwrap_or_else(|| panic!("no JSON request line; log:\n{log}"));
    assert_eq!(request["fields"]["id"], "alice", "{request}");
    assert_eq!(request["fields"]["method"], "POST");
    assert!(request["fields"]["latency_ms"].is_number());
    // The log names what was issued and what was revoked, should the database be lost.
    let logged = |message: &str| -> serde_json::Value {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["fields"]["message"] == message && v["fields"]["id"] == "alice")
            .unwrap_or_else(|| panic!("no {message:?} line for alice; log:\n{log}"))
    };
    let issued_line = logged("certificate issued");
    let revoked_line = logged("certificate revoked");
    assert!(issued_line["fields"]["serial"].is_string(), "{issued_line}");
    assert_eq!(
        revoked_line["fields"]["serial"], issued_line["fields"]["serial"],
        "{revoked_line}"
    );
    assert_eq!(revoked_line["fields"]["reason"], "keyCompromise");
    assert!(
        revoked_line["fields"]["actor"].is_string(),
        "{revoked_line}"
    );
    assert!(
        !log.contains(PASSWORD) && !log.contains("wrong password!"),
        "{log}"
    );
    assert!(!log.to_ascii_lowercase().contains("authorization"), "{log}");
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

/// /metrics carries the standard process metrics of the daemon itself, with plausible values:
/// resident memory and open descriptors are what `/proc/PID` of the daemon says, the start
/// time is this test's, and CPU time grows with the password hashing of enrollments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_daemons_process_figures() {
    let dir = Dir::new("", "");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let daemon = Daemon::start(&dir, &[], &[]);
    let metrics = daemon
        .metrics
        .expect("the ready line names the metrics address");
    let ids: Vec<String> = (0..4).map(|i| format!("proc{i}")).collect();
    add_accounts(&dir, "7003", &ids);

    let before = metrics_text(metrics).await;
    for line in [
        "# TYPE process_cpu_seconds counter",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_virtual_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
        "# TYPE process_max_fds gauge",
        "# TYPE process_start_time_seconds gauge",
        "# TYPE process_threads gauge",
    ] {
        assert!(before.lines().any(|l| l == line), "no {line} in\n{before}");
    }
    let pid = daemon.child.id();
    let rss = sample(&before, "process_resident_memory_bytes");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let vm_rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        rss > 1e6 && rss < 4.0 * vm_rss_kib * 1024.0 && 4.0 * rss > vm_rss_kib * 1024.0,
        "RSS {rss} against VmRSS {vm_rss_kib} kB"
    );
    assert!(sample(&before, "process_virtual_memory_bytes") >= rss);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    let open = sample(&before, "process_open_fds");
    assert!(
        open >= 5.0 && (open - fds).abs() <= 8.0,
        "{open} open fds reported, /proc says {fds}"
    );
    assert!(sample(&before, "process_max_fds") >= open);
    assert!(sample(&before, "process_threads") >= 2.0);
    let start = sample(&before, "process_start_time_seconds");
    assert!(
        start >= started - 2.0 && start <= started + 120.0,
        "started at {start}, the test at {started}"
    );

    let cpu_before = sample(&before, "process_cpu_seconds_total");
    assert!(cpu_before > 0.0, "{before}");
    let client = https_client();
    for id in &ids {
        let (status, _) = enroll(&client, daemon.https, id, PASSWORD).await;
        assert_eq!(status, 200);
    }
    let after = metrics_text(metrics).await;
    let cpu_after = sample(&after, "process_cpu_seconds_total");
    assert!(
        cpu_after > cpu_before,
        "CPU seconds {cpu_before} then {cpu_after} after four enrollments"
    );
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

/// Under systemd (JOURNAL_STREAM set) lines carry syslog priorities and no timestamps.
#[test]
fn journal_lines_have_priorities_and_no_timestamps() {
    let dir = Dir::new("", "");
    let daemon = Daemon::start(&dir, &[("JOURNAL_STREAM", "8:12345")], &[]);
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
    let ready = log.lines().find(|l| l.contains("estca ready")).unwrap();
    assert!(ready.starts_with("<6>"), "{ready}");
    assert!(
        !ready[3..].starts_with(|c: char| c.is_ascii_digit()),
        "no timestamp: {ready}"
    );
    assert!(log.lines().all(|l| l.starts_with('<')), "{log}");
}

/// check-config validates without starting anything and prints the effective values.
#[test]
fn check_config_validates_and_prints_effective_values() {
    let example = repo().join("config/estca.toml");
    let out = cli_with(&example, &["check-config"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(
        value["admin"]["socket"].as_str(),
        Some("/run/estca/admin.sock")
    );
    assert_eq!(value["metrics"]["listen"].as_str(), Some("127.0.0.1:8449"));
    assert_eq!(
        value["server"]["shutdown_grace_secs"].as_integer(),
        Some(10)
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[server]\nshutdown_grace_secs = 0\n").unwrap();
    let out = cli_with(&broken, &["check-config"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.shutdown_grace_secs"), "{err}");
    assert!(
        !dir.path().join("data").exists(),
        "check-config starts nothing"
    );
}

/// `estca backup` takes a consistent snapshot online (mode 0600); `estca restore` refuses a
/// running daemon, a non-empty database and a damaged file, and otherwise restores accounts,
/// certificates (revoked ones too) and history so that the daemon carries on from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_round_trip() {
    let dir = Dir::new("", "");
    let daemon = Daemon::start(&dir, &[], &[]);
    let ids: Vec<String> = ["carol", "dave", "erin"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    add_accounts(&dir, "7003", &ids);
    let client = https_client();
    for id in &ids {
        assert_eq!(enroll(&client, daemon.https, id, PASSWORD).await.0, 200);
    }
    dir.cli_ok(&["account", "reissue", "dave"], "");
    assert_eq!(enroll(&client, daemon.https, "dave", PASSWORD).await.0, 200);
    dir.cli_ok(&["account", "revoke", "erin"], "");
    assert_eq!(
        enroll(&client, daemon.https, "carol", "not the password")
            .await
            .0,
        401
    );

    let file = dir.path().join("estca.backup");
    let printed = dir.cli_ok(&["backup", file.to_str().unwrap()], "");
    assert!(printed.contains("3 accounts"), "{printed}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup holds password hashes");

    let shown = |d: &Dir, id: &str| -> serde_json::Value {
        serde_json::from_str(&d.cli_ok(&["account", "show", id, "--json"], "")).unwrap()
    };
    // History without the operator's own reads (which the commands below add as they run).
    let history = |d: &Dir| -> serde_json::Value {
        let mut page: serde_json::Value =
            serde_json::from_str(&d.cli_ok(&["history", "--limit", "1000", "--json"], "")).unwrap();
        if let Some(entries) = page["entries"].as_array_mut() {
            entries.retain(|e| e["kind"] != "query");
        }
        page
    };
    let accounts_before: Vec<_> = ids.iter().map(|id| shown(&dir, id)).collect();
    let history_before = history(&dir);

    // Refused while the daemon runs, even into its own directory.
    let out = dir.cli(&["restore", file.to_str().unwrap()], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use") || err.contains("not empty"), "{err}");
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");

    // Refused into a database that holds data.
    let out = dir.cli(&["restore", file.to_str().unwrap()], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    // A second directory sharing the CA: refused for a damaged file, then restored.
    let restored = Dir::new("", "");
    std::fs::remove_dir(restored.path()).ok();
    copy_dir(&dir.path().join("certs"), &restored.path().join("certs"));
    let damaged = restored.path().join("damaged.backup");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&damaged, text.replacen("carol", "carol2", 1)).unwrap();
    let out = restored.cli(&["restore", damaged.to_str().unwrap()], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was restored"));
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&damaged, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let out = restored.cli(&["restore", damaged.to_str().unwrap()], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("incomplete"));

    let out = restored.cli(&["restore", file.to_str().unwrap()], "");
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("3 accounts"), "{printed}");
    // The operator is told that what happened after the backup is not in it, and when it was.
    let note = String::from_utf8(out.stderr).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let taken_at = header["created_at"].as_str().unwrap();
    assert!(
        note.contains(&format!(
            "as it was when this backup was taken ({taken_at})"
        )) && note.contains("revoked since are good again"),
        "{note}"
    );

    let daemon = Daemon::start(&restored, &[], &[]);
    let accounts_after: Vec<_> = ids.iter().map(|id| shown(&restored, id)).collect();
    assert_eq!(accounts_before, accounts_after);
    assert_eq!(history_before, history(&restored));
    // The restored state is live: lifecycle rules apply and new history sorts after.
    assert_eq!(
        enroll(&client, daemon.https, "carol", PASSWORD).await.0,
        409
    );
    assert_eq!(enroll(&client, daemon.https, "erin", PASSWORD).await.0, 403);
    let newest = history(&restored);
    let newest_seq = newest["entries"][0]["seq"].as_u64().unwrap();
    let old_seq = history_before["entries"][0]["seq"].as_u64().unwrap();
    assert!(newest_seq > old_seq, "{newest_seq} > {old_seq}");
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    // estca refuses a CA directory that others may enter.
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target).unwrap();
        let mode = entry.metadata().unwrap().permissions().mode();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// `systemd-analyze verify` accepts the unit (pointed at the built binary) and
/// `systemd-analyze security --offline=true` rates it 2.0 or lower; sysusers and tmpfiles
/// entries parse.
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("NOTICE: systemd-analyze is not installed; skipping the systemd unit checks");
        return;
    }
    let unit = repo().join("systemd/estca.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("estca.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/estca", common::estca_bin()),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(
        !said.contains("estca.service:"),
        "verify complained: {said}"
    );

    let out = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure line: {report} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score: {line}"));
    assert!(score <= 2.0, "{line}");

    // sysusers first: tmpfiles resolves the users it creates in the same root.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    for (tool, file) in [
        ("/usr/bin/systemd-sysusers", "systemd/estca.sysusers"),
        ("/usr/bin/systemd-tmpfiles", "systemd/estca.tmpfiles"),
    ] {
        if !Path::new(tool).exists() {
            eprintln!("NOTICE: {tool} is not installed; skipping {file}");
            continue;
        }
        let mut command = Command::new(tool);
        command.arg(format!("--root={}", root.path().display()));
        if tool.ends_with("tmpfiles") {
            command.arg("--create");
        }
        let out = command.arg(repo().join(file)).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{tool} {file}: {stderr}");
        assert!(!stderr.contains("Failed"), "{tool} {file}: {stderr}");
    }
    if Path::new("/usr/bin/systemd-tmpfiles").exists() {
        let state = root.path().join("var/lib/estca");
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
    }
}

/// The production example and the unit agree: the admin socket lives in the unit's
/// RuntimeDirectory with a mode that lets the estca-admin group in, and the data in its
/// StateDirectory.
#[test]
fn the_production_configuration_matches_the_unit() {
    let unit = std::fs::read_to_string(repo().join("systemd/estca.service")).unwrap();
    for line in [
        "Type=notify",
        "User=estca",
        "Group=estca-admin",
        "StateDirectory=estca",
        "ConfigurationDirectory=estca",
        "RuntimeDirectory=estca",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "UMask=0077",
        "CapabilityBoundingSet=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "SystemCallArchitectures=native",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        // estca's exit code for a start the operator must fix first (tests/ca_binding.rs).
        "RestartPreventExitStatus=3",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let example = repo().join("config/estca.toml");
    let out = cli_with(&example, &["check-config"], "");
    assert!(out.status.success());
    let value: toml::Value = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(
        value["admin"]["socket"].as_str(),
        Some("/run/estca/admin.sock")
    );
    assert_eq!(value["admin"]["socket_mode"].as_str(), Some("0660"));
    assert_eq!(value["store"]["path"].as_str(), Some("/var/lib/estca"));
    assert!(value["ca"]["dir"]
        .as_str()
        .unwrap()
        .starts_with("/var/lib/estca/"));
}

/// The README's "Configuration" section documents every key of the production example
/// (which a unit test checks holds every default key), with its default.
#[test]
fn the_readme_documents_every_configuration_key() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README has a Configuration section")
        .split("\n## ")
        .next()
        .unwrap();
    let defaults: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo().join("config/defaults.toml")).unwrap())
            .unwrap();
    let example = std::fs::read_to_string(repo().join("config/estca.toml")).unwrap();
    let mut section_name = String::new();
    for line in example.lines() {
        let line = line.trim_start_matches("# ").trim();
        if line.starts_with('[') && line.ends_with(']') {
            section_name = line.trim_matches(['[', ']']).to_owned();
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.contains(' ') || section_name.is_empty() {
            continue;
        }
        let dotted = format!("`{section_name}.{key}`");
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| {dotted} ")))
            .unwrap_or_else(|| panic!("README Configuration lacks a row for {dotted}"));
        if let Some(default) = defaults.get(&section_name).and_then(|s| s.get(key)) {
            let shown = default.to_string().replace(' ', "");
            assert!(
                row.replace(' ', "").contains(&format!("`{shown}`")),
                "README row for {dotted} does not show the default `{shown}`: {row}"
            );
        }
    }
}
