//! `/api/admin/settings`, `/api/admin/settings-verbose`, `/api/admin/stats`,
//! `/api/admin/usage-report-preview`, and tollgate's own `/api/admin/stats/activity`.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::wire::{int, rfc3339, RenderedJson};
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::settings::{SettingsUpdate, SettingsView};
use crate::service::Services;
use crate::store::SeriesCounts;

type ValuesBySection = BTreeMap<String, BTreeMap<String, String>>;

/// `GET /api/admin/settings`'s bodies, rendered once per view: the service hands out the
/// same `Arc` for a caller's view (the full one, or one filtered for a set of scopes) until
/// the settings change, so the bytes are reused while the view is one of those cached here
/// (holding it keeps its address from being reused). The last few views are kept, so that
/// callers with different scopes do not take turns rendering.
/// The views are compared by identity, so one cache serves every server of the process
/// (tests run several): another server's view is simply a miss.
struct RenderedSettings {
    last: parking_lot::Mutex<Vec<(Arc<SettingsView>, bytes::Bytes)>>,
}

/// Views whose bodies are kept at once (the oldest goes first).
const RENDERED_VIEWS: usize = 16;

static RENDERED: RenderedSettings = RenderedSettings {
    last: parking_lot::Mutex::new(Vec::new()),
};

impl RenderedSettings {
    fn body(&self, view: Arc<SettingsView>) -> Result<bytes::Bytes, crate::error::AppError> {
        if let Some((_, body)) = self.last.lock().iter().find(|(v, _)| Arc::ptr_eq(v, &view)) {
            return Ok(body.clone());
        }
        let body = serde_json::to_vec(&ValuesOnly(&view))
            .map_err(|e| crate::error::AppError::internal("Failed to read settings", e))?;
        let body = bytes::Bytes::from(body);
        let mut last = self.last.lock();
        if last.len() >= RENDERED_VIEWS {
            last.remove(0);
        }
        last.push((view, body.clone()));
        Ok(body)
    }
}

/// `GET /api/admin/stats`'s body, kept while the figures stay the same (between sign-ins,
/// writes and the minute's activity snapshot they do): rendering two dozen fields costs
/// more than the rest of the request. Compared by value, so one cache serves every server
/// of the process.
struct RenderedStats {
    last: parking_lot::Mutex<Option<(crate::service::stats::AdminStats, bytes::Bytes)>>,
}

static STATS_RENDERED: RenderedStats = RenderedStats {
    last: parking_lot::Mutex::new(None),
};

impl RenderedStats {
    fn body(
        &self,
        s: crate::service::stats::AdminStats,
    ) -> Result<bytes::Bytes, crate::error::AppError> {
        if let Some((seen, body)) = &*self.last.lock() {
            if *seen == s {
                return Ok(body.clone());
            }
        }
        let wire = AdminStats {
            orgs: int(s.orgs),
            dashboards: int(s.dashboards),
            snapshots: int(s.snapshots),
            tags: int(s.tags),
            datasources: int(s.datasources),
            playlists: int(s.playlists),
            stars: int(s.stars),
            alerts: int(s.alerts),
            users: int(s.users),
            admins: int(s.admins),
            editors: int(s.editors),
            viewers: int(s.viewers),
            active_users: int(s.active_users),
            active_admins: int(s.active_admins),
            active_editors: int(s.active_editors),
            active_viewers: int(s.active_viewers),
            active_sessions: int(s.active_sessions),
            daily_active_users: int(s.daily_active_users),
            daily_active_admins: int(s.daily_active_admins),
            daily_active_editors: int(s.daily_active_editors),
            daily_active_viewers: int(s.daily_active_viewers),
            daily_active_sessions: int(s.daily_active_sessions),
            monthly_active_users: int(s.monthly_active_users),
            active_devices: int(s.active_devices),
        };
        let body = serde_json::to_vec(&wire)
            .map_err(|e| crate::error::AppError::internal("Failed to get admin stats", e))?;
        let body = bytes::Bytes::from(body);
        *self.last.lock() = Some((s, body.clone()));
        Ok(body)
    }
}

/// The view as `{section: {key: value}}` (the sources left out), serialized in place.
struct ValuesOnly<'a>(&'a SettingsView);

