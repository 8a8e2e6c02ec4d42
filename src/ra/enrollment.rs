//! The enrollments of an ID acting for itself: `simpleenroll` and `serverkeygen` with its
//! password, `simplereenroll` with the certificate it presented over TLS.

use zeroize::Zeroizing;

use crate::ca;
use crate::model::{Account, Actor, CertificateRecord, EventKind, PresentedCertificate};
use crate::source::SourceKey;
use crate::store::IssuedCertificate;

use super::authentication::{refused_even_unrecorded, unauthenticated_if_locked};
use super::policy::EnrollVia;
use super::{source_budget, throttle, Caller, RaError, RegistrationAuthority};

impl RegistrationAuthority {
    /// simpleenroll: authenticates `id`/`password`, validates the CSR, applies the
    /// lifecycle and issues. `id` is taken as the client sent it; `source` is the peer's
    /// address for history and `source_key` what the per-source throttle counts it as
    /// (`None`: not limited).
    pub async fn enroll_with_password(
        &self,
        source: &str,
        source_key: Option<SourceKey>,
        id: &str,
        password: Zeroizing<Vec<u8>>,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let result = match self
            .authenticate_enrollment(source, source_key, id, password)
            .await
        {
            Ok((caller, account)) => unauthenticated_if_locked(
                self.issue(
                    &caller,
                    &account,
                    EventKind::Enroll,
                    csr_der,
                    EnrollVia::Password,
                )
                .await,
            ),
            Err(e) => Err(e),
        };
        self.count_enrollment(result)
    }

    /// serverkeygen (RFC 7030 section 4.4): as [`RegistrationAuthority::enroll_with_password`]
    /// (the same authentication, throttling, lockout, lifecycle and history), for an ID whose
    /// contract allows it ([`crate::model::Contract::server_keygen`]; else 403), with a key
    /// pair estca generates instead of the CSR's key
    /// (`issue_server_generated_key`). The private key is returned
    /// to be sent to the client once; it is not stored.
    pub async fn enroll_with_server_keygen(
        &self,
        source: &str,
        source_key: Option<SourceKey>,
        id: &str,
        password: Zeroizing<Vec<u8>>,
        csr_der: &[u8],
    ) -> Result<(IssuedCertificate, ca::GeneratedKey), RaError> {
        let result = match self
            .authenticate_enrollment(source, source_key, id, password)
            .await
        {
            Ok((caller, account)) => unauthenticated_if_locked(
                self.issue_server_generated_key(&caller, &account, csr_der)
                    .await,
            ),
            Err(e) => Err(e),
        };
        self.observe_enrollment(result.as_ref().map(|(issued, _)| issued));
        result
    }

    /// The authentication of simpleenroll and serverkeygen: the source's failed-login
    /// limits, then the ID's password ([`RegistrationAuthority::authenticate`]); returns the
    /// ID acting for itself and its account.
    pub(super) async fn authenticate_enrollment(
        &self,
        source: &str,
        source_key: Option<SourceKey>,
        id: &str,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<(Caller, Account), RaError> {
        // The source's limit, in this daemon's memory and then in the store (see
        // `source_budget`): a token of each is taken before the password is looked at.
        let deadline = tokio::time::Instant::now() + throttle::MAX_WAIT;
        let throttled = match self.failures_by_source.admit(source_key).await {
            Ok(admitted) => match self.source_budgets.take(source_key, deadline).await {
                Ok(spent) => Ok((admitted, spent)),
                Err(not_spent) => {
                    // Not checked: this daemon's token goes back.
                    admitted.refund();
                    match not_spent {
                        source_budget::NotSpent::Throttled(throttled) => Err(throttled),
                        source_budget::NotSpent::Store(e) => return Err(e.into()),
                    }
                }
            },
            Err(throttled) => Err(throttled),
        };
        let (admitted, spent) = match throttled {
            Ok(tokens) => tokens,
            Err(throttled) => {
                // Counted always (the refusal metric); written to history once a minute per
                // source, so that a throttled flood is not a durable write per request.
                let recorded = if self.failures_by_source.records_refusal(source_key) {
                    self.record_refusal(
                        &Caller::enrolling(Actor::Anonymous, source),
                        None,
                        EventKind::Enroll,
                        format!(
                            "authentication refused: {throttled} (this address's further refusals \
                             within {} s are counted, not recorded)",
                            throttle::REFUSAL_RECORD_INTERVAL.as_secs()
                        ),
                    )
                    .await
                } else {
                    Ok(())
                };
                return Err(refused_even_unrecorded(recorded, throttled.into()));
            }
        };
        let account = match self.authenticate(source, id, password).await {
            Ok(account) => {
                admitted.refund();
                self.source_budgets.refund(spent).await;
                account
            }
            // A failed authentication keeps the source's tokens spent.
            Err(RaError::Unauthenticated) => {
                drop(admitted);
                drop(spent);
                return Err(RaError::Unauthenticated);
            }
            // Busy or broken: no password was judged, so the source pays nothing.
            Err(other) => {
                admitted.refund();
                self.source_budgets.refund(spent).await;
                return Err(other);
            }
        };
        Ok((Caller::account(&account.id, source), account))
    }

    /// simplereenroll: identifies the account by the client certificate it presented over
    /// TLS (which must be a certificate this CA recorded, byte for byte), validates the CSR,
    /// applies the lifecycle and issues.
    pub async fn reenroll_with_certificate(
        &self,
        source: &str,
        client_certificate: &PresentedCertificate,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let result = self
            .reenroll_with_certificate_uncounted(source, client_certificate, csr_der)
            .await;
        self.count_enrollment(result)
    }

    pub(super) async fn reenroll_with_certificate_uncounted(
        &self,
        source: &str,
        client_certificate: &PresentedCertificate,
        csr_der: &[u8],
    ) -> Result<IssuedCertificate, RaError> {
        let presented = self.recorded_certificate(client_certificate).await?;
        let Some(id) = presented.account() else {
            return Err(RaError::Forbidden(
                "an application certificate cannot enroll; applications manage IDs through the management API".into(),
            ));
        };
        let account = self
            .store
            .account(id)
            .await?
            .ok_or(RaError::UnknownCertificate)?;
        let caller = Caller::account(&account.id, source);
        if account.is_removed() {
            // The same answer as for an ID that never existed.
            self.record_refusal(
                &caller,
                Some(&account),
                EventKind::Reenroll,
                "client certificate of a removed ID".to_owned(),
            )
            .await?;
            return Err(RaError::UnknownCertificate);
        }
        self.issue(
            &caller,
            &account,
            EventKind::Reenroll,
            csr_der,
            EnrollVia::Certificate(presented.serial),
        )
        .await
    }

    /// The store's record of a certificate a client presented, if this CA issued it.
    pub(super) async fn recorded_certificate(
        &self,
        presented: &PresentedCertificate,
    ) -> Result<CertificateRecord, RaError> {
        let serial = presented.serial().ok_or(RaError::UnknownCertificate)?;
        match self.store.certificate(&serial).await? {
            Some(record) if record.der == presented.der() => Ok(record),
            _ => Err(RaError::UnknownCertificate),
        }
    }
}
