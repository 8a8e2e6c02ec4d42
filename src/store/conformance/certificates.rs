//! Application credentials and the certificates of estca's own services.

use super::fixtures::*;
use super::Backend;
use crate::model::{
    App, AppName, AppScope, CertificateRecord, EventKind, Holder, KeyFingerprint, Revocation,
    RevocationReason,
};
use crate::store::{Page, PageRequest, StoreError, StoreRecord};

pub(super) async fn applications_are_created_once_and_revoked_for_good<B: Backend>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    let name: AppName = "bankapp".parse().unwrap();
    let app_record = |s: u8, key: u8| CertificateRecord {
        holder: Holder::App { name: name.clone() },
        ..record(s, "nozawa1", 1, key, 10)
    };
    let app = App {
        name: name.clone(),
        scope: AppScope::Contracts(vec![code("5110")]),
        can_create_contracts: false,
        certificate: serial(40),
        revoked: false,
        created_at: at(10),
    };
    let created = |s: u8| event(EventKind::AppCreate, None, None, i64::from(s));

    // The serial must be reserved.
    let unreserved = store
        .create_app(app.clone(), app_record(40, 40), created(10))
        .await;
    assert!(
        matches!(unreserved, Err(StoreError::Conflict)),
        "{unreserved:?}"
    );
    store.reserve_serial(serial(40), at(10)).await.unwrap();
    let issued = store
        .create_app(app.clone(), app_record(40, 40), created(10))
        .await
        .unwrap();
    assert_eq!(issued.record().account(), None);
    assert_eq!(store.app(&name).await.unwrap(), Some(app.clone()));
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([40; 32]))
            .await
            .unwrap(),
        Some(serial(40))
    );

    // The name is taken; a second app cannot reuse the key either.
    store.reserve_serial(serial(41), at(11)).await.unwrap();
    let again = store
        .create_app(
            App {
                certificate: serial(41),
                ..app.clone()
            },
            app_record(41, 41),
            created(11),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
    let other = App {
        name: "other".parse().unwrap(),
        certificate: serial(42),
        ..app.clone()
    };
    store.reserve_serial(serial(42), at(12)).await.unwrap();
    let reused = store
        .create_app(
            other.clone(),
            CertificateRecord {
                holder: Holder::App {
                    name: other.name.clone(),
                },
                ..record(42, "nozawa1", 1, 40, 10)
            },
            created(12),
        )
        .await;
    assert!(
        matches!(reused, Err(StoreError::KeyReused(s)) if s == serial(40)),
        "{reused:?}"
    );
    // An application's certificate is never recorded as an ID's.
    store.reserve_serial(serial(43), at(13)).await.unwrap();
    let wrong_holder = store
        .commit_issuance(issuance(0, app_record(43, 43), None))
        .await;
    assert!(
        matches!(wrong_holder, Err(StoreError::Backend(_))),
        "{wrong_holder:?}"
    );

    let revocation = Revocation {
        at: at(20),
        reason: RevocationReason::CessationOfOperation,
    };
    let mut feed = store.revocations();
    let revoked = store
        .revoke_app(
            &name,
            revocation,
            event(EventKind::AppRevoke, None, None, 20),
        )
        .await
        .unwrap();
    assert!(revoked.revoked);
    let cert = store.certificate(&serial(40)).await.unwrap().unwrap();
    assert_eq!(cert.revocation, Some(revocation));
    // A revoked application certificate is published like any other.
    let index = Page::collect_all(10, |p: PageRequest| store.revoked_certificates(p))
        .await
        .unwrap();
    assert!(index
        .iter()
        .any(|r| r.serial == serial(40) && r.revocation == revocation));
    assert!(feed.has_changed().unwrap());
    feed.borrow_and_update();
    let twice = store
        .revoke_app(
            &name,
            revocation,
            event(EventKind::AppRevoke, None, None, 21),
        )
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");
    assert!(!feed.has_changed().unwrap());
    let apps = Page::collect_all(10, |p: PageRequest| store.apps(p))
        .await
        .unwrap();
    assert_eq!(apps.len(), 1);
    let ghost = store
        .revoke_app(
            &"ghost".parse().unwrap(),
            revocation,
            event(EventKind::AppRevoke, None, None, 22),
        )
        .await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
}

