//! Administration (the seed's 管理機能): contracts, IDs, the three certificate choices,
//! unlocking, history and certificates, each checked against the caller's [`Authority`] and
//! recorded in history, granted or refused.
//!
//! `contracts`, `accounts`, `reads` (history and certificates) and `backup` hold the
//! operations. This file holds what they share: how a management caller is authenticated,
//! how a refusal is told and recorded, and the read-decide-commit loop every change of an ID
//! goes through.

mod accounts;
mod backup;
mod contracts;
mod reads;

use time::OffsetDateTime;

use super::authority::{Authority, Denial, Management, HELP_DESK};
use super::policy;
use super::views::AccountView;
use super::{Caller, RaError, RegistrationAuthority, MAX_ATTEMPTS};
use crate::model::{
    Account, AccountId, Actor, AppName, CertificateRecord, EventKind, HistoryEvent, Holder,
    Outcome, PresentedCertificate, Revocation, RevocationReason, Role, Serial,
};
use crate::store::{AccountChange, AccountEdit, StoreError};

/// What an administrative decision changes: the edits of the account, a certificate to
/// revoke, and the history lines (kind, detail) to record with it.
type Decision = (
    Vec<AccountEdit>,
    Option<(Serial, Revocation)>,
    Vec<(EventKind, String)>,
);

impl RegistrationAuthority {
    /// Authenticates a management-API caller by the client certificate it presented over
    /// TLS: it must be a certificate this CA recorded, the current certificate of an unlocked
    /// master ID, unrevoked and unexpired.
    pub async fn administrator(
        &self,
        client_certificate: &PresentedCertificate,
        source: &str,
    ) -> Result<Caller, RaError> {
        let record = self.recorded_certificate(client_certificate).await?;
        let now = self.clock.now();
        let account = match &record.holder {
            Holder::App { name } => return self.application(&record, name, source, now).await,
            // estca's own certificates never authenticate a client (their EKU does not allow
            // it either).
            Holder::TlsServer { .. } | Holder::OcspSigner => {
                return Err(RaError::UnknownCertificate)
            }
            // A removed ID's certificate authenticates nobody, as if the ID never existed.
            Holder::Account { id, .. } => self
                .store
                .account(id)
                .await?
                .filter(|a| !a.is_removed())
                .ok_or(RaError::UnknownCertificate)?,
        };
        let superseded = account.current_certificate != Some(record.serial)
            || record
                .revocation
                .is_some_and(|r| r.reason == RevocationReason::Superseded);
        let refusal = if superseded {
            Some("this client certificate was superseded; use the ID's newest certificate")
        } else if record.revocation.is_some() {
            Some("this client certificate was revoked")
        } else if now >= record.not_after {
            Some("this client certificate has expired")
        } else if account.locked {
            Some("this ID is locked; ask the help desk to unlock it")
        } else if account.role != Role::Master {
            Some("a public ID cannot use the management API: log in with a master ID's certificate")
        } else {
            None
        };
        let caller = Caller {
            actor: Actor::Account {
                id: account.id.clone(),
            },
            source: source.to_owned(),
            authority: Authority::Master {
                contract: account.contract.clone(),
            },
        };
        if let Some(reason) = refusal {
            self.record_refusal(&caller, Some(&account), EventKind::Query, reason.to_owned())
                .await?;
            return Err(RaError::Forbidden(reason.to_owned()));
        }
        Ok(caller)
    }

    /// The caller behind an application certificate: the app must exist, be unrevoked, and
    /// this must be its certificate, unexpired.
    pub(super) async fn application(
        &self,
        record: &CertificateRecord,
        name: &AppName,
        source: &str,
        now: OffsetDateTime,
    ) -> Result<Caller, RaError> {
        let app = self
            .store
            .app(name)
            .await?
            .ok_or(RaError::UnknownCertificate)?;
        let caller = Caller {
            actor: Actor::App { name: name.clone() },
            source: source.to_owned(),
            authority: Authority::App {
                scope: app.scope.clone(),
                can_create_contracts: app.can_create_contracts,
            },
        };
        let refusal = if app.revoked || record.revocation.is_some() {
            Some("this application credential was revoked")
        } else if now >= record.not_after {
            Some("this application certificate has expired; ask the CA operator for a new one")
        } else if app.certificate != record.serial {
            Some("this application certificate was replaced; use the newest one")
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.record_refusal(&caller, None, EventKind::Query, reason.to_owned())
                .await?;
            return Err(RaError::Forbidden(reason.to_owned()));
        }
        Ok(caller)
    }

