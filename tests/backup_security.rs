//! Issue 10, items 4, 6 and 7, against the real binary: backup files cannot be captured or
//! redirected in a shared directory; backups are signed by the CA and a tampered or foreign
//! one restores nothing; the data and CA directories are private to estca's user.

mod common;

use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::{Options, TestDaemon, TestDir, STORE_BACKEND_VAR};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn quick() -> Options {
    Options {
        argon2_memory_kib: Some(1024),
        argon2_iterations: Some(1),
        ..Options::default()
    }
}

/// A daemon with one contract and a master ID (whose password hash a backup holds).
fn daemon_with_a_master() -> TestDaemon {
    let daemon = TestDaemon::start(quick());
    daemon.dir().add_contract("5110");
    daemon.dir().add_account("boss", "5110", "master");
    daemon
}

/// Item 4: in a directory others may write, a file planted at the name the old code used for
/// its partial file (and held open by its "owner") receives nothing, a symlink planted there
/// redirects nothing, a symlink at the target is refused, and a world-writable directory that
/// is not sticky is refused outright; the sticky one (like /tmp) works.
#[test]
fn backup_files_cannot_be_captured_or_redirected() {
    let daemon = daemon_with_a_master();
    let dir = daemon.dir();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    set_mode(&shared, 0o1777);
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();

    // A planted partial file, writable by all and held open by the planter.
    let planted = shared.join(".estca.backup.partial");
    std::fs::write(&planted, "planted\n").unwrap();
    set_mode(&planted, 0o666);
    let mut held = std::fs::File::open(&planted).unwrap();
    // A planted symlink at the partial name of another backup.
    symlink(&victim, shared.join(".other.backup.partial")).unwrap();

    let target = shared.join("estca.backup");
    dir.cli_ok(&["backup", target.to_str().unwrap()], None);
    let other = shared.join("other.backup");
    dir.cli_ok(&["backup", other.to_str().unwrap()], None);

    let mut seen = String::new();
    held.read_to_string(&mut seen).unwrap();
    assert_eq!(seen, "planted\n", "the planted file received the backup");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for file in [&target, &other] {
        assert_eq!(mode(file), 0o600);
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains("\"boss\""),
            "the backup is where it was asked"
        );
    }

    // A symlink at the target itself: refused, the link's target untouched.
    let link = shared.join("link.backup");
    symlink(&victim, &link).unwrap();
    let (status, _, err) = dir.cli(&["backup", link.to_str().unwrap()], None);
    assert!(!status.success());
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");

    // World-writable, not sticky: refused before the daemon is asked, nothing written.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    set_mode(&open, 0o777);
    let (status, _, err) = dir.cli(&["backup", open.join("b").to_str().unwrap()], None);
    assert!(!status.success());
    assert!(err.contains("0777") && err.contains("chmod go-w"), "{err}");
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
    eprintln!(
        "item 4: 2 backups ({} bytes each, mode 0600) written into a 1777 directory holding a planted partial file (still {} bytes, 'planted') and a planted symlink (its target unchanged); refused: a symlink at the target, a 0777 directory (left empty)",
        std::fs::metadata(&target).unwrap().len(),
        seen.len()
    );
    daemon.stop();
}

/// Recomputes the trailer's SHA-256 after `edit` changed the lines above it, as an attacker
/// who can write the file would; `signed` false also turns the file into an unsigned version 1.
fn forge(text: &str, edit: impl Fn(&mut Vec<serde_json::Value>), signed: bool) -> String {
    use sha2::{Digest, Sha256};
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut trailer = lines.pop().unwrap();
    edit(&mut lines);
    if !signed {
        lines[0]["version"] = 1.into();
        trailer.as_object_mut().unwrap().remove("signature");
    }
    let body: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    trailer["sha256"] = hex::encode(Sha256::digest(body.as_bytes())).into();
    body + &trailer.to_string() + "\n"
}

/// The master's record gets the password hash of an ID whose password the attacker knows.
fn swap_boss_hash(lines: &mut Vec<serde_json::Value>) {
    let hash_of = |lines: &Vec<serde_json::Value>, id: &str| {
        lines
            .iter()
            .find(|l| l["type"] == "account" && l["record"]["id"] == id)
            .map(|l| l["record"]["password_hash"].clone())
            .unwrap()
    };
    let known = hash_of(lines, "mallory");
    assert_ne!(known, hash_of(lines, "boss"));
    for line in lines.iter_mut() {
        if line["type"] == "account" && line["record"]["id"] == "boss" {
            line["record"]["password_hash"] = known.clone();
        }
    }
}

