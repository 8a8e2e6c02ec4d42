//! Test harness: runs the real `estca` binary in a temporary directory, talks to it over HTTPS
//! (EST) and through its command line (admin socket), and makes keys and CSRs.
//!
//! Every test owns its own [`TestDir`] and daemon, so tests run in parallel.

#![allow(dead_code)]

pub mod est_client;
pub mod libest;
pub mod pkilint;
pub mod postgres;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use der::{Decode, Encode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The password every test account gets unless a test says otherwise.
pub const PASSWORD: &str = "correct horse battery";

/// How long a daemon may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that chooses the store backend of every daemon these tests start
/// (`sled`, `fjall` or `postgres`; unset: the default). Not an `ESTCA_` variable, which the
/// daemon itself would read. With `postgres`, each data directory gets a database of its own
/// on the test server ([`postgres::TestPostgres`]).
pub const STORE_BACKEND_VAR: &str = "TEST_STORE_BACKEND";

/// The `[store]` lines that select the backend [`STORE_BACKEND_VAR`] names for the daemon
/// whose data directory is `data` (none when unset).
pub fn store_backend_toml(data: &Path) -> String {
    match std::env::var(STORE_BACKEND_VAR) {
        Ok(backend) if backend == "postgres" => {
            let config = postgres_config(data);
            format!(
                "backend = \"postgres\"\n[store.postgres]\nurl = {}\npassword_file = {}\n",
                toml_str(&config.url),
                toml_str(config.password_file.unwrap().to_str().unwrap())
            )
        }
        Ok(backend) if !backend.is_empty() => format!("backend = {}\n", toml_str(&backend)),
        _ => String::new(),
    }
}

/// The database of the daemon whose data directory is `data`, on the shared test server:
/// named after the directory, created on first use.
fn postgres_config(data: &Path) -> estca::config::PostgresConfig {
    use sha2::Digest;
    let server = postgres::TestPostgres::shared()
        .expect("TEST_STORE_BACKEND=postgres needs the PostgreSQL server binaries");
    let digest = sha2::Sha256::digest(data.as_os_str().as_encoded_bytes());
    let name = format!("estca_{}", hex::encode(&digest[..8]));
    server.create_database(&name);
    estca::config::PostgresConfig {
        url: server.url(&name),
        password_file: Some(postgres::TestPostgres::password_file(server.directory())),
        ..Default::default()
    }
}

/// The store configuration of a daemon whose data directory is `data`, as the daemon reads
/// it (for tests that open its store after it stopped).
pub fn store_config(data: &Path) -> estca::config::StoreConfig {
    use estca::config::StoreBackend;
    let backend = match std::env::var(STORE_BACKEND_VAR).as_deref() {
        Err(_) | Ok("") | Ok("sled") => StoreBackend::Sled,
        Ok("fjall") => StoreBackend::Fjall,
        Ok("postgres") => StoreBackend::Postgres,
        Ok(other) => panic!("{STORE_BACKEND_VAR}={other}: give sled, fjall or postgres"),
    };
    let postgres = if backend == StoreBackend::Postgres {
        postgres_config(data)
    } else {
        Default::default()
    };
    estca::config::StoreConfig {
        path: data.to_owned(),
        backend,
        cache_mib: 16,
        postgres,
    }
}

/// The estca binary cargo built for these tests.
pub fn estca_bin() -> &'static str {
    env!("CARGO_BIN_EXE_estca")
}

/// A command running [`estca_bin`] configured by its test alone ([`without_estca_variables`]).
pub fn estca_command() -> Command {
    let mut command = Command::new(estca_bin());
    without_estca_variables(&mut command);
    command
}

/// Leaves out of `command`'s environment the `ESTCA_*` variables of the one the tests run in (a
/// developer's shell may set some, `ESTCA_LOG__LEVEL=warn` say), so that an estca it runs is
/// configured by its test alone, which sets the variables it wants afterwards.
pub fn without_estca_variables(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("ESTCA_")) {
            command.env_remove(name);
        }
    }
    command
}

