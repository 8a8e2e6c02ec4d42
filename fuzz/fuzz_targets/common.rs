//! Shared by the in-process targets: a registration authority over a development CA and a
#![allow(dead_code)]
//! sled store in a temporary directory, and a runtime to drive the routers with.

use std::sync::{Arc, OnceLock};

use estca::config::Config;
use estca::ra::{RegistrationAuthority, SystemClock};
use estca::store::{SledStore, Store};

/// The password of the account `fuzz1` (contract `5110`), which seeds may use.
pub const PASSWORD: &str = "fuzz password 1";

pub struct Fixture {
    pub runtime: tokio::runtime::Runtime,
    pub ra: Arc<RegistrationAuthority>,
    /// The issuing CA and the store the registration authority works on.
    pub cas: Arc<estca::ca::IssuingCas>,
    pub store: Arc<SledStore>,
    pub max_body_bytes: usize,
    _dir: tempfile::TempDir,
}

/// Built once per fuzzing process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::load_from(None, Vec::new()).expect("embedded defaults");
        config.ca.dir = dir.path().join("certs");
        config.store.path = dir.path().join("data");
        // Cheap hashing, so that the fuzzer spends its time on parsing.
        config.auth.argon2_memory_kib = 64;
        config.auth.argon2_iterations = 1;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let ca = Arc::new(estca::ca::IssuingCas::from(
            estca::server::load_or_create_ca(&config, true).expect("CA"),
        ));
        let store = Arc::new(SledStore::open(&config.store.path.join("db")).expect("store"));
        let ra = Arc::new(
            RegistrationAuthority::new(
                store.clone() as Arc<dyn Store>,
                ca.clone(),
                Arc::new(SystemClock),
                &config.auth,
            )
            .expect("registration authority"),
        );
        let fixture = Fixture {
            runtime,
            ra,
            cas: ca,
            store,
            max_body_bytes: config.server.max_body_bytes,
            _dir: dir,
        };
        fixture.runtime.block_on(async {
            use tower::ServiceExt;
            let api = estca::internal::api::router(fixture.ra.clone(), estca::internal::http::Base64Lines::Wrapped);
            for (path, body) in [
                ("/api/v1/contracts", r#"{"code":"5110","name":"Fuzz"}"#.to_owned()),
                (
                    "/api/v1/accounts",
                    format!(
                        r#"{{"id":"fuzz1","contract":"5110","role":"user","name":"F","password":"{PASSWORD}"}}"#
                    ),
                ),
            ] {
                let request = http::Request::post(path)
                    .header("content-type", "application/json")
                    .extension(estca::internal::http::PeerInfo::admin_socket(Some(0)))
                    .body(axum::body::Body::from(body))
                    .expect("request");
                let response = api.clone().oneshot(request).await.expect("infallible");
                assert!(response.status().is_success(), "seeding {path}");
            }
        });
        fixture
    })
}

/// Splits `data` into a header block and a body at the first blank line; the header block is
/// `name: value` lines.
pub fn split_request(data: &[u8]) -> (Vec<(String, Vec<u8>)>, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &data[data.len()..]),
    };
    let headers = head
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            let name = std::str::from_utf8(&line[..colon]).ok()?.trim().to_owned();
            let value = line[colon + 1..].trim_ascii().to_vec();
            Some((name, value))
        })
        .collect();
    (headers, body)
}

/// Runs `request` through `router` and checks what any answer must be: never a 500, and
/// every error explained in a body, but for the bare challenge (401 with `WWW-Authenticate`
/// and no body) to a request that carried no credentials, which Bouncy Castle's client needs.
pub fn drive(router: axum::Router, request: http::Request<axum::body::Body>) -> (u16, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let had_credentials = request.headers().contains_key(http::header::AUTHORIZATION);
    fixture().runtime.block_on(async move {
        let response = router.oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let challenge = status == 401
            && !had_credentials
            && response
                .headers()
                .contains_key(http::header::WWW_AUTHENTICATE);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes()
            .to_vec();
        assert_ne!(
            status,
            500,
            "internal error: {}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 && !challenge {
            assert!(!body.is_empty(), "error {status} without a message");
        }
        (status, body)
    })
}
