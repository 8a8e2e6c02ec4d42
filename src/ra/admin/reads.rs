//! What administrators read besides IDs and contracts: history (利用履歴照会) and certificates.

use crate::model::{EventKind, HistoryEntry, Serial};
use crate::ra::authority::{Authority, Denial};
use crate::ra::views::CertificateView;
use crate::ra::{Caller, RaError, RegistrationAuthority, MAX_HISTORY_PAGE};
use crate::store::{HistoryQuery, Page};

impl RegistrationAuthority {
    /// History in scope, newest first (利用履歴照会).
    pub async fn history(
        &self,
        caller: &Caller,
        mut query: HistoryQuery,
    ) -> Result<Page<HistoryEntry>, RaError> {
        query.contract = match caller.authority.listing_contract(query.contract.take()) {
            Ok(contract) => contract,
            Err(denial) => {
                return Err(self
                    .deny(caller, None, EventKind::Query, denial, "contract".into())
                    .await)
            }
        };
        if query.page.limit == 0 || query.page.limit > MAX_HISTORY_PAGE {
            return Err(RaError::Invalid(format!(
                "limit must be between 1 and {MAX_HISTORY_PAGE}"
            )));
        }
        // An ID outside the caller's scope, or none, is not found, as everywhere else (the
        // contract filter would only have made its page empty).
        if let Some(id) = &query.account {
            self.visible_account(caller, id, EventKind::Query).await?;
        }
        let entries = self.store.history(&query).await?;
        self.audit_query(caller, None, "viewed history".into())
            .await?;
        Ok(entries)
    }

    /// One certificate in scope, with its status.
    pub async fn certificate(
        &self,
        caller: &Caller,
        serial: &Serial,
    ) -> Result<CertificateView, RaError> {
        if let Err(denial) = caller.authority.administers() {
            return Err(self
                .deny(caller, None, EventKind::Query, denial, String::new())
                .await);
        }
        let record = match self.store.certificate(serial).await? {
            Some(r)
                if r.contract()
                    .is_some_and(|c| caller.authority.sees_contract(c))
                    || caller.authority == Authority::Operator =>
            {
                r
            }
            _ => {
                return Err(self
                    .deny(
                        caller,
                        None,
                        EventKind::Query,
                        Denial::NotFound,
                        format!("certificate {serial}"),
                    )
                    .await)
            }
        };
        self.audit_query(caller, None, format!("viewed certificate {serial}"))
            .await?;
        Ok(CertificateView::new(&record, self.clock.now()))
    }
}
