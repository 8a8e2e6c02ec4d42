//! Revocation benchmarks (`cargo bench --bench revocation`):
//!
//! - signing a CRL of 100,000 revoked certificates (the CA alone), and the publisher's
//!   whole re-signing (reading the sled revocation index, drawing a CRL number, signing);
//! - OCSP responses per second for a cached serial (the signed bytes are reused) and for
//!   uncached serials (store lookup and a fresh signature each time), and with a nonce
//!   (cached status, fresh signature).

mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use der::asn1::OctetString;
use der::Encode;
use time::{Duration, OffsetDateTime};

use estca::ca::crl::{CrlEntry, CrlRequest};
use estca::ca::ocsp::CertIdHash;
use estca::ca::{CertificateAuthority, IssuingCas};
use estca::internal::revocation::{CrlPublisher, IssuerIndex, OcspResponder};
use estca::model::{
    CertificateRecord, EventKind, Holder, KeyFingerprint, RevocationReason, Role, Serial,
};
use estca::ra::SystemClock;
use estca::store::{NewCertificate, RaStore, SledStore};

const REVOKED: usize = 100_000;

/// The CA, and the same as the daemon's set of one issuing CA generation.
fn ca(dir: &std::path::Path) -> (Arc<CertificateAuthority>, Arc<IssuingCas>) {
    let config = common::ca_config(dir);
    CertificateAuthority::init(&config, None).expect("init the CA");
    let load = || CertificateAuthority::load(&config, "{id}").expect("load the CA");
    (Arc::new(load()), Arc::new(IssuingCas::from(load())))
}

/// A store where one account was issued `REVOKED + 1` certificates in turn, each one
/// superseding the one before: `REVOKED` revoked certificates and one good one.
fn store_with_revocations(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
) -> (Arc<SledStore>, Vec<Serial>) {
    let store = Arc::new(SledStore::open(&dir.join("db")).expect("open the store"));
    let now = OffsetDateTime::now_utc();
    let serials: Vec<Serial> = (0..=REVOKED).map(|_| Serial::random()).collect();
    rt.block_on(async {
        common::create_bench_account(store.as_ref(), now).await;
        for (i, serial) in serials.iter().enumerate() {
            let n = u32::try_from(i).expect("count");
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&n.to_be_bytes());
            let not_before = now + Duration::seconds(i64::from(n));
            let reserved = store
                .reserve_serial(*serial, not_before)
                .await
                .expect("reserve");
            store
                .commit_issuance(NewCertificate {
                    expected_version: u64::from(n),
                    supersedes: i.checked_sub(1).map(|previous| serials[previous]),
                    choice: estca::model::CertificateChoice::Continue,
                    record: CertificateRecord {
                        serial: reserved.serial(),
                        holder: Holder::Account {
                            id: "bench".parse().expect("id"),
                            contract: "5110".parse().expect("code"),
                            role: Role::User,
                            issued_num: n + 1,
                        },
                        subject: "CN=bench".into(),
                        not_before,
                        not_after: not_before + Duration::days(365),
                        key: KeyFingerprint(key),
                        revocation: None,
                        der: vec![0x30, 0x00],
                    },
                    event: common::event(EventKind::Enroll),
                })
                .await
                .expect("issue");
        }
    });
    (store, serials)
}

/// A DER OCSPRequest for `serial` under the CA, with or without a nonce.
fn ocsp_request(ca: &CertificateAuthority, serial: &Serial, nonce: bool) -> Vec<u8> {
    use const_oid::db::rfc6960;
    let cert_id = ca
        .ocsp_issuer_hashes()
        .expect("CA")
        .cert_id(
            CertIdHash::Sha1,
            x509_cert::serial_number::SerialNumber::new(serial.as_bytes()).expect("serial"),
        )
        .expect("CertID");
    let nonce = nonce.then(|| {
        vec![x509_cert::ext::Extension {
            extn_id: rfc6960::ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(
                OctetString::new(vec![7u8; 16])
                    .expect("nonce")
                    .to_der()
                    .expect("nonce"),
            )
            .expect("nonce"),
        }]
    });
    x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: nonce,
            ..Default::default()
        },
        optional_signature: None,
    }
    .to_der()
    .expect("request")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let (ca, cas) = ca(dir.path());

    // CRL signing alone, 100,000 entries with mixed reasons.
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("time");
    let entries: Vec<CrlEntry> = (0..REVOKED)
        .map(|i| CrlEntry {
            serial: Serial::random(),
            revoked_at: now,
            reason: if i % 2 == 0 {
                RevocationReason::Superseded
            } else {
                RevocationReason::KeyCompromise
            },
        })
        .collect();
    let mut group = c.benchmark_group("crl");
    group.sample_size(10);
    group.bench_function("sign 100k entries", |b| {
        b.iter(|| {
            let der = ca
                .sign_crl(&CrlRequest {
                    number: 1,
                    this_update: now,
                    next_update: now + Duration::hours(24),
                    entries: black_box(&entries),
                })
                .expect("sign");
            black_box(der.len())
        })
    });

    eprintln!("filling a sled store with {REVOKED} revoked certificates...");
    let (store, serials) = store_with_revocations(&rt, dir.path());
    let issuers = Arc::new(IssuerIndex::new(cas, store.clone()));
    let publisher = rt
        .block_on(CrlPublisher::new(
            store.clone(),
            ca.clone(),
            issuers.clone(),
            Arc::default(),
            Arc::new(SystemClock),
            Duration::hours(24),
            Default::default(),
        ))
        .expect("publisher");
    assert_eq!(publisher.last().entries.len(), REVOKED);
    group.bench_function("publisher re-sign, 100k revoked in sled", |b| {
        b.iter(|| {
            let crl = rt.block_on(publisher.sign_now()).expect("re-sign");
            black_box(crl.der.len())
        })
    });
    group.finish();

    let responder = rt
        .block_on(OcspResponder::new(
            store.clone(),
            store.clone(),
            ca.clone(),
            issuers,
            Arc::new(SystemClock),
            Duration::minutes(60),
            Duration::hours(168),
        ))
        .expect("responder");
    let mut group = c.benchmark_group("ocsp");
    group.throughput(Throughput::Elements(1));
    let good = ocsp_request(&ca, &serials[REVOKED], false);
    group.bench_function("cached serial", |b| {
        b.iter(|| black_box(rt.block_on(responder.respond(black_box(&good))).der.len()))
    });
    let requests: Vec<Vec<u8>> = serials
        .iter()
        .take(1000)
        .map(|s| ocsp_request(&ca, s, false))
        .collect();
    let mut next = 0usize;
    group.bench_function("uncached serial", |b| {
        b.iter_batched(
            || {
                responder.clear_cache();
                next = (next + 1) % requests.len();
                &requests[next]
            },
            |request| black_box(rt.block_on(responder.respond(request)).der.len()),
            BatchSize::SmallInput,
        )
    });
    let with_nonce = ocsp_request(&ca, &serials[REVOKED], true);
    group.bench_function("cached serial with nonce", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(responder.respond(black_box(&with_nonce)))
                    .der
                    .len(),
            )
        })
    });
    group.finish();
}

criterion_group!(revocation, benches);
criterion_main!(revocation);
