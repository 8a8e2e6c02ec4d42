//! Tests of the CA module: the seed's certificate block, validity rules, CSR checks, the CMS
//! answers, the hierarchy on disk and the TLS server certificate. `openssl` checks the
//! results independently where it can.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use der::{Decode, Encode};
use time::macros::datetime;
use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName as PGeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;
use crate::config::{CaConfig, KeyAlgorithm};
use crate::model::{AccountId, ContractCode, Holder, KeyFingerprint, Role};

const ORG: &str = "The Shinkin Banks Information System Center Co.,Ltd.";
const ISSUING: &str = "Shinkin Internet Banking Intermediate CA - TEST";

/// A P-384 or P-256 CA configuration in `dir`, valid `years`, with test names.
pub(crate) fn config(dir: &Path, alg: KeyAlgorithm, years: u32) -> CaConfig {
    CaConfig {
        dir: dir.to_path_buf(),
        create_if_missing: false,
        key_algorithm: alg,
        country: "JP".into(),
        organization: ORG.into(),
        root_name: "Shinkin Internet Banking Root CA - TEST".into(),
        issuing_name: ISSUING.into(),
        root_validity_years: years,
        issuing_validity_years: years,
        server_cert_validity_days: 30,
        expiry_warning_days: 400,
        key_passphrase_file: None,
        key_passphrase_credential: "ca-key-passphrase".into(),
        key: String::new(),
        pkcs11_pin_file: None,
        pkcs11_pin_credential: "pkcs11-pin".into(),
        root_crl: None,
        root_crl_warning_days: 7,
    }
}

/// A new P-256 CA in `dir` (organisation "Test", subjects "{id}"): what the tests of the
/// layers above the CA sign with.
pub(crate) fn test_ca(dir: &Path) -> CertificateAuthority {
    test_ca_with(dir, "Test", KeyAlgorithm::P256)
}

/// A new CA in `dir` as [`test_ca`], but of `organization` and with keys of `alg`.
pub(crate) fn test_ca_with(
    dir: &Path,
    organization: &str,
    alg: KeyAlgorithm,
) -> CertificateAuthority {
    let config = test_ca_config_with(dir, organization, alg);
    CertificateAuthority::init(&config, None).unwrap();
    CertificateAuthority::load(&config, "{id}").unwrap()
}

/// The configuration of [`test_ca`] in `dir`.
pub(crate) fn test_ca_config(dir: &Path) -> CaConfig {
    test_ca_config_with(dir, "Test", KeyAlgorithm::P256)
}

/// The configuration of [`test_ca_with`].
fn test_ca_config_with(dir: &Path, organization: &str, alg: KeyAlgorithm) -> CaConfig {
    CaConfig {
        organization: organization.into(),
        root_name: "Test Root".into(),
        issuing_name: "Test Issuing".into(),
        ..config(dir, alg, 10)
    }
}

fn new_ca(dir: &Path, alg: KeyAlgorithm, years: u32) -> CertificateAuthority {
    CertificateAuthority::init(&config(dir, alg, years), None).unwrap();
    CertificateAuthority::load(&config(dir, alg, years), "{id} {contract}").unwrap()
}

fn rcgen_csr(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["ignored.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ignored");
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// A DER CSR made by `openssl req` for a key made by `openssl genpkey` with `args`.
fn openssl_csr(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    openssl_csr_with(dir, name, args, &["-subj", "/CN=ignored"])
}

/// As [`openssl_csr`], with `req_args` for `openssl req` (a subject or a configuration).
fn openssl_csr_with(dir: &Path, name: &str, args: &[&str], req_args: &[&str]) -> Vec<u8> {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let status = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl genpkey {args:?}");
    let status = Command::new("openssl")
        .args(["req", "-new"])
        .args(req_args)
        .args(["-outform", "DER", "-key"])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .status()
        .unwrap();
    assert!(status.success(), "openssl req {args:?}");
    std::fs::read(csr).unwrap()
}

/// A DER CSR for a new P-256 key made by `openssl req`, carrying a challengePassword of
/// `value` (as an EST client binding it to its TLS session would).
pub(crate) fn csr_with_challenge_password(dir: &Path, value: &str) -> Vec<u8> {
    let config = dir.join("challenge.cnf");
    std::fs::write(
        &config,
        format!(
            "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n\
             [dn]\nCN = u1\n[attrs]\nchallengePassword = {value}\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    openssl_csr_with(
        dir,
        "challenge",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &["-config", &config],
    )
}

fn id() -> AccountId {
    "nozawa1".parse().unwrap()
}

fn contract() -> ContractCode {
    "5110".parse().unwrap()
}

fn issue(
    ca: &CertificateAuthority,
    key: &CsrKey,
    not_before: OffsetDateTime,
) -> Result<SignedCertificate, CaError> {
    ca.sign_end_entity(&EndEntityRequest {
        serial: &ReservedSerial::unreserved_for_tests(),
        holder: &Holder::Account {
            id: id(),
            contract: contract(),
            role: Role::User,
            issued_num: 1,
        },
        not_before,
        key,
        hosts: &[],
    })
}

/// Reserves a serial in a fresh store, has `issue` sign a service certificate with it, and
/// records it, as the daemon does; returns what the service gets, with the record read back
/// from the store.
pub(super) fn recorded<T>(
    issue: impl FnOnce(&ReservedSerial) -> Unrecorded<T>,
) -> (T, crate::model::CertificateRecord) {
    use crate::store::StoreReads;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::SledStore::open(&dir.path().join("db")).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let serial = super::service::reserve_serial(&store, OffsetDateTime::now_utc())
                .await
                .unwrap();
            let unrecorded = issue(&serial);
            let service = unrecorded.record_in(&store).await.unwrap();
            let record = store.certificate(&serial.serial()).await.unwrap().unwrap();
            (service, record)
        })
}