/// Configuration choices a test may change; everything else is the embedded default, with all
/// paths inside the test's directory, an ephemeral port and warnings only (plus `estca::server` at info, which logs the ready line).
#[derive(Debug, Clone)]
pub struct Options {
    pub max_failed_attempts: Option<u32>,
    pub max_body_bytes: Option<usize>,
    pub max_concurrent_hashes: Option<usize>,
    pub max_queued_hashes: Option<usize>,
    /// Argon2 memory in KiB; tests not about passwords use a small value for speed.
    pub argon2_memory_kib: Option<u32>,
    pub argon2_iterations: Option<u32>,
    pub organization: Option<String>,
    pub issuing_name: Option<String>,
    /// Raw TOML appended to the file (e.g. to test unknown keys).
    pub extra_toml: String,
    /// Environment variables for `estca serve`, e.g. `ESTCA_SERVER__MAX_CONNECTIONS`
    /// (settings of sections the file already has).
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_failed_attempts: None,
            max_body_bytes: None,
            max_concurrent_hashes: None,
            max_queued_hashes: None,
            argon2_memory_kib: Some(1024),
            argon2_iterations: Some(1),
            organization: None,
            issuing_name: None,
            extra_toml: String::new(),
            env: Vec::new(),
        }
    }
}

/// A test's directory: configuration, CA, database and admin socket. It outlives daemons, so
/// a stopped daemon can be started again on the same data.
pub struct TestDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub options: Options,
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap() // a JSON string is a valid TOML basic string
}

impl TestDir {
    pub fn new(options: Options) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("estca-test")
            .tempdir()
            .unwrap();
        let root = dir.path();
        let p = |sub: &str| toml_str(root.join(sub).to_str().unwrap());
        let mut server = String::from("listen = \"127.0.0.1:0\"\n");
        if let Some(v) = options.max_body_bytes {
            server += &format!("max_body_bytes = {v}\n");
        }
        let mut auth = String::new();
        for (key, value) in [
            (
                "max_failed_attempts",
                options.max_failed_attempts.map(|v| v as u64),
            ),
            (
                "max_concurrent_hashes",
                options.max_concurrent_hashes.map(|v| v as u64),
            ),
            (
                "max_queued_hashes",
                options.max_queued_hashes.map(|v| v as u64),
            ),
            (
                "argon2_memory_kib",
                options.argon2_memory_kib.map(|v| v as u64),
            ),
            (
                "argon2_iterations",
                options.argon2_iterations.map(|v| v as u64),
            ),
        ] {
            if let Some(v) = value {
                auth += &format!("{key} = {v}\n");
            }
        }
        let mut ca = format!("dir = {}\n", p("certs"));
        if let Some(o) = &options.organization {
            ca += &format!("organization = {}\n", toml_str(o));
        }
        if let Some(o) = &options.issuing_name {
            ca += &format!("issuing_name = {}\n", toml_str(o));
        }
        let text = format!(
            "[server]\n{server}\n[store]\npath = {}\n{}\n[admin]\nsocket = {}\n\n[ca]\n{ca}\n[auth]\n{auth}\n[log]\n# the ready line is logged at info by estca::server\nlevel = \"warn,estca::server=info\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[revocation]\nlisten = \"127.0.0.1:0\"\n{}",
            p("data"),
            store_backend_toml(&root.join("data")),
            p("data/admin.sock"),
            options.extra_toml
        );
        let config = root.join("estca.toml");
        std::fs::write(&config, text).unwrap();
        Self {
            dir,
            config,
            options,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.path().join("certs")
    }

