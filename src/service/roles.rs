//! Custom roles through the API (Grafana Enterprise's access-control API, the subset clients
//! use), their assignment to users and basic roles, and an explanation of where a user's
//! permissions come from.
//!
//! Custom roles live in the same store as provisioned ones, keyed by org (global roles in
//! org 0); this service also installs them into the evaluator's catalog after every change,
//! so a change applies to the next request. Assignments are single store operations, so
//! concurrent ones never lose each other. Nobody creates or assigns a role holding a
//! permission they do not hold themselves.

use std::sync::Arc;

use crate::crypto::random;
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::OrgId;
use crate::domain::{canonical_action, user_scope, Permission, Principal, UserId, DELEGATE_SCOPE};
use crate::error::AppError;
use crate::service::access::{basic_role_for, basic_role_key, CustomRole, Role, RoleCatalog};
use crate::store::{RoleRecord, RoleStore, StoreError, UserStore};

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

/// Who a role is assigned to directly (Grafana's `RoleAssignmentsDTO`), ids ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleAssignments {
    pub role_uid: String,
    pub users: Vec<u64>,
    pub service_accounts: Vec<u64>,
    pub teams: Vec<u64>,
}

/// One effective permission and the role it comes from.
#[derive(Debug, Clone)]
pub struct Explained {
    pub action: String,
    pub scope: String,
    pub role: String,
}

pub struct RoleService {
    store: Arc<dyn RoleStore>,
    users: Arc<dyn UserStore>,
    catalog: Arc<RoleCatalog>,
    clock: Arc<dyn Clock>,
}

fn is_reserved(name: &str) -> bool {
    name.starts_with("fixed:") || name.starts_with("basic:") || name.starts_with("fixed_")
}

