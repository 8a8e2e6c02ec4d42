//! A real PostgreSQL server for tests: Debian's `postgresql` binaries, a cluster made with
//! `initdb` in a temporary directory, on a free loopback port, its Unix socket inside that
//! directory, `fsync` and `synchronous_commit` on.
//!
//! Used by the library's unit tests (the conformance suite includes this file) and by the
//! integration tests (`tests/common/`). Each test takes a database of its own
//! ([`TestPostgres::database`]) on one server per test process ([`TestPostgres::shared`]),
//! or starts a server of its own ([`TestPostgres::start`]) when it must stop and restart it.
//!
//! The server is stopped and its directory removed when the test process ends, however it
//! ends (a panic, an abort, SIGKILL): it runs under a small watcher shell that reads the
//! test process's end of a pipe and, at end of file, stops the server (immediate shutdown)
//! and removes the directory. Dropping a [`TestPostgres`] does the same at once.
//!
//! `initdb` refuses to run as root: as root, the cluster belongs to the `postgres` user
//! (created by Debian's package; else `nobody`), which the server runs as through `setpriv`.
//!
//! Where the binaries are missing, [`TestPostgres::shared`] says what is missing and returns
//! `None` (the test is skipped), unless `REQUIRE_ALL_TESTS` is set (as `.ci/run` does), in
//! which case it panics.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The role the tests connect as (the cluster's superuser).
pub const PG_USER: &str = "estca";

/// Its password (connections over TCP need it: `scram-sha-256`).
pub const PG_PASSWORD: &str = "test-password-not-secret";

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the server (its command line is the arguments after `$1`, the directory), takes
/// `stop` and `start` lines on its standard input (a test that stops and restarts the
/// database), and, at end of file (the test process closed its end of the pipe, however it
/// ended), stops the server at once (SIGQUIT, no shutdown checkpoint: the cluster is thrown
/// away) and removes the directory.
const WATCHER: &str = r#"dir="$1"; shift
"$@" >>"$dir/server.log" 2>&1 </dev/null &
pid=$!
while read -r command; do
  case "$command" in
    stop) kill -INT "$pid" 2>/dev/null; wait "$pid";;
    start) "$@" >>"$dir/server.log" 2>&1 </dev/null & pid=$!;;
  esac
done
kill -QUIT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir""#;

/// A running test server; stopped, and its directory removed, when dropped or when the test
/// process ends.
pub struct TestPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// The watcher shell; its standard input is `stdin`.
    watcher: Mutex<Option<(Child, ChildStdin)>>,
    /// Databases handed out so far (their names are numbered).
    databases: AtomicU32,
}

/// Held while a database is looked up and created.
static CREATING: Mutex<()> = Mutex::new(());

