//! What the benchmarks share: the embedded defaults, a CA of their own (P-256), and the one
//! contract (`5110`) and account (`bench`) they issue for.

use std::path::Path;

use time::OffsetDateTime;

use estca::config::{CaConfig, Config, KeyAlgorithm};
use estca::model::{Account, Actor, Contract, EventKind, HistoryEvent, Outcome, Role};
use estca::store::RaStore;

/// The embedded defaults (`config/defaults.toml`), as `estca serve` reads them.
pub fn default_config() -> Config {
    let empty = tempfile::NamedTempFile::new().expect("temporary file");
    Config::load_from(Some(empty.path()), Vec::<(String, String)>::new()).expect("defaults")
}

/// The configuration of a CA under `dir/ca`, made by `CertificateAuthority::init`: the
/// defaults' (a P-256 key), with names of its own.
pub fn ca_config(dir: &Path) -> CaConfig {
    let mut ca = default_config().ca;
    ca.dir = dir.join("ca");
    ca.create_if_missing = false;
    ca.key_algorithm = KeyAlgorithm::P256;
    ca.organization = "Bench".into();
    ca.root_name = "Bench Root".into();
    ca.issuing_name = "Bench Issuing".into();
    ca
}

/// A history event of `kind` for account `bench` of contract `5110`.
pub fn event(kind: EventKind) -> HistoryEvent {
    HistoryEvent {
        at: OffsetDateTime::now_utc(),
        account: Some("bench".parse().expect("id")),
        contract: Some("5110".parse().expect("code")),
        kind,
        actor: Actor::System,
        source: "bench".into(),
        outcome: Outcome::Ok {
            detail: "issued 0123456789abcdef0123456789abcdef (CERTISSUEDNUM 1)".into(),
        },
    }
}

/// Creates contract `5110` and account `bench`, which has issued nothing yet.
pub async fn create_bench_account(store: &dyn RaStore, now: OffsetDateTime) {
    store
        .create_contract(
            Contract {
                code: "5110".parse().expect("code"),
                name: "Bench".into(),
                created_at: now,
                server_keygen: false,
            },
            event(EventKind::ContractCreate),
        )
        .await
        .expect("contract");
    store
        .create_account(
            Account::new(
                "bench".parse().expect("id"),
                "5110".parse().expect("code"),
                Role::User,
                "Bench".into(),
                "x".into(),
                now,
            ),
            event(EventKind::AccountCreate),
        )
        .await
        .expect("account");
}
