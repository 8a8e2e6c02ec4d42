//! What the benchmarks share: a development CA of their own (P-256), and the one contract
//! (`5110`) and account (`bench`) they issue for.

use std::path::Path;

use time::OffsetDateTime;

use estca::config::{CaConfig, KeyAlgorithm};
use estca::model::{Account, Actor, Contract, EventKind, HistoryEvent, Outcome, Role};
use estca::store::RaStore;

/// The configuration of a CA under `dir/ca`, made by `CertificateAuthority::init`.
pub fn ca_config(dir: &Path) -> CaConfig {
    CaConfig {
        dir: dir.join("ca"),
        create_if_missing: false,
        key_algorithm: KeyAlgorithm::P256,
        country: "JP".into(),
        organization: "Bench".into(),
        root_name: "Bench Root".into(),
        issuing_name: "Bench Issuing".into(),
        root_validity_years: 10,
        issuing_validity_years: 10,
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