    /// Turns a [`Denial`] into the error the caller sees, recording it in history.
    pub(super) async fn deny(
        &self,
        caller: &Caller,
        target: Option<&Account>,
        kind: EventKind,
        denial: Denial,
        not_found: String,
    ) -> RaError {
        let (error, visible_target) = match denial {
            Denial::NotFound => (RaError::NotFound(not_found.clone()), None),
            Denial::HelpDesk => (RaError::Forbidden(HELP_DESK.to_owned()), target),
            Denial::Forbidden(m) => (RaError::Forbidden(m.to_owned()), target),
            Denial::NeedsContract => (
                RaError::Invalid(
                    "this application manages several contracts: name one with contract=CODE"
                        .to_owned(),
                ),
                None,
            ),
        };
        let reason = match &error {
            RaError::NotFound(_) => format!("out of scope: {not_found}"),
            other => other.to_string(),
        };
        if let Err(e) = self
            .record_refusal(caller, visible_target, kind, reason)
            .await
        {
            return e;
        }
        error
    }

    /// Records a read-only management call.
    async fn audit_query(
        &self,
        caller: &Caller,
        account: Option<&Account>,
        detail: String,
    ) -> Result<(), RaError> {
        let mut event = self.event(caller, account, EventKind::Query, Outcome::Ok { detail });
        if account.is_none() {
            if let Authority::Master { contract } = &caller.authority {
                event.contract = Some(contract.clone());
            }
        }
        self.store.append_history(event).await?;
        Ok(())
    }

    /// Loads an ID the caller may see; out of scope is not found.
    pub(super) async fn visible_account(
        &self,
        caller: &Caller,
        id: &AccountId,
        kind: EventKind,
    ) -> Result<Account, RaError> {
        if let Err(denial) = caller.authority.administers() {
            return Err(self.deny(caller, None, kind, denial, String::new()).await);
        }
        match self.store.account(id).await? {
            Some(account) if caller.authority.sees(&account) => Ok(account),
            _ => Err(self
                .deny(
                    caller,
                    None,
                    kind,
                    Denial::NotFound,
                    format!("account {id}"),
                )
                .await),
        }
    }

    /// Checks that the caller may apply `management` to the ID, recording a refusal.
    async fn permit(
        &self,
        caller: &Caller,
        id: &AccountId,
        management: Management,
        kind: EventKind,
    ) -> Result<(), RaError> {
        let account = self.visible_account(caller, id, kind).await?;
        match caller.authority.may_manage(&account, management) {
            Ok(()) => Ok(()),
            Err(denial) => Err(self
                .deny(
                    caller,
                    Some(&account),
                    kind,
                    denial,
                    format!("account {id}"),
                )
                .await),
        }
    }

    /// Reads, decides with `decide`, commits with compare-and-swap, retries on conflict. A
    /// refusal (a removed ID, or `decide`'s) is recorded in history as a refused `kind`, with
    /// the account as it was read: every change asked for is in history, done or not.
    async fn change_account<F>(
        &self,
        caller: &Caller,
        id: &AccountId,
        kind: EventKind,
        mut decide: F,
    ) -> Result<AccountView, RaError>
    where
        F: FnMut(&Account, Option<&CertificateRecord>, OffsetDateTime) -> Result<Decision, RaError>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let account = self.reload(id).await?;
            let current = self.current_certificate(&account).await?;
            let now = self.clock.now();
            // A removed ID changes no more, whatever the change.
            let decided = policy::not_removed(&account)
                .map_err(RaError::from)
                .and_then(|()| decide(&account, current.as_ref(), now));
            let (edits, revoke, events) = match decided {
                Ok(decision) => decision,
                Err(RaError::Refused(refusal)) => {
                    self.record_refusal(caller, Some(&account), kind, refusal.to_string())
                        .await?;
                    return Err(RaError::Refused(refusal));
                }
                Err(e) => return Err(e),
            };
            let events = events
                .into_iter()
                .map(|(kind, detail)| HistoryEvent {
                    // The decision's instant, also the removal's or revocation's.
                    at: now,
                    ..self.event(caller, Some(&account), kind, Outcome::Ok { detail })
                })
                .collect();
            let revoked = revoke.as_ref().map(|(serial, r)| (*serial, r.reason));
            match self
                .store
                .update_account(AccountChange {
                    id: account.id.clone(),
                    expected_version: account.version,
                    edits,
                    revoke,
                    events,
                })
                .await
            {
                Ok(stored) => {
                    // Beside "certificate issued": the log names every certificate the CA
                    // stopped vouching for, should the database be lost or restored from an
                    // older backup (which brings it back as good).
                    if let Some((serial, reason)) = revoked {
                        tracing::info!(
                            actor = %caller.actor,
                            id = %account.id,
                            %serial,
                            %reason,
                            "certificate revoked"
                        );
                    }
                    let current = self.current_certificate(&stored).await?;
                    return Ok(AccountView::new(
                        &stored,
                        current.as_ref(),
                        self.clock.now(),
                    ));
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RaError::Contended)
    }
}

/// Checks a display name: 1 to 128 characters, no control characters.
fn display_name(name: String) -> Result<String, RaError> {
    crate::model::human_text(&name, 128, "a name").map_err(|e| RaError::Invalid(e.0))
}