fn parsed(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn write_pem(path: &Path, der: &[u8]) {
    let pem = pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der).unwrap();
    std::fs::write(path, pem).unwrap();
}

fn openssl_verify(ca_dir: &Path, leaf: &Path, purpose: &str) {
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
        .arg(ca_dir.join("root-ca.pem"))
        .arg("-untrusted")
        .arg(ca_dir.join("issuing-ca.pem"))
        .arg(leaf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha1(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

#[test]
fn end_entity_reproduces_the_seed_certificate_block() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 10)
        .with_public_url("http://ca.example.com:8080/")
        .unwrap();
    let key = validate_csr(&rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256)).unwrap();
    let now = OffsetDateTime::now_utc();
    let signed = issue(&ca, &key, now).unwrap();
    let cert = parsed(&signed.der);

    // Subject: one attribute per RDN, in the seed's order, with the right string types.
    let rdns: Vec<(String, String, u32)> = cert
        .subject()
        .iter()
        .map(|rdn| {
            assert_eq!(rdn.iter().count(), 1, "one attribute per RDN");
            let atv = rdn.iter().next().unwrap();
            (
                atv.attr_type().to_id_string(),
                atv.as_str().unwrap().to_owned(),
                atv.attr_value().header.tag().0,
            )
        })
        .collect();
    let expected = [
        ("2.5.4.6", "JP", 19),
        ("2.5.4.10", ORG, 12),
        ("2.5.4.11", ISSUING, 12),
        ("2.5.4.11", "USERTYPE - 2", 12),
        ("2.5.4.11", "CERTISSUEDNUM - 1", 12),
        ("2.5.4.3", "nozawa1 5110", 12),
    ];
    let expected: Vec<(String, String, u32)> = expected
        .iter()
        .map(|(o, v, t)| (o.to_string(), v.to_string(), *t))
        .collect();
    assert_eq!(rdns, expected);
    assert_eq!(
        signed.subject,
        format!(
            "C=JP, O={ORG}, OU={ISSUING}, OU=USERTYPE - 2, OU=CERTISSUEDNUM - 1, CN=nozawa1 5110"
        )
    );

    // Issuer is the issuing CA's subject, byte for byte.
    let issuing = parsed(ca.issuing_certificate_der());
    assert_eq!(cert.issuer().as_raw(), issuing.subject().as_raw());

    // Serial: 16 bytes, positive.
    assert_eq!(cert.raw_serial().len(), 16);
    assert!(cert.raw_serial()[0] & 0x80 == 0 && cert.raw_serial()[0] != 0);

    // Validity: whole seconds, one calendar year.
    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    assert_eq!(nb, now.replace_nanosecond(0).unwrap());
    assert_eq!(na, nb.replace_year(nb.year() + 1).unwrap());
    assert_eq!((signed.not_before, signed.not_after), (nb, na));

    // Version 3, ecdsa-with-SHA256.
    assert_eq!(cert.version().0, 2);
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2"
    );

    // Extensions: exactly these, in this order, with this criticality.
    let exts: Vec<(String, bool)> = cert
        .extensions()
        .iter()
        .map(|e| (e.oid.to_id_string(), e.critical))
        .collect();
    let want = [
        ("2.5.29.19", true),
        ("2.5.29.15", true),
        ("2.5.29.37", false),
        ("2.5.29.14", false),
        ("2.5.29.35", false),
        ("2.5.29.31", false),
        ("1.3.6.1.5.5.7.1.1", false),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(o, c)| (o.to_string(), *c)).collect();
    assert_eq!(exts, want);
    // The revocation URLs under the public URL (its trailing slash ignored).
    let uris = |names: &[PGeneralName<'_>]| -> Vec<String> {
        names
            .iter()
            .map(|n| match n {
                PGeneralName::URI(u) => u.to_string(),
                other => panic!("not a URI: {other:?}"),
            })
            .collect()
    };
    let mut crl_urls = Vec::new();
    let mut access = Vec::new();
    for e in cert.extensions() {
        match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    assert!(point.reasons.is_none() && point.crl_issuer.is_none());
                    match &point.distribution_point {
                        Some(x509_parser::extensions::DistributionPointName::FullName(n)) => {
                            crl_urls.extend(uris(n))
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for d in aia.iter() {
                    access.push((
                        d.access_method.to_id_string(),
                        uris(std::slice::from_ref(&d.access_location)),
                    ));
                }
            }
            _ => {}
        }
    }
    // The CRL and certificate of this issuing CA generation (its key identifier's first
    // eight bytes), so that they stay right after a rollover.
    let generation = hex::encode(&ca.key_id()[..8]);
    assert_eq!(generation, ca.generation_id());
    assert_eq!(
        crl_urls,
        [format!("http://ca.example.com:8080/crl/{generation}")]
    );
    assert_eq!(
        access,
        [
            (
                "1.3.6.1.5.5.7.48.1".to_owned(),
                vec!["http://ca.example.com:8080/ocsp".to_owned()]
            ),
            (
                "1.3.6.1.5.5.7.48.2".to_owned(),
                vec![format!("http://ca.example.com:8080/ca/{generation}.crt")]
            ),
        ]
    );
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(!bc.ca && bc.path_len_constraint.is_none());
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature());
    assert_eq!(ku.flags, 1, "digitalSignature only: {ku}");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && eku.other.is_empty() && !eku.any);
    let ski = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ski, sha1(&cert.public_key().subject_public_key.data));
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.clone(),
            _ => None,
        })
        .unwrap();
    let issuing_ski = issuing
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    assert_eq!(aki.0, issuing_ski.as_slice());

    // The CSR's key, and a signature by the issuing CA.
    assert_eq!(cert.public_key().raw, key.spki_der());
    cert.verify_signature(Some(issuing.public_key())).unwrap();

    // openssl agrees that it chains and is good for client authentication.
    let leaf = dir.path().join("leaf.pem");
    write_pem(&leaf, &signed.der);
    openssl_verify(dir.path(), &leaf, "sslclient");
}

