//! `GET /api/health` and `GET /api/frontend/settings`: what monitoring and client libraries
//! (`grafana-client`'s `connect()` and `version`) read first. Neither needs credentials.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::wire::FastJson;
use crate::api::ApiTags;
use crate::service::Services;

pub use crate::domain::version::{COMMIT, GRAFANA_COMPAT_VERSION};

/// Health as Grafana reports it.
#[derive(Object, Debug, serde::Serialize)]
pub struct Health {
    pub commit: String,
    /// "ok" when the database answers, else "failing".
    pub database: String,
    pub version: String,
}

#[derive(ApiResponse, Debug)]
pub enum HealthResponse {
    /// The server and its database are healthy.
    #[oai(status = 200)]
    Ok(FastJson<Health>),
    /// The database does not answer.
    #[oai(status = 503)]
    Unavailable(FastJson<Health>),
}

/// Build information (`buildInfo` of the frontend settings).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct BuildInfo {
    /// The Grafana API version tollgate is compatible with.
    pub version: String,
    pub commit: String,
    pub edition: String,
    pub env: String,
    pub hide_version: bool,
    /// tollgate's own version.
    pub tollgate_version: String,
}

/// The subset of Grafana's frontend settings that clients read.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct FrontendSettings {
    pub build_info: BuildInfo,
    pub app_url: String,
    pub app_sub_url: String,
    pub disable_login_form: bool,
    pub basic_auth_enabled: bool,
    pub ldap_enabled: bool,
    pub anonymous_enabled: bool,
}

/// `/healthz` and `/readyz`.
#[derive(Object, Debug)]
pub struct Probe {
    /// "alive", "ready" or "not ready".
    pub status: String,
    /// Why the server is not ready.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

#[derive(ApiResponse, Debug)]
pub enum ProbeResponse {
    #[oai(status = 200)]
    Ok(Json<Probe>),
    /// Not ready: start-up work still runs, or the database takes no writes.
    #[oai(status = 503)]
    Unavailable(Json<Probe>),
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health of the server and its database.
    #[oai(path = "/api/health", method = "get", operation_id = "getHealth")]
    async fn health(&self, services: Data<&Arc<Services>>) -> HealthResponse {
        let ok = services.store.healthy().await;
        let body = FastJson(Health {
            commit: COMMIT.into(),
            database: if ok { "ok" } else { "failing" }.into(),
            version: GRAFANA_COMPAT_VERSION.into(),
        });
        if ok {
            HealthResponse::Ok(body)
        } else {
            HealthResponse::Unavailable(body)
        }
    }

    /// Liveness: the process serves HTTP (no database access).
    #[oai(path = "/healthz", method = "get", operation_id = "getHealthz")]
    async fn healthz(&self) -> Json<Probe> {
        Json(Probe {
            status: "alive".into(),
            reason: None,
        })
    }

    /// Readiness: start-up work finished (migrations, provisioning, a resumed
    /// re-encryption) and the database takes a write.
    #[oai(path = "/readyz", method = "get", operation_id = "getReadyz")]
    async fn readyz(&self, services: Data<&Arc<Services>>) -> ProbeResponse {
        match services.readiness().await {
            Ok(()) => ProbeResponse::Ok(Json(Probe {
                status: "ready".into(),
                reason: None,
            })),
            Err(reason) => ProbeResponse::Unavailable(Json(Probe {
                status: "not ready".into(),
                reason: Some(reason),
            })),
        }
    }

    /// Frontend settings: build info and the sign-in options.
    #[oai(
        path = "/api/frontend/settings",
        method = "get",
        operation_id = "getFrontendSettings"
    )]
    async fn frontend_settings(&self, services: Data<&Arc<Services>>) -> Json<FrontendSettings> {
        let s = &services.settings;
        let sub_url = s
            .root_url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{}", p.trim_end_matches('/')))
            .filter(|p| p != "/")
            .unwrap_or_default();
        Json(FrontendSettings {
            build_info: BuildInfo {
                version: GRAFANA_COMPAT_VERSION.into(),
                commit: COMMIT.into(),
                edition: "Enterprise".into(),
                env: s.app_mode.clone(),
                hide_version: false,
                tollgate_version: env!("CARGO_PKG_VERSION").into(),
            },
            app_url: s.root_url.clone(),
            app_sub_url: sub_url,
            disable_login_form: s.disable_login_form,
            basic_auth_enabled: s.basic_auth_enabled,
            ldap_enabled: crate::config::parse_bool(
                s.raw.get("auth.ldap", "enabled").unwrap_or(""),
            )
            .unwrap_or(false),
            anonymous_enabled: false,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    #[test]
    fn health_serializes_as_documented() {
        let h = Health {
            commit: COMMIT.into(),
            database: "ok".into(),
            version: GRAFANA_COMPAT_VERSION.into(),
        };
        assert_eq!(serde_json::to_value(&h).unwrap(), h.to_json().unwrap());
    }
}
