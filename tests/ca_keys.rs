//! Protecting the CA keys (issue 14): encrypted key files with the real daemon and CLI.
//! `estca init` encrypts by default for a production configuration, the daemon decrypts the
//! issuing key with the passphrase from a file or a systemd credential, refuses to start
//! without it or with a wrong one (never showing it), warns about a plain key, and
//! `estca ca encrypt-key` / `decrypt-key` migrate between the two.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const PASSPHRASE: &str = "tr0ub4dor & 3 more words";

/// Runs `estca --config FILE ARGS` with extra environment variables (configuration overrides).
fn estca(dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    estca_command()
        .arg("--config")
        .arg(&dir.config)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A private file holding `contents`.
fn private_file(path: &Path, contents: &str) -> PathBuf {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

fn first_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

/// A test directory whose daemon runs with `env` (a production CA: never created implicitly).
fn dir_with(env: &[(&str, &str)]) -> TestDir {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("ESTCA_CA__CREATE_IF_MISSING".into(), "false".into()));
    TestDir::new(Options {
        env,
        ..Options::default()
    })
}

#[tokio::test]
async fn a_production_ca_is_encrypted_by_default_and_the_daemon_decrypts_it_with_a_credential() {
    let dir = dir_with(&[]);
    let production = [("ESTCA_CA__CREATE_IF_MISSING", "false")];

    // No passphrase: a production `init` refuses and writes nothing.
    let out = estca(&dir, &["init"], &production);
    assert!(!out.status.success(), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("ca.key_passphrase_file") && message.contains("--unencrypted"),
        "{message}"
    );
    assert!(!dir.ca_dir().join("issuing-ca.key").exists());

    // With a passphrase file: both keys are written encrypted.
    let pass_file = private_file(&dir.path().join("passphrase"), &format!("{PASSPHRASE}\n"));
    let pass_env = [
        ("ESTCA_CA__CREATE_IF_MISSING", "false"),
        ("ESTCA_CA__KEY_PASSPHRASE_FILE", pass_file.to_str().unwrap()),
    ];
    let out = estca(&dir, &["init"], &pass_env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("encrypted with the configured passphrase"),
        "{}",
        text(&out)
    );
    for name in ["root-ca.key", "issuing-ca.key"] {
        assert_eq!(
            first_line(&dir.ca_dir().join(name)),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----"
        );
    }

    // openssl opens the issuing key with the passphrase.
    if have_tools(&["openssl"], "the openssl check of the encrypted key") {
        let out = Command::new("openssl")
            .args(["pkey", "-noout", "-passin"])
            .arg(format!("file:{}", pass_file.display()))
            .arg("-in")
            .arg(dir.ca_dir().join("issuing-ca.key"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }

    // Without the passphrase the daemon refuses to start and says where to put it.
    let Err(failure) = TestDaemon::try_start_in(dir) else {
        panic!("estca started without the passphrase of its encrypted key");
    };
    let (mut dir, failure) = *failure;
    assert!(
        failure
            .stderr
            .contains("issuing-ca.key is encrypted and no passphrase is configured")
            && failure.stderr.contains("ca.key_passphrase_credential"),
        "{}",
        failure.stderr
    );
    // The configuration's exit code: the systemd unit does not restart into the same refusal.
    assert_eq!(failure.status.and_then(|s| s.code()), Some(3));

    // A wrong passphrase in the systemd credential: refused, and the passphrase never shown.
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    let credential = private_file(
        &credentials.join("ca-key-passphrase"),
        "zebra-quartz-wrong\n",
    );
    dir.options.env.push((
        "CREDENTIALS_DIRECTORY".into(),
        credentials.to_str().unwrap().into(),
    ));
    let Err(failure) = TestDaemon::try_start_in(dir) else {
        panic!("estca started with a wrong passphrase");
    };
    let (dir, failure) = *failure;
    assert!(
        failure.stderr.contains("cannot decrypt") && failure.stderr.contains("ca-key-passphrase"),
        "{}",
        failure.stderr
    );
    assert_eq!(failure.status.and_then(|s| s.code()), Some(3));
    assert!(
        !failure.stderr.contains("zebra-quartz"),
        "{}",
        failure.stderr
    );

    // The right passphrase in the credential: the daemon starts, issues, and does not warn.
    private_file(&credential, &format!("{PASSPHRASE}\n"));
    let daemon = TestDaemon::start_in(dir);
    daemon.dir().add_contract("5110");
    daemon.dir().add_account("nozawa1", "5110", "user");
    daemon
        .client()
        .enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    let log = daemon.stderr();
    assert!(!log.contains("NOT encrypted"), "{log}");
    assert!(!log.contains(PASSPHRASE), "{log}");
    eprintln!("encrypted issuing key: init refused without a passphrase, daemon refused without one and with a wrong one, started with the credential and issued");
}

#[test]
fn encrypt_key_and_decrypt_key_migrate_and_the_daemon_warns_about_a_plain_key() {
    let dir = dir_with(&[]);
    let out = estca(
        &dir,
        &["init", "--unencrypted"],
        &[("ESTCA_CA__CREATE_IF_MISSING", "false")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("NOT encrypted"), "{}", text(&out));
    assert_eq!(
        first_line(&dir.ca_dir().join("issuing-ca.key")),
        "-----BEGIN PRIVATE KEY-----"
    );

    // A plain key: the daemon starts and warns.
    let daemon = TestDaemon::start_in(dir);
    let log = daemon.stderr();
    assert!(
        log.contains("WARN") && log.contains("issuing CA key file is NOT encrypted"),
        "{log}"
    );
    let mut dir = daemon.stop();

    // encrypt-key needs a passphrase, then encrypts both files.
    let out = estca(&dir, &["ca", "encrypt-key"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no passphrase is configured"),
        "{}",
        text(&out)
    );
    let pass_file = private_file(&dir.path().join("passphrase"), &format!("{PASSPHRASE}\n"));
    let pass = [("ESTCA_CA__KEY_PASSPHRASE_FILE", pass_file.to_str().unwrap())];
    let out = estca(&dir, &["ca", "encrypt-key"], &pass);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("root-ca.key: encrypted") && report.contains("issuing-ca.key: encrypted"),
        "{report}"
    );
    for name in ["root-ca.key", "issuing-ca.key"] {
        assert_eq!(
            first_line(&dir.ca_dir().join(name)),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----"
        );
    }
    let again = estca(&dir, &["--json", "ca", "encrypt-key"], &pass);
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        json["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f[1] == "unchanged"),
        "{json}"
    );

    // The daemon starts on the encrypted key without warning.
    dir.options.env.push((
        "ESTCA_CA__KEY_PASSPHRASE_FILE".into(),
        pass_file.to_str().unwrap().into(),
    ));
    let daemon = TestDaemon::start_in(dir);
    assert!(
        !daemon.stderr().contains("NOT encrypted"),
        "{}",
        daemon.stderr()
    );
    let dir = daemon.stop();

    // decrypt-key writes plain PKCS#8 again, mode 0600.
    let out = estca(&dir, &["ca", "decrypt-key"], &pass);
    assert!(out.status.success(), "{}", text(&out));
    let key = dir.ca_dir().join("issuing-ca.key");
    assert_eq!(first_line(&key), "-----BEGIN PRIVATE KEY-----");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn the_development_ca_stays_unencrypted_and_the_log_says_so() {
    let dir = TestDir::new(Options::default());
    let daemon = TestDaemon::start_in(dir);
    let log = daemon.stderr();
    assert!(log.contains("created a DEVELOPMENT CA"), "{log}");
    assert!(
        log.contains("issuing CA key file is NOT encrypted") && log.contains("development=true"),
        "{log}"
    );
    assert_eq!(
        first_line(&daemon.dir().ca_dir().join("issuing-ca.key")),
        "-----BEGIN PRIVATE KEY-----"
    );
    // At every start, not only the one that created it.
    let again = TestDaemon::start_in(daemon.stop());
    let log = again.stderr();
    assert!(!log.contains("created a DEVELOPMENT CA"), "{log}");
    assert!(
        log.contains("issuing CA key file is NOT encrypted") && log.contains("development=true"),
        "{log}"
    );
}

// ----- the issuing key in a PKCS#11 token (SoftHSM2) -----------------------------------------

const USER_PIN: &str = "314159";

/// A SoftHSM2 configuration in `dir` with one token "estca" initialised (user PIN
/// [`USER_PIN`]); `None` (skipped with a notice) when SoftHSM2 is not installed, a failure
/// when REQUIRE_ALL_TESTS is set.
fn softhsm(dir: &Path) -> Option<PathBuf> {
    if !have_softhsm("the PKCS#11 test") {
        return None;
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "estca"])
        .args(["--so-pin", "27182818", "--pin", USER_PIN])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    Some(conf)
}

/// CKA_EXTRACTABLE, CKA_SENSITIVE and CKA_NEVER_EXTRACTABLE of the private key labelled
/// `label`, read through the token itself, and whether its value (CKA_VALUE) is refused.
fn private_key_attributes(conf: &Path, label: &str) -> (bool, bool, bool, bool) {
    use cryptoki::context::{CInitializeArgs, Pkcs11};
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
    use cryptoki::session::UserType;
    std::env::set_var("SOFTHSM2_CONF", conf);
    let context = Pkcs11::new(SOFTHSM_MODULE).unwrap();
    context.initialize(CInitializeArgs::OsThreads).unwrap();
    let slot = context
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| context.get_token_info(*s).unwrap().label() == "estca")
        .unwrap();
    let session = context.open_ro_session(slot).unwrap();
    session
        .login(
            UserType::User,
            Some(&cryptoki::types::AuthPin::new(USER_PIN.into())),
        )
        .unwrap();
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(keys.len(), 1);
    let (mut extractable, mut sensitive, mut never) = (true, false, false);
    for attribute in session
        .get_attributes(
            keys[0],
            &[
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::NeverExtractable,
            ],
        )
        .unwrap()
    {
        match attribute {
            Attribute::Extractable(v) => extractable = v,
            Attribute::Sensitive(v) => sensitive = v,
            Attribute::NeverExtractable(v) => never = v,
            _ => {}
        }
    }
    let value = session
        .get_attribute_info(keys[0], &[AttributeType::Value])
        .unwrap();
    let value_refused = matches!(value[..], [AttributeInfo::Sensitive]);
    (extractable, sensitive, never, value_refused)
}

fn openssl(args: &[&str], dir: &Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    text(&out)
}

/// `openssl ocsp` for the certificate file `cert` issued by `issuer`, asking the daemon's
/// responder at `http` and checking the answer against `chain` (files in `dir`): its output.
fn ocsp_check(dir: &Path, http: &str, issuer: &str, cert: &str, chain: &str) -> String {
    openssl(
        &[
            "ocsp",
            "-issuer",
            issuer,
            "-cert",
            cert,
            "-url",
            &format!("http://{http}/ocsp"),
            "-CAfile",
            chain,
        ],
        dir,
    )
}

fn pem(label: &str, der: &[u8]) -> String {
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap()
}

#[tokio::test]
async fn the_issuing_key_in_softhsm_signs_enrollment_renewal_crl_and_ocsp() {
    let hsm = tempfile::tempdir().unwrap();
    let Some(conf) = softhsm(hsm.path()) else {
        return;
    };
    let uri = format!("pkcs11:token=estca;object=issuing-ca?module-path={SOFTHSM_MODULE}");
    let dir = dir_with(&[]);
    let pin_file = private_file(&dir.path().join("pin"), &format!("{USER_PIN}\n"));
    let pass_file = private_file(&dir.path().join("passphrase"), &format!("{PASSPHRASE}\n"));
    let conf_text = conf.to_str().unwrap();
    let env = [
        ("ESTCA_CA__CREATE_IF_MISSING", "false"),
        ("ESTCA_CA__KEY_PASSPHRASE_FILE", pass_file.to_str().unwrap()),
        ("ESTCA_CA__PKCS11_PIN_FILE", pin_file.to_str().unwrap()),
        ("SOFTHSM2_CONF", conf_text),
    ];
    let out = estca(&dir, &["init", "--pkcs11", &uri], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("generated in the token"),
        "{}",
        text(&out)
    );
    assert!(!dir.ca_dir().join("issuing-ca.key").exists());
    assert_eq!(
        first_line(&dir.ca_dir().join("root-ca.key")),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    );
    // The token refuses to give the key out.
    let (extractable, sensitive, never_extractable, value_refused) =
        private_key_attributes(&conf, "issuing-ca");
    assert!(!extractable && sensitive && never_extractable && value_refused);

    // A second init into the same label is refused.
    let again = TestDir::new(Options::default());
    let out = estca(&again, &["init", "--pkcs11", &uri], &env);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already holds a key labelled 'issuing-ca'"),
        "{}",
        text(&out)
    );

    let mut dir = dir;
    for (k, v) in [
        ("ESTCA_CA__KEY", uri.as_str()),
        ("ESTCA_CA__PKCS11_PIN_FILE", pin_file.to_str().unwrap()),
        ("SOFTHSM2_CONF", conf_text),
        ("ESTCA_REVOCATION__PUBLIC_URL", "http://ca.example.test"),
    ] {
        dir.options.env.push((k.into(), v.into()));
    }
    let daemon = TestDaemon::start_in(dir);
    let log = daemon.stderr();
    assert!(!log.contains("NOT encrypted"), "{log}");
    assert!(!log.contains(USER_PIN), "{log}");
    let http = daemon.ready_addr("revocation_http").to_string();
    let work = daemon.dir().path().to_path_buf();
    let issuing_pem =
        std::fs::read_to_string(daemon.dir().ca_dir().join("issuing-ca.pem")).unwrap();
    std::fs::write(work.join("issuing.pem"), &issuing_pem).unwrap();
    std::fs::write(
        work.join("chain.pem"),
        format!(
            "{issuing_pem}{}",
            String::from_utf8(daemon.dir().root_ca_pem()).unwrap()
        ),
    )
    .unwrap();

    // Enrollment, then renewal with the first certificate.
    daemon.dir().add_contract("5110");
    daemon.dir().add_account("nozawa1", "5110", "user");
    let first_key = p256();
    let first = daemon
        .client()
        .enroll("nozawa1", PASSWORD, &first_key.csr_der)
        .await
        .pkcs7_certificate();
    std::fs::write(work.join("first.pem"), pem("CERTIFICATE", &first)).unwrap();
    let verified = openssl(&["verify", "-CAfile", "chain.pem", "first.pem"], &work);
    assert!(verified.contains("first.pem: OK"), "{verified}");
    let chain = format!("{}{issuing_pem}", pem("CERTIFICATE", &first));
    let renewed = daemon
        .client_with_cert(chain.as_bytes(), &first_key.key_der)
        .reenroll(&p256().csr_der, false)
        .await
        .pkcs7_certificate();
    std::fs::write(work.join("renewed.pem"), pem("CERTIFICATE", &renewed)).unwrap();
    let verified = openssl(&["verify", "-CAfile", "chain.pem", "renewed.pem"], &work);
    assert!(verified.contains("renewed.pem: OK"), "{verified}");

    // Revocation: the CRL and the OCSP answer, both verified by openssl.
    daemon.dir().cli_ok(
        &["account", "revoke", "nozawa1", "--reason", "keyCompromise"],
        None,
    );
    let out = Command::new("curl")
        .args(["-sS", "--fail", "-o"])
        .arg(work.join("crl.der"))
        .arg(format!("http://{http}/crl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let crl = openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "crl.der",
            "-CAfile",
            "chain.pem",
            "-verify",
            "-noout",
        ],
        &work,
    );
    assert!(crl.contains("verify OK"), "{crl}");
    openssl(
        &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"],
        &work,
    );
    let out = Command::new("openssl")
        .args([
            "verify",
            "-crl_check",
            "-CAfile",
            "chain.pem",
            "-CRLfile",
            "crl.pem",
            "renewed.pem",
        ])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(text(&out).contains("certificate revoked"), "{}", text(&out));
    let ocsp = ocsp_check(&work, &http, "issuing.pem", "renewed.pem", "chain.pem");
    assert!(
        ocsp.contains("Response verify OK") && ocsp.contains("renewed.pem: revoked"),
        "{ocsp}"
    );
    eprintln!("SoftHSM2: key generated in the token (CKA_EXTRACTABLE false, CKA_SENSITIVE true, value refused); enrollment, renewal, CRL and OCSP verified by openssl");
}

#[tokio::test]
async fn an_issuing_key_in_softhsm_rolls_over_to_a_new_token_key_at_sighup() {
    let hsm = tempfile::tempdir().unwrap();
    let Some(conf) = softhsm(hsm.path()) else {
        return;
    };
    let uri = format!("pkcs11:token=estca;object=issuing-ca?module-path={SOFTHSM_MODULE}");
    let mut dir = dir_with(&[]);
    let pin_file = private_file(&dir.path().join("pin"), &format!("{USER_PIN}\n"));
    let pass_file = private_file(&dir.path().join("passphrase"), &format!("{PASSPHRASE}\n"));
    let env = [
        ("ESTCA_CA__CREATE_IF_MISSING", "false"),
        ("ESTCA_CA__KEY_PASSPHRASE_FILE", pass_file.to_str().unwrap()),
        ("ESTCA_CA__PKCS11_PIN_FILE", pin_file.to_str().unwrap()),
        ("SOFTHSM2_CONF", conf.to_str().unwrap()),
        ("ESTCA_CA__KEY", uri.as_str()),
        ("ESTCA_REVOCATION__PUBLIC_URL", "http://ca.example.test"),
    ];
    let out = estca(&dir, &["init", "--pkcs11", &uri], &env[..4]);
    assert!(out.status.success(), "{}", text(&out));
    for (k, v) in env {
        dir.options.env.push((k.into(), v.into()));
    }
    let daemon = TestDaemon::start_in(dir);
    let http = daemon.ready_addr("revocation_http").to_string();
    let work = daemon.dir().path().to_path_buf();
    let ca_dir = daemon.dir().ca_dir();
    let root_pem = String::from_utf8(daemon.dir().root_ca_pem()).unwrap();
    std::fs::copy(ca_dir.join("issuing-ca.pem"), work.join("ca1.pem")).unwrap();
    let ca1_pem = std::fs::read_to_string(work.join("ca1.pem")).unwrap();
    std::fs::write(work.join("chain1.pem"), format!("{ca1_pem}{root_pem}")).unwrap();
    let ca1 = pem_subject_key_id(&work.join("ca1.pem"));

    daemon.dir().add_contract("5110");
    daemon.dir().add_account("kaga1", "5110", "user");
    daemon.dir().add_account("kaga2", "5110", "user");
    let first = daemon
        .client()
        .enroll("kaga1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(authority_key_id(&first), ca1);
    std::fs::write(work.join("first.pem"), pem("CERTIFICATE", &first)).unwrap();

    // The rollover: a new key in the same token, certified by the local root.
    // One year more than CA 1, which it must outlive even when run within the same second.
    let mut rollover_env = env.to_vec();
    rollover_env.push(("ESTCA_CA__ISSUING_VALIDITY_YEARS", "11"));
    let out = estca(daemon.dir(), &["ca", "rollover"], &rollover_env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("previous issuing CA retired to"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(USER_PIN), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(ca_dir.join("issuing-ca.key-uri")).unwrap(),
        "pkcs11:token=estca;object=issuing-ca-2\n"
    );
    assert_eq!(
        std::fs::read_to_string(ca_dir.join("previous/1/issuing-ca.key-uri")).unwrap(),
        "pkcs11:token=estca;object=issuing-ca\n"
    );
    assert!(!ca_dir.join("issuing-ca.key").exists());
    assert!(!ca_dir.join("previous/1/issuing-ca.key").exists());
    let ca2 = pem_subject_key_id(&ca_dir.join("issuing-ca.pem"));
    assert_ne!(ca1, ca2);
    let (extractable, sensitive, never_extractable, value_refused) =
        private_key_attributes(&conf, "issuing-ca-2");
    assert!(!extractable && sensitive && never_extractable && value_refused);

    // SIGHUP: the daemon takes the new generation without a restart.
    reload_until_served(&daemon, &http, &ca2).await;
    let second = daemon
        .client()
        .enroll("kaga2", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(
        authority_key_id(&second),
        ca2,
        "CA 2 issues after the reload"
    );
    std::fs::write(work.join("second.pem"), pem("CERTIFICATE", &second)).unwrap();
    let ca2_pem = std::fs::read_to_string(ca_dir.join("issuing-ca.pem")).unwrap();
    std::fs::write(work.join("ca2.pem"), &ca2_pem).unwrap();
    std::fs::write(work.join("chain2.pem"), format!("{ca2_pem}{root_pem}")).unwrap();
    let verified = openssl(&["verify", "-CAfile", "chain2.pem", "second.pem"], &work);
    assert!(verified.contains("second.pem: OK"), "{verified}");

    // CA 1's key, still in the token, answers for the certificate it issued.
    daemon.dir().cli_ok(
        &["account", "revoke", "kaga1", "--reason", "keyCompromise"],
        None,
    );
    let ocsp = ocsp_check(&work, &http, "ca1.pem", "first.pem", "chain1.pem");
    assert!(
        ocsp.contains("Response verify OK") && ocsp.contains("first.pem: revoked"),
        "{ocsp}"
    );
    let ocsp = ocsp_check(&work, &http, "ca2.pem", "second.pem", "chain2.pem");
    assert!(
        ocsp.contains("Response verify OK") && ocsp.contains("second.pem: good"),
        "{ocsp}"
    );
    let log = daemon.stderr();
    assert!(!log.contains(USER_PIN), "{log}");
}

/// Sends SIGHUP to the daemon and waits until its revocation listener serves the issuing CA
/// certificate whose subject key identifier is `ski` at `/ca.crt`.
async fn reload_until_served(daemon: &TestDaemon, http: &str, ski: &str) {
    daemon.reload();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let served = curl_get(&format!("http://{http}/ca.crt"));
        if subject_key_id(&served).as_deref() == Some(ski) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new issuing CA after SIGHUP:\n{}",
            daemon.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The body of a plain-HTTP GET, by curl (which must succeed).
fn curl_get(url: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}: {}", text(&out));
    out.stdout
}

/// The issuing key in the token under an offline root, from the first install to a
/// rollover: `init --offline-root --pkcs11` generates the key in the token and writes only a
/// request; the root certifies it elsewhere; `ca rollover` (no root key on this host) makes
/// the next key in the token and its request; `ca rollover --install` puts the root's answer
/// in place; after SIGHUP the new CA issues and the old one still answers OCSP for its own.
#[tokio::test]
async fn a_token_key_under_an_offline_root_is_installed_and_rolled_over_with_the_roots_answer() {
    let hsm = tempfile::tempdir().unwrap();
    let Some(conf) = softhsm(hsm.path()) else {
        return;
    };
    let uri = format!("pkcs11:token=estca;object=issuing-ca?module-path={SOFTHSM_MODULE}");
    let mut dir = dir_with(&[]);
    let base = dir.path().to_path_buf();
    let pin_file = private_file(&base.join("pin"), &format!("{USER_PIN}\n"));
    let root_dir = base.join("offline-root");
    let env = [
        ("ESTCA_CA__CREATE_IF_MISSING", "false"),
        ("ESTCA_CA__PKCS11_PIN_FILE", pin_file.to_str().unwrap()),
        ("SOFTHSM2_CONF", conf.to_str().unwrap()),
        ("ESTCA_CA__KEY", uri.as_str()),
        ("ESTCA_REVOCATION__PUBLIC_URL", "http://ca.example.test"),
    ];
    let ok = |dir: &TestDir, args: &[&str]| {
        let out = estca(dir, args, &env);
        assert!(out.status.success(), "estca {args:?}: {}", text(&out));
        text(&out)
    };
    let sign_issuing = |dir: &TestDir, csr: &Path, out: &Path, years: &str| {
        ok(
            dir,
            &[
                "root",
                "sign-issuing",
                csr.to_str().unwrap(),
                "--dir",
                root_dir.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--validity-years",
                years,
            ],
        )
    };
    ok(
        &dir,
        &[
            "root",
            "init",
            "--dir",
            root_dir.to_str().unwrap(),
            "--unencrypted",
        ],
    );

    // The daemon's host: a key in the token and its request, no key file, no root key.
    let out = ok(&dir, &["init", "--offline-root", "--pkcs11", &uri]);
    assert!(out.contains("issuing-ca.csr"), "{out}");
    let ca_dir = dir.ca_dir();
    assert!(!ca_dir.join("issuing-ca.key").exists());
    assert!(!ca_dir.join("root-ca.key").exists());
    let (extractable, sensitive, never_extractable, value_refused) =
        private_key_attributes(&conf, "issuing-ca");
    assert!(!extractable && sensitive && never_extractable && value_refused);
    let ca1_path = base.join("ca1.pem");
    sign_issuing(&dir, &ca_dir.join("issuing-ca.csr"), &ca1_path, "5");
    ok(
        &dir,
        &[
            "ca",
            "install-issuing",
            ca1_path.to_str().unwrap(),
            "--root",
            root_dir.join("root-ca.pem").to_str().unwrap(),
        ],
    );
    std::fs::copy(root_dir.join("root.crl"), ca_dir.join("root.crl")).unwrap();
    let ca1 = pem_subject_key_id(&ca1_path);

    for (k, v) in env {
        dir.options.env.push((k.into(), v.into()));
    }
    let daemon = TestDaemon::start_in(dir);
    let http = daemon.ready_addr("revocation_http").to_string();
    let root_pem = std::fs::read_to_string(root_dir.join("root-ca.pem")).unwrap();
    let ca1_pem = std::fs::read_to_string(&ca1_path).unwrap();
    std::fs::write(base.join("chain1.pem"), format!("{ca1_pem}{root_pem}")).unwrap();
    daemon.dir().add_contract("5110");
    daemon.dir().add_account("kaga1", "5110", "user");
    daemon.dir().add_account("kaga2", "5110", "user");
    let first = daemon
        .client()
        .enroll("kaga1", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(authority_key_id(&first), ca1);
    std::fs::write(base.join("first.pem"), pem("CERTIFICATE", &first)).unwrap();
    let verified = openssl(&["verify", "-CAfile", "chain1.pem", "first.pem"], &base);
    assert!(verified.contains("first.pem: OK"), "{verified}");

    // The rollover starts on this host: the next key in the token, and its request.
    let out = ok(daemon.dir(), &["ca", "rollover"]);
    let rollover_csr = ca_dir.join("rollover").join("issuing-ca.csr");
    assert!(out.contains(rollover_csr.to_str().unwrap()), "{out}");
    assert!(!out.contains(USER_PIN), "{out}");
    assert_eq!(
        std::fs::read_to_string(ca_dir.join("rollover/issuing-ca.key-uri")).unwrap(),
        "pkcs11:token=estca;object=issuing-ca-2\n"
    );
    let (extractable, sensitive, never_extractable, value_refused) =
        private_key_attributes(&conf, "issuing-ca-2");
    assert!(!extractable && sensitive && never_extractable && value_refused);
    // Until the answer is installed, CA 1 keeps issuing.
    assert_eq!(pem_subject_key_id(&ca_dir.join("issuing-ca.pem")), ca1);

    // The offline root certifies it (one year more than CA 1), and the answer is installed.
    let ca2_path = base.join("ca2.pem");
    sign_issuing(daemon.dir(), &rollover_csr, &ca2_path, "6");
    let out = ok(
        daemon.dir(),
        &["ca", "rollover", "--install", ca2_path.to_str().unwrap()],
    );
    assert!(out.contains("previous issuing CA retired to"), "{out}");
    assert!(!ca_dir.join("rollover").exists());
    assert_eq!(
        std::fs::read_to_string(ca_dir.join("issuing-ca.key-uri")).unwrap(),
        "pkcs11:token=estca;object=issuing-ca-2\n"
    );
    assert_eq!(
        std::fs::read_to_string(ca_dir.join("previous/1/issuing-ca.key-uri")).unwrap(),
        "pkcs11:token=estca;object=issuing-ca\n"
    );
    let ca2 = pem_subject_key_id(&ca2_path);
    assert_ne!(ca1, ca2);
    // A second run of the install changes nothing.
    let out = ok(
        daemon.dir(),
        &["ca", "rollover", "--install", ca2_path.to_str().unwrap()],
    );
    assert!(!out.contains("retired to"), "{out}");
    assert!(!ca_dir.join("previous/2").exists());

    reload_until_served(&daemon, &http, &ca2).await;
    let second = daemon
        .client()
        .enroll("kaga2", PASSWORD, &p256().csr_der)
        .await
        .pkcs7_certificate();
    assert_eq!(
        authority_key_id(&second),
        ca2,
        "CA 2 issues after the reload"
    );
    std::fs::write(base.join("second.pem"), pem("CERTIFICATE", &second)).unwrap();
    let ca2_pem = std::fs::read_to_string(&ca2_path).unwrap();
    std::fs::write(base.join("chain2.pem"), format!("{ca2_pem}{root_pem}")).unwrap();
    let verified = openssl(&["verify", "-CAfile", "chain2.pem", "second.pem"], &base);
    assert!(verified.contains("second.pem: OK"), "{verified}");

    // CA 1's key, still in the token, answers for the certificate it issued.
    daemon.dir().cli_ok(
        &["account", "revoke", "kaga1", "--reason", "keyCompromise"],
        None,
    );
    let ocsp = ocsp_check(&base, &http, "ca1.pem", "first.pem", "chain1.pem");
    assert!(
        ocsp.contains("Response verify OK") && ocsp.contains("first.pem: revoked"),
        "{ocsp}"
    );
    assert!(!daemon.stderr().contains(USER_PIN));
}
