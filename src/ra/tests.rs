//! The registration authority in-process, on a real sled store and CA: what only the operator
//! may do, and removing IDs.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::*;
use crate::config::Config;
use crate::model::{Actor, Holder, PresentedCertificate};
use crate::store::{HistoryQuery, PageRequest, SledStore};

struct World {
    _dir: tempfile::TempDir,
    ra: RegistrationAuthority,
}

impl World {
    /// simplereenroll from `source`, presenting `certificate` (DER).
    async fn renew(
        &self,
        source: &str,
        certificate: &[u8],
        csr: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        self.ra
            .reenroll_with_certificate(source, &PresentedCertificate::new(certificate), csr)
            .await
    }
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(crate::ca::IssuingCas::from(crate::ca::tests::test_ca(
        &dir.path().join("ca"),
    )));
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
    let second = w
        .renew("192.0.2.1", first.der(), &csr_of(&key))
        .await
        .unwrap();
    assert_eq!(second.superseded(), Some(first.record().serial));
    let third = w
        .renew("192.0.2.1", second.der(), &csr_of(&key))
        .await
        .unwrap();
    assert_eq!(third.record().key, first.record().key);
    // The superseded certificate no longer renews anything.
    let old = w
        .renew("192.0.2.1", first.der(), &csr_of(&key))
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
    let stolen = w
        .renew("192.0.2.1", u2_cert.der(), &csr_of(&key))
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
    let refused = w
        .renew("192.0.2.1", first.der(), &csr_of(&key))
        .await
        .unwrap_err();
    assert!(matches!(refused, RaError::KeyReused(_)), "{refused}");
    assert_eq!(refused.kind(), ErrorKind::Invalid);
    w.renew("192.0.2.1", first.der(), &csr()).await.unwrap();
}

fn password() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(b"correct horse battery".to_vec())
}

/// Contract 5110 with public IDs u1 and u2 and master IDs m1 and m2, and contract 7000.
async fn contract_with_masters(w: &World) -> (AccountId, AccountId) {
    let operator = Caller::operator(None);
    let (u1, u2) = with_two_ids(w).await;
    w.ra.create_contract(&operator, "7000".parse().unwrap(), "Other".into(), false)
        .await
        .unwrap();
    for master in ["m1", "m2"] {
        w.ra.create_account(
            &operator,
            NewAccount {
                role: Role::Master,
                ..new_account(
                    master,
                    InitialPassword::Clear(Zeroizing::new("correct horse battery".into())),
                )
            },
        )
        .await
        .unwrap();
    }
    (u1, u2)
}

