//! Administration (the seed's 管理機能): contracts, IDs, the three certificate choices,
//! unlocking, history and certificates, each checked against the caller's [`Authority`] and
//! recorded in history, granted or refused.

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::authority::{Authority, Denial, Management, HELP_DESK};
use super::policy::{self, CertificateAction};
use super::views::{AccountView, CertificateView};
use super::{
    Caller, InitialPassword, NewAccount, RaError, RegistrationAuthority, MAX_ATTEMPTS,
    MAX_HISTORY_PAGE,
};
use crate::model::{
    Account, AccountId, Actor, AppName, CertificateRecord, Contract, ContractCode, EventKind,
    HistoryEntry, HistoryEvent, Holder, Outcome, PresentedCertificate, Revocation,
    RevocationReason, Role, Serial,
};
use crate::store::{
    AccountChange, AccountEdit, BudgetSpend, Cursor, HistoryQuery, Page, PageRequest, StoreError,
};

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

    /// Creates a contract; `server_keygen` lets its IDs use EST `serverkeygen`
    /// ([`Contract::server_keygen`]).
    pub async fn create_contract(
        &self,
        caller: &Caller,
        code: ContractCode,
        name: String,
        server_keygen: bool,
    ) -> Result<Contract, RaError> {
        if let Err(denial) = caller.authority.may_create_contract() {
            return Err(self
                .deny(
                    caller,
                    None,
                    EventKind::ContractCreate,
                    denial,
                    String::new(),
                )
                .await);
        }
        let name = display_name(name)?;
        let contract = Contract {
            code: code.clone(),
            name,
            created_at: self.clock.now(),
            server_keygen,
        };
        let detail = if server_keygen {
            format!("contract {code} created, server-side key generation allowed")
        } else {
            format!("contract {code} created")
        };
        let mut event = self.event(
            caller,
            None,
            EventKind::ContractCreate,
            Outcome::Ok { detail },
        );
        event.contract = Some(code);
        self.store.create_contract(contract.clone(), event).await?;
        Ok(contract)
    }

    /// One contract in scope (out of scope is not found).
    pub async fn contract(
        &self,
        caller: &Caller,
        code: &ContractCode,
    ) -> Result<Contract, RaError> {
        if let Err(denial) = caller.authority.administers() {
            return Err(self
                .deny(caller, None, EventKind::Query, denial, String::new())
                .await);
        }
        let found = match caller.authority.sees_contract(code) {
            true => self.store.contract(code).await?,
            false => None,
        };
        let contract = found.ok_or_else(|| RaError::NotFound(format!("contract {code}")))?;
        self.audit_query(caller, None, format!("showed contract {code}"))
            .await?;
        Ok(contract)
    }

    /// Allows (`true`) or refuses (`false`) EST `serverkeygen` to the IDs of a contract
    /// ([`Contract::server_keygen`]): the operator's choice, or an application's granted
    /// `--can-create-contracts` ([`Authority::may_set_contract_options`]).
    pub async fn set_contract_server_keygen(
        &self,
        caller: &Caller,
        code: &ContractCode,
        server_keygen: bool,
    ) -> Result<Contract, RaError> {
        if let Err(denial) = caller.authority.may_set_contract_options(code) {
            return Err(self
                .deny(
                    caller,
                    None,
                    EventKind::ContractUpdate,
                    denial,
                    format!("contract {code}"),
                )
                .await);
        }
        let detail = if server_keygen {
            "server-side key generation allowed"
        } else {
            "server-side key generation refused"
        };
        let mut event = self.event(
            caller,
            None,
            EventKind::ContractUpdate,
            Outcome::Ok {
                detail: format!("contract {code}: {detail}"),
            },
        );
        event.contract = Some(code.clone());
        Ok(self
            .store
            .set_contract_server_keygen(code, server_keygen, event)
            .await?)
    }

    /// The contracts in scope, by code, a page at a time.
    pub async fn contracts(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Page<Contract>, RaError> {
        if let Err(denial) = caller.authority.administers() {
            return Err(self
                .deny(caller, None, EventKind::Query, denial, String::new())
                .await);
        }
        let contracts = match caller.authority.contracts_in_scope() {
            None => self.store.contracts(page).await?,
            Some(mut codes) => {
                // A few contracts at most: paged here, by code.
                codes.sort();
                let after = page.after.as_ref().map(|c| c.as_bytes().to_vec());
                let mut items = Vec::new();
                for code in codes
                    .into_iter()
                    .filter(|c| after.as_deref().is_none_or(|a| c.as_str().as_bytes() > a))
                {
                    if items.len() >= page.limit {
                        break;
                    }
                    if let Some(contract) = self.store.contract(&code).await? {
                        items.push(contract);
                    }
                }
                let next = (items.len() >= page.limit && page.limit > 0)
                    .then(|| {
                        items
                            .last()
                            .map(|c| Cursor::new(c.code.as_str().as_bytes().to_vec()))
                    })
                    .flatten();
                Page { items, next }
            }
        };
        self.audit_query(caller, None, "listed contracts".into())
            .await?;
        Ok(contracts)
    }

    /// Creates an ID with its first password.
    ///
    /// IDs are one login namespace across contracts, so an ID that exists anywhere (or differs
    /// from one by letter case only) cannot be created; the refusal is the same whichever
    /// contract holds it ([`RaError::IdUnavailable`]), is recorded in the caller's history,
    /// and spends one token of the caller's budget (`auth.max_refused_ids_per_caller`, kept
    /// in the store so that it holds across daemons). Every creation takes a token before the
    /// ID is looked up and gives it back unless the ID was unavailable, so that even a burst
    /// of creations sent at once cannot learn more than the budget allows; with the budget
    /// spent, every creation of the caller answers 429. Without an ID, estca chooses one.
    pub async fn create_account(
        &self,
        caller: &Caller,
        new: NewAccount,
    ) -> Result<AccountView, RaError> {
        if let Err(denial) = caller.authority.may_create_account(&new.contract, new.role) {
            return Err(self
                .deny(
                    caller,
                    None,
                    EventKind::AccountCreate,
                    denial,
                    format!("contract {}", new.contract),
                )
                .await);
        }
        let name = display_name(new.name.clone())?;
        match &new.password {
            InitialPassword::Clear(password) => super::Passwords::check_new(password)?,
            InitialPassword::Hashed(hash) => {
                if caller.authority != Authority::Operator {
                    return Err(RaError::Forbidden(
                        "only the CA operator may give a password hash instead of a password"
                            .into(),
                    ));
                }
                super::Passwords::check_hash(hash)?;
            }
        }
        let budget = caller.refused_ids_budget();
        if let Some(key) = &budget {
            let now = self.clock.now();
            if let BudgetSpend::Exhausted { retry_after_secs } = self
                .store
                .take_from_budget(key, self.refused_ids, now)
                .await?
            {
                let error = RaError::TooManyRefusedIds { retry_after_secs };
                self.record_refusal_in(caller, &new.contract, error.to_string())
                    .await?;
                return Err(error);
            }
        }
        let result = self.create_account_in_budget(caller, new, name).await;
        if let (Some(key), false) = (&budget, matches!(result, Err(RaError::IdUnavailable(_)))) {
            self.store
                .refund_to_budget(key, self.refused_ids, self.clock.now())
                .await?;
        }
        result
    }

    async fn create_account_in_budget(
        &self,
        caller: &Caller,
        new: NewAccount,
        name: String,
    ) -> Result<AccountView, RaError> {
        if self.store.contract(&new.contract).await?.is_none() {
            return Err(RaError::NotFound(format!("contract {}", new.contract)));
        }
        let password_hash = match new.password {
            InitialPassword::Clear(password) => self.passwords.hash(password).await?,
            InitialPassword::Hashed(hash) => hash,
        };
        // A chosen ID is tried once; a generated one is drawn again in the (80-bit) unlikely
        // case that it is taken.
        let attempts = if new.id.is_some() { 1 } else { 8 };
        for _ in 0..attempts {
            let id = new.id.clone().unwrap_or_else(AccountId::generate);
            let account = Account::new(
                id,
                new.contract.clone(),
                new.role,
                name.clone(),
                password_hash.clone(),
                self.clock.now(),
            );
            let detail = if new.id.is_some() {
                format!("{} ID created", account.role)
            } else {
                format!("{} ID created (ID chosen by estca)", account.role)
            };
            let event = self.event(
                caller,
                Some(&account),
                EventKind::AccountCreate,
                Outcome::Ok { detail },
            );
            match self.store.create_account(account.clone(), event).await {
                Ok(()) => return Ok(AccountView::new(&account, None, self.clock.now())),
                Err(StoreError::AlreadyExists(_)) if new.id.is_none() => continue,
                Err(StoreError::AlreadyExists(_)) => {
                    // An ID removed from a contract the caller sees is never reused, and
                    // the caller is told so plainly; anywhere else, the answer is the same
                    // as for any taken ID (no oracle of other contracts' IDs).
                    let error = match self.store.account(&account.id).await? {
                        Some(taken) if caller.authority.sees(&taken) => {
                            match policy::not_removed(&taken) {
                                Err(refusal) => RaError::Refused(refusal),
                                Ok(()) => RaError::IdUnavailable(account.id),
                            }
                        }
                        _ => RaError::IdUnavailable(account.id),
                    };
                    self.record_refusal_in(caller, &new.contract, error.to_string())
                        .await?;
                    return Err(error);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RaError::Contended)
    }

    /// Records a refused ID creation in the history of `contract` (the one the caller asked
    /// for and administers), never under the ID it named, which may be another contract's.
    async fn record_refusal_in(
        &self,
        caller: &Caller,
        contract: &ContractCode,
        reason: String,
    ) -> Result<(), RaError> {
        tracing::info!(actor = %caller.actor, %contract, %reason, "refused");
        let mut event = self.event(
            caller,
            None,
            EventKind::AccountCreate,
            Outcome::Refused { reason },
        );
        event.contract = Some(contract.clone());
        self.store.append_history(event).await?;
        Ok(())
    }

    /// The IDs in scope, by ID, a page at a time: of `contract`, or of the caller's whole
    /// scope ([`Authority::listing_contract`]).
    pub async fn accounts(
        &self,
        caller: &Caller,
        contract: Option<ContractCode>,
        page: PageRequest,
    ) -> Result<Page<AccountView>, RaError> {
        let contract = match caller.authority.listing_contract(contract.clone()) {
            Ok(contract) => contract,
            Err(denial) => {
                let what = contract.map_or_else(String::new, |c| format!("contract {c}"));
                return Err(self
                    .deny(caller, None, EventKind::Query, denial, what)
                    .await);
            }
        };
        let now = self.clock.now();
        // Removed IDs leave the listings (they stay readable one by one, and in history).
        // The store lists them, so pages are read until this one is full: each read asks for
        // no more than is still missing, so that no listed ID is read past and skipped, and
        // the last read's cursor is where the next page starts.
        let mut items = Vec::with_capacity(page.limit);
        let mut after = page.after;
        let next = loop {
            let read = self
                .store
                .accounts(
                    contract.as_ref(),
                    PageRequest {
                        after,
                        limit: page.limit - items.len(),
                    },
                )
                .await?;
            for account in read.items.iter().filter(|a| !a.is_removed()) {
                let current = self.current_certificate(account).await?;
                items.push(AccountView::new(account, current.as_ref(), now));
            }
            match read.next {
                Some(next) if items.len() < page.limit => after = Some(next),
                next => break next,
            }
        };
        self.audit_query(caller, None, "listed IDs".into()).await?;
        Ok(Page { items, next })
    }

    /// One ID in scope.
    pub async fn account(&self, caller: &Caller, id: &AccountId) -> Result<AccountView, RaError> {
        let account = self.visible_account(caller, id, EventKind::Query).await?;
        let current = self.current_certificate(&account).await?;
        self.audit_query(caller, Some(&account), "viewed the ID".into())
            .await?;
        Ok(AccountView::new(
            &account,
            current.as_ref(),
            self.clock.now(),
        ))
    }

    /// Renames an ID and/or sets its password.
    ///
    /// Setting a password is the help desk's reset: it also unlocks the ID and clears its
    /// failure count (a user locked out by forgotten passwords gets a new one and can enroll
    /// at once). Whoever may set an ID's password may unlock it (see
    /// [`Authority::may_manage`]); both permissions are checked.
    pub async fn update_account(
        &self,
        caller: &Caller,
        id: &AccountId,
        name: Option<String>,
        password: Option<Zeroizing<String>>,
    ) -> Result<AccountView, RaError> {
        let kind = if password.is_some() {
            EventKind::PasswordChange
        } else {
            EventKind::AccountUpdate
        };
        self.permit(caller, id, Management::Update, kind).await?;
        if password.is_some() {
            self.permit(caller, id, Management::Unlock, kind).await?;
        }
        let name = name.map(display_name).transpose()?;
        let hash = match password {
            Some(p) => Some(self.passwords.hash(p).await?),
            None => None,
        };
        if name.is_none() && hash.is_none() {
            return Err(RaError::Invalid(
                "give a new name, a new password, or both".into(),
            ));
        }
        self.change_account(caller, id, |account, _current, _now| {
            let mut edits = Vec::new();
            let mut events = Vec::new();
            if let Some(name) = &name {
                edits.push(AccountEdit::Rename(name.clone()));
                events.push((EventKind::AccountUpdate, format!("renamed to {name}")));
            }
            if let Some(hash) = &hash {
                // The help desk's reset: the new password, and the ID unlocked.
                edits.push(AccountEdit::SetPasswordHash(hash.clone()));
                edits.push(AccountEdit::Unlock);
                events.push((EventKind::PasswordChange, "password set".to_owned()));
                if account.locked {
                    events.push((
                        EventKind::Unlock,
                        "unlocked by the password reset".to_owned(),
                    ));
                }
            }
            Ok((edits, None, events))
        })
        .await
    }

    /// 継続利用する / 再発行する / 失効する.
    pub async fn certificate_action(
        &self,
        caller: &Caller,
        id: &AccountId,
        action: CertificateAction,
    ) -> Result<AccountView, RaError> {
        let (kind, management) = match action {
            CertificateAction::Continue => (EventKind::Continue, Management::Continue),
            CertificateAction::Reissue => (EventKind::Reissue, Management::Reissue),
            CertificateAction::Revoke(_) => (EventKind::Revoke, Management::Revoke),
        };
        self.permit(caller, id, management, kind).await?;
        let result = self
            .change_account(caller, id, |account, current, now| {
                let effect = policy::certificate_action(account, current, action, now)?;
                Ok((
                    vec![AccountEdit::Choose(effect.choice)],
                    effect.revoke,
                    vec![(kind, effect.detail)],
                ))
            })
            .await;
        if let (Ok(_), CertificateAction::Revoke(reason)) = (&result, action) {
            self.observer.revoked(reason);
        }
        if let Err(RaError::Refused(refusal)) = &result {
            let account = self.reload(id).await?;
            self.record_refusal(caller, Some(&account), kind, refusal.to_string())
                .await?;
        }
        result
    }

    /// IDロック解除: clears the lock and the failure count.
    pub async fn unlock(&self, caller: &Caller, id: &AccountId) -> Result<AccountView, RaError> {
        self.permit(caller, id, Management::Unlock, EventKind::Unlock)
            .await?;
        self.change_account(caller, id, |account, _current, _now| {
            let detail = if account.locked {
                "unlocked"
            } else {
                "was not locked; failure count reset"
            };
            Ok((
                vec![AccountEdit::Unlock],
                None,
                vec![(EventKind::Unlock, detail.to_owned())],
            ))
        })
        .await
    }

    /// Removes an ID, a lifecycle step of the registration authority: its active certificate
    /// (if any) is revoked in the same atomic step ([`policy::REMOVAL_REASON`]), the ID never
    /// authenticates again (EST answers as for an unknown ID), leaves the listings, is never
    /// created again, and its record, certificates and history stay for audit, with the
    /// removal (who, when, from where) in history. Who may remove whom is
    /// [`Authority::may_manage`]'s [`Management::Remove`].
    ///
    /// Removing a master ID leaves its contract and the contract's public IDs as they are:
    /// their certificates stay valid, and the contract is administered by the operator (and
    /// applications granted it) until the help desk creates a new master ID for it.
    pub async fn remove_account(
        &self,
        caller: &Caller,
        id: &AccountId,
    ) -> Result<AccountView, RaError> {
        self.permit(caller, id, Management::Remove, EventKind::AccountRemove)
            .await?;
        let mut revoked = false;
        let result = self
            .change_account(caller, id, |account, current, now| {
                let effect = policy::removal(account, current, now)?;
                revoked = effect.revoke.is_some();
                Ok((
                    vec![AccountEdit::Remove(now)],
                    effect.revoke,
                    vec![(EventKind::AccountRemove, effect.detail)],
                ))
            })
            .await;
        match &result {
            Ok(_) => {
                tracing::info!(actor = %caller.actor, %id, revoked, "ID removed");
                if revoked {
                    self.observer.revoked(policy::REMOVAL_REASON);
                }
            }
            Err(RaError::Refused(refusal)) => {
                let account = self.reload(id).await?;
                self.record_refusal(
                    caller,
                    Some(&account),
                    EventKind::AccountRemove,
                    refusal.to_string(),
                )
                .await?;
            }
            Err(_) => {}
        }
        result
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

    /// Reads, decides with `decide`, commits with compare-and-swap, retries on conflict.
    async fn change_account<F>(
        &self,
        caller: &Caller,
        id: &AccountId,
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
            policy::not_removed(&account)?;
            let (edits, revoke, events) = decide(&account, current.as_ref(), now)?;
            let events = events
                .into_iter()
                .map(|(kind, detail)| HistoryEvent {
                    // The decision's instant, also the removal's or revocation's.
                    at: now,
                    ..self.event(caller, Some(&account), kind, Outcome::Ok { detail })
                })
                .collect();
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

/// Checks a display name: 1 to 128 characters, no control characters.
fn display_name(name: String) -> Result<String, RaError> {
    crate::model::human_text(&name, 128, "a name").map_err(|e| RaError::Invalid(e.0))
}
