//! `/api/admin/ldap/*`: reload (validated and test-bound before it takes effect), status,
//! user lookup and sync.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::error::{message, MessageBody};
use crate::api::ApiTags;
use crate::api_errors;
use crate::domain::UserId;
use crate::service::Services;

/// An LDAP server's reachability (service bind).
#[derive(Object, Debug)]
pub struct LdapServerStatus {
    pub host: String,
    pub port: i64,
    pub available: bool,
    pub error: String,
}

/// An attribute: which LDAP attribute the config reads and what the directory holds.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct LdapAttribute {
    pub cfg_attr_value: String,
    pub ldap_value: String,
}

/// An org role a group mapping gives.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct LdapOrgRole {
    pub org_id: i64,
    pub org_role: String,
    #[oai(rename = "groupDN")]
    pub group_dn: String,
}

/// What the directory says about a user and how it maps.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct LdapUser {
    pub dn: String,
    pub name: LdapAttribute,
    pub surname: LdapAttribute,
    pub email: LdapAttribute,
    pub login: LdapAttribute,
    pub is_grafana_admin: bool,
    pub is_disabled: bool,
    pub org_roles: Vec<LdapOrgRole>,
    pub groups: Vec<String>,
}

api_errors!(
    /// Errors of the LDAP routes.
    LdapError {
        400 => BadRequest: "LDAP is not enabled (or its config did not load).",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks the `ldap.*` permission, or the request is cross-origin.",
        404 => NotFound: "No such user in the directory (or locally, for sync).",
    }
);

pub struct LdapApi;

#[OpenApi(tag = "ApiTags::Ldap")]
impl LdapApi {
    /// Reload `ldap.toml`: parsed, validated and test-bound first; on failure the previous
    /// config stays and the answer is 500 with the reason in `error`.
    #[oai(
        path = "/api/admin/ldap/reload",
        method = "post",
        operation_id = "reloadLDAPCfg"
    )]
    async fn reload(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<MessageBody>, LdapError> {
        services.ldap.reload(&auth.0).await?;
        Ok(message("LDAP config reloaded"))
    }

    /// Each configured server and whether a service bind works now.
    #[oai(
        path = "/api/admin/ldap/status",
        method = "get",
        operation_id = "getLDAPStatus"
    )]
    async fn status(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<LdapServerStatus>>, LdapError> {
        let list = services.ldap.status(&auth.0).await?;
        Ok(Json(
            list.into_iter()
                .map(|s| LdapServerStatus {
                    host: s.host,
                    port: i64::from(s.port),
                    available: s.available,
                    error: s.error,
                })
                .collect(),
        ))
    }

    /// Refresh a local LDAP user from the directory.
    #[oai(
        path = "/api/admin/ldap/sync/:user_id",
        method = "post",
        operation_id = "postSyncUserWithLDAP"
    )]
    async fn sync(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The local user's id.
        user_id: Path<i64>,
    ) -> Result<Json<MessageBody>, LdapError> {
        let id = UserId(u64::try_from(user_id.0).unwrap_or(0));
        services.ldap.sync(&auth.0, id).await?;
        Ok(message("User synced"))
    }

    /// What the directory holds for a username and how the group mappings apply.
    #[oai(
        path = "/api/admin/ldap/:user_name",
        method = "get",
        operation_id = "getUserFromLDAP"
    )]
    async fn lookup(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The username (the `username` attribute's value).
        user_name: Path<String>,
    ) -> Result<Json<LdapUser>, LdapError> {
        let (id, attrs) = services.ldap.lookup(&auth.0, &user_name.0).await?;
        let attr = |cfg: &str, v: &str| LdapAttribute {
            cfg_attr_value: cfg.to_string(),
            ldap_value: v.to_string(),
        };
        Ok(Json(LdapUser {
            dn: id.dn.clone(),
            name: attr(&attrs.name, &id.name),
            surname: attr(&attrs.surname, &id.surname),
            email: attr(&attrs.email, &id.email),
            login: attr(&attrs.username, &id.login),
            is_grafana_admin: id.grafana_admin,
            is_disabled: false,
            org_roles: id
                .org_roles
                .iter()
                .map(|(o, r, g)| LdapOrgRole {
                    org_id: i64::try_from(o.0).unwrap_or(0),
                    org_role: r.to_string(),
                    group_dn: g.clone(),
                })
                .collect(),
            groups: id.groups,
        }))
    }
}