async fn listed(w: &World, caller: &Caller, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page =
            w.ra.accounts(caller, None, PageRequest { after, limit })
                .await
                .unwrap();
        assert!(page.items.len() <= limit);
        ids.extend(page.items.iter().map(|a| a.id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn a_master_removes_its_public_ids_only_and_the_operator_any() {
    let w = world();
    let (u1, _) = contract_with_masters(&w).await;
    let master = master_of("5110");
    for target in ["m1", "m2"] {
        let refused =
            w.ra.remove_account(&master, &target.parse().unwrap())
                .await
                .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused}");
        assert!(refused.to_string().contains("help desk"), "{refused}");
    }
    let refused =
        w.ra.remove_account(&master_of("7000"), &u1)
            .await
            .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotFound, "{refused}");
    assert!(w
        .ra
        .store
        .account(&u1)
        .await
        .unwrap()
        .unwrap()
        .removed_at
        .is_none());

    // The operator removes a master; the contract and its public IDs stay as they were.
    let m2: AccountId = "m2".parse().unwrap();
    let removed =
        w.ra.remove_account(&Caller::operator(None), &m2)
            .await
            .unwrap();
    assert!(removed.removed_at.is_some());
    assert_eq!(listed(&w, &master, 1000).await, ["m1", "u1", "u2"]);
}

#[tokio::test]
async fn removing_an_id_revokes_its_certificate_and_is_final() {
    let w = world();
    let (u1, u2) = contract_with_masters(&w).await;
    let operator = Caller::operator(None);
    let master = master_of("5110");
    let issued = w.ra.issue_on_behalf(&operator, &u1, &csr()).await.unwrap();

    let removed = w.ra.remove_account(&master, &u1).await.unwrap();
    let removed_at = removed.removed_at.expect("removed");
    let revocation = removed
        .certificate
        .as_ref()
        .and_then(|c| c.revocation)
        .expect("the active certificate is revoked");
    assert_eq!(
        (revocation.reason, revocation.at),
        (
            crate::model::RevocationReason::CessationOfOperation,
            removed_at
        )
    );
    let record =
        w.ra.store
            .certificate(&issued.record().serial)
            .await
            .unwrap();
    assert_eq!(
        record.unwrap().revocation.map(|r| r.reason),
        Some(revocation.reason)
    );

    // History says who removed it, when and from where.
    let history =
        w.ra.history(
            &master,
            HistoryQuery {
                account: Some(u1.clone()),
                kind: Some(EventKind::AccountRemove),
                page: PageRequest::first(10),
                ..HistoryQuery::default()
            },
        )
        .await
        .unwrap();
    let [entry] = history.items.as_slice() else {
        panic!("{:?}", history.items)
    };
    assert_eq!(entry.event.actor, master.actor);
    assert_eq!(entry.event.source, "192.0.2.1");
    assert_eq!(entry.event.at, removed_at);
    assert!(
        matches!(&entry.event.outcome, Outcome::Ok { detail } if detail.contains("cessationOfOperation"))
    );

    // It never authenticates again: the right password answers as an unknown ID does, and
    // is not even counted.
    let right =
        w.ra.enroll_with_password("192.0.2.9", None, "u1", password(), &csr())
            .await
            .unwrap_err();
    let unknown =
        w.ra.enroll_with_password("192.0.2.9", None, "nobody", password(), &csr())
            .await
            .unwrap_err();
    assert!(matches!(right, RaError::Unauthenticated), "{right}");
    assert_eq!(right.to_string(), unknown.to_string());
    assert_eq!(
        w.ra.store
            .account(&u1)
            .await
            .unwrap()
            .unwrap()
            .failed_attempts,
        0
    );
    let renewal = w
        .renew("192.0.2.9", issued.der(), &csr())
        .await
        .unwrap_err();
    assert!(matches!(renewal, RaError::UnknownCertificate), "{renewal}");

    // Nothing changes it any more, not even the operator.
    let again = w.ra.remove_account(&operator, &u1).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
    assert!(again.to_string().contains("was removed"), "{again}");
    for refused in [
        w.ra.unlock(&master, &u1).await.unwrap_err(),
        w.ra.certificate_action(&master, &u1, CertificateAction::Reissue)
            .await
            .unwrap_err(),
        w.ra.update_account(&master, &u1, Some("New".into()), None)
            .await
            .unwrap_err(),
        w.ra.issue_on_behalf(&operator, &u1, &csr())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    }
    // Each refused change is in history, with who asked.
    for kind in [
        EventKind::AccountRemove,
        EventKind::Unlock,
        EventKind::Reissue,
        EventKind::AccountUpdate,
    ] {
        let refusals =
            w.ra.history(
                &operator,
                HistoryQuery {
                    account: Some(u1.clone()),
                    kind: Some(kind),
                    page: PageRequest::first(10),
                    ..HistoryQuery::default()
                },
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| matches!(&e.event.outcome, Outcome::Refused { reason } if reason.contains("was removed")))
            .count();
        assert_eq!(refusals, 1, "{kind}");
    }

    // It leaves the listings (pages stay full and exact), but stays readable on its own.
    assert_eq!(listed(&w, &master, 1000).await, ["m1", "m2", "u2"]);
    assert_eq!(listed(&w, &master, 1).await, ["m1", "m2", "u2"]);
    let shown = w.ra.account(&master, &u1).await.unwrap();
    assert_eq!(shown.removed_at, Some(removed_at));
    assert_eq!(w.ra.account(&master, &u2).await.unwrap().removed_at, None);

    // The ID is never created again: said plainly to who sees the contract, and as any taken
    // ID to anyone else.
    let reused =
        w.ra.create_account(
            &master,
            new_account(
                "u1",
                InitialPassword::Clear(Zeroizing::new("another fine password".into())),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(reused.kind(), ErrorKind::Conflict, "{reused}");
    assert!(reused.to_string().contains("was removed"), "{reused}");
    let elsewhere =
        w.ra.create_account(
            &master_of("7000"),
            NewAccount {
                contract: "7000".parse().unwrap(),
                ..new_account(
                    "u1",
                    InitialPassword::Clear(Zeroizing::new("another fine password".into())),
                )
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(elsewhere, RaError::IdUnavailable(_)),
        "{elsewhere}"
    );
}

/// Password checks counted against an ID that never ended (their requests cancelled between
/// counting and checking, or their daemon stopped) lock it at the next attempt once they are
/// overdue, with the reason in history; that attempt, even with the right password, is refused
/// as on any locked ID, and the ones after it no longer wait. Time is paused: the wait for
/// the checks passes at once.
#[tokio::test(start_paused = true)]
async fn password_checks_counted_and_never_ended_lock_the_id() {
    let w = world();
    let (u1, _) = with_two_ids(&w).await;
    for _ in 0..w.ra.max_failed_attempts {
        // What a cancelled request leaves: the attempt counted, never settled.
        w.ra.store
            .count_password_attempt(&u1, w.ra.max_failed_attempts)
            .await
            .unwrap();
    }
    let enroll = || {
        w.ra.enroll_with_password(
            "192.0.2.9",
            None,
            "u1",
            Zeroizing::new(b"correct horse battery".to_vec()),
            &[],
        )
    };
    let started = tokio::time::Instant::now();
    let refused = enroll().await.unwrap_err();
    assert!(matches!(refused, RaError::Unauthenticated), "{refused}");
    assert!(started.elapsed() >= super::authentication::PENDING_CHECKS_WAIT / 2);
    let account = w.ra.store.account(&u1).await.unwrap().unwrap();
    assert!(
        account.locked,
        "the ID must be locked, not left at the limit"
    );
    let locks =
        w.ra.history(
            &Caller::operator(None),
            HistoryQuery {
                account: Some(u1.clone()),
                kind: Some(EventKind::Lock),
                page: PageRequest::first(10),
                ..HistoryQuery::default()
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(locks.len(), 1);
    assert!(
        matches!(&locks[0].event.outcome, Outcome::Ok { detail } if detail.contains("never ended")),
        "{:?}",
        locks[0].event.outcome
    );
    let again = tokio::time::Instant::now();
    assert!(matches!(enroll().await, Err(RaError::Unauthenticated)));
    assert!(
        again.elapsed() < std::time::Duration::from_secs(1),
        "a locked ID is refused at once"
    );
}

/// Neither the password nor the hash of a new account shows in its `Debug` form.
#[test]
fn initial_passwords_are_not_shown_by_debug() {
    let clear = new_account(
        "u1",
        InitialPassword::Clear(Zeroizing::new("another fine password".into())),
    );
    let hashed = new_account("u1", InitialPassword::Hashed("$argon2id$secret".into()));
    for shown in [format!("{clear:?}"), format!("{hashed:?}")] {
        assert!(
            !shown.contains("fine password") && !shown.contains("secret"),
            "{shown}"
        );
    }
}

/// A CSR with a challengePassword (RFC 7030 section 3.5 channel binding) is refused to the
/// ID enrolling for itself, with the reason in history, and accepted from a registration
/// authority, which checked its own client's binding.
#[tokio::test]
async fn a_channel_binding_is_refused_to_the_id_and_not_to_a_registration_authority() {
    let w = world();
    let (u1, _) = with_two_ids(&w).await;
    let bound = crate::ca::tests::csr_with_challenge_password(w._dir.path(), "dGxzLXVuaXF1ZQ");
    let refused =
        w.ra.enroll_with_password(
            "192.0.2.9",
            None,
            "u1",
            Zeroizing::new(b"correct horse battery".to_vec()),
            &bound,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            RaError::BadCsr(crate::ca::CsrError::ChannelBinding)
        ),
        "{refused}"
    );
    assert_eq!(refused.kind(), ErrorKind::Invalid, "{refused}");
    let issued =
        w.ra.issue_on_behalf(&Caller::operator(None), &u1, &bound)
            .await
            .unwrap();
    assert!(
        matches!(&issued.record().holder, Holder::Account { id, .. } if *id == u1),
        "{:?}",
        issued.record().holder
    );
}