impl serde::Serialize for ValuesOnly<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Section<'a>(&'a BTreeMap<String, crate::service::settings::SourcedValue>);
        impl serde::Serialize for Section<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, v)| (k, &v.value)))
            }
        }
        s.collect_map(self.0.iter().map(|(name, kv)| (name, Section(kv))))
    }
}

/// A value and the layer it comes from: default, file, env or database.
#[derive(Object, Debug)]
pub struct SettingValue {
    pub value: String,
    pub source: String,
}

/// Runtime changes: at least one of the two. Only `auth.saml` may change.
#[derive(Object, Debug)]
pub struct UpdateSettingsForm {
    /// section -> key -> new value.
    pub updates: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// section -> keys to remove (falling back to env, file, default).
    pub removals: Option<BTreeMap<String, Vec<String>>>,
}

/// Grafana's `AdminStats`, in its order.
#[derive(Object, Debug, serde::Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct AdminStats {
    pub orgs: i64,
    pub dashboards: i64,
    pub snapshots: i64,
    pub tags: i64,
    pub datasources: i64,
    pub playlists: i64,
    pub stars: i64,
    pub alerts: i64,
    pub users: i64,
    pub admins: i64,
    pub editors: i64,
    pub viewers: i64,
    pub active_users: i64,
    pub active_admins: i64,
    pub active_editors: i64,
    pub active_viewers: i64,
    pub active_sessions: i64,
    pub daily_active_users: i64,
    pub daily_active_admins: i64,
    pub daily_active_editors: i64,
    pub daily_active_viewers: i64,
    pub daily_active_sessions: i64,
    pub monthly_active_users: i64,
    pub active_devices: i64,
}

/// The counts of one UTC hour or day of the activity series.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ActivityBucket {
    /// The start of the hour or day (RFC 3339, UTC).
    pub start: String,
    /// Successful password sign-ins: every `POST /login`, and Basic requests whose password
    /// was verified (not answered by the credential cache). API keys and sessions are not
    /// sign-ins.
    pub sign_ins: i64,
    /// Refused password sign-ins: wrong password, unknown login, or blocked by brute-force
    /// protection.
    pub failed_sign_ins: i64,
    /// Distinct users (not service accounts) seen in the hour or day.
    pub active_users: i64,
}

/// Sign-ins and active users over the last 24 hours and 30 days (tollgate's own route).
#[derive(Object, Debug)]
pub struct ActivityStats {
    /// 24 entries, oldest first; the last is the current hour.
    pub hourly: Vec<ActivityBucket>,
    /// 30 entries, oldest first; the last is today (UTC).
    pub daily: Vec<ActivityBucket>,
}

/// The usage report tollgate would send (it never sends it).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UsageReport {
    pub version: String,
    pub metrics: BTreeMap<String, i64>,
    pub os: String,
    pub arch: String,
    pub edition: String,
    pub has_valid_license: bool,
    pub packaging: String,
    pub usage_stats_id: String,
}

api_errors!(
    /// Errors of reading settings or stats.
    AdminReadError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks the read permission.",
    }
);

