//! Certificate rows and revocation index rows (key of both: the 16 serial bytes).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::account::RoleRow;
use super::{from_row, parse, serial, to_row, Instant, Stored};
use crate::model::{CertificateRecord, Holder, KeyFingerprint, Revocation, RevocationReason};
use crate::store::tables::{CERTIFICATES, REVOKED};
use crate::store::{RevokedCertificate, StoreError};

/// [`Holder`] as stored.
#[derive(Serialize, Deserialize)]
enum HolderRow<'a> {
    Account {
        id: Cow<'a, str>,
        contract: Cow<'a, str>,
        role: RoleRow,
        issued_num: u32,
    },
    App {
        name: Cow<'a, str>,
    },
    TlsServer {
        names: Vec<Cow<'a, str>>,
    },
    OcspSigner,
}

/// [`RevocationReason`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum ReasonRow {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

/// [`Revocation`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct RevocationRow {
    at: Instant,
    reason: ReasonRow,
}

impl RevocationRow {
    fn of(revocation: &Revocation) -> Self {
        Self {
            at: Instant::of(revocation.at),
            reason: match revocation.reason {
                RevocationReason::Unspecified => ReasonRow::Unspecified,
                RevocationReason::KeyCompromise => ReasonRow::KeyCompromise,
                RevocationReason::CaCompromise => ReasonRow::CaCompromise,
                RevocationReason::AffiliationChanged => ReasonRow::AffiliationChanged,
                RevocationReason::Superseded => ReasonRow::Superseded,
                RevocationReason::CessationOfOperation => ReasonRow::CessationOfOperation,
                RevocationReason::PrivilegeWithdrawn => ReasonRow::PrivilegeWithdrawn,
            },
        }
    }

    fn to_model(self, tree: &str, key: &[u8]) -> Result<Revocation, StoreError> {
        Ok(Revocation {
            at: self.at.to_model(tree, key)?,
            reason: match self.reason {
                ReasonRow::Unspecified => RevocationReason::Unspecified,
                ReasonRow::KeyCompromise => RevocationReason::KeyCompromise,
                ReasonRow::CaCompromise => RevocationReason::CaCompromise,
                ReasonRow::AffiliationChanged => RevocationReason::AffiliationChanged,
                ReasonRow::Superseded => RevocationReason::Superseded,
                ReasonRow::CessationOfOperation => RevocationReason::CessationOfOperation,
                ReasonRow::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            },
        })
    }
}

#[derive(Serialize, Deserialize)]
struct CertificateRow<'a> {
    holder: HolderRow<'a>,
    subject: Cow<'a, str>,
    not_before: Instant,
    not_after: Instant,
    key: [u8; 32],
    revocation: Option<RevocationRow>,
    #[serde(with = "serde_bytes", borrow)]
    der: Cow<'a, [u8]>,
}

impl Stored for CertificateRecord {
    const TABLE: &'static str = CERTIFICATES;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let holder = match &self.holder {
            Holder::Account {
                id,
                contract,
                role,
                issued_num,
            } => HolderRow::Account {
                id: Cow::Borrowed(id.as_str()),
                contract: Cow::Borrowed(contract.as_str()),
                role: RoleRow::of(*role),
                issued_num: *issued_num,
            },
            Holder::App { name } => HolderRow::App {
                name: Cow::Borrowed(name.as_str()),
            },
            Holder::TlsServer { names } => HolderRow::TlsServer {
                names: names.iter().map(|n| Cow::Borrowed(n.as_str())).collect(),
            },
            Holder::OcspSigner => HolderRow::OcspSigner,
        };
        to_row(
            CERTIFICATES,
            &CertificateRow {
                holder,
                subject: Cow::Borrowed(&self.subject),
                not_before: Instant::of(self.not_before),
                not_after: Instant::of(self.not_after),
                key: self.key.0,
                revocation: self.revocation.as_ref().map(RevocationRow::of),
                der: Cow::Borrowed(&self.der),
            },
        )
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let t = CERTIFICATES;
        let row: CertificateRow<'_> = from_row(t, key, value)?;
        let holder = match row.holder {
            HolderRow::Account {
                id,
                contract,
                role,
                issued_num,
            } => Holder::Account {
                id: parse(t, key, id.as_bytes())?,
                contract: parse(t, key, contract.as_bytes())?,
                role: role.to_model(),
                issued_num,
            },
            HolderRow::App { name } => Holder::App {
                name: parse(t, key, name.as_bytes())?,
            },
            HolderRow::TlsServer { names } => Holder::TlsServer {
                names: names.into_iter().map(Cow::into_owned).collect(),
            },
            HolderRow::OcspSigner => Holder::OcspSigner,
        };
        Ok(CertificateRecord {
            serial: serial(t, key, key)?,
            holder,
            subject: row.subject.into_owned(),
            not_before: row.not_before.to_model(t, key)?,
            not_after: row.not_after.to_model(t, key)?,
            key: KeyFingerprint(row.key),
            revocation: row.revocation.map(|r| r.to_model(t, key)).transpose()?,
            der: row.der.into_owned(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct RevokedRow {
    revocation: RevocationRow,
    not_after: Instant,
}

impl Stored for RevokedCertificate {
    const TABLE: &'static str = REVOKED;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        to_row(
            REVOKED,
            &RevokedRow {
                revocation: RevocationRow::of(&self.revocation),
                not_after: Instant::of(self.not_after),
            },
        )
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let row: RevokedRow = from_row(REVOKED, key, value)?;
        Ok(RevokedCertificate {
            serial: serial(REVOKED, key, key)?,
            revocation: row.revocation.to_model(REVOKED, key)?,
            not_after: row.not_after.to_model(REVOKED, key)?,
        })
    }
}