/// Why no server could be had.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl TestPostgres {
    /// The server shared by every test of this process, started on first use; `None` (with a
    /// message on standard error saying what is missing) where PostgreSQL is not installed and
    /// `REQUIRE_ALL_TESTS` is unset.
    pub fn shared() -> Option<&'static TestPostgres> {
        static SHARED: OnceLock<Option<TestPostgres>> = OnceLock::new();
        SHARED
            .get_or_init(|| Self::or_skip(TestPostgres::start()))
            .as_ref()
    }

    /// `started`, or `None` after a notice that the PostgreSQL tests are skipped and why;
    /// a failure when `REQUIRE_ALL_TESTS` is set (CI never skips).
    pub fn or_skip(started: Result<TestPostgres, Unavailable>) -> Option<TestPostgres> {
        match started {
            Ok(server) => Some(server),
            Err(Unavailable(why)) => {
                if std::env::var_os("REQUIRE_ALL_TESTS").is_some() {
                    panic!("REQUIRE_ALL_TESTS is set and no PostgreSQL test server: {why}");
                }
                // Straight to standard error, past the test harness's capture of
                // `eprintln!`, so that the skip is seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTICE: skipping the PostgreSQL tests: {why} (install Debian's `postgresql` package)"
                );
                None
            }
        }
    }

    /// Starts a server of the caller's own. Fails when the binaries are missing (saying
    /// which) or the server does not start (with its log); panics on nothing.
    pub fn start() -> Result<TestPostgres, Unavailable> {
        Self::start_with(false, true)
    }

    /// As [`TestPostgres::start`], with `fsync` left to the server's configuration files (on
    /// by default) instead of set on its command line, which would override them: a test can
    /// then change it with `ALTER SYSTEM` and a reload ([`TestPostgres::reload`]).
    pub fn start_with_fsync_from_config() -> Result<TestPostgres, Unavailable> {
        Self::start_with(false, false)
    }

    /// As [`TestPostgres::start`], the server also speaking TLS with a certificate for
    /// `127.0.0.1` issued by a CA of its own, whose certificate is `ca.pem` in
    /// [`TestPostgres::directory`].
    pub fn start_tls() -> Result<TestPostgres, Unavailable> {
        Self::start_with(true, true)
    }

    fn start_with(tls: bool, fsync_on_command_line: bool) -> Result<TestPostgres, Unavailable> {
        let bin = bin_dir()?;
        let owner = owner()?;
        // Outside the source tree (the disk of /work is shared): the system's temp directory.
        let dir = tempfile::Builder::new()
            .prefix("estca-pg-")
            .tempdir_in(std::env::temp_dir())
            .map_err(|e| Unavailable(format!("cannot create a temporary directory: {e}")))?
            .keep();
        let server = Self::start_in(bin, dir.clone(), owner.as_ref(), tls, fsync_on_command_line);
        if server.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        server
    }

    fn start_in(
        bin: PathBuf,
        dir: PathBuf,
        owner: Option<&Owner>,
        tls: bool,
        fsync_on_command_line: bool,
    ) -> Result<Self, Unavailable> {
        let fail = |what: &str, e: &dyn std::fmt::Display| Unavailable(format!("{what}: {e}"));
        let data = dir.join("data");
        let socket_dir = dir.join("socket");
        std::fs::create_dir(&socket_dir).map_err(|e| fail("cannot create the socket dir", &e))?;
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, PG_PASSWORD).map_err(|e| fail("cannot write the pwfile", &e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail("cannot restrict the temporary directory", &e))?;
        let mut owned = vec![dir.clone(), socket_dir.clone(), pwfile.clone()];
        let mut tls_args = Vec::new();
        if tls {
            let (certificate, key) = write_tls_files(&dir)?;
            tls_args = vec![
                "-c".to_owned(),
                "ssl=on".to_owned(),
                "-c".to_owned(),
                format!("ssl_cert_file={}", certificate.display()),
                "-c".to_owned(),
                format!("ssl_key_file={}", key.display()),
            ];
            owned.extend([certificate, key]);
        }
        if let Some(owner) = owner {
            for path in &owned {
                std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
                    .map_err(|e| fail(&format!("cannot give {} away", path.display()), &e))?;
            }
        }
        let initdb = as_owner(owner, &bin.join("initdb"))
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", PG_USER, "--pwfile"])
            .arg(&pwfile)
            .args([
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .map_err(|e| fail("cannot run initdb", &e))?;
        if !initdb.status.success() {
            return Err(Unavailable(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&initdb.stdout),
                String::from_utf8_lossy(&initdb.stderr)
            )));
        }
        let port = free_port().map_err(|e| fail("no free loopback port", &e))?;
        let mut server = as_owner(owner, &bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-c")
            .arg(format!("unix_socket_directories={}", socket_dir.display()))
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "synchronous_commit=on",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=32MB",
            ])
            .args(&tls_args);
        if fsync_on_command_line {
            server.args(["-c", "fsync=on"]);
        }
        let mut watcher = Command::new("sh")
            .arg("-c")
            .arg(WATCHER)
            .arg("estca-test-postgres")
            .arg(&dir)
            .arg(server.get_program())
            .args(server.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail("cannot start the server", &e))?;
        let stdin = watcher
            .stdin
            .take()
            .ok_or_else(|| Unavailable("no pipe to the watcher".into()))?;
        let server = TestPostgres {
            bin,
            dir,
            port,
            watcher: Mutex::new(Some((watcher, stdin))),
            databases: AtomicU32::new(0),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits until the server accepts connections, or fails with its log.
    fn wait_ready(&self) -> Result<(), Unavailable> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.answers() {
                return Ok(());
            }
            if Instant::now() > deadline || self.watcher_exited() {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(Unavailable(format!(
                    "the PostgreSQL test server did not start on port {}: {log}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn watcher_exited(&self) -> bool {
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        match watcher.as_mut() {
            Some((child, _)) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name`, without the password.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database of the caller's own; returns its name.
    pub fn database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("estca_test_{n}");
        self.psql(&format!("CREATE DATABASE {name}"));
        name
    }

    /// Creates database `name` unless it exists.
    pub fn create_database(&self, name: &str) {
        let _guard = CREATING.lock().unwrap_or_else(|e| e.into_inner());
        let found = self.psql(&format!(
            "SELECT 1 FROM pg_database WHERE datname = '{name}'"
        ));
        if found.trim() != "1" {
            self.psql(&format!("CREATE DATABASE {name}"));
        }
    }

    /// Runs one SQL command as the superuser over the Unix socket and returns what it printed
    /// (unaligned, tuples only); panics if it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|error| panic!("psql -c {sql:?}: {error}"))
    }

    /// As [`TestPostgres::psql`], the server's error returned instead of a panic.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.try_psql_in("postgres", sql)
    }

    /// As [`TestPostgres::psql`], in database `database` (e.g. one of
    /// [`TestPostgres::database`]'s, to change what a daemon sees).
    pub fn psql_in(&self, database: &str, sql: &str) -> String {
        self.try_psql_in(database, sql)
            .unwrap_or_else(|error| panic!("psql -d {database} -c {sql:?}: {error}"))
    }

    fn try_psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.join("socket"))
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                PG_USER,
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Has the server reload its configuration files (after `ALTER SYSTEM`) and waits until
    /// a new session sees `setting` = `value`.
    pub fn reload(&self, setting: &str, value: &str) {
        self.psql("SELECT pg_reload_conf()");
        let deadline = Instant::now() + START_TIMEOUT;
        while self.psql(&format!("SHOW {setting}")).trim() != value {
            assert!(
                Instant::now() < deadline,
                "{setting} is not {value} after a reload"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The temporary directory the cluster, its socket and its log are in.
    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// Closes the test's end of the watcher's pipe without waiting, as the end of the test
    /// process does: the watcher stops the server and removes the directory.
    pub fn close_pipe(&self) {
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((child, stdin)) = watcher.take() {
            drop(stdin);
            // Reaped by `stop` no more: the watcher ends on its own.
            std::thread::spawn(move || {
                let mut child = child;
                let _ = child.wait();
            });
        }
    }

    /// Stops the server (fast shutdown), keeping its data, and waits until it no longer
    /// answers: the database is lost, as far as its clients can tell.
    pub fn stop_server(&self) {
        self.tell("stop");
        let deadline = Instant::now() + START_TIMEOUT;
        while self.answers() {
            assert!(Instant::now() < deadline, "the test server does not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server stopped by [`TestPostgres::stop_server`] again, on the same port and
    /// data, and waits until it accepts connections.
    pub fn start_server(&self) {
        self.tell("start");
        if let Err(Unavailable(why)) = self.wait_ready() {
            panic!("{why}");
        }
    }

    /// Sends a line to the watcher.
    fn tell(&self, line: &str) {
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        let (_, stdin) = watcher.as_mut().expect("the test server is running");
        writeln!(stdin, "{line}").expect("write to the watcher");
        stdin.flush().expect("write to the watcher");
    }

    /// Whether the server accepts connections.
    fn answers(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server and removes its directory (what dropping it does).
    pub fn stop(&self) {
        let taken = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Writes the password to a file of mode 0600 in `dir` and returns its path (what
    /// `store.postgres.password_file` names).
    pub fn password_file(dir: &Path) -> PathBuf {
        let path = dir.join("pg-password");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .expect("create the password file");
        writeln!(file, "{PG_PASSWORD}").expect("write the password file");
        path
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// Who owns the cluster when the tests run as root (initdb refuses root).
struct Owner {
    name: String,
    uid: u32,
    gid: u32,
}

fn owner() -> Result<Option<Owner>, Unavailable> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        let id = |flag: &str| {
            Command::new("id")
                .args([flag, name])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse::<u32>().ok())
        };
        if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
            return Ok(Some(Owner {
                name: name.to_owned(),
                uid,
                gid,
            }));
        }
    }
    Err(Unavailable(
        "running as root, and neither a `postgres` nor a `nobody` user exists to own the test cluster"
            .into(),
    ))
}

/// `program`, run as `owner` when there is one (through `setpriv`).
fn as_owner(owner: Option<&Owner>, program: &Path) -> Command {
    match owner {
        Some(owner) => {
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={}", owner.uid))
                .arg(format!("--regid={}", owner.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(program)
                .env("HOME", "/")
                .env("USER", &owner.name);
            command
        }
        None => Command::new(program),
    }
}

/// The directory of `initdb`, `postgres`, `pg_isready` and `psql`: `$ESTCA_TEST_PG_BIN`, else
/// the newest `/usr/lib/postgresql/*/bin` (Debian), else the directory of an `initdb` on the
/// `PATH`.
fn bin_dir() -> Result<PathBuf, Unavailable> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "pg_isready", "psql"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("ESTCA_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if complete(&dir) {
            Ok(dir)
        } else {
            Err(Unavailable(format!(
                "ESTCA_TEST_PG_BIN={} lacks one of initdb, postgres, pg_isready, psql",
                dir.display()
            )))
        };
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Ok(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|dir| std::fs::canonicalize(dir.join("initdb")).ok())
        .filter_map(|initdb| initdb.parent().map(Path::to_owned))
        .find(|dir| complete(dir));
    on_path.ok_or_else(|| {
        Unavailable(
            "no PostgreSQL server binaries (initdb, postgres, pg_isready, psql) under /usr/lib/postgresql/*/bin or on the PATH"
                .into(),
        )
    })
}

/// Writes a CA certificate (`ca.pem`) and a server certificate for `127.0.0.1` and
/// `localhost` it issued (`server.crt`, key `server.key`, mode 0600) into `dir`; returns the
/// certificate's and the key's paths.
fn write_tls_files(dir: &Path) -> Result<(PathBuf, PathBuf), Unavailable> {
    let fail =
        |e: &dyn std::fmt::Display| Unavailable(format!("cannot make the test TLS files: {e}"));
    let ca_key = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| fail(&e))?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "estca test database CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| fail(&e))?;
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let key = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
    let server =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(|e| fail(&e))?;
    let certificate = server.signed_by(&key, &issuer).map_err(|e| fail(&e))?;
    let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).map_err(|e| fail(&e))?;
    std::fs::write(&cert_path, certificate.pem()).map_err(|e| fail(&e))?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(|e| fail(&e))?;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(&e))?;
    Ok((cert_path, key_path))
}

/// A loopback port nothing listens on now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
