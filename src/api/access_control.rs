//! `/api/access-control/roles` (fixed and custom roles) and `/api/plugins/:id/settings`.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::access::Role;
use crate::service::Services;

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

fn role_dto(r: Role, with_permissions: bool) -> RoleDto {
    RoleDto {
        uid: r.uid,
        name: r.name,
        display_name: r.display_name,
        description: r.description,
        group: r.group,
        version: i64::try_from(r.version).unwrap_or(i64::MAX),
        global: r.global,
        permissions: with_permissions.then(|| {
            r.permissions
                .into_iter()
                .map(|p| PermissionDto {
                    action: p.action,
                    scope: p.scope,
                })
                .collect()
        }),
    }
}

pub struct AccessControlApi;

#[OpenApi(tag = "ApiTags::AccessControl")]
impl AccessControlApi {
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
        let roles = services.provisioning.roles(&auth.0)?;
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
        let role = services.provisioning.role(&auth.0, &role_uid.0)?;
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
            .provisioning
            .plugin_settings(&auth.0, &plugin_id.0)?;
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
}
