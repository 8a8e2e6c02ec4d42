//! The operator's backups of the whole store.

use crate::model::EventKind;
use crate::ra::authority::{Authority, Denial};
use crate::ra::{Caller, RaError, RegistrationAuthority};
use crate::store::StoreError;

impl RegistrationAuthority {
    /// A consistent snapshot of the whole store in the backup format
    /// ([`crate::store::backup`]), signed with the issuing CA's key, for the operator only: it
    /// holds password hashes. It is written to an unnamed temporary file (mode 0600, gone
    /// when closed), rewound, so that the caller streams it at the client's pace while the
    /// store's writers were held back only for the local write, and memory stays small
    /// however large the store.
    pub async fn backup(&self, caller: &Caller) -> Result<std::fs::File, RaError> {
        use std::io::{Seek, Write};
        if caller.authority != Authority::Operator {
            return Err(self
                .deny(
                    caller,
                    None,
                    EventKind::Query,
                    Denial::Forbidden("backups are taken by the CA operator on the admin socket"),
                    String::new(),
                )
                .await);
        }
        let file_error = |e: std::io::Error| {
            RaError::Store(StoreError::Backend(format!("writing the backup: {e}")))
        };
        let mut out = std::io::BufWriter::new(tempfile::tempfile().map_err(file_error)?);
        let mut writer = crate::store::backup::BackupWriter::new();
        out.write_all(&writer.header(self.clock.now()).map_err(RaError::Store)?)
            .map_err(file_error)?;
        {
            let writer = &mut writer;
            let out = &mut out;
            let mut sink = move |record| -> Result<(), StoreError> {
                out.write_all(&writer.record(&record)?)
                    .map_err(|e| StoreError::Backend(format!("writing the backup: {e}")))
            };
            self.backups
                .export(&mut sink)
                .await
                .map_err(RaError::Store)?;
        }
        // Signed with the issuing CA's key, so that `estca restore` can tell a backup this
        // CA took from one somebody edited (a checksum alone can be recomputed).
        let (line, summary) = writer.trailer(|message| -> Result<_, RaError> {
            Ok(self.ca.current().sign_backup(message)?)
        })?;
        out.write_all(&line).map_err(file_error)?;
        let mut file = out.into_inner().map_err(|e| file_error(e.into_error()))?;
        file.rewind().map_err(file_error)?;
        self.audit_query(caller, None, format!("backup taken ({summary})"))
            .await?;
        Ok(file)
    }
}
