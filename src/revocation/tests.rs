//! Tests of the CRL publisher and the OCSP responder on a real sled store and CA, with a
//! manual clock.

use std::sync::Arc;

use const_oid::db::rfc6960;
use der::asn1::OctetString;
use der::{Decode, Encode};
use time::{Duration, OffsetDateTime};
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    TbsRequest,
};

use super::crl_publisher::{CrlNumbering, ResignThrottle};
use super::ocsp_responder::MAX_REQUESTS_PER_QUERY;
use super::*;
use crate::ca::ocsp::CertIdHash;
use crate::model::{
    Account, AccountId, Actor, App, AppName, CertificateRecord, Contract, ContractCode, EventKind,
    HistoryEntry, HistoryEvent, Holder, KeyFingerprint, Outcome, Revocation, Role,
};
use crate::ra::ManualClock;
use crate::store::{
    AccountChange, HistoryQuery, NewCertificate, Page, PageRequest, RaStore, RevocationStore,
    RevokedCertificate, SledStore, StoreError, StoreReads,
};

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SledStore>,
    ca: Arc<crate::ca::CertificateAuthority>,
    ca_config: crate::config::CaConfig,
    clock: Arc<ManualClock>,
}

fn start() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn event(kind: EventKind) -> HistoryEvent {
    HistoryEvent {
        at: start(),
        account: None,
        contract: None,
        kind,
        actor: Actor::System,
        source: "test".into(),
        outcome: Outcome::Ok {
            detail: String::new(),
        },
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(crate::ca::tests::test_ca(&dir.path().join("ca")));
    let ca_config = crate::ca::tests::test_ca_config(&dir.path().join("ca"));
    let store = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    store
        .create_contract(
            Contract {
                code: "5110".parse().unwrap(),
                name: "C".into(),
                created_at: start(),
                server_keygen: false,
            },
            event(EventKind::ContractCreate),
        )
        .await
        .unwrap();
    World {
        _dir: dir,
        store,
        ca,
        ca_config,
        clock: Arc::new(ManualClock::new(start())),
    }
}

fn serial(b: u8) -> Serial {
    Serial::from_bytes([b; 16]).unwrap()
}

impl World {
    /// Creates account `id` and issues it a certificate with serial `[s; 16]`, valid for
    /// `days` from the clock's now.
    async fn issue(&self, id: &str, s: u8, days: i64) {
        let account_id: AccountId = id.parse().unwrap();
        if self.store.account(&account_id).await.unwrap().is_none() {
            self.store
                .create_account(
                    Account::new(
                        account_id.clone(),
                        "5110".parse().unwrap(),
                        Role::User,
                        id.into(),
                        "x".into(),
                        start(),
                    ),
                    event(EventKind::AccountCreate),
                )
                .await
                .unwrap();
        }
        let account = self.store.account(&account_id).await.unwrap().unwrap();
        let now = self.clock.now();
        let supersedes = match account.current_certificate {
            Some(current) => self
                .store
                .certificate(&current)
                .await
                .unwrap()
                .filter(|c| c.is_active(now))
                .map(|c| c.serial),
            None => None,
        };
        let reserved = self.store.reserve_serial(serial(s), now).await.unwrap();
        self.store
            .commit_issuance(NewCertificate {
                expected_version: account.version,
                supersedes,
                choice: crate::model::CertificateChoice::Continue,
                record: CertificateRecord {
                    serial: reserved.serial(),
                    holder: Holder::Account {
                        id: account_id,
                        contract: "5110".parse().unwrap(),
                        role: Role::User,
                        issued_num: account.issued_count + 1,
                    },
                    subject: "CN=x".into(),
                    not_before: now,
                    not_after: now + Duration::days(days),
                    key: KeyFingerprint([s; 32]),
                    revocation: None,
                    der: vec![0x30, 0x00],
                },
                event: event(EventKind::Enroll),
            })
            .await
            .unwrap();
    }

    async fn revoke(&self, id: &str, s: u8, reason: RevocationReason) {
        let account = self
            .store
            .account(&id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        self.store
            .update_account(AccountChange {
                id: account.id.clone(),
                expected_version: account.version,
                edits: vec![],
                revoke: Some((
                    serial(s),
                    Revocation {
                        at: self.clock.now(),
                        reason,
                    },
                )),
                events: vec![],
            })
            .await
            .unwrap();
    }

    /// The issuer index of this world's one generation.
    fn issuers(&self) -> Arc<IssuerIndex> {
        let cas = Arc::new(crate::ca::IssuingCas::new(
            crate::ca::Generations::new(
                crate::ca::CertificateAuthority::load(&self.ca_config, "{id}").unwrap(),
                Vec::new(),
            )
            .unwrap(),
        ));
        Arc::new(IssuerIndex::new(cas, self.store.clone()))
    }

    async fn publisher(&self) -> Arc<CrlPublisher> {
        self.publisher_throttled(Default::default()).await
    }

    async fn publisher_throttled(&self, throttle: ResignThrottle) -> Arc<CrlPublisher> {
        CrlPublisher::new(
            self.store.clone(),
            self.ca.clone(),
            self.issuers(),
            Arc::default(),
            self.clock.clone(),
            Duration::hours(24),
            throttle,
        )
        .await
        .unwrap()
    }

    async fn responder(&self) -> OcspResponder {
        OcspResponder::new(
            self.store.clone(),
            self.store.clone(),
            self.ca.clone(),
            self.issuers(),
            self.clock.clone(),
            Duration::minutes(60),
            Duration::hours(168),
        )
        .await
        .unwrap()
    }

    fn cert_id(&self, serial_bytes: &[u8]) -> CertId {
        self.ca
            .ocsp_issuer_hashes()
            .unwrap()
            .cert_id(CertIdHash::Sha1, SerialNumber::new(serial_bytes).unwrap())
            .unwrap()
    }
}

fn request(cert_ids: Vec<CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
    OcspRequest {
        tbs_request: TbsRequest {
            request_list: cert_ids
                .into_iter()
                .map(|req_cert| Request {
                    req_cert,
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: nonce.map(|n| {
                vec![Extension {
                    extn_id: rfc6960::ID_PKIX_OCSP_NONCE,
                    critical: false,
                    extn_value: OctetString::new(OctetString::new(n).unwrap().to_der().unwrap())
                        .unwrap(),
                }]
            }),
            ..Default::default()
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

fn basic(answer: &OcspAnswer) -> BasicOcspResponse {
    let response = OcspResponse::from_der(&answer.der).unwrap();
    assert_eq!(response.response_status, OcspResponseStatus::Successful);
    let bytes = response.response_bytes.unwrap();
    assert_eq!(bytes.response_type, rfc6960::ID_PKIX_OCSP_BASIC);
    BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap()
}

/// `at` in milliseconds since 1970: the lowest number of a CRL signed at `at`.
fn millis(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp() * 1000).unwrap()
}

fn statuses(answer: &OcspAnswer) -> Vec<CertStatus> {
    basic(answer)
        .tbs_response_data
        .responses
        .iter()
        .map(|r| r.cert_status)
        .collect()
}

#[tokio::test]
async fn the_crl_follows_revocations_at_once_and_drops_expired_certificates() {
    let w = world().await;
    w.issue("alice", 1, 365).await;
    w.issue("bob", 2, 10).await;
    let publisher = w.publisher().await;
    let first = publisher.current().await;
    assert_eq!(
        first.number,
        millis(first.this_update),
        "the number's floor"
    );
    assert!(first.entries.is_empty());
    // Not stale: the same CRL.
    assert!(Arc::ptr_eq(&first, &publisher.current().await));

    w.revoke("alice", 1, RevocationReason::KeyCompromise).await;
    w.issue("bob", 3, 365).await; // supersedes serial 2, which expires in 10 days
    let second = publisher.current().await;
    assert_eq!(second.this_update, first.this_update);
    assert_eq!(second.number, first.number + 1, "above the floor, the next");
    let view = second.view();
    assert_eq!(
        view.entries
            .iter()
            .map(|e| (e.serial, e.reason))
            .collect::<Vec<_>>(),
        [
            (serial(1), RevocationReason::KeyCompromise),
            (serial(2), RevocationReason::Superseded)
        ]
    );
    let crl = CertificateList::from_der(&second.der).unwrap();
    assert_eq!(crl.tbs_cert_list.revoked_certificates.unwrap().len(), 2);
    assert!(std::str::from_utf8(&second.pem)
        .unwrap()
        .starts_with("-----BEGIN X509 CRL-----"));

    // Half-way to nextUpdate the CRL is due, and re-signed with the same entries.
    w.clock.advance(Duration::hours(12));
    let third = publisher.current().await;
    assert_eq!(third.number, millis(third.this_update));
    assert_eq!(third.entries.len(), 2);
    // Once serial 2 has expired (10 days), the next CRL leaves it out.
    w.clock.advance(Duration::days(10));
    let fourth = publisher.current().await;
    assert_eq!(fourth.number, millis(fourth.this_update));
    assert_eq!(
        fourth.entries.iter().map(|e| e.serial).collect::<Vec<_>>(),
        [serial(1)]
    );
    assert_eq!(fourth.next_update - fourth.this_update, Duration::hours(24));
}

#[tokio::test]
async fn the_background_task_re_signs_after_a_revocation() {
    let w = world().await;
    w.issue("alice", 1, 365).await;
    let publisher = w.publisher().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = publisher.clone().spawn(stopped);
    let before = publisher.last().number;
    w.revoke("alice", 1, RevocationReason::Unspecified).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while publisher.last().number <= before {
        assert!(tokio::time::Instant::now() < deadline, "not re-signed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(publisher.last().entries.len(), 1);
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// A CRL that took long to sign is not re-signed for a revocation until the throttle allows
/// (here: 100,000 times its signing time, far beyond the test), whether fetched or by the
/// background task; a due CRL, and the operator's `sign_now`, are re-signed at once.
#[tokio::test]
async fn a_slow_crl_is_not_re_signed_for_every_revocation() {
    let w = world().await;
    w.issue("alice", 1, 365).await;
    w.issue("bob", 2, 365).await;
    let publisher = w
        .publisher_throttled(ResignThrottle {
            unthrottled_under: std::time::Duration::ZERO,
            factor: 100_000,
        })
        .await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = publisher.clone().spawn(stopped);
    let first = publisher.current().await;

    w.revoke("alice", 1, RevocationReason::KeyCompromise).await;
    assert!(Arc::ptr_eq(&first, &publisher.current().await));
    // The background task waits too (its coalescing second has passed).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(Arc::ptr_eq(&first, &publisher.last()));

    // Due (half-way to nextUpdate): re-signed, with the revocation.
    w.clock.advance(Duration::hours(12));
    let due = publisher.current().await;
    assert_eq!(due.number, millis(due.this_update));
    assert!(due.number > first.number);
    assert_eq!(due.entries.len(), 1);

    w.revoke("bob", 2, RevocationReason::Unspecified).await;
    assert!(Arc::ptr_eq(&due, &publisher.current().await));
    let now = publisher.sign_now().await.unwrap();
    assert_eq!(now.entries.len(), 2);
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// The world's store as the CRL publisher sees it, except that every read of the revocation
/// index takes `delay` on tokio's clock: a CRL that takes that long to build, as a large one
/// does, without a large one.
struct SlowIndex {
    inner: Arc<SledStore>,
    /// How long a read of the revocation index waits before it reads.
    delay: std::time::Duration,
    /// How long it waits after it read, before it returns what it read.
    after: std::time::Duration,
}

#[async_trait::async_trait]
impl StoreReads for SlowIndex {
    async fn contract(&self, code: &ContractCode) -> Result<Option<Contract>, StoreError> {
        self.inner.contract(code).await
    }

    async fn contracts(&self, page: PageRequest) -> Result<Page<Contract>, StoreError> {
        self.inner.contracts(page).await
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.inner.account(id).await
    }

    async fn accounts(
        &self,
        contract: Option<&ContractCode>,
        page: PageRequest,
    ) -> Result<Page<Account>, StoreError> {
        self.inner.accounts(contract, page).await
    }

    async fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        self.inner.certificate(serial).await
    }

    async fn key_certified_by(&self, key: &KeyFingerprint) -> Result<Option<Serial>, StoreError> {
        self.inner.key_certified_by(key).await
    }

    async fn app(&self, name: &AppName) -> Result<Option<App>, StoreError> {
        self.inner.app(name).await
    }

    async fn apps(&self, page: PageRequest) -> Result<Page<App>, StoreError> {
        self.inner.apps(page).await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Page<HistoryEntry>, StoreError> {
        self.inner.history(query).await
    }
}

#[async_trait::async_trait]
impl RevocationStore for SlowIndex {
    async fn revoked_certificates(
        &self,
        page: PageRequest,
    ) -> Result<Page<RevokedCertificate>, StoreError> {
        tokio::time::sleep(self.delay).await;
        let read = self.inner.revoked_certificates(page).await;
        tokio::time::sleep(self.after).await;
        read
    }

    async fn next_crl_number(&self, floor: u64) -> Result<u64, StoreError> {
        self.inner.next_crl_number(floor).await
    }

    fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.revocations()
    }
}

/// A revocation that the throttle puts off is published by the background task as soon as
/// the throttle allows, with nobody fetching the CRL. The index takes 1 s to read (on tokio's
/// clock, paused: the seconds pass without waiting), so with the default throttle the first
/// CRL may be re-signed for a revocation 9 s after its signing began, and not before.
#[tokio::test(start_paused = true)]
async fn the_background_task_publishes_a_throttled_revocation_when_the_throttle_allows() {
    let w = world().await;
    w.issue("alice", 1, 365).await;
    let slow = Arc::new(SlowIndex {
        inner: w.store.clone(),
        delay: std::time::Duration::from_secs(1),
        after: std::time::Duration::ZERO,
    });
    let began = tokio::time::Instant::now();
    let publisher = CrlPublisher::new(
        slow,
        w.ca.clone(),
        w.issuers(),
        Arc::default(),
        w.clock.clone(),
        Duration::hours(24),
        ResignThrottle::default(),
    )
    .await
    .unwrap();
    let first = publisher.last();
    assert!(first.entries.is_empty());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = publisher.clone().spawn(stopped);

    w.revoke("alice", 1, RevocationReason::KeyCompromise).await;
    // Long past the coalescing second, still short of nine times the signing time.
    tokio::time::sleep_until(began + std::time::Duration::from_millis(8_900)).await;
    assert!(Arc::ptr_eq(&first, &publisher.last()));
    // The task re-signs at 9 s; the new CRL takes its 1 s to build.
    tokio::time::sleep_until(began + std::time::Duration::from_millis(10_100)).await;
    let second = publisher.last();
    assert_eq!(second.number, first.number + 1);
    assert_eq!(
        second.entries.iter().map(|e| e.serial).collect::<Vec<_>>(),
        [serial(1)]
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Two publishers sharing one numbering (as a daemon's generations do): one reads the index
/// before a revocation and takes long to return it, the other reads after the revocation.
/// The CRL with the higher number lists the revocation: numbers follow what was read, not
/// which read finished first.
#[tokio::test(start_paused = true)]
async fn a_higher_crl_number_lists_every_revocation_a_lower_one_lists() {
    let w = world().await;
    w.issue("alice", 1, 365).await;
    let numbering: Arc<CrlNumbering> = Arc::default();
    let publisher = |store: Arc<dyn RevocationStore>| {
        CrlPublisher::new(
            store,
            w.ca.clone(),
            w.issuers(),
            numbering.clone(),
            w.clock.clone(),
            Duration::hours(24),
            ResignThrottle::default(),
        )
    };
    let late = publisher(Arc::new(SlowIndex {
        inner: w.store.clone(),
        delay: std::time::Duration::ZERO,
        after: std::time::Duration::from_secs(1),
    }))
    .await
    .unwrap();
    let quick = publisher(w.store.clone()).await.unwrap();
    let late_signing = tokio::spawn({
        let late = late.clone();
        async move { late.sign_now().await.unwrap() }
    });
    // The late one has read the index (nothing revoked) and is waiting to return it.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    w.revoke("alice", 1, RevocationReason::KeyCompromise).await;
    let quick_crl = quick.sign_now().await.unwrap();
    let late_crl = late_signing.await.unwrap();
    assert!(late_crl.entries.is_empty(), "read before the revocation");
    assert_eq!(
        quick_crl
            .entries
            .iter()
            .map(|e| e.serial)
            .collect::<Vec<_>>(),
        [serial(1)]
    );
    assert!(
        quick_crl.number > late_crl.number,
        "the CRL listing the revocation is numbered {}, the one without it {}",
        quick_crl.number,
        late_crl.number
    );
}

#[tokio::test]
async fn ocsp_answers_good_revoked_and_unknown_and_echoes_the_nonce() {
    let w = world().await;
    w.issue("alice", 1, 365).await;
    let responder = w.responder().await;

    let good = responder
        .respond(&request(
            vec![w.cert_id(serial(1).as_bytes())],
            Some(b"0123456789abcdef"),
        ))
        .await;
    assert_eq!(good.status, OcspResponseStatus::Successful);
    assert!(
        good.cacheable.is_none(),
        "a nonce makes it one client's answer"
    );
    let b = basic(&good);
    assert!(matches!(
        b.tbs_response_data.responses[0].cert_status,
        CertStatus::Good(_)
    ));
    let single = &b.tbs_response_data.responses[0];
    assert_eq!(single.cert_id, w.cert_id(serial(1).as_bytes()));
    assert!(single.next_update.is_some());
    let nonce = b.tbs_response_data.nonce().unwrap();
    assert_eq!(nonce.0.as_bytes(), b"0123456789abcdef");
    // The delegated signer is in `certs`, and its key signed the response.
    let signer = &b.certs.as_ref().unwrap()[0];
    assert_eq!(signer.to_der().unwrap(), responder.signer_certificate_der());
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        signer
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    let sig = p256::ecdsa::DerSignature::try_from(b.signature.raw_bytes()).unwrap();
    signature::Verifier::verify(&key, &b.tbs_response_data.to_der().unwrap(), &sig).unwrap();

    // Unknown: a serial never issued, a serial of another shape, another issuer.
    let mut other_issuer = w.cert_id(serial(1).as_bytes());
    other_issuer.issuer_name_hash = OctetString::new(vec![0; 20]).unwrap();
    let answer = responder
        .respond(&request(
            vec![
                w.cert_id(serial(9).as_bytes()),
                w.cert_id(&[0x12, 0x34]),
                other_issuer,
            ],
            None,
        ))
        .await;
    assert!(statuses(&answer)
        .iter()
        .all(|s| matches!(s, CertStatus::Unknown(_))));

    w.revoke("alice", 1, RevocationReason::KeyCompromise).await;
    let revoked = responder
        .respond(&request(vec![w.cert_id(serial(1).as_bytes())], None))
        .await;
    match statuses(&revoked)[0] {
        CertStatus::Revoked(info) => assert_eq!(
            info.revocation_reason,
            Some(x509_cert::ext::pkix::CrlReason::KeyCompromise)
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ocsp_leaves_the_reason_out_for_an_unspecified_revocation() {
    // RFC 5280 5.3.1: the reason SHOULD be absent rather than unspecified (0), as in the CRL.
    let w = world().await;
    w.issue("alice", 1, 365).await;
    let responder = w.responder().await;
    w.revoke("alice", 1, RevocationReason::Unspecified).await;
    let revoked = responder
        .respond(&request(vec![w.cert_id(serial(1).as_bytes())], None))
        .await;
    match statuses(&revoked)[0] {
        CertStatus::Revoked(info) => assert_eq!(info.revocation_reason, None),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn each_answer_carries_the_cert_id_its_request_sent_byte_for_byte() {
    // SHA-1 CertIDs with NULL and with absent parameters name the same certificate; RFC 6960
    // 4.2.2.3 and clients that compare CertIDs structurally (Bouncy Castle) need each answer
    // to carry the request's own, from the cache too.
    let w = world().await;
    w.issue("alice", 1, 365).await;
    let responder = w.responder().await;
    let null = w.cert_id(serial(1).as_bytes());
    assert!(null.hash_algorithm.parameters.is_some());
    let mut absent = null.clone();
    absent.hash_algorithm.parameters = None;
    let nonce: &[u8] = b"0123456789abcdef";
    let queries = [
        (vec![null.clone()], None),
        (vec![absent.clone()], None),
        (vec![null.clone()], Some(nonce)),
        (vec![absent.clone()], Some(nonce)),
        (vec![absent.clone(), null.clone()], None),
    ];
    // The second round is answered from the cache the first filled.
    for round in 0..2 {
        for (cert_ids, nonce) in &queries {
            let answer = responder.respond(&request(cert_ids.clone(), *nonce)).await;
            let responses = basic(&answer).tbs_response_data.responses;
            assert_eq!(responses.len(), cert_ids.len());
            for (sent, single) in cert_ids.iter().zip(&responses) {
                let sent = sent.to_der().unwrap();
                assert_eq!(single.cert_id.to_der().unwrap(), sent, "round {round}");
                assert!(
                    answer.der.windows(sent.len()).any(|w| w == sent.as_slice()),
                    "round {round}: the request's CertID bytes are in the answer"
                );
                assert!(matches!(single.cert_status, CertStatus::Good(_)));
            }
        }
    }
    assert_eq!(responder.cached_entries(), 2, "one entry per CertID form");
}

#[tokio::test]
async fn cached_answers_are_reused_until_a_revocation_or_half_their_validity() {
    let w = world().await;
    w.issue("alice", 1, 365).await;
    w.issue("bob", 2, 365).await;
    let responder = w.responder().await;
    let query = request(vec![w.cert_id(serial(1).as_bytes())], None);
    let first = responder.respond(&query).await;
    assert!(first.cacheable.is_some());
    let again = responder.respond(&query).await;
    assert!(Arc::ptr_eq(&first.der, &again.der), "served from the cache");
    assert_eq!(responder.cached_entries(), 1);

    // A revocation of another certificate empties the cache: fresh bytes, still good.
    w.revoke("bob", 2, RevocationReason::Unspecified).await;
    let after = responder.respond(&query).await;
    assert!(!Arc::ptr_eq(&first.der, &after.der));
    assert!(matches!(statuses(&after)[0], CertStatus::Good(_)));
    let cached = responder.respond(&query).await;
    assert!(Arc::ptr_eq(&after.der, &cached.der));

    // Half of the hour of validity later, a new answer is signed.
    w.clock.advance(Duration::minutes(31));
    let later = responder.respond(&query).await;
    assert!(!Arc::ptr_eq(&cached.der, &later.der));

    // Unknown serials are never cached.
    let unknown = request(vec![w.cert_id(serial(7).as_bytes())], None);
    let a = responder.respond(&unknown).await;
    let b = responder.respond(&unknown).await;
    assert!(!Arc::ptr_eq(&a.der, &b.der));
}

#[tokio::test]
async fn the_signer_is_rotated_half_way_through_its_life() {
    let w = world().await;
    w.issue("alice", 1, 365).await;
    let responder = w.responder().await;
    let first = responder.signer_certificate_der();
    let query = request(vec![w.cert_id(serial(1).as_bytes())], None);
    responder.respond(&query).await;
    w.clock.advance(Duration::hours(83));
    responder.respond(&query).await;
    assert_eq!(responder.signer_certificate_der(), first);
    w.clock.advance(Duration::hours(2));
    let answer = responder.respond(&query).await;
    let second = responder.signer_certificate_der();
    assert_ne!(second, first);
    assert_eq!(basic(&answer).certs.unwrap()[0].to_der().unwrap(), second);
    let next_update = basic(&answer).tbs_response_data.responses[0]
        .next_update
        .unwrap();
    let signer = Certificate::from_der(&second).unwrap();
    assert!(
        next_update.0.to_unix_duration()
            <= signer.tbs_certificate.validity.not_after.to_unix_duration()
    );

    // Review item 11: both signers were recorded before they signed, and the responder
    // answers `good` for them like for any certificate the CA signed.
    for der in [&first, &second] {
        let signer = Certificate::from_der(der).unwrap();
        let bytes = signer.tbs_certificate.serial_number.as_bytes();
        let serial = Serial::from_bytes(bytes.try_into().unwrap()).unwrap();
        let record = w.store.certificate(&serial).await.unwrap().unwrap();
        assert_eq!(&record.der, der);
        assert_eq!(record.holder, Holder::OcspSigner);
        let answer = responder
            .respond(&request(vec![w.cert_id(bytes)], None))
            .await;
        assert!(
            matches!(
                basic(&answer).tbs_response_data.responses[0].cert_status,
                CertStatus::Good(_)
            ),
            "{:?}",
            basic(&answer).tbs_response_data.responses[0].cert_status
        );
    }
}

#[tokio::test]
async fn malformed_requests_get_malformed_request_never_a_panic() {
    let w = world().await;
    let responder = w.responder().await;
    let id = w.cert_id(serial(1).as_bytes());
    let mut truncated = request(vec![id.clone()], None);
    truncated.truncate(truncated.len() - 3);
    let too_many = request(vec![id.clone(); MAX_REQUESTS_PER_QUERY + 1], None);
    let long_nonce = request(vec![id.clone()], Some(&[7; 33]));
    let empty_nonce = request(vec![id.clone()], Some(&[]));
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("garbage", b"not DER at all".to_vec()),
        ("truncated", truncated),
        ("no request", request(vec![], None)),
        ("too many", too_many),
        ("33-octet nonce", long_nonce),
        ("empty nonce", empty_nonce),
    ] {
        let answer = responder.respond(&bytes).await;
        assert_eq!(
            answer.status,
            OcspResponseStatus::MalformedRequest,
            "{what}"
        );
        let parsed = OcspResponse::from_der(&answer.der).unwrap();
        assert_eq!(parsed.response_status, OcspResponseStatus::MalformedRequest);
        assert!(parsed.response_bytes.is_none());
    }
}
