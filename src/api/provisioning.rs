//! `/api/admin/provisioning/*/reload`, the provisioning status, and the legacy alerting
//! routes: `/api/alerts`, `/api/alerts/:id/pause`, `/api/admin/pause-all-alerts` and
//! `/api/alert-notifications`.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::wire::{int, rfc3339};
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::alerts::AlertQuery;
use crate::service::provisioning::Kind;
use crate::service::Services;

/// One file's outcome in a reload.
#[derive(Object, Debug)]
pub struct FileOutcomeDto {
    pub file: String,
    pub ok: bool,
    pub message: String,
}

/// The last reload of a kind.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ProvisioningRunDto {
    /// RFC 3339.
    pub at: String,
    pub ok: bool,
    /// Why it failed (file, line, problem); empty when it worked.
    pub error: String,
    /// Objects created or updated, and removed.
    pub applied: i64,
    pub removed: i64,
    pub files: Vec<FileOutcomeDto>,
}

/// `{"paused": true|false}`.
#[derive(Object, Debug)]
pub struct PauseForm {
    pub paused: bool,
}

/// The answer of pause-all-alerts.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct PauseAllResult {
    pub alerts_affected: i64,
    pub message: String,
    /// `paused` or `pending`.
    pub state: String,
}

/// The answer of pausing one alert.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct PauseResult {
    pub alert_id: i64,
    pub message: String,
    pub state: String,
}

/// A legacy alert rule.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AlertDto {
    pub id: i64,
    pub dashboard_id: i64,
    pub dashboard_uid: String,
    pub panel_id: i64,
    pub name: String,
    pub state: String,
    pub new_state_date: String,
    pub url: String,
}

/// A legacy alert notification channel (secure settings are never answered).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AlertNotificationDto {
    pub id: i64,
    pub uid: String,
    pub name: String,
    #[oai(rename = "type")]
    pub kind: String,
    pub is_default: bool,
    pub send_reminder: bool,
    pub disable_resolve_message: bool,
    pub frequency: String,
    pub created: String,
    pub updated: String,
    pub settings: serde_json::Value,
    /// Which secure settings hold a value.
    pub secure_fields: BTreeMap<String, bool>,
}

/// Access-control reload: Grafana answers 202.
#[derive(ApiResponse, Debug)]
pub enum AcceptedMessage {
    #[oai(status = 202)]
    Accepted(Json<MessageBody>),
}

api_errors!(
    /// Errors of a provisioning reload.
    ReloadError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `provisioning:reload` on this provisioner, or the request is cross-origin.",
    }
);

api_errors!(
    /// Errors of reading legacy alerting objects.
    AlertReadError {
        400 => BadRequest: "A query parameter is invalid.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks the read permission.",
    }
);