pub(super) async fn service_certificates_are_reserved_recorded_backed_up_and_unique<B: Backend>() {
    let f = Fixture::<B>::empty().await;
    let store = &**f.store();
    let service = |s: u8, key: u8, holder: Holder| CertificateRecord {
        holder,
        subject: "CN=localhost".into(),
        ..record(s, "nozawa1", 1, key, 10)
    };
    let tls = service(
        1,
        1,
        Holder::TlsServer {
            names: vec!["localhost".into(), "127.0.0.1".into()],
        },
    );
    let ocsp = service(2, 2, Holder::OcspSigner);

    // Recorded only with a reserved serial, reserved once.
    let unreserved = store.record_service_certificate(tls.clone()).await;
    assert!(
        matches!(unreserved, Err(StoreError::Conflict)),
        "{unreserved:?}"
    );
    for s in [1, 2, 9] {
        store
            .reserve_service_serial(serial(s), at(10))
            .await
            .unwrap();
    }
    let twice = store.reserve_service_serial(serial(1), at(10)).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");
    let twice = store.reserve_serial(serial(2), at(10)).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");

    let issued = store.record_service_certificate(tls.clone()).await.unwrap();
    assert_eq!(issued.record(), &tls);
    store
        .record_service_certificate(ocsp.clone())
        .await
        .unwrap();
    assert_eq!(
        store.certificate(&serial(1)).await.unwrap(),
        Some(tls.clone())
    );
    assert_eq!(
        store.certificate(&serial(2)).await.unwrap(),
        Some(ocsp.clone())
    );
    assert_eq!(
        store
            .key_certified_by(&KeyFingerprint([2; 32]))
            .await
            .unwrap(),
        Some(serial(2))
    );
    assert!(store.is_empty().await.unwrap(), "service certificates only");

    // Serial and key are unique across every kind of certificate; an ID's or an
    // application's certificate cannot come in this way, nor a revoked one.
    assert!(matches!(
        store
            .record_service_certificate(service(1, 9, Holder::OcspSigner))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .record_service_certificate(service(9, 1, Holder::OcspSigner))
            .await,
        Err(StoreError::KeyReused(s)) if s == serial(1)
    ));
    assert!(matches!(
        store
            .record_service_certificate(record(9, "nozawa1", 1, 9, 10))
            .await,
        Err(StoreError::Backend(_))
    ));
    let revoked = CertificateRecord {
        revocation: Some(Revocation {
            at: at(20),
            reason: RevocationReason::Unspecified,
        }),
        ..service(9, 9, Holder::OcspSigner)
    };
    assert!(matches!(
        store.record_service_certificate(revoked).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.certificate(&serial(9)).await.unwrap(), None);

    // Backups carry them, and a restore rebuilds their key index.
    let exported = export_all(store).await;
    assert_eq!(
        exported,
        vec![
            StoreRecord::Certificate(tls),
            StoreRecord::Certificate(ocsp)
        ]
    );
    let copy = Fixture::<B>::empty().await;
    copy.store().import(exported).await.unwrap();
    assert_eq!(
        copy.store()
            .key_certified_by(&KeyFingerprint([1; 32]))
            .await
            .unwrap(),
        Some(serial(1))
    );

    // A contract or an ID makes the store non-empty.
    let f = Fixture::<B>::with_nozawa1().await;
    assert!(!f.store().is_empty().await.unwrap());
}

pub(super) async fn an_application_is_recorded_only_with_its_own_unrevoked_certificate<
    B: Backend,
>() {
    let f = Fixture::<B>::with_nozawa1().await;
    let store = &**f.store();
    let name: AppName = "bankapp".parse().unwrap();
    let app = App {
        name: name.clone(),
        scope: AppScope::All,
        can_create_contracts: false,
        certificate: serial(50),
        revoked: false,
        created_at: at(10),
    };
    let own = CertificateRecord {
        holder: Holder::App { name: name.clone() },
        ..record(50, "nozawa1", 1, 50, 10)
    };
    store.reserve_serial(serial(50), at(10)).await.unwrap();
    let another_apps = CertificateRecord {
        holder: Holder::App {
            name: "other".parse().unwrap(),
        },
        ..own.clone()
    };
    let another_serial = App {
        certificate: serial(51),
        ..app.clone()
    };
    let revoked = CertificateRecord {
        revocation: Some(Revocation {
            at: at(10),
            reason: RevocationReason::Unspecified,
        }),
        ..own.clone()
    };
    for (app, record) in [
        (app.clone(), another_apps),
        (another_serial, own.clone()),
        (app.clone(), revoked),
    ] {
        let refused = store
            .create_app(app, record, event(EventKind::AppCreate, None, None, 10))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Backend(_))),
            "{refused:?}"
        );
    }
    assert_eq!(store.app(&name).await.unwrap(), None);
    assert_eq!(store.certificate(&serial(50)).await.unwrap(), None);
    // The reservation is still there for the record that matches.
    store
        .create_app(app, own, event(EventKind::AppCreate, None, None, 11))
        .await
        .unwrap();
}