#[test]
fn rsa_leaf_gets_key_encipherment_and_other_keys_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 10);
    let rsa = validate_csr(&openssl_csr(
        dir.path(),
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    ))
    .unwrap();
    assert_eq!(rsa.kind(), KeyKind::Rsa { bits: 2048 });
    let signed = issue(&ca, &rsa, OffsetDateTime::now_utc()).unwrap();
    let cert = parsed(&signed.der);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment() && !ku.non_repudiation());
    let leaf = dir.path().join("rsa.pem");
    write_pem(&leaf, &signed.der);
    openssl_verify(dir.path(), &leaf, "sslclient");

    let ed = validate_csr(&rcgen_csr(&rcgen::PKCS_ED25519)).unwrap();
    let signed = issue(&ca, &ed, OffsetDateTime::now_utc()).unwrap();
    let cert = parsed(&signed.der);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert_eq!(ku.flags, 1);
}

#[test]
fn validity_is_one_calendar_year_and_stays_within_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 30);
    let key = validate_csr(&rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256)).unwrap();

    let signed = issue(&ca, &key, datetime!(2028-02-29 12:34:56.789 UTC)).unwrap();
    assert_eq!(signed.not_before, datetime!(2028-02-29 12:34:56 UTC));
    assert_eq!(signed.not_after, datetime!(2029-02-28 12:34:56 UTC));
    let cert = parsed(&signed.der);
    assert_eq!(
        cert.validity().not_after.to_datetime(),
        datetime!(2029-02-28 12:34:56 UTC)
    );

    // A time zone other than UTC is converted, not mislabelled.
    let signed = issue(&ca, &key, datetime!(2030-01-01 09:00:00 +9)).unwrap();
    assert_eq!(signed.not_before, datetime!(2030-01-01 00:00:00 UTC));

    // UTCTime through 2049, GeneralizedTime from 2050.
    let signed = issue(&ca, &key, datetime!(2049-06-01 00:00:00 UTC)).unwrap();
    let cert = x509_cert::Certificate::from_der(&signed.der).unwrap();
    let validity = cert.tbs_certificate.validity;
    assert!(matches!(
        validity.not_before,
        x509_cert::time::Time::UtcTime(_)
    ));
    assert!(matches!(
        validity.not_after,
        x509_cert::time::Time::GeneralTime(_)
    ));

    // A CA that expires in six months refuses.
    let soon = ca.issuing_not_after() - time::Duration::days(182);
    let err = issue(&ca, &key, soon).unwrap_err();
    assert!(matches!(err, CaError::CaExpiresTooSoon { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("roll over to a new issuing CA (`estca ca rollover`"),
        "{err}"
    );
}

#[test]
fn csr_keys_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    for (alg, kind) in [
        (&rcgen::PKCS_ECDSA_P256_SHA256, KeyKind::EcdsaP256),
        (&rcgen::PKCS_ECDSA_P384_SHA384, KeyKind::EcdsaP384),
        (&rcgen::PKCS_ED25519, KeyKind::Ed25519),
    ] {
        let der = rcgen_csr(alg);
        let key = validate_csr(&der).unwrap();
        assert_eq!(key.kind(), kind);
        assert_eq!(
            key.fingerprint(),
            KeyFingerprint::of_spki_der(key.spki_der())
        );
    }

    let rsa1024 = openssl_csr(
        dir.path(),
        "rsa1024",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    );
    assert_eq!(
        validate_csr(&rsa1024).unwrap_err(),
        CsrError::UnsupportedKey("RSA 1024-bit keys are too short: use 2048 to 4096 bits".into())
    );
    let p521 = openssl_csr(
        dir.path(),
        "p521",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp521r1",
        ],
    );
    let err = validate_csr(&p521).unwrap_err();
    assert_eq!(
        err,
        CsrError::UnsupportedKey("curve secp521r1 is not accepted: use P-256 or P-384".into())
    );
    assert!(err.to_string().contains("P-256 or P-384"));
    let k1 = openssl_csr(
        dir.path(),
        "k1",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp256k1",
        ],
    );
    assert_eq!(
        validate_csr(&k1).unwrap_err(),
        CsrError::UnsupportedKey("curve secp256k1 is not accepted: use P-256 or P-384".into())
    );
    let ed448 = openssl_csr(dir.path(), "ed448", &["-algorithm", "ED448"]);
    assert!(matches!(
        validate_csr(&ed448).unwrap_err(),
        CsrError::UnsupportedKey(_)
    ));
}

