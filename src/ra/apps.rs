//! Application credentials: other systems that delegate issuance to estca. The operator
//! grants each one a scope of contracts and a client certificate for the management API; the
//! certificate's subject says `OU=APP`, never a person's USERTYPE.

use super::authority::Authority;
use super::views::AppView;
use super::{Caller, RaError, RegistrationAuthority, MAX_ATTEMPTS};
use crate::ca;
use crate::model::{
    App, AppName, AppScope, EventKind, Holder, HostName, Outcome, Revocation, RevocationReason,
};
use crate::store::{IssuedCertificate, Page, PageRequest, StoreError};

/// A new application credential as the operator asks for it.
#[derive(Debug)]
pub struct NewApp<'a> {
    /// Its name (the CN of its certificate).
    pub name: AppName,
    /// The contracts it may manage.
    pub scope: AppScope,
    /// Whether it may create contracts and master IDs (requires every contract in scope).
    pub can_create_contracts: bool,
    /// The application's CSR, DER: its key stays with the application.
    pub csr_der: &'a [u8],
    /// The hosts it also serves TLS for, as an EST registration authority in front of
    /// devices (libest's `estproxy` shows one certificate on both sides): its certificate
    /// then names them in subjectAltName and carries serverAuth. Empty for a client only.
    pub hosts: Vec<HostName>,
}

/// Most hosts one application certificate names.
pub const MAX_APP_HOSTS: usize = 16;

impl RegistrationAuthority {
    fn operator_only(&self, caller: &Caller) -> Result<(), RaError> {
        match caller.authority {
            Authority::Operator => Ok(()),
            _ => Err(RaError::Forbidden(
                "application credentials are managed by the CA operator".into(),
            )),
        }
    }

    /// Grants an application its scope and issues its client certificate (one year, like
    /// every certificate estca issues).
    pub async fn create_app(
        &self,
        caller: &Caller,
        new: NewApp<'_>,
    ) -> Result<(AppView, IssuedCertificate), RaError> {
        self.operator_only(caller)?;
        if new.can_create_contracts && new.scope != AppScope::All {
            return Err(RaError::Invalid(
                "an application that creates contracts must be granted every contract (--all), \
                 so that it can manage the contracts it creates"
                    .into(),
            ));
        }
        if let AppScope::Contracts(codes) = &new.scope {
            if codes.is_empty() {
                return Err(RaError::Invalid(
                    "grant at least one contract, or every contract".into(),
                ));
            }
            for code in codes {
                if self.store.contract(code).await?.is_none() {
                    return Err(RaError::NotFound(format!("contract {code}")));
                }
            }
        }
        if self.store.app(&new.name).await?.is_some() {
            return Err(RaError::AlreadyExists(format!("application {}", new.name)));
        }
        if new.hosts.len() > MAX_APP_HOSTS {
            return Err(RaError::Invalid(format!(
                "an application's certificate names at most {MAX_APP_HOSTS} hosts"
            )));
        }
        for (i, host) in new.hosts.iter().enumerate() {
            if host.is_wildcard() {
                return Err(RaError::Invalid(format!(
                    "host {host}: an application names the hosts it runs on, no wildcards"
                )));
            }
            if new.hosts[..i].contains(host) {
                return Err(RaError::Invalid(format!("host {host} is given twice")));
            }
        }
        let key = ca::validate_csr(new.csr_der)?;
        if let Some(serial) = self.store.key_certified_by(&key.fingerprint()).await? {
            return Err(RaError::KeyReused(serial));
        }
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now();
            let holder = Holder::App {
                name: new.name.clone(),
            };
            let record = self.sign(holder, &new.hosts, &key, now).await?;
            let serial = record.serial;
            let app = App {
                name: new.name.clone(),
                scope: new.scope.clone(),
                can_create_contracts: new.can_create_contracts,
                certificate: serial,
                revoked: false,
                created_at: now,
            };
            let mut event = self.event(
                caller,
                None,
                EventKind::AppCreate,
                Outcome::Ok {
                    detail: format!(
                        "application {} created ({}{}), certificate {serial}",
                        app.name,
                        match &app.scope {
                            AppScope::All => "every contract".to_owned(),
                            AppScope::Contracts(codes) => format!(
                                "contracts {}",
                                codes
                                    .iter()
                                    .map(|c| c.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        },
                        if new.hosts.is_empty() {
                            String::new()
                        } else {
                            format!("; serves TLS for {}", HostName::list(&new.hosts))
                        }
                    ),
                },
            );
            event.contract = match &app.scope {
                AppScope::Contracts(codes) if codes.len() == 1 => codes.first().cloned(),
                _ => None,
            };
            match self.store.create_app(app.clone(), record, event).await {
                Ok(issued) => {
                    let view = AppView::new(&app, Some(issued.record()), now);
                    return Ok((view, issued));
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RaError::Contended)
    }

    /// The application credentials, by name, a page at a time.
    pub async fn apps(&self, caller: &Caller, page: PageRequest) -> Result<Page<AppView>, RaError> {
        self.operator_only(caller)?;
        let now = self.clock.now();
        let apps = self.store.apps(page).await?;
        let mut items = Vec::with_capacity(apps.items.len());
        for app in apps.items {
            let certificate = self.store.certificate(&app.certificate).await?;
            items.push(AppView::new(&app, certificate.as_ref(), now));
        }
        Ok(Page {
            items,
            next: apps.next,
        })
    }

    /// Revokes an application credential and its certificate, for good.
    pub async fn revoke_app(&self, caller: &Caller, name: &AppName) -> Result<AppView, RaError> {
        self.operator_only(caller)?;
        let now = self.clock.now();
        let event = self.event(
            caller,
            None,
            EventKind::AppRevoke,
            Outcome::Ok {
                detail: format!("application {name} revoked"),
            },
        );
        let revocation = Revocation {
            at: now,
            reason: RevocationReason::CessationOfOperation,
        };
        let app = match self.store.revoke_app(name, revocation, event).await {
            Ok(app) => app,
            Err(StoreError::Conflict) => {
                return Err(RaError::Conflict(format!(
                    "application {name} is already revoked"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(
            actor = %caller.actor,
            app = %name,
            serial = %app.certificate,
            reason = %revocation.reason,
            "certificate revoked"
        );
        let certificate = self.store.certificate(&app.certificate).await?;
        Ok(AppView::new(&app, certificate.as_ref(), now))
    }
}
