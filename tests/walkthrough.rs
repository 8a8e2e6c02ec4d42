//! Runs the README's walkthrough verbatim with the real `curl` and `openssl` against a daemon
//! started the way the README says (no configuration: embedded defaults, in its own directory),
//! so the walkthrough stays true.

mod common;

use std::path::Path;
use std::process::{Child, Command};

use common::*;

/// Kills the daemon when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The ```sh blocks of the walkthrough, concatenated.
fn walkthrough_script() -> String {
    readme_script("walkthrough", 8)
}

/// The ```sh blocks between `<!-- NAME -->` and `<!-- /NAME -->` in the README, concatenated;
/// there must be at least `min_blocks` of them.
fn readme_script(name: &str, min_blocks: usize) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let start = readme
        .find(&format!("<!-- {name} -->"))
        .expect("start marker");
    let end = readme
        .find(&format!("<!-- /{name} -->"))
        .expect("end marker");
    let section = &readme[start..end];
    let mut script = String::new();
    let mut in_block = false;
    let mut blocks = 0;
    for line in section.lines() {
        if !in_block && line.trim_start().starts_with("```sh") {
            in_block = true;
            blocks += 1;
        } else if in_block && line.trim_start().starts_with("```") {
            in_block = false;
            script.push('\n');
        } else if in_block {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(!in_block, "unterminated code block in the walkthrough");
    assert!(
        blocks >= min_blocks,
        "only {blocks} sh blocks found in the {name} section"
    );
    script
}

#[test]
fn readme_walkthrough_runs_verbatim() {
    if !have_tools(&["curl", "openssl"], "the README walkthrough test") {
        return;
    }
    let script = walkthrough_script();
    assert!(
        script.contains("8443"),
        "the walkthrough talks to port 8443"
    );

    let dir = tempfile::Builder::new()
        .prefix("estca-walkthrough")
        .tempdir()
        .unwrap();
    let mut serve = estca_command();
    serve
        .arg("serve")
        .current_dir(dir.path())
        .env("ESTCA_SERVER__LISTEN", "127.0.0.1:0")
        .env("ESTCA_REVOCATION__LISTEN", "127.0.0.1:0")
        .env("ESTCA_METRICS__LISTEN", "127.0.0.1:0")
        .env("ESTCA_LOG__LEVEL", "warn,estca::server=info");
    let (child, port, stderr) = match spawn_and_wait(serve) {
        Ok(x) => x,
        Err(f) => panic!("estca serve failed ({:?}): {}", f.status, f.stderr),
    };
    let _guard = Guard(child);
    // The embedded defaults put the CA and data under the working directory.
    assert!(dir.path().join("certs/root-ca.pem").exists());
    assert!(dir.path().join("data/admin.sock").exists());

    let bin_dir = Path::new(estca_bin()).parent().unwrap();
    let full = format!(
        "set -euo pipefail\nexport PATH={}:$PATH\n{}",
        shell_quote(bin_dir.to_str().unwrap()),
        script.replace("8443", &port.to_string())
    );
    std::fs::write(dir.path().join("walkthrough.sh"), &full).unwrap();
    let out = Command::new("bash")
        .arg("walkthrough.sh")
        .current_dir(dir.path())
        .env_remove("ESTCA_SERVER__LISTEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr_text = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = format!(
        "script:\n{full}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr_text}\n--- daemon:\n{}",
        stderr.lock().unwrap()
    );
    assert!(
        out.status.success(),
        "walkthrough failed ({}):\n{report}",
        out.status
    );

    let all = format!("{stdout}{stderr_text}");
    let pos = |needle: &str| {
        all.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing:\n{report}"))
    };
    assert!(all.contains("nozawa1.pem: OK"), "{report}");
    let subject = pos("OU = USERTYPE - 2, OU = CERTISSUEDNUM - 1, CN = nozawa1 5110");
    assert!(
        all.contains("C = JP, O = estca Development, OU = estca Development Issuing CA - DEVELOPMENT, OU = USERTYPE - 2, OU = CERTISSUEDNUM - 1, CN = nozawa1 5110"),
        "the full subject of the README: {report}"
    );
    assert!(all.contains("CA:FALSE"), "{report}");
    assert!(all.contains("TLS Web Client Authentication"), "{report}");
    let conflict = pos("HTTP 409");
    let second = pos("CERTISSUEDNUM - 2");
    let superseded = pos("superseded");
    let renewed = pos("CERTISSUEDNUM - 3");
    let forbidden = pos("HTTP 403");
    assert!(
        subject < conflict
            && conflict < second
            && second < superseded
            && superseded < renewed
            && renewed < forbidden,
        "steps out of order:\n{report}"
    );
    assert_eq!(all.matches("HTTP 409").count(), 1, "{report}");
    assert_eq!(all.matches("HTTP 403").count(), 1, "{report}");
    assert_eq!(all.matches("HTTP 401").count(), 5, "{report}");
    assert!(all.rfind("HTTP 401").unwrap() > forbidden, "{report}");

    // `account show` says locked, then `account unlock` says not locked.
    let locked: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("locked "))
        .map(str::trim)
        .collect();
    assert!(
        locked.ends_with(&["true", "false"]),
        "locked true then false, got {locked:?}:\n{report}"
    );
    // History shows the lock and the unlock.
    assert!(stdout.contains(" lock "), "{report}");
    assert!(stdout.contains(" unlock "), "{report}");

    // The first certificate chains to the root on disk.
    let verify = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            "certs/root-ca.pem",
            "-untrusted",
            "certs/issuing-ca.pem",
            "nozawa1.pem",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && text.contains("nozawa1.pem: OK"),
        "openssl verify: {text} {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // Then the README's "Checking revocation" commands, on the files the walkthrough left.
    // `openssl verify` of a revoked certificate exits non-zero by design, so this part runs
    // without `set -e` and is judged by what it prints.
    let ready = stderr.lock().unwrap().clone();
    let revocation_port = ready
        .split("revocation_http=127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no revocation_http address in the ready line: {ready}"));
    let revocation = readme_script("revocation", 4)
        .replace("8443", &port.to_string())
        .replace("8080", &revocation_port.to_string());
    let (_, all, revocation) = run_script(dir.path(), "set -uo pipefail", &revocation);
    let report = format!("script:\n{revocation}\n--- output:\n{all}");
    for needle in [
        "verify OK",
        "crlNumber",
        "current-chain.pem: OK",
        "current-chain.pem: good",
        "nozawa1.pem: revoked",
        "Reason: superseded",
        "renewed-chain.pem: revoked",
        "Reason: keyCompromise",
        ": unknown",
        "Response verify OK",
        "/crl",
        "/ocsp",
    ] {
        assert!(all.contains(needle), "{needle:?} missing:\n{report}");
    }
    assert_eq!(
        all.matches("certificate revoked").count(),
        2,
        "nozawa1.pem and renewed-chain.pem fail the CRL check:\n{report}"
    );
    assert!(!all.contains("WARNING: no nonce in response"), "{report}");
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `script` with bash in `dir` after `set` (e.g. `set -euo pipefail`), with estca's
/// directory first on the PATH; returns whether it succeeded, what it printed (standard
/// output, then standard error) and the script as run.
fn run_script(dir: &Path, set: &str, script: &str) -> (bool, String, String) {
    let bin_dir = Path::new(estca_bin()).parent().unwrap();
    let full = format!(
        "{set}\nexport PATH={}:$PATH\n{script}",
        shell_quote(bin_dir.to_str().unwrap()),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&full)
        .current_dir(dir)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all, full)
}