    pub fn root_ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.ca_dir().join("root-ca.pem")).unwrap()
    }

    /// Runs `estca --config FILE ARGS`, feeding `stdin`; returns exit status, stdout, stderr.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
        let mut child = estca_command()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (status, out, err) = self.cli(args, stdin);
        assert!(
            status.success(),
            "estca {args:?} failed ({status}):\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Runs `estca --json ARGS`, which must succeed, and parses its JSON.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli_ok(&all, None);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    pub fn add_contract(&self, code: &str) {
        self.cli_ok(
            &[
                "contract",
                "add",
                code,
                "--name",
                &format!("Contract {code}"),
            ],
            None,
        );
    }

    /// Adds an account with [`PASSWORD`].
    pub fn add_account(&self, id: &str, contract: &str, role: &str) -> Value {
        let out = self.cli_ok(
            &[
                "--json",
                "account",
                "add",
                id,
                "--contract",
                contract,
                "--role",
                role,
                "--name",
                &format!("Name of {id}"),
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
        serde_json::from_str(&out).unwrap()
    }

    pub fn account(&self, id: &str) -> Value {
        self.cli_json(&["account", "show", id])
    }

    pub fn cert(&self, serial: &str) -> Value {
        self.cli_json(&["cert", "show", serial])
    }

    /// History entries of `id`, newest first.
    pub fn history(&self, id: &str) -> Vec<Value> {
        let page = self.cli_json(&["history", id, "--limit", "1000"]);
        page["entries"].as_array().unwrap().clone()
    }

    /// Every serial the history says was issued to `id`.
    pub fn issued_serials(&self, id: &str) -> Vec<String> {
        let mut serials = vec![];
        for entry in self.history(id) {
            if entry["outcome"]["result"] != "ok" {
                continue;
            }
            if let Some(detail) = entry["outcome"]["detail"].as_str() {
                if let Some(rest) = detail.strip_prefix("issued ") {
                    serials.push(rest.split_whitespace().next().unwrap().to_owned());
                }
            }
        }
        serials
    }

    /// Checks the invariant: at most one of the ID's certificates is unrevoked and unexpired.
    /// Returns the statuses by serial.
    pub fn assert_at_most_one_active(&self, id: &str) -> BTreeMap<String, String> {
        let statuses: BTreeMap<String, String> = self
            .issued_serials(id)
            .into_iter()
            .map(|s| {
                let status = self.cert(&s)["status"].as_str().unwrap().to_owned();
                (s, status)
            })
            .collect();
        let active = statuses.values().filter(|s| *s == "active").count();
        assert!(
            active <= 1,
            "{id} has {active} active certificates: {statuses:?}"
        );
        statuses
    }
}

/// A running `estca serve`.
pub struct TestDaemon {
    pub dir: Option<TestDir>,
    child: Child,
    pub port: u16,
    stderr: Arc<Mutex<String>>,
}

/// Why a daemon did not become ready.
#[derive(Debug)]
pub struct StartFailure {
    pub status: Option<ExitStatus>,
    pub stderr: String,
}

/// Spawns `command` (an `estca serve`), waits for the ready line, and returns the child, the
/// HTTPS port and the stderr collected so far (kept growing by a thread).
pub fn spawn_and_wait(
    mut command: Command,
) -> Result<(Child, u16, Arc<Mutex<String>>), StartFailure> {
    let cwd = command
        .get_current_dir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::current_dir().unwrap());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn estca serve");
    let stderr = child.stderr.take().unwrap();
    let collected = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel::<(u16, PathBuf)>();
    {
        let collected = collected.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Collected before the ready signal, so that a test reading stderr() right
                // after the start sees the ready line itself.
                {
                    let mut c = collected.lock().unwrap();
                    c.push_str(&line);
                    c.push('\n');
                }
                if let (Some(port), Some(socket)) = (ready_port(&line), ready_socket(&line)) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send((port, socket));
                    }
                }
            }
        });
    }
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((port, socket)) => {
                // The ready line is logged a moment before `estca serve` installs its SIGTERM
                // handler (see tests/known_bugs.rs); an admin round trip lets that moment pass,
                // so that `stop()` tests the graceful stop rather than that race.
                let socket = cwd.join(socket); // relative paths are the daemon's cwd's
                let status = admin_round_trip(&socket).unwrap_or_else(|e| {
                    panic!(
                        "admin socket {} unusable after ready: {e}",
                        socket.display()
                    )
                });
                assert!(status.contains(" 200 "), "admin socket answered {status}");
                return Ok((child, port, collected));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stderr closed: the process is exiting.
                let status = child.wait().ok();
                return Err(StartFailure {
                    status,
                    stderr: wait_for_text(&collected),
                });
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(StartFailure {
                status: Some(status),
                stderr: wait_for_text(&collected),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "estca did not print its ready line within {READY_TIMEOUT:?}; stderr:\n{}",
                collected.lock().unwrap()
            );
        }
    }
}

