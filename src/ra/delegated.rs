//! Delegated issuance: an application credential (`estca app add`) has a certificate issued
//! for an ID of its scope, as an EST registration authority forwarding a device's request
//! (`simpleenroll` with the application's client certificate) or over the management API.
//!
//! There is no second copy of the issuance rules: the application's credential and scope
//! stand for the ID's password, and the request then goes through the registration
//! authority's one issuance path with the application as the actor: the same single active
//! certificate, reissue/continue/revoke choice, CERTISSUEDNUM, lockout and history.

use super::policy::EnrollVia;
use super::{Caller, RaError, RegistrationAuthority};
use crate::ca;
use crate::model::{AccountId, EventKind, Holder, PresentedCertificate};
use crate::store::IssuedCertificate;

impl RegistrationAuthority {
    /// The application behind a client certificate presented to EST `simpleenroll`.
    ///
    /// `Ok(None)` when the certificate is not an application's (an ID's own certificate, or
    /// one this CA did not record): the front end then asks for the ID's password as usual.
    /// An error when it is an application's that may not act now (revoked, expired,
    /// replaced).
    pub async fn delegating_application(
        &self,
        client_certificate: &PresentedCertificate,
        source: &str,
    ) -> Result<Option<Caller>, RaError> {
        let record = match self.recorded_certificate(client_certificate).await {
            Ok(record) => record,
            Err(RaError::UnknownCertificate) => return Ok(None),
            Err(e) => return Err(e),
        };
        match &record.holder {
            Holder::App { name } => Ok(Some(
                self.application(&record, name, source, self.clock.now())
                    .await?,
            )),
            _ => Ok(None),
        }
    }

    /// EST `simpleenroll` from an application: the ID is the CSR subject's common name
    /// ([`ca::csr::subject_common_name`]); then as [`RegistrationAuthority::issue_on_behalf`].
    pub async fn issue_for_csr_subject(
        &self,
        caller: &Caller,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let named = ca::csr::subject_common_name(csr_der)?;
        // A name that cannot be an ID is answered like an ID that does not exist.
        let id: AccountId = named
            .parse()
            .map_err(|_| RaError::NotFound(format!("account {named}")))?;
        self.issue_on_behalf(caller, &id, csr_der).await
    }

    /// Issues a certificate for `id` on the caller's behalf, without the ID's password: the
    /// caller's authority stands for it ([`super::authority::Authority::may_issue_for`]: the operator, or an
    /// application whose scope covers the ID's contract; an ID out of scope is answered like
    /// one that does not exist). The lifecycle is the same as an enrollment with the ID's
    /// password: refused while the ID has an active certificate and no reissue was chosen,
    /// while it is locked, or after its administrator revoked it. History records the caller
    /// as the actor.
    pub async fn issue_on_behalf(
        &self,
        caller: &Caller,
        id: &AccountId,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let result = self.issue_on_behalf_uncounted(caller, id, csr_der).await;
        self.count_enrollment(result)
    }

    async fn issue_on_behalf_uncounted(
        &self,
        caller: &Caller,
        id: &AccountId,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let account = self.visible_account(caller, id, EventKind::Enroll).await?;
        if let Err(denial) = caller.authority.may_issue_for(&account) {
            return Err(self
                .deny(
                    caller,
                    Some(&account),
                    EventKind::Enroll,
                    denial,
                    format!("account {id}"),
                )
                .await);
        }
        self.issue(
            caller,
            &account,
            EventKind::Enroll,
            csr_der,
            EnrollVia::Delegated,
        )
        .await
    }
}
