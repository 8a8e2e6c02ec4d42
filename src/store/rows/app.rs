//! Application credential rows (key: the application's name).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{from_row, parse, serial, to_row, Instant, Stored};
use crate::model::{App, AppScope};
use crate::store::tables::APPS;
use crate::store::StoreError;

#[derive(Serialize, Deserialize)]
enum ScopeRow<'a> {
    All,
    Contracts(Vec<Cow<'a, str>>),
}

#[derive(Serialize, Deserialize)]
struct AppRow<'a> {
    scope: ScopeRow<'a>,
    can_create_contracts: bool,
    certificate: [u8; 16],
    revoked: bool,
    created_at: Instant,
}

impl Stored for App {
    const TABLE: &'static str = APPS;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        to_row(
            APPS,
            &AppRow {
                scope: match &self.scope {
                    AppScope::All => ScopeRow::All,
                    AppScope::Contracts(codes) => ScopeRow::Contracts(
                        codes.iter().map(|c| Cow::Borrowed(c.as_str())).collect(),
                    ),
                },
                can_create_contracts: self.can_create_contracts,
                certificate: *self.certificate.as_bytes(),
                revoked: self.revoked,
                created_at: Instant::of(self.created_at),
            },
        )
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let row: AppRow<'_> = from_row(APPS, key, value)?;
        Ok(App {
            name: parse(APPS, key, key)?,
            scope: match row.scope {
                ScopeRow::All => AppScope::All,
                ScopeRow::Contracts(codes) => AppScope::Contracts(
                    codes
                        .iter()
                        .map(|c| parse(APPS, key, c.as_bytes()))
                        .collect::<Result<_, _>>()?,
                ),
            },
            can_create_contracts: row.can_create_contracts,
            certificate: serial(APPS, key, &row.certificate)?,
            revoked: row.revoked,
            created_at: row.created_at.to_model(APPS, key)?,
        })
    }
}
