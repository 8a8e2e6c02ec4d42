//! The `est-ca` crate's EST client (the `est-client` command from `../shared/peers/`, built by
//! `tests/common/est_client.rs`) against the real daemon: cacerts, simpleenroll with HTTP Basic
//! credentials, simplereenroll with the issued certificate and its key, and the refusals (a
//! wrong password, enrolling while a certificate is active, renewing from a superseded
//! certificate).
//!
//! The client decodes base64 answers only when they are on one line, so the daemon runs with
//! `est.single_line_base64 = true`; the first test shows that without it the client fails on
//! estca's default RFC 2045 lines, which is why that setting exists.
//!
//! Skipped with a notice where the client's sources are missing or it cannot be built, unless
//! `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::path::{Path, PathBuf};

use common::est_client::{est_client, run_est_client};
use common::*;

/// The setting the client needs: base64 answers on one line.
const SINGLE_LINE: &str = "\n[est]\nsingle_line_base64 = true\n";

/// A daemon, its root CA as a file for `--cacert`, and a scratch directory.
struct Setup {
    daemon: TestDaemon,
    est_client: &'static Path,
    trust_anchor: PathBuf,
    scratch: tempfile::TempDir,
}

/// What one run of the client did: its exit status was success, and what it printed.
struct Run {
    ok: bool,
    printed: String,
}

impl Setup {
    fn new(extra_toml: &str) -> Option<Self> {
        let est_client = est_client()?;
        let daemon = TestDaemon::start(Options {
            extra_toml: extra_toml.into(),
            ..Options::default()
        });
        let scratch = tempfile::tempdir().unwrap();
        let trust_anchor = scratch.path().join("root-ca.pem");
        std::fs::write(&trust_anchor, daemon.dir().root_ca_pem()).unwrap();
        Some(Self {
            daemon,
            est_client,
            trust_anchor,
            scratch,
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    fn run(&self, command: &str, args: &[&str]) -> Run {
        let output = run_est_client(
            self.est_client,
            command,
            self.daemon.port,
            &self.trust_anchor,
            args,
        );
        Run {
            ok: output.status.success(),
            printed: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `est-client enroll` for `id` with a new key written to `NAME.key`, the certificate to
    /// `NAME.pem`.
    fn enroll(&self, name: &str, id: &str, password: &str) -> Run {
        let key = self.file(&format!("{name}.key"));
        let cert = self.file(&format!("{name}.pem"));
        self.run(
            "enroll",
            &[
                "--user",
                id,
                "--password",
                password,
                "--cn",
                id,
                "--key-out",
                key.to_str().unwrap(),
                "--cert-out",
                cert.to_str().unwrap(),
            ],
        )
    }

    /// `est-client reenroll` with the certificate and key of `from`, a new key written to
    /// `NAME.key`, the certificate to `NAME.pem`.
    fn reenroll(&self, name: &str, from: &str) -> Run {
        let client_cert = self.file(&format!("{from}.pem"));
        let client_key = self.file(&format!("{from}.key"));
        let key = self.file(&format!("{name}.key"));
        let cert = self.file(&format!("{name}.pem"));
        self.run(
            "reenroll",
            &[
                "--client-cert",
                client_cert.to_str().unwrap(),
                "--client-key",
                client_key.to_str().unwrap(),
                "--key-out",
                key.to_str().unwrap(),
                "--cert-out",
                cert.to_str().unwrap(),
            ],
        )
    }

    /// The certificate `est-client` wrote to `NAME.pem`, DER.
    fn cert(&self, name: &str, run: &Run) -> Vec<u8> {
        assert!(run.ok, "est-client failed: {}", run.printed);
        let pem = std::fs::read(self.file(&format!("{name}.pem"))).unwrap_or_else(|e| {
            panic!("no certificate ({e}); est-client printed: {}", run.printed)
        });
        leaf_der(&pem)
    }
}

#[test]
fn est_ca_client_needs_single_line_base64_and_fails_on_rfc_2045_lines() {
    let Some(s) = Setup::new("") else { return };
    with_account(&s.daemon, "estca0", "5110");
    let run = s.enroll("e", "estca0", PASSWORD);
    assert!(!run.ok, "{}", run.printed);
    // Its base64 decoder stops at the first line break (byte 10).
    assert!(run.printed.contains("base64"), "{}", run.printed);
    assert!(!s.file("e.pem").exists());
    // estca did issue: only the client could not read the answer.
    assert_eq!(s.daemon.dir().issued_serials("estca0").len(), 1);
}

#[test]
fn est_ca_client_gets_cacerts_enrolls_renews_and_is_refused() {
    let Some(s) = Setup::new(SINGLE_LINE) else {
        return;
    };
    with_account(&s.daemon, "estca1", "5110");
    s.daemon.dir().add_account("estca2", "5110", "user");

    // cacerts: the client keeps one certificate of the two (the issuing CA and the root).
    let ca = s.file("ca.pem");
    let run = s.run("cacerts", &["--out", ca.to_str().unwrap()]);
    assert!(run.ok, "{}", run.printed);
    let got = leaf_der(&std::fs::read(&ca).unwrap());
    let root = leaf_der(&s.daemon.dir().root_ca_pem());
    let issuing = leaf_der(&std::fs::read(s.daemon.dir().ca_dir().join("issuing-ca.pem")).unwrap());
    assert!(got == root || got == issuing, "{}", run.printed);

    // simpleenroll with HTTP Basic credentials.
    let run = s.enroll("e1", "estca1", PASSWORD);
    let first = s.cert("e1", &run);
    assert_eq!(certissuednum(&first), 1);

    // A wrong password: refused with 401 and the sentence, no certificate.
    let run = s.enroll("e2", "estca2", "wrong password");
    assert!(!run.ok, "{}", run.printed);
    assert!(run.printed.contains("401"), "{}", run.printed);
    assert!(!s.file("e2.pem").exists());

    // Enrolling again while the certificate is active: 409 and why.
    let run = s.enroll("e3", "estca1", PASSWORD);
    assert!(!run.ok, "{}", run.printed);
    assert!(
        run.printed.contains("409") && run.printed.contains("active certificate"),
        "{}",
        run.printed
    );
    assert_eq!(s.daemon.dir().issued_serials("estca1").len(), 1);

    // simplereenroll over TLS with the issued certificate and its key, a new key: renewed.
    let run = s.reenroll("r1", "e1");
    let renewed = s.cert("r1", &run);
    assert_eq!(certissuednum(&renewed), 2, "{}", run.printed);
    assert_ne!(serial_hex(&renewed), serial_hex(&first));
    let old = s.daemon.dir().cert(&serial_hex(&first));
    assert_eq!(old["revocation"]["reason"], "superseded", "{old}");
    s.daemon.dir().assert_at_most_one_active("estca1");

    // The superseded certificate renews no more.
    let run = s.reenroll("r2", "e1");
    assert!(!run.ok, "{}", run.printed);
    assert!(!s.file("r2.pem").exists());
    assert_eq!(s.daemon.dir().issued_serials("estca1").len(), 2);
}
