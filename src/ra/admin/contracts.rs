//! Contracts (契約): created, read and listed in the caller's scope, and their options.

use crate::model::{Contract, ContractCode, EventKind, Outcome};
use crate::ra::{Caller, RaError, RegistrationAuthority};
use crate::store::{Cursor, Page, PageRequest};

use super::display_name;

impl RegistrationAuthority {
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
    /// `--can-create-contracts` ([`Authority::may_set_contract_options`](crate::ra::Authority::may_set_contract_options)).
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
}
