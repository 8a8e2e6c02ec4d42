//! Cisco libest's `estclient`, unmodified (built from its upstream archive by
//! `tests/common/libest.rs`), against the real daemon: cacerts (`-g`), csrattrs (`-a`),
//! simpleenroll with Basic credentials (`-e -u -h`; P-256 and RSA, with and without
//! `--pem-output`), simplereenroll (`-r`) with the issued certificate and its key, and the
//! refusals (wrong password, enroll while active, revoked certificate). `estclient` exits 0
//! even when an operation fails, so each run is judged by the files it writes and what it
//! prints.
//!
//! Skipped with a notice where the archive or a C compiler is missing, unless
//! `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::libest::{estclient, run_estclient};
use common::*;

/// A daemon, its root CA as a file for `EST_OPENSSL_CACERT`, and a scratch directory.
struct Setup {
    daemon: TestDaemon,
    estclient: &'static Path,
    trust_anchor: PathBuf,
    scratch: tempfile::TempDir,
}

impl Setup {
    fn new() -> Option<Self> {
        let estclient = estclient()?;
        let daemon = TestDaemon::start(Options::default());
        let scratch = tempfile::tempdir().unwrap();
        let trust_anchor = scratch.path().join("root-ca.pem");
        std::fs::write(&trust_anchor, daemon.dir().root_ca_pem()).unwrap();
        Some(Self {
            daemon,
            estclient,
            trust_anchor,
            scratch,
        })
    }

    /// Runs `estclient ARGS` with a fresh output directory; returns it and the output.
    fn run(&self, name: &str, args: &[&str]) -> (PathBuf, String) {
        let out_dir = self.scratch.path().join(name);
        std::fs::create_dir(&out_dir).unwrap();
        let output: Output = run_estclient(
            self.estclient,
            self.daemon.port,
            &self.trust_anchor,
            &out_dir,
            args,
        );
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (out_dir, printed)
    }

    /// A private key made by openssl (`genpkey` arguments), as a PEM file.
    fn key(&self, name: &str, genpkey: &[&str]) -> PathBuf {
        let path = self.scratch.path().join(name);
        let out = Command::new("openssl")
            .arg("genpkey")
            .args(genpkey)
            .arg("-out")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }
}

/// The certificates of a certs-only PKCS#7 file `estclient` wrote (base64).
fn pkcs7_file(path: &Path, printed: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{} missing ({e}); estclient printed:\n{printed}",
            path.display()
        )
    });
    pkcs7_certificates(&text)
}

fn p256_args() -> [&'static str; 4] {
    ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
}

