//! Organizations and their members (Grafana's org API): search, create, read, rename, and
//! adding, re-roling and removing members. Permissions on `/api/orgs/:orgId/*` are
//! evaluated in the target org, as Grafana's `authorizeInOrg` does: the caller's role in
//! that org (none when not a member) plus the Grafana Admin flag.

use std::sync::Arc;

use crate::config::Settings;
use crate::domain::time::Clock;
use crate::domain::{Action, AuthKind, OrgId, OrgRole, PermissionSet, Principal, UserId};
use crate::error::AppError;
use crate::service::access::RoleCatalog;
use crate::store::{OrgRecord, StoreError, UserRecord, UserStore};

pub const ORG_NOT_FOUND: &str = "Organization not found";
pub const NAME_TAKEN: &str = "Organization name taken";
const USER_NOT_FOUND: &str = "User not found";
/// Grafana's global org: listing orgs, finding one by name and creating one are evaluated
/// there, where only global grants (the Grafana Admin's) apply.
const GLOBAL_ORG: OrgId = OrgId(0);

/// What adding a member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added(UserId),
    AlreadyMember(UserId),
}

pub struct OrgService {
    store: Arc<dyn UserStore>,
    catalog: Arc<RoleCatalog>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
}

/// `users:id:<id>`, the scope of org-user actions.
fn member_scope(user: UserId) -> String {
    format!("users:id:{user}")
}

