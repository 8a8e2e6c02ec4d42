//! The daemon under test: a bench directory (configuration, CA, data), starting `estca serve`
//! on it and waiting for it to be ready (systemd's readiness protocol), killing it, and
//! reading its CPU time, memory and disk use from `/proc` and the file system.

use std::fs::File;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// The store backend of a bench directory (`store.backend` of its configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// sled, the default.
    Sled,
    /// fjall.
    Fjall,
}

impl Backend {
    /// The name `store.backend` takes.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Fjall => "fjall",
        }
    }
}

/// A directory holding `estca.toml`, `certs/`, `data/` and `daemon.log`.
#[derive(Debug)]
pub struct BenchDir {
    /// The directory.
    pub root: PathBuf,
    /// Removed on drop (a scratch directory the tool created).
    remove: bool,
}

impl BenchDir {
    /// Uses `dir` (created if needed), or a new scratch directory removed afterwards, with
    /// the store in `backend` (default sled). A directory whose configuration names another
    /// backend is refused: its store is in that one.
    pub fn new(dir: Option<&Path>, backend: Option<Backend>) -> Result<Self> {
        let (root, remove) = match dir {
            Some(d) => (d.to_path_buf(), false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let d = std::env::temp_dir()
                    .join(format!("estca-bench-{}-{nanos:08x}", std::process::id()));
                (d, true)
            }
        };
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let dir = Self { root, remove };
        dir.write_config(backend.unwrap_or(Backend::Sled))?;
        if let Some(wanted) = backend {
            let configured = dir.configured_backend()?;
            if configured != wanted.name() {
                bail!(
                    "{} names store.backend \"{configured}\", not \"{}\": use another directory for {}",
                    dir.config().display(),
                    wanted.name(),
                    wanted.name()
                );
            }
        }
        Ok(dir)
    }

    /// `store.backend` of the directory's configuration (`sled` when it names none).
    fn configured_backend(&self) -> Result<String> {
        let path = self.config();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
        Ok(table
            .get("store")
            .and_then(|s| s.get("backend"))
            .and_then(|b| b.as_str())
            .unwrap_or("sled")
            .to_owned())
    }

    /// The daemon's configuration file.
    pub fn config(&self) -> PathBuf {
        self.root.join("estca.toml")
    }

    /// The CA directory.
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("certs")
    }

    /// The data directory (store and admin socket).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Writes `estca.toml` unless it exists: ephemeral loopback ports, everything inside
    /// the directory, the store in `backend`, all else the embedded defaults (Argon2id
    /// parameters, `info` logs, cache sizes).
    fn write_config(&self, backend: Backend) -> Result<()> {
        let path = self.config();
        if path.exists() {
            return Ok(());
        }
        let quote = |p: PathBuf| -> Result<String> {
            let s = p
                .to_str()
                .ok_or_else(|| anyhow!("{} is not UTF-8", p.display()))?;
            Ok(serde_json::to_string(s)?)
        };
        let text = format!(
            "# written by estca-bench: ephemeral loopback ports, defaults otherwise; the load\n\
             # generator is one source, so its per-source caps are the whole budgets\n\
             [server]\nlisten = \"127.0.0.1:0\"\nmax_connections = 4096\n\
             max_connections_per_source = 4096\n\n\
             [store]\npath = {}\nbackend = \"{}\"\n\n[admin]\nsocket = {}\n\n[ca]\ndir = {}\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n[revocation]\nlisten = \"127.0.0.1:0\"\n\
             max_connections = 4096\nmax_connections_per_source = 4096\n",
            quote(self.data_dir())?,
            backend.name(),
            quote(self.data_dir().join("admin.sock"))?,
            quote(self.ca_dir())?,
        );
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Where a daemon listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The HTTPS (EST) address.
    pub https: SocketAddr,
    /// The admin socket.
    pub admin_socket: PathBuf,
    /// The plain-HTTP revocation listener, if any.
    pub revocation_http: Option<SocketAddr>,
    /// The daemon's process ID (for its CPU time), if known.
    pub pid: Option<u32>,
}

/// A daemon this tool started; stopped (SIGTERM) on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// Its addresses.
    pub endpoints: Endpoints,
    /// From spawning to its `READY=1`.
    pub startup: Duration,
    /// Where it sends its notifications (kept while it runs: it notifies `STOPPING=1`).
    _notifications: Notifications,
}