#[test]
fn csr_signature_and_encoding_are_checked() {
    let good = rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    assert!(validate_csr(&good).is_ok());

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    assert_eq!(validate_csr(&flipped).unwrap_err(), CsrError::BadSignature);

    let mut ed = rcgen_csr(&rcgen::PKCS_ED25519);
    let last = ed.len() - 1;
    ed[last] ^= 0x80;
    assert_eq!(validate_csr(&ed).unwrap_err(), CsrError::BadSignature);

    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(validate_csr(&trailing).unwrap_err(), CsrError::TrailingData);

    for garbage in [
        &b""[..],
        b"hello",
        b"\x30\x03\x02\x01\x00",
        &good[..good.len() / 2],
    ] {
        let err = validate_csr(garbage).unwrap_err();
        assert!(matches!(err, CsrError::NotDer(_)), "{err}");
        assert!(err.to_string().contains("PKCS#10"), "{err}");
    }
}

/// RFC 2986 defines version 0 alone; the version is read before the signature.
#[test]
fn a_csr_of_another_version_is_refused() {
    let mut csr = rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    // The first INTEGER 0 is CertificationRequestInfo's version.
    let at = csr
        .windows(3)
        .position(|w| w == [0x02, 0x01, 0x00])
        .unwrap();
    csr[at + 2] = 0x01;
    let err = validate_csr(&csr).unwrap_err();
    assert_eq!(err, CsrError::Version(1));
    assert!(err.to_string().contains("RFC 2986"), "{err}");
}

/// RFC 7030 section 3.5: a non-empty challengePassword is tls-unique to be verified, which
/// estca cannot; a CSR without one passes.
#[test]
fn a_challenge_password_is_refused_as_an_unverifiable_channel_binding() {
    let dir = tempfile::tempdir().unwrap();
    let bound = csr_with_challenge_password(dir.path(), "c29tZSB0bHMtdW5pcXVl");
    assert!(validate_csr(&bound).is_ok(), "the CSR itself is valid");
    let err = csr::refuse_channel_binding(&bound).unwrap_err();
    assert_eq!(err, CsrError::ChannelBinding);
    assert!(err.to_string().contains("RFC 7030 section 3.5"), "{err}");
    let plain = rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    csr::refuse_channel_binding(&plain).unwrap();
}

#[test]
fn certs_only_pkcs7_refuses_what_is_not_one_der_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 10);
    let issuing = ca.issuing_certificate_der();
    let mut trailing = issuing.to_vec();
    trailing.push(0);
    for bad in [
        &b"\x04\x01x"[..],
        &trailing,
        &issuing[..issuing.len() - 1],
        b"",
    ] {
        assert!(pkcs7::certs_only(&[bad]).is_err(), "{bad:02x?}");
    }
}

#[test]
fn certs_only_pkcs7_holds_both_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 10);
    let root = ca.root_certificate_der().unwrap();
    let issuing = ca.issuing_certificate_der();
    let p7 = pkcs7::certs_only(&[issuing, root]).unwrap();
    assert_eq!(ca.cacerts_pkcs7(), p7.as_slice());

    let ci = cms::content_info::ContentInfo::from_der(&p7).unwrap();
    assert_eq!(ci.content_type, const_oid::db::rfc5911::ID_SIGNED_DATA);
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    assert_eq!(sd.version, cms::content_info::CmsVersion::V1);
    assert!(sd.digest_algorithms.is_empty());
    assert!(sd.signer_infos.0.is_empty());
    assert!(sd.crls.is_none());
    assert_eq!(
        sd.encap_content_info.econtent_type,
        const_oid::db::rfc5911::ID_DATA
    );
    assert!(sd.encap_content_info.econtent.is_none());
    let mut certs: Vec<Vec<u8>> = sd
        .certificates
        .unwrap()
        .0
        .iter()
        .map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => c.to_der().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    certs.sort();
    let mut want = vec![issuing.to_vec(), root.to_vec()];
    want.sort();
    assert_eq!(certs, want);

    let file = dir.path().join("cacerts.p7");
    std::fs::write(&file, &p7).unwrap();
    let out = Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-noout", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("subject=").count(), 2, "{text}");
    assert!(
        text.contains("Shinkin Internet Banking Root CA - TEST"),
        "{text}"
    );
    assert!(text.contains(ISSUING), "{text}");
}

