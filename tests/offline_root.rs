//! The offline root (issue 14 item 3) with the real CLI, daemon and openssl: `estca root
//! init` on the "offline machine", `estca init --offline-root` and `estca ca install-issuing`
//! on the daemon's host, `estca root sign-issuing`, `revoke-issuing` and `sign-arl`; the
//! daemon serves the ARL at `/root.crl`, re-reads it when the file changes and on SIGHUP,
//! refuses one the root did not sign, warns before it goes stale and exports its nextUpdate;
//! `openssl verify -crl_check_all` accepts a leaf until the root revokes its issuing CA.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use common::*;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `estca --config CONFIG ARGS` with the directory's environment (the production CA settings).
fn estca(dir: &TestDir, args: &[&str]) -> Output {
    estca_command()
        .arg("--config")
        .arg(&dir.config)
        .args(args)
        .envs(dir.options.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn estca_ok(dir: &TestDir, args: &[&str]) -> String {
    let out = estca(dir, args);
    assert!(out.status.success(), "estca {args:?}: {}", text(&out));
    text(&out)
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

fn private_file(path: &Path, contents: &str) -> String {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

async fn get(url: &str) -> (u16, String, Vec<u8>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, media, response.bytes().await.unwrap().to_vec())
}

/// A DER CRL as a PEM file.
fn crl_pem(der: &[u8], path: &Path) -> PathBuf {
    let der_path = path.with_extension("der");
    std::fs::write(&der_path, der).unwrap();
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(&der_path),
        "-out",
        s(path),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    path.to_path_buf()
}

/// `openssl verify -crl_check_all` of `leaf` with both CRLs.
fn verify_chain(dir: &Path, root_crl: &[u8], ca_crl: &[u8], leaf: &Path) -> Output {
    let root_crl = crl_pem(root_crl, &dir.join("root-crl.pem"));
    let ca_crl = crl_pem(ca_crl, &dir.join("ca-crl.pem"));
    openssl(&[
        "verify",
        "-crl_check_all",
        "-CRLfile",
        s(&root_crl),
        "-CRLfile",
        s(&ca_crl),
        "-CAfile",
        s(&dir.join("certs/root-ca.pem")),
        "-untrusted",
        s(&dir.join("certs/issuing-ca.pem")),
        s(leaf),
    ])
}

#[tokio::test]
async fn the_offline_root_certifies_the_issuing_ca_and_its_arl_is_served_and_checked() {
    if !have_tools(&["openssl"], "the offline root test") {
        return;
    }
    let mut dir = TestDir::new(Options::default());
    let base = dir.path().to_path_buf();
    let ca_pass = private_file(&base.join("ca-pass"), "issuing key passphrase\n");
    dir.options.env = vec![
        ("ESTCA_CA__CREATE_IF_MISSING".into(), "false".into()),
        ("ESTCA_CA__KEY_PASSPHRASE_FILE".into(), ca_pass),
    ];
    let root_dir = base.join("offline-root");
    let root_pass = private_file(&base.join("root-pass"), "root passphrase, kept offline\n");

    // The offline machine: the root, its key encrypted, and its first ARL.
    let out = estca_ok(
        &dir,
        &[
            "root",
            "init",
            "--dir",
            s(&root_dir),
            "--passphrase-file",
            &root_pass,
        ],
    );
    assert!(out.contains("encrypted with the passphrase"), "{out}");
    let key = std::fs::read_to_string(root_dir.join("root-ca.key")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let mode = std::fs::metadata(root_dir.join("root-ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let root_text = text(&openssl(&[
        "x509",
        "-noout",
        "-text",
        "-in",
        s(&root_dir.join("root-ca.pem")),
    ]));
    for expected in [
        "X509v3 Basic Constraints: critical",
        "CA:TRUE",
        "X509v3 Key Usage: critical",
        "Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
    ] {
        assert!(root_text.contains(expected), "{expected}: {root_text}");
    }
    let again = estca(
        &dir,
        &["root", "init", "--dir", s(&root_dir), "--unencrypted"],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    // The daemon's host: the issuing key and its request, never a root key.
    let out = estca_ok(&dir, &["init", "--offline-root"]);
    assert!(out.contains("issuing-ca.csr"), "{out}");
    let ca_dir = dir.ca_dir();
    assert!(!ca_dir.join("root-ca.key").exists());
    assert!(std::fs::read_to_string(ca_dir.join("issuing-ca.key"))
        .unwrap()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let csr = ca_dir.join("issuing-ca.csr");
    let checked = openssl(&["req", "-verify", "-noout", "-in", s(&csr)]);
    assert!(checked.status.success(), "{}", text(&checked));
    // Until the certificate is installed, the daemon says what is missing.
    let dir = match TestDaemon::try_start_in(dir) {
        Ok(_) => panic!("the daemon started without an issuing CA certificate"),
        Err(failure) => {
            let (dir, failure) = *failure;
            assert!(
                failure.stderr.contains("waiting for its certificate")
                    && failure.stderr.contains("estca ca install-issuing"),
                "{}",
                failure.stderr
            );
            dir
        }
    };

    // A request whose signature does not verify is refused.
    let pem = std::fs::read_to_string(&csr).unwrap();
    let mut der = pem_body(&pem);
    let last = der.len() - 1;
    der[last] ^= 1;
    let forged = base.join("forged.csr");
    std::fs::write(&forged, &der).unwrap();
    let out = estca(
        &dir,
        &[
            "root",
            "sign-issuing",
            s(&forged),
            "--dir",
            s(&root_dir),
            "--passphrase-file",
            &root_pass,
            "--out",
            s(&base.join("forged.pem")),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("signature does not verify"),
        "{}",
        text(&out)
    );
    assert!(!base.join("forged.pem").exists());

    // The root certifies it, with the ARL's URL and the validity asked for.
    let issued = base.join("issuing.pem");
    let out = estca_ok(
        &dir,
        &[
            "--json",
            "root",
            "sign-issuing",
            s(&csr),
            "--dir",
            s(&root_dir),
            "--passphrase-file",
            &root_pass,
            "--out",
            s(&issued),
            "--crl-url",
            "http://revocation.test/root.crl",
            "--validity-years",
            "5",
        ],
    );
    let signed: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let serial = signed["serial"].as_str().unwrap().to_owned();
    assert!(root_dir
        .join("issued")
        .join(format!("{serial}.pem"))
        .exists());
    let issuing_text = text(&openssl(&["x509", "-noout", "-text", "-in", s(&issued)]));
    for expected in [
        "CA:TRUE, pathlen:0",
        "Certificate Sign, CRL Sign",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
        "URI:http://revocation.test/root.crl",
    ] {
        assert!(
            issuing_text.contains(expected),
            "{expected}: {issuing_text}"
        );
    }
    let year = time::OffsetDateTime::now_utc().year() + 5;
    assert!(
        issuing_text.contains(&format!("{year} GMT")),
        "five years: {issuing_text}"
    );

    // Installing checks the root: another root's certificate is refused.
    let other_root = base.join("other-root");
    estca_ok(
        &dir,
        &["root", "init", "--dir", s(&other_root), "--unencrypted"],
    );
    let out = estca(
        &dir,
        &[
            "ca",
            "install-issuing",
            s(&issued),
            "--root",
            s(&other_root.join("root-ca.pem")),
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("is not signed by"), "{}", text(&out));
    assert!(!ca_dir.join("issuing-ca.pem").exists());
    estca_ok(
        &dir,
        &[
            "ca",
            "install-issuing",
            s(&issued),
            "--root",
            s(&root_dir.join("root-ca.pem")),
        ],
    );
    assert!(ca_dir.join("issuing-ca.pem").exists());
    assert!(!ca_dir.join("issuing-ca.csr").exists());
    assert!(!ca_dir.join("root-ca.key").exists());
    assert_eq!(
        std::fs::read(ca_dir.join("root-ca.pem")).unwrap(),
        std::fs::read(root_dir.join("root-ca.pem")).unwrap()
    );
    std::fs::copy(root_dir.join("root.crl"), ca_dir.join("root.crl")).unwrap();

    // The daemon serves the ARL as the root signed it, and exports its nextUpdate.
    let daemon = TestDaemon::start_in(dir);
    let http = daemon.ready_addr("revocation_http");
    let root_crl_url = format!("http://{http}/root.crl");
    let (status, media, first_arl) = get(&root_crl_url).await;
    assert_eq!(status, 200);
    assert_eq!(media, "application/pkix-crl");
    assert_eq!(first_arl, std::fs::read(root_dir.join("root.crl")).unwrap());
    let metrics = daemon.ready_addr("metrics");
    let (_, _, body) = get(&format!("http://{metrics}/metrics")).await;
    let body = String::from_utf8(body).unwrap();
    let next_update: i64 = body
        .lines()
        .find_map(|l| l.strip_prefix("estca_root_crl_next_update_timestamp_seconds "))
        .unwrap_or_else(|| panic!("no gauge in {body}"))
        .parse()
        .unwrap();
    // The ARL was signed moments ago (possibly within this very second), so its nextUpdate
    // lies at most 30 days and at least 29 days ahead.
    let ahead = next_update - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (29 * 86400..=30 * 86400).contains(&ahead),
        "30 days ahead by default, got {ahead} s"
    );

    // A leaf checks out over the whole chain, with the ARL and the issuing CA's CRL.
    let dir = daemon.dir();
    dir.add_contract("5110");
    dir.add_account("chain01", "5110", "user");
    let key = p256();
    let answer = daemon
        .client()
        .enroll("chain01", PASSWORD, &key.csr_der)
        .await;
    answer.assert_status(200);
    let leaf = base.join("leaf.pem");
    std::fs::write(
        &leaf,
        pem_rfc7468::encode_string(
            "CERTIFICATE",
            pem_rfc7468::LineEnding::LF,
            &answer.pkcs7_certificate(),
        )
        .unwrap(),
    )
    .unwrap();
    let (status, _, ca_crl) = get(&format!("http://{http}/crl")).await;
    assert_eq!(status, 200);
    let verified = verify_chain(&base, &first_arl, &ca_crl, &leaf);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains(": OK"), "{}", text(&verified));

    // An ARL another root signed is refused, and the previous one stays served.
    std::fs::copy(
        other_root.join("root.crl"),
        ca_dir_of(&daemon).join("root.crl"),
    )
    .unwrap();
    let (_, _, served) = get(&root_crl_url).await;
    assert_eq!(served, first_arl);
    daemon.wait_for_log("root CRL refused", 0);

    // A fresh ARL close to its nextUpdate: picked up when the file changes, and the daemon
    // warns on reload.
    let out = estca_ok(
        daemon.dir(),
        &[
            "root",
            "sign-arl",
            "--dir",
            s(&root_dir),
            "--passphrase-file",
            &root_pass,
            "--arl-days",
            "2",
        ],
    );
    assert!(out.contains("number      2"), "{out}");
    std::fs::copy(
        root_dir.join("root.crl"),
        ca_dir_of(&daemon).join("root.crl"),
    )
    .unwrap();
    let (_, _, second_arl) = get(&root_crl_url).await;
    assert_eq!(
        second_arl,
        std::fs::read(root_dir.join("root.crl")).unwrap()
    );
    assert_ne!(second_arl, first_arl);
    daemon.reload();
    daemon.wait_for_log("the root CRL goes stale soon", 0);

    // The root revokes the issuing CA: the new ARL lists it and openssl refuses the leaf.
    let out = estca_ok(
        daemon.dir(),
        &[
            "root",
            "revoke-issuing",
            &serial,
            "--reason",
            "keyCompromise",
            "--dir",
            s(&root_dir),
            "--passphrase-file",
            &root_pass,
        ],
    );
    assert!(out.contains(&serial), "{out}");
    let again = estca(
        daemon.dir(),
        &[
            "root",
            "revoke-issuing",
            &serial,
            "--dir",
            s(&root_dir),
            "--passphrase-file",
            &root_pass,
        ],
    );
    assert!(text(&again).contains("already revoked"), "{}", text(&again));
    std::fs::copy(
        root_dir.join("root.crl"),
        ca_dir_of(&daemon).join("root.crl"),
    )
    .unwrap();
    let (_, _, third_arl) = get(&root_crl_url).await;
    let listed = text(&openssl(&[
        "crl",
        "-inform",
        "DER",
        "-noout",
        "-text",
        "-in",
        s(&root_dir.join("root.crl")),
    ]));
    assert!(listed.contains(&serial.to_uppercase()), "{listed}");
    assert!(listed.contains("Key Compromise"), "{listed}");
    assert!(listed.contains("Only CA Certificates"), "{listed}");
    let refused = verify_chain(&base, &third_arl, &ca_crl, &leaf);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("certificate revoked"),
        "{}",
        text(&refused)
    );
    daemon.stop();
}

fn ca_dir_of(daemon: &TestDaemon) -> PathBuf {
    daemon.dir().ca_dir()
}

/// The DER inside a PEM text.
fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(body).unwrap()
}
