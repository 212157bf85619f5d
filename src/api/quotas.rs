//! Grafana's quota routes: an org's limits (`/api/org/quotas`, `/api/orgs/:orgId/quotas`),
//! a user's (`/api/admin/users/:id/quotas`, `/api/user/quotas`), and changing one limit.
//! Bodies are Grafana's `QuotaDTO`, snake_case unlike most of the API.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::orgs::org_param;
use crate::api::wire::WireId;
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::quotas::QuotaUsage;
use crate::service::Services;
use crate::store::QuotaOwner;

/// One limit and its use (Grafana's `QuotaDTO`): `org_id` on an org's list, `user_id` on
/// a user's.
#[derive(Object, Debug)]
pub struct Quota {
    #[oai(skip_serializing_if_is_none)]
    pub org_id: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    pub user_id: Option<i64>,
    /// `org_user`, `data_source`, `dashboard`, `api_key`, `alert_rule` (org);
    /// `org_user` (user: the orgs the user belongs to).
    pub target: String,
    /// A negative limit is unlimited; 0 refuses every creation.
    pub limit: i64,
    pub used: i64,
}

impl From<QuotaUsage> for Quota {
    fn from(q: QuotaUsage) -> Self {
        let (org_id, user_id) = match q.owner {
            QuotaOwner::Org(o) => (Some(o.0 as i64), None),
            QuotaOwner::User(u) => (None, Some(u.0 as i64)),
        };
        Self {
            org_id,
            user_id,
            target: q.target.to_string(),
            limit: q.limit,
            used: i64::try_from(q.used).unwrap_or(i64::MAX),
        }
    }
}

fn list(quotas: Vec<QuotaUsage>) -> Json<Vec<Quota>> {
    Json(quotas.into_iter().map(Quota::from).collect())
}

/// `PUT …/quotas/:quota_target` (Grafana's `UpdateQuotaCmd`; a `target` in the body is
/// ignored: the path names it).
#[derive(Object, Debug)]
pub struct UpdateQuotaForm {
    pub limit: i64,
    /// Ignored: the path's target applies.
    pub target: Option<String>,
}

api_errors!(
    /// Errors of reading quotas.
    QuotaReadError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not read these quotas, or quotas are not enabled (`quota.disabled`).",
        404 => NotFound: "No such org or user.",
    }
);

api_errors!(
    /// Errors of changing a quota.
    QuotaWriteError {
        400 => BadRequest: "Bad body.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not change these quotas, or quotas are not enabled (`quota.disabled`).",
        404 => NotFound: "No such org or user, or no such target for it (\"Invalid quota target\").",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

pub struct QuotasApi;

#[OpenApi(tag = "ApiTags::Quotas")]
impl QuotasApi {
    /// The caller's current org's quotas. Needs `orgs.quotas:read`.
    #[oai(
        path = "/api/org/quotas",
        method = "get",
        operation_id = "getCurrentOrgQuota"
    )]
    async fn current_org(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<Quota>>, QuotaReadError> {
        let org = auth.0.org_id;
        Ok(list(services.orgs.quotas(&auth.0, org).await?))
    }

    /// An org's quotas. Needs `orgs.quotas:read` in that org.
    #[oai(
        path = "/api/orgs/:orgId/quotas",
        method = "get",
        operation_id = "getOrgQuota"
    )]
    async fn org(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
    ) -> Result<Json<Vec<Quota>>, QuotaReadError> {
        let org = org_param(&org_id.0)?;
        Ok(list(services.orgs.quotas(&auth.0, org).await?))
    }

    /// Change one of an org's limits. Needs `orgs.quotas:write` in that org.
    #[oai(
        path = "/api/orgs/:orgId/quotas/:quota_target",
        method = "put",
        operation_id = "updateOrgQuota"
    )]
    async fn set_org(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
        quota_target: Path<String>,
        body: GfJson<UpdateQuotaForm>,
    ) -> Result<Json<MessageBody>, QuotaWriteError> {
        let org = org_param(&org_id.0)?;
        services
            .orgs
            .set_quota(&auth.0, org, &quota_target.0, body.0.limit)
            .await?;
        Ok(message("Organization quota updated"))
    }

    /// A user's quotas. Needs `users.quotas:read` (older `users.quotas:list`) on
    /// `global.users:id:<id>`.
    #[oai(
        path = "/api/admin/users/:id/quotas",
        method = "get",
        operation_id = "getUserQuota"
    )]
    async fn user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<Json<Vec<Quota>>, QuotaReadError> {
        Ok(list(services.quotas.user_quotas(&auth.0, &id.0).await?))
    }

    /// Change one of a user's limits. Needs `users.quotas:write` (older
    /// `users.quotas:update`) on `global.users:id:<id>`. Grafana answers "Organization
    /// quota updated" here too.
    #[oai(
        path = "/api/admin/users/:id/quotas/:quota_target",
        method = "put",
        operation_id = "updateUserQuota"
    )]
    async fn set_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
        quota_target: Path<String>,
        body: GfJson<UpdateQuotaForm>,
    ) -> Result<Json<MessageBody>, QuotaWriteError> {
        services
            .quotas
            .set_user_quota(&auth.0, &id.0, &quota_target.0, body.0.limit)
            .await?;
        Ok(message("Organization quota updated"))
    }

    /// The signed-in user's own quotas.
    #[oai(
        path = "/api/user/quotas",
        method = "get",
        operation_id = "getUserQuotas"
    )]
    async fn own(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<Quota>>, QuotaReadError> {
        Ok(list(services.quotas.own_quotas(&auth.0).await?))
    }
}