#[test]
fn csr_attributes_name_the_accepted_keys() {
    let der = pkcs7::csr_attributes().unwrap();
    let attrs = Vec::<pkcs7::AttrOrOid>::from_der(&der).unwrap();
    assert_eq!(attrs.len(), 3);
    assert_eq!(
        attrs[0],
        pkcs7::AttrOrOid::Oid(const_oid::db::rfc5912::RSA_ENCRYPTION)
    );
    let pkcs7::AttrOrOid::Attribute(ec) = &attrs[1] else {
        panic!("{:?}", attrs[1]);
    };
    assert_eq!(ec.oid, const_oid::db::rfc5912::ID_EC_PUBLIC_KEY);
    let curves: Vec<const_oid::ObjectIdentifier> =
        ec.values.iter().map(|v| v.decode_as().unwrap()).collect();
    assert!(curves.contains(&const_oid::db::rfc5912::SECP_256_R_1));
    assert!(curves.contains(&const_oid::db::rfc5912::SECP_384_R_1));
    assert_eq!(
        attrs[2],
        pkcs7::AttrOrOid::Oid(const_oid::db::rfc8410::ID_ED_25519)
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_load_permissions_and_import() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let cfg = config(&dir, KeyAlgorithm::P256, 10);
    assert!(!CertificateAuthority::exists(&cfg));
    assert!(matches!(
        CertificateAuthority::load(&cfg, "{id}").unwrap_err(),
        CaError::NotInitialized { .. }
    ));
    let report = CertificateAuthority::init(&cfg, None).unwrap();
    assert!(CertificateAuthority::exists(&cfg));
    assert!(report.to_string().contains(ISSUING));
    assert_eq!(mode(&dir.join("issuing-ca.key")), 0o600);
    assert_eq!(mode(&dir.join("root-ca.key")), 0o600);
    assert!(matches!(
        CertificateAuthority::init(&cfg, None).unwrap_err(),
        CaError::AlreadyExists { .. }
    ));

    // The hierarchy: root CA:TRUE critical, keyCertSign+cRLSign; issuing pathLen 0, signed
    // by the root, within the root's validity.
    let ca = CertificateAuthority::load(&cfg, "{id} {contract}").unwrap();
    let root = parsed(ca.root_certificate_der().unwrap());
    let issuing = parsed(ca.issuing_certificate_der());
    let rbc = root.basic_constraints().unwrap().unwrap();
    assert!(rbc.critical && rbc.value.ca);
    let rku = root.key_usage().unwrap().unwrap();
    assert!(rku.critical && rku.value.key_cert_sign() && rku.value.crl_sign());
    assert!(!rku.value.digital_signature());
    let ibc = issuing.basic_constraints().unwrap().unwrap();
    assert!(ibc.critical && ibc.value.ca && ibc.value.path_len_constraint == Some(0));
    let iku = issuing.key_usage().unwrap().unwrap();
    assert!(iku.critical && iku.value.key_cert_sign() && iku.value.crl_sign());
    assert!(iku.value.digital_signature());
    issuing.verify_signature(Some(root.public_key())).unwrap();
    assert!(issuing.validity().not_after <= root.validity().not_after);
    assert_eq!(issuing.subject().to_string(), report.issuing_subject);
    assert_eq!(ca.issuing_not_after(), report.issuing_not_after);
    // O keeps its comma as a single value.
    assert_eq!(
        issuing
            .subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        ORG
    );

    // Import of the issuing CA, with its chain, into a second directory.
    let chain = tmp.path().join("chain.pem");
    let chain_text = std::fs::read_to_string(dir.join("issuing-ca.pem")).unwrap()
        + &std::fs::read_to_string(dir.join("root-ca.pem")).unwrap();
    std::fs::write(&chain, chain_text).unwrap();
    let dir2 = tmp.path().join("ca2");
    let cfg2 = config(&dir2, KeyAlgorithm::P256, 10);
    let report2 =
        CertificateAuthority::import(&cfg2, &chain, &dir.join("issuing-ca.key"), None).unwrap();
    assert_eq!(report2.root_certificate, Some(dir2.join("root-ca.pem")));
    assert_eq!(report2.root_key, None);
    assert_eq!(mode(&dir2.join("issuing-ca.key")), 0o600);
    assert!(!dir2.join("root-ca.key").exists());
    let ca2 = CertificateAuthority::load(&cfg2, "{id} {contract}").unwrap();
    assert_eq!(ca2.issuing_certificate_der(), ca.issuing_certificate_der());
    assert_eq!(ca2.root_certificate_der(), ca.root_certificate_der());
    assert_eq!(ca2.cacerts_pkcs7(), ca.cacerts_pkcs7());
    assert!(matches!(
        CertificateAuthority::import(&cfg2, &chain, &dir.join("issuing-ca.key"), None).unwrap_err(),
        CaError::AlreadyExists { .. }
    ));

    // Import of the intermediate alone (with a SEC1 key) is refused: cacerts must carry the
    // root (RFC 7030 section 4.1.3). With the root after it, the SEC1 key is taken.
    let sec1 = tmp.path().join("sec1.key");
    let status = Command::new("openssl")
        .args(["ec", "-in"])
        .arg(dir.join("issuing-ca.key"))
        .arg("-out")
        .arg(&sec1)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::read_to_string(&sec1)
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    let dir3 = tmp.path().join("ca3");
    let cfg3 = config(&dir3, KeyAlgorithm::P256, 10);
    let err =
        CertificateAuthority::import(&cfg3, &dir.join("issuing-ca.pem"), &sec1, None).unwrap_err();
    assert!(err.to_string().contains("RFC 7030 section 4.1.3"), "{err}");
    assert!(!dir3.join("issuing-ca.key").exists());
    let report3 = CertificateAuthority::import(&cfg3, &chain, &sec1, None).unwrap();
    assert_eq!(report3.root_certificate, Some(dir3.join("root-ca.pem")));
    let ca3 = CertificateAuthority::load(&cfg3, "{id}").unwrap();
    let key = validate_csr(&rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256)).unwrap();
    let signed = issue(&ca3, &key, OffsetDateTime::now_utc()).unwrap();
    parsed(&signed.der)
        .verify_signature(Some(issuing.public_key()))
        .unwrap();
    // A daemon does not start on a CA directory whose chain stops short of the root.
    std::fs::remove_file(dir3.join("root-ca.pem")).unwrap();
    let err = CertificateAuthority::load_or_create(&cfg3, "{id}").unwrap_err();
    assert!(err.to_string().contains("not a self-signed root"), "{err}");

    // Wrong key, and a root given as the intermediate, are refused.
    let dir4 = tmp.path().join("ca4");
    let cfg4 = config(&dir4, KeyAlgorithm::P256, 10);
    let err =
        CertificateAuthority::import(&cfg4, &chain, &dir.join("root-ca.key"), None).unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
    let err = CertificateAuthority::import(
        &cfg4,
        &dir.join("root-ca.pem"),
        &dir.join("root-ca.key"),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, CaError::NotCa { .. }), "{err}");
    assert!(!dir4.join("issuing-ca.key").exists());

    // A key file readable by others is refused, naming the file.
    let key_path = dir.join("issuing-ca.key");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = CertificateAuthority::load(&cfg, "{id}").unwrap_err();
    assert!(
        matches!(err, CaError::InsecureKeyFile { mode: 0o644, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&key_path.display().to_string()), "{msg}");
    assert!(msg.contains("0644") && msg.contains("chmod 600"), "{msg}");
    assert!(!msg.contains("PRIVATE KEY"), "{msg}");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root_key: PathBuf = dir.join("root-ca.key");
    std::fs::set_permissions(&root_key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        CertificateAuthority::load(&cfg, "{id}").unwrap_err(),
        CaError::InsecureKeyFile { .. }
    ));
}

