//! Custom roles through the API (Grafana Enterprise's access-control API, the subset clients
//! use), their assignment to users and basic roles, and an explanation of where a user's
//! permissions come from.
//!
//! Custom roles live in the same store as provisioned ones; every change re-installs the
//! evaluator's catalog, so it applies to the next request. Nobody creates or assigns a role
//! holding a permission they do not hold themselves.

use std::sync::Arc;

use crate::crypto::random;
use crate::domain::{canonical_action, user_scope, Action, Permission, Principal, UserId};
use crate::error::AppError;
use crate::service::access::{basic_role_for, basic_role_key, RoleCatalog};
use crate::service::provisioning::ProvisioningService;
use crate::store::{now, Durability, ProvisioningStore, RoleRecord, UserStore};

/// A role as the API gives it.
#[derive(Debug, Clone, Default)]
pub struct RoleInput {
    pub uid: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub group: String,
    pub version: u64,
    pub global: bool,
    pub permissions: Vec<(String, String)>,
}

/// One effective permission and the role it comes from.
#[derive(Debug, Clone)]
pub struct Explained {
    pub action: String,
    pub scope: String,
    pub role: String,
}

pub struct RoleService {
    store: Arc<dyn ProvisioningStore>,
    users: Arc<dyn UserStore>,
    catalog: Arc<RoleCatalog>,
    provisioning: Arc<ProvisioningService>,
    durability: Durability,
}

fn is_reserved(name: &str) -> bool {
    name.starts_with("fixed:") || name.starts_with("basic:") || name.starts_with("fixed_")
}

impl RoleService {
    pub fn new(
        store: Arc<dyn ProvisioningStore>,
        users: Arc<dyn UserStore>,
        catalog: Arc<RoleCatalog>,
        provisioning: Arc<ProvisioningService>,
        durability: Durability,
    ) -> Self {
        Self {
            store,
            users,
            catalog,
            provisioning,
            durability,
        }
    }

