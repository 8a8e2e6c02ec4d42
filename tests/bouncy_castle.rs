//! Bouncy Castle's EST client (`org.bouncycastle.est`, Debian's libbcpkix-java), stock,
//! against the real daemon: `tests/bouncy_castle/EstEnroll.java`, compiled and run with the
//! machine's JDK, fetches cacerts and enrolls through BC's own `HttpAuth`, which sends the
//! request without credentials first and must then answer the 401 challenge. It enrolls
//! with the right password and is refused with 401 for a wrong one.
//!
//! Skipped with a notice where `javac` or the Bouncy Castle jars are missing, unless
//! `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Debian's Bouncy Castle jars: provider, PKIX (the EST client), utilities.
const JARS: [&str; 3] = [
    "/usr/share/java/bcprov.jar",
    "/usr/share/java/bcpkix.jar",
    "/usr/share/java/bcutil.jar",
];

/// The compiled program's directory and the class path, or `None` after a notice.
fn compiled(out: &Path) -> Option<String> {
    let missing: Vec<&str> = JARS
        .iter()
        .copied()
        .filter(|jar| !Path::new(jar).exists())
        .collect();
    let why = if !have("javac") || !have("java") {
        Some(
            "no JDK (javac, java) is installed (Debian: apt-get install default-jdk-headless)"
                .to_owned(),
        )
    } else if !missing.is_empty() {
        Some(format!(
            "{} missing (Debian: apt-get install libbcprov-java libbcpkix-java libbcutil-java)",
            missing.join(", ")
        ))
    } else {
        None
    };
    if let Some(why) = why {
        skip("the Bouncy Castle interoperability test", &why);
        return None;
    }
    let class_path = JARS.join(":");
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bouncy_castle/EstEnroll.java");
    let built = Command::new("javac")
        .args(["-d"])
        .arg(out)
        .args(["-cp", &class_path])
        .arg(&source)
        .output()
        .expect("javac runs");
    assert!(
        built.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(format!("{}:{class_path}", out.display()))
}

/// Runs the program against `daemon` as `id` with `password`; returns what it printed.
fn run(daemon: &TestDaemon, class_path: &str, root: &Path, id: &str, password: &str) -> String {
    let output = Command::new("java")
        .args(["-cp", class_path, "EstEnroll"])
        .arg(format!("localhost:{}", daemon.port))
        .arg(root)
        .args([id, password])
        .output()
        .expect("java runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    printed
}

#[test]
fn bouncy_castle_http_auth_enrolls_and_is_refused_401_for_a_wrong_password() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(class_path) = compiled(scratch.path()) else {
        return;
    };
    let daemon = TestDaemon::start(Options::default());
    with_account(&daemon, "bc1", "5110");
    daemon.dir().add_account("bc2", "5110", "user");
    let root = scratch.path().join("root-ca.pem");
    std::fs::write(&root, daemon.dir().root_ca_pem()).unwrap();

    let printed = run(&daemon, &class_path, &root, "bc1", PASSWORD);
    assert!(printed.contains("CACERTS 2"), "{printed}");
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("ENROLLED") && l.contains("CN=bc1 5110")),
        "{printed}"
    );
    assert_eq!(daemon.dir().issued_serials("bc1").len(), 1);

    let printed = run(&daemon, &class_path, &root, "bc2", "not the password");
    assert!(
        printed.lines().any(|l| l.starts_with("REFUSED 401")),
        "{printed}"
    );
    assert!(daemon.dir().issued_serials("bc2").is_empty());
}