api_errors!(
    /// Errors of updating settings.
    UpdateSettingsError {
        400 => BadRequest: "Not JSON, nothing to change, a section other than auth.saml, or an invalid key.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `settings:write` on one of the keys (nothing is stored), or the request is cross-origin.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

pub struct SettingsApi;

#[OpenApi(tag = "ApiTags::AdminSettings")]
impl SettingsApi {
    /// The effective settings, redacted, filtered by the caller's `settings:read` scopes.
    #[oai(
        path = "/api/admin/settings",
        method = "get",
        operation_id = "adminGetSettings"
    )]
    async fn get(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<RenderedJson<ValuesBySection>, AdminReadError> {
        let view = services.settings_admin.read(&auth.0)?;
        Ok(RenderedJson::new(RENDERED.body(view)?))
    }

    /// Change `auth.saml` settings at runtime; all or nothing.
    #[oai(
        path = "/api/admin/settings",
        method = "put",
        operation_id = "adminUpdateSettings"
    )]
    async fn put(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<UpdateSettingsForm>,
    ) -> Result<Json<MessageBody>, UpdateSettingsError> {
        services
            .settings_admin
            .update(
                &auth.0,
                SettingsUpdate {
                    updates: body.0.updates.unwrap_or_default(),
                    removals: body.0.removals.unwrap_or_default(),
                },
            )
            .await?;
        Ok(message("Settings updated"))
    }

    /// The effective settings with the layer each value comes from.
    #[oai(
        path = "/api/admin/settings-verbose",
        method = "get",
        operation_id = "adminGetSettingsVerbose"
    )]
    async fn verbose(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<BTreeMap<String, BTreeMap<String, SettingValue>>>, AdminReadError> {
        let view = services.settings_admin.read(&auth.0)?;
        Ok(Json(
            view.iter()
                .map(|(s, kv)| {
                    let kv = kv
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                SettingValue {
                                    value: v.value.clone(),
                                    source: v.source.as_str().into(),
                                },
                            )
                        })
                        .collect();
                    (s.clone(), kv)
                })
                .collect(),
        ))
    }

    /// Server statistics (`server.stats:read`).
    #[oai(
        path = "/api/admin/stats",
        method = "get",
        operation_id = "adminGetStats"
    )]
    async fn stats(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<RenderedJson<AdminStats>, AdminReadError> {
        let s = services.stats.stats(&auth.0).await?;
        Ok(RenderedJson::new(STATS_RENDERED.body(s)?))
    }

    /// Sign-ins and active users per hour (last 24) and per day (last 30), UTC
    /// (`server.stats:read`). tollgate's own route: Grafana has none.
    #[oai(
        path = "/api/admin/stats/activity",
        method = "get",
        operation_id = "adminGetStatsActivity"
    )]
    async fn activity(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<ActivityStats>, AdminReadError> {
        let s = services.stats.activity_series(&auth.0).await?;
        let wire = |list: Vec<(i64, SeriesCounts)>| {
            list.into_iter()
                .map(|(start, c)| ActivityBucket {
                    start: rfc3339(start),
                    sign_ins: int(c.sign_ins),
                    failed_sign_ins: int(c.failed_sign_ins),
                    active_users: int(c.active_users),
                })
                .collect()
        };
        Ok(Json(ActivityStats {
            hourly: wire(s.hourly),
            daily: wire(s.daily),
        }))
    }

    /// The usage report preview (`server.usagestats.report:read`); never sent anywhere.
    #[oai(
        path = "/api/admin/usage-report-preview",
        method = "get",
        operation_id = "adminGetUsageReportPreview"
    )]
    async fn usage(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<UsageReport>, AdminReadError> {
        let r = services
            .stats
            .usage_report(
                &auth.0,
                crate::api::health::GRAFANA_COMPAT_VERSION,
                services.licensing.check().await?,
            )
            .await?;
        Ok(Json(UsageReport {
            version: r.version,
            metrics: r.metrics.into_iter().map(|(k, v)| (k, int(v))).collect(),
            os: r.os,
            arch: r.arch,
            edition: r.edition,
            has_valid_license: r.has_valid_license,
            packaging: r.packaging,
            usage_stats_id: r.usage_stats_id,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    #[test]
    fn admin_stats_serialize_as_documented() {
        // A different value in every field: a field renamed on one side only shows.
        let s = AdminStats {
            orgs: 1,
            dashboards: 2,
            snapshots: 3,
            tags: 4,
            datasources: 5,
            playlists: 6,
            stars: 7,
            alerts: 8,
            users: 9,
            admins: 10,
            editors: 11,
            viewers: 12,
            active_users: 13,
            active_admins: 14,
            active_editors: 15,
            active_viewers: 16,
            active_sessions: 17,
            daily_active_users: 18,
            daily_active_admins: 19,
            daily_active_editors: 20,
            daily_active_viewers: 21,
            daily_active_sessions: 22,
            monthly_active_users: 23,
            active_devices: 24,
        };
        let (serde, documented) = (serde_json::to_value(&s).unwrap(), s.to_json().unwrap());
        assert_eq!(serde, documented);
        // Grafana's order, as the document lists it.
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&serde), keys(&documented));
    }
}
