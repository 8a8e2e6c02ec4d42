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
    w.ra.create_contract(&operator, "5110".parse().unwrap(), "C".into())
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