impl OrgService {
    pub fn new(
        store: Arc<dyn UserStore>,
        catalog: Arc<RoleCatalog>,
        settings: Arc<Settings>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            catalog,
            settings,
            clock,
        }
    }

    /// The caller's permissions in `org`: its own set in its current org; elsewhere its
    /// role there (none when not a member) and the Grafana Admin flag. API keys act in
    /// their own org only.
    async fn permissions_in(
        &self,
        p: &Principal,
        org: OrgId,
    ) -> Result<Arc<PermissionSet>, AppError> {
        if org == p.org_id {
            return Ok(p.permissions.clone());
        }
        match (p.kind, p.user_id) {
            (AuthKind::System, _) => Ok(p.permissions.clone()),
            (_, Some(id)) => {
                let role = self
                    .store
                    .user(id)
                    .await?
                    .and_then(|u| u.role_in(org))
                    .unwrap_or(OrgRole::None);
                Ok(self
                    .catalog
                    .permissions_for_user(id.0, role, p.is_grafana_admin))
            }
            (_, None) => Ok(Arc::new(PermissionSet::default())),
        }
    }

    async fn require_in(
        &self,
        p: &Principal,
        org: OrgId,
        action: Action,
        scope: &str,
    ) -> Result<(), AppError> {
        if self.permissions_in(p, org).await?.has(action, scope) {
            Ok(())
        } else {
            Err(AppError::AccessDenied {
                action: action.as_str().to_string(),
                scope: scope.to_string(),
            })
        }
    }

    /// `GET /api/orgs` (global org): `page` counts from 0 (Grafana's offset is `perpage × page`).
    pub async fn search(
        &self,
        p: &Principal,
        query: &str,
        name: Option<&str>,
        page: u64,
        per_page: u64,
    ) -> Result<Vec<OrgRecord>, AppError> {
        self.require_in(p, GLOBAL_ORG, Action::OrgsRead, "").await?;
        self.store
            .search_orgs(query, name, page.saturating_mul(per_page), per_page)
            .await
            .map_err(AppError::store("Failed to search orgs"))
    }

    /// `POST /api/orgs`: holders of `orgs:create`, or any signed-in user when
    /// `[users] allow_org_create` is set. The caller becomes the org's Admin.
    pub async fn create(&self, p: &Principal, name: &str) -> Result<OrgId, AppError> {
        let signed_in_user = matches!(p.kind, AuthKind::Basic | AuthKind::Session);
        if !(p.permissions.has(Action::OrgsCreate, "")
            || (self.settings.allow_org_create && signed_in_user))
        {
            p.require(Action::OrgsCreate, "")?;
        }
        let Some(creator) = p.user_id else {
            return Err(AppError::Forbidden(
                "Only users can create organizations".into(),
            ));
        };
        match self.store.create_org(name, self.clock.now(), creator).await {
            Ok(org) => Ok(OrgId(org.id)),
            Err(StoreError::Conflict(_)) => Err(AppError::Conflict(NAME_TAKEN.into())),
            Err(e) => Err(AppError::store("Failed to create organization")(e)),
        }
    }

    /// `GET /api/org`, `GET /api/orgs/:orgId`.
    pub async fn get(&self, p: &Principal, org: OrgId) -> Result<OrgRecord, AppError> {
        self.require_in(p, org, Action::OrgsRead, "").await?;
        self.store
            .org(org)
            .await
            .map_err(AppError::store("Failed to get organization"))?
            .ok_or_else(|| AppError::not_found(ORG_NOT_FOUND))
    }

    /// `GET /api/orgs/name/:orgName` (exact name).
    pub async fn by_name(&self, p: &Principal, name: &str) -> Result<OrgRecord, AppError> {
        self.require_in(p, GLOBAL_ORG, Action::OrgsRead, "").await?;
        self.store
            .org_by_name(name)
            .await
            .map_err(AppError::store("Failed to get organization"))?
            .ok_or_else(|| AppError::not_found(ORG_NOT_FOUND))
    }

    /// `PUT /api/org`, `PUT /api/orgs/:orgId`: a taken name is a 400 here (409 on create).
    pub async fn rename(&self, p: &Principal, org: OrgId, name: &str) -> Result<(), AppError> {
        self.require_in(p, org, Action::OrgsWrite, "").await?;
        match self.store.rename_org(org, name, self.clock.now()).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => Err(AppError::bad_request(NAME_TAKEN)),
            Err(e) => Err(AppError::store("Failed to update organization")(e)),
        }
    }

    /// The org's members the caller may read (`org.users:read` on `users:id:<id>`).
    pub async fn members(
        &self,
        p: &Principal,
        org: OrgId,
    ) -> Result<Vec<(UserRecord, OrgRole)>, AppError> {
        self.require_in(p, org, Action::OrgUsersRead, "").await?;
        let perms = self.permissions_in(p, org).await?;
        let all =
            self.store
                .org_members(org)
                .await
                .map_err(AppError::store(if org == p.org_id {
                    "Failed to get users for current organization"
                } else {
                    "Failed to get users for organization"
                }))?;
        Ok(all
            .into_iter()
            .filter(|(u, _)| perms.has(Action::OrgUsersRead, &member_scope(u.user_id())))
            .collect())
    }

    /// Grafana's "higher role" rule: a caller who is not a Grafana Admin may only grant
    /// roles up to its own role in its current org.
    fn check_grantable(p: &Principal, role: OrgRole) -> Result<(), AppError> {
        if p.is_grafana_admin || p.kind == AuthKind::System || role <= p.org_role {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "Cannot assign a role higher than user's role".into(),
            ))
        }
    }

    /// `POST /api/org/users`, `POST /api/orgs/:orgId/users`.
    pub async fn add(
        &self,
        p: &Principal,
        org: OrgId,
        login_or_email: &str,
        role: OrgRole,
    ) -> Result<Added, AppError> {
        self.require_in(p, org, Action::OrgUsersAdd, "users:*")
            .await?;
        Self::check_grantable(p, role)?;
        let found = match self.store.user_by_login(login_or_email).await? {
            Some(u) => Some(u),
            None => self.store.user_by_email(login_or_email).await?,
        };
        let user = found
            .filter(|u| !u.is_service_account)
            .ok_or_else(|| AppError::not_found(USER_NOT_FOUND))?;
        let id = user.user_id();
        match self
            .store
            .add_membership(id, org, role, self.clock.now())
            .await
        {
            Ok(_) => Ok(Added::Added(id)),
            Err(StoreError::AlreadyMember) => Ok(Added::AlreadyMember(id)),
            Err(e) => Err(AppError::store("Could not add user to organization")(e)),
        }
    }

    /// `PATCH /api/org/users/:userId`, `PATCH /api/orgs/:orgId/users/:userId`.
    pub async fn set_role(
        &self,
        p: &Principal,
        org: OrgId,
        user: UserId,
        role: OrgRole,
    ) -> Result<(), AppError> {
        self.require_in(p, org, Action::OrgUsersWrite, &member_scope(user))
            .await?;
        Self::check_grantable(p, role)?;
        match self
            .store
            .set_membership_role(user, org, role, self.clock.now())
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::LastOrgAdmin) => Err(AppError::bad_request(
                "Cannot change role so that there is no organization admin left",
            )),
            // No such user: a client error, as Grafana's user resolver answers it.
            Err(StoreError::NotFound) => Err(AppError::not_found(USER_NOT_FOUND)),
            Err(e) => Err(AppError::store("Failed update org user")(e)),
        }
    }

    /// `DELETE /api/org/users/:userId`, `DELETE /api/orgs/:orgId/users/:userId`. Removing
    /// a non-member succeeds (Grafana does not check the row); the user is never deleted.
    pub async fn remove(&self, p: &Principal, org: OrgId, user: UserId) -> Result<(), AppError> {
        self.require_in(p, org, Action::OrgUsersRemove, &member_scope(user))
            .await?;
        match self
            .store
            .remove_membership(user, org, self.clock.now())
            .await
        {
            Ok(_) | Err(StoreError::NotMember) => Ok(()),
            Err(StoreError::LastOrgAdmin) => Err(AppError::bad_request(
                "Cannot remove last organization admin",
            )),
            // No such user: a client error, as Grafana's user resolver answers it.
            Err(StoreError::NotFound) => Err(AppError::not_found(USER_NOT_FOUND)),
            Err(e) => Err(AppError::store("Failed to remove user from organization")(
                e,
            )),
        }
    }
}