/// A fresh directory sharing `from`'s CA (private, as estca requires), with no database.
fn same_ca_dir(from: &TestDir) -> TestDir {
    let to = TestDir::new(quick());
    std::fs::create_dir(to.ca_dir()).unwrap();
    set_mode(&to.ca_dir(), 0o700);
    for entry in std::fs::read_dir(from.ca_dir()).unwrap() {
        let entry = entry.unwrap();
        let target = to.ca_dir().join(entry.file_name());
        std::fs::copy(entry.path(), &target).unwrap();
        set_mode(&target, 0o600);
    }
    to
}

fn nothing_restored(dir: &TestDir) {
    let db = dir.path().join("data/db");
    assert!(!db.exists(), "{} was created", db.display());
}

/// Item 7: the review's attack — a master's password hash swapped for one the attacker knows,
/// checksum recomputed — is refused and restores nothing; so is the same file made into an
/// unsigned version 1 (unless the operator says `--allow-unsigned`), and a backup signed by
/// another CA. An untampered backup round-trips and says who signed it.
#[test]
fn only_backups_signed_by_this_ca_are_restored() {
    let daemon = daemon_with_a_master();
    daemon.dir().add_account("mallory", "5110", "user");
    let file = daemon.dir().path().join("estca.backup");
    let printed = daemon
        .dir()
        .cli_ok(&["backup", file.to_str().unwrap()], None);
    assert!(printed.contains("signed by"), "{printed}");
    // `-`: to standard output (for `| age -r …`), the summary on standard error.
    let (status, piped, err) = daemon.dir().cli(&["backup", "-"], None);
    assert!(
        status.success() && err.contains("backup written standard output"),
        "{err}"
    );
    let a = daemon.stop();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.lines().next().unwrap().contains("\"version\":2"));

    let restored = same_ca_dir(&a);
    let tampered = restored.path().join("tampered.backup");
    std::fs::write(&tampered, forge(&text, swap_boss_hash, true)).unwrap();
    let started = std::time::Instant::now();
    let (status, _, err) = restored.cli(&["restore", tampered.to_str().unwrap()], None);
    eprintln!(
        "item 7: backup of {} lines, {} bytes; the master's hash swapped and the SHA-256 recomputed: refused in {:.0?}: {}",
        text.lines().count(),
        text.len(),
        started.elapsed(),
        err.trim()
    );
    assert!(!status.success());
    assert!(
        err.contains("signature does not verify") && err.contains("nothing was restored"),
        "{err}"
    );
    nothing_restored(&restored);

    // The same attack on a file made to look like an old unsigned one.
    std::fs::write(&tampered, forge(&text, swap_boss_hash, false)).unwrap();
    let (status, _, err) = restored.cli(&["restore", tampered.to_str().unwrap()], None);
    assert!(!status.success());
    assert!(
        err.contains("unsigned version 1") && err.contains("--allow-unsigned"),
        "{err}"
    );
    nothing_restored(&restored);
    eprintln!("item 7: the same, made into an unsigned version 1: refused");

    // Another CA's directory: the genuine file is refused there.
    let other = TestDaemon::start(quick()).stop();
    let (status, _, err) = other.cli(&["restore", file.to_str().unwrap()], None);
    assert!(!status.success());
    assert!(
        err.contains("neither this CA's issuing CA") && err.contains("nothing was restored"),
        "{err}"
    );
    eprintln!(
        "item 7: the genuine backup into another CA's directory: {}",
        err.trim()
    );

    // The genuine file, with the CA that signed it: restored, and the daemon serves it.
    let started = std::time::Instant::now();
    let out = restored.cli_ok(&["restore", file.to_str().unwrap()], None);
    eprintln!(
        "item 7: the genuine backup restored in {:.0?}: {}",
        started.elapsed(),
        out.trim()
    );
    assert!(
        out.contains("2 accounts") && out.contains("signed by"),
        "{out}"
    );
    let daemon = TestDaemon::start_in(restored);
    assert_eq!(daemon.dir().account("boss")["role"], "master");
    daemon.stop();

    // From standard input (`age -d … | estca restore -`).
    let piped_into = same_ca_dir(&a);
    let out = piped_into.cli_ok(&["restore", "-"], Some(&piped));
    assert!(
        out.contains("2 accounts") && out.contains("signed by"),
        "{out}"
    );

    // A version 1 file the operator vouches for is still restorable, with a warning.
    let old = same_ca_dir(&a);
    let v1 = old.path().join("v1.backup");
    std::fs::write(&v1, forge(&text, |_| {}, false)).unwrap();
    let (status, out, err) = old.cli(&["restore", "--allow-unsigned", v1.to_str().unwrap()], None);
    assert!(status.success(), "{err}");
    assert!(
        err.contains("WARNING") && out.contains("2 accounts"),
        "{err}{out}"
    );
}