#[test]
fn p384_hierarchy_signs_with_sha384() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P384, 10);
    let issuing = parsed(ca.issuing_certificate_der());
    assert_eq!(
        issuing.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.3"
    );
    let key = validate_csr(&rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256)).unwrap();
    let signed = issue(&ca, &key, OffsetDateTime::now_utc()).unwrap();
    let cert = parsed(&signed.der);
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.3"
    );
    cert.verify_signature(Some(issuing.public_key())).unwrap();
    let leaf = dir.path().join("leaf.pem");
    write_pem(&leaf, &signed.der);
    openssl_verify(dir.path(), &leaf, "sslclient");
}

#[test]
fn tls_server_certificate_has_the_names_and_chains() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 10);
    let hosts = vec![
        "ca.example.jp".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let (TlsServerCredentials { chain, key }, record) =
        recorded(|serial| ca.issue_tls_server_certificate(serial, &hosts, 30).unwrap());
    assert_eq!(record.der, chain[0].as_ref());
    assert_eq!(
        record.holder,
        Holder::TlsServer {
            names: hosts.clone()
        }
    );
    assert_eq!(record.subject, "CN=ca.example.jp");
    assert_eq!(
        parsed(chain[0].as_ref()).raw_serial(),
        record.serial.as_bytes()
    );
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1].as_ref(), ca.issuing_certificate_der());
    assert!(matches!(key, rustls_pki_types::PrivateKeyDer::Pkcs8(_)));
    let cert = parsed(chain[0].as_ref());
    let issuing = parsed(ca.issuing_certificate_der());
    cert.verify_signature(Some(issuing.public_key())).unwrap();
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "ca.example.jp"
    );
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(
        san.general_names,
        vec![
            PGeneralName::DNSName("ca.example.jp"),
            PGeneralName::IPAddress(&[127, 0, 0, 1]),
            PGeneralName::IPAddress(&std::net::Ipv6Addr::LOCALHOST.octets()),
        ]
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    let days = (cert.validity().not_after.to_datetime() - OffsetDateTime::now_utc()).whole_days();
    assert!((29..=30).contains(&days), "{days}");

    // The key is the certificate's, and rustls accepts the pair.
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let public = signing_key.public_key().unwrap();
    assert_eq!(public.as_ref(), cert.public_key().raw);
    assert_eq!(
        record.key,
        KeyFingerprint::of_spki_der(cert.public_key().raw)
    );
    assert_eq!(
        record.not_after,
        cert.validity().not_after.to_datetime(),
        "the record's validity is the certificate's"
    );

    let leaf = dir.path().join("server.pem");
    write_pem(&leaf, chain[0].as_ref());
    openssl_verify(dir.path(), &leaf, "sslserver");

    assert!(matches!(
        ca.issue_tls_server_certificate(
            &ReservedSerial::unreserved_for_tests(),
            &["bad host!".to_string()],
            30
        ),
        Err(CaError::InvalidName(_))
    ));
    // The server's own names may hold a wildcard as their whole first label, nowhere else.
    assert!(ca
        .issue_tls_server_certificate(
            &ReservedSerial::unreserved_for_tests(),
            &["*.ca.example.jp".to_string()],
            30
        )
        .is_ok());
    let refused = ca
        .issue_tls_server_certificate(
            &ReservedSerial::unreserved_for_tests(),
            &["ca.*.example.jp".to_string()],
            30,
        )
        .unwrap_err()
        .to_string();
    assert!(refused.contains("fix server.hostnames"), "{refused}");
}

