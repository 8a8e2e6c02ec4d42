use time::Duration;

use super::*;
use crate::config::KeyAlgorithm;

fn new_root(dir: &Path) -> OfflineRoot {
    let config = crate::ca::tests::config(dir, KeyAlgorithm::P256, 10);
    OfflineRoot::init(dir, &config, None, Duration::days(30)).unwrap();
    OfflineRoot::open(dir, None).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

/// A PKCS#10 request for a fresh P-256 key, DER.
fn request() -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Issuing CA 2");
    params.serialize_request(&key).unwrap().der().to_vec()
}

#[test]
fn each_arl_has_the_next_number_and_keeps_the_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_root(dir.path());
    let profile = IssuingProfile {
        crl_url: None,
        validity_years: 5,
    };
    let issued = root
        .sign_issuing(&request(), Path::new("req"), &profile, now())
        .unwrap();
    let revoked = root
        .revoke_issuing(
            issued.serial,
            RevocationReason::Superseded,
            now(),
            Duration::days(30),
        )
        .unwrap();
    assert_eq!(revoked.number, 2);
    let refreshed = root.sign_arl(now(), Duration::days(10)).unwrap();
    assert_eq!(refreshed.number, 3);
    assert_eq!(refreshed.revoked.len(), 1);
    assert_eq!(refreshed.revoked[0].serial, issued.serial);
    assert_eq!(refreshed.revoked[0].reason, RevocationReason::Superseded);
    assert_eq!(
        refreshed.next_update - refreshed.this_update,
        Duration::days(10)
    );
    assert!(matches!(
        root.revoke_issuing(
            issued.serial,
            RevocationReason::KeyCompromise,
            now(),
            Duration::days(30)
        ),
        Err(CaError::AlreadyRevoked { .. })
    ));
}

#[test]
fn only_certificates_the_root_signed_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_root(dir.path());
    assert!(matches!(
        root.revoke_issuing(
            Serial::random(),
            RevocationReason::Unspecified,
            now(),
            Duration::days(30)
        ),
        Err(CaError::UnknownIssuingCa { .. })
    ));
}

#[test]
fn an_issuing_ca_never_outlives_the_root_and_a_forged_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_root(dir.path());
    let long = IssuingProfile {
        crl_url: Some("http://ca.example/root.crl".into()),
        validity_years: 50,
    };
    let issued = root
        .sign_issuing(&request(), Path::new("req"), &long, now())
        .unwrap();
    assert_eq!(issued.not_after, root.not_after);
    let mut forged = request();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(
        root.sign_issuing(&forged, Path::new("req"), &long, now()),
        Err(CaError::BadRequest { .. })
    ));
}

#[test]
fn the_root_key_must_be_private_and_opened_with_its_passphrase() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    new_root(dir.path());
    let key = dir.path().join(ROOT_KEY);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        OfflineRoot::open(dir.path(), None),
        Err(CaError::InsecureKeyFile { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        OfflineRoot::open(empty.path(), None),
        Err(CaError::NoRoot { .. })
    ));
}