/// Every file and directory under `root` (but the admin socket and the README the test put
/// there): directories 0700, files 0600.
fn assert_private_tree(root: &Path) {
    for path in walk(root) {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let m = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            assert_eq!(m, 0o700, "{}", path.display());
        } else if meta.is_file() && !path.ends_with("README.md") {
            assert_eq!(m, 0o600, "{}", path.display());
        }
    }
}

/// `root` and everything under it.
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            for e in std::fs::read_dir(&path).unwrap() {
                pending.push(e.unwrap().path());
            }
        }
        all.push(path);
    }
    all
}

/// Item 6: started with umask 0022 (a typical login shell), the daemon still creates its
/// directories 0700 and its files 0600; a fresh clone's `certs/` (0755, holding only its
/// README) is tightened to 0700 rather than refused.
#[test]
fn files_the_daemon_creates_are_private_whatever_the_umask() {
    let dir = TestDir::new(quick());
    std::fs::create_dir(dir.ca_dir()).unwrap();
    std::fs::write(dir.ca_dir().join("README.md"), "# certs/\n").unwrap();
    set_mode(&dir.ca_dir(), 0o755);
    let mut command = std::process::Command::new("sh");
    common::without_estca_variables(&mut command)
        .arg("-c")
        .arg("umask 022 && exec \"$0\" serve --config \"$1\"")
        .arg(common::estca_bin())
        .arg(&dir.config)
        .current_dir(dir.path());
    let (mut child, _port, stderr) = common::spawn_and_wait(command)
        .unwrap_or_else(|f| panic!("estca serve under umask 022 did not start: {}", f.stderr));
    dir.add_contract("5110");
    dir.add_account("boss", "5110", "master");
    let backup = dir.path().join("estca.backup");
    dir.cli_ok(&["backup", backup.to_str().unwrap()], None);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = common::wait_timeout(&mut child, std::time::Duration::from_secs(20));
    let log = stderr.lock().unwrap().clone();
    assert!(log.contains("tightened"), "{log}");
    assert_private_tree(&dir.path().join("data"));
    assert_private_tree(&dir.ca_dir());
    assert_eq!(mode(&backup), 0o600);
    let count = |root: &Path| walk(root).len();
    eprintln!(
        "item 6: under umask 0022, {} entries under data/ and {} under certs/ are 0700/0600; certs/ (0755 with its README) tightened",
        count(&dir.path().join("data")),
        count(&dir.ca_dir())
    );
}

/// Item 6: a data directory holding a database that group or others may enter is refused at
/// start, with the path, its mode and the chmod that fixes it; so is a CA directory holding
/// keys, also by `estca init` and `estca restore`; once fixed, the daemon starts.
#[test]
fn open_data_and_ca_directories_are_refused_with_the_fix() {
    let dir = TestDaemon::start(quick()).stop();
    let data = dir.path().join("data");
    set_mode(&data, 0o755);
    // On PostgreSQL the data directory holds no database, so its mode is not a disclosure.
    let dir = if std::env::var(STORE_BACKEND_VAR).as_deref() == Ok("postgres") {
        TestDaemon::start_in(dir).stop()
    } else {
        data_directory_is_refused(dir, &data)
    };
    set_mode(&dir.ca_dir(), 0o750);
    let (dir, failure) = *TestDaemon::try_start_in(dir)
        .err()
        .expect("a 0750 CA directory holding keys was accepted");
    assert!(
        failure.stderr.contains("has mode 0750") && failure.stderr.contains("CA's files"),
        "{}",
        failure.stderr
    );
    assert_eq!(failure.status.and_then(|s| s.code()), Some(3), "exit code");
    let (status, _, err) = dir.cli(&["init"], None);
    assert!(!status.success() && err.contains("chmod 700"), "{err}");
    let (status, _, err) = dir.cli(&["restore", "/nonexistent"], None);
    assert!(!status.success() && err.contains("has mode 0750"), "{err}");
    set_mode(&dir.ca_dir(), 0o700);

    // Fixed: it starts again.
    TestDaemon::start_in(dir).stop();
}

/// An embedded database's directory (`data`) open to other users: the daemon refuses to start
/// and says how to fix it; fixed, the directory is returned.
fn data_directory_is_refused(dir: TestDir, data: &std::path::Path) -> TestDir {
    let (dir, failure) = *TestDaemon::try_start_in(dir)
        .err()
        .expect("a 0755 data directory holding a database was accepted");
    let expected = format!(
        "{} has mode 0755: users other than the one estca runs as can read the database",
        data.display()
    );
    assert!(failure.stderr.contains(&expected), "{}", failure.stderr);
    assert!(
        failure
            .stderr
            .contains(&format!("chmod 700 {}", data.display())),
        "{}",
        failure.stderr
    );
    eprintln!("item 6: {}", failure.stderr.trim());
    set_mode(data, 0o700);
    dir
}