api_errors!(
    /// Errors of pausing one alert.
    PauseError {
        400 => BadRequest: "Not JSON or no `paused`.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "Not an org Editor, or the request is cross-origin.",
        404 => NotFound: "No such alert in the caller's org.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of pausing every alert.
    PauseAllError {
        400 => BadRequest: "Not JSON or no `paused`.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "Not a Grafana Admin (\"Permission denied\"), or the request is cross-origin.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

async fn reload(auth: &Auth, services: &Arc<Services>, kind: Kind) -> Result<(), ReloadError> {
    services.provisioning.reload(&auth.0, kind).await?;
    Ok(())
}

fn states(state: Option<String>) -> Vec<String> {
    state
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_lowercase())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

pub struct ProvisioningApi;

#[OpenApi(tag = "ApiTags::Provisioning")]
impl ProvisioningApi {
    /// Re-read the dashboard providers and their files; polling stops and restarts.
    #[oai(
        path = "/api/admin/provisioning/dashboards/reload",
        method = "post",
        operation_id = "adminProvisioningReloadDashboards"
    )]
    async fn dashboards(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<MessageBody>, ReloadError> {
        reload(&auth, &services, Kind::Dashboards).await?;
        Ok(message("Dashboards config reloaded"))
    }

    /// Re-read the datasource files; returns once stored.
    #[oai(
        path = "/api/admin/provisioning/datasources/reload",
        method = "post",
        operation_id = "adminProvisioningReloadDatasources"
    )]
    async fn datasources(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<MessageBody>, ReloadError> {
        reload(&auth, &services, Kind::Datasources).await?;
        Ok(message("Datasources config reloaded"))
    }

    /// Re-read the app plugin files; returns once stored.
    #[oai(
        path = "/api/admin/provisioning/plugins/reload",
        method = "post",
        operation_id = "adminProvisioningReloadPlugins"
    )]
    async fn plugins(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<MessageBody>, ReloadError> {
        reload(&auth, &services, Kind::Plugins).await?;
        Ok(message("Plugins config reloaded"))
    }

    /// Re-read the notification channel files; returns once stored.
    #[oai(
        path = "/api/admin/provisioning/notifications/reload",
        method = "post",
        operation_id = "adminProvisioningReloadNotifications"
    )]
    async fn notifications(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<MessageBody>, ReloadError> {
        reload(&auth, &services, Kind::Notifications).await?;
        Ok(message("Notifications config reloaded"))
    }

    /// Re-read the access-control (RBAC role) files; 202 once stored and in effect.
    #[oai(
        path = "/api/admin/provisioning/access-control/reload",
        method = "post",
        operation_id = "adminProvisioningReloadAccessControl"
    )]
    async fn access_control(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<AcceptedMessage, ReloadError> {
        reload(&auth, &services, Kind::AccessControl).await?;
        // Grafana Enterprise's body is not public; this is the message its clients check
        // (grafana-api-sdk's reload_access_controls_provisioning_configuration).
        Ok(AcceptedMessage::Accepted(message(
            "Accesscontrol config reloaded",
        )))
    }

    /// Beyond Grafana: per kind, the last reload's time, result and per-file outcome.
    #[oai(
        path = "/api/admin/provisioning/status",
        method = "get",
        operation_id = "adminProvisioningStatus"
    )]
    async fn status(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<BTreeMap<String, ProvisioningRunDto>>, ReloadError> {
        let runs = services.provisioning.status(&auth.0).await?;
        Ok(Json(
            runs.into_iter()
                .map(|r| {
                    (
                        r.kind,
                        ProvisioningRunDto {
                            at: rfc3339(r.at),
                            ok: r.ok,
                            error: r.error,
                            applied: int(r.applied),
                            removed: int(r.removed),
                            files: r
                                .files
                                .into_iter()
                                .map(|f| FileOutcomeDto {
                                    file: f.file,
                                    ok: f.ok,
                                    message: f.message,
                                })
                                .collect(),
                        },
                    )
                })
                .collect(),
        ))
    }

    /// Legacy alert rules of the caller's org.
    #[oai(path = "/api/alerts", method = "get", operation_id = "getAlerts")]
    #[allow(clippy::too_many_arguments)]
    async fn alerts(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Comma-separated states (`all`, `ok`, `paused`, `pending`, `alerting`, `no_data`).
        state: Query<Option<String>>,
        /// Part of the alert name.
        query: Query<Option<String>>,
        #[oai(name = "dashboardId")] dashboard_id: Query<Option<i64>>,
        #[oai(name = "panelId")] panel_id: Query<Option<i64>>,
        limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<AlertDto>>, AlertReadError> {
        let q = AlertQuery {
            query: query.0.unwrap_or_default(),
            states: states(state.0),
            dashboard_id: dashboard_id.0.and_then(|v| u64::try_from(v).ok()),
            panel_id: panel_id.0.and_then(|v| u64::try_from(v).ok()),
            limit: limit.0.and_then(|v| usize::try_from(v).ok()).unwrap_or(0),
        };
        let alerts = services.alerts.alerts(&auth.0, &q).await?;
        Ok(Json(
            alerts
                .into_iter()
                .map(|a| AlertDto {
                    id: int(a.id),
                    dashboard_id: int(a.dashboard_id),
                    url: format!("/d/{}?viewPanel={}", a.dashboard_uid, a.panel_id),
                    dashboard_uid: a.dashboard_uid,
                    panel_id: int(a.panel_id),
                    name: a.name,
                    state: a.state,
                    new_state_date: rfc3339(a.new_state_date),
                })
                .collect(),
        ))
    }

    /// Pause or resume one alert (org Editor).
    #[oai(
        path = "/api/alerts/:alert_id/pause",
        method = "post",
        operation_id = "pauseAlert"
    )]
    async fn pause(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The alert's id.
        alert_id: Path<i64>,
        body: GfJson<PauseForm>,
    ) -> Result<Json<PauseResult>, PauseError> {
        let id = u64::try_from(alert_id.0).unwrap_or(0);
        let paused = body.0.paused;
        services.alerts.pause_alert(&auth.0, id, paused).await?;
        Ok(Json(PauseResult {
            alert_id: alert_id.0,
            message: if paused {
                "Alert paused"
            } else {
                "Alert un-paused"
            }
            .into(),
            state: if paused { "paused" } else { "pending" }.into(),
        }))
    }

    /// Pause or resume every legacy alert (Grafana Admin). The pause survives dashboard
    /// reloads.
    #[oai(
        path = "/api/admin/pause-all-alerts",
        method = "post",
        operation_id = "adminPauseAllAlerts"
    )]
    async fn pause_all(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<PauseForm>,
    ) -> Result<Json<PauseAllResult>, PauseAllError> {
        let paused = body.0.paused;
        let n = services.alerts.pause_all(&auth.0, paused).await?;
        Ok(Json(PauseAllResult {
            alerts_affected: int(n),
            message: if paused {
                "alerts paused"
            } else {
                "alerts un paused"
            }
            .into(),
            state: if paused { "paused" } else { "pending" }.into(),
        }))
    }

    /// Legacy alert notification channels of the caller's org.
    #[oai(
        path = "/api/alert-notifications",
        method = "get",
        operation_id = "getAlertNotificationChannels"
    )]
    async fn alert_notifications(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<AlertNotificationDto>>, AlertReadError> {
        let list = services.notifiers.notifiers(&auth.0).await?;
        Ok(Json(
            list.into_iter()
                .map(|n| AlertNotificationDto {
                    id: int(n.id),
                    uid: n.uid,
                    name: n.name,
                    kind: n.kind,
                    is_default: n.is_default,
                    send_reminder: n.send_reminder,
                    disable_resolve_message: n.disable_resolve_message,
                    frequency: n.frequency,
                    created: rfc3339(n.created),
                    updated: rfc3339(n.updated),
                    settings: serde_json::from_str(&n.settings)
                        .unwrap_or_else(|_| serde_json::json!({})),
                    secure_fields: n.secure_fields.into_iter().map(|f| (f, true)).collect(),
                })
                .collect(),
        ))
    }
}
