//! The backup file: a backend-neutral snapshot of the store as JSON lines, signed by the CA.
//!
//! ```text
//! {"type":"header","format":"estca-backup","version":2,"created_at":"...","estca_version":"..."}
//! {"type":"contract","record":{...}}          one line per record: contracts, accounts,
//! {"type":"account","record":{...}}           certificates, application credentials,
//! {"type":"certificate","record":{...}}       then history, in that order
//! {"type":"app","record":{...}}
//! {"type":"history","record":{...}}
//! {"type":"trailer","counts":{...},"sha256":"<hex>","signature":{"algorithm":"ecdsa-with-SHA256","signer":"<base64 DER>","value":"<base64 DER>"}}
//! ```
//!
//! Each record line has its own serde types (`lines`), converted from and to the model's
//! records, so the format stays what it is whatever the model or a backend's rows become.
//!
//! The trailer counts the records of each kind and carries the SHA-256 of every byte before
//! it, so a truncated or damaged file is refused before anything is restored. A checksum stops
//! accidents, not people: whoever can edit the file can recompute it. So the daemon signs
//! [`signed_message`] (a fixed context string and that SHA-256) with the issuing CA's key and
//! puts the signature and the CA's certificate in the trailer; `estca restore` checks the
//! signature and that the certificate is the configured CA's before it restores anything
//! (see `crate::ca::backup_signature`). Version 1 files, written before backups were
//! signed, carry no signature. The file holds password hashes: it is written as a private
//! file (mode 0600, `crate::private_file`).

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::StoreError;
use crate::model::{Account, App, CertificateRecord, Contract, HistoryEntry};
use lines::RecordLine;

mod lines;
mod signature;

pub use signature::{signed_message, BackupSignature, SignatureAlgorithm, SIGNATURE_CONTEXT};

/// The value of the header's `format` field.
pub const FORMAT: &str = "estca-backup";
/// The version of the format this build writes: signed by the CA.
pub const VERSION: u32 = 2;
/// The version written before backups were signed, still read (restored only when the
/// operator says so explicitly, since nothing proves where such a file came from).
pub const UNSIGNED_VERSION: u32 = 1;

/// One domain record of a store snapshot, independent of the database that holds it: what
/// [`BackupStore::export`](super::BackupStore::export) hands out and
/// [`BackupStore::import`](super::BackupStore::import) takes. In the file each is one line of
/// its own format (`lines`).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreRecord {
    /// A contract.
    Contract(Contract),
    /// An account, with its password hash, lock state and version.
    Account(Account),
    /// A certificate with its revocation state.
    Certificate(CertificateRecord),
    /// An application credential.
    App(App),
    /// A history entry with its sequence number.
    History(HistoryEntry),
    /// The last CRL number drawn, so that a restored CA keeps numbering upwards.
    CrlNumber(u64),
}

impl StoreRecord {
    /// The name of this kind of record, as counted in the trailer.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreRecord::Contract(_) => "contracts",
            StoreRecord::Account(_) => "accounts",
            StoreRecord::Certificate(_) => "certificates",
            StoreRecord::App(_) => "apps",
            StoreRecord::History(_) => "history",
            StoreRecord::CrlNumber(_) => "crl_number",
        }
    }
}

/// Why a backup file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file could not be read.
    #[error("cannot read the backup: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not what the format says.
    #[error("the backup is damaged at line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The trailer is missing: the file was cut short.
    #[error("the backup has no trailer line: it is incomplete (was the transfer interrupted?)")]
    Truncated,
    /// The checksum or the counts do not match.
    #[error("the backup does not match its trailer: {0}; it was altered or damaged")]
    Mismatch(String),
    /// The store refused.
    #[error("{0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    #[serde(rename = "type")]
    kind: String,
    format: String,
    version: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    estca_version: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    #[serde(rename = "type")]
    kind: String,
    counts: BTreeMap<String, u64>,
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<BackupSignature>,
}

/// What a backup holds, once its lines, counts and checksum are verified. Its signature, if
/// any, is carried but not yet checked: that is the CA's part (`crate::ca::backup_signature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// When the daemon took the snapshot (the header's `created_at`): a restore brings the
    /// store back to that moment.
    pub taken_at: OffsetDateTime,
    /// Records of each kind.
    pub counts: BTreeMap<String, u64>,
    /// SHA-256 of the file up to the trailer, hex.
    pub sha256: String,
    /// The CA's signature; `None` for a version 1 (unsigned) file.
    pub signature: Option<BackupSignature>,
}

