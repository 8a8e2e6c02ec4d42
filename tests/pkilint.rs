//! An independent linter reads what estca signs: DigiCert's pkilint (installed by
//! `tests/common/pkilint.rs`) on every kind of certificate, the CRL and OCSP answers of a real
//! daemon on the embedded defaults, made and fetched with the real `openssl` and `curl`:
//!
//! - end-entity certificates for P-256, P-384, RSA-2048 and Ed25519 keys, a renewal's, an
//!   application's (an EST registration authority, with host names), the OCSP signer's, the
//!   daemon's TLS server certificate, the issuing CA and the root (`lint_pkix_cert`), and each
//!   issuer with what it signed (`lint_pkix_signer_signee_cert_chain`);
//! - the CRL holding a superseded and a key-compromised certificate (`lint_crl`, RFC 5280);
//! - OCSP answers `good`, `revoked` and `unknown` (`lint_ocsp_response`).
//!
//! Nothing at NOTICE or above may be found, but for one finding pkilint makes in error, named
//! in [`accepted`]. Skipped with a notice where pkilint cannot be installed, unless
//! `REQUIRE_ALL_TESTS` is set (as `.ci/run` does).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::pkilint::pkilint;
use common::*;
use serde_json::Value;

/// A pkilint finding that is not a defect: pkilint's domain-name check (the `validators`
/// package) wants a dot, but RFC 5280 section 4.2.1.6 takes a dNSName in RFC 1034's
/// preferred name syntax, where one label is a name; the daemon's TLS server certificate on
/// the embedded defaults names `localhost`, since that is what a client on the machine dials.
fn accepted(file: &str, code: &str, message: &str) -> bool {
    file == "tls-server.pem"
        && code == "pkix.invalid_domain_name_syntax"
        && message == "Invalid domain name syntax: \"localhost\""
}

/// pkilint's programs, and a scratch directory for what they read.
struct Lint {
    bin: &'static Path,
    work: tempfile::TempDir,
}

impl Lint {
    /// `None` (after a notice) where pkilint cannot be installed here.
    fn new() -> Option<Self> {
        Some(Self {
            bin: pkilint()?,
            work: tempfile::tempdir().unwrap(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn serial(&self, leaf: &Path) -> String {
        let out = ok(
            Command::new("openssl")
                .args(["x509", "-noout", "-serial", "-in"])
                .arg(leaf),
            "openssl x509 -serial",
        );
        out.trim().trim_start_matches("serial=").to_owned()
    }

    /// The findings of one pkilint program (`args`, then `files`), one line each naming the
    /// last file, the severity, the code, where in the structure and the message; those
    /// [`accepted`] left out.
    fn findings(&self, program: &str, args: &[&str], files: &[&Path]) -> Vec<String> {
        let out = Command::new(self.bin.join(program))
            .arg("lint")
            .args(args)
            .args(["-s", "NOTICE", "-f", "JSON"])
            .args(files)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program} cannot run: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{program} {files:?} printed no JSON ({e}): {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let file = files
            .last()
            .and_then(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut found = Vec::new();
        for result in report["results"].as_array().expect("results") {
            for finding in result["finding_descriptions"].as_array().expect("findings") {
                let code = finding["code"].as_str().unwrap_or_default();
                let message = finding["message"].as_str().unwrap_or_default();
                if !accepted(&file, code, message) {
                    found.push(format!(
                        "{file}: {} {code} at {}: {message}",
                        finding["severity"].as_str().unwrap_or_default(),
                        result["node_path"].as_str().unwrap_or_default(),
                    ));
                }
            }
        }
        found
    }
}

/// A daemon on the embedded defaults, and the linter.
struct Setup {
    daemon: TestDaemon,
    lint: Lint,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.lint.path(name)
    }

    fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.daemon.port)
    }

    fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.daemon.ready_addr("revocation_http"))
    }

    fn root(&self) -> PathBuf {
        self.daemon.dir().ca_dir().join("root-ca.pem")
    }

    fn issuing(&self) -> PathBuf {
        self.daemon.dir().ca_dir().join("issuing-ca.pem")
    }

    /// A key (`openssl req -newkey` argument, e.g. `ec -pkeyopt ec_paramgen_curve:P-256`) and
    /// a PEM CSR for `cn`, as `<name>.key` and `<name>.csr`.
    fn csr(&self, name: &str, newkey: &[&str], cn: &str) -> PathBuf {
        let csr = self.path(&format!("{name}.csr"));
        ok(
            Command::new("openssl")
                .args(["req", "-new", "-nodes", "-newkey"])
                .args(newkey)
                .arg("-keyout")
                .arg(self.path(&format!("{name}.key")))
                .args(["-subj", &format!("/CN={cn}"), "-out"])
                .arg(&csr),
            "openssl req",
        );
        csr
    }

