//! `/api/access-control/*` (status, fixed and custom roles, user role assignments) and
//! `/api/plugins/:id/settings`.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::wire::int;
use crate::api::ApiTags;
use crate::api_errors;
use crate::domain::UserId;
use crate::service::access::Role;
use crate::service::roles::RoleInput;
use crate::service::Services;
use crate::store::RoleRecord;

/// A permission of a role.
#[derive(Object, Debug)]
pub struct PermissionDto {
    pub action: String,
    pub scope: String,
}

/// An RBAC role.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RoleDto {
    pub uid: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub group: String,
    pub version: i64,
    pub global: bool,
    /// Only on `GET /api/access-control/roles/:uid`.
    #[oai(skip_serializing_if_is_none)]
    pub permissions: Option<Vec<PermissionDto>>,
}

/// A permission in a role form (`scope` may be empty).
#[derive(Object, Debug)]
pub struct PermissionForm {
    pub action: String,
    pub scope: Option<String>,
}

/// A custom role to create or replace.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RoleForm {
    /// Generated when absent (create only).
    pub uid: Option<String>,
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub group: Option<String>,
    /// On update: must be newer than the stored version (409 otherwise).
    pub version: Option<i64>,
    pub global: Option<bool>,
    #[oai(default)]
    pub permissions: Vec<PermissionForm>,
}

/// Assign a role to a user.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AssignForm {
    pub role_uid: String,
    pub global: Option<bool>,
}

/// Replace a user's roles (Grafana's `SetUserRolesCommand`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SetUserRolesForm {
    /// The roles the user is to hold; roles not listed are removed.
    pub role_uids: Vec<String>,
    /// Accepted for Grafana compatibility; assignments here apply in every org.
    pub global: Option<bool>,
    /// Accepted for Grafana compatibility; custom roles here are never hidden.
    pub include_hidden: Option<bool>,
}

/// Whether RBAC is enabled (always, here).
#[derive(Object, Debug)]
pub struct AccessControlStatus {
    pub enabled: bool,
}

/// Who holds a role directly (Grafana's `RoleAssignmentsDTO`; snake_case keys).
#[derive(Object, Debug)]
pub struct RoleAssignmentsDto {
    pub role_uid: String,
    /// Service account ids.
    pub service_accounts: Vec<i64>,
    /// Team ids (tollgate has no teams: always empty).
    pub teams: Vec<i64>,
    /// User ids.
    pub users: Vec<i64>,
}

/// Grant a role to a basic role.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct BuiltinGrantForm {
    pub role_uid: String,
    /// Viewer, Editor, Admin or Grafana Admin.
    pub builtin_role: String,
    pub global: Option<bool>,
}

/// An effective permission and the role it comes from.
#[derive(Object, Debug)]
pub struct ExplainedPermission {
    pub action: String,
    pub scope: String,
    pub role: String,
}

/// An app plugin's settings (secure values are never answered).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct PluginSettingsDto {
    pub id: String,
    pub name: String,
    #[oai(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    pub pinned: bool,
    pub json_data: serde_json::Value,
    pub secure_json_fields: BTreeMap<String, bool>,
}

api_errors!(
    /// Errors of reading roles or plugin settings.
    CatalogReadError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `roles:read` / `plugins:read`.",
        404 => NotFound: "No such role or plugin.",
    }
);

api_errors!(
    /// Errors of reading the RBAC status.
    StatusError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `status:accesscontrol`.",
    }
);