impl BackupSummary {
    /// The bytes the signature must be over ([`signed_message`] of this file's SHA-256).
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(&hex::decode(&self.sha256).unwrap_or_default())
    }
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<String> = ["contracts", "accounts", "certificates", "apps", "history"]
            .iter()
            .map(|k| format!("{} {k}", self.counts.get(*k).copied().unwrap_or(0)))
            .collect();
        write!(f, "{} (sha256 {})", counts.join(", "), self.sha256)
    }
}

/// Produces the lines of a backup file one by one, hashing as it goes.
pub struct BackupWriter {
    hasher: Sha256,
    counts: BTreeMap<String, u64>,
    taken_at: OffsetDateTime,
}

impl Default for BackupWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl BackupWriter {
    /// A writer whose counts start at zero.
    pub fn new() -> Self {
        let counts = ["contracts", "accounts", "certificates", "apps", "history"]
            .iter()
            .map(|k| ((*k).to_owned(), 0))
            .collect();
        Self {
            hasher: Sha256::new(),
            counts,
            // Set by the header line, which comes first.
            taken_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn line(&mut self, value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
        let mut line = serde_json::to_vec(value)
            .map_err(|e| StoreError::Backend(format!("cannot encode a backup line: {e}")))?;
        line.push(b'\n');
        self.hasher.update(&line);
        Ok(line)
    }

    /// The header line.
    pub fn header(&mut self, created_at: OffsetDateTime) -> Result<Vec<u8>, StoreError> {
        self.line(&Header {
            kind: "header".into(),
            format: FORMAT.into(),
            version: VERSION,
            created_at,
            estca_version: env!("CARGO_PKG_VERSION").into(),
        })
        .inspect(|_| self.taken_at = created_at)
    }

    /// The line of one record.
    pub fn record(&mut self, record: &StoreRecord) -> Result<Vec<u8>, StoreError> {
        *self.counts.entry(record.kind().to_owned()).or_insert(0) += 1;
        self.line(&RecordLine::from(record))
    }

    /// The trailer line, which closes the file, with the signature `sign` makes over
    /// [`signed_message`] of everything written so far.
    pub fn trailer<E: From<StoreError>>(
        self,
        sign: impl FnOnce(&[u8]) -> Result<BackupSignature, E>,
    ) -> Result<(Vec<u8>, BackupSummary), E> {
        let digest = self.hasher.finalize();
        let signature = sign(&signed_message(&digest))?;
        let summary = BackupSummary {
            taken_at: self.taken_at,
            counts: self.counts,
            sha256: hex::encode(digest),
            signature: Some(signature),
        };
        let mut line = serde_json::to_vec(&Trailer {
            kind: "trailer".into(),
            counts: summary.counts.clone(),
            sha256: summary.sha256.clone(),
            signature: summary.signature.clone(),
        })
        .map_err(|e| StoreError::Backend(format!("cannot encode a backup line: {e}")))?;
        line.push(b'\n');
        Ok((line, summary))
    }
}

/// Reads a backup, checks its header, every line, the counts and the checksum, and hands the
/// records to `each` in batches of at most `batch` (`each` is never called when `dry_run`).
/// Returns what the file holds.
pub fn read(
    mut input: impl BufRead,
    batch: usize,
    dry_run: bool,
    mut each: impl FnMut(Vec<StoreRecord>) -> Result<(), BackupError>,
) -> Result<BackupSummary, BackupError> {
    let mut hasher = Sha256::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending = Vec::new();
    let mut buf = Vec::new();
    let mut number = 0usize;
    let mut trailer = None;
    let mut version = VERSION;
    let mut taken_at = OffsetDateTime::UNIX_EPOCH;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        number += 1;
        let malformed = |reason: String| BackupError::Malformed {
            line: number,
            reason,
        };
        if trailer.is_some() {
            return Err(malformed("text after the trailer line".into()));
        }
        if buf.last() != Some(&b'\n') {
            return Err(BackupError::Truncated);
        }
        let value: serde_json::Value =
            serde_json::from_slice(&buf).map_err(|e| malformed(e.to_string()))?;
        let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
        match (number, kind) {
            (1, "header") => {
                let header: Header =
                    serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
                if header.format != FORMAT
                    || !(header.version == VERSION || header.version == UNSIGNED_VERSION)
                {
                    return Err(malformed(format!(
                        "this is {} version {}; this estca reads {FORMAT} versions {UNSIGNED_VERSION} and {VERSION}",
                        header.format, header.version
                    )));
                }
                version = header.version;
                taken_at = header.created_at;
            }
            (1, _) => {
                return Err(malformed(
                    "the first line is not an estca backup header".into(),
                ))
            }
            (_, "trailer") => {
                let t: Trailer =
                    serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
                trailer = Some(t);
                continue;
            }
            _ => {
                let line: RecordLine =
                    serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
                let record = StoreRecord::from(line);
                *counts.entry(record.kind().to_owned()).or_insert(0) += 1;
                if !dry_run {
                    pending.push(record);
                    if pending.len() >= batch.max(1) {
                        each(std::mem::take(&mut pending))?;
                    }
                }
            }
        }
        hasher.update(&buf);
    }
    let trailer = trailer.ok_or(BackupError::Truncated)?;
    match (version, &trailer.signature) {
        (VERSION, None) => {
            return Err(BackupError::Mismatch(format!(
                "a version {VERSION} backup carries the CA's signature, and this one has none"
            )))
        }
        (UNSIGNED_VERSION, Some(_)) => {
            return Err(BackupError::Mismatch(format!(
                "a version {UNSIGNED_VERSION} backup is never signed, and this one has a signature"
            )))
        }
        _ => {}
    }
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != trailer.sha256 {
        return Err(BackupError::Mismatch(format!(
            "checksum {sha256}, trailer says {}",
            trailer.sha256
        )));
    }
    let nonzero = |m: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        m.iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    if nonzero(&counts) != nonzero(&trailer.counts) {
        return Err(BackupError::Mismatch(format!(
            "counted {counts:?}, trailer says {:?}",
            trailer.counts
        )));
    }
    if !pending.is_empty() {
        each(pending)?;
    }
    Ok(BackupSummary {
        taken_at,
        counts: trailer.counts,
        sha256,
        signature: trailer.signature,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::{AppScope, Holder};

    fn file() -> Vec<u8> {
        let mut w = BackupWriter::new();
        let mut out = w.header(OffsetDateTime::UNIX_EPOCH).unwrap();
        for code in ["5110", "5111"] {
            let record = StoreRecord::Contract(Contract {
                code: code.parse().unwrap(),
                name: format!("Customer {code}"),
                created_at: OffsetDateTime::UNIX_EPOCH,
                server_keygen: false,
            });
            out.extend(w.record(&record).unwrap());
        }
        out.extend(
            w.trailer(|message| -> Result<_, StoreError> {
                Ok(BackupSignature {
                    algorithm: SignatureAlgorithm::EcdsaWithSha256,
                    signer: b"certificate".to_vec(),
                    value: message.to_vec(),
                })
            })
            .unwrap()
            .0,
        );
        out
    }

    #[test]
    fn a_written_file_reads_back_with_its_counts() {
        let mut seen = Vec::new();
        let summary = read(&file()[..], 1, false, |batch| {
            seen.extend(batch);
            Ok(())
        })
        .unwrap();
        assert_eq!(summary.counts["contracts"], 2);
        assert_eq!(seen.len(), 2);
        // The signature is carried, over the context string and this file's digest.
        let signature = summary.signature.clone().unwrap();
        assert_eq!(signature.value, summary.signed_message());
        assert!(signature.value.starts_with(SIGNATURE_CONTEXT));
    }

    #[test]
    fn a_version_2_file_without_its_signature_is_refused() {
        let text = String::from_utf8(file()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let last = lines.len() - 1;
        let mut trailer: serde_json::Value = serde_json::from_str(&lines[last]).unwrap();
        trailer.as_object_mut().unwrap().remove("signature");
        lines[last] = trailer.to_string();
        let stripped = lines.join("\n") + "\n";
        let err = read(stripped.as_bytes(), 10, true, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("has none"), "{err}");
    }

    #[test]
    fn altered_truncated_and_foreign_files_are_refused() {
        let text = String::from_utf8(file()).unwrap();
        let altered = text.replacen("Customer 5111", "Customer 5112", 1);
        let err = read(altered.as_bytes(), 10, true, |_| Ok(())).unwrap_err();
        assert!(matches!(err, BackupError::Mismatch(_)), "{err}");

        let lines: Vec<&str> = text.lines().collect();
        let cut = lines[..lines.len() - 1].join("\n") + "\n";
        let err = read(cut.as_bytes(), 10, true, |_| Ok(())).unwrap_err();
        assert!(matches!(err, BackupError::Truncated), "{err}");

        let dropped = [lines[0], lines[1], lines[3]].join("\n") + "\n";
        let err = read(dropped.as_bytes(), 10, true, |_| Ok(())).unwrap_err();
        assert!(matches!(err, BackupError::Mismatch(_)), "{err}");

        let err = read(&b"{\"type\":\"contract\"}\n"[..], 10, true, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    /// A backup written by the release before the file had serde types of its own (estca
    /// 7bdbd74, `tests/data/make-backup.sh`): every line reads, and writing what was read
    /// gives the file back byte for byte, trailer and all.
    #[test]
    fn a_backup_of_the_previous_release_reads_and_writes_back_byte_for_byte() {
        const FILE: &[u8] = include_bytes!("../../../tests/data/backup-v2/backup.ndjson");
        let mut records = Vec::new();
        let summary = read(FILE, 7, false, |batch| {
            records.extend(batch);
            Ok(())
        })
        .unwrap();
        let expected: BTreeMap<String, u64> = [
            ("accounts", 5),
            ("apps", 2),
            ("certificates", 8),
            ("contracts", 2),
            ("crl_number", 1),
            ("history", 26),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(summary.counts, expected);

        // Every shape the format has is in the file, so each converts both ways here.
        let holders: BTreeSet<&str> = records
            .iter()
            .filter_map(|r| match r {
                StoreRecord::Certificate(c) => Some(match c.holder {
                    Holder::Account { .. } => "account",
                    Holder::App { .. } => "app",
                    Holder::TlsServer { .. } => "tls_server",
                    Holder::OcspSigner => "ocsp_signer",
                }),
                _ => None,
            })
            .collect();
        assert_eq!(holders.len(), 4, "{holders:?}");
        let actors: BTreeSet<String> = records
            .iter()
            .filter_map(|r| match r {
                StoreRecord::History(h) => Some(format!("{:?}", h.event.actor)),
                _ => None,
            })
            .map(|debug| debug.split([' ', '{']).next().unwrap_or("").to_owned())
            .collect();
        for actor in ["Operator", "Account", "Anonymous", "System"] {
            assert!(actors.contains(actor), "{actor} in {actors:?}");
        }
        assert!(records.iter().any(|r| matches!(
            r,
            StoreRecord::Certificate(CertificateRecord {
                revocation: Some(_),
                ..
            })
        )));
        assert!(records.iter().any(|r| matches!(
            r,
            StoreRecord::App(App {
                scope: AppScope::All,
                ..
            })
        )));
        assert!(records.iter().any(
            |r| matches!(r, StoreRecord::App(App { scope: AppScope::Contracts(c), .. }) if c.len() == 2)
        ));

        let first = FILE.split(|b| *b == b'\n').next().unwrap();
        let header: Header = serde_json::from_slice(first).unwrap();
        let mut writer = BackupWriter::new();
        let mut written = writer.header(header.created_at).unwrap();
        for record in &records {
            written.extend(writer.record(record).unwrap());
        }
        let signature = summary.signature.clone().unwrap();
        let (trailer, rewritten) = writer
            .trailer(|_| -> Result<_, StoreError> { Ok(signature) })
            .unwrap();
        written.extend(trailer);
        assert_eq!(rewritten.sha256, summary.sha256);
        for (number, (ours, theirs)) in written
            .split(|b| *b == b'\n')
            .zip(FILE.split(|b| *b == b'\n'))
            .enumerate()
        {
            assert_eq!(
                String::from_utf8_lossy(ours),
                String::from_utf8_lossy(theirs),
                "line {}",
                number + 1
            );
        }
        assert!(written == FILE, "the same lines, and the same bytes");
    }
}
