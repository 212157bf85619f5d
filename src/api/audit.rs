//! The audit log: `GET /api/admin/audit` (filters and cursor paging, newest first),
//! `GET /api/admin/audit/verify` and `POST /api/admin/audit/hmac`. tollgate's own routes
//! (Grafana Enterprise only writes its audit events to log files); RBAC `audit:read`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::ApiTags;
use crate::api_errors;
use crate::domain::audit::{hex, AuditEvent};
use crate::domain::time::{parse_rfc3339_ms, rfc3339_ms};
use crate::error::AppError;
use crate::service::Services;
use crate::store::AuditQuery;

/// Who made the request.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AuditActorView {
    pub user_id: Option<u64>,
    /// The login; for a failed sign-in, `hmac-sha256:<hex>` of the name tried.
    pub login: String,
    /// The API key or service-account token used.
    pub token_id: Option<u64>,
    pub service_account_id: Option<u64>,
    /// `basic`, `session`, `api_key`, `service_account`, `token`, `form`, `ldap`, `system`,
    /// or empty (no credentials).
    pub auth_method: String,
}

/// What a request changed or was refused.
#[derive(Object, Debug)]
pub struct AuditTarget {
    /// `user`, `org`, `datasource`, ... (empty when the request names none).
    pub kind: String,
    pub id: String,
}

/// One audit event.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AuditEventView {
    /// 1, 2, 3, ... in commit order.
    pub seq: u64,
    /// RFC 3339, UTC, with milliseconds.
    pub time: String,
    pub actor: AuditActorView,
    /// The client's address.
    pub client: String,
    pub user_agent: String,
    /// The `X-Request-Id` of the request.
    pub request_id: String,
    pub method: String,
    /// The route template (`/api/admin/users/:id`).
    pub route: String,
    /// The RBAC action the request needed (`users:write`), or what happened
    /// (`auth:login`, `audit:prune`); `grafana_admin` for Grafana-Admin-only routes.
    pub action: String,
    pub target: AuditTarget,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The names of the fields the request set (never their values).
    pub fields: Vec<String>,
    /// SHA-256 over the event and `prevHash` (hex).
    pub hash: String,
    pub prev_hash: String,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        let x = e.entry;
        Self {
            seq: e.seq,
            time: rfc3339_ms(x.at),
            actor: AuditActorView {
                user_id: x.actor.user_id,
                login: x.actor.login,
                token_id: x.actor.token_id,
                service_account_id: x.actor.service_account_id,
                auth_method: x.actor.auth_method,
            },
            client: x.client,
            user_agent: x.user_agent,
            request_id: x.request_id,
            method: x.method,
            route: x.route,
            action: x.action,
            target: AuditTarget {
                kind: x.target_kind,
                id: x.target_id,
            },
            status: x.status,
            fields: x.fields,
            hash: hex(&e.hash),
            prev_hash: hex(&e.prev_hash),
        }
    }
}

/// A page of events, newest first.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next_cursor: Option<u64>,
}

/// The chain check.
#[derive(Object, Debug)]
pub struct AuditVerification {
    /// Every stored event matches the chain.
    pub ok: bool,
    /// Events checked (before the first break).
    pub checked: u64,
    /// The first event that was modified, removed or reordered.
    pub seq: Option<u64>,
    pub message: String,
}

#[derive(Object, Debug)]
pub struct HmacRequest {
    /// The identifier to look for (a login tried at a failed sign-in).
    pub value: String,
}

#[derive(Object, Debug)]
pub struct HmacResponse {
    /// `hmac-sha256:<hex>`, as the audit log stores it.
    pub hmac: String,
}

#[derive(ApiResponse, Debug)]
pub enum AuditPageResponse {
    #[oai(status = 200)]
    Ok(Json<AuditPage>),
}

#[derive(ApiResponse, Debug)]
pub enum VerifyResponse {
    #[oai(status = 200)]
    Ok(Json<AuditVerification>),
}

#[derive(ApiResponse, Debug)]
pub enum HmacAnswer {
    #[oai(status = 200)]
    Ok(Json<HmacResponse>),
}

