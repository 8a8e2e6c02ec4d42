//! Revocation as relying parties see it: the real daemon, checked with the real `openssl`
//! and `curl` binaries.
//!
//! - `openssl crl -verify` accepts the CRL; `openssl verify -crl_check` says OK for an active
//!   certificate and "certificate revoked" after `account revoke` and after a reissue
//!   superseded it; `openssl ocsp` reports good, revoked with the reason, and unknown for a
//!   serial estca never issued, and the nonce round-trips;
//! - the CRL number strictly increases across revocations, restarts and a restore from an
//!   older backup;
//! - a revoked client certificate is refused by simplereenroll at once;
//! - removing an ID revokes its certificate as cessationOfOperation in the CRL and OCSP;
//! - malformed OCSP requests (POST body and GET path) get `malformedRequest`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PUBLIC_URL: &str = "http://revocation.test:8080";
const PASSWORD: &str = "correct horse battery";

/// A running `estca serve` on a configuration in a temporary directory.
struct Daemon {
    child: Child,
    dir: PathBuf,
    https: SocketAddr,
    http: SocketAddr,
}

impl Daemon {
    /// Starts the daemon on `dir` (writing its configuration the first time) and waits for
    /// its ready line.
    fn start(dir: &Path) -> Daemon {
        let config = dir.join("estca.toml");
        if !config.exists() {
            let d = dir.display();
            let backend = common::store_backend_toml(&dir.join("data"));
            std::fs::write(
                &config,
                format!(
                    "[server]\nlisten = \"127.0.0.1:0\"\n\
                     [store]\npath = \"{d}/data\"\n{backend}\
                     [admin]\nsocket = \"{d}/data/admin.sock\"\n\
                     [ca]\ndir = \"{d}/certs\"\n\
                     [revocation]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC_URL}\"\n\
                     [log]\nlevel = \"info\"\n"
                ),
            )
            .unwrap();
        }
        let mut child = common::estca_command()
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start estca serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps reading the log so that the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("estca ready") {
                    let _ = tx.send(line.clone());
                }
                if std::env::var_os("ESTCA_TEST_LOG").is_some() {
                    eprintln!("daemon: {line}");
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the daemon did not log 'estca ready' within 60 s");
        let field = |name: &str| -> SocketAddr {
            ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {ready}"))
                .parse()
                .unwrap()
        };
        Daemon {
            https: field("https"),
            http: field("revocation_http"),
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// Stops the daemon with SIGTERM and waits for it.
    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Runs an `estca` admin command against this daemon; panics unless it succeeds.
    fn estca(&self, args: &[&str], stdin: Option<&str>) -> String {
        estca(&self.dir, args, stdin)
    }

    /// Creates account `id` in contract 5110 (creating the contract the first time).
    fn add_account(&self, id: &str) {
        if !self.estca(&["contract", "list"], None).contains("5110") {
            self.estca(&["contract", "add", "5110", "--name", "Nozawa"], None);
        }
        self.estca(
            &[
                "account",
                "add",
                id,
                "--contract",
                "5110",
                "--role",
                "user",
                "--name",
                id,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
    }

    /// A new key `NAME.key` and CSR `NAME.csr` (PEM).
    fn csr(&self, name: &str) -> PathBuf {
        let key = self.path(&format!("{name}.key"));
        let csr = self.path(&format!("{name}.csr"));
        run(Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:P-256")
            .args(["-nodes", "-subj", "/CN=ignored", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        csr
    }

    /// simpleenroll with ID and password; the leaf is written to `NAME.pem`.
    fn enroll(&self, id: &str, name: &str) -> PathBuf {
        let csr = self.csr(name);
        let chain = self.path(&format!("{name}-chain.pem"));
        let out = curl(
            self,
            &[
                "--fail-with-body",
                "--user",
                &format!("{id}:{PASSWORD}"),
                "-H",
                "Content-Type: application/pkcs10",
                "-H",
                "Accept: application/pem-certificate-chain",
                "--data-binary",
                &format!("@{}", csr.display()),
                "-o",
                &chain.display().to_string(),
                &format!("https://{}/.well-known/est/simpleenroll", self.https),
            ],
        );
        ok(out, "simpleenroll");
        let leaf = self.path(&format!("{name}.pem"));
        run(Command::new("openssl")
            .args(["x509", "-in"])
            .arg(&chain)
            .arg("-out")
            .arg(&leaf));
        leaf
    }

    /// Downloads `path` from the plain-HTTP listener into the file `name`.
    fn fetch(&self, path: &str, name: &str) -> PathBuf {
        let file = self.path(name);
        ok(
            curl(
                self,
                &[
                    "--fail-with-body",
                    "-o",
                    &file.display().to_string(),
                    &self.url(path),
                ],
            ),
            &format!("GET {path}"),
        );
        file
    }

    /// The current CRL as PEM in `crl.pem`, and its number.
    fn crl(&self) -> (PathBuf, u64) {
        let der = self.fetch("/crl", "crl.der");
        let pem = self.path("crl.pem");
        let text = ok(
            Command::new("openssl")
                .args(["crl", "-inform", "DER", "-in"])
                .arg(&der)
                .arg("-CAfile")
                .arg(self.path("ca-chain.pem"))
                .args(["-verify", "-noout", "-crlnumber"])
                .output()
                .unwrap(),
            "openssl crl -verify",
        );
        assert!(text.contains("verify OK"), "{text}");
        run(Command::new("openssl")
            .args(["crl", "-inform", "DER", "-in"])
            .arg(&der)
            .arg("-out")
            .arg(&pem));
        let hex = text
            .lines()
            .find_map(|l| l.strip_prefix("crlNumber=0x"))
            .unwrap_or_else(|| panic!("no crlNumber in {text}"));
        (pem, u64::from_str_radix(hex.trim(), 16).unwrap())
    }

    /// `openssl verify -crl_check` of `leaf` against the current CRL: its output.
    fn verify_with_crl(&self, leaf: &Path) -> String {
        let (crl, _) = self.crl();
        let out = Command::new("openssl")
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(self.path("ca-chain.pem"))
            .arg("-CRLfile")
            .arg(&crl)
            .arg(leaf)
            .output()
            .unwrap();
        text(&out)
    }

    /// `openssl ocsp` for `leaf` (or a serial) at the URL: its output.
    fn ocsp(&self, target: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(self.path("issuing.pem"))
            .args(target)
            .args(["-url", &self.url("/ocsp"), "-CAfile"])
            .arg(self.path("ca-chain.pem"))
            .args(["-resp_text"])
            .output()
            .unwrap();
        text(&out)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Runs an `estca` command on the configuration in `dir`; panics unless it succeeds.
fn estca(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = common::estca_command()
        .arg("--config")
        .arg(dir.join("estca.toml"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    ok(
        child.wait_with_output().unwrap(),
        &format!("estca {args:?}"),
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The output of a command that must have succeeded.
fn ok(out: Output, what: &str) -> String {
    let t = text(&out);
    assert!(out.status.success(), "{what} failed: {t}");
    t
}

fn run(command: &mut Command) -> String {
    let what = format!("{command:?}");
    ok(command.output().unwrap(), &what)
}

fn curl(daemon: &Daemon, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(daemon.path("certs/root-ca.pem"))
        .args(args)
        .output()
        .unwrap()
}

fn serial_of(leaf: &Path) -> String {
    run(Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(leaf))
    .trim()
    .trim_start_matches("serial=")
    .to_lowercase()
}

/// Polls `check` (the CRL is re-signed at once, but by another task) for up to 10 s.
fn eventually(what: &str, mut check: impl FnMut() -> Option<String>) {
    let mut last = String::new();
    for _ in 0..100 {
        match check() {
            None => return,
            Some(state) => last = state,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: {last}");
}

#[test]
fn openssl_sees_revocations_through_the_crl_and_ocsp() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(tmp.path());
    daemon.add_account("alice");
    daemon.add_account("bob");
    let alice = daemon.enroll("alice", "alice");
    let bob_old = daemon.enroll("bob", "bob-old");

    // The CA certificate routes: the chain in PEM, the issuing CA in DER.
    let chain = daemon.fetch("/ca.pem", "ca-chain.pem");
    let chain_text = std::fs::read_to_string(&chain).unwrap();
    assert_eq!(chain_text.matches("BEGIN CERTIFICATE").count(), 2);
    let ca_der = daemon.fetch("/ca.crt", "ca.crt");
    run(Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&ca_der)
        .arg("-out")
        .arg(daemon.path("issuing.pem")));
    assert!(chain_text.starts_with(&std::fs::read_to_string(daemon.path("issuing.pem")).unwrap()));

    // Issued certificates point at the public URL.
    let exts = run(Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "crlDistributionPoints,authorityInfoAccess",
            "-in",
        ])
        .arg(&alice));
    // The CRL and CA certificate of the issuer's own generation (the first eight bytes of
    // its key identifier), served beside /crl and /ca.crt.
    let generation = issuer_generation(&ca_der);
    assert!(
        exts.contains(&format!("URI:{PUBLIC_URL}/crl/{generation}")),
        "{exts}"
    );
    assert!(
        exts.contains(&format!("OCSP - URI:{PUBLIC_URL}/ocsp")),
        "{exts}"
    );
    assert!(
        exts.contains(&format!(
            "CA Issuers - URI:{PUBLIC_URL}/ca/{generation}.crt"
        )),
        "{exts}"
    );
    assert_eq!(
        std::fs::read(daemon.fetch(&format!("/ca/{generation}.crt"), "gen.crt")).unwrap(),
        std::fs::read(&ca_der).unwrap()
    );
    assert_eq!(
        std::fs::read(daemon.fetch(&format!("/crl/{generation}"), "gen.crl")).unwrap(),
        std::fs::read(daemon.fetch("/crl", "current.crl")).unwrap()
    );

    // Active: the CRL verifies and does not list it; OCSP says good and echoes the nonce.
    let (_, first_number) = daemon.crl();
    let verified = daemon.verify_with_crl(&alice);
    assert!(verified.contains(": OK"), "{verified}");
    let good = daemon.ocsp(&["-cert", &alice.display().to_string()]);
    assert!(good.contains("Response verify OK"), "{good}");
    assert!(good.contains("alice.pem: good"), "{good}");
    assert!(good.contains("OCSP Nonce"), "the nonce is echoed: {good}");
    assert!(!good.contains("WARNING"), "{good}");
    assert!(good.contains("Next Update:"), "{good}");

    // Unknown: a serial estca never issued.
    let unknown = daemon.ocsp(&["-serial", "0x4142434445464748494a4b4c4d4e4f50"]);
    assert!(
        unknown.contains("0x4142434445464748494A4B4C4D4E4F50: unknown")
            || unknown.contains("0x4142434445464748494a4b4c4d4e4f50: unknown"),
        "{unknown}"
    );

    // 失効する: revoked at once, with the reason, in the CRL and in OCSP.
    daemon.estca(
        &["account", "revoke", "alice", "--reason", "keyCompromise"],
        None,
    );
    eventually("alice in the CRL", || {
        let v = daemon.verify_with_crl(&alice);
        (!v.contains("certificate revoked")).then_some(v)
    });
    let (_, after_revoke) = daemon.crl();
    assert!(after_revoke > first_number);
    let revoked = daemon.ocsp(&["-cert", &alice.display().to_string()]);
    assert!(revoked.contains("alice.pem: revoked"), "{revoked}");
    assert!(revoked.contains("Reason: keyCompromise"), "{revoked}");
    assert!(revoked.contains("Revocation Time:"), "{revoked}");
    // The same answer whichever hash the CertID is made with (RFC 6960 leaves it to the
    // client; openssl sends SHA-1 unless told otherwise).
    for hash in ["-sha256", "-sha384", "-sha512"] {
        let revoked = daemon.ocsp(&[hash, "-cert", &alice.display().to_string()]);
        assert!(
            revoked.contains("alice.pem: revoked") && revoked.contains("Response verify OK"),
            "{hash}: {revoked}"
        );
    }

    // The revoked certificate no longer authenticates simplereenroll.
    let csr = daemon.csr("alice-renew");
    let refused = curl(
        &daemon,
        &[
            "--cert",
            &alice.display().to_string(),
            "--key",
            &daemon.path("alice.key").display().to_string(),
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &format!("@{}", csr.display()),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("https://{}/.well-known/est/simplereenroll", daemon.https),
        ],
    );
    assert_eq!(text(&refused).trim(), "403", "{}", text(&refused));

    // 再発行する: bob's new enrollment supersedes his old certificate.
    daemon.estca(&["account", "reissue", "bob"], None);
    let bob_new = daemon.enroll("bob", "bob-new");
    eventually("bob's old certificate in the CRL", || {
        let v = daemon.verify_with_crl(&bob_old);
        (!v.contains("certificate revoked")).then_some(v)
    });
    let new_ok = daemon.verify_with_crl(&bob_new);
    assert!(new_ok.contains(": OK"), "{new_ok}");
    let superseded = daemon.ocsp(&["-cert", &bob_old.display().to_string()]);
    assert!(superseded.contains("bob-old.pem: revoked"), "{superseded}");
    assert!(superseded.contains("Reason: superseded"), "{superseded}");
    let (_, after_supersede) = daemon.crl();
    assert!(after_supersede > after_revoke);

    // The operator's view of the same CRL.
    let shown: serde_json::Value =
        serde_json::from_str(&daemon.estca(&["crl", "show", "--json"], None)).unwrap();
    assert!(shown["number"].as_u64().unwrap() >= after_supersede);
    let entries = shown["entries"].as_array().unwrap();
    let reason_of = |serial: &str| {
        entries
            .iter()
            .find(|e| e["serial"] == serial)
            .map(|e| e["reason"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        reason_of(&serial_of(&alice)).as_deref(),
        Some("keyCompromise")
    );
    assert_eq!(
        reason_of(&serial_of(&bob_old)).as_deref(),
        Some("superseded")
    );
    assert_eq!(reason_of(&serial_of(&bob_new)), None);
    let text_view = daemon.estca(&["crl", "show"], None);
    assert!(text_view.contains("CRL number:"), "{text_view}");
    assert!(text_view.contains(&serial_of(&alice)), "{text_view}");

    // GET /ocsp/{base64}: the same answer, with caching headers.
    let request = daemon.path("bob-new.ocspreq");
    run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(daemon.path("issuing.pem"))
        .arg("-cert")
        .arg(&bob_new)
        .arg("-reqout")
        .arg(&request));
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&request).unwrap());
    let encoded = b64
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    let response = daemon.path("bob-new.ocspresp");
    let headers = ok(
        curl(
            &daemon,
            &[
                "--fail-with-body",
                "-D",
                "-",
                "-o",
                &response.display().to_string(),
                &daemon.url(&format!("/ocsp/{encoded}")),
            ],
        ),
        "GET /ocsp/...",
    )
    .to_lowercase();
    assert!(
        headers.contains("content-type: application/ocsp-response"),
        "{headers}"
    );
    assert!(
        headers.contains("cache-control: public, max-age="),
        "{headers}"
    );
    assert!(headers.contains("last-modified:"), "{headers}");
    let parsed = run(Command::new("openssl")
        .args(["ocsp", "-respin"])
        .arg(&response)
        .arg("-resp_text")
        .arg("-noverify"));
    assert!(parsed.contains("Cert Status: good"), "{parsed}");

    // CRL caching headers; If-None-Match gives 304.
    let headers = ok(
        curl(
            &daemon,
            &["-D", "-", "-o", "/dev/null", &daemon.url("/crl")],
        ),
        "GET /crl",
    )
    .to_lowercase();
    assert!(
        headers.contains("content-type: application/pkix-crl"),
        "{headers}"
    );
    assert!(
        headers.contains("cache-control: public, max-age="),
        "{headers}"
    );
    let etag = headers
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .trim()
        .to_owned();
    let not_modified = curl(
        &daemon,
        &[
            "-H",
            &format!("If-None-Match: {etag}"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &daemon.url("/crl"),
        ],
    );
    assert_eq!(text(&not_modified).trim(), "304");
    let pem = daemon.fetch("/crl.pem", "crl-direct.pem");
    assert!(std::fs::read_to_string(pem)
        .unwrap()
        .starts_with("-----BEGIN X509 CRL-----"));

    // The same routes on the HTTPS port.
    let over_tls = ok(
        curl(
            &daemon,
            &[
                "--fail-with-body",
                "-o",
                "/dev/null",
                "-w",
                "%{content_type}",
                &format!("https://{}/crl", daemon.https),
            ],
        ),
        "GET https /crl",
    );
    assert_eq!(over_tls.trim(), "application/pkix-crl");

    // Restarts: the CRL number keeps growing, and revocations are still listed.
    daemon.stop();
    let mut last = after_supersede;
    for _ in 0..2 {
        let daemon = Daemon::start(tmp.path());
        let (_, number) = daemon.crl();
        assert!(number > last, "{number} after {last}");
        last = number;
        let v = daemon.verify_with_crl(&alice);
        assert!(v.contains("certificate revoked"), "{v}");
        daemon.stop();
    }
}

/// Issue 16: `estca account remove` revokes the ID's certificate as cessationOfOperation, as
/// `openssl` sees it in the CRL and over OCSP, and the ID's right password then answers 401
/// exactly as an unknown ID's.
#[test]
fn a_removed_ids_certificate_is_revoked_as_cessation_of_operation() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(tmp.path());
    daemon.add_account("carol");
    let carol = daemon.enroll("carol", "carol");
    daemon.fetch("/ca.pem", "ca-chain.pem");
    let ca_der = daemon.fetch("/ca.crt", "ca.crt");
    run(Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&ca_der)
        .arg("-out")
        .arg(daemon.path("issuing.pem")));
    assert!(daemon.verify_with_crl(&carol).contains(": OK"));

    let removed: serde_json::Value = serde_json::from_str(
        &daemon.estca(&["--json", "account", "remove", "carol", "--yes"], None),
    )
    .unwrap();
    assert!(removed["removed_at"].is_string(), "{removed}");

    eventually("carol in the CRL", || {
        let v = daemon.verify_with_crl(&carol);
        (!v.contains("certificate revoked")).then_some(v)
    });
    let (crl, _) = daemon.crl();
    let listed = run(Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&crl));
    assert!(listed.contains("Cessation Of Operation"), "{listed}");
    let ocsp = daemon.ocsp(&["-cert", &carol.display().to_string()]);
    assert!(ocsp.contains("carol.pem: revoked"), "{ocsp}");
    assert!(ocsp.contains("Reason: cessationOfOperation"), "{ocsp}");

    // The right password of the removed ID, and an unknown ID: the same 401 and body.
    let csr = daemon.csr("carol-again");
    let attempt = |id: &str| {
        text(&curl(
            &daemon,
            &[
                "--user",
                &format!("{id}:{PASSWORD}"),
                "-H",
                "Content-Type: application/pkcs10",
                "--data-binary",
                &format!("@{}", csr.display()),
                "-w",
                "%{http_code}",
                &format!("https://{}/.well-known/est/simpleenroll", daemon.https),
            ],
        ))
    };
    let removed_id = attempt("carol");
    assert!(removed_id.ends_with("401"), "{removed_id}");
    assert_eq!(removed_id, attempt("nobody"));
}

/// A restore puts the database's CRL counter back to the backup's. The CRL the restored
/// daemon signs must still be numbered above every CRL signed before the restore: a relying
/// party holding one of those takes the higher number for the newer CRL (RFC 5280 5.2.3).
#[test]
fn crl_numbers_keep_growing_after_a_restore_from_an_older_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(tmp.path());
    daemon.add_account("dave");
    let dave = daemon.enroll("dave", "dave");
    daemon.fetch("/ca.pem", "ca-chain.pem");
    let backup = daemon.path("estca.backup");
    daemon.estca(&["backup", backup.to_str().unwrap()], None);
    let (_, at_backup) = daemon.crl();

    // After the backup: a revocation, and the CRLs signed for it.
    daemon.estca(&["account", "revoke", "dave"], None);
    eventually("dave in the CRL", || {
        let v = daemon.verify_with_crl(&dave);
        (!v.contains("certificate revoked")).then_some(v)
    });
    let (_, before_restore) = daemon.crl();
    assert!(before_restore > at_backup, "{before_restore} > {at_backup}");
    daemon.stop();

    std::fs::rename(tmp.path().join("data"), tmp.path().join("data.old")).unwrap();
    let restored = estca(tmp.path(), &["restore", backup.to_str().unwrap()], None);
    assert!(restored.contains("1 accounts"), "{restored}");
    let daemon = Daemon::start(tmp.path());
    let (_, after_restore) = daemon.crl();
    assert!(
        after_restore > before_restore,
        "the restored daemon's CRL is numbered {after_restore}, one signed before the restore {before_restore}"
    );
    // The restored database is the backup's: dave's certificate is active again there.
    assert!(daemon.verify_with_crl(&dave).contains(": OK"));
}

#[test]
fn malformed_ocsp_requests_get_malformed_request() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(tmp.path());
    let status_of = |args: &[&str], name: &str| -> (String, String) {
        let file = daemon.path(name);
        let out = curl(
            &daemon,
            &[
                args,
                &[
                    "-o",
                    &file.display().to_string(),
                    "-w",
                    "%{http_code} %{content_type}",
                ],
            ]
            .concat(),
        );
        let meta = text(&out);
        let parsed = Command::new("openssl")
            .args(["ocsp", "-respin"])
            .arg(&file)
            .arg("-resp_text")
            .output()
            .unwrap();
        (meta, text(&parsed))
    };
    let garbage = daemon.path("garbage.bin");
    std::fs::write(&garbage, b"this is not an OCSP request").unwrap();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "POST garbage",
            vec![
                "-H".into(),
                "Content-Type: application/ocsp-request".into(),
                "--data-binary".into(),
                format!("@{}", garbage.display()),
                daemon.url("/ocsp"),
            ],
        ),
        ("GET not base64", vec![daemon.url("/ocsp/!!!not*base64")]),
        (
            "GET base64 of garbage",
            vec![daemon.url("/ocsp/dGhpcyBpcyBub3QgREVS")],
        ),
        ("GET nothing", vec![daemon.url("/ocsp/")]),
    ];
    for (i, (what, args)) in cases.iter().enumerate() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (meta, parsed) = status_of(&args, &format!("resp{i}.der"));
        assert_eq!(meta.trim(), "200 application/ocsp-response", "{what}");
        // openssl: "Responder Error: malformedrequest (1)".
        assert!(
            parsed.to_lowercase().contains("malformedrequest (1)"),
            "{what}: {parsed}"
        );
    }

    // A body beyond the bound is refused without being read to the end.
    let big = daemon.path("big.bin");
    std::fs::write(&big, vec![0x30; 64 * 1024]).unwrap();
    let out = curl(
        &daemon,
        &[
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            &format!("@{}", big.display()),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &daemon.url("/ocsp"),
        ],
    );
    assert_eq!(text(&out).trim(), "413");

    // The daemon is still answering.
    let crl = daemon.fetch("/crl", "after.crl");
    assert!(!std::fs::read(crl).unwrap().is_empty());
}

/// The generation ID of the issuing CA certificate in the DER file `ca_der`: its subject key
/// identifier's first eight bytes in lowercase hex.
fn issuer_generation(ca_der: &Path) -> String {
    let text = run(Command::new("openssl")
        .args([
            "x509",
            "-inform",
            "DER",
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
            "-in",
        ])
        .arg(ca_der));
    let hex: String = text
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .split(':')
        .take(8)
        .collect::<String>()
        .to_lowercase();
    assert_eq!(hex.len(), 16, "{text}");
    hex
}
