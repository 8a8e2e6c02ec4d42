//! The registration authority in-process, on a real sled store and CA: what only the operator
//! may do.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::*;
use crate::config::Config;
use crate::store::SledStore;

struct World {
    _dir: tempfile::TempDir,
    ra: RegistrationAuthority,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(crate::ca::tests::test_ca(&dir.path().join("ca")));
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    let mut auth = Config::load_from(None, Vec::<(String, String)>::new())
        .unwrap()
        .auth;
    auth.argon2_memory_kib = 1024;
    auth.argon2_iterations = 1;
    let ra = RegistrationAuthority::new(store, ca, Arc::new(SystemClock), &auth).unwrap();
    World { _dir: dir, ra }
}

fn csr() -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec()
}

fn master_of(code: &str) -> Caller {
    Caller {
        actor: Actor::Account {
            id: "m1".parse().unwrap(),
        },
        source: "192.0.2.1".into(),
        authority: Authority::Master {
            contract: code.parse().unwrap(),
        },
    }
}

fn new_account(id: &str, password: InitialPassword) -> NewAccount {
    NewAccount {
        id: Some(id.parse().unwrap()),
        contract: "5110".parse().unwrap(),
        role: Role::User,
        name: "U".into(),
        password,
    }
}

#[tokio::test]
async fn issuing_on_an_ids_behalf_and_giving_a_hash_are_the_operators_alone() {
    let w = world();
    let operator = Caller::operator(None);
    w.ra.create_contract(&operator, "5110".parse().unwrap(), "C".into(), false)
        .await
        .unwrap();
    let hash =
        w.ra.passwords
            .hash(Zeroizing::new("correct horse battery".into()))
            .await
            .unwrap();

    // A master may not give a hash, nor issue without the ID's password.
    let refused =
        w.ra.create_account(
            &master_of("5110"),
            new_account("u1", InitialPassword::Hashed(hash.clone())),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused}");
    let refused =
        w.ra.create_account(
            &operator,
            new_account("u1", InitialPassword::Hashed("$argon2id$nonsense".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Invalid, "{refused}");

    w.ra.create_account(&operator, new_account("u1", InitialPassword::Hashed(hash)))
        .await
        .unwrap();
    let id: AccountId = "u1".parse().unwrap();
    let refused =
        w.ra.issue_on_behalf(&master_of("5110"), &id, &csr())
            .await
            .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused}");

    // The operator issues; the lifecycle holds (an active certificate refuses a second).
    let issued = w.ra.issue_on_behalf(&operator, &id, &csr()).await.unwrap();
    assert_eq!(issued.record().account(), Some(&id));
    let refused =
        w.ra.issue_on_behalf(&operator, &id, &csr())
            .await
            .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");

    // The hash given works as the ID's password.
    let account = w.ra.store.account(&id).await.unwrap().unwrap();
    assert!(w
        .ra
        .passwords
        .verify(
            Zeroizing::new(b"correct horse battery".to_vec()),
            Some(account.password_hash)
        )
        .await
        .unwrap());
}

/// A CSR of `key`, so that a test can ask for the same key again.
fn csr_of(key: &rcgen::KeyPair) -> Vec<u8> {
    rcgen::CertificateParams::default()
        .serialize_request(key)
        .unwrap()
        .der()
        .to_vec()
}

async fn with_two_ids(w: &World) -> (AccountId, AccountId) {
    let operator = Caller::operator(None);
    w.ra.create_contract(&operator, "5110".parse().unwrap(), "C".into(), false)
        .await
        .unwrap();
    for id in ["u1", "u2"] {
        w.ra.create_account(
            &operator,
            new_account(
                id,
                InitialPassword::Hashed(
                    w.ra.passwords
                        .hash(Zeroizing::new("correct horse battery".into()))
                        .await
                        .unwrap(),
                ),
            ),
        )
        .await
        .unwrap();
    }
    ("u1".parse().unwrap(), "u2".parse().unwrap())
}

#[tokio::test]
async fn simplereenroll_renews_with_the_same_key_only_the_certificate_that_authenticates() {
    let w = world();
    let (u1, u2) = with_two_ids(&w).await;
    let operator = Caller::operator(None);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let first =
        w.ra.issue_on_behalf(&operator, &u1, &csr_of(&key))
            .await
            .unwrap();
    // Renewal with the same key, twice in a row (RFC 7030 section 4.2.2).
    let second =
        w.ra.reenroll_with_certificate("192.0.2.1", first.der(), &csr_of(&key))
            .await
            .unwrap();
    assert_eq!(second.superseded(), Some(first.record().serial));
    let third =
        w.ra.reenroll_with_certificate("192.0.2.1", second.der(), &csr_of(&key))
            .await
            .unwrap();
    assert_eq!(third.record().key, first.record().key);
    // The superseded certificate no longer renews anything.
    let old =
        w.ra.reenroll_with_certificate("192.0.2.1", first.der(), &csr_of(&key))
            .await
            .unwrap_err();
    assert_eq!(old.kind(), ErrorKind::Forbidden, "{old}");
    // Another ID may not have the key, by password or by renewal.
    let other =
        w.ra.issue_on_behalf(&operator, &u2, &csr_of(&key))
            .await
            .unwrap_err();
    assert!(matches!(other, RaError::KeyReused(_)), "{other}");
    let u2_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let u2_cert =
        w.ra.issue_on_behalf(&operator, &u2, &csr_of(&u2_key))
            .await
            .unwrap();
    let stolen =
        w.ra.reenroll_with_certificate("192.0.2.1", u2_cert.der(), &csr_of(&key))
            .await
            .unwrap_err();
    assert!(matches!(stolen, RaError::KeyReused(_)), "{stolen}");
}

#[tokio::test]
async fn renewal_can_be_required_to_rekey() {
    let mut w = world();
    w.ra = w.ra.with_renewal_requires_new_key(true);
    let (u1, _) = with_two_ids(&w).await;
    let operator = Caller::operator(None);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let first =
        w.ra.issue_on_behalf(&operator, &u1, &csr_of(&key))
            .await
            .unwrap();
    let refused =
        w.ra.reenroll_with_certificate("192.0.2.1", first.der(), &csr_of(&key))
            .await
            .unwrap_err();
    assert!(matches!(refused, RaError::KeyReused(_)), "{refused}");
    assert_eq!(refused.kind(), ErrorKind::Invalid);
    w.ra.reenroll_with_certificate("192.0.2.1", first.der(), &csr())
        .await
        .unwrap();
}