impl Daemon {
    /// Starts `estca serve --config DIR/estca.toml` with its log in `DIR/daemon.log` (the
    /// previous daemon's log, if any, moved to `DIR/daemon.log.1`), and waits (up to
    /// `timeout`) for it to be ready: as systemd does for `Type=notify`, through a
    /// `NOTIFY_SOCKET` of this tool's, whose `READY=1` comes with a status line naming the
    /// addresses bound. So the log may have any level and format (`ESTCA_LOG__LEVEL=warn`,
    /// `ESTCA_LOG__FORMAT=json`, to measure what logging costs).
    pub fn start(estca: &Path, dir: &BenchDir, timeout: Duration) -> Result<Self> {
        let log_path = dir.root.join("daemon.log");
        if log_path.exists() {
            let previous = dir.root.join("daemon.log.1");
            std::fs::rename(&log_path, &previous)
                .with_context(|| format!("cannot move {} aside", log_path.display()))?;
        }
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let notifications = Notifications::bind()?;
        let started = Instant::now();
        let mut child = Command::new(estca)
            .arg("serve")
            .arg("--config")
            .arg(dir.config())
            .current_dir(&dir.root)
            .env("NOTIFY_SOCKET", &notifications.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {}", estca.display()))?;
        let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
        loop {
            if let Some(status) = notifications.ready()? {
                return Ok(Self {
                    endpoints: parse_ready(&status, child.id())?,
                    child,
                    startup: started.elapsed(),
                    _notifications: notifications,
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "estca exited ({status}) before it was ready; its log ({}):\n{}",
                    log_path.display(),
                    log_text()
                );
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "estca was not ready after {timeout:?}; its log ({}):\n{}",
                    log_path.display(),
                    log_text()
                );
            }
        }
    }

    /// The daemon's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the daemon to exit after [`sigkill`] (it must not be running on after it:
    /// the next daemon on the directory needs the store's lock).
    pub fn reap(mut self) -> Result<()> {
        let status = self.child.wait().context("waiting for the killed daemon")?;
        if status.code().is_some() {
            bail!("the daemon exited ({status}) instead of being killed");
        }
        Ok(())
    }
}

/// Sends SIGKILL to process `pid` (the daemon, mid-load: a crash without any shutdown).
pub fn sigkill(pid: u32) -> Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| anyhow!("no such process ID: {pid}"))?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)
        .with_context(|| format!("cannot kill process {}", pid.as_raw_nonzero()))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Already exited (and reaped): nothing to stop, and its PID may be another's now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A datagram socket for a daemon's systemd notifications (sd_notify(3)), in the temporary
/// directory (a bench directory's path may be longer than a socket's 108 bytes); removed on
/// drop.
#[derive(Debug)]
struct Notifications {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Notifications {
    fn bind() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "estca-bench-notify-{}-{nanos}.sock",
            std::process::id()
        ));
        let socket = UnixDatagram::bind(&path)
            .with_context(|| format!("cannot bind a notification socket at {}", path.display()))?;
        let notifications = Self { socket, path };
        notifications
            .socket
            .set_read_timeout(Some(Duration::from_millis(20)))?;
        Ok(notifications)
    }

    /// Waits a moment (20 ms) for a notification; the `STATUS=` of one that says `READY=1`.
    fn ready(&self) -> Result<Option<String>> {
        let mut buf = [0u8; 4096];
        let n = match self.socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(None)
            }
            Err(e) => return Err(e).context("reading the daemon's notifications"),
        };
        let message = String::from_utf8_lossy(&buf[..n]);
        if !message.lines().any(|l| l == "READY=1") {
            return Ok(None);
        }
        message
            .lines()
            .find_map(|l| l.strip_prefix("STATUS="))
            .map(|status| Some(status.to_owned()))
            .ok_or_else(|| anyhow!("READY=1 without a status line: {message:?}"))
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads `https=… admin_socket=… metrics=… revocation_http=…` from a ready daemon's status
/// line.
fn parse_ready(line: &str, pid: u32) -> Result<Endpoints> {
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|t| t.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .map(|v| v.trim_matches('"').to_owned())
    };
    let https = field("https")
        .ok_or_else(|| anyhow!("no https= in the status line: {line}"))?
        .parse()
        .with_context(|| format!("bad https= in the status line: {line}"))?;
    let admin_socket = field("admin_socket")
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("no admin_socket= in the status line: {line}"))?;
    let revocation_http = field("revocation_http").and_then(|v| v.parse().ok());
    Ok(Endpoints {
        https,
        admin_socket,
        revocation_http,
        pid: Some(pid),
    })
}

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// CPU time (user + system) of process `pid` so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    stat_times(pid).map(|(own, _)| own)
}

/// CPU time of process `pid` and of its children, living (read from `/proc`) and reaped
/// (its `cutime` and `cstime`), in seconds: a database server's postmaster and its backends.
pub fn cpu_seconds_with_children(pid: u32) -> Result<f64> {
    let (own, reaped) = stat_times(pid)?;
    let mut total = own + reaped;
    let entries = std::fs::read_dir("/proc").context("cannot read /proc")?;
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process that ended meanwhile is skipped: its time is then in `reaped`.
        if parent_of(child) == Some(pid) {
            if let Ok((t, _)) = stat_times(child) {
                total += t;
            }
        }
    }
    Ok(total)
}

