//! Issue 10, items 4, 6 and 7, against the real binary: backup files cannot be captured or
//! redirected in a shared directory; backups are signed by the CA and a tampered or foreign
//! one restores nothing; the data and CA directories are private to estca's user.

mod common;

use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::{Options, TestDaemon, TestDir};

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
    daemon.stop();
}