    /// Unknown actions are refused, naming them; both spellings of renamed actions pass.
    fn validate(input: &RoleInput) -> Result<(), AppError> {
        if input.name.trim().is_empty() {
            return Err(AppError::bad_request("role name is required"));
        }
        if is_reserved(&input.name) {
            return Err(AppError::bad_request(
                "fixed: and basic: roles are read-only; choose another name",
            ));
        }
        let unknown: Vec<&str> = input
            .permissions
            .iter()
            .map(|(a, _)| a.as_str())
            .filter(|a| Action::parse(a).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::bad_request(format!(
                "unknown action(s): {}",
                unknown.join(", ")
            )));
        }
        Ok(())
    }

    /// No escalation: the caller must hold every permission it hands out. A denial names the
    /// action as the role spells it; an unknown one (a role stored before actions were
    /// checked) is held only by in-process callers, which hold everything.
    fn check_holds(p: &Principal, permissions: &[(String, String)]) -> Result<(), AppError> {
        for (action, scope) in permissions {
            let held = match Action::parse(action) {
                Some(a) => p.permissions.has(a, scope),
                None => p.permissions.is_everything(),
            };
            if !held {
                return Err(AppError::AccessDenied {
                    action: action.clone(),
                    scope: scope.clone(),
                });
            }
        }
        Ok(())
    }

    fn custom(&self, uid: &str) -> Result<RoleRecord, AppError> {
        self.store
            .roles()?
            .into_iter()
            .find(|r| r.uid == uid)
            .ok_or_else(|| {
                if self.catalog.roles().iter().any(|r| r.uid == uid) {
                    AppError::bad_request("fixed and basic roles are read-only")
                } else {
                    AppError::not_found("Role not found")
                }
            })
    }

    async fn save(&self, set: &[RoleRecord], delete: &[String]) -> Result<(), AppError> {
        self.store.apply_roles(set, delete)?;
        self.durability.wait().await?;
        self.provisioning.install_roles()
    }

    pub async fn create(&self, p: &Principal, input: RoleInput) -> Result<RoleRecord, AppError> {
        p.require(Action::RolesWrite, "roles:*")?;
        Self::validate(&input)?;
        Self::check_holds(p, &input.permissions)?;
        let roles = self.store.roles()?;
        let uid = if input.uid.is_empty() {
            random::short_uid()
        } else {
            input.uid.clone()
        };
        if roles.iter().any(|r| r.uid == uid || r.name == input.name)
            || self
                .catalog
                .roles()
                .iter()
                .any(|r| r.uid == uid || r.name == input.name)
        {
            return Err(AppError::Conflict(
                "a role with this uid or name already exists".into(),
            ));
        }
        let r = RoleRecord {
            uid,
            name: input.name,
            display_name: input.display_name,
            description: input.description,
            group: input.group,
            version: input.version.max(1),
            global: input.global,
            org_id: if input.global { 0 } else { p.org_id.0 },
            permissions: input.permissions,
            basic_roles: Vec::new(),
            users: Vec::new(),
            user_ids: Vec::new(),
            updated: now(),
        };
        self.save(std::slice::from_ref(&r), &[]).await?;
        Ok(r)
    }

    /// Replaces a custom role; `version` must be newer than the stored one (409 otherwise).
    pub async fn update(
        &self,
        p: &Principal,
        uid: &str,
        input: RoleInput,
    ) -> Result<RoleRecord, AppError> {
        p.require(Action::RolesWrite, &format!("roles:uid:{uid}"))?;
        let old = self.custom(uid)?;
        Self::validate(&input)?;
        Self::check_holds(p, &input.permissions)?;
        let version = if input.version == 0 {
            old.version + 1
        } else {
            input.version
        };
        if version <= old.version {
            return Err(AppError::Conflict(format!(
                "role has been updated since version {} (now {}); reload it and retry",
                input.version, old.version
            )));
        }
        let r = RoleRecord {
            name: input.name,
            display_name: input.display_name,
            description: input.description,
            group: input.group,
            version,
            global: input.global,
            permissions: input.permissions,
            updated: now(),
            ..old
        };
        self.save(std::slice::from_ref(&r), &[]).await?;
        Ok(r)
    }

    pub async fn delete(&self, p: &Principal, uid: &str) -> Result<(), AppError> {
        p.require(Action::RolesDelete, &format!("roles:uid:{uid}"))?;
        let old = self.custom(uid)?;
        self.save(&[], &[old.uid]).await
    }

    fn user_record(&self, id: UserId) -> Result<crate::store::UserRecord, AppError> {
        self.users
            .user(id)?
            .ok_or_else(|| AppError::not_found("user not found"))
    }

    /// Whether the role is assigned to this user, by id (API) or login (provisioning).
    fn holds(r: &RoleRecord, user: &crate::store::UserRecord) -> bool {
        r.user_ids.contains(&user.id) || r.users.contains(&user.login)
    }

    /// Custom roles assigned to a user (or service account).
    pub fn user_roles(&self, p: &Principal, id: UserId) -> Result<Vec<RoleRecord>, AppError> {
        p.require(Action::UsersRolesRead, &user_scope(id))?;
        let user = self.user_record(id)?;
        Ok(self
            .store
            .roles()?
            .into_iter()
            .filter(|r| Self::holds(r, &user))
            .collect())
    }

    pub async fn assign(&self, p: &Principal, id: UserId, role_uid: &str) -> Result<(), AppError> {
        p.require(Action::UsersRolesAdd, &user_scope(id))?;
        let user = self.user_record(id)?;
        let mut r = self.custom(role_uid)?;
        Self::check_holds(p, &r.permissions)?;
        if !Self::holds(&r, &user) {
            r.user_ids.push(user.id);
            r.updated = now();
            self.save(&[r], &[]).await?;
        }
        Ok(())
    }

    pub async fn unassign(
        &self,
        p: &Principal,
        id: UserId,
        role_uid: &str,
    ) -> Result<(), AppError> {
        p.require(Action::UsersRolesRemove, &user_scope(id))?;
        let user = self.user_record(id)?;
        let mut r = self.custom(role_uid)?;
        if Self::holds(&r, &user) {
            r.user_ids.retain(|u| *u != user.id);
            r.users.retain(|l| l != &user.login);
            r.updated = now();
            self.save(&[r], &[]).await?;
        }
        Ok(())
    }

    /// Grants a custom role to a basic role (`Viewer`, `Editor`, `Admin`, `Grafana Admin`).
    pub async fn grant_basic(
        &self,
        p: &Principal,
        basic: &str,
        role_uid: &str,
    ) -> Result<(), AppError> {
        p.require(Action::RolesWrite, "roles:*")?;
        if basic_role_key(basic).is_none() {
            return Err(AppError::bad_request(format!(
                "'{basic}' is not a basic role (Viewer, Editor, Admin, Grafana Admin)"
            )));
        }
        let mut r = self.custom(role_uid)?;
        Self::check_holds(p, &r.permissions)?;
        if !r.basic_roles.iter().any(|b| b.eq_ignore_ascii_case(basic)) {
            r.basic_roles.push(basic.to_string());
            self.save(&[r], &[]).await?;
        }
        Ok(())
    }

    /// Basic role -> the custom roles granted to it.
    pub fn basic_grants(&self, p: &Principal) -> Result<Vec<(String, Vec<RoleRecord>)>, AppError> {
        p.require(Action::RolesRead, "roles:*")?;
        let roles = self.store.roles()?;
        Ok(["Viewer", "Editor", "Admin", "Grafana Admin"]
            .iter()
            .map(|b| {
                (
                    (*b).to_string(),
                    roles
                        .iter()
                        .filter(|r| r.basic_roles.iter().any(|x| x.eq_ignore_ascii_case(b)))
                        .cloned()
                        .collect(),
                )
            })
            .collect())
    }

    /// Beyond Grafana: a user's effective permissions with the role each comes from.
    pub fn explain(&self, p: &Principal, id: UserId) -> Result<Vec<Explained>, AppError> {
        // Grafana's action for reading a user's permissions, on Grafana's scope for it
        // (`users:id:<id>`, not `global.users:...`); holders of users.roles:read may too.
        p.require(Action::UsersPermissionsRead, &format!("users:id:{id}"))
            .or_else(|_| p.require(Action::UsersRolesRead, &user_scope(id)))?;
        let user = self
            .users
            .user(id)?
            .ok_or_else(|| AppError::not_found("user not found"))?;
        let org_role = user
            .role_in(crate::domain::OrgId(user.org_id))
            .unwrap_or(crate::domain::OrgRole::None);
        let mut basics = vec![basic_role_for(org_role)];
        if user.is_admin && !user.is_service_account {
            basics.push("basic:grafana_admin");
        }
        let mut out = Vec::new();
        for (role, perms) in self.catalog.explain(&basics) {
            out.extend(
                perms
                    .into_iter()
                    .map(|Permission { action, scope }| Explained {
                        action: action.as_str().to_string(),
                        scope,
                        role: role.clone(),
                    }),
            );
        }
        for r in self
            .store
            .roles()?
            .into_iter()
            .filter(|r| Self::holds(r, &user))
        {
            out.extend(r.permissions.iter().map(|(a, s)| Explained {
                action: canonical_action(a).to_string(),
                scope: s.clone(),
                role: r.name.clone(),
            }));
        }
        Ok(out)
    }
}