#[test]
fn without_a_public_url_no_revocation_extensions_are_written_and_bad_urls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 10)
        .with_public_url("")
        .unwrap();
    let key = validate_csr(&rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256)).unwrap();
    let signed = issue(&ca, &key, OffsetDateTime::now_utc()).unwrap();
    assert_eq!(parsed(&signed.der).extensions().len(), 5);
    for bad in [
        "ftp://ca.example",
        "ca.example",
        "http://",
        "http://ca.example/?x=1",
        "http://ca.example/#f",
        "http://ca.exämple",
    ] {
        let err = new_ca(tempfile::tempdir().unwrap().path(), KeyAlgorithm::P256, 10)
            .with_public_url(bad)
            .unwrap_err();
        assert!(
            err.to_string().contains("revocation.public_url"),
            "{bad}: {err}"
        );
    }
}

/// Review item 15: at load, the error names exactly which CA file is missing or unreadable,
/// and a partial CA directory is never mistaken for an empty one (before, a lost
/// `issuing-ca.key` made the daemon try `init` and report "root-ca.pem already exists").
mod missing_files {
    use super::*;

    /// A fresh hierarchy in `dir`, and its configuration with `create_if_missing` set.
    fn hierarchy(dir: &Path) -> CaConfig {
        let cfg = CaConfig {
            create_if_missing: true,
            ..config(dir, KeyAlgorithm::P256, 10)
        };
        CertificateAuthority::init(&cfg, None).unwrap();
        cfg
    }

    fn load_error(cfg: &CaConfig) -> String {
        let err = CertificateAuthority::load_or_create(cfg, "{id}").unwrap_err();
        let load_err = CertificateAuthority::load(cfg, "{id}").unwrap_err();
        assert_eq!(err.to_string(), load_err.to_string());
        let message = err.to_string();
        assert!(!message.contains("already exists"), "{message}");
        message
    }

    #[test]
    fn a_missing_issuing_key_is_named_and_nothing_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = hierarchy(tmp.path());
        let root_before = std::fs::read(tmp.path().join("root-ca.pem")).unwrap();
        std::fs::remove_file(tmp.path().join("issuing-ca.key")).unwrap();
        let message = load_error(&cfg);
        assert!(message.contains("issuing-ca.key is missing"), "{message}");
        assert!(message.contains("backup"), "{message}");
        assert!(!tmp.path().join("issuing-ca.key").exists());
        assert_eq!(
            std::fs::read(tmp.path().join("root-ca.pem")).unwrap(),
            root_before
        );
    }

    #[test]
    fn a_missing_issuing_certificate_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = hierarchy(tmp.path());
        std::fs::remove_file(tmp.path().join("issuing-ca.pem")).unwrap();
        let message = load_error(&cfg);
        assert!(message.contains("issuing-ca.pem is missing"), "{message}");
    }

    #[test]
    fn a_root_without_any_issuing_file_names_both() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = hierarchy(tmp.path());
        std::fs::remove_file(tmp.path().join("issuing-ca.pem")).unwrap();
        std::fs::remove_file(tmp.path().join("issuing-ca.key")).unwrap();
        let message = load_error(&cfg);
        assert!(
            message.contains("issuing-ca.pem and issuing-ca.key are missing"),
            "{message}"
        );
        assert!(message.contains("root-ca.pem"), "{message}");
    }

    #[test]
    fn an_unreadable_issuing_key_or_root_certificate_is_named() {
        // A directory in the file's place: unreadable even for root, who ignores modes.
        for name in ["issuing-ca.key", "issuing-ca.pem", "root-ca.pem"] {
            let tmp = tempfile::tempdir().unwrap();
            let cfg = hierarchy(tmp.path());
            let path = tmp.path().join(name);
            std::fs::remove_file(&path).unwrap();
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                .create(&path)
                .unwrap();
            let message = load_error(&cfg);
            assert!(
                message.contains(&format!("cannot access {}", path.display())),
                "{name}: {message}"
            );
        }
    }

    #[test]
    fn an_empty_directory_is_created_only_when_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path(), KeyAlgorithm::P256, 10);
        let err = CertificateAuthority::load_or_create(&cfg, "{id}").unwrap_err();
        assert!(matches!(err, CaError::NotInitialized { .. }), "{err}");
        let cfg = CaConfig {
            create_if_missing: true,
            ..cfg
        };
        let (_, created) = CertificateAuthority::load_or_create(&cfg, "{id}").unwrap();
        assert!(created.is_some());
        let (_, created) = CertificateAuthority::load_or_create(&cfg, "{id}").unwrap();
        assert!(created.is_none(), "a second start loads the same CA");
    }

    #[test]
    fn an_offline_root_key_is_not_required() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = hierarchy(tmp.path());
        std::fs::remove_file(tmp.path().join("root-ca.key")).unwrap();
        CertificateAuthority::load(&cfg, "{id}").unwrap();
    }
}