    /// `curl` to an EST operation with `auth` (curl arguments), the chain saved as
    /// `<name>-chain.pem` and its first certificate as `<name>.pem`.
    fn est(&self, operation: &str, auth: &[&str], csr: &Path, name: &str) -> PathBuf {
        let chain = self.path(&format!("{name}-chain.pem"));
        ok(
            Command::new("curl")
                .args(["--fail-with-body", "-sS", "--cacert"])
                .arg(self.root())
                .args(auth)
                .args(["-H", "Content-Type: application/pkcs10"])
                .args(["-H", "Accept: application/pem-certificate-chain"])
                .arg("--data-binary")
                .arg(format!("@{}", csr.display()))
                .arg("-o")
                .arg(&chain)
                .arg(self.https(&format!("/.well-known/est/{operation}"))),
            "curl",
        );
        let leaf = self.path(&format!("{name}.pem"));
        ok(
            Command::new("openssl")
                .args(["x509", "-in"])
                .arg(&chain)
                .arg("-out")
                .arg(&leaf),
            "openssl x509",
        );
        leaf
    }

    fn enroll(&self, id: &str, newkey: &[&str]) -> PathBuf {
        self.daemon.dir().add_account(id, "5110", "user");
        let csr = self.csr(id, newkey, id);
        self.est(
            "simpleenroll",
            &["--user", &format!("{id}:{PASSWORD}")],
            &csr,
            id,
        )
    }

    /// `openssl ocsp` for `target` (`-cert FILE` or `-serial 0x…`), the answer kept as
    /// `<name>.der`; returns what openssl printed.
    fn ocsp(&self, target: &[&str], name: &str) -> (PathBuf, String) {
        let response = self.path(&format!("{name}.der"));
        let printed = ok(
            Command::new("openssl")
                .args(["ocsp", "-issuer"])
                .arg(self.issuing())
                .arg("-CAfile")
                .arg(self.path("ca-chain.pem"))
                .args(["-url", &self.http("/ocsp")])
                .args(target)
                .arg("-respout")
                .arg(&response),
            "openssl ocsp",
        );
        (response, printed)
    }
}

