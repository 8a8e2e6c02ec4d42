//! Who may administer what: the scopes of the operator, master IDs and applications, as pure
//! functions. The registration authority asks these before every administrative action, so
//! authorisation lives here and nowhere else.
//!
//! Two rules shape the answers. Out-of-scope IDs, contracts and certificates are reported as
//! *not found*, so a scope never reveals what exists beyond it. And the certificate of a master
//! ID is reissued or revoked by the operator alone (the seed's help-desk procedure); so is a
//! master ID removed: a master removes the public IDs of its contract, never itself nor
//! another master.

use crate::model::{Account, AppScope, ContractCode, Role};

/// What a caller may administer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// The operator (CA help desk) on the admin socket: everything.
    Operator,
    /// A master ID (管理者): sees the IDs of its own contract and manages its public IDs.
    Master {
        /// The master's contract.
        contract: ContractCode,
    },
    /// An application credential: what a master may do, over the contracts it was granted;
    /// with `can_create_contracts` (always with every contract in scope) it may also create
    /// contracts and master IDs.
    App {
        /// The contracts it may manage.
        scope: AppScope,
        /// Whether it may create contracts and master IDs.
        can_create_contracts: bool,
    },
    /// Enrollment callers and public IDs: no administration at all.
    Nothing,
}

/// An administrative action on an existing ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Management {
    /// 継続利用する.
    Continue,
    /// 再発行する.
    Reissue,
    /// 失効する.
    Revoke,
    /// IDロック解除.
    Unlock,
    /// Rename or set the password.
    Update,
    /// Remove the ID for good (its active certificate revoked).
    Remove,
}

/// Why an administrative request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Outside the caller's scope: answered as if it did not exist.
    NotFound,
    /// Reissuing or revoking a master ID's certificate: the help desk's job.
    HelpDesk,
    /// Anything else the caller may not do; the text says what it may do.
    Forbidden(&'static str),
    /// The request must name one contract (an application managing several).
    NeedsContract,
}

/// Why an application cannot have a master ID's certificate issued.
pub const MASTER_ENROLLS_ITSELF: &str = "an application has certificates issued for public IDs \
     only: a master ID's certificate administers its contract, so the master enrolls with its \
     own password (or the help desk issues it)";

/// Why a master (or an application) cannot remove a master ID.
pub const MASTER_REMOVED_BY_HELP_DESK: &str = "a master ID (this one or another) is removed only \
     by the help desk (the CA operator); a master removes the public IDs of its contract";

/// The help desk rule's message.
pub const HELP_DESK: &str = "the certificate of a master ID is reissued or revoked only by the \
     help desk (the CA operator); contact the help desk";