impl RoleService {
    /// Builds the service and installs the stored roles, so they grant from the start.
    pub async fn open(
        store: Arc<dyn RoleStore>,
        users: Arc<dyn UserStore>,
        catalog: Arc<RoleCatalog>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AppError> {
        let s = Self {
            store,
            users,
            catalog,
            clock,
        };
        s.install_roles().await?;
        Ok(s)
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

    /// Grafana's role-management check: `action` on the delegate scope (Grafana's grant),
    /// or on `scope` (tollgate's older per-resource grant). A denial names the action.
    fn require_delegate(p: &Principal, action: Action, scope: &str) -> Result<(), AppError> {
        crate::domain::audit::note_permission(action.as_str(), scope);
        if p.permissions.has(action, DELEGATE_SCOPE) {
            return Ok(());
        }
        p.require(action, scope)
    }

    /// No escalation: the caller must hold every permission it hands out (or takes away),
    /// each on the scope the role names. A permission on the delegate scope is no exception:
    /// it is held when the caller holds that action on the delegate scope, which is how a
    /// role manager hands role management on (Grafana Admin holds them there, as in
    /// Grafana). A denial names the action as the role spells it; an unknown one (a role
    /// stored before actions were checked) is held only by in-process callers, which hold
    /// everything.
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

    /// The custom role `uid` seen from the caller's org: the org's own, else a global one.
    async fn custom(&self, p: &Principal, uid: &str) -> Result<RoleRecord, AppError> {
        for org in [p.org_id, OrgId(0)] {
            if let Some(r) = self.store.role(org, uid).await? {
                return Ok(r);
            }
        }
        if self
            .catalog
            .roles()
            .iter()
            .any(|r| r.uid == uid && is_reserved(&r.name))
        {
            Err(AppError::bad_request("fixed and basic roles are read-only"))
        } else {
            Err(AppError::not_found("Role not found"))
        }
    }

    /// Puts the stored custom roles in the evaluator's catalog (logins resolved now).
    pub async fn install_roles(&self) -> Result<(), AppError> {
        let mut custom = Vec::new();
        for r in self.store.roles().await? {
            let mut users: Vec<u64> = Vec::new();
            for login in &r.users {
                if let Some(u) = self.users.user_by_login(login).await? {
                    users.push(u.id);
                }
            }
            users.extend(&r.user_ids);
            custom.push(CustomRole {
                basic_roles: r
                    .basic_roles
                    .iter()
                    .filter_map(|b| basic_role_key(b))
                    .collect(),
                users,
                role: role_of(&r),
            });
        }
        self.catalog.install_custom(&custom);
        Ok(())
    }

    /// Every stored custom role (provisioning compares against them).
    pub async fn stored(&self) -> Result<Vec<RoleRecord>, AppError> {
        Ok(self.store.roles().await?)
    }

    /// Provisioning: upserts and deletes in one store unit (API assignments are kept), then
    /// the catalog follows.
    pub async fn apply_provisioned(
        &self,
        set: &[RoleRecord],
        delete: &[(OrgId, String)],
    ) -> Result<(), AppError> {
        if !set.is_empty() || !delete.is_empty() {
            self.store.apply_roles(set, delete).await?;
        }
        self.install_roles().await
    }

    /// `GET /api/access-control/roles`: the fixed roles, and the custom roles of the
    /// caller's org and the global ones (as Grafana scopes role reads by org).
    pub async fn roles(&self, p: &Principal) -> Result<Vec<Role>, AppError> {
        p.require(Action::RolesRead, "roles:*")?;
        let mut out: Vec<Role> = self
            .catalog
            .roles()
            .into_iter()
            .filter(|r| is_reserved(&r.name))
            .collect();
        out.extend(
            self.store
                .roles()
                .await?
                .iter()
                .filter(|r| r.org_id == p.org_id.0 || r.org_id == 0)
                .map(role_of),
        );
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `GET /api/access-control/roles/:uid`: a fixed role, or a custom one of the
    /// caller's org or global.
    pub async fn role(&self, p: &Principal, uid: &str) -> Result<Role, AppError> {
        p.require(Action::RolesRead, &format!("roles:uid:{uid}"))?;
        for org in [p.org_id, OrgId(0)] {
            if let Some(r) = self.store.role(org, uid).await? {
                return Ok(role_of(&r));
            }
        }
        self.catalog
            .roles()
            .into_iter()
            .find(|r| r.uid == uid && is_reserved(&r.name))
            .ok_or_else(|| AppError::not_found("Role not found"))
    }

    pub async fn create(&self, p: &Principal, input: RoleInput) -> Result<RoleRecord, AppError> {
        Self::require_delegate(p, Action::RolesWrite, "roles:*")?;
        Self::validate(&input)?;
        Self::check_holds(p, &input.permissions)?;
        let uid = if input.uid.is_empty() {
            random::short_uid()
        } else {
            input.uid.clone()
        };
        let conflict = || AppError::Conflict("a role with this uid or name already exists".into());
        let taken = self
            .store
            .roles()
            .await?
            .iter()
            .any(|r| r.uid == uid || r.name == input.name)
            || self
                .catalog
                .roles()
                .iter()
                .any(|r| r.uid == uid || r.name == input.name);
        if taken {
            return Err(conflict());
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
            updated: self.clock.now(),
        };
        self.store.create_role(&r).await.map_err(|e| match e {
            StoreError::Conflict(_) => conflict(),
            other => other.into(),
        })?;
        self.install_roles().await?;
        Ok(r)
    }

    /// Replaces a custom role; `version` must be newer than the stored one (409 otherwise).
    /// The store applies it only to the version read here, so of two concurrent updates
    /// one wins and the other is told.
    pub async fn update(
        &self,
        p: &Principal,
        uid: &str,
        input: RoleInput,
    ) -> Result<RoleRecord, AppError> {
        Self::require_delegate(p, Action::RolesWrite, &format!("roles:uid:{uid}"))?;
        let old = self.custom(p, uid).await?;
        Self::validate(&input)?;
        Self::check_holds(p, &input.permissions)?;
        let version = if input.version == 0 {
            old.version + 1
        } else {
            input.version
        };
        let stale = || {
            AppError::Conflict(format!(
                "role has been updated since version {} (now {}); reload it and retry",
                input.version, old.version
            ))
        };
        if version <= old.version {
            return Err(stale());
        }
        let r = RoleRecord {
            name: input.name.clone(),
            display_name: input.display_name.clone(),
            description: input.description.clone(),
            group: input.group.clone(),
            version,
            permissions: input.permissions.clone(),
            updated: self.clock.now(),
            ..old.clone()
        };
        self.store
            .update_role(&r, old.version)
            .await
            .map_err(|e| match e {
                StoreError::Stale(_) => stale(),
                StoreError::Conflict(_) => {
                    AppError::Conflict("a role with this uid or name already exists".into())
                }
                StoreError::NotFound => AppError::not_found("Role not found"),
                other => other.into(),
            })?;
        self.install_roles().await?;
        Ok(r)
    }

    pub async fn delete(&self, p: &Principal, uid: &str) -> Result<(), AppError> {
        Self::require_delegate(p, Action::RolesDelete, &format!("roles:uid:{uid}"))?;
        let old = self.custom(p, uid).await?;
        Self::check_holds(p, &old.permissions)?;
        self.store
            .delete_role(OrgId(old.org_id), &old.uid)
            .await?
            .ok_or_else(|| AppError::not_found("Role not found"))?;
        self.install_roles().await
    }

    async fn user_record(&self, id: UserId) -> Result<crate::store::UserRecord, AppError> {
        self.users
            .user(id)
            .await?
            .map(Arc::unwrap_or_clone)
            .ok_or_else(|| AppError::not_found("user not found"))
    }

    /// Whether the role is assigned to this user, by id (API) or login (provisioning).
    fn holds(r: &RoleRecord, user: &crate::store::UserRecord) -> bool {
        r.user_ids.contains(&user.id) || r.users.contains(&user.login)
    }

    /// Custom roles assigned to a user (or service account).
    pub async fn user_roles(&self, p: &Principal, id: UserId) -> Result<Vec<RoleRecord>, AppError> {
        // Grafana's scope is `users:id:<id>`; tollgate's older one `global.users:id:<id>`.
        p.require(Action::UsersRolesRead, &format!("users:id:{id}"))
            .or_else(|_| p.require(Action::UsersRolesRead, &user_scope(id)))?;
        let user = self.user_record(id).await?;
        Ok(self
            .store
            .roles()
            .await?
            .into_iter()
            .filter(|r| Self::holds(r, &user))
            .collect())
    }

    /// Assigns a role: one store operation that refuses a role deleted meanwhile.
    pub async fn assign(&self, p: &Principal, id: UserId, role_uid: &str) -> Result<(), AppError> {
        Self::require_delegate(p, Action::UsersRolesAdd, &user_scope(id))?;
        let user = self.user_record(id).await?;
        let r = self.custom(p, role_uid).await?;
        Self::check_holds(p, &r.permissions)?;
        if !Self::holds(&r, &user) {
            self.store
                .assign_role(OrgId(r.org_id), &r.uid, user.user_id())
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => AppError::not_found("Role not found"),
                    other => other.into(),
                })?;
            self.install_roles().await?;
        }
        Ok(())
    }

    pub async fn unassign(
        &self,
        p: &Principal,
        id: UserId,
        role_uid: &str,
    ) -> Result<(), AppError> {
        Self::require_delegate(p, Action::UsersRolesRemove, &user_scope(id))?;
        let user = self.user_record(id).await?;
        let r = self.custom(p, role_uid).await?;
        // Taking a role away is delegated like handing it out (Grafana's delegate scope).
        Self::check_holds(p, &r.permissions)?;
        if Self::holds(&r, &user) {
            self.store
                .unassign_role(OrgId(r.org_id), &r.uid, user.user_id(), &user.login)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => AppError::not_found("Role not found"),
                    other => other.into(),
                })?;
            self.install_roles().await?;
        }
        Ok(())
    }

    /// `PUT /api/access-control/users/:id/roles`: the user's custom roles seen from the
    /// caller's org (its own and the global ones) become exactly `role_uids`. Every role is
    /// looked up, and every role added or removed is checked against the caller's own
    /// permissions, before anything changes; then each change is one store operation (the
    /// set as a whole is not one unit: a concurrent change to the same user may interleave).
    pub async fn set_user_roles(
        &self,
        p: &Principal,
        id: UserId,
        role_uids: &[String],
    ) -> Result<(), AppError> {
        Self::require_delegate(p, Action::UsersRolesAdd, &user_scope(id))?;
        Self::require_delegate(p, Action::UsersRolesRemove, &user_scope(id))?;
        let user = self.user_record(id).await?;
        let mut wanted: Vec<RoleRecord> = Vec::new();
        for uid in role_uids {
            let r = self.custom(p, uid).await?;
            if !wanted
                .iter()
                .any(|w| w.org_id == r.org_id && w.uid == r.uid)
            {
                wanted.push(r);
            }
        }
        let add: Vec<&RoleRecord> = wanted.iter().filter(|r| !Self::holds(r, &user)).collect();
        let remove: Vec<RoleRecord> = self
            .store
            .roles()
            .await?
            .into_iter()
            .filter(|r| r.org_id == p.org_id.0 || r.org_id == 0)
            .filter(|r| Self::holds(r, &user))
            .filter(|r| {
                !wanted
                    .iter()
                    .any(|w| w.org_id == r.org_id && w.uid == r.uid)
            })
            .collect();
        for r in &add {
            Self::check_holds(p, &r.permissions)?;
        }
        for r in &remove {
            Self::check_holds(p, &r.permissions)?;
        }
        let not_found = |e: StoreError| match e {
            StoreError::NotFound => AppError::not_found("Role not found"),
            other => other.into(),
        };
        for r in &add {
            self.store
                .assign_role(OrgId(r.org_id), &r.uid, user.user_id())
                .await
                .map_err(not_found)?;
        }
        for r in &remove {
            self.store
                .unassign_role(OrgId(r.org_id), &r.uid, user.user_id(), &user.login)
                .await
                .map_err(not_found)?;
        }
        if !add.is_empty() || !remove.is_empty() {
            self.install_roles().await?;
        }
        Ok(())
    }

    /// `GET /api/access-control/roles/:uid/assignments`: who holds the role directly (by
    /// id through the API, by login through provisioning), users and service accounts
    /// apart. Fixed roles are held only through basic roles, so they list nobody; tollgate
    /// has no teams.
    pub async fn role_assignments(
        &self,
        p: &Principal,
        uid: &str,
    ) -> Result<RoleAssignments, AppError> {
        // Grafana's `users.roles:read` on `users:id:*` (or tollgate's older `global.users:*`).
        p.require(Action::UsersRolesRead, "users:id:*")
            .or_else(|_| p.require(Action::UsersRolesRead, "global.users:*"))?;
        let mut out = RoleAssignments {
            role_uid: uid.to_string(),
            ..RoleAssignments::default()
        };
        let mut record = None;
        for org in [p.org_id, OrgId(0)] {
            if let Some(r) = self.store.role(org, uid).await? {
                record = Some(r);
                break;
            }
        }
        let Some(r) = record else {
            return if self
                .catalog
                .roles()
                .iter()
                .any(|r| r.uid == uid && is_reserved(&r.name))
            {
                Ok(out)
            } else {
                Err(AppError::not_found("Role not found"))
            };
        };
        let mut ids = r.user_ids.clone();
        for login in &r.users {
            if let Some(u) = self.users.user_by_login(login).await? {
                ids.push(u.id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            match self.users.user(UserId(id)).await? {
                Some(u) if u.is_service_account => out.service_accounts.push(id),
                Some(_) => out.users.push(id),
                // Deleted since: holds nothing.
                None => {}
            }
        }
        Ok(out)
    }

    /// `GET /api/access-control/status`: RBAC is always on here.
    pub fn status(&self, p: &Principal) -> Result<bool, AppError> {
        p.require(Action::StatusAccessControl, "services:accesscontrol")?;
        Ok(true)
    }

    /// Grants a custom role to a basic role (`Viewer`, `Editor`, `Admin`, `Grafana Admin`).
    pub async fn grant_basic(
        &self,
        p: &Principal,
        basic: &str,
        role_uid: &str,
    ) -> Result<(), AppError> {
        Self::require_delegate(p, Action::RolesWrite, "roles:*")?;
        if basic_role_key(basic).is_none() {
            return Err(AppError::bad_request(format!(
                "'{basic}' is not a basic role (Viewer, Editor, Admin, Grafana Admin)"
            )));
        }
        let r = self.custom(p, role_uid).await?;
        Self::check_holds(p, &r.permissions)?;
        if self
            .store
            .set_basic_grant(OrgId(r.org_id), &r.uid, basic, true)
            .await?
        {
            self.install_roles().await?;
        }
        Ok(())
    }

    /// Basic role -> the custom roles granted to it.
    pub async fn basic_grants(
        &self,
        p: &Principal,
    ) -> Result<Vec<(String, Vec<RoleRecord>)>, AppError> {
        p.require(Action::RolesRead, "roles:*")?;
        let roles = self.store.roles().await?;
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
    pub async fn explain(&self, p: &Principal, id: UserId) -> Result<Vec<Explained>, AppError> {
        // Grafana's action for reading a user's permissions, on Grafana's scope for it
        // (`users:id:<id>`, not `global.users:...`); holders of users.roles:read may too.
        p.require(Action::UsersPermissionsRead, &format!("users:id:{id}"))
            .or_else(|_| p.require(Action::UsersRolesRead, &user_scope(id)))?;
        let user = self
            .users
            .user(id)
            .await?
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
            .roles()
            .await?
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

fn role_of(r: &RoleRecord) -> Role {
    Role {
        uid: r.uid.clone(),
        name: r.name.clone(),
        display_name: r.display_name.clone(),
        description: r.description.clone(),
        group: r.group.clone(),
        version: r.version,
        global: r.global,
        // Parsed at the boundary: the API and provisioning refuse unknown actions, so one
        // here predates those checks; it grants nothing, as before.
        permissions: r
            .permissions
            .iter()
            .filter_map(|(a, s)| {
                let p = Permission::parse(a, s);
                if p.is_none() {
                    tracing::warn!(role = %r.name, action = %a, "role holds an unknown action");
                }
                p
            })
            .collect(),
    }
}