api_errors!(
    /// Errors of reading the audit log.
    AuditError {
        400 => BadRequest: "A filter is not understood (the message names it).",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `audit:read`, or the request is cross-origin.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

/// RFC 3339 or Unix milliseconds.
fn time(name: &str, v: Option<String>) -> Result<Option<i64>, AppError> {
    v.filter(|s| !s.trim().is_empty())
        .map(|s| {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| parse_rfc3339_ms(s))
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "{name} must be an RFC 3339 time or Unix milliseconds"
                    ))
                })
        })
        .transpose()
}

fn text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

pub struct AuditApi;

#[OpenApi(tag = "ApiTags::AdminSettings")]
impl AuditApi {
    /// Lists audit events, newest first (`audit:read`). Every filter given must match;
    /// page with `before` = the previous page's `nextCursor`.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/api/admin/audit",
        method = "get",
        operation_id = "adminListAudit"
    )]
    async fn list(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The actor's user id.
        #[oai(
            name = "userId",
            validator(minimum(value = "0"), maximum(value = "1000000000000000"))
        )]
        user_id: Query<Option<u64>>,
        /// The actor's login (exact), or `hmac-sha256:<hex>` for a failed sign-in's.
        login: Query<Option<String>>,
        /// An RBAC action (`users:write`), or a prefix ending in `*` (`users:*`).
        action: Query<Option<String>>,
        /// `user`, `org`, `datasource`, ...
        #[oai(name = "targetKind")]
        target_kind: Query<Option<String>>,
        #[oai(name = "targetId")] target_id: Query<Option<String>>,
        /// `success` (status below 400) or `failure`.
        #[oai(validator(pattern = r"^(success|failure)$"))]
        result: Query<Option<String>>,
        /// An exact HTTP status.
        #[oai(validator(minimum(value = "0"), maximum(value = "999")))]
        status: Query<Option<u16>>,
        /// From this time on: RFC 3339 (`2026-12-02T02:00:00Z`) or Unix milliseconds.
        #[oai(validator(
            pattern = r"^([0-9]{1,15}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
        ))]
        from: Query<Option<String>>,
        /// Up to this time (as `from`).
        #[oai(validator(
            pattern = r"^([0-9]{1,15}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
        ))]
        to: Query<Option<String>>,
        /// The cursor: events older than this `seq`.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000000000")))]
        before: Query<Option<u64>>,
        /// At most this many events (default 50, at most 1000).
        #[oai(validator(minimum(value = "0"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> Result<AuditPageResponse, AuditError> {
        let query = AuditQuery {
            actor_user_id: user_id.0,
            actor_login: text(login.0),
            action: text(action.0),
            target_kind: text(target_kind.0),
            target_id: text(target_id.0),
            success: match text(result.0).as_deref() {
                None => None,
                Some("success") => Some(true),
                Some("failure") => Some(false),
                Some(_) => {
                    return Err(AppError::bad_request("result must be success or failure").into())
                }
            },
            status: status.0,
            from: time("from", from.0)?,
            to: time("to", to.0)?,
            before_seq: before.0,
            limit: limit.0.map_or(0, |n| n as usize),
        };
        let (events, next) = services.audit.events(&auth.0, query).await?;
        Ok(AuditPageResponse::Ok(Json(AuditPage {
            events: events.into_iter().map(Into::into).collect(),
            next_cursor: next,
        })))
    }

    /// Walks the whole chain and names the first event that was modified, removed or
    /// reordered (`audit:read`).
    #[oai(
        path = "/api/admin/audit/verify",
        method = "get",
        operation_id = "adminVerifyAudit"
    )]
    async fn verify(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<VerifyResponse, AuditError> {
        let report = services.audit.verify(&auth.0).await?;
        let (seq, message) = match report.broken {
            Some((seq, message)) => (Some(seq), message),
            None => (None, format!("{} events verified", report.checked)),
        };
        Ok(VerifyResponse::Ok(Json(AuditVerification {
            ok: seq.is_none(),
            checked: report.checked,
            seq,
            message,
        })))
    }

    /// The HMAC the audit log stores for an identifier it keeps hidden (a failed
    /// sign-in's login), to search for it (`audit:read`).
    #[oai(
        path = "/api/admin/audit/hmac",
        method = "post",
        operation_id = "adminAuditHmac"
    )]
    async fn hmac(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<HmacRequest>,
    ) -> Result<HmacAnswer, AuditError> {
        let hmac = services.audit.hmac(&auth.0, &body.0.value)?;
        Ok(HmacAnswer::Ok(Json(HmacResponse { hmac })))
    }
}
