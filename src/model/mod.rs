//! Domain types shared by every layer: contracts, accounts, certificate records, application
//! credentials and history entries, and the small value types (IDs, serials, revocation
//! reasons, the public URL, the PKCS#11 URI of a token key) that validate themselves on
//! construction so that no layer has to re-check them.
//!
//! The value types have one text form each, used alike in JSON, URLs, command lines and
//! certificates (their serde is that text; for the IDs and serials it is written once, by
//! `text_form!`). The records have no outside format of their own: the management API
//! answers with its view types ([`crate::ra::AccountView`] and its neighbours), and the backup
//! file has its line types ([`crate::store::backup`]), each converted from the records.
//!
//! The records' serde derives (on [`Contract`], [`Account`], [`CertificateRecord`],
//! [`Holder`], [`Revocation`], [`KeyFingerprint`], [`App`], [`AppScope`], [`HistoryEntry`],
//! [`HistoryEvent`], [`Actor`] and [`Outcome`]) have one user left: the sled backend, whose
//! rows on disk are these records as JSON. They go when its rows are types of its own.

#[macro_use]
mod text;
mod account;
mod app;
mod certificate;
mod contract;
mod history;
mod host_name;
mod ids;
mod pkcs11_uri;
mod presented;
mod revocation;
mod url;

pub use account::{Account, CertificateChoice, Role};
pub use app::{App, AppScope};
pub use certificate::{CertificateRecord, CertificateStatus, Holder};
pub use contract::Contract;
pub use history::{Actor, EventKind, HistoryEntry, HistoryEvent, Outcome};
pub use host_name::HostName;
pub use ids::{AccountId, AppName, ContractCode, KeyFingerprint, Serial};
pub use pkcs11_uri::Pkcs11Uri;
pub use presented::PresentedCertificate;
pub use revocation::{Revocation, RevocationReason};
pub use text::{human_text, rfc3339, InvalidValue};
pub use url::PublicUrl;