api_errors!(
    /// Errors of setting a user's roles.
    SetRolesError {
        400 => BadRequest: "Not JSON, no `roleUids`, the id is not a number, or a fixed/basic role.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `users.roles:add` or `users.roles:remove`, or a permission of a role it hands out or takes away (no escalation).",
        404 => NotFound: "No such user or role.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of changing roles and assignments.
    RoleWriteError {
        400 => BadRequest: "Not JSON, no name, an unknown action (named), a reserved name, or a fixed/basic role.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks the roles permission, or a permission of the role it hands out (no escalation).",
        404 => NotFound: "No such role or user.",
        409 => Conflict: "A role with this uid or name exists, or the version is stale.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

fn record_dto(r: RoleRecord) -> RoleDto {
    RoleDto {
        uid: r.uid,
        name: r.name,
        display_name: r.display_name,
        description: r.description,
        group: r.group,
        version: int(r.version),
        global: r.global,
        permissions: Some(
            r.permissions
                .into_iter()
                .map(|(action, scope)| PermissionDto { action, scope })
                .collect(),
        ),
    }
}

fn input(f: RoleForm) -> RoleInput {
    RoleInput {
        uid: f.uid.unwrap_or_default(),
        name: f.name,
        display_name: f.display_name.unwrap_or_default(),
        description: f.description.unwrap_or_default(),
        group: f.group.unwrap_or_default(),
        version: f.version.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
        global: f.global.unwrap_or(false),
        permissions: f
            .permissions
            .into_iter()
            .map(|p| (p.action, p.scope.unwrap_or_default()))
            .collect(),
    }
}

fn uid(id: i64) -> UserId {
    UserId(u64::try_from(id).unwrap_or(0))
}

fn role_dto(r: Role, with_permissions: bool) -> RoleDto {
    RoleDto {
        uid: r.uid,
        name: r.name,
        display_name: r.display_name,
        description: r.description,
        group: r.group,
        version: int(r.version),
        global: r.global,
        permissions: with_permissions.then(|| {
            r.permissions
                .into_iter()
                .map(|p| PermissionDto {
                    action: p.action.as_str().to_string(),
                    scope: p.scope,
                })
                .collect()
        }),
    }
}

pub struct AccessControlApi;

#[OpenApi(tag = "ApiTags::AccessControl")]
impl AccessControlApi {
    /// Whether role-based access control is enabled (always `true`).
    #[oai(
        path = "/api/access-control/status",
        method = "get",
        operation_id = "getAccessControlStatus"
    )]
    async fn status(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<AccessControlStatus>, StatusError> {
        let enabled = services.roles.status(&auth.0)?;
        Ok(Json(AccessControlStatus { enabled }))
    }

    /// Who holds a role directly: users and service accounts by id.
    #[oai(
        path = "/api/access-control/roles/:role_uid/assignments",
        method = "get",
        operation_id = "getRoleAssignments"
    )]
    async fn assignments(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The role's uid.
        role_uid: Path<String>,
    ) -> Result<Json<RoleAssignmentsDto>, CatalogReadError> {
        let a = services
            .roles
            .role_assignments(&auth.0, &role_uid.0)
            .await?;
        let ids = |v: Vec<u64>| v.into_iter().map(int).collect();
        Ok(Json(RoleAssignmentsDto {
            role_uid: a.role_uid,
            service_accounts: ids(a.service_accounts),
            teams: ids(a.teams),
            users: ids(a.users),
        }))
    }

    /// Every role: Grafana's fixed roles and the custom (provisioned) ones.
    #[oai(
        path = "/api/access-control/roles",
        method = "get",
        operation_id = "listRoles"
    )]
    async fn list(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<RoleDto>>, CatalogReadError> {
        let roles = services.roles.roles(&auth.0).await?;
        Ok(Json(
            roles.into_iter().map(|r| role_dto(r, false)).collect(),
        ))
    }

    /// A role with its permissions.
    #[oai(
        path = "/api/access-control/roles/:role_uid",
        method = "get",
        operation_id = "getRole"
    )]
    async fn get(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The role's uid.
        role_uid: Path<String>,
    ) -> Result<Json<RoleDto>, CatalogReadError> {
        let role = services.roles.role(&auth.0, &role_uid.0).await?;
        Ok(Json(role_dto(role, true)))
    }

    /// An app plugin's settings in the caller's org.
    #[oai(
        path = "/api/plugins/:plugin_id/settings",
        method = "get",
        operation_id = "getPluginSettingByID"
    )]
    async fn plugin_settings(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The plugin id.
        plugin_id: Path<String>,
    ) -> Result<Json<PluginSettingsDto>, CatalogReadError> {
        let s = services
            .plugins
            .plugin_settings(&auth.0, &plugin_id.0)
            .await?;
        Ok(Json(PluginSettingsDto {
            name: s.plugin_id.clone(),
            id: s.plugin_id,
            kind: "app".into(),
            enabled: s.enabled,
            pinned: s.pinned,
            json_data: serde_json::from_str(&s.json_data).unwrap_or_else(|_| serde_json::json!({})),
            secure_json_fields: s.secure_fields.into_iter().map(|f| (f, true)).collect(),
        }))
    }

    /// Create a custom role. Unknown actions are refused (400, named); the caller must hold
    /// every permission it puts in the role.
    #[oai(
        path = "/api/access-control/roles",
        method = "post",
        operation_id = "createRole"
    )]
    async fn create(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<RoleForm>,
    ) -> Result<Json<RoleDto>, RoleWriteError> {
        let r = services.roles.create(&auth.0, input(body.0)).await?;
        Ok(Json(record_dto(r)))
    }

    /// Replace a custom role; `version` must be newer than the stored one.
    #[oai(
        path = "/api/access-control/roles/:role_uid",
        method = "put",
        operation_id = "updateRole"
    )]
    async fn update(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The role's uid.
        role_uid: Path<String>,
        body: GfJson<RoleForm>,
    ) -> Result<Json<RoleDto>, RoleWriteError> {
        let r = services
            .roles
            .update(&auth.0, &role_uid.0, input(body.0))
            .await?;
        Ok(Json(record_dto(r)))
    }

    /// Delete a custom role (and its assignments).
    #[oai(
        path = "/api/access-control/roles/:role_uid",
        method = "delete",
        operation_id = "deleteRole"
    )]
    async fn delete(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The role's uid.
        role_uid: Path<String>,
    ) -> Result<Json<MessageBody>, RoleWriteError> {
        services.roles.delete(&auth.0, &role_uid.0).await?;
        Ok(message("Role deleted"))
    }

    /// The custom roles assigned to a user or service account.
    #[oai(
        path = "/api/access-control/users/:user_id/roles",
        method = "get",
        operation_id = "listUserRoles"
    )]
    async fn user_roles(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's id.
        user_id: Path<i64>,
    ) -> Result<Json<Vec<RoleDto>>, RoleWriteError> {
        let roles = services.roles.user_roles(&auth.0, uid(user_id.0)).await?;
        Ok(Json(roles.into_iter().map(record_dto).collect()))
    }

    /// Assign a custom role; it applies to the user's next request.
    #[oai(
        path = "/api/access-control/users/:user_id/roles",
        method = "post",
        operation_id = "addUserRole"
    )]
    async fn assign(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's id.
        user_id: Path<i64>,
        body: GfJson<AssignForm>,
    ) -> Result<Json<MessageBody>, RoleWriteError> {
        services
            .roles
            .assign(&auth.0, uid(user_id.0), &body.0.role_uid)
            .await?;
        Ok(message("Role added to the user."))
    }

    /// Replace a user's custom roles with exactly the ones listed; the change applies to
    /// the user's next request.
    #[oai(
        path = "/api/access-control/users/:user_id/roles",
        method = "put",
        operation_id = "setUserRoles"
    )]
    async fn set_user_roles(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's id.
        user_id: Path<i64>,
        /// Accepted as in Grafana's clients (the body field works too); no effect here.
        #[oai(name = "includeHidden")]
        _include_hidden: Query<Option<bool>>,
        body: GfJson<SetUserRolesForm>,
    ) -> Result<Json<MessageBody>, SetRolesError> {
        services
            .roles
            .set_user_roles(&auth.0, uid(user_id.0), &body.0.role_uids)
            .await?;
        Ok(message("User roles have been updated."))
    }

    /// Remove a role from a user.
    #[oai(
        path = "/api/access-control/users/:user_id/roles/:role_uid",
        method = "delete",
        operation_id = "removeUserRole"
    )]
    async fn unassign(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's id.
        user_id: Path<i64>,
        /// The role's uid.
        role_uid: Path<String>,
    ) -> Result<Json<MessageBody>, RoleWriteError> {
        services
            .roles
            .unassign(&auth.0, uid(user_id.0), &role_uid.0)
            .await?;
        Ok(message("Role removed from user."))
    }

    /// Basic role -> the custom roles granted to it.
    #[oai(
        path = "/api/access-control/builtin-roles",
        method = "get",
        operation_id = "listBuiltinRoles"
    )]
    async fn builtin(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<BTreeMap<String, Vec<RoleDto>>>, RoleWriteError> {
        let grants = services.roles.basic_grants(&auth.0).await?;
        Ok(Json(
            grants
                .into_iter()
                .map(|(b, rs)| (b, rs.into_iter().map(record_dto).collect()))
                .collect(),
        ))
    }

    /// Grant a custom role to a basic role.
    #[oai(
        path = "/api/access-control/builtin-roles",
        method = "post",
        operation_id = "addBuiltinRole"
    )]
    async fn grant_builtin(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<BuiltinGrantForm>,
    ) -> Result<Json<MessageBody>, RoleWriteError> {
        services
            .roles
            .grant_basic(&auth.0, &body.0.builtin_role, &body.0.role_uid)
            .await?;
        Ok(message("Built-in role grant added"))
    }

    /// Beyond Grafana: a user's effective permissions and the role each comes from.
    #[oai(
        path = "/api/access-control/users/:user_id/permissions",
        method = "get",
        operation_id = "explainUserPermissions"
    )]
    async fn explain(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's id.
        user_id: Path<i64>,
    ) -> Result<Json<Vec<ExplainedPermission>>, RoleWriteError> {
        let list = services.roles.explain(&auth.0, uid(user_id.0)).await?;
        Ok(Json(
            list.into_iter()
                .map(|e| ExplainedPermission {
                    action: e.action,
                    scope: e.scope,
                    role: e.role,
                })
                .collect(),
        ))
    }
}