#[test]
fn libest_estclient_gets_cacerts_and_csrattrs_and_enrolls_with_basic_credentials() {
    let Some(s) = Setup::new() else { return };
    with_account(&s.daemon, "libest1", "5110");
    s.daemon.dir().add_account("libest2", "5110", "user");

    // cacerts: the issuing CA and the root, base64 that OpenSSL's line reader decodes.
    let (out, printed) = s.run("g", &["-g"]);
    let certs = pkcs7_file(&out.join("cacert-0-0.pkcs7"), &printed);
    assert_eq!(certs.len(), 2, "{printed}");
    let root = leaf_der(&s.daemon.dir().root_ca_pem());
    assert!(certs.contains(&root), "{printed}");

    // csrattrs.
    let (out, printed) = s.run("a", &["-a"]);
    let attrs = std::fs::read(out.join("csr-0-0.base64"))
        .unwrap_or_else(|e| panic!("no csrattrs file ({e}): {printed}"));
    assert!(!attrs.is_empty(), "{printed}");

    // simpleenroll with a P-256 key, answered in PKCS#7 (base64).
    let key = s.key("p256.pem", &p256_args());
    let key_arg = key.to_str().unwrap();
    let (out, printed) = s.run(
        "e1",
        &["-e", "-u", "libest1", "-h", PASSWORD, "-x", key_arg],
    );
    let issued = pkcs7_file(&out.join("cert-0-0.pkcs7"), &printed);
    assert_eq!(issued.len(), 1, "{printed}");
    assert_eq!(certissuednum(&issued[0]), 1);
    assert!(!printed.contains("failed"), "{printed}");

    // Enrolling again while that certificate is active: refused, and estclient shows why
    // (the reason phrase; libest prints the status line of a status it does not know).
    let (out, printed) = s.run(
        "e2",
        &["-e", "-u", "libest1", "-h", PASSWORD, "-x", key_arg],
    );
    assert!(!out.join("cert-0-0.pkcs7").exists(), "{printed}");
    assert!(
        printed.contains("409") && printed.contains("active certificate"),
        "{printed}"
    );

    // A wrong password: no certificate.
    let rsa = s.key(
        "rsa.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let rsa_arg = rsa.to_str().unwrap();
    let (out, printed) = s.run(
        "e3",
        &[
            "-e",
            "-u",
            "libest2",
            "-h",
            "wrong password",
            "-x",
            rsa_arg,
            "--pem-output",
        ],
    );
    assert!(!out.join("cert-0-0.pem").exists(), "{printed}");
    assert!(printed.contains("failed"), "{printed}");

    // simpleenroll with an RSA key, answered as PEM by --pem-output.
    let (out, printed) = s.run(
        "e4",
        &[
            "-e",
            "-u",
            "libest2",
            "-h",
            PASSWORD,
            "-x",
            rsa_arg,
            "--pem-output",
        ],
    );
    let pem = std::fs::read(out.join("cert-0-0.pem"))
        .unwrap_or_else(|e| panic!("no PEM certificate ({e}): {printed}"));
    let rsa_cert = leaf_der(&pem);
    assert_eq!(certissuednum(&rsa_cert), 1);

    // simplereenroll with that certificate and the same key: a renewal (RFC 7030 4.2.2).
    let cert_file = out.join("cert-0-0.pem");
    let (out, printed) = s.run(
        "r1",
        &[
            "-r",
            "-c",
            cert_file.to_str().unwrap(),
            "-k",
            rsa_arg,
            "--pem-output",
        ],
    );
    let renewed = std::fs::read(out.join("cert-0-0.pem"))
        .unwrap_or_else(|e| panic!("no renewed certificate ({e}): {printed}"));
    let renewed = leaf_der(&renewed);
    assert_eq!(certissuednum(&renewed), 2, "{printed}");
    assert_ne!(serial_hex(&renewed), serial_hex(&rsa_cert));
    let old = s.daemon.dir().cert(&serial_hex(&rsa_cert));
    assert_eq!(old["revocation"]["reason"], "superseded", "{old}");

    // The superseded certificate no longer renews.
    let (out, printed) = s.run(
        "r2",
        &["-r", "-c", cert_file.to_str().unwrap(), "-k", rsa_arg],
    );
    assert!(!out.join("cert-0-0.pkcs7").exists(), "{printed}");

    // Revoked by the administrator: the current certificate no longer renews either.
    std::fs::write(s.scratch.path().join("renewed.pem"), cert_pem(&renewed)).unwrap();
    s.daemon.cli_ok(
        &["account", "revoke", "libest2", "--reason", "keyCompromise"],
        None,
    );
    let renewed_file = s.scratch.path().join("renewed.pem");
    let (out, printed) = s.run(
        "r3",
        &["-r", "-c", renewed_file.to_str().unwrap(), "-k", rsa_arg],
    );
    assert!(!out.join("cert-0-0.pkcs7").exists(), "{printed}");

    // IP-literal server names (estclient -s 127.0.0.1) are no warning for the operator.
    let stderr = s.daemon.stderr();
    assert!(!stderr.contains("Illegal SNI"), "{stderr}");
}

/// The base64 PKCS#8 key file `estclient -q` wrote, DER.
fn key_file(path: &Path, printed: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{} missing ({e}); estclient printed:\n{printed}",
            path.display()
        )
    });
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::Engine::decode(&B64, compact).expect("base64 PKCS#8")
}

/// Asserts with openssl that the DER key is the private half of the DER certificate's key.
fn assert_key_matches(dir: &Path, key_der: &[u8], cert_der: &[u8]) {
    std::fs::write(dir.join("key.der"), key_der).unwrap();
    std::fs::write(dir.join("cert.der"), cert_der).unwrap();
    let public = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    assert_eq!(
        public(&["pkey", "-inform", "DER", "-in", "key.der", "-pubout"]),
        public(&["x509", "-inform", "DER", "-in", "cert.der", "-noout", "-pubkey"]),
        "the key estclient wrote is not its certificate's"
    );
}

#[test]
fn libest_estclient_gets_a_server_generated_key_and_its_certificate() {
    let Some(s) = Setup::new() else { return };
    let dir = s.daemon.dir();
    dir.cli_ok(
        &[
            "contract",
            "add",
            "5110",
            "--name",
            "Keygen",
            "--server-keygen",
        ],
        None,
    );
    dir.add_account("libestq", "5110", "user");
    dir.add_contract("7001");
    dir.add_account("libestoff", "7001", "user");
    // estclient -q still signs its CSR with a key of its own (-x), which estca ignores.
    let rsa = s.key(
        "q-rsa.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let rsa_arg = rsa.to_str().unwrap();

    let (out, printed) = s.run(
        "q1",
        &["-q", "-u", "libestq", "-h", PASSWORD, "-x", rsa_arg],
    );
    let certs = pkcs7_file(&out.join("cert-0-0.pkcs7"), &printed);
    assert_eq!(certs.len(), 1, "{printed}");
    let key = key_file(&out.join("key-0-0.key"), &printed);
    assert_key_matches(&out, &key, &certs[0]);
    assert_eq!(certissuednum(&certs[0]), 1);
    assert!(!printed.contains("failed"), "{printed}");

    // Again while that certificate is active: refused, no files.
    let (out, printed) = s.run(
        "q2",
        &["-q", "-u", "libestq", "-h", PASSWORD, "-x", rsa_arg],
    );
    assert!(!out.join("key-0-0.key").exists(), "{printed}");
    assert!(printed.contains("409"), "{printed}");

    // A contract without the option: refused, no key.
    let (out, printed) = s.run(
        "q3",
        &["-q", "-u", "libestoff", "-h", PASSWORD, "-x", rsa_arg],
    );
    assert!(!out.join("key-0-0.key").exists(), "{printed}");
    assert!(!out.join("cert-0-0.pkcs7").exists(), "{printed}");
}