/// The "Protecting the CA keys" example runs as written, in an empty directory: `estca init`
/// encrypts both keys with the passphrase file, openssl opens the issuing key with it, and
/// `estca ca decrypt-key` / `encrypt-key` turn the files plain and back.
#[test]
fn readme_protecting_the_ca_keys_runs_verbatim() {
    if !have_tools(&["openssl"], "the README key protection test") {
        return;
    }
    let script = readme_script("protect-keys", 1);
    let dir = tempfile::Builder::new()
        .prefix("estca-protect-keys")
        .tempdir()
        .unwrap();
    let (ok, all, full) = run_script(dir.path(), "set -euo pipefail", &script);
    assert!(ok, "script:\n{full}\n---\n{all}");
    for expected in [
        "encrypted with the configured passphrase",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "the passphrase opens it",
        "issuing-ca.key: decrypted",
        "-----BEGIN PRIVATE KEY-----",
        "issuing-ca.key: encrypted",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    let key = std::fs::read_to_string(dir.path().join("ca/issuing-ca.key")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
}

/// The "Rolling over the issuing CA" example runs as written, in an empty directory: a
/// rollover certified by the local root, then one whose CSR openssl signs with the root key
/// taken off the host, installed with `--install`; every generation chains to the root.
#[test]
fn readme_rollover_example_runs_verbatim() {
    if !have_tools(&["openssl"], "the README rollover test") {
        return;
    }
    let script = readme_script("rollover", 1);
    let dir = tempfile::Builder::new()
        .prefix("estca-rollover")
        .tempdir()
        .unwrap();
    let (ok, all, full) = run_script(dir.path(), "set -euo pipefail", &script);
    assert!(ok, "script:\n{full}\n---\n{all}");
    for expected in [
        "new issuing CA:",
        "previous issuing CA retired to ./ca/previous/1",
        "its CSR:         ./ca/rollover/issuing-ca.csr",
        "previous issuing CA retired to ./ca/previous/2",
        "ca/previous/1/issuing-ca.pem: OK",
        "ca/previous/2/issuing-ca.pem: OK",
        "ca/issuing-ca.pem: OK",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert!(!dir.path().join("ca/rollover").exists());
    let key = std::fs::read_to_string(dir.path().join("ca/previous/2/issuing-ca.key")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
}

/// The README's SoftHSM2 example runs as written: `estca init --pkcs11` generates the issuing
/// key in a fresh token and writes no issuing key file.
#[test]
fn readme_hsm_example_runs_verbatim() {
    if !have_softhsm("the README HSM example test") {
        return;
    }
    let script = readme_script("protect-keys-hsm", 1);
    let dir = tempfile::Builder::new()
        .prefix("estca-hsm")
        .tempdir()
        .unwrap();
    let (ok, all, full) = run_script(dir.path(), "set -euo pipefail", &script);
    assert!(ok, "script:\n{full}\n---\n{all}");
    assert!(all.contains("generated in the token"), "{all}");
    assert!(dir.path().join("hsm-ca/issuing-ca.pem").exists());
    assert!(!dir.path().join("hsm-ca/issuing-ca.key").exists(), "{all}");
}

/// The README's SoftHSM2 rollover runs as written after the HSM example, in the same
/// directory and shell: the new key is generated in the token as `issuing-ca-2`, each
/// generation records its key's URI, no key file is written, and both issuing CAs verify.
#[test]
fn readme_hsm_rollover_example_runs_verbatim() {
    if !have_softhsm("the README HSM rollover test") {
        return;
    }
    let script = format!(
        "{}\n{}",
        readme_script("protect-keys-hsm", 1),
        readme_script("protect-keys-hsm-rollover", 1)
    );
    let dir = tempfile::Builder::new()
        .prefix("estca-hsm-rollover")
        .tempdir()
        .unwrap();
    let (ok, all, full) = run_script(dir.path(), "set -euo pipefail", &script);
    assert!(ok, "script:\n{full}\n---\n{all}");
    for expected in [
        "previous issuing CA retired to ./hsm-ca/previous/1",
        "pkcs11:token=estca;object=issuing-ca-2",
        "pkcs11:token=estca;object=issuing-ca\n",
        "hsm-ca/previous/1/issuing-ca.pem: OK",
        "hsm-ca/issuing-ca.pem: OK",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    for key in ["hsm-ca/issuing-ca.key", "hsm-ca/previous/1/issuing-ca.key"] {
        assert!(!dir.path().join(key).exists(), "{key}: {all}");
    }
}

/// The README's offline-root ceremony runs as written, in an empty directory: the root in
/// `root/` with its encrypted key, the issuing key and request in `ca/`, the certificate the
/// root signed (pathLen 0, the ARL's URL as distribution point) installed next to
/// `root-ca.pem` but no root key, and the ARL that openssl checks the issuing CA against.
#[test]
fn readme_offline_root_ceremony_runs_verbatim() {
    if !have_tools(&["openssl"], "the README offline root test") {
        return;
    }
    let script = readme_script("offline-root", 1);
    let dir = tempfile::Builder::new()
        .prefix("estca-offline-root")
        .tempdir()
        .unwrap();
    let (ok, all, full) = run_script(dir.path(), "set -euo pipefail", &script);
    assert!(ok, "script:\n{full}\n---\n{all}");
    for expected in [
        "SHA-256",
        "issuing-ca.csr",
        "CA:TRUE, pathlen:0",
        "URI:http://ca.example.com/root.crl",
        "ca/issuing-ca.pem: OK",
        "number      2",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert!(!dir.path().join("ca/root-ca.key").exists(), "{all}");
    assert!(std::fs::read_to_string(dir.path().join("root/root-ca.key"))
        .unwrap()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
}
