//! `/api/dashboards/uid/:uid`, `/api/search` and `/api/folders`: reads of what provisioning
//! stored, in Grafana's shapes (the subset clients use).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::wire::{int, rfc3339};
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::dashboards::{SearchHit, SearchQuery};
use crate::service::Services;

/// A dashboard's metadata.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct DashboardMeta {
    #[oai(rename = "type")]
    pub kind: String,
    pub can_save: bool,
    pub can_edit: bool,
    pub can_admin: bool,
    pub can_star: bool,
    pub slug: String,
    pub url: String,
    pub created: String,
    pub updated: String,
    pub version: i64,
    pub is_folder: bool,
    pub folder_id: i64,
    pub folder_uid: String,
    pub folder_title: String,
    pub folder_url: String,
    pub provisioned: bool,
    pub provisioned_external_id: String,
}

/// `GET /api/dashboards/uid/:uid`.
#[derive(Object, Debug)]
pub struct DashboardFull {
    /// The dashboard JSON (with `id`, `uid` and `version` as stored).
    pub dashboard: serde_json::Value,
    pub meta: DashboardMeta,
}

/// A search hit: a dashboard (`dash-db`) or a folder (`dash-folder`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SearchHitDto {
    pub id: i64,
    pub uid: String,
    pub title: String,
    pub uri: String,
    pub url: String,
    pub slug: String,
    #[oai(rename = "type")]
    pub kind: String,
    pub tags: Vec<String>,
    pub is_starred: bool,
    #[oai(skip_serializing_if_is_none)]
    pub folder_id: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    pub folder_uid: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub folder_title: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub folder_url: Option<String>,
}

/// A folder.
#[derive(Object, Debug)]
pub struct FolderDto {
    pub id: i64,
    pub uid: String,
    pub title: String,
}

api_errors!(
    /// Errors of reading dashboards and folders.
    DashboardReadError {
        400 => BadRequest: "A query parameter is invalid.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `dashboards:read` / `folders:read`.",
        404 => NotFound: "No such dashboard in the caller's org.",
    }
);

/// Grafana's slug: lowercase words joined by dashes.
pub fn slugify(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

pub struct DashboardsApi;

#[OpenApi(tag = "ApiTags::Dashboards")]
impl DashboardsApi {
    /// A dashboard by uid.
    #[oai(
        path = "/api/dashboards/uid/:uid",
        method = "get",
        operation_id = "getDashboardByUID"
    )]
    async fn by_uid(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The dashboard's uid.
        uid: Path<String>,
    ) -> Result<Json<DashboardFull>, DashboardReadError> {
        let (d, folder) = services.dashboards.dashboard(&auth.0, &uid.0).await?;
        let mut json: serde_json::Value =
            serde_json::from_str(&d.json).unwrap_or_else(|_| serde_json::json!({}));
        if let Some(o) = json.as_object_mut() {
            o.insert("id".into(), d.id.into());
            o.insert("uid".into(), d.uid.clone().into());
            o.insert("version".into(), d.version.into());
        }
        let slug = slugify(&d.title);
        Ok(Json(DashboardFull {
            dashboard: json,
            meta: DashboardMeta {
                kind: "db".into(),
                can_save: false,
                can_edit: false,
                can_admin: false,
                can_star: true,
                url: format!("/d/{}/{slug}", d.uid),
                slug,
                created: rfc3339(d.created),
                updated: rfc3339(d.updated),
                version: int(d.version),
                is_folder: false,
                folder_id: folder.as_ref().map_or(0, |f| int(f.id)),
                folder_uid: d.folder_uid.clone(),
                folder_title: folder
                    .as_ref()
                    .map_or_else(|| "General".into(), |f| f.title.clone()),
                folder_url: folder
                    .as_ref()
                    .map(|f| format!("/dashboards/f/{}/{}", f.uid, slugify(&f.title)))
                    .unwrap_or_default(),
                provisioned: true,
                provisioned_external_id: d.file,
            },
        }))
    }

    /// Search folders and dashboards.
    #[oai(path = "/api/search", method = "get", operation_id = "search")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Part of the title.
        query: Query<Option<String>>,
        /// Dashboards with every one of these tags.
        tag: Query<Vec<String>>,
        /// `dash-db` or `dash-folder`.
        #[oai(name = "type")]
        kind: Query<Option<String>>,
        /// Dashboards in these folders (0 = General).
        #[oai(name = "folderIds")]
        folder_ids: Query<Vec<i64>>,
        /// Only the dashboards with these ids.
        #[oai(name = "dashboardIds")]
        dashboard_ids: Query<Vec<i64>>,
        /// Only the dashboards with these uids.
        #[oai(name = "dashboardUIDs")]
        dashboard_uids: Query<Vec<String>>,
        limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<SearchHitDto>>, DashboardReadError> {
        let q = SearchQuery {
            query: query.0.unwrap_or_default(),
            tags: tag.0,
            kind: kind.0.unwrap_or_default(),
            folder_ids: folder_ids
                .0
                .into_iter()
                .filter_map(|v| u64::try_from(v).ok())
                .collect(),
            // A negative id names no dashboard (not "no filter").
            dashboard_ids: dashboard_ids
                .0
                .into_iter()
                .map(|v| u64::try_from(v).unwrap_or(u64::MAX))
                .collect(),
            dashboard_uids: dashboard_uids.0,
            limit: limit
                .0
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(1000),
        };
        let hits = services.dashboards.search(&auth.0, &q).await?;
        Ok(Json(
            hits.into_iter()
                .map(|h| match h {
                    SearchHit::Folder(f) => {
                        let slug = slugify(&f.title);
                        SearchHitDto {
                            id: int(f.id),
                            uri: format!("db/{slug}"),
                            url: format!("/dashboards/f/{}/{slug}", f.uid),
                            uid: f.uid,
                            title: f.title,
                            slug,
                            kind: "dash-folder".into(),
                            tags: Vec::new(),
                            is_starred: false,
                            folder_id: None,
                            folder_uid: None,
                            folder_title: None,
                            folder_url: None,
                        }
                    }
                    SearchHit::Dashboard(d, folder) => {
                        let slug = slugify(&d.title);
                        SearchHitDto {
                            id: int(d.id),
                            uri: format!("db/{slug}"),
                            url: format!("/d/{}/{slug}", d.uid),
                            uid: d.uid.clone(),
                            title: d.title.clone(),
                            slug,
                            kind: "dash-db".into(),
                            tags: d.tags.clone(),
                            is_starred: false,
                            folder_id: folder.as_ref().map(|f| int(f.id)),
                            folder_uid: folder.as_ref().map(|f| f.uid.clone()),
                            folder_title: folder.as_ref().map(|f| f.title.clone()),
                            folder_url: folder
                                .as_ref()
                                .map(|f| format!("/dashboards/f/{}/{}", f.uid, slugify(&f.title))),
                        }
                    }
                })
                .collect(),
        ))
    }

    /// The caller's org's folders.
    #[oai(path = "/api/folders", method = "get", operation_id = "getFolders")]
    async fn folders(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<FolderDto>>, DashboardReadError> {
        let folders = services.dashboards.folders(&auth.0).await?;
        Ok(Json(
            folders
                .into_iter()
                .map(|f| FolderDto {
                    id: int(f.id),
                    uid: f.uid,
                    title: f.title,
                })
                .collect(),
        ))
    }
}