impl Authority {
    /// Whether the caller may administer at all.
    pub fn administers(&self) -> Result<(), Denial> {
        match self {
            Authority::Nothing => Err(Denial::Forbidden(
                "this identity cannot use the management API: log in with a master ID's certificate",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the contract is in scope.
    pub fn sees_contract(&self, code: &ContractCode) -> bool {
        match self {
            Authority::Operator => true,
            Authority::Master { contract } => contract == code,
            Authority::App { scope, .. } => scope.includes(code),
            Authority::Nothing => false,
        }
    }

    /// Whether the ID is in scope (visible).
    pub fn sees(&self, account: &Account) -> bool {
        self.sees_contract(&account.contract)
    }

    /// Whether the caller may apply `action` to `target`.
    pub fn may_manage(&self, target: &Account, action: Management) -> Result<(), Denial> {
        self.administers()?;
        if !self.sees(target) {
            return Err(Denial::NotFound);
        }
        match (self, target.role, action) {
            (Authority::Operator, _, _) => Ok(()),
            (_, Role::Master, Management::Reissue | Management::Revoke) => Err(Denial::HelpDesk),
            (_, Role::Master, Management::Remove) => {
                Err(Denial::Forbidden(MASTER_REMOVED_BY_HELP_DESK))
            }
            (_, Role::Master, _) => Err(Denial::Forbidden(
                "a master ID is managed by the help desk (the CA operator); masters manage their public IDs",
            )),
            (_, Role::User, _) => Ok(()),
        }
    }

    /// Whether the caller may have a certificate issued for `target` without the ID's password
    /// (delegated issuance: an application acting as an EST registration authority, or the
    /// operator's bulk loads). The lifecycle still decides whether an issuance is allowed now.
    ///
    /// Applications issue for the public IDs of their granted contracts; out of scope is not
    /// found. A master ID's certificate administers its contract, so it is issued only to the
    /// master's own enrollment (or by the operator). A master may not issue for its public
    /// IDs: the notice has each user make a key on their own PC and enroll with their own
    /// password, so that nobody else (the administrator included) ever holds a key certified
    /// in a user's name without that user's password.
    pub fn may_issue_for(&self, target: &Account) -> Result<(), Denial> {
        self.administers()?;
        if !self.sees(target) {
            return Err(Denial::NotFound);
        }
        match (self, target.role) {
            (Authority::Operator, _) => Ok(()),
            (Authority::App { .. }, Role::User) => Ok(()),
            (Authority::App { .. }, Role::Master) => Err(Denial::Forbidden(MASTER_ENROLLS_ITSELF)),
            _ => Err(Denial::Forbidden(
                "a master ID cannot have certificates issued for its public IDs: each public ID \
                 enrolls with its own password on its own PC; to let an ID enroll again, choose \
                 reissue (再発行する)",
            )),
        }
    }

    /// Whether the caller may create an ID of `role` in `contract`.
    pub fn may_create_account(&self, contract: &ContractCode, role: Role) -> Result<(), Denial> {
        self.administers()?;
        if !self.sees_contract(contract) {
            return Err(Denial::NotFound);
        }
        match (self, role) {
            (Authority::Operator, _) | (_, Role::User) => Ok(()),
            (
                Authority::App {
                    can_create_contracts: true,
                    ..
                },
                Role::Master,
            ) => Ok(()),
            (_, Role::Master) => Err(Denial::Forbidden(
                "master IDs are created by the help desk (the CA operator), or by an application granted --can-create-contracts",
            )),
        }
    }

    /// Whether the caller may create contracts.
    pub fn may_create_contract(&self) -> Result<(), Denial> {
        match self {
            Authority::Operator
            | Authority::App {
                can_create_contracts: true,
                ..
            } => Ok(()),
            _ => Err(Denial::Forbidden(
                "contracts are created by the CA operator, or by an application granted --can-create-contracts",
            )),
        }
    }

    /// Whether the caller may change the options of `contract` (server-side key generation):
    /// who may create contracts, within its scope (out of scope is not found).
    pub fn may_set_contract_options(&self, contract: &ContractCode) -> Result<(), Denial> {
        self.administers()?;
        if !self.sees_contract(contract) {
            return Err(Denial::NotFound);
        }
        self.may_create_contract().map_err(|_| {
            Denial::Forbidden(
                "a contract's options are set by the CA operator, or by an application granted \
                 --can-create-contracts",
            )
        })
    }

    /// The contracts the caller may see when it does not see them all (a master's one, an
    /// application's granted ones); `None` for the operator and applications of every
    /// contract.
    pub fn contracts_in_scope(&self) -> Option<Vec<ContractCode>> {
        match self {
            Authority::Operator
            | Authority::App {
                scope: AppScope::All,
                ..
            } => None,
            Authority::Master { contract } => Some(vec![contract.clone()]),
            Authority::App {
                scope: AppScope::Contracts(codes),
                ..
            } => Some(codes.clone()),
            Authority::Nothing => Some(Vec::new()),
        }
    }

    /// The contract a listing (IDs, history) is confined to: the requested one if in scope
    /// (out of scope is not found), else the master's own or a single-contract application's
    /// only one; `None` (everything) for the operator and applications of every contract. An
    /// application of several contracts must name one.
    pub fn listing_contract(
        &self,
        requested: Option<ContractCode>,
    ) -> Result<Option<ContractCode>, Denial> {
        self.administers()?;
        match (self, requested) {
            (Authority::Operator, requested) => Ok(requested),
            (Authority::Master { contract }, None) => Ok(Some(contract.clone())),
            (Authority::Master { contract }, Some(code)) if *contract == code => Ok(Some(code)),
            (Authority::App { scope, .. }, Some(code)) if scope.includes(&code) => Ok(Some(code)),
            (
                Authority::App {
                    scope: AppScope::All,
                    ..
                },
                None,
            ) => Ok(None),
            (
                Authority::App {
                    scope: AppScope::Contracts(codes),
                    ..
                },
                None,
            ) => match codes.as_slice() {
                [only] => Ok(Some(only.clone())),
                _ => Err(Denial::NeedsContract),
            },
            _ => Err(Denial::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;
    use time::OffsetDateTime;

    fn account(id: &str, contract: &str, role: Role) -> Account {
        Account::new(
            id.parse::<AccountId>().unwrap(),
            contract.parse().unwrap(),
            role,
            id.into(),
            String::new(),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn master_of(code: &str) -> Authority {
        Authority::Master {
            contract: code.parse().unwrap(),
        }
    }

    #[test]
    fn a_master_manages_the_public_ids_of_its_own_contract_only() {
        let a = master_of("A");
        let user_a = account("u1", "A", Role::User);
        let user_b = account("u2", "B", Role::User);
        for action in [
            Management::Continue,
            Management::Reissue,
            Management::Revoke,
            Management::Unlock,
            Management::Update,
            Management::Remove,
        ] {
            assert_eq!(a.may_manage(&user_a, action), Ok(()));
            assert_eq!(a.may_manage(&user_b, action), Err(Denial::NotFound));
        }
        assert!(a.sees(&user_a) && !a.sees(&user_b));
    }

    #[test]
    fn only_the_operator_reissues_or_revokes_a_master() {
        let master = account("m1", "A", Role::Master);
        for action in [Management::Reissue, Management::Revoke] {
            assert_eq!(
                master_of("A").may_manage(&master, action),
                Err(Denial::HelpDesk)
            );
            assert_eq!(Authority::Operator.may_manage(&master, action), Ok(()));
        }
        assert!(matches!(
            master_of("A").may_manage(&master, Management::Unlock),
            Err(Denial::Forbidden(_))
        ));
    }

    #[test]
    fn a_master_removes_its_public_ids_and_only_the_operator_removes_a_master() {
        let a = master_of("A");
        let itself = account("m1", "A", Role::Master);
        let other_master = account("m2", "A", Role::Master);
        let user_a = account("u1", "A", Role::User);
        let user_b = account("u2", "B", Role::User);
        assert_eq!(a.may_manage(&user_a, Management::Remove), Ok(()));
        assert_eq!(
            a.may_manage(&user_b, Management::Remove),
            Err(Denial::NotFound)
        );
        for master in [&itself, &other_master] {
            assert_eq!(
                a.may_manage(master, Management::Remove),
                Err(Denial::Forbidden(MASTER_REMOVED_BY_HELP_DESK))
            );
            assert_eq!(
                Authority::Operator.may_manage(master, Management::Remove),
                Ok(())
            );
        }
        let app = Authority::App {
            scope: AppScope::All,
            can_create_contracts: true,
        };
        assert_eq!(app.may_manage(&user_b, Management::Remove), Ok(()));
        assert_eq!(
            app.may_manage(&itself, Management::Remove),
            Err(Denial::Forbidden(MASTER_REMOVED_BY_HELP_DESK))
        );
        assert!(Authority::Nothing
            .may_manage(&user_a, Management::Remove)
            .is_err());
    }

    #[test]
    fn creation_and_history_are_scoped() {
        let a = master_of("A");
        let code_a: ContractCode = "A".parse().unwrap();
        let code_b: ContractCode = "B".parse().unwrap();
        assert_eq!(a.may_create_account(&code_a, Role::User), Ok(()));
        assert!(matches!(
            a.may_create_account(&code_a, Role::Master),
            Err(Denial::Forbidden(_))
        ));
        assert_eq!(
            a.may_create_account(&code_b, Role::User),
            Err(Denial::NotFound)
        );
        assert!(a.may_create_contract().is_err());
        assert_eq!(a.listing_contract(None), Ok(Some(code_a.clone())));
        assert_eq!(
            a.listing_contract(Some(code_b.clone())),
            Err(Denial::NotFound)
        );
        assert_eq!(
            Authority::Operator.listing_contract(Some(code_b.clone())),
            Ok(Some(code_b))
        );
    }

    #[test]
    fn an_app_acts_like_a_master_over_its_granted_contracts() {
        let code_a: ContractCode = "A".parse().unwrap();
        let app = Authority::App {
            scope: AppScope::Contracts(vec![code_a.clone(), "C".parse().unwrap()]),
            can_create_contracts: false,
        };
        let user_a = account("u1", "A", Role::User);
        let user_b = account("u2", "B", Role::User);
        let master_a = account("m1", "A", Role::Master);
        assert_eq!(app.may_manage(&user_a, Management::Revoke), Ok(()));
        assert_eq!(
            app.may_manage(&user_b, Management::Revoke),
            Err(Denial::NotFound)
        );
        assert_eq!(
            app.may_manage(&master_a, Management::Reissue),
            Err(Denial::HelpDesk)
        );
        assert!(app.may_create_contract().is_err());
        assert!(app.may_create_account(&code_a, Role::Master).is_err());
        assert_eq!(app.listing_contract(None), Err(Denial::NeedsContract));
        assert_eq!(
            app.listing_contract(Some(code_a.clone())),
            Ok(Some(code_a.clone()))
        );

        let creator = Authority::App {
            scope: AppScope::All,
            can_create_contracts: true,
        };
        assert_eq!(creator.may_create_contract(), Ok(()));
        assert_eq!(creator.may_create_account(&code_a, Role::Master), Ok(()));
        assert_eq!(
            creator.may_manage(&master_a, Management::Revoke),
            Err(Denial::HelpDesk)
        );
        assert_eq!(creator.listing_contract(None), Ok(None));
    }

    #[test]
    fn only_applications_and_the_operator_issue_for_an_id_and_apps_only_in_scope() {
        let app = Authority::App {
            scope: AppScope::Contracts(vec!["A".parse().unwrap()]),
            can_create_contracts: false,
        };
        let user_a = account("u1", "A", Role::User);
        let user_b = account("u2", "B", Role::User);
        let master_a = account("m1", "A", Role::Master);
        assert_eq!(app.may_issue_for(&user_a), Ok(()));
        // Out of scope looks exactly like an ID that does not exist.
        assert_eq!(app.may_issue_for(&user_b), Err(Denial::NotFound));
        assert_eq!(
            app.may_issue_for(&master_a),
            Err(Denial::Forbidden(MASTER_ENROLLS_ITSELF))
        );
        assert!(matches!(
            master_of("A").may_issue_for(&user_a),
            Err(Denial::Forbidden(_))
        ));
        assert_eq!(master_of("A").may_issue_for(&user_b), Err(Denial::NotFound));
        assert!(Authority::Nothing.may_issue_for(&user_a).is_err());
        assert_eq!(Authority::Operator.may_issue_for(&master_a), Ok(()));
    }

    #[test]
    fn contract_options_are_set_by_contract_creators_in_scope() {
        let code_a: ContractCode = "A".parse().unwrap();
        let code_b: ContractCode = "B".parse().unwrap();
        assert_eq!(
            Authority::Operator.may_set_contract_options(&code_a),
            Ok(())
        );
        assert!(matches!(
            master_of("A").may_set_contract_options(&code_a),
            Err(Denial::Forbidden(_))
        ));
        assert_eq!(
            master_of("A").may_set_contract_options(&code_b),
            Err(Denial::NotFound)
        );
        let manager = Authority::App {
            scope: AppScope::Contracts(vec![code_a.clone()]),
            can_create_contracts: false,
        };
        assert!(matches!(
            manager.may_set_contract_options(&code_a),
            Err(Denial::Forbidden(_))
        ));
        let creator = Authority::App {
            scope: AppScope::All,
            can_create_contracts: true,
        };
        assert_eq!(creator.may_set_contract_options(&code_b), Ok(()));
        assert!(Authority::Nothing
            .may_set_contract_options(&code_a)
            .is_err());
    }

    #[test]
    fn enrollment_callers_administer_nothing() {
        let nobody = Authority::Nothing;
        assert!(matches!(nobody.administers(), Err(Denial::Forbidden(_))));
        assert!(nobody
            .may_manage(&account("u1", "A", Role::User), Management::Update)
            .is_err());
    }
}