/// The parent process ID of `pid`, if it still runs.
fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid).ok()?.get(1)?.parse().ok()
}

/// `/proc/PID/stat` from field 3 (state) on.
fn stat_fields(pid: u32) -> Result<Vec<String>> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("{path}: unexpected format"))?;
    Ok(after.split_whitespace().map(str::to_owned).collect())
}

/// (utime + stime, cutime + cstime) of `pid`, in seconds.
fn stat_times(pid: u32) -> Result<(f64, f64)> {
    let fields = stat_fields(pid)?;
    // Fields 14-17 (utime, stime, cutime, cstime) of proc(5); `fields` starts at field 3.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("/proc/{pid}/stat: no field {}", i + 3))
    };
    let hz = clock_ticks();
    Ok((
        (ticks(11)? + ticks(12)?) / hz,
        (ticks(13)? + ticks(14)?) / hz,
    ))
}

/// CPU time of this process so far, in seconds.
pub fn own_cpu_seconds() -> Result<f64> {
    cpu_seconds(std::process::id())
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let get = |key: &str| {
        status.lines().find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    Some((get("VmRSS:")?, get("VmHWM:")?))
}

/// The load averages (1, 5, 15 minutes) from `/proc/loadavg`.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// What the regular files under a directory take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUse {
    /// Bytes allocated on disk (`st_blocks` x 512, as `du --block-size=1` counts): what the
    /// store costs. Sparse and preallocated files count what they hold, not their length.
    pub allocated: u64,
    /// Sum of the files' lengths (`st_size`), which a preallocated journal inflates.
    pub apparent: u64,
}

/// The disk use of the regular files under `path` (recursively; symbolic links not
/// followed; unreadable entries count nothing).
pub fn disk_use(path: &Path) -> DiskUse {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(path) else {
        return DiskUse::default();
    };
    let mut total = DiskUse::default();
    for e in entries.filter_map(|e| e.ok()) {
        match e.file_type() {
            Ok(t) if t.is_dir() => {
                let sub = disk_use(&e.path());
                total.allocated += sub.allocated;
                total.apparent += sub.apparent;
            }
            Ok(t) if t.is_file() => {
                if let Ok(m) = e.metadata() {
                    total.allocated += m.blocks() * 512;
                    total.apparent += m.len();
                }
            }
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_is_parsed() {
        let line = "ready: https=127.0.0.1:4433 admin_socket=/tmp/x/admin.sock metrics=127.0.0.1:9 revocation_http=127.0.0.1:8081";
        let e = parse_ready(line, 7).unwrap();
        assert_eq!(e.https.port(), 4433);
        assert_eq!(e.admin_socket, PathBuf::from("/tmp/x/admin.sock"));
        assert_eq!(e.revocation_http.map(|a| a.port()), Some(8081));
        let off = parse_ready(
            "ready: https=127.0.0.1:1 admin_socket=/s metrics=off revocation_http=off",
            7,
        )
        .unwrap();
        assert!(off.revocation_http.is_none());
    }

    #[test]
    fn disk_use_counts_allocated_blocks_not_lengths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        // A sparse file 64 MiB long holding one 4 KiB block, as a preallocated journal.
        let sparse = std::fs::File::create(dir.path().join("sub/journal")).unwrap();
        sparse.set_len(64 << 20).unwrap();
        {
            use std::os::unix::fs::FileExt;
            sparse.write_all_at(&[7u8; 4096], 0).unwrap();
            sparse.sync_all().unwrap();
        }
        std::fs::write(dir.path().join("rows"), vec![1u8; 10_000]).unwrap();
        let used = disk_use(dir.path());
        assert_eq!(used.apparent, (64 << 20) + 10_000);
        assert!(
            used.allocated >= 4096 + 10_000 && used.allocated < 1 << 20,
            "allocated {} bytes",
            used.allocated
        );
    }

    #[test]
    fn a_bench_directory_names_its_backend_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("b");
        let b = BenchDir::new(Some(&root), Some(Backend::Fjall)).unwrap();
        assert_eq!(b.configured_backend().unwrap(), "fjall");
        // Reused without naming one: the configuration stays as it is.
        let again = BenchDir::new(Some(&root), None).unwrap();
        assert_eq!(again.configured_backend().unwrap(), "fjall");
        let err = BenchDir::new(Some(&root), Some(Backend::Sled)).unwrap_err();
        assert!(err.to_string().contains("store.backend"), "{err}");
        let sled = BenchDir::new(Some(&dir.path().join("s")), None).unwrap();
        assert_eq!(sled.configured_backend().unwrap(), "sled");
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(own_cpu_seconds().unwrap() >= 0.0);
        assert!(memory_kib(std::process::id()).is_some());
    }
}