fn ok(command: &mut Command, what: &str) -> String {
    let out: Output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// The first certificate of a PEM text, as a PEM block.
fn first_pem_certificate(text: &str) -> String {
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate in:\n{text}"));
    let end = text[begin..].find("-----END CERTIFICATE-----").unwrap() + begin;
    format!("{}-----END CERTIFICATE-----\n", &text[begin..end])
}

#[test]
fn pkilint_finds_nothing_in_what_estca_signs() {
    if !have_tools(&["openssl", "curl"], "the pkilint test") {
        return;
    }
    let Some(lint) = Lint::new() else { return };
    let setup = Setup {
        daemon: TestDaemon::start(Options::default()),
        lint,
    };
    setup.daemon.dir().add_contract("5110");
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(setup.issuing()).unwrap(),
        std::fs::read_to_string(setup.root()).unwrap()
    );
    std::fs::write(setup.path("ca-chain.pem"), chain).unwrap();

    // End-entity certificates, one per kind of key.
    let p256 = setup.enroll("lint-p256", &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let p384 = setup.enroll("lint-p384", &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"]);
    let rsa = setup.enroll("lint-rsa", &["rsa:2048"]);
    let ed25519 = setup.enroll("lint-ed25519", &["ed25519"]);

    // A renewal with a new key supersedes the P-256 certificate.
    let renewal_csr = setup.csr(
        "lint-p256-renewed",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "lint-p256",
    );
    let p256_key = setup.path("lint-p256.key");
    let renewed = setup.est(
        "simplereenroll",
        &[
            "--cert",
            p256.to_str().unwrap(),
            "--key",
            p256_key.to_str().unwrap(),
        ],
        &renewal_csr,
        "lint-p256-renewed",
    );

    // The RSA certificate revoked for key compromise.
    setup.daemon.dir().cli_ok(
        &["account", "revoke", "lint-rsa", "--reason", "keyCompromise"],
        None,
    );

    // An application: an EST registration authority that also serves TLS for its hosts.
    let app_csr = setup.csr(
        "lint-app",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "lint-app",
    );
    let app = setup.path("lint-app.pem");
    let app_pem = setup.daemon.dir().cli_ok(
        &[
            "app",
            "add",
            "lint-app",
            "--contracts",
            "5110",
            "--host",
            "ra.example.com",
            "--host",
            "192.0.2.7",
            "--csr",
            app_csr.to_str().unwrap(),
        ],
        None,
    );
    std::fs::write(&app, first_pem_certificate(&app_pem)).unwrap();

    // The daemon's TLS server certificate, as a client receives it.
    let s_client = ok(
        Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{}", setup.daemon.port))
            .args(["-servername", "localhost"])
            .stdin(Stdio::null()),
        "openssl s_client",
    );
    let tls = setup.path("tls-server.pem");
    std::fs::write(&tls, first_pem_certificate(&s_client)).unwrap();

    // The CRL, once it holds both revocations.
    let crl = setup.path("crl.der");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        ok(
            Command::new("curl")
                .args(["--fail", "-sS", "-o"])
                .arg(&crl)
                .arg(setup.http("/crl")),
            "curl /crl",
        );
        let text = ok(
            Command::new("openssl")
                .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
                .arg(&crl),
            "openssl crl",
        );
        if text.contains("Superseded") && text.contains("Key Compromise") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CRL never listed both revocations:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // OCSP: good, revoked, unknown; and the delegated signer's certificate it carries.
    let (good, printed) = setup.ocsp(&["-cert", renewed.to_str().unwrap()], "ocsp-good");
    assert!(printed.contains(": good"), "{printed}");
    let (revoked, printed) = setup.ocsp(&["-cert", rsa.to_str().unwrap()], "ocsp-revoked");
    assert!(printed.contains(": revoked"), "{printed}");
    let (unknown, printed) = setup.ocsp(
        &["-serial", "0x0123456789abcdef0123456789abcdef"],
        "ocsp-unknown",
    );
    assert!(printed.contains(": unknown"), "{printed}");
    let response_text = ok(
        Command::new("openssl")
            .args(["ocsp", "-noverify", "-resp_text", "-respin"])
            .arg(&good),
        "openssl ocsp -resp_text",
    );
    let signer = setup.path("ocsp-signer.pem");
    std::fs::write(&signer, first_pem_certificate(&response_text)).unwrap();
    assert_ne!(
        setup.lint.serial(&signer),
        setup.lint.serial(&setup.issuing()),
        "OCSP answers are signed by a delegated responder"
    );

    let mut findings = Vec::new();
    let (root, issuing) = (setup.root(), setup.issuing());
    let leaves = [&p256, &p384, &rsa, &ed25519, &renewed, &app, &signer, &tls];
    for certificate in leaves.iter().copied().chain([&issuing, &root]) {
        findings.extend(setup.lint.findings("lint_pkix_cert", &[], &[certificate]));
    }
    for leaf in leaves {
        findings.extend(setup.lint.findings(
            "lint_pkix_signer_signee_cert_chain",
            &[],
            &[&issuing, leaf],
        ));
    }
    findings.extend(setup.lint.findings(
        "lint_pkix_signer_signee_cert_chain",
        &[],
        &[&root, &issuing],
    ));
    findings.extend(
        setup
            .lint
            .findings("lint_crl", &["-t", "CRL", "-p", "PKIX"], &[&crl]),
    );
    for response in [&good, &revoked, &unknown] {
        findings.extend(setup.lint.findings("lint_ocsp_response", &[], &[response]));
    }
    assert!(
        findings.is_empty(),
        "pkilint {}:\n{}",
        findings.len(),
        findings.join("\n")
    );
}

/// The offline root's side (`estca root …`, no daemon): the root certificate, an issuing CA
/// it certified from `estca init --offline-root`'s request, and its ARL once it revoked that
/// issuing CA.
#[test]
fn pkilint_finds_nothing_in_what_the_offline_root_signs() {
    if !have_tools(&["openssl"], "the offline root's pkilint test") {
        return;
    }
    let Some(lint) = Lint::new() else { return };
    // Its configuration names the CAs; its CA directory gets the issuing CA's key and request.
    let dir = TestDir::new(Options::default());
    let root_dir = lint.path("root");
    let passphrase = lint.path("root-passphrase");
    std::fs::write(&passphrase, "a passphrase for the offline root\n").unwrap();
    std::fs::set_permissions(
        &passphrase,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let root = |verb: &str, first: &[&str], last: &[&str]| {
        let mut args = vec!["root", verb];
        args.extend_from_slice(first);
        let (root_dir, passphrase) = (root_dir.to_str().unwrap(), passphrase.to_str().unwrap());
        args.extend(["--dir", root_dir, "--passphrase-file", passphrase]);
        args.extend_from_slice(last);
        dir.cli_ok(&args, None)
    };
    root("init", &[], &[]);
    dir.cli_ok(&["init", "--offline-root"], None);
    let request = dir.ca_dir().join("issuing-ca.csr");
    let issuing = lint.path("issuing.pem");
    root(
        "sign-issuing",
        &[request.to_str().unwrap()],
        &["--out", issuing.to_str().unwrap()],
    );
    root(
        "revoke-issuing",
        &[&lint.serial(&issuing)],
        &["--reason", "cACompromise"],
    );

    let root_ca = root_dir.join("root-ca.pem");
    let arl = root_dir.join("root.crl");
    let text = ok(
        Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&arl),
        "openssl crl",
    );
    assert!(
        text.contains("CA Compromise"),
        "the ARL lists the issuing CA:\n{text}"
    );
    let mut findings = Vec::new();
    for certificate in [&root_ca, &issuing] {
        findings.extend(lint.findings("lint_pkix_cert", &[], &[certificate]));
    }
    findings.extend(lint.findings(
        "lint_pkix_signer_signee_cert_chain",
        &[],
        &[&root_ca, &issuing],
    ));
    findings.extend(lint.findings("lint_crl", &["-t", "ARL", "-p", "PKIX"], &[&arl]));
    assert!(
        findings.is_empty(),
        "pkilint {}:\n{}",
        findings.len(),
        findings.join("\n")
    );
}
