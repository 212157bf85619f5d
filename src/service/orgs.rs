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
use crate::service::quotas::{QuotaService, QuotaUsage};
use crate::service::roles::RoleService;
use crate::service::secrets::org_secret_prefixes;
use crate::service::users::UserService;
use crate::store::{OrgAddressRecord, OrgRecord, QuotaOwner, StoreError, UserRecord, UserStore};

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

/// What removing a member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Removed,
    /// The user had no org left and was deleted (current-org route only).
    UserDeleted,
}

/// An org with its address (Grafana's `OrgDetailsDTO`).
#[derive(Debug, Clone)]
pub struct OrgDetails {
    pub org: OrgRecord,
    pub address: OrgAddressRecord,
}

/// A page of an org's members and how many match in all.
#[derive(Debug, Clone)]
pub struct MemberPage {
    pub members: Vec<(UserRecord, OrgRole)>,
    pub total: u64,
}

pub struct OrgService {
    store: Arc<dyn UserStore>,
    catalog: Arc<RoleCatalog>,
    settings: Arc<Settings>,
    quotas: Arc<QuotaService>,
    clock: Arc<dyn Clock>,
    users: Arc<UserService>,
    roles: Arc<RoleService>,
}

/// Grafana's member search: `query` is contained in the login, email or name (any case).
fn matches(u: &UserRecord, query: &str) -> bool {
    let q = query.to_lowercase();
    q.is_empty()
        || [&u.login, &u.email, &u.name]
            .iter()
            .any(|f| f.to_lowercase().contains(&q))
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
        quotas: Arc<QuotaService>,
        clock: Arc<dyn Clock>,
        users: Arc<UserService>,
        roles: Arc<RoleService>,
    ) -> Self {
        Self {
            store,
            catalog,
            settings,
            quotas,
            clock,
            users,
            roles,
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
        crate::domain::audit::note_permission(Action::OrgsCreate.as_str(), "");
        if !(p.permissions.has(Action::OrgsCreate, "")
            || (self.settings.allow_org_create && signed_in_user))
        {
            p.require(Action::OrgsCreate, "")?;
        }
        self.quotas.check(p, "org").await?;
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
    pub async fn get(&self, p: &Principal, org: OrgId) -> Result<OrgDetails, AppError> {
        self.require_in(p, org, Action::OrgsRead, "").await?;
        let org = self
            .store
            .org(org)
            .await
            .map_err(AppError::store("Failed to get organization"))?
            .ok_or_else(|| AppError::not_found(ORG_NOT_FOUND))?;
        self.with_address(org).await
    }

    async fn with_address(&self, org: OrgRecord) -> Result<OrgDetails, AppError> {
        let address = self
            .store
            .org_address(OrgId(org.id))
            .await
            .map_err(AppError::store("Failed to get organization"))?
            .unwrap_or_default();
        Ok(OrgDetails { org, address })
    }

    /// `GET /api/orgs/name/:orgName` (exact name).
    pub async fn by_name(&self, p: &Principal, name: &str) -> Result<OrgDetails, AppError> {
        self.require_in(p, GLOBAL_ORG, Action::OrgsRead, "").await?;
        let org = self
            .store
            .org_by_name(name)
            .await
            .map_err(AppError::store("Failed to get organization"))?
            .ok_or_else(|| AppError::not_found(ORG_NOT_FOUND))?;
        self.with_address(org).await
    }

    /// `PUT /api/org/address`, `PUT /api/orgs/:orgId/address`: every field is replaced.
    /// Grafana does not check that the org exists (200 for a missing one).
    pub async fn set_address(
        &self,
        p: &Principal,
        org: OrgId,
        address: &OrgAddressRecord,
    ) -> Result<(), AppError> {
        self.require_in(p, org, Action::OrgsWrite, "").await?;
        match self.store.set_org_address(org, address).await {
            Ok(()) | Err(StoreError::OrgNotFound) => Ok(()),
            Err(e) => Err(AppError::store("Failed to update org address")(e)),
        }
    }

    /// `DELETE /api/orgs/:orgId`: the org and everything it owns (see
    /// `UserStore::delete_org`); never the caller's current org. Users are kept.
    pub async fn delete(&self, p: &Principal, org: OrgId) -> Result<(), AppError> {
        self.require_in(p, org, Action::OrgsDelete, "").await?;
        if org == p.org_id {
            return Err(AppError::bad_request("Can not delete org for current user"));
        }
        match self.store.delete_org(org, &org_secret_prefixes(org)).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                return Err(AppError::not_found(
                    "Failed to delete organization. ID not found",
                ))
            }
            Err(e) => return Err(AppError::store("Failed to update organization")(e)),
        }
        // The org's custom roles went with it: they grant nothing any more.
        self.roles.install_roles().await?;
        tracing::info!(org = org.0, "organization deleted");
        Ok(())
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
        // Another org than the caller's may be gone: say so, not "no members".
        if org != p.org_id && self.store.org(org).await?.is_none() {
            return Err(AppError::not_found(ORG_NOT_FOUND));
        }
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

    /// `GET /api/org/users/search`, `GET /api/orgs/:orgId/users/search`: the members the
    /// caller may read whose login, email or name contains `query`, ordered by login;
    /// `page` counts from 1.
    pub async fn search_members(
        &self,
        p: &Principal,
        org: OrgId,
        query: &str,
        page: u64,
        per_page: u64,
    ) -> Result<MemberPage, AppError> {
        let found: Vec<_> = self
            .members(p, org)
            .await?
            .into_iter()
            .filter(|(u, _)| matches(u, query))
            .collect();
        let total = found.len() as u64;
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        Ok(MemberPage {
            members: found
                .into_iter()
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .take(usize::try_from(per_page).unwrap_or(usize::MAX))
                .collect(),
            total,
        })
    }

    /// `GET /api/org/users/lookup`: members of the caller's current org whose login, email
    /// or name contains `query`, at most `limit` (0: all). Grafana also lets folder, team and
    /// dashboard permission managers in; tollgate has no such permissions, so only
    /// `org.users:read` (the Enterprise rule); rows are not filtered per user.
    pub async fn lookup(
        &self,
        p: &Principal,
        query: &str,
        limit: u64,
    ) -> Result<Vec<UserRecord>, AppError> {
        let org = p.org_id;
        self.require_in(p, org, Action::OrgUsersRead, "").await?;
        let all = self.store.org_members(org).await.map_err(AppError::store(
            "Failed to get users for current organization",
        ))?;
        let limit = if limit == 0 {
            usize::MAX
        } else {
            usize::try_from(limit).unwrap_or(usize::MAX)
        };
        Ok(all
            .into_iter()
            .map(|(u, _)| u)
            .filter(|u| matches(u, query))
            .take(limit)
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

    /// `POST /api/org/users` (`quota_guarded`: Grafana's `user` and `org` quota checks run
    /// before it), `POST /api/orgs/:orgId/users` (no quota check, even for the caller's
    /// current org).
    pub async fn add(
        &self,
        p: &Principal,
        org: OrgId,
        login_or_email: &str,
        role: OrgRole,
        quota_guarded: bool,
    ) -> Result<Added, AppError> {
        self.require_in(p, org, Action::OrgUsersAdd, "users:*")
            .await?;
        if quota_guarded {
            self.quotas.check(p, "user").await?;
            self.quotas.check(p, "org").await?;
        }
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
    /// a non-member succeeds (Grafana does not check the row). With `delete_orphan` (the
    /// current-org route), a user this removal leaves without any org is deleted, as
    /// Grafana does; the `/api/orgs/:orgId/...` route keeps it.
    pub async fn remove(
        &self,
        p: &Principal,
        org: OrgId,
        user: UserId,
        delete_orphan: bool,
    ) -> Result<Removed, AppError> {
        self.require_in(p, org, Action::OrgUsersRemove, &member_scope(user))
            .await?;
        let row = match self
            .store
            .remove_membership(user, org, self.clock.now())
            .await
        {
            Ok(row) => Some(row),
            Err(StoreError::NotMember) => None,
            Err(StoreError::LastOrgAdmin) => {
                return Err(AppError::bad_request(
                    "Cannot remove last organization admin",
                ))
            }
            // No such user: a client error, as Grafana's user resolver answers it.
            Err(StoreError::NotFound) => return Err(AppError::not_found(USER_NOT_FOUND)),
            Err(StoreError::OrgNotFound) => return Err(AppError::not_found(ORG_NOT_FOUND)),
            Err(e) => {
                return Err(AppError::store("Failed to remove user from organization")(
                    e,
                ))
            }
        };
        match row {
            Some(row) if delete_orphan && row.memberships.is_empty() => {
                if self.users.delete_orphaned(user).await? {
                    return Ok(Removed::UserDeleted);
                }
                Ok(Removed::Removed)
            }
            _ => Ok(Removed::Removed),
        }
    }
}

impl OrgService {
    /// `GET /api/org/quotas`, `GET /api/orgs/:orgId/quotas` (`orgs.quotas:read` in the org).
    pub async fn quotas(&self, p: &Principal, org: OrgId) -> Result<Vec<QuotaUsage>, AppError> {
        self.require_in(p, org, Action::OrgsQuotasRead, "").await?;
        self.quotas.org_quotas(org).await
    }

    /// `PUT /api/orgs/:orgId/quotas/:quota_target` (`orgs.quotas:write` in the org).
    pub async fn set_quota(
        &self,
        p: &Principal,
        org: OrgId,
        target: &str,
        limit: i64,
    ) -> Result<(), AppError> {
        self.require_in(p, org, Action::OrgsQuotasWrite, "").await?;
        self.quotas
            .set(
                QuotaOwner::Org(org),
                target,
                limit,
                ORG_NOT_FOUND,
                "Failed to update org quotas",
            )
            .await
    }
}
