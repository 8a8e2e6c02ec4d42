//! IDs: created within the caller's budget of refusals, read, listed, renamed, their
//! passwords reset, unlocked, removed, and the seed's three certificate choices.

use zeroize::Zeroizing;

use crate::model::{Account, AccountId, ContractCode, EventKind, Outcome};
use crate::ra::authority::{Authority, Management};
use crate::ra::policy::{self, CertificateAction};
use crate::ra::views::AccountView;
use crate::ra::{Caller, InitialPassword, NewAccount, Passwords, RaError, RegistrationAuthority};
use crate::store::{AccountEdit, BudgetSpend, Page, PageRequest, StoreError};

use super::display_name;

impl RegistrationAuthority {
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
            InitialPassword::Clear(password) => Passwords::check_new(password)?,
            InitialPassword::Hashed(hash) => {
                if caller.authority != Authority::Operator {
                    return Err(RaError::Forbidden(
                        "only the CA operator may give a password hash instead of a password"
                            .into(),
                    ));
                }
                self.passwords.check_hash(hash)?;
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
        self.change_account(caller, id, kind, |account, _current, _now| {
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
            .change_account(caller, id, kind, |account, current, now| {
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
        result
    }

    /// IDロック解除: clears the lock and the failure count.
    pub async fn unlock(&self, caller: &Caller, id: &AccountId) -> Result<AccountView, RaError> {
        self.permit(caller, id, Management::Unlock, EventKind::Unlock)
            .await?;
        self.change_account(caller, id, EventKind::Unlock, |account, _current, _now| {
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
            .change_account(
                caller,
                id,
                EventKind::AccountRemove,
                |account, current, now| {
                    let effect = policy::removal(account, current, now)?;
                    revoked = effect.revoke.is_some();
                    Ok((
                        vec![AccountEdit::Remove(now)],
                        effect.revoke,
                        vec![(EventKind::AccountRemove, effect.detail)],
                    ))
                },
            )
            .await;
        if result.is_ok() {
            tracing::info!(actor = %caller.actor, %id, revoked, "ID removed");
            if revoked {
                self.observer.revoked(policy::REMOVAL_REASON);
            }
        }
        result
    }
}