/// Review item 14: the outlook of an issuing CA valid one year: issuance has stopped at once
/// (a one-year certificate no longer fits), was approaching within the lead time before, and
/// distant before that; signing refuses exactly when the outlook says it stopped.
#[test]
fn the_expiry_outlook_follows_the_one_year_rule() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 1);
    let lead = time::Duration::days(400);
    // A moment after the CA was made (valid exactly one year from then, to the second).
    let now = OffsetDateTime::now_utc() + time::Duration::seconds(2);
    assert_eq!(
        ca.expiry_at(now, lead).unwrap(),
        CaExpiry::IssuanceStopped {
            not_after: ca.issuing_not_after()
        }
    );
    let key = validate_csr(&rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256)).unwrap();
    let err = issue(&ca, &key, now).unwrap_err();
    assert!(matches!(err, CaError::CaExpiresTooSoon { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("cannot issue certificates now") && message.contains("new issuing CA"),
        "{message}"
    );

    let ends = ca.issuance_ends().unwrap();
    assert!(
        ends < now && now - ends < time::Duration::minutes(1),
        "{ends}"
    );
    let earlier = ends - time::Duration::days(10);
    assert_eq!(
        ca.expiry_at(earlier, lead).unwrap(),
        CaExpiry::Approaching {
            not_after: ca.issuing_not_after(),
            issuance_ends: ends
        }
    );
    issue(&ca, &key, earlier).unwrap();
    assert_eq!(
        ca.expiry_at(ends - time::Duration::days(100), time::Duration::days(367))
            .unwrap(),
        CaExpiry::Distant
    );
}

/// An issuing CA certificate whose keyUsage lacks cRLSign is refused wherever estca takes
/// one in (load, import; install-issuing and rollover install use the same check): its key
/// signs the CRLs, which clients would refuse (RFC 5280 6.3.3 (f)).
#[test]
fn an_issuing_ca_without_crl_sign_is_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    test_ca(&dir);
    let config = test_ca_config(&dir);
    let root_der = files::read_certificates(&dir.join("root-ca.pem"))
        .unwrap()
        .remove(0);
    let root_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join("root-ca.key")).unwrap())
            .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(
        &rustls_pki_types::CertificateDer::from(root_der.as_slice()),
        root_key,
    )
    .unwrap();
    let issuing_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join("issuing-ca.key")).unwrap())
            .unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test Issuing");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_after = profile::add_years(OffsetDateTime::now_utc(), 5).unwrap();
    let no_crl_sign = params.signed_by(&issuing_key, &issuer).unwrap();

    // Import: refused, and nothing written.
    let chain = tmp.path().join("chain.pem");
    std::fs::write(
        &chain,
        no_crl_sign.pem() + &std::fs::read_to_string(dir.join("root-ca.pem")).unwrap(),
    )
    .unwrap();
    let dir2 = tmp.path().join("ca2");
    let err = CertificateAuthority::import(
        &test_ca_config(&dir2),
        &chain,
        &dir.join("issuing-ca.key"),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, CaError::NoCrlSign { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("CN=Test Issuing")
            && message.contains("lacks cRLSign")
            && message.contains("keyCertSign and cRLSign"),
        "{message}"
    );
    assert!(!dir2.join("issuing-ca.key").exists());

    // Load: a CA directory whose issuing certificate was replaced by it is refused.
    std::fs::write(dir.join("issuing-ca.pem"), no_crl_sign.pem()).unwrap();
    let err = CertificateAuthority::load(&config, "{id}").unwrap_err();
    assert!(matches!(err, CaError::NoCrlSign { .. }), "{err}");
    assert!(err.to_string().contains("issuing-ca.pem"), "{err}");
}

/// A first host name longer than ub-common-name (64) is not put in the CN: the certificate
/// is issued with an empty subject and a critical subjectAltName (RFC 5280 4.2.1.6), which
/// still carries every name, and openssl verifies it for sslserver.
#[test]
fn a_tls_server_certificate_for_a_long_host_name_has_no_attribute_over_64_characters() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), KeyAlgorithm::P256, 10);
    let long = format!("{}.example.jp", "a".repeat(59));
    assert_eq!(long.len(), 70);
    let hosts = vec![long.clone(), "ca.example.jp".to_string()];
    let (TlsServerCredentials { chain, key }, record) =
        recorded(|serial| ca.issue_tls_server_certificate(serial, &hosts, 30).unwrap());
    assert_eq!(record.subject, "");
    let cert = parsed(chain[0].as_ref());
    for attribute in cert.subject().iter_attributes() {
        let value = attribute.as_str().unwrap();
        assert!(value.chars().count() <= 64, "{value}");
    }
    assert_eq!(cert.subject().iter_attributes().count(), 0);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "an empty subject needs a critical SAN");
    assert_eq!(
        san.value.general_names,
        vec![
            PGeneralName::DNSName(&long),
            PGeneralName::DNSName("ca.example.jp")
        ]
    );
    rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let leaf = dir.path().join("server.pem");
    write_pem(&leaf, chain[0].as_ref());
    openssl_verify(dir.path(), &leaf, "sslserver");

    // Exactly 64 characters still fit in the CN.
    let fits = format!("{}.example.jp", "a".repeat(53));
    assert_eq!(fits.len(), 64);
    let (_, record) = recorded(|serial| {
        ca.issue_tls_server_certificate(serial, std::slice::from_ref(&fits), 30)
            .unwrap()
    });
    assert_eq!(record.subject, format!("CN={fits}"));
    assert!(
        !parsed(&record.der)
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .critical
    );
}