fn wait_for_text(collected: &Arc<Mutex<String>>) -> String {
    // Give the reader thread a moment to append the last lines after the process exits.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = String::new();
    loop {
        let now = collected.lock().unwrap().clone();
        if (!now.is_empty() && now == last) || Instant::now() > deadline {
            return now;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The port in `estca ready https=127.0.0.1:PORT admin_socket=PATH`.
fn ready_port(line: &str) -> Option<u16> {
    if !line.contains("estca ready") {
        return None;
    }
    let addr = line.split("https=").nth(1)?.split_whitespace().next()?;
    addr.rsplit(':').next()?.parse().ok()
}

/// The admin socket path in the ready line.
fn ready_socket(line: &str) -> Option<PathBuf> {
    let path = line
        .split("admin_socket=")
        .nth(1)?
        .split_whitespace()
        .next()?;
    Some(PathBuf::from(path))
}

/// One POST of a JSON `body` over the admin socket (the operator), answered within
/// `timeout`; the status, or `None` if the daemon is gone or did not answer.
pub fn admin_post(socket: &Path, path: &str, body: &str, timeout: Duration) -> Option<u16> {
    use std::io::Read;
    let mut s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: estca\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// One request over the admin socket; returns the status line.
pub fn admin_round_trip(socket: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream
        .write_all(b"GET /api/v1/contracts HTTP/1.1\r\nHost: estca\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

impl TestDaemon {
    /// A new directory with `options`, and a daemon on it.
    pub fn start(options: Options) -> Self {
        Self::start_in(TestDir::new(options))
    }

    /// A daemon on an existing directory (a restart when a daemon ran there before).
    pub fn start_in(dir: TestDir) -> Self {
        match Self::try_start_in(dir) {
            Ok(d) => d,
            Err(failure) => {
                let (_, f) = *failure;
                panic!(
                    "estca serve exited ({:?}) before it was ready; stderr:\n{}",
                    f.status, f.stderr
                )
            }
        }
    }

    pub fn try_start_in(dir: TestDir) -> Result<Self, Box<(TestDir, StartFailure)>> {
        let mut command = estca_command();
        command
            .arg("serve")
            .arg("--config")
            .arg(&dir.config)
            .envs(dir.options.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path());
        match spawn_and_wait(command) {
            Ok((child, port, stderr)) => Ok(Self {
                dir: Some(dir),
                child,
                port,
                stderr,
            }),
            Err(f) => Err(Box::new((dir, f))),
        }
    }

    pub fn dir(&self) -> &TestDir {
        self.dir.as_ref().unwrap()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The address of the listener `name` (`https`, `metrics`, `revocation_http`) in the
    /// daemon's ready line.
    pub fn ready_addr(&self, name: &str) -> std::net::SocketAddr {
        let log = self.stderr();
        let line = log
            .lines()
            .find(|l| l.contains("estca ready"))
            .unwrap_or_else(|| panic!("no ready line in {log}"));
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {line}"))
            .parse()
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGHUP: the daemon reloads its configuration and its CA directory.
    pub fn reload(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -HUP failed");
    }

    /// Waits (up to 30 s) until the daemon's log, past its first `after` bytes, contains
    /// `text`; returns the whole log.
    pub fn wait_for_log(&self, text: &str, after: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.stderr();
            if log.get(after..).is_some_and(|tail| tail.contains(text)) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {text:?} in the log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit; returns the directory for a restart.
    pub fn stop(mut self) -> TestDir {
        wait_for_sigterm_handler(self.child.id());
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        let exit = wait_timeout(&mut self.child, Duration::from_secs(20)).unwrap_or_else(|| {
            panic!(
                "estca did not exit after SIGTERM; stderr:\n{}",
                self.stderr()
            )
        });
        assert!(
            exit.success(),
            "estca exited with {exit} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
        self.dir.take().unwrap()
    }

    /// SIGKILL (a crash); returns the directory for a restart.
    pub fn kill9(mut self) -> TestDir {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -KILL failed");
        let _ = self.child.wait();
        self.dir.take().unwrap()
    }

    pub fn client(&self) -> EstClient {
        EstClient::new(self.port, &self.dir().root_ca_pem(), None)
    }

    /// A client presenting `cert_chain_pem` with `key` (PKCS#8 DER) in the TLS handshake.
    pub fn client_with_cert(&self, cert_chain_pem: &[u8], key_pkcs8_der: &[u8]) -> EstClient {
        EstClient::new(
            self.port,
            &self.dir().root_ca_pem(),
            Some((cert_chain_pem, key_pkcs8_der)),
        )
    }

    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
        self.dir().cli(args, stdin)
    }
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.dir().cli_ok(args, stdin)
    }
    pub fn cli_json(&self, args: &[&str]) -> Value {
        self.dir().cli_json(args)
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if self.dir.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until process `pid` catches SIGTERM (Linux: `SigCgt` in `/proc/PID/status`).
///
/// `estca serve` logs its ready line a moment before it installs the handler (see
/// tests/known_bugs.rs), so a SIGTERM sent at once could kill it by the default action and
/// the graceful stop would go untested. Elsewhere than Linux this returns at once.
pub fn wait_for_sigterm_handler(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return;
        };
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (15 - 1)) != 0);
        if caught {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "estca never installed a SIGTERM handler"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTPS client trusting the test CA's root, optionally with a client certificate.
#[derive(Clone)]
pub struct EstClient {
    pub http: reqwest::Client,
    pub base: String,
}

/// A finished HTTP exchange.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected answer: {self:?}");
        self
    }

    /// Asserts a `text/plain` error with `status`.
    pub fn assert_error(&self, status: u16) -> &Self {
        self.assert_status(status);
        assert!(
            self.content_type().starts_with("text/plain"),
            "error without text/plain: {self:?}"
        );
        assert!(!self.body.trim().is_empty(), "error without a message");
        self
    }

    /// The issued certificate of a 200 PKCS#7 answer, DER.
    pub fn pkcs7_certificate(&self) -> Vec<u8> {
        self.assert_status(200);
        assert_eq!(
            self.content_type(),
            "application/pkcs7-mime; smime-type=certs-only"
        );
        assert!(
            self.body.split("\r\n").all(|line| line.len() <= 76),
            "base64 in RFC 2045 lines of at most 76 characters, ended by CRLF"
        );
        let certs = pkcs7_certificates(&self.body);
        assert_eq!(certs.len(), 1, "the answer holds only the new certificate");
        certs.into_iter().next().unwrap()
    }

    /// The PEM chain of a 200 PEM answer.
    pub fn pem_chain(&self) -> Vec<Vec<u8>> {
        self.assert_status(200);
        assert_eq!(self.content_type(), "application/pem-certificate-chain");
        CertificateDer::pem_slice_iter(self.body.as_bytes())
            .map(|c| c.unwrap().to_vec())
            .collect()
    }
}

/// The certificates of a base64 certs-only PKCS#7.
pub fn pkcs7_certificates(base64_body: &str) -> Vec<Vec<u8>> {
    // Wrapped (RFC 2045 lines, estca's default) or on one line.
    let text: String = base64_body
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = B64.decode(text).expect("base64 PKCS#7");
    let info = cms::content_info::ContentInfo::from_der(&der).expect("ContentInfo");
    assert_eq!(info.content_type, const_oid::db::rfc5911::ID_SIGNED_DATA);
    let signed: cms::signed_data::SignedData = info.content.decode_as().expect("SignedData");
    signed
        .certificates
        .expect("certificates")
        .0
        .iter()
        .map(|choice| match choice {
            cms::cert::CertificateChoices::Certificate(c) => c.to_der().unwrap(),
            other => panic!("unexpected certificate choice {other:?}"),
        })
        .collect()
}

impl EstClient {
    pub fn new(port: u16, root_pem: &[u8], client: Option<(&[u8], &[u8])>) -> Self {
        Self::with_source(port, root_pem, client, None)
    }

    /// A client whose connections come from `source` (any 127.x.y.z works on Linux's
    /// loopback): another address to the per-source limits.
    pub fn from_source(port: u16, root_pem: &[u8], source: std::net::IpAddr) -> Self {
        Self::with_source(port, root_pem, None, Some(source))
    }

    fn with_source(
        port: u16,
        root_pem: &[u8],
        client: Option<(&[u8], &[u8])>,
        source: Option<std::net::IpAddr>,
    ) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(root_pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let tls = match client {
            None => builder.with_no_client_auth(),
            Some((chain_pem, key_der)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
                    .map(|c| c.unwrap())
                    .collect();
                assert!(!chain.is_empty(), "no certificate in the client chain");
                let key = PrivateKeyDer::try_from(key_der.to_vec()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .local_address(source)
            // The daemon closes a keep-alive connection that stays idle for
            // `server.header_timeout_secs` (10 s by default, 2 s in some tests). A POST sent on
            // a pooled connection at the moment the daemon closes it fails with an unexpected
            // EOF and is not retried; a client that forgets idle connections sooner never
            // races the daemon's close.
            .pool_idle_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // An IPv6 source talks to the daemon's IPv6 loopback address.
        let host = match source {
            Some(std::net::IpAddr::V6(_)) => "[::1]",
            _ => "127.0.0.1",
        };
        Self {
            http,
            base: format!("https://{host}:{port}/.well-known/est"),
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("HTTPS request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}/{path}", self.base)))
            .await
    }

    /// simpleenroll with ID and password; the CSR (DER) is sent as base64.
    pub async fn enroll(&self, id: &str, password: &str, csr_der: &[u8]) -> Answer {
        self.enroll_raw(
            Some((id, password)),
            Some("application/pkcs10"),
            B64.encode(csr_der).into_bytes(),
            false,
        )
        .await
    }

    /// simpleenroll asking for a PEM chain.
    pub async fn enroll_pem(&self, id: &str, password: &str, csr_der: &[u8]) -> Answer {
        self.enroll_raw(
            Some((id, password)),
            Some("application/pkcs10"),
            B64.encode(csr_der).into_bytes(),
            true,
        )
        .await
    }

    pub async fn enroll_raw(
        &self,
        credentials: Option<(&str, &str)>,
        content_type: Option<&str>,
        body: Vec<u8>,
        pem: bool,
    ) -> Answer {
        let mut request = self.http.post(format!("{}/simpleenroll", self.base));
        if let Some((id, password)) = credentials {
            request = request.basic_auth(id, Some(password));
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if pem {
            request = request.header("accept", "application/pem-certificate-chain");
        }
        self.send(request.body(body)).await
    }

    /// simplereenroll (this client's certificate authenticates); PEM answer when `pem`.
    pub async fn reenroll(&self, csr_der: &[u8], pem: bool) -> Answer {
        let mut request = self
            .http
            .post(format!("{}/simplereenroll", self.base))
            .header("content-type", "application/pkcs10");
        if pem {
            request = request.header("accept", "application/pem-certificate-chain");
        }
        self.send(request.body(B64.encode(csr_der))).await
    }
}

/// A key pair and its CSR.
pub struct KeyAndCsr {
    /// PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
    /// PKCS#10 DER.
    pub csr_der: Vec<u8>,
}

/// A fresh ECDSA P-256 key and CSR.
pub fn p256() -> KeyAndCsr {
    key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256)
}

pub fn key_and_csr(alg: &'static rcgen::SignatureAlgorithm) -> KeyAndCsr {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ignored by the CA");
    let csr = params.serialize_request(&key).unwrap();
    KeyAndCsr {
        key_der: key.serialize_der(),
        spki_der: rcgen::PublicKeyData::subject_public_key_info(&key),
        csr_der: csr.der().to_vec(),
    }
}

/// `curl -si --cacert ROOT EXTRA https://localhost:PORT{path}` against `daemon`, `root` its
/// root CA's PEM file: the raw head and body, as a client sees them on the wire.
pub fn curl_raw(daemon: &TestDaemon, root: &Path, path: &str, extra: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-si", "--cacert"])
        .arg(root)
        .args(extra)
        .arg(format!("https://localhost:{}{path}", daemon.port))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A key and CSR made by the `openssl` binary, e.g. `rsa:2048`; the key is PKCS#8 DER.
pub fn openssl_key_and_csr(newkey: &str) -> KeyAndCsr {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let csr = dir.path().join("r.der");
    let out = Command::new("openssl")
        .args(["req", "-new", "-newkey", newkey, "-nodes", "-subj", "/CN=x"])
        .arg("-keyout")
        .arg(&key)
        .args(["-outform", "DER", "-out"])
        .arg(&csr)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_der = match PrivateKeyDer::from_pem_slice(&std::fs::read(&key).unwrap()).unwrap() {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        other => panic!("openssl wrote a non-PKCS#8 key: {other:?}"),
    };
    let csr_der = std::fs::read(&csr).unwrap();
    let spki_der = {
        use x509_parser::prelude::FromDer;
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&csr_der)
                .unwrap();
        req.certification_request_info.subject_pki.raw.to_vec()
    };
    KeyAndCsr {
        key_der,
        spki_der,
        csr_der,
    }
}

/// Skips `what` because of `why`, with a notice written straight to standard error (past the
/// test harness's capture, so that the skip is seen); or fails it when `REQUIRE_ALL_TESTS`
/// is set, as `.ci/run` does, so that CI never skips a test.
pub fn skip(what: &str, why: &str) {
    assert!(
        std::env::var_os("REQUIRE_ALL_TESTS").is_none(),
        "REQUIRE_ALL_TESTS is set and {what} cannot run: {why}"
    );
    let _ = writeln!(std::io::stderr(), "NOTICE: {what} is SKIPPED: {why}");
}

/// Whether every program of `tools` is installed; when one is not, [`skip`]s `what`.
pub fn have_tools(tools: &[&str], what: &str) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|tool| !have(tool)).collect();
    if missing.is_empty() {
        return true;
    }
    skip(what, &format!("{} not installed", missing.join(", ")));
    false
}

/// Debian's SoftHSM2 PKCS#11 module, where the PKCS#11 tests and the README's HSM examples
/// load it.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Whether SoftHSM2 (its module and `softhsm2-util`) and openssl are installed; when not,
/// [`skip`]s `what`.
pub fn have_softhsm(what: &str) -> bool {
    if !have_tools(&["openssl", "softhsm2-util"], what) {
        return false;
    }
    if !Path::new(SOFTHSM_MODULE).exists() {
        skip(
            what,
            &format!("{SOFTHSM_MODULE} is not installed (Debian: softhsm2)"),
        );
        return false;
    }
    true
}

/// Runs one step of building or installing a third-party client; its failure says what
/// failed and ends with the last 30 lines of each of its outputs.
pub fn run_step(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    Err(format!(
        "{what} failed ({}):\n{}\n{}",
        output.status,
        tail(&output.stdout),
        tail(&output.stderr)
    ))
}

pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(tool)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

/// PEM of one DER certificate.
pub fn cert_pem(der: &[u8]) -> String {
    pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der).unwrap()
}

/// Lower-case hex serial of a DER certificate.
pub fn serial_hex(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    hex::encode(cert.raw_serial())
}

/// The `CERTISSUEDNUM - n` of a DER certificate's subject.
pub fn certissuednum(der: &[u8]) -> u32 {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    let n = cert
        .subject()
        .iter_organizational_unit()
        .filter_map(|ou| ou.as_str().ok())
        .find_map(|ou| ou.strip_prefix("CERTISSUEDNUM - "))
        .expect("CERTISSUEDNUM OU")
        .parse()
        .unwrap();
    n
}

/// A contract and an account with [`PASSWORD`], the common start of many tests.
pub fn with_account(daemon: &TestDaemon, id: &str, contract: &str) {
    daemon.dir().add_contract(contract);
    daemon.dir().add_account(id, contract, "user");
}

/// Enrolls `id` with a new P-256 key; returns the key and the PEM chain (leaf, issuing CA).
pub async fn enroll_new(daemon: &TestDaemon, id: &str) -> (KeyAndCsr, Vec<u8>) {
    let k = p256();
    let answer = daemon.client().enroll_pem(id, PASSWORD, &k.csr_der).await;
    let chain = answer.pem_chain();
    let pem: String = chain.iter().map(|c| cert_pem(c)).collect();
    (k, pem.into_bytes())
}

/// The leaf (first certificate) of a PEM chain, DER.
pub fn leaf_der(chain_pem: &[u8]) -> Vec<u8> {
    CertificateDer::pem_slice_iter(chain_pem)
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// The subject key identifier of the certificate `der`, hex, if it has one.
pub fn subject_key_id(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(hex::encode(id.0))
            }
            _ => None,
        })
}

/// The subject key identifier of the first certificate in the PEM file `path`, hex.
pub fn pem_subject_key_id(path: &Path) -> String {
    let pem = std::fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    subject_key_id(&pem.contents).unwrap()
}

/// The authority key identifier of the certificate `der`, hex.
pub fn authority_key_id(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| hex::encode(id.0))
            }
            _ => None,
        })
        .unwrap()
}
